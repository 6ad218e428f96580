/// Tensor–number arithmetic that keeps libtorch Scalars alive: the operators give TorchSharp's results,
/// survive garbage collections started on another thread, and Hybrid's assemblies use nothing else.
module Hybrid.Tests.Engine.TensorArithmeticTests

open System
open System.Collections.Generic
open System.Threading
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64

let private close (expected: torch.Tensor) (actual: torch.Tensor) (what: string) =
    Expect.isTrue (torch.allclose (actual, expected, rtol = 1e-14, atol = 1e-14)) what

/// TorchSharp members that turn a number into a temporary Scalar, directly or through other TorchSharp
/// members (found from TorchSharp's own IL: `t * 2.0`, `a + b` with its hidden α = 1, `square`, `softplus`,
/// the optimisers' `step`, …).
let private scalarMakers =
    lazy
        (let calls = IlCalls.read typeof<torch.Tensor>.Assembly.Location

         let makesScalar (callee: string) =
             callee.StartsWith "TorchSharp.Scalar::op_Implicit"
             || callee.StartsWith "TorchSharp.ScalarExtensionMethods::ToScalar"

         let found =
             HashSet(
                 calls
                 |> Seq.filter (fun c -> makesScalar c.Callee)
                 |> Seq.map (fun c -> c.Caller)
             )

         let mutable grew = true

         while grew do
             grew <- false

             for c in calls do
                 if found.Contains c.Callee && found.Add c.Caller then
                     grew <- true

         fun (callee: string) -> makesScalar callee || found.Contains callee)

let tests =
    testList "TensorArithmetic" [
        test "operators, square, softplus and addInPlace give TorchSharp's values and gradients (float64)" {
            use _ = torch.NewDisposeScope()
            let a = torch.tensor ([| -3.0; -0.5; 0.0; 0.7; 25.0 |], dtype = f64)
            let b = torch.tensor ([| 2.0; 1.5; -1.0; 4.0; 0.25 |], dtype = f64)
            close (a + b) (a .+ b) "a + b"
            close (a + 2.5) (a .+ 2.5) "a + c"
            close (2.5 + a) (2.5 .+ a) "c + a"
            close (a - b) (a .- b) "a − b"
            close (a - 2.5) (a .- 2.5) "a − c"
            close (2.5 - a) (2.5 .- a) "c − a"
            close (a * b) (a .* b) "a · b"
            close (a * 2.5) (a .* 2.5) "a · c"
            close (2.5 * a) (2.5 .* a) "c · a"
            close (a / b) (a ./ b) "a / b"
            close (a / 2.5) (a ./ 2.5) "a / c"
            close (2.5 / b) (2.5 ./ b) "c / b"
            close (1.0 .+ 2.0 .* a) (1.0 + 2.0 * a) "precedence of .+ and .* is that of + and *"
            close (a.square ()) (square a) "square"
            // TorchSharp returns t itself above its threshold 20; log(1 + e²⁵) − 25 ≈ 1.4e-11.
            Expect.isTrue
                (torch.allclose (softplus a, torch.nn.functional.softplus a, rtol = 0.0, atol = 1e-10))
                "softplus, within 1e-10 above TorchSharp's threshold"

            let sum = a.clone ()
            addInPlace sum b |> ignore
            close (a + b) sum "addInPlace"

            let x =
                torch.tensor ([| -30.0; -1.0; 0.0; 2.0; 30.0 |], dtype = f64, requires_grad = true)

            (softplus x).sum().backward ()
            close (torch.sigmoid (x.detach ())) x.grad "d softplus / dx = σ(x), 0.5 at 0"
        }

        test "the operators survive garbage collections started on other threads" {
            // With HYBRID_STRESS_PLAIN_TORCHSHARP=1 the same loop uses TorchSharp's own `x * 2.0 + 1.0 - 0.5`
            // instead, to show the failure this guards against (a collector thread frees the temporary Scalar
            // while libtorch reads it; see the README, "One thread drives torch at a time"):
            //   HYBRID_STRESS_PLAIN_TORCHSHARP=1 dotnet tests/Hybrid.Tests/bin/Release/net10.0/Hybrid.Tests.dll \
            //     --filter "Hybrid.TensorArithmetic" --sequenced
            let plain =
                Environment.GetEnvironmentVariable "HYBRID_STRESS_PLAIN_TORCHSHARP" = "1"

            use stop = new ManualResetEventSlim(false)
            let mutable collections = 0
            let mutable iterations = 0
            let mutable failure = None

            let collect () =
                let mutable garbage: byte[] = null

                while not stop.IsSet do
                    for _ in 1..10 do
                        garbage <- Array.zeroCreate 1000

                    GC.Collect 0
                    Interlocked.Increment &collections |> ignore

            let work () =
                try
                    try
                        use x = torch.ones ([| 4L |], dtype = f64)
                        let clock = Diagnostics.Stopwatch.StartNew()

                        while failure.IsNone && clock.Elapsed.TotalSeconds < 3.0 do
                            use _ = torch.NewDisposeScope()

                            let y =
                                if plain then
                                    x * 2.0 + 1.0 - 0.5
                                else
                                    x .* 2.0 .+ 1.0 .- 0.5

                            let total = y.sum().ToDouble()
                            iterations <- iterations + 1

                            if total <> 10.0 then
                                failure <- Some $"iteration {iterations}: sum is {total}, expected 10"
                    with e ->
                        failure <- Some $"iteration {iterations}: {e.Message}"
                finally
                    stop.Set()

            let threads = [ Thread(work); Thread(collect); Thread(collect) ]

            for t in threads do
                t.Start()

            for t in threads do
                t.Join()

            printfn
                "%d iterations of %s beside %d garbage collections"
                iterations
                (if plain then "TorchSharp's * + -" else ".* .+ .-")
                collections

            Expect.isNone failure "no error while other threads collect"
            Expect.isGreaterThan collections 200 "the other threads collected often enough to matter"
        }

        test "Hybrid's assemblies never let TorchSharp make a temporary Scalar (IL check)" {
            let makesScalar = scalarMakers.Force()

            let offenders =
                [
                    typeof<Hybrid.Numerics.Grid>.Assembly
                    typeof<Hybrid.Models.Cases.PredatorPrey.Settings>.Assembly
                    typeof<Hybrid.CSharp.HybridEngine>.Assembly
                ]
                |> List.collect (fun a -> IlCalls.read a.Location)
                |> List.filter (fun c -> c.File <> "TensorArithmetic.fs" && makesScalar c.Callee)
                |> List.map (fun c -> $"{c.File}:{c.Line}  {c.Callee}  (in {c.Caller})")
                |> List.distinct
                |> List.sort

            Expect.isEmpty
                offenders
                ("These calls make a temporary Scalar that another thread's garbage collection can free mid-call; "
                 + "use the operators and functions of Hybrid.TensorArithmetic instead:\n"
                 + String.Join("\n", offenders))
        }
    ]
