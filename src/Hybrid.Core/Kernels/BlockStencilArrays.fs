namespace Hybrid.Kernels

open Hybrid

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

        BiCgStab.solve caller scratch 1 size apply precondition tolerance rhs offset

    /// `biCgStabFor` on Rodas4's systems (`RosenbrockStepper`).
    let biCgStab =
        biCgStabFor {
            System = "Rodas4's linear system on a grid"
            NotConverged = "Loosen the Tolerance, or use Scheme.Dopri5."
            BrokeDown = "Use Scheme.Dopri5, or a smaller first step."
        }
