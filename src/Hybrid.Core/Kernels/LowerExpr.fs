namespace Hybrid.Kernels

open System
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

/// The refusal of the kernel back end.
[<RequireQualifiedAccess>]
module internal KernelRefusal =

    /// The one message for a construct the kernels lack: `construct` (what, where, of which field), then
    /// `advice` (a sentence).
    let cannotCompile (construct: string) (advice: string) =
        ModelException($"The generated kernels cannot compile {construct}. {advice}")

/// Lowers the expressions of one checked model to kernel expressions: symbols to reads, parameters, constants,
/// forcings, coordinates and time; spatial operators to `Stencils`; closure calls to numbered sites. Raises
/// `ModelException` for constructs the kernels lack (the eager back end runs those models); what
/// `Checks.compilable` refuses is an internal error here. With `faceFluxes`, the flux advection of an equation
/// takes its fluxes along periodic axes from face copies (`CopySource.Face`), computed once per face by a kernel of
/// their own, instead of computing each face's flux in both cells beside it.
type internal ExprLowering(system: ResolvedSystem, faceFluxes: bool) =
    let model, grid = system.Model, system.Grid
    let fields, isFast, fastSites = system.Fields, system.IsFast, system.FastSites
    let paramNames, paramSpatial = system.ParamNames, system.ParamSpatial

    let constant name =
        match system.Constants.TryGetValue name with
        | true, v -> Some v
        | _ -> None

    let fieldIndex name = Array.tryFindIndex ((=) name) fields

    let paramIndex name =
        Array.tryFindIndex ((=) name) paramNames

    let diagnosticIndex name =
        system.Diagnostics |> Array.tryFindIndex (fun d -> d.Field = name)

    let sites = ResizeArray<ClosureSite>()
    let paramCopies = ResizeArray<ParamCopy>()
    let forcings = ResizeArray<string>()
    let faceForcings = ResizeArray<int>()

    /// The number of `copy` (registered on first use).
    let copyIndex (copy: ParamCopy) =
        match Seq.tryFindIndex (fun c -> c = copy) paramCopies with
        | Some i -> i
        | None ->
            paramCopies.Add copy
            paramCopies.Count - 1

    /// The padded copy of diagnostic field `d` (its ghosts wrap: `Lowering` takes periodic diagnostic fields only).
    let diagnosticCopy (d: int) =
        copyIndex {
            Source = CopySource.Diagnostic d
            Periodic = Array.create grid.Dims true
        }

    /// The copy of the fluxes `flux` through the cells' upper faces (its ghosts wrap).
    let faceCopy (flux: KExpr) =
        copyIndex {
            Source = CopySource.Face flux
            Periodic = Array.create grid.Dims true
        }

    // A diagnostic field d is lowered as the field number F + d (so the stencils apply to it), then its reads
    // become reads of its padded copy.
    let toCopies (e: KExpr) =
        e
        |> KExpr.mapLeaves (fun leaf ->
            match leaf with
            | KRead(f, dx, dy) when f >= fields.Length -> KParamAt(diagnosticCopy (f - fields.Length), dx, dy)
            | other -> other)

    /// Whether `e` reads a diagnostic field (before or after `toCopies`; through a face copy too).
    let rec readsDiagnostic (e: KExpr) =
        KExpr.reads e |> List.exists (fun (f, _, _) -> f >= fields.Length)
        || KExpr.copyReads e
           |> List.exists (fun (c, _, _) ->
               match paramCopies[c].Source with
               | CopySource.Diagnostic _ -> true
               | CopySource.Param _ -> false
               | CopySource.Face flux -> readsDiagnostic flux)

    let forcing (name: string) =
        if not (forcings.Contains name) then
            forcings.Add name

        KData(forcings.IndexOf name)

    // What `Checks.compilable` refuses with the user's message; reaching it here is a bug of ours.
    let passedChecks (what: string) =
        raise (ResolvedSystem.passedChecks model what)

    /// Lowers `rhs`, the equation of `field` (or a boundary value of it, `where`); `fast`: evaluated on the fast
    /// ring of a two-scale lattice; `faces`: flux advection may read face copies (outside diffusion coefficients).
    let lowerExpr (field: string) (where: string) (fast: bool) (faces: bool) (rhs: Expr) =
        let unsupported (what: string) =
            raise (
                KernelRefusal.cannotCompile
                    $"{what} in {where} of '{field}'"
                    "Use the eager compiled simulator for this model, or rewrite the term."
            )

        let fastOutsideSum (n: string) =
            passedChecks $"the fast field '{n}' outside Σⱼ"

        let fieldOf (fast: bool) (e: Expr) (what: string) =
            match e with
            | Sym n ->
                match fieldIndex n with
                | Some i when isFast[i] <> fast ->
                    unsupported $"{what} of '{n}', a field of the other ring of the two-scale lattice"
                | Some i -> i
                | None ->
                    match diagnosticIndex n with
                    | Some d -> fields.Length + d
                    | None -> unsupported $"{what} of '{n}', which is not a field"
            | _ -> unsupported $"{what} of an expression (only of a field)"

        let symbol (fast: bool) (n: string) =
            // Declarations first, then coordinates and time (as the eager compiler: a field named x is the field).
            match fieldIndex n, paramIndex n, constant n with
            | Some i, _, _ when isFast[i] && not fast -> fastOutsideSum n
            | Some i, _, _ -> KRead(i, 0, 0)
            | None, None, None when (diagnosticIndex n).IsSome -> KRead(fields.Length + (diagnosticIndex n).Value, 0, 0)
            | _, Some j, _ when paramSpatial[j] && fast -> unsupported $"the spatial parameter '{n}' on the fast ring"
            | _, Some j, _ -> KParam j
            | _, _, Some v -> KConst v
            | _ when model.Forcings |> List.exists (fun f -> f.Name = n) ->
                if fast then
                    unsupported $"the forcing '{n}' on the fast ring"

                forcing n
            | _ when n = "x" && grid.Dims >= 1 -> KCoord(0, 0.0)
            | _ when n = "y" && grid.Dims >= 2 -> KCoord(1, 0.0)
            | _ when n = "t" -> KTime
            | _ -> passedChecks $"the undefined symbol '{n}'"

        /// Output `output` (1-based) of closure `name` at `args`: a site whose arguments are written per cell (a
        /// closure over whole fields takes them as channels of whole fields).
        let call (low: Expr -> KExpr) (fast: bool) (name: string) (output: int) (args: Expr list) =
            match model.Closures |> List.tryFind (fun c -> c.Name = name) with
            | None -> passedChecks $"the call of '{name}', not a declared closure"
            | Some c when c.Arity <> args.Length -> passedChecks $"the call of '{name}' with {args.Length} argument(s)"
            | Some c when output < 1 || output > Model.outputs c -> passedChecks $"output {output} of '{name}'"
            | Some _ when fast -> unsupported $"the neural closure '{name}' on the fast ring"
            | Some c ->
                let lowered = args |> List.map (low >> toCopies) |> Array.ofList

                if lowered |> Array.exists (fun a -> not (KExpr.inputs a).IsEmpty) then
                    unsupported $"a call of '{name}' whose arguments call closures"

                sites.Add {
                    Name = name
                    Args = lowered
                    Fieldwise = Model.isFieldwise c
                    Output = output - 1
                }

                KInput(sites.Count - 1)

        // κ is evaluated at each face on face values, as the eager back end does: a closure inside κ becomes
        // one site per face direction (its arguments at that face), a spatial parameter the mean of its padded
        // copy at the two cells of the face.
        let diffusion (low: Expr -> KExpr) (fast: bool) (k: Expr) (a: Expr) =
            let f = fieldOf fast a "∇·(κ∇·)"

            if f >= fields.Length then
                unsupported $"∇·(κ∇·) of the diagnostic field '{system.Diagnostics[f - fields.Length].Field}'"

            // The sites `low k` registers are κ's calls at the cells: they are replaced by the sites at the faces.
            let first = sites.Count
            let kappa = low k
            let cellSites = sites.GetRange(first, sites.Count - first).ToArray()
            sites.RemoveRange(first, cellSites.Length)

            if
                Array.append [| kappa |] (cellSites |> Array.collect _.Args)
                |> Array.exists readsDiagnostic
            then
                unsupported
                    $"a diagnostic field inside the diffusion coefficient of ∇·(κ∇{Print.expr Notation.Unicode a})"

            // A forcing in κ is taken at the cell: it must be uniform in space (checked by the stepper), as the
            // eager simulator's κ at faces requires.
            for e in Array.append [| kappa |] (cellSites |> Array.collect _.Args) do
                for i in KExpr.data e do
                    if not (faceForcings.Contains i) then
                        faceForcings.Add i

            // The copy's ghosts wrap where the diffused field is periodic (lattices are), else repeat the edge.
            let periodic =
                Array.init grid.Dims (fun axis ->
                    system.Conditions[f].Length = 0
                    || (match system.Conditions[f][axis] with
                        | BoundaryCondition.Periodic, _ -> true
                        | _ -> false))

            let copyOf (p: int) =
                if paramSpatial[p] then
                    Some(
                        copyIndex {
                            Source = CopySource.Param p
                            Periodic = periodic
                        }
                    )
                else
                    None

            let kappaAt axis dir =
                let siteAt (s: int) =
                    let cell = cellSites[s - first]

                    let args =
                        cell.Args
                        |> Array.map (
                            Stencils.atFace
                                grid
                                copyOf
                                (fun _ -> passedChecks $"a call of '{cell.Name}' whose arguments call closures")
                                axis
                                dir
                        )

                    sites.Add { cell with Args = args }
                    KInput(sites.Count - 1)

                Stencils.atFace grid copyOf siteAt axis dir kappa

            Stencils.diffusion grid f kappaAt

        let shift (fast: bool) (name: string) (index: LatticeIndex) (m: int) =
            match index, fieldIndex name with
            | _, None -> passedChecks $"a shift of '{name}', not a field"
            | LatticeIndex.K, Some i when isFast[i] && not fast -> fastOutsideSum name
            // A fast field at slow site k + m, same j: J·m sites along the fast ring.
            | LatticeIndex.K, Some i when isFast[i] -> KRead(i, m * fastSites, 0)
            | LatticeIndex.K, Some i -> KRead(i, m, 0)
            | LatticeIndex.J, Some i when isFast[i] && fast -> KRead(i, m, 0)
            | LatticeIndex.J, Some i when isFast[i] -> fastOutsideSum name
            | LatticeIndex.J, Some _ -> passedChecks $"the slow field '{name}' shifted along j"

        let sides = [| Side.Left, Side.Right; Side.Bottom, Side.Top |]

        /// Whether both sides of `axis` of field `f` are periodic (a diagnostic field, numbered after the fields,
        /// is periodic on every axis: `Lowering` takes no other).
        let wraps (f: int) (axis: int) =
            f >= fields.Length
            || (match system.Conditions[f][axis] with
                | BoundaryCondition.Periodic, BoundaryCondition.Periodic -> true
                | _ -> false)

        // J and advectFlux read their operands at neighbouring cells by shifting the operands' reads
        // (`Stencils.jacobian`, `Stencils.fluxAdvection`). The eager back end pads the operand's values with the
        // conditions of the first field it reads: the same values where every field it reads wraps around on every
        // axis (corner ghosts included, `Ghosts`), or where the operand is one field f whose own ghost cells hold
        // them (`alone f`: J's corner ghosts exist where one axis of f wraps; advectFlux reads its tracer and
        // velocity components along one axis only).
        let shiftable (what: string) (alone: int -> bool) (operand: Expr) (k: KExpr) =
            let refuse (why: string) =
                unsupported $"{what} whose operand {Print.expr Notation.Unicode operand} {why}"

            if not (KExpr.inputs k).IsEmpty then
                refuse "calls a neural closure (evaluated at the cell only)"

            if not (KExpr.data k).IsEmpty then
                refuse "reads a forcing (given at the cell only)"

            if KExpr.parameters k |> List.exists (fun p -> paramSpatial[p]) then
                refuse "reads a spatial parameter"

            if not (KExpr.coordinates k).IsEmpty then
                refuse "reads the coordinates (the eager back end wraps its values, not the coordinates)"

            match k with
            | KRead(f, 0, 0) when alone f -> ()
            | _ ->
                for f, _, _ in KExpr.reads k |> List.filter (fun (f, _, _) -> f < fields.Length) do
                    system.Conditions[f]
                    |> Array.iteri (fun axis (low, high) ->
                        let lowSide, highSide = sides[axis]

                        for side, condition in [ lowSide, low; highSide, high ] do
                            match condition with
                            | BoundaryCondition.Periodic -> ()
                            | _ ->
                                refuse
                                    $"reads '{fields[f]}', which is not periodic on side {side} (the kernels compile J and advectFlux of expressions of periodic fields; of a single field also with walls: on one axis for J, any for advectFlux)")

            k

        let rec lowOn (faces: bool) (fast: bool) (e: Expr) : KExpr =
            let low = lowOn faces fast

            match e with
            | Num v -> KConst v
            | Sym n -> symbol fast n
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
            | Call(name, args) -> call low fast name 1 args
            | CallOutput(name, i, args) -> call low fast name i args
            | Laplacian a -> Stencils.laplacian grid (fieldOf fast a "Δ")
            | Divergence(Grad a) -> Stencils.laplacian grid (fieldOf fast a "∇·∇")
            | Partial(axis, a) ->
                let ax =
                    match axis with
                    | Axis.X -> 0
                    | Axis.Y -> 1

                Stencils.partial grid (fieldOf fast a "∂") ax
            | Divergence(Mul(k, Grad a))
            | Divergence(Mul(Grad a, k)) -> diffusion (lowOn false fast) fast k a
            | Advect(velocity, a) ->
                let f = fieldOf fast a "advection"
                Stencils.advection grid f (velocity |> List.map low)
            | Shift(name, index, m) -> shift fast name index m
            | FastSum a -> Stencils.sumOverFastSites fastSites isFast (lowOn faces true a)
            | Grad _
            | Divergence _ -> unsupported "this ∇ / ∇· form (use ∇·(κ∇u), Δu or ∂)"
            | Jacobian(a, b) ->
                let what = "the Arakawa Jacobian J(a, b)"

                if grid.Dims <> 2 || grid.IsLattice then
                    unsupported $"{what} off a 2-D rectangle"

                let alone f = wraps f 0 || wraps f 1
                Stencils.jacobian grid (shiftable what alone a (low a)) (shiftable what alone b (low b))
            | FluxAdvect(velocity, q) ->
                let what = "the flux advection advectFlux(…)"

                if grid.IsLattice || grid.Dims = 0 || velocity.Length <> grid.Dims then
                    unsupported $"{what} with {velocity.Length} velocity component(s) on a {grid.Dims}-D grid"

                let shifted (e: Expr) =
                    shiftable what (fun _ -> true) e (low e)

                let v, qk = velocity |> List.map shifted, shifted q

                // Along an axis where every field the operands read wraps around, each face's flux is computed once,
                // into a face copy whose ghosts wrap (the ghost below the first cell holds the flux through the last
                // cell's upper face: the first cell's lower face); the cell reads it at itself and one cell down.
                // Along walls (whose ghost cells the operand's field defines) both faces are computed in the cell.
                let facesOf (axis: int) (flux: KExpr) =
                    let wrapping =
                        v[axis] :: [ qk ]
                        |> List.forall (fun k -> KExpr.reads k |> List.forall (fun (f, _, _) -> wraps f axis))

                    if faces && wrapping then
                        let c = faceCopy (toCopies flux)
                        let ex, ey = if axis = 0 then 1, 0 else 0, 1
                        KParamAt(c, 0, 0), KParamAt(c, -ex, -ey)
                    else
                        Stencils.shiftedFaces axis flux

                Stencils.fluxAdvection grid v qk facesOf

        lowOn faces fast rhs |> toCopies

    /// Parameter names in declaration order.
    member _.ParamNames = paramNames

    /// Per parameter: whether it has one value per cell.
    member _.ParamSpatial = paramSpatial

    /// The closure call sites met so far, numbered as `KInput` leaves.
    member _.Sites = sites.ToArray()

    /// The padded copies of spatial parameters (met so far inside diffusion coefficients) and of diagnostic fields,
    /// numbered as the copies of `KParamAt` leaves.
    member _.ParamCopies = paramCopies.ToArray()

    /// The forcings met so far, numbered as `KData` leaves.
    member _.Forcings = forcings.ToArray()

    /// The forcings met inside diffusion coefficients.
    member _.FaceForcings = faceForcings.ToArray()

    /// The copy of diagnostic field number `d` (`ResolvedSystem.Diagnostics`), registered if not yet read.
    member _.DiagnosticCopy(d: int) = diagnosticCopy d

    /// Whether `e` (lowered) reads a diagnostic field.
    member _.ReadsDiagnostic(e: KExpr) = readsDiagnostic e

    /// Lowers `e`, in `where` of `field`, on the fast ring when `fast` (flux advection computing both faces' fluxes
    /// in the cell).
    member _.Lower(field: string, where: string, fast: bool, e: Expr) : KExpr = lowerExpr field where fast false e

    /// Lowers `e`, the right-hand side of the equation of `field` (on the fast ring when `fast`): flux advection
    /// along periodic axes reads face copies when the lowering makes them (`faceFluxes`).
    member _.LowerEquation(field: string, fast: bool, e: Expr) : KExpr =
        lowerExpr field "the equation" fast faceFluxes e
