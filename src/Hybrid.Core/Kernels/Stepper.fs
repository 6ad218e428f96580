namespace Hybrid.Kernels

open System
open System.Runtime.CompilerServices
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// One time step of generated kernels and its discrete adjoint, on states in the padded layout (one [B·PaddedCells]
/// array per field): what `TapedRollout` and the rollout's autograd function need of an explicit (`Stepper`) or an
/// IMEX (`ImexStepper`) step.
type internal IStepper =
    /// The lowered model (its explicit part for an IMEX step).
    abstract Plan: KernelPlan
    /// Trajectories per call.
    abstract Batch: int
    /// Ghost maps, one per field.
    abstract Maps: GhostMap[]
    /// A zeroed state in the padded layout.
    abstract NewState: unit -> float[][]
    /// `next` = one step of size dt from `u` at time t with parameter values θ.
    abstract Step: u: float[][] * theta: float[] * t: float * dt: float * next: float[][] -> unit

    /// Given λ′ = ∂L/∂(next) (ghost entries zero), writes ∂L/∂u into `lambda` (ghost entries zero) and adds ∂L/∂θ
    /// into `thetaAdjoint`.
    abstract StepAdjoint:
        u: float[][] *
        theta: float[] *
        t: float *
        dt: float *
        lambdaNext: float[][] *
        lambda: float[][] *
        thetaAdjoint: float[] ->
            unit

    /// Raises when a field holds NaN or ±∞, or passes `Rollout.maxMagnitude`, after `step` (time t).
    abstract CheckFinite: u: float[][] * step: int * t: float -> unit
    /// Accumulated gradients of every closure network's weights, per network.
    abstract ClosureGradients: torch.Tensor[][]
    /// Zeroes `ClosureGradients`.
    abstract ResetClosureGradients: unit -> unit

