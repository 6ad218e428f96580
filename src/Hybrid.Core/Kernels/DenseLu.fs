/// LU factors with partial pivoting of dense n×n matrices stored row-major in arrays (at an offset, so a batch of
/// matrices can share one array), as LAPACK's getrf leaves them: the unit lower factor below the diagonal, the upper
/// factor on and above it, and row i swapped with row pivot[i] (0-based) in turn. The solves overwrite the right-hand
/// side. The point systems' Rodas4 (`AdaptiveKernels`) factors here; the IMEX steps' dense solve (`ImplicitStencil`)
/// takes libtorch's factors and solves here.
module internal Hybrid.Kernels.DenseLu

/// Factors the n×n matrix at `offset` of `a` in place (P A = L U); the pivots into `pivot`.
let factor (a: float[]) (offset: int) (n: int) (pivot: int[]) =
    for col in 0 .. n - 1 do
        let mutable p = col

        for row in col + 1 .. n - 1 do
            if abs a[offset + row * n + col] > abs a[offset + p * n + col] then
                p <- row

        pivot[col] <- p

        if p <> col then
            for j in 0 .. n - 1 do
                let x = a[offset + col * n + j]
                a[offset + col * n + j] <- a[offset + p * n + j]
                a[offset + p * n + j] <- x

        let d = a[offset + col * n + col]

        for row in col + 1 .. n - 1 do
            let l = a[offset + row * n + col] / d
            a[offset + row * n + col] <- l

            for j in col + 1 .. n - 1 do
                a[offset + row * n + j] <- a[offset + row * n + j] - l * a[offset + col * n + j]

/// Solves A x = r with the factors at `offset` of `a`: x overwrites r (n values).
let substitute (a: float[]) (offset: int) (n: int) (pivot: int[]) (x: float[]) =
    for i in 0 .. n - 1 do
        let p = pivot[i]

        if p <> i then
            let v = x[i]
            x[i] <- x[p]
            x[p] <- v

    for i in 1 .. n - 1 do
        for j in 0 .. i - 1 do
            x[i] <- x[i] - a[offset + i * n + j] * x[j]

    for i in n - 1 .. -1 .. 0 do
        for j in i + 1 .. n - 1 do
            x[i] <- x[i] - a[offset + i * n + j] * x[j]

        x[i] <- x[i] / a[offset + i * n + i]

/// Solves Aᵀ x = r with the factors at `offset` of `a` (Uᵀ y = r, Lᵀ z = y by rows of U and L, then x = Pᵀ z): x
/// overwrites r (n values).
let substituteTransposed (a: float[]) (offset: int) (n: int) (pivot: int[]) (x: float[]) =
    for j in 0 .. n - 1 do
        let yj = x[j] / a[offset + j * n + j]
        x[j] <- yj

        for i in j + 1 .. n - 1 do
            x[i] <- x[i] - a[offset + j * n + i] * yj

    for j in n - 1 .. -1 .. 1 do
        let zj = x[j]

        for i in 0 .. j - 1 do
            x[i] <- x[i] - a[offset + j * n + i] * zj

    for i in n - 1 .. -1 .. 0 do
        let p = pivot[i]

        if p <> i then
            let v = x[i]
            x[i] <- x[p]
            x[p] <- v
