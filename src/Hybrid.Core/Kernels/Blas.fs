namespace Hybrid.Kernels

open System.Numerics
open System.Runtime.CompilerServices

/// The few vector operations the IMEX kernel stepper needs, on whole float64 arrays, with `Vector<float>` SIMD
/// (the explicit stepper combines its stages in parts over the worker pool, `CombinationPass`).
[<AbstractClass; Sealed>]
type internal Blas =

    /// y ← y + a·x (x at least as long as y).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Axpy(a: float, x: float[], y: float[]) =
        let width = Vector<float>.Count
        let va = Vector<float>(a)
        let mutable i = 0

        while i <= y.Length - width do
            (Vector<float>(y, i) + va * Vector<float>(x, i)).CopyTo(y, i)
            i <- i + width

        while i < y.Length do
            y[i] <- y[i] + a * x[i]
            i <- i + 1

    /// y ← a·x (x at least as long as y).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Scale(a: float, x: float[], y: float[]) =
        let width = Vector<float>.Count
        let va = Vector<float>(a)
        let mutable i = 0

        while i <= y.Length - width do
            (va * Vector<float>(x, i)).CopyTo(y, i)
            i <- i + width

        while i < y.Length do
            y[i] <- a * x[i]
            i <- i + 1
