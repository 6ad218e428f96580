/// The Arakawa Jacobian J(a, b) and the limited flux advection advectFlux(…) in the text form, the printer, the
/// builder, symbolic differentiation, units and the checks.
module Hybrid.Dsl.Tests.AdvectionSyntaxTests

open Expecto
open Hybrid

let private p = Parse.expr

/// The message `validate` raises for a model text, or "valid".
let private messageOf (text: string) =
    try
        Checks.validate (Parse.modelUnchecked text)
        "valid"
    with :? ModelException as e ->
        e.Message

/// The message `Parse.expr` raises for a text.
let private parseError (text: string) =
    try
        Parse.expr text |> ignore
        "parsed"
    with :? ParseException as e ->
        e.Message

let private rectangle (equation: string) =
    $"model m\ndomain rectangle [0, 1] x [0, 1] cells 8 x 8\nfield q\nparam psi = 1\n{equation}\nboundary q periodic\ninitial q = 0"

let private interval (equation: string) =
    $"model m\ndomain interval [0, 1] cells 8\nfield q\nparam psi = 1\n{equation}\nboundary q periodic\ninitial q = 0"

let tests =
    testList "Advection syntax" [
        test "J(a, b) and jacobian(a, b) parse to the Jacobian; J alone is a symbol" {
            let j = Jacobian(Sym "psi", Sym "q")
            Expect.equal (p "J(psi, q)") j "J(…)"
            Expect.equal (p "jacobian(psi, q)") j "jacobian(…)"
            Expect.equal (p "-J(psi, q) + J") (Add(Neg j, Sym "J")) "J without a parenthesis is a symbol"
            Expect.equal (p "J(psi + 1, 2 q)") (Jacobian(Add(Sym "psi", Num 1.0), Mul(Num 2.0, Sym "q"))) "expressions"
        }

        test "advectFlux parses with one or two velocity components" {
            Expect.equal (p "advectFlux(v, q)") (FluxAdvect([ Sym "v" ], Sym "q")) "1-D"

            Expect.equal
                (p "advectFlux(-dy(psi), dx(psi), q)")
                (FluxAdvect([ Neg(Partial(Axis.Y, Sym "psi")); Partial(Axis.X, Sym "psi") ], Sym "q"))
                "2-D, velocities from a streamfunction"
        }

        test "the printer writes J(ψ, q), jacobian(ψ, q) and J(\\psi, q), and both text forms parse back" {
            let e = Neg(Jacobian(Sym "psi", Sym "q"))
            Expect.equal (Print.expr Notation.Unicode e) "−J(psi, q)" "Unicode"
            Expect.equal (Print.expr Notation.Ascii e) "-jacobian(psi, q)" "ASCII"
            Expect.equal (Print.expr Notation.Latex e) "-J(\\psi, q)" "LaTeX"
            Expect.equal (p (Print.expr Notation.Unicode e)) e "Unicode round trip"
            Expect.equal (p (Print.expr Notation.Ascii e)) e "ASCII round trip"
            let f = FluxAdvect([ Sym "u"; Sym "v" ], Sym "q")
            Expect.equal (Print.expr Notation.Unicode f) "advectFlux(u, v, q)" "Unicode flux form"

            Expect.equal
                (Print.expr Notation.Latex f)
                "\\nabla\\cdot\\left(\\left(u, v\\right)\\, q\\right)_{\\mathrm{lim}}"
                "LaTeX flux form"

            Expect.equal (p (Print.expr Notation.Ascii f)) f "ASCII round trip"
        }

        test "a wrong number of arguments is refused with the operator's form" {
            Expect.stringContains (parseError "J(q)") "the Jacobian takes two arguments" "J(q)"
            Expect.stringContains (parseError "jacobian(a, b, c)") "but was given 3" "three arguments"

            Expect.stringContains
                (parseError "advectFlux(q)")
                "'advectFlux' takes the velocity components"
                "one argument"
        }

        test "the Jacobian on an interval is refused, naming the rectangle fix" {
            let m = messageOf (interval "dq/dt = -J(psi, q)")
            Expect.stringContains m "uses the Jacobian 'J(psi, q)'" "names the term"
            Expect.stringContains m "needs a 2-D rectangle domain" "says why"
            Expect.equal (messageOf (rectangle "dq/dt = -J(psi, q)")) "valid" "valid on a rectangle"
        }

        test "flux advection needs one velocity component per axis" {
            Expect.stringContains
                (messageOf (rectangle "dq/dt = -advectFlux(psi, q)"))
                "has 1 velocity component but the domain has 2 dimensions"
                "one component in 2-D"

            Expect.equal (messageOf (interval "dq/dt = -advectFlux(psi, q)")) "valid" "valid in 1-D"
        }

        test "the builder makes the same expressions" {
            let psi, q, u, v = Sym "psi", Sym "q", Sym "u", Sym "v"
            Expect.equal (jacobian psi q) (p "J(psi, q)") "jacobian"
            Expect.equal (advectFlux u q) (p "advectFlux(u, q)") "advectFlux"
            Expect.equal (advectFlux2 u v q) (p "advectFlux(u, v, q)") "advectFlux2"
        }

        test "derivatives: J is bilinear; a parameter's derivative passes through the flux form" {
            Expect.equal
                (Symbolic.derivative "a" (p "J(a psi, a q)"))
                (Symbolic.simplify (p "J(psi, a q) + J(a psi, q)"))
                "product rule of the bilinear J"

            Expect.equal
                (Symbolic.derivative "c" (p "advectFlux(c u, q)"))
                (Symbolic.simplify (p "advectFlux(u, q)"))
                "linear in the velocity"

            Expect.equal (Symbolic.derivative "c" (p "J(psi, q)")) (Num 0.0) "independent"
        }

        test "units: J(ψ, q) has the units of ψ q / L², advectFlux(v, q) those of v q / L" {
            let text (rhs: string) =
                $"model m\ndomain rectangle [0, 1] x [0, 1] cells 8 x 8\nfield q [1/s]\nparam psi = 1 [m^2/s]\nparam u = 1 [m/s]\nparam v = 1 [m/s]\ndq/dt = {rhs}\nboundary q periodic\ninitial q = 0"

            Expect.equal (messageOf (text "-J(psi, q)")) "valid" "m²/s · 1/s / m² = 1/s², as ∂q/∂t"
            Expect.equal (messageOf (text "-advectFlux(u, v, q)")) "valid" "m/s · 1/s / m = 1/s²"
            Expect.stringContains (messageOf (text "-J(psi, psi q)")) "Units" "m²/s · m²/s² / m² is not 1/s²"
        }
    ]
