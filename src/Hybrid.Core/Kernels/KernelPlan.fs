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
    /// Its arguments as kernel expressions per cell (for a call inside a diffusion coefficient, taken at one
    /// face of the cell: fields and parameters averaged over the face's two cells).
    Args: KExpr[]
    /// Whether the network runs on whole fields (`Model.isFieldwise`: a CNN or a module over [B; arity;
    /// spatial…]) rather than on each cell's arguments ([cells; arity]).
    Fieldwise: bool
    /// The output channel the call reads (0-based; 0 for a per-cell closure).
    Output: int
}

/// What a padded copy holds.
[<RequireQualifiedAccess>]
type internal CopySource =
    /// A spatial parameter (index into `KernelPlan.Params`), read by a diffusion coefficient at the faces.
    | Param of int
    /// A diagnostic field (index into `KernelPlan.Diagnostics`), solved from the state before each right-hand side.
    | Diagnostic of int
    /// The flux through the face above each cell along one axis (`Stencils.faceFlux`, reading the state, parameters
    /// and diagnostic copies), evaluated by a generated kernel before each right-hand side (after the diagnostic
    /// fields) so that the equations take each face's flux once (`Stencils.fluxAdvection`).
    | Face of flux: KExpr

/// A padded array the kernels read at offsets from the cell (`KParamAt`): a spatial parameter, which a diffusion
/// coefficient reads at the faces, with ghost cells wrapped along the axes where the diffused field is periodic and
/// the edge value repeated elsewhere (as the eager back end's κ at faces); a diagnostic field (periodic); or the
/// fluxes through the cells' upper faces along a periodic axis (periodic: the ghost below the first cell holds the
/// flux through the last cell's upper face, the first cell's lower one).
type internal ParamCopy = {
    /// What the copy holds.
    Source: CopySource
    /// Per spatial axis: whether the ghosts wrap around (else they repeat the edge cell).
    Periodic: bool[]
}

/// A diagnostic field of the kernels: (Δₕ − κ²)ψ = f solved in TorchSharp (`EllipticSolve`, as the eager back
/// end) from f evaluated per cell by a generated kernel, before each right-hand-side evaluation; the solution is
/// written into a padded copy (`KernelPlan.ParamCopies`) that the equations read like a field.
type internal DiagnosticSolve = {
    /// The diagnostic field's name.
    Field: string
    /// κ² ≥ 0.
    Screening: float
    /// f per cell (reads fields, parameters, forcings; no closures or diagnostic fields).
    Rhs: KExpr
    /// The copy that holds the solution.
    Copy: int
    /// The equation in the user's notation (for messages).
    Equation: string
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
    /// Padded copies of spatial parameters and diagnostic fields, numbered as the copies of `KParamAt` leaves. The kernels' `inputs`
    /// (and `inputAdjoint`) arrays hold the sites' outputs, then these copies (padded layout, per trajectory).
    ParamCopies: ParamCopy[]
    /// Diagnostic fields, each solved into its padded copy before every right-hand-side evaluation.
    Diagnostics: DiagnosticSolve[]
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

    /// The face-flux copies of `plan` (`CopySource.Face`): (copy, flux per cell).
    let faces (plan: KernelPlan) : (int * KExpr)[] =
        plan.ParamCopies
        |> Array.indexed
        |> Array.choose (fun (c, copy) ->
            match copy.Source with
            | CopySource.Face flux -> Some(c, flux)
            | _ -> None)

    /// The plan of the kernel that writes `plan`'s face fluxes (`faces`), one output per face copy, on `plan`'s
    /// arrays (its inputs are `plan`'s copies).
    let facePlan (plan: KernelPlan) : KernelPlan =
        let fluxes = faces plan |> Array.map snd

        {
            plan with
                Rhs = fluxes
                RhsFast = Array.map (fun _ -> false) fluxes
                Sites = [||]
        }

    /// The arrays a kernel reads at offsets from the cell, numbered: the fields 0 … F − 1, then the parameter
    /// copies F + c.
    let readTargets (plan: KernelPlan) =
        plan.Fields.Length + plan.ParamCopies.Length

    /// The reads of `rhs` at offsets from the cell (`KRead`, `KParamAt`), each with the number of the array it
    /// reads (`readTargets`) and its offset.
    let offsetReads (plan: KernelPlan) (rhs: KExpr) : (KExpr * int * int * int) list = [
        for f, dx, dy in KExpr.reads rhs -> KRead(f, dx, dy), f, dx, dy
        for c, dx, dy in KExpr.copyReads rhs -> KParamAt(c, dx, dy), plan.Fields.Length + c, dx, dy
    ]

    /// The gather form of the adjoint of array `target` (`readTargets`): per read of it at offset o = (dx, dy) by
    /// equation f, (f, ∂F_f/∂(read) with its reads shifted by −o, dx, dy). Cell q gathers λ_f(q − o) times that
    /// derivative evaluated at q − o.
    let gatherTerms (plan: KernelPlan) (target: int) : (int * KExpr * int * int) list = [
        for f in 0 .. plan.Rhs.Length - 1 do
            let rhs = plan.Rhs[f]

            for leaf, h, dx, dy in offsetReads plan rhs do
                if h = target then
                    let d = KExpr.derivative leaf rhs

                    if d <> KConst 0.0 then
                        yield f, KExpr.shiftReads -dx -dy d, dx, dy
    ]
