namespace Hybrid.Numerics

open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Explicit and IMEX time steps on any `Dynamics`, and the stability limits of explicit schemes.
[<RequireQualifiedAccess>]
module Integrators =

    /// Formal order of accuracy.
    let order (s: Scheme) : int =
        match s with
        | Scheme.Euler
        | Scheme.ImexEuler -> 1
        | Scheme.Heun
        | Scheme.ImexCrankNicolson -> 2
        | Scheme.SspRk3 -> 3
        | Scheme.Rk4
        | Scheme.Rodas4
        | Scheme.KenCarp4 -> 4
        | Scheme.Dopri5
        | Scheme.Auto -> 5

    /// True for the IMEX schemes (stiff part implicit).
    let isImex (s: Scheme) : bool =
        match s with
        | Scheme.ImexEuler
        | Scheme.ImexCrankNicolson
        | Scheme.KenCarp4 -> true
        | _ -> false

    /// Extent of the stability region along the negative real axis (|hλ| ≤ value is stable; infinity for the
    /// L-stable Rodas4).
    let realStabilityRadius (s: Scheme) : float =
        match s with
        | Scheme.Euler
        | Scheme.Heun
        | Scheme.ImexEuler
        | Scheme.ImexCrankNicolson -> 2.0
        | Scheme.SspRk3 -> 2.5127
        | Scheme.Rk4 -> 2.7853
        | Scheme.Dopri5
        | Scheme.Auto -> 3.3066
        | Scheme.KenCarp4 -> KenCarp4Tableau.explicitRealStability
        | Scheme.Rodas4 -> infinity

    /// The explicit scheme an IMEX scheme integrates its explicit part with (IMEX Euler: Euler; IMEX Crank–Nicolson:
    /// Heun; the steps without a stiff part); other schemes unchanged.
    let internal explicitPart (s: Scheme) : Scheme =
        match s with
        | Scheme.ImexEuler -> Scheme.Euler
        | Scheme.ImexCrankNicolson -> Scheme.Heun
        | other -> other

    /// The coefficients c₀…cₛ of the stability polynomial R(z) = Σₖ cₖ zᵏ of the scheme's explicit part
    /// (cₖ = bᵀA^(k−1)𝟙 from its tableau; IMEX Euler's explicit part is Euler's, IMEX Crank–Nicolson's Heun's,
    /// Dopri5's that of its 5th-order solution):
    /// a step multiplies a mode of du/dt = λu by R(λΔt). RK4: 1, 1, 1/2, 1/6, 1/24.
    let stabilityPolynomial (s: Scheme) : float[] =
        let t =
            match explicitPart s with
            | Scheme.Dopri5
            | Scheme.Auto -> Tableau.dormandPrince
            | Scheme.KenCarp4 -> {
                A = KenCarp4Tableau.explicitA
                B = KenCarp4Tableau.b
                C = KenCarp4Tableau.c
              }
            | Scheme.Rodas4 ->
                raise (
                    ModelException(
                        "Rodas4 is a linearly implicit (Rosenbrock) scheme: its stability function is rational, not a polynomial, and it is L-stable (stable for every decaying mode)."
                    )
                )
            | other -> Tableau.ofScheme other

        let n = t.B.Length

        let a i j =
            if j < t.A[i].Length then t.A[i][j] else 0.0

        let mutable power = Array.create n 1.0

        [|
            yield 1.0

            for _ in 1..n do
                yield Array.fold2 (fun sum b x -> sum + b * x) 0.0 t.B power
                let previous = power
                power <- Array.init n (fun i -> Array.init n (fun j -> a i j * previous[j]) |> Array.sum)
        |]

    /// |R(z)|: how much one step of `s` multiplies a mode of du/dt = λu, z = λΔt (stable where ≤ 1).
    let amplification (s: Scheme) (z: System.Numerics.Complex) : float =
        stabilityPolynomial s
        |> Array.rev
        |> Array.fold (fun r c -> r * z + System.Numerics.Complex(c, 0.0)) System.Numerics.Complex.Zero
        |> fun r -> r.Magnitude

    /// The largest stable Δt of `scheme` for these limits on `grid`: diffusion needs
    /// Δt ≤ r / (4 D Σ 1/h²) (r = `realStabilityRadius`), upwind advection Δt ≤ 1 / Σ(|v|/h).
    /// Infinity when nothing limits the step. IMEX schemes ignore the stiff diffusivity.
    let maxStableDt (s: Scheme) (grid: Grid) (limits: StepLimits) : float =
        let inverseSquares =
            grid.Axes |> Array.sumBy (fun a -> 1.0 / (a.Spacing * a.Spacing))

        let inverse = grid.Axes |> Array.sumBy (fun a -> 1.0 / a.Spacing)

        let d =
            if isImex s then
                limits.Diffusivity
            else
                limits.Diffusivity + limits.StiffDiffusivity

        let byDiffusion =
            if d > 0.0 && inverseSquares > 0.0 then
                realStabilityRadius s / (4.0 * d * inverseSquares)
            else
                infinity

        let byAdvection =
            if limits.Speed > 0.0 && inverse > 0.0 then
                1.0 / (limits.Speed * inverse)
            else
                infinity

        min byDiffusion byAdvection

    /// One explicit step of size h from (t, u) with tendency f, from the scheme's `Tableau`: stage i evaluates f
    /// at u + Σⱼ (aᵢⱼ h) kⱼ (zero entries skipped), and the step is u + (h / d) Σᵢ wᵢ kᵢ with the weights bᵢ = wᵢ / d
    /// written as small integers over a common divisor d (RK4: (h / 6)(k₁ + 2k₂ + 2k₃ + k₄)).
    let explicitStep
        (s: Scheme)
        (f: float -> torch.Tensor[] -> torch.Tensor[])
        (t: float)
        (h: float)
        (u: torch.Tensor[])
        : torch.Tensor[] =
        if isImex s then
            raise (
                ModelException($"{s} is an IMEX scheme; use Integrators.stepper, which assembles its implicit solve.")
            )

        let tableau = Tableau.ofScheme s
        let divisor, weights = Tableau.integerWeights tableau
        let k = Array.zeroCreate<torch.Tensor[]> tableau.B.Length

        for i in 0 .. k.Length - 1 do
            let input =
                tableau.A[i]
                |> Array.indexed
                |> Array.fold
                    (fun (acc: torch.Tensor[]) (j, a) ->
                        if a = 0.0 then
                            acc
                        else
                            Array.map2 (fun (x: torch.Tensor) y -> x .+ (a * h) .* y) acc k[j])
                    u

            k[i] <- f (t + tableau.C[i] * h) input

        let weighted (i: int) (x: torch.Tensor) =
            if weights[i] = 1.0 then x else weights[i] .* x

        Array.init u.Length (fun f ->
            let mutable sum = weighted 0 (k[0][f])

            for i in 1 .. k.Length - 1 do
                sum <- sum .+ weighted i (k[i][f])

            u[f] .+ (h / divisor) .* sum)

    /// A step function (t, h, u) ↦ u(t + h) for `scheme` on `dyn` with parameters θ. For IMEX schemes the implicit
    /// systems (I − c h L) x = r are solved as `ImplicitSolve.create` fits them to the grid (call this inside the scope
    /// whose tensors should own them): up to `ImplicitSolve.maxDense` unknowns per field by a dense inverse per
    /// distinct step size in `stepSizes` (`torch.linalg.inv`: exact, differentiable by libtorch's autograd, one matrix
    /// product per step afterwards); on larger grids by the banded solve (1-D) or conjugate gradients (2-D, relative
    /// residual `ImplicitSolve.fixedStepTolerance` in float64, 1e-5 in float32), differentiated by their adjoint solves.
    let stepper (scheme: Scheme) (dyn: Dynamics) (theta: torch.Tensor[]) (stepSizes: float seq) (like: torch.Tensor[]) =
        if scheme = Scheme.KenCarp4 then
            raise (
                ModelException(
                    "KenCarp4 is an adaptive IMEX scheme with an embedded error estimate; Rollout.run integrates it with step-size control. Use ImexEuler or ImexCrankNicolson for fixed IMEX steps."
                )
            )

        if not (isImex scheme) then
            let f = Dynamics.total dyn theta
            fun (t: float) (h: float) (u: torch.Tensor[]) -> explicitStep scheme f t h u
        else
            let c =
                match scheme with
                | Scheme.ImexEuler -> 1.0
                | _ -> 0.5

            // Per field: the implicit operator, its dense inverses made now for the known step sizes.
            let ops =
                dyn.Stiff
                |> Array.mapi (fun i stiff ->
                    stiff
                    |> Option.map (fun l ->
                        let tolerance =
                            if like[i].dtype = torch.ScalarType.Float64 then
                                ImplicitSolve.fixedStepTolerance
                            else
                                1e-5

                        let op = ImplicitSolve.create (l theta) like[i] tolerance true

                        if op.Method = "dense" then
                            for h in stepSizes do
                                op.Solve (c * h) like[i] |> ignore

                        op))

            let f = dyn.Explicit theta

            let solve i (h: float) (rhs: torch.Tensor) =
                match ops[i] with
                | Some op -> op.Solve (c * h) rhs
                | None -> rhs

            // u + c h (L u + b) for the trapezoid's explicit half, u + h b for backward Euler.
            let explicitHalf i (h: float) (u: torch.Tensor) =
                match ops[i] with
                | Some op when c < 1.0 -> u .+ (c * h) .* op.Apply u
                | Some op -> u .+ h .* op.Affine
                | None -> u

            fun (t: float) (h: float) (u: torch.Tensor[]) ->
                let k1 = f t u

                if c = 1.0 then
                    Array.init u.Length (fun i -> solve i h (explicitHalf i h u[i] .+ h .* k1[i]))
                else
                    let withB i (x: torch.Tensor) =
                        match ops[i] with
                        | Some op -> x .+ (0.5 * h) .* op.Affine
                        | None -> x

                    // Trapezoid: (I − h/2 L) u' = (I + h/2 L) u + h b + h·(explicit part).
                    let predictor =
                        Array.init u.Length (fun i ->
                            match ops[i] with
                            | Some _ -> solve i h (withB i (explicitHalf i h u[i]) .+ h .* k1[i])
                            | None -> u[i] .+ h .* k1[i])

                    let k2 = f (t + h) predictor

                    Array.init u.Length (fun i ->
                        match ops[i] with
                        | Some _ -> solve i h (withB i (explicitHalf i h u[i]) .+ (0.5 * h) .* (k1[i] .+ k2[i]))
                        | None -> u[i] .+ (0.5 * h) .* (k1[i] .+ k2[i]))
