namespace Hybrid

open System
open TorchSharp
open Hybrid.Native

/// Where tensors live. CPU is the default; CUDA needs TorchSharp's CUDA runtime package.
type Device =
    /// The CPU (the default).
    | Cpu
    /// An NVIDIA GPU by index (0 = first).
    | Cuda of index: int

    override this.ToString() =
        match this with
        | Cpu -> "cpu"
        | Cuda i -> $"cuda:{i}"

/// Floating-point precision of the tensors Hybrid creates. Float32 for speed, Float64 for checks.
type Precision =
    /// 32-bit floats (single precision), the default.
    | Float32
    /// 64-bit floats (double precision).
    | Float64

/// The numerical engine (TorchSharp over libtorch): loading, device, precision, seeds and threads.
/// Every public Hybrid function that creates tensors calls `Engine.init ()` first, so user code
/// never meets TorchSharp's `TypeInitializationException`.
[<RequireQualifiedAccess>]
module Engine =

    // Whether glibc's heap keeps freed tensor memory (`NativeHeap.retain`), set before libtorch loads.
    let mutable private heapRetained = false

    let private loaded =
        lazy
            (heapRetained <- NativeHeap.retain ()

             let report =
                 if OperatingSystem.IsLinux() then
                     Some(NativeLoader.load ())
                 else
                     None

             try
                 use probe = torch.ones ([| 1L |])
                 probe.ToDouble() |> ignore
             with e ->
                 let where =
                     match report with
                     | Some r -> $" (bridge loaded from '{r.BridgePath}', libtorch from '{r.LibTorchFolder}')"
                     | None -> ""

                 raise (
                     EngineException(
                         $"TorchSharp failed to start{where}: {e.GetBaseException().Message}. Reinstall TorchSharp 0.107.0 with libtorch-cpu-linux-x64 2.10.0.",
                         e
                     )
                 )

             report)

    let private gate = obj ()
    let mutable private current = Cpu
    let mutable private currentPrecision = Float32

    /// Makes TorchSharp usable: loads libtorch and TorchSharp's native bridge (a patched copy where
    /// the system libstdc++ is too old). Idempotent and thread-safe; raises `EngineException` with the
    /// paths searched and what to install when nothing can be loaded.
    let init () : unit = loaded.Force() |> ignore

    /// Whether glibc's heap keeps the memory of freed tensors for reuse (`NativeHeap.retain`; false where
    /// HYBRID_NATIVE_HEAP=system, GLIBC_TUNABLES sets malloc tunables, or the C library is not glibc).
    let internal nativeHeapRetained () : bool =
        init ()
        heapRetained

    /// A one-line description of what was loaded, e.g. for logs and bug reports.
    let describe () : string =
        init ()

        let bridge =
            match loaded.Value with
            | Some r when r.Patched -> $"bridge: patched copy {r.BridgePath}"
            | Some r -> $"bridge: {r.BridgePath}"
            | None -> "bridge: TorchSharp default"

        let heap =
            if heapRetained then
                "native heap keeps freed memory"
            else
                "native heap: the C library's default"

        $"TorchSharp {typeof<torch>.Assembly.GetName().Version}, {bridge}, device {current}, {currentPrecision}, {torch.get_num_threads ()} threads, {heap}"

    /// The device new tensors are created on (default `Cpu`).
    let device () : Device = lock gate (fun () -> current)

    /// The TorchSharp device for `device ()`.
    let torchDevice () : torch.Device =
        init ()

        match device () with
        | Cpu -> torch.CPU
        | Cuda i -> torch.device (DeviceType.CUDA, i)

    /// Chooses the device for new tensors. Asking for CUDA where TorchSharp's CUDA runtime or the GPU
    /// is missing raises `EngineException` naming the package to add.
    let useDevice (d: Device) : unit =
        init ()

        match d with
        | Cpu -> ()
        | Cuda i ->
            if not (torch.cuda.is_available ()) then
                raise (
                    EngineException(
                        $"CUDA device {i} was requested, but TorchSharp's CUDA runtime is not available: add the NuGet package libtorch-cuda-12.8-linux-x64 2.10.0 (it matches TorchSharp 0.107.0) and install an NVIDIA driver, or use Device.Cpu."
                    )
                )

            let count = torch.cuda.device_count ()

            if i < 0 || i >= count then
                raise (
                    EngineException(
                        $"CUDA device {i} was requested, but this machine has {count} (indices 0..{count - 1})."
                    )
                )

        lock gate (fun () -> current <- d)

    /// The precision of new floating-point tensors (default `Float32`).
    let precision () : Precision = lock gate (fun () -> currentPrecision)

    /// The TorchSharp scalar type for `precision ()`.
    let dtype () : torch.ScalarType =
        match precision () with
        | Float32 -> torch.ScalarType.Float32
        | Float64 -> torch.ScalarType.Float64

    /// Sets the precision of new floating-point tensors (also TorchSharp's default dtype).
    let usePrecision (p: Precision) : unit =
        init ()

        lock gate (fun () ->
            currentPrecision <- p
            torch.set_default_dtype (dtype ()))

    /// Seeds TorchSharp's random generators (CPU and, when present, CUDA) so runs repeat exactly.
    /// Refused with `InvalidOperationException` while another thread runs Hybrid (see `TorchGuard`).
    let seed (value: int) : unit =
        init ()
        use _ = TorchGuard.enter "Engine.seed"
        torch.manual_seed (int64 value) |> ignore

        if torch.cuda.is_available () then
            torch.cuda.manual_seed_all (int64 value)

    /// Sets the number of CPU threads libtorch uses for intra-op parallelism and the generated kernels' worker
    /// pool uses (must be ≥ 1; the kernels' default is $HYBRID_THREADS, else $SLURM_CPUS_PER_TASK, else the cores).
    let useThreads (count: int) : unit =
        if count < 1 then
            raise (EngineException($"Thread count must be at least 1, got {count}."))

        init ()
        torch.set_num_threads count
        Hybrid.Kernels.KernelThreads.useThreads count
