namespace Hybrid.Training

open TorchSharp
open Hybrid

/// A predictive distribution per point: mean and standard deviation (same shape).
type Predictive = {

    /// Predictive mean.
    Mean: torch.Tensor

    /// Predictive standard deviation (≥ 0).
    Std: torch.Tensor
}

/// Calibration of central prediction intervals: at each nominal level p, the fraction of observations
/// inside the central p-interval of the predicted Gaussian.
type Calibration = {

    /// Nominal levels (0.1 … 0.9 by default).
    Levels: float array

    /// Observed coverage at each level.
    Coverage: float array

    /// Expected calibration error: mean |coverage − level|.
    Ece: float
}

/// Predictive uncertainty: MC dropout, deep ensembles, calibration (ECE, reliability plot), NLL and CRPS.
[<RequireQualifiedAccess>]
module Uncertainty =

    /// Standard normal quantile Φ⁻¹(p) (Acklam's rational approximation, relative error < 1.2e-9).
    val normalQuantile: p: float -> float

    /// Runs `f` with `modules` in training mode (dropout active) and puts every module and submodule back in
    /// the mode it had before, in a `finally`: also when `f` throws.
    val withTrainingMode: modules: torch.nn.Module array -> f: (unit -> 'T) -> 'T

    /// MC dropout: `passes` stochastic forward passes of `predict` with the modules in training mode (dropout
    /// active) and no gradients; mean and standard deviation over the passes. The modules go back to the mode
    /// they were in (eval after training), also when `predict` throws. The draws come from TorchSharp's global
    /// generator as it stands; `mcDropoutSeeded` makes them repeatable.
    val mcDropout: modules: torch.nn.Module array -> passes: int -> predict: (unit -> torch.Tensor) -> Predictive

    /// MC dropout with its own seed: the dropout masks are drawn after seeding the global generator with `seed`
    /// (as `Engine.seed`), so two calls with one seed give identical draws; afterwards the CPU generator is
    /// put back to its state before the call (also when `predict` throws), so the caller's random stream is
    /// not disturbed. Otherwise as `mcDropout`.
    val mcDropoutSeeded:
        modules: torch.nn.Module array -> passes: int -> seed: int -> predict: (unit -> torch.Tensor) -> Predictive

    /// Trains `members` ensemble members: member k is created by `create k` right after the global seed is
    /// set to seed + k, then all are trained by `train`, one after another. Members are not trained on
    /// parallel threads: TorchSharp 0.107 (its optimisers included) passes temporary Scalars to libtorch
    /// that a garbage collection on another thread can free mid-call (see `TensorArithmetic`), and libtorch
    /// already spreads each operation over the cores.
    val ensemble: members: int -> seed: int -> create: (int -> 'M) -> train: ('M -> unit) -> 'M array

    /// The ensemble's predictive distribution from members' Gaussian predictions (mean, std): the mixture's
    /// mean and standard deviation √(mean σ² + var μ). With std = 0 it is the plain ensemble spread.
    val combine: predictions: Predictive array -> Predictive

    /// Coverage of central Gaussian intervals at `levels` and the ECE (mean |coverage − level|). Missing
    /// targets (NaN) are ignored.
    val calibration: levels: float array -> p: Predictive -> target: torch.Tensor -> Calibration

    /// The default levels 0.1, 0.2, …, 0.9.
    val defaultLevels: float array

    /// Recalibration by variance scaling: the factor s = √(mean z²) of the standardised residuals
    /// z = (target − mean) / std over the finite targets of a validation split, so that `rescale s` makes them
    /// unit-variance there (s > 1: the predictive was overconfident). Raises `HybridException` without finite
    /// targets or with a standard deviation ≤ 0 where a target is observed.
    val varianceScale: p: Predictive -> target: torch.Tensor -> float

    /// The predictive with its standard deviation multiplied by `scale` (> 0), the mean unchanged: apply the
    /// `varianceScale` of a validation split to the predictions of a test split.
    val rescale: scale: float -> p: Predictive -> Predictive

    /// Mean Gaussian negative log-likelihood of the targets under the predictive distribution.
    val nll: p: Predictive -> target: torch.Tensor -> float

    /// Mean continuous ranked probability score of a Gaussian predictive distribution (closed form
    /// σ[z(2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/σ); lower is better, in the units of y.
    val crps: p: Predictive -> target: torch.Tensor -> float

    /// A self-contained SVG reliability diagram (observed coverage against nominal level, with the
    /// diagonal), written to `path`. Returns the SVG text.
    val reliabilitySvg: path: string -> title: string -> c: Calibration -> string
