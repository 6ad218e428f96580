/// The generated kernels emitted as IL for ILGPU (`KernelAssembly`), run on ILGPU's CPU accelerator, against
/// `Codegen`'s scalar kernels of the same plan on the same random arrays (ghost entries too): the forward kernel
/// to 1e-12 and the gather-form adjoint (λᵀ∂F/∂u with ghosts, λᵀ∂F/∂θ scalar and spatial, λᵀ∂F/∂(closure
/// outputs)) to 1e-10, relative; models with every kind of leaf and function, on 0-D, 1-D and 2-D grids. Then
/// both kernels compiled to PTX (no GPU needed), and the refusal of two-scale lattices.
module Hybrid.Gpu.Tests.DeviceKernelTests

open System
open Expecto
open Hybrid
open Hybrid.Kernels
open Hybrid.Gpu
open Hybrid.Tests.Kernels

let private context = lazy (Accelerators.context ())
let private cpu = lazy (Accelerators.cpu context.Value)
let private cuda = lazy (Accelerators.cuda context.Value)

let private planOf (m: Model) =
    Lowering.lowerWith false (Hybrid.Compiler.ResolvedSystem.ofModel m)

let private uniform (rng: Random) (n: int) (lo: float) (hi: float) =
    Array.init n (fun _ -> lo + (hi - lo) * rng.NextDouble())

let private copies (arrays: float[][]) = arrays |> Array.map Array.copy

/// max |a − b| over max(1, max |b|).
let private relative (a: float[]) (b: float[]) =
    let scale = b |> Array.fold (fun m v -> max m (abs v)) 1.0
    (Array.fold2 (fun m p q -> max m (abs (p - q))) 0.0 a b) / scale

/// Forward and adjoint of `model`'s plan on an accelerator against `Codegen`'s scalar loops (and scatter-form
/// adjoint), with random starting outputs and adjoints (both kernels add to the adjoints); `slack` multiplies the
/// tolerances (1 on the CPU accelerator, which runs the same IL as .NET).
let private agreementOn (accelerator: ILGPU.Runtime.Accelerator) (slack: float) (model: Model) =
    let plan = planOf model
    use kernels = new DeviceKernels(accelerator, plan)
    let rng = Random 19
    let batch = 3
    let fields = plan.Fields.Length
    let size = batch * plan.PaddedCells
    let padded = Array.init fields (fun _ -> uniform rng size 0.5 1.5)
    let theta = uniform rng plan.ThetaLength 0.2 1.0

    let cellArrays n =
        Array.init n (fun _ -> uniform rng size -1.0 1.0)

    let inputs = cellArrays plan.Sites.Length
    let data = cellArrays plan.Forcings.Length
    let t = 0.3

    let output = cellArrays fields
    let cpuOut, gpuOut = copies output, copies output
    (Codegen.forwardWith false plan).Invoke(padded, theta, t, cpuOut, batch, inputs, data)
    kernels.ForwardKernel.Invoke(padded, theta, t, gpuOut, batch, inputs, data)

    for f in 0 .. fields - 1 do
        Expect.isLessThan (relative gpuOut[f] cpuOut[f]) (slack * 1e-12) $"F of field {f} (ghost entries untouched)"

    Expect.isGreaterThan (relative cpuOut[0] output[0]) 0.01 "the forward kernel wrote its values"

    let lambda = cellArrays fields
    let paddedAdjoint = cellArrays fields
    let thetaAdjoint = uniform rng plan.ThetaLength -1.0 1.0
    let inputAdjoint = cellArrays plan.Sites.Length

    let run (kernel: AdjointKernel<float>) =
        let pa, ta, ia = copies paddedAdjoint, Array.copy thetaAdjoint, copies inputAdjoint
        kernel.Invoke(padded, theta, t, lambda, pa, ta, batch, inputs, ia, data)
        pa, ta, ia

    let cpuPa, cpuTa, cpuIa = run (Codegen.adjointWith false plan)
    let gpuPa, gpuTa, gpuIa = run kernels.AdjointKernel

    for f in 0 .. fields - 1 do
        Expect.isLessThan (relative gpuPa[f] cpuPa[f]) (slack * 1e-10) $"λᵀ∂F/∂(field {f}), ghosts included"

    Expect.isLessThan (relative gpuTa cpuTa) (slack * 1e-10) "λᵀ∂F/∂θ"

    for s in 0 .. inputAdjoint.Length - 1 do
        Expect.isLessThan (relative gpuIa[s] cpuIa[s]) (slack * 1e-10) $"λᵀ∂F/∂(closure output {s})"

    Expect.isGreaterThan (relative cpuTa thetaAdjoint) 0.01 "the adjoint kernel added into θ̄"
    Expect.isGreaterThan (relative cpuPa[0] paddedAdjoint[0]) 0.01 "the adjoint kernel added into ū"

