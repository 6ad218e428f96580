/// Expressions far larger than any thread's stack allows for recursive walks: each test runs on a thread with a
/// 256 KB stack, where a recursive walk of a 10⁵-node chain overflows (and takes the test process with it).
module Hybrid.Dsl.Tests.DeepExprTests

open System
open System.Threading
open Expecto
open Hybrid

let private terms = 100_000

let private onSmallStack (f: unit -> unit) = SmallStack.run f

/// c₁·u + c₂·u + … with cᵢ = i mod 7, left-nested as the parser and `Expr.sum` build it.
let private bigSum () =
    Expr.sum [ for i in 1..terms -> Mul(Num(float (i % 7)), Sym "u") ]

let private expected = Seq.sum (seq { for i in 1..terms -> float (i % 7) })

let tests =
    testList "Deep expressions" [
        test "equality, hashing and ordering of 10⁵-term sums use no recursion" {
            onSmallStack (fun () ->
                let a, b = bigSum (), bigSum ()
                let c = Add(Sub(a, Sym "u"), Sym "v")
                Expect.isTrue (a = b) "equal trees"
                Expect.equal (hash a) (hash b) "equal hashes"
                Expect.isFalse (a = Add(a, Num 0.0)) "different trees"
                Expect.equal (compare a b) 0 "compare equal"
                Expect.notEqual (compare c (Add(Sub(a, Sym "u"), Sym "w"))) 0 "compare differs at the last leaf"
                Expect.equal (Expr.size a) (4 * terms - 1) "size"
                // terms − 1 Add nodes above one product c·u (two levels).
                Expect.equal (Expr.depth a) (terms + 1) "depth of the left-nested chain")
        }

        test "symbolic walks of a 10⁵-term sum: symbols, evaluation, simplification, derivative" {
            onSmallStack (fun () ->
                let e = bigSum ()
                let watch = Diagnostics.Stopwatch.StartNew()
                Expect.equal (Symbolic.freeSymbols e) [ "u" ] "free symbols"
                Expect.equal (Symbolic.eval (Map.ofList [ "u", 2.0 ]) e) (2.0 * expected) "value"
                // Like terms merge into one: Σ cᵢ u = (Σ cᵢ) u.
                Expect.equal (Symbolic.simplify e) (Mul(Num expected, Sym "u")) "merged"
                Expect.equal (Symbolic.derivative "u" (Mul(e, Sym "u"))) (Mul(Num(2.0 * expected), Sym "u")) "d/du"

                Expect.equal
                    (Symbolic.substitute (Map.ofList [ "u", Sym "w" ]) e |> Symbolic.freeSymbols)
                    [ "w" ]
                    "substituted"

                // A quadratic walk (10¹⁰ steps) would take hours; the linear ones take a few seconds.
                Expect.isLessThan watch.Elapsed.TotalSeconds 30.0 "linear time")
        }

        test "a 10⁵-factor product simplifies to one power" {
            onSmallStack (fun () ->
                let e = Expr.product [ for _ in 1..terms -> Sym "u" ]
                Expect.equal (Symbolic.simplify e) (PowInt(Sym "u", terms)) "u·u·…·u = u¹⁰⁰⁰⁰⁰")
        }
    ]
