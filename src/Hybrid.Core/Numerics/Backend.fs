namespace Hybrid.Numerics

/// Which back end runs a compiled model's rollouts. Both give the same trajectories (to round-off) and the
/// same gradients; they share the simulator's parameters and networks.
[<RequireQualifiedAccess>]
type Backend =
    /// The generated kernels whenever the model, the scheme, the device and the save times allow them, the
    /// eager back end otherwise (`Simulator.BackendFor` says which, and why).
    | Auto
    /// TorchSharp operations: every model, scheme and device.
    | Eager
    /// Generated kernels with generated adjoints (explicit schemes, CPU, save times on the step grid); a rollout
    /// they cannot run raises `ModelException` naming the reason.
    | Kernels
