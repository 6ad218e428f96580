namespace Hybrid.Kernels

open System
open Hybrid
open Hybrid.Numerics

/// The linear part L of one field's stiff operator x ↦ L x + b (its implicit diffusion) on the grid's cells, in the
/// order of `Ghosts`' interior (x-major), as the nearest-neighbour stencil matrix of `StencilMatrix`: entry k of row
/// i is L[i, Columns[i][k]], k = 0 the cell itself, then its +x, −x (and +y, −y) neighbours taken cyclically (zero
/// across walls that are not periodic); and the affine part b = L 0.
type internal ImplicitStencil = {
    /// The field whose stiff part it is.
    Field: string
    /// Per cell: the columns of its row (`StencilMatrix.neighbours`).
    Columns: int[][]
    /// Entry k of row i at [i·K + k], K = 3 (1-D) or 5 (2-D).
    Values: float[]
    /// b, one value per cell.
    Affine: float[]
}

/// The solves of (I − cL) x = r for one field's `ImplicitStencil` and one c = γh, in place on a vector of the
/// field's cells (one trajectory), and of the transposed system (the adjoint solve).
type internal ImplicitSolver = {
    /// "banded" (1-D: the (cyclic) tridiagonal Thomas algorithm), "conjugate gradients" (2-D, L symmetric) or
    /// "BiCGSTAB" (2-D, L not symmetric).
    Method: string
    /// Overwrites r with x, (I − cL) x = r.
    Solve: float[] -> unit
    /// Overwrites g with λ, (I − cL)ᵀ λ = g.
    SolveTransposed: float[] -> unit
}

