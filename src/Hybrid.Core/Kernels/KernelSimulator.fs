namespace Hybrid.Kernels

open System
open System.Collections.Generic
open System.Numerics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

/// A model compiled to generated kernels (forward step and generated adjoint) for one fixed-step scheme: explicit
/// (Euler, Heun, SspRk3, Rk4) or IMEX (ImexEuler, ImexCrankNicolson, with the stiff part's own kernels and solves).
/// Rollouts run in .NET loops over float64 arrays and enter TorchSharp's autograd as one custom function, so
/// losses, parameter constraints and neural networks around them still differentiate through it. A Float32 rollout
/// (initial state in float32) of an explicit scheme, Dopri5 included (`AdaptiveRollout`), runs its kernels, stages
/// and adjoint in float32 arrays (`RolloutPrecision`: twice the SIMD lanes, half the memory traffic), its closures'
/// networks and diagnostic solves in float32 too; IMEX schemes and the other adaptive schemes stay in float64
/// internally, converting at the tensor boundary.
/// Not thread-safe: use one simulator per thread.
type KernelSimulator
    internal
    (
        plan: KernelPlan,
        stiff: StiffPart option,
        scheme: Scheme,
        siteModules: torch.nn.Module<torch.Tensor, torch.Tensor>[],
        forcings: (float -> torch.Tensor)[]
    ) =
    let steppers = Dictionary<int, IStepper<float>>()
    let float32Steppers = Dictionary<int, IStepper<float32>>()
    let rosenbrockSteppers = Dictionary<int, RosenbrockStepper>()

    // The explicit plan's networks, then those only the stiff part's diffusion coefficients call.
    let weights =
        StiffPart.networks (Array.zip (plan.Sites |> Array.map _.Name) siteModules |> Array.distinctBy fst) stiff
        |> Array.collect (fun (_, m) -> m.parameters () |> Seq.map (fun p -> p :> torch.Tensor) |> Array.ofSeq)

    /// The lowered model (its explicit part for an IMEX scheme).
    member internal _.Plan = plan

    /// The stiff part of an IMEX scheme.
    member internal _.Stiff = stiff

    /// The fixed-step scheme.
    member _.Scheme = scheme

    /// Field names in state order.
    member _.Fields = plan.Fields

    /// Parameters (scalar and spatial, in declaration order), in the order `rollout` expects their values.
    member _.Parameters = plan.Params

    /// The weights of the closures' networks (each network once), through which gradients flow.
    member _.Weights = weights

    /// A stepper with scratch buffers for `batch` trajectories (kernels compiled on first use).
    member internal _.Stepper(batch: int) : IStepper<float> =
        match steppers.TryGetValue batch with
        | true, s -> s
        | _ ->
            let s =
                match stiff with
                | _ when scheme = Scheme.KenCarp4 ->
                    KenCarpStepper(plan, stiff, batch, siteModules, forcings) :> IStepper<float>
                | Some part -> ImexStepper(plan, part, scheme, batch, siteModules, forcings) :> IStepper<float>
                | None when scheme = Scheme.Rodas4 ->
                    RosenbrockStepper(plan, batch, siteModules, forcings) :> IStepper<float>
                | None -> Stepper<float>(plan, KernelSimulator.TableauOf scheme, batch, siteModules, forcings)

            steppers[batch] <- s
            s

    /// The Rodas4 stepper of `Scheme.Auto` for `batch` trajectories (its Dopri5 stepper is `Stepper`).
    member internal _.Rosenbrock(batch: int) : RosenbrockStepper =
        match rosenbrockSteppers.TryGetValue batch with
        | true, s -> s
        | _ ->
            let s = RosenbrockStepper(plan, batch, siteModules, forcings)
            rosenbrockSteppers[batch] <- s
            s

    /// The element type a rollout from an initial state of dtype `dtype` computes in: Float32 for a float32 state with
    /// an explicit scheme (fixed-step, or Dopri5), neural closures (run by their float32 networks) and diagnostic
    /// fields (solved in float32, as the eager back end solves them) included; Float64 otherwise (a Float32
    /// simulator's IMEX, KenCarp4 and Rosenbrock rollouts run in float64 internally: their solves are float64).
    member internal _.RolloutPrecision(dtype: torch.ScalarType) : Precision =
        if
            dtype = torch.ScalarType.Float32
            && stiff.IsNone
            && (scheme = Scheme.Dopri5 || not (Scheme.isAdaptive scheme))
        then
            Float32
        else
            Float64

    /// A stepper on element type 'T (`RolloutPrecision`) with scratch buffers for `batch` trajectories: `Stepper` for
    /// float; for float32 the explicit stepper (Dormand and Prince's tableau for Dopri5; raises for the schemes and
    /// models that `RolloutPrecision` keeps in float64).
    member internal this.StepperOf<'T>(batch: int) : IStepper<'T> =
        match KernelElement.precision<'T> () with
        | Float64 -> unbox<IStepper<'T>> (box (this.Stepper batch))
        | Float32 ->
            if this.RolloutPrecision torch.ScalarType.Float32 <> Float32 then
                invalidOp $"The float32 kernels run explicit schemes (fixed-step or Dopri5), not {scheme}."

            match float32Steppers.TryGetValue batch with
            | true, s -> unbox<IStepper<'T>> (box s)
            | _ ->
                let s =
                    Stepper<float32>(plan, KernelSimulator.TableauOf scheme, batch, siteModules, forcings)
                    :> IStepper<float32>

                float32Steppers[batch] <- s
                unbox<IStepper<'T>> (box s)

    /// The explicit Runge–Kutta tableau the kernels step `scheme` with: Dormand and Prince's 7 stages for Dopri5
    /// (whose steps `AdaptiveRollout` sizes), the explicit part's tableau otherwise.
    static member internal TableauOf(scheme: Scheme) : Tableau =
        if scheme = Scheme.Dopri5 || scheme = Scheme.Auto then
            Tableau.dormandPrince
        else
            Tableau.ofScheme (Integrators.explicitPart scheme)

    /// Why the implicit solves of an IMEX scheme do not fit its stiff part at parameter values θ (one tensor per
    /// entry of `Parameters`); None when they do, and for explicit schemes.
    member internal _.ImplicitRefusal(theta: torch.Tensor[]) : string option =
        stiff
        |> Option.bind (fun part ->
            use _ = torch.no_grad ()

            let values =
                theta
                |> Array.collect (fun p ->
                    p.detach().to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray())

            StiffPart.refusal part values)

