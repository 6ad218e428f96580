namespace Hybrid.Training

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic

/// A fused prediction ŷ = α·F_θ + (1 − α)·G_φ per field, with both branches kept (for `Loss.fusedMse`).
type FusedTrajectory = {
    /// ŷ per field, each of its branches' shape.
    Fused: torch.Tensor[]
    /// The physics branch F_θ per field (a simulator's rollout, or whatever the caller fused).
    Physics: torch.Tensor[]
    /// The neural branch G_φ per field, as given.
    Neural: torch.Tensor[]
}

/// A simulator's rollout fused with a neural branch over the same points (`Fusion`): the α-fusion of the proposal,
/// ŷ = α·F_θ(z) + (1 − α)·G_φ(z), with α a learned scalar or a per-point gate, differentiable in θ, φ and α.
[<RequireQualifiedAccess>]
module FusedRollout =

    let private shapeText (t: torch.Tensor) =
        "[" + System.String.Join(", ", t.shape) + "]"

    /// Fuses the physics branch `physics` (F per field) with the neural branch `neural` (G per field, each of its
    /// field's shape): ŷ_f = s_f·fusion.Forward(z, F_f / s_f, G_f / s_f) with s_f = `scales[f]` > 0, the field's
    /// typical magnitude (a gate then sees F in units of order one; for a scalar α the scales cancel), and z =
    /// `time` broadcast to the fields' shape: the one pointwise feature a gate sees besides F, so a gate must be
    /// `FusionMode.Gate(1, width)`. Every field must have the same shape (they are fused in one call, so `fusion.Alpha`
    /// is the mean weight over every field and point).
    let fuse
        (fusion: Fusion)
        (scales: float[])
        (time: torch.Tensor)
        (physics: torch.Tensor[])
        (neural: torch.Tensor[])
        : FusedTrajectory =
        let n = physics.Length

        if n = 0 || neural.Length <> n || scales.Length <> n then
            raise (
                HybridException(
                    $"FusedRollout: {n} physics fields, {neural.Length} neural fields and {scales.Length} scales; give one neural prediction and one scale per field (at least one)."
                )
            )

        scales
        |> Array.iteri (fun f s ->
            if not (s > 0.0 && System.Double.IsFinite s) then
                raise (
                    HybridException(
                        $"FusedRollout: scales[{f}] = {s}; a field's scale is a positive number, its typical magnitude (e.g. 1.0)."
                    )
                ))

        for f in 0 .. n - 1 do
            if physics[f].shape <> neural[f].shape then
                raise (
                    HybridException(
                        $"FusedRollout: field {f} has shape {shapeText physics[f]} in the physics branch but {shapeText neural[f]} in the neural branch; the neural branch must predict the same points."
                    )
                )

            if physics[f].shape <> physics[0].shape then
                raise (
                    HybridException(
                        $"FusedRollout: field {f} has shape {shapeText physics[f]}, field 0 {shapeText physics[0]}; fuse fields of one shape together (call fuse once per shape)."
                    )
                )

        let scaled (values: torch.Tensor[]) =
            torch.stack (Array.map2 (fun (v: torch.Tensor) (s: float) -> v ./ s) values scales, -1L)

        let f, g = scaled physics, scaled neural
        let z = time.to_type(f.dtype).unsqueeze(-1L).expand_as f
        let y = fusion.Forward(z, f, g)

        {
            Fused = Array.init n (fun i -> y.select (-1L, int64 i) .* scales[i])
            Physics = physics
            Neural = neural
        }

    /// Rolls `sim` out from `u0` under `options` (F, one tensor per field, [S; B; spatial…]) and fuses it with the
    /// neural branch `neural` (G per field, the same shape: e.g. another simulator's rollout from the same state, or a
    /// network's prediction at the save times) by `fuse`, z the save time over the last save time (0 … 1).
    let run
        (fusion: Fusion)
        (scales: float[])
        (sim: Simulator)
        (u0: torch.Tensor[])
        (options: RolloutOptions)
        (neural: torch.Tensor[])
        : FusedTrajectory =
        let physics = sim.Simulate(u0, options).Values
        let times = options.SaveTimes
        let last = times[times.Length - 1]
        let span = if last > 0.0 then last else 1.0
        let shape = physics[0].shape

        let time =
            torch
                .tensor(times |> Array.map (fun t -> t / span), dtype = physics[0].dtype, device = physics[0].device)
                .reshape(Array.append [| int64 times.Length |] (Array.create (shape.Length - 1) 1L))
                .expand (shape)

        fuse fusion scales time physics neural
