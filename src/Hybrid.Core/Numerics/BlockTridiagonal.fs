namespace Hybrid.Numerics

open Hybrid

/// Block (cyclic) tridiagonal solves in O(N n³) for N block rows of n×n blocks (n fields coupled per cell on a 1-D
/// stencil; periodic boundaries add the two corner blocks): block Gaussian elimination (the block Thomas algorithm)
/// on the first N − 1 block rows, each pivot block inverted with partial pivoting, and the last block row and column
/// as a border eliminated through its n×n Schur complement (Golub and Van Loan, Matrix Computations, §4.5.1 for
/// block tridiagonal LU). Blocks are flat row-major arrays of n·n values. Without pivoting across blocks the
/// elimination is stable for block diagonally dominant matrices (1/(γh) I − J of a Rosenbrock step with a
/// diffusion stencil); the caller checks the residual.
[<RequireQualifiedAccess>]
module internal BlockTridiagonal =

    /// The n×m product of the n×p block a and the p×m block b.
    let private mul (n: int) (p: int) (m: int) (a: float[]) (b: float[]) : float[] =
        let c = Array.zeroCreate<float> (n * m)

        for i in 0 .. n - 1 do
            for k in 0 .. p - 1 do
                let aik = a[i * p + k]

                if aik <> 0.0 then
                    for j in 0 .. m - 1 do
                        c[i * m + j] <- c[i * m + j] + aik * b[k * m + j]

        c

    /// a − b, element-wise.
    let private sub (a: float[]) (b: float[]) = Array.map2 (-) a b

    /// The inverse of the n×n block a by Gauss–Jordan elimination with partial pivoting; raises when a is singular.
    let invert (n: int) (a: float[]) : float[] =
        let m = Array.copy a
        let inv = Array.init (n * n) (fun e -> if e / n = e % n then 1.0 else 0.0)

        for col in 0 .. n - 1 do
            let mutable pivot = col

            for r in col + 1 .. n - 1 do
                if abs m[r * n + col] > abs m[pivot * n + col] then
                    pivot <- r

            if m[pivot * n + col] = 0.0 then
                raise (HybridException("A block of the block tridiagonal solve is singular."))

            if pivot <> col then
                for j in 0 .. n - 1 do
                    let t = m[col * n + j]
                    m[col * n + j] <- m[pivot * n + j]
                    m[pivot * n + j] <- t
                    let s = inv[col * n + j]
                    inv[col * n + j] <- inv[pivot * n + j]
                    inv[pivot * n + j] <- s

            let d = m[col * n + col]

            for j in 0 .. n - 1 do
                m[col * n + j] <- m[col * n + j] / d
                inv[col * n + j] <- inv[col * n + j] / d

            for r in 0 .. n - 1 do
                if r <> col then
                    let factor = m[r * n + col]

                    if factor <> 0.0 then
                        for j in 0 .. n - 1 do
                            m[r * n + j] <- m[r * n + j] - factor * m[col * n + j]
                            inv[r * n + j] <- inv[r * n + j] - factor * inv[col * n + j]

        inv

    /// Solves the block tridiagonal system of the first `rows` block rows (diagonal d, super-diagonal upper[i] =
    /// A[i, i+1], sub-diagonal lower[i] = A[i, i−1]) for the n×m right-hand sides rhs[i].
    let private thomas
        (n: int)
        (m: int)
        (rows: int)
        (lower: float[][])
        (d: float[][])
        (upper: float[][])
        (rhs: float[][])
        =
        let pivots = Array.zeroCreate<float[]> rows
        let y = Array.zeroCreate<float[]> rows
        pivots[0] <- invert n d[0]
        y[0] <- rhs[0]

        for i in 1 .. rows - 1 do
            let w = mul n n n lower[i] pivots[i - 1]
            pivots[i] <- invert n (sub d[i] (mul n n n w upper[i - 1]))
            y[i] <- sub rhs[i] (mul n n m w y[i - 1])

        let x = Array.zeroCreate<float[]> rows
        x[rows - 1] <- mul n n m pivots[rows - 1] y[rows - 1]

        for i in rows - 2 .. -1 .. 0 do
            x[i] <- mul n n m pivots[i] (sub y[i] (mul n n m upper[i] x[i + 1]))

        x

    /// Solves A x = r for the block cyclic tridiagonal A with N ≥ 3 block rows: diagonal[i] = A[i, i],
    /// upper[i] = A[i, i+1 mod N], lower[i] = A[i, i−1 mod N] (n×n each; the corners lower[0] and upper[N−1] may be
    /// zero), r[i] the n values of block row i.
    let solve (n: int) (lower: float[][]) (diagonal: float[][]) (upper: float[][]) (r: float[][]) : float[][] =
        let count = r.Length

        if count < 3 then
            raise (HybridException($"A block cyclic tridiagonal solve needs at least 3 block rows, got {count}."))

        let rows = count - 1
        let last = count - 1
        // Per block row of the leading part: its right-hand side, then the border column (A[i, N−1]) as n more columns.
        let width = 1 + n
        let zero = Array.zeroCreate<float> (n * n)

        let combined =
            Array.init rows (fun i ->
                let border =
                    if i = 0 then lower[0]
                    elif i = rows - 1 then upper[rows - 1]
                    else zero

                Array.init (n * width) (fun e ->
                    let row, col = e / width, e % width
                    if col = 0 then r[i][row] else border[row * n + col - 1]))

        let solved = thomas n width rows lower diagonal upper combined
        let z = solved |> Array.map (fun s -> Array.init n (fun row -> s[row * width]))

        let y =
            solved
            |> Array.map (fun s -> Array.init (n * n) (fun e -> s[(e / n) * width + 1 + e % n]))

        // The border row: A[N−1, 0] = upper[N−1], A[N−1, N−2] = lower[N−1].
        let schur =
            sub (sub diagonal[last] (mul n n n upper[last] y[0])) (mul n n n lower[last] y[rows - 1])

        let reduced =
            sub (sub r[last] (mul n n 1 upper[last] z[0])) (mul n n 1 lower[last] z[rows - 1])

        let xLast = mul n n 1 (invert n schur) reduced
        Array.append (Array.init rows (fun i -> sub z[i] (mul n n 1 y[i] xLast))) [| xLast |]
