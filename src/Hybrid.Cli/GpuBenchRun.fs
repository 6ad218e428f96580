/// `hybrid bench-gpu`: Gray–Scott 2-D through the generated kernels on a CUDA GPU via ILGPU (Hybrid.Gpu), or on
/// ILGPU's CPU accelerator where there is none, against the host kernels; writes a markdown table (bench/gpu.md
/// explains it).
module internal Hybrid.Cli.GpuBenchRun

open System
open System.IO
open ILGPU.Runtime.CPU
open Hybrid.Gpu

/// Runs the bench (512² and 1024², or 64² and 128² when `quick`; the CPU accelerator when `cpu`) and writes
/// the table to `path`; returns 0.
let run (path: string) (quick: bool) (cpu: bool) : int =
    use context = Accelerators.context ()

    let gpu = if cpu then None else Accelerators.cuda context

    use accelerator =
        match gpu with
        | Some a -> a
        | None -> Accelerators.cpu context

    let device =
        match gpu with
        | Some a -> $"{a.Name} (CUDA, {a.MemorySize / (1L <<< 20)} MiB)"
        | None ->
            $"ILGPU's CPU accelerator ({(accelerator :?> CPUAccelerator).NumThreads} simulated GPU threads on {Environment.ProcessorCount} cores)"

    let peak = if gpu.IsSome then GpuBench.peakGBs context else None
    // The CPU accelerator takes seconds per launch at 1024²: 3 runs there.
    let sizes = if quick then [ 64; 128 ] else [ 512; 1024 ]
    let reps = if gpu.IsSome then 21 else 3

    let rows =
        sizes
        |> List.map (fun n ->
            printfn $"Gray–Scott {n}² on {device} …"
            GpuBench.grayScott accelerator reps n)

    let date = DateTime.UtcNow.ToString "yyyy-MM-dd"

    let text =
        String.concat "\n" [
            "# Generated kernels on an accelerator (ILGPU)"
            ""
            $"Machine: {Bench.machine ()}. Date: {date}. Gray–Scott (periodic, 5-point Laplacian), float64, batch 1; medians of {reps} runs after one untimed run; each accelerator run is synchronised. Compile: emitting the IL and ILGPU's compilation of the forward and adjoint kernels and the θ̄ reduction (loading them). Host: `Codegen`'s SIMD kernels on one thread. Forward GB/s: the least traffic of the forward kernel (every padded value of u and v read once, every cell of F written once) over its time."
            ""
            GpuBench.table device peak rows
            ""
        ]

    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path))
    |> ignore

    File.WriteAllText(path, text)
    printfn "%s" text
    0
