namespace Hybrid

/// The pointwise functions `Fn` in one table: their names in text, their values on numbers and their
/// derivatives as expressions. The symbolic layer, the generated kernels and their adjoints all take values
/// and derivatives from here, so every back end computes the same function.
[<RequireQualifiedAccess>]
module Pointwise =

    /// Every pointwise function, in declaration order.
    let all: Fn list = [
        Fn.Exp
        Fn.Log
        Fn.Sqrt
        Fn.Abs
        Fn.Sin
        Fn.Cos
        Fn.Tanh
        Fn.Sigmoid
        Fn.Softplus
    ]

    /// The name of a pointwise function as written in text (`exp`, `log`, …, `softplus`).
    let name (fn: Fn) : string =
        match fn with
        | Fn.Exp -> "exp"
        | Fn.Log -> "log"
        | Fn.Sqrt -> "sqrt"
        | Fn.Abs -> "abs"
        | Fn.Sin -> "sin"
        | Fn.Cos -> "cos"
        | Fn.Tanh -> "tanh"
        | Fn.Sigmoid -> "sigmoid"
        | Fn.Softplus -> "softplus"

    /// The pointwise function written `text` (as `name` prints it), if any.
    let tryOfName (text: string) : Fn option =
        all |> List.tryFind (fun fn -> name fn = text)

    /// log(1 + x), accurate for small |x| (where 1 + x rounds).
    let log1p (x: float) : float =
        let u = 1.0 + x

        if u = 1.0 then x
        elif System.Double.IsInfinity u then log u
        else log u * x / (u - 1.0)

    /// 1 / (1 + e⁻ˣ)
    let sigmoid (x: float) : float = 1.0 / (1.0 + exp -x)

    /// log(1 + eˣ) as max(x, 0) + log(1 + e^−|x|): no overflow for large x, full relative precision for very
    /// negative x (where it is ≈ eˣ).
    let softplus (x: float) : float = max x 0.0 + log1p (exp -(abs x))

    /// The value of a pointwise function at a number.
    let value (fn: Fn) (x: float) : float =
        match fn with
        | Fn.Exp -> exp x
        | Fn.Log -> log x
        | Fn.Sqrt -> sqrt x
        | Fn.Abs -> abs x
        | Fn.Sin -> sin x
        | Fn.Cos -> cos x
        | Fn.Tanh -> tanh x
        | Fn.Sigmoid -> sigmoid x
        | Fn.Softplus -> softplus x

    /// The derivative fn′(a) as an expression in `a`, the argument (chain rule not applied): for `Fn.Abs` it is
    /// a / |a| (undefined at 0; the generated kernels use sign(a), equal away from 0).
    let derivative (fn: Fn) (a: Expr) : Expr =
        match fn with
        | Fn.Exp -> Apply(Fn.Exp, a)
        | Fn.Log -> Div(Num 1.0, a)
        | Fn.Sqrt -> Div(Num 0.5, Apply(Fn.Sqrt, a))
        | Fn.Abs -> Div(a, Apply(Fn.Abs, a))
        | Fn.Sin -> Apply(Fn.Cos, a)
        | Fn.Cos -> Neg(Apply(Fn.Sin, a))
        | Fn.Tanh -> Sub(Num 1.0, PowInt(Apply(Fn.Tanh, a), 2))
        | Fn.Sigmoid -> Mul(Apply(Fn.Sigmoid, a), Sub(Num 1.0, Apply(Fn.Sigmoid, a)))
        | Fn.Softplus -> Apply(Fn.Sigmoid, a)
