namespace Hybrid.Kernels

open System
open System.Collections.Generic
open System.Linq.Expressions

/// Scalar functions the generated kernels call (those `System.Math` lacks).
type internal KernelMath =
    /// 1 / (1 + e⁻ˣ) (`Pointwise.sigmoid`)
    static member Sigmoid(x: float) : float = Hybrid.Pointwise.sigmoid x

    /// log(1 + eˣ) (`Pointwise.softplus`)
    static member Softplus(x: float) : float = Hybrid.Pointwise.softplus x

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
type internal ForwardKernel =
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
type internal AdjointKernel =
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

/// The exact Jacobian of the right-hand side of a pointwise plan: writes ∂F_f/∂u_g at each cell into
/// `jacobian[(p·n + f)·n + g]`, p the cell's padded index and n the number of fields (every entry, zeros included).
type internal JacobianKernel =
    delegate of
        padded: float[][] *
        theta: float[] *
        t: float *
        jacobian: float[] *
        batch: int *
        inputs: float[][] *
        data: float[][] ->
            unit

/// Generates the generated kernels of a `KernelPlan` as LINQ expression trees compiled to IL once: one loop over
/// trajectories and cells whose body evaluates the whole right-hand side (and, for the adjoint, every partial
/// derivative), with common subexpressions computed once per cell.
///
/// Why expression trees: they are in the base library, compile to IL the JIT optimises like hand-written
/// loops, and are far easier to get right than emitting IL by hand; `Vector<T>` SIMD would need gathers for
/// the stencil reads, which cost more than they save at these sizes.
[<RequireQualifiedAccess>]
module internal Codegen =

    let private math name =
        typeof<Math>.GetMethod(name, [| typeof<float> |])

    // KernelMath is internal, so its members are too: look them up as non-public.
    let private helper (name: string) =
        typeof<KernelMath>
            .GetMethod(
                name,
                Reflection.BindingFlags.Static
                ||| Reflection.BindingFlags.Public
                ||| Reflection.BindingFlags.NonPublic
            )

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

    /// One local per array of `jagged` holding `jagged[i]`, and the assignments that load them (before the
    /// loops, so the loop body indexes flat arrays).
    let private hoist (jagged: ParameterExpression) (count: int) =
        let locals =
            Array.init count (fun f -> Expression.Variable(typeof<float[]>, $"{jagged.Name}{f}"))

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

    let private arrays (name: string) (count: int) =
        let p = Expression.Parameter(typeof<float[][]>, name)
        let locals, loads = hoist p count

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
    }

    let private reads (plan: KernelPlan) : Reads = {
        Padded = arrays "padded" plan.Fields.Length
        Theta = Expression.Parameter(typeof<float[]>, "theta")
        T = Expression.Parameter(typeof<float>, "t")
        Batch = Expression.Parameter(typeof<int>, "batch")
        Inputs = arrays "inputs" plan.Sites.Length
        Data = arrays "data" plan.Forcings.Length
        ThetaLocals =
            plan.Params
            |> Array.mapi (fun i name ->
                if plan.ParamSpatial[i] then
                    null
                else
                    Expression.Variable(typeof<float>, name))
    }

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

    /// Emits kernel expressions into a statement list, one local per distinct non-leaf subexpression.
    type private Emitter(plan: KernelPlan, r: Reads, cell: Cell) =
        let locals = ResizeArray<ParameterExpression>()
        let statements = ResizeArray<Expression>()
        let memo = Dictionary<KExpr, Expression>(HashIdentity.Structural)
        let strideX = if cell.Fast then 1 else plan.Py

        let bind (value: Expression) =
            let v = Expression.Variable(typeof<float>)
            locals.Add v
            statements.Add(Expression.Assign(v, value))
            v :> Expression

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

        /// The interior index ix·Ny + iy of the current (slow) cell: where spatial parameters keep its value.
        member _.CellIndex = add (mul cell.Ix (intConst plan.Ny)) cell.Iy

        member this.Emit(e: KExpr) : Expression =
            match memo.TryGetValue e with
            | true, v -> v
            | _ ->
                let value =
                    match e with
                    | KConst c -> Expression.Constant(c) :> Expression
                    | KParam i when plan.ParamSpatial[i] ->
                        bind (Expression.ArrayIndex(r.Theta, add (intConst plan.ParamOffsets[i]) this.CellIndex))
                    | KParam i -> r.ThetaLocals[i] :> Expression
                    | KTime -> r.T
                    | KInput site -> bind (Expression.ArrayIndex(r.Inputs.Locals[site], cell.Pbase))
                    | KData forcing -> bind (Expression.ArrayIndex(r.Data.Locals[forcing], cell.Pbase))
                    | KRead(f, dx, dy) -> bind (Expression.ArrayIndex(r.Padded.Locals[f], this.ReadIndex(f, dx, dy)))
                    | KCoord(axis, shift) ->
                        let a = plan.Grid.Axes[axis]
                        let i = if axis = 0 then cell.Ix else cell.Iy

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
                            | KUnary.Fn Hybrid.Fn.Exp -> call (math "Exp")
                            | KUnary.Fn Hybrid.Fn.Log -> call (math "Log")
                            | KUnary.Fn Hybrid.Fn.Sqrt -> call (math "Sqrt")
                            | KUnary.Fn Hybrid.Fn.Abs -> call (math "Abs")
                            | KUnary.Fn Hybrid.Fn.Sin -> call (math "Sin")
                            | KUnary.Fn Hybrid.Fn.Cos -> call (math "Cos")
                            | KUnary.Fn Hybrid.Fn.Tanh -> call (math "Tanh")
                            | KUnary.Fn Hybrid.Fn.Sigmoid -> call (helper "Sigmoid")
                            | KUnary.Fn Hybrid.Fn.Softplus -> call (helper "Softplus")
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

    /// The kernel body: θ loaded into locals, then for each ring that has equations (slow, then fast),
    /// `for b, for ix, for iy: <cell body>` over that ring's cells, then `epilogue`. `cellBody` gets the
    /// cell and the indices into `plan.Rhs` of the equations evaluated on its ring.
    let private kernelBody
        (plan: KernelPlan)
        (r: Reads)
        (hoisted: Arrays list)
        (cellBody: Emitter -> Cell -> int list -> unit)
        (epilogue: Expression list)
        =
        let b = Expression.Variable(typeof<int>, "b")
        let ix = Expression.Variable(typeof<int>, "ix")
        let iy = Expression.Variable(typeof<int>, "iy")
        let pbase = Expression.Variable(typeof<int>, "pbase")

        let ringLoops (fast: bool) =
            let equations =
                [ 0 .. plan.Rhs.Length - 1 ] |> List.filter (fun i -> plan.RhsFast[i] = fast)

            if equations.IsEmpty then
                None
            else
                let cell = {
                    B = b
                    Ix = ix
                    Iy = iy
                    Pbase = pbase
                    Fast = fast
                }

                let g, gy, padded, nx, ny, py =
                    if fast then
                        plan.FastGhost, 0, plan.FastPaddedCells, plan.FastCells, 1, 1
                    else
                        plan.Ghost,
                        (if plan.Grid.Dims >= 2 then plan.Ghost else 0),
                        plan.PaddedCells,
                        plan.Nx,
                        plan.Ny,
                        plan.Py

                // pbase = b·P + (ix + g)·Py + (iy + gy)
                let setBase =
                    Expression.Assign(
                        pbase,
                        add
                            (add (mul b (intConst padded)) (mul (add ix (intConst g)) (intConst py)))
                            (add iy (intConst gy))
                    )

                let em = Emitter(plan, r, cell)
                cellBody em cell equations
                let inner = Expression.Block(setBase, em.Body) :> Expression
                Some(loop b r.Batch (loop ix (intConst nx) (loop iy (intConst ny) inner)))

        let scalars = r.ThetaLocals |> Array.filter (isNull >> not)

        let loadTheta =
            r.ThetaLocals
            |> Array.mapi (fun i v ->
                if isNull v then
                    None
                else
                    Some(
                        Expression.Assign(v, Expression.ArrayIndex(r.Theta, intConst plan.ParamOffsets[i]))
                        :> Expression
                    ))
            |> Array.choose id

        let body =
            Expression.Block(
                Array.append [| b; ix; iy; pbase |] scalars,
                Array.concat [
                    loadTheta
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

    /// Compiles the right-hand side of every field.
    let forward (plan: KernelPlan) : ForwardKernel =
        let r = reads plan
        let output = arrays "output" plan.Rhs.Length

        let body =
            kernelBody
                plan
                r
                [ r.Padded; output; r.Inputs; r.Data ]
                (fun em cell equations ->
                    for f in equations do
                        let value = em.Emit plan.Rhs[f]
                        em.Add(Expression.Assign(Expression.ArrayAccess(output.Locals[f], cell.Pbase), value)))
                []

        Expression
            .Lambda<ForwardKernel>(
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

    /// Compiles the vector–Jacobian product of the right-hand side (derivatives taken symbolically here).
    let adjoint (plan: KernelPlan) : AdjointKernel =
        let r = reads plan
        let lambda = arrays "lambda" plan.Rhs.Length
        let paddedAdjoint = arrays "paddedAdjoint" plan.Fields.Length
        let thetaAdjoint = Expression.Parameter(typeof<float[]>, "thetaAdjoint")
        let inputAdjoint = arrays "inputAdjoint" plan.Sites.Length

        // Scalar parameters accumulate in locals, added to θ̄ once; spatial ones are added per cell.
        let accumulators =
            plan.Params
            |> Array.mapi (fun i name ->
                if plan.ParamSpatial[i] then
                    null
                else
                    Expression.Variable(typeof<float>, "d" + name))

        let scalarAccumulators = accumulators |> Array.filter (isNull >> not)

        let body =
            kernelBody
                plan
                r
                [ r.Padded; lambda; paddedAdjoint; r.Inputs; inputAdjoint; r.Data ]
                (fun em cell equations ->
                    for f in equations do
                        let rhs = plan.Rhs[f]
                        let lam = em.Bind(Expression.ArrayIndex(lambda.Locals[f], cell.Pbase))

                        let accumulate (target: Expression) (d: KExpr) =
                            if d <> KConst 0.0 then
                                em.Add(Expression.AddAssign(target, mul lam (em.Emit d)))

                        for field, dx, dy in KExpr.reads rhs do
                            accumulate
                                (Expression.ArrayAccess(paddedAdjoint.Locals[field], em.ReadIndex(field, dx, dy)))
                                (KExpr.derivative (KRead(field, dx, dy)) rhs)

                        for p in KExpr.parameters rhs do
                            let target =
                                if plan.ParamSpatial[p] then
                                    Expression.ArrayAccess(
                                        thetaAdjoint,
                                        add (intConst plan.ParamOffsets[p]) em.CellIndex
                                    )
                                    :> Expression
                                else
                                    accumulators[p] :> Expression

                            accumulate target (KExpr.derivative (KParam p) rhs)

                        for site in KExpr.inputs rhs do
                            accumulate
                                (Expression.ArrayAccess(inputAdjoint.Locals[site], cell.Pbase))
                                (KExpr.derivative (KInput site) rhs))
                (accumulators
                 |> Array.mapi (fun i acc ->
                     if isNull acc then
                         None
                     else
                         Some(
                             Expression.AddAssign(
                                 Expression.ArrayAccess(thetaAdjoint, intConst plan.ParamOffsets[i]),
                                 acc
                             )
                             :> Expression
                         ))
                 |> Array.choose id
                 |> List.ofArray)

        let withAccumulators =
            Expression.Block(
                scalarAccumulators,
                Array.append
                    (scalarAccumulators
                     |> Array.map (fun a -> Expression.Assign(a, Expression.Constant(0.0)) :> Expression))
                    [| body |]
            )

        Expression
            .Lambda<AdjointKernel>(
                withAccumulators,
                [|
                    r.Padded.Parameter
                    r.Theta
                    r.T
                    lambda.Parameter
                    paddedAdjoint.Parameter
                    thetaAdjoint
                    r.Batch
                    r.Inputs.Parameter
                    inputAdjoint.Parameter
                    r.Data.Parameter
                |]
            )
            .Compile()

    /// Compiles the exact Jacobian of a pointwise plan (every read at the cell itself; raises otherwise), from the
    /// symbolic derivatives `adjoint` takes too: one n×n block per cell.
    let jacobian (plan: KernelPlan) : JacobianKernel =
        let n = plan.Fields.Length

        if
            plan.Rhs
            |> Array.exists (fun e -> KExpr.reads e |> List.exists (fun (_, dx, dy) -> dx <> 0 || dy <> 0))
        then
            invalidArg "plan" "Codegen.jacobian takes pointwise plans only (every read at the cell itself)."

        let r = reads plan
        let target = Expression.Parameter(typeof<float[]>, "jacobian")

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
            .Lambda<JacobianKernel>(
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
