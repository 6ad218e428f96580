namespace Hybrid.Numerics

open Hybrid

/// Tridiagonal and cyclic tridiagonal solves in O(n) (the 1-D diffusion stencil; periodic boundaries add the two
/// corners): the Thomas algorithm without pivoting, which is stable for the diagonally dominant matrices
/// I − c L of diffusion (Higham, Accuracy and Stability of Numerical Algorithms, §9.6), and the Sherman–Morrison
/// correction for the corners (Numerical Recipes §2.7).
[<RequireQualifiedAccess>]
module internal Tridiagonal =

    /// Solves the plain tridiagonal system with sub-diagonal lower[i] = A[i, i−1] (lower[0] ignored), diagonal and
    /// super-diagonal upper[i] = A[i, i+1] (upper[n−1] ignored).
    let private thomas (lower: float[]) (diagonal: float[]) (upper: float[]) (r: float[]) : float[] =
        let n = r.Length
        let x = Array.zeroCreate<float> n
        let scratch = Array.zeroCreate<float> n
        let mutable pivot = diagonal[0]
        x[0] <- r[0] / pivot

        for i in 1 .. n - 1 do
            scratch[i] <- upper[i - 1] / pivot
            pivot <- diagonal[i] - lower[i] * scratch[i]
            x[i] <- (r[i] - lower[i] * x[i - 1]) / pivot

        for i in n - 2 .. -1 .. 0 do
            x[i] <- x[i] - scratch[i + 1] * x[i + 1]

        x

    /// True when every row's diagonal entry dominates the row (|A[i,i]| > |A[i,i−1]| + |A[i,i+1]|, strictly): then
    /// both algorithms run without pivoting.
    let isDominant (lower: float[]) (diagonal: float[]) (upper: float[]) : bool =
        Array.forall id (Array.init diagonal.Length (fun i -> abs diagonal[i] > abs lower[i] + abs upper[i]))

    /// Solves A x = r for the cyclic tridiagonal A with lower[i] = A[i, i−1 mod n], diagonal[i] = A[i, i] and
    /// upper[i] = A[i, i+1 mod n] (n ≥ 3); without corners (lower[0] = upper[n−1] = 0) it is the plain algorithm.
    let solve (lower: float[]) (diagonal: float[]) (upper: float[]) (r: float[]) : float[] =
        let n = r.Length

        if n < 3 then
            raise (HybridException($"A cyclic tridiagonal solve needs at least 3 unknowns, got {n}."))

        // A[n−1, 0] and A[0, n−1].
        let alpha = upper[n - 1]
        let beta = lower[0]

        if alpha = 0.0 && beta = 0.0 then
            thomas lower diagonal upper r
        else
            let g = -diagonal[0]
            let modified = Array.copy diagonal
            modified[0] <- diagonal[0] - g
            modified[n - 1] <- diagonal[n - 1] - alpha * beta / g
            let x = thomas lower modified upper r
            let v = Array.zeroCreate<float> n
            v[0] <- g
            v[n - 1] <- alpha
            let z = thomas lower modified upper v

            let factor = (x[0] + beta * x[n - 1] / g) / (1.0 + z[0] + beta * z[n - 1] / g)

            Array.init n (fun i -> x[i] - factor * z[i])