/// One explicit Runge–Kutta step of a generated kernel and its discrete adjoint. States, slopes and adjoints all
/// live in the padded layout (one [B·PaddedCells] array per field), so stage updates are contiguous loops
/// and only the ghost entries are refilled before each kernel call; ghost entries of states are otherwise
/// meaningless, those of adjoints are kept zero. Scratch buffers are allocated once for a batch size.
///
/// Neural closure calls (`plan.Sites`) are evaluated by TorchSharp between the generated loops: a generated
/// kernel writes each call's arguments per cell, the network (`modules`, one per site) maps them to the
/// call's output, which the main kernel reads; the adjoint takes the network's vector–Jacobian product with
/// `torch.autograd.grad` and the arguments' with a generated kernel, and accumulates the network weights'
/// gradients (`ClosureGradients`).
///
/// Forcings (`plan.Forcings`, data as functions of time, `forcings` in the same order) are evaluated at each
/// stage's time and broadcast to the grid; they carry no gradient. Spatial parameters that diffusion
/// coefficients read at faces are copied from θ into padded arrays with ghosts (`plan.ParamCopies`) once per
/// step; the adjoint folds the copies' adjoints back into θ̄.
type internal Stepper
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
    let split = RowSplit.ofPlan plan batch
    let threaded = split.Rows.Length > 1
    let forward = if threaded then null else Codegen.forward plan
    let adjoint = if threaded then null else Codegen.adjoint plan

    let forwardPass =
        if threaded then
            ForwardPass(split, Codegen.forwardRows plan, batch)
        else
            Unchecked.defaultof<_>

    let adjointPass =
        if threaded then
            let band, core = Codegen.adjointParts plan
            AdjointPass(split, band, core, plan, batch)
        else
            Unchecked.defaultof<_>

    let combination = CombinationPass(split, fields, stages + 1)

    /// Runs `parts` parts of `pass`: over the pool when split, else in order on this thread.
    let run (parts: int) (pass: IParts) =
        if threaded then
            KernelThreads.pool().Run(parts, pass)
        else
            for j in 0 .. parts - 1 do
                pass.Execute j

    let newState () =
        Array.init fields (fun f -> Array.zeroCreate<float> (batch * KernelPlan.padded plan f))

    let maps = Array.init fields (Ghosts.map plan)
    let interiorRuns = maps |> Array.map InteriorRuns.runs
    let movingGhosts = maps |> Array.exists (fun m -> m.Moving.Length > 0)

    /// Fills the ghosts of `u` for time t and parameter values θ.
    let fillGhosts (u: float[][]) (theta: float[]) (t: float) =
        if movingGhosts then
            Ghosts.update maps theta plan.ParamOffsets t

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
            Some(Codegen.forward argsPlan)
        else
            None

    let argsAdjoint =
        if sites.Length > 0 then
            Some(Codegen.adjoint argsPlan)
        else
            None

    let newArrays n =
        Array.init n (fun _ -> Array.zeroCreate<float> size)

    let argValues = newArrays argsPlan.Rhs.Length
    let argLambda = newArrays argsPlan.Rhs.Length

    // The padded copies of the spatial parameters that diffusion coefficients read at faces (`plan.ParamCopies`),
    // and their adjoints: the kernels' inputs after the sites' outputs.
    let copyMaps = plan.ParamCopies |> Array.map (Ghosts.copyMap plan)
    let copies = newArrays plan.ParamCopies.Length
    let copyAdjoint = newArrays plan.ParamCopies.Length
    let inputs = Array.append (newArrays sites.Length) copies
    let inputAdjoint = Array.append (newArrays sites.Length) copyAdjoint

    /// `visit c i p` for every copy c, trajectory and cell: i the cell's entry of θ, p its padded index in copy c.
    let eachCopyCell (visit: int -> int -> int -> unit) =
        for c in 0 .. copies.Length - 1 do
            let offset = plan.ParamOffsets[plan.ParamCopies[c].Param]
            let interior = copyMaps[c].Interior

            for b in 0 .. batch - 1 do
                for cell in 0 .. interior.Length - 1 do
                    visit c (offset + cell) (b * plan.PaddedCells + interior[cell])

    /// Fills the parameter copies from θ: the interior of every trajectory, then the ghosts.
    let fillCopies (theta: float[]) =
        if copies.Length > 0 then
            eachCopyCell (fun c i p -> copies[c][p] <- theta[i])
            Ghosts.fill copyMaps batch copies

    /// The transpose of `fillCopies`: adds the copies' adjoints into θ̄ (ghosts folded into the cells they copy).
    let foldCopies (theta: float[]) (thetaAdjoint: float[]) =
        if copies.Length > 0 then
            Ghosts.fold copyMaps batch theta plan.ParamOffsets 0.0 copyAdjoint thetaAdjoint
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
                    raw
                        .to_type(torch.ScalarType.Float64)
                        .cpu()
                        .expand(Grid.fieldShape plan.Grid batch)
                        .contiguous()
                        .data<float>()
                        .ToArray()

                let target = data[j]

                for row in 0 .. rows - 1 do
                    target[at row] <- values[row]

            dataTime <- t

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

    /// Site j's arguments as a [rows; arity] tensor in the network's dtype.
    let argumentTensor (j: int) (network: torch.nn.Module<torch.Tensor, torch.Tensor>) =
        let x = Array.zeroCreate<float> (rows * arity[j])

        for a in 0 .. arity[j] - 1 do
            let values = argValues[argOffset[j] + a]

            for row in 0 .. rows - 1 do
                x[row * arity[j] + a] <- values[at row]

        let dtype = (network.parameters () |> Seq.head).dtype

        torch.tensor(x, dtype = torch.ScalarType.Float64).reshape([| int64 rows; int64 arity[j] |]).to_type (dtype)

    /// Evaluates every closure call at state `u` (ghosts filled) into `inputs`.
    let evalClosures (u: float[][]) (theta: float[]) (t: float) =
        match argsForward with
        | None -> ()
        | Some kernel ->
            kernel.Invoke(u, theta, t, argValues, batch, copies, data)

            for j in 0 .. sites.Length - 1 do
                use _ = torch.NewDisposeScope()
                use _ = torch.no_grad ()
                let network = modules[j]

                let y =
                    network
                        .forward(argumentTensor j network)
                        .to_type(torch.ScalarType.Float64)
                        .contiguous()
                        .data<float>()
                        .ToArray()

                let target = inputs[j]

                for row in 0 .. rows - 1 do
                    target[at row] <- y[row]

    /// Given ∂L/∂(closure outputs) in `inputAdjoint`, adds ∂L/∂(state) into `stateAdjoint` and ∂L/∂θ into
    /// `thetaAdjoint` through the arguments, and ∂L/∂(weights) into the accumulators.
    let closureAdjoint (u: float[][]) (theta: float[]) (t: float) (stateAdjoint: float[][]) (thetaAdjoint: float[]) =
        match argsAdjoint with
        | None -> ()
        | Some kernel ->
            for j in 0 .. sites.Length - 1 do
                use _ = torch.NewDisposeScope()
                use _ = torch.enable_grad ()
                let network = modules[j]
                let x = (argumentTensor j network).requires_grad_ (true)
                let y = network.forward(x).reshape ([| int64 rows |])

                let weights =
                    network.parameters () |> Seq.map (fun w -> w :> torch.Tensor) |> Array.ofSeq

                let zbar =
                    torch
                        .tensor(Array.init rows (fun row -> inputAdjoint[j][at row]), dtype = torch.ScalarType.Float64)
                        .to_type (y.dtype)

                let grads = torch.autograd.grad ([| y |], Array.append [| x |] weights, [| zbar |])

                let xbar =
                    grads[0].to_type(torch.ScalarType.Float64).contiguous().data<float>().ToArray()

                for a in 0 .. arity[j] - 1 do
                    let target = argLambda[argOffset[j] + a]
                    Array.Clear target

                    for row in 0 .. rows - 1 do
                        target[at row] <- xbar[row * arity[j] + a]

                use _ = torch.no_grad ()
                let accumulators = closureGradients[networkIndex[j]]

                for w in 0 .. accumulators.Length - 1 do
                    addInPlace accumulators[w] grads[w + 1] |> ignore

            kernel.Invoke(u, theta, t, argLambda, stateAdjoint, thetaAdjoint, batch, copies, copyAdjoint, data)

    /// Adds the vector–Jacobian product of the right-hand side at `u` (ghosts filled; time t) with ∂L/∂F =
    /// `outputAdjoint` into `stateAdjoint` (ghost entries folded back, left zero) and `thetaAdjoint`, closures and
    /// moving ghosts included.
    let rhsAdjoint
        (u: float[][])
        (theta: float[])
        (t: float)
        (outputAdjoint: float[][])
        (stateAdjoint: float[][])
        (thetaAdjoint: float[])
        =
        evalForcings t
        evalClosures u theta t

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
        foldCopies theta thetaAdjoint
        Ghosts.fold maps batch theta plan.ParamOffsets t stateAdjoint thetaAdjoint

    /// s[i] = u + Δt Σⱼ A[i][j] k[j], ghosts filled (at the stage's time t).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let stageInput (u: float[][]) (theta: float[]) (t: float) (dt: float) (i: int) =
        combination.Set(s[i], u)

        for j in 0 .. tableau.A[i].Length - 1 do
            combination.Add(dt * tableau.A[i][j], k[j])

        run combination.Parts combination
        fillGhosts s[i] theta t

    /// F(u, t) into `output` (ghosts of `u` filled; closures and forcings evaluated).
    let rhs (u: float[][]) (theta: float[]) (t: float) (output: float[][]) =
        if threaded then
            forwardPass.Set(u, theta, t, output, inputs, data)
            KernelThreads.pool().Run(forwardPass.Parts, forwardPass)
        else
            forward.Invoke(u, theta, t, output, batch, inputs, data)

    /// The lowered model.
    member _.Plan = plan

    /// Trajectories per call.
    member _.Batch = batch

    /// Ghost maps, one per field.
    member _.Maps = maps

    /// A zeroed state in the padded layout.
    member _.NewState() = newState ()

    /// Fills the ghost entries of `u` (padded layout) for time t and parameter values θ.
    member _.FillGhosts(u: float[][], theta: float[], t: float) = fillGhosts u theta t

    /// F(u, t) into `output` (padded layout); `u` must have its ghosts filled.
    member _.Rhs(u: float[][], theta: float[], t: float, output: float[][]) =
        fillCopies theta
        evalForcings t
        evalClosures u theta t
        rhs u theta t output

    /// Adds λᵀ∂F/∂u at `u` (ghosts filled; time t) for λ = `outputAdjoint` into `stateAdjoint` (ghost entries
    /// left zero) and λᵀ∂F/∂θ into `thetaAdjoint`, through closures and moving ghosts.
    member _.RhsAdjoint
        (
            u: float[][],
            theta: float[],
            t: float,
            outputAdjoint: float[][],
            stateAdjoint: float[][],
            thetaAdjoint: float[]
        ) =
        fillCopies theta
        rhsAdjoint u theta t outputAdjoint stateAdjoint thetaAdjoint

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

    /// The stage slopes k[j] of the latest `Step` (padded layout; overwritten by the next call).
    member _.Slopes: float[][][] = k

    /// `next` = one step from `u` at time t.
    member s.Step(u: float[][], theta: float[], t: float, dt: float, next: float[][]) =
        s.StepFrom(u, theta, t, dt, next, false)

    /// Swaps the first and last stage slopes: after a step whose last stage is F at its new state (first same as
    /// last, Dormand–Prince), the first slope of the next step from that state (see `StepFrom`).
    member _.CarryLast() =
        let first = k[0]
        k[0] <- k[stages - 1]
        k[stages - 1] <- first

    /// `Step`, skipping the first stage's evaluation when `firstKnown` (its slope k[0] already holds F(t, u), e.g.
    /// left by a rejected attempt from the same u or by `CarryLast`).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.StepFrom(u: float[][], theta: float[], t: float, dt: float, next: float[][], firstKnown: bool) =
        fillCopies theta

        for i in (if firstKnown then 1 else 0) .. stages - 1 do
            stageInput u theta (t + tableau.C[i] * dt) dt i
            evalForcings (t + tableau.C[i] * dt)
            evalClosures s[i] theta (t + tableau.C[i] * dt)
            rhs s[i] theta (t + tableau.C[i] * dt) k[i]

        combination.Set(next, u)

        for i in 0 .. stages - 1 do
            combination.Add(dt * tableau.B[i], k[i])

        run combination.Parts combination

    /// The adjoint of `Step` from `u` at time t: given λ′ = ∂L/∂(next) (ghost entries zero), writes ∂L/∂u
    /// into `lambda` (ghost entries zero) and adds ∂L/∂θ into `thetaAdjoint`. Stages are recomputed from `u`.
    member s.StepAdjoint
        (
            u: float[][],
            theta: float[],
            t: float,
            dt: float,
            lambdaNext: float[][],
            lambda: float[][],
            thetaAdjoint: float[]
        ) =
        s.StepAdjointWith(u, theta, t, dt, lambdaNext, null, null, lambda, thetaAdjoint)

    /// `StepAdjoint` for a step that also feeds other outputs of the form u + Δt Σⱼ wⱼ k[j] (a continuous
    /// extension read at save times): their cotangents enter as `stageExtra` (per stage j, Σ wⱼ·λ over those
    /// outputs; null when none) and `direct` (Σ λ, their dependence on u itself; null when none). Ghost entries of
    /// both are zero.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.StepAdjointWith
        (
            u: float[][],
            theta: float[],
            t: float,
            dt: float,
            lambdaNext: float[][],
            stageExtra: float[][][],
            direct: float[][],
            lambda: float[][],
            thetaAdjoint: float[]
        ) =
        fillCopies theta

        // Stage inputs (the last stage's slope is not needed).
        for i in 0 .. stages - 1 do
            stageInput u theta (t + tableau.C[i] * dt) dt i

            if i < stages - 1 then
                evalForcings (t + tableau.C[i] * dt)
                evalClosures s[i] theta (t + tableau.C[i] * dt)
                rhs s[i] theta (t + tableau.C[i] * dt) k[i]

        for i in stages - 1 .. -1 .. 0 do
            // k̄ᵢ = Δt Bᵢ λ′ + Δt·extraᵢ + Δt Σ_{m>i} A[m][i] s̄ₘ
            combination.Set(kAdjoint, null)
            combination.Add(dt * tableau.B[i], lambdaNext)

            if not (isNull stageExtra) then
                combination.Add(dt, stageExtra[i])

            for m in i + 1 .. stages - 1 do
                combination.Add(dt * tableau.A[m][i], stageAdjoint[m])

            run combination.Parts combination
            // s̄ᵢ ← 0
            combination.Set(stageAdjoint[i], null)
            run combination.Parts combination

            rhsAdjoint s[i] theta (t + tableau.C[i] * dt) kAdjoint stageAdjoint[i] thetaAdjoint

        combination.Set(lambda, lambdaNext)

        if not (isNull direct) then
            combination.Add(1.0, direct)

        for i in 0 .. stages - 1 do
            combination.Add(1.0, stageAdjoint[i])

        run combination.Parts combination

    /// Raises when a field holds NaN or ±∞ in its interior after `step` (time t), or when its max |u| passes
    /// `Rollout.maxMagnitude` (the eager back end's error). A vectorised scan of the interior's runs first; the
    /// cell-by-cell pass that names the value runs only when the scan fails.
    member _.CheckFinite(u: float[][], step: int, t: float) =
        let passes f =
            InteriorRuns.within Rollout.maxMagnitude interiorRuns[f] maps[f].Padded batch u[f]

        for f in 0 .. fields - 1 do
            if not (passes f) then
                let values = u[f]
                let interior = maps[f].Interior
                let mutable largest = 0.0

                for b in 0 .. batch - 1 do
                    for c in 0 .. interior.Length - 1 do
                        let v = values[b * maps[f].Padded + interior[c]]

                        if not (Double.IsFinite v) then
                            raise (
                                DivergenceException(
                                    $"The kernel rollout produced {v} in field '{plan.Fields[f]}' at step {step} (t = {t:G6}), cell {c} of trajectory {b}. Reduce the time step or check the parameters."
                                )
                            )

                        largest <- max largest (abs v)

                if largest > Rollout.maxMagnitude then
                    raise (Rollout.blowUp plan.Fields[f] largest step t)

    interface IStepper with
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
