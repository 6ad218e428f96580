namespace Hybrid.Kernels

open Hybrid

/// Unary operations of the kernel language.
[<RequireQualifiedAccess>]
type internal KUnary =
    | Neg
    /// A pointwise function of the model language (values and derivatives from `Pointwise`).
    | Fn of Fn
    /// sign(a) ∈ {−1, 0, 1}: appears in derivatives of abs, min and max (a subgradient at the kink).
    | Sign
    /// The Heaviside step: 1 where a > 0, ½ at 0, 0 below: in derivatives of min and max (at a tie the
    /// derivative is split evenly between the arguments, as TorchSharp's `maximum` / `minimum` do).
    | Step
    /// The strict step: 1 where a > 0, else 0 (at 0 and at NaN). Selects between two branches as TorchSharp's
    /// `where(a > 0, x, y)` does, as p·x + (1 − p)·y with p its value (derivative 0, so the gradient goes to the
    /// chosen branch only): the limiter and the upwind switch of `Stencils.fluxAdvection`.
    | Positive

/// Binary operations of the kernel language.
[<RequireQualifiedAccess>]
type internal KBinary =
    | Add
    | Sub
    | Mul
    | Div
    | Pow
    | Min
    | Max

/// The per-cell expression a generated kernel evaluates: what one cell's right-hand side is, in terms of field
/// values at stencil offsets, parameter values, coordinates and time. Lowered from the model's `Expr` (spatial
/// operators become explicit stencils), differentiated here for the adjoint, and compiled to a loop.
type internal KExpr =
    /// A constant.
    | KConst of float
    /// Field number `field` at offset (dx, dy) from the current cell (ghost cells where it leaves the grid).
    | KRead of field: int * dx: int * dy: int
    /// Parameter number `index` (its constrained value; a spatial one at the current cell).
    | KParam of index: int
    /// A spatial parameter or a diagnostic field at offset (dx, dy) from the current cell, read from its padded
    /// copy number `copy` (`KernelPlan.ParamCopies`: what it holds, and its ghost cells): the face values of a
    /// diffusion coefficient read a parameter at the cell and at its neighbour across the face; the equations
    /// read a diagnostic field like a field.
    | KParamAt of copy: int * dx: int * dy: int
    /// Cell-centre coordinate along `axis` (0 = x, 1 = y) plus `shift` (for face values: ±h/2).
    | KCoord of axis: int * shift: float
    /// The time t of the stage.
    | KTime
    /// The output of neural closure call site number `site` at the current cell (evaluated by TorchSharp
    /// before the kernel runs, its vector–Jacobian product taken by TorchSharp in the adjoint).
    | KInput of site: int
    /// The value of forcing number `forcing` (data given as a function of time) at the current cell.
    | KData of forcing: int
    /// An integer power aⁿ.
    | KPowInt of KExpr * int
    /// A unary operation.
    | KUn of KUnary * KExpr
    /// A binary operation.
    | KBin of KBinary * KExpr * KExpr