/// Where each field starts in one trajectory's state vector (its fields' cells one after the other), the
/// vector's length, and states converted between [B; N] values and a stepper's padded per-field arrays.
module internal StateLayout =

    /// Per field: the offset of its cells in a trajectory's state vector; and the vector's length.
    let ofPlan (plan: KernelPlan) =
        let offsets =
            Array.scan (+) 0 (Array.init plan.Fields.Length (KernelPlan.cells plan))

        offsets[.. plan.Fields.Length - 1], Array.last offsets

    /// [B; N] values from index `from` of `values` (an array's or a tensor's storage) as padded per-field arrays
    /// (ghost entries zero), copied run by run (`InteriorRuns`), in a state of the stepper's `StatePool`.
    let toFieldsFrom (stepper: IStepper<'T>) (values: ReadOnlySpan<'T>) (from: int) =
        let offsets, total = ofPlan stepper.Plan
        let padded = (StatePool.Of stepper).Rent true

        for f in 0 .. stepper.Maps.Length - 1 do
            let map = stepper.Maps[f]
            let runs = InteriorRuns.runs map

            for b in 0 .. stepper.Batch - 1 do
                InteriorRuns.copyIn runs values (from + b * total + offsets[f]) padded[f] (b * map.Padded)

        padded

    /// `toFieldsFrom` on an array.
    let toFields (stepper: IStepper<'T>) (values: 'T[]) (from: int) =
        toFieldsFrom stepper (ReadOnlySpan<'T> values) from

    /// `toFieldsFrom` on the values of tensor `x` ([B; N], or [S; B; N] from index `from`), read in place where it is
    /// a contiguous CPU tensor of 'T's dtype (else from a converted copy).
    let ofTensor<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: IStepper<'T>)
        (x: torch.Tensor)
        (from: int)
        =
        let c = KernelElement.contiguous<'T> x

        let padded =
            toFieldsFrom stepper (Span<'T>.op_Implicit (KernelElement.span<'T> c)) from

        GC.KeepAlive c
        padded

    /// Padded per-field arrays as [B; N] values from `values[into]` (an array's or a tensor's storage).
    let ofFieldsInto (stepper: IStepper<'T>) (padded: 'T[][]) (values: Span<'T>) (into: int) =
        let offsets, total = ofPlan stepper.Plan

        for f in 0 .. stepper.Maps.Length - 1 do
            let map = stepper.Maps[f]
            let runs = InteriorRuns.runs map

            for b in 0 .. stepper.Batch - 1 do
                InteriorRuns.copyOut runs padded[f] (b * map.Padded) values (into + b * total + offsets[f])

    /// Padded per-field arrays as [B; N] values.
    let ofFields (stepper: IStepper<'T>) (padded: 'T[][]) =
        let _, total = ofPlan stepper.Plan
        let values = Array.zeroCreate (stepper.Batch * total)
        ofFieldsInto stepper padded (Span<'T> values) 0
        values

    /// Padded states as one new tensor [S; B; N] (float64, or float32 for float32 arrays), written straight into its
    /// storage: no managed copy on the way (a fresh managed array's pages fault on their first writes, `StatePool`).
    let tensorOf<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: IStepper<'T>)
        (states: 'T[][][])
        =
        let _, total = ofPlan stepper.Plan
        let block = stepper.Batch * total

        let out =
            torch.empty (
                [| int64 states.Length; int64 stepper.Batch; int64 total |],
                dtype = KernelElement.dtype<'T> ()
            )

        let values = KernelElement.span<'T> out

        for s in 0 .. states.Length - 1 do
            ofFieldsInto stepper states[s] values (s * block)

        out

    /// The saved padded states of a rollout as its function's output [S; B; N] (`tensorOf`).
    let savedTensor (stepper: IStepper<'T>) (saved: 'T[][][]) = tensorOf stepper saved

    /// The cotangent [S; B; N] of a rollout function's output as `count` padded states (ghost entries zero), read in
    /// place where it is contiguous (`ofTensor`).
    let savedAdjoints (stepper: IStepper<'T>) (grad: torch.Tensor) (count: int) =
        let _, total = ofPlan stepper.Plan
        let g = KernelElement.contiguous<'T> grad
        let block = stepper.Batch * total
        let states = Array.init count (fun s -> ofTensor stepper g (s * block))
        GC.KeepAlive g
        states

    /// A rollout function's gradients: none for its first two inputs (simulator, spec), then u0 [B; N] and θ from
    /// their adjoints, then every closure weight's accumulated gradient.
    let inputGradients (stepper: IStepper<'T>) (u0Adjoint: 'T[][]) (thetaAdjoint: 'T[]) =
        let _, total = ofPlan stepper.Plan

        let gu0 =
            (tensorOf stepper [| u0Adjoint |]).reshape ([| int64 stepper.Batch; int64 total |])

        let gtheta = KernelElement.tensor thetaAdjoint

        let weightGrads =
            stepper.ClosureGradients |> Array.collect id |> Array.map (fun g -> g.clone ())

        List<torch.Tensor>(Seq.append [ null; null; gu0; gtheta ] weightGrads)

/// The custom autograd function: inputs (simulator, spec, u0 [B; N], θ [P], then the closures' weights) in the dtype
/// of 'T (float64, or float32 for the float32 kernels) on the CPU, where a trajectory's N values are its fields' cells
/// one after the other (`StateLayout`); output the saved states [S; B; N]. Backward runs the generated adjoint over
/// the checkpointed tape and returns gradients for u0, θ and every weight.
type internal KernelRolloutFunction<'T
    when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>() =
    inherit torch.autograd.SingleTensorFunction<KernelRolloutFunction<'T>>()

    override _.Name = "HybridTapedRollout"

    override _.forward(ctx, vars) =
        let sim = vars[0] :?> KernelSimulator
        let spec = vars[1] :?> RolloutSpec
        let u0 = vars[2] :?> torch.Tensor
        let theta = vars[3] :?> torch.Tensor
        let batch = int u0.shape[0]
        let stepper = sim.StepperOf<'T> batch
        let thetaValues = KernelElement.values<'T> theta
        let pool = StatePool.Of stepper
        let start = StateLayout.ofTensor stepper u0 0
        let tape = TapedRollout.forward stepper start thetaValues spec
        pool.Return start
        let output = StateLayout.savedTensor stepper tape.Saved
        // The saved states are in the output now: the backward pass needs only their count.
        tape.Saved |> Array.iter pool.Return
        ctx.save_data ("sim", sim)
        ctx.save_data ("spec", spec)
        ctx.save_data ("tape", { tape with Saved = [||] })
        ctx.save_data ("saves", tape.Saved.Length)
        ctx.save_data ("theta", thetaValues)
        ctx.save_data ("batch", batch)
        output

    override _.backward(ctx, grad) =
        let sim = ctx.get_data "sim" :?> KernelSimulator
        let spec = ctx.get_data "spec" :?> RolloutSpec
        let tape = ctx.get_data "tape" :?> RolloutTape<'T>
        let theta = ctx.get_data "theta" :?> 'T[]
        let batch = ctx.get_data "batch" :?> int
        let stepper = sim.StepperOf<'T> batch
        let pool = StatePool.Of stepper

        let savedAdjoint =
            StateLayout.savedAdjoints stepper grad (ctx.get_data "saves" :?> int)

        stepper.ResetClosureGradients()

        let u0Adjoint, thetaAdjoint =
            TapedRollout.backward stepper tape theta spec savedAdjoint true

        let gradients = StateLayout.inputGradients stepper u0Adjoint thetaAdjoint
        savedAdjoint |> Array.iter pool.Return
        pool.Return u0Adjoint
        gradients

/// Arithmetic operations per cell of a kernel simulator's generated loops, counted from its kernel expressions
/// by the generator's rules (`Kernels.operations`): for a roofline, FLOPs = operations × cells × steps.
type KernelOperations = {
    /// One evaluation of the right-hand side of every field at one cell (distinct subexpressions once).
    RightHandSide: int
    /// One evaluation of the vector–Jacobian product at one cell (the gather form: derivatives at the
    /// neighbours, their products with λ, the sums and the parameters' accumulations).
    Adjoint: int
    /// Right-hand-side evaluations per step of the scheme.
    Stages: int
    /// Forward, per cell and step: `Stages` × `RightHandSide` plus the stage combinations (a multiply and an
    /// add per nonzero tableau entry and field).
    ForwardPerStep: int
    /// Adjoint, per cell and step: `Stages` × `Adjoint` plus the adjoint stage combinations (per stage and
    /// field a scale and an add into λ, and a multiply and an add per nonzero entry of the tableau's A).
    AdjointPerStep: int
}

/// What a kernel simulator needs besides its model.
type KernelOptions = {
    /// Networks of the neural closures, by closure name (maps [rows; arity] to [rows; 1]).
    Modules: Map<string, torch.nn.Module<torch.Tensor, torch.Tensor>>
    /// Forcings by name: time ↦ tensor broadcastable to the fields ([B; spatial…], [1; spatial…] or 0-dim).
    Forcings: Map<string, float -> torch.Tensor>
}

/// Compiling models to kernel simulators and running them.
[<RequireQualifiedAccess>]
module Kernels =

    /// No networks, no forcings: enough for models without closures or forcings.
    let defaults: KernelOptions = {
        Modules = Map.empty
        Forcings = Map.empty
    }

    /// `compileWith` for a resolved model (the compiled simulator's own, so both back ends read one front end), with
    /// the IMEX split `split` (`ImexSplit.split`, read by the IMEX schemes only).
    let internal compileSystem
        (options: KernelOptions)
        (scheme: Scheme)
        (split: ((float * Expr) list * (float * Expr) list)[])
        (system: ResolvedSystem)
        : KernelSimulator =
        let model = system.Model

        let plan, stiff =
            match scheme with
            | Scheme.ImexEuler
            | Scheme.ImexCrankNicolson
            | Scheme.KenCarp4 ->
                let hasStiff = split |> Array.map (fst >> List.isEmpty >> not)

                if Array.exists id hasStiff then
                    let explicitPlan, stiffPlan = Lowering.lowerSplit system split
                    explicitPlan, Some(stiffPlan, hasStiff)
                else
                    // No stiff part: ImexEuler's and ImexCrankNicolson's steps are those of the explicit part's
                    // scheme (Euler, Heun), KenCarp4's those of its explicit tableau (`KenCarpStepper` without solves).
                    Lowering.lower system, None
            | Scheme.Dopri5 ->
                // Its 7-stage tableau; `AdaptiveRollout` sizes the steps.
                Lowering.lower system, None
            | Scheme.Rodas4
            | Scheme.Auto ->
                // `RosenbrockStepper`: the Jacobian from the tangent plan (Auto: Dopri5 until it turns stiff), whose
                // directions reach the fields that flux advection reads, so each cell computes both its faces' fluxes.
                let plan = Lowering.lowerWith false system

                match RosenbrockStepper.refusal plan with
                | Some why ->
                    raise (
                        ModelException(
                            $"The kernels cannot run {scheme} on '{model.Name}': {why}. It runs on the eager back end (Backend.Auto picks it)."
                        )
                    )
                | None -> plan, None
            | _ ->
                // Raises for the other adaptive schemes, naming the fixed-step ones.
                Tableau.ofScheme scheme |> ignore
                Lowering.lower system, None

        /// The network of each closure site of `p`.
        let modulesOf (p: KernelPlan) =
            p.Sites
            |> Array.map (fun site ->
                match options.Modules.TryFind site.Name with
                | Some m -> m
                | None ->
                    raise (
                        ModelException(
                            $"The kernel simulator of '{model.Name}' needs the network of closure '{site.Name}': pass it in KernelOptions.Modules (e.g. Map.ofArray simulator.Modules, the eager simulator's networks)."
                        )
                    ))

        let siteModules = modulesOf plan

        let stiff =
            stiff
            |> Option.map (fun (stiffPlan, hasStiff) -> StiffPart.create stiffPlan hasStiff (modulesOf stiffPlan))

        let forcings =
            plan.Forcings
            |> Array.map (fun name ->
                match options.Forcings.TryFind name with
                | Some f -> f
                | None ->
                    raise (
                        ModelException(
                            $"The kernel simulator of '{model.Name}' needs data for forcing '{name}': pass it in KernelOptions.Forcings as a function of time."
                        )
                    ))

        KernelSimulator(plan, stiff, scheme, siteModules, forcings)

    /// Lowers `model` and generates its kernels for the fixed-step `scheme`: explicit (Euler, Heun, SspRk3, Rk4) or
    /// IMEX (ImexEuler, ImexCrankNicolson: linear diffusion terms solved implicitly, as `Compiler.compile` with
    /// `ImplicitDiffusion = true` splits them); neural
    /// closures are evaluated by `options.Modules` and forcings by `options.Forcings` (by name; e.g.
    /// `Map.ofArray simulator.Modules` and the eager simulator's forcings, to share them). Raises
    /// `ModelException` with the problems of `Checks.compilable`, naming what the kernel path cannot compile (see
    /// `Lowering.lower`; the adaptive schemes), or the closure or forcing that has no network or data.
    let compileWith (options: KernelOptions) (scheme: Scheme) (model: Model) : KernelSimulator =
        if Scheme.isAdaptive scheme then
            // Raises, naming the fixed-step schemes (Dopri5's kernels are the compiled simulator's own).
            Tableau.ofScheme scheme |> ignore

        let system = ResolvedSystem.ofModel model
        compileSystem options scheme (ImexSplit.split system true) system

    /// `compileWith defaults`: for models without neural closures or forcings.
    let compile (scheme: Scheme) (model: Model) : KernelSimulator = compileWith defaults scheme model

    /// Arithmetic operations per cell of `sim`'s generated forward and adjoint loops and of its scheme's stage
    /// combinations, counted from the kernel expressions (see `KernelOperations`). A forward + backward pass
    /// with checkpoints runs the forward twice (once more to recompute each segment) and the adjoint once.
    let operations (sim: KernelSimulator) : KernelOperations =
        if sim.Stiff.IsSome then
            raise (
                ModelException(
                    $"Kernels.operations counts the explicit Runge–Kutta schemes; {sim.Scheme} adds implicit solves whose cost depends on the grid (banded in 1-D, conjugate-gradient or BiCGSTAB iterations in 2-D)."
                )
            )

        let plan = sim.Plan
        let tableau = KernelSimulator.TableauOf sim.Scheme
        let stages = tableau.B.Length

        let nonzero (xs: float seq) =
            xs |> Seq.filter (fun v -> v <> 0.0) |> Seq.length

        let entriesA = tableau.A |> Seq.sumBy nonzero
        let fields = plan.Fields.Length
        let rhs = KernelCost.forward plan
        let adjoint = KernelCost.adjoint plan

        {
            RightHandSide = rhs
            Adjoint = adjoint
            Stages = stages
            ForwardPerStep = stages * rhs + fields * 2 * (entriesA + nonzero tableau.B)
            AdjointPerStep = stages * adjoint + fields * (2 * stages + 2 * entriesA)
        }

    /// The initial state as [B; N] (`StateLayout`) and the parameter values as one vector, both in `f64`'s dtype
    /// (float64, or float32 for the float32 kernels) on the CPU, for the rollout functions; raises for the wrong number
    /// of fields or parameters, or of a parameter's values.
    let internal packAs
        (f64: torch.ScalarType)
        (plan: KernelPlan)
        (u0: torch.Tensor[])
        (theta: torch.Tensor[])
        : torch.Tensor * torch.Tensor =
        let fieldList = String.concat ", " plan.Fields
        let paramList = String.concat ", " plan.Params

        if u0.Length <> plan.Fields.Length then
            raise (
                ModelException(
                    $"The kernel rollout of '{plan.Model.Name}' needs {plan.Fields.Length} initial fields ({fieldList}), got {u0.Length}."
                )
            )

        if theta.Length <> plan.Params.Length then
            raise (
                ModelException(
                    $"The kernel rollout of '{plan.Model.Name}' needs {plan.Params.Length} parameter values ({paramList}), got {theta.Length}."
                )
            )

        let batch = u0[0].shape[0]

        let state =
            torch.cat (
                u0
                |> Array.mapi (fun f u -> u.to_type(f64).cpu().reshape ([| batch; int64 (KernelPlan.cells plan f) |])),
                1L
            )

        let paramSize i =
            if plan.ParamSpatial[i] then plan.Cells else 1

        theta
        |> Array.iteri (fun i p ->
            if p.numel () <> int64 (paramSize i) then
                raise (
                    ModelException(
                        $"The kernel rollout of '{plan.Model.Name}' needs {paramSize i} value(s) for parameter '{plan.Params[i]}' (one per cell for a spatial parameter), got {p.numel ()}."
                    )
                ))

        let thetaVector =
            if theta.Length = 0 then
                torch.zeros ([| 0L |], dtype = f64)
            else
                torch.cat (theta |> Array.map (fun p -> p.to_type(f64).cpu().reshape ([| -1L |])), 0L)

        (state.contiguous ()), thetaVector.contiguous ()

    /// `packAs` float64.
    let internal pack (plan: KernelPlan) (u0: torch.Tensor[]) (theta: torch.Tensor[]) =
        packAs torch.ScalarType.Float64 plan u0 theta

    /// Saved states [S; B; N] as one tensor per field, [S; B; spatial…], in `like`'s dtype and on its device.
    let internal unpack (plan: KernelPlan) (like: torch.Tensor) (saved: torch.Tensor) : torch.Tensor[] =
        let offsets, _ = StateLayout.ofPlan plan
        let batch = int like.shape[0]

        Array.init plan.Fields.Length (fun f ->
            let shape =
                Array.append [| saved.shape[0] |] (Grid.fieldShapeOf plan.Grid plan.Fast[f] batch)

            saved
                .narrow(2L, int64 offsets[f], int64 (KernelPlan.cells plan f))
                .reshape(shape)
                .to_type(like.dtype)
                .``to`` (like.device))

    /// Rolls `sim` forward over the steps of `spec` from `u0` and returns each field's saved states, [S; B; spatial…]
    /// (S the save intervals with steps), as `rollout` does; the checkpoint segment applies only where gradients
    /// are wanted.
    let internal rolloutSpec (sim: KernelSimulator) (u0: torch.Tensor[]) (theta: torch.Tensor[]) (spec: RolloutSpec) =
        Engine.init ()
        let plan = sim.Plan

        if spec.Segment < 1 then
            raise (ModelException($"The checkpoint segment must be at least 1 step, got {spec.Segment}."))

        let precision = sim.RolloutPrecision u0[0].dtype

        let state, thetaVector =
            match precision with
            | Float32 -> packAs torch.ScalarType.Float32 plan u0 theta
            | Float64 -> pack plan u0 theta

        // Without gradients no backward pass reads the checkpoints: the tape keeps only the initial state's.
        let needsGradients =
            torch.is_grad_enabled ()
            && (state.requires_grad
                || thetaVector.requires_grad
                || sim.Weights |> Array.exists (fun w -> w.requires_grad))

        let spec =
            if needsGradients then
                { spec with KeepLast = true }
            else
                {
                    spec with
                        Segment = spec.Schedule.Length
                        KeepLast = false
                }

        let inputs =
            Array.append [| box sim; box spec; box state; box thetaVector |] (sim.Weights |> Array.map box)

        let saved =
            match precision with
            | Float32 -> KernelRolloutFunction<float32>.apply inputs
            | Float64 -> KernelRolloutFunction<float>.apply inputs

        unpack plan u0[0] saved

    /// Rolls `sim` forward `steps` steps of size `dt` from time `t0` and returns each field's saved states,
    /// shape [S; B; spatial…] with S = steps / saveEvery (the states after steps saveEvery, 2·saveEvery, …).
    /// `u0` holds one tensor per field ([B; spatial…], the grid's shape; [B; K·J] for a fast field of a
    /// two-scale lattice); `theta` one tensor per entry of `sim.Parameters` (constrained values: 0-dim for a
    /// scalar, one value per cell, e.g. [1; spatial…], for a spatial parameter). Gradients flow to both through the generated adjoint;
    /// checkpoints are kept every `segment` steps (memory ∝ steps/segment + segment states). A float32 `u0` runs
    /// the float32 kernels where `sim.RolloutPrecision` allows them (explicit schemes), else the float64 ones; the result has `u0`'s dtype either way.
    let rollout
        (sim: KernelSimulator)
        (u0: torch.Tensor[])
        (theta: torch.Tensor[])
        (t0: float)
        (dt: float)
        (steps: int)
        (saveEvery: int)
        (segment: int)
        : torch.Tensor[] =
        if steps < 1 || saveEvery < 1 || steps % saveEvery <> 0 then
            raise (ModelException($"steps ({steps}) must be a positive multiple of saveEvery ({saveEvery})."))

        if segment < 1 then
            raise (ModelException($"The checkpoint segment must be at least 1 step, got {segment}."))

        rolloutSpec sim u0 theta (RolloutSpec.uniform t0 dt steps saveEvery segment)
