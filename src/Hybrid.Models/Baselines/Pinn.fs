/// Physics-informed neural network baseline (Raissi et al. 2019): an MLP u(x) of time (and space, or
/// covariates such as dose) trained on data plus the residual of an equation at collocation points,
///   loss = mean over observed entries of ((u − data) / OutputScale)² + ResidualWeight · mean(residual²),
/// where the residual is written by the caller from u and its input derivatives (`Fields.D`, computed with
/// `torch.autograd.grad` and create_graph, so derivatives of derivatives work and the loss can be trained).
/// The network sees normalised inputs (x − InputShift) / InputScale and returns OutputShift + OutputScale · N,
/// so derivatives are in the caller's units. Seeded (`CaseTraining.initialise`), trained with `Trainer.train` (`CaseTraining.network`).
module Hybrid.Models.Baselines.Pinn

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common

/// Settings of a PINN.
type Settings = {
    /// Hidden width (tanh layers).
    Width: int
    /// Hidden layers.
    Depth: int
    /// Adam iterations (each one full batch of data and collocation points).
    Iterations: int
    /// Adam learning rate.
    LearningRate: float
    /// Weight of the mean squared residual in the loss.
    ResidualWeight: float
    /// Seed of the weight initialisation.
    Seed: int
}

/// A small default: two hidden layers of 32, 2000 Adam iterations at 1e-2, residual weight 1.
let defaults = {
    Width = 32
    Depth = 2
    Iterations = 2000
    LearningRate = 1e-2
    ResidualWeight = 1.0
    Seed = 1
}

/// The network's output and input at the collocation points, handed to the residual.
type internal Fields = {
    /// u at the collocation points [M; channels], in the caller's units.
    U: torch.Tensor
    /// The collocation points [M; inputs] (requires grad).
    X: torch.Tensor
    /// `D y j`: ∂y/∂x_j of any [M; k] tensor computed from `U` (e.g. `U` itself, or a derivative of it), [M; k].
    D: torch.Tensor -> int -> torch.Tensor
}

/// A PINN problem. Rows are points; columns are inputs (e.g. time, space, dose) or output channels.
type internal Problem = {
    /// Data inputs [N; inputs].
    Inputs: float[][]
    /// Data targets [N; channels]; NaN marks an unobserved entry (left out of the data loss), e.g. a state that
    /// is never measured, or an initial condition known for one channel only.
    Targets: float[][]
    /// Collocation points [M; inputs] where the residual is enforced (they may lie outside the data, e.g. in the
    /// forecast years: the equation is known there).
    Collocation: float[][]
    /// Per-input shift and scale of the normalisation (network input = (x − shift) / scale).
    InputShift: float[]
    /// Per-input scale of the normalisation (same length as `InputShift`, non-zero).
    InputScale: float[]
    /// Per-channel shift and scale of the output (u = shift + scale · network output); the data loss is measured
    /// in units of `OutputScale`.
    OutputShift: float[]
    /// Per-channel scale of the output (same length as `OutputShift`, non-zero).
    OutputScale: float[]
    /// The residual of the equation at the collocation points, any shape (zero when the equation holds); its
    /// mean square enters the loss, so scale it to order one.
    Residual: Fields -> torch.Tensor
}

/// A trained PINN.
type internal Trained = {
    /// The network (on normalised inputs).
    Net: Mlp
    /// u at any inputs [N; inputs] → [N; channels].
    Predict: float[][] -> float[][]
    /// Adam iterations run.
    Epochs: int
    /// Training wall time (s).
    Seconds: float
    /// Final data term (mean squared error in units of `OutputScale`).
    DataLoss: float
    /// Final residual term (mean squared residual, unweighted).
    ResidualLoss: float
}

let private f64 = torch.ScalarType.Float64

let private matrix (what: string) (rows: float[][]) (columns: int) =
    match rows |> Array.tryFindIndex (fun r -> r.Length <> columns) with
    | Some i -> raise (HybridException $"PINN {what}: row {i} has {rows[i].Length} values; expected {columns}.")
    | None -> torch.tensor(Array.concat rows, dtype = f64).reshape (int64 rows.Length, int64 columns)

