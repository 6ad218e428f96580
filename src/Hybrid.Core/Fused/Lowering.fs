namespace Hybrid.Fused

open Hybrid
open Hybrid.Numerics

/// A boundary rule for ghost cells with constant values (the fused path's subset of boundary conditions).
[<RequireQualifiedAccess>]
type GhostRule =
    | Periodic
    | Dirichlet of value: float
    | Neumann of gradient: float
    | NoFlux

/// One call of a neural closure in the equations: which closure, and its arguments per cell.
type ClosureSite = {
    /// The closure's name.
    Name: string
    /// Its arguments as kernel expressions (pointwise).
    Args: KExpr[]
}

/// Everything a fused kernel needs to know about a model: the per-cell right-hand side of every field as a
/// kernel expression, the ghost-cell rules, and the layout of the arrays it runs on.
type KernelPlan = {
    /// The model the plan was lowered from.
    Model: Model
    /// Where the fields live.
    Grid: Grid
    /// Field names, in state order (the model's declaration order).
    Fields: string[]
    /// Scalar parameters, in the order the kernel's θ array holds their constrained values.
    Params: string[]
    /// ∂(field)/∂t per cell, one per field.
    Rhs: KExpr[]
    /// Ghost cells on each side of each spatial axis.
    Ghost: int
    /// Per field, per spatial axis: the rules on the low and the high side.
    Rules: (GhostRule * GhostRule)[][]
    /// Neural closure call sites, numbered as the `KInput` leaves of `Rhs`.
    Sites: ClosureSite[]
    /// Forcings read by the equations, numbered as the `KData` leaves of `Rhs`.
    Forcings: string[]
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
}

