namespace Hybrid.Kernels

open System.Runtime.CompilerServices
open TorchSharp
open Hybrid
open Hybrid.Numerics

/// One KenCarp4 step of generated kernels (Kennedy and Carpenter's additive pair, `KenCarp4Tableau`) of given size,
/// its error estimate and its discrete adjoint, on du/dt = F(t, u) + G(u) with G(u) = L u + b the stiff part, as
/// `AdditiveRungeKutta` steps on the eager back end: stage s ≥ 1 solves (I − γhL) Uₛ = rₛ + γh b with
/// rₛ = u + h Σⱼ aᴱₛⱼ Fⱼ + h Σⱼ aᴵₛⱼ Gⱼ (`StiffSolves`: banded in 1-D, conjugate gradients or BiCGSTAB in 2-D),
/// Gₛ = (Uₛ − rₛ)/(γh), Fₛ = F(t + cₛh, Uₛ); the step is u + h Σ bⱼ (Fⱼ + Gⱼ) and h Σ (bⱼ − b̂ⱼ)(Fⱼ + Gⱼ) its error estimate. F is the
/// explicit plan's kernel (closures and forcings as in `Stepper`), G the stiff plan's. Without a stiff part (a model
/// compiled without `ImplicitDiffusion`), G = 0 and every stage is Uₛ = rₛ, as the eager back end steps it.
///
/// Adjoint (step size fixed): with F̄ⱼ = Ḡⱼ = h bⱼ λ′ to start, stages s = 5 … 1 in turn give Ūₛ = (∂F/∂U)ᵀF̄ₛ +
/// Lᵀ Ḡₛ (Gₛ = L Uₛ + b), r̄ₛ = (I − γhL)⁻ᵀ Ūₛ, θ̄ += γh r̄ₛᵀ ∂G/∂θ at Uₛ, and pass h aᴱₛⱼ r̄ₛ and h aᴵₛⱼ r̄ₛ on
/// to F̄ⱼ and Ḡⱼ (j < s) and r̄ₛ to ū; stage 0 (U₀ = u) adds its F̄₀ and Ḡ₀ through the adjoint kernels.
type internal KenCarpStepper
    (
        plan: KernelPlan,
        stiffPart: StiffPart option,
        batch: int,
        modules: torch.nn.Module<torch.Tensor, torch.Tensor>[],
        forcings: (float -> torch.Tensor)[]
    ) =
    let explicitPart =
        Stepper<float>(plan, Tableau.ofScheme Scheme.Euler, batch, modules, forcings)

    let fields = plan.Fields.Length
    let maps = explicitPart.Maps
    let stages = KenCarp4Tableau.c.Length
    let gamma = KenCarp4Tableau.gamma
    let newState () = explicitPart.NewState()

    let solves =
        stiffPart
        |> Option.map (fun part -> StiffSolves(plan, part, maps, batch, Scheme.KenCarp4))

    /// Per field: whether it has a stiff part.
    let stiff =
        match stiffPart with
        | Some part -> part.Stiff
        | None -> Array.create fields false

    /// Probes the stencils and factors the solves for θ and c = γh (nothing without a stiff part).
    let prepare (theta: float[]) (c: float) =
        solves |> Option.iter (fun s -> s.Prepare(theta, c))

    /// Solves the implicit equations in place on the stiff fields of `x` (`StiffSolves.Solve`).
    let solve (x: float[][]) (transposed: bool) (affineScale: float) =
        solves |> Option.iter (fun s -> s.Solve(x, transposed, affineScale))

    /// θ̄ += ḡᵀ∂G/∂θ at u for ḡ = `g`, and ∂/∂u into `stateAdjoint` when given (`StiffSolves.Adjoint`).
    let stiffAdjoint (u: float[][]) (theta: float[]) (g: float[][]) (thetaAdjoint: float[]) stateAdjoint =
        solves
        |> Option.iter (fun s -> s.Adjoint(u, theta, g, thetaAdjoint, stateAdjoint))

    // Per stage: the state Uₛ (ghosts filled), F and G there.
    let states = Array.init stages (fun _ -> newState ())
    let f = Array.init stages (fun _ -> newState ())
    let g = Array.init stages (fun _ -> newState ())
    let error = newState ()

    // Adjoint buffers: F̄ and Ḡ per stage, Ū, and the cotangent scratch.
    let fBar = Array.init stages (fun _ -> newState ())
    let gBar = Array.init stages (fun _ -> newState ())
    let uBar = newState ()
    let cotangent = newState ()

    /// target ← Σⱼ wⱼ·xs[j] over the non-zero weights of the first `count`, then h·(that) added to `start` (when not
    /// null), per entry: the order of `AdditiveRungeKutta`'s sums.
    let combineInto
        (target: float[][])
        (start: float[][])
        (h: float)
        (weights: float[])
        (xs: float[][][])
        (count: int)
        =
        for fi in 0 .. fields - 1 do
            let y = target[fi]

            for i in 0 .. y.Length - 1 do
                let mutable sum = 0.0
                let mutable any = false

                for j in 0 .. count - 1 do
                    if weights[j] <> 0.0 then
                        let term = weights[j] * xs[j].[fi].[i]
                        sum <- if any then sum + term else term
                        any <- true

                y[i] <- if isNull start then h * sum else start[fi].[i] + h * sum

    // Fⱼ + Gⱼ per stage (G zero on fields without a stiff part).
    let slopes = Array.init stages (fun _ -> newState ())

    /// F at stage s's state (ghosts filled; time t) into f[s]: kept in `kept`'s slot s when given.
    let explicitRhs (kept: KeptStep<float> option) (s: int) (theta: float[]) (t: float) =
        match kept with
        | Some kept -> explicitPart.RhsKept(states[s], theta, t, f[s], kept, s)
        | None -> explicitPart.Rhs(states[s], theta, t, f[s])

    /// The stages of the step (t, h) from u, and the new state into `next`, the error estimate into `Error`; with
    /// `kept`, each stage's F keeps what its adjoint reads (the stage's state, inputs and network graphs) in `kept`.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let step (u: float[][]) (theta: float[]) (t: float) (h: float) (next: float[][]) (kept: KeptStep<float> option) =
        let c = gamma * h
        prepare theta c

        for fi in 0 .. fields - 1 do
            Array.blit u[fi] 0 states[0].[fi] 0 u[fi].Length

        explicitPart.FillGhosts(states[0], theta, t)
        explicitRhs kept 0 theta t

        match solves with
        | Some solves -> solves.Rhs(states[0], theta, g[0])
        | None -> ()

        for s in 1 .. stages - 1 do
            let x = states[s]
            // rₛ = (u + h Σ aᴱ F) + h Σ aᴵ G, then Uₛ = (I − cL)⁻¹(rₛ + c b) and Gₛ = (Uₛ − rₛ)/c on stiff fields.
            combineInto x u h KenCarp4Tableau.explicitA[s] f s
            combineInto x x h KenCarp4Tableau.implicitA[s] g s
            let r = g[s]

            for fi in 0 .. fields - 1 do
                Array.blit x[fi] 0 r[fi] 0 x[fi].Length

            solve x false c

            for fi in 0 .. fields - 1 do
                if stiff[fi] then
                    let xs, rs = x[fi], r[fi]

                    for i in 0 .. rs.Length - 1 do
                        rs[i] <- (xs[i] - rs[i]) / c
                else
                    System.Array.Clear r[fi]

            let time = t + KenCarp4Tableau.c[s] * h
            explicitPart.FillGhosts(x, theta, time)
            explicitRhs kept s theta time

        for s in 0 .. stages - 1 do
            for fi in 0 .. fields - 1 do
                let y, a, b = slopes[s].[fi], f[s].[fi], g[s].[fi]

                for i in 0 .. y.Length - 1 do
                    y[i] <- if stiff[fi] then a[i] + b[i] else a[i]

        combineInto next u h KenCarp4Tableau.b slopes stages
        combineInto error null h (Array.map2 (-) KenCarp4Tableau.b KenCarp4Tableau.embedded) slopes stages

    /// target += w·x per field.
    let addScaled (target: float[][]) (w: float) (x: float[][]) =
        if w <> 0.0 then
            for fi in 0 .. fields - 1 do
                Blas.Axpy(w, x[fi], target[fi])

    /// The adjoint of a step (t, dt) whose stage states (ghosts filled) are `stageStates`, given λ′ = `lambdaNext`:
    /// ∂L/∂u into `lambda`, ∂L/∂θ added into `thetaAdjoint`; `rhsAdjoint s x̄ target` adds the vector–Jacobian
    /// product of stage s's F with x̄ into `target` (and θ̄). The solves are prepared for θ and dt.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let adjoint
        (stageStates: float[][][])
        (theta: float[])
        (t: float)
        (dt: float)
        (lambdaNext: float[][])
        (lambda: float[][])
        (thetaAdjoint: float[])
        (rhsAdjoint: int -> float[][] -> float[][] -> unit)
        =
        let c = gamma * dt
        prepare theta c

        for s in 0 .. stages - 1 do
            for fi in 0 .. fields - 1 do
                Blas.Scale(dt * KenCarp4Tableau.b[s], lambdaNext[fi], fBar[s].[fi])
                Blas.Scale(dt * KenCarp4Tableau.b[s], lambdaNext[fi], gBar[s].[fi])

        for fi in 0 .. fields - 1 do
            Array.blit lambdaNext[fi] 0 lambda[fi] 0 lambda[fi].Length

        for s in stages - 1 .. -1 .. 1 do
            let time = t + KenCarp4Tableau.c[s] * dt

            for a in uBar do
                System.Array.Clear a

            // Ūₛ = (∂F/∂U)ᵀF̄ₛ + LᵀḠₛ (θ̄ through both), at Uₛ (ghosts filled for its time).
            explicitPart.FillGhosts(stageStates[s], theta, time)
            rhsAdjoint s fBar[s] uBar
            stiffAdjoint stageStates[s] theta gBar[s] thetaAdjoint (Some uBar)
            // r̄ₛ = (I − cL)⁻ᵀŪₛ (Ū itself on fields without a stiff part); θ̄ += c r̄ₛᵀ∂G/∂θ at Uₛ.
            solve uBar true 0.0

            if solves.IsSome then
                for fi in 0 .. fields - 1 do
                    Blas.Scale(c, uBar[fi], cotangent[fi])

                stiffAdjoint stageStates[s] theta cotangent thetaAdjoint None

            addScaled lambda 1.0 uBar

            for j in 0 .. s - 1 do
                addScaled fBar[j] (dt * KenCarp4Tableau.explicitA[s].[j]) uBar
                addScaled gBar[j] (dt * KenCarp4Tableau.implicitA[s].[j]) uBar

        explicitPart.FillGhosts(stageStates[0], theta, t)
        rhsAdjoint 0 fBar[0] lambda
        stiffAdjoint stageStates[0] theta gBar[0] thetaAdjoint (Some lambda)

    /// The error estimate of the latest `Step` (padded layout).
    member _.Error = error

    /// The solve method per field with a stiff part for θ and step h ("banded", "conjugate gradients" or
    /// "BiCGSTAB"; None on every field without a stiff part).
    member _.Methods(theta: float[], h: float) : string option[] =
        match solves with
        | Some solves ->
            solves.Prepare(theta, gamma * h)
            solves.Methods
        | None -> Array.create fields None

    interface IStepper<float> with
        member _.Plan = plan
        member _.Batch = batch
        member _.Maps = maps
        member _.NewState() = newState ()
        member _.Step(u, theta, t, dt, next) = step u theta t dt next None

        member _.StepAdjoint(u, theta, t, dt, lambdaNext, lambda, thetaAdjoint) =
            step u theta t dt cotangent None

            adjoint states theta t dt lambdaNext lambda thetaAdjoint (fun s xbar target ->
                let time = t + KenCarp4Tableau.c[s] * dt
                explicitPart.RhsAdjoint(states[s], theta, time, xbar, target, thetaAdjoint))

        member _.CheckFinite(u, stepNumber, t) =
            explicitPart.CheckFinite(u, stepNumber, t)

        member _.ClosureGradients =
            match solves with
            | Some s -> s.ClosureGradientsWith explicitPart
            | None -> explicitPart.ClosureGradients

        member _.ResetClosureGradients() =
            explicitPart.ResetClosureGradients()
            solves |> Option.iter _.ResetClosureGradients()

    /// Keeping the stages' F (closure networks in the explicit part) for the adjoint: a kept step holds the six
    /// stages' states, inputs and network graphs, so the backward pass runs each network forward once per stage (the
    /// replay of the accepted step).
    interface IKeepingStepper<float> with
        member _.Keeps = explicitPart.Keeps
        member _.KeptSteps = KeptStep.stepsOf stages
        member _.NewKept() = explicitPart.NewKept(stages, 0)
        member _.StepKept(u, theta, t, dt, next, kept) = step u theta t dt next (Some kept)
        member _.Discard kept = explicitPart.DiscardKept kept

        member _.StepAdjointKept(kept, theta, t, dt, lambdaNext, stageExtra, direct, lambda, thetaAdjoint) =
            if not (isNull stageExtra && isNull direct) then
                invalidOp "KenCarp4's steps land on the save times."

            adjoint kept.States theta t dt lambdaNext lambda thetaAdjoint (fun s xbar target ->
                let time = t + KenCarp4Tableau.c[s] * dt
                explicitPart.RhsAdjointKept(kept, s, theta, time, xbar, target, thetaAdjoint))