/// ∂y/∂x_j for y [M; k] computed from x [M; inputs]: one `torch.autograd.grad` per column of y, with
/// create_graph (so the result can be differentiated and trained through) and retain_graph.
let internal derivative (x: torch.Tensor) (y: torch.Tensor) (j: int) : torch.Tensor =
    let columns =
        Array.init (int y.shape[1]) (fun c ->
            let yc = y.select (1L, int64 c)
            let ones = torch.ones_like yc

            let g =
                torch.autograd.grad (
                    [| yc |],
                    [| x |],
                    [| ones |],
                    retain_graph = true,
                    create_graph = true,
                    allow_unused = false
                )

            g[0].select (1L, int64 j))

    torch.stack (columns, 1L)

/// Trains a PINN on `problem`, with early stopping where `validation` is given: its validation MSE from the
/// network's predictions at any inputs (`Trained.Predict`) and the case's rule.
let internal fitValidated
    (validation: ((float[][] -> float[][]) -> float) option)
    (rule: EarlyStopping.Rule)
    (s: Settings)
    (problem: Problem)
    : Trained =
    Engine.init ()
    let inputs = problem.InputShift.Length
    let channels = problem.OutputShift.Length

    if problem.InputScale.Length <> inputs || problem.OutputScale.Length <> channels then
        raise (
            HybridException
                $"PINN: InputShift/InputScale have {inputs}/{problem.InputScale.Length} values and OutputShift/OutputScale {channels}/{problem.OutputScale.Length}; give one per input and one per channel."
        )

    if problem.Inputs.Length <> problem.Targets.Length || problem.Inputs.Length = 0 then
        raise (
            HybridException
                $"PINN: {problem.Inputs.Length} data inputs and {problem.Targets.Length} targets; give equal, non-zero counts."
        )

    if problem.Collocation.Length = 0 then
        raise (HybridException "PINN: no collocation points; give at least one where the residual is enforced.")

    let inShift = torch.tensor (problem.InputShift, dtype = f64)
    let inScale = torch.tensor (problem.InputScale, dtype = f64)
    let outShift = torch.tensor (problem.OutputShift, dtype = f64)
    let outScale = torch.tensor (problem.OutputScale, dtype = f64)
    let net = new Mlp("pinn", inputs, channels, s.Width, s.Depth, dtype = f64)
    CaseTraining.initialise net s.Seed false

    let u (x: torch.Tensor) =
        outShift .+ outScale .* net.forward ((x .- inShift) ./ inScale)

    let x = matrix "inputs" problem.Inputs inputs
    let raw = matrix "targets" problem.Targets channels
    let observed = raw.isnan().logical_not ()
    let mask = observed.to_type f64
    let targets = torch.where (observed, raw, torch.zeros_like raw)
    let count = mask.sum ()
    let collocation = matrix "collocation points" problem.Collocation inputs

    let terms () =
        let data = (mask .* square ((u x .- targets) ./ outScale)).sum () ./ count
        let xc = collocation.detach().requires_grad_ true

        let residual = problem.Residual { U = u xc; X = xc; D = derivative xc }

        data, (square residual).mean ()

    let predict (points: float[][]) =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()

        let values =
            (u (matrix "prediction inputs" points inputs)).contiguous().data<float>().ToArray()

        Array.init points.Length (fun i -> Array.sub values (i * channels) channels)

    let check =
        validation
        |> Option.map (fun score -> {
            EarlyStopping.Check.Score = fun () -> score predict
            EarlyStopping.Check.Rule = rule
        })

    let fit =
        CaseTraining.singleThreaded (fun () ->
            CaseTraining.networkWith check net s.LearningRate s.Iterations s.Seed (fun _ ->
                let data, residual = terms ()
                data .+ s.ResidualWeight .* residual))

    let dataLoss, residualLoss =
        use _ = torch.NewDisposeScope()
        let data, residual = terms ()
        data.ToDouble(), residual.ToDouble()

    {
        Net = net
        Predict = predict
        Epochs = fit.Epochs
        Seconds = fit.WallTime.TotalSeconds
        DataLoss = dataLoss
        ResidualLoss = residualLoss
    }

/// Trains a PINN on `problem` (every iteration, no validation).
let internal fit (s: Settings) (problem: Problem) : Trained =
    fitValidated None EarlyStopping.off s problem

/// `fit` with the default settings but `iterations` Adam steps and network seed `seed` (what the case studies vary).
let internal fitWith (iterations: int) (seed: int) (problem: Problem) : Trained =
    fit
        {
            defaults with
                Iterations = iterations
                Seed = seed
        }
        problem
