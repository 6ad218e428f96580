namespace Hybrid.Kernels

open Hybrid
open Hybrid.Numerics

/// Lowers a checked `Model` to a `KernelPlan`: spatial operators become explicit stencils with exactly the
/// discretisation of `Numerics.Operators` (ghost cells as `Numerics.Boundary.pad`), so kernel and eager
/// simulators agree to round-off.
[<RequireQualifiedAccess>]
module internal Lowering =

    /// The ghost rule of `field` on `side`: its boundary condition, with Dirichlet and Neumann values lowered
    /// (they may use t, x, y, constants and scalar parameters).
    let private ghostRule (model: Model) (lowering: ExprLowering) (field: string) (side: Side) =
        let value (e: Expr) =
            let where = $"the boundary value on side {side}"
            let v = lowering.Lower(field, where, false, e)

            let refuse (what: string) =
                raise (
                    ModelException(
                        $"The generated kernels cannot compile {what} in {where} of '{field}' ({e}). Boundary values may use t, x, y, constants and scalar parameters."
                    )
                )

            if not (KExpr.inputs v).IsEmpty then
                refuse "a neural closure"

            if not (KExpr.data v).IsEmpty then
                refuse "a forcing"

            if KExpr.parameters v |> List.exists (fun p -> lowering.ParamSpatial[p]) then
                refuse "a spatial parameter"

            v

        match Checks.boundaryOf model field side with
        | BoundaryCondition.Periodic -> GhostRule.Periodic
        | BoundaryCondition.NoFlux -> GhostRule.NoFlux
        | BoundaryCondition.Dirichlet e -> GhostRule.Dirichlet(value e)
        | BoundaryCondition.Neumann e -> GhostRule.Neumann(value e)

    /// Per field, per axis: the ghost rules on the low and the high side.
    let private ghostRules (model: Model) (lowering: ExprLowering) =
        let rule = ghostRule model lowering

        lowering.Fields
        |> Array.map (fun f ->
            match model.Domain with
            | Domain.Interval _ -> [| rule f Side.Left, rule f Side.Right |]
            | Domain.Rectangle _ -> [| rule f Side.Left, rule f Side.Right; rule f Side.Bottom, rule f Side.Top |]
            | Domain.Lattice _ -> [| GhostRule.Periodic, GhostRule.Periodic |]
            | Domain.Point -> [||])

    /// The widest stencil reach of the fields of one ring (slow or fast) in the right-hand sides.
    let private reach (isFast: bool[]) (rhs: KExpr[]) (fast: bool) =
        rhs
        |> Array.collect (fun e ->
            KExpr.reads e
            |> List.filter (fun (f, _, _) -> isFast[f] = fast)
            |> List.map (fun (_, dx, dy) -> max (abs dx) (abs dy))
            |> Array.ofList)
        |> Array.fold max 0

    /// Lowers `model`; raises `ModelException` naming the field and the construct the kernel path lacks
    /// (operators of non-field expressions, closures inside a diffusion coefficient, closures, forcings and
    /// spatial parameters on the fast ring of a two-scale lattice, spatial parameters inside a diffusion
    /// coefficient, closures, forcings or spatial parameters in boundary values). Closure calls become `KInput`
    /// sites, evaluated by TorchSharp.
    let lower (model: Model) : KernelPlan =
        Checks.compilable model
        let grid = Grid.ofDomain model.Domain
        let lowering = ExprLowering(model, grid)
        let fields, isFast, fastSites = lowering.Fields, lowering.IsFast, lowering.FastSites

        let rhs =
            fields
            |> Array.mapi (fun i f -> lowering.Lower(f, "the equation", isFast[i], (Checks.equationOf model f).Rhs))

        let ghost = if grid.Dims = 0 then 0 else max 1 (reach isFast rhs false)
        let fastGhost = if fastSites = 0 then 0 else max 1 (reach isFast rhs true)
        let rules = ghostRules model lowering
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
            Fields = fields
            Params = lowering.ParamNames
            ParamSpatial = lowering.ParamSpatial
            ParamOffsets = paramOffsets[.. lowering.ParamNames.Length - 1]
            ThetaLength = Array.last paramOffsets
            Rhs = rhs
            RhsFast = isFast
            Ghost = ghost
            Rules = rules
            Sites = lowering.Sites
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
