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
    /// (ImexEuler, ImexCrankNicolson; implicit diffusion coefficients may read spatial parameters and closures of the
    /// coordinates, and be negative somewhere: dense solves up to 4,096 cells) with generated adjoints (CPU; the eager
    /// back end's steps, the step before a save time off the step grid shortened; the explicit ones in float32 for
    /// float32 simulators); Dopri5 (float64 or float32) and KenCarp4 with adaptive steps on any model the kernels
    /// compile (grids, neural closures, forcings), with gradients through the discrete adjoint of the accepted steps;
    /// Rodas4 and Auto likewise (float64) on point systems, 1-D and 2-D grids (stencils of any width: block solves
    /// with 2r + 1 cells along an axis they reach r cells along, otherwise as below) and two-scale lattices, with
    /// closures over whole fields or diagnostic fields, whose Jacobian couples every cell: dense solves up to 1,000
    /// unknowns per trajectory (the eager back end's dense limit), matrix-free BiCGSTAB above (where the eager back
    /// end refuses). The adaptive schemes take the eager back end's steps (up to the iterative solves' tolerance). Rollouts with time or state events run eager. A rollout they cannot run raises `ModelException`
    /// naming the reason.
    | Kernels
