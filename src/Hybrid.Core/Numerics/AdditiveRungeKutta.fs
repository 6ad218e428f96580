namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// KenCarp4, the additive Runge–Kutta (IMEX) pair ARK4(3)6L[2]SA of Kennedy and Carpenter (`KenCarp4Tableau`), on
/// du/dt = F(t, u) + L u + b: stage i (≥ 2) solves (I − γhL) Uᵢ = u + h Σⱼ (aᴱᵢⱼ Fⱼ + aᴵᵢⱼ Gⱼ) + γh b with one
/// implicit solve per field with a stiff part (`ImplicitOperator`), Gᵢ = L Uᵢ + b is recovered as
/// (Uᵢ − right-hand side)/(γh) (no extra operator application), Fᵢ = F(t + cᵢh, Uᵢ); the step is
/// u + h Σ bⱼ (Fⱼ + Gⱼ) and h Σ (bⱼ − b̂ⱼ)(Fⱼ + Gⱼ) its error estimate.
/// Gradients: the stages and the solves are differentiable (the banded and conjugate-gradient solves by their adjoint
/// solves), so autograd differentiates the computed solution; the step sizes count as fixed (see `StepControl`).
[<RequireQualifiedAccess>]
module internal AdditiveRungeKutta =

    /// Σⱼ wⱼ·xs[j] over the non-zero weights whose terms exist (null when nothing is added).
    let private weighted (weights: float[]) (xs: torch.Tensor[]) : torch.Tensor =
        let mutable sum: torch.Tensor = null

        for j in 0 .. weights.Length - 1 do
            if weights[j] <> 0.0 && not (isNull xs[j]) then
                let term = weights[j] .* xs[j]
                sum <- if isNull sum then term else sum .+ term

        sum

    /// x + h·s, or x when s is null.
    let private plus (x: torch.Tensor) (h: float) (s: torch.Tensor) = if isNull s then x else x .+ h .* s

    /// The hint of KenCarp4's step-limit error.
    let limitHint =
        "KenCarp4 solves only the linear diffusion implicitly: steps this small mean the explicit part is stiff (a fast reaction, fast advection, nonlinear diffusion) or the solution varies fast. Use Scheme.Rodas4 for stiff reactions, loosen the Tolerance, or raise the limit with Rollout.maxSteps."

    /// KenCarp4 on `dyn` with parameters θ as `StepControl` runs it, with the stiff parts' implicit operators built
    /// for fields shaped like `like` (`ImplicitSolve.create`; conjugate gradients stop at `StepControl.solveTolerance`).
    let method
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (tolerances: Tolerance[])
        (like: torch.Tensor[])
        : AdaptiveMethod =
        let ops =
            dyn.Stiff
            |> Array.mapi (fun i stiff ->
                stiff
                |> Option.map (fun l ->
                    ImplicitSolve.create (l theta) like[i] (StepControl.solveTolerance tolerances like[i].dtype) false))

        let explicitPart = dyn.Explicit theta
        let stages = KenCarp4Tableau.c.Length
        let errorWeights = Array.map2 (-) KenCarp4Tableau.b KenCarp4Tableau.embedded

        let total (t: float) (u: torch.Tensor[]) =
            let f = explicitPart t u

            Array.init u.Length (fun i ->
                match ops[i] with
                | Some op -> f[i] .+ op.Apply u[i]
                | None -> f[i])

        let attempt (t: float) (h: float) (u: torch.Tensor[]) =
            let fields = u.Length
            let c = KenCarp4Tableau.gamma * h
            // Per stage, per field: the explicit tendency F and the stiff one G (null without a stiff part).
            let f = Array.zeroCreate<torch.Tensor[]> stages
            let g = Array.zeroCreate<torch.Tensor[]> stages
            f[0] <- explicitPart t u

            g[0] <-
                Array.init fields (fun i ->
                    match ops[i] with
                    | Some op -> op.Apply u[i]
                    | None -> null)

            for s in 1 .. stages - 1 do
                let stage =
                    Array.init fields (fun i ->
                        let column (xs: torch.Tensor[][]) = Array.init s (fun j -> xs[j][i])

                        let rhs =
                            plus
                                (plus u[i] h (weighted KenCarp4Tableau.explicitA[s] (column f)))
                                h
                                (weighted KenCarp4Tableau.implicitA[s] (column g))

                        match ops[i] with
                        | Some op ->
                            let x = op.Solve c (rhs .+ c .* op.Affine)
                            x, (x .- rhs) ./ c
                        | None -> rhs, null)

                g[s] <- stage |> Array.map snd
                f[s] <- explicitPart (t + KenCarp4Tableau.c[s] * h) (stage |> Array.map fst)

            // Fⱼ + Gⱼ of field i.
            let slope (j: int) (i: int) =
                let gj = g[j][i]
                if isNull gj then f[j][i] else f[j][i] .+ gj

            let combine (weights: float[]) (start: torch.Tensor[] option) =
                Array.init fields (fun i ->
                    let sum = weighted weights (Array.init stages (fun j -> slope j i))

                    match start with
                    | Some u -> u[i] .+ h .* sum
                    | None -> h .* sum)

            let next = combine KenCarp4Tableau.b (Some u)
            let start = Array.init fields (slope 0)
            let slopeAtEnd = lazy (total (t + h) next)

            // Cubic Hermite interpolation between (u, F + Lu + b at u) and (next, the same at next).
            let dense (s: float) =
                let h00 = (1.0 + 2.0 * s) * (1.0 - s) * (1.0 - s)
                let h10 = s * (1.0 - s) * (1.0 - s)
                let h01 = s * s * (3.0 - 2.0 * s)
                let h11 = s * s * (s - 1.0)
                let endSlope = slopeAtEnd.Force()

                Array.init fields (fun i ->
                    h00 .* u[i]
                    .+ (h10 * h) .* start[i]
                    .+ h01 .* next[i]
                    .+ (h11 * h) .* endSlope[i])

            {
                Next = next
                Error = combine errorWeights None
                Dense = dense
                Carry = [||]
                Accept = ignore
            }

        {
            Name = "KenCarp4"
            EstimateOrder = 3
            Start = fun _ _ -> [||]
            Attempt = fun t h u _ -> attempt t h u
            LimitHint = limitHint
            LandsOnSaves = true
        }
