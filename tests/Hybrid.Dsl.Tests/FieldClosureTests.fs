/// Closures over whole fields with several outputs (`Architecture.Cnn`, `Architecture.NamedField`, `sgs(w, q)[i]`):
/// the builder, the text form's round trips in Unicode and ASCII, LaTeX, and the checks' messages.
module Hybrid.Dsl.Tests.FieldClosureTests

open Expecto
open Hybrid

let private sgs = callOutput "sgs"
let private w, q = sym "w", sym "q"

/// Two fields on a periodic square whose sub-grid tendencies both come from the closure `spec`, unchecked
/// (built with a valid closure and equations, then given these).
let private twoFields (spec: ClosureSpec) (rhsW: Expr) (rhsQ: Expr) =
    let valid =
        model "sgs2d" {
            domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 8 8)
            field "w"
            field "q"
            param "nu" (positive 0.01)
            neural "sgs" (cnn [ 2; 8; 2 ])
            equation (dt w == sym "nu" * lap w + sgs 1 [ w; q ])
            equation (dt q == sym "nu" * lap q + sgs 2 [ w; q ])
            boundary "w" periodic
            boundary "q" periodic
            initial "w" (fun x -> sin (2.0 * System.Math.PI * x))
            initial "q" (fun x -> cos (2.0 * System.Math.PI * x))
        }

    {
        valid with
            Closures = [
                {
                    valid.Closures.Head with
                        Arity = spec.Arity
                        Architecture = spec.Architecture
                }
            ]
            Equations = [
                {
                    Field = "w"
                    Rhs = sym "nu" * lap w + rhsW
                }
                {
                    Field = "q"
                    Rhs = sym "nu" * lap q + rhsQ
                }
            ]
    }

