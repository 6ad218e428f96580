namespace Hybrid.Compiler

open System
open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// What an expression is evaluated against: the state, the parameter values θ, the time, the coordinates
/// (cell centres, or faces along one axis inside a flux coefficient).
type internal Ctx = {
    Fields: torch.Tensor[]
    Theta: torch.Tensor[]
    T: float
    Coords: torch.Tensor[]
}

/// Options of `Compiler.compile`.
type CompileOptions = {
    /// Precision of every tensor the simulator creates (default Float64).
    Dtype: torch.ScalarType
    /// Put linear diffusion terms (Δu, ∇·(κ∇u) with κ free of fields and t) in the stiff part, solved
    /// implicitly by the IMEX schemes (explicit schemes still integrate them explicitly).
    ImplicitDiffusion: bool
    /// Modules for closures declared with `Architecture.Named` (and overrides for MLP closures), by name.
    /// A module maps [..., arity] to [..., 1].
    Modules: Map<string, torch.nn.Module<torch.Tensor, torch.Tensor>>
    /// Forcings by name: time ↦ tensor broadcastable to the fields ([B; spatial…], [1; spatial…] or 0-dim).
    Forcings: Map<string, float -> torch.Tensor>
    /// Initial-condition data by key (`InitialCondition.FromData`), shape [B; spatial…].
    Data: Map<string, torch.Tensor>
    /// Seed for the initial weights of MLP closures.
    Seed: int
    /// Which back end runs `Simulate`: `Auto` (the default) takes the generated kernels wherever they apply.
    Backend: Backend
}

