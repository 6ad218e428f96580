/// The foundation demo: the 1-D heat equation ∂u/∂t = D ∂²u/∂x² on [0, 1] with u = 0 at both ends, written as a
/// `model { }`, compiled, simulated with noise added, and D recovered by `Trainer.train` through the simulator
/// (autograd through every explicit Euler step).
module Hybrid.Models.Demos.HeatRecovery

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Numerics
open Hybrid.Compiler

/// Settings of the demo. Defaults: `HeatRecovery.defaults`.
type Settings = {
    /// Diffusion coefficient that generates the data.
    TrueD: float
    /// Starting value of the fit.
    InitialD: float
    /// Grid cells on [0, 1] (cell-centred; u = 0 on both boundaries).
    Cells: int
    /// Simulated time span.
    Duration: float
    /// Snapshots observed, evenly spaced in time after t = 0.
    Snapshots: int
    /// Noise standard deviation as a fraction of the data's root-mean-square value (0.01 = 1%).
    NoiseLevel: float
    /// Adam iterations.
    Iterations: int
    /// Adam learning rate on log D.
    LearningRate: float
    /// Seed of the noise (the run is repeatable).
    Seed: int
}

/// D = 0.1, initial guess 0.02, 64 cells, t ∈ [0, 0.1], 10 snapshots, 1% noise, 150 Adam steps.
let defaults = {
    TrueD = 0.1
    InitialD = 0.02
    Cells = 64
    Duration = 0.1
    Snapshots = 10
    NoiseLevel = 0.01
    Iterations = 150
    LearningRate = 0.1
    Seed = 42
}

/// Outcome of `run`.
type Outcome = {
    /// The diffusion coefficient that generated the data (`Settings.TrueD`).
    TrueD: float
    /// The diffusion coefficient recovered by the fit.
    RecoveredD: float
    /// |recovered − true| / true.
    RelativeError: float
    /// Mean squared misfit to the noisy data in the last iteration.
    FinalLoss: float
    /// Wall time of the fit.
    WallTime: TimeSpan
}

/// The heat equation as a model: D positive (softplus-parameterised, so Adam on its raw value is Adam on log D
/// for small D), u = 0 at both ends, u(0, x) = sin(πx) + ½ sin(3πx).
let internal heat (s: Settings) =
    let u, d = sym "u", sym "D"

    model "heat" {
        domain (interval 0.0 1.0) (cells s.Cells)
        field "u"
        param "D" (positive s.InitialD)
        equation (dt u == d * lap u)
        boundary "u" (dirichlet 0.0)
        initial "u" (fun x -> sin (Math.PI * x) + 0.5 * sin (3.0 * Math.PI * x))
    }

/// Explicit Euler with a time step stable for diffusion coefficients up to `maxD` (diffusion number ≤ 0.4), saving
/// the `Snapshots` evenly spaced times after t = 0.
let private rollout (s: Settings) (maxD: float) =
    let dx = 1.0 / float s.Cells

    let stepsPerSnapshot =
        int (ceil (s.Duration / float s.Snapshots * maxD / (0.4 * dx * dx)))

    {
        Rollout.defaults with
            Scheme = Scheme.Euler
            Dt = s.Duration / float (s.Snapshots * stepsPerSnapshot)
            SaveTimes = Array.init s.Snapshots (fun i -> s.Duration * float (i + 1) / float s.Snapshots)
    }

/// Runs the demo: the model compiled by `Compiler.compile`, the data simulated by it at the true D plus noise, D
/// fitted from `InitialD` by `Trainer.train` (Adam on D's raw value, gradients through every Euler step). `report`
/// is called every 25 iterations and at the last with (iteration, loss, current D).
let run (s: Settings) (report: int -> float -> float -> unit) : Outcome =
    Engine.init ()
    let watch = Stopwatch.StartNew()
    // Largest D the fit may visit: the time step stays stable up to it.
    let maxD = 4.0 * max s.TrueD s.InitialD
    let options = rollout s maxD
    use outer = torch.NewDisposeScope()
    let sim = Compiler.compile Compiler.defaults (heat s)
    let d = sim.Param "D"
    let u0 = sim.Initial 1

    let data =
        use _ = torch.no_grad ()
        d.Set s.TrueD
        let clean = sim.Simulate(u0, options).Values[0]
        d.Set s.InitialD
        use generator = new torch.Generator(uint64 s.Seed)
        let rms = (square clean).mean().sqrt().ToDouble()

        clean
        .+ s.NoiseLevel * rms
           .* torch.randn (clean.shape, dtype = clean.dtype, generator = generator)

    let progress =
        { new IProgress<ProgressReport> with
            member _.Report r =
                if r.Epoch % 25 = 0 || r.Epoch = r.Epochs then
                    report r.Epoch r.TrainLoss (snd r.Theta[0])
        }

    let fit =
        Trainer.train
            {
                Trainer.defaults with
                    Epochs = s.Iterations
                    Seed = s.Seed
                    Groups = [| Trainer.group "D" s.LearningRate [ d.Raw ] |]
                    Theta = [| "D", (fun () -> d.Value.ToDouble()) |]
                    Progress = {
                        Progress.silent with
                            Hook = Some progress
                    }
            }
            {
                Loss =
                    fun context ->
                        let current = d.Value.ToDouble()

                        if current > maxD then
                            raise (
                                HybridException(
                                    $"The fitted diffusion coefficient D = {current:G4} left the stable range (≤ {maxD:G4}) at iteration {context.Epoch + 1}; lower LearningRate (now {s.LearningRate})."
                                )
                            )

                        let loss = (square (sim.Simulate(u0, options).Values[0] .- data)).mean ()

                        {
                            Total = loss
                            Parts = [| "data", loss |]
                        }
                Validation = None
            }

    let recovered = d.Value.ToDouble()

    {
        TrueD = s.TrueD
        RecoveredD = recovered
        RelativeError = abs (recovered - s.TrueD) / s.TrueD
        FinalLoss = fit.TrainLosses[fit.TrainLosses.Length - 1]
        WallTime = watch.Elapsed
    }
