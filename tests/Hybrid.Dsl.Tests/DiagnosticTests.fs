/// Diagnostic (elliptic) fields in the DSL: the text form (`field psi diagnostic`, `Δpsi = omega`), the builder
/// (`diagnostic "psi"`, `equation (poisson psi == omega)`), printing that parses back, and the checks' messages.
module Hybrid.Dsl.Tests.DiagnosticTests

open Expecto
open Hybrid

/// 2-D barotropic vorticity with the streamfunction as a diagnostic field, as text.
let private vortexText =
    """
model vortex
domain rectangle [0, 1] x [0, 1] cells 8 x 8
field omega
field psi diagnostic
param nu = 0.01
∂omega/∂t = ∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega) + nu Δomega
Δpsi = omega
boundary omega periodic
boundary psi periodic
initial omega = sin(x) sin(y)
"""

/// The same model from the builder.
let private vortex =
    let omega, psi, nu = sym "omega", sym "psi", sym "nu"

    model "vortex" {
        domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 8 8)
        field "omega"
        diagnostic "psi"
        param "nu" 0.01
        equation (dt omega == dy psi * dx omega - dx psi * dy omega + nu * lap omega)
        equation (poisson psi == omega)
        boundary "omega" periodic
        boundary "psi" periodic
        initial2 "omega" (fun x y -> sin x * sin y)
    }

