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

    // Rodas4 in Hairer and Wanner's variables Uᵢ (their rodas.f, METH = 1): stage i solves
    // (1/(γh) I − J) Uᵢ = f(t + αᵢh, u + Σⱼ aᵢⱼUⱼ) + Σⱼ (cᵢⱼ/h) Uⱼ + h dᵢ ∂f/∂t,
    // the new state is u + Σⱼ a₆ⱼUⱼ + U₆ (stiffly accurate) and U₆ is the error estimate.
    let private gamma = 0.25
    let private alpha = [| 0.0; 0.386; 0.21; 0.63; 1.0; 1.0 |]

    let private d = [| 0.25; -0.1043; 0.1035; -0.3620000000000023e-01; 0.0; 0.0 |]

    let private a = [|
        [||]
        [| 0.1544000000000000e+01 |]
        [| 0.9466785280815826e+00; 0.2557011698983284e+00 |]
        [| 0.3314825187068521e+01; 0.2896124015972201e+01; 0.9986419139977817e+00 |]
        [|
            0.1221224509226641e+01
            0.6019134481288629e+01
            0.1253708332932087e+02
            -0.6878860361058950e+00
        |]
        [|
            0.1221224509226641e+01
            0.6019134481288629e+01
            0.1253708332932087e+02
            -0.6878860361058950e+00
            1.0
        |]
    |]

    let private c = [|
        [||]
        [| -0.5668800000000000e+01 |]
        [| -0.2430093356833875e+01; -0.2063599157091915e+00 |]
        [| -0.1073529058151375e+00; -0.9594562251023355e+01; -0.2047028614809616e+02 |]
        [|
            0.7496443313967647e+01
            -0.1024680431464352e+02
            -0.3399990352819905e+02
            0.1170890893206160e+02
        |]
        [|
            0.8083246795921522e+01
            -0.7981132988064893e+01
            -0.3152159432874371e+02
            0.1631930543123136e+02
            -0.6058818238834054e+01
        |]
    |]

    // The continuous extension: u(t + sh) ≈ (1 − s) u + s (u₁ + (1 − s)(D₂ + s D₃)), Dₖ = Σⱼ dₖⱼ Uⱼ (j ≤ 5).
    let private dense2 = [|
        0.1012623508344586e+02
        -0.7487995877610167e+01
        -0.3480091861555747e+02
        -0.7992771707568823e+01
        0.1025137723295662e+01
    |]

    let private dense3 = [|
        -0.6762803392801253e+00
        0.6087714651680015e+01
        0.1643084320892478e+02
        0.2476722511418386e+02
        -0.6594389125716872e+01
    |]

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
        let matrix = (1.0 / (gamma * h)) .* eye .- j
        // One inverse per step and a matrix product per stage: on the small blocks of pointwise systems this is
        // several times cheaper than LU solves in the backward pass (measured: 17 ms → see the tests' timings).
        let inverse = torch.linalg.inv matrix

        let solve (rhs: torch.Tensor) =
            inverse.matmul(rhs.unsqueeze -1L).squeeze -1L

        let f0 = f t u
        let ft = timeDerivative f t f0 u
        let stages = Array.zeroCreate<torch.Tensor> 6
        stages[0] <- solve (f0 .+ (h * d[0]) .* ft)
        let mutable input = u

        for i in 1..5 do
            input <- weighted a[i] stages u
            let fi = f (t + alpha[i] * h) input
            let coupling = weighted (c[i] |> Array.map (fun x -> x / h)) stages fi

            let rhs =
                if d[i] <> 0.0 then
                    coupling .+ (h * d[i]) .* ft
                else
                    coupling

            stages[i] <- solve rhs

        let next = input .+ stages[5]

        let interpolant (s: float) =
            let d2 = weighted dense2 stages null
            let d3 = weighted dense3 stages null
            (1.0 - s) .* u .+ s .* (next .+ (1.0 - s) .* (d2 .+ s .* d3))

        next, stages[5], interpolant

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
            LimitHint =
                "Rodas4 is stiff-stable, so the solution itself varies fast here (or the Tolerance is very tight): loosen the Tolerance, or raise the limit with Rollout.maxSteps."
        }
