/// The engine entry point: loading is idempotent and thread-safe, torch works through it, and device,
/// seed and thread settings behave or fail clearly.
module Hybrid.Tests.Engine.EngineTests

open System.Threading.Tasks
open Expecto
open TorchSharp
open Hybrid

[<System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getenv")>]
extern nativeint private nativeGetenv(string name)

/// A variable of the process's native environment (what libtorch's OpenMP read), not .NET's copy.
let private nativeVariable (name: string) =
    match nativeGetenv name with
    | 0n -> None
    | p -> Some(System.Runtime.InteropServices.Marshal.PtrToStringAnsi p)

/// Sequenced: these tests change process-wide settings (precision, seed).
let tests =
    testSequenced
    <| testList "Engine" [
        test "libtorch's OpenMP threads wait passively unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT" {
            let env (pairs: (string * string) list) (name: string) =
                pairs |> List.tryFind (fst >> (=) name) |> Option.map snd

            let mutable set = 0

            let passive () =
                set <- set + 1
                true

            Expect.equal
                (Hybrid.Native.NativeLoader.openMpWait (env []) passive)
                "passive (set by Hybrid)"
                "unset: passive"

            Expect.equal set 1 "set once"

            for pairs, expected in
                [
                    [ "OMP_WAIT_POLICY", "ACTIVE" ], "OMP_WAIT_POLICY=ACTIVE"
                    [ "GOMP_SPINCOUNT", "1000" ], "GOMP_SPINCOUNT=1000"
                    [ "OMP_WAIT_POLICY", "PASSIVE"; "GOMP_SPINCOUNT", "5" ], "OMP_WAIT_POLICY=PASSIVE"
                ] do
                Expect.equal
                    (Hybrid.Native.NativeLoader.openMpWait (env pairs) passive)
                    expected
                    "the user's choice is kept"

            Expect.equal set 1 "nothing set when the user chose"

            Expect.equal
                (Hybrid.Native.NativeLoader.openMpWait (env []) (fun () -> false))
                "default (setting OMP_WAIT_POLICY failed)"
                "a failed setenv is reported"

            // This process: loaded through Hybrid, the native environment libtorch's OpenMP read says passive,
            // unless this test run set a policy itself.
            if System.OperatingSystem.IsLinux() then
                Engine.init ()
                let user = System.Environment.GetEnvironmentVariable "OMP_WAIT_POLICY"
                let spins = System.Environment.GetEnvironmentVariable "GOMP_SPINCOUNT"

                if System.String.IsNullOrEmpty user && System.String.IsNullOrEmpty spins then
                    Expect.equal
                        (nativeVariable "OMP_WAIT_POLICY")
                        (Some "PASSIVE")
                        "set natively before libtorch loaded"

                    Expect.stringContains (Engine.describe ()) "OpenMP wait passive (set by Hybrid)" "described"

                    Expect.isNone
                        (Option.ofObj (System.Environment.GetEnvironmentVariable "OMP_WAIT_POLICY"))
                        ".NET's copy (children's) unchanged"
        }

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
