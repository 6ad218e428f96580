namespace Hybrid.Gpu

open System
open System.Reflection
open ILGPU
open ILGPU.Runtime
open Hybrid.Kernels

type private View = ArrayView<float>

/// The reduction of the adjoint's scalar-parameter partials, as kernels ILGPU compiles from F#: chunk sums,
/// then each parameter's chunk sums in order (no atomics, so the sums are the same on every run).
type internal Reductions =

    /// sums[k·chunks + c] = Σ partials[k·count + q] over q in chunk c (`chunk` entries) of [0, count).
    static member ChunkSums(index: Index1D, partials: View, count: int, chunk: int, sums: View) =
        let chunks = (count + chunk - 1) / chunk
        let k = index.X / chunks
        let lo = (index.X % chunks) * chunk
        let hi = min count (lo + chunk)
        let mutable s = 0.0

        for q in lo .. hi - 1 do
            s <- s + partials[k * count + q]

        sums[index.X] <- s

    /// θ̄[offsets[k]] += Σ_c sums[k·chunks + c], c = 0 … chunks − 1.
    static member Collect(index: Index1D, sums: View, chunks: int, offsets: ArrayView<int>, thetaAdjoint: View) =
        let k = index.X
        let mutable s = 0.0

        for c in 0 .. chunks - 1 do
            s <- s + sums[k * chunks + c]

        thetaAdjoint[offsets[k]] <- thetaAdjoint[offsets[k]] + s

/// The generated kernels of a plan loaded on an ILGPU accelerator (`KernelAssembly`'s forward and gather-form
/// adjoint, and the reduction of θ̄). Arrays are views on the accelerator, laid out as `KernelAssembly` says; the
/// `*Kernel` members wrap them in `Codegen`'s delegate types on host arrays (copying in and out on every call).
type internal DeviceKernels(accelerator: Accelerator, plan: KernelPlan) =
    let methods = KernelAssembly.build plan

    let action (m: MethodInfo) : 'd =
        Delegate.CreateDelegate(typeof<'d>, m) :?> 'd

    let reduction (name: string) =
        typeof<Reductions>.GetMethod(name, BindingFlags.Static ||| BindingFlags.Public ||| BindingFlags.NonPublic)

    let forward =
        accelerator.LoadAutoGroupedStreamKernel<Index1D, View, View, float, View, int, View, View>(
            action methods.Forward
        )

    let adjoint =
        accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            View,
            View,
            float,
            View,
            View,
            View,
            View,
            int,
            View,
            View,
            View
         >(
            action methods.Adjoint
        )

    let chunkSums =
        accelerator.LoadAutoGroupedStreamKernel<Index1D, View, int, int, View>(action (reduction "ChunkSums"))

    let collect =
        accelerator.LoadAutoGroupedStreamKernel<Index1D, View, int, ArrayView<int>, View>(action (reduction "Collect"))

    let scalars = KernelAssembly.scalarParams plan
    let chunk = 1024
    let chunks = (plan.PaddedCells + chunk - 1) / chunk

    let offsets =
        accelerator.Allocate1D(Array.append (scalars |> Array.map (fun p -> plan.ParamOffsets[p])) [| 0 |])

    let partials =
        accelerator.Allocate1D<float>(int64 (max 1 (scalars.Length * plan.PaddedCells)))

    let sums = accelerator.Allocate1D<float>(int64 (max 1 (scalars.Length * chunks)))
    /// One entry, passed for arrays a plan does not have (no closure sites, no forcings).
    let unused = accelerator.Allocate1D<float>(1L)

    let orUnused (v: View) =
        if v.Length = 0L then unused.View.BaseView else v

    /// Copies jagged host arrays end to end into a new buffer (one entry where there are none).
    let upload (arrays: float[][]) =
        let flat = Array.concat arrays
        accelerator.Allocate1D(if flat.Length = 0 then [| 0.0 |] else flat)

    /// Copies a buffer back into the jagged host arrays it was uploaded from.
    let download (buffer: MemoryBuffer1D<float, Stride1D.Dense>) (arrays: float[][]) =
        let flat = buffer.GetAsArray1D()
        let mutable at = 0

        for a in arrays do
            Array.blit flat at a 0 a.Length
            at <- at + a.Length

    /// The plan.
    member _.Plan = plan

    /// The accelerator the kernels run on.
    member _.Accelerator = accelerator

    /// Writes the right-hand side of every field at every interior cell of `batch` trajectories into `output`
    /// (ghost entries untouched); queued on the accelerator's default stream.
    member _.Forward(batch: int, padded: View, theta: View, t: float, output: View, inputs: View, data: View) =
        forward.Invoke(Index1D(batch * plan.Cells), padded, theta, t, output, batch, orUnused inputs, orUnused data)

    /// Adds λᵀ∂F/∂(padded fields) into `paddedAdjoint` (ghosts included), λᵀ∂F/∂θ into `thetaAdjoint` and
    /// λᵀ∂F/∂(closure outputs) into `inputAdjoint`, as `Codegen.adjoint` does; queued on the default stream.
    member _.Adjoint
        (
            batch: int,
            padded: View,
            theta: View,
            t: float,
            lambda: View,
            paddedAdjoint: View,
            thetaAdjoint: View,
            inputs: View,
            inputAdjoint: View,
            data: View
        ) =
        adjoint.Invoke(
            Index1D plan.PaddedCells,
            padded,
            theta,
            t,
            lambda,
            paddedAdjoint,
            thetaAdjoint,
            partials.View.BaseView,
            batch,
            orUnused inputs,
            orUnused inputAdjoint,
            orUnused data
        )

        if scalars.Length > 0 then
            chunkSums.Invoke(
                Index1D(scalars.Length * chunks),
                partials.View.BaseView,
                plan.PaddedCells,
                chunk,
                sums.View.BaseView
            )

            collect.Invoke(Index1D scalars.Length, sums.View.BaseView, chunks, offsets.View.BaseView, thetaAdjoint)

    /// `Forward` with `Codegen.forward`'s signature on host arrays.
    member this.ForwardKernel =
        ForwardKernel<float>(fun padded theta t output batch inputs data ->
            use p = upload padded
            use th = accelerator.Allocate1D theta
            use o = upload output
            use i = upload inputs
            use d = upload data

            this.Forward(
                batch,
                p.View.BaseView,
                th.View.BaseView,
                t,
                o.View.BaseView,
                i.View.BaseView,
                d.View.BaseView
            )

            accelerator.Synchronize()
            download o output)

    /// `Adjoint` with `Codegen.adjoint`'s signature on host arrays.
    member this.AdjointKernel =
        AdjointKernel<float>(fun padded theta t lambda paddedAdjoint thetaAdjoint batch inputs inputAdjoint data ->
            use p = upload padded
            use th = accelerator.Allocate1D theta
            use l = upload lambda
            use pa = upload paddedAdjoint
            use ta = upload [| thetaAdjoint |]
            use i = upload inputs
            use ia = upload inputAdjoint
            use d = upload data

            this.Adjoint(
                batch,
                p.View.BaseView,
                th.View.BaseView,
                t,
                l.View.BaseView,
                pa.View.BaseView,
                ta.View.BaseView,
                i.View.BaseView,
                ia.View.BaseView,
                d.View.BaseView
            )

            accelerator.Synchronize()
            download pa paddedAdjoint
            download ta [| thetaAdjoint |]
            download ia inputAdjoint)

    interface IDisposable with
        member _.Dispose() =
            for b in [ partials; sums; unused ] do
                b.Dispose()

            offsets.Dispose()
