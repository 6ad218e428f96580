namespace Hybrid.Compiler

open System
open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// The eager back end's expressions: each expression of a resolved model translated once into a closure over
/// tensors (no interpretation of the IR per step). Repeated subexpressions are computed once per evaluation,
/// left-nested sums and products evaluate in loops, and the terms the stability check needs register probes.
type internal ExprCompiler(r: Resolved) =
    let model = r.Model
    let grid = r.Grid
    let dtype = r.Dtype
    let device = r.Device
    let fieldIndex = r.FieldIndex
    let isFast = r.IsFast
    let fastSites = r.FastSites
    let paramIndex = r.ParamIndex
    let constants = r.Constants
    let forcings = r.Forcings
    let modules = r.Modules
    let moduleIndex = r.ModuleIndex
    let arity = r.Arity
    let keep (t: torch.Tensor) = t.DetachFromDisposeScope()
    let constant = Resolve.constant r
    let passedChecks = Resolve.passedChecks model

    /// The left spine of a chain of binary nodes that `split` recognises: a ∘₁ b ∘₂ c ↦ (a, [∘₁, b; ∘₂, c]),
    /// walked iteratively, so that left-nested sums and products of any length compile and evaluate in a loop,
    /// in the order written.
    let leftSpine (split: Expr -> (Expr * 'op * Expr) option) (e: Expr) : Expr * ('op * Expr) list =
        let rest = ResizeArray<'op * Expr>()
        let mutable node = e
        let mutable walking = true

        while walking do
            match split node with
            | Some(a, op, b) ->
                rest.Add((op, b))
                node <- a
            | None -> walking <- false

        node, List.rev (List.ofSeq rest)

    let centres = Array.init grid.Dims (fun a -> keep (Grid.coordinate grid a dtype))

    // Fast site index n = 0 … K·J − 1, the coordinate `x` inside fast equations and initial conditions.
    let fastCoordinate =
        match grid with
        | Grid.Lattice(k, j) when j > 0 ->
            let sites = Array.init (k * j) float
            keep (torch.tensor(sites, dtype = dtype, device = device).reshape ([| 1L; int64 (k * j) |]))
        | _ -> null

    // Compile-time flag: true while compiling an expression evaluated on the fast ring (a fast field's
    // equation or initial condition, or the argument of Σⱼ).
    let fast = ref false

    let onFastRing (value: bool) (compile: unit -> 'a) =
        let before = fast.Value
        fast.Value <- value

        try
            compile ()
        finally
            fast.Value <- before

    /// A slow [B; K] value seen from the fast ring [B; K·J]: each slow site repeated for its J fast sites.
    let toFastRing (v: torch.Tensor) =
        v.repeat_interleave (int64 fastSites, dim = 1L)

    let faceCoords =
        Array.init grid.Dims (fun a -> keep (Grid.faceCoordinate grid a dtype))

    let unknown (name: string) =
        passedChecks $"the undefined symbol '{name}'"

    let fieldsOf (e: Expr) : Set<int> =
        let found = HashSet<int>()

        e
        |> Expr.iter (fun s ->
            match s with
            | Sym n
            | Shift(n, _, _) when fieldIndex.ContainsKey n -> found.Add fieldIndex[n] |> ignore
            | _ -> ())

        Set.ofSeq found

    /// The indices in θ of the spatial parameters `e` reads.
    let spatialParamsOf (e: Expr) : Set<int> =
        Expr.subterms e
        |> List.choose (fun s ->
            match s with
            | Sym n when paramIndex.ContainsKey n && r.System.ParamSpatial[paramIndex[n]] -> Some paramIndex[n]
            | _ -> None)
        |> Set.ofList

    /// The ghost cells of a spatial parameter inside a diffusion coefficient of an operand with conditions
    /// `operand`: wrapped along the axes where the operand is periodic, the edge value repeated elsewhere, so
    /// that its face values are the mean of the two cells (the edge cell's own value at a wall).
    let parameterSides (operand: FieldBoundary) : FieldBoundary =
        operand
        |> Array.map (fun (sides: Sides) ->
            match sides.Low with
            | Bc.Periodic -> sides
            | _ -> Boundary.both Bc.NoFlux)

    let usesTime (e: Expr) =
        e
        |> Expr.exists (fun s ->
            match s with
            | Sym "t" -> true
            | _ -> false)

    // Boundary conditions: per field, a function of the context giving the FieldBoundary. Boundary values that
    // are expressions compile on first use, through `boundaryExpr` (set once `compileExpr` exists).
    let boundaryExpr: (Expr -> Ctx -> torch.Tensor) ref =
        ref (fun _ _ -> failwith "not ready")

    let boundaries = Boundaries.ofFields r (fun e -> boundaryExpr.Value e)

    // Diagnostic fields: their boundary conditions per context, and their solves (compiled on first use).
    let diagnosticIndex =
        r.System.Diagnostics |> Array.mapi (fun i d -> d.Field, i) |> dict

    let diagnosticBoundaries =
        Boundaries.ofConditions r r.System.DiagnosticConditions (fun e -> boundaryExpr.Value e)

    let diagnosticsIn (e: Expr) : string list =
        Expr.subterms e
        |> List.choose (fun s ->
            match s with
            | Sym n when diagnosticIndex.ContainsKey n -> Some n
            | _ -> None)
        |> List.distinct

    let bcsOf (e: Expr) : Ctx -> FieldBoundary =
        match diagnosticsIn e with
        | d :: _ when (fieldsOf e).IsEmpty -> diagnosticBoundaries[diagnosticIndex[d]]
        | _ -> Boundaries.ofOperand r boundaries (fieldsOf e)

    let diagnosticSolves = Dictionary<string, Ctx -> torch.Tensor>()

    /// The conditions of `e` (an operand that reads no field), periodic on the axes where `like`'s are.
    let wrapsLike (like: Expr) (e: Expr) : Ctx -> FieldBoundary =
        let own, other = bcsOf e, bcsOf like

        fun c ->
            Array.map2
                (fun (mine: Sides) (theirs: Sides) ->
                    match theirs.Low with
                    | Bc.Periodic -> theirs
                    | _ -> mine)
                (own c)
                (other c)

    let diffusivityProbes = List<bool * (Ctx -> float)>()
    let speedProbes = List<Ctx -> float>()

    let maxAbs (t: torch.Tensor) = t.abs().max().ToDouble()

    // Subexpressions that occur more than once in the equations (e.g. u·v² in both Gray–Scott equations)
    // are computed once per right-hand-side evaluation and shared. One bottom-up pass numbers every node
    // by its structure (a node's number from its own data and its children's numbers), so equal subtrees
    // get equal numbers in time linear in the equations' size.
    let structureOf = Dictionary<Expr, int>(HashIdentity.Reference)

    let repeated =
        let numbers = Dictionary<struct (Expr * int list), int>()
        let counts = Dictionary<int, int>()

        for eq in model.Equations do
            eq.Rhs
            |> Expr.fold (fun node ids ->
                let shallow =
                    if ids.IsEmpty then
                        node
                    else
                        Expr.withChildren node (ids |> List.map (fun _ -> Num 0.0))

                let key = struct (shallow, ids)

                let id =
                    match numbers.TryGetValue key with
                    | true, id -> id
                    | _ ->
                        let id = numbers.Count
                        numbers[key] <- id
                        id

                structureOf[node] <- id

                match node with
                | Num _
                | Sym _ -> ()
                | _ ->
                    counts[id] <-
                        (match counts.TryGetValue id with
                         | true, n -> n + 1
                         | _ -> 1)

                id)
            |> ignore

        counts
        |> Seq.filter (fun kv -> kv.Value > 1)
        |> Seq.map (fun kv -> kv.Key)
        |> HashSet

    let repeatedNumber (e: Expr) =
        match structureOf.TryGetValue e with
        | true, id when repeated.Contains id -> Some id
        | _ -> None

    let sharedCompiled = Dictionary<struct (int * bool), Ctx -> torch.Tensor>()

    /// `f` evaluated once per context: a second call with the same `Ctx` returns the first result.
    let once (f: Ctx -> torch.Tensor) : Ctx -> torch.Tensor =
        let mutable lastCtx = Unchecked.defaultof<Ctx>
        let mutable last: torch.Tensor = null

        fun c ->
            if obj.ReferenceEquals(c, lastCtx) then
                last
            else
                let v = f c
                lastCtx <- c
                last <- v
                v

    let closureDecl (name: string) =
        match model.Closures |> List.tryFind (fun c -> c.Name = name) with
        | Some c -> c
        | None -> raise (unknown name)

    let fieldwise (name: string) =
        model.Closures |> List.exists (fun c -> c.Name = name && Model.isFieldwise c)

    // One evaluator per closure over whole fields and argument list, run once per context: every output the
    // equations pick comes from the same forward pass.
    let fieldwiseRuns =
        Dictionary<struct (string * Expr list), Ctx -> torch.Tensor>(HashIdentity.Structural)

    /// A closure over whole fields at `args`: the arguments broadcast to [B; spatial…] and stacked as channels
    /// [B; arity; spatial…], the module applied once per context; [B; outputs; spatial…].
    let fieldwiseRun (compileArg: Expr -> Ctx -> torch.Tensor) (name: string) (args: Expr list) =
        let key = struct (name, args)

        match fieldwiseRuns.TryGetValue key with
        | true, f -> f
        | _ ->
            let c = closureDecl name

            if c.Arity <> args.Length then
                raise (passedChecks $"the call of '{name}' with {args.Length} argument(s)")

            if fast.Value then
                raise (passedChecks $"the closure '{name}' over whole fields on the fast ring")

            let m = snd modules[moduleIndex[name]]
            let outputs = Model.outputs c
            let fargs: (Ctx -> torch.Tensor)[] = args |> List.map compileArg |> Array.ofList
            let spatial = grid.Shape

            let f =
                once (fun ctx ->
                    let values: torch.Tensor[] =
                        torch.broadcast_tensors (fargs |> Array.map (fun f -> f ctx)) |> Array.ofSeq

                    let values: torch.Tensor[] =
                        if values[0].dim () = int64 spatial.Length then
                            values |> Array.map (fun v -> v.unsqueeze 0L)
                        else
                            values

                    let batch = ctx.Fields[0].shape[0]

                    let values: torch.Tensor[] =
                        values |> Array.map (fun v -> v.expand (Array.append [| batch |] spatial))

                    let y = m.forward (torch.stack (values, 1L))
                    FieldwiseOutput.check name outputs spatial y
                    y)

            fieldwiseRuns[key] <- f
            f

    let rec compileExpr (e: Expr) : Ctx -> torch.Tensor =
        match repeatedNumber e with
        | Some id ->
            let key = struct (id, fast.Value)

            match sharedCompiled.TryGetValue key with
            | true, f -> f
            | _ ->
                let f = once (compileTerm e)
                sharedCompiled[key] <- f
                f
        | None -> compileTerm e

    and compileTerm (e: Expr) : Ctx -> torch.Tensor =
        match e with
        | Num v ->
            let c = constant v
            fun _ -> c
        | Sym n when fieldIndex.ContainsKey n ->
            let i = fieldIndex[n]

            match fast.Value, isFast[i] with
            | true, false -> fun c -> toFastRing c.Fields[i]
            | false, true -> raise (passedChecks $"the fast field '{n}' outside Σⱼ")
            | _ -> fun c -> c.Fields[i]
        | Sym n when paramIndex.ContainsKey n ->
            let i = paramIndex[n]
            fun c -> c.Theta[i]
        | Sym n when constants.ContainsKey n ->
            let k = constant constants[n]
            fun _ -> k
        | Sym n when forcings.ContainsKey n ->
            let f = forcings[n]
            fun c -> f c.T
        | Sym n when diagnosticIndex.ContainsKey n -> compileDiagnostic n
        | Sym "x" when fast.Value -> fun _ -> fastCoordinate
        | Sym "x" when grid.Dims >= 1 -> fun c -> c.Coords[0]
        | Sym "y" when grid.Dims >= 2 -> fun c -> c.Coords[1]
        | Sym "t" -> fun c -> torch.tensor (c.T, dtype = dtype, device = device)
        | Sym n -> raise (unknown n)
        | Neg a ->
            let fa = compileExpr a
            fun c -> -(fa c)
        | Add _
        | Sub _ -> compileChain e
        | Mul _
        | Div _ -> compileChain e
        | PowInt(a, n) ->
            let fa = compileExpr a

            match n with
            | 0 -> fun c -> torch.ones_like (fa c)
            | 1 -> fa
            | 2 -> fun c -> square (fa c)
            | 3 ->
                fun c ->
                    let x = fa c
                    x * x * x
            | -1 -> fun c -> (fa c).reciprocal ()
            | _ ->
                fun c ->
                    let x = fa c
                    withScalar (float n) (fun s -> x.pow s)
        | PowReal(a, b) ->
            let fa, fb = compileExpr a, compileExpr b
            fun c -> torch.pow (fa c, fb c)
        | Apply(fn, a) ->
            let fa = compileExpr a

            match fn with
            | Fn.Exp -> fun c -> torch.exp (fa c)
            | Fn.Log -> fun c -> torch.log (fa c)
            | Fn.Sqrt -> fun c -> torch.sqrt (fa c)
            | Fn.Abs -> fun c -> torch.abs (fa c)
            | Fn.Sin -> fun c -> torch.sin (fa c)
            | Fn.Cos -> fun c -> torch.cos (fa c)
            | Fn.Tanh -> fun c -> torch.tanh (fa c)
            | Fn.Sigmoid -> fun c -> torch.sigmoid (fa c)
            | Fn.Softplus -> fun c -> softplus (fa c)
        | Min(a, b) ->
            let fa, fb = compileExpr a, compileExpr b
            fun c -> torch.minimum (fa c, fb c)
        | Max(a, b) ->
            let fa, fb = compileExpr a, compileExpr b
            fun c -> torch.maximum (fa c, fb c)
        | Call(name, args) when fieldwise name ->
            let run = fieldwiseRun compileExpr name args
            fun c -> (run c).select (1L, 0L)
        | CallOutput(name, i, args) when fieldwise name ->
            if i < 1 || i > Model.outputs (closureDecl name) then
                raise (passedChecks $"output {i} of '{name}'")

            let run = fieldwiseRun compileExpr name args
            let channel = int64 (i - 1)
            fun c -> (run c).select (1L, channel)
        | CallOutput(name, 1, args) -> compileTerm (Call(name, args))
        | CallOutput(name, i, _) -> raise (passedChecks $"output {i} of the one-output closure '{name}'")
        | Call(name, args) ->
            if not (moduleIndex.ContainsKey name) then
                raise (unknown name)

            if arity[name] <> args.Length then
                raise (passedChecks $"the call of '{name}' with {args.Length} argument(s)")

            let m = snd modules[moduleIndex[name]]
            let fargs = args |> List.map compileExpr |> Array.ofList

            fun c ->
                let values = torch.broadcast_tensors (fargs |> Array.map (fun f -> f c))
                let input = torch.stack (values, -1L)
                m.forward(input).squeeze (-1L)
        | Partial(axis, a) ->
            let d =
                match axis with
                | Axis.X -> 0
                | Axis.Y -> 1

            let fa = compileExpr a
            let bcs = bcsOf a
            fun c -> Operators.partial grid (bcs c) d (fa c)
        | Laplacian a ->
            let fa = compileExpr a
            let bcs = bcsOf a
            fun c -> Operators.laplacian grid (bcs c) (fa c)
        | Divergence inner -> compileDivergence inner
        | Advect(vs, a) ->
            let fvs = vs |> List.map compileExpr |> Array.ofList
            let fa = compileExpr a
            let bcs = bcsOf a
            speedProbes.Add(fun c -> fvs |> Array.sumBy (fun f -> maxAbs (f c)))
            fun c -> Operators.advection grid (bcs c) (fvs |> Array.map (fun f -> f c)) (fa c)
        | Shift(n, LatticeIndex.K, m) when fieldIndex.ContainsKey n ->
            let i = fieldIndex[n]

            match fast.Value, isFast[i] with
            | true, false -> fun c -> toFastRing (Operators.shift m c.Fields[i])
            | false, true -> raise (passedChecks $"the fast field '{n}' outside Σⱼ")
            // A fast field at slow site k + m, same j: J·m sites along the ring.
            | true, true -> fun c -> Operators.shift (m * fastSites) c.Fields[i]
            | false, false -> fun c -> Operators.shift m c.Fields[i]
        | Shift(n, LatticeIndex.K, _) -> raise (unknown n)
        | Shift(n, LatticeIndex.J, m) when fieldIndex.ContainsKey n ->
            let i = fieldIndex[n]

            if not isFast[i] then
                raise (passedChecks $"the slow field '{n}' shifted along j")

            if not fast.Value then
                raise (passedChecks $"the fast field '{n}' outside Σⱼ")

            fun c -> Operators.shift m c.Fields[i]
        | Shift(n, LatticeIndex.J, _) -> raise (unknown n)
        | FastSum a ->
            if fast.Value then
                raise (passedChecks "a fast sum Σⱼ inside a fast expression")

            if fastSites = 0 then
                raise (passedChecks "Σⱼ without fast sites")

            let fa = onFastRing true (fun () -> compileExpr a)
            let k = int64 grid.Shape[0]

            fun c ->
                let batch = c.Fields[0].shape[0]
                let v = (fa c).expand ([| batch; k * int64 fastSites |])
                v.reshape([| batch; k; int64 fastSites |]).sum (2L)
        | Grad _ -> raise (passedChecks "a gradient outside a divergence")
        | Jacobian(a, b) ->
            let fa, fb = compileExpr a, compileExpr b
            // An operand that reads no field (e.g. a streamfunction of x and y) wraps on the axes where the other
            // operand is periodic.
            let ba, bb =
                match (fieldsOf a).IsEmpty, (fieldsOf b).IsEmpty with
                | true, false -> wrapsLike b a, bcsOf b
                | false, true -> bcsOf a, wrapsLike a b
                | _ -> bcsOf a, bcsOf b

            fun c -> Operators.jacobian grid (ba c) (bb c) (fa c) (fb c)
        | FluxAdvect(vs, a) ->
            let fvs = vs |> List.map compileExpr |> Array.ofList
            let fa = compileExpr a
            let bcs = bcsOf a
            // A velocity that reads no field wraps on the axes where the tracer is periodic: both boundary faces of
            // such an axis then get one velocity, and Σq is conserved.
            let bvs =
                vs
                |> List.map (fun v -> if (fieldsOf v).IsEmpty then wrapsLike a v else bcsOf v)
                |> Array.ofList

            speedProbes.Add(fun c -> fvs |> Array.sumBy (fun f -> maxAbs (f c)))

            fun c ->
                Operators.fluxAdvection
                    grid
                    (bvs |> Array.map (fun b -> b c))
                    (bcs c)
                    (fvs |> Array.map (fun f -> f c))
                    (fa c)

    /// The diagnostic field `n`: its elliptic equation solved once per context (`EllipticSolve`), after the
    /// diagnostic fields its right-hand side uses (compiled first by the same recursion; `Checks` refuses cycles).
    and compileDiagnostic (n: string) : Ctx -> torch.Tensor =
        match diagnosticSolves.TryGetValue n with
        | true, f -> f
        | _ ->
            let i = diagnosticIndex[n]
            let eq = r.System.Diagnostics[i]
            let zero = constant 0.0

            let kinds =
                r.System.DiagnosticConditions[i]
                |> Array.map (fun (lo, hi) ->
                    let kind (b: BoundaryCondition) =
                        match b with
                        | BoundaryCondition.Periodic -> Bc.Periodic
                        | BoundaryCondition.NoFlux -> Bc.NoFlux
                        | BoundaryCondition.Dirichlet _ -> Bc.Dirichlet zero
                        | BoundaryCondition.Neumann _ -> Bc.Neumann zero

                    { Low = kind lo; High = kind hi })

            let solver =
                EllipticSolve.create
                    grid
                    kinds
                    eq.Screening
                    dtype
                    device
                    (EllipticSolve.tolerance dtype)
                    (EllipticSolve.caller $"the diagnostic field '{n}' ({Print.ellipticEquation Notation.Unicode eq})")

            let frhs = onFastRing false (fun () -> compileExpr eq.Rhs)
            let bcs = diagnosticBoundaries[i]

            let solve =
                once (fun c ->
                    let batch = if c.Fields.Length > 0 then int c.Fields[0].shape[0] else 1
                    let rhs = (frhs c).expand (Grid.fieldShape grid batch)
                    solver.Solve (bcs c) rhs)

            // Inside a flux coefficient on the faces along axis a: the cell-centred solution (solved once per
            // context, shared with the equations' other uses of it) averaged to the faces like any field.
            let f (c: Ctx) =
                match c.Faces with
                | Some(cells, a) -> Operators.toFaces grid (bcs cells) a (solve cells)
                | None -> solve c

            diagnosticSolves[n] <- f
            f

    /// A left-nested chain of sums and differences, or of products and quotients, evaluated in a loop in
    /// the order written (the same operations, and so the same rounding, as nested binary nodes). Numbers
    /// enter as scalars where that is exact: a ± v, v − a, a · v, v · a, a / v.
    and compileChain (e: Expr) : Ctx -> torch.Tensor =
        let first, rest =
            leftSpine
                (fun node ->
                    match e, node with
                    | (Add _ | Sub _), Add(a, b) -> Some(a, '+', b)
                    | (Add _ | Sub _), Sub(a, b) -> Some(a, '-', b)
                    | (Mul _ | Div _), Mul(a, b) -> Some(a, '*', b)
                    | (Mul _ | Div _), Div(a, b) -> Some(a, '/', b)
                    | _ -> None)
                e

        let operands =
            rest
            |> List.map (fun (op, b) ->
                match b with
                | Num v -> op, Choice1Of2 v
                | _ -> op, Choice2Of2(compileExpr b))
            |> Array.ofList

        // A leading number stays a scalar before a tensor operand it combines with exactly (+, −, ·).
        let start: Choice<float, Ctx -> torch.Tensor> =
            match first, Array.tryHead operands with
            | Num v, Some(('+' | '-' | '*'), Choice2Of2 _) -> Choice1Of2 v
            | _ -> Choice2Of2(compileExpr first)

        let apply (op: char) (acc: torch.Tensor) (x: torch.Tensor) =
            match op with
            | '+' -> acc .+ x
            | '-' -> acc - x
            | '*' -> acc * x
            | _ -> acc / x

        let applyScalar (op: char) (acc: torch.Tensor) (v: float) =
            match op with
            | '+' -> acc .+ v
            | '-' -> acc .- v
            | '*' -> acc .* v
            | _ -> acc ./ v

        fun c ->
            let mutable i = 0

            let mutable acc =
                match start, operands[0] with
                | Choice1Of2 v, (op, Choice2Of2 fx) ->
                    i <- 1

                    match op with
                    | '+' -> v .+ fx c
                    | '-' -> v .- fx c
                    | _ -> v .* fx c
                | Choice2Of2 f, _ -> f c
                | Choice1Of2 v, _ -> constant v

            while i < operands.Length do
                acc <-
                    match operands[i] with
                    | op, Choice1Of2 v -> applyScalar op acc v
                    | op, Choice2Of2 fx -> apply op acc (fx c)

                i <- i + 1

            acc

    /// ∇·(inner): conservative flux form when inner = κ ∇u (κ evaluated at faces), generic otherwise.
    and compileDivergence (inner: Expr) : Ctx -> torch.Tensor =
        let fs = Expr.factors inner

        match
            fs
            |> List.partition (fun f ->
                match f with
                | Grad _ -> true
                | _ -> false)
        with
        | [ Grad u ], kappaFactors ->
            let fu = compileExpr u
            let bcs = bcsOf u
            let kappa = Expr.product kappaFactors
            let kappaFields = fieldsOf kappa
            let kappaSpatial = spatialParamsOf kappa
            let fk = compileExpr kappa

            // κ at the faces along axis a: fields and spatial parameters replaced by their face values, coordinates
            // by faces.
            let atFaces (c: Ctx) (a: int) =
                if kappaFactors.IsEmpty then
                    fk c
                else
                    let faceFields =
                        c.Fields
                        |> Array.mapi (fun i f ->
                            if kappaFields.Contains i then
                                Operators.toFaces grid (boundaries[i]c) a f
                            else
                                f)

                    let faceTheta =
                        if kappaSpatial.IsEmpty then
                            c.Theta
                        else
                            let sides = parameterSides (bcs c)

                            c.Theta
                            |> Array.mapi (fun i p ->
                                if kappaSpatial.Contains i then
                                    Operators.toFaces grid sides a p
                                else
                                    p)

                    let coords =
                        Array.init grid.Dims (fun d -> if d = a then faceCoords[a] else c.Coords[d])

                    fk {
                        c with
                            Fields = faceFields
                            Theta = faceTheta
                            Coords = coords
                            Faces = Some(c, a)
                    }

            diffusivityProbes.Add(false, (fun c -> Array.init grid.Dims (fun a -> maxAbs (atFaces c a)) |> Array.max))

            fun c -> Operators.diffusion grid (bcs c) (atFaces c) (fu c)
        | _ ->
            let rec vector (e: Expr) : Ctx -> torch.Tensor[] =
                match e with
                | Grad a ->
                    let fa = compileExpr a
                    let bcs = bcsOf a
                    fun c -> Operators.gradient grid (bcs c) (fa c)
                | Mul(s, v) when
                    not (
                        Expr.subterms s
                        |> List.exists (fun t ->
                            match t with
                            | Grad _ -> true
                            | _ -> false)
                    )
                    ->
                    let fs, fv = compileExpr s, vector v
                    fun c -> let k = fs c in fv c |> Array.map (fun x -> k * x)
                | Mul(v, s) ->
                    let fs, fv = compileExpr s, vector v
                    fun c -> let k = fs c in fv c |> Array.map (fun x -> x * k)
                | Add(a, b) ->
                    let fa, fb = vector a, vector b
                    fun c -> Array.map2 (.+) (fa c) (fb c)
                | Sub(a, b) ->
                    let fa, fb = vector a, vector b
                    fun c -> Array.map2 (-) (fa c) (fb c)
                | Neg a ->
                    let fa = vector a
                    fun c -> fa c |> Array.map (fun x -> -x)
                | _ -> raise (passedChecks $"the divergence of '{e}', not a vector")

            let fv = vector inner
            let bcs = bcsOf inner
            fun c -> Operators.divergence grid (bcs c) (fv c)

    do boundaryExpr.Value <- compileExpr

    /// The closure evaluating `e` against a context.
    member _.Compile(e: Expr) : Ctx -> torch.Tensor = compileExpr e

    /// Compiles with `fast` set: true for an expression evaluated on the fast ring of a two-scale lattice (a
    /// fast field's equation or initial condition).
    member _.OnFastRing(fast: bool, compile: unit -> 'a) : 'a = onFastRing fast compile

    /// The state indices of the fields `e` reads.
    member _.FieldsOf(e: Expr) : Set<int> = fieldsOf e

    /// Whether `e` reads a diagnostic field (whose value depends on every field through its elliptic solve).
    member _.UsesDiagnostic(e: Expr) : bool = not (diagnosticsIn e).IsEmpty

    /// Each diagnostic field's value in a context, in the order of `ResolvedSystem.Diagnostics`.
    member _.Diagnostics: (Ctx -> torch.Tensor)[] =
        r.System.Diagnostics |> Array.map (fun d -> compileDiagnostic d.Field)

    /// Whether `e` reads the time t.
    member _.UsesTime(e: Expr) : bool = usesTime e

    /// The cell-centre coordinates per axis.
    member _.Centres: torch.Tensor[] = centres

    /// Diffusivity probes (stiff?, probe): each bounds a diffusion coefficient of a compiled term.
    member _.DiffusivityProbes: List<bool * (Ctx -> float)> = diffusivityProbes

    /// Speed probes: each bounds an advection speed of a compiled term.
    member _.SpeedProbes: List<Ctx -> float> = speedProbes
