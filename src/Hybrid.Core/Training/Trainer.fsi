namespace Hybrid.Training

open TorchSharp
open Hybrid

/// Joint optimisation of θ and φ: Adam with parameter groups and schedules, gradient clipping, growing
/// horizons, λ schedules, validation with early stopping, checkpoints and resume, progress; and LBFGS for
/// θ-only fits. Runs repeat exactly for one seed (on one device and thread count).
[<RequireQualifiedAccess>]
module Trainer =

    /// 100 epochs of 1 step, seed 0, no groups (set them), no clipping, horizon 1, λ = 0, validate every
    /// epoch, no early stopping, no checkpoints, silent.
    val defaults: TrainOptions

    /// A parameter group with a constant rate.
    val group: name: string -> rate: float -> parameters: Modules.Parameter seq -> ParamGroup

    /// The horizon of an epoch.
    val horizonAt: h: HorizonSchedule -> epoch: int -> int

    /// The learning-rate factor of a schedule at an epoch.
    val rateFactor: s: LrSchedule -> epoch: int -> epochs: int -> float

    val internal epochSeed: seed: int -> epoch: int -> int

    /// Trains with Adam (one parameter group per `ParamGroup`). Every step runs in its own dispose scope;
    /// losses are reduced to numbers. At the start of every epoch TorchSharp's global generator is reseeded
    /// from (seed, epoch) and `TrainContext.Random` is created from the same pair, so a resumed run repeats
    /// an uninterrupted one exactly. Raises `HybridException` on empty groups, a non-scalar loss or a
    /// checkpoint made with another seed; a non-finite loss, or a non-finite gradient under a finite loss (checked
    /// before every optimizer step, so no NaN reaches the parameters), is a `DivergenceException`, which
    /// `TrainOptions.Recoveries` rolls back and retries at half the rates before it fails the run. Runs inside `TorchGuard`: a call while another thread runs
    /// Hybrid is refused with `InvalidOperationException`, and so is any call from another thread while it runs.
    val train: o: TrainOptions -> objective: Objective -> TrainResult

    /// Fits parameters (typically θ only) with L-BFGS and a strong-Wolfe line search (`LbfgsOptimizer`, default
    /// settings except the first step's length `rate`): `iterations` outer steps of at most `maxIter` iterations
    /// each, keeping the history between them; `loss` is evaluated in a fresh dispose scope per call. Returns
    /// the loss after each outer step (once converged, the remaining entries repeat the final loss). For the
    /// stop reason, evaluation counts and other settings use `Lbfgs.minimize` or `LbfgsOptimizer`. Runs inside
    /// `TorchGuard` (see `train`).
    val lbfgs:
        parameters: Modules.Parameter array ->
        rate: float ->
        iterations: int ->
        maxIter: int ->
        loss: (unit -> torch.Tensor) ->
            float array