/// A model compiled to a differentiable simulator.
type Simulator
    internal
    (
        model: Model,
        grid: Grid,
        dtype: torch.ScalarType,
        parameters: Param[],
        modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>)[],
        dynamics: Dynamics,
        initial: int -> torch.Tensor[] -> torch.Tensor[],
        backend: Backend,
        forcings: Map<string, float -> torch.Tensor>
    ) =

    // Kernels per explicit scheme, generated on first use (or why they cannot be).
    let kernels =
        System.Collections.Concurrent.ConcurrentDictionary<Scheme, Lazy<Result<Hybrid.Fused.FusedSimulator, string>>>()

    let kernelsFor (scheme: Scheme) =
        kernels
            .GetOrAdd(
                scheme,
                fun s ->
                    lazy
                        (try
                            Ok(
                                Hybrid.Fused.Fused.compileWith
                                    {
                                        Modules = Map.ofArray modules
                                        Forcings = forcings
                                    }
                                    s
                                    model
                            )
                         with :? ModelException as e ->
                             Error e.Message)
            )
            .Value

    // The kernel generator walks expressions recursively: deeper ones run on the eager back end.
    let deepest =
        lazy (model.Equations |> List.fold (fun m eq -> max m (Expr.depth eq.Rhs)) 0)

    /// The kernels and their schedule for a rollout with these options, or why the eager back end runs it.
    let choose (options: RolloutOptions) : Result<Hybrid.Fused.FusedSimulator * KernelSchedule, string> =
        if backend = Backend.Eager then
            Error "the simulator was compiled with Backend.Eager"
        elif Engine.torchDevice().``type`` <> DeviceType.CPU then
            Error "the generated kernels run on the CPU only, and the device is not the CPU"
        elif deepest.Value > KernelRollout.maxDepth then
            Error
                $"an equation nests {deepest.Value} levels deep (e.g. a sum of that many terms); the kernel generator takes up to {KernelRollout.maxDepth}"
        elif Integrators.isImex options.Scheme then
            Error $"{options.Scheme} is an IMEX scheme; the generated kernels are explicit (Euler, Heun, SspRk3, Rk4)"
        else
            match kernelsFor options.Scheme with
            | Error why -> Error why
            | Ok fused ->
                let stateBytes =
                    8L
                    * int64 grid.CellCount
                    * int64 dynamics.Fields.Length
                    * int64 (Integrators.order options.Scheme + 1)

                KernelRollout.schedule options stateBytes |> Result.map (fun k -> fused, k)

    /// The model it was compiled from.
    member _.Model = model

    /// The grid.
    member _.Grid = grid

    /// The precision of its tensors.
    member _.Dtype = dtype

    /// Field names in state order.
    member _.Fields = dynamics.Fields

    /// Scientific parameters θ in declaration order (constrained; `Raw` is what optimisers update).
    member _.Parameters = parameters

    /// The parameter named `name`; raises `ModelException` naming the declared ones otherwise.
    member _.Param(name: string) : Param =
        match parameters |> Array.tryFind (fun p -> p.Name = name) with
        | Some p -> p
        | None ->
            let names = String.Join(", ", parameters |> Array.map (fun p -> p.Name))
            raise (ModelException($"Model '{model.Name}' has no parameter '{name}'. Declared: {names}."))

    /// Neural closures by name.
    member _.Modules = modules

    /// The semi-discrete system (θ = `Theta ()`), for `Rollout.run` and `Residual.compute`.
    member _.Dynamics = dynamics

    /// Current constrained parameter values θ (differentiable with respect to the raw parameters).
    member _.Theta() : torch.Tensor[] =
        parameters |> Array.map (fun p -> p.Value)

    /// Everything trainable: raw values of learnable parameters (θ) and closure weights (φ).
    member _.Trainable() : Modules.Parameter[] =
        Array.append
            (parameters |> Array.filter (fun p -> p.Learnable) |> Array.map (fun p -> p.Raw))
            (modules |> Array.collect (fun (_, m) -> m.parameters () |> Array.ofSeq))

    /// The initial state of `batch` trajectories from the model's initial conditions.
    member s.Initial(batch: int) : torch.Tensor[] =
        use _ = torch.no_grad ()
        initial batch (s.Theta())

    /// The back end it was compiled for (`CompileOptions.Backend`).
    member _.Backend = backend

    /// Which back end `Simulate` runs a rollout with these options on (`Backend.Eager` or `Backend.Kernels`), and
    /// why the eager one where the kernels do not apply (empty when they do).
    member _.BackendFor(options: RolloutOptions) : Backend * string =
        match choose options with
        | Ok _ -> Backend.Kernels, ""
        | Error why -> Backend.Eager, why

    /// Integrates from `u0` with the current parameters, on the generated kernels or the eager back end (see
    /// `Backend`; the result's `Backend` says which ran). Gradients flow to `u0`, θ and the networks either way.
    member s.Simulate(u0: torch.Tensor[], options: RolloutOptions) : Trajectory =
        match choose options with
        | Ok(fused, schedule) ->
            let theta = s.Theta()
            Rollout.checkStability dynamics theta u0 options
            KernelRollout.run fused u0 theta options schedule
        | Error why when backend = Backend.Kernels ->
            raise (
                ModelException(
                    $"Model '{model.Name}' cannot run on the generated kernels: {why}. Compile with Backend.Auto (kernels where they apply) or Backend.Eager."
                )
            )
        | Error _ -> Rollout.run dynamics (s.Theta()) u0 options

    /// The physics residual of a trajectory under the current parameters.
    member s.Residual(form: ResidualForm, times: float[], values: torch.Tensor[]) : ResidualResult =
        Residual.compute dynamics (s.Theta()) form times values