/// The message of the `ModelException` that `f` raises, or "no exception".
let private raised (f: unit -> 'a) =
    try
        f () |> ignore
        "no exception"
    with :? ModelException as e ->
        e.Message

let private contains (text: string) (part: string) =
    Expect.stringContains text part $"'{part}' in: {text}"

let tests =
    testList "Field closures" [
        test "sgs(w, q)[2] parses to the second output, and prints back in Unicode, ASCII and LaTeX" {
            let e = Parse.expr "sgs(w, q)[2] - 0.5 q"

            let expected =
                Sub(CallOutput("sgs", 2, [ Sym "w"; Sym "q" ]), Mul(Num 0.5, Sym "q"))

            Expect.equal e expected "parsed"
            Expect.equal (Print.expr Notation.Unicode e) "sgs(w, q)[2] − 0.5 q" "Unicode"
            Expect.equal (Print.expr Notation.Ascii e) "sgs(w, q)[2] - 0.5*q" "ASCII"
            Expect.equal (Parse.expr (Print.expr Notation.Ascii e)) e "ASCII round trip"
            contains (Print.expr Notation.Latex e) "\\mathrm{sgs}_{2}\\left(w, q\\right)"
        }

        test "a model with a CNN closure round-trips through its Unicode and ASCII text" {
            let m =
                twoFields (cnnWith Activation.Relu 5 [ 2; 8; 2 ]) (sgs 1 [ w; q ]) (sgs 2 [ w; q ])

            Checks.validate m

            for notation in [ Notation.Unicode; Notation.Ascii ] do
                let text = Print.model notation m
                contains text "closure sgs/2 = cnn [2, 8, 2] kernel 5 relu"
                Expect.equal (Parse.model text) m $"{notation} round trip"
        }

        test "text: cnn's kernel and activation default to 3 and tanh; named \"key\" fieldwise outputs n" {
            let arch (line: string) =
                let m =
                    Parse.modelUnchecked ("model m\ndomain interval [0, 1] cells 8\nfield u\n" + line)

                m.Closures.Head.Architecture

            Expect.equal (arch "closure g/2 = cnn [2, 4, 3]") (Architecture.Cnn([ 2; 4; 3 ], 3, Activation.Tanh)) "cnn"

            Expect.equal
                (arch "closure g/2 = named \"mine\" fieldwise outputs 3")
                (Architecture.NamedField("mine", 3))
                "named fieldwise"

            Expect.equal
                (arch "closure g/2 = named \"mine\" fieldwise")
                (Architecture.NamedField("mine", 1))
                "one output"

            Expect.equal (arch "closure g/2 = named \"mine\"") (Architecture.Named "mine") "pointwise"

            let m = twoFields (namedField "mine" 2 2) (sgs 1 [ w; q ]) (sgs 2 [ w; q ])
            contains (Print.model Notation.Unicode m) "closure sgs/2 = named \"mine\" fieldwise outputs 2"
            Expect.equal (Parse.model (Print.model Notation.Unicode m)) m "named fieldwise round trip"
        }

        test "an output number that is not a whole number from 1 is a parse error naming the form" {
            let message =
                try
                    Parse.expr "sgs(w, q)[0]" |> ignore
                    "no exception"
                with :? ParseException as e ->
                    e.Message

            contains message "expected the output number in sgs(...)[n], a whole number from 1"
        }

        test "a bare call of a closure with several outputs must pick one (builder and text fixes)" {
            let m = twoFields (cnn [ 2; 8; 2 ]) (call "sgs" [ w; q ]) (sgs 2 [ w; q ])
            let message = raised (fun () -> Checks.validate m)
            contains message "Closure 'sgs' returns 2 outputs but the equation of 'w' calls it as 'sgs(w, q)'"
            contains message "callOutput \"sgs\" 1 [ w; q ]"
            let text = raised (fun () -> Parse.model (Print.model Notation.Unicode m))
            contains text "e.g. sgs(w, q)[1]."
        }

        test "an output number beyond the closure's outputs names the value, the count and the fix" {
            let m = twoFields (cnn [ 2; 8; 2 ]) (sgs 3 [ w; q ]) (sgs 2 [ w; q ])

            contains
                (raised (fun () -> Checks.validate m))
                "'sgs(w, q)[3]' in the equation of 'w' picks output 3 of closure 'sgs', which returns 2 outputs (numbered 1 to 2). Use callOutput \"sgs\" 2 [ w; q ], or declare the closure with 3 outputs."
        }

        test "every call of a closure over whole fields passes the same arguments" {
            let m = twoFields (cnn [ 2; 8; 2 ]) (sgs 1 [ w; q ]) (sgs 2 [ q; w ])

            contains
                (raised (fun () -> Checks.validate m))
                "Closure 'sgs' runs once per step on whole fields, so every call must pass the same arguments, but it is called as sgs(w, q) and as sgs(q, w)."
        }

        test "a closure over whole fields inside a flux coefficient κ is refused, naming it, the equation and the fix" {
            // κ of ∇·(κ ∇w) is evaluated on the cell faces, where a CNN over the cell-centred fields has no value.
            let m = twoFields (cnn [ 2; 8; 2 ]) (div (sgs 1 [ w; q ] * grad w)) (sgs 2 [ w; q ])

            let builder = raised (fun () -> Checks.validate m)

            contains
                builder
                "The equation of 'w' calls the closure 'sgs' (as sgs(w, q)[1]) inside the flux coefficient κ of ∇·(sgs(w, q)[1] ∇w)."

            contains
                builder
                "Compute the closure as a term of its own (e.g. + callOutput \"sgs\" 1 [ w; q ]), or use a pointwise MLP closure in κ (e.g. neural \"kappa\" (mlp [2; 32; 1]))."

            let text = raised (fun () -> Parse.model (Print.model Notation.Unicode m))

            contains
                text
                "Compute the closure as a term of its own (e.g. + sgs(w, q)[1]), or use a pointwise MLP closure in κ (e.g. closure kappa/2 = mlp [2, 32, 1])."

            // The same closure as a term of its own, and a pointwise closure in κ, pass.
            Checks.validate (twoFields (cnn [ 2; 8; 2 ]) (div (sym "nu" * grad w) + sgs 1 [ w; q ]) (sgs 2 [ w; q ]))
        }

        test "the CNN's channels fit the arity, its kernel is odd, and it needs a spatial domain" {
            let m = twoFields (cnn [ 2; 8; 2 ]) (sgs 1 [ w; q ]) (sgs 2 [ w; q ])

            let widths = {
                m with
                    Closures = [
                        {
                            m.Closures.Head with
                                Architecture = Architecture.Cnn([ 3; 8; 2 ], 4, Activation.Tanh)
                        }
                    ]
            }

            let message = raised (fun () -> Checks.validate widths)
            contains message "Closure 'sgs' takes 2 arguments but its CNN is [3; 8; 2]. The first channel width"
            contains message "Closure 'sgs' has a CNN kernel of size 4. Give an odd positive size"

            let point = {
                Model.empty "p" with
                    Fields = [ Model.field "u" ]
                    Closures = [
                        {
                            Name = "g"
                            Arity = 1
                            Architecture = Architecture.Cnn([ 1; 1 ], 3, Activation.Tanh)
                            Units = None
                        }
                    ]
                    Equations = [
                        {
                            Field = "u"
                            Rhs = Call("g", [ Sym "u" ])
                        }
                    ]
                    Initials = [
                        {
                            Field = "u"
                            Value = InitialCondition.Expr(Num 1.0)
                        }
                    ]
            }

            contains
                (raised (fun () -> Checks.validate point))
                "Closure 'g' runs on whole fields (a CNN) but the domain is a 0-D model"
        }
    ]
