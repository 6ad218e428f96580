/// Long expressions (flat sums and products of 10⁴–10⁵ terms) through printing and checking, on a thread with
/// a 256 KB stack: the walks use explicit stacks, and an expression over `Checks.maxExpressionNodes` is
/// refused with its size and the fix.
module Hybrid.Dsl.Tests.LargeInputTests

open Expecto
open Hybrid

/// u + u + … + u (n terms, a left-nested chain of n − 1 additions).
let private sumOf (n: int) (term: Expr) = Expr.sum (List.replicate n term)

/// u·u·…·u (n factors).
let private productOf (n: int) (factor: Expr) = Expr.product (List.replicate n factor)

/// The n copies of `s` joined by `sep`.
let private joined (n: int) (s: string) (sep: string) = String.concat sep (List.replicate n s)

let private notations = [ Notation.Unicode; Notation.Ascii; Notation.Latex ]

/// A 1-D model of one field u with this equation, noflux boundaries and u = 0 initially.
let private oneD (name: string) (rhs: Expr) : Model = {
    Model.empty name with
        Domain = Domain.Interval(0.0, 1.0, 10)
        Fields = [ Model.field "u" ]
        Params = [ Model.param "r" 1.0 ]
        Equations = [ { Field = "u"; Rhs = rhs } ]
        Boundaries = [
            {
                Field = "u"
                Side = Side.Left
                Condition = BoundaryCondition.NoFlux
            }
            {
                Field = "u"
                Side = Side.Right
                Condition = BoundaryCondition.NoFlux
            }
        ]
        Initials = [
            {
                Field = "u"
                Value = InitialCondition.Expr(Num 0.0)
            }
        ]
}

let private printing =
    testList "printing" [
        test "a 20,000-term sum prints in all three notations on a 256 KB stack" {
            let e = sumOf 20_000 (Sym "u")

            for n in notations do
                let text = SmallStack.run (fun () -> Print.expr n e)
                Expect.equal text.Length (20_000 + 3 * 19_999) $"{n}: length"
                Expect.equal text (joined 20_000 "u" " + ") $"{n}: u + u + … + u"
        }

        test "a 20,000-factor product prints in all three notations on a 256 KB stack" {
            let e = productOf 20_000 (Sym "u")

            for n, sep in [ Notation.Unicode, " "; Notation.Ascii, "*"; Notation.Latex, " \\, " ] do
                let text = SmallStack.run (fun () -> Print.expr n e)
                Expect.equal text (joined 20_000 "u" sep) $"{n}: the factors joined by '{sep}'"
        }

        test "a 20,000-term difference of negatives keeps its parentheses on a 256 KB stack" {
            // u − (−1) − (−1) − …: each right operand starts with a minus, so it is parenthesised.
            let e = List.fold (fun acc _ -> Sub(acc, Num -1.0)) (Sym "u") [ 1..19_999 ]
            let text = SmallStack.run (fun () -> Print.expr Notation.Unicode e)
            Expect.equal text ("u" + String.replicate 19_999 " − (−1)") "u − (−1) − … − (−1)"
        }

        test "a model with a 20,000-term equation prints and parses back on a 256 KB stack" {
            let m = oneD "long" (sumOf 20_000 (Mul(Sym "r", Sym "u")))
            let text = SmallStack.run (fun () -> Print.model Notation.Ascii m)

            Expect.equal
                text
                ("model long\ndomain interval [0, 1] cells 10\nfield u\nparam r = 1\ndu/dt = "
                 + joined 20_000 "r*u" " + "
                 + "\nboundary u noflux\ninitial u = 0\n")
                "the model text"
        }

        test "a 10⁵-term sum prints with memory linear in its length" {
            let e = sumOf 100_000 (Sym "u")
            let before = System.GC.GetAllocatedBytesForCurrentThread()
            let text = Print.expr Notation.Unicode e
            let allocated = System.GC.GetAllocatedBytesForCurrentThread() - before
            Expect.equal text (joined 100_000 "u" " + ") "u + u + … + u"
            // Concatenating the text at every node would copy Σ 4k characters for k up to 10⁵ (~4·10¹⁰ bytes);
            // a rope flattened once allocates a few hundred bytes per node (~7·10⁷ bytes, ~0.3 s of CPU).
            Expect.isLessThan allocated 200_000_000L "bytes allocated"
        }
    ]

