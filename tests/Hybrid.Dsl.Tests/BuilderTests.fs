module Hybrid.Dsl.Tests.BuilderTests

open Expecto
open Hybrid

let tests =
    testList "Builder" [
        test "operators build the expected tree" {
            let u, D, r = sym "u", sym "D", sym "r"
            let e = div (D * grad u) + r * u * (1.0 - u)

            Expect.equal e (Add(Divergence(Mul(D, Grad u)), Mul(Mul(r, u), Sub(Num 1.0, u)))) "tree"

            Expect.equal (u ** 2) (PowInt(u, 2)) "integer power"
            Expect.equal (u ** 2.0) (PowInt(u, 2)) "integral float power becomes PowInt"
            Expect.equal (u ** 0.5) (PowReal(u, Num 0.5)) "real power"
            Expect.equal (exp u) (Apply(Fn.Exp, u)) "exp"
            Expect.equal (dt u == 0.0) { Field = "u"; Rhs = Num 0.0 } "equation"
        }

        test "equations may be given as text" {
            let m =
                model "decay" {
                    field "u"
                    param "k" (positive 0.3)
                    equation "du/dt = -k u"
                    initialValue "u" 1.0
                }

            Expect.equal m.Equations [ { Field = "u"; Rhs = Parse.expr "-k u" } ] "parsed"
        }

        test "boundary on one side and on all sides" {
            let u = sym "u"

            let m =
                model "heat" {
                    domain (interval 0.0 1.0) (cells 10)
                    field "u"
                    equation (dt u == lap u)
                    boundary "u" noFlux
                    boundary "u" left (dirichletExpr (sin (sym "t")))
                    initial "u" (fun x -> x * (1.0 - x))
                }

            Expect.equal
                m.Boundaries
                [
                    {
                        Field = "u"
                        Side = Side.Left
                        Condition = BoundaryCondition.Dirichlet(Apply(Fn.Sin, Sym "t"))
                    }
                    {
                        Field = "u"
                        Side = Side.Right
                        Condition = BoundaryCondition.NoFlux
                    }
                ]
                "a later condition on one side replaces the earlier one in place"
        }

        test "Run checks the model and raises one ModelException naming the fix" {
            let u = sym "u"

            let msg =
                Expect.throwsC
                    (fun () ->
                        model "bad" {
                            domain (interval 0.0 1.0) (cells 10)
                            field "u"
                            equation (dt u == lap u)
                            initialValue "u" 0.0
                        }
                        |> ignore)
                    (fun e ->
                        Expect.isTrue (e :? ModelException) "ModelException"
                        e.Message)

            Expect.stringContains
                msg
                "Field 'u' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary \"u\" noFlux."
                "names the fix"
        }

        test "units given for an undeclared symbol are reported" {
            Expect.throwsT<ModelException>
                (fun () ->
                    model "m" {
                        field "u"
                        units "w" "m"
                        equation "du/dt = 0"
                        initialValue "u" 0.0
                    }
                    |> ignore)
                "undeclared"
        }
    ]
