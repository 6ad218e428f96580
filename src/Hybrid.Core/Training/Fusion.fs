namespace Hybrid.Training

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// How the physics branch F_θ(z) and the neural branch G_φ(z) are combined.
[<RequireQualifiedAccess>]
type FusionMode =
    /// ŷ = α·F + (1 − α)·G with one learnable α = sigmoid(raw), starting at `initialAlpha` ∈ (0, 1).
    | Scalar of initialAlpha: float
    /// ŷ = α(z, F)·F + (1 − α(z, F))·G with a per-point gate α = sigmoid(MLP([z; F])) ("physics-informed
    /// attention"); the MLP has `features + 1` inputs (the pointwise features of z, then F), `width` units
    /// and one hidden layer.
    | Gate of features: int * width: int
    /// ŷ = F + G: the neural branch learns the physics branch's error.
    | Residual

/// The fusion layer. Its learnable parts (α's raw value or the gate network) are its parameters, to be
/// put in the φ group (or a group of their own).
type Fusion
    /// Creates the fusion layer of `mode`, its parameters in `dtype` (default: the engine precision).
    (mode: FusionMode, ?dtype: torch.ScalarType) as this =
    inherit torch.nn.Module("fusion")

    do Engine.init ()

    let dt = defaultArg dtype (Engine.dtype ())

    let raw =
        match mode with
        | FusionMode.Scalar a ->
            if not (a > 0.0 && a < 1.0) then
                raise (
                    HybridException(
                        $"Fusion: the initial α must lie strictly between 0 and 1, got {a}. Use e.g. FusionMode.Scalar 0.5."
                    )
                )

            let t =
                torch.tensor (log (a / (1.0 - a)), dtype = dt, device = Engine.torchDevice ())

            Some(torch.nn.Parameter(t))
        | _ -> None

    let gate =
        match mode with
        | FusionMode.Gate(features, width) -> Some(new Mlp("gate", features + 1, 1, width, 1, dtype = dt))
        | _ -> None

    do
        raw |> Option.iter (fun p -> this.register_parameter ("alpha_raw", p))
        gate |> Option.iter (fun g -> this.register_module ("gate", g))

    let mutable lastAlpha = nan

    /// The fusion mode.
    member _.Mode = mode

    /// The weight of the physics branch: α for `Scalar` (a 0-dim tensor), the per-point gate for `Gate`
    /// (shape of `physics`), 1 for `Residual`. `z` are the pointwise features [..., features] (Gate only).
    member _.Weight(z: torch.Tensor, physics: torch.Tensor) : torch.Tensor =
        match mode, raw, gate with
        | FusionMode.Scalar _, Some r, _ -> torch.sigmoid r
        | FusionMode.Gate(features, _), _, Some g ->
            let zf = if z.dim () = physics.dim () then z.unsqueeze (-1L) else z

            if zf.shape[zf.shape.Length - 1] <> int64 features then
                raise (
                    HybridException(
                        $"Fusion gate expects {features} pointwise features in z (last dimension), got shape [{System.String.Join(',', z.shape)}]."
                    )
                )

            torch.sigmoid (g.forward(torch.cat ([| zf; physics.unsqueeze (-1L) |], -1L)).squeeze (-1L))
        | _ -> torch.ones_like physics

    /// ŷ from the physics prediction F_θ(z), the neural prediction G_φ(z) (same shape) and, for a gate, the
    /// pointwise features z. Records the mean α for `Alpha`.
    member f.Forward(z: torch.Tensor, physics: torch.Tensor, neural: torch.Tensor) : torch.Tensor =
        if physics.shape <> neural.shape then
            raise (
                HybridException(
                    $"Fusion: physics branch has shape [{System.String.Join(',', physics.shape)}] but neural branch [{System.String.Join(',', neural.shape)}]. Both must predict the same shape."
                )
            )

        match mode with
        | FusionMode.Residual ->
            lastAlpha <- 1.0
            physics .+ neural
        | _ ->
            let a = f.Weight(z, physics)

            (use _ = torch.no_grad ()
             lastAlpha <- a.mean().ToDouble())

            a * physics .+ (1.0 .- a) * neural

    /// The reported α: the learned scalar for `Scalar`, the mean gate of the last `Forward` for `Gate`
    /// (NaN before the first call), 1 for `Residual`.
    member _.Alpha: float =
        match mode, raw with
        | FusionMode.Scalar _, Some r ->
            use _ = torch.no_grad ()
            use s = torch.sigmoid r
            s.ToDouble()
        | FusionMode.Residual, _ -> 1.0
        | _ -> lastAlpha
