namespace Hybrid.Fused

open System
open System.Runtime.CompilerServices
open Hybrid
open Hybrid.Numerics

/// An explicit Runge–Kutta method as a Butcher tableau: stage i evaluates F at u + Δt Σⱼ A[i][j] kⱼ and time
/// t + C[i] Δt; the step is u + Δt Σᵢ B[i] kᵢ.
type Tableau = { A: float[][]; B: float[]; C: float[] }

/// Tableaux of the explicit schemes of `Numerics.Integrators`.
[<RequireQualifiedAccess>]
module Tableau =

    /// The tableau of an explicit scheme; IMEX schemes raise (the fused path is explicit only).
    let ofScheme (scheme: Scheme) : Tableau =
        match scheme with
        | Scheme.Euler -> {
            A = [| [||] |]
            B = [| 1.0 |]
            C = [| 0.0 |]
          }
        | Scheme.Heun -> {
            A = [| [||]; [| 1.0 |] |]
            B = [| 0.5; 0.5 |]
            C = [| 0.0; 1.0 |]
          }
        | Scheme.SspRk3 -> {
            A = [| [||]; [| 1.0 |]; [| 0.25; 0.25 |] |]
            B = [| 1.0 / 6.0; 1.0 / 6.0; 2.0 / 3.0 |]
            C = [| 0.0; 1.0; 0.5 |]
          }
        | Scheme.Rk4 -> {
            A = [| [||]; [| 0.5 |]; [| 0.0; 0.5 |]; [| 0.0; 0.0; 1.0 |] |]
            B = [| 1.0 / 6.0; 1.0 / 3.0; 1.0 / 3.0; 1.0 / 6.0 |]
            C = [| 0.0; 0.5; 0.5; 1.0 |]
          }
        | Scheme.ImexEuler
        | Scheme.ImexCrankNicolson ->
            raise (
                ModelException(
                    $"The fused path integrates explicitly; {scheme} is an IMEX scheme. Use Euler, Heun, SspRk3 or Rk4, or the eager simulator."
                )
            )

/// One explicit Runge–Kutta step of a fused kernel and its discrete adjoint. States, slopes and adjoints all
/// live in the padded layout (one [B·PaddedCells] array per field), so stage updates are contiguous loops
/// and only the ghost entries are refilled before each kernel call; ghost entries of states are otherwise
/// meaningless, those of adjoints are kept zero. Scratch buffers are allocated once for a batch size.
type Stepper(plan: KernelPlan, tableau: Tableau, batch: int) =
    let forward = Codegen.forward plan
    let adjoint = Codegen.adjoint plan
    let fields = plan.Fields.Length
    let stages = tableau.B.Length
    let size = batch * plan.PaddedCells

    let newState () =
        Array.init fields (fun _ -> Array.zeroCreate<float> size)

    let maps = Array.init fields (Ghosts.map plan)
    let k = Array.init stages (fun _ -> newState ())
    let s = Array.init stages (fun _ -> newState ())
    let stageAdjoint = Array.init stages (fun _ -> newState ())
    let kAdjoint = newState ()

    /// s[i] = u + Δt Σⱼ A[i][j] k[j], ghosts filled.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let stageInput (u: float[][]) (dt: float) (i: int) =
        for f in 0 .. fields - 1 do
            let target = s[i][f]
            Array.blit u[f] 0 target 0 size

            for j in 0 .. tableau.A[i].Length - 1 do
                let a = dt * tableau.A[i][j]

                if a <> 0.0 then
                    Blas.Axpy(a, k[j][f], target)

        Ghosts.fill plan maps batch s[i]

    /// The lowered model.
    member _.Plan = plan

    /// Trajectories per call.
    member _.Batch = batch

    /// Ghost maps, one per field.
    member _.Maps = maps

    /// A zeroed state in the padded layout.
    member _.NewState() = newState ()

    /// F(u, t) into `output` (padded layout); `u` must have its ghosts filled.
    member _.Rhs(u: float[][], theta: float[], t: float, output: float[][]) =
        forward.Invoke(u, theta, t, output, batch)

    /// `next` = one step from `u` at time t.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.Step(u: float[][], theta: float[], t: float, dt: float, next: float[][]) =
        for i in 0 .. stages - 1 do
            stageInput u dt i
            forward.Invoke(s[i], theta, t + tableau.C[i] * dt, k[i], batch)

        for f in 0 .. fields - 1 do
            let target = next[f]
            Array.blit u[f] 0 target 0 size

            for i in 0 .. stages - 1 do
                Blas.Axpy(dt * tableau.B[i], k[i][f], target)

    /// The adjoint of `Step` from `u` at time t: given λ′ = ∂L/∂(next) (ghost entries zero), writes ∂L/∂u
    /// into `lambda` (ghost entries zero) and adds ∂L/∂θ into `thetaAdjoint`. Stages are recomputed from `u`.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.StepAdjoint
        (
            u: float[][],
            theta: float[],
            t: float,
            dt: float,
            lambdaNext: float[][],
            lambda: float[][],
            thetaAdjoint: float[]
        ) =
        // Stage inputs (the last stage's slope is not needed).
        for i in 0 .. stages - 1 do
            stageInput u dt i

            if i < stages - 1 then
                forward.Invoke(s[i], theta, t + tableau.C[i] * dt, k[i], batch)

        for i in stages - 1 .. -1 .. 0 do
            // k̄ᵢ = Δt Bᵢ λ′ + Δt Σ_{m>i} A[m][i] s̄ₘ
            for f in 0 .. fields - 1 do
                Blas.Scale(dt * tableau.B[i], lambdaNext[f], kAdjoint[f])

                for m in i + 1 .. stages - 1 do
                    let a = dt * tableau.A[m][i]

                    if a <> 0.0 then
                        Blas.Axpy(a, stageAdjoint[m][f], kAdjoint[f])

            for f in 0 .. fields - 1 do
                Array.Clear(stageAdjoint[i][f])

            adjoint.Invoke(s[i], theta, t + tableau.C[i] * dt, kAdjoint, stageAdjoint[i], thetaAdjoint, batch)
            Ghosts.fold plan maps batch stageAdjoint[i]

        for f in 0 .. fields - 1 do
            let target = lambda[f]
            Array.blit lambdaNext[f] 0 target 0 size

            for i in 0 .. stages - 1 do
                Blas.Axpy(1.0, stageAdjoint[i][f], target)

    /// Raises when a field holds NaN or ±∞ in its interior after `step` (time t).
    member _.CheckFinite(u: float[][], step: int, t: float) =
        for f in 0 .. fields - 1 do
            let values = u[f]
            let interior = maps[f].Interior

            for b in 0 .. batch - 1 do
                for c in 0 .. interior.Length - 1 do
                    let v = values[b * plan.PaddedCells + interior[c]]

                    if not (Double.IsFinite v) then
                        raise (
                            HybridException(
                                $"The fused rollout produced {v} in field '{plan.Fields[f]}' at step {step} (t = {t:G6}), cell {c} of trajectory {b}. Reduce the time step or check the parameters."
                            )
                        )
