namespace Hybrid.Kernels

open System
open System.Collections.Generic
open System.Linq.Expressions
open System.Numerics
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics
open Hybrid

/// Functions the generated kernels call: scalar ones `System.Math` lacks, and their `Vector<float>` and
/// `Vector<float32>` forms for the vectorised loops (lane by lane through the scalar function where no SIMD form gives
/// the same values). The float32 forms of the scalar functions round the float64 value; the vector forms of one
/// formula are generic over the element type, or share `Lanes`.
type internal KernelMath =
    /// 1 / (1 + e⁻ˣ) (`Pointwise.sigmoid`)
    static member Sigmoid(x: float) : float = Hybrid.Pointwise.sigmoid x

    /// `Sigmoid` in float32.
    static member Sigmoid(x: float32) : float32 =
        float32 (Hybrid.Pointwise.sigmoid (float x))

    /// log(1 + eˣ) (`Pointwise.softplus`)
    static member Softplus(x: float) : float = Hybrid.Pointwise.softplus x

    /// `Softplus` in float32.
    static member Softplus(x: float32) : float32 =
        float32 (Hybrid.Pointwise.softplus (float x))

    /// sign(x) ∈ {−1, 0, 1}.
    static member Sign(x: float) : float = float (Math.Sign x)

    /// `Sign` in float32.
    static member Sign(x: float32) : float32 = float32 (Math.Sign x)

    /// The Heaviside step: 1 where x > 0, ½ at 0, else 0.
    static member Step(x: float) : float =
        if x > 0.0 then 1.0
        elif x = 0.0 then 0.5
        else 0.0

    /// `Step` in float32.
    static member Step(x: float32) : float32 = float32 (KernelMath.Step(float x))

    /// The strict step: 1 where x > 0, else 0 (`KUnary.Positive`).
    static member Positive(x: float) : float = if x > 0.0 then 1.0 else 0.0

    /// `Positive` in float32.
    static member Positive(x: float32) : float32 = if x > 0.0f then 1.0f else 0.0f

    /// `f` applied to every lane of `x`.
    static member inline private Lanes([<InlineIfLambda>] f: 'T -> 'T, x: Vector<'T>) : Vector<'T> =
        let mutable result = x

        for i in 0 .. Vector<'T>.Count - 1 do
            result <- Vector.WithElement(result, i, f (x[i]))

        result

    /// f(x, y) lane by lane.
    static member inline private Lanes2([<InlineIfLambda>] f: 'T -> 'T -> 'T, x: Vector<'T>, y: Vector<'T>) =
        let mutable result = x

        for i in 0 .. Vector<'T>.Count - 1 do
            result <- Vector.WithElement(result, i, f x[i] y[i])

        result

    /// eˣ per lane (`Math.Exp`).
    static member VExp(x: Vector<float>) = KernelMath.Lanes(Math.Exp, x)

    /// eˣ per lane (`MathF.Exp`).
    static member VExp(x: Vector<float32>) = KernelMath.Lanes(MathF.Exp, x)

    /// log x per lane (`Math.Log`).
    static member VLog(x: Vector<float>) = KernelMath.Lanes(Math.Log, x)

    /// log x per lane (`MathF.Log`).
    static member VLog(x: Vector<float32>) = KernelMath.Lanes(MathF.Log, x)

    /// sin x per lane (`Math.Sin`).
    static member VSin(x: Vector<float>) = KernelMath.Lanes(Math.Sin, x)

    /// sin x per lane (`MathF.Sin`).
    static member VSin(x: Vector<float32>) = KernelMath.Lanes(MathF.Sin, x)

    /// cos x per lane (`Math.Cos`).
    static member VCos(x: Vector<float>) = KernelMath.Lanes(Math.Cos, x)

    /// cos x per lane (`MathF.Cos`).
    static member VCos(x: Vector<float32>) = KernelMath.Lanes(MathF.Cos, x)

    /// tanh x per lane (`Math.Tanh`).
    static member VTanh(x: Vector<float>) = KernelMath.Lanes(Math.Tanh, x)

    /// tanh x per lane (`MathF.Tanh`).
    static member VTanh(x: Vector<float32>) = KernelMath.Lanes(MathF.Tanh, x)

    /// `Sigmoid` per lane.
    static member VSigmoid(x: Vector<float>) =
        KernelMath.Lanes((fun (v: float) -> KernelMath.Sigmoid v), x)

    /// `Sigmoid` per lane, float32.
    static member VSigmoid(x: Vector<float32>) =
        KernelMath.Lanes((fun (v: float32) -> KernelMath.Sigmoid v), x)

    /// `Softplus` per lane.
    static member VSoftplus(x: Vector<float>) =
        KernelMath.Lanes((fun (v: float) -> KernelMath.Softplus v), x)

    /// `Softplus` per lane, float32.
    static member VSoftplus(x: Vector<float32>) =
        KernelMath.Lanes((fun (v: float32) -> KernelMath.Softplus v), x)

    /// xʸ per lane (`Math.Pow`).
    static member VPow(x: Vector<float>, y: Vector<float>) : Vector<float> =
        KernelMath.Lanes2((fun a b -> Math.Pow(a, b)), x, y)

    /// xʸ per lane (`MathF.Pow`).
    static member VPow(x: Vector<float32>, y: Vector<float32>) : Vector<float32> =
        KernelMath.Lanes2((fun a b -> MathF.Pow(a, b)), x, y)

    /// √x (correctly rounded, as `Math.Sqrt`).
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VSqrt(x: Vector<'T>) = Vector.SquareRoot x

    /// |x|.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VAbs(x: Vector<'T>) = Vector.Abs x

    /// min(x, y) per lane.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VMin(x: Vector<'T>, y: Vector<'T>) = Vector.Min(x, y)

    /// max(x, y) per lane.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VMax(x: Vector<'T>, y: Vector<'T>) = Vector.Max(x, y)

    /// `Sign` per lane (0 where x is NaN, where the scalar form throws).
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VSign(x: Vector<'T>) : Vector<'T> =
        let zero = Vector<'T>.Zero

        Vector.ConditionalSelect(
            Vector.GreaterThan(x, zero),
            Vector<'T>.One,
            Vector.ConditionalSelect(Vector.LessThan(x, zero), -Vector<'T>.One, zero)
        )

    /// `Step` per lane.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VStep(x: Vector<'T>) : Vector<'T> =
        let zero = Vector<'T>.Zero
        let half = Vector<'T>.One / (Vector<'T>.One + Vector<'T>.One)

        Vector.ConditionalSelect(
            Vector.GreaterThan(x, zero),
            Vector<'T>.One,
            Vector.ConditionalSelect(Vector.Equals(x, zero), half, zero)
        )

    /// `Positive` per lane.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VPositive(x: Vector<'T>) : Vector<'T> =
        Vector.ConditionalSelect(Vector.GreaterThan(x, Vector<'T>.Zero), Vector<'T>.One, Vector<'T>.Zero)

    /// The sum of the lanes.
    [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
    static member VSum(x: Vector<'T>) : 'T = Vector.Sum x

/// The right-hand side of every field for a batch, on arrays of the kernels' element type 'T (float or float32; t
/// is float64 either way): reads the padded fields (ghosts filled), θ and t, writes
/// one value per cell and field into `output`, which has the padded layout too (its ghost entries untouched).
/// `inputs` holds the closure outputs per call site, `data` the forcings' values (both padded layout).
type internal ForwardKernel<'T> =
    delegate of
        padded: 'T[][] * theta: 'T[] * t: float * output: 'T[][] * batch: int * inputs: 'T[][] * data: 'T[][] -> unit

/// The vector–Jacobian product of `ForwardKernel`: given λ (one value per cell and field, padded layout; ghost
/// entries ignored), adds λᵀ∂F/∂(padded fields) into `paddedAdjoint` and λᵀ∂F/∂θ into `thetaAdjoint`.
/// `inputs` holds the closure outputs per call site; λᵀ∂F/∂(closure outputs) is added into `inputAdjoint`;
/// `data` holds the forcings' values (no gradient).
type internal AdjointKernel<'T> =
    delegate of
        padded: 'T[][] *
        theta: 'T[] *
        t: float *
        lambda: 'T[][] *
        paddedAdjoint: 'T[][] *
        thetaAdjoint: 'T[] *
        batch: int *
        inputs: 'T[][] *
        inputAdjoint: 'T[][] *
        data: 'T[][] ->
            unit

/// `ForwardKernel` over the cells whose outer index (x: rows on 2-D grids, cells on 1-D ones) lies in [x0, x1), for
/// every trajectory: calls over disjoint ranges write disjoint cells, so they may run on different threads.
type internal ForwardRows<'T> =
    delegate of
        padded: 'T[][] *
        theta: 'T[] *
        t: float *
        output: 'T[][] *
        batch: int *
        inputs: 'T[][] *
        data: 'T[][] *
        x0: int *
        x1: int ->
            unit

/// One part of the vectorised gather-form `AdjointKernel` (`Codegen.adjointParts`): the core over the rows
/// [x0, x1), or the boundary band within them. Parts write the adjoints of disjoint cells; each adds its scalar
/// parameters' terms into `scalarAdjoint` (at the parameters' θ offsets) and its spatial parameters' terms into
/// `thetaAdjoint`, so parts that run at once take separate `scalarAdjoint` arrays, summed afterwards.
type internal AdjointRows<'T> =
    delegate of
        padded: 'T[][] *
        theta: 'T[] *
        t: float *
        lambda: 'T[][] *
        paddedAdjoint: 'T[][] *
        thetaAdjoint: 'T[] *
        scalarAdjoint: 'T[] *
        batch: int *
        inputs: 'T[][] *
        inputAdjoint: 'T[][] *
        data: 'T[][] *
        x0: int *
        x1: int ->
            unit

/// The exact Jacobian of the right-hand side of a pointwise plan: writes ∂F_f/∂u_g at each cell into
/// `jacobian[(p·n + f)·n + g]`, p the cell's padded index and n the number of fields (every entry, zeros included).
type internal JacobianKernel<'T> =
    delegate of
        padded: 'T[][] * theta: 'T[] * t: float * jacobian: 'T[] * batch: int * inputs: 'T[][] * data: 'T[][] -> unit

/// Generates the generated kernels of a `KernelPlan` as LINQ expression trees compiled to IL once: one loop over
/// trajectories and cells whose body evaluates the whole right-hand side (and, for the adjoint, every partial
/// derivative), with common subexpressions computed once per cell.
///
/// Why expression trees: they are in the base library, compile to IL the JIT optimises like hand-written
/// loops, and are far easier to get right than emitting IL by hand.
///
/// SIMD: on padded 1-D and 2-D grids (`vectorises`) the loops run along the contiguous axis (y on 2-D grids, x
/// on 1-D ones) W cells at a time (`widthOf`: `Vector<T>.Count` for the element type T, `Element`: float, or float32
/// for a Float32 rollout's kernels, with twice the lanes; `Vector512<T>` where 512-bit vectors are accelerated): a
/// stencil read at offset (dx, dy) is one contiguous
/// load at the shifted index, ghost cells come from the padding, and the cells left over at the end of a row run
/// one by one (the scalar tail). The adjoint is in gather form there: each cell reads its neighbours' λ and
/// evaluates the derivatives at those neighbours, instead of scattering into its neighbours' adjoints, which
/// vectors cannot do; only a band of 2·ghost cells along the boundary (whose neighbours are ghosts) scatters,
/// one cell at a time. Two-scale lattices, whose reads across rings would need gathers, and point systems keep
/// the scalar loops and the scatter form.
/// Per thread: whether kernels are built on `Vector<float>` even where 512-bit vectors are accelerated
/// (`Codegen.narrowly`).
type internal NarrowVectors() =
    [<ThreadStatic; DefaultValue>]
    static val mutable private on: bool

    /// This thread's setting.
    static member On
        with get () = NarrowVectors.on
        and set (value: bool) = NarrowVectors.on <- value

[<RequireQualifiedAccess>]
module internal Codegen =

    /// The element type a kernel computes in (`Precision`: float for Float64, float32 for Float32) and the members
    /// its expressions call: scalar maths (`Math` or `MathF`), `Vector<T>`'s operators, loads and stores, and
    /// `KernelMath`'s forms for T. Every emitter below reads the element type from here, so one emitter writes both
    /// precisions.
    type private Element = {
        /// The precision.
        Precision: Precision
        /// float or float32.
        Type: Type
        /// `Vector<T>`.
        Vector: Type
        /// Lanes per vector (W).
        Width: int
        /// `Math` (float) or `MathF` (float32).
        Maths: Type
        VectorAdd: Reflection.MethodInfo
        VectorSub: Reflection.MethodInfo
        VectorMul: Reflection.MethodInfo
        VectorDiv: Reflection.MethodInfo
        VectorNeg: Reflection.MethodInfo
        /// `new Vector<T>(array, index)`: W values from array[index].
        VectorLoad: Reflection.ConstructorInfo
        /// `new Vector<T>(value)`: every lane the same.
        VectorBroadcast: Reflection.ConstructorInfo
        /// `vector.CopyTo(array, index)`.
        VectorStore: Reflection.MethodInfo
    }

    let private elementOf (precision: Precision) : Element =
        let t =
            match precision with
            | Float64 -> typeof<float>
            | Float32 -> typeof<float32>

        let vector = typedefof<Vector<_>>.MakeGenericType t

        let operator (name: string) =
            vector.GetMethod(name, [| vector; vector |])

        {
            Precision = precision
            Type = t
            Vector = vector
            Width =
                (match precision with
                 | Float64 -> Vector<float>.Count
                 | Float32 -> Vector<float32>.Count)
            Maths =
                (match precision with
                 | Float64 -> typeof<Math>
                 | Float32 -> typeof<MathF>)
            VectorAdd = operator "op_Addition"
            VectorSub = operator "op_Subtraction"
            VectorMul = operator "op_Multiply"
            VectorDiv = operator "op_Division"
            VectorNeg = vector.GetMethod("op_UnaryNegation", [| vector |])
            VectorLoad = vector.GetConstructor([| t.MakeArrayType(); typeof<int> |])
            VectorBroadcast = vector.GetConstructor([| t |])
            VectorStore = vector.GetMethod("CopyTo", [| t.MakeArrayType(); typeof<int> |])
        }

    let private float64Element = elementOf Float64
    let private float32Element = elementOf Float32

    /// The element of precision `p`.
    let private element (p: Precision) =
        match p with
        | Float64 -> float64Element
        | Float32 -> float32Element

    /// The precision of element type 'T (float or float32; raises for others).
    let precisionOf<'T> () : Precision =
        if typeof<'T> = typeof<float> then
            Float64
        elif typeof<'T> = typeof<float32> then
            Float32
        else
            invalidArg "T" $"The generated kernels compute in float or float32, not {typeof<'T>.Name}."


    /// The scalar maths function `name` of the element type (`Math.Exp` or `MathF.Exp`, …).
    let private math (el: Element) (name: string) =
        el.Maths.GetMethod(
            name,
            Array.create
                (if name = "Pow" || name = "Min" || name = "Max" then
                     2
                 else
                     1)
                el.Type
        )

    /// `KernelMath.name` for the element type: its generic form made for T, or the overload on T or `Vector<T>`
    /// (KernelMath is internal, so its members are too: look them up as non-public).
    let private helper (el: Element) (name: string) =
        typeof<KernelMath>
            .GetMethods(
                Reflection.BindingFlags.Static
                ||| Reflection.BindingFlags.Public
                ||| Reflection.BindingFlags.NonPublic
            )
        |> Array.filter (fun m -> m.Name = name)
        |> Array.pick (fun m ->
            if m.IsGenericMethodDefinition then
                Some(m.MakeGenericMethod el.Type)
            else
                let p = (m.GetParameters()).[0].ParameterType
                if p = el.Type || p = el.Vector then Some m else None)

    /// c as a constant of the element type.
    let private constantOf (el: Element) (c: float) : Expression =
        match el.Precision with
        | Float64 -> Expression.Constant(c)
        | Float32 -> Expression.Constant(float32 c)

    /// Whether 512-bit vectors are accelerated while `Vector<float>` is 256-bit (its width on .NET 10 even with
    /// AVX-512, unless DOTNET_MaxVectorTBitWidth raises it).
    let private accelerated = Vector512.IsHardwareAccelerated && Vector<float>.Count = 4

    /// Whether kernels built now on this thread run `Vector512<T>` (8 float64 or 16 float32 lanes) instead of
    /// `Vector<T>`: where `accelerated`, unless inside `narrowly`. Read when a kernel or a stepper is built.
    let internal wide () = accelerated && not NarrowVectors.On

    /// Lanes per vector (W) of the kernels of precision `p` built now on this thread.
    let widthOf (p: Precision) =
        if wide () then
            64
            / (match p with
               | Float64 -> 8
               | Float32 -> 4)
        else
            (element p).Width

    /// Lanes per vector (W) of float64 kernels built now on this thread.
    let internal width () = widthOf Float64

    /// `f ()` with the kernels and steppers it builds on this thread running `Vector<T>` (tests and the kernel
    /// bench compare the two widths).
    let internal narrowly (f: unit -> 'a) : 'a =
        let before = NarrowVectors.On
        NarrowVectors.On <- true

        try
            f ()
        finally
            NarrowVectors.On <- before

    /// A generic method of a static class by name, for element type `t`, picked by its parameter count and by
    /// `fits` on its parameter types.
    let private genericMethod (owner: Type) (name: string) (arity: int) (fits: Type[] -> bool) (t: Type) =
        owner.GetMethods()
        |> Array.find (fun m ->
            m.Name = name
            && m.IsGenericMethodDefinition
            && m.GetParameters().Length = arity
            && fits (m.GetParameters() |> Array.map _.ParameterType))
        |> fun m -> m.MakeGenericMethod(t)

    let private anyTypes (_: Type[]) = true

    /// The vector type of the vectorised loops, its operators, and how the generated code loads, broadcasts and
    /// stores vectors and calls the `KernelMath` vector helpers.
    type private VectorOps = {
        Type: Type
        Add: Reflection.MethodInfo
        Sub: Reflection.MethodInfo
        Mul: Reflection.MethodInfo
        Div: Reflection.MethodInfo
        Neg: Reflection.MethodInfo
        /// W values from array[index].
        Load: Expression -> Expression -> Expression
        /// The value in every lane.
        Broadcast: Expression -> Expression
        /// The statement array[index … index + W) = vector (vector, array, index).
        Store: Expression -> Expression -> Expression -> Expression
        /// `KernelMath.V<name>` of vector arguments.
        Call: string -> Expression list -> Expression
        /// The sum of the lanes, an element.
        Sum: Expression -> Expression
    }

    /// The operations on vector type `t`: its operators, and the given ways to load, broadcast, store, call the
    /// helpers and sum.
    let private opsOf (t: Type) load broadcast store call sum = {
        Type = t
        Add = t.GetMethod("op_Addition", [| t; t |])
        Sub = t.GetMethod("op_Subtraction", [| t; t |])
        Mul = t.GetMethod("op_Multiply", [| t; t |])
        Div = t.GetMethod("op_Division", [| t; t |])
        Neg = t.GetMethod("op_UnaryNegation", [| t |])
        Load = load
        Broadcast = broadcast
        Store = store
        Call = call
        Sum = sum
    }

    /// `Vector<T>` at the runtime's width.
    let private narrowOpsOf (el: Element) =
        opsOf
            el.Vector
            (fun array index -> Expression.New(el.VectorLoad, array, index))
            (fun value -> Expression.New(el.VectorBroadcast, value))
            (fun value array index -> Expression.Call(value, el.VectorStore, array, index))
            (fun name args -> Expression.Call(helper el ("V" + name), args))
            (fun x -> Expression.Call(helper el "VSum", x))

    /// `Vector512<T>`; the `KernelMath` helpers (written for 256-bit `Vector<T>`) run on each half, so every lane gets
    /// the value the narrow loops give it.
    let private wideOpsOf (el: Element) =
        let t = el.Type
        let half = typedefof<Vector256<_>>.MakeGenericType t
        let load = genericMethod typeof<Vector512> "Create" 2 (fun ps -> ps[0].IsArray) t
        let broadcast = typeof<Vector512>.GetMethod("Create", [| t |])
        let join = typeof<Vector512>.GetMethod("Create", [| half; half |])
        let store = genericMethod typeof<Vector512> "CopyTo" 3 anyTypes t
        let lower = genericMethod typeof<Vector512> "GetLower" 1 anyTypes t
        let upper = genericMethod typeof<Vector512> "GetUpper" 1 anyTypes t
        let toVector = genericMethod typeof<Vector256> "AsVector" 1 anyTypes t
        let fromVector = genericMethod typeof<Vector256> "AsVector256" 1 anyTypes t
        let sum = genericMethod typeof<Vector512> "Sum" 1 anyTypes t

        /// `KernelMath.V<name>` on the halves picked by `part` of every argument.
        let onHalf (name: string) (args: Expression list) (part: Reflection.MethodInfo) =
            let halves =
                args
                |> List.map (fun a -> Expression.Call(toVector, Expression.Call(part, a)) :> Expression)

            Expression.Call(fromVector, Expression.Call(helper el ("V" + name), halves)) :> Expression

        opsOf
            (typedefof<Vector512<_>>.MakeGenericType t)
            (fun array index -> Expression.Call(load, array, index))
            (fun value -> Expression.Call(broadcast, value))
            (fun value array index -> Expression.Call(store, value, array, index))
            (fun name args -> Expression.Call(join, onHalf name args lower, onHalf name args upper))
            (fun x -> Expression.Call(sum, x))

    let private narrowOps = [| narrowOpsOf float64Element; narrowOpsOf float32Element |]
    let private wideOps = [| wideOpsOf float64Element; wideOpsOf float32Element |]

    /// The vector operations of kernels of element `el` built now on this thread (`wide`).
    let private vectorOps (el: Element) =
        let i =
            match el.Precision with
            | Float64 -> 0
            | Float32 -> 1

        if wide () then wideOps[i] else narrowOps[i]


    let private intConst (i: int) = Expression.Constant(i) :> Expression
    let private add (a: Expression) (b: Expression) = Expression.Add(a, b) :> Expression
    let private mul (a: Expression) (b: Expression) = Expression.Multiply(a, b) :> Expression

    /// `while (condition) body`
    let private whileLoop (condition: Expression) (body: Expression) : Expression =
        let exit = Expression.Label("exit")
        Expression.Loop(Expression.IfThenElse(condition, body, Expression.Break(exit)), exit) :> Expression

    /// `for (v = 0; v < count; v++) body`
    let private loop (v: ParameterExpression) (count: Expression) (body: Expression) : Expression =
        Expression.Block(
            Expression.Assign(v, intConst 0),
            whileLoop (Expression.LessThan(v, count)) (Expression.Block(body, Expression.PreIncrementAssign(v)))
        )
        :> Expression

    /// `for (v = lo; v < hi; v++) body`, bounds as expressions.
    let private rangeOf (v: ParameterExpression) (lo: Expression) (hi: Expression) (body: Expression) : Expression =
        Expression.Block(
            Expression.Assign(v, lo),
            whileLoop (Expression.LessThan(v, hi)) (Expression.Block(body, Expression.PreIncrementAssign(v)))
        )
        :> Expression

    /// `for (v = lo; v < hi; v++) body`
    let private range (v: ParameterExpression) (lo: int) (hi: int) (body: Expression) : Expression =
        rangeOf v (intConst lo) (intConst hi) body

    let private maxInt = typeof<Math>.GetMethod("Max", [| typeof<int>; typeof<int> |])
    let private minInt = typeof<Math>.GetMethod("Min", [| typeof<int>; typeof<int> |])

    /// max(a, b) of ints.
    let private atLeast (a: Expression) (b: Expression) =
        Expression.Call(maxInt, a, b) :> Expression

    /// min(a, b) of ints.
    let private atMost (a: Expression) (b: Expression) =
        Expression.Call(minInt, a, b) :> Expression

    /// v over [lo, hi): W at a time with `vectorBody` while a whole vector fits, then one at a time with
    /// `scalarBody` (the tail).
    let private vectorRange
        (width: int)
        (v: ParameterExpression)
        (lo: Expression)
        (hi: Expression)
        (vectorBody: Expression)
        (scalarBody: Expression)
        : Expression =
        Expression.Block(
            Expression.Assign(v, lo),
            whileLoop
                (Expression.LessThanOrEqual(v, Expression.Subtract(hi, intConst width)))
                (Expression.Block(vectorBody, Expression.AddAssign(v, intConst width))),
            whileLoop (Expression.LessThan(v, hi)) (Expression.Block(scalarBody, Expression.PreIncrementAssign(v)))
        )
        :> Expression

    /// One local per array of `jagged` holding `jagged[i]`, and the assignments that load them (before the
    /// loops, so the loop body indexes flat arrays).
    let private hoist (el: Element) (jagged: ParameterExpression) (count: int) =
        let locals =
            Array.init count (fun f -> Expression.Variable(el.Type.MakeArrayType(), $"{jagged.Name}{f}"))

        let loads =
            locals
            |> Array.mapi (fun f v -> Expression.Assign(v, Expression.ArrayIndex(jagged, intConst f)) :> Expression)

        locals, loads

    /// A jagged-array parameter of a kernel and its arrays hoisted into locals.
    type private Arrays = {
        Parameter: ParameterExpression
        Locals: ParameterExpression[]
        Loads: Expression[]
    }

    let private arrays (el: Element) (name: string) (count: int) =
        let p = Expression.Parameter(el.Type.MakeArrayType().MakeArrayType(), name)
        let locals, loads = hoist el p count

        {
            Parameter = p
            Locals = locals
            Loads = loads
        }

    /// What both kernels read: the padded fields, θ, t, the batch size, the closure outputs and the forcing
    /// values (the preamble common to `forward` and `adjoint`).
    type private Reads = {
        Padded: Arrays
        Theta: ParameterExpression
        T: ParameterExpression
        Batch: ParameterExpression
        Inputs: Arrays
        Data: Arrays
        /// One local per scalar parameter (null for spatial ones, read per cell from θ).
        ThetaLocals: ParameterExpression[]
        /// The element type the kernel computes in.
        El: Element
    }

    let private reads (el: Element) (plan: KernelPlan) : Reads = {
        Padded = arrays el "padded" plan.Fields.Length
        Theta = Expression.Parameter(el.Type.MakeArrayType(), "theta")
        T = Expression.Parameter(typeof<float>, "t")
        Batch = Expression.Parameter(typeof<int>, "batch")
        Inputs = arrays el "inputs" (plan.Sites.Length + plan.ParamCopies.Length)
        Data = arrays el "data" plan.Forcings.Length
        ThetaLocals =
            plan.Params
            |> Array.mapi (fun i name ->
                if plan.ParamSpatial[i] then
                    null
                else
                    Expression.Variable(el.Type, name))
        El = el
    }

    /// The assignments that load the scalar parameters into their locals.
    let private loadTheta (plan: KernelPlan) (r: Reads) =
        r.ThetaLocals
        |> Array.mapi (fun i v ->
            if isNull v then
                None
            else
                Some(Expression.Assign(v, Expression.ArrayIndex(r.Theta, intConst plan.ParamOffsets[i])) :> Expression))
        |> Array.choose id

    /// The loop variables of one cell: trajectory `B`, cell (`Ix`, `Iy`) of the ring being looped over (`Fast`:
    /// the fast ring of a two-scale lattice, site n = `Ix`), and `Pbase`, the cell's index in that ring's
    /// padded arrays.
    type private Cell = {
        B: ParameterExpression
        Ix: ParameterExpression
        Iy: ParameterExpression
        Pbase: ParameterExpression
        Fast: bool
    }

    let private newCell (fast: bool) = {
        B = Expression.Variable(typeof<int>, "b")
        Ix = Expression.Variable(typeof<int>, "ix")
        Iy = Expression.Variable(typeof<int>, "iy")
        Pbase = Expression.Variable(typeof<int>, "pbase")
        Fast = fast
    }

    /// Vector values a vectorised kernel computes once, before its loops: constants, scalar parameters and t in
    /// every lane, the lane numbers 0 … W − 1, and accumulators.
    type private Lanes(r: Reads) =
        let ops = vectorOps r.El
        let locals = ResizeArray<ParameterExpression>()
        let inits = ResizeArray<Expression>()
        let constants = Dictionary<int64, Expression>()
        let parameters = Dictionary<int, Expression>()
        let mutable time: Expression = null
        let mutable numbers: Expression = null

        let hoist (name: string) (value: Expression) =
            let v = Expression.Variable(ops.Type, name)
            locals.Add v
            inits.Add(Expression.Assign(v, value))
            v

        let broadcast (name: string) (value: Expression) =
            hoist name (ops.Broadcast value) :> Expression

        /// c in every lane (keyed by its bits, so −0 and NaN stay themselves).
        member _.Constant(c: float) =
            let key = BitConverter.DoubleToInt64Bits c

            match constants.TryGetValue key with
            | true, v -> v
            | _ ->
                let v = broadcast "c" (constantOf r.El c)
                constants[key] <- v
                v

        /// Scalar parameter i in every lane.
        member _.Param(i: int) =
            match parameters.TryGetValue i with
            | true, v -> v
            | _ ->
                let theta = r.ThetaLocals[i]
                let v = broadcast theta.Name theta
                parameters[i] <- v
                v

        /// t in every lane.
        member _.Time =
            if isNull time then
                time <- broadcast "t" r.T

            time

        /// The lane numbers 0, 1, …, W − 1.
        member _.Numbers =
            if isNull numbers then
                numbers <-
                    let count = widthOf r.El.Precision

                    let numbers =
                        match r.El.Precision with
                        | Float64 -> Expression.Constant(Array.init count float)
                        | Float32 -> Expression.Constant(Array.init count float32)

                    hoist "lanes" (ops.Load numbers (intConst 0)) :> Expression

            numbers

        /// A vector accumulator, zero at the start of the kernel.
        member _.Accumulator(name: string) =
            hoist name (Expression.Default(ops.Type))

        /// The locals.
        member _.Locals = locals :> seq<_>

        /// Their assignments (after `loadTheta`: the parameters' broadcasts read its locals).
        member _.Inits = inits :> seq<_>

    /// Emits kernel expressions into a statement list, one local per distinct non-leaf subexpression: scalar
    /// values, or with `lanes` vectors of W consecutive cells along the contiguous axis (reads as contiguous
    /// loads). `EmitAt` evaluates an expression at a neighbouring cell (the gather-form adjoint).
    type private Emitter(plan: KernelPlan, r: Reads, cell: Cell, lanes: Lanes option) =
        let vector = lanes.IsSome
        let el = r.El
        let ops = vectorOps el
        let valueType = if vector then ops.Type else el.Type
        let locals = ResizeArray<ParameterExpression>()
        let statements = ResizeArray<Expression>()
        let memo = Dictionary<KExpr * int * int, Expression>(HashIdentity.Structural)

        let loads =
            Dictionary<ParameterExpression * int * int, Expression>(HashIdentity.Structural)

        let strideX = if cell.Fast then 1 else plan.Py
        // The axis the vectors run along: y on 2-D grids, x otherwise.
        let contiguous = if plan.Grid.Dims >= 2 then 1 else 0

        let bind (value: Expression) =
            let v = Expression.Variable(valueType)
            locals.Add v
            statements.Add(Expression.Assign(v, value))
            v :> Expression

        let constant (c: float) =
            match lanes with
            | Some l -> l.Constant c
            | None -> constantOf el c

        let binary (kind: ExpressionType) (operator: Reflection.MethodInfo) =
            fun (x: Expression) (y: Expression) ->
                if vector then
                    Expression.MakeBinary(kind, x, y, false, operator) :> Expression
                else
                    Expression.MakeBinary(kind, x, y) :> Expression

        let plus (x: Expression) (y: Expression) = binary ExpressionType.Add ops.Add x y

        let minus (x: Expression) (y: Expression) =
            binary ExpressionType.Subtract ops.Sub x y

        let times (x: Expression) (y: Expression) =
            binary ExpressionType.Multiply ops.Mul x y

        let over (x: Expression) (y: Expression) =
            binary ExpressionType.Divide ops.Div x y

        /// Whether the value of `e` depends on the cell other than through field reads (closure outputs,
        /// forcings, coordinates, spatial parameters): then evaluating it at a neighbour reads elsewhere.
        let rec positional (e: KExpr) =
            match e with
            | KInput _
            | KData _
            | KCoord _ -> true
            | KParam i -> plan.ParamSpatial[i]
            | KConst _
            | KRead _
            | KParamAt _
            | KTime -> false
            | KPowInt(a, _)
            | KUn(_, a) -> positional a
            | KBin(_, a, b) -> positional a || positional b

        /// The padded index of the cell (sx, sy) away from the current one (same ring).
        let at (sx: int) (sy: int) =
            let o = sx * strideX + sy

            if o = 0 then
                cell.Pbase :> Expression
            else
                add cell.Pbase (intConst o)

        let load (array: Expression) (index: Expression) =
            if vector then
                bind (ops.Load array index)
            else
                bind (Expression.ArrayIndex(array, index))

        /// Whether the values are vectors.
        member _.IsVector = vector

        /// Index into field `f`'s padded array of a read at offset (dx, dy) from the current cell; across the
        /// rings of a two-scale lattice, from the parent site n / J (fast loop) or the first child site k·J
        /// (slow loop).
        member _.ReadIndex(f: int, dx: int, dy: int) =
            match plan.Fast[f], cell.Fast with
            | fastField, fastLoop when fastField = fastLoop -> add cell.Pbase (intConst (dx * strideX + dy))
            | true, _ ->
                add
                    (add (mul cell.B (intConst plan.FastPaddedCells)) (mul cell.Ix (intConst plan.FastSites)))
                    (intConst (plan.FastGhost + dx))
            | false, _ ->
                add
                    (add (mul cell.B (intConst plan.PaddedCells)) (Expression.Divide(cell.Ix, intConst plan.FastSites)))
                    (intConst (plan.Ghost + dx))

        /// Index into a slow-grid array (a parameter copy) of the cell (dx, dy) away from the current one.
        member _.At(dx: int, dy: int) = at dx dy

        /// The interior index ix·Ny + iy of the current (slow) cell: where spatial parameters keep its value.
        member _.CellIndex = add (mul cell.Ix (intConst plan.Ny)) cell.Iy

        /// The value of `e` at the current cell.
        member this.Emit(e: KExpr) : Expression = this.EmitAt(e, 0, 0)

        /// The value of `e` with its closure outputs, forcings, coordinates and spatial parameters taken at the
        /// cell (sx, sy) away from the current one; field reads and parameter-copy reads keep their offsets from
        /// the current cell.
        member this.EmitAt(e: KExpr, sx: int, sy: int) : Expression =
            let key = if positional e then (e, sx, sy) else (e, 0, 0)

            match memo.TryGetValue key with
            | true, v -> v
            | _ ->
                let value =
                    match e with
                    | KConst c -> constant c
                    | KParam i when plan.ParamSpatial[i] ->
                        load r.Theta (add (intConst (plan.ParamOffsets[i] + sx * plan.Ny + sy)) this.CellIndex)
                    | KParam i ->
                        if vector then
                            lanes.Value.Param i
                        else
                            r.ThetaLocals[i] :> Expression
                    | KTime -> if vector then lanes.Value.Time else r.T :> Expression
                    | KInput site -> load r.Inputs.Locals[site] (at sx sy)
                    | KData forcing -> load r.Data.Locals[forcing] (at sx sy)
                    | KRead(f, dx, dy) -> load r.Padded.Locals[f] (this.ReadIndex(f, dx, dy))
                    | KParamAt(c, dx, dy) -> load r.Inputs.Locals[plan.Sites.Length + c] (at dx dy)
                    | KCoord(axis, shift) ->
                        let a = plan.Grid.Axes[axis]
                        let s = if axis = 0 then sx else sy
                        let i = if axis = 0 then cell.Ix else cell.Iy
                        let i = if s = 0 then i :> Expression else add i (intConst s)
                        let index = Expression.Convert(i, el.Type) :> Expression
                        let first = a.Lo + 0.5 * a.Spacing + shift

                        let centre =
                            Expression.Add(constantOf el first, Expression.Multiply(index, constantOf el a.Spacing))

                        if vector && axis = contiguous then
                            // Lane k holds cell i + k: (i + k) is exact (below 2²⁴ cells in float32), so each lane equals
                            // the scalar value.
                            let l = lanes.Value
                            let indices = plus (ops.Broadcast index) l.Numbers
                            bind (plus (l.Constant first) (times indices (l.Constant a.Spacing)))
                        elif vector then
                            bind (ops.Broadcast centre)
                        else
                            bind centre
                    | KPowInt(a, n) ->
                        let x = this.EmitAt(a, sx, sy)
                        let m = abs n

                        let positive =
                            if m <= 4 then
                                List.replicate m x |> List.reduce times
                            elif vector then
                                ops.Call "Pow" [ x; constant (float m) ]
                            else
                                Expression.Call(math el "Pow", x, constant (float m)) :> Expression

                        bind (if n < 0 then over (constant 1.0) positive else positive)
                    | KUn(op, a) ->
                        let x = this.EmitAt(a, sx, sy)

                        let call (scalar: Reflection.MethodInfo) (name: string) =
                            if vector then
                                ops.Call name [ x ]
                            else
                                Expression.Call(scalar, x) :> Expression

                        bind (
                            match op with
                            | KUnary.Neg ->
                                if vector then
                                    Expression.Negate(x, ops.Neg) :> Expression
                                else
                                    Expression.Negate(x) :> Expression
                            | KUnary.Fn Hybrid.Fn.Exp -> call (math el "Exp") "Exp"
                            | KUnary.Fn Hybrid.Fn.Log -> call (math el "Log") "Log"
                            | KUnary.Fn Hybrid.Fn.Sqrt -> call (math el "Sqrt") "Sqrt"
                            | KUnary.Fn Hybrid.Fn.Abs -> call (math el "Abs") "Abs"
                            | KUnary.Fn Hybrid.Fn.Sin -> call (math el "Sin") "Sin"
                            | KUnary.Fn Hybrid.Fn.Cos -> call (math el "Cos") "Cos"
                            | KUnary.Fn Hybrid.Fn.Tanh -> call (math el "Tanh") "Tanh"
                            | KUnary.Fn Hybrid.Fn.Sigmoid -> call (helper el "Sigmoid") "Sigmoid"
                            | KUnary.Fn Hybrid.Fn.Softplus -> call (helper el "Softplus") "Softplus"
                            | KUnary.Sign -> call (helper el "Sign") "Sign"
                            | KUnary.Step -> call (helper el "Step") "Step"
                            | KUnary.Positive -> call (helper el "Positive") "Positive"
                        )
                    | KBin(op, a, b) ->
                        let x = this.EmitAt(a, sx, sy)
                        let y = this.EmitAt(b, sx, sy)

                        let call (scalar: Reflection.MethodInfo) (name: string) =
                            if vector then
                                ops.Call name [ x; y ]
                            else
                                Expression.Call(scalar, x, y) :> Expression

                        bind (
                            match op with
                            | KBinary.Add -> plus x y
                            | KBinary.Sub -> minus x y
                            | KBinary.Mul -> times x y
                            | KBinary.Div -> over x y
                            | KBinary.Pow -> call (math el "Pow") "Pow"
                            | KBinary.Min -> call (math el "Min") "Min"
                            | KBinary.Max -> call (math el "Max") "Max"
                        )

                memo[key] <- value
                value

        /// `array` at the cell (sx, sy) away from the current one (loaded once per cell body).
        member _.LoadAt(array: ParameterExpression, sx: int, sy: int) =
            let key = (array, sx, sy)

            match loads.TryGetValue key with
            | true, v -> v
            | _ ->
                let v = load array (at sx sy)
                loads[key] <- v
                v

        /// a·b, bound to a local.
        member _.Product(a: Expression, b: Expression) = bind (times a b)

        /// The sum of `terms` (in order), bound to a local.
        member _.Sum(terms: Expression list) = bind (List.reduce plus terms)

        /// The statement array[index] += value (W entries from index for vectors).
        member _.AddInto(array: Expression, index: Expression, value: Expression) : Expression =
            if vector then
                ops.Store (plus (ops.Load array index) value) array index
            else
                Expression.AddAssign(Expression.ArrayAccess(array, index), value) :> Expression

        /// The statement array[index] = value (W entries from index for vectors).
        member _.Store(array: Expression, index: Expression, value: Expression) : Expression =
            if vector then
                ops.Store value array index
            else
                Expression.Assign(Expression.ArrayAccess(array, index), value) :> Expression

        /// The statement accumulator += value.
        member _.Accumulate(accumulator: ParameterExpression, value: Expression) : Expression =
            Expression.Assign(accumulator, plus accumulator value) :> Expression

        /// Adds a statement (after the locals it uses were bound).
        member _.Add(s: Expression) = statements.Add s

        /// A local that is not memoised (e.g. λ of a field at this cell).
        member _.Bind(value: Expression) = bind value

        /// The per-cell body: its locals and statements.
        member _.Body = Expression.Block(locals, statements) :> Expression

    /// pbase = b·P + (ix + g)·Py + (iy + gy) for a cell of the slow ring.
    let private setBase (plan: KernelPlan) (cell: Cell) =
        let gy = if plan.Grid.Dims >= 2 then plan.Ghost else 0

        Expression.Assign(
            cell.Pbase,
            add
                (add
                    (mul cell.B (intConst plan.PaddedCells))
                    (mul (add cell.Ix (intConst plan.Ghost)) (intConst plan.Py)))
                (add cell.Iy (intConst gy))
        )
        :> Expression

    /// The kernel body: θ loaded into locals, then for each ring that has equations (slow, then fast),
    /// `for b, for ix, for iy: <cell body>` over that ring's cells, then `epilogue`. `cellBody` gets the
    /// cell and the indices into `plan.Rhs` of the equations evaluated on its ring. Scalar loops.
    let private kernelBody
        (plan: KernelPlan)
        (r: Reads)
        (hoisted: Arrays list)
        (cellBody: Emitter -> Cell -> int list -> unit)
        (epilogue: Expression list)
        =
        let slow = newCell false

        let cellOf fast =
            if fast then { slow with Fast = true } else slow

        let ringLoops (fast: bool) =
            let equations =
                [ 0 .. plan.Rhs.Length - 1 ] |> List.filter (fun i -> plan.RhsFast[i] = fast)

            if equations.IsEmpty then
                None
            else
                let cell = cellOf fast

                let setBase =
                    if fast then
                        // pbase = b·P + ix + g on the fast ring.
                        Expression.Assign(
                            cell.Pbase,
                            add
                                (add
                                    (mul cell.B (intConst plan.FastPaddedCells))
                                    (add cell.Ix (intConst plan.FastGhost)))
                                cell.Iy
                        )
                        :> Expression
                    else
                        setBase plan cell

                let nx, ny = if fast then plan.FastCells, 1 else plan.Nx, plan.Ny
                let em = Emitter(plan, r, cell, None)
                cellBody em cell equations
                let inner = Expression.Block(setBase, em.Body) :> Expression
                Some(loop cell.B r.Batch (loop cell.Ix (intConst nx) (loop cell.Iy (intConst ny) inner)))

        let scalars = r.ThetaLocals |> Array.filter (isNull >> not)

        let body =
            Expression.Block(
                Array.append [| slow.B; slow.Ix; slow.Iy; slow.Pbase |] scalars,
                Array.concat [
                    loadTheta plan r
                    [ false; true ] |> List.choose ringLoops |> Array.ofList
                    Array.ofList epilogue
                    [| Expression.Empty() :> Expression |]
                ]
            )

        Expression.Block(
            hoisted |> Seq.collect _.Locals,
            Seq.append (hoisted |> Seq.collect _.Loads) [ body :> Expression ]
        )
        :> Expression

    /// Whether `forward` and `adjoint` vectorise a plan's loops: padded 1-D and 2-D grids, not point systems
    /// and not two-scale lattices (whose reads across rings would need gathers).
    let vectorises (plan: KernelPlan) =
        plan.FastSites = 0 && plan.Grid.Dims >= 1

    /// Loops over the cells (ix, iy) ∈ [x0, x1) × [y0, y1) of every trajectory (y ignored on 1-D grids; x bounds
    /// are expressions, e.g. a kernel's row arguments), along
    /// the contiguous axis W cells at a time with a fresh `body true`, the rest one by one with a fresh
    /// `body false`; each body is preceded by setting pbase.
    let private vectorLoops
        (el: Element)
        (plan: KernelPlan)
        (cell: Cell)
        (batch: Expression)
        (x0: Expression, x1: Expression)
        (y0: int, y1: int)
        (body: bool -> Expression)
        =
        let withBase (vector: bool) =
            Expression.Block(setBase plan cell, body vector) :> Expression

        let inner =
            if plan.Grid.Dims >= 2 then
                rangeOf
                    cell.Ix
                    x0
                    x1
                    (vectorRange
                        (widthOf el.Precision)
                        cell.Iy
                        (intConst y0)
                        (intConst y1)
                        (withBase true)
                        (withBase false))
            else
                Expression.Block(
                    Expression.Assign(cell.Iy, intConst 0),
                    vectorRange (widthOf el.Precision) cell.Ix x0 x1 (withBase true) (withBase false)
                )
                :> Expression

        loop cell.B batch inner

    /// A vectorised kernel's body: the arrays and θ in locals, the lanes' vectors, then `statements`.
    let private vectorBody
        (plan: KernelPlan)
        (r: Reads)
        (cell: Cell)
        (lanes: Lanes)
        (hoisted: Arrays list)
        (variables: ParameterExpression seq)
        (statements: Expression seq)
        =
        let scalars = r.ThetaLocals |> Array.filter (isNull >> not)

        Expression.Block(
            Seq.concat [
                hoisted |> Seq.collect _.Locals
                Seq.ofList [ cell.B; cell.Ix; cell.Iy; cell.Pbase ]
                Seq.ofArray scalars
                lanes.Locals
                variables
            ],
            Seq.concat [
                hoisted |> Seq.collect _.Loads
                Seq.ofArray (loadTheta plan r)
                lanes.Inits
                statements
                Seq.singleton (Expression.Empty() :> Expression)
            ]
        )
        :> Expression

    let private forwardLambda<'T> (r: Reads) (output: Arrays) (body: Expression) =
        Expression
            .Lambda<ForwardKernel<'T>>(
                body,
                [|
                    r.Padded.Parameter
                    r.Theta
                    r.T
                    output.Parameter
                    r.Batch
                    r.Inputs.Parameter
                    r.Data.Parameter
                |]
            )
            .Compile()

    /// The row-range parameters x0, x1 of `ForwardRows` and `AdjointRows`.
    let private rowBounds () =
        Expression.Parameter(typeof<int>, "x0"), Expression.Parameter(typeof<int>, "x1")

    let private requireVectorised (plan: KernelPlan) (what: string) =
        if not (vectorises plan) then
            invalidArg "plan" $"Codegen.{what} takes plans whose loops vectorise (padded 1-D and 2-D grids)."

    /// Compiles the vectorised right-hand side of every field over a range of rows (`vectorises` plans only).
    let forwardRows<'T> (plan: KernelPlan) : ForwardRows<'T> =
        requireVectorised plan "forwardRows"
        let r = reads (element (precisionOf<'T> ())) plan
        let output = arrays r.El "output" plan.Rhs.Length
        let x0, x1 = rowBounds ()
        let lanes = Lanes r
        let cell = newCell false

        let body (vector: bool) =
            let em = Emitter(plan, r, cell, (if vector then Some lanes else None))

            for f in 0 .. plan.Rhs.Length - 1 do
                em.Add(em.Store(output.Locals[f], cell.Pbase, em.Emit plan.Rhs[f]))

            em.Body

        let loops = vectorLoops r.El plan cell r.Batch (x0, x1) (0, plan.Ny) body

        let kernel =
            vectorBody plan r cell lanes [ r.Padded; output; r.Inputs; r.Data ] Seq.empty (Seq.singleton loops)

        Expression
            .Lambda<ForwardRows<'T>>(
                kernel,
                [|
                    r.Padded.Parameter
                    r.Theta
                    r.T
                    output.Parameter
                    r.Batch
                    r.Inputs.Parameter
                    r.Data.Parameter
                    x0
                    x1
                |]
            )
            .Compile()

    /// Compiles the right-hand side of every field; `vectorise` picks the SIMD loops where the plan allows them
    /// (`vectorises`), else scalar loops.
    let forwardWith<'T> (vectorise: bool) (plan: KernelPlan) : ForwardKernel<'T> =
        if vectorise && vectorises plan then
            let rows = forwardRows<'T> plan
            let nx = plan.Nx

            ForwardKernel<'T>(fun padded theta t output batch inputs data ->
                rows.Invoke(padded, theta, t, output, batch, inputs, data, 0, nx))
        else
            let r = reads (element (precisionOf<'T> ())) plan
            let output = arrays r.El "output" plan.Rhs.Length

            kernelBody
                plan
                r
                [ r.Padded; output; r.Inputs; r.Data ]
                (fun em cell equations ->
                    for f in equations do
                        let value = em.Emit plan.Rhs[f]
                        em.Add(Expression.Assign(Expression.ArrayAccess(output.Locals[f], cell.Pbase), value)))
                []
            |> forwardLambda<'T> r output

    /// Compiles the right-hand side of every field (SIMD loops where `vectorises` allows them).
    let forward<'T> (plan: KernelPlan) : ForwardKernel<'T> = forwardWith<'T> true plan

    /// The arrays of an adjoint kernel besides `Reads`.
    type private AdjointArrays = {
        Lambda: Arrays
        PaddedAdjoint: Arrays
        ThetaAdjoint: ParameterExpression
        InputAdjoint: Arrays
    }

    let private adjointArrays (el: Element) (plan: KernelPlan) = {
        Lambda = arrays el "lambda" plan.Rhs.Length
        PaddedAdjoint = arrays el "paddedAdjoint" plan.Fields.Length
        ThetaAdjoint = Expression.Parameter(el.Type.MakeArrayType(), "thetaAdjoint")
        InputAdjoint = arrays el "inputAdjoint" (plan.Sites.Length + plan.ParamCopies.Length)
    }

    /// The adjoint array of read target `target` (`KernelPlan.readTargets`: a field's padded adjoint, or a
    /// parameter copy's entry of `InputAdjoint`, after the sites'), and the index there of the read at (dx, dy).
    let private adjointTarget (plan: KernelPlan) (a: AdjointArrays) (em: Emitter) (target: int) (dx: int) (dy: int) =
        if target < plan.Fields.Length then
            a.PaddedAdjoint.Locals[target], em.ReadIndex(target, dx, dy)
        else
            a.InputAdjoint.Locals[plan.Sites.Length + target - plan.Fields.Length], em.At(dx, dy)

    let private adjointLambda<'T> (r: Reads) (a: AdjointArrays) (body: Expression) =
        Expression
            .Lambda<AdjointKernel<'T>>(
                body,
                [|
                    r.Padded.Parameter
                    r.Theta
                    r.T
                    a.Lambda.Parameter
                    a.PaddedAdjoint.Parameter
                    a.ThetaAdjoint
                    r.Batch
                    r.Inputs.Parameter
                    a.InputAdjoint.Parameter
                    r.Data.Parameter
                |]
            )
            .Compile()

    /// The scalar accumulators of the scalar parameters' adjoints (null for spatial parameters), and the
    /// statements that add them into θ̄ at the end.
    let private thetaAccumulators (el: Element) (plan: KernelPlan) (thetaAdjoint: ParameterExpression) =
        let accumulators =
            plan.Params
            |> Array.mapi (fun i name ->
                if plan.ParamSpatial[i] then
                    null
                else
                    Expression.Variable(el.Type, "d" + name))

        let flush =
            accumulators
            |> Array.mapi (fun i acc ->
                if isNull acc then
                    None
                else
                    Some(
                        Expression.AddAssign(Expression.ArrayAccess(thetaAdjoint, intConst plan.ParamOffsets[i]), acc)
                        :> Expression
                    ))
            |> Array.choose id
            |> List.ofArray

        accumulators, flush

    /// The scatter form: each cell adds λᵀ∂F/∂(its reads) into the adjoints of the cells it reads.
    let private scatterAdjoint (plan: KernelPlan) (r: Reads) (a: AdjointArrays) =
        let accumulators, flush = thetaAccumulators r.El plan a.ThetaAdjoint
        let scalarAccumulators = accumulators |> Array.filter (isNull >> not)

        let body =
            kernelBody
                plan
                r
                [ r.Padded; a.Lambda; a.PaddedAdjoint; r.Inputs; a.InputAdjoint; r.Data ]
                (fun em cell equations ->
                    for f in equations do
                        let rhs = plan.Rhs[f]
                        let lam = em.Bind(Expression.ArrayIndex(a.Lambda.Locals[f], cell.Pbase))

                        let accumulate (target: Expression) (d: KExpr) =
                            if d <> KConst 0.0 then
                                em.Add(Expression.AddAssign(target, mul lam (em.Emit d)))

                        for leaf, target, dx, dy in KernelPlan.offsetReads plan rhs do
                            let array, index = adjointTarget plan a em target dx dy
                            accumulate (Expression.ArrayAccess(array, index)) (KExpr.derivative leaf rhs)

                        for p in KExpr.parameters rhs do
                            let target =
                                if plan.ParamSpatial[p] then
                                    Expression.ArrayAccess(
                                        a.ThetaAdjoint,
                                        add (intConst plan.ParamOffsets[p]) em.CellIndex
                                    )
                                    :> Expression
                                else
                                    accumulators[p] :> Expression

                            accumulate target (KExpr.derivative (KParam p) rhs)

                        for site in KExpr.inputs rhs do
                            accumulate
                                (Expression.ArrayAccess(a.InputAdjoint.Locals[site], cell.Pbase))
                                (KExpr.derivative (KInput site) rhs))
                flush

        Expression.Block(
            scalarAccumulators,
            Array.append
                (scalarAccumulators
                 |> Array.map (fun acc -> Expression.Assign(acc, constantOf r.El 0.0) :> Expression))
                [| body |]
        )
        :> Expression

    /// The gather form, vectorised (see the module's notes): a scalar pass over the band of 2·ghost cells along
    /// the boundary scatters into the adjoints of the cells outside the core (ghosts included) and adds the
    /// terms of θ and the closure outputs of the cells outside the core; a vectorised pass over the core (cells
    /// at least `ghost` from the boundary) gathers each core cell's adjoint from its neighbours and adds its own
    /// terms of θ and the closure outputs.
    ///
    /// `band` picks the part: the band (scalar) or the core (vectorised), each over the rows [x0, x1) it is given.
    /// The two write the adjoints of disjoint cells (outside the core, inside it) and may run at once; two calls of
    /// the core over disjoint rows may too, but two of the band may not (its scatter crosses rows).
    let private gatherPart<'T> (plan: KernelPlan) (band: bool) : AdjointRows<'T> =
        let r = reads (element (precisionOf<'T> ())) plan
        let a = adjointArrays r.El plan
        let scalarAdjoint = Expression.Parameter(r.El.Type.MakeArrayType(), "scalarAdjoint")
        let x0, x1 = rowBounds ()
        let lanes = Lanes r
        let cell = newCell false
        let g = plan.Ghost
        let twoD = plan.Grid.Dims >= 2
        let accumulators, flush = thetaAccumulators r.El plan scalarAdjoint

        let vectorAccumulators =
            plan.Params
            |> Array.mapi (fun i name ->
                if plan.ParamSpatial[i] then
                    null
                else
                    lanes.Accumulator("vd" + name))

        /// λᵀ∂F/∂θ and λᵀ∂F/∂(closure outputs) of the current cell, each statement wrapped by `guard`.
        let ownTerms (em: Emitter) (guard: Expression -> Expression) =
            for f in 0 .. plan.Rhs.Length - 1 do
                let rhs = plan.Rhs[f]
                let lam = em.LoadAt(a.Lambda.Locals[f], 0, 0)

                for p in KExpr.parameters rhs do
                    let d = KExpr.derivative (KParam p) rhs

                    if d <> KConst 0.0 then
                        let value = em.Product(lam, em.Emit d)

                        if plan.ParamSpatial[p] then
                            em.AddInto(a.ThetaAdjoint, add (intConst plan.ParamOffsets[p]) em.CellIndex, value)
                            |> guard
                            |> em.Add
                        else
                            let acc =
                                if em.IsVector then
                                    vectorAccumulators[p]
                                else
                                    accumulators[p]

                            em.Accumulate(acc, value) |> guard |> em.Add

                for site in KExpr.inputs rhs do
                    let d = KExpr.derivative (KInput site) rhs

                    if d <> KConst 0.0 then
                        em.AddInto(a.InputAdjoint.Locals[site], cell.Pbase, em.Product(lam, em.Emit d))
                        |> guard
                        |> em.Add

        /// Whether the cell (x, y) lies outside the core.
        let outsideCore (x: Expression) (y: Expression) =
            let outside (v: Expression) (n: int) =
                Expression.OrElse(
                    Expression.LessThan(v, intConst g),
                    Expression.GreaterThanOrEqual(v, intConst (n - g))
                )

            if twoD then
                Expression.OrElse(outside x plan.Nx, outside y plan.Ny) :> Expression
            else
                outside x plan.Nx :> Expression

        // The band: scatter, one cell at a time, into the cells outside the core only.
        let bandBody () =
            let em = Emitter(plan, r, cell, None)

            for f in 0 .. plan.Rhs.Length - 1 do
                let rhs = plan.Rhs[f]
                let lam = em.LoadAt(a.Lambda.Locals[f], 0, 0)

                for leaf, target, dx, dy in KernelPlan.offsetReads plan rhs do
                    let d = KExpr.derivative leaf rhs

                    if d <> KConst 0.0 then
                        let value = em.Product(lam, em.Emit d)
                        let array, index = adjointTarget plan a em target dx dy

                        Expression.IfThen(
                            outsideCore (add cell.Ix (intConst dx)) (add cell.Iy (intConst dy)),
                            em.AddInto(array, index, value)
                        )
                        |> em.Add

            let own = outsideCore cell.Ix cell.Iy
            ownTerms em (fun s -> Expression.IfThen(own, s))
            Expression.Block(setBase plan cell, em.Body) :> Expression

        let frame = 2 * g

        let bandLoops =
            let inner =
                if twoD then
                    rangeOf
                        cell.Ix
                        x0
                        x1
                        (Expression.IfThenElse(
                            Expression.OrElse(
                                Expression.LessThan(cell.Ix, intConst frame),
                                Expression.GreaterThanOrEqual(cell.Ix, intConst (plan.Nx - frame))
                            ),
                            range cell.Iy 0 plan.Ny (bandBody ()),
                            Expression.Block(
                                range cell.Iy 0 (min frame plan.Ny) (bandBody ()),
                                range cell.Iy (max frame (plan.Ny - frame)) plan.Ny (bandBody ())
                            )
                        ))
                else
                    Expression.Block(
                        Expression.Assign(cell.Iy, intConst 0),
                        rangeOf cell.Ix x0 (atMost x1 (intConst (min frame plan.Nx))) (bandBody ()),
                        rangeOf cell.Ix (atLeast x0 (intConst (max frame (plan.Nx - frame)))) x1 (bandBody ())
                    )
                    :> Expression

            loop cell.B r.Batch inner

        // The core: gather. The read of a field (or parameter copy) h at offset o by equation f at cell q − o
        // lands on cell q with weight λ_f(q − o)·∂F_f/∂u_h(o), the derivative taken at q − o (its reads shifted
        // by −o).
        let coreBody (vector: bool) =
            let em = Emitter(plan, r, cell, (if vector then Some lanes else None))

            for target in 0 .. KernelPlan.readTargets plan - 1 do
                let terms = [
                    for f, atSource, dx, dy in KernelPlan.gatherTerms plan target ->
                        em.Product(em.LoadAt(a.Lambda.Locals[f], -dx, -dy), em.EmitAt(atSource, -dx, -dy))
                ]

                if not terms.IsEmpty then
                    let array, _ = adjointTarget plan a em target 0 0
                    em.Add(em.AddInto(array, cell.Pbase, em.Sum terms))

            ownTerms em id
            em.Body

        let core =
            vectorLoops
                r.El
                plan
                cell
                r.Batch
                (atLeast x0 (intConst g), atMost x1 (intConst (plan.Nx - g)))
                (g, plan.Ny - g)
                coreBody

        let reduce =
            accumulators
            |> Array.mapi (fun i acc ->
                if isNull acc then
                    None
                else
                    Some(Expression.AddAssign(acc, (vectorOps r.El).Sum vectorAccumulators[i]) :> Expression))
            |> Array.choose id

        let scalarAccumulators = accumulators |> Array.filter (isNull >> not)

        let kernel =
            vectorBody
                plan
                r
                cell
                lanes
                [ r.Padded; a.Lambda; a.PaddedAdjoint; r.Inputs; a.InputAdjoint; r.Data ]
                scalarAccumulators
                (Seq.concat [
                    scalarAccumulators
                    |> Seq.map (fun acc -> Expression.Assign(acc, constantOf r.El 0.0) :> Expression)
                    (if band then
                         Seq.singleton bandLoops
                     else
                         Seq.append [ core ] reduce)
                    Seq.ofList flush
                ])

        Expression
            .Lambda<AdjointRows<'T>>(
                kernel,
                [|
                    r.Padded.Parameter
                    r.Theta
                    r.T
                    a.Lambda.Parameter
                    a.PaddedAdjoint.Parameter
                    a.ThetaAdjoint
                    scalarAdjoint
                    r.Batch
                    r.Inputs.Parameter
                    a.InputAdjoint.Parameter
                    r.Data.Parameter
                    x0
                    x1
                |]
            )
            .Compile()

    /// The vectorised gather-form adjoint in its two parts (band, core), each over a range of rows
    /// (`vectorises` plans only; see `AdjointRows`).
    let adjointParts<'T> (plan: KernelPlan) : AdjointRows<'T> * AdjointRows<'T> =
        requireVectorised plan "adjointParts"
        gatherPart<'T> plan true, gatherPart<'T> plan false

    /// Compiles the vector–Jacobian product of the right-hand side (derivatives taken symbolically here);
    /// `vectorise` picks the vectorised gather form where the plan allows it (`vectorises`), else the scalar
    /// scatter form.
    let adjointWith<'T> (vectorise: bool) (plan: KernelPlan) : AdjointKernel<'T> =
        if vectorise && vectorises plan then
            let band, core = adjointParts<'T> plan
            let nx = plan.Nx

            AdjointKernel<'T>(fun padded theta t lambda paddedAdjoint thetaAdjoint batch inputs inputAdjoint data ->
                band.Invoke(
                    padded,
                    theta,
                    t,
                    lambda,
                    paddedAdjoint,
                    thetaAdjoint,
                    thetaAdjoint,
                    batch,
                    inputs,
                    inputAdjoint,
                    data,
                    0,
                    nx
                )

                core.Invoke(
                    padded,
                    theta,
                    t,
                    lambda,
                    paddedAdjoint,
                    thetaAdjoint,
                    thetaAdjoint,
                    batch,
                    inputs,
                    inputAdjoint,
                    data,
                    0,
                    nx
                ))
        else
            let r = reads (element (precisionOf<'T> ())) plan
            let a = adjointArrays r.El plan
            adjointLambda<'T> r a (scatterAdjoint plan r a)

    /// Compiles the vector–Jacobian product of the right-hand side (the vectorised gather form where
    /// `vectorises` allows it).
    let adjoint<'T> (plan: KernelPlan) : AdjointKernel<'T> = adjointWith<'T> true plan

    /// Compiles the exact Jacobian of a pointwise plan (every read at the cell itself; raises otherwise), from the
    /// symbolic derivatives `adjoint` takes too: one n×n block per cell.
    let jacobian<'T> (plan: KernelPlan) : JacobianKernel<'T> =
        let n = plan.Fields.Length

        if
            plan.Rhs
            |> Array.exists (fun e -> KExpr.reads e |> List.exists (fun (_, dx, dy) -> dx <> 0 || dy <> 0))
        then
            invalidArg "plan" "Codegen.jacobian takes pointwise plans only (every read at the cell itself)."

        let r = reads (element (precisionOf<'T> ())) plan
        let target = Expression.Parameter(r.El.Type.MakeArrayType(), "jacobian")

        let body =
            kernelBody
                plan
                r
                [ r.Padded; r.Inputs; r.Data ]
                (fun em cell equations ->
                    for f in equations do
                        for g in 0 .. n - 1 do
                            let index =
                                add (mul (add (mul cell.Pbase (intConst n)) (intConst f)) (intConst n)) (intConst g)

                            let value = em.Emit(KExpr.derivative (KRead(g, 0, 0)) plan.Rhs[f])
                            em.Add(Expression.Assign(Expression.ArrayAccess(target, index), value)))
                []

        Expression
            .Lambda<JacobianKernel<'T>>(
                body,
                [|
                    r.Padded.Parameter
                    r.Theta
                    r.T
                    target
                    r.Batch
                    r.Inputs.Parameter
                    r.Data.Parameter
                |]
            )
            .Compile()
