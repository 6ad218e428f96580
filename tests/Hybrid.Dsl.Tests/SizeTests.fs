/// Large inputs: flat sums and products of 10⁵ terms parse on a small stack, many declarations are built in
/// linear time, the documented size limits are enforced with clear errors, and "Did you mean" stays bounded.
module Hybrid.Dsl.Tests.SizeTests

open System
open System.Diagnostics
open System.Threading
open Expecto
open Hybrid

/// Runs `f` on a thread with a 256 KiB stack, so that recursion proportional to the input overflows (and kills
/// the test run) instead of passing on the default 1 MiB or 8 MiB stack.
let private onSmallStack (f: unit -> 'a) : 'a = SmallStack.run f

/// Leaves of a binary Add/Mul chain and the number of each operator, walked with an explicit stack.
let private census (e: Expr) : int * int * int =
    let stack = Collections.Generic.Stack<Expr>()
    stack.Push e
    let mutable leaves = 0
    let mutable adds = 0
    let mutable muls = 0

    while stack.Count > 0 do
        match stack.Pop() with
        | Add(a, b) ->
            adds <- adds + 1
            stack.Push b
            stack.Push a
        | Mul(a, b) ->
            muls <- muls + 1
            stack.Push b
            stack.Push a
        | Sym "u" -> leaves <- leaves + 1
        | other -> failtestf "unexpected node %A" other

    leaves, adds, muls

let private terms = 100_000

/// The result of `f` and the shortest of three wall-clock timings, in seconds (the shortest discounts other
/// processes' load; the first call also compiles the code).
let private timed (f: unit -> 'a) : 'a * float =
    let runs =
        List.init 3 (fun _ ->
            let sw = Stopwatch.StartNew()
            let r = f ()
            r, sw.Elapsed.TotalSeconds)

    fst runs.Head, runs |> List.map snd |> List.min

let tests =
    testSequenced
    <| testList "Sizes" [
        test "an expression nested deeper than Checks.maxNesting is refused by name; sums of any length are not" {
            // du/dt = −exp(−exp(…(−u)…)) with `levels` nesting levels.
            let nested (levels: int) =
                let mutable e = Neg(Sym "u")

                for _ in 2 .. levels / 2 do
                    e <- Neg(Apply(Fn.Exp, e))

                e

            let modelWith (rhs: Expr) =
                Parse.model "model deep\nfield u\ndu/dt = -u\ninitial u = 1"
                |> fun m -> {
                    m with
                        Equations = [ { m.Equations.Head with Rhs = rhs } ]
                }

            let message (rhs: Expr) =
                onSmallStack (fun () ->
                    match Checks.problems (modelWith rhs) with
                    | [] -> "valid"
                    | p :: _ -> p)

            Expect.equal Checks.maxNesting 1000 "the documented limit"
            Expect.equal (message (nested 1000)) "valid" "at the limit"
            Expect.stringContains (message (nested 1002)) "nests 1002 levels deep" "just past the limit"

            Expect.equal
                (message (nested 20_000))
                "The equation of 'u' nests 20000 levels deep (operators inside operators, not counting the terms of a sum or the factors of a product), more than the limit of 1000 (Checks.maxNesting). Give parts of it names: intermediate fields, or a closure."
                "far beyond the limit, checked on a small stack"

            let flat = Expr.sum [ for _ in 1..20_000 -> Mul(Num 2.0, Sym "u") ]
            Expect.equal (message flat) "valid" "a flat sum of 20,000 terms"
        }

        test "a flat sum of 10⁵ terms parses on a 256 KiB stack, left-nested" {
            let text = String.Join(" + ", Array.create terms "u")
            let e = onSmallStack (fun () -> Parse.expr text)
            Expect.equal (census e) (terms, terms - 1, 0) "10⁵ leaves, 10⁵ − 1 additions"

            match e with
            | Add(_, Sym "u") -> ()
            | _ -> failtest "the last term is the right operand of the root (left-nested)"
        }

        test "flat products of 10⁵ factors parse on a 256 KiB stack, with * and by juxtaposition" {
            for sep in [ " * "; " " ] do
                let text = String.Join(sep, Array.create terms "u")
                let e = onSmallStack (fun () -> Parse.expr text)
                Expect.equal (census e) (terms, 0, terms - 1) (sprintf "separator %A" sep)
        }

        test "a model whose equation is a 10⁵-term sum parses on a 256 KiB stack" {
            let text =
                "domain point\nfield u\ndu/dt = "
                + String.Join(" + ", Array.create terms "u")
                + "\ninitial u = 1"

            let m = onSmallStack (fun () -> Parse.modelUnchecked text)
            Expect.equal (census m.Equations.Head.Rhs) (terms, terms - 1, 0) "the equation"

            let eq =
                onSmallStack (fun () -> Parse.equation ("du/dt = " + String.Join(" * ", Array.create terms "u")))

            Expect.equal (census eq.Rhs) (terms, 0, terms - 1) "Parse.equation"
        }

        test "30,000 constants are built in linear time, in order, by the text form and by the builder" {
            let n = 30_000

            let text =
                "domain point\nfield u\ndu/dt = -u\ninitial u = 1\n"
                + String.Join("\n", Array.init n (fun i -> sprintf "const c%d = %d" i i))

            let m, seconds = timed (fun () -> Parse.modelUnchecked text)
            Expect.equal m.Constants.Length n "all constants"
            Expect.equal (m.Constants.Head.Name, (List.last m.Constants).Name) ("c0", "c29999") "in order"
            // Appending with @ took 11 s for 30k; linear building takes about 0.1 s.
            Expect.isLessThan seconds 2.0 "text form"

            let b = model "big"

            let built, builderSeconds =
                timed (fun () ->
                    let mutable s = b.Yield()
                    s <- b.Field(s, "u")
                    s <- b.Equation(s, (dt (sym "u") == -(sym "u")))
                    s <- b.InitialValue(s, "u", 1.0)

                    for i in 0 .. n - 1 do
                        s <- b.Constant(s, sprintf "c%d" i, float i)

                    s)

            Expect.equal (b.Run built).Constants.Length n "builder keeps all constants"
            Expect.equal ((b.Run built).Constants |> List.item 12345).Value 12345.0 "builder keeps the order"
            Expect.isLessThan builderSeconds 2.0 "builder"
        }

        test "a name longer than Limits.MaxIdentifierLength is refused, naming the limit" {
            let ok = String('a', Limits.MaxIdentifierLength)
            Expect.equal (Parse.expr ok) (Sym ok) "at the limit"

            let e =
                Expect.throwsC (fun () -> Parse.expr ("1 + " + ok + "b") |> ignore) (fun e -> e :?> ParseException)

            Expect.stringContains
                e.Message
                "this name has 257 characters; a name has at most 256 (Limits.MaxIdentifierLength)"
                "message"

            Expect.equal (e.Line, e.Column) (1, 5) "at the name"
        }

        test "a text longer than Limits.MaxTextLength is refused before it is read" {
            let text = String(' ', Limits.MaxTextLength + 1)

            let e =
                Expect.throwsC (fun () -> Parse.model text |> ignore) (fun e -> e :?> ParseException)

            Expect.stringContains
                e.Message
                "The text has 10000001 characters; the limit is 10000000 (Limits.MaxTextLength)"
                "message"
        }

        test "more than Limits.MaxDeclarations declarations are refused at the first one past the limit" {
            let text =
                String.Join("\n", Array.init (Limits.MaxDeclarations + 1) (fun i -> sprintf "const c%d = 1" i))

            let e =
                Expect.throwsC (fun () -> Parse.modelUnchecked text |> ignore) (fun e -> e :?> ParseException)

            Expect.stringContains e.Message "more than 100000 symbols (Limits.MaxDeclarations)" "message"
            Expect.equal e.Line (Limits.MaxDeclarations + 1) "at the first one past the limit"
        }

        test "an expression with more than Limits.MaxTerms terms is refused" {
            let text = String.Join("+", Array.create (Limits.MaxTerms + 1) "1")

            let e =
                Expect.throwsC (fun () -> Parse.expr text |> ignore) (fun e -> e :?> ParseException)

            Expect.stringContains e.Message "more than 1000000 terms (Limits.MaxTerms)" "message"
            Expect.equal e.Column (2 * Limits.MaxTerms + 1) "at the first term past the limit"
        }

        test "a misspelt 10⁵-character name gets no suggestion and no quadratic table" {
            let declared = String('a', 100_000)
            let used = String('a', 99_999) + "b"
            let before = GC.GetAllocatedBytesForCurrentThread()

            let msg =
                Expect.throwsC
                    (fun () ->
                        model "long" {
                            field "u"
                            param declared 1.0
                            equation (dt (sym "u") == -(sym used))
                            initialValue "u" 1.0
                        }
                        |> ignore)
                    (fun e -> e.Message)

            let allocated = GC.GetAllocatedBytesForCurrentThread() - before
            Expect.stringContains msg "Undefined symbol 'aaaa" "reported"
            Expect.isFalse (msg.Contains "Did you mean") "no suggestion past 64 characters"
            // A full edit-distance table would be 10¹⁰ cells (40 GB); the messages themselves are a few MB.
            Expect.isLessThan allocated 200_000_000L "bounded memory"
        }
    ]