/// `agreementOn` ILGPU's CPU accelerator, exact as `Codegen` to round-off.
let private agreement (name: string) (model: Model) =
    test name { agreementOn cpu.Value 1.0 model }

/// `agreementOn` the first CUDA GPU where there is one (skipped elsewhere): PTX contracts a·b + c into fused
/// multiply–adds and ILGPU.Algorithms computes exp, log, sin, cos, tanh and pow in software, so `slack` loosens
/// the tolerances for models that use those functions.
let private onGpu (name: string) (slack: float) (model: Model) =
    test $"CUDA GPU: {name}" {
        match cuda.Value with
        | Some gpu -> agreementOn gpu slack model
        | None -> skiptest "no CUDA GPU on this machine"
    }

let private resized (nx: int) (ny: int) (m: Model) =
    m |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, nx, ny))

let tests =
    testList "ILGPU kernels = Codegen's kernels" [
        yield agreement "Fisher–KPP, 1-D, Dirichlet ends" Examples.fisherKpp
        yield agreement "tumour, 1-D: a neural closure and a forcing" Examples.tumour
        yield agreement "Lotka–Volterra, 0-D" Examples.lotkaVolterra
        yield agreement "Gray–Scott, 2-D periodic, 7 × 11" (resized 7 11 Examples.grayScott)
        for n in [ 2; 23 ] -> agreement $"1-D, {n} cells: every function and leaf" (SimdKernelTests.line n)
        for nx, ny in [ 2, 3; 7, 11 ] -> agreement $"2-D, {nx} × {ny}: mixed boundaries" (SimdKernelTests.plane nx ny)
        yield
            agreement
                "2-D doubly periodic, 6 × 5: J(ψ, ω) and advectFlux (corner ghosts, strict steps)"
                (ArakawaKernelTests.vortex 6 5 5.0)
        yield agreement "1-D, 9 cells: advectFlux of fields with walls" (ArakawaKernelTests.tracers 9)

        yield onGpu "Gray–Scott 2-D, 64 × 48" 1.0 (resized 64 48 Examples.grayScott)
        yield onGpu "1-D, 23 cells: every function and leaf" 1e4 (SimdKernelTests.line 23)

        yield
            test "both kernels compile to PTX (sm_75) without a GPU" {
                for model in [ SimdKernelTests.line 9; SimdKernelTests.plane 5 4 ] do
                    let methods = KernelAssembly.build (planOf model)

                    for kernel in [ methods.Forward; methods.Adjoint ] do
                        let ptx =
                            Accelerators.ptx context.Value ILGPU.Runtime.Cuda.CudaArchitecture.SM_75 kernel

                        Expect.stringContains ptx ".entry" $"{model.Name}: {kernel.Name} is a PTX entry point"
            }

        yield
            test "a two-scale lattice is refused with the model's name and the way out" {
                let message =
                    try
                        KernelAssembly.build (planOf Examples.lorenz96) |> ignore
                        ""
                    with :? HybridException as e ->
                        e.Message

                Expect.stringContains message "'lorenz96'" "names the model"
                Expect.stringContains message "Kernels.compile" "says what runs it"
            }
    ]
