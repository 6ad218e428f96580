namespace Hybrid.Gpu

open System
open System.Collections.Generic
open System.Reflection
open System.Reflection.Emit
open ILGPU
open Hybrid.Kernels

/// A float64 value of emitted IL: a local, a constant, or a kernel argument (t).
type internal IlValue =
    | Local of LocalBuilder
    | Constant of float
    | Argument of int16

/// What the per-cell IL of a kernel reads, as kernel arguments and locals: the views' argument positions,
/// the argument t, and the locals the kernel sets before a cell's body (the trajectory stride, the cell's padded
/// index and its interior coordinates, the scalar parameters).
type internal CellArgs = {
    /// The plan the kernel evaluates.
    Plan: KernelPlan
    /// The padded fields: field f of trajectory b at f·stride + b·P + p.
    Padded: int16
    /// θ (constrained values, `KernelPlan.ParamOffsets`).
    Theta: int16
    /// The closure outputs per call site, laid out as the padded fields.
    Inputs: int16
    /// The forcings' values per forcing, laid out as the padded fields.
    Data: int16
    /// The argument t.
    Time: int16
    /// batch·P: from one field (or call site, or forcing) to the next.
    Stride: LocalBuilder
    /// b·P + p: the current cell's index in one field's padded values.
    Pbase: LocalBuilder
    /// The cell's interior index along x (0 … Nx − 1).
    Ix: LocalBuilder
    /// The cell's interior index along y (0 on grids with fewer than two axes).
    Iy: LocalBuilder
    /// One local per scalar parameter holding its value (null for spatial parameters).
    ThetaLocals: LocalBuilder[]
}

