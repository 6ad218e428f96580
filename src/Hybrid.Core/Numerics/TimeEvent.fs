namespace Hybrid.Numerics

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// A time event of a rollout: at `Time` the integrator stops exactly, the state jumps to `Jump u`, and the
/// integration restarts from there (a dose, a bolus, a forcing switched on). Every scheme honours it: fixed steps
/// land on the event time, adaptive ones restart their step control there.
type TimeEvent = {
    /// When it acts: finite, ≥ T0, at most the last save time. A save time equal to it returns the state just
    /// before the jump (the trough of a dose).
    Time: float
    /// The state just after the event from the state just before (one tensor per field, in state order, each
    /// [B; spatial…]). Differentiable: gradients flow through it (to a dose amount, for instance).
    Jump: torch.Tensor[] -> torch.Tensor[]
}

/// Constructors of time events.
[<RequireQualifiedAccess>]
module TimeEvent =

    /// A dose: `amount` (a tensor broadcastable to the field, e.g. a 0-dim one, possibly a parameter) added to
    /// field `field` of a system with fields `fields` at `time`. Raises `HybridException` naming the fields when
    /// `field` is not one of them.
    let dose (fields: string[]) (field: string) (time: float) (amount: torch.Tensor) : TimeEvent =
        match Array.tryFindIndex ((=) field) fields with
        | None ->
            let names = String.Join(", ", fields)

            raise (
                HybridException(
                    $"A dose at t = {time} names field '{field}', which the system does not have (fields: {names}). Use one of those names."
                )
            )
        | Some index -> {
            Time = time
            Jump = fun u -> u |> Array.mapi (fun i x -> if i = index then x .+ amount else x)
          }
