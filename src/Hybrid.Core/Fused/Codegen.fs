namespace Hybrid.Fused

open System
open System.Collections.Generic
open System.Linq.Expressions

/// Scalar functions the generated kernels call (those `System.Math` lacks).
type KernelMath =
    /// 1 / (1 + e⁻ˣ)
    static member Sigmoid(x: float) : float = 1.0 / (1.0 + Math.Exp(-x))

    /// log(1 + eˣ), stable for large |x|.
    static member Softplus(x: float) : float =
        Math.Max(x, 0.0) + Math.Log(1.0 + Math.Exp(-Math.Abs x))

    /// sign(x) ∈ {−1, 0, 1}.
    static member Sign(x: float) : float = float (Math.Sign x)

    /// The Heaviside step: 1 where x > 0, ½ at 0, else 0.
    static member Step(x: float) : float =
        if x > 0.0 then 1.0
        elif x = 0.0 then 0.5
        else 0.0

/// The right-hand side of every field for a batch: reads the padded fields (ghosts filled), θ and t, writes
/// one value per cell and field into `output`, which has the padded layout too (its ghost entries untouched).
/// `inputs` holds the closure outputs per call site, `data` the forcings' values (both padded layout).
type ForwardKernel =
    delegate of
        padded: float[][] *
        theta: float[] *
        t: float *
        output: float[][] *
        batch: int *
        inputs: float[][] *
        data: float[][] ->
            unit

/// The vector–Jacobian product of `ForwardKernel`: given λ (one value per cell and field, padded layout; ghost
/// entries ignored), adds λᵀ∂F/∂(padded fields) into `paddedAdjoint` and λᵀ∂F/∂θ into `thetaAdjoint`.
/// `inputs` holds the closure outputs per call site; λᵀ∂F/∂(closure outputs) is added into `inputAdjoint`;
/// `data` holds the forcings' values (no gradient).
type AdjointKernel =
    delegate of
        padded: float[][] *
        theta: float[] *
        t: float *
        lambda: float[][] *
        paddedAdjoint: float[][] *
        thetaAdjoint: float[] *
        batch: int *
        inputs: float[][] *
        inputAdjoint: float[][] *
        data: float[][] ->
            unit

