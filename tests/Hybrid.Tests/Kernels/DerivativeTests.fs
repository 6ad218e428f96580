/// The one set of chain rules (Differentiation) as both callers use it: the kernels' `KExpr.derivative` and
/// `Symbolic.derivative` give the analytic derivative away from kinks, and at a kink each keeps its documented
/// choice (the kernels TorchSharp's subgradient, Symbolic the smooth form, undefined there).
module Hybrid.Tests.Kernels.DerivativeTests

open Expecto
open Hybrid
open Hybrid.Kernels

/// A pointwise expression in the symbols a and b as a kernel expression over parameters 0 and 1.
let rec private toKernel (e: Expr) : KExpr =
    match e with
    | Num v -> KConst v
    | Sym "a" -> KParam 0
    | Sym "b" -> KParam 1
    | Neg x -> KUn(KUnary.Neg, toKernel x)
    | Add(x, y) -> KBin(KBinary.Add, toKernel x, toKernel y)
    | Sub(x, y) -> KBin(KBinary.Sub, toKernel x, toKernel y)
    | Mul(x, y) -> KBin(KBinary.Mul, toKernel x, toKernel y)
    | Div(x, y) -> KBin(KBinary.Div, toKernel x, toKernel y)
    | PowInt(x, n) -> KPowInt(toKernel x, n)
    | PowReal(x, y) -> KBin(KBinary.Pow, toKernel x, toKernel y)
    | Apply(fn, x) -> KUn(KUnary.Fn fn, toKernel x)
    | Min(x, y) -> KBin(KBinary.Min, toKernel x, toKernel y)
    | Max(x, y) -> KBin(KBinary.Max, toKernel x, toKernel y)
    | _ -> failwithf "no kernel form in this test for %A" e

/// ∂e/∂v at (a, b) through the kernels and through Symbolic.
let private both (text: string) (v: string) (a: float) (b: float) : float * float =
    let e = Parse.expr text
    let leaf = if v = "a" then KParam 0 else KParam 1

    let kernel =
        KExpr.evaluate [| a; b |] [| 0; 1 |] 0.0 0.0 0.0 (KExpr.derivative leaf (toKernel e))

    let symbolic =
        Symbolic.eval (Map.ofList [ "a", a; "b", b ]) (Symbolic.derivative v e)

    kernel, symbolic

/// (expression, variable, a, b, the derivative worked out by hand).
let private smooth = [
    "exp(a*b)", "a", 0.3, 2.0, 2.0 * exp 0.6
    "log(a)/b", "a", 0.5, 3.0, 1.0 / 1.5
    "a^b", "b", 2.0, 1.5, 2.0 ** 1.5 * log 2.0
    "a^b", "a", 2.0, 1.5, 1.5 * sqrt 2.0
    "(a + b)^3", "a", 1.0, 2.0, 27.0
    "sqrt(a)*sin(b)", "a", 4.0, 0.5, sin 0.5 / 4.0
    "tanh(a*b)", "b", 0.2, 0.5, 0.2 * (1.0 - tanh 0.1 ** 2.0)
    "sigmoid(a)", "a", 0.3, 0.0, (1.0 / (1.0 + exp -0.3)) * (1.0 - 1.0 / (1.0 + exp -0.3))
    "softplus(2*a)", "a", -1.0, 0.0, 2.0 / (1.0 + exp 2.0)
    "cos(a*a) - b", "a", 0.7, 1.0, -(sin 0.49) * 1.4
    "-(a*b)", "b", 3.0, 1.0, -3.0
    "max(a, b)", "a", 2.0, 1.0, 1.0
    "max(a, b)", "b", 2.0, 1.0, 0.0
    "min(a, b*b)", "b", 2.0, 1.0, 2.0
    "abs(a - b)", "a", 1.0, 3.0, -1.0
]

let tests =
    testList "Differentiation" [
        test "kernels and Symbolic give the analytic derivative away from kinks" {
            for text, v, a, b, expected in smooth do
                let kernel, symbolic = both text v a b
                let what = sprintf "d(%s)/d%s at a = %g, b = %g" text v a b
                Expect.floatClose Accuracy.veryHigh kernel expected (what + ", kernels")
                Expect.floatClose Accuracy.veryHigh symbolic expected (what + ", Symbolic")
        }

        test "at a kink the kernels take TorchSharp's subgradient and Symbolic the smooth form (undefined there)" {
            // max and min split a tie evenly (step(0) = ½); |a|′ = sign(a) is 0 at 0.
            for text, v, a, b, kernelValue in
                [
                    "max(a, b)", "a", 1.0, 1.0, 0.5
                    "max(a, b)", "b", 1.0, 1.0, 0.5
                    "min(a, b)", "a", 1.0, 1.0, 0.5
                    "abs(a)", "a", 0.0, 0.0, 0.0
                ] do
                let kernel, symbolic = both text v a b
                let what = sprintf "d(%s)/d%s at a = %g, b = %g" text v a b
                Expect.equal kernel kernelValue (what + ", kernels")
                Expect.isTrue (System.Double.IsNaN symbolic) (sprintf "%s, Symbolic: %g, expected NaN" what symbolic)
        }
    ]
