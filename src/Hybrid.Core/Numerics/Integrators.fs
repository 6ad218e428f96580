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
        | Scheme.Rodas4 -> 4
        | Scheme.Dopri5
        | Scheme.Auto -> 5

    /// True for the IMEX schemes (stiff part implicit).
    let isImex (s: Scheme) : bool =
        match s with
        | Scheme.ImexEuler
        | Scheme.ImexCrankNicolson -> true
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
        | Scheme.Rodas4 -> infinity

    /// The coefficients c₀…cₛ of the stability polynomial R(z) = Σₖ cₖ zᵏ of the scheme's explicit part
    /// (cₖ = bᵀA^(k−1)𝟙 from its tableau; IMEX Euler's explicit part is Euler's, IMEX Crank–Nicolson's Heun's,
    /// Dopri5's that of its 5th-order solution):
    /// a step multiplies a mode of du/dt = λu by R(λΔt). RK4: 1, 1, 1/2, 1/6, 1/24.
    let stabilityPolynomial (s: Scheme) : float[] =
        let explicitPart =
            match s with
            | Scheme.ImexEuler -> Scheme.Euler
            | Scheme.ImexCrankNicolson -> Scheme.Heun
            | other -> other

        let t =
            match explicitPart with
            | Scheme.Dopri5
            | Scheme.Auto -> Tableau.dormandPrince
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

    /// Largest number of unknowns per field for which the dense implicit solve is assembled.
    let maxImplicitUnknowns = 4096

    /// Assembles the matrix of an affine operator L(u) = A u + b on fields of shape [·; spatial…] by
    /// applying it to the identity (rows of the result are A eᵢ, i.e. the result is Aᵀ) and to zero.
    /// Returns (Aᵀ [N; N], b [1; N]). Differentiable with respect to whatever L depends on.
    let assemble
        (l: torch.Tensor -> torch.Tensor)
        (spatialShape: int64[])
        (dtype: torch.ScalarType)
        (device: torch.Device)
        =
        let n = spatialShape |> Array.fold (*) 1L

        if n > int64 maxImplicitUnknowns then
            raise (
                ModelException(
                    $"The implicit diffusion solve assembles a dense {n}×{n} matrix, above the limit of {maxImplicitUnknowns} unknowns per field. Use an explicit scheme (Rk4, SspRk3) with a smaller Δt, or a coarser grid."
                )
            )

        let eye =
            torch.eye(n, dtype = dtype, device = device).reshape (Array.append [| n |] spatialShape)

        let zero =
            torch.zeros (Array.append [| 1L |] spatialShape, dtype = dtype, device = device)

        let b = (l zero).reshape ([| 1L; n |])
        let at = (l eye).reshape ([| n; n |]) - b
        at, b

    /// A step function (t, h, u) ↦ u(t + h) for `scheme` on `dyn` with parameters θ. For IMEX schemes the
    /// implicit matrices (I − c h A)⁻¹ are assembled once per distinct step size in `stepSizes` (call this
    /// inside the scope whose tensors should own them), by a dense inverse through `torch.linalg.inv`:
    /// exact, differentiable by libtorch's autograd, and one matrix product per step afterwards.
    let stepper (scheme: Scheme) (dyn: Dynamics) (theta: torch.Tensor[]) (stepSizes: float seq) (like: torch.Tensor[]) =
        if not (isImex scheme) then
            let f = Dynamics.total dyn theta
            fun (t: float) (h: float) (u: torch.Tensor[]) -> explicitStep scheme f t h u
        else
            let c =
                match scheme with
                | Scheme.ImexEuler -> 1.0
                | _ -> 0.5

            // Per field: Aᵀ, b, and for each h the inverse (I − c h Aᵀ)⁻¹.
            let ops =
                dyn.Stiff
                |> Array.mapi (fun i stiff ->
                    stiff
                    |> Option.map (fun l ->
                        let u = like[i]
                        let spatialShape = u.shape[1..]
                        let at, b = assemble (l theta) spatialShape u.dtype u.device
                        let n = at.shape[0]
                        let eye = torch.eye (n, dtype = u.dtype, device = u.device)
                        let inverses = Dictionary<float, torch.Tensor>()

                        for h in stepSizes do
                            if not (inverses.ContainsKey h) then
                                inverses[h] <- torch.linalg.inv (eye - (c * h) .* at)

                        at, b, inverses))

            let f = dyn.Explicit theta

            let solve i (h: float) (rhs: torch.Tensor) (shape: int64[]) =
                match ops[i] with
                | Some(_, _, inverses) ->
                    let inverse: torch.Tensor = inverses[h]
                    rhs.reshape([| shape[0]; -1L |]).matmul(inverse).reshape shape
                | None -> rhs

            // (u + c h (A u + b)) for the trapezoid's explicit half, u otherwise.
            let explicitHalf i (h: float) (u: torch.Tensor) =
                match ops[i] with
                | Some(at, b, _) when c < 1.0 ->
                    let flat = u.reshape ([| u.shape[0]; -1L |])
                    (flat .+ (c * h) .* (flat.matmul at .+ b)).reshape u.shape
                | Some(_, b, _) -> (u.reshape ([| u.shape[0]; -1L |]) .+ h .* b).reshape u.shape
                | None -> u

            fun (t: float) (h: float) (u: torch.Tensor[]) ->
                let k1 = f t u

                if c = 1.0 then
                    Array.init u.Length (fun i ->
                        let rhs =
                            match ops[i] with
                            | Some _ -> explicitHalf i h u[i] .+ h .* k1[i]
                            | None -> u[i] .+ h .* k1[i]

                        solve i h rhs u[i].shape)
                else
                    let withB i (x: torch.Tensor) =
                        match ops[i] with
                        | Some(_, b, _) -> (x.reshape ([| x.shape[0]; -1L |]) .+ (0.5 * h) .* b).reshape x.shape
                        | None -> x

                    // Trapezoid: (I − h/2 A) u' = (I + h/2 A) u + h b + h·(explicit part).
                    let predictor =
                        Array.init u.Length (fun i ->
                            let rhs =
                                match ops[i] with
                                | Some _ -> withB i (explicitHalf i h u[i]) .+ h .* k1[i]
                                | None -> u[i] .+ h .* k1[i]

                            solve i h rhs u[i].shape)

                    let k2 = f (t + h) predictor

                    Array.init u.Length (fun i ->
                        match ops[i] with
                        | Some _ ->
                            let rhs = withB i (explicitHalf i h u[i]) .+ (0.5 * h) .* (k1[i] .+ k2[i])
                            solve i h rhs u[i].shape
                        | None -> u[i] .+ (0.5 * h) .* (k1[i] .+ k2[i]))