/// Lowers a checked `Model` to a `KernelPlan`: spatial operators become explicit stencils with exactly the
/// discretisation of `Numerics.Operators` (ghost cells as `Numerics.Boundary.pad`), so fused and eager
/// simulators agree to round-off.
[<RequireQualifiedAccess>]
module Lowering =

    let private unsupported (field: string) (what: string) =
        raise (
            ModelException(
                $"The fused path cannot compile {what} in the equation of '{field}'. Use the eager compiled simulator for this model, or rewrite the term."
            )
        )

    /// Lowers `model`; raises `ModelException` naming the field and the construct the fused path lacks
    /// (spatial parameters, fast lattices, operators of non-field expressions, closures inside a
    /// diffusion coefficient). Closure calls become `KInput` sites, evaluated by TorchSharp.
    let lower (model: Model) : KernelPlan =
        let grid = Grid.ofDomain model.Domain

        match model.Domain with
        | Domain.Lattice(_, j) when j > 0 ->
            raise (
                ModelException(
                    $"The fused path does not support two-scale lattices (model '{model.Name}' has {j} fast sites per slow site). Use the eager compiled simulator."
                )
            )
        | _ -> ()

        let fields = model.Fields |> List.map _.Name |> Array.ofList

        let scalarParams =
            model.Params
            |> List.filter (fun p -> p.Shape = ParamShape.Scalar)
            |> List.map _.Name
            |> Array.ofList

        let constants = model.Constants |> List.map (fun c -> c.Name, c.Value) |> Map.ofList
        let fieldIndex name = Array.tryFindIndex ((=) name) fields
        let sites = ResizeArray<ClosureSite>()
        let forcings = ResizeArray<string>()

        let forcing (name: string) =
            if not (forcings.Contains name) then
                forcings.Add name

            KData(forcings.IndexOf name)

        let paramIndex name =
            Array.tryFindIndex ((=) name) scalarParams

        let spacing axis = grid.Axes[axis].Spacing
        let unit axis = if axis = 0 then (1, 0) else (0, 1)

        let read f axis offset =
            let ex, ey = unit axis
            KRead(f, ex * offset, ey * offset)

        /// κ evaluated at the face between the cell and its neighbour in direction `dir` (±1) along `axis`:
        /// fields become the mean of the two cells (as `Operators.toFaces`), the coordinate moves by ±h/2.
        let atFace axis dir (k: KExpr) =
            let ex, ey = unit axis

            k
            |> KExpr.mapLeaves (fun leaf ->
                match leaf with
                | KRead(f, dx, dy) -> KExpr.mul (KConst 0.5) (KExpr.add leaf (KRead(f, dx + dir * ex, dy + dir * ey)))
                | KCoord(a, s) when a = axis -> KCoord(a, s + float dir * 0.5 * spacing axis)
                | other -> other)

        let lowerEquation (field: string) (rhs: Expr) =
            let fieldOf (e: Expr) (what: string) =
                match e with
                | Sym n ->
                    match fieldIndex n with
                    | Some i -> i
                    | None -> unsupported field $"{what} of '{n}', which is not a field"
                | _ -> unsupported field $"{what} of an expression (only of a field)"

            let needsSpace (what: string) =
                if grid.Dims = 0 then
                    unsupported field $"{what} on a 0-D model"

            let laplacian f =
                [ 0 .. grid.Dims - 1 ]
                |> List.map (fun a ->
                    let h = spacing a

                    let second =
                        KExpr.add (KExpr.sub (read f a 1) (KExpr.mul (KConst 2.0) (read f a 0))) (read f a -1)

                    KExpr.div second (KConst(h * h)))
                |> List.reduce KExpr.add

            let rec low (e: Expr) : KExpr =
                match e with
                | Num v -> KConst v
                | Sym "x" when grid.Dims >= 1 -> KCoord(0, 0.0)
                | Sym "y" when grid.Dims >= 2 -> KCoord(1, 0.0)
                | Sym "t" -> KTime
                | Sym n ->
                    match fieldIndex n, paramIndex n, constants.TryFind n with
                    | Some i, _, _ -> KRead(i, 0, 0)
                    | _, Some j, _ -> KParam j
                    | _, _, Some v -> KConst v
                    | _ ->
                        if model.Params |> List.exists (fun p -> p.Name = n) then
                            unsupported field $"the spatial parameter '{n}'"
                        elif model.Forcings |> List.exists (fun f -> f.Name = n) then
                            forcing n
                        else
                            unsupported field $"the symbol '{n}'"
                | Neg a -> KExpr.neg (low a)
                | Add(a, b) -> KExpr.add (low a) (low b)
                | Sub(a, b) -> KExpr.sub (low a) (low b)
                | Mul(a, b) -> KExpr.mul (low a) (low b)
                | Div(a, b) -> KExpr.div (low a) (low b)
                | PowInt(a, n) -> KExpr.powInt (low a) n
                | PowReal(a, b) -> KExpr.bin KBinary.Pow (low a) (low b)
                | Apply(fn, a) ->
                    let op =
                        match fn with
                        | Fn.Exp -> KUnary.Exp
                        | Fn.Log -> KUnary.Log
                        | Fn.Sqrt -> KUnary.Sqrt
                        | Fn.Abs -> KUnary.Abs
                        | Fn.Sin -> KUnary.Sin
                        | Fn.Cos -> KUnary.Cos
                        | Fn.Tanh -> KUnary.Tanh
                        | Fn.Sigmoid -> KUnary.Sigmoid
                        | Fn.Softplus -> KUnary.Softplus

                    KExpr.un op (low a)
                | Min(a, b) -> KExpr.bin KBinary.Min (low a) (low b)
                | Max(a, b) -> KExpr.bin KBinary.Max (low a) (low b)
                | Call(name, args) ->
                    match model.Closures |> List.tryFind (fun c -> c.Name = name) with
                    | None -> unsupported field $"the call of '{name}', which is not a declared closure"
                    | Some c when c.Arity <> args.Length ->
                        unsupported field $"the call of '{name}' with {args.Length} argument(s); it takes {c.Arity}"
                    | Some _ ->
                        let lowered = args |> List.map low |> Array.ofList

                        if lowered |> Array.exists (fun a -> not (KExpr.inputs a).IsEmpty) then
                            unsupported field $"a call of '{name}' whose arguments call closures"

                        sites.Add { Name = name; Args = lowered }
                        KInput(sites.Count - 1)
                | Laplacian a ->
                    needsSpace "Δ"
                    laplacian (fieldOf a "Δ")
                | Partial(axis, a) ->
                    needsSpace "∂"

                    let ax =
                        match axis with
                        | Axis.X -> 0
                        | Axis.Y -> 1

                    if ax >= grid.Dims then
                        unsupported field "∂/∂y on a 1-D grid"

                    let f = fieldOf a "∂"
                    KExpr.div (KExpr.sub (read f ax 1) (read f ax -1)) (KConst(2.0 * spacing ax))
                | Divergence(Grad a) ->
                    needsSpace "∇·∇"
                    laplacian (fieldOf a "∇·∇")
                | Divergence(Mul(k, Grad a))
                | Divergence(Mul(Grad a, k)) ->
                    needsSpace "∇·(κ∇u)"
                    let f = fieldOf a "∇·(κ∇·)"
                    let kappa = low k

                    if not (KExpr.inputs kappa).IsEmpty then
                        unsupported field "a neural closure inside a diffusion coefficient (κ at faces)"

                    if not (KExpr.data kappa).IsEmpty then
                        unsupported field "a forcing inside a diffusion coefficient (κ at faces)"

                    [ 0 .. grid.Dims - 1 ]
                    |> List.map (fun ax ->
                        let h = spacing ax
                        let up = KExpr.mul (atFace ax 1 kappa) (KExpr.sub (read f ax 1) (read f ax 0))
                        let down = KExpr.mul (atFace ax -1 kappa) (KExpr.sub (read f ax 0) (read f ax -1))
                        KExpr.div (KExpr.sub up down) (KConst(h * h)))
                    |> List.reduce KExpr.add
                | Advect(velocity, a) ->
                    needsSpace "advection"

                    if velocity.Length <> grid.Dims then
                        unsupported
                            field
                            $"advection with {velocity.Length} velocity components on a {grid.Dims}-D grid"

                    let f = fieldOf a "advection"

                    velocity
                    |> List.mapi (fun ax v ->
                        let h = spacing ax
                        let vl = low v
                        let forward = KExpr.div (KExpr.sub (read f ax 1) (read f ax 0)) (KConst h)
                        let backward = KExpr.div (KExpr.sub (read f ax 0) (read f ax -1)) (KConst h)

                        KExpr.add
                            (KExpr.mul (KExpr.bin KBinary.Max vl (KConst 0.0)) backward)
                            (KExpr.mul (KExpr.bin KBinary.Min vl (KConst 0.0)) forward))
                    |> List.reduce KExpr.add
                | Shift(name, LatticeIndex.K, m) ->
                    match model.Domain, fieldIndex name with
                    | Domain.Lattice _, Some i -> KRead(i, m, 0)
                    | Domain.Lattice _, None -> unsupported field $"a shift of '{name}', which is not a field"
                    | _ -> unsupported field $"the lattice shift of '{name}' outside a lattice"
                | Shift(name, LatticeIndex.J, _) -> unsupported field $"the fast shift of '{name}'"
                | FastSum _ -> unsupported field "a sum over fast sites"
                | Grad _
                | Divergence _ -> unsupported field "this ∇ / ∇· form (use ∇·(κ∇u), Δu or ∂)"

            low rhs

        let rhs =
            fields
            |> Array.map (fun f ->
                match Model.tryEquation f model with
                | Some eq -> lowerEquation f eq.Rhs
                | None ->
                    raise (ModelException($"Field '{f}' has no equation. Add one, e.g. equation (dt {f} == ...).")))

        let maxOffset =
            rhs
            |> Array.collect (fun e ->
                KExpr.reads e
                |> List.map (fun (_, dx, dy) -> max (abs dx) (abs dy))
                |> Array.ofList)
            |> Array.fold max 0

        let ghost = if grid.Dims = 0 then 0 else max 1 maxOffset

        let rule (field: string) (side: Side) =
            match model.Domain with
            | Domain.Lattice _ -> GhostRule.Periodic
            | _ ->
                let constant (e: Expr) =
                    try
                        Symbolic.eval constants e
                    with :? HybridException ->
                        unsupported field $"the boundary value {e} on side {side} (only constants are fused)"

                match model.Boundaries |> List.tryFind (fun b -> b.Field = field && b.Side = side) with
                | Some b ->
                    match b.Condition with
                    | BoundaryCondition.Periodic -> GhostRule.Periodic
                    | BoundaryCondition.NoFlux -> GhostRule.NoFlux
                    | BoundaryCondition.Dirichlet e -> GhostRule.Dirichlet(constant e)
                    | BoundaryCondition.Neumann e -> GhostRule.Neumann(constant e)
                | None ->
                    raise (
                        ModelException(
                            $"Field '{field}' has no boundary condition on side {side}. Add one, e.g. boundary \"{field}\" noFlux."
                        )
                    )

        let rules =
            fields
            |> Array.map (fun f ->
                match model.Domain with
                | Domain.Interval _ -> [| rule f Side.Left, rule f Side.Right |]
                | Domain.Rectangle _ -> [| rule f Side.Left, rule f Side.Right; rule f Side.Bottom, rule f Side.Top |]
                | Domain.Lattice _ -> [| GhostRule.Periodic, GhostRule.Periodic |]
                | Domain.Point -> [||])

        let nx = if grid.Dims >= 1 then grid.Axes[0].Cells else 1
        let ny = if grid.Dims >= 2 then grid.Axes[1].Cells else 1
        let px = if grid.Dims >= 1 then nx + 2 * ghost else 1
        let py = if grid.Dims >= 2 then ny + 2 * ghost else 1

        {
            Model = model
            Grid = grid
            Fields = fields
            Params = scalarParams
            Rhs = rhs
            Ghost = ghost
            Rules = rules
            Sites = sites.ToArray()
            Forcings = forcings.ToArray()
            Nx = nx
            Ny = ny
            Cells = nx * ny
            Px = px
            Py = py
            PaddedCells = px * py
        }
