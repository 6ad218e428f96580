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

        test "every builder keyword produces the documented declaration" {
            let u, v, a, w = sym "u", sym "v", sym "a", sym "w"

            let m =
                model "all" {
                    domain (rectangle (0.0, 2.0) (0.0, 1.0)) (cells2 8 4)
                    field "u"
                    field "v"
                    param "a" (bounded 0.0 1.0 0.5 |> spatial)
                    param "b" (fixedAt 3.0)
                    param "c" (positive 0.1 |> fixedParam)
                    param "d" (free -1.0)
                    param "e" 2.0
                    forcing "w"
                    constant "K" 4.0
                    neural "f" (mlpWith Activation.Relu [ 1; 8; 1 ])
                    neural "g" (named "cnn" 2)
                    units "w" "mol/m^3"

                    equation (
                        dt u
                        == lap u + advect2 a a u + dx u + dy u + emin u v - emax u (sym "K")
                           + call "f" [ w ]
                    )

                    equation (
                        dt v
                        == softplus (call "g" [ u; v ]) - sigmoid v * sym "b" * sym "c" * sym "d" * sym "e"
                    )

                    boundary "u" noFlux
                    boundary "u" top (neumann 1.0)
                    boundary "u" bottom (neumannExpr (sym "x"))
                    boundary "v" periodic
                    initial2 "u" (fun x y -> x * y)
                    initialData "v" "v0"
                }

            Expect.equal m.Domain (Domain.Rectangle(0.0, 2.0, 0.0, 1.0, 8, 4)) "domain"

            Expect.equal
                (m.Params |> List.map (fun p -> p.Name, p.Constraint, p.Learnable, p.Shape))
                [
                    "a", Constraint.Bounded(0.0, 1.0), true, ParamShape.Spatial
                    "b", Constraint.Free, false, ParamShape.Scalar
                    "c", Constraint.Positive, false, ParamShape.Scalar
                    "d", Constraint.Free, true, ParamShape.Scalar
                    "e", Constraint.Free, true, ParamShape.Scalar
                ]
                "params"

            Expect.equal
                (m.Closures |> List.map (fun c -> c.Name, c.Arity, c.Architecture))
                [
                    "f", 1, Architecture.Mlp([ 1; 8; 1 ], Activation.Relu)
                    "g", 2, Architecture.Named "cnn"
                ]
                "closures"

            Expect.equal m.Forcings.Head.Units (Some(Units.parse "mol/m^3")) "units"
            Expect.equal m.Boundaries.Length 8 "4 sides × 2 fields"

            Expect.contains
                m.Boundaries
                {
                    Field = "u"
                    Side = Side.Top
                    Condition = BoundaryCondition.Neumann(Num 1.0)
                }
                "top"

            Expect.equal m.Initials[1].Value (InitialCondition.FromData "v0") "data"
            Expect.equal (Parse.model (Print.model Notation.Unicode m)) m "round trip"
        }

        test "lattice and point domains" {
            let x = sym "X"

            let m =
                model "ring" {
                    domain (lattice 8)
                    field "X"
                    equation (dt x == shift x 1 - shift x -1)
                    initial "X" (fun k -> sin k)
                }

            Expect.equal m.Domain (Domain.Lattice(8, 0)) "lattice"
        }
    ]