let private checking =
    testList "checking" [
        test "a 20,000-term sum model validates on a 256 KB stack" {
            let m = oneD "long" (sumOf 20_000 (Mul(Sym "r", Sym "u")))
            Expect.equal (SmallStack.run (fun () -> Checks.problems m)) [] "no problems"
            SmallStack.run (fun () -> Checks.validate m)
        }

        test "a problem deep inside a 20,000-term sum is reported once on a 256 KB stack" {
            let m = oneD "long" (Add(sumOf 20_000 (Sym "u"), Sym "w"))

            Expect.equal
                (SmallStack.run (fun () -> Checks.problems m))
                [
                    "Undefined symbol 'w' in the equation of 'u'. Declare it (field, param, forcing or constant) or fix the spelling. Did you mean 'u'?"
                ]
                "the undefined symbol"
        }

        test "units are inferred through a 20,000-term sum and a 20,000-factor product on a 256 KB stack" {
            let withUnits (m: Model) = {
                m with
                    Fields = [
                        {
                            Model.field "u" with
                                Units = Some(Units.parse "mol")
                        }
                    ]
                    Params = [
                        {
                            Model.param "r" 1.0 with
                                Units = Some(Units.parse "1/s")
                        }
                    ]
            }

            let consistent = withUnits (oneD "long" (sumOf 20_000 (Mul(Sym "r", Sym "u"))))
            Expect.equal (SmallStack.run (fun () -> Checks.problems consistent)) [] "r u has units mol/s"

            let product = withUnits (oneD "deep" (Mul(productOf 20_000 (Sym "r"), Sym "u")))

            Expect.equal
                (SmallStack.run (fun () -> Checks.problems product))
                [
                    "Units: in the equation of 'u', the term '"
                    + joined 20_000 "r" " "
                    + " u' has units mol/s^20000 but ∂u/∂t has units mol/s (mol per time). Fix the units of the symbols in that term."
                ]
                "r²⁰⁰⁰⁰ u does not have the units of ∂u/∂t"
        }

        test "a fast field outside Σ_j in a 20,000-term slow equation is reported once on a 256 KB stack" {
            let m = {
                Model.empty "lattice" with
                    Domain = Domain.Lattice(4, 2)
                    Fields = [ Model.field "X"; { Model.field "Y" with Fast = true } ]
                    Equations = [
                        {
                            Field = "X"
                            Rhs = Add(sumOf 20_000 (FastSum(Sym "Y")), Sym "Y")
                        }
                        { Field = "Y"; Rhs = Sym "X" }
                    ]
                    Initials = [
                        {
                            Field = "X"
                            Value = InitialCondition.Expr(Num 0.0)
                        }
                        {
                            Field = "Y"
                            Value = InitialCondition.Expr(Num 0.0)
                        }
                    ]
            }

            Expect.equal
                (SmallStack.run (fun () -> Checks.problems m))
                [
                    "The fast field 'Y' appears in the equation of the slow field 'X' outside a fast sum. Wrap it in sumFast (...)."
                ]
                "the one Y outside the sums"
        }
    ]

let private sizeLimit =
    testList "size limit" [
        test "the limit is 100,000 nodes" { Expect.equal Checks.maxExpressionNodes 100_000 "documented limit" }

        test "an equation of 200,001 nodes is refused with its size, the limit and the fix" {
            let m = oneD "huge" (sumOf 100_001 (Sym "u"))

            let expected =
                "Model 'huge': The equation of 'u' has 200001 nodes (numbers, symbols and operators), more than the limit of 100000 (Checks.maxExpressionNodes). Split the sum into several fields or use a closure."

            let message =
                SmallStack.run (fun () ->
                    try
                        Checks.validate m
                        "no exception"
                    with :? ModelException as e ->
                        e.Message)

            Expect.equal message expected "the message"
        }

        test "exactly 100,000 nodes pass and 100,001 do not" {
            // A sum of 50,000 terms has 99,999 nodes; each negation adds one.
            let sum = sumOf 50_000 (Sym "u")
            Expect.equal (Expr.size (Neg sum)) 100_000 "nodes at the limit"
            Expect.equal (Checks.problems (oneD "at" (Neg sum))) [] "at the limit"

            Expect.equal
                (Checks.problems (oneD "over" (Neg(Neg sum))))
                [
                    "The equation of 'u' has 100001 nodes (numbers, symbols and operators), more than the limit of 100000 (Checks.maxExpressionNodes). Split the sum into several fields or use a closure."
                ]
                "one over the limit"
        }

        test "initial conditions and boundary values are limited too" {
            let big = sumOf 60_000 (Sym "x")
            let m = oneD "edges" (Num 0.0)

            let m = {
                m with
                    Initials = [
                        {
                            Field = "u"
                            Value = InitialCondition.Expr big
                        }
                    ]
                    Boundaries = [
                        {
                            Field = "u"
                            Side = Side.Left
                            Condition = BoundaryCondition.Dirichlet big
                        }
                        {
                            Field = "u"
                            Side = Side.Right
                            Condition = BoundaryCondition.Neumann(Num 0.0)
                        }
                    ]
            }

            Expect.equal
                (SmallStack.run (fun () -> Checks.problems m))
                [
                    "The initial condition of 'u' has 119999 nodes (numbers, symbols and operators), more than the limit of 100000 (Checks.maxExpressionNodes). Split the sum into several fields or use a closure."
                    "The left boundary condition of 'u' has 119999 nodes (numbers, symbols and operators), more than the limit of 100000 (Checks.maxExpressionNodes). Split the sum into several fields or use a closure."
                ]
                "both named"
        }
    ]

let tests = testList "Large inputs" [ printing; checking; sizeLimit ]
