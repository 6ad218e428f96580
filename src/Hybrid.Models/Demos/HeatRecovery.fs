/// The foundation demo: simulate the 1-D heat equation ∂u/∂t = D ∂²u/∂x² on [0, 1] with u = 0 at
/// both ends, add Gaussian noise, and recover D by gradient descent through the simulation
/// (TorchSharp autograd through every explicit Euler step). Replaced by the flagship case study later.
module Hybrid.Models.Demos.HeatRecovery

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training

/// Settings of the demo. Defaults: `HeatRecovery.defaults`.
type Settings = {
    /// Diffusion coefficient that generates the data.
    TrueD: float
    /// Starting value of the fit.
    InitialD: float
    /// Interior grid points (Dirichlet boundaries u(0) = u(1) = 0 are not counted).
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
    /// Mean squared misfit to the noisy data at the end.
    FinalLoss: float
    /// Wall time of the fit.
    WallTime: TimeSpan
}

/// Grid spacing and a stable explicit time step for diffusion coefficients up to `maxD`.
let private discretisation (s: Settings) (maxD: float) =
    let dx = 1.0 / float (s.Cells + 1)

    let stepsPerSnapshot =
        int (ceil (s.Duration / float s.Snapshots * maxD / (0.4 * dx * dx)))

    let dt = s.Duration / float (s.Snapshots * stepsPerSnapshot)
    dx, dt, stepsPerSnapshot

/// Explicit Euler rollout; returns the snapshots after each `stepsPerSnapshot` steps, shape [Snapshots; Cells].
let internal simulate
    (s: Settings)
    (d: torch.Tensor)
    (u0: torch.Tensor)
    (dx: float)
    (dt: float)
    (stepsPerSnapshot: int)
    =
    let zero = torch.zeros ([| 1L |], dtype = u0.dtype)
    let mutable u = u0
    let snapshots = ResizeArray()

    for _ in 1 .. s.Snapshots do
        for _ in 1..stepsPerSnapshot do
            let padded = torch.cat ([| zero; u; zero |], 0L)
            let n = int64 s.Cells

            let laplacian =
                (padded.narrow (0L, 2L, n) .- 2.0 .* u .+ padded.narrow (0L, 0L, n))
                ./ (dx * dx)

            u <- u .+ dt .* d .* laplacian

        snapshots.Add u

    torch.stack (snapshots, 0L)

/// Runs the demo. `report` is called every 25 iterations with (iteration, loss, current D).
let run (s: Settings) (report: int -> float -> float -> unit) : Outcome =
    Engine.init ()
    let watch = Stopwatch.StartNew()
    // Largest D the fit may visit: the time step stays stable (diffusion number ≤ 0.4) up to it.
    let maxD = 4.0 * max s.TrueD s.InitialD
    let dx, dt, stepsPerSnapshot = discretisation s maxD
    let f64 = torch.ScalarType.Float64
    use outer = torch.NewDisposeScope()
    let x = torch.linspace (dx, 1.0 - dx, int64 s.Cells, dtype = f64)
    let u0 = torch.sin (Math.PI .* x) .+ 0.5 .* torch.sin (3.0 * Math.PI .* x)

    let data =
        use _ = torch.no_grad ()

        let clean =
            simulate s (torch.tensor (s.TrueD, dtype = f64)) u0 dx dt stepsPerSnapshot

        use generator = new torch.Generator(uint64 s.Seed)
        let rms = (square clean).mean().sqrt().ToDouble()

        clean
        .+ s.NoiseLevel * rms
           .* torch.randn (clean.shape, dtype = f64, generator = generator)

    let logD = torch.nn.Parameter(torch.tensor (log s.InitialD, dtype = f64))
    use optimizer = new Adam([| [| logD :> torch.Tensor |], s.LearningRate |])
    let mutable lastLoss = nan

    for iteration in 1 .. s.Iterations do
        use _ = torch.NewDisposeScope()
        optimizer.ZeroGrad()
        let d = logD.exp ()

        if d.ToDouble() > maxD then
            raise (
                HybridException(
                    $"The fitted diffusion coefficient D = {d.ToDouble():G4} left the stable range (≤ {maxD:G4}) at iteration {iteration}; lower LearningRate (now {s.LearningRate})."
                )
            )

        let loss = (square (simulate s d u0 dx dt stepsPerSnapshot - data)).mean ()
        loss.backward ()
        optimizer.Step()
        lastLoss <- loss.ToDouble()

        if iteration % 25 = 0 || iteration = s.Iterations then
            report iteration lastLoss (logD.exp().ToDouble())

    let recovered = logD.exp().ToDouble()

    {
        TrueD = s.TrueD
        RecoveredD = recovered
        RelativeError = abs (recovered - s.TrueD) / s.TrueD
        FinalLoss = lastLoss
        WallTime = watch.Elapsed
    }
