/// Models far larger than hand-written ones: a flat sum of N terms through parse, check, print, compile and
/// simulate. Walks with explicit stacks keep all of it off the thread's stack; the documented size limit
/// (`Checks.maxExpressionNodes`) refuses what is larger, with a clear message.
module Hybrid.Tests.Compiler.LargeModelTests

open System
open System.Diagnostics
open System.Threading
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

/// The hidden argument that makes the test executable run `child` (a crash there cannot take the tests down).
[<Literal>]
let ChildFlag = "--large-model-child"

/// du/dt = −u written as a sum of `terms` equal terms −(1/terms)·u, on a point domain, u(0) = 1.
let private text (terms: int) =
    let c = Print.number (1.0 / float terms)
    let sum = String.Join(" ", Array.create terms $"- {c} u")
    $"model big\ndomain point\nfield u\ndu/dt = {sum}\ninitial u = 1\n"

/// Parse, check, print and compile a model of `terms` terms, printing one line per stage; every stage must
/// succeed or raise the library's own exception with a clear message. Exit code 0 when that holds.
let child (terms: int) : int =
    let stage (name: string) (f: unit -> string) =
        try
            printfn "%s: %s" name (f ())
            true
        with
        | :? HybridException as e ->
            printfn "%s: refused: %s" name (e.Message.Split('\n')[0])
            true
        | e ->
            printfn "%s: FOREIGN %s: %s" name (e.GetType().Name) e.Message
            false

    let model = Parse.modelUnchecked (text terms)

    let ok = [
        stage "parse" (fun () -> $"{model.Equations.Head.Rhs |> Expr.size} nodes")
        stage "check" (fun () ->
            $"{Checks.problems model |> List.length} problem(s): {Checks.problems model |> List.tryHead}")
        stage "print" (fun () -> $"{(Print.model Notation.Unicode model).Length} characters")
        stage "compile" (fun () -> $"{(Compiler.compile Compiler.defaults model).Fields.Length} field(s)")
    ]

    if List.forall id ok then 0 else 1

let private onSmallStack (f: unit -> unit) = Hybrid.Dsl.Tests.SmallStack.run f

let tests =
    testList "Large models" [
        test "a 10⁵-term sum is refused by the size limit at check and compile, and printed, in a child process" {
            let dll = Reflection.Assembly.GetEntryAssembly().Location
            let psi = ProcessStartInfo("dotnet", $"\"{dll}\" {ChildFlag} 100000")
            psi.RedirectStandardOutput <- true
            psi.RedirectStandardError <- true
            use p = Process.Start psi
            let output = p.StandardOutput.ReadToEnd()
            let errors = p.StandardError.ReadToEnd()
            p.WaitForExit()
            Expect.equal p.ExitCode 0 $"the child ends normally (exit 134 is a stack overflow):\n{output}\n{errors}"
            Expect.stringContains output "parse: " "parsed"
            Expect.stringContains output "more than the limit of 100000" "check names the limit"
            Expect.stringContains output "compile: refused: Model 'big'" "compile refuses with the same check"
            Expect.stringContains output "print: " "printed"
            Expect.isFalse (output.Contains "FOREIGN") "no foreign exception"
        }

        test "a 20,000-term sum parses, checks, prints, compiles and simulates on a 256 KB stack" {
            onSmallStack (fun () ->
                let terms = 20_000
                let model = Parse.model (text terms)
                let printed = Print.model Notation.Ascii model
                Expect.equal (Parse.model printed) model "prints and parses back"
                let sim = Compiler.compile Compiler.defaults model

                let o = {
                    Rollout.defaults with
                        Dt = 0.1
                        SaveTimes = [| 1.0 |]
                }

                let backend, why = sim.BackendFor o
                Expect.equal backend Backend.Eager "too deep for the kernel generator"
                Expect.stringContains why "levels deep" "and says so"

                let u1 =
                    use _ = torch.no_grad ()
                    sim.Simulate(sim.Initial 1, o).Values[0].reshape(-1L).ToDouble()

                // du/dt = −u: u(1) = e⁻¹; RK4 with h = 0.1 is accurate to ~1e-7.
                Expect.floatClose Accuracy.medium u1 (exp -1.0) "u(1) = 1/e")
        }
    ]
