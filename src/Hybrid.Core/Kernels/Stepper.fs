namespace Hybrid.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic

/// One time step of generated kernels and its discrete adjoint, on states in the padded layout (one [B·PaddedCells]
/// array per field): what `TapedRollout` and the rollout's autograd function need of an explicit (`Stepper`) or an
/// IMEX (`ImexStepper`) step. 'T is the element type of the arrays (`KernelElement`): float, or float32 for the
/// explicit steps of a Float32 rollout.
type internal IStepper<'T> =
    /// The lowered model (its explicit part for an IMEX step).
    abstract Plan: KernelPlan
    /// Trajectories per call.
    abstract Batch: int
    /// Ghost maps, one per field.
    abstract Maps: GhostMap[]
    /// A zeroed state in the padded layout.
    abstract NewState: unit -> 'T[][]
    /// `next` = one step of size dt from `u` at time t with parameter values θ (it may refill u's ghost entries).
    abstract Step: u: 'T[][] * theta: 'T[] * t: float * dt: float * next: 'T[][] -> unit

    /// Given λ′ = ∂L/∂(next) (ghost entries zero), writes ∂L/∂u into `lambda` (ghost entries zero) and adds ∂L/∂θ
    /// into `thetaAdjoint`.
    abstract StepAdjoint:
        u: 'T[][] * theta: 'T[] * t: float * dt: float * lambdaNext: 'T[][] * lambda: 'T[][] * thetaAdjoint: 'T[] ->
            unit

    /// Raises when a field holds NaN or ±∞, or passes `Rollout.maxMagnitude`, after `step` (time t).
    abstract CheckFinite: u: 'T[][] * step: int * t: float -> unit
    /// Accumulated gradients of every closure network's weights, per network.
    abstract ClosureGradients: torch.Tensor[][]
    /// Zeroes `ClosureGradients`.
    abstract ResetClosureGradients: unit -> unit

/// What the adjoint of one step reads at each of its stages (the evaluations of the explicit part F), kept by
/// `IKeepingStepper.StepKept` while a backward pass replays a checkpoint segment, so that
/// `IKeepingStepper.StepAdjointKept` neither recomputes the stages nor runs the closure networks and diagnostic solves
/// forward again. Per stage: the stage's state (ghosts filled), the kernels' inputs (closure outputs, parameter and
/// diagnostic copies), and the autograd graphs of the networks (input and outputs) and of the solves (right-hand side
/// and solution), owned here, out of every dispose scope, until the stage's adjoint has used and disposed them; an
/// IMEX step also keeps its solved states. The arrays are allocated once and reused.
type internal KeptStep<'T> = {
    /// Per stage, its state in the padded layout.
    States: 'T[][][]
    /// Per stage, the kernels' inputs.
    Inputs: 'T[][][]
    /// Per stage and closure site, the network input of the site's run (null for a site that shares another's run).
    RunInputs: torch.Tensor[][]
    /// Per stage and closure site, the site's output with its graph.
    SiteOutputs: torch.Tensor[][]
    /// Per stage and diagnostic field, the solve's right-hand side and solution with their graph.
    SolveGraphs: (torch.Tensor * torch.Tensor)[][]
    /// States the step's adjoint reads besides its stages' (an IMEX step's solved new state, Rodas4's slopes; none
    /// for an explicit step), in the padded layout.
    Extra: 'T[][][]
    /// What else the stepper keeps of the step (Rodas4: its linear system, `RosenbrockSystem`, whose factors the
    /// adjoint's transposed solves reuse); null for the others.
    Linear: obj
}

/// Kept steps' budgets.
[<RequireQualifiedAccess>]
module internal KeptStep =

    /// Stages whose graphs `AdaptiveSteps.backward` keeps at most at once (its chunks of accepted steps).
    let stagesAtOnce = 20

    /// The most steps of `stages` stages each whose graphs `AdaptiveSteps.backward` keeps at once (at least one).
    let stepsOf (stages: int) = max 1 (stagesAtOnce / stages)

/// An `IStepper` that can keep each replayed step's stages (`KeptStep<'T>`) for the step's adjoint: with closure
/// networks or diagnostic solves, the backward pass then runs each of them forward once per stage (the replay, with
/// autograd) instead of three times (replay, stage recompute, the adjoint's own forward), at the cost of one
/// segment's stages and graphs in memory, as the eager back end keeps a segment's graphs.
type internal IKeepingStepper<'T> =
    inherit IStepper<'T>
    /// Whether keeping pays: the step evaluates closure networks or diagnostic solves.
    abstract Keeps: bool
    /// The most steps whose kept stages `AdaptiveSteps.backward` holds at once (`KeptStep.stepsOf` for the
    /// steppers that keep networks' graphs; a memory budget for Rodas4's systems).
    abstract KeptSteps: int
    /// A `KeptStep<'T>` sized for this stepper.
    abstract NewKept: unit -> KeptStep<'T>
    /// `Step`, keeping what its adjoint reads into `kept` (the networks and solves evaluated under autograd).
    abstract StepKept: u: 'T[][] * theta: 'T[] * t: float * dt: float * next: 'T[][] * kept: KeptStep<'T> -> unit

    /// `StepAdjoint` of the step `StepKept` kept into `kept` (same θ, t, dt): no stage recomputed, no network or
    /// solve run forward; disposes the kept graphs. `stageExtra` and `direct` are the cotangents of other outputs of
    /// the step read from its stages (a continuous extension: see `Stepper.StepAdjointWith`), null when none; a
    /// stepper without a continuous extension raises for them.
    abstract StepAdjointKept:
        kept: KeptStep<'T> *
        theta: 'T[] *
        t: float *
        dt: float *
        lambdaNext: 'T[][] *
        stageExtra: 'T[][][] *
        direct: 'T[][] *
        lambda: 'T[][] *
        thetaAdjoint: 'T[] ->
            unit

    /// Disposes what `StepKept` kept into `kept` (its graphs; Rodas4's system) without running its adjoint: a
    /// rejected attempt, or a step pushed out of the forward pass's window (`KernelMethod.KeptAt`).
    abstract Discard: kept: KeptStep<'T> -> unit