let private modelError (f: unit -> 'a) : string =
    try
        f () |> ignore
        failtest "expected a ModelException"
    with :? ModelException as e ->
        e.Message

let private parseError (text: string) : string =
    try
        Parse.modelUnchecked text |> ignore
        failtestf "expected a ParseException for %A" text
    with :? ParseException as e ->
        e.Message

/// The vortex text with `line` replaced by `replacement`.
let private edited (line: string) (replacement: string) =
    if not (vortexText.Contains line) then
        failtestf "the test text has no line %s" line

    vortexText.Replace(line, replacement)

let tests =
    testList "Diagnostic fields" [
        test "the text form declares a diagnostic field and its Poisson equation" {
            let m = Parse.model vortexText
            Expect.equal (m.Fields |> List.map (fun f -> f.Name)) [ "omega" ] "state fields"
            Expect.equal m.Diagnostics [ { Name = "psi"; Units = None } ] "diagnostic fields"

            Expect.equal
                m.EllipticEquations
                [
                    {
                        Field = "psi"
                        Screening = 0.0
                        Rhs = Sym "omega"
                    }
                ]
                "Δpsi = omega"
        }

        test "text and builder give the same model" { Expect.equal (Parse.model vortexText) vortex "same value" }

        test "the builder's text equations take elliptic lines too" {
            let fromText =
                model "vortex" {
                    domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 8 8)
                    field "omega"
                    diagnostic "psi"
                    param "nu" 0.01
                    equation "∂omega/∂t = ∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega) + nu Δomega; lap(psi) = omega"
                    boundary "omega" periodic
                    boundary "psi" periodic
                    initial2 "omega" (fun x y -> sin x * sin y)
                }

            Expect.equal fromText vortex "same model"
            Expect.equal (Parse.ellipticEquation "Δpsi − 2 psi = omega").Screening 2.0 "Parse.ellipticEquation"
        }

        test "ASCII lap(psi) - c*psi and Unicode Δψ − c ψ read the screening constant κ²" {
            let ascii = Parse.model (edited "Δpsi = omega" "lap(psi) - 4*psi = omega")
            let unicode = Parse.model (edited "Δpsi = omega" "Δpsi − 2.5 psi = omega")
            let unit = Parse.model (edited "Δpsi = omega" "Δpsi − psi = omega")
            Expect.equal ascii.EllipticEquations.Head.Screening 4.0 "ASCII κ²"
            Expect.equal unicode.EllipticEquations.Head.Screening 2.5 "Unicode κ²"
            Expect.equal unit.EllipticEquations.Head.Screening 1.0 "κ² = 1"

            let built =
                model "vortex" {
                    domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 8 8)
                    field "omega"
                    diagnostic "psi"
                    param "nu" 0.01

                    equation (
                        dt (sym "omega")
                        == sym "nu" * lap (sym "omega") + dy (sym "psi") * dx (sym "omega")
                    )

                    equation (screenedPoisson (sym "psi") 4.0 == sym "omega")
                    boundary "omega" periodic
                    boundary "psi" periodic
                    initialValue "omega" 0.0
                }

            Expect.equal built.EllipticEquations.Head.Screening 4.0 "builder κ²"
        }

        test "Unicode and ASCII printing parse back to the same model, with and without κ²" {
            let screened = Parse.model (edited "Δpsi = omega" "Δpsi − 3 psi = omega + x")

            for m in [ vortex; screened ] do
                for n in [ Notation.Unicode; Notation.Ascii ] do
                    let text = Print.model n m
                    Expect.equal (Parse.model text) m (sprintf "%A round trip of\n%s" n text)
        }

        test "the printed lines read as written" {
            let screened = Parse.model (edited "Δpsi = omega" "Δpsi − 3 psi = omega")
            let unicode = Print.model Notation.Unicode screened
            let ascii = Print.model Notation.Ascii screened
            let latex = Print.model Notation.Latex screened
            Expect.stringContains unicode "\nfield psi diagnostic\n" "Unicode declaration"
            Expect.stringContains unicode "\nΔpsi − 3 psi = omega\n" "Unicode equation"
            Expect.stringContains ascii "\nlap(psi) - 3*psi = omega\n" "ASCII equation"
            Expect.stringContains latex "\\Delta \\psi - 3 \\, \\psi &= \\omega" "LaTeX equation"
        }

        test "a diagnostic field without an elliptic equation: the fix in the user's syntax" {
            let text = edited "Δpsi = omega\n" ""
            let m = modelError (fun () -> Parse.model text)
            Expect.stringContains m "Diagnostic field 'psi' has no elliptic equation" "names the field"
            Expect.stringContains m "Δpsi = ... (lap(psi) = ... in ASCII)" "text fix"
            let b = modelError (fun () -> Checks.validate (Parse.modelUnchecked text))
            Expect.stringContains b "equation (poisson psi == ...)" "builder fix"
        }

        test "a diagnostic field with a time equation or an initial condition is refused" {
            let timed = modelError (fun () -> Parse.model (vortexText + "∂psi/∂t = 0\n"))
            Expect.stringContains timed "Diagnostic field 'psi' has a time equation ∂psi/∂t" "time equation"
            Expect.stringContains timed "declare 'psi' as a state field (field psi)" "fix"
            let initial = modelError (fun () -> Parse.model (vortexText + "initial psi = 0\n"))

            Expect.stringContains
                initial
                "Diagnostic field 'psi' has an initial condition, but it is solved from its elliptic equation at every instant"
                "initial condition"
        }

        test "an elliptic equation of a state field or of an undeclared name is refused" {
            let state = modelError (fun () -> Parse.model (vortexText + "Δomega = psi\n"))

            Expect.stringContains
                state
                "There is an elliptic equation for 'omega', which is a state field (with ∂omega/∂t). Declare 'omega' as a diagnostic field (field omega diagnostic)"
                "state field"

            let undeclared = modelError (fun () -> Parse.model (vortexText + "Δphi = omega\n"))
            Expect.stringContains undeclared "'phi', which is not a declared diagnostic field" "undeclared"
            Expect.stringContains undeclared "field phi diagnostic" "fix"
        }

        test "a negative κ² is refused with its value" {
            let m =
                modelError (fun () ->
                    model "screened" {
                        domain (interval 0.0 1.0) (cells 8)
                        field "u"
                        diagnostic "psi"
                        equation (dt (sym "u") == sym "psi")
                        equation (screenedPoisson (sym "psi") -2.0 == sym "u")
                        boundary "u" noFlux
                        boundary "psi" (dirichlet 0.0)
                        initialValue "u" 0.0
                    })

            Expect.stringContains m "κ² = -2 in (Δ − κ²)psi" "value"
            Expect.stringContains m "must be a finite number ≥ 0" "why"
        }

        test "diagnostic fields that use each other in a cycle, or themselves, are refused" {
            let cycle =
                modelError (fun () ->
                    Parse.model (
                        edited "Δpsi = omega" "Δpsi = omega + chi\nΔchi = psi"
                        + "field chi diagnostic\nboundary chi periodic\n"
                    ))

            Expect.stringContains cycle "depend on each other in a cycle (psi → chi → psi)" "cycle"

            let self =
                modelError (fun () -> Parse.model (edited "Δpsi = omega" "Δpsi = omega + psi"))

            Expect.stringContains self "The elliptic equation of 'psi' uses 'psi' itself" "self"
            Expect.stringContains self "Δpsi − c psi" "fix"
            // Ordered without a cycle: fine.
            Parse.model (
                edited "Δpsi = omega" "Δpsi = omega + chi\nΔchi = omega"
                + "field chi diagnostic\nboundary chi periodic\n"
            )
            |> ignore
        }

        test "a diagnostic field needs boundary conditions and a spatial domain" {
            let missing =
                modelError (fun () -> Parse.model (edited "boundary psi periodic\n" ""))

            Expect.stringContains
                missing
                "Field 'psi' has no boundary condition on the left side of the 2-D rectangle. Add one, e.g. boundary psi noflux."
                "boundary"

            let point =
                modelError (fun () ->
                    Parse.model "field u\nfield psi diagnostic\ndu/dt = psi\nlap(psi) = u\ninitial u = 0")

            Expect.stringContains
                point
                "Diagnostic field 'psi' is solved from an elliptic equation on a 1-D interval or 2-D rectangle, but the domain is a 0-D model. Declare e.g. domain interval [0, 1] cells 100"
                "domain"
        }

        test "a left-hand side that is not Δψ − c ψ is a parse error naming the form" {
            let m = parseError (edited "Δpsi = omega" "Δpsi + psi = omega")
            Expect.stringContains m "must be Δψ or Δψ − c ψ with a number c ≥ 0" "form"
            Expect.stringContains m "Δpsi + psi" "what was found"
        }
    ]