/// IL for ILGPU kernels: element access to `ArrayView<float>` arguments, and the kernel expressions of one cell
/// (`KernelIl.Cell`), with the arithmetic of `Codegen`'s scalar loops operation for operation, so that on the CPU
/// both give the same bits.
[<RequireQualifiedAccess>]
module internal KernelIl =

    /// The view type of every array argument.
    let viewType = typeof<ArrayView<float>>

    let private item = viewType.GetMethod("get_Item", [| typeof<int> |])

    let private math (name: string) =
        typeof<Math>.GetMethod(name, [| typeof<float> |])

    let private math2 (name: string) =
        typeof<Math>.GetMethod(name, [| typeof<float>; typeof<float> |])

    let private pointwise (name: string) =
        typeof<Hybrid.Fn>.Assembly.GetType("Hybrid.Pointwise").GetMethod(name, [| typeof<float> |])

    /// Pushes an int constant.
    let int (il: ILGenerator) (i: int) = il.Emit(OpCodes.Ldc_I4, i)

    /// Pushes the address of element `index` (pushed by `index`) of the view in argument `view`: a `float&`
    /// for `Ldind_R8` / `Stind_R8`.
    let address (il: ILGenerator) (view: int16) (index: unit -> unit) =
        il.Emit(OpCodes.Ldarga, view)
        index ()
        il.Emit(OpCodes.Call, item)

    /// Pushes a value.
    let push (il: ILGenerator) (v: IlValue) =
        match v with
        | Local l -> il.Emit(OpCodes.Ldloc, l)
        | Constant c -> il.Emit(OpCodes.Ldc_R8, c)
        | Argument a -> il.Emit(OpCodes.Ldarg, a)

    /// view[index] += value.
    let addInto (il: ILGenerator) (view: int16) (index: unit -> unit) (value: IlValue) =
        address il view index
        il.Emit(OpCodes.Dup)
        il.Emit(OpCodes.Ldind_R8)
        push il value
        il.Emit(OpCodes.Add)
        il.Emit(OpCodes.Stind_R8)

    /// view[index] = value.
    let store (il: ILGenerator) (view: int16) (index: unit -> unit) (value: IlValue) =
        address il view index
        push il value
        il.Emit(OpCodes.Stind_R8)

    /// Pushes stride·k + pbase + offset: entry `offset` away from the cell in array k of a padded argument.
    let padded (il: ILGenerator) (args: CellArgs) (k: int) (offset: int) =
        fun () ->
            il.Emit(OpCodes.Ldloc, args.Stride)
            int il k
            il.Emit(OpCodes.Mul)
            il.Emit(OpCodes.Ldloc, args.Pbase)
            il.Emit(OpCodes.Add)

            if offset <> 0 then
                int il offset
                il.Emit(OpCodes.Add)

    /// Emits kernel expressions of one cell into locals, one per distinct subexpression (its value computed
    /// once). `Scope` gives an emitter for code that runs conditionally: it sees the values computed so far, and
    /// what it computes stays inside it (IL locals outlive a branch, their values do not).
    type Cell(il: ILGenerator, args: CellArgs, seen: Dictionary<KExpr * int * int, IlValue>) =
        let plan = args.Plan
        let memo = Dictionary<KExpr * int * int, IlValue>(seen, HashIdentity.Structural)

        /// Whether the value of `e` depends on the cell other than through field reads (as in `Codegen`).
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

        /// The value on the stack, into a new local.
        let bind () =
            let l = il.DeclareLocal(typeof<float>)
            il.Emit(OpCodes.Stloc, l)
            Local l

        let load (view: int16) (index: unit -> unit) =
            address il view index
            il.Emit(OpCodes.Ldind_R8)
            bind ()

        /// (x > 0) − (x < 0) as a float: sign(x), 0 at NaN.
        let sign (x: IlValue) =
            push il x
            il.Emit(OpCodes.Ldc_R8, 0.0)
            il.Emit(OpCodes.Cgt)
            push il x
            il.Emit(OpCodes.Ldc_R8, 0.0)
            il.Emit(OpCodes.Clt)
            il.Emit(OpCodes.Sub)
            il.Emit(OpCodes.Conv_R8)

        /// (x > 0) + ½·(x = 0): the Heaviside step of `KUnary.Step`.
        let step (x: IlValue) =
            push il x
            il.Emit(OpCodes.Ldc_R8, 0.0)
            il.Emit(OpCodes.Cgt)
            il.Emit(OpCodes.Conv_R8)
            il.Emit(OpCodes.Ldc_R8, 0.5)
            push il x
            il.Emit(OpCodes.Ldc_R8, 0.0)
            il.Emit(OpCodes.Ceq)
            il.Emit(OpCodes.Conv_R8)
            il.Emit(OpCodes.Mul)
            il.Emit(OpCodes.Add)

        /// (x > 0) as a float: the strict step of `KUnary.Positive`.
        let positive (x: IlValue) =
            push il x
            il.Emit(OpCodes.Ldc_R8, 0.0)
            il.Emit(OpCodes.Cgt)
            il.Emit(OpCodes.Conv_R8)

        /// The padded index offset of the cell (sx, sy) away from the current one.
        let shift (sx: int) (sy: int) = sx * plan.Py + sy

        /// The value of `e` at the current cell.
        member this.Emit(e: KExpr) : IlValue = this.EmitAt(e, 0, 0)

        /// The value of `e` with its closure outputs, forcings, coordinates and spatial parameters taken at the
        /// cell (sx, sy) away from the current one; field reads keep their offsets from the current cell (as
        /// `Codegen`'s `EmitAt`).
        member this.EmitAt(e: KExpr, sx: int, sy: int) : IlValue =
            let key = if positional e then (e, sx, sy) else (e, 0, 0)

            match memo.TryGetValue key with
            | true, v -> v
            | _ ->
                let value =
                    match e with
                    | KConst c -> Constant c
                    | KParam i when plan.ParamSpatial[i] ->
                        load args.Theta (fun () ->
                            il.Emit(OpCodes.Ldloc, args.Ix)
                            int il plan.Ny
                            il.Emit(OpCodes.Mul)
                            il.Emit(OpCodes.Ldloc, args.Iy)
                            il.Emit(OpCodes.Add)
                            int il (plan.ParamOffsets[i] + sx * plan.Ny + sy)
                            il.Emit(OpCodes.Add))
                    | KParam i -> Local args.ThetaLocals[i]
                    | KTime -> Argument args.Time
                    | KInput site -> load args.Inputs (padded il args site (shift sx sy))
                    | KData forcing -> load args.Data (padded il args forcing (shift sx sy))
                    | KRead(f, dx, dy) -> load args.Padded (padded il args f (shift dx dy))
                    | KParamAt _ ->
                        invalidOp "KernelAssembly.check refuses plans with spatial parameters read at faces."
                    | KCoord(axis, offset) ->
                        // first + (i + s)·h, as `Codegen` computes it.
                        let a = plan.Grid.Axes[axis]
                        let s = if axis = 0 then sx else sy
                        il.Emit(OpCodes.Ldc_R8, a.Lo + 0.5 * a.Spacing + offset)
                        il.Emit(OpCodes.Ldloc, (if axis = 0 then args.Ix else args.Iy))

                        if s <> 0 then
                            int il s
                            il.Emit(OpCodes.Add)

                        il.Emit(OpCodes.Conv_R8)
                        il.Emit(OpCodes.Ldc_R8, a.Spacing)
                        il.Emit(OpCodes.Mul)
                        il.Emit(OpCodes.Add)
                        bind ()
                    | KPowInt(a, n) ->
                        let x = this.EmitAt(a, sx, sy)
                        let m = abs n

                        if n < 0 then
                            il.Emit(OpCodes.Ldc_R8, 1.0)

                        if m <= 4 then
                            push il x

                            for _ in 2..m do
                                push il x
                                il.Emit(OpCodes.Mul)
                        else
                            push il x
                            il.Emit(OpCodes.Ldc_R8, float m)
                            il.Emit(OpCodes.Call, math2 "Pow")

                        if n < 0 then
                            il.Emit(OpCodes.Div)

                        bind ()
                    | KUn(op, a) ->
                        let x = this.EmitAt(a, sx, sy)

                        let call (m: MethodInfo) =
                            push il x
                            il.Emit(OpCodes.Call, m)

                        match op with
                        | KUnary.Neg ->
                            push il x
                            il.Emit(OpCodes.Neg)
                        | KUnary.Fn Hybrid.Fn.Exp -> call (math "Exp")
                        | KUnary.Fn Hybrid.Fn.Log -> call (math "Log")
                        | KUnary.Fn Hybrid.Fn.Sqrt -> call (math "Sqrt")
                        | KUnary.Fn Hybrid.Fn.Abs -> call (math "Abs")
                        | KUnary.Fn Hybrid.Fn.Sin -> call (math "Sin")
                        | KUnary.Fn Hybrid.Fn.Cos -> call (math "Cos")
                        | KUnary.Fn Hybrid.Fn.Tanh -> call (math "Tanh")
                        | KUnary.Fn Hybrid.Fn.Sigmoid -> call (pointwise "sigmoid")
                        | KUnary.Fn Hybrid.Fn.Softplus -> call (pointwise "softplus")
                        | KUnary.Sign -> sign x
                        | KUnary.Step -> step x
                        | KUnary.Positive -> positive x

                        bind ()
                    | KBin(op, a, b) ->
                        let x = this.EmitAt(a, sx, sy)
                        let y = this.EmitAt(b, sx, sy)
                        push il x
                        push il y

                        match op with
                        | KBinary.Add -> il.Emit(OpCodes.Add)
                        | KBinary.Sub -> il.Emit(OpCodes.Sub)
                        | KBinary.Mul -> il.Emit(OpCodes.Mul)
                        | KBinary.Div -> il.Emit(OpCodes.Div)
                        | KBinary.Pow -> il.Emit(OpCodes.Call, math2 "Pow")
                        | KBinary.Min -> il.Emit(OpCodes.Call, math2 "Min")
                        | KBinary.Max -> il.Emit(OpCodes.Call, math2 "Max")

                        bind ()

                memo[key] <- value
                value

        /// a·b into a new local.
        member _.Product(a: IlValue, b: IlValue) =
            push il a
            push il b
            il.Emit(OpCodes.Mul)
            bind ()

        /// An emitter for code that runs conditionally (see the type's notes).
        member _.Scope() = Cell(il, args, memo)
