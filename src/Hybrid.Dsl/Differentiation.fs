namespace Hybrid

/// How a back end differentiates at the kinks of abs, min and max, where the derivative is not defined.
[<RequireQualifiedAccess>]
type internal Kinks<'e> =
    /// The smooth forms, undefined exactly at a kink: |a|′ = a/|a| (the `Pointwise` table), and min and max
    /// differentiated as (a+b)/2 ∓ |a−b|/2: (a′+b′)/2 ∓ (a−b)(a′−b′)/(2|a−b|).
    | Smooth
    /// Subgradients, finite at a kink: |a|′ = sign(a); max′ = s·a′ + (1−s)·b′ with s = step(a−b), min′ the
    /// same with s = step(b−a). `step` is ½ at 0, so a tie splits the derivative evenly (TorchSharp's choice).
    | Subgradient of sign: ('e -> 'e) * step: ('e -> 'e)

/// The constructors a back end's expressions offer the chain rules (plain constructors, or smart ones that fold
/// constants), and its choice at kinks.
type internal Algebra<'e> = {
    /// A number.
    Num: float -> 'e
    /// −a
    Neg: 'e -> 'e
    /// a + b
    Add: 'e -> 'e -> 'e
    /// a − b
    Sub: 'e -> 'e -> 'e
    /// a × b
    Mul: 'e -> 'e -> 'e
    /// a ÷ b
    Div: 'e -> 'e -> 'e
    /// aⁿ
    PowInt: 'e -> int -> 'e
    /// A pointwise function of a.
    Apply: Fn -> 'e -> 'e
    /// The derivative at the kinks of abs, min and max.
    Kinks: Kinks<'e>
}

/// One node of an expression as the chain rules see it: its kind, its operands and their derivatives
/// (a, a′, b, b′) with respect to the variable.
[<RequireQualifiedAccess>]
type internal DiffNode<'e> =
    /// A leaf other than the variable (a number, another symbol): derivative 0.
    | Constant
    /// The variable: derivative 1.
    | Variable
    | Neg of a: 'e * da: 'e
    | Add of a: 'e * da: 'e * b: 'e * db: 'e
    | Sub of a: 'e * da: 'e * b: 'e * db: 'e
    | Mul of a: 'e * da: 'e * b: 'e * db: 'e
    | Div of a: 'e * da: 'e * b: 'e * db: 'e
    | PowInt of a: 'e * da: 'e * n: int
    /// a^b with a real exponent b.
    | Pow of a: 'e * da: 'e * b: 'e * db: 'e
    | Apply of fn: Fn * a: 'e * da: 'e
    | Min of a: 'e * da: 'e * b: 'e * db: 'e
    | Max of a: 'e * da: 'e * b: 'e * db: 'e

/// The chain rules of symbolic differentiation, once, for every expression type that offers an `Algebra`: the
/// model's `Expr` (Symbolic.derivative) and the generated kernels' expressions (their adjoints). Each caller walks
/// its own expressions and hands each node's view to `rule`.
[<RequireQualifiedAccess>]
module internal Differentiation =

    /// A `Pointwise` derivative (an expression in the symbol `a`) in the algebra, with `a` standing for `arg`.
    /// Those derivatives use only numbers, `a`, pointwise functions and arithmetic.
    let private pointwise (alg: Algebra<'e>) (fn: Fn) (arg: 'e) : 'e =
        Pointwise.derivative fn (Sym "a")
        |> Expr.fold (fun node rs ->
            match node, rs with
            | Num v, _ -> alg.Num v
            | Sym "a", _ -> arg
            | Neg _, [ x ] -> alg.Neg x
            | Add _, [ x; y ] -> alg.Add x y
            | Sub _, [ x; y ] -> alg.Sub x y
            | Mul _, [ x; y ] -> alg.Mul x y
            | Div _, [ x; y ] -> alg.Div x y
            | PowInt(_, n), [ x ] -> alg.PowInt x n
            | Apply(f, _), [ x ] -> alg.Apply f x
            | _ -> raise (HybridException($"Pointwise derivative term {node} has no form in this algebra.")))

    /// fn′(a), the back end's choice at the kink of abs.
    let private slope (alg: Algebra<'e>) (fn: Fn) (a: 'e) : 'e =
        match fn, alg.Kinks with
        | Fn.Abs, Kinks.Subgradient(sign, _) -> sign a
        | _ -> pointwise alg fn a

    /// The derivative of max(a, b) (`isMax`) or min(a, b).
    let private minMax (alg: Algebra<'e>) (isMax: bool) (a: 'e) (da: 'e) (b: 'e) (db: 'e) : 'e =
        match alg.Kinks with
        | Kinks.Smooth ->
            let sign = if isMax then 1.0 else -1.0
            let half = alg.Mul (alg.Num 0.5) (alg.Add da db)
            let w = alg.Sub a b
            let dAbs = alg.Div (alg.Mul w (alg.Sub da db)) (alg.Apply Fn.Abs w)
            alg.Add half (alg.Mul (alg.Num(0.5 * sign)) dAbs)
        | Kinks.Subgradient(_, step) ->
            // a′ where a wins, else b′
            let s = if isMax then step (alg.Sub a b) else step (alg.Sub b a)
            alg.Add (alg.Mul s da) (alg.Mul (alg.Sub (alg.Num 1.0) s) db)

    /// The derivative of one node, `self`, from its operands and their derivatives.
    let rule (alg: Algebra<'e>) (self: 'e) (node: DiffNode<'e>) : 'e =
        match node with
        | DiffNode.Constant -> alg.Num 0.0
        | DiffNode.Variable -> alg.Num 1.0
        | DiffNode.Neg(_, da) -> alg.Neg da
        | DiffNode.Add(_, da, _, db) -> alg.Add da db
        | DiffNode.Sub(_, da, _, db) -> alg.Sub da db
        | DiffNode.Mul(a, da, b, db) -> alg.Add (alg.Mul da b) (alg.Mul a db)
        | DiffNode.Div(a, da, b, db) -> alg.Div (alg.Sub (alg.Mul da b) (alg.Mul a db)) (alg.PowInt b 2)
        | DiffNode.PowInt(a, da, n) -> alg.Mul (alg.Mul (alg.Num(float n)) (alg.PowInt a (n - 1))) da
        | DiffNode.Pow(a, da, b, db) ->
            // a^b (b′ ln a + b a′/a)
            alg.Mul self (alg.Add (alg.Mul db (alg.Apply Fn.Log a)) (alg.Div (alg.Mul b da) a))
        | DiffNode.Apply(fn, a, da) -> alg.Mul (slope alg fn a) da
        | DiffNode.Min(a, da, b, db) -> minMax alg false a da b db
        | DiffNode.Max(a, da, b, db) -> minMax alg true a da b db