/// Smart constructors (folding constants and neutral elements, so derivatives stay small) and the
/// symbolic derivative of kernel expressions.
[<RequireQualifiedAccess>]
module internal KExpr =

    let private zero = KConst 0.0
    let private one = KConst 1.0

    /// a + b
    let add a b =
        match a, b with
        | KConst 0.0, e
        | e, KConst 0.0 -> e
        | KConst x, KConst y -> KConst(x + y)
        | _ -> KBin(KBinary.Add, a, b)

    /// −a
    let neg a =
        match a with
        | KConst x -> KConst(-x)
        | KUn(KUnary.Neg, e) -> e
        | _ -> KUn(KUnary.Neg, a)

    /// a − b
    let sub a b =
        match a, b with
        | e, KConst 0.0 -> e
        | KConst 0.0, e -> neg e
        | KConst x, KConst y -> KConst(x - y)
        | _ -> KBin(KBinary.Sub, a, b)

    /// a × b
    let mul a b =
        match a, b with
        | KConst 0.0, _
        | _, KConst 0.0 -> zero
        | KConst 1.0, e
        | e, KConst 1.0 -> e
        | KConst -1.0, e
        | e, KConst -1.0 -> neg e
        | KConst x, KConst y -> KConst(x * y)
        | _ -> KBin(KBinary.Mul, a, b)

    /// a ÷ b
    let div a b =
        match a, b with
        | KConst 0.0, _ -> zero
        | e, KConst 1.0 -> e
        | KConst x, KConst y -> KConst(x / y)
        | e, KConst y -> mul (KConst(1.0 / y)) e
        | _ -> KBin(KBinary.Div, a, b)

    /// aⁿ
    let powInt a n =
        match a, n with
        | _, 0 -> one
        | e, 1 -> e
        | KConst x, n -> KConst(pown x n)
        | _ -> KPowInt(a, n)

    /// A unary operation applied to a number.
    let applyUnary (op: KUnary) (x: float) : float =
        match op with
        | KUnary.Neg -> -x
        | KUnary.Fn fn -> Pointwise.value fn x
        | KUnary.Sign -> float (sign x)
        | KUnary.Step ->
            if x > 0.0 then 1.0
            elif x = 0.0 then 0.5
            else 0.0
        | KUnary.Positive -> if x > 0.0 then 1.0 else 0.0

    /// A unary operation (constants folded).
    let un op a =
        match op, a with
        | KUnary.Neg, _ -> neg a
        | _, KConst x -> KConst(applyUnary op x)
        | _ -> KUn(op, a)

    /// A binary operation through the smart constructors.
    let bin op a b =
        match op with
        | KBinary.Add -> add a b
        | KBinary.Sub -> sub a b
        | KBinary.Mul -> mul a b
        | KBinary.Div -> div a b
        | KBinary.Pow ->
            match a, b with
            | KConst x, KConst y -> KConst(x ** y)
            | e, KConst 1.0 -> e
            | _, KConst 0.0 -> one
            | _ -> KBin(KBinary.Pow, a, b)
        | KBinary.Min ->
            match a, b with
            | KConst x, KConst y -> KConst(min x y)
            | _ -> KBin(KBinary.Min, a, b)
        | KBinary.Max ->
            match a, b with
            | KConst x, KConst y -> KConst(max x y)
            | _ -> KBin(KBinary.Max, a, b)

    /// Rebuilds an expression bottom-up with `f` applied to every leaf.
    let rec mapLeaves (f: KExpr -> KExpr) (e: KExpr) : KExpr =
        match e with
        | KConst _
        | KRead _
        | KParam _
        | KParamAt _
        | KCoord _
        | KTime
        | KInput _
        | KData _ -> f e
        | KPowInt(a, n) -> powInt (mapLeaves f a) n
        | KUn(op, a) -> un op (mapLeaves f a)
        | KBin(op, a, b) -> bin op (mapLeaves f a) (mapLeaves f b)

    /// The distinct values `pick` finds among the leaves, in order of first appearance.
    let private collect (pick: KExpr -> 'a option) (e: KExpr) : 'a list =
        let rec go acc e =
            match e with
            | KPowInt(a, _)
            | KUn(_, a) -> go acc a
            | KBin(_, a, b) -> go (go acc a) b
            | leaf ->
                match pick leaf with
                | Some v when not (List.contains v acc) -> v :: acc
                | _ -> acc

        go [] e |> List.rev

    /// Every distinct field read (field, dx, dy) in the expression.
    let reads (e: KExpr) : (int * int * int) list =
        e
        |> collect (function
            | KRead(f, dx, dy) -> Some(f, dx, dy)
            | _ -> None)

    /// Every parameter index used in the expression (at the cell, `KParam`).
    let parameters (e: KExpr) : int list =
        e
        |> collect (function
            | KParam i -> Some i
            | _ -> None)

    /// Every distinct read of a parameter copy (copy, dx, dy) in the expression.
    let copyReads (e: KExpr) : (int * int * int) list =
        e
        |> collect (function
            | KParamAt(c, dx, dy) -> Some(c, dx, dy)
            | _ -> None)

    /// Every coordinate axis the expression reads (`KCoord`).
    let coordinates (e: KExpr) : int list =
        e
        |> collect (function
            | KCoord(axis, _) -> Some axis
            | _ -> None)

    /// `e` as seen from the cell (dx, dy) away: the offsets of its field reads and parameter-copy reads moved by
    /// (dx, dy) (the leaves that depend on the cell otherwise are the emitter's business, `Codegen`).
    let shiftReads (dx: int) (dy: int) (e: KExpr) : KExpr =
        e
        |> mapLeaves (function
            | KRead(f, ex, ey) -> KRead(f, ex + dx, ey + dy)
            | KParamAt(c, ex, ey) -> KParamAt(c, ex + dx, ey + dy)
            | leaf -> leaf)

    /// Every closure call site whose output the expression uses.
    let inputs (e: KExpr) : int list =
        e
        |> collect (function
            | KInput i -> Some i
            | _ -> None)

    /// Every forcing the expression reads.
    let data (e: KExpr) : int list =
        e
        |> collect (function
            | KData i -> Some i
            | _ -> None)

    /// Kernel expressions through the smart constructors, with TorchSharp's subgradients at the kinks of abs,
    /// min and max (sign and step), so derivatives stay small and finite there (never 0/0).
    let private algebra: Algebra<KExpr> = {
        Num = KConst
        Neg = neg
        Add = add
        Sub = sub
        Mul = mul
        Div = div
        PowInt = powInt
        Apply = fun fn a -> un (KUnary.Fn fn) a
        Kinks = Kinks.Subgradient(un KUnary.Sign, un KUnary.Step)
    }

    /// ∂e/∂v where v is a leaf (a `KRead`, `KParam`, `KParamAt` or `KInput`), by the chain rules of `Differentiation`. Abs,
    /// min and max use sign / step functions, so the derivative is finite at their kinks (never 0/0) and equals
    /// TorchSharp's choice there.
    let derivative (v: KExpr) (e: KExpr) : KExpr =
        let rule = Differentiation.rule algebra

        let rec d e =
            match e with
            | KRead _
            | KParam _
            | KParamAt _
            | KInput _ -> rule e (if e = v then DiffNode.Variable else DiffNode.Constant)
            | KConst _
            | KCoord _
            | KTime
            | KData _ -> rule e DiffNode.Constant
            | KPowInt(a, n) -> rule e (DiffNode.PowInt(a, d a, n))
            | KUn(op, a) ->
                let da = d a

                if da = zero then
                    zero
                else
                    match op with
                    | KUnary.Neg -> rule e (DiffNode.Neg(a, da))
                    | KUnary.Fn fn -> rule e (DiffNode.Apply(fn, a, da))
                    // sign and the steps are piecewise constant: derivative 0, as in TorchSharp.
                    | KUnary.Sign
                    | KUnary.Step
                    | KUnary.Positive -> zero
            | KBin(op, a, b) ->
                let da = d a
                let db = d b

                match op with
                | KBinary.Add -> DiffNode.Add(a, da, b, db)
                | KBinary.Sub -> DiffNode.Sub(a, da, b, db)
                | KBinary.Mul -> DiffNode.Mul(a, da, b, db)
                | KBinary.Div -> DiffNode.Div(a, da, b, db)
                | KBinary.Pow -> DiffNode.Pow(a, da, b, db)
                | KBinary.Max -> DiffNode.Max(a, da, b, db)
                | KBinary.Min -> DiffNode.Min(a, da, b, db)
                |> rule e

        d e

    /// The value of an expression without field reads, closure outputs or forcings (a boundary value) at time
    /// `t` and coordinates (`x`, `y`), with scalar parameter i at `theta[offsets[i]]`. A plain recursive walk:
    /// it allocates nothing, and boundary values are few per step.
    let rec evaluate (theta: float[]) (offsets: int[]) (t: float) (x: float) (y: float) (e: KExpr) : float =
        match e with
        | KConst c -> c
        | KParam i -> theta[offsets[i]]
        | KTime -> t
        | KCoord(axis, shift) -> (if axis = 0 then x else y) + shift
        | KRead _
        | KParamAt _
        | KInput _
        | KData _ -> raise (HybridException($"Cannot evaluate {e} outside a kernel (it needs the grid's arrays)."))
        | KPowInt(a, n) -> pown (evaluate theta offsets t x y a) n
        | KUn(op, a) -> applyUnary op (evaluate theta offsets t x y a)
        | KBin(op, a, b) ->
            let va = evaluate theta offsets t x y a
            let vb = evaluate theta offsets t x y b

            match op with
            | KBinary.Add -> va + vb
            | KBinary.Sub -> va - vb
            | KBinary.Mul -> va * vb
            | KBinary.Div -> va / vb
            | KBinary.Pow -> va ** vb
            | KBinary.Min -> min va vb
            | KBinary.Max -> max va vb