/// One explicit Runge–Kutta step of a generated kernel and its discrete adjoint. States, slopes and adjoints all
/// live in the padded layout (one [B·PaddedCells] array per field), so stage updates are contiguous loops
/// and only the ghost entries are refilled before each kernel call; ghost entries of states are otherwise
/// meaningless, those of adjoints are kept zero. Scratch buffers are allocated once for a batch size.
/// Generic over the arrays' element type 'T (`KernelElement`): float, or float32 for a Float32 rollout (its kernels
/// emitted for `Vector<float32>`, its stage sums and ghosts rounded to float32); the tableau's coefficients and the
/// boundary values are computed in float64 and rounded to 'T.
///
/// Neural closure calls (`plan.Sites`) are evaluated by TorchSharp between the generated loops: a generated
/// kernel writes each call's arguments per cell, the network (`modules`, one per site) maps them to the
/// call's output, which the main kernel reads; the adjoint takes the network's vector–Jacobian product with
/// `torch.autograd.grad` and the arguments' with a generated kernel, and accumulates the network weights'
/// gradients (`ClosureGradients`). A per-cell network takes [cells; arity]; one over whole fields (a CNN or a
/// module, `ClosureSite.Fieldwise`) takes the arguments as channels [B; arity; spatial…], as the eager back end
/// does, and the call reads its output channel.
///
/// Diagnostic fields (`plan.Diagnostics`) are solved before each right-hand side, after the forcings and before the
/// closures (whose arguments may read them): a generated kernel writes the elliptic equation's right-hand side per
/// cell, TorchSharp solves it (`EllipticSolve`, the eager back end's solver, in 'T's precision), and the solution fills the field's
/// padded copy, ghosts included. The adjoint maps the copy's adjoint back through the solve's vector–Jacobian
/// product (autograd through the solver: the same solve for the symmetric periodic Laplacian, zero-mean gauge
/// included) and the right-hand side's generated adjoint.
///
/// Flux advection along periodic axes reads face copies (`KernelPlan.faces`): a generated kernel writes the flux
/// through each cell's upper face after the diagnostic fields are solved (the fluxes may read them), the copies'
/// ghosts wrap, and the main kernel takes the difference of the copy at the cell and one cell down, so each face's
/// flux is computed once. The adjoint folds the copies' ghost adjoints back and maps them through the face kernel's
/// generated adjoint, before the diagnostic solves' adjoints.
///
/// Forcings (`plan.Forcings`, data as functions of time, `forcings` in the same order) are evaluated at each
/// stage's time and broadcast to the grid; they carry no gradient. Spatial parameters that diffusion
/// coefficients read at faces are copied from θ into padded arrays with ghosts (`plan.ParamCopies`) once per
/// step; the adjoint folds the copies' adjoints back into θ̄.
type internal Stepper<'T
    when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
    (
        plan: KernelPlan,
        tableau: Tableau,
        batch: int,
        modules: torch.nn.Module<torch.Tensor, torch.Tensor>[],
        forcings: (float -> torch.Tensor)[]
    ) =
    let fields = plan.Fields.Length
    let stages = tableau.B.Length
    let size = batch * plan.PaddedCells

    // Large vectorised grids split their passes over the kernel worker pool (`RowSplit`); the rest run whole.
    let split =
        RowSplit.ofPlanWidth (Codegen.widthOf (KernelElement.precision<'T> ())) plan batch

    let threaded = split.Rows.Length > 1
    let forward = if threaded then null else Codegen.forward<'T> plan
    let adjoint = if threaded then null else Codegen.adjoint<'T> plan

    let forwardPass =
        if threaded then
            ForwardPass<'T>(split, Codegen.forwardRows<'T> plan, batch)
        else
            Unchecked.defaultof<_>

    let adjointPass =
        if threaded then
            let band, core = Codegen.adjointParts<'T> plan
            AdjointPass<'T>(split, band, core, plan, batch)
        else
            Unchecked.defaultof<_>

    let combination = CombinationPass<'T>(split, fields, stages + 1)

    // The compact step's running sum next ← next + Δt Bᵢ kᵢ, run beside the next stage's input (`combination`).
    let stepSum = CombinationPass<'T>(split, fields, 1)
    let stepAndInput = PassPair(stepSum, combination, combination.Parts)

    // The adjoint sweep's passes of one stage, run as one: k̄ᵢ (`combination`), λ's running sum (`stepSum`) and s̄ᵢ ← 0.
    let zeroing = CombinationPass<'T>(split, fields, 0)

    let stagePasses =
        PassPair(PassPair(combination, stepSum, combination.Parts), zeroing, combination.Parts)

    /// The slope buffer k[slotOf[j]] that holds stage j's slope in the compact step and the adjoint's stage
    /// recompute: a buffer is reused once no later stage input reads its slope (RK4: one buffer for all four; SspRk3:
    /// two), so a step touches about four states (u, the stage input, a slope, next) instead of 2s + 2, and its passes
    /// keep finding their arrays in the cache. Slope j is read last by the pass that follows the latest stage i − 1
    /// whose input i weighs it (A[i][j] ≠ 0), or by the pass right after it is computed (the step's sum).
    let slotOf =
        let lastRead j =
            Seq.append
                [ j ]
                (seq {
                    for i in j + 1 .. stages - 1 do
                        if tableau.A[i].Length > j && tableau.A[i][j] <> 0.0 then
                            yield i - 1
                })
            |> Seq.max

        // Per buffer, the last pass that reads the slope it holds.
        let busyUntil = ResizeArray<int>()

        Array.init stages (fun j ->
            match Seq.tryFindIndex (fun last -> last < j) busyUntil with
            | Some slot ->
                busyUntil[slot] <- lastRead j
                slot
            | None ->
                busyUntil.Add(lastRead j)
                busyUntil.Count - 1)

    /// Runs `parts` parts of `pass`: over the pool when split, else in order on this thread.
    let run (parts: int) (pass: IParts) =
        if threaded then
            KernelThreads.pool().Run(parts, pass)
        else
            for j in 0 .. parts - 1 do
                pass.Execute j

    let newState () =
        Array.init fields (fun f -> Array.zeroCreate<'T> (batch * KernelPlan.padded plan f))

    let maps = Array.init fields (Ghosts.map plan)
    let interiorRuns = maps |> Array.map InteriorRuns.runs
    let movingGhosts = maps |> Array.exists (fun m -> m.Moving.Length > 0)

    /// Fills the ghosts of `u` for time t and parameter values θ.
    let fillGhosts (u: 'T[][]) (theta: 'T[]) (t: float) =
        if movingGhosts then
            Ghosts.update maps (KernelElement.floats theta) plan.ParamOffsets t

        Ghosts.fill maps batch u

    let k = Array.init stages (fun _ -> newState ())
    let s = Array.init stages (fun _ -> newState ())
    let stageAdjoint = Array.init stages (fun _ -> newState ())
    let kAdjoint = newState ()

    // Closure call sites: their arguments (one padded array per argument), outputs and adjoints.
    let sites = plan.Sites
    let arity = sites |> Array.map (fun c -> c.Args.Length)
    let argOffset = Array.scan (+) 0 arity

    let argsPlan = {
        plan with
            Rhs = sites |> Array.collect _.Args
            RhsFast = sites |> Array.collect (fun c -> Array.map (fun _ -> false) c.Args)
            Sites = [||]
    }

    let argsForward =
        if sites.Length > 0 then
            Some(Codegen.forward<'T> argsPlan)
        else
            None

    let argsAdjoint =
        if sites.Length > 0 then
            Some(Codegen.adjoint<'T> argsPlan)
        else
            None

    let newArrays n =
        Array.init n (fun _ -> Array.zeroCreate<'T> size)

    let argValues = newArrays argsPlan.Rhs.Length
    let argLambda = newArrays argsPlan.Rhs.Length

    // The padded copies of the spatial parameters that diffusion coefficients read at faces and of the diagnostic
    // fields (`plan.ParamCopies`), and their adjoints: the kernels' inputs after the sites' outputs.
    let copyMaps = plan.ParamCopies |> Array.map (Ghosts.copyMap plan)
    let copies = newArrays plan.ParamCopies.Length
    let copyAdjoint = newArrays plan.ParamCopies.Length
    let inputs = Array.append (newArrays sites.Length) copies
    let inputAdjoint = Array.append (newArrays sites.Length) copyAdjoint

    // The copies of parameters: (copy, parameter).
    let paramCopies =
        plan.ParamCopies
        |> Array.indexed
        |> Array.choose (fun (c, copy) ->
            match copy.Source with
            | CopySource.Param p -> Some(c, p)
            | CopySource.Diagnostic _
            | CopySource.Face _ -> None)

    let paramCopyMaps = paramCopies |> Array.map (fun (c, _) -> copyMaps[c])
    let paramCopyValues = paramCopies |> Array.map (fun (c, _) -> copies[c])
    let paramCopyAdjoint = paramCopies |> Array.map (fun (c, _) -> copyAdjoint[c])

    /// `visit c i p` for every parameter copy c, trajectory and cell: i the cell's entry of θ, p its padded index
    /// in copy c.
    let eachCopyCell (visit: int -> int -> int -> unit) =
        for c, param in paramCopies do
            let offset = plan.ParamOffsets[param]
            let interior = copyMaps[c].Interior

            for b in 0 .. batch - 1 do
                for cell in 0 .. interior.Length - 1 do
                    visit c (offset + cell) (b * plan.PaddedCells + interior[cell])

    /// Fills the parameter copies from θ: the interior of every trajectory, then the ghosts.
    let fillCopies (theta: 'T[]) =
        if paramCopies.Length > 0 then
            eachCopyCell (fun c i p -> copies[c][p] <- theta[i])
            Ghosts.fill paramCopyMaps batch paramCopyValues

    /// The transpose of `fillCopies`: adds the copies' adjoints into θ̄ (ghosts folded into the cells they copy).
    let foldCopies (theta: 'T[]) (thetaAdjoint: 'T[]) =
        if paramCopies.Length > 0 then
            Ghosts.fold paramCopyMaps batch theta plan.ParamOffsets 0.0 paramCopyAdjoint thetaAdjoint
            eachCopyCell (fun c i p -> thetaAdjoint[i] <- thetaAdjoint[i] + copyAdjoint[c][p])

    let rows = batch * plan.Cells
    let gy = if plan.Grid.Dims >= 2 then plan.Ghost else 0

    /// Padded index of row `row` (trajectory-major, then cell) of the interior of a slow field.
    let at (row: int) =
        let c = row % plan.Cells

        (row / plan.Cells) * plan.PaddedCells
        + (c / plan.Ny + plan.Ghost) * plan.Py
        + c % plan.Ny
        + gy

    let data = newArrays plan.Forcings.Length
    let mutable dataTime = nan

    /// The forcings at time t, broadcast to [B; spatial…], into `data` (skipped when t is unchanged).
    let evalForcings (t: float) =
        if t <> dataTime then
            for j in 0 .. forcings.Length - 1 do
                use _ = torch.NewDisposeScope()
                use _ = torch.no_grad ()

                let raw = forcings[j]t

                if Array.contains j plan.FaceForcings && raw.numel () > int64 batch then
                    let shape = String.Join("; ", raw.shape)

                    raise (
                        ModelException(
                            $"Forcing '{plan.Forcings[j]}' is read inside a diffusion coefficient, so it must be uniform in space (0-dim or [B; 1…]); at t = {t:G6} it has shape [{shape}]. Give one value per trajectory, or use the eager simulator."
                        )
                    )

                let values =
                    KernelElement.values<'T> (
                        raw.to_type(KernelElement.dtype<'T> ()).expand (Grid.fieldShape plan.Grid batch)
                    )

                let target = data[j]

                for row in 0 .. rows - 1 do
                    target[at row] <- values[row]

            dataTime <- t

    // The interior rows gathered for `interiorTensor`, kept from one call to the next (a fresh array per call lands on
    // the large-object heap on large batches).
    let interiorRows = Array.zeroCreate<'T> rows

    /// The interior of padded array `values` as a [B; spatial…] tensor of 'T's dtype.
    let interiorTensor (values: 'T[]) =
        for row in 0 .. rows - 1 do
            interiorRows[row] <- values[at row]

        (KernelElement.tensor interiorRows).reshape (Grid.fieldShape plan.Grid batch)

    /// Writes the values of `source` ([B; spatial…] or [rows; 1], rows in order) into the interior of `target`, read
    /// in place.
    let writeInterior (source: torch.Tensor) (target: 'T[]) =
        let c = KernelElement.contiguous<'T> source
        let values = KernelElement.span<'T> c

        for row in 0 .. rows - 1 do
            target[at row] <- values[row]

        GC.KeepAlive c

    // The diagnostic fields: the kernels of their right-hand sides, the values and adjoints of those, the solvers.
    let solves = plan.Diagnostics

    let solvePlan = {
        plan with
            Rhs = solves |> Array.map _.Rhs
            RhsFast = solves |> Array.map (fun _ -> false)
            Sites = [||]
    }

    let solveForward, solveAdjoint =
        if solves.Length > 0 then
            Some(Codegen.forward<'T> solvePlan), Some(Codegen.adjoint<'T> solvePlan)
        else
            None, None

    let solveRhs = newArrays solves.Length
    let solveLambda = newArrays solves.Length
    let diagnosticMaps = solves |> Array.map (fun d -> copyMaps[d.Copy])
    let diagnosticValues = solves |> Array.map (fun d -> copies[d.Copy])
    let diagnosticAdjoint = solves |> Array.map (fun d -> copyAdjoint[d.Copy])
    let periodic = Boundary.periodic plan.Grid

    let solvers =
        solves
        |> Array.map (fun d ->
            EllipticSolve.create
                plan.Grid
                periodic
                d.Screening
                (KernelElement.dtype<'T> ())
                torch.CPU
                (EllipticSolve.tolerance (KernelElement.dtype<'T> ()))
                (EllipticSolve.caller $"the diagnostic field '{d.Field}' ({d.Equation})"))

    // Each solve's right-hand side and solution with their autograd graph, kept by `solveDiagnostics` for
    // `diagnosticsAdjoint` (tensors of the adjoint's dispose scope).
    let solveGraphs: (torch.Tensor * torch.Tensor)[] = Array.zeroCreate solves.Length

    // Between `HoldAdjoint` and `ReleaseAdjoint`: the networks' and solves' graphs at one state are kept for every
    // adjoint taken there (their backward passes retain them) and the adjoints skip the network weights.
    let mutable holdingAdjoint = false

    /// Solves every diagnostic field at state `u` (ghosts filled) into its copy, ghosts included (forcings at t
    /// evaluated); with `keep`, under autograd, keeping each solve's graph in `solveGraphs` (in the caller's dispose
    /// scope).
    let solveDiagnostics (u: 'T[][]) (theta: 'T[]) (t: float) (keep: bool) =
        match solveForward with
        | None -> ()
        | Some kernel ->
            kernel.Invoke(u, theta, t, solveRhs, batch, copies, data)

            for i in 0 .. solves.Length - 1 do
                if keep then
                    use _ = torch.enable_grad ()
                    let f = (interiorTensor solveRhs[i]).requires_grad_ true
                    let psi = solvers[i].Solve periodic f
                    writeInterior (psi.detach ()) diagnosticValues[i]
                    solveGraphs[i] <- (f, psi)
                else
                    use _ = torch.NewDisposeScope()
                    use _ = torch.no_grad ()
                    writeInterior (solvers[i].Solve periodic (interiorTensor solveRhs[i])) diagnosticValues[i]

            Ghosts.fill diagnosticMaps batch diagnosticValues

    /// Given ∂L/∂(diagnostic copies) in their adjoints, adds ∂L/∂(state) into `stateAdjoint` and ∂L/∂θ into
    /// `thetaAdjoint` through the solves (`solveGraphs`) and their right-hand sides, all at the same state.
    let diagnosticsAdjoint (u: 'T[][]) (theta: 'T[]) (t: float) (stateAdjoint: 'T[][]) (thetaAdjoint: 'T[]) =
        match solveAdjoint with
        | None -> ()
        | Some kernel ->
            Ghosts.fold diagnosticMaps batch theta plan.ParamOffsets t diagnosticAdjoint thetaAdjoint

            for i in 0 .. solves.Length - 1 do
                use _ = torch.NewDisposeScope()
                let f, psi = solveGraphs[i]

                let grads =
                    torch.autograd.grad (
                        [| psi |],
                        [| f |],
                        [| interiorTensor diagnosticAdjoint[i] |],
                        retain_graph = holdingAdjoint
                    )

                Array.Clear solveLambda[i]
                writeInterior grads[0] solveLambda[i]

            kernel.Invoke(u, theta, t, solveLambda, stateAdjoint, thetaAdjoint, batch, copies, copyAdjoint, data)

    // The face fluxes of flux advection (`KernelPlan.faces`): their kernels (split over the worker pool like the
    // right-hand side's where its passes are), their copies and the copies' adjoints.
    let faces = KernelPlan.faces plan

    /// The face kernel's forward (u, θ, t, output, inputs, data) and adjoint (u, θ, t, λ, ū, θ̄, inputs, input
    /// adjoints, data), as `ForwardKernel` and `AdjointKernel` take them.
    let faceForward, faceAdjoint =
        if faces.Length = 0 then
            None, None
        else
            let facePlan = KernelPlan.facePlan plan

            if threaded then
                let forwardPass = ForwardPass<'T>(split, Codegen.forwardRows<'T> facePlan, batch)
                let band, core = Codegen.adjointParts<'T> facePlan
                let adjointPass = AdjointPass<'T>(split, band, core, facePlan, batch)

                Some(fun u theta t output inputs data ->
                    forwardPass.Set(u, theta, t, output, inputs, data)
                    KernelThreads.pool().Run(forwardPass.Parts, forwardPass)),
                Some(fun u theta t lambda uBar thetaBar inputs inputBar data ->
                    adjointPass.Run(KernelThreads.pool (), u, theta, t, lambda, uBar, thetaBar, inputs, inputBar, data))
            else
                let forward = Codegen.forward<'T> facePlan
                let adjoint = Codegen.adjoint<'T> facePlan

                Some(fun u theta t output inputs data -> forward.Invoke(u, theta, t, output, batch, inputs, data)),
                Some(fun u theta t lambda uBar thetaBar inputs inputBar data ->
                    adjoint.Invoke(u, theta, t, lambda, uBar, thetaBar, batch, inputs, inputBar, data))

    let faceMaps = faces |> Array.map (fun (c, _) -> copyMaps[c])
    let faceValues = faces |> Array.map (fun (c, _) -> copies[c])
    let faceAdjointValues = faces |> Array.map (fun (c, _) -> copyAdjoint[c])

    /// Writes the fluxes through every cell's upper face into the face copies, ghosts wrapped, at state `u` (ghosts
    /// filled; time t; the diagnostic copies solved): each face's flux computed once.
    let evalFaces (u: 'T[][]) (theta: 'T[]) (t: float) =
        match faceForward with
        | None -> ()
        | Some kernel ->
            kernel u theta t faceValues copies data
            Ghosts.fill faceMaps batch faceValues

    /// Given ∂L/∂(face copies) in their adjoints (ghost entries included), adds ∂L/∂(state) into `stateAdjoint`,
    /// ∂L/∂θ into `thetaAdjoint` and ∂L/∂(diagnostic copies) into theirs through the face kernel's vector–Jacobian
    /// product, at the state of `evalFaces`.
    let facesAdjoint (u: 'T[][]) (theta: 'T[]) (t: float) (stateAdjoint: 'T[][]) (thetaAdjoint: 'T[]) =
        match faceAdjoint with
        | None -> ()
        | Some kernel ->
            Ghosts.fold faceMaps batch theta plan.ParamOffsets t faceAdjointValues thetaAdjoint
            kernel u theta t faceAdjointValues stateAdjoint thetaAdjoint copies copyAdjoint data

    // Distinct networks (a closure called twice is one network) and their weight-gradient accumulators.
    let networks = Array.zip (sites |> Array.map _.Name) modules |> Array.distinctBy fst

    let networkIndex =
        sites
        |> Array.map (fun c -> networks |> Array.findIndex (fun (n, _) -> n = c.Name))

    let closureGradients =
        networks
        |> Array.map (fun (_, m) ->
            m.parameters ()
            |> Seq.map (fun p -> torch.zeros_like(p).DetachFromDisposeScope())
            |> Array.ofSeq)

    /// Where argument a of row `row` goes in site j's network input: [rows; arity] for a per-cell closure,
    /// [B; arity; cells] (channels of whole fields) for one over whole fields.
    let argIndex (j: int) (row: int) (a: int) =
        if sites[j].Fieldwise then
            ((row / plan.Cells) * arity[j] + a) * plan.Cells + row % plan.Cells
        else
            row * arity[j] + a

    // Each site's arguments in the network's layout, kept from one call to the next (as `interiorRows`).
    let argumentRows = arity |> Array.map (fun a -> Array.zeroCreate<'T> (rows * a))

    /// Site j's arguments as the network's input in its dtype: [rows; arity], or [B; arity; spatial…] for a
    /// closure over whole fields.
    let argumentTensor (j: int) (network: torch.nn.Module<torch.Tensor, torch.Tensor>) =
        let x = argumentRows[j]

        for a in 0 .. arity[j] - 1 do
            let values = argValues[argOffset[j] + a]

            for row in 0 .. rows - 1 do
                x[argIndex j row a] <- values[at row]

        let shape =
            if sites[j].Fieldwise then
                Array.append [| int64 batch; int64 arity[j] |] plan.Grid.Shape
            else
                [| int64 rows; int64 arity[j] |]

        let dtype = (network.parameters () |> Seq.head).dtype
        (KernelElement.tensor x).reshape(shape).to_type (dtype)

    /// Site j's output per row, [rows], from its network's output `y`: one value per row, or the site's channel of
    /// [B; outputs; spatial…] for a closure over whole fields (its shape checked as the eager back end does).
    let siteOutput (j: int) (y: torch.Tensor) =
        let site = sites[j]

        if site.Fieldwise then
            let c = plan.Model.Closures |> List.find (fun c -> c.Name = site.Name)
            FieldwiseOutput.check site.Name (Model.outputs c) plan.Grid.Shape y
            y.select(1L, int64 site.Output).reshape ([| int64 rows |])
        else
            y.reshape ([| int64 rows |])

    // The network runs: one per site, except that the sites of a closure over whole fields with the same arguments
    // (its outputs; `Checks` makes every call of a model pass the same arguments) share the first one's run, as the
    // eager back end runs it once. (A tangent plan's JVP sites carry the closure's name and other arguments.)
    let runOf =
        sites
        |> Array.mapi (fun j c ->
            if c.Fieldwise then
                sites |> Array.findIndex (fun d -> d.Name = c.Name && d.Args = c.Args)
            else
                j)

    let runs = Array.init sites.Length id |> Array.filter (fun j -> runOf[j] = j)

    let runSites =
        runs
        |> Array.map (fun r -> Array.init sites.Length id |> Array.filter (fun j -> runOf[j] = r))

    // Each run's network input, and each site's output, with their autograd graph, kept by `evalClosures` for
    // `closureAdjoint` (tensors of the adjoint's dispose scope): the adjoint runs each network forward once.
    let runInputs: torch.Tensor[] = Array.zeroCreate sites.Length
    let siteOutputs: torch.Tensor[] = Array.zeroCreate sites.Length


    /// Evaluates every closure call at state `u` (ghosts filled) into `inputs`; with `keep`, under autograd,
    /// keeping the graphs in `runInputs` and `siteOutputs` (in the caller's dispose scope).
    let evalClosures (u: 'T[][]) (theta: 'T[]) (t: float) (keep: bool) =
        match argsForward with
        | None -> ()
        | Some kernel ->
            kernel.Invoke(u, theta, t, argValues, batch, copies, data)

            for k in 0 .. runs.Length - 1 do
                let r = runs[k]
                let network = modules[r]

                if keep then
                    use _ = torch.enable_grad ()
                    let x = (argumentTensor r network).requires_grad_ true
                    let y = network.forward x
                    runInputs[r] <- x

                    for j in runSites[k] do
                        siteOutputs[j] <- siteOutput j y
                        writeInterior (siteOutputs[j].detach ()) inputs[j]
                else
                    use _ = torch.NewDisposeScope()
                    use _ = torch.no_grad ()
                    let y = network.forward (argumentTensor r network)

                    for j in runSites[k] do
                        writeInterior (siteOutput j y) inputs[j]

    /// Given ∂L/∂(closure outputs) in `inputAdjoint`, adds ∂L/∂(state) into `stateAdjoint` and ∂L/∂θ into
    /// `thetaAdjoint` through the arguments (of a shared run: through the first site's), and ∂L/∂(weights) into the
    /// accumulators (through the graphs `evalClosures` kept).
    let closureAdjoint (u: 'T[][]) (theta: 'T[]) (t: float) (stateAdjoint: 'T[][]) (thetaAdjoint: 'T[]) =
        match argsAdjoint with
        | None -> ()
        | Some kernel ->
            for k in 0 .. runs.Length - 1 do
                use _ = torch.NewDisposeScope()
                let r = runs[k]
                let network = modules[r]
                let ys = runSites[k] |> Array.map (fun j -> siteOutputs[j])

                let weights =
                    if holdingAdjoint then
                        [||]
                    else
                        network.parameters () |> Seq.map (fun w -> w :> torch.Tensor) |> Array.ofSeq

                let zbars =
                    runSites[k]
                    |> Array.map (fun j ->
                        (interiorTensor inputAdjoint[j]).reshape([| int64 rows |]).to_type (siteOutputs[j].dtype))

                // Unused inputs are allowed: a closure's JVP (`TangentNetwork`) does not read its output layer's bias.
                let grads =
                    torch.autograd.grad (
                        ys,
                        Array.append [| runInputs[r] |] weights,
                        zbars,
                        retain_graph = holdingAdjoint,
                        allow_unused = true
                    )

                let used (g: torch.Tensor) = not (isNull g || g.IsInvalid)

                // The arguments' cotangents, read in place (none: zero).
                let xbar =
                    if used grads[0] then
                        KernelElement.contiguous<'T> grads[0]
                    else
                        null

                for j in runSites[k] do
                    for a in 0 .. arity[j] - 1 do
                        let target = argLambda[argOffset[j] + a]
                        Array.Clear target

                        if j = r && not (isNull xbar) then
                            let values = KernelElement.span<'T> xbar

                            for row in 0 .. rows - 1 do
                                target[at row] <- values[argIndex j row a]

                GC.KeepAlive xbar

                use _ = torch.no_grad ()
                let accumulators = closureGradients[networkIndex[r]]

                for w in 0 .. weights.Length - 1 do
                    if used grads[w + 1] then
                        addInPlace accumulators[w] grads[w + 1] |> ignore

            kernel.Invoke(u, theta, t, argLambda, stateAdjoint, thetaAdjoint, batch, copies, copyAdjoint, data)

    /// What the kernels read at `u` (ghosts filled; time t) besides the state: the forcings, the diagnostic fields,
    /// the face fluxes, the closures' outputs (in this order: the later may read the earlier); with `keep`, the
    /// solves' and the networks' autograd graphs for the adjoint (in the caller's dispose scope).
    let prepareInputs (u: 'T[][]) (theta: 'T[]) (t: float) (keep: bool) =
        evalForcings t
        solveDiagnostics u theta t keep
        evalFaces u theta t
        evalClosures u theta t keep

    /// Adds the vector–Jacobian product of the right-hand side at `u` (ghosts filled; time t) with ∂L/∂F =
    /// `outputAdjoint` into `stateAdjoint` and `thetaAdjoint`, given what `prepareInputs` kept at `u` (`keep`): the
    /// inputs, and the networks' and solves' graphs.
    let adjointAt
        (u: 'T[][])
        (theta: 'T[])
        (t: float)
        (outputAdjoint: 'T[][])
        (stateAdjoint: 'T[][])
        (thetaAdjoint: 'T[])
        =
        for a in inputAdjoint do
            Array.Clear a

        if threaded then
            adjointPass.Run(
                KernelThreads.pool (),
                u,
                theta,
                t,
                outputAdjoint,
                stateAdjoint,
                thetaAdjoint,
                inputs,
                inputAdjoint,
                data
            )
        else
            adjoint.Invoke(u, theta, t, outputAdjoint, stateAdjoint, thetaAdjoint, batch, inputs, inputAdjoint, data)

        closureAdjoint u theta t stateAdjoint thetaAdjoint
        facesAdjoint u theta t stateAdjoint thetaAdjoint
        diagnosticsAdjoint u theta t stateAdjoint thetaAdjoint
        foldCopies theta thetaAdjoint
        Ghosts.fold maps batch theta plan.ParamOffsets t stateAdjoint thetaAdjoint

    /// Adds the vector–Jacobian product of the right-hand side at `u` (ghosts filled; time t) with ∂L/∂F =
    /// `outputAdjoint` into `stateAdjoint` (ghost entries folded back, left zero) and `thetaAdjoint`, closures and
    /// moving ghosts included.
    let rhsAdjoint
        (u: 'T[][])
        (theta: 'T[])
        (t: float)
        (outputAdjoint: 'T[][])
        (stateAdjoint: 'T[][])
        (thetaAdjoint: 'T[])
        =
        // A dispose scope for the graphs of the networks and solves only: entering one costs about as much as a
        // small kernel call.
        use _ =
            if sites.Length > 0 || solves.Length > 0 then
                torch.NewDisposeScope()
            else
                null

        prepareInputs u theta t true
        adjointAt u theta t outputAdjoint stateAdjoint thetaAdjoint

    /// The networks' and solves' tensors that `prepareInputs` kept (`keep`) for stage i, moved out of the dispose
    /// scope into `kept` with the stage's state and inputs.
    let keepStage (kept: KeptStep<'T>) (i: int) (state: 'T[][]) =
        for f in 0 .. fields - 1 do
            Array.blit state[f] 0 (kept.States[i][f]) 0 state[f].Length

        for a in 0 .. inputs.Length - 1 do
            Array.blit inputs[a] 0 (kept.Inputs[i][a]) 0 size

        for r in runs do
            kept.RunInputs[i][r] <- runInputs[r].DetachFromDisposeScope()

        for j in 0 .. sites.Length - 1 do
            kept.SiteOutputs[i][j] <- siteOutputs[j].DetachFromDisposeScope()

        for d in 0 .. solves.Length - 1 do
            let f, psi = solveGraphs[d]
            kept.SolveGraphs[i][d] <- (f.DetachFromDisposeScope(), psi.DetachFromDisposeScope())

    /// Disposes and clears the graphs kept in slot i of `kept`.
    let disposeKept (kept: KeptStep<'T>) (i: int) =
        let dispose (x: torch.Tensor) =
            if not (isNull x) then
                x.Dispose()

        Array.iter dispose kept.RunInputs[i]
        Array.iter dispose kept.SiteOutputs[i]

        // A slot never kept into (a discarded attempt's) holds null pairs.
        for graph in kept.SolveGraphs[i] do
            if not (isNull (box graph)) then
                let f, psi = graph
                dispose f
                dispose psi

        Array.fill kept.RunInputs[i] 0 sites.Length null
        Array.fill kept.SiteOutputs[i] 0 sites.Length null
        Array.fill kept.SolveGraphs[i] 0 solves.Length (null, null)

    /// `rhsAdjoint` at the stage i that `keepStage` kept (time t): its inputs and graphs restored instead of
    /// evaluated; the graphs are disposed after.
    let keptRhsAdjoint
        (kept: KeptStep<'T>)
        (i: int)
        (theta: 'T[])
        (t: float)
        (outputAdjoint: 'T[][])
        (stateAdjoint: 'T[][])
        (thetaAdjoint: 'T[])
        =
        try
            evalForcings t

            for a in 0 .. inputs.Length - 1 do
                Array.blit (kept.Inputs[i][a]) 0 inputs[a] 0 size

            Array.blit kept.RunInputs[i] 0 runInputs 0 sites.Length
            Array.blit kept.SiteOutputs[i] 0 siteOutputs 0 sites.Length
            Array.blit kept.SolveGraphs[i] 0 solveGraphs 0 solves.Length
            adjointAt kept.States[i] theta t outputAdjoint stateAdjoint thetaAdjoint
        finally
            disposeKept kept i

    /// Stage j's slope where `step` keeps it, and where the compact step and the adjoint's recompute do (`slotOf`).
    /// The buffer stageAdjoint[barSlotOf[m]] that holds s̄ₘ in the adjoint sweep (stages in reverse): s̄ₘ is read by
    /// k̄ᵢ for the earlier stages i with A[m][i] ≠ 0 and by λ's running sum beside k̄ₘ₋₁ (the last one: after the
    /// loop), and s̄ⱼ may take its buffer in the pass that reads it last, which reads each range before zeroing it
    /// (`stagePasses`). RK4: one buffer for all four.
    let barSlotOf =
        // The stage index of the pass that reads s̄ₘ last (passes run from the last stage down; −1: after the loop).
        let lastRead m =
            Seq.append
                [ m - 1 ]
                (seq {
                    for i in 0 .. m - 1 do
                        if tableau.A[m].Length > i && tableau.A[m][i] <> 0.0 then
                            yield i
                })
            |> Seq.min

        let busyUntil = ResizeArray<int>()
        let slots = Array.zeroCreate stages

        for m in stages - 1 .. -1 .. 0 do
            slots[m] <-
                match Seq.tryFindIndex (fun last -> last >= m) busyUntil with
                | Some slot ->
                    busyUntil[slot] <- lastRead m
                    slot
                | None ->
                    busyUntil.Add(lastRead m)
                    busyUntil.Count - 1

        slots

    let plainSlope: int -> 'T[][] = fun j -> k[j]
    let compactSlope: int -> 'T[][] = fun j -> k[slotOf[j]]

    /// s[i] = u + Δt Σⱼ A[i][j] kⱼ (kⱼ = `slope j`), ghosts filled (at the stage's time t).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let stageInput (u: 'T[][]) (theta: 'T[]) (t: float) (dt: float) (i: int) (slope: int -> 'T[][]) =
        combination.Set(s[i], u)

        for j in 0 .. tableau.A[i].Length - 1 do
            combination.Add(dt * tableau.A[i][j], slope j)

        run combination.Parts combination
        fillGhosts s[i] theta t

    /// F(u, t) into `output` (ghosts of `u` filled; closures and forcings evaluated).
    let rhs (u: 'T[][]) (theta: 'T[]) (t: float) (output: 'T[][]) =
        if threaded then
            forwardPass.Set(u, theta, t, output, inputs, data)
            KernelThreads.pool().Run(forwardPass.Parts, forwardPass)
        else
            forward.Invoke(u, theta, t, output, batch, inputs, data)

    /// `next` = one step from `u` at time t, the first stage skipped when `firstKnown` (see `StepFrom`); with `kept`,
    /// each stage's networks and solves run under autograd and what the stage's adjoint reads is kept there.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let step (u: 'T[][]) (theta: 'T[]) (t: float) (dt: float) (next: 'T[][]) firstKnown (kept: KeptStep<'T> option) =
        fillCopies theta

        for i in (if firstKnown then 1 else 0) .. stages - 1 do
            let ti = t + tableau.C[i] * dt
            stageInput u theta ti dt i plainSlope

            match kept with
            | Some kept ->
                use _ = torch.NewDisposeScope()
                prepareInputs s[i] theta ti true
                keepStage kept i s[i]
            | None -> prepareInputs s[i] theta ti false

            rhs s[i] theta ti k[i]

        combination.Set(next, u)

        for i in 0 .. stages - 1 do
            combination.Add(dt * tableau.B[i], k[i])

        run combination.Parts combination

    /// `next` = one step from `u` at time t in the compact form (`slotOf`): the first stage reads u (its ghosts filled
    /// in place), later stage inputs s[0] (each overwritten once its slope is known), slopes in their slots, and the
    /// step's sum accumulated into `next` stage by stage, in the order and rounding of `step`'s single sum (u + Δt B₀k₀ + Δt B₁k₁ + …, left to right), so both give the same
    /// bits. `next` must not be `u`; `Slopes` are not left behind.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let compactStep (u: 'T[][]) (theta: 'T[]) (t: float) (dt: float) (next: 'T[][]) =
        fillCopies theta
        let input = s[0]

        for i in 0 .. stages - 1 do
            let ti = t + tableau.C[i] * dt
            // The first stage reads u itself, its ghosts filled in place (they carry nothing else).
            let at = if i = 0 then u else input
            fillGhosts at theta ti
            prepareInputs at theta ti false
            let slope = k[slotOf[i]]
            rhs at theta ti slope
            stepSum.Set(next, (if i = 0 then u else next))
            stepSum.Add(dt * tableau.B[i], slope)

            if i + 1 < stages then
                combination.Set(input, u)

                for j in 0 .. tableau.A[i + 1].Length - 1 do
                    combination.Add(dt * tableau.A[i + 1][j], compactSlope j)

                run stepAndInput.Parts stepAndInput
            else
                run stepSum.Parts stepSum

    /// The reverse sweep over a step's stages: given λ′ = `lambdaNext` (and `stageExtra`, `direct`: see
    /// `StepAdjointWith`), `stageAdjointOf i k̄ s̄` adds stage i's vector–Jacobian product with k̄ into s̄ (and θ̄),
    /// last stage first; ∂L/∂u = λ′ + direct + Σ s̄ᵢ goes into `lambda` (not `lambdaNext`), summed from the last stage
    /// down as the s̄ᵢ come, each beside the next k̄ in one pass (`stagePasses`), the s̄ᵢ in `barSlotOf`'s buffers.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let sweep
        (dt: float)
        (lambdaNext: 'T[][])
        (stageExtra: 'T[][][])
        (direct: 'T[][])
        (lambda: 'T[][])
        (stageAdjointOf: int -> 'T[][] -> 'T[][] -> unit)
        =
        if obj.ReferenceEquals(lambda, lambdaNext) then
            invalidArg "lambda" "The adjoint of a step writes ∂L/∂u into an array other than λ′."

        let bar m = stageAdjoint[barSlotOf[m]]

        for i in stages - 1 .. -1 .. 0 do
            // k̄ᵢ = Δt Bᵢ λ′ + Δt·extraᵢ + Δt Σ_{m>i} A[m][i] s̄ₘ
            combination.Set(kAdjoint, null)
            combination.Add(dt * tableau.B[i], lambdaNext)

            if not (isNull stageExtra) then
                combination.Add(dt, stageExtra[i])

            for m in i + 1 .. stages - 1 do
                combination.Add(dt * tableau.A[m][i], bar m)

            // λ ← λ′ + direct before the last stage, then λ + s̄ᵢ₊₁ (read before s̄ᵢ, maybe in its buffer, is zeroed).
            if i = stages - 1 then
                stepSum.Set(lambda, lambdaNext)

                if not (isNull direct) then
                    stepSum.Add(1.0, direct)
            else
                stepSum.Set(lambda, lambda)
                stepSum.Add(1.0, bar (i + 1))

            zeroing.Set(bar i, null)
            run stagePasses.Parts stagePasses
            stageAdjointOf i kAdjoint (bar i)

        stepSum.Set(lambda, lambda)
        stepSum.Add(1.0, bar 0)
        run stepSum.Parts stepSum

    let keeps = sites.Length > 0 || solves.Length > 0

    /// The lowered model.
    member _.Plan = plan

    /// Trajectories per call.
    member _.Batch = batch

    /// Ghost maps, one per field.
    member _.Maps = maps

    /// A zeroed state in the padded layout.
    member _.NewState() = newState ()

    /// Fills the ghost entries of `u` (padded layout) for time t and parameter values θ.
    member _.FillGhosts(u: 'T[][], theta: 'T[], t: float) = fillGhosts u theta t

    /// F(u, t) into `output` (padded layout); `u` must have its ghosts filled.
    member _.Rhs(u: 'T[][], theta: 'T[], t: float, output: 'T[][]) =
        fillCopies theta
        prepareInputs u theta t false
        rhs u theta t output

    /// Adds λᵀ∂F/∂u at `u` (ghosts filled; time t) for λ = `outputAdjoint` into `stateAdjoint` (ghost entries
    /// left zero) and λᵀ∂F/∂θ into `thetaAdjoint`, through closures and moving ghosts.
    member _.RhsAdjoint
        (u: 'T[][], theta: 'T[], t: float, outputAdjoint: 'T[][], stateAdjoint: 'T[][], thetaAdjoint: 'T[])
        =
        fillCopies theta
        rhsAdjoint u theta t outputAdjoint stateAdjoint thetaAdjoint

    /// Evaluates what the adjoint reads at `u` (ghosts filled; time t; the forcings, diagnostic fields, face fluxes
    /// and closure outputs) once, keeping the networks' and solves' graphs, for `RhsAdjointHeld` at the same state
    /// until `ReleaseAdjoint`; nothing else may run this stepper in between. The matrix-free Rodas4's transposed
    /// products, which take many vector–Jacobian products at one state.
    member _.HoldAdjoint(u: 'T[][], theta: 'T[], t: float) =
        fillCopies theta

        do
            use _ = torch.NewDisposeScope()
            prepareInputs u theta t true

            for r in runs do
                runInputs[r] <- runInputs[r].DetachFromDisposeScope()

            for j in 0 .. sites.Length - 1 do
                siteOutputs[j] <- siteOutputs[j].DetachFromDisposeScope()

            for d in 0 .. solves.Length - 1 do
                let f, psi = solveGraphs[d]
                solveGraphs[d] <- (f.DetachFromDisposeScope(), psi.DetachFromDisposeScope())

        holdingAdjoint <- true

    /// `RhsAdjoint` at the state of `HoldAdjoint` (`u` the same, its ghosts filled; same θ and t), from what that
    /// kept: no network or solve runs forward, and the network weights get no gradient.
    member _.RhsAdjointHeld
        (u: 'T[][], theta: 'T[], t: float, outputAdjoint: 'T[][], stateAdjoint: 'T[][], thetaAdjoint: 'T[])
        =
        if not holdingAdjoint then
            invalidOp "RhsAdjointHeld outside HoldAdjoint … ReleaseAdjoint"

        fillCopies theta
        adjointAt u theta t outputAdjoint stateAdjoint thetaAdjoint

    /// Ends `HoldAdjoint`, disposing the graphs it kept.
    member _.ReleaseAdjoint() =
        holdingAdjoint <- false

        let dispose (x: torch.Tensor) =
            if not (isNull x) then
                x.Dispose()

        for r in runs do
            dispose runInputs[r]
            runInputs[r] <- null

        for j in 0 .. sites.Length - 1 do
            dispose siteOutputs[j]
            siteOutputs[j] <- null

        for d in 0 .. solves.Length - 1 do
            let f, psi = solveGraphs[d]
            dispose f
            dispose psi
            solveGraphs[d] <- (null, null)

    /// Whether the right-hand side evaluates closure networks or diagnostic solves (what `RhsKept` keeps).
    member _.Keeps = keeps

    /// A `KeptStep<'T>` for a step of `stageCount` evaluations of the right-hand side (`RhsKept` slots) and `extra`
    /// other states.
    member _.NewKept(stageCount: int, extra: int) : KeptStep<'T> = {
        States = Array.init stageCount (fun _ -> newState ())
        Inputs = Array.init stageCount (fun _ -> newArrays inputs.Length)
        RunInputs = Array.init stageCount (fun _ -> Array.zeroCreate sites.Length)
        SiteOutputs = Array.init stageCount (fun _ -> Array.zeroCreate sites.Length)
        SolveGraphs = Array.init stageCount (fun _ -> Array.zeroCreate solves.Length)
        Extra = Array.init extra (fun _ -> newState ())
        Linear = null
    }

    /// `Rhs` (F(u, t) into `output`; `u`'s ghosts filled), the networks and solves run under autograd and what the
    /// adjoint reads kept in slot i of `kept` (the state, the inputs, the graphs) for `RhsAdjointKept`.
    member _.RhsKept(u: 'T[][], theta: 'T[], t: float, output: 'T[][], kept: KeptStep<'T>, i: int) =
        fillCopies theta

        do
            use _ = torch.NewDisposeScope()
            prepareInputs u theta t true
            keepStage kept i u

        rhs u theta t output

    /// Disposes the graphs of every slot of `kept` (`IKeepingStepper.Discard`).
    member _.DiscardKept(kept: KeptStep<'T>) =
        for i in 0 .. kept.RunInputs.Length - 1 do
            disposeKept kept i

    /// `RhsAdjoint` at the state `RhsKept` kept in slot i of `kept` (same θ and t): no network or solve run forward;
    /// disposes the slot's graphs.
    member _.RhsAdjointKept
        (
            kept: KeptStep<'T>,
            i: int,
            theta: 'T[],
            t: float,
            outputAdjoint: 'T[][],
            stateAdjoint: 'T[][],
            thetaAdjoint: 'T[]
        ) =
        fillCopies theta
        keptRhsAdjoint kept i theta t outputAdjoint stateAdjoint thetaAdjoint

    /// `StepAdjointWith` of the step `StepKept` kept into `kept` (see `IKeepingStepper.StepAdjointKept`).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.StepAdjointKeptWith
        (
            kept: KeptStep<'T>,
            theta: 'T[],
            t: float,
            dt: float,
            lambdaNext: 'T[][],
            stageExtra: 'T[][][],
            direct: 'T[][],
            lambda: 'T[][],
            thetaAdjoint: 'T[]
        ) =
        fillCopies theta

        sweep dt lambdaNext stageExtra direct lambda (fun i kbar sbar ->
            keptRhsAdjoint kept i theta (t + tableau.C[i] * dt) kbar sbar thetaAdjoint)

    /// The networks of the closures (name, module), each once, in the order of `ClosureGradients`.
    member _.Networks = networks

    /// Accumulated gradients of every network weight, per network (see `ResetClosureGradients`).
    member _.ClosureGradients = closureGradients

    /// Zeroes the accumulated network-weight gradients.
    member _.ResetClosureGradients() =
        use _ = torch.no_grad ()

        for ws in closureGradients do
            for w in ws do
                w.zero_ () |> ignore

    /// The slope buffers the compact step reuses (`slotOf`) and the stage-adjoint buffers the sweep reuses
    /// (`barSlotOf`).
    member internal _.CompactBuffers = Array.max slotOf + 1, Array.max barSlotOf + 1

    /// The stage slopes k[j] of the latest `StepFrom` (padded layout; overwritten by the next call; `Step` leaves
    /// them in its own compact order).
    member _.Slopes: 'T[][][] = k

    /// `next` = one step from `u` at time t.
    member s.Step(u: 'T[][], theta: 'T[], t: float, dt: float, next: 'T[][]) =
        if obj.ReferenceEquals(u, next) then
            s.StepFrom(u, theta, t, dt, next, false)
        else
            compactStep u theta t dt next

    /// Swaps the first and last stage slopes: after a step whose last stage is F at its new state (first same as
    /// last, Dormand–Prince), the first slope of the next step from that state (see `StepFrom`).
    member _.CarryLast() =
        let first = k[0]
        k[0] <- k[stages - 1]
        k[stages - 1] <- first

    /// `Step`, skipping the first stage's evaluation when `firstKnown` (its slope k[0] already holds F(t, u), e.g.
    /// left by a rejected attempt from the same u or by `CarryLast`).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.StepFrom(u: 'T[][], theta: 'T[], t: float, dt: float, next: 'T[][], firstKnown: bool) =
        step u theta t dt next firstKnown None

    /// The adjoint of `Step` from `u` at time t: given λ′ = ∂L/∂(next) (ghost entries zero), writes ∂L/∂u
    /// into `lambda` (ghost entries zero) and adds ∂L/∂θ into `thetaAdjoint`. Stages are recomputed from `u`.
    member s.StepAdjoint
        (u: 'T[][], theta: 'T[], t: float, dt: float, lambdaNext: 'T[][], lambda: 'T[][], thetaAdjoint: 'T[])
        =
        s.StepAdjointWith(u, theta, t, dt, lambdaNext, null, null, lambda, thetaAdjoint)

    /// `StepAdjoint` for a step that also feeds other outputs of the form u + Δt Σⱼ wⱼ k[j] (a continuous
    /// extension read at save times): their cotangents enter as `stageExtra` (per stage j, Σ wⱼ·λ over those
    /// outputs; null when none) and `direct` (Σ λ, their dependence on u itself; null when none). Ghost entries of
    /// both are zero.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.StepAdjointWith
        (
            u: 'T[][],
            theta: 'T[],
            t: float,
            dt: float,
            lambdaNext: 'T[][],
            stageExtra: 'T[][][],
            direct: 'T[][],
            lambda: 'T[][],
            thetaAdjoint: 'T[]
        ) =
        fillCopies theta

        // Stage inputs (the last stage's slope is not needed), the slopes in their compact slots (`slotOf`); the
        // first stage reads u itself, its ghosts filled in place.
        let stateOf i = if i = 0 then u else s[i]

        for i in 0 .. stages - 1 do
            let ti = t + tableau.C[i] * dt

            if i = 0 then
                fillGhosts u theta ti
            else
                stageInput u theta ti dt i compactSlope

            if i < stages - 1 then
                prepareInputs (stateOf i) theta ti false
                rhs (stateOf i) theta ti k[slotOf[i]]

        sweep dt lambdaNext stageExtra direct lambda (fun i kbar sbar ->
            rhsAdjoint (stateOf i) theta (t + tableau.C[i] * dt) kbar sbar thetaAdjoint)

    /// Raises when a field holds NaN or ±∞ in its interior after `step` (time t), or when its max |u| passes
    /// `Rollout.maxMagnitude` (the eager back end's error). A vectorised scan of the interior's runs first; the
    /// cell-by-cell pass that names the value runs only when the scan fails.
    member _.CheckFinite(u: 'T[][], step: int, t: float) =
        let passes f =
            InteriorRuns.within Rollout.maxMagnitude interiorRuns[f] maps[f].Padded batch u[f]

        for f in 0 .. fields - 1 do
            if not (passes f) then
                let values = u[f]
                let interior = maps[f].Interior
                let mutable largest = 0.0

                for b in 0 .. batch - 1 do
                    for c in 0 .. interior.Length - 1 do
                        let v = KernelElement.toFloat values[b * maps[f].Padded + interior[c]]

                        if not (Double.IsFinite v) then
                            raise (
                                DivergenceException(
                                    $"The kernel rollout produced {v} in field '{plan.Fields[f]}' at step {step} (t = {t:G6}), cell {c} of trajectory {b}. Reduce the time step or check the parameters."
                                )
                            )

                        largest <- max largest (abs v)

                if largest > Rollout.maxMagnitude then
                    raise (Rollout.blowUp plan.Fields[f] largest step t)

    interface IStepper<'T> with
        member s.Plan = s.Plan
        member s.Batch = s.Batch
        member s.Maps = s.Maps
        member s.NewState() = s.NewState()
        member s.Step(u, theta, t, dt, next) = s.Step(u, theta, t, dt, next)

        member s.StepAdjoint(u, theta, t, dt, lambdaNext, lambda, thetaAdjoint) =
            s.StepAdjoint(u, theta, t, dt, lambdaNext, lambda, thetaAdjoint)

        member s.CheckFinite(u, step, t) = s.CheckFinite(u, step, t)
        member s.ClosureGradients = s.ClosureGradients
        member s.ResetClosureGradients() = s.ResetClosureGradients()

    interface IKeepingStepper<'T> with
        member _.Keeps = keeps
        member _.KeptSteps = KeptStep.stepsOf stages
        member s.NewKept() = s.NewKept(stages, 0)

        member _.StepKept(u, theta, t, dt, next, kept) =
            step u theta t dt next false (Some kept)

        member s.StepAdjointKept(kept, theta, t, dt, lambdaNext, stageExtra, direct, lambda, thetaAdjoint) =
            s.StepAdjointKeptWith(kept, theta, t, dt, lambdaNext, stageExtra, direct, lambda, thetaAdjoint)

        member s.Discard kept = s.DiscardKept kept
