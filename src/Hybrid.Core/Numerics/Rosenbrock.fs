namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Rodas4, the stiffly accurate Rosenbrock method of order 4(3) of Hairer and Wanner (Solving ODEs II, §IV.7,
/// their code RODAS), with its 3rd-order continuous extension. Each step solves six linear systems with the one
/// matrix (1/(γh) I − J), J the exact Jacobian at the step's start (`Jacobian`), inverted once per step: per cell
/// in one batched inverse for pointwise systems, dense per trajectory otherwise.
/// Gradients: the stages, the Jacobian (built with a graph when gradients are wanted) and the solves are
/// differentiable tensor operations, so autograd differentiates the computed solution; the step sizes count as
/// fixed (see `StepControl`).
[<RequireQualifiedAccess>]
module internal Rosenbrock =

    /// Σⱼ wⱼ·xs[j] over the non-zero weights, plus `start` when given (null when nothing is added).
    let private weighted (weights: float[]) (xs: torch.Tensor[]) (start: torch.Tensor) : torch.Tensor =
        let mutable sum = start

        for j in 0 .. weights.Length - 1 do
            if weights[j] <> 0.0 then
                let term = weights[j] .* xs[j]
                sum <- if isNull sum then term else sum .+ term

        sum

    /// ∂f/∂t at (t, u) by a forward difference (as RODAS does for non-autonomous systems): exactly 0 for systems
    /// that do not depend on t.
    let private timeDerivative
        (f: float -> torch.Tensor -> torch.Tensor)
        (t: float)
        (f0: torch.Tensor)
        (u: torch.Tensor)
        =
        let delta = sqrt (2.2e-16 * max 1e-5 (abs t))
        (f (t + delta) u .- f0) ./ delta

    /// One Rodas4 step of size h from (t, u) on the packed state (`Jacobian.pack`): f and the Jacobian act on
    /// packed tensors [B; Cells; Size] and give [B; Cells; Size; Size].
    let step
        (f: float -> torch.Tensor -> torch.Tensor)
        (jacobian: float -> torch.Tensor -> torch.Tensor)
        (t: float)
        (h: float)
        (u: torch.Tensor)
        : torch.Tensor * torch.Tensor * (float -> torch.Tensor) =
        let j = jacobian t u
        let size = j.shape[j.shape.Length - 1]
        let eye = torch.eye (size, dtype = u.dtype, device = u.device)
        let matrix = (1.0 / (Rodas4Tableau.gamma * h)) .* eye .- j
        // One inverse per step and a matrix product per stage: on the small blocks of pointwise systems this is
        // several times cheaper than LU solves in the backward pass (measured: 17 ms → see the tests' timings).
        let inverse = torch.linalg.inv matrix

        let solve (rhs: torch.Tensor) =
            inverse.matmul(rhs.unsqueeze -1L).squeeze -1L

        let f0 = f t u
        let ft = timeDerivative f t f0 u
        let stages = Array.zeroCreate<torch.Tensor> 6
        stages[0] <- solve (f0 .+ (h * Rodas4Tableau.d[0]) .* ft)
        let mutable input = u

        for i in 1..5 do
            input <- weighted Rodas4Tableau.a[i] stages u
            let fi = f (t + Rodas4Tableau.alpha[i] * h) input
            let coupling = weighted (Rodas4Tableau.c[i] |> Array.map (fun x -> x / h)) stages fi

            let rhs =
                if Rodas4Tableau.d[i] <> 0.0 then
                    coupling .+ (h * Rodas4Tableau.d[i]) .* ft
                else
                    coupling

            stages[i] <- solve rhs

        let next = input .+ stages[5]

        let interpolant (s: float) =
            let d2 = weighted Rodas4Tableau.dense2 stages null
            let d3 = weighted Rodas4Tableau.dense3 stages null
            (1.0 - s) .* u .+ s .* (next .+ (1.0 - s) .* (d2 .+ s .* d3))

        next, stages[5], interpolant

    /// The hint of Rodas4's step-limit error.
    let limitHint =
        "Rodas4 is stiff-stable, so the solution itself varies fast here (or the Tolerance is very tight): loosen the Tolerance, or raise the limit with Rollout.maxSteps."

    /// Rodas4 on system `dyn` with parameters θ as `StepControl` runs it. `createGraph`: build the Jacobian with
    /// an autograd graph (when gradients through the rollout are wanted).
    let method (dyn: Dynamics) (theta: torch.Tensor[]) (createGraph: bool) (like: torch.Tensor[]) : AdaptiveMethod =
        let layout = Jacobian.layout "Rodas4" dyn like
        let total = Dynamics.total dyn theta
        let unpack = Jacobian.unpack layout like

        let f (t: float) (packed: torch.Tensor) =
            Jacobian.pack layout (total t (unpack packed))

        let jacobian (t: float) (packed: torch.Tensor) =
            match dyn.Jacobian with
            | JacobianForm.Blocks blocks when layout.Pointwise -> blocks theta t (unpack packed)
            | _ -> Jacobian.autograd (total t) layout createGraph (unpack packed)

        {
            Name = "Rodas4"
            EstimateOrder = 3
            Start = fun _ _ -> [||]
            Attempt =
                fun t h u _ ->
                    let next, error, interpolant = step f jacobian t h (Jacobian.pack layout u)

                    {
                        Next = unpack next
                        Error = unpack error
                        Dense = fun s -> unpack (interpolant s)
                        Carry = [||]
                        Accept = ignore
                    }
            LimitHint = limitHint
            LandsOnSaves = false
        }
