namespace Hybrid.Numerics

/// Which back end runs a compiled model's rollouts. Both give the same trajectories (to round-off) and the
/// same gradients; they share the simulator's parameters and networks.
[<RequireQualifiedAccess>]
type Backend =
    /// The generated kernels whenever the model, the scheme, the device and the events allow them, the
    /// eager back end otherwise (`Simulator.BackendFor` says which, and why).
    | Auto
    /// TorchSharp operations: every model, scheme and device.
    | Eager
    /// Generated kernels: the explicit fixed-step schemes (Euler, Heun, SspRk3, Rk4) and the fixed-step IMEX ones
    /// (ImexEuler, ImexCrankNicolson) with generated adjoints (CPU; the eager back end's steps, the step before a
    /// save time off the step grid shortened); Dopri5, and KenCarp4 with implicit diffusion, with adaptive steps on
    /// any model the kernels compile (grids, neural closures, forcings), with gradients through the discrete adjoint
    /// of the accepted steps (float64); Rodas4 and Auto likewise on point systems and 1-D and 2-D grids whose stencil
    /// reaches the nearest neighbours only, without neural closures or diagnostic fields. The adaptive schemes take
    /// the eager back end's steps. Rollouts with time or state events run eager. A rollout they cannot run raises
    /// `ModelException` naming the reason.
    | Kernels
