/// The engine entry point: loading is idempotent and thread-safe, torch works through it, and device,
/// seed and thread settings behave or fail clearly.
module Hybrid.Tests.Engine.EngineTests

open System.Threading.Tasks
open Expecto
open TorchSharp
open Hybrid

/// Sequenced: these tests change process-wide settings (precision, seed).
let tests =
    testSequenced
    <| testList "Engine" [
        test "init is idempotent and safe from many threads at once" {
            Array.init 16 (fun _ -> Task.Run(fun () -> Engine.init ())) |> Task.WaitAll
            Engine.init ()
            Expect.stringContains (Engine.describe ()) "TorchSharp" "describe names the engine"
        }

        test "torch loaded through Hybrid computes a correct gradient (float64)" {
            Engine.init ()
            use x = torch.tensor (3.0, dtype = torch.ScalarType.Float64, requires_grad = true)
            use y = x * x * x + 2.0 * x.sin ()
            y.backward ()
            // d/dx (x³ + 2 sin x) = 3x² + 2 cos x, evaluated at x = 3.
            let expected = 27.0 + 2.0 * cos 3.0
            Expect.floatClose Accuracy.veryHigh (x.grad.ToDouble()) expected "autograd matches the analytic derivative"
        }

        test "seeding makes random draws repeat" {
            Engine.seed 7
            use a = torch.randn ([| 5L |])
            Engine.seed 7
            use b = torch.randn ([| 5L |])
            Expect.isTrue (a.allclose (b, 0.0, 0.0)) "same seed, same numbers"
        }

        test "precision switches the default dtype and back" {
            Engine.usePrecision Float64
            use t = torch.zeros ([| 2L |])
            Expect.equal t.dtype torch.ScalarType.Float64 "float64 by default after usePrecision Float64"
            Engine.usePrecision Float32
            use s = torch.zeros ([| 2L |])
            Expect.equal s.dtype torch.ScalarType.Float32 "float32 again"
        }

        test "asking for CUDA without its runtime names the package to add" {
            Engine.init ()

            if torch.cuda.is_available () then
                skiptest "this machine has CUDA"

            let e = Expect.throwsC (fun () -> Engine.useDevice (Cuda 0)) id
            Expect.stringContains e.Message "libtorch-cuda-12.8-linux-x64" "names the missing package"
            Expect.equal (Engine.device ()) Cpu "the device stays CPU"
        }

        test "a thread count below one is refused with the value" {
            let e = Expect.throwsC (fun () -> Engine.useThreads 0) id
            Expect.stringContains e.Message "got 0" "names the value"
        }
    ]
