namespace Hybrid.Kernels

open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

/// Lowers a checked `Model` to a `KernelPlan`: spatial operators become explicit stencils with exactly the
/// discretisation of `Numerics.Operators` (ghost cells as `Numerics.Boundary.pad`), so kernel and eager
/// simulators agree to round-off.
[<RequireQualifiedAccess>]
module internal Lowering =

    /// The ghost rule of one boundary condition of `field` (`side` names it in messages), with Dirichlet and
    /// Neumann values lowered (they may use t, x, y, constants and scalar parameters).
    let private ghostRule (lowering: ExprLowering) (field: string) (side: string) (condition: BoundaryCondition) =
        let value (e: Expr) =
            let where = $"the boundary value on side {side}"
            let v = lowering.Lower(field, where, false, e)

            let refuse (what: string) =
                raise (
                    KernelRefusal.cannotCompile
                        $"{what} in {where} of '{field}' ({e})"
                        "Boundary values may use t, x, y, constants and scalar parameters."
                )

            if not (KExpr.inputs v).IsEmpty then
                refuse "a neural closure"

            if not (KExpr.data v).IsEmpty then
                refuse "a forcing"

            if KExpr.parameters v |> List.exists (fun p -> lowering.ParamSpatial[p]) then
                refuse "a spatial parameter"

            v

        match condition with
        | BoundaryCondition.Periodic -> GhostRule.Periodic
        | BoundaryCondition.NoFlux -> GhostRule.NoFlux
        | BoundaryCondition.Dirichlet e -> GhostRule.Dirichlet(value e)
        | BoundaryCondition.Neumann e -> GhostRule.Neumann(value e)

    /// Per field, per axis: the ghost rules on the low and the high side (the resolved conditions; periodic on a
    /// lattice, none on a point).
    let private ghostRules (system: ResolvedSystem) (lowering: ExprLowering) =
        let sides = [| Side.Left, Side.Right; Side.Bottom, Side.Top |]

        system.Fields
        |> Array.mapi (fun i f ->
            if system.Grid.IsLattice then
                [| GhostRule.Periodic, GhostRule.Periodic |]
            else
                system.Conditions[i]
                |> Array.mapi (fun axis (low, high) ->
                    let lowSide, highSide = sides[axis]
                    ghostRule lowering f $"{lowSide}" low, ghostRule lowering f $"{highSide}" high))

    /// The widest stencil reach of the fields of one ring (slow or fast) in the right-hand sides (on the slow ring,
    /// reads of padded copies included).
    let private reach (isFast: bool[]) (rhs: KExpr[]) (fast: bool) =
        rhs
        |> Array.collect (fun e ->
            let copies = if fast then [] else KExpr.copyReads e

            KExpr.reads e
            |> List.filter (fun (f, _, _) -> isFast[f] = fast)
            |> List.append copies
            |> List.map (fun (_, dx, dy) -> max (abs dx) (abs dy))
            |> Array.ofList)
        |> Array.fold max 0

    /// The plan of right-hand sides `rhs` lowered by `lowering` from `system`, with ghost cells for the widest
    /// stencil reach of `rhs`, the closure sites' arguments (inside a diffusion coefficient they read the face's
    /// two cells), the face fluxes (`CopySource.Face`) and `alsoReads` (expressions evaluated on the same arrays,
    /// e.g. an IMEX stiff part).
    let private planOf
        (system: ResolvedSystem)
        (lowering: ExprLowering)
        (rhs: KExpr[])
        (diagnostics: DiagnosticSolve[])
        (alsoReads: KExpr[])
        =
        let model, grid = system.Model, system.Grid
        let isFast, fastSites = system.IsFast, system.FastSites

        let faces =
            lowering.ParamCopies
            |> Array.choose (fun c ->
                match c.Source with
                | CopySource.Face flux -> Some flux
                | _ -> None)

        let all = Array.concat [ rhs; diagnostics |> Array.map _.Rhs; faces; alsoReads ]
        let args = lowering.Sites |> Array.collect _.Args

        let ghost =
            if grid.Dims = 0 then
                0
            else
                max 1 (reach isFast (Array.append all args) false)

        let fastGhost = if fastSites = 0 then 0 else max 1 (reach isFast all true)
        let rules = ghostRules system lowering
        let nx = if grid.Dims >= 1 then grid.Axes[0].Cells else 1
        let ny = if grid.Dims >= 2 then grid.Axes[1].Cells else 1

        let paramOffsets =
            lowering.ParamSpatial
            |> Array.map (fun s -> if s then nx * ny else 1)
            |> Array.scan (+) 0

        let px = if grid.Dims >= 1 then nx + 2 * ghost else 1
        let py = if grid.Dims >= 2 then ny + 2 * ghost else 1
        let fastCells = nx * fastSites

        {
            Model = model
            Grid = grid
            Fields = system.Fields
            Params = lowering.ParamNames
            ParamSpatial = lowering.ParamSpatial
            ParamOffsets = paramOffsets[.. lowering.ParamNames.Length - 1]
            ThetaLength = Array.last paramOffsets
            Rhs = rhs
            RhsFast = isFast
            Ghost = ghost
            Rules = rules
            Sites = lowering.Sites
            ParamCopies = lowering.ParamCopies
            Diagnostics = diagnostics
            Forcings = lowering.Forcings
            FaceForcings = lowering.FaceForcings
            Nx = nx
            Ny = ny
            Cells = nx * ny
            Px = px
            Py = py
            PaddedCells = px * py
            Fast = isFast
            FastSites = fastSites
            FastGhost = fastGhost
            FastCells = fastCells
            FastPaddedCells = if fastSites = 0 then 0 else fastCells + 2 * fastGhost
        }

    /// The diagnostic field `d` in the refusals.
    let private diagnosticConstruct (d: EllipticEquation) (what: string) =
        $"the diagnostic field '{d.Field}' (elliptic solve {Print.ellipticEquation Notation.Unicode d}){what}"

    /// The diagnostic fields, each solved into its padded copy before every right-hand side: periodic on every
    /// axis (a spectral solve in TorchSharp), with a right-hand side that reads no closure and no diagnostic field.
    /// Raises `ModelException` naming the diagnostic field otherwise.
    let private diagnostics (system: ResolvedSystem) (lowering: ExprLowering) =
        system.Diagnostics
        |> Array.mapi (fun i d ->
            let periodic =
                system.DiagnosticConditions[i]
                |> Array.forall (fun sides ->
                    match sides with
                    | BoundaryCondition.Periodic, BoundaryCondition.Periodic -> true
                    | _ -> false)

            if not periodic then
                raise (
                    KernelRefusal.cannotCompile
                        (diagnosticConstruct d " with walls")
                        "The kernels solve periodic diagnostic fields only: Backend.Auto runs this model eagerly (Backend.Eager)."
                )

            let rhs = lowering.Lower(d.Field, "the elliptic equation", false, d.Rhs)

            if not (KExpr.inputs rhs).IsEmpty || lowering.ReadsDiagnostic rhs then
                raise (
                    KernelRefusal.cannotCompile
                        (diagnosticConstruct d ", whose right-hand side calls a closure or reads a diagnostic field")
                        "Backend.Auto runs this model eagerly (Backend.Eager)."
                )

            {
                Field = d.Field
                Screening = d.Screening
                Rhs = rhs
                Copy = lowering.DiagnosticCopy i
                Equation = Print.ellipticEquation Notation.Unicode d
            })

    /// Lowers `model`; raises `ModelException` naming the field and the construct the kernel path lacks
    /// (diagnostic fields with walls; operators of non-field expressions, closures,
    /// forcings and spatial parameters on the fast ring of a two-scale lattice, closures, forcings or spatial
    /// parameters in boundary values). Closure calls become `KInput` sites, evaluated by TorchSharp (inside a
    /// diffusion coefficient, one per face direction); spatial parameters inside a diffusion coefficient are
    /// read from padded copies (`ParamCopies`).
    ///
    /// With `faceFluxes`, flux advection along periodic axes reads the fluxes from face copies
    /// (`CopySource.Face`: one flux per face, written by a kernel of its own before each right-hand side, as
    /// `Stepper` does); without, each cell computes the fluxes through both its faces (the plan is one kernel, as
    /// Hybrid.Gpu runs it).
    let lowerWith (faceFluxes: bool) (system: ResolvedSystem) : KernelPlan =
        let lowering = ExprLowering(system, faceFluxes)
        let solves = diagnostics system lowering

        let rhs =
            system.Fields
            |> Array.mapi (fun i f -> lowering.LowerEquation(f, system.IsFast[i], system.Equations[i]))

        planOf system lowering rhs solves [||]

    /// `lowerWith` face copies: the plan the CPU kernels (`Stepper`) run.
    let lower (system: ResolvedSystem) : KernelPlan = lowerWith true system

    /// Lowers `model` for an IMEX scheme with the split `split` (per field, its stiff and explicit signed terms,
    /// `ImexSplit.split`): the plan of the explicit parts (with the diagnostic fields, which they may read), and the
    /// plan of the stiff parts (0 for a field without one; linear diffusion of the field itself, whose coefficient
    /// reads no field, time or diagnostic field, but may read scalar and spatial parameters, the coordinates and
    /// closures of those) on the same arrays (same ghost width). The stiff plan is lowered on its own, so its closure
    /// sites and padded copies are only those its coefficients read (numbered from 0), and it has no forcings or
    /// diagnostic solves (`ImexSplit` keeps coefficients that read forcings explicit). Raises like `lower`.
    let lowerSplit (system: ResolvedSystem) (split: ((float * Expr) list * (float * Expr) list)[]) =
        let lowering = ExprLowering(system, true)
        let solves = diagnostics system lowering

        let explicitRhs =
            system.Fields
            |> Array.mapi (fun i f ->
                let equation =
                    match split[i] with
                    | [], _ -> system.Equations[i]
                    | _, rest -> ImexSplit.sum rest

                lowering.LowerEquation(f, system.IsFast[i], equation))

        let stiffLowering = ExprLowering(system, false)

        let stiffRhs =
            system.Fields
            |> Array.mapi (fun i f ->
                let stiff = ImexSplit.sum (fst split[i])
                let k = stiffLowering.Lower(f, "the implicit diffusion", system.IsFast[i], stiff)

                // `ImexSplit` keeps a coefficient that reads a forcing (data in time) explicit.
                if not (KExpr.data k).IsEmpty then
                    invalidOp $"The implicit diffusion of '{f}' ({Print.expr Notation.Unicode stiff}) reads a forcing."

                k)

        // The stiff plan's reads (its closures' arguments too) widen the explicit plan's ghosts: both run on its arrays.
        let stiffReads = Array.append stiffRhs (stiffLowering.Sites |> Array.collect _.Args)

        let plan = planOf system lowering explicitRhs solves stiffReads

        plan,
        {
            plan with
                Rhs = stiffRhs
                Sites = stiffLowering.Sites
                ParamCopies = stiffLowering.ParamCopies
                Diagnostics = [||]
                Forcings = [||]
                FaceForcings = [||]
        }
