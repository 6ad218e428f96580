namespace Hybrid.Kernels

open Hybrid
open Hybrid.Numerics

/// A boundary rule for ghost cells. Dirichlet and Neumann values are kernel expressions of the time, the
/// coordinates (the normal one at the boundary face, the tangential one at the ghost's cell) and scalar
/// parameters, evaluated when the ghosts are filled.
[<RequireQualifiedAccess>]
type internal GhostRule =
    | Periodic
    | Dirichlet of value: KExpr
    | Neumann of gradient: KExpr
    | NoFlux

/// One call of a neural closure in the equations: which closure, and its arguments per cell.
type internal ClosureSite = {
    /// The closure's name.
    Name: string
    /// Its arguments as kernel expressions (pointwise).
    Args: KExpr[]
}

/// Everything a generated kernel needs to know about a model: the per-cell right-hand side of every field as a
/// kernel expression, the ghost-cell rules, and the layout of the arrays it runs on.
///
/// Two-scale lattices (K slow sites, J fast sites each) have two rings: slow fields on K sites (the layout
/// `Nx`, `Ghost`, `PaddedCells`), fast fields on one ring of K·J sites, site n = k·J + j (`FastCells`,
/// `FastGhost`, `FastPaddedCells`). A `KRead(f, dx, _)` counts `dx` in the sites of field f's own ring, from
/// the site of the loop that evaluates it: in a fast loop a slow field is read at the parent site n / J, in
/// a slow loop a fast field at site k·J (so Σⱼ becomes J reads at dx = j + m).
type internal KernelPlan = {
    /// The model the plan was lowered from.
    Model: Model
    /// Where the fields live.
    Grid: Grid
    /// Field names, in state order (the model's declaration order).
    Fields: string[]
    /// Parameters in declaration order; the kernel's θ array holds their constrained values, a scalar as one
    /// entry, a spatial parameter as one entry per (slow) cell, x-major, from `ParamOffsets`.
    Params: string[]
    /// Per parameter: whether it has one value per cell (`ParamShape.Spatial`).
    ParamSpatial: bool[]
    /// Per parameter: where its values start in θ.
    ParamOffsets: int[]
    /// Length of θ (scalars plus one value per cell of each spatial parameter).
    ThetaLength: int
    /// ∂(field)/∂t per cell, one per field.
    Rhs: KExpr[]
    /// Per entry of `Rhs`: evaluated in the loop over the fast ring (a fast field's equation).
    RhsFast: bool[]
    /// Ghost cells on each side of each spatial axis (slow fields).
    Ghost: int
    /// Per field, per spatial axis: the rules on the low and the high side.
    Rules: (GhostRule * GhostRule)[][]
    /// Neural closure call sites, numbered as the `KInput` leaves of `Rhs`.
    Sites: ClosureSite[]
    /// Forcings read by the equations, numbered as the `KData` leaves of `Rhs`.
    Forcings: string[]
    /// Forcings read inside a diffusion coefficient: taken at the cell, so they must be uniform in space.
    FaceForcings: int[]
    /// Cells along x (1 on 0-D grids).
    Nx: int
    /// Cells along y (1 on grids with fewer than two axes).
    Ny: int
    /// Unknowns of one field per trajectory (Nx·Ny).
    Cells: int
    /// Padded extent along x (cells plus ghosts; no ghosts on 0-D grids).
    Px: int
    /// Padded extent along y (1 on grids with fewer than two axes).
    Py: int
    /// Padded values of one field per trajectory (Px·Py).
    PaddedCells: int
    /// Per field: whether it lives on the fast ring of a two-scale lattice.
    Fast: bool[]
    /// Fast sites per slow site, J (0 without a fast ring).
    FastSites: int
    /// Ghost sites on each side of the fast ring.
    FastGhost: int
    /// Sites of the fast ring, K·J (0 without one).
    FastCells: int
    /// Padded values of a fast field per trajectory (K·J plus ghosts).
    FastPaddedCells: int
}

/// The array layout of one field of a plan.
[<RequireQualifiedAccess>]
module internal KernelPlan =

    /// Unknowns of field `f` per trajectory.
    let cells (plan: KernelPlan) (f: int) =
        if plan.Fast[f] then plan.FastCells else plan.Cells

    /// Padded values of field `f` per trajectory.
    let padded (plan: KernelPlan) (f: int) =
        if plan.Fast[f] then
            plan.FastPaddedCells
        else
            plan.PaddedCells
