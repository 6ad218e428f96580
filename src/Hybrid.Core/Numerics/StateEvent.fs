namespace Hybrid.Numerics

open TorchSharp

/// Which sign changes of an event's condition trigger it.
[<RequireQualifiedAccess>]
type Crossing =
    /// From negative to zero or positive.
    | Rising
    /// From positive to zero or negative (a ball reaching the floor: height falls through 0).
    | Falling
    /// Either way.
    | Either

/// A state event of a rollout: where the condition g(t, u) of a trajectory crosses zero (in `Direction`), the
/// adaptive schemes (`Dopri5`, `Rodas4`, `Auto`) locate the crossing on their continuous extension, stop there,
/// replace that trajectory's state by `Jump u` and restart (a bounce, a dose when a level falls below a threshold,
/// a switch). Gradients include the event time's dependence on the parameters and the initial state (the jump
/// conditions of the sensitivities: δt* = −δg / ġ, and δu⁺ = J_u (δu⁻ + f⁻ δt*) − f⁺ δt*), so gradients through
/// a rollout with state events are those of the exact event times.
type StateEvent = {
    /// Its name in messages and in `Rollout.lastEvents ()`.
    Name: string
    /// g(t, u): one value per trajectory, a tensor [B], from the state (one tensor per field, [B; spatial…]).
    /// Smooth in u, so that the crossing can be located to round-off.
    Condition: float -> torch.Tensor[] -> torch.Tensor
    /// Which crossings count.
    Direction: Crossing
    /// The state just after the event from the state just before (every trajectory's; only those that crossed
    /// take it). Differentiable: gradients flow through it (to a restitution coefficient, for instance).
    Jump: torch.Tensor[] -> torch.Tensor[]
}