/// Generates the fused kernels of a `KernelPlan` as LINQ expression trees compiled to IL once: one loop over
/// trajectories and cells whose body evaluates the whole right-hand side (and, for the adjoint, every partial
/// derivative), with common subexpressions computed once per cell.
///
/// Why expression trees: they are in the base library, compile to IL the JIT optimises like hand-written
/// loops, and are far easier to get right than emitting IL by hand; `Vector<T>` SIMD would need gathers for
/// the stencil reads, which cost more than they save at these sizes.
[<RequireQualifiedAccess>]
module Codegen =

    let private math name =
        typeof<Math>.GetMethod(name, [| typeof<float> |])

    let private helper name = typeof<KernelMath>.GetMethod(name)

    let private pow = typeof<Math>.GetMethod("Pow", [| typeof<float>; typeof<float> |])
    let private min2 = typeof<Math>.GetMethod("Min", [| typeof<float>; typeof<float> |])
    let private max2 = typeof<Math>.GetMethod("Max", [| typeof<float>; typeof<float> |])

    let private intConst (i: int) = Expression.Constant(i) :> Expression
    let private add (a: Expression) (b: Expression) = Expression.Add(a, b) :> Expression
    let private mul (a: Expression) (b: Expression) = Expression.Multiply(a, b) :> Expression

    /// `for (v = 0; v < count; v++) body`
    let private loop (v: ParameterExpression) (count: Expression) (body: Expression) : Expression =
        let exit = Expression.Label("exit")

        Expression.Block(
            Expression.Assign(v, intConst 0),
            Expression.Loop(
                Expression.IfThenElse(
                    Expression.LessThan(v, count),
                    Expression.Block(body, Expression.PreIncrementAssign(v)),
                    Expression.Break(exit)
                ),
                exit
            )
        )

    /// One local per field holding `jagged[f]`, and the assignments that load them (before the loops, so the
    /// loop body indexes flat arrays).
    let private hoist (jagged: ParameterExpression) (count: int) =
        let locals =
            Array.init count (fun f -> Expression.Variable(typeof<float[]>, $"{jagged.Name}{f}"))

        let loads =
            locals
            |> Array.mapi (fun f v -> Expression.Assign(v, Expression.ArrayIndex(jagged, intConst f)) :> Expression)

        locals, loads

    /// `body` preceded by the loads of hoisted locals.
    let private withHoisted (hoisted: (ParameterExpression[] * Expression[]) list) (body: Expression) =
        Expression.Block(hoisted |> Seq.collect fst, Seq.append (hoisted |> Seq.collect snd) [ body ]) :> Expression

    /// Emits kernel expressions into a statement list, one local per distinct non-leaf subexpression.
    type private Emitter
        (
            plan: KernelPlan,
            padded: ParameterExpression[],
            inputs: ParameterExpression[],
            data: ParameterExpression[],
            pbase: ParameterExpression,
            thetaLocals: ParameterExpression[],
            t: Expression,
            ix: ParameterExpression,
            iy: ParameterExpression
        ) =
        let locals = ResizeArray<ParameterExpression>()
        let statements = ResizeArray<Expression>()
        let memo = Dictionary<KExpr, Expression>(HashIdentity.Structural)
        let strideX = plan.Py

        let bind (value: Expression) =
            let v = Expression.Variable(typeof<float>)
            locals.Add v
            statements.Add(Expression.Assign(v, value))
            v :> Expression

        /// Index of a read at offset (dx, dy) from the current cell in the padded array.
        member _.ReadIndex(dx: int, dy: int) =
            add pbase (intConst (dx * strideX + dy))

        member this.Emit(e: KExpr) : Expression =
            match memo.TryGetValue e with
            | true, v -> v
            | _ ->
                let value =
                    match e with
                    | KConst c -> Expression.Constant(c) :> Expression
                    | KParam i -> thetaLocals[i] :> Expression
                    | KTime -> t
                    | KInput site -> bind (Expression.ArrayIndex(inputs[site], pbase))
                    | KData forcing -> bind (Expression.ArrayIndex(data[forcing], pbase))
                    | KRead(f, dx, dy) -> bind (Expression.ArrayIndex(padded[f], this.ReadIndex(dx, dy)))
                    | KCoord(axis, shift) ->
                        let a = plan.Grid.Axes[axis]
                        let i = if axis = 0 then ix else iy

                        let centre =
                            Expression.Add(
                                Expression.Constant(a.Lo + 0.5 * a.Spacing + shift),
                                Expression.Multiply(
                                    Expression.Convert(i, typeof<float>),
                                    Expression.Constant(a.Spacing)
                                )
                            )

                        bind centre
                    | KPowInt(a, n) ->
                        let x = this.Emit a
                        let m = abs n

                        let positive =
                            if m <= 4 then
                                List.replicate m x |> List.reduce mul
                            else
                                Expression.Call(pow, x, Expression.Constant(float m)) :> Expression

                        bind (
                            if n < 0 then
                                Expression.Divide(Expression.Constant(1.0), positive) :> Expression
                            else
                                positive
                        )
                    | KUn(op, a) ->
                        let x = this.Emit a

                        let call (m: Reflection.MethodInfo) = Expression.Call(m, x) :> Expression

                        bind (
                            match op with
                            | KUnary.Neg -> Expression.Negate(x) :> Expression
                            | KUnary.Exp -> call (math "Exp")
                            | KUnary.Log -> call (math "Log")
                            | KUnary.Sqrt -> call (math "Sqrt")
                            | KUnary.Abs -> call (math "Abs")
                            | KUnary.Sin -> call (math "Sin")
                            | KUnary.Cos -> call (math "Cos")
                            | KUnary.Tanh -> call (math "Tanh")
                            | KUnary.Sigmoid -> call (helper "Sigmoid")
                            | KUnary.Softplus -> call (helper "Softplus")
                            | KUnary.Sign -> call (helper "Sign")
                            | KUnary.Step -> call (helper "Step")
                        )
                    | KBin(op, a, b) ->
                        let x = this.Emit a
                        let y = this.Emit b

                        bind (
                            match op with
                            | KBinary.Add -> Expression.Add(x, y) :> Expression
                            | KBinary.Sub -> Expression.Subtract(x, y) :> Expression
                            | KBinary.Mul -> Expression.Multiply(x, y) :> Expression
                            | KBinary.Div -> Expression.Divide(x, y) :> Expression
                            | KBinary.Pow -> Expression.Call(pow, x, y) :> Expression
                            | KBinary.Min -> Expression.Call(min2, x, y) :> Expression
                            | KBinary.Max -> Expression.Call(max2, x, y) :> Expression
                        )

                memo[e] <- value
                value

        /// Adds a statement (after the locals it uses were bound).
        member _.Add(s: Expression) = statements.Add s

        /// A local that is not memoised (e.g. λ of a field at this cell).
        member _.Bind(value: Expression) = bind value

        /// The per-cell body: its locals and statements.
        member _.Body = Expression.Block(locals, statements) :> Expression

    /// Builds `for b, for ix, for iy: <body>` with the cell's padded index in scope, and
    /// θ loaded into locals once.
    let private cellLoops
        (plan: KernelPlan)
        (theta: ParameterExpression)
        (batch: ParameterExpression)
        (makeBody:
            ParameterExpression[] -> ParameterExpression -> ParameterExpression -> ParameterExpression -> Expression)
        (epilogue: ParameterExpression[] -> Expression list)
        =
        let b = Expression.Variable(typeof<int>, "b")
        let ix = Expression.Variable(typeof<int>, "ix")
        let iy = Expression.Variable(typeof<int>, "iy")
        let pbase = Expression.Variable(typeof<int>, "pbase")

        let thetaLocals =
            plan.Params |> Array.map (fun name -> Expression.Variable(typeof<float>, name))

        let g = plan.Ghost
        let gy = if plan.Grid.Dims >= 2 then g else 0

        // pbase = b·P + (ix + g)·Py + (iy + gy)
        let setBase =
            Expression.Assign(
                pbase,
                add
                    (add (mul b (intConst plan.PaddedCells)) (mul (add ix (intConst g)) (intConst plan.Py)))
                    (add iy (intConst gy))
            )

        let inner =
            Expression.Block(setBase, makeBody thetaLocals pbase ix iy) :> Expression

        let loops =
            loop b batch (loop ix (intConst plan.Nx) (loop iy (intConst plan.Ny) inner))

        let loadTheta =
            thetaLocals
            |> Array.mapi (fun i v -> Expression.Assign(v, Expression.ArrayIndex(theta, intConst i)) :> Expression)

        Expression.Block(
            Array.concat [ [| b; ix; iy; pbase |]; thetaLocals ],
            Array.concat [ loadTheta; [| loops |]; Array.ofList (epilogue thetaLocals) ]
        )

    /// Compiles the right-hand side of every field.
    let forward (plan: KernelPlan) : ForwardKernel =
        let padded = Expression.Parameter(typeof<float[][]>, "padded")
        let theta = Expression.Parameter(typeof<float[]>, "theta")
        let t = Expression.Parameter(typeof<float>, "t")
        let output = Expression.Parameter(typeof<float[][]>, "output")
        let batch = Expression.Parameter(typeof<int>, "batch")
        let inputs = Expression.Parameter(typeof<float[][]>, "inputs")
        let data = Expression.Parameter(typeof<float[][]>, "data")
        let dataFields = hoist data plan.Forcings.Length

        let paddedFields = hoist padded plan.Fields.Length
        let outputFields = hoist output plan.Rhs.Length
        let inputFields = hoist inputs plan.Sites.Length

        let body =
            cellLoops
                plan
                theta
                batch
                (fun thetaLocals pbase ix iy ->
                    let em =
                        Emitter(plan, fst paddedFields, fst inputFields, fst dataFields, pbase, thetaLocals, t, ix, iy)

                    plan.Rhs
                    |> Array.iteri (fun f rhs ->
                        let value = em.Emit rhs

                        let target = Expression.ArrayAccess((fst outputFields)[f], pbase)

                        em.Add(Expression.Assign(target, value)))

                    em.Body)
                (fun _ -> [])
            |> withHoisted [ paddedFields; outputFields; inputFields; dataFields ]

        Expression.Lambda<ForwardKernel>(body, [| padded; theta; t; output; batch; inputs; data |]).Compile()

    /// Compiles the vector–Jacobian product of the right-hand side (derivatives taken symbolically here).
    let adjoint (plan: KernelPlan) : AdjointKernel =
        let padded = Expression.Parameter(typeof<float[][]>, "padded")
        let theta = Expression.Parameter(typeof<float[]>, "theta")
        let t = Expression.Parameter(typeof<float>, "t")
        let lambda = Expression.Parameter(typeof<float[][]>, "lambda")
        let paddedAdjoint = Expression.Parameter(typeof<float[][]>, "paddedAdjoint")
        let thetaAdjoint = Expression.Parameter(typeof<float[]>, "thetaAdjoint")
        let batch = Expression.Parameter(typeof<int>, "batch")
        let inputs = Expression.Parameter(typeof<float[][]>, "inputs")
        let inputAdjoint = Expression.Parameter(typeof<float[][]>, "inputAdjoint")
        let data = Expression.Parameter(typeof<float[][]>, "data")
        let dataFields = hoist data plan.Forcings.Length

        let accumulators =
            plan.Params
            |> Array.map (fun name -> Expression.Variable(typeof<float>, "d" + name))

        let fields = plan.Fields.Length
        let paddedFields = hoist padded fields
        let lambdaFields = hoist lambda plan.Rhs.Length
        let adjointFields = hoist paddedAdjoint fields
        let inputFields = hoist inputs plan.Sites.Length
        let inputAdjointFields = hoist inputAdjoint plan.Sites.Length

        let body =
            cellLoops
                plan
                theta
                batch
                (fun thetaLocals pbase ix iy ->
                    let em =
                        Emitter(plan, fst paddedFields, fst inputFields, fst dataFields, pbase, thetaLocals, t, ix, iy)

                    plan.Rhs
                    |> Array.iteri (fun f rhs ->
                        let lam = em.Bind(Expression.ArrayIndex((fst lambdaFields)[f], pbase))

                        for field, dx, dy in KExpr.reads rhs do
                            let d = KExpr.derivative (KRead(field, dx, dy)) rhs

                            if d <> KConst 0.0 then
                                let target =
                                    Expression.ArrayAccess((fst adjointFields)[field], em.ReadIndex(dx, dy))

                                em.Add(Expression.AddAssign(target, mul lam (em.Emit d)))

                        for p in KExpr.parameters rhs do
                            let d = KExpr.derivative (KParam p) rhs

                            if d <> KConst 0.0 then
                                em.Add(Expression.AddAssign(accumulators[p], mul lam (em.Emit d)))

                        for site in KExpr.inputs rhs do
                            let d = KExpr.derivative (KInput site) rhs

                            if d <> KConst 0.0 then
                                let target = Expression.ArrayAccess((fst inputAdjointFields)[site], pbase)
                                em.Add(Expression.AddAssign(target, mul lam (em.Emit d))))

                    em.Body)
                (fun _ ->
                    accumulators
                    |> Array.mapi (fun i acc ->
                        Expression.AddAssign(Expression.ArrayAccess(thetaAdjoint, intConst i), acc) :> Expression)
                    |> List.ofArray)

        let withAccumulators =
            Expression.Block(
                accumulators,
                Array.append
                    (accumulators
                     |> Array.map (fun a -> Expression.Assign(a, Expression.Constant(0.0)) :> Expression))
                    [|
                        withHoisted
                            [
                                paddedFields
                                lambdaFields
                                adjointFields
                                inputFields
                                inputAdjointFields
                                dataFields
                            ]
                            body
                    |]
            )

        Expression
            .Lambda<AdjointKernel>(
                withAccumulators,
                [|
                    padded
                    theta
                    t
                    lambda
                    paddedAdjoint
                    thetaAdjoint
                    batch
                    inputs
                    inputAdjoint
                    data
                |]
            )
            .Compile()
