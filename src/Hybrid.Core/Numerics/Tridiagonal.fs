namespace Hybrid.Numerics

open Hybrid

/// A (cyclic) tridiagonal matrix factored for the Thomas algorithm, to solve many right-hand sides in O(n) each
/// without allocating: the sub-diagonal, the pivots and the eliminated super-diagonal, and for cyclic matrices the
/// Sherman–Morrison correction (z = A′⁻¹v for the rank-one update A = A′ + v wᵀ, and its constants).
type internal TridiagonalFactors = {
    /// Unknowns.
    Size: int
    /// lower[i] = A[i, i−1].
    Lower: float[]
    /// The pivots of the elimination.
    Pivot: float[]
    /// upper[i − 1] / pivot[i − 1] (entry 0 unused).
    Ratio: float[]
    /// The corners' correction z = A′⁻¹v (empty without corners).
    Z: float[]
    /// A[0, n−1].
    Beta: float
    /// −A[0, 0], the correction's scale.
    Gamma: float
    /// 1 + z₀ + β z₍n−1₎ / γ.
    Denominator: float
}

/// Tridiagonal and cyclic tridiagonal solves in O(n) (the 1-D diffusion stencil; periodic boundaries add the two
/// corners): the Thomas algorithm without pivoting, which is stable for the diagonally dominant matrices
/// I − c L of diffusion (Higham, Accuracy and Stability of Numerical Algorithms, §9.6), and the Sherman–Morrison
/// correction for the corners (Numerical Recipes §2.7).
[<RequireQualifiedAccess>]
module internal Tridiagonal =

    /// The Thomas elimination of the plain tridiagonal matrix (lower[0] and upper[n−1] ignored): pivots and ratios.
    let private eliminate (lower: float[]) (diagonal: float[]) (upper: float[]) =
        let n = diagonal.Length
        let pivot = Array.zeroCreate<float> n
        let ratio = Array.zeroCreate<float> n
        pivot[0] <- diagonal[0]

        for i in 1 .. n - 1 do
            ratio[i] <- upper[i - 1] / pivot[i - 1]
            pivot[i] <- diagonal[i] - lower[i] * ratio[i]

        pivot, ratio

    /// Overwrites x[offset .. offset + n − 1] with the plain tridiagonal solve of it.
    let private thomasInPlace (lower: float[]) (pivot: float[]) (ratio: float[]) (x: float[]) (offset: int) =
        let n = pivot.Length
        x[offset] <- x[offset] / pivot[0]

        for i in 1 .. n - 1 do
            x[offset + i] <- (x[offset + i] - lower[i] * x[offset + i - 1]) / pivot[i]

        for i in n - 2 .. -1 .. 0 do
            x[offset + i] <- x[offset + i] - ratio[i + 1] * x[offset + i + 1]

    /// True when every row's diagonal entry dominates the row (|A[i,i]| > |A[i,i−1]| + |A[i,i+1]|, strictly): then
    /// both algorithms run without pivoting.
    let isDominant (lower: float[]) (diagonal: float[]) (upper: float[]) : bool =
        Array.forall id (Array.init diagonal.Length (fun i -> abs diagonal[i] > abs lower[i] + abs upper[i]))

    /// Factors the cyclic tridiagonal A with lower[i] = A[i, i−1 mod n], diagonal[i] = A[i, i] and
    /// upper[i] = A[i, i+1 mod n] (n ≥ 3); without corners (lower[0] = upper[n−1] = 0) it is the plain algorithm.
    let factor (lower: float[]) (diagonal: float[]) (upper: float[]) : TridiagonalFactors =
        let n = diagonal.Length

        if n < 3 then
            raise (HybridException($"A cyclic tridiagonal solve needs at least 3 unknowns, got {n}."))

        // A[n−1, 0] and A[0, n−1].
        let alpha = upper[n - 1]
        let beta = lower[0]

        if alpha = 0.0 && beta = 0.0 then
            let pivot, ratio = eliminate lower diagonal upper

            {
                Size = n
                Lower = lower
                Pivot = pivot
                Ratio = ratio
                Z = [||]
                Beta = 0.0
                Gamma = 0.0
                Denominator = 1.0
            }
        else
            let g = -diagonal[0]
            let modified = Array.copy diagonal
            modified[0] <- diagonal[0] - g
            modified[n - 1] <- diagonal[n - 1] - alpha * beta / g
            let pivot, ratio = eliminate lower modified upper
            let z = Array.zeroCreate<float> n
            z[0] <- g
            z[n - 1] <- alpha
            thomasInPlace lower pivot ratio z 0

            {
                Size = n
                Lower = lower
                Pivot = pivot
                Ratio = ratio
                Z = z
                Beta = beta
                Gamma = g
                Denominator = 1.0 + z[0] + beta * z[n - 1] / g
            }

    /// Overwrites x[offset .. offset + n − 1] (a right-hand side) with the solution of A x = r.
    let solveInPlace (f: TridiagonalFactors) (x: float[]) (offset: int) =
        thomasInPlace f.Lower f.Pivot f.Ratio x offset

        if f.Z.Length > 0 then
            let n = f.Size
            let scale = (x[offset] + f.Beta * x[offset + n - 1] / f.Gamma) / f.Denominator

            for i in 0 .. n - 1 do
                x[offset + i] <- x[offset + i] - scale * f.Z[i]

    /// Solves A x = r for the cyclic tridiagonal A of `factor` (n ≥ 3).
    let solve (lower: float[]) (diagonal: float[]) (upper: float[]) (r: float[]) : float[] =
        let x = Array.copy r
        solveInPlace (factor lower diagonal upper) x 0
        x
