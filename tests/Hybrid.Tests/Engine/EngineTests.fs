/// The engine entry point: loading is idempotent and thread-safe, torch works through it, and device,
/// seed and thread settings behave or fail clearly.
module Hybrid.Tests.Engine.EngineTests

open System
open System.Threading.Tasks
open Expecto
open TorchSharp
open Hybrid

/// getrusage(RUSAGE_THREAD, …): this thread's resource usage; `minorFaults` reads ru_minflt (after two timevals and
/// six longs of the struct).
[<Runtime.InteropServices.DllImport("libc", EntryPoint = "getrusage")>]
extern int private getrusage(int who, int64[] usage)

/// Minor page faults of the calling thread so far.
let private minorFaults () =
    let usage = Array.zeroCreate<int64> 18
    getrusage (1, usage) |> ignore
    usage[8]

/// Sequenced: these tests change process-wide settings (precision, seed).
let tests =
    testSequenced
    <| testList "Engine" [
        test "init is idempotent and safe from many threads at once" {
            Array.init 16 (fun _ -> Task.Run(fun () -> Engine.init ())) |> Task.WaitAll
            Engine.init ()
            Expect.stringContains (Engine.describe ()) "TorchSharp" "describe names the engine"
        }

        test "freed tensor memory stays in the native heap: reusing it costs no page faults" {
            // Rounds of 40 tensors of 1 MiB, filled, then all freed: under glibc's defaults each 1 MiB block is
            // mapped afresh at first, and once the threshold has grown the heap's free top (40 MiB) is given back
            // after each round, so every round faults on fresh pages again (with the mallopt calls removed: 5,131,
            // 5,121, 2,146 faults in the three rounds). With the heap keeping its memory the third round reuses the
            // second's pages (5,130, 768, 0).
            if not (OperatingSystem.IsLinux()) then
                skiptest "glibc's allocator is Linux's"

            if not (Engine.nativeHeapRetained ()) then
                skiptest "HYBRID_NATIVE_HEAP=system or GLIBC_TUNABLES leaves the heap to glibc"

            let round () =
                let before = minorFaults ()

                let tensors =
                    Array.init 40 (fun _ -> torch.ones ([| 131072L |], dtype = torch.ScalarType.Float64))

                let faults = minorFaults () - before

                for t in tensors do
                    t.Dispose()

                faults

            let rounds = Array.init 3 (fun _ -> round ())
            printfn "Minor page faults per round of 40 × 1 MiB tensors: %A" rounds
            Expect.isLessThan rounds[2] 1024L "the third round reuses freed memory (fewer than 1,024 page faults)"
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
