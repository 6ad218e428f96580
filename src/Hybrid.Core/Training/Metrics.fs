namespace Hybrid.Training

open System.Diagnostics
open TorchSharp
open Hybrid.TensorArithmetic

/// The numbers a report shows for one trained model.
type MetricsReport = {
    /// MSE on held-out data inside the training distribution.
    MseInDomain: float
    /// MSE on data outside it (extrapolation); NaN when not given.
    MseOutOfDomain: float
    /// Root-mean-square physics residual of the prediction; NaN when not given.
    ResidualNorm: float
    /// Expected calibration error of the predictive intervals; NaN without uncertainty.
    Ece: float
    /// Training wall time in seconds.
    TrainSeconds: float
    /// Wall time of one in-domain prediction in seconds.
    InferenceSeconds: float
}

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
        ((square (prediction - reference)).sum () / (square reference).sum ()).sqrt().ToDouble()

    /// Root-mean-square physics residual of a residual tensor (e.g. `ResidualResult.Values[i]`).
    let residualNorm (residual: torch.Tensor) : float =
        use _ = torch.no_grad ()
        (square residual).mean().sqrt().ToDouble()

    /// Runs `f` and returns its result with the wall time in seconds (for training and inference timing).
    let timed (f: unit -> 'T) : 'T * float =
        let w = Stopwatch.StartNew()
        let r = f ()
        r, w.Elapsed.TotalSeconds

    /// A report for a deterministic predictor `predict x` (no gradients): in- and out-of-domain MSE (the
    /// latter NaN when `outOfDomain` is None), the timed in-domain inference, the given training time;
    /// residual norm and ECE are left NaN for the caller to fill (`{ r with ResidualNorm = … }`).
    let report
        (predict: torch.Tensor -> torch.Tensor)
        (inDomain: torch.Tensor * torch.Tensor)
        (outOfDomain: (torch.Tensor * torch.Tensor) option)
        (trainSeconds: float)
        : MetricsReport =
        use _ = torch.no_grad ()
        let x, y = inDomain
        let p, seconds = timed (fun () -> predict x)

        let ood =
            match outOfDomain with
            | Some(xo, yo) -> mse (predict xo) yo
            | None -> nan

        {
            MseInDomain = mse p y
            MseOutOfDomain = ood
            ResidualNorm = nan
            Ece = nan
            TrainSeconds = trainSeconds
            InferenceSeconds = seconds
        }
