namespace Hybrid.Kernels

open System.Collections.Generic
open System.Runtime.CompilerServices
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// The stiff part of an IMEX split on the generated kernels: its plan (G(u) = L u + b per field, 0 where a field
/// has none; the explicit plan's arrays and ghosts, its own closure sites and parameter copies), which fields have
/// one, the networks of its closures, and its evaluators.
type internal StiffPart = {
    /// The plan of the stiff parts (`Lowering.lowerSplit`).
    Plan: KernelPlan
    /// Per field: whether it has a stiff part.
    Stiff: bool[]
    /// The network of each closure site of `Plan` (a closure of the coordinates and parameters inside a diffusion
    /// coefficient), in the order of its sites.
    Modules: torch.nn.Module<torch.Tensor, torch.Tensor>[]
    /// G's evaluators per batch size (`StiffPart.evaluator`).
    Evaluators: Dictionary<int, Stepper<float>>
}

/// Building a `StiffPart`, evaluating G and probing its stencils.
[<RequireQualifiedAccess>]
module internal StiffPart =

    /// The stiff part of `stiffPlan` (fields with one: `stiff`; its sites' networks: `modules`).
    let create (stiffPlan: KernelPlan) (stiff: bool[]) (modules: torch.nn.Module<torch.Tensor, torch.Tensor>[]) = {
        Plan = stiffPlan
        Stiff = stiff
        Modules = modules
        Evaluators = Dictionary()
    }

    /// G's evaluator for `batch` trajectories: a `Stepper` on the stiff plan (kernels generated on first use), whose
    /// `Rhs` is G on padded states (ghosts filled) and whose `RhsAdjoint` its vector–Jacobian product, with the
    /// parameter copies and the closures' networks (their weights' gradients in its `ClosureGradients`) that a
    /// diffusion coefficient reads. The closures' arguments read neither the state nor the time (`ImexSplit`), so G
    /// stays affine in u.
    let evaluator (part: StiffPart) (batch: int) : Stepper<float> =
        match part.Evaluators.TryGetValue batch with
        | true, e -> e
        | _ ->
            let e =
                Stepper<float>(part.Plan, Tableau.ofScheme Scheme.Euler, batch, part.Modules, [||])

            part.Evaluators[batch] <- e
            e

    /// The closure networks (name, module) that an IMEX simulator with explicit networks `explicitNetworks` (each
    /// once, in the order of its explicit stepper's) and stiff part `part` differentiates: those, then G's that the
    /// explicit part does not call, in the order of G's sites. The order of its weights and of
    /// `StiffSolves.ClosureGradientsWith`.
    let networks (explicitNetworks: (string * torch.nn.Module<torch.Tensor, torch.Tensor>)[]) (part: StiffPart option) =
        match part with
        | None -> explicitNetworks
        | Some part ->
            let own =
                Array.zip (part.Plan.Sites |> Array.map _.Name) part.Modules
                |> Array.distinctBy fst
                |> Array.filter (fun (name, _) -> not (explicitNetworks |> Array.exists (fun (n, _) -> n = name)))

            Array.append explicitNetworks own

    /// The cells of a 1-D or 2-D plan per axis.
    let private shape (plan: KernelPlan) =
        if plan.Grid.Dims >= 2 then
            [| plan.Nx; plan.Ny |]
        else
            [| plan.Nx |]

    /// Each stiff field's stencil at parameter values θ (`ImplicitStencil.probe`), G evaluated on the probes.
    let stencils (part: StiffPart) (theta: float[]) =
        let plan = part.Plan

        let apply (batch: int) (values: float[][]) =
            let g = evaluator part batch
            let padded = g.NewState()
            let output = g.NewState()
            Ghosts.scatter g.Maps batch values padded
            // Walls of stiff parts are constant in time: any t fills them.
            g.FillGhosts(padded, theta, 0.0)
            g.Rhs(padded, theta, 0.0, output)
            Ghosts.gather g.Maps batch output

        ImplicitStencil.probe (shape plan) plan.Fields part.Stiff apply

    /// Why the kernels cannot solve the stiff parts at parameter values θ (None when they can).
    let refusal (part: StiffPart) (theta: float[]) : string option =
        stencils part theta
        |> Array.tryPick (fun s ->
            match s with
            | Some(Error why) -> Some why
            | Some(Ok stencil) -> ImplicitStencil.refusal stencil
            | None -> None)

