namespace Hybrid.Training

open System.Diagnostics
open TorchSharp

/// Evaluation metrics as plain numbers.
[<RequireQualifiedAccess>]
module Metrics =

    /// Mean squared error over observed (finite) targets.
    let mse (prediction: torch.Tensor) (target: torch.Tensor) : float =
        use _ = torch.no_grad ()
        (Loss.mse prediction target).ToDouble()

    /// Relative L2 error ‖prediction − reference‖ / ‖reference‖.
    let relativeL2 (prediction: torch.Tensor) (reference: torch.Tensor) : float =
        use _ = torch.no_grad ()
        ((prediction - reference).square().sum () / reference.square().sum ()).sqrt().ToDouble()

    /// Root-mean-square physics residual of a residual tensor (e.g. `ResidualResult.Values[i]`).
    let residualNorm (residual: torch.Tensor) : float =
        use _ = torch.no_grad ()
        residual.square().mean().sqrt().ToDouble()

    /// Runs `f` and returns its result with the wall time in seconds (for training and inference timing).
    let timed (f: unit -> 'T) : 'T * float =
        let w = Stopwatch.StartNew()
        let r = f ()
        r, w.Elapsed.TotalSeconds
