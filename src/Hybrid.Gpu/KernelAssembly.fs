namespace Hybrid.Gpu

open System
open System.Collections.Generic
open System.Reflection
open System.Reflection.Emit
open ILGPU
open Hybrid
open Hybrid.Kernels

/// The kernels of one plan as static methods of a type in a run-time assembly (what ILGPU compiles: it reads
/// the IL of real methods, which `Codegen`'s expression trees compiled to dynamic methods do not have).
type internal KernelMethods = {
    /// `Forward(index, padded, θ, t, output, batch, inputs, data)`: one thread per cell and trajectory.
    Forward: MethodInfo
    /// `Adjoint(index, padded, θ, t, λ, padded adjoint, θ̄, partials, batch, inputs, input adjoint, data)`: one
    /// thread per padded cell, looping over the trajectories.
    Adjoint: MethodInfo
}

/// Emits the forward kernel and the gather-form adjoint kernel of a `KernelPlan` as IL (`KernelIl`) into a
/// run-time assembly.
///
/// Every array is one `ArrayView<float>`: array k (a field, a call site, a forcing) of trajectory b holds padded
/// cell p at k·batch·P + b·P + p, P the padded cells per trajectory (`Codegen`'s jagged arrays end to end).
///
/// The adjoint is in gather form everywhere: the thread of padded cell q (ghosts included) sums, over the reads
/// (h, o) of every equation f, λ_f(q − o)·∂F_f/∂u_h(o) taken at q − o, where q − o is an interior cell: each
/// thread writes only its own entries, so no two threads add into one. The cell's own terms (θ, closure
/// outputs) follow; a spatial parameter's entry sums the trajectories in the thread; the scalar parameters'
/// terms of each padded cell go to `partials` (k·P + q for the k-th scalar parameter), which
/// `DeviceKernels` reduces.
[<RequireQualifiedAccess>]
module internal KernelAssembly =

    let private view = KernelIl.viewType

    let private indexX = typeof<Index1D>.GetProperty("X").GetGetMethod()

    /// The scalar (not spatial) parameters, in declaration order.
    let scalarParams (plan: KernelPlan) =
        [| 0 .. plan.Params.Length - 1 |]
        |> Array.filter (fun i -> not plan.ParamSpatial[i])

    /// Raises unless the kernels take the plan: two-scale lattices (two rings of different padded sizes), diagnostic
    /// fields and spatial parameters read at faces (inside a diffusion coefficient) not yet.
    let check (plan: KernelPlan) =
        for d in plan.Diagnostics |> Array.truncate 1 do
            raise (
                HybridException(
                    $"Hybrid.Gpu cannot run model '{plan.Model.Name}' yet: the diagnostic field '{d.Field}' ({d.Equation}) is solved between kernel calls, which the GPU kernels do not do. Run it with the CPU kernels (Kernels.compile)."
                )
            )

        if (KernelPlan.faces plan).Length > 0 then
            raise (
                HybridException(
                    $"Hybrid.Gpu runs the flux advection of model '{plan.Model.Name}' with both faces' fluxes computed in each cell: lower it with Lowering.lowerWith false (its face fluxes are a kernel of their own in Lowering.lower's plan)."
                )
            )

        if plan.ParamCopies.Length > 0 then
            let names =
                plan.ParamCopies
                |> Array.choose (fun c ->
                    match c.Source with
                    | CopySource.Param p -> Some $"'{plan.Params[p]}'"
                    | CopySource.Diagnostic _
                    | CopySource.Face _ -> None)
                |> String.concat ", "

            raise (
                HybridException(
                    $"Hybrid.Gpu cannot run model '{plan.Model.Name}' yet: the spatial parameter {names} is read at cell faces (inside a diffusion coefficient), which the GPU kernels do not lay out. Run it with the CPU kernels (Kernels.compile)."
                )
            )

        if plan.FastSites > 0 then
            raise (
                HybridException(
                    $"Hybrid.Gpu cannot run model '{plan.Model.Name}' yet: it is a two-scale lattice ({plan.FastSites} fast sites per slow site), whose fast ring the GPU kernels do not lay out. Run it with the CPU kernels (Kernels.compile)."
                )
            )

    /// The locals every kernel sets up: the stride, the cell's indices and the scalar parameters.
    let private cellArgs (il: ILGenerator) (plan: KernelPlan) (padded, theta, time, inputs, data) = {
        Plan = plan
        Padded = padded
        Theta = theta
        Time = time
        Inputs = inputs
        Data = data
        Stride = il.DeclareLocal(typeof<int>)
        Pbase = il.DeclareLocal(typeof<int>)
        Ix = il.DeclareLocal(typeof<int>)
        Iy = il.DeclareLocal(typeof<int>)
        ThetaLocals =
            Array.init plan.Params.Length (fun i ->
                if plan.ParamSpatial[i] then
                    null
                else
                    il.DeclareLocal(typeof<float>))
    }

    /// stride = batch·P; the scalar parameters into their locals.
    let private prologue (il: ILGenerator) (args: CellArgs) (batch: int16) =
        il.Emit(OpCodes.Ldarg, batch)
        KernelIl.int il args.Plan.PaddedCells
        il.Emit(OpCodes.Mul)
        il.Emit(OpCodes.Stloc, args.Stride)

        args.ThetaLocals
        |> Array.iteri (fun i l ->
            if not (isNull l) then
                KernelIl.address il args.Theta (fun () -> KernelIl.int il args.Plan.ParamOffsets[i])
                il.Emit(OpCodes.Ldind_R8)
                il.Emit(OpCodes.Stloc, l))

    /// The thread's index (argument 0, an `Index1D`) into a new int local.
    let private threadIndex (il: ILGenerator) =
        let i = il.DeclareLocal(typeof<int>)
        il.Emit(OpCodes.Ldarga_S, 0uy)
        il.Emit(OpCodes.Call, indexX)
        il.Emit(OpCodes.Stloc, i)
        i

    /// Branches to `skip` unless (ix + ox, iy + oy) is an interior cell.
    let private unlessInterior (il: ILGenerator) (args: CellArgs) (ox: int, oy: int) (skip: Label) =
        for local, offset, n in [ args.Ix, ox, args.Plan.Nx; args.Iy, oy, args.Plan.Ny ] do
            // (uint)(i + o) < n: 0 ≤ i + o < n in one comparison.
            il.Emit(OpCodes.Ldloc, (local: LocalBuilder))
            KernelIl.int il offset
            il.Emit(OpCodes.Add)
            KernelIl.int il n
            il.Emit(OpCodes.Bge_Un, skip)

    let private forward (tb: TypeBuilder) (plan: KernelPlan) =
        let parameters = [| typeof<Index1D>; view; view; typeof<float>; view; typeof<int>; view; view |]

        let mb =
            tb.DefineMethod("Forward", MethodAttributes.Public ||| MethodAttributes.Static, typeof<Void>, parameters)

        let il = mb.GetILGenerator()
        let args = cellArgs il plan (1s, 2s, 3s, 6s, 7s)
        let output = 4s
        prologue il args 5s
        let i = threadIndex il
        let gy = if plan.Grid.Dims >= 2 then plan.Ghost else 0
        // ix = (i mod cells) / Ny, iy = i mod Ny, pbase = (i / cells)·P + (ix + g)·Py + iy + gy.
        il.Emit(OpCodes.Ldloc, i)
        KernelIl.int il plan.Cells
        il.Emit(OpCodes.Rem)
        KernelIl.int il plan.Ny
        il.Emit(OpCodes.Div)
        il.Emit(OpCodes.Stloc, args.Ix)
        il.Emit(OpCodes.Ldloc, i)
        KernelIl.int il plan.Ny
        il.Emit(OpCodes.Rem)
        il.Emit(OpCodes.Stloc, args.Iy)
        il.Emit(OpCodes.Ldloc, i)
        KernelIl.int il plan.Cells
        il.Emit(OpCodes.Div)
        KernelIl.int il plan.PaddedCells
        il.Emit(OpCodes.Mul)
        il.Emit(OpCodes.Ldloc, args.Ix)
        KernelIl.int il plan.Ghost
        il.Emit(OpCodes.Add)
        KernelIl.int il plan.Py
        il.Emit(OpCodes.Mul)
        il.Emit(OpCodes.Add)
        il.Emit(OpCodes.Ldloc, args.Iy)
        il.Emit(OpCodes.Add)
        KernelIl.int il gy
        il.Emit(OpCodes.Add)
        il.Emit(OpCodes.Stloc, args.Pbase)
        let cell = KernelIl.Cell(il, args, Dictionary())

        for f in 0 .. plan.Rhs.Length - 1 do
            let value = cell.Emit plan.Rhs[f]
            KernelIl.store il output (KernelIl.padded il args f 0) value

        il.Emit(OpCodes.Ret)

    /// One term of the gather: equation f's read of field h at offset (dx, dy), and its derivative.
    type private Term = {
        Equation: int
        Field: int
        Dx: int
        Dy: int
        Derivative: KExpr
    }

    let private adjoint (tb: TypeBuilder) (plan: KernelPlan) =
        let parameters = [|
            typeof<Index1D>
            view // 1 padded
            view // 2 θ
            typeof<float> // 3 t
            view // 4 λ
            view // 5 padded adjoint
            view // 6 θ̄
            view // 7 partials
            typeof<int> // 8 batch
            view // 9 inputs
            view // 10 input adjoint
            view // 11 data
        |]

        let mb =
            tb.DefineMethod("Adjoint", MethodAttributes.Public ||| MethodAttributes.Static, typeof<Void>, parameters)

        let il = mb.GetILGenerator()
        let args = cellArgs il plan (1s, 2s, 3s, 9s, 11s)

        let lambda, paddedAdjoint, thetaAdjoint, partials, batch, inputAdjoint =
            4s, 5s, 6s, 7s, 8s, 10s

        prologue il args batch
        let q = threadIndex il
        let gy = if plan.Grid.Dims >= 2 then plan.Ghost else 0
        // ix = q / Py − g, iy = q mod Py − gy (outside [0, N) on ghost cells).
        il.Emit(OpCodes.Ldloc, q)
        KernelIl.int il plan.Py
        il.Emit(OpCodes.Div)
        KernelIl.int il plan.Ghost
        il.Emit(OpCodes.Sub)
        il.Emit(OpCodes.Stloc, args.Ix)
        il.Emit(OpCodes.Ldloc, q)
        KernelIl.int il plan.Py
        il.Emit(OpCodes.Rem)
        KernelIl.int il gy
        il.Emit(OpCodes.Sub)
        il.Emit(OpCodes.Stloc, args.Iy)

        let newSum () =
            let l = il.DeclareLocal(typeof<float>)
            il.Emit(OpCodes.Ldc_R8, 0.0)
            il.Emit(OpCodes.Stloc, l)
            l

        let add (sum: LocalBuilder) (value: IlValue) =
            il.Emit(OpCodes.Ldloc, sum)
            KernelIl.push il value
            il.Emit(OpCodes.Add)
            il.Emit(OpCodes.Stloc, sum)

        let scalars = scalarParams plan
        let scalarSums = scalars |> Array.map (fun _ -> newSum ())

        let spatialSums =
            Array.init plan.Params.Length (fun p -> if plan.ParamSpatial[p] then newSum () else null)

        let terms = [
            for f in 0 .. plan.Rhs.Length - 1 do
                for h, dx, dy in KExpr.reads plan.Rhs[f] do
                    let d = KExpr.derivative (KRead(h, dx, dy)) plan.Rhs[f]

                    if d <> KConst 0.0 then
                        {
                            Equation = f
                            Field = h
                            Dx = dx
                            Dy = dy
                            Derivative = d
                        }
        ]

        // for b in 0 .. batch − 1
        let b = il.DeclareLocal(typeof<int>)
        let test = il.DefineLabel()
        let top = il.DefineLabel()
        il.Emit(OpCodes.Ldc_I4_0)
        il.Emit(OpCodes.Stloc, b)
        il.Emit(OpCodes.Br, test)
        il.MarkLabel top
        // pbase = b·P + q
        il.Emit(OpCodes.Ldloc, b)
        KernelIl.int il plan.PaddedCells
        il.Emit(OpCodes.Mul)
        il.Emit(OpCodes.Ldloc, q)
        il.Emit(OpCodes.Add)
        il.Emit(OpCodes.Stloc, args.Pbase)
        let cell = KernelIl.Cell(il, args, Dictionary())
        let fieldSums = Array.init plan.Fields.Length (fun _ -> newSum ())

        // The gather, one guarded block per source offset −o.
        for (dx, dy), group in terms |> List.groupBy (fun t -> t.Dx, t.Dy) do
            let skip = il.DefineLabel()
            unlessInterior il args (-dx, -dy) skip
            let scope = cell.Scope()
            let lambdas = Dictionary<int, IlValue>()

            for t in group do
                let lam =
                    match lambdas.TryGetValue t.Equation with
                    | true, v -> v
                    | _ ->
                        KernelIl.address il lambda (KernelIl.padded il args t.Equation (-dx * plan.Py - dy))
                        il.Emit(OpCodes.Ldind_R8)
                        let l = il.DeclareLocal(typeof<float>)
                        il.Emit(OpCodes.Stloc, l)
                        lambdas[t.Equation] <- Local l
                        Local l

                let atSource =
                    t.Derivative
                    |> KExpr.mapLeaves (function
                        | KRead(k, ex, ey) -> KRead(k, ex - dx, ey - dy)
                        | leaf -> leaf)

                add fieldSums[t.Field] (scope.Product(lam, scope.EmitAt(atSource, -dx, -dy)))

            il.MarkLabel skip

        for h in 0 .. plan.Fields.Length - 1 do
            KernelIl.addInto il paddedAdjoint (KernelIl.padded il args h 0) (Local fieldSums[h])

        // The cell's own terms: θ and the closure outputs.
        let outside = il.DefineLabel()
        unlessInterior il args (0, 0) outside
        let own = cell.Scope()

        for f in 0 .. plan.Rhs.Length - 1 do
            let rhs = plan.Rhs[f]
            KernelIl.address il lambda (KernelIl.padded il args f 0)
            il.Emit(OpCodes.Ldind_R8)
            let l = il.DeclareLocal(typeof<float>)
            il.Emit(OpCodes.Stloc, l)
            let lam = Local l

            for p in KExpr.parameters rhs do
                let d = KExpr.derivative (KParam p) rhs

                if d <> KConst 0.0 then
                    let sum =
                        if plan.ParamSpatial[p] then
                            spatialSums[p]
                        else
                            scalarSums[Array.IndexOf(scalars, p)]

                    add sum (own.Product(lam, own.Emit d))

            for site in KExpr.inputs rhs do
                let d = KExpr.derivative (KInput site) rhs

                if d <> KConst 0.0 then
                    KernelIl.addInto il inputAdjoint (KernelIl.padded il args site 0) (own.Product(lam, own.Emit d))

        il.MarkLabel outside
        // b++ ; b < batch
        il.Emit(OpCodes.Ldloc, b)
        il.Emit(OpCodes.Ldc_I4_1)
        il.Emit(OpCodes.Add)
        il.Emit(OpCodes.Stloc, b)
        il.MarkLabel test
        il.Emit(OpCodes.Ldloc, b)
        il.Emit(OpCodes.Ldarg, batch)
        il.Emit(OpCodes.Blt, top)

        // θ̄ of the spatial parameters at this cell (interior cells only).
        let done' = il.DefineLabel()
        unlessInterior il args (0, 0) done'

        spatialSums
        |> Array.iteri (fun p sum ->
            if not (isNull sum) then
                KernelIl.addInto
                    il
                    thetaAdjoint
                    (fun () ->
                        il.Emit(OpCodes.Ldloc, args.Ix)
                        KernelIl.int il plan.Ny
                        il.Emit(OpCodes.Mul)
                        il.Emit(OpCodes.Ldloc, args.Iy)
                        il.Emit(OpCodes.Add)
                        KernelIl.int il plan.ParamOffsets[p]
                        il.Emit(OpCodes.Add))
                    (Local sum))

        il.MarkLabel done'

        // partials[k·P + q] = the k-th scalar parameter's terms of this cell (0 on ghost cells).
        scalarSums
        |> Array.iteri (fun k sum ->
            KernelIl.store
                il
                partials
                (fun () ->
                    KernelIl.int il (k * plan.PaddedCells)
                    il.Emit(OpCodes.Ldloc, q)
                    il.Emit(OpCodes.Add))
                (Local sum))

        il.Emit(OpCodes.Ret)

    /// Emits both kernels of `plan` into a new run-time assembly (raises for plans `check` refuses).
    let build (plan: KernelPlan) : KernelMethods =
        check plan

        let assembly =
            AssemblyBuilder.DefineDynamicAssembly(
                AssemblyName $"Hybrid.Gpu.{plan.Model.Name}",
                AssemblyBuilderAccess.Run
            )

        let tb =
            assembly
                .DefineDynamicModule("Kernels")
                .DefineType("Kernels", TypeAttributes.Public ||| TypeAttributes.Abstract ||| TypeAttributes.Sealed)

        forward tb plan
        adjoint tb plan
        let t = tb.CreateType()

        {
            Forward = t.GetMethod "Forward"
            Adjoint = t.GetMethod "Adjoint"
        }