/// The implicit solves of a stiff part on padded states, for one batch size: its stencils probed for the latest
/// parameter values, the solves of (I − cL) factored for the latest c, G(u) = L u + b and its vector–Jacobian
/// product (through the closures' networks too). Shared by the fixed-step IMEX steps (`ImexStepper`) and KenCarp4's
/// (`KenCarpStepper`). The stencils are kept for the θ array of the latest call: a rollout passes a new one (its
/// networks' weights may have changed since the last).
type internal StiffSolves(plan: KernelPlan, stiffPart: StiffPart, maps: GhostMap[], batch: int, scheme: Scheme) =
    let fields = plan.Fields.Length
    let work = Array.zeroCreate<float> plan.Cells
    // The iterative solves' vectors, kept from one solve to the next.
    let solveVectors = SolveVectors()
    let evaluator = StiffPart.evaluator stiffPart batch

    let scratch =
        Array.init fields (fun f -> Array.zeroCreate<float> (batch * KernelPlan.padded plan f))

    let mutable stencilTheta: float[] = null
    let mutable stencils: Result<ImplicitStencil, string> option[] = [||]
    let mutable preparedTheta: float[] = null
    let mutable preparedC = nan
    let mutable solvers: ImplicitSolver option[] = [||]
    let mutable affine: float[][] = [||]
    // The solves factored before the current ones (θ, c, solves): a rollout whose save times are off the step grid
    // alternates between Dt and the shortened step before a save time, so each keeps its factorisation.
    let mutable spareTheta: float[] = null
    let mutable spareC = nan
    let mutable spareSolvers: ImplicitSolver option[] = [||]

    /// Probes the stencils for θ (unless done for the same θ array) and factors the solves for c (unless done for
    /// the same θ and c, now or just before); raises `ModelException` naming the reason when a solve cannot be built.
    member _.Prepare(theta: float[], c: float) =
        if not (obj.ReferenceEquals(theta, stencilTheta)) then
            stencils <- StiffPart.stencils stiffPart theta
            stencilTheta <- theta
            spareTheta <- null

            affine <-
                stencils
                |> Array.map (fun s ->
                    match s with
                    | Some(Ok st) -> st.Affine
                    | _ -> [||])

        if
            obj.ReferenceEquals(theta, preparedTheta)
            && c <> preparedC
            && obj.ReferenceEquals(theta, spareTheta)
            && c = spareC
        then
            let current = solvers
            solvers <- spareSolvers
            spareSolvers <- current
            spareC <- preparedC
            preparedC <- c
        elif not (obj.ReferenceEquals(theta, preparedTheta)) || c <> preparedC then
            let fail why =
                raise (
                    ModelException(
                        $"Model '{plan.Model.Name}' cannot run {scheme} on the generated kernels: {why}. Compile with Backend.Auto (kernels where they apply) or Backend.Eager."
                    )
                )

            spareTheta <- preparedTheta
            spareC <- preparedC
            spareSolvers <- solvers

            solvers <-
                stencils
                |> Array.map (
                    Option.map (fun s ->
                        match s |> Result.bind (fun st -> ImplicitStencil.solver solveVectors st c) with
                        | Ok solver -> solver
                        | Error why -> fail why)
                )

            preparedTheta <- theta
            preparedC <- c

    /// The solve method per field with a stiff part for the prepared θ and c.
    member _.Methods: string option[] = solvers |> Array.map (Option.map _.Method)

    /// Solves the implicit equations in place on the stiff fields of `x` (interior), per trajectory: x ← (I − cL)⁻¹
    /// (x + c·b) with c·b scaled by `affineScale`, or x ← (I − cL)⁻ᵀ x when `transposed`.
    member _.Solve(x: float[][], transposed: bool, affineScale: float) =
        for f in 0 .. fields - 1 do
            match solvers[f] with
            | None -> ()
            | Some solver ->
                let interior = maps[f].Interior
                let b = affine[f]
                let values = x[f]

                for trajectory in 0 .. batch - 1 do
                    let offset = trajectory * maps[f].Padded

                    for i in 0 .. interior.Length - 1 do
                        work[i] <- values[offset + interior[i]] + affineScale * b[i]

                    if transposed then
                        solver.SolveTransposed work
                    else
                        solver.Solve work

                    for i in 0 .. interior.Length - 1 do
                        values[offset + interior[i]] <- work[i]

    /// G(u) into `output` (u's ghosts filled).
    member _.Rhs(u: float[][], theta: float[], output: float[][]) = evaluator.Rhs(u, theta, 0.0, output)

    /// θ̄ += ḡᵀ∂G/∂θ at u (ghosts filled) for ḡ = `g`, and ∂/∂u into `stateAdjoint` when given; the gradients of
    /// G's closure weights accumulate in the evaluator (`ClosureGradientsWith`).
    member _.Adjoint
        (u: float[][], theta: float[], g: float[][], thetaAdjoint: float[], stateAdjoint: float[][] option)
        =
        for a in scratch do
            System.Array.Clear a

        evaluator.RhsAdjoint(u, theta, 0.0, g, scratch, thetaAdjoint)

        match stateAdjoint with
        | Some target ->
            for f in 0 .. fields - 1 do
                Blas.Axpy(1.0, scratch[f], target[f])
        | None -> ()

    /// The accumulated gradients of every closure weight of an IMEX step whose explicit part is `explicitPart`, per
    /// network in the order of `StiffPart.networks`: the explicit part's accumulators with G's added (G's then
    /// zeroed) for the networks both call, then G's own.
    member _.ClosureGradientsWith(explicitPart: Stepper<float>) : torch.Tensor[][] =
        let own = evaluator.ClosureGradients
        let ownNames = evaluator.Networks |> Array.map fst

        let shared =
            Array.zip (explicitPart.Networks |> Array.map fst) explicitPart.ClosureGradients
            |> Array.map (fun (name, grads) ->
                match Array.tryFindIndex ((=) name) ownNames with
                | Some j ->
                    use _ = torch.no_grad ()

                    Array.iter2
                        (fun (total: torch.Tensor) (part: torch.Tensor) ->
                            addInPlace total part |> ignore
                            part.zero_ () |> ignore)
                        grads
                        own[j]

                    grads
                | None -> grads)

        let explicitNames = explicitPart.Networks |> Array.map fst

        Array.append
            shared
            (Array.zip ownNames own
             |> Array.filter (fun (name, _) -> not (Array.contains name explicitNames))
             |> Array.map snd)

    /// Zeroes G's accumulated closure-weight gradients.
    member _.ResetClosureGradients() = evaluator.ResetClosureGradients()

