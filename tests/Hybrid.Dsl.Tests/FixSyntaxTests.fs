/// The fixes the checks suggest are written in the syntax the model came from: builder code for the
/// `model { }` builder, statements of the text form for `Parse.model`; a text-form fix pasted into the text
/// parses and fixes the model.
module Hybrid.Dsl.Tests.FixSyntaxTests

open Expecto
open Hybrid

/// The message of the `ModelException` that `f` raises.
let private modelError (f: unit -> Model) : string =
    try
        f () |> ignore
        failtest "expected a ModelException"
    with :? ModelException as e ->
        e.Message

/// The same mistake made in the builder and in the text form: its name, the builder's model, the text, the
/// builder's message and the text form's message.
let private cases: (string * (unit -> Model) * string * string * string) list = [
    "a field without a boundary condition",
    (fun () ->
        let v = sym "v"

        model "m" {
            domain (interval 0.0 1.0) (cells 10)
            field "v"
            equation (dt v == lap v)
            initialValue "v" 0.0
        }),
    "model m\ndomain interval [0, 1] cells 10\nfield v\ndv/dt = lap(v)\ninitial v = 0",
    "Model 'm' has 2 problems:\n  - Field 'v' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary \"v\" noFlux.\n  - Field 'v' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary \"v\" noFlux.",
    "Model 'm' has 2 problems:\n  - Field 'v' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary v noflux.\n  - Field 'v' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary v noflux."

    "a field without an initial condition",
    (fun () ->
        model "m" {
            field "v"
            equation "dv/dt = -v"
        }),
    "model m\nfield v\ndv/dt = -v",
    "Model 'm': Field 'v' has no initial condition. Add one, e.g. initialValue \"v\" 0.0 or initial \"v\" (fun x -> ...), or initialData \"v\" \"v0\" for values given as data.",
    "Model 'm': Field 'v' has no initial condition. Add one, e.g. initial v = 0 (any expression of x, y and the parameters), or initial v = data \"v0\" for values given as data."

    "a field without an equation",
    (fun () ->
        model "m" {
            field "v"
            initialValue "v" 1.0
        }),
    "model m\nfield v\ninitial v = 1",
    "Model 'm': Field 'v' has no equation. Add one, e.g. equation (dt v == ...).",
    "Model 'm': Field 'v' has no equation. Add one, e.g. dv/dt = ...."

    "a positive parameter with a negative value",
    (fun () ->
        model "m" {
            field "v"
            param "k" (positive -1.0)
            equation "dv/dt = -k v"
            initialValue "v" 1.0
        }),
    "model m\nfield v\nparam k = -1 positive\ndv/dt = -k v\ninitial v = 1",
    "Model 'm': Parameter 'k' is declared positive but its initial value is -1. Give a value > 0, e.g. param \"k\" (positive 0.1).",
    "Model 'm': Parameter 'k' is declared positive but its initial value is -1. Give a value > 0, e.g. param k = 0.1 positive."

    "an undeclared closure",
    (fun () ->
        model "m" {
            field "v"
            equation "dv/dt = -net(v)"
            initialValue "v" 1.0
        }),
    "model m\nfield v\ndv/dt = -net(v)\ninitial v = 1",
    "Model 'm': Closure 'net' is called in the equation of 'v' but not declared. Declare it, e.g. neural \"net\" (mlp [1; 32; 1]).",
    "Model 'm': Closure 'net' is called in the equation of 'v' but not declared. Declare it, e.g. closure net/1 = mlp [1, 32, 1]."

    "an undefined symbol",
    (fun () ->
        model "m" {
            field "v"
            equation "dv/dt = -growth v"
            initialValue "v" 1.0
        }),
    "model m\nfield v\ndv/dt = -growth v\ninitial v = 1",
    "Model 'm': Undefined symbol 'growth' in the equation of 'v'. Declare it (field, param, forcing or constant) or fix the spelling.",
    "Model 'm': Undefined symbol 'growth' in the equation of 'v'. Declare it (field, param, forcing or const) or fix the spelling."

    "a spatial operator on a 0-D model",
    (fun () ->
        model "m" {
            field "v"
            equation "dv/dt = lap(v)"
            initialValue "v" 1.0
        }),
    "model m\nfield v\ndv/dt = lap(v)\ninitial v = 1",
    "Model 'm': The equation of 'v' uses the spatial operator 'Δv' but the domain is a 0-D model. Declare a spatial domain, e.g. domain (interval 0.0 1.0) (cells 100), or remove the operator.",
    "Model 'm': The equation of 'v' uses the spatial operator 'Δv' but the domain is a 0-D model. Declare a spatial domain, e.g. domain interval [0, 1] cells 100, or remove the operator."

    // The builder's `mlp` sets the arity from the first width, so this mistake is made with the programmatic API,
    // whose fixes are written like the builder's.
    "an MLP whose widths disagree with the arity",
    (fun () ->
        let m = {
            Parse.modelUnchecked "model m\nfield v\ndv/dt = -net(v, v)\ninitial v = 1" with
                Closures = [
                    {
                        Name = "net"
                        Arity = 2
                        Architecture = Architecture.Mlp([ 3; 1 ], Activation.Tanh)
                        Units = None
                    }
                ]
        }

        Checks.validate m
        m),
    "model m\nfield v\nclosure net/2 = mlp [3, 1]\ndv/dt = -net(v, v)\ninitial v = 1",
    "Model 'm': Closure 'net' takes 2 arguments but its MLP is [3; 1]. The first width must be 2 and the last 1, e.g. mlp [2; 32; 1].",
    "Model 'm': Closure 'net' takes 2 arguments but its MLP is [3, 1]. The first width must be 2 and the last 1, e.g. mlp [2, 32, 1]."

    "a slow field shifted along the fast index",
    (fun () ->
        model "m" {
            domain (twoScaleLattice 4 2)
            field "X"
            equation "dX/dt = X[j+1]"
            initialValue "X" 0.0
        }),
    "model m\ndomain lattice 4 x 2\nfield X\ndX/dt = X[j+1]\ninitial X = 0",
    "Model 'm': 'X' is a slow field but is shifted along the fast index j in the equation of 'X'. Use X[k+m], or declare it fast (fastField \"X\").",
    "Model 'm': 'X' is a slow field but is shifted along the fast index j in the equation of 'X'. Use X[k+m], or declare it fast (field X fast)."
]

