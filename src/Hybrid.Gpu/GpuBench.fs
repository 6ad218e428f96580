namespace Hybrid.Gpu

open System
open System.Diagnostics
open ILGPU
open ILGPU.Runtime
open ILGPU.Runtime.Cuda
open Hybrid
open Hybrid.Kernels

/// One size of `GpuBench.grayScott`: times in milliseconds (medians), bandwidth in GB/s.
type internal GpuBenchRow = {
    /// Cells per side (n × n).
    Size: int
    /// Emitting the IL and ILGPU's compilation of both kernels and the reduction (loading them).
    CompileMs: float
    /// One forward kernel on the accelerator.
    ForwardMs: float
    /// One adjoint kernel (with the θ̄ reduction) on the accelerator.
    AdjointMs: float
    /// `Codegen.forward` (SIMD) on the host, this process's threads: one.
    HostForwardMs: float
    /// `Codegen.adjoint` (SIMD gather form) on the host.
    HostAdjointMs: float
    /// The forward kernel's least traffic (every padded value read once, every cell written once) over its time.
    ForwardGBs: float
}

/// The Gray–Scott 2-D kernels on an accelerator at given sizes, against `Codegen`'s on the host: what
/// `hybrid bench-gpu` runs (bench/gpu.md says how).
[<RequireQualifiedAccess>]
module internal GpuBench =

    /// Gray–Scott (`Examples.grayScott`, periodic) on n × n cells.
    let plan (n: int) =
        Examples.grayScott
        |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, n, n))
        |> Hybrid.Compiler.ResolvedSystem.ofModel
        |> Lowering.lowerWith false

    /// The median time of `reps` runs of `run` in milliseconds, after one untimed run.
    let private median (reps: int) (run: unit -> unit) =
        run ()

        let times =
            Array.init reps (fun _ ->
                let watch = Stopwatch.StartNew()
                run ()
                watch.Elapsed.TotalMilliseconds)

        Array.sortInPlace times
        times[reps / 2]

    /// The peak memory bandwidth of the first CUDA device in GB/s (double data rate × bus width), if any.
    let peakGBs (context: Context) =
        if context.GetCudaDevices().Count > 0 then
            let d = context.GetCudaDevice 0
            Some(2.0 * float d.MemoryClockRate * 1e3 * float d.MemoryBusWidth / 8.0 / 1e9)
        else
            None

    /// Times the kernels of Gray–Scott on n × n cells, batch 1, float64, `reps` runs each.
    let grayScott (accelerator: Accelerator) (reps: int) (n: int) : GpuBenchRow =
        let plan = plan n
        let rng = Random 5
        let size = plan.PaddedCells

        let host () =
            Array.init 2 (fun _ -> Array.init size (fun _ -> 0.2 + 0.6 * rng.NextDouble()))

        let padded, lambda = host (), host ()
        let theta = [| 2e-5; 1e-5; 0.04; 0.06 |]
        let output, paddedAdjoint = host (), host ()
        let thetaAdjoint = Array.zeroCreate plan.ThetaLength
        let watch = Stopwatch.StartNew()
        use kernels = new DeviceKernels(accelerator, plan)
        let compile = watch.Elapsed.TotalMilliseconds
        use p = accelerator.Allocate1D(Array.concat padded)
        use th = accelerator.Allocate1D theta
        use o = accelerator.Allocate1D<float>(int64 (2 * size))
        use l = accelerator.Allocate1D(Array.concat lambda)
        use pa = accelerator.Allocate1D<float>(int64 (2 * size))
        use ta = accelerator.Allocate1D<float>(int64 plan.ThetaLength)
        let empty = ArrayView<float>.Empty

        let forward () =
            kernels.Forward(1, p.View.BaseView, th.View.BaseView, 0.0, o.View.BaseView, empty, empty)
            accelerator.Synchronize()

        let adjoint () =
            kernels.Adjoint(
                1,
                p.View.BaseView,
                th.View.BaseView,
                0.0,
                l.View.BaseView,
                pa.View.BaseView,
                ta.View.BaseView,
                empty,
                empty,
                empty
            )

            accelerator.Synchronize()

        let hostForward = Codegen.forward<float> plan
        let hostAdjoint = Codegen.adjoint<float> plan
        let forwardMs = median reps forward
        let bytes = float (8 * 2 * (plan.PaddedCells + plan.Cells))

        {
            Size = n
            CompileMs = compile
            ForwardMs = forwardMs
            AdjointMs = median reps adjoint
            HostForwardMs = median reps (fun () -> hostForward.Invoke(padded, theta, 0.0, output, 1, [||], [||]))
            HostAdjointMs =
                median reps (fun () ->
                    hostAdjoint.Invoke(padded, theta, 0.0, lambda, paddedAdjoint, thetaAdjoint, 1, [||], [||], [||]))
            ForwardGBs = bytes / (forwardMs * 1e-3) / 1e9
        }

    /// The markdown table of `rows` run on `device` (`peak`: its peak bandwidth in GB/s, where known).
    let table (device: string) (peak: float option) (rows: GpuBenchRow list) =
        let fraction (r: GpuBenchRow) =
            match peak with
            | Some p -> $"{r.ForwardGBs / p:P0} of {p:F0}"
            | None -> "n/a (not a GPU)"

        [
            yield $"Accelerator: {device}."
            yield ""
            yield
                "| n × n | compile (ms) | forward (ms) | adjoint (ms) | host forward (ms) | host adjoint (ms) | forward GB/s | of peak GB/s |"
            yield "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
            for r in rows ->
                $"| {r.Size}² | {r.CompileMs:F0} | {r.ForwardMs:F3} | {r.AdjointMs:F3} | {r.HostForwardMs:F3} | {r.HostAdjointMs:F3} | {r.ForwardGBs:G3} | {fraction r} |"
        ]
        |> String.concat "\n"
