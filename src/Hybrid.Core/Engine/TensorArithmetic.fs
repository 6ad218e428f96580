namespace Hybrid

open TorchSharp
open type TorchSharp.torch

/// Tensor arithmetic with numbers that is safe when more than one thread uses TorchSharp.
///
/// TorchSharp 0.107 turns every number in `t * 2.0`, `1.0 - t`, `t / h` (and even the hidden α = 1 of
/// `a + b` and the exponent of `t.square()`) into a temporary `Scalar` and passes only its native handle
/// to libtorch. Nothing keeps the managed `Scalar` alive during the native call, so a garbage collection
/// triggered by another thread can run its finalizer and free the native value while libtorch still reads
/// it; libtorch then fails with "Unknown scalar type" or worse (TorchSharp pull requests #1434 and #1496).
/// The operators here create each `Scalar` explicitly and dispose of it after the call, which keeps it
/// alive for exactly as long as libtorch needs it.
///
/// Open this module in code that mixes tensors and numbers: `.+ .- .* ./` accept any mix of `Tensor`
/// and `float` with the precedence of `+ - * /`; `square`, `softplus` and `addInPlace` replace the methods
/// that hide a Scalar, and `withScalar` lends one to any other call. Hybrid's own assemblies are checked for stray implicit Scalars by a test that reads their IL.
/// (Temporaries that are tensors are safe inside a `torch.NewDisposeScope()`, which holds them.)
module TensorArithmetic =

    // α = 1 for additions, kept in a static so that it is never finalized. Created on first use, after
    // `Engine.init` has loaded libtorch the Hybrid way.
    let private one =
        lazy
            (Engine.init ()
             (1.0).ToScalar())

    /// Calls `f` with a libtorch Scalar holding `c` and disposes of it when `f` returns, e.g.
    /// `withScalar 0.0 t.le` or `withScalar v (fun s -> torch.full (shape, s))`. Keep the Scalar inside `f`.
    let withScalar (c: float) (f: Scalar -> 'T) : 'T =
        use s = c.ToScalar()
        f s

    /// Overloads behind the operators; use the operators instead.
    [<AbstractClass; Sealed>]
    type SafeOps =
        /// a + b
        static member Add(a: Tensor, b: Tensor) : Tensor = a.add (b, one.Value)

        /// a + c
        static member Add(a: Tensor, c: float) : Tensor =
            withScalar c (fun s -> a.add (s, one.Value))

        /// c + a
        static member Add(c: float, a: Tensor) : Tensor =
            withScalar c (fun s -> a.add (s, one.Value))

        /// a − b
        static member Sub(a: Tensor, b: Tensor) : Tensor = a.sub b
        /// a − c
        static member Sub(a: Tensor, c: float) : Tensor = withScalar c a.sub

        /// c − a
        static member Sub(c: float, a: Tensor) : Tensor =
            withScalar c (fun s ->
                use negated = a.neg ()
                negated.add (s, one.Value))

        /// a · b
        static member Mul(a: Tensor, b: Tensor) : Tensor = a.mul b
        /// a · c
        static member Mul(a: Tensor, c: float) : Tensor = withScalar c a.mul
        /// c · a
        static member Mul(c: float, a: Tensor) : Tensor = withScalar c a.mul
        /// a / b
        static member Div(a: Tensor, b: Tensor) : Tensor = a.div b
        /// a / c
        static member Div(a: Tensor, c: float) : Tensor = withScalar c (fun s -> a.div s)

        /// c / a
        static member Div(c: float, a: Tensor) : Tensor =
            withScalar c (fun s ->
                use inverse = a.reciprocal ()
                inverse.mul s)

    let inline private add (_: ^S) (a: ^A) (b: ^B) : Tensor =
        ((^S or ^A or ^B): (static member Add: ^A * ^B -> Tensor) (a, b))

    let inline private sub (_: ^S) (a: ^A) (b: ^B) : Tensor =
        ((^S or ^A or ^B): (static member Sub: ^A * ^B -> Tensor) (a, b))

    let inline private mul (_: ^S) (a: ^A) (b: ^B) : Tensor =
        ((^S or ^A or ^B): (static member Mul: ^A * ^B -> Tensor) (a, b))

    let inline private div (_: ^S) (a: ^A) (b: ^B) : Tensor =
        ((^S or ^A or ^B): (static member Div: ^A * ^B -> Tensor) (a, b))

    /// a + b for tensors and numbers, without a finalizable temporary Scalar.
    let inline (.+) a b = add Unchecked.defaultof<SafeOps> a b

    /// a − b for tensors and numbers, without a finalizable temporary Scalar.
    let inline (.-) a b = sub Unchecked.defaultof<SafeOps> a b

    /// a · b for tensors and numbers, without a finalizable temporary Scalar.
    let inline (.*) a b = mul Unchecked.defaultof<SafeOps> a b

    /// a / b for tensors and numbers, without a finalizable temporary Scalar.
    let inline (./) a b = div Unchecked.defaultof<SafeOps> a b

    /// t², element-wise (TorchSharp's `square()` hides the exponent in a temporary Scalar).
    let square (t: Tensor) : Tensor = t.mul t

    /// Adds `b` into `a` in place and returns `a` (TorchSharp's `add_(b)` hides α = 1 in a temporary Scalar).
    let addInPlace (a: Tensor) (b: Tensor) : Tensor = a.add_ (b, one.Value)

    /// softplus(t) = log(1 + eᵗ), element-wise and stable for large |t| (computed as −log σ(−t): TorchSharp's
    /// `softplus` hides β and its threshold in temporary Scalars).
    let softplus (t: Tensor) : Tensor =
        use negated = t.neg ()
        use logSigmoid = negated.log_sigmoid ()
        logSigmoid.neg ()
