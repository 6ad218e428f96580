namespace Hybrid.Gpu

open System.Reflection
open ILGPU
open ILGPU.Algorithms
open ILGPU.Backends.EntryPoints
open ILGPU.Backends.PTX
open ILGPU.Runtime
open ILGPU.Runtime.CPU
open ILGPU.Runtime.Cuda

/// ILGPU contexts and accelerators for the generated kernels.
[<RequireQualifiedAccess>]
module internal Accelerators =

    /// A context with the CPU and CUDA back ends and ILGPU.Algorithms' float64 math (ILGPU has no PTX
    /// intrinsics for exp, log, sin, cos, tanh or pow; XMath implements them in software).
    let context () =
        Context.Create(fun b -> b.CPU().Cuda().Math(MathMode.Default).EnableAlgorithms() |> ignore)

    /// ILGPU's CPU accelerator: kernels run as .NET code on the CPU's cores (the same IL, so the same bits as
    /// `Codegen`'s scalar loops).
    let cpu (context: Context) : Accelerator = context.CreateCPUAccelerator 0

    /// The first CUDA GPU, if the NVIDIA driver reports one.
    let cuda (context: Context) : Accelerator option =
        if context.GetCudaDevices().Count > 0 then
            Some(context.CreateCudaAccelerator 0)
        else
            None

    /// Compiles a kernel method to PTX for `architecture` without a GPU (ILGPU's whole front end and its PTX
    /// back end run on the CPU): the PTX text, or ILGPU's exception where it cannot.
    let ptx (context: Context) (architecture: CudaArchitecture) (kernel: MethodInfo) : string =
        use backend = new PTXBackend(context, architecture, CudaInstructionSet.ISA_75, null)

        let mutable entry = EntryPointDescription.FromImplicitlyGroupedKernel kernel
        let mutable specialization = KernelSpecialization.Empty
        (backend.Compile(&entry, &specialization) :?> PTXCompiledKernel).PTXAssembly