/// The implicit diffusion of the IMEX schemes on the generated kernels, on float arrays: its stencil matrix found by
/// probing the stiff part's generated kernel (as `StencilMatrix.probe` does for the eager back end), and the solves
/// the eager back end uses on grids too large for its dense inverse: the (cyclic) tridiagonal solve on 1-D grids
/// (exact), Jacobi-preconditioned conjugate gradients on 2-D grids (L symmetric, −L positive semi-definite), to the
/// eager back end's relative residual `ImplicitSolve.fixedStepTolerance`, so that both agree with the exact solve to
/// round-off. A non-symmetric L on a 2-D grid (c(x)Δu), which the eager back end solves densely, takes
/// Jacobi-preconditioned BiCGSTAB (`BlockStencilArrays.biCgStabFor`) to the same relative residual, its adjoint the
/// same iteration on Lᵀ's entries: they agree with the dense solve to about that residual times the conditioning of
/// I − cL (at most 1 + 2c·max|Lᵢᵢ|, diagonally dominant).
[<RequireQualifiedAccess>]
module internal ImplicitStencil =

    /// The relative residual (2-norm) at which conjugate gradients stop: the eager back end's.
    let private cgTolerance = ImplicitSolve.fixedStepTolerance

    /// The stencil of each field with a stiff part (`stiff`), None for the others, or why the kernels cannot solve it.
    /// `apply batch values` evaluates the stiff parts (the affine operators) on `batch` states given as unpadded
    /// values ([batch·cells] per field, x-major cells) and returns them in the same layout. Probes with one sum of unit
    /// vectors per colour of a distance-2 colouring, the zero state and a random state that checks the stencil.
    let probe
        (shape: int[])
        (fields: string[])
        (stiff: bool[])
        (apply: int -> float[][] -> float[][])
        : Result<ImplicitStencil, string> option[] =
        if shape |> Array.exists (fun c -> c < 3) then
            let cells = String.Join(" × ", shape)

            stiff
            |> Array.mapi (fun f s ->
                if s then
                    Some(
                        Error
                            $"the implicit diffusion of '{fields[f]}' needs at least 3 cells per axis for its stencil solve, and the grid has {cells}"
                    )
                else
                    None)
        else
            let n = shape |> Array.fold (*) 1
            let columns = StencilMatrix.neighbours shape
            let colour = StencilMatrix.colours columns
            let count = Array.max colour + 1
            let k = columns[0].Length
            let random = Random(20240521)
            let noise = Array.init n (fun _ -> 2.0 * random.NextDouble() - 1.0)
            let probes = Array.zeroCreate<float> ((count + 2) * n)

            for j in 0 .. n - 1 do
                probes[colour[j] * n + j] <- 1.0
                probes[(count + 1) * n + j] <- noise[j]

            let response = apply (count + 2) (Array.create fields.Length probes)

            stiff
            |> Array.mapi (fun f s ->
                if not s then
                    None
                else
                    let out = response[f]
                    let affine = out[count * n .. (count + 1) * n - 1]

                    // Row i of response c is Σ_{j of colour c} L[i, j]: the one entry of row i in that colour.
                    let values =
                        Array.init (n * k) (fun e ->
                            let i = e / k
                            out[colour[columns[i][e % k]] * n + i] - affine[i])

                    let mutable worst = 0.0
                    let mutable scale = 1e-300

                    for i in 0 .. n - 1 do
                        let expected = out[(count + 1) * n + i] - affine[i]
                        let mutable got = 0.0

                        for e in 0 .. k - 1 do
                            got <- got + values[i * k + e] * noise[columns[i][e]]

                        worst <- max worst (abs (got - expected))
                        scale <- max scale (abs expected)

                    if worst <= 1e-10 * scale then
                        Some(
                            Ok {
                                Field = fields[f]
                                Columns = columns
                                Values = values
                                Affine = affine
                            }
                        )
                    else
                        Some(
                            Error
                                $"the implicit diffusion of '{fields[f]}' does not have the nearest-neighbour stencil the kernels solve"
                        ))

    /// Whether I − cL is diagonally dominant with a positive diagonal for every c > 0: L's off-diagonal entries are
    /// ≥ 0 and its rows sum to ≤ 0 (a diffusion with a positive coefficient).
    let private dominant (s: ImplicitStencil) (k: int) =
        let largest = s.Values |> Array.fold (fun m v -> max m (abs v)) 0.0
        let rows = s.Values.Length / k

        Seq.forall
            (fun i ->
                let row = s.Values[i * k .. i * k + k - 1]
                Array.forall (fun v -> v >= 0.0) row[1..] && Array.sum row <= 1e-12 * largest)
            (seq { 0 .. rows - 1 })

    /// The entries of Lᵀ in the same layout: entry k of row i is L[Columns[i][k], i] (`StencilMatrix.transposedValues`).
    let private transposed (s: ImplicitStencil) (k: int) =
        let opposite = if k = 3 then [| 0; 2; 1 |] else [| 0; 2; 1; 4; 3 |]
        Array.init s.Values.Length (fun e -> s.Values[s.Columns[e / k][e % k] * k + opposite[e % k]])

    /// Whether L equals its transpose to round-off (relative 1e-12 of the largest entry), as `StencilMatrix.isSymmetric`.
    let private symmetric (s: ImplicitStencil) (k: int) =
        let largest = s.Values |> Array.fold (fun m v -> max m (abs v)) 1e-300
        Array.forall2 (fun a b -> abs (a - b) <= 1e-12 * largest) (transposed s k) s.Values

    /// The Thomas factors of I − cL for 1-D entries `values` (itself, +x, −x per row).
    let private banded (values: float[]) (c: float) =
        let n = values.Length / 3
        let diagonal = Array.init n (fun i -> 1.0 - c * values[3 * i])
        let upper = Array.init n (fun i -> -c * values[3 * i + 1])
        let lower = Array.init n (fun i -> -c * values[3 * i + 2])
        Tridiagonal.factor lower diagonal upper

    /// The entries of A = I − cL for L's entries `values` (K per row, the cell itself first).
    let private system (values: float[]) (k: int) (c: float) =
        values |> Array.mapi (fun e v -> if e % k = 0 then 1.0 - c * v else -c * v)

    /// Jacobi-preconditioned conjugate gradients on A = I − cL (symmetric positive definite), from x₀ = r, as
    /// `StencilSolve.conjugateGradient` runs them per right-hand side, on five of `scratch`'s vectors.
    let private conjugateGradients (scratch: SolveVectors) (s: ImplicitStencil) (c: float) =
        let k = s.Columns[0].Length
        let n = s.Columns.Length
        let columns = s.Columns |> Array.concat
        let a = system s.Values k c

        let inverseDiagonal = Array.init n (fun i -> 1.0 / a[i * k])
        let limit = 2 * n + 100

        let apply (x: float[]) (y: float[]) =
            for i in 0 .. n - 1 do
                let mutable sum = 0.0

                for e in i * k .. i * k + k - 1 do
                    sum <- sum + a[e] * x[columns[e]]

                y[i] <- sum

        let dot (x: float[]) (y: float[]) =
            let mutable sum = 0.0

            for i in 0 .. n - 1 do
                sum <- sum + x[i] * y[i]

            sum

        fun (x: float[]) ->
            let w = scratch.Get(5, n)
            let b, r, z, p, ap = w[0], w[1], w[2], w[3], w[4]
            Array.blit x 0 b 0 n
            let target = max (cgTolerance * sqrt (dot b b)) 1e-300
            apply x ap

            for i in 0 .. n - 1 do
                r[i] <- b[i] - ap[i]
                z[i] <- r[i] * inverseDiagonal[i]
                p[i] <- z[i]

            let mutable rz = dot r z
            let mutable iterations = 0

            while sqrt (dot r r) > target do
                if iterations >= limit then
                    raise (
                        HybridException(
                            $"Conjugate gradients did not reach the relative residual {cgTolerance:G3} in {limit} iterations on {n} unknowns{StencilSolve.implicitDiffusion.NotConverged}"
                        )
                    )

                apply p ap
                let curvature = dot p ap

                if curvature <= 0.0 then
                    raise (
                        HybridException("Conjugate gradients met pᵀAp ≤ 0" + StencilSolve.implicitDiffusion.NotPositive)
                    )

                let alpha = rz / curvature

                for i in 0 .. n - 1 do
                    x[i] <- x[i] + alpha * p[i]
                    r[i] <- r[i] - alpha * ap[i]
                    z[i] <- r[i] * inverseDiagonal[i]

                let next = dot r z
                let beta = next / rz

                for i in 0 .. n - 1 do
                    p[i] <- z[i] + beta * p[i]

                rz <- next
                iterations <- iterations + 1

    /// Jacobi-preconditioned BiCGSTAB on A = I − cL for L's entries `values` (the stencil's, or its transpose's for
    /// the adjoint solve), in place on one trajectory's vector, to `cgTolerance`, on `scratch`'s vectors.
    let private biCgStab (scratch: SolveVectors) (s: ImplicitStencil) (values: float[]) (c: float) =
        let k = s.Columns[0].Length
        let a = system values k c
        let inverse = BlockStencilArrays.inverseDiagonal s.Columns.Length k 1 1 a

        let caller: BiCgStabCaller = {
            System = $"the implicit diffusion (I − γhL) of '{s.Field}' on a 2-D grid"
            NotConverged =
                $"Take smaller steps (Dt), write the diffusion in flux form ∇·(k∇{s.Field}) (symmetric: conjugate gradients), or use Backend.Eager (its dense solve)."
            BrokeDown =
                $"Take smaller steps (Dt), write the diffusion in flux form ∇·(k∇{s.Field}), or use Backend.Eager (its dense solve)."
        }

        fun (x: float[]) -> BlockStencilArrays.biCgStabFor caller scratch s.Columns 1 a inverse cgTolerance x 0

    /// The solves of (I − cL) x = r for stencil `s`, or why the kernels cannot solve it: L must make I − cL
    /// diagonally dominant (1-D: the banded solve; 2-D: conjugate gradients where L is symmetric, BiCGSTAB where not).
    /// The iterative solves run on `scratch`'s vectors (one solve at a time).
    let solver (scratch: SolveVectors) (s: ImplicitStencil) (c: float) : Result<ImplicitSolver, string> =
        let k = s.Columns[0].Length

        if not (dominant s k) then
            Error
                $"the implicit diffusion of '{s.Field}' has a negative diffusivity somewhere (I − γhL is not diagonally dominant), which the kernels' banded, conjugate-gradient and BiCGSTAB solves do not take; run it on the eager back end (its dense solve)"
        elif k = 3 then
            let forward = banded s.Values c

            let backward = if symmetric s k then forward else banded (transposed s k) c

            Ok {
                Method = "banded"
                Solve = fun x -> Tridiagonal.solveInPlace forward x 0
                SolveTransposed = fun x -> Tridiagonal.solveInPlace backward x 0
            }
        elif symmetric s k then
            let cg = conjugateGradients scratch s c

            Ok {
                Method = "conjugate gradients"
                Solve = cg
                SolveTransposed = cg
            }
        else
            // A coefficient that varies in space multiplying Δu: not symmetric.
            Ok {
                Method = "BiCGSTAB"
                Solve = biCgStab scratch s s.Values c
                SolveTransposed = biCgStab scratch s (transposed s k) c
            }