/// Text-form fixes that are whole statements: the text, the line the fix replaces ("" to append), the
/// statement the message suggests.
let private pasteable: (string * string * string * string) list = [
    "a missing boundary condition",
    "model m\ndomain interval [0, 1] cells 10\nfield v\ndv/dt = lap(v)\ninitial v = 0",
    "",
    "boundary v noflux"

    "a missing initial condition", "model m\nfield v\ndv/dt = -v", "", "initial v = 0"

    "an undeclared closure", "model m\nfield v\ndv/dt = -net(v)\ninitial v = 1", "", "closure net/1 = mlp [1, 32, 1]"

    "a positive parameter with a negative value",
    "model m\nfield v\nparam k = -1 positive\ndv/dt = -k v\ninitial v = 1",
    "param k = -1 positive",
    "param k = 0.1 positive"
]

let tests =
    testList "Fixes in the user's syntax" [
        for name, build, text, builderMessage, textMessage in cases do
            test (sprintf "%s: the builder is told builder code, the text form text" name) {
                Expect.equal (modelError build) builderMessage "the builder's message"
                Expect.equal (modelError (fun () -> Parse.model text)) textMessage "the text form's message"
            }

        test "the same model value gets each syntax's fix from problemsIn" {
            let m =
                Parse.modelUnchecked "model m\ndomain interval [0, 1] cells 10\nfield v\ndv/dt = lap(v)\ninitial v = 0"

            let left syntax = Checks.problemsIn syntax m |> List.head

            Expect.equal
                (left ModelSyntax.Text)
                "Field 'v' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary v noflux."
                "text"

            Expect.equal
                (left ModelSyntax.Builder)
                "Field 'v' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary \"v\" noFlux."
                "builder"

            Expect.equal (Checks.problems m) (Checks.problemsIn ModelSyntax.Builder m) "problems = builder syntax"
        }

        test "compilableIn writes the fix in the syntax given" {
            let m =
                Parse.modelUnchecked
                    "model m\ndomain interval [0, 1] cells 10\nfield v\ndv/dt = lap(v)\nboundary v left noflux"

            let message syntax =
                try
                    Checks.compilableIn syntax m
                    "compilable"
                with :? ModelException as e ->
                    e.Message

            Expect.equal
                (message ModelSyntax.Text)
                "Model 'm': Field 'v' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary v noflux."
                "text"

            Expect.equal
                (message ModelSyntax.Builder)
                "Model 'm': Field 'v' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary \"v\" noFlux."
                "builder"
        }

        for name, text, replaced, _ in pasteable do
            test (sprintf "%s: the fix pasted from the message into the text parses and fixes the model" name) {
                let message = modelError (fun () -> Parse.model text)
                // The suggested statement: what follows "e.g. " up to " (any", ", or" or the sentence's final ".".
                let suggestion =
                    let m =
                        System.Text.RegularExpressions.Regex.Match(
                            message,
                            @"e\.g\. (.+?)(?: \(any |, or |\.$)",
                            System.Text.RegularExpressions.RegexOptions.Multiline
                        )

                    Expect.isTrue m.Success (sprintf "a suggestion in: %s" message)
                    m.Groups[1].Value

                let fixedText =
                    if replaced = "" then
                        text + "\n" + suggestion
                    else
                        text.Replace(replaced, suggestion)

                Expect.notEqual fixedText text "the text changed"
                let fixedModel = Parse.model fixedText
                Expect.equal (Checks.problemsIn ModelSyntax.Text fixedModel) [] "no problems left"
            }

        test "each pasteable case's suggestion is the statement listed" {
            for name, text, _, statement in pasteable do
                Expect.stringContains (modelError (fun () -> Parse.model text)) ("e.g. " + statement) name
        }
    ]
