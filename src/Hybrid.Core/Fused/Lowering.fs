namespace Hybrid.Fused

open Hybrid
open Hybrid.Numerics

/// A boundary rule for ghost cells. Dirichlet and Neumann values are kernel expressions of the time, the
/// coordinates (the normal one at the boundary face, the tangential one at the ghost's cell) and scalar
/// parameters, evaluated when the ghosts are filled.
[<RequireQualifiedAccess>]
type GhostRule =
    | Periodic
    | Dirichlet of value: KExpr
    | Neumann of gradient: KExpr
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
///
/// Two-scale lattices (K slow sites, J fast sites each) have two rings: slow fields on K sites (the layout
/// `Nx`, `Ghost`, `PaddedCells`), fast fields on one ring of K·J sites, site n = k·J + j (`FastCells`,
/// `FastGhost`, `FastPaddedCells`). A `KRead(f, dx, _)` counts `dx` in the sites of field f's own ring, from
/// the site of the loop that evaluates it: in a fast loop a slow field is read at the parent site n / J, in
/// a slow loop a fast field at site k·J (so Σⱼ becomes J reads at dx = j + m).
type KernelPlan = {
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
module KernelPlan =

    /// Unknowns of field `f` per trajectory.
    let cells (plan: KernelPlan) (f: int) =
        if plan.Fast[f] then plan.FastCells else plan.Cells

    /// Padded values of field `f` per trajectory.
    let padded (plan: KernelPlan) (f: int) =
        if plan.Fast[f] then
            plan.FastPaddedCells
        else
            plan.PaddedCells

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
    /// (operators of non-field expressions, closures inside a diffusion coefficient, closures, forcings and
    /// spatial parameters on the fast ring of a two-scale lattice, spatial parameters inside a diffusion
    /// coefficient, fields, closures, forcings or spatial parameters in boundary values). Closure calls become `KInput` sites, evaluated by TorchSharp.
    let lower (model: Model) : KernelPlan =
        Checks.compilable model
        let grid = Grid.ofDomain model.Domain

        let fastSites =
            match grid with
            | Grid.Lattice(_, j) -> j
            | _ -> 0

        let fields = model.Fields |> List.map _.Name |> Array.ofList
        let isFast = model.Fields |> List.map _.Fast |> Array.ofList

        let paramNames = model.Params |> List.map _.Name |> Array.ofList

        let paramSpatial =
            model.Params |> List.map (fun p -> p.Shape = ParamShape.Spatial) |> Array.ofList

        let nx = if grid.Dims >= 1 then grid.Axes[0].Cells else 1
        let ny = if grid.Dims >= 2 then grid.Axes[1].Cells else 1
        let paramSizes = paramSpatial |> Array.map (fun s -> if s then nx * ny else 1)
        let paramOffsets = Array.scan (+) 0 paramSizes

        let constants = model.Constants |> List.map (fun c -> c.Name, c.Value) |> Map.ofList
        let fieldIndex name = Array.tryFindIndex ((=) name) fields
        let sites = ResizeArray<ClosureSite>()
        let forcings = ResizeArray<string>()
        let faceForcings = ResizeArray<int>()

        let forcing (name: string) =
            if not (forcings.Contains name) then
                forcings.Add name

            KData(forcings.IndexOf name)

        let paramIndex name =
            Array.tryFindIndex ((=) name) paramNames

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

        /// Σⱼ of a fast-ring expression, seen from slow site k: J copies with fast reads moved to site k·J + j
        /// (slow reads stay at the parent site k) and the fast coordinate n = k·J + j.
        let sumOverFastSites (e: KExpr) =
            [ 0 .. fastSites - 1 ]
            |> List.map (fun j ->
                e
                |> KExpr.mapLeaves (fun leaf ->
                    match leaf with
                    | KRead(f, dx, dy) when isFast[f] -> KRead(f, dx + j, dy)
                    | KCoord(0, s) ->
                        KExpr.add (KExpr.mul (KConst(float fastSites)) (KCoord(0, 0.0))) (KConst(float j + s))
                    | other -> other))
            |> List.reduce KExpr.add

        /// Lowers `rhs`, the equation of `field` (or a boundary value of it, `where`); `fast`: evaluated on the
        /// fast ring of a two-scale lattice.
        let lowerExpr (field: string) (where: string) (fast: bool) (rhs: Expr) =
            let unsupported (what: string) =
                raise (
                    ModelException(
                        $"The fused path cannot compile {what} in {where} of '{field}'. Use the eager compiled simulator for this model, or rewrite the term."
                    )
                )

            // `Checks.compilable` refuses this with the user's message; reaching it here is a bug of ours.
            let fastOutsideSum (n: string) =
                raise (
                    System.InvalidOperationException(
                        $"Internal error: the fast field '{n}' outside Σⱼ in '{model.Name}' passed Checks.compilable. Please report the model."
                    )
                )

            let fieldOf (fast: bool) (e: Expr) (what: string) =
                match e with
                | Sym n ->
                    match fieldIndex n with
                    | Some i when isFast[i] <> fast ->
                        unsupported $"{what} of '{n}', a field of the other ring of the two-scale lattice"
                    | Some i -> i
                    | None -> unsupported $"{what} of '{n}', which is not a field"
                | _ -> unsupported $"{what} of an expression (only of a field)"

            let needsSpace (what: string) =
                if grid.Dims = 0 then
                    unsupported $"{what} on a 0-D model"

            let laplacian f =
                [ 0 .. grid.Dims - 1 ]
                |> List.map (fun a ->
                    let h = spacing a

                    let second =
                        KExpr.add (KExpr.sub (read f a 1) (KExpr.mul (KConst 2.0) (read f a 0))) (read f a -1)

                    KExpr.div second (KConst(h * h)))
                |> List.reduce KExpr.add

            let rec lowOn (fast: bool) (e: Expr) : KExpr =
                let low = lowOn fast

                match e with
                | Num v -> KConst v
                | Sym n ->
                    // Declarations first, then coordinates and time (as the eager compiler: a field named x
                    // is the field).
                    match fieldIndex n, paramIndex n, constants.TryFind n with
                    | Some i, _, _ when isFast[i] && not fast -> fastOutsideSum n
                    | Some i, _, _ -> KRead(i, 0, 0)
                    | _, Some j, _ when paramSpatial[j] && fast ->
                        unsupported $"the spatial parameter '{n}' on the fast ring"
                    | _, Some j, _ -> KParam j
                    | _, _, Some v -> KConst v
                    | _ when model.Forcings |> List.exists (fun f -> f.Name = n) ->
                        if fast then
                            unsupported $"the forcing '{n}' on the fast ring"

                        forcing n
                    | _ when n = "x" && grid.Dims >= 1 -> KCoord(0, 0.0)
                    | _ when n = "y" && grid.Dims >= 2 -> KCoord(1, 0.0)
                    | _ when n = "t" -> KTime
                    | _ -> unsupported $"the symbol '{n}'"
                | Neg a -> KExpr.neg (low a)
                | Add(a, b) -> KExpr.add (low a) (low b)
                | Sub(a, b) -> KExpr.sub (low a) (low b)
                | Mul(a, b) -> KExpr.mul (low a) (low b)
                | Div(a, b) -> KExpr.div (low a) (low b)
                | PowInt(a, n) -> KExpr.powInt (low a) n
                | PowReal(a, b) -> KExpr.bin KBinary.Pow (low a) (low b)
                | Apply(fn, a) -> KExpr.un (KUnary.Fn fn) (low a)
                | Min(a, b) -> KExpr.bin KBinary.Min (low a) (low b)
                | Max(a, b) -> KExpr.bin KBinary.Max (low a) (low b)
                | Call(name, args) ->
                    match model.Closures |> List.tryFind (fun c -> c.Name = name) with
                    | None -> unsupported $"the call of '{name}', which is not a declared closure"
                    | Some c when c.Arity <> args.Length ->
                        unsupported $"the call of '{name}' with {args.Length} argument(s); it takes {c.Arity}"
                    | Some _ when fast -> unsupported $"the neural closure '{name}' on the fast ring"
                    | Some _ ->
                        let lowered = args |> List.map low |> Array.ofList

                        if lowered |> Array.exists (fun a -> not (KExpr.inputs a).IsEmpty) then
                            unsupported $"a call of '{name}' whose arguments call closures"

                        sites.Add { Name = name; Args = lowered }
                        KInput(sites.Count - 1)
                | Laplacian a ->
                    needsSpace "Δ"
                    laplacian (fieldOf fast a "Δ")
                | Partial(axis, a) ->
                    needsSpace "∂"

                    let ax =
                        match axis with
                        | Axis.X -> 0
                        | Axis.Y -> 1

                    if ax >= grid.Dims then
                        unsupported "∂/∂y on a 1-D grid"

                    let f = fieldOf fast a "∂"
                    KExpr.div (KExpr.sub (read f ax 1) (read f ax -1)) (KConst(2.0 * spacing ax))
                | Divergence(Grad a) ->
                    needsSpace "∇·∇"
                    laplacian (fieldOf fast a "∇·∇")
                | Divergence(Mul(k, Grad a))
                | Divergence(Mul(Grad a, k)) ->
                    needsSpace "∇·(κ∇u)"
                    let f = fieldOf fast a "∇·(κ∇·)"
                    let kappa = low k

                    if not (KExpr.inputs kappa).IsEmpty then
                        unsupported "a neural closure inside a diffusion coefficient (κ at faces)"

                    // A forcing in κ is taken at the cell: it must be uniform in space (checked by the stepper),
                    // as the eager simulator's κ at faces requires.
                    for i in KExpr.data kappa do
                        if not (faceForcings.Contains i) then
                            faceForcings.Add i

                    for p in KExpr.parameters kappa do
                        if paramSpatial[p] then
                            unsupported
                                $"the spatial parameter '{paramNames[p]}' inside a diffusion coefficient (κ at faces)"

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
                        unsupported $"advection with {velocity.Length} velocity components on a {grid.Dims}-D grid"

                    let f = fieldOf fast a "advection"

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
                    | Domain.Lattice _, Some i when isFast[i] && not fast -> fastOutsideSum name
                    // A fast field at slow site k + m, same j: J·m sites along the fast ring.
                    | Domain.Lattice _, Some i when isFast[i] -> KRead(i, m * fastSites, 0)
                    | Domain.Lattice _, Some i -> KRead(i, m, 0)
                    | Domain.Lattice _, None -> unsupported $"a shift of '{name}', which is not a field"
                    | _ -> unsupported $"the lattice shift of '{name}' outside a lattice"
                | Shift(name, LatticeIndex.J, m) ->
                    match fieldIndex name with
                    | Some i when isFast[i] && fast -> KRead(i, m, 0)
                    | Some i when isFast[i] -> fastOutsideSum name
                    | Some _ ->
                        unsupported
                            $"the fast shift of the slow field '{name}' (use shift {name} m for the slow index k)"
                    | None -> unsupported $"a fast shift of '{name}', which is not a field"
                | FastSum a ->
                    if fastSites = 0 then
                        unsupported "a sum over fast sites (Σⱼ) without a two-scale lattice"

                    if fast then
                        unsupported "a sum over fast sites (Σⱼ) inside a fast expression"

                    sumOverFastSites (lowOn true a)
                | Grad _
                | Divergence _ -> unsupported "this ∇ / ∇· form (use ∇·(κ∇u), Δu or ∂)"

            lowOn fast rhs

        let rhs =
            fields
            |> Array.mapi (fun i f -> lowerExpr f "the equation" isFast[i] (Checks.equationOf model f).Rhs)

        let ghostOf (fast: bool) =
            rhs
            |> Array.collect (fun e ->
                KExpr.reads e
                |> List.filter (fun (f, _, _) -> isFast[f] = fast)
                |> List.map (fun (_, dx, dy) -> max (abs dx) (abs dy))
                |> Array.ofList)
            |> Array.fold max 0

        let ghost = if grid.Dims = 0 then 0 else max 1 (ghostOf false)
        let fastGhost = if fastSites = 0 then 0 else max 1 (ghostOf true)

        let rule (field: string) (side: Side) =
            match model.Domain with
            | Domain.Lattice _ -> GhostRule.Periodic
            | _ ->
                let value (e: Expr) =
                    let where = $"the boundary value on side {side}"
                    let v = lowerExpr field where false e

                    let refuse (what: string) =
                        raise (
                            ModelException(
                                $"The fused path cannot compile {what} in {where} of '{field}' ({e}). Boundary values may use t, x, y, constants and scalar parameters."
                            )
                        )

                    if not (KExpr.reads v).IsEmpty then
                        refuse "a field"

                    if not (KExpr.inputs v).IsEmpty then
                        refuse "a neural closure"

                    if not (KExpr.data v).IsEmpty then
                        refuse "a forcing"

                    if KExpr.parameters v |> List.exists (fun p -> paramSpatial[p]) then
                        refuse "a spatial parameter"

                    v

                match Checks.boundaryOf model field side with
                | BoundaryCondition.Periodic -> GhostRule.Periodic
                | BoundaryCondition.NoFlux -> GhostRule.NoFlux
                | BoundaryCondition.Dirichlet e -> GhostRule.Dirichlet(value e)
                | BoundaryCondition.Neumann e -> GhostRule.Neumann(value e)

        let rules =
            fields
            |> Array.map (fun f ->
                match model.Domain with
                | Domain.Interval _ -> [| rule f Side.Left, rule f Side.Right |]
                | Domain.Rectangle _ -> [| rule f Side.Left, rule f Side.Right; rule f Side.Bottom, rule f Side.Top |]
                | Domain.Lattice _ -> [| GhostRule.Periodic, GhostRule.Periodic |]
                | Domain.Point -> [||])

        let px = if grid.Dims >= 1 then nx + 2 * ghost else 1
        let py = if grid.Dims >= 2 then ny + 2 * ghost else 1
        let fastCells = nx * fastSites

        {
            Model = model
            Grid = grid
            Fields = fields
            Params = paramNames
            ParamSpatial = paramSpatial
            ParamOffsets = paramOffsets[.. paramNames.Length - 1]
            ThetaLength = Array.last paramOffsets
            Rhs = rhs
            RhsFast = isFast
            Ghost = ghost
            Rules = rules
            Sites = sites.ToArray()
            Forcings = forcings.ToArray()
            FaceForcings = faceForcings.ToArray()
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