/// Compiles a `Model` (Hybrid.Dsl IR) into a `Simulator`: the expression tree is translated once into a
/// tree of F# closures over tensors (no interpretation of the IR per step).
[<RequireQualifiedAccess>]
module Compiler =

    /// Float64, explicit diffusion, no modules, forcings or data, seed 0, `Backend.Auto`.
    let defaults: CompileOptions = {
        Dtype = torch.ScalarType.Float64
        ImplicitDiffusion = false
        Modules = Map.empty
        Forcings = Map.empty
        Data = Map.empty
        Seed = 0
        Backend = Backend.Auto
    }

    let private keep (t: torch.Tensor) = t.DetachFromDisposeScope()

    let private mlp (name: string) (layers: int list) (act: Activation) (dtype: torch.ScalarType) =
        let widths = Array.ofList layers

        if widths.Length < 2 then
            raise (
                ModelException($"Closure '{name}' needs at least two layer widths (inputs and output), got {layers}.")
            )

        let mods = List<torch.nn.Module<torch.Tensor, torch.Tensor>>()

        for i in 0 .. widths.Length - 2 do
            mods.Add(torch.nn.Linear(int64 widths[i], int64 widths[i + 1]))

            if i < widths.Length - 2 then
                mods.Add(Hybrid.Training.Neural.activationModule act)

        let seq = torch.nn.Sequential(mods)
        seq.``to`` (dtype) |> ignore
        seq :> torch.nn.Module<torch.Tensor, torch.Tensor>

    /// Splits a sum into signed terms: a − (b + c) ↦ [+a; −b; −c] (iterative).
    let private terms (sign: float) (e: Expr) : (float * Expr) list =
        Expr.signedTerms e |> List.map (fun (s, t) -> sign * s, t)

    /// Flattens a product into its factors (iterative).
    let private factors (e: Expr) : Expr list = Expr.factors e

    /// The left spine of a chain of binary nodes that `split` recognises: a ∘₁ b ∘₂ c ↦ (a, [∘₁, b; ∘₂, c]),
    /// walked iteratively, so that left-nested sums and products of any length compile and evaluate in a loop,
    /// in the order written.
    let private leftSpine (split: Expr -> (Expr * 'op * Expr) option) (e: Expr) : Expr * ('op * Expr) list =
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

    /// Compiles `model` into a simulator. Raises `ModelException` for unknown symbols, missing modules,
    /// forcings or data. Two-scale lattices: fast fields are [B; K·J] (site n = k·J + j), a slow field in a fast
    /// equation is read at its parent site, Σⱼ sums a fast expression over each slow site's J fast sites.
    /// Runs inside `TorchGuard` (refused while another thread runs Hybrid); `options.Seed` seeds torch's global
    /// generator inside it, just before the closures' weights are drawn.
    let compile (options: CompileOptions) (model: Model) : Simulator =
        use _ = TorchGuard.enter $"Compiler.compile (model '{model.Name}')"
        Checks.compilable model
        Engine.init ()
        let dtype = options.Dtype
        let device = Engine.torchDevice ()
        let grid = Grid.ofDomain model.Domain
        let fields = model.Fields |> List.map (fun f -> f.Name) |> Array.ofList

        // Two-scale lattices: fast fields live on one ring of K·J sites (site n = k·J + j); see LatticeIndex.
        let isFast = model.Fields |> List.map (fun f -> f.Fast) |> Array.ofList

        let fastSites =
            match grid with
            | Grid.Lattice(_, j) -> j
            | _ -> 0

        let fieldIndex = fields |> Array.mapi (fun i f -> f, i) |> dict

        let constant (v: float) =
            keep (torch.tensor (v, dtype = dtype, device = device))

        let parameters =
            model.Params
            |> List.map (fun p ->
                let shape =
                    match p.Shape with
                    | ParamShape.Scalar -> [||]
                    | ParamShape.Spatial -> Array.append [| 1L |] grid.Shape

                Param(p.Name, p.Constraint, p.Value, shape, dtype, p.Learnable))
            |> Array.ofList

        let paramIndex = parameters |> Array.mapi (fun i p -> p.Name, i) |> dict
        let constants = model.Constants |> List.map (fun c -> c.Name, c.Value) |> dict

        let forcings =
            model.Forcings
            |> List.map (fun f ->
                match options.Forcings.TryFind f.Name with
                | Some g -> f.Name, g
                | None ->
                    raise (
                        ModelException(
                            $"Forcing '{f.Name}' of model '{model.Name}' has no data. Pass it in CompileOptions.Forcings as a function of time."
                        )
                    ))
            |> dict

        torch.manual_seed (int64 options.Seed) |> ignore

        let modules =
            model.Closures
            |> List.map (fun c ->
                match options.Modules.TryFind c.Name, c.Architecture with
                | Some m, _ -> c.Name, m
                | None, Architecture.Mlp(layers, act) -> c.Name, mlp c.Name layers act dtype
                | None, Architecture.Named key ->
                    match options.Modules.TryFind key with
                    | Some m -> c.Name, m
                    | None ->
                        raise (
                            ModelException(
                                $"Closure '{c.Name}' names the module '{key}', which was not supplied. Pass it in CompileOptions.Modules under '{key}'."
                            )
                        ))
            |> Array.ofList

        let moduleIndex = modules |> Array.mapi (fun i (n, _) -> n, i) |> dict
        let arity = model.Closures |> List.map (fun c -> c.Name, c.Arity) |> dict

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

        // What `Checks.compilable` refuses with the user's message; reaching it here is a bug of ours.
        let passedChecks (what: string) =
            InvalidOperationException(
                $"Internal error: {what} in model '{model.Name}' passed Checks.compilable. Please report the model."
            )

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

        let usesTime (e: Expr) =
            e
            |> Expr.exists (fun s ->
                match s with
                | Sym "t" -> true
                | _ -> false)

        // Boundary conditions: per field, a function of the context giving the FieldBoundary.
        let boundaryExpr: (Expr -> Ctx -> torch.Tensor) ref =
            ref (fun _ _ -> failwith "not ready")

        let boundaries: (Ctx -> FieldBoundary)[] =
            fields
            |> Array.map (fun f ->
                if grid.Dims = 0 || grid.IsLattice then
                    fun _ -> [||]
                else
                    let side (s: Side) = Checks.boundaryOf model f s

                    let axisOf (s: Side) =
                        match s with
                        | Side.Left
                        | Side.Right -> 0
                        | Side.Bottom
                        | Side.Top -> 1

                    let make (s: Side) : Ctx -> Bc =
                        let a = axisOf s
                        let ax = grid.Axes[a]
                        let at = constant (if s = Side.Left || s = Side.Bottom then ax.Lo else ax.Hi)

                        let value (e: Expr) =
                            match e with
                            | Num v ->
                                let c = constant v
                                fun (_: Ctx) -> c
                            | _ ->
                                // Compiled on first use: `boundaryExpr` is only set once `compileExpr` exists.
                                let ev = lazy (boundaryExpr.Value e)

                                fun (c: Ctx) ->
                                    let coords = Array.init grid.Dims (fun d -> if d = a then at else c.Coords[d])
                                    ev.Value { c with Coords = coords }

                        match side s with
                        | BoundaryCondition.Periodic -> fun _ -> Bc.Periodic
                        | BoundaryCondition.NoFlux -> fun _ -> Bc.NoFlux
                        | BoundaryCondition.Dirichlet e ->
                            let v = value e
                            fun c -> Bc.Dirichlet(v c)
                        | BoundaryCondition.Neumann e ->
                            let v = value e
                            fun c -> Bc.Neumann(v c)

                    let sides =
                        Array.init grid.Dims (fun a ->
                            if a = 0 then
                                make Side.Left, make Side.Right
                            else
                                make Side.Bottom, make Side.Top)

                    fun c -> sides |> Array.map (fun (lo, hi) -> { Low = lo c; High = hi c }))

        let bcsOf (e: Expr) : Ctx -> FieldBoundary =
            match Set.toList (fieldsOf e) with
            | i :: _ -> boundaries[i]
            | [] -> fun _ -> Boundary.uniform grid Bc.NoFlux

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
                    raise (
                        ModelException(
                            "Σⱼ inside a fast expression has no meaning: sums over fast sites belong in slow equations."
                        )
                    )

                if fastSites = 0 then
                    raise (passedChecks "Σⱼ without fast sites")

                let fa = onFastRing true (fun () -> compileExpr a)
                let k = int64 grid.Shape[0]

                fun c ->
                    let batch = c.Fields[0].shape[0]
                    let v = (fa c).expand ([| batch; k * int64 fastSites |])
                    v.reshape([| batch; k; int64 fastSites |]).sum (2L)
            | Grad _ ->
                raise (ModelException("∇e is vector-valued and can only appear inside ∇·( … ), e.g. div(D * grad(u))."))

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
            let fs = factors inner

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
                let fk = compileExpr kappa

                // κ at the faces along axis a: fields replaced by their face values, coordinates by faces.
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

                        let coords =
                            Array.init grid.Dims (fun d -> if d = a then faceCoords[a] else c.Coords[d])

                        fk {
                            c with
                                Fields = faceFields
                                Coords = coords
                        }

                diffusivityProbes.Add(
                    false,
                    (fun c -> Array.init grid.Dims (fun a -> maxAbs (atFaces c a)) |> Array.max)
                )

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
                    | _ ->
                        raise (
                            ModelException(
                                $"∇·( … ) needs a vector expression built from ∇ (e.g. div(D * grad(u))); got {e}."
                            )
                        )

                let fv = vector inner
                let bcs = bcsOf inner
                fun c -> Operators.divergence grid (bcs c) (fv c)

        boundaryExpr.Value <- compileExpr

        // Each equation: its terms split into stiff (linear diffusion of the field itself) and explicit.
        let equations = fields |> Array.map (fun f -> (Checks.equationOf model f).Rhs)

        let isStiff (self: int) (e: Expr) =
            let fs = factors e

            let coefficientOk (k: Expr list) =
                k
                |> List.forall (fun x -> (fieldsOf x).IsEmpty && not (usesTime x) && not (Expr.hasSpatialOperator x))

            options.ImplicitDiffusion
            && grid.Dims > 0
            && not grid.IsLattice
            && (model.Boundaries
                |> List.filter (fun b -> b.Field = fields[self])
                |> List.forall (fun b ->
                    match b.Condition with
                    | BoundaryCondition.Dirichlet v
                    | BoundaryCondition.Neumann v -> not (usesTime v) && (fieldsOf v).IsEmpty
                    | _ -> true))
            && (match
                    fs
                    |> List.partition (fun x ->
                        match x with
                        | Laplacian(Sym _)
                        | Divergence _ -> true
                        | _ -> false)
                with
                | [ Laplacian(Sym n) ], k -> fieldIndex.TryGetValue n = (true, self) && coefficientOk k
                | [ Divergence inner ], k ->
                    (match
                        factors inner
                        |> List.partition (fun x ->
                            match x with
                            | Grad _ -> true
                            | _ -> false)
                     with
                     | [ Grad(Sym n) ], kappa -> fieldIndex.TryGetValue n = (true, self) && coefficientOk kappa
                     | _ -> false)
                    && coefficientOk k
                | _ -> false)

        let split =
            equations
            |> Array.mapi (fun i rhs ->
                let ts = terms 1.0 rhs
                let stiff, rest = ts |> List.partition (fun (_, t) -> isStiff i t)
                stiff, rest)

        let compileTerms (ts: (float * Expr) list) (probeStiff: bool) : (Ctx -> torch.Tensor) option =
            match ts with
            | [] -> None
            | _ ->
                let before = diffusivityProbes.Count

                let compiled =
                    ts
                    |> List.map (fun (sign, t) ->
                        let fs = factors t
                        let f = compileExpr t

                        // A Laplacian factor: its coefficient (the other factors) bounds the diffusivity.
                        match
                            fs
                            |> List.partition (fun x ->
                                match x with
                                | Laplacian _ -> true
                                | _ -> false)
                        with
                        | [ _ ], k ->
                            let fk = compileExpr (Expr.product k)
                            diffusivityProbes.Add(false, (fun c -> maxAbs (fk c)))
                        | _ -> ()

                        sign, f)

                if probeStiff then
                    for i in before .. diffusivityProbes.Count - 1 do
                        diffusivityProbes[i] <- (true, snd diffusivityProbes[i])

                // Negative terms are subtracted, not negated and added: −a + b becomes b − a (exactly the same
                // value), so a negation kernel is needed only when a sum starts with two negative terms.
                let ordered =
                    match compiled with
                    | (s0, f0) :: (s1, f1) :: rest when s0 < 0.0 && s1 > 0.0 -> (s1, f1) :: (s0, f0) :: rest
                    | _ -> compiled

                let (firstSign, first), rest = ordered.Head, ordered.Tail

                Some(fun c ->
                    let start = if firstSign > 0.0 then first c else -(first c)

                    rest
                    |> List.fold (fun acc (sign, f) -> if sign > 0.0 then acc .+ f c else acc .- f c) start)

        let explicitParts =
            split
            |> Array.mapi (fun i (_, rest) -> onFastRing isFast[i] (fun () -> compileTerms rest false))

        let stiffParts =
            split |> Array.mapi (fun i (stiff, _) -> i, compileTerms stiff true)

        let ctxOf theta t u = {
            Fields = u
            Theta = theta
            T = t
            Coords = centres
        }

        let explicitRhs (theta: torch.Tensor[]) (t: float) (u: torch.Tensor[]) =
            let c = ctxOf theta t u

            explicitParts
            |> Array.mapi (fun i part ->
                match part with
                | Some f -> (f c).expand_as u[i]
                | None -> torch.zeros_like u[i])

        let stiff =
            stiffParts
            |> Array.map (fun (i, part) ->
                part
                |> Option.map (fun f ->
                    fun (theta: torch.Tensor[]) (ui: torch.Tensor) ->
                        // The stiff part only sees its own field; others are not referenced (checked above).
                        let u = Array.init fields.Length (fun j -> if j = i then ui else ui)
                        f (ctxOf theta 0.0 u)))

        let limits (theta: torch.Tensor[]) (u: torch.Tensor[]) =
            let c = ctxOf theta 0.0 u

            let explicitD =
                diffusivityProbes
                |> Seq.filter (fun (s, _) -> not s)
                |> Seq.fold (fun m (_, p) -> max m (p c)) 0.0

            let stiffD =
                diffusivityProbes
                |> Seq.filter fst
                |> Seq.fold (fun m (_, p) -> max m (p c)) 0.0

            {
                Diffusivity = explicitD
                StiffDiffusivity = stiffD
                Speed = speedProbes |> Seq.fold (fun m p -> max m (p c)) 0.0
            }

        // Step limits of single terms (advection speeds, reaction rates), named by term: see StabilityTerms.
        let stability =
            equations
            |> Array.mapi (fun i rhs ->
                StabilityTerms.measure (fun e -> onFastRing isFast[i] (fun () -> compileExpr e)) fields fields[i] rhs)

        let dynamics = {
            Fields = fields
            Grid = grid
            Explicit = explicitRhs
            Stiff = stiff
            Limits = limits
            Terms = fun theta u -> StabilityTerms.limits stability (ctxOf theta 0.0 u)
            Leaves =
                modules
                |> Array.collect (fun (_, m) -> m.parameters () |> Seq.map (fun p -> p :> torch.Tensor) |> Array.ofSeq)
        }

        let initials =
            fields
            |> Array.map (fun f ->
                match model.Initials |> List.tryFind (fun i -> i.Field = f) with
                | Some { Value = InitialCondition.Expr e } ->
                    let i = fieldIndex[f]
                    let fe = onFastRing isFast[i] (fun () -> compileExpr e)
                    let shape batch = Grid.fieldShapeOf grid isFast[i] batch

                    fun (batch: int) (theta: torch.Tensor[]) ->
                        let c = {
                            Fields = [||]
                            Theta = theta
                            T = 0.0
                            Coords = centres
                        }

                        let v = fe c
                        v.expand(shape batch).clone ()
                | Some {
                           Value = InitialCondition.FromData key
                       } ->
                    fun (batch: int) (_: torch.Tensor[]) ->
                        match options.Data.TryFind key with
                        | Some d -> d.expand(Grid.fieldShape grid batch).clone ()
                        | None ->
                            raise (
                                ModelException(
                                    $"The initial condition of '{f}' reads data '{key}', which was not supplied. Pass it in CompileOptions.Data."
                                )
                            )
                | None ->
                    fun _ _ ->
                        raise (
                            ModelException(
                                $"Field '{f}' has no initial condition. Add one, or pass the initial state to Simulate."
                            )
                        ))

        let initial (batch: int) (theta: torch.Tensor[]) =
            initials |> Array.map (fun f -> f batch theta)

        Simulator(model, grid, dtype, parameters, modules, dynamics, initial, options.Backend, options.Forcings)
