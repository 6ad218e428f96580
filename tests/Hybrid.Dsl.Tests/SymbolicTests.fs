module Hybrid.Dsl.Tests.SymbolicTests

open Expecto
open Hybrid

let private p = Parse.expr

let tests =
    testList "Symbolic" [
        test "free symbols in order, shifts included, closures excluded" {
            Expect.equal
                (Symbolic.freeSymbols (p "∇·(D ∇u) + r u (1 − u) − kill(u, c) u"))
                [ "D"; "u"; "r"; "c" ]
                "symbols"

            Expect.equal (Symbolic.freeSymbols (p "X[k+1] X[k-1] + sum_j(Y)")) [ "X"; "Y" ] "lattice"
            Expect.equal (Symbolic.closures (p "kill(u, c) + f(u)")) [ "kill", 2; "f", 1 ] "closures"
        }

        test "substitution replaces symbols and renames shifted fields" {
            let e =
                Symbolic.substitute (Map.ofList [ "r", Num 2.0; "X", Sym "Z" ]) (p "r X + X[k+1]")

            Expect.equal e (p "2 Z + Z[k+1]") "substituted"
        }

        test "evaluation at given values" {
            let env = Map.ofList [ "u", 0.5; "r", 2.0; "c", 3.0 ]
            Expect.floatClose Accuracy.veryHigh (Symbolic.eval env (p "r u (1 - u)")) 0.5 "logistic"
            Expect.floatClose Accuracy.veryHigh (Symbolic.eval env (p "u² + sqrt(4) - min(r, c)")) 0.25 "powers and min"

            let withClosure =
                Symbolic.evalWith (fun _ args -> List.sum args) env (p "kill(u, c) u")

            Expect.floatClose Accuracy.veryHigh withClosure 1.75 "closure supplied"

            Expect.throwsT<ModelException> (fun () -> Symbolic.eval env (p "lap(u)") |> ignore) "not pointwise"
            Expect.throwsT<ModelException> (fun () -> Symbolic.eval env (p "q") |> ignore) "unbound"
        }

        test "simplification folds constants, drops neutral elements and collects like terms" {
            let s = Symbolic.simplify
            Expect.equal (s (p "0 + u*1")) (Sym "u") "neutral elements"
            Expect.equal (s (p "2*3 + 4")) (Num 10.0) "constant folding"
            Expect.equal (s (p "2 u + 3 u")) (p "5 u") "like terms"
            Expect.equal (s (p "u - u")) (Num 0.0) "cancellation"
            Expect.equal (s (p "u u")) (p "u^2") "equal factors"
            Expect.equal (s (p "-(-u)")) (Sym "u") "double negation"
            Expect.equal (s (p "log(exp(u))")) (Sym "u") "log exp"
            Expect.equal (s (p "lap(3)")) (Num 0.0) "operator of a constant"
            Expect.equal (s (p "u/1 + 0/u")) (Sym "u") "division"
        }

        test "derivatives with respect to fields and parameters" {
            let d v e = Symbolic.derivative v (p e)
            Expect.equal (d "u" "r u (1 - u)") (Symbolic.simplify (p "r (1 - u) - r u")) "logistic in u"
            Expect.equal (d "r" "r u (1 - u)") (Symbolic.simplify (p "u (1 - u)")) "logistic in r"
            Expect.equal (d "D" "div(D*grad(u))") (p "div(grad(u))") "through a linear operator"
            Expect.equal (d "u" "exp(2 u)") (p "2 exp(2 u)") "chain rule"
            Expect.equal (d "c" "kill(u) + u") (Num 0.0) "closure not depending on c"

            Expect.throwsT<ModelException> (fun () -> d "u" "kill(u)" |> ignore) "closures need autograd"
        }
    ]
