namespace Hybrid.Kernels

open Hybrid

/// Who runs BiCGSTAB on arrays (`BlockStencilArrays.biCgStabFor`): the system it solves and the fixes, for its
/// failure messages.
type internal BiCgStabCaller = {
    /// The system, after "on" (e.g. "Rodas4's linear system on a 2-D grid").
    System: string
    /// The fix when it does not reach the tolerance in its iteration limit.
    NotConverged: string
    /// The fix when it breaks down (r̂ᵀv = 0).
    BrokeDown: string
}

/// Scratch vectors of the kernels' iterative solves on arrays (`BlockStencilArrays.biCgStabFor`, `ImplicitStencil`'s
/// conjugate gradients), kept by the stepper that runs them so that a solve allocates nothing: made at the first solve,
/// and again only when a solve needs more of them or another length. For one solve at a time.
[<Sealed>]
type internal SolveVectors() =
    let mutable vectors: float[][] = [||]

    /// At least `count` vectors of `length` entries each, holding whatever the last solve left in them.
    member _.Get(count: int, length: int) =
        if vectors.Length < count || (vectors.Length > 0 && vectors[0].Length <> length) then
            vectors <- Array.init count (fun _ -> Array.zeroCreate<float> length)

        vectors

/// `BlockStencil` systems A x = r on float64 arrays (one matrix per trajectory): A's blocks as [B; Cells; K; n; n]
/// and vectors as [B; Cells; n], flattened; block k of block row i couples cell i to cell `columns[i][k]`. The
/// kernels' Rodas4 solves its 2-D systems here with `BlockStencilSolve.biCgStab`'s algorithm (the same iteration,
/// block Jacobi preconditioner, stopping rule, limit and messages), without a tensor operation per step of it: on
/// small grids those dominate the eager solve. The two solve to the same relative residual, so they agree to about
/// that tolerance, not to round-off (their dot products sum in different orders). The IMEX schemes' implicit
/// diffusion solves its non-symmetric 2-D systems with the same iteration (`ImplicitStencil`: blocks of one cell,
/// one matrix for every trajectory, the Jacobi preconditioner).
[<RequireQualifiedAccess>]
module internal BlockStencilArrays =

    /// The blocks of the transpose in the same layout into `out` (every entry written): block k of block row i is
    /// A[columns[i][k], opposite[k]]ᵀ.
    let transpose (out: float[]) (columns: int[][]) (opposite: int[]) (n: int) (batch: int) (a: float[]) =
        let cells, k = columns.Length, opposite.Length

        for b in 0 .. batch - 1 do
            for i in 0 .. cells - 1 do
                for kk in 0 .. k - 1 do
                    let source = ((b * cells + columns[i].[kk]) * k + opposite[kk]) * n * n
                    let target = ((b * cells + i) * k + kk) * n * n

                    for r in 0 .. n - 1 do
                        for c in 0 .. n - 1 do
                            out[target + r * n + c] <- a[source + c * n + r]

    /// The inverses of the diagonal blocks (k = 0), [B; Cells; n; n], into `out` (every entry written), by
    /// Gauss–Jordan elimination with partial pivoting.
    let inverseDiagonal (out: float[]) (cells: int) (k: int) (n: int) (batch: int) (a: float[]) =
        let m = Array.zeroCreate<float> (n * 2 * n)

        for e in 0 .. batch * cells - 1 do
            let block = e * k * n * n

            for r in 0 .. n - 1 do
                for c in 0 .. 2 * n - 1 do
                    m[r * 2 * n + c] <-
                        if c < n then a[block + r * n + c]
                        elif c - n = r then 1.0
                        else 0.0

            for col in 0 .. n - 1 do
                let mutable p = col

                for r in col + 1 .. n - 1 do
                    if abs m[r * 2 * n + col] > abs m[p * 2 * n + col] then
                        p <- r

                if p <> col then
                    for c in 0 .. 2 * n - 1 do
                        let x = m[col * 2 * n + c]
                        m[col * 2 * n + c] <- m[p * 2 * n + c]
                        m[p * 2 * n + c] <- x

                let d = m[col * 2 * n + col]

                for c in 0 .. 2 * n - 1 do
                    m[col * 2 * n + c] <- m[col * 2 * n + c] / d

                for r in 0 .. n - 1 do
                    if r <> col then
                        let f = m[r * 2 * n + col]

                        if f <> 0.0 then
                            for c in 0 .. 2 * n - 1 do
                                m[r * 2 * n + c] <- m[r * 2 * n + c] - f * m[col * 2 * n + c]

            for r in 0 .. n - 1 do
                for c in 0 .. n - 1 do
                    out[e * n * n + r * n + c] <- m[r * 2 * n + n + c]

    /// BiCGSTAB with the block Jacobi preconditioner `inverse` (`inverseDiagonal`) for trajectory b: x with
    /// ‖A x − r‖ ≤ tolerance·‖r‖ (2-norm), written over r's entries of that trajectory (`rhs` [B; Cells; n]); its
    /// failures name `caller`'s system and fixes. Its ten vectors are `scratch`'s.
    let biCgStabFor
        (caller: BiCgStabCaller)
        (scratch: SolveVectors)
        (columns: int[][])
        (n: int)
        (a: float[])
        (inverse: float[])
        (tolerance: float)
        (rhs: float[])
        (b: int)
        =
        let cells, k = columns.Length, columns[0].Length
        let size = cells * n
        let offset = b * size

        let apply (x: float[]) (y: float[]) =
            for i in 0 .. cells - 1 do
                for r in 0 .. n - 1 do
                    let mutable sum = 0.0

                    for kk in 0 .. k - 1 do
                        let block = (((b * cells + i) * k + kk) * n + r) * n
                        let j = columns[i].[kk] * n

                        for c in 0 .. n - 1 do
                            sum <- sum + a[block + c] * x[j + c]

                    y[i * n + r] <- sum

        let precondition (x: float[]) (y: float[]) =
            for i in 0 .. cells - 1 do
                for r in 0 .. n - 1 do
                    let mutable sum = 0.0
                    let row = ((b * cells + i) * n + r) * n

                    for c in 0 .. n - 1 do
                        sum <- sum + inverse[row + c] * x[i * n + c]

                    y[i * n + r] <- sum

        let dot (x: float[]) (y: float[]) =
            let mutable sum = 0.0

            for e in 0 .. size - 1 do
                sum <- sum + x[e] * y[e]

            sum

        let orOne (s: float) = if s = 0.0 then 1.0 else s
        let w = scratch.Get(10, size)
        let right, x, r, shadow = w[0], w[1], w[2], w[3]
        let v, p, pHat, s, sHat, t = w[4], w[5], w[6], w[7], w[8], w[9]
        Array.blit rhs offset right 0 size
        let target = max (tolerance * sqrt (dot right right)) 1e-300
        precondition right x
        apply x r

        for e in 0 .. size - 1 do
            r[e] <- right[e] - r[e]

        Array.blit r 0 shadow 0 size
        // The first iteration reads p and v as zeros.
        System.Array.Clear p
        System.Array.Clear v

        let mutable rhoOld, alpha, omega = 1.0, 1.0, 1.0
        let mutable iterations = 0
        let limit = 2 * size + 100

        while sqrt (dot r r) > target do
            if iterations >= limit then
                raise (
                    HybridException(
                        $"BiCGSTAB did not reach the relative residual {tolerance:G3} in {limit} iterations on {size} unknowns ({caller.System}). {caller.NotConverged}"
                    )
                )

            let rho = dot shadow r
            let beta = (rho / orOne rhoOld) * (alpha / orOne omega)

            for e in 0 .. size - 1 do
                p[e] <- r[e] + beta * (p[e] - omega * v[e])

            precondition p pHat
            apply pHat v
            let curvature = dot shadow v

            if curvature = 0.0 then
                raise (HybridException($"BiCGSTAB broke down (r̂ᵀv = 0) on {caller.System}. {caller.BrokeDown}"))

            alpha <- rho / curvature

            for e in 0 .. size - 1 do
                s[e] <- r[e] - alpha * v[e]

            precondition s sHat
            apply sHat t
            omega <- dot t s / orOne (dot t t)

            for e in 0 .. size - 1 do
                x[e] <- x[e] + (alpha * pHat[e] + omega * sHat[e])
                r[e] <- s[e] - omega * t[e]

            rhoOld <- rho
            iterations <- iterations + 1

        Array.blit x 0 rhs offset size

    /// `biCgStabFor` on Rodas4's systems (`RosenbrockStepper`).
    let biCgStab =
        biCgStabFor {
            System = "Rodas4's linear system on a grid"
            NotConverged = "Loosen the Tolerance, or use Scheme.Dopri5."
            BrokeDown = "Use Scheme.Dopri5, or a smaller first step."
        }
