/// Characters the text form refuses by name (digits of other scripts, invisible characters, letters that look
/// like Latin letters), strict number lexing, and a null text.
module Hybrid.Dsl.Tests.CharactersTests

open System
open Expecto
open Hybrid

/// The ParseException of `f text`: its message, line and column.
let private parseError (f: string -> 'a) (text: string) : string * int * int =
    try
        f text |> ignore
        failtestf "expected a ParseException for %A" text
    with :? ParseException as e ->
        e.Message, e.Line, e.Column

/// The message of the ModelException raised by `f`.
let private modelError (f: unit -> 'a) : string =
    try
        f () |> ignore
        failtest "expected a ModelException"
    with :? ModelException as e ->
        e.Message

let private expectError (text: string) (line: int, col: int) (fragment: string) =
    let msg, l, c = parseError Parse.expr text
    Expect.stringContains msg fragment (sprintf "message for %A" text)
    Expect.equal (l, c) (line, col) (sprintf "position for %A" text)

let tests =
    testList "Characters" [
        test "digits of other scripts are refused by name, with the ASCII digit to type" {
            expectError
                "\uFF11"
                (1, 1)
                "U+FF11 FULLWIDTH DIGIT ONE is not an ASCII digit: numbers are written with the digits 0-9 (here 1)"

            expectError "u + \u0663" (1, 5) "U+0663 ARABIC-INDIC DIGIT THREE is not an ASCII digit"
            expectError "2\u06F5" (1, 2) "U+06F5 EXTENDED ARABIC-INDIC DIGIT FIVE is not an ASCII digit"
            expectError "u\u0967" (1, 2) "U+0967 DEVANAGARI DIGIT ONE is not an ASCII digit"
        }

        test "invisible characters are named by code point outside comments" {
            expectError "u\u200B + v" (1, 2) "U+200B ZERO WIDTH SPACE is an invisible character"
            expectError "u + \u200Fv" (1, 5) "U+200F RIGHT-TO-LEFT MARK is an invisible character"
            expectError "\u200Eu" (1, 1) "U+200E LEFT-TO-RIGHT MARK is an invisible character"

            expectError
                "u \uFEFF+ v"
                (1, 3)
                "U+FEFF ZERO WIDTH NO-BREAK SPACE (byte-order mark) is an invisible character"

            expectError
                "u\u2028+ v"
                (1, 2)
                "U+2028 LINE SEPARATOR may show as a line break but does not end a statement"

            let msg, _, _ = parseError Parse.modelUnchecked "model \"a\u200Bb\""
            Expect.stringContains msg "U+200B ZERO WIDTH SPACE" "inside a string (a data key must match exactly)"
        }

        test "a byte-order mark as the first character is skipped, and columns do not count it" {
            Expect.equal (Parse.expr "\uFEFFu + 1") (Add(Sym "u", Num 1.0)) "BOM skipped"
            expectError "\uFEFFu $" (1, 3) "unexpected character '$'"
        }

        test "bidirectional overrides are refused even in comments; other invisible characters are allowed there" {
            let msg, line, col = parseError Parse.modelUnchecked "field u\n# abc \u202E cba"

            Expect.stringContains
                msg
                "U+202E RIGHT-TO-LEFT OVERRIDE inside this comment changes how the line is displayed"
                "named"

            Expect.equal (line, col) (2, 7) "position"

            Expect.equal
                (Parse.modelUnchecked "field u # zero\u200Bwidth").Fields
                [ Model.field "u" ]
                "zero-width space in a comment"
        }

        test "letters that look like Latin letters are refused in names, naming the Latin letter" {
            expectError "\u0430 + 1" (1, 1) "U+0430 CYRILLIC SMALL LETTER A looks like 'a' but is a different character"
            expectError "r\u0430te" (1, 2) "U+0430 CYRILLIC SMALL LETTER A looks like 'a'"
            expectError "2 \u03BF" (1, 3) "U+03BF GREEK SMALL LETTER OMICRON looks like 'o'"
            expectError "\u0412" (1, 1) "U+0412 CYRILLIC CAPITAL LETTER VE looks like 'B'"
            expectError "\uFF41" (1, 1) "U+FF41 FULLWIDTH LATIN SMALL LETTER A looks like 'a'"
            expectError "u \uFF0B v" (1, 3) "unexpected character U+FF0B FULLWIDTH PLUS SIGN, which looks like '+'"
            expectError "u \u2014 v" (1, 3) "unexpected character U+2014 EM DASH, which looks like '-'"
        }

        test "Greek letters used as scientific names stay valid" {
            Expect.equal (Parse.expr "ν Δu") (Mul(Sym "ν", Laplacian(Sym "u"))) "nu"
            Expect.equal (Parse.expr "ρ α") (Mul(Sym "ρ", Sym "α")) "rho alpha"
        }

        test "a misspelling by a look-alike is named by code point, never with an identical suggestion" {
            // Greek ν is a valid name, so the text reaches the checks with 'v' declared and 'ν' used.
            let msg =
                modelError (fun () -> Parse.model "domain point\nfield v\ndv/dt = -ν\ninitial v = 1")

            Expect.stringContains
                msg
                "Undefined symbol 'ν' in the equation of 'v'. Declare it (field, param, forcing or const) or fix the spelling. 'ν' contains U+03BD GREEK SMALL LETTER NU, which looks like 'v'. Retype the name with ASCII letters to refer to the declared 'v'."
                "names the character"

            Expect.isFalse (msg.Contains "Did you mean 'v'") "no look-alike suggestion"

            // Through the builder a Cyrillic name gets as far as the checks.
            let cyr =
                modelError (fun () ->
                    model "m" {
                        field "u"
                        param "a" 1.0
                        equation (dt (sym "u") == -(sym "\u0430") * sym "u")
                        initialValue "u" 1.0
                    })

            Expect.stringContains
                cyr
                "'\u0430' contains U+0430 CYRILLIC SMALL LETTER A, which looks like 'a'. Retype the name with ASCII letters to refer to the declared 'a'."
                "Cyrillic a"

            let invisible =
                modelError (fun () ->
                    model "m" {
                        field "u"
                        equation (dt (sym "u") == -(sym "u\u200B"))
                        initialValue "u" 1.0
                    })

            Expect.stringContains
                invisible
                "contains U+200B ZERO WIDTH SPACE, which is invisible. Retype the name"
                "invisible"

            // The other way round: the declared name holds the look-alike.
            let declared =
                modelError (fun () ->
                    model "m" {
                        field "u"
                        param "\u03BD" 1.0
                        equation (dt (sym "u") == -(sym "v") * sym "u")
                        initialValue "u" 1.0
                    })

            Expect.stringContains
                declared
                "The declared 'ν' contains U+03BD GREEK SMALL LETTER NU, which looks like 'v'"
                "declared look-alike"
        }

        test "ordinary misspellings still get a suggestion" {
            let msg =
                modelError (fun () ->
                    Parse.model "domain point\nfield u\nparam rate = 1\ndu/dt = -rtae u\ninitial u = 1")

            Expect.stringContains msg "Undefined symbol 'rtae'" "undefined"
            Expect.stringContains msg "Did you mean 'rate'?" "distance 2"
        }

        test "null text raises ArgumentNullException" {
            for name, f in
                [
                    "expr", (fun () -> Parse.expr null |> box)
                    "equation", (fun () -> Parse.equation null |> box)
                    "model", (fun () -> Parse.model null |> box)
                    "modelUnchecked", (fun () -> Parse.modelUnchecked null |> box)
                ] do
                let e = Expect.throwsC (fun () -> f () |> ignore) id
                Expect.isTrue (e :? ArgumentNullException) (sprintf "%s: got %s" name (e.GetType().Name))
                Expect.equal (e :?> ArgumentNullException).ParamName "text" (sprintf "%s: parameter name" name)
        }
    ]

/// Numbers: one decimal point, no spaces, a Unicode minus in the exponent.
let numberTests =
    testList "Numbers" [
        test "two decimal points are an error naming the text, not a product" {
            expectError "1.2.3" (1, 1) "'1.2.3' is not a number: a number has at most one decimal point"
            expectError "u + 2.5.1 v" (1, 5) "'2.5.1' is not a number"
            expectError "1e3.5" (1, 1) "'1e3.5' is not a number"
            expectError "2..5" (1, 1) "'2..5' is not a number"
        }

        test "two numbers in a row are an error naming both, not a product" {
            expectError "1 000" (1, 3) "two numbers in a row, '1' then '000'"
            expectError "u (2\n 3)" (2, 2) "two numbers in a row, '2' then '3'"
            Expect.equal (Parse.expr "2 u 3") (Mul(Mul(Num 2.0, Sym "u"), Num 3.0)) "a symbol between is a product"
            Expect.equal (Parse.expr "2 (3)") (Mul(Num 2.0, Num 3.0)) "a bracket between is a product"
        }

        test "an exponent may use the Unicode minus sign" {
            Expect.equal (Parse.expr "1e−3") (Num 1e-3) "U+2212"
            Expect.equal (Parse.expr "2.5E–2") (Num 0.025) "U+2013"
            Expect.equal (Parse.expr "1e+3") (Num 1000.0) "plus"

            let m =
                Parse.modelUnchecked "const e = 2\ndomain point\nfield u\ndu/dt = 1e−3 u\ninitial u = 1"

            Expect.equal m.Equations.Head.Rhs (Mul(Num 1e-3, Sym "u")) "1e−3 is a number even when e is a symbol"
        }

        test "numbers are ASCII only: previously valid forms still parse" {
            Expect.equal (Parse.expr "2.") (Num 2.0) "2."
            Expect.equal (Parse.expr ".5") (Num 0.5) ".5"
            Expect.equal (Parse.expr "2e") (Mul(Num 2.0, Sym "e")) "2·e"
            Expect.equal (Parse.expr "u^2 v") (Mul(PowInt(Sym "u", 2), Sym "v")) "exponent then symbol"
        }
    ]
