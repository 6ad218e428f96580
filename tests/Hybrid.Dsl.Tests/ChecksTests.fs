/// The checks as rules: the order problems are listed in, and the look-ups `equationOf` and `boundaryOf`
/// that raise the same message `validate` gives.
module Hybrid.Dsl.Tests.ChecksTests

open Expecto
open Hybrid

/// The message `validate` raises for a model, or "valid".
let private validateMessage (m: Model) =
    try
        Checks.validate m
        "valid"
    with :? ModelException as e ->
        e.Message

/// The message `f` raises, or "no exception".
let private raised (f: unit -> 'a) =
    try
        f () |> ignore
        "no exception"
    with :? ModelException as e ->
        e.Message

let private fisher = Examples.fisherKpp

let tests =
    testList "Checks" [
        test
            "problems are listed rule group by rule group: domain, declarations, equations, symbols, initial and boundary conditions" {
            let m = {
                Model.empty "all" with
                    Domain = Domain.Interval(1.0, 0.0, 10)
                    Fields = [ Model.field "u"; Model.field "v" ]
                    Params = [
                        {
                            Model.param "k" -1.0 with
                                Constraint = Constraint.Positive
                        }
                    ]
                    Constants = [
                        {
                            Name = "t"
                            Value = 1.0
                            Units = None
                        }
                    ]
                    Equations = [
                        {
                            Field = "u"
                            Rhs = Mul(Sym "kk", Sym "u")
                        }
                        { Field = "w"; Rhs = Num 0.0 }
                    ]
                    Initials = [
                        {
                            Field = "u"
                            Value = InitialCondition.Expr(Sym "u")
                        }
                    ]
                    Boundaries = [
                        {
                            Field = "u"
                            Side = Side.Left
                            Condition = BoundaryCondition.Periodic
                        }
                        {
                            Field = "u"
                            Side = Side.Right
                            Condition = BoundaryCondition.NoFlux
                        }
                    ]
            }

            Expect.equal
                (Checks.problems m)
                [
                    "The interval [1, 0] is empty. Give x0 < x1, e.g. domain (interval 0.0 1.0) (cells 100)."
                    "The constant 't' uses the name of a coordinate (x, y, t). Choose another name."
                    "Parameter 'k' is declared positive but its initial value is -1. Give a value > 0, e.g. param \"k\" (positive 0.1)."
                    "Field 'v' has no equation. Add one, e.g. equation (dt v == ...)."
                    "There is an equation for 'w', which is not a declared field. Declare it with field \"w\". Did you mean 'u'?"
                    "Undefined symbol 'kk' in the equation of 'u'. Declare it (field, param, forcing or constant) or fix the spelling. Did you mean 'k'?"
                    "Field 'v' has no initial condition. Add one, e.g. initialValue \"v\" 0.0 or initial \"v\" (fun x -> ...), or initialData \"v\" \"v0\" for values given as data."
                    "'u' cannot be used in the initial condition of 'u': initial conditions may use coordinates, parameters, constants and forcings, not fields."
                    "Field 'u' is periodic on the left side but not on the right side. Periodic conditions come in pairs: set both."
                    "Field 'v' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary \"v\" noFlux."
                    "Field 'v' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary \"v\" noFlux."
                ]
                "the problems in rule order (as before the checks were split into rules)"
        }

        test "a fast field shifted along the slow index is valid (the same j at slow site k + m)" {
            let text =
                "domain lattice 4 x 2\nfield X\nfield Y fast\ndX/dt = sum_j(Y)\ndY/dt = Y[k+1] - Y\ninitial X = 0\ninitial Y = 0"

            Expect.equal (validateMessage (Parse.modelUnchecked text)) "valid" "accepted, as the compilers run it"
        }

        // The parser and the checks share one list of reserved words (`ReservedWords.all`): a model built without
        // the parser that names a parameter after an operator (jacobian, advectFlux) or a function is refused.
        test "a declaration named after an operator or a function is refused, as the parser refuses it" {
            for name in [ "jacobian"; "advectFlux"; "lap"; "softplus" ] do
                let m = {
                    fisher with
                        Params = fisher.Params @ [ Model.param name 1.0 ]
                }

                Expect.stringContains
                    (validateMessage m)
                    $"The parameter '{name}' uses a built-in function name. Choose another name."
                    name
        }

        test "equationOf returns a field's equation" {
            Expect.equal (Checks.equationOf fisher "u") fisher.Equations.Head "the equation of u"
        }

        test "equationOf raises the message validate gives for a missing equation" {
            let m = { fisher with Equations = [] }

            let expected =
                "Model 'fisher_kpp': Field 'u' has no equation. Add one, e.g. equation (dt u == ...)."

            Expect.equal (raised (fun () -> Checks.equationOf m "u")) expected "equationOf"
            Expect.equal (validateMessage m) expected "validate"
        }

        test "equationOf raises the message validate gives for two equations" {
            let m = {
                fisher with
                    Equations = fisher.Equations @ fisher.Equations
            }

            let expected = "Model 'fisher_kpp': Field 'u' has 2 equations. Keep exactly one."
            Expect.equal (raised (fun () -> Checks.equationOf m "u")) expected "equationOf"
            Expect.equal (validateMessage m) expected "validate"
        }

        test "boundaryOf returns a field's condition on a side" {
            Expect.equal
                (Checks.boundaryOf fisher "u" Side.Right)
                (BoundaryCondition.Dirichlet(Num 0.0))
                "u = 0 on the right"
        }

        test "boundaryOf raises the message validate gives for a missing side" {
            let m = {
                fisher with
                    Boundaries = fisher.Boundaries |> List.filter (fun b -> b.Side = Side.Left)
            }

            let expected =
                "Model 'fisher_kpp': Field 'u' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary \"u\" noFlux."

            Expect.equal (raised (fun () -> Checks.boundaryOf m "u" Side.Right)) expected "boundaryOf"
            Expect.equal (validateMessage m) expected "validate"
        }

        test "boundaryOf raises the message validate gives for two conditions on a side" {
            let m = {
                fisher with
                    Boundaries = fisher.Boundaries @ [ fisher.Boundaries.Head ]
            }

            let expected =
                "Model 'fisher_kpp': Field 'u' has several boundary conditions on the left side. Keep one."

            Expect.equal (raised (fun () -> Checks.boundaryOf m "u" Side.Left)) expected "boundaryOf"
            Expect.equal (validateMessage m) expected "validate"
        }
    ]
