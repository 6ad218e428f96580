/// A table of malformed inputs, each with the message fragment it must produce. Only Hybrid's own
/// exceptions (ParseException for syntax, ModelException for checks) may come out.
module Hybrid.Dsl.Tests.MalformedTests

open Expecto
open Hybrid

/// A valid 1-D model around one equation line.
let private oneD (equation: string) =
    sprintf
        "domain interval [0, 1] cells 10\nfield u\nparam D = 0.1 positive\n%s\nboundary u noflux\ninitial u = 0"
        equation

/// A valid 1-D model with extra declaration lines before the equation.
let private withDecls (decls: string) (equation: string) = oneD (decls + "\n" + equation)

/// (description, input, expected message fragment)
let cases: (string * string * string) list = [
    // Syntax (ParseException)
    "unclosed parenthesis", oneD "du/dt = (u + 1", "Line 4, column 9: this '(' is not closed"
    "dangling operator", oneD "du/dt = u +", "expected a number, a symbol"
    "unknown character", oneD "du/dt = u $ 2", "unexpected character '$'"
    "control character", oneD "du/dt = u\u0001", "unexpected character 'U+0001'"
    "infinite number", oneD "du/dt = 1e999", "not a finite real number"
    "function without parentheses", oneD "du/dt = exp u", "built-in function; call it with parentheses"
    "min with one argument", oneD "du/dt = min(u)", "'min' takes 2 arguments"
    "exp with two arguments", oneD "du/dt = exp(u, u)", "'exp' takes 1 argument"
    "ambiguous power tower", oneD "du/dt = u^2^3", "ambiguous"
    "missing exponent", oneD "du/dt = u^", "expected an exponent"
    "shift without offset", oneD "du/dt = u[k+]", "expected an integer offset"
    "fractional shift", oneD "du/dt = u[k+1.5]", "expected an integer offset"
    "unknown lattice index", oneD "du/dt = u[m]", "expected the lattice index k or j"
    "unclosed shift", oneD "du/dt = u[k+1", "Line 4, column 10: this '[' is not closed"
    "spatial derivative on the left", oneD "∂u/∂x = u", "only time derivatives"
    "ASCII left side not in time", oneD "du/dx = u", "expected 'dt'"
    "missing equals", oneD "du/dt u", "expected '='"
    "empty right-hand side", oneD "du/dt =", "has no right-hand side"
    "not an equation", oneD "u = 1", "expected an equation"
    "comma outside a call", oneD "du/dt = (u, 1)", "',' outside a call"
    "unknown domain", "domain cube", "expected a domain"
    "interval without comma", "domain interval [0 1] cells 10", "expected ','"
    "negative cell count", "domain interval [0, 1] cells -3", "expected a whole number"
    "param without '='", "param D 0.1", "expected '='"
    "unknown param option", "param D = 0.1 learned", "options are positive"
    "builtin as a name", "field exp", "built-in function name"
    "unknown unit", "field u [m/ss]", "unknown unit symbol 'ss'"
    "closure without arity", "closure kill = mlp [2, 1]", "expected '/'"
    "unknown activation", "closure kill/2 = mlp [2, 1] swish", "unknown activation 'swish'"
    "unknown boundary condition", oneD "boundary u sideways", "expected a boundary condition"
    "unclosed string", "model \"abc", "string is not closed"
    "Σ without _j", oneD "du/dt = Σx", "'Σ' must be followed by '_j'"
    "unknown axis", oneD "du/dt = ∂z(u)", "expected the axis x or y"
    "lone superscript", oneD "du/dt = ²", "expected a number, a symbol"
    "boundary on a 0-D model",
    "domain point\nfield u\ndu/dt = -u\nboundary u noflux\ninitial u = 1",
    "need an interval or rectangle domain"
    "nesting too deep",
    oneD ("du/dt = " + String.replicate 400 "(" + "u" + String.replicate 400 ")"),
    "nested more than"
    "only > 0 bound", "param D > 1 = 2", "only '> 0' is supported"

    // Checks (ModelException)
    "undefined symbol", oneD "du/dt = -k u", "Undefined symbol 'k' in the equation of 'u'"
    "misspelt symbol", oneD "du/dt = -DD u", "Did you mean 'D'?"
    "doubly declared symbol", withDecls "param u = 1" "du/dt = -u", "Symbol 'u' is declared 2 times"
    "field without equation", withDecls "field v" "du/dt = -u", "Field 'v' has no equation"
    "field without initial condition", "domain point\nfield u\ndu/dt = -u", "Field 'u' has no initial condition"
    "field without boundary condition",
    "domain interval [0, 1] cells 10\nfield u\ndu/dt = lap(u)\nboundary u left noflux\ninitial u = 0",
    "Field 'u' has no boundary condition on the right side of the 1-D interval. Add one, e.g. boundary u noflux."
    "spatial operator in a 0-D model",
    "domain point\nfield u\nparam D = 1\ndu/dt = D lap(u)\ninitial u = 1",
    "but the domain is a 0-D model"
    "closure with the wrong arity",
    withDecls "closure kill/2 = mlp [2, 8, 1]" "du/dt = -kill(u) u",
    "Closure 'kill' takes 2 arguments but is called with 1"
    "positive parameter with a negative value",
    "domain point\nfield u\nparam D = -1 positive\ndu/dt = -D u\ninitial u = 1",
    "declared positive but its initial value is -1"
    "bounded parameter out of bounds",
    "domain point\nfield u\nparam a = 2 in [0, 1]\ndu/dt = -a u\ninitial u = 1",
    "bounded to [0, 1] but its initial value is 2"
    "units mismatch names the term",
    "domain interval [0, 1] cells 10\nfield u [mol/m^3]\nparam D = 0.1 positive [m^2]\ndu/dt = div(D*grad(u))\nboundary u noflux\ninitial u = 0",
    "the term '∇·(D ∇u)' has units"
    "parameter called as a closure", oneD "du/dt = D(u)", "'D' is a parameter, not a closure"
    "undeclared closure", oneD "du/dt = net(u)", "Closure 'net' is called in the equation of 'u' but not declared"
    "closure without arguments", withDecls "closure kill/1 = mlp [1, 1]" "du/dt = kill", "used without arguments"
    "equation for a non-field", oneD "du/dt = 0\ndq/dt = 1", "'q', which is not a declared field"
    "unpaired periodic side",
    "domain interval [0, 1] cells 10\nfield u\ndu/dt = lap(u)\nboundary u left periodic\nboundary u right noflux\ninitial u = 0",
    "Periodic conditions come in pairs"
    "∂/∂y on an interval", oneD "du/dt = dy(u)", "uses ∂/∂y but the domain is a 1-D interval"
    "shift off a lattice", oneD "du/dt = u[k+1]", "needs a periodic lattice domain"
    "fast field without fast lattice",
    "domain lattice 8\nfield Y fast\ndY/dt = -Y\ninitial Y = 0",
    "has no fast sub-lattice"
    "MLP widths disagree with arity",
    withDecls "closure kill/2 = mlp [3, 1]" "du/dt = kill(u, u)",
    "The first width must be 2"
    "coordinate as a name",
    "domain point\nfield u\nparam x = 1\ndu/dt = -u\ninitial u = 1",
    "uses the name of a coordinate"
    "two equations for one field", oneD "du/dt = 0\ndu/dt = 1", "Field 'u' has 2 equations"
    "exp of a dimensional quantity",
    "domain point\nfield u [mol]\ndu/dt = exp(u)\ninitial u = 1",
    "needs a dimensionless argument"
    "empty text", "", "The model has no fields"
    "field in an initial condition",
    "domain point\nfield u\nfield v\ndu/dt = v\ndv/dt = u\ninitial u = v\ninitial v = 0",
    "not fields"
    "fast field outside the fast sum",
    "domain lattice 4 x 2\nfield X\nfield Y fast\ndX/dt = -Y\ndY/dt = X\ninitial X = 0\ninitial Y = 0",
    "The fast field 'Y' appears in the equation of the slow field 'X' outside a fast sum"
]

