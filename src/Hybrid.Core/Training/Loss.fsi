namespace Hybrid.Training

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// How the weight λ of the physics residual changes over training.
[<RequireQualifiedAccess>]
type LambdaSchedule =

    /// λ fixed.
    | Constant of float

    /// λ moves linearly from `start` to `stop` over the first `epochs` epochs, then stays at `stop`.
    | Linear of start: float * stop: float * epochs: int

    /// λ = start·factorᵉᵖᵒᶜʰ, capped at `cap`.
    | Exponential of start: float * factor: float * cap: float

/// Loss terms: data misfit (MSE or Gaussian NLL, with missing values masked), physics residual,
/// penalties, and the λ schedule. All return 0-dim differentiable tensors.
[<RequireQualifiedAccess>]
module Loss =

    /// Mask of observed entries: 1 where `target` is finite, 0 where it is NaN (missing), same dtype. (The
    /// losses refuse ±∞ targets before masking: see `mse`.)
    val observedMask: target: torch.Tensor -> torch.Tensor

    /// Mean squared error over the observed entries of `target`; missing values (NaN) are masked. Raises
    /// `HybridException` when the target holds ±∞ (with the count and the first position): ±∞ is not missing.
    val mse: prediction: torch.Tensor -> target: torch.Tensor -> torch.Tensor

    /// Data term for a fused model with branch supervision: MSE(ŷ) + w·(MSE(F) + MSE(G)). With w > 0 each
    /// branch is also fitted on its own, so α learns which branch to trust instead of the branches
    /// compensating each other's errors through α (w = 0 gives the plain fused MSE).
    val fusedMse:
        branchWeight: float ->
        fused: torch.Tensor ->
        physics: torch.Tensor ->
        neural: torch.Tensor ->
        target: torch.Tensor ->
            torch.Tensor

    /// Gaussian negative log-likelihood ½[log 2πσ² + (y − μ)²/σ²] averaged over observed entries, for a model
    /// that predicts a mean and a standard deviation σ > 0 (same shape as the target). Missing values (NaN)
    /// are masked; ±∞ targets are refused as in `mse`.
    val gaussianNll: mean: torch.Tensor -> std: torch.Tensor -> target: torch.Tensor -> torch.Tensor

    /// The physics residual term: mean over fields of the mean-square residual 𝒫 = ∂ₜû − RHS(û) of the
    /// predicted trajectory `values` (one tensor per field, [S; B; spatial…]) at `times`.
    val residual:
        dyn: Dynamics ->
        theta: torch.Tensor array ->
        form: ResidualForm ->
        times: float array ->
        values: torch.Tensor array ->
            torch.Tensor

    /// Gaussian prior penalty ½((θ − mean)/sd)² summed over the entries of a parameter value.
    val prior: mean: float -> sd: float -> value: torch.Tensor -> torch.Tensor

    /// Smoothness penalty: mean squared first difference along every spatial axis of a field [B; spatial…]
    /// (or of a spatial parameter [spatial…] when `batched` is false).
    val smoothness: batched: bool -> field: torch.Tensor -> torch.Tensor

    /// λ at an epoch (0-based).
    val lambdaAt: schedule: LambdaSchedule -> epoch: int -> float
