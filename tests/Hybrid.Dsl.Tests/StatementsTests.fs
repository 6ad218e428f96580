/// Model statements: '×' as a size separator, unclosed brackets reported where they open, and repeated initial
/// or boundary conditions refused (text and builder) like a repeated equation.
module Hybrid.Dsl.Tests.StatementsTests

open Expecto
open Hybrid

let private parseError (text: string) : string * int * int =
    try
        Parse.modelUnchecked text |> ignore
        failtestf "expected a ParseException for %A" text
    with :? ParseException as e ->
        e.Message, e.Line, e.Column

let private modelError (f: unit -> 'a) : string =
    try
        f () |> ignore
        failtest "expected a ModelException"
    with :? ModelException as e ->
        e.Message

/// A valid 1-D model with `extra` lines before the boundary and initial lines.
let private heat (extra: string) =
    "domain interval [0, 1] cells 10\nfield u\ndu/dt = lap(u)\n" + extra

let tests =
    testList "Statements" [
        test "× is accepted wherever x separates sizes" {
            let domainOf text =
                (Parse.modelUnchecked ("domain " + text)).Domain

            Expect.equal
                (domainOf "rectangle [0, 1] × [0, 2] cells 32 × 16")
                (Domain.Rectangle(0.0, 1.0, 0.0, 2.0, 32, 16))
                "×"

            Expect.equal
                (domainOf "rectangle [0, 1] x [0, 2] cells 32 x 16")
                (Domain.Rectangle(0.0, 1.0, 0.0, 2.0, 32, 16))
                "x"

            Expect.equal
                (domainOf "rectangle [0, 1] x [0, 2] cells 32x16")
                (Domain.Rectangle(0.0, 1.0, 0.0, 2.0, 32, 16))
                "32x16 without spaces"

            Expect.equal (domainOf "lattice 36 × 10") (Domain.Lattice(36, 10)) "lattice ×"
            Expect.equal (domainOf "lattice 36x10") (Domain.Lattice(36, 10)) "lattice 36x10"
            Expect.equal (domainOf "lattice 8") (Domain.Lattice(8, 0)) "no fast sites"

            let msg, _, _ = parseError "domain rectangle [0, 1] x [0, 2] cells 32 * 16"

            Expect.stringContains
                msg
                "expected 'x' (or '×') in 'cells <nx> x <ny>' but found '*'"
                "* is not a size separator"
        }

        test "an unclosed '(' is reported at the '(' on its own line, not where the text ends" {
            let lines = [
                "model m"
                "domain interval [0, 1] cells 10"
                "field u"
                "field v"
                "param D = 0.1 positive"
                "param r = 1"
                "dv/dt = -v"
                "boundary v noflux"
                "du/dt = D lap(u) + r u (1 - u"
                "boundary u noflux"
                "initial u = 0"
                "initial v = 1"
            ]

            let msg, line, col = parseError (String.concat "\n" lines)
            Expect.equal (line, col) (9, 24) "line and column of the '('"
            Expect.stringStarts msg "Line 9, column 24: this '(' is not closed; add ')' where it ends" "message"
            Expect.stringContains msg "du/dt = D lap(u) + r u (1 - u\n                         ^" "caret under the '('"
        }

        test "a bracket closed by the wrong kind is reported at the opener; a stray closer at itself" {
            let msg, line, col = parseError "field u\ndu/dt = (u]"
            Expect.equal (line, col) (2, 9) "at the '('"

            Expect.stringContains
                msg
                "this '(' is not closed: the ']' at line 2, column 11 comes first. Add ')' before it"
                "message"

            let msg2, line2, col2 = parseError "field u\ndu/dt = u)"
            Expect.equal (line2, col2) (2, 10) "at the ')'"
            Expect.stringContains msg2 "this ')' has no matching '('" "stray"
        }

        test "a second initial condition for a field is refused, naming both lines" {
            let msg, line, col =
                parseError (heat "boundary u noflux\ninitial u = 0\ninitial u = 1")

            Expect.equal (line, col) (6, 1) "at the second 'initial'"

            Expect.stringContains msg "a second initial condition for 'u'; the first is at line 5. Keep one." "message"
        }

        test "a second boundary condition for a field and side is refused, naming both lines" {
            let msg, line, _ =
                parseError (heat "boundary u left noflux\nboundary u right noflux\nboundary u left dirichlet 1")

            Expect.equal line 6 "at the repetition"

            Expect.stringContains
                msg
                "a second boundary condition for 'u' on the left side; the first is at line 4. Keep one."
                "same side"

            let msg2, line2, _ = parseError (heat "boundary u noflux\nboundary u periodic")
            Expect.equal line2 5 "every side twice"

            Expect.stringContains
                msg2
                "a second boundary condition for every side of 'u'; the first is at line 4."
                "every side"

            let msg3, line3, _ =
                parseError (heat "boundary u left dirichlet 1\nboundary u noflux")

            Expect.equal line3 5 "every side after one side"

            Expect.stringContains
                msg3
                "this line sets every side of 'u', but line 4 already set its left side. Put the every-side line first"
                "order"
        }

        test "a line for one side after the every-side line replaces it there, in place" {
            let m =
                Parse.model (heat "boundary u noflux\nboundary u left dirichlet 1 - t\ninitial u = 0")

            Expect.equal
                m.Boundaries
                [
                    {
                        Field = "u"
                        Side = Side.Left
                        Condition = BoundaryCondition.Dirichlet(Sub(Num 1.0, Sym "t"))
                    }
                    {
                        Field = "u"
                        Side = Side.Right
                        Condition = BoundaryCondition.NoFlux
                    }
                ]
                "left replaced, right kept"
        }

        test "the builder refuses a second initial or boundary condition like a second equation" {
            let u = sym "u"

            let initials =
                modelError (fun () ->
                    model "m" {
                        domain (interval 0.0 1.0) (cells 10)
                        field "u"
                        equation (dt u == lap u)
                        boundary "u" noFlux
                        initialValue "u" 0.0
                        initialValue "u" 1.0
                    })

            Expect.stringContains initials "Field 'u' has 2 initial conditions. Keep one." "initial"

            let sides =
                modelError (fun () ->
                    model "m" {
                        domain (interval 0.0 1.0) (cells 10)
                        field "u"
                        equation (dt u == lap u)
                        boundary "u" left noFlux
                        boundary "u" right noFlux
                        boundary "u" left (dirichlet 1.0)
                        initialValue "u" 0.0
                    })

            Expect.stringContains sides "Field 'u' has several boundary conditions on the left side. Keep one." "side"

            let everyAfterOne =
                modelError (fun () ->
                    model "m" {
                        domain (interval 0.0 1.0) (cells 10)
                        field "u"
                        equation (dt u == lap u)
                        boundary "u" left (dirichlet 1.0)
                        boundary "u" noFlux
                        initialValue "u" 0.0
                    })

            Expect.stringContains
                everyAfterOne
                "Field 'u' has several boundary conditions on the left side. Keep one."
                "every side after one side"

            let everyTwice =
                modelError (fun () ->
                    model "m" {
                        domain (interval 0.0 1.0) (cells 10)
                        field "u"
                        equation (dt u == lap u)
                        boundary "u" noFlux
                        boundary "u" periodic
                        initialValue "u" 0.0
                    })

            Expect.stringContains
                everyTwice
                "Field 'u' has several boundary conditions on the right side. Keep one."
                "every side twice"
        }

        test "the builder applies units in one pass and keeps declaration order" {
            let m =
                model "m" {
                    field "u"
                    param "a" 1.0
                    param "b" 2.0
                    constant "c" 3.0
                    units "b" "1/s"
                    units "u" "mol"
                    units "b" "1/h"
                    equation (dt (sym "u") == -(sym "a") * sym "b" * sym "c" * sym "u")
                    initialValue "u" 1.0
                }

            Expect.equal (m.Params |> List.map (fun p -> p.Name)) [ "a"; "b" ] "order"
            Expect.equal m.Params[1].Units (Some(Units.parse "1/h")) "the last units line wins"
            Expect.equal m.Params[0].Units None "no units"
            Expect.equal m.Fields.Head.Units (Some(Units.parse "mol")) "field units"
        }
    ]