let private run (input: string) : Result<Model, exn> =
    try
        Ok(Parse.model input)
    with e ->
        Error e

let tests =
    testList "Malformed inputs" [
        test "the table has at least 40 cases" { Expect.isGreaterThanOrEqual cases.Length 40 "coverage" }

        for name, input, fragment in cases do
            test name {
                match run input with
                | Ok _ -> failtestf "expected an error containing %A, but the input was accepted:\n%s" fragment input
                | Error(:? ParseException as e) ->
                    Expect.stringContains e.Message fragment "message fragment"
                    Expect.isGreaterThanOrEqual e.Line 1 "1-based line"
                    Expect.isGreaterThanOrEqual e.Column 1 "1-based column"
                    Expect.stringContains e.Message "^" "caret under the spot"
                | Error(:? ModelException as e) -> Expect.stringContains e.Message fragment "message fragment"
                | Error e -> failtestf "a %s escaped the parser: %s" (e.GetType().Name) e.Message
            }

        test "a parse error shows the line and a caret under the column" {
            let text = "field u\ndu/dt = (u + 1"

            let e = Expect.throwsC (fun () -> Parse.model text |> ignore) (fun e -> e)

            match e with
            | :? ParseException as p ->
                Expect.equal (p.Line, p.Column) (2, 9) "points at the '(' that is not closed"

                Expect.stringContains
                    p.Message
                    "Line 2, column 9: this '(' is not closed; add ')' where it ends (inside brackets a new line does not end the statement, so the rest of the text was read as part of it)\n  du/dt = (u + 1\n          ^"
                    "line and caret"
            | other -> failtestf "wrong exception %s" (other.GetType().Name)
        }

        test "all problems of a model are listed together" {
            let e =
                Expect.throwsC
                    (fun () -> Parse.model "domain point\nfield u\nfield v\ndu/dt = -k u" |> ignore)
                    (fun e -> e.Message)

            Expect.stringContains e "has 4 problems" "count"
            Expect.stringContains e "Undefined symbol 'k'" "undefined"
            Expect.stringContains e "Field 'v' has no equation" "no equation"
        }
    ]
