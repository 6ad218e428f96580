module Hybrid.Dsl.Tests.PointwiseTests

open Expecto
open Hybrid

let tests =
    testList "Pointwise" [
        test "names print and parse back for every function" {
            for fn in Pointwise.all do
                Expect.equal (Pointwise.tryOfName (Pointwise.name fn)) (Some fn) (Pointwise.name fn)
        }

        test "derivatives agree with central differences for every function" {
            for fn in Pointwise.all do
                for x in [ 0.3; 0.9; 1.7 ] do
                    let h = 1e-6

                    let numeric = (Pointwise.value fn (x + h) - Pointwise.value fn (x - h)) / (2.0 * h)

                    let exact =
                        Symbolic.eval (Map.ofList [ "a", x ]) (Pointwise.derivative fn (Sym "a"))

                    Expect.floatClose Accuracy.medium exact numeric $"{Pointwise.name fn}′({x})"
        }

        test "softplus keeps full precision far below 0 and does not overflow far above" {
            // log(1 + e^−50) = e^−50 (1 − e^−50/2 + …): the naive log(1 + eˣ) gives 0 here.
            Expect.floatClose Accuracy.veryHigh (Pointwise.softplus -50.0) (exp -50.0) "far below 0"
            Expect.equal (Pointwise.softplus 800.0) 800.0 "far above 0"
            Expect.floatClose Accuracy.veryHigh (Pointwise.softplus 0.0) (log 2.0) "at 0"
            Expect.floatClose Accuracy.veryHigh (Pointwise.log1p 1e-12) (1e-12 - 0.5e-24) "log1p"
        }
    ]