/// One fixed IMEX step of generated kernels and its discrete adjoint, on du/dt = F(t, u) + G(u) with G(u) = L u + b
/// the stiff part (`ImexSplit`: linear diffusion of a field itself under constant walls), as
/// `Integrators.stepper` steps on the eager back end, with c = h (ImexEuler) or h/2 (ImexCrankNicolson):
/// - ImexEuler: x − hG(x) = u + hF(t, u);
/// - ImexCrankNicolson (the trapezoid on G, Heun on F): p − cG(p) = u + cG(u) + hF(t, u), then
///   x − cG(x) = u + cG(u) + c(F(t, u) + F(t + h, p)).
/// F is the explicit plan's kernel (closures and forcings as in `Stepper`), G the stiff plan's; each implicit
/// equation is the solve (I − cL) x = right-hand side + cb of `ImplicitSolver`, per trajectory. A field without a
/// stiff part has G = 0 and no solve (ImexEuler's steps are then Euler's, ImexCrankNicolson's Heun's).
///
/// Adjoint: an implicit equation x − cG(x, θ) = r gives r̄ = (I − cL)⁻ᵀx̄ and θ̄ += c r̄ᵀ∂G/∂θ at x (G's generated
/// adjoint, through the diffusion coefficient and the walls); the explicit parts by F's generated adjoint, which
/// also accumulates the closures' weight gradients. The stencils are probed and the solves factored for the
/// parameter values and step size of the latest call, again when either changes.
type internal ImexStepper
    (
        plan: KernelPlan,
        stiffPart: StiffPart,
        scheme: Scheme,
        batch: int,
        modules: torch.nn.Module<torch.Tensor, torch.Tensor>[],
        forcings: (float -> torch.Tensor)[]
    ) =
    let explicitPart =
        Stepper<float>(plan, Tableau.ofScheme Scheme.Euler, batch, modules, forcings)

    let fields = plan.Fields.Length
    let maps = explicitPart.Maps

    /// c = γh: h for ImexEuler, h/2 for ImexCrankNicolson.
    let gamma =
        match scheme with
        | Scheme.ImexEuler -> 1.0
        | Scheme.ImexCrankNicolson -> 0.5
        | other -> invalidArg "scheme" $"{other} is not a fixed-step IMEX scheme."

    let newState () = explicitPart.NewState()

    let k1, k2, gu, stage, start =
        newState (), newState (), newState (), newState (), newState ()

    let solved, mu, stageAdjoint, cotangent =
        newState (), newState (), newState (), newState ()

    let solves = StiffSolves(plan, stiffPart, maps, batch, scheme)

    /// Probes the stencils and factors the solves for θ and step h.
    let prepare (theta: float[]) (h: float) = solves.Prepare(theta, gamma * h)

    /// Solves the implicit equations in place on the stiff fields of `x` (see `StiffSolves.Solve`).
    let solve (x: float[][]) (transposed: bool) (affineScale: float) =
        solves.Solve(x, transposed, affineScale)

    /// G(u) into `output` (u's ghosts filled).
    let stiffRhs (u: float[][]) (theta: float[]) (output: float[][]) = solves.Rhs(u, theta, output)

    /// θ̄ += ḡᵀ∂G/∂θ at u (ghosts filled) for ḡ = `g`, and ∂/∂u into `stateAdjoint` when given.
    let stiffAdjoint
        (u: float[][])
        (theta: float[])
        (g: float[][])
        (thetaAdjoint: float[])
        (stateAdjoint: float[][] option)
        =
        solves.Adjoint(u, theta, g, thetaAdjoint, stateAdjoint)

    /// target ← x per field.
    let copy (target: float[][]) (x: float[][]) =
        for f in 0 .. fields - 1 do
            Array.blit x[f] 0 target[f] 0 target[f].Length

    /// target ← a·x per field.
    let scale (target: float[][]) (a: float) (x: float[][]) =
        for f in 0 .. fields - 1 do
            Blas.Scale(a, x[f], target[f])

    /// target ← a·x + b·y per field.
    let combine (target: float[][]) (a: float) (x: float[][]) (b: float) (y: float[][]) =
        for f in 0 .. fields - 1 do
            Blas.Scale(a, x[f], target[f])
            Blas.Axpy(b, y[f], target[f])

    /// Evaluations of F per step: at u, and for ImexCrankNicolson at the predictor.
    let stages = if gamma = 1.0 then 1 else 2

    /// F at x (ghosts filled; time t) into `output`, as evaluation i of the step: kept in `kept`'s slot i when given.
    let explicitRhs (kept: KeptStep<float> option) (i: int) (x: float[][]) (theta: float[]) (t: float) output =
        match kept with
        | Some kept -> explicitPart.RhsKept(x, theta, t, output, kept, i)
        | None -> explicitPart.Rhs(x, theta, t, output)

    /// The step (t, h) from u into `next`; for ImexCrankNicolson also leaves the solved predictor in `stage`
    /// (ghosts filled for t + h) and u + cG(u) in `start`. With `kept`, F's evaluations keep what their adjoint reads
    /// (u in slot 0, the predictor in slot 1) and `next` is copied into its first extra state.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let step (u: float[][]) (theta: float[]) (t: float) (h: float) (next: float[][]) (kept: KeptStep<float> option) =
        prepare theta h
        explicitPart.FillGhosts(u, theta, t)
        explicitRhs kept 0 u theta t k1

        if gamma = 1.0 then
            combine next 1.0 u h k1
            solve next false h
        else
            let c = gamma * h
            stiffRhs u theta gu
            combine start 1.0 u c gu
            combine stage 1.0 start h k1
            solve stage false c
            explicitPart.FillGhosts(stage, theta, t + h)
            explicitRhs kept 1 stage theta (t + h) k2
            combine next 1.0 start c k1

            for f in 0 .. fields - 1 do
                Blas.Axpy(c, k2[f], next[f])

            solve next false c

        match kept with
        | Some kept -> copy kept.Extra[0] next
        | None -> ()

    /// The adjoint of the step (t, dt) from u to `solved` with predictor `stage` (ImexCrankNicolson), given λ′ =
    /// `lambdaNext`: ∂L/∂u into `lambda`, ∂L/∂θ added into `thetaAdjoint`; `rhsAdjoint i x t x̄ target` adds the
    /// vector–Jacobian product of F's evaluation i (at x, time t) with x̄ into `target` (and θ̄). The solves are
    /// prepared for θ and dt.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let adjoint
        (u: float[][])
        (stage: float[][])
        (solved: float[][])
        (theta: float[])
        (t: float)
        (dt: float)
        (lambdaNext: float[][])
        (lambda: float[][])
        (thetaAdjoint: float[])
        (rhsAdjoint: int -> float[][] -> float -> float[][] -> float[][] -> unit)
        =
        if gamma = 1.0 then
            // μ = (I − hL)⁻ᵀλ′; θ̄ += h μᵀ∂G/∂θ at x; ū = μ + (∂F/∂u)ᵀ(hμ).
            copy lambda lambdaNext
            solve lambda true 0.0
            explicitPart.FillGhosts(solved, theta, t + dt)
            scale cotangent dt lambda
            stiffAdjoint solved theta cotangent thetaAdjoint None
            explicitPart.FillGhosts(u, theta, t)
            rhsAdjoint 0 u t cotangent lambda
        else
            let c = gamma * dt
            // μ₂ = (I − cL)⁻ᵀλ′; θ̄ += c μ₂ᵀ∂G/∂θ at x.
            copy mu lambdaNext
            solve mu true 0.0
            explicitPart.FillGhosts(solved, theta, t + dt)
            scale cotangent c mu
            stiffAdjoint solved theta cotangent thetaAdjoint None
            // p̄ = (∂F/∂p)ᵀ(cμ₂) at the predictor p; μ₁ = (I − cL)⁻ᵀp̄; θ̄ += c μ₁ᵀ∂G/∂θ at p.
            for a in stageAdjoint do
                System.Array.Clear a

            explicitPart.FillGhosts(stage, theta, t + dt)
            rhsAdjoint 1 stage (t + dt) cotangent stageAdjoint
            solve stageAdjoint true 0.0
            scale cotangent c stageAdjoint
            stiffAdjoint stage theta cotangent thetaAdjoint None
            // ū = μ₁ + μ₂ + (∂G/∂u)ᵀ c(μ₁ + μ₂) + (∂F/∂u)ᵀ(cμ₂ + hμ₁).
            combine lambda 1.0 mu 1.0 stageAdjoint
            explicitPart.FillGhosts(u, theta, t)
            scale cotangent c lambda
            stiffAdjoint u theta cotangent thetaAdjoint (Some lambda)
            combine cotangent c mu dt stageAdjoint
            rhsAdjoint 0 u t cotangent lambda

    /// The lowered model's explicit part.
    member _.Plan = plan

    /// Trajectories per call.
    member _.Batch = batch

    /// The solve method per field with a stiff part for θ and step h (`ImplicitSolver.Method`).
    member _.Methods(theta: float[], h: float) : string option[] =
        prepare theta h
        solves.Methods

    interface IStepper<float> with
        member _.Plan = plan
        member _.Batch = batch
        member _.Maps = maps
        member _.NewState() = newState ()
        member _.Step(u, theta, t, dt, next) = step u theta t dt next None

        member _.StepAdjoint(u, theta, t, dt, lambdaNext, lambda, thetaAdjoint) =
            step u theta t dt solved None

            adjoint u stage solved theta t dt lambdaNext lambda thetaAdjoint (fun _ x time xbar target ->
                explicitPart.RhsAdjoint(x, theta, time, xbar, target, thetaAdjoint))

        member _.CheckFinite(u, stepNumber, t) =
            explicitPart.CheckFinite(u, stepNumber, t)

        member _.ClosureGradients = solves.ClosureGradientsWith explicitPart

        member _.ResetClosureGradients() =
            explicitPart.ResetClosureGradients()
            solves.ResetClosureGradients()

    /// Keeping F's evaluations (closure networks in the explicit part) for the adjoint: a kept step holds the
    /// evaluations' states, inputs and network graphs (one for ImexEuler, two for ImexCrankNicolson) and the new
    /// state, so the backward pass runs each network forward once per evaluation (the replay).
    interface IKeepingStepper<float> with
        member _.Keeps = explicitPart.Keeps
        member _.KeptSteps = KeptStep.stepsOf stages
        member _.NewKept() = explicitPart.NewKept(stages, 1)
        member _.StepKept(u, theta, t, dt, next, kept) = step u theta t dt next (Some kept)
        member _.Discard kept = explicitPart.DiscardKept kept

        member _.StepAdjointKept(kept, theta, t, dt, lambdaNext, stageExtra, direct, lambda, thetaAdjoint) =
            if not (isNull stageExtra && isNull direct) then
                invalidOp $"{scheme} has no continuous extension."

            prepare theta dt
            let stage = if stages > 1 then kept.States[1] else null

            adjoint
                kept.States[0]
                stage
                kept.Extra[0]
                theta
                t
                dt
                lambdaNext
                lambda
                thetaAdjoint
                (fun i _ time xbar target ->
                    explicitPart.RhsAdjointKept(kept, i, theta, time, xbar, target, thetaAdjoint))
