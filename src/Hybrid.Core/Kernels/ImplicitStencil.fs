namespace Hybrid.Kernels

open System
open TorchSharp
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
    /// Entry k of row i at [i·K + k], K = 3 (1-D) or 5 (2-D), or K = cells where `Full`.
    Values: float[]
    /// Whether the columns of each row are every cell (the cell itself first, then the others in order): a grid with
    /// fewer than 3 cells along an axis, where the stencil's neighbours would repeat; it takes the dense solve.
    Full: bool
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
/// Jacobi-preconditioned BiCGSTAB (`BiCgStab.solve`) to the same relative residual, its adjoint the
/// same iteration on Lᵀ's entries: they agree with the dense solve to about that residual times the conditioning of
/// I − cL (at most 1 + 2c·max|Lᵢᵢ|, diagonally dominant).
[<RequireQualifiedAccess>]
module internal ImplicitStencil =

    /// The relative residual (2-norm) at which conjugate gradients stop: the eager back end's.
    let private cgTolerance = ImplicitSolve.fixedStepTolerance

    /// `make f` for each field f with a stiff part (`stiff`), None for the others.
    let private eachStiff (stiff: bool[]) (make: int -> 'a) : 'a option[] =
        stiff |> Array.mapi (fun f s -> if s then Some(make f) else None)

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
            let n = shape |> Array.fold (*) 1

            if n > ImplicitSolve.maxDense then
                let cells = String.Join(" × ", shape)

                eachStiff stiff (fun f ->
                    Error
                        $"the implicit diffusion of '{fields[f]}' on a grid of {cells} cells: fewer than 3 along an axis fit no stencil solve, and its {n} cells are above the dense solve's {ImplicitSolve.maxDense}; use at least 3 cells per axis, or integrate the diffusion explicitly")
            else
                // L column by column: the response to each unit vector, less the affine part (the zero state's).
                let probes = Array.zeroCreate<float> ((n + 1) * n)

                for j in 0 .. n - 1 do
                    probes[j * n + j] <- 1.0

                let response = apply (n + 1) (Array.create fields.Length probes)

                let columns =
                    Array.init n (fun i ->
                        Array.append [| i |] (Array.init (n - 1) (fun j -> if j < i then j else j + 1)))

                eachStiff stiff (fun f ->
                    let out = response[f]
                    let affine = out[n * n .. n * n + n - 1]

                    Ok {
                        Field = fields[f]
                        Columns = columns
                        Values = Array.init (n * n) (fun e -> out[columns[e / n][e % n] * n + e / n] - affine[e / n])
                        Affine = affine
                        Full = true
                    })
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

            eachStiff stiff (fun f ->
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
                    Ok {
                        Field = fields[f]
                        Columns = columns
                        Values = values
                        Affine = affine
                        Full = false
                    }
                else
                    Error
                        $"the implicit diffusion of '{fields[f]}' does not have the nearest-neighbour stencil the kernels solve")

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
        let inverse = Array.zeroCreate<float> s.Columns.Length
        BlockStencilArrays.inverseDiagonal inverse s.Columns.Length k 1 1 a

        let caller: BiCgStabCaller = {
            System = $"the implicit diffusion (I − γhL) of '{s.Field}' on a 2-D grid"
            NotConverged =
                $"Take smaller steps (Dt), write the diffusion in flux form ∇·(k∇{s.Field}) (symmetric: conjugate gradients), or use Backend.Eager (its dense solve)."
            BrokeDown =
                $"Take smaller steps (Dt), write the diffusion in flux form ∇·(k∇{s.Field}), or use Backend.Eager (its dense solve)."
        }

        fun (x: float[]) -> BlockStencilArrays.biCgStabFor caller scratch s.Columns 1 a inverse cgTolerance x 0

    /// The dense solve of I − cL (a negative diffusivity somewhere, so no diagonal dominance), as the eager back end's
    /// (`ImplicitSolve`): the matrix assembled from the stencil, LU-factored with partial pivoting by TorchSharp once
    /// per c (a third of the flops of the inverse the eager back end forms), then two triangular solves on arrays per
    /// solve, the transposed ones for the adjoint solve. Why not, where I − cL is singular.
    let private dense (s: ImplicitStencil) (k: int) (c: float) : Result<ImplicitSolver, string> =
        let n = s.Columns.Length
        let a = Array.zeroCreate<float> (n * n)

        for i in 0 .. n - 1 do
            a[i * n + i] <- 1.0

            // On a periodic axis of 2 cells… the neighbours on both sides are one cell: their entries add up.
            for e in 0 .. k - 1 do
                let j = s.Columns[i][e]
                a[i * n + j] <- a[i * n + j] - c * s.Values[i * k + e]

        let noInverse (why: string) =
            Error
                $"the implicit diffusion of '{s.Field}' has a negative diffusivity somewhere, and I − γhL (γh = {c:G4}) has no inverse at this step size ({why}); take a smaller Dt or give the diffusion a positive coefficient"

        // P(I − cL) = LU by LAPACK's getrf, as `DenseLu` stores it (pivots 0-based here).
        let factors =
            try
                use _ = torch.NewDisposeScope()
                let m = torch.tensor(a, dtype = torch.ScalarType.Float64).reshape (int64 n, int64 n)
                let struct (lu, pivots) = torch.linalg.lu_factor m

                Ok(
                    lu.contiguous().data<float>().ToArray(),
                    pivots.to_type(torch.ScalarType.Int64).data<int64>().ToArray()
                    |> Array.map (fun p -> int p - 1)
                )
            with e ->
                noInverse (e.Message.Split('\n')[0])

        factors
        |> Result.bind (fun (lu, pivots) ->
            match
                Seq.init n (fun i -> lu[i * n + i])
                |> Seq.tryFindIndex (fun d -> d = 0.0 || not (Double.IsFinite d))
            with
            | Some i -> noInverse $"U's pivot {i} is {lu[i * n + i]}"
            | None ->
                Ok {
                    Method = "dense"
                    Solve = DenseLu.substitute lu 0 n pivots
                    SolveTransposed = DenseLu.substituteTransposed lu 0 n pivots
                })

    /// Why no solve of `solver` takes stencil `s` at any step size (None where one does): a negative diffusivity
    /// somewhere on more than `ImplicitSolve.maxDense` cells, where L is not a symmetric 2-D operator.
    let refusal (s: ImplicitStencil) : string option =
        let k = s.Columns[0].Length
        let n = s.Columns.Length

        if
            not s.Full
            && not (dominant s k)
            && n > ImplicitSolve.maxDense
            && (k = 3 || not (symmetric s k))
        then
            Some
                $"the implicit diffusion of '{s.Field}' has a negative diffusivity somewhere (I − γhL is not diagonally dominant) on {n} cells, above the dense solve's {ImplicitSolve.maxDense}, and its operator fits no other solve (the banded one needs diagonal dominance, conjugate gradients a symmetric 2-D operator); give the diffusion a positive coefficient, use a coarser grid, or integrate it explicitly"
        else
            None

    /// The solves of (I − cL) x = r for stencil `s`, or why the kernels cannot solve it. Where I − cL is diagonally
    /// dominant: the banded solve in 1-D, conjugate gradients in 2-D where L is symmetric, BiCGSTAB where not. Where
    /// not (a negative diffusivity somewhere), as the eager back end: the dense solve up to `ImplicitSolve.maxDense`
    /// cells, conjugate gradients above on a symmetric 2-D L (which stop with a message if I − cL is not positive
    /// definite), refused otherwise. The iterative solves run on `scratch`'s vectors (one solve at a time).
    let solver (scratch: SolveVectors) (s: ImplicitStencil) (c: float) : Result<ImplicitSolver, string> =
        let k = s.Columns[0].Length

        match refusal s with
        | Some why -> Error why
        | None when s.Full || (not (dominant s k) && s.Columns.Length <= ImplicitSolve.maxDense) -> dense s k c
        | None when k = 3 ->
            let forward = banded s.Values c

            let backward = if symmetric s k then forward else banded (transposed s k) c

            Ok {
                Method = "banded"
                Solve = fun x -> Tridiagonal.solveInPlace forward x 0
                SolveTransposed = fun x -> Tridiagonal.solveInPlace backward x 0
            }
        | None when symmetric s k ->
            let cg = conjugateGradients scratch s c

            Ok {
                Method = "conjugate gradients"
                Solve = cg
                SolveTransposed = cg
            }
        | None ->
            // A coefficient that varies in space multiplying Δu: not symmetric.
            Ok {
                Method = "BiCGSTAB"
                Solve = biCgStab scratch s s.Values c
                SolveTransposed = biCgStab scratch s (transposed s k) c
            }
