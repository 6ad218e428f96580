namespace Hybrid.Kernels

open System.Runtime.CompilerServices
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// The linear system A = (1/(γh)) I − J at (t, U₀) of one Rodas4 step of a `RosenbrockStepper`, as its solves read
/// it: the stepper's own for the steps it takes, and one per kept step (`KeptStep.Linear`), whose adjoint's transposed
/// solves reuse it. The arrays are allocated at the first step that needs them and kept; the tensors are released
/// (`Release`) once a kept step's adjoint has run.
[<Sealed; AllowNullLiteral>]
type internal RosenbrockSystem() =
    /// A's blocks ([B; Cells; K; n; n], the 1-D block tridiagonal solve's), LU factors (dense systems above the
    /// stepper's `luAbove` unknowns) or inverse (smaller dense systems); null for BiCGSTAB on arrays and matrix-free.
    member val Matrix: torch.Tensor = null with get, set
    /// The pivots of the LU factors in `Matrix`.
    member val Pivots: torch.Tensor = null with get, set
    /// The solver of `Matrix`.
    member val Solver: StencilSolver option = None with get, set
    /// BiCGSTAB on arrays: A's blocks, those of Aᵀ, and the inverses of both's diagonal blocks.
    member val BlocksA: float[] = null with get, set
    member val BlocksT: float[] = null with get, set
    member val InverseA: float[] = null with get, set
    member val InverseT: float[] = null with get, set
    /// θ, t and 1/(γh), and U₀ (its ghosts filled), which the matrix-free products read.
    member val Theta: float[] = null with get, set
    member val Time = 0.0 with get, set
    member val Diagonal = 0.0 with get, set
    member val Start: float[][] = null with get, set
    /// Whether A has been formed (`Matrix`, or BiCGSTAB's blocks): always, except for the systems a stepper solves
    /// matrix-free first (`RosenbrockStepper`'s `hybrid`), until their budget runs out.
    member val Formed = true with get, set
    /// The products the matrix-free solves of A and of Aᵀ have taken (against the budget).
    member val Products = 0 with get, set
    member val TransposedProducts = 0 with get, set

    /// Disposes the tensors (the arrays stay for the next step).
    member s.Release() =
        if not (isNull s.Matrix) then
            s.Matrix.Dispose()
            s.Matrix <- null

        if not (isNull s.Pivots) then
            s.Pivots.Dispose()
            s.Pivots <- null

/// Where one Rodas4 step's stages live: U₀ (ghosts filled), the stage states Uᵢ (`Inputs[i]`, i ≥ 1), the slopes kᵢ,
/// u with ghosts at t + δ and ∂F/∂t (the last two read only when F reads the time): the stepper's own buffers, or a
/// kept step's (`KeptStep.States` slots 0 … 5 and 6, `Extra` 0 … 5 and 6).
type internal RosenbrockStages = {
    Start: float[][]
    Inputs: float[][][]
    K: float[][][]
    Shifted: float[][]
    Ft: float[][]
}

/// One Rodas4 step of generated kernels (`Rodas4Tableau`, Hairer and Wanner's RODAS) of given size, its error
/// estimate, continuous extension and discrete adjoint, as `Rosenbrock.step` steps on the eager back end, so that both
/// back ends take the same steps: stage i solves A kᵢ = rᵢ with A = (1/(γh)) I − J, J = ∂F/∂u at (t, u),
/// rᵢ = F(t + αᵢh, Uᵢ) + Σⱼ (cᵢⱼ/h) kⱼ + h dᵢ ∂F/∂t, Uᵢ = u + Σⱼ aᵢⱼ kⱼ (U₀ = u); the new state is U₅ + k₅ and k₅
/// the error estimate. ∂F/∂t is the eager stepper's forward difference, computed only when F reads the time (its
/// equations, boundary values or forcings; otherwise it is exactly 0 on both back ends).
///
/// J is probed from the tangent plan's generated kernel (`TangentPlan`: J d for coloured directions d, one per colour
/// and field, as `BlockStencil.jacobian` probes rows on the eager back end) into the blocks of a `BlockStencil`, and the
/// systems are solved as on the eager back end: by its own routines on the calling thread for the block (cyclic)
/// tridiagonal solve in 1-D (`BlockStencilSolve.banded`) and the one inverse of each trajectory's n×n matrix of point
/// systems (`Rosenbrock.denseSolve`); by `BlockStencilSolve.biCgStab`'s algorithm on arrays in 2-D
/// (`BlockStencilArrays`, stopped at `StepControl.solveTolerance`; 10–17× faster than the tensor loop on 16² and 32²
/// grids). Stencils wider than the nearest neighbours (flux advection, Arakawa's Jacobian), which the eager back end
/// solves densely up to `Jacobian.maxDense` unknowns, take the block pattern of the cells J couples
/// (`TangentPlan.couplings`, from the equations' reads; the face fluxes lowered into the equations) and BiCGSTAB on
/// arrays in 1-D too, so they agree with the eager steps to the solve tolerance rather than round-off. Two-scale
/// lattices (slow and fast rings of different sizes) up to `denseUpTo` unknowns (`Jacobian.maxDense`, as the eager
/// back end) take the point systems' path with one block of all K + K·J unknowns per trajectory, J probed one
/// unknown at a time and inverted; larger ones a ring of K blocks, each a slow site's values and its J fast sites',
/// coupled as far as the reads reach (`TangentPlan.couplings`), solved by BiCGSTAB on arrays. Models whose J goes
/// through closures over whole fields (their networks' JVPs, `ForwardTangentNetwork` or `FieldTangentNetwork`) or diagnostic fields' elliptic
/// solves (tangent solves, `TangentPlan.create`) couple every cell to every other: up to `denseUpTo` unknowns
/// (`Jacobian.maxDense`) they take the dense path too, as the eager back end does; so do grids with fewer than 2r + 1
/// cells along an axis J couples cells r apart on (`TangentPlan.shortAxis`: no block row fits). From 256 unknowns
/// (`matrixFreeFrom`) to that limit, but on 1-D nearest-neighbour grids, each step starts matrix-free as below and
/// forms A only if its solves run out of a budget of products (`hybrid`). Above it (where the
/// eager back end refuses) both are solved matrix-free: BiCGSTAB for all trajectories at once (`BiCgStab.solve`,
/// stopped at `StepControl.solveTolerance`; on 1-D nearest-neighbour grids preconditioned by the block tridiagonal
/// solve of the local part of A, `TangentPlan.createLocal`, elsewhere by γh), each product J v one pass of the
/// tangent plan and each Jᵀw one of the base plan's generated adjoint (a stepper of its own, so that no
/// closure-weight gradient of these products reaches the step's), so that no n × n matrix is formed. The two back
/// ends' J differ only by round-off (symbolic derivatives here, autograd there). Per-cell neural
/// closures (`modules`, one per site of `plan`) enter J through their networks' JVPs (`TangentPlan`, `TangentNetwork`:
/// each network's per-row gradient by TorchSharp on the calling thread, once per J), and the adjoint's second-order terms through autograd of
/// those, closure weights included (`ClosureGradients`).
///
/// Adjoint (step size fixed), with k̄₅ = λ′ (+ the continuous extension's cotangents) and Ū₅ = λ′ to start: stages
/// i = 5 … 0 in turn give r̄ᵢ = A⁻ᵀ k̄ᵢ (the solver's transposed solve), then
/// - through A(u, θ): ū += ∂/∂u [r̄ᵢᵀ J(u) kᵢ] and θ̄ += ∂/∂θ [r̄ᵢᵀ J(u) kᵢ] (the tangent plan's generated adjoint:
///   x = A⁻¹r gives Ā = −r̄ xᵀ, and A = (1/(γh)) I − J);
/// - through rᵢ: k̄ⱼ += (cᵢⱼ/h) r̄ᵢ (j < i), (∂F/∂t)‾ += h dᵢ r̄ᵢ, and Ūᵢ += (∂F/∂U)ᵀ r̄ᵢ at Uᵢ (θ̄ too);
/// - through Uᵢ = u + Σ aᵢⱼ kⱼ: ū += Ūᵢ, k̄ⱼ += aᵢⱼ Ūᵢ;
/// and the forward difference ∂F/∂t = (F(t + δ, u) − F(t, u))/δ adds its cotangent through F's adjoint at both times.
type internal RosenbrockStepper
    (
        plan: KernelPlan,
        batch: int,
        modules: torch.nn.Module<torch.Tensor, torch.Tensor>[],
        forcings: (float -> torch.Tensor)[],
        denseUpTo: int,
        matrixFreeFrom: int
    ) =
    let euler = Tableau.ofScheme Scheme.Euler
    let baseStepper = Stepper<float>(plan, euler, batch, modules, forcings)

    let tangentModules = TangentPlan.networks plan modules

    let tangent =
        Stepper<float>(TangentPlan.create plan, euler, batch, tangentModules, forcings)

    let held (modules: torch.nn.Module<torch.Tensor, torch.Tensor>[]) =
        modules
        |> Array.choose (fun m ->
            match box m with
            | :? IHeldProduct as held -> Some held
            | _ -> None)

    // The closures' JVPs, which keep their gradients through the probes of one J (`TangentNetwork.Hold`).
    let jvps = held tangentModules

    /// Adds the closure-weight gradients accumulated in `source` into `target` (the same networks in the same order)
    /// and zeroes them there.
    let moveGradients (target: torch.Tensor[][]) (source: IStepper<float>) =
        if plan.Sites.Length > 0 then
            do
                use _ = torch.no_grad ()

                Array.iter2
                    (Array.iter2 (fun (a: torch.Tensor) (b: torch.Tensor) -> addInPlace a b |> ignore))
                    target
                    source.ClosureGradients

            source.ResetClosureGradients()

    let n = plan.Fields.Length
    let maps = baseStepper.Maps
    let newState () = baseStepper.NewState()
    let cells = plan.Cells
    let stages = Rodas4Tableau.alpha.Length
    let gamma = Rodas4Tableau.gamma

    let readsTime =
        let hasTime (e: KExpr) =
            let mutable found = false

            KExpr.mapLeaves
                (fun leaf ->
                    match leaf with
                    | KTime
                    | KData _ -> found <- true
                    | _ -> ()

                    leaf)
                e
            |> ignore

            found

        let ruleTime (rule: GhostRule) =
            match rule with
            | GhostRule.Dirichlet v
            | GhostRule.Neumann v -> hasTime v
            | _ -> false

        Array.exists hasTime plan.Rhs
        || plan.Rules
           |> Array.exists (Array.exists (fun (lo, hi) -> ruleTime lo || ruleTime hi))

    // A two-scale lattice's unknowns per trajectory, its fields per slow site k (the slow fields' values at k, then
    // each fast field's J sites kJ … kJ + J − 1: a block of the lattice's ring) and whether it takes the dense solve.
    let lattice = plan.FastSites > 0
    let slowFields = plan.Fast |> Array.filter not |> Array.length
    let perSite = slowFields + (n - slowFields) * plan.FastSites
    let latticeDense = lattice && plan.Nx * perSite <= denseUpTo
    // J through closures over whole fields or diagnostic solves couples all cells, and a grid (a lattice's ring)
    // shorter than the stencil's 2r + 1 cells (sites) along an axis fits no block row: one dense block up to
    // `denseUpTo` unknowns, matrix-free above (`matrixFree`).
    let whole = TangentPlan.isGlobal plan || (TangentPlan.shortAxis plan).IsSome

    let unknownCount = Array.sum [| for f in 0 .. n - 1 -> KernelPlan.cells plan f |]

    // Systems that couple every cell (`whole`) above `denseUpTo` unknowns per trajectory are solved matrix-free: no J
    // is formed; BiCGSTAB takes J v from one pass of the tangent plan and Jᵀw from one of the base plan's adjoint.
    let matrixFree = whole && unknownCount > denseUpTo

    // A 1-D grid with a nearest-neighbour stencil (J couples every cell only through closures over whole fields or
    // diagnostic fields), matrix-free: preconditioned by the local part of A, (1/(γh)) I − J_local
    // (`TangentPlan.createLocal`), probed and solved as such a grid's A (block tridiagonal). On the 1-D CNN closure of
    // 1,200 cells it cut the products of J from 9,790 to 612 over the same steps; on 2-D grids the same local part's
    // block Jacobi took about as many as none (4,294 against 4,118 over the rollouts of a vorticity test), so they
    // go without.
    let nearestLine =
        not lattice
        && plan.Grid.Dims = 1
        && (TangentPlan.shortAxis plan).IsNone
        && (TangentPlan.couplings plan).Length <= (StencilMatrix.nearest 1).Length

    let preconditioned = matrixFree && nearestLine

    // Systems that couple every cell from `matrixFreeFrom` to `denseUpTo` unknowns (but the 1-D grids above, which
    // stay dense there) start each step matrix-free, as above the limit, and form A (densely) only once its solves
    // have taken `budget` products in the step (in the adjoint's transposed solves: as many again): the climate
    // model at 16² (512 unknowns) took about 25 products a step where forming A cost as much as about 200 (its probes
    // batch 64 directions a pass), so its rollout ran 6.9× faster forward and 2.5× with gradients. A step that falls
    // back costs at most `budget` products more than forming A at once.
    let hybrid =
        whole
        && not nearestLine
        && unknownCount > matrixFreeFrom
        && unknownCount <= denseUpTo

    let budget = max 1 (unknownCount / 4)

    // The block layout of the grid or the lattice's ring (None for the dense systems: point systems, and two-scale
    // lattices up to `denseUpTo` unknowns, one block of every unknown per trajectory): the cells (slow sites) J
    // couples. Its index tensor lives as long as the stepper, out of any caller's dispose scope.
    let couplings = TangentPlan.couplings plan

    let pattern =
        let make (spatial: int64[]) (fields: int) =
            let p = BlockStencil.patternAt spatial fields torch.CPU couplings
            p.Columns.DetachFromDisposeScope() |> ignore
            Some p

        match plan.Grid.Dims with
        | 0 -> None
        | _ when latticeDense || (whole && not preconditioned) -> None
        | _ when lattice -> make [| int64 plan.Nx |] perSite
        | 1 -> make [| int64 plan.Nx |] n
        | _ -> make [| int64 plan.Nx; int64 plan.Ny |] n

    let columns =
        match pattern with
        | Some p -> p.ColumnArray
        | None -> [| [| 0 |] |]

    let colour =
        match pattern with
        | Some p -> p.Colour
        | None -> [| 0 |]

    let blocks = columns[0].Length

    // The unknowns of a trajectory, each as (field, padded index in trajectory 0), in the packed order: cell by cell,
    // the fields of a cell together, on a grid (`BlockStencil`'s order, the eager stepper's); slow site by slow site
    // on a lattice's ring (`perSite`); field by field, then site by site, for the dense systems, whose one block of
    // `size` × `size` per trajectory holds them all.
    let unknowns =
        match pattern with
        | Some _ when lattice -> [|
            for k in 0 .. plan.Nx - 1 do
                for f in 0 .. n - 1 do
                    if plan.Fast[f] then
                        for j in 0 .. plan.FastSites - 1 -> f, maps[f].Interior[k * plan.FastSites + j]
                    else
                        yield f, maps[f].Interior[k]
          |]
        | Some _ -> [|
            for c in 0 .. cells - 1 do
                for f in 0 .. n - 1 -> f, maps[f].Interior[c]
          |]
        | None -> [|
            for f in 0 .. n - 1 do
                for c in 0 .. KernelPlan.cells plan f - 1 -> f, maps[f].Interior[c]
          |]

    // Block rows and the size of a block: a grid's cells and its fields, a lattice's slow sites and their unknowns,
    // or one block of every unknown.
    let blockRows, size =
        match pattern with
        | Some _ when lattice -> plan.Nx, perSite
        | Some _ -> cells, n
        | None -> 1, unknowns.Length

    // BiCGSTAB on arrays (`BlockStencilArrays`) on 2-D grids and for stencils wider than the nearest neighbours; the
    // eager block tridiagonal solve on 1-D nearest-neighbour stencils.
    let iterative =
        pattern.IsSome
        && (plan.Grid.Dims = 2
            || lattice
            || couplings.Length > (StencilMatrix.nearest 1).Length)

    // Buffers: U₀ = u with its ghosts, Uᵢ, F there, the slopes kᵢ, ∂F/∂t (and u with ghosts at t + δ).
    let start = newState ()
    let inputs = Array.init stages (fun _ -> newState ())
    let f = newState ()
    let ft = newState ()
    let shifted = newState ()
    let k = Array.init stages (fun _ -> newState ())
    let next = newState ()
    let error = newState ()
    let direction = newState ()
    let jd = tangent.NewState()

    // The preconditioner's tangent stepper (`preconditioned`): J_local d, probed as a grid's J, its output state and
    // its networks' held products.
    let localTangent, localJd, localHeld =
        if preconditioned then
            let modules = TangentPlan.localNetworks plan modules

            let s =
                Stepper<float>(TangentPlan.createLocal plan, euler, batch, modules, forcings)

            Some s, s.NewState(), held modules
        else
            None, [||], [||]

    let zeros = newState ()
    let directionAdjoint = newState ()

    // The dense systems' probes, `copies` directions at a time: a tangent stepper over `copies` × `batch`
    // trajectories, the state repeated in each block of `batch` (each trajectory's J d is its own, whatever the
    // batch, so the columns are those of one direction at a time). At most 64 copies, and about 2²⁰ values per field
    // set.
    let copies =
        if pattern.IsSome || matrixFree then
            0
        else
            let perTrajectory = Array.sum [| for m in maps -> m.Padded |]
            max 1 (min (min unknowns.Length 64) ((1 <<< 20) / (batch * perTrajectory)))

    let probeTangent =
        if copies = 0 then
            None
        else
            Some(Stepper<float>(tangent.Plan, euler, copies * batch, tangentModules, forcings))

    let probeState, probeJd =
        match probeTangent with
        | Some p -> p.NewState(), p.NewState()
        | None -> [||], [||]

    // Adjoint buffers: k̄ per stage, r̄, Ū, ū, the cotangent of ∂F/∂t.
    let kBar = Array.init stages (fun _ -> newState ())
    let rBar = newState ()
    let uiBar = newState ()
    let uBar = newState ()
    let ftBar = newState ()
    let cotangent = newState ()
    // D₂ and D₃ of the continuous extension (`Dense`), made at its first call.
    let mutable denseTerms: float[][][] = null

    let mutable solveTolerance = 1e-10
    // Dense systems above this many unknowns per trajectory take LU solves instead of the inverse.
    let luAbove = 64
    // The system of the steps taken (`Step`, `StepAdjoint`); a kept step has its own (`KeptStep.Linear`).
    let own = RosenbrockSystem()
    // The stages of the steps taken.
    let ownStages = {
        Start = start
        Inputs = inputs
        K = k
        Shifted = shifted
        Ft = ft
    }

    /// The forward difference's step δ of ∂F/∂t at time t.
    let deltaAt (t: float) = sqrt (2.2e-16 * max 1e-5 (abs t))

    let copyInto (target: float[][]) (source: float[][]) =
        for fi in 0 .. n - 1 do
            System.Array.Copy(source[fi], target[fi], source[fi].Length)

    let clear (x: float[][]) =
        for a in x do
            System.Array.Clear a

    /// target += w·x per field.
    let addScaled (target: float[][]) (w: float) (x: float[][]) =
        if w <> 0.0 then
            for fi in 0 .. n - 1 do
                Blas.Axpy(w, x[fi], target[fi])

    /// Padded state → [B; unknowns] values in the packed order (`unknowns`) into `values` (every entry); the fields
    /// from x[first] on (a tangent state's directions from x[n]).
    let packFrom (first: int) (x: float[][]) (values: float[]) =
        for b in 0 .. batch - 1 do
            for e in 0 .. unknowns.Length - 1 do
                let f, at = unknowns[e]
                values[b * unknowns.Length + e] <- x[first + f].[b * maps[f].Padded + at]

    let packValues = packFrom 0

    /// [B; unknowns] values → the interior of padded state `x` (ghost entries untouched).
    let unpackValues (values: float[]) (x: float[][]) =
        for b in 0 .. batch - 1 do
            for e in 0 .. unknowns.Length - 1 do
                let f, at = unknowns[e]
                x[f].[b * maps[f].Padded + at] <- values[b * unknowns.Length + e]

    let probeValues =
        Array.zeroCreate<float> (
            if matrixFree && not preconditioned then
                0
            else
                batch * blockRows * blocks * size * size
        )

    let mutable probeTensor: torch.Tensor = null

    /// The blocks of J at (t, u) (u's ghosts filled) as [B; Cells; K; n; n]: per colour and unknown b of a block, J d
    /// for the direction d = 1 on unknown b of the cells of that colour; block (i, k) column b is that product at cell i, for
    /// the colour of the k-th cell of i's stencil (a distance-2 colouring: one cell of each colour in every stencil).
    /// The closures' JVPs take their networks' gradients once for all the directions (`TangentNetwork.Hold`). Blocks
    /// hold `size` unknowns (`unknowns`: a cell's fields, a lattice site's, or every unknown of the dense systems, whose
    /// one block takes one direction per unknown: column e of J is J eₑ, `copies` of them per pass of the probe stepper).
    let probe (u: float[][]) (theta: float[]) (t: float) : float[] =
        // Every entry is written below: the buffer is kept from one step to the next (a fresh one of this size lands
        // on .NET's large-object heap each step, and its collections took a fifth of the CPU on the dense lattices).
        let values = probeValues
        let state = Array.append u direction

        // The local part of J for the matrix-free solves' preconditioner (`preconditioned`), else J.
        let stepper, out, products =
            match localTangent with
            | Some s -> s, localJd, localHeld
            | None -> tangent, jd, jvps

        for m in products do
            m.Hold()

        try
            match probeTangent with
            | Some probeStepper ->
                // One block of every unknown: column a of J is J eₐ, `copies` columns per pass (copy p of trajectory
                // tr is trajectory p·batch + tr of the probe stepper).
                for f in 0 .. n - 1 do
                    let length = batch * maps[f].Padded

                    for p in 0 .. copies - 1 do
                        System.Array.Copy(u[f], 0, probeState[f], p * length, length)

                for first in 0..copies .. size - 1 do
                    let count = min copies (size - first)

                    for f in n .. 2 * n - 1 do
                        System.Array.Clear probeState[f]

                    for p in 0 .. count - 1 do
                        let f, at = unknowns[first + p]

                        for tr in 0 .. batch - 1 do
                            probeState[n + f].[(p * batch + tr) * maps[f].Padded + at] <- 1.0

                    probeStepper.FillGhosts(probeState, theta, t)
                    probeStepper.Rhs(probeState, theta, t, probeJd)

                    for p in 0 .. count - 1 do
                        for tr in 0 .. batch - 1 do
                            for row in 0 .. size - 1 do
                                let g, at = unknowns[row]

                                values[(tr * size + row) * size + first + p] <-
                                    probeJd[n + g].[(p * batch + tr) * maps[g].Padded + at]
            | None ->
                for c in 0 .. Array.max colour do
                    for a in 0 .. size - 1 do
                        clear direction

                        for tr in 0 .. batch - 1 do
                            for cell in 0 .. blockRows - 1 do
                                if colour[cell] = c then
                                    let f, at = unknowns[cell * size + a]
                                    direction[f].[tr * maps[f].Padded + at] <- 1.0

                        stepper.FillGhosts(state, theta, t)
                        stepper.Rhs(state, theta, t, out)

                        for tr in 0 .. batch - 1 do
                            for cell in 0 .. blockRows - 1 do
                                for kk in 0 .. blocks - 1 do
                                    if colour[columns[cell].[kk]] = c then
                                        for row in 0 .. size - 1 do
                                            let g, at = unknowns[cell * size + row]

                                            values[(((tr * blockRows + cell) * blocks + kk) * size + row) * size + a] <-
                                                out[n + g].[tr * maps[g].Padded + at]
        finally
            for m in products do
                m.Release()

        values

    /// A = `diagonal` I − J at (t, u) (`diagonal` = 1/(γh)) and its solver into `system`, as the eager stepper forms
    /// them.
    let prepareMatrix (system: RosenbrockSystem) (u: float[][]) (theta: float[]) (t: float) (diagonal: float) =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let values = probe u theta t

        // The values as [B; Cells; K; n; n], copied into a tensor kept from one step to the next (`torch.tensor` of
        // the array would pin a fresh copy of it each step).
        let tensor () =
            if isNull probeTensor then
                probeTensor <-
                    torch
                        .empty(
                            [| int64 batch; int64 blockRows; int64 blocks; int64 size; int64 size |],
                            dtype = torch.ScalarType.Float64
                        )
                        .DetachFromDisposeScope()

            System.Span<float>(values).CopyTo(KernelElement.span<float> probeTensor)
            probeTensor

        system.Release()

        match pattern with
        | Some p when iterative ->
            // (1/(γh)) I − J entry by entry, as the eager stepper's tensor expression rounds it.
            // The arrays are kept from one step to the next (large-object heap, as `probeValues`).
            if isNull system.BlocksA then
                system.BlocksA <- Array.zeroCreate values.Length
                system.BlocksT <- Array.zeroCreate values.Length
                system.InverseA <- Array.zeroCreate (batch * blockRows * size * size)
                system.InverseT <- Array.zeroCreate (batch * blockRows * size * size)

            let blocksA = system.BlocksA

            for e in 0 .. values.Length - 1 do
                let block = e / (size * size)
                let r, c = (e % (size * size)) / size, e % size
                let eye = if block % blocks = 0 && r = c then diagonal else 0.0
                blocksA[e] <- eye - values[e]

            BlockStencilArrays.transpose system.BlocksT p.ColumnArray p.Opposite size batch blocksA
            BlockStencilArrays.inverseDiagonal system.InverseA blockRows blocks size batch blocksA
            BlockStencilArrays.inverseDiagonal system.InverseT blockRows blocks size batch system.BlocksT
        | Some p ->
            let j = tensor ()
            let a = diagonal .* BlockStencil.identity p j .- j
            system.Matrix <- a.DetachFromDisposeScope()

            // As the matrix-free solves' preconditioner its accuracy costs iterations only: unchecked.
            system.Solver <- Some(BlockStencilSolve.bandedWith (not preconditioned) p)
        | None when size > luAbove ->
            // Large dense systems (lattices, closures over whole fields, diagnostic fields, short grids): one LU
            // factorisation per trajectory and step, two triangular solves per stage — a third of the inverse's
            // flops, which took most of a step at 396 unknowns (the two agree to round-off).
            let struct (lu, pivots) =
                torch.linalg.lu_factor (
                    diagonal .* torch.eye (int64 size, dtype = torch.ScalarType.Float64)
                    .- (tensor ()).squeeze 2L
                )

            system.Matrix <- lu.DetachFromDisposeScope()
            system.Pivots <- pivots.DetachFromDisposeScope()
            let p = system.Pivots

            let apply (transposed: bool) (m: torch.Tensor) (r: torch.Tensor) =
                torch.linalg.lu_solve(m, p, r.unsqueeze -1L, adjoint = transposed).squeeze -1L

            system.Solver <-
                Some {
                    Forward = apply false
                    Transposed = apply true
                    Gradient = fun _ _ -> invalidOp "The kernels' Rodas4 does not differentiate its solves by autograd."
                }
        | None ->
            // Point systems and small two-scale lattices: the eager stepper's one inverse per trajectory
            // (`Rosenbrock.denseSolve`), cheaper than LU solves on small blocks.
            let inverse =
                torch.linalg.inv (
                    diagonal .* torch.eye (int64 size, dtype = torch.ScalarType.Float64)
                    .- (tensor ()).squeeze 2L
                )

            system.Matrix <- inverse.DetachFromDisposeScope()
            let apply (m: torch.Tensor) (r: torch.Tensor) = m.matmul(r.unsqueeze -1L).squeeze -1L

            system.Solver <-
                Some {
                    Forward = apply
                    Transposed = fun m g -> apply (m.transpose (-1L, -2L)) g
                    // The kernels' adjoint takes the transposed solves and the tangent plan's terms instead.
                    Gradient = fun _ _ -> invalidOp "The kernels' Rodas4 does not differentiate its solves by autograd."
                }

    // The packed right-hand sides of `solve` and BiCGSTAB's vectors, kept from one solve to the next.
    let packed = Array.zeroCreate<float> (batch * unknowns.Length)
    let solveVectors = SolveVectors()

    // The systems formed (`Systems`).
    let mutable systems = 0L

    /// A = (1/(γh)) I − J at (t, u) (ghosts filled) and its solver into `system`, as the eager stepper forms them
    /// (matrix-free: what its products read; `hybrid`: A formed later, if at all).
    let prepare (system: RosenbrockSystem) (u: float[][]) (theta: float[]) (t: float) (h: float) =
        systems <- systems + 1L
        system.Theta <- theta
        system.Time <- t
        system.Diagonal <- 1.0 / (gamma * h)
        system.Start <- u
        system.Products <- 0
        system.TransposedProducts <- 0
        system.Formed <- not (matrixFree || hybrid)

        if hybrid then
            system.Release()
        elif not matrixFree || preconditioned then
            prepareMatrix system u theta t system.Diagonal

    // The matrix-free products' buffers: w and Jᵀw for the base plan's adjoint (a stepper of its own, held at U₀ for
    // a solve's products: `Stepper.HoldAdjoint`, no closure-weight gradients), and its θ̄.
    let transposer = lazy (Stepper<float>(plan, euler, batch, modules, forcings))

    // Whether the transposed products hold the adjoint at U₀ (`RosenbrockStepper.HoldsTransposedProducts` when made).
    let holdsTransposed = RosenbrockStepper.HoldsTransposedProducts

    let seed, seedAdjoint =
        if matrixFree || hybrid then
            newState (), newState ()
        else
            [||], [||]

    let thetaScratch = ResizeArray<float[]>()

    // The matrix-free products taken (`Products`).
    let mutable products = 0L

    /// y = A v for the packed [B; unknowns] vector v (`transposed`: Aᵀv) of `system`, matrix-free; `tangentState` is
    /// (U₀, `direction`), the tangent plan's state.
    let product (system: RosenbrockSystem) (tangentState: float[][]) (transposed: bool) (v: float[]) (y: float[]) =
        products <- products + 1L
        let theta, time = system.Theta, system.Time

        if transposed then
            let adjointStepper = transposer.Force()
            clear seed
            unpackValues v seed
            clear seedAdjoint

            if thetaScratch.Count = 0 || thetaScratch[0].Length <> theta.Length then
                thetaScratch.Clear()
                thetaScratch.Add(Array.zeroCreate theta.Length)

            if holdsTransposed then
                adjointStepper.RhsAdjointHeld(system.Start, theta, time, seed, seedAdjoint, thetaScratch[0])
            else
                adjointStepper.RhsAdjoint(system.Start, theta, time, seed, seedAdjoint, thetaScratch[0])

            packValues seedAdjoint y
        else
            use _ = torch.no_grad ()
            clear direction
            unpackValues v direction
            tangent.FillGhosts(tangentState, theta, time)
            tangent.Rhs(tangentState, theta, time, jd)
            packFrom n jd y

        let diagonal = system.Diagonal

        for e in 0 .. y.Length - 1 do
            y[e] <- diagonal * v[e] - y[e]

    let matrixFreeCaller: BiCgStabCaller = {
        System =
            $"Rodas4's linear system, solved matrix-free ({unknowns.Length} unknowns per trajectory, above the dense solve's {denseUpTo}; its Jacobian couples every cell to every other)"
        NotConverged = "Loosen the Tolerance, or use Scheme.Dopri5."
        BrokeDown = "Use Scheme.Dopri5, or a smaller first step."
    }

    /// BiCGSTAB on A x = r (or Aᵀ) of `system`, matrix-free, for every trajectory at once, preconditioned by γh (A's
    /// diagonal where J is small) or the local part's solve (`preconditioned`), over the packed vector `r`: raising
    /// where it fails (`BiCgStab.solve`), or within `limit` iterations when given (`BiCgStab.within`; r untouched
    /// unless `Converged`).
    let solveMatrixFree (system: RosenbrockSystem) (transposed: bool) (limit: int option) (r: float[]) =
        let matrix = system.Matrix

        let precondition: float[] -> float[] -> unit =
            match system.Solver with
            | Some s when preconditioned ->
                // The local part's block tridiagonal solve.
                fun x y ->
                    use _ = torch.NewDisposeScope()
                    use _ = torch.no_grad ()

                    let rt =
                        torch
                            .tensor(x, dtype = torch.ScalarType.Float64)
                            .reshape ([| int64 batch; int64 blockRows; int64 size |])

                    let solved =
                        ((if transposed then s.Transposed else s.Forward) matrix rt).contiguous ()

                    (KernelElement.span<float> solved).CopyTo(System.Span<float>(y))
            | _ ->
                let diagonal = system.Diagonal

                fun x y ->
                    for e in 0 .. x.Length - 1 do
                        y[e] <- x[e] / diagonal

        for m in jvps do
            m.Hold()

        // The transposed products' vector–Jacobian products all at U₀: the closures and solves run forward once.
        if transposed && holdsTransposed then
            transposer.Force().HoldAdjoint(system.Start, system.Theta, system.Time)

        let apply = product system (Array.append system.Start direction) transposed

        try
            match limit with
            | None ->
                BiCgStab.solve matrixFreeCaller solveVectors batch unknowns.Length apply precondition solveTolerance r 0
                Converged
            | Some limit ->
                BiCgStab.within solveVectors batch unknowns.Length apply precondition solveTolerance limit r 0
        finally
            for m in jvps do
                m.Release()

            if transposed && holdsTransposed then
                transposer.Value.ReleaseAdjoint()
            elif transposed then
                // Their closure-weight gradients are not the step's.
                transposer.Value.ResetClosureGradients()

    // The hybrid systems' solves that ran out of budget and formed A (`Fallbacks`).
    let mutable fallbacks = 0L

    /// A hybrid system's matrix-free solve within what is left of its budget (`hybrid`): whether it converged (x in
    /// `r`); else `r` is untouched.
    let withinBudget (system: RosenbrockSystem) (transposed: bool) (r: float[]) =
        let used =
            if transposed then
                system.TransposedProducts
            else
                system.Products

        // One product to start, two per iteration.
        let limit = (budget - used - 1) / 2
        let before = products

        let ended =
            if limit > 0 then
                solveMatrixFree system transposed (Some limit) r
            else
                OutOfIterations

        let taken = int (products - before)

        if transposed then
            system.TransposedProducts <- used + taken
        else
            system.Products <- used + taken

        ended = Converged

    /// x ← A⁻¹r (or A⁻ᵀr) of `system`, A formed, r packed.
    let solveFormed (system: RosenbrockSystem) (transposed: bool) (r: float[]) (x: float[][]) =
        if iterative then
            let a, inverse =
                if transposed then
                    system.BlocksT, system.InverseT
                else
                    system.BlocksA, system.InverseA

            for b in 0 .. batch - 1 do
                BlockStencilArrays.biCgStab solveVectors columns size a inverse solveTolerance r b

            unpackValues r x
        else
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()
            let s = system.Solver.Value

            let rt =
                torch
                    .tensor(r, dtype = torch.ScalarType.Float64)
                    .reshape ([| int64 batch; int64 blockRows; int64 size |])

            let solved = (if transposed then s.Transposed else s.Forward) system.Matrix rt
            unpackValues (solved.contiguous().data<float>().ToArray()) x

    /// x ← A⁻¹x (or A⁻ᵀx) of `system`, in place on the interior.
    let solve (system: RosenbrockSystem) (transposed: bool) (x: float[][]) =
        let r = packed
        packValues x r

        if matrixFree then
            solveMatrixFree system transposed None r |> ignore
            unpackValues r x
        elif not system.Formed && withinBudget system transposed r then
            unpackValues r x
        else
            if not system.Formed then
                // Out of budget: A formed at the step's start, as the dense systems form it, for this solve and the
                // rest of the step's (or the adjoint's).
                fallbacks <- fallbacks + 1L
                prepareMatrix system system.Start system.Theta system.Time system.Diagonal
                system.Formed <- true

            solveFormed system transposed r x

    /// target ← start + Σⱼ wⱼ·xs[j] over the non-zero weights (start null: the first term alone), per entry: the
    /// order of `Rosenbrock`'s sums.
    let weightedInto (target: float[][]) (weights: float[]) (xs: float[][][]) (startWith: float[][]) =
        for fi in 0 .. n - 1 do
            let y = target[fi]

            for i in 0 .. y.Length - 1 do
                let mutable sum = if isNull startWith then 0.0 else startWith[fi].[i]
                let mutable any = not (isNull startWith)

                for j in 0 .. weights.Length - 1 do
                    if weights[j] <> 0.0 then
                        let term = weights[j] * xs[j].[fi].[i]
                        sum <- if any then sum + term else term
                        any <- true

                y[i] <- sum

    /// x += (h dᵢ)·∂F/∂t (`ft`), when F reads the time and dᵢ ≠ 0.
    let withTime (i: int) (h: float) (ft: float[][]) (x: float[][]) =
        if readsTime && Rodas4Tableau.d[i] <> 0.0 then
            let w = h * Rodas4Tableau.d[i]

            for fi in 0 .. n - 1 do
                let y, z = x[fi], ft[fi]

                for e in 0 .. y.Length - 1 do
                    y[e] <- y[e] + w * z[e]

    /// F at `state` (ghosts filled; time t) into `output`: kept in slot `slot` of `kept` (the networks' and solves'
    /// graphs too) when given.
    let rhsAt (kept: KeptStep<float> option) (slot: int) (state: float[][]) (theta: float[]) (t: float) output =
        match kept with
        | Some kept -> baseStepper.RhsKept(state, theta, t, output, kept, slot)
        | None -> baseStepper.Rhs(state, theta, t, output)

    /// The adjoint of `rhsAt` with the cotangent `outputAdjoint`, added into `stateAdjoint` and `thetaAdjoint`: from
    /// slot `slot` of `kept` when given (no network or solve run forward), else at `state` (its ghosts refilled).
    let rhsAdjointAt
        (kept: KeptStep<float> option)
        (slot: int)
        (state: float[][])
        (theta: float[])
        (t: float)
        (outputAdjoint: float[][])
        (stateAdjoint: float[][])
        (thetaAdjoint: float[])
        =
        match kept with
        | Some kept -> baseStepper.RhsAdjointKept(kept, slot, theta, t, outputAdjoint, stateAdjoint, thetaAdjoint)
        | None ->
            baseStepper.FillGhosts(state, theta, t)
            baseStepper.RhsAdjoint(state, theta, t, outputAdjoint, stateAdjoint, thetaAdjoint)

    /// The slot of F at t + δ in a kept step (after the stages').
    let shiftedSlot = stages

    // The slopes of the latest step taken or kept (`Dense` reads them).
    let mutable latestK = k

    /// The step (t, h) from u: its system into `system`, its stages into `at` (kept in `kept` when given: F's
    /// evaluations through `RhsKept`), the new state into `out`, the error estimate k₅ into `error`.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let stepWith
        (system: RosenbrockSystem)
        (at: RosenbrockStages)
        (kept: KeptStep<float> option)
        (u: float[][])
        (theta: float[])
        (t: float)
        (h: float)
        (out: float[][])
        =
        let start, inputs, k, ft = at.Start, at.Inputs, at.K, at.Ft
        copyInto start u
        baseStepper.FillGhosts(start, theta, t)
        prepare system start theta t h
        rhsAt kept 0 start theta t k[0]

        if readsTime then
            let delta = deltaAt t
            copyInto at.Shifted u
            baseStepper.FillGhosts(at.Shifted, theta, t + delta)
            rhsAt kept shiftedSlot at.Shifted theta (t + delta) ft

            for fi in 0 .. n - 1 do
                let y, z = ft[fi], k[0].[fi]

                for e in 0 .. y.Length - 1 do
                    y[e] <- (y[e] - z[e]) / delta

        withTime 0 h ft k[0]
        solve system false k[0]

        for i in 1 .. stages - 1 do
            let time = t + Rodas4Tableau.alpha[i] * h
            weightedInto inputs[i] Rodas4Tableau.a[i] k u
            baseStepper.FillGhosts(inputs[i], theta, time)
            rhsAt kept i inputs[i] theta time f
            weightedInto k[i] (Rodas4Tableau.c[i] |> Array.map (fun x -> x / h)) k f
            withTime i h ft k[i]
            solve system false k[i]

        for fi in 0 .. n - 1 do
            let y, a, b = out[fi], inputs[stages - 1].[fi], k[stages - 1].[fi]

            for e in 0 .. y.Length - 1 do
                y[e] <- a[e] + b[e]

        copyInto error k[stages - 1]
        latestK <- k

    /// The stages of the step (t, h) from u into the stepper's own buffers, the new state into `out`.
    let step (u: float[][]) (theta: float[]) (t: float) (h: float) (out: float[][]) =
        stepWith own ownStages None u theta t h out

    /// The adjoint of the step (t, h) whose system and stages are `system` and `at` (kept in `kept` when given): see
    /// the type's comment; `extra` (per stage, or null) are cotangents of the slopes kⱼ themselves and `direct` (or
    /// null) of u, from the continuous extension.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let adjointOf
        (system: RosenbrockSystem)
        (at: RosenbrockStages)
        (kept: KeptStep<float> option)
        (theta: float[])
        (t: float)
        (h: float)
        (lambdaNext: float[][])
        (extra: float[][][])
        (direct: float[][])
        (lambda: float[][])
        (thetaAdjoint: float[])
        =
        let start, inputs, k = at.Start, at.Inputs, at.K
        let last = stages - 1

        for j in 0..last do
            if isNull extra then
                clear kBar[j]
            else
                copyInto kBar[j] extra[j]

        addScaled kBar[last] 1.0 lambdaNext

        if isNull direct then clear uBar else copyInto uBar direct

        clear ftBar

        for i in last .. -1 .. 0 do
            copyInto rBar kBar[i]
            solve system true rBar
            // Through A(u, θ): ∂/∂(u, θ) of r̄ᵢᵀ J(u) kᵢ, from the tangent plan's adjoint at (u, kᵢ).
            let state = Array.append start k[i]
            tangent.FillGhosts(state, theta, t)
            clear directionAdjoint

            tangent.RhsAdjoint(
                state,
                theta,
                t,
                Array.append zeros rBar,
                Array.append uBar directionAdjoint,
                thetaAdjoint
            )

            if readsTime then
                addScaled ftBar (h * Rodas4Tableau.d[i]) rBar

            for j in 0 .. i - 1 do
                addScaled kBar[j] (Rodas4Tableau.c[i].[j] / h) rBar

            if i > 0 then
                let time = t + Rodas4Tableau.alpha[i] * h

                if i = last then copyInto uiBar lambdaNext else clear uiBar

                rhsAdjointAt kept i inputs[i] theta time rBar uiBar thetaAdjoint
                addScaled uBar 1.0 uiBar

                for j in 0 .. i - 1 do
                    addScaled kBar[j] Rodas4Tableau.a[i].[j] uiBar
            else
                // F(t, u) feeds stage 0 and the forward difference's −F(t, u)/δ.
                copyInto cotangent rBar

                if readsTime then
                    addScaled cotangent (-1.0 / deltaAt t) ftBar

                rhsAdjointAt kept 0 start theta t cotangent uBar thetaAdjoint

        if readsTime then
            let delta = deltaAt t
            clear cotangent
            addScaled cotangent (1.0 / delta) ftBar
            rhsAdjointAt kept shiftedSlot at.Shifted theta (t + delta) cotangent uBar thetaAdjoint

        // The tangent plan's sites carry the closures' names: its accumulators are the base stepper's, network by network.
        moveGradients baseStepper.ClosureGradients (tangent :> IStepper<float>)
        copyInto lambda uBar

    /// The adjoint of the step (t, h) from u, its stages recomputed into the stepper's own buffers.
    let adjoint u theta t h lambdaNext extra direct lambda thetaAdjoint =
        stepWith own ownStages None u theta t h next
        adjointOf own ownStages None theta t h lambdaNext extra direct lambda thetaAdjoint

    /// A kept step's stages: `KeptStep.States` slots 0 … 5 (U₀, then Uᵢ) and 6 (u at t + δ), `Extra` 0 … 5 (kᵢ) and 6
    /// (∂F/∂t).
    let stagesOf (kept: KeptStep<float>) = {
        Start = kept.States[0]
        Inputs = kept.States
        K = kept.Extra[.. stages - 1]
        Shifted = kept.States[shiftedSlot]
        Ft = kept.Extra[stages]
    }

    // Kept steps' budget: their states and systems, at most `keptBytes` at once (at least one step).
    let mutable keptBytes = 64L * 1024L * 1024L

    // A kept step's bytes.
    let bytesPerKept =
        let state = int64 (Array.sumBy (fun (m: GhostMap) -> m.Padded) maps) * int64 batch
        let states = int64 (2 * (stages + 1)) * state

        let system =
            match pattern with
            | _ when matrixFree && not preconditioned -> 0L
            | Some _ when iterative -> 4L * int64 probeValues.Length
            | Some _ -> int64 probeValues.Length
            | None -> int64 batch * int64 size * int64 size

        8L * (states + system)

    /// A stepper that forms A densely up to `denseUpTo` unknowns per trajectory, but for the systems that couple every
    /// cell from `RosenbrockStepper.MatrixFreeFrom` unknowns (`hybrid`), which start matrix-free.
    new(plan, batch, modules, forcings, denseUpTo) =
        RosenbrockStepper(plan, batch, modules, forcings, denseUpTo, RosenbrockStepper.MatrixFreeFrom)

    /// The unknowns per trajectory above which the steppers made from then on start the steps of systems that couple
    /// every cell matrix-free, up to their dense limit (`hybrid`): 256. `hybrid bench-rodas` raises it to time
    /// forming A every step beside it.
    static member val MatrixFreeFrom = 256 with get, set

    /// Whether the steppers made from then on take the matrix-free transposed products of a solve from one hold of
    /// the adjoint at U₀ (`Stepper.HoldAdjoint`: the closures and diagnostic solves run forward once per solve, no
    /// weight gradients): true. `hybrid bench-rodas` turns it off to time running them forward for every product.
    static member val HoldsTransposedProducts = true with get, set

    /// A stepper that solves two-scale lattices of up to `Jacobian.maxDense` unknowns densely (as the eager back end).
    new(plan, batch, modules, forcings) = RosenbrockStepper(plan, batch, modules, forcings, Jacobian.maxDense)

    /// The relative residual at which BiCGSTAB stops (2-D grids, wider stencils): `StepControl.solveTolerance` of the rollout's
    /// tolerances, set before the run.
    member _.SolveTolerance
        with get () = solveTolerance
        and set (value: float) = solveTolerance <- value

    /// Adds the closure-weight gradients accumulated by the adjoint steps into `target` (the accumulators of another
    /// stepper of the same plan and networks: Auto's Dopri5 stepper) and zeroes them here.
    member s.MoveClosureGradients(target: torch.Tensor[][]) =
        moveGradients target (s :> IStepper<float>)

    /// The products of A (or Aᵀ) the matrix-free solves have taken since the stepper was made (0 where it forms A).
    member _.Products = products

    /// The solves of systems started matrix-free (`hybrid`) that ran out of their budget and formed A, since the
    /// stepper was made.
    member _.Fallbacks = fallbacks

    /// The linear systems A = (1/(γh)) I − J set up since the stepper was made, one per step taken or kept (each
    /// probes J and forms A, but where it is solved matrix-free).
    member _.Systems = systems

    /// The most bytes of kept steps (their stages and systems) a backward pass holds at once, and the forward pass
    /// keeps for it (`IKeepingStepper.KeptSteps`): 64 MiB; at least one step.
    member _.KeptBytes
        with get () = keptBytes
        and set (value: int64) = keptBytes <- value

    /// The bytes of one kept step (`KeptBytes` / this is `KeptSteps`).
    member _.KeptStepBytes = bytesPerKept

    /// The error estimate k₅ of the latest step (padded layout).
    member _.Error = error

    /// The continuous extension of the latest step (taken or kept) from u (new state `out` = U₅ + k₅) at fraction s, as
    /// `Rosenbrock.step`'s interpolant: (1 − s) u + s (out + (1 − s)(D₂ + s D₃)), Dₘ = Σⱼ dₘⱼ kⱼ; into every entry
    /// of `y` (D₂ and D₃ in two states of the stepper's, made at the first call).
    member _.Dense (u: float[][]) (out: float[][]) (s: float) (y: float[][]) =
        if isNull denseTerms then
            denseTerms <- [| newState (); newState () |]

        let d2, d3 = denseTerms[0], denseTerms[1]
        weightedInto d2 Rodas4Tableau.dense2 latestK null
        weightedInto d3 Rodas4Tableau.dense3 latestK null

        for fi in 0 .. n - 1 do
            for e in 0 .. y[fi].Length - 1 do
                y[fi].[e] <-
                    (1.0 - s) * u[fi].[e]
                    + s * (out[fi].[e] + (1.0 - s) * (d2[fi].[e] + s * d3[fi].[e]))

    /// The continuous extension at fraction s as u + Σⱼ wⱼ(s) kⱼ: wⱼ = s (a₅ⱼ + [j = 5]) + s (1 − s)(d₂ⱼ + s d₃ⱼ)
    /// (the new state is u + Σⱼ a₅ⱼ kⱼ + k₅). No factor h: the adjoint adds the cotangents to k̄ⱼ as they are.
    static member DenseWeights(s: float) : float[] =
        let last = Rodas4Tableau.alpha.Length - 1

        Array.init (last + 1) (fun j ->
            let a = if j < last then Rodas4Tableau.a[last].[j] else 1.0
            let at (w: float[]) = if j < w.Length then w[j] else 0.0
            s * a + s * (1.0 - s) * (at Rodas4Tableau.dense2 + s * at Rodas4Tableau.dense3))

    /// `StepAdjoint` for a step whose continuous extension also feeds outputs: `extra` per stage (the cotangents of
    /// kⱼ, Σ wⱼ(s)·λ over those outputs, `DenseWeights`) and `direct` (of u), both null when none.
    member _.StepAdjointWith(u, theta, t, dt, lambdaNext, extra, direct, lambda, thetaAdjoint) =
        adjoint u theta t dt lambdaNext extra direct lambda thetaAdjoint

    /// Keeping each replayed step's stages and linear system (its Jacobian's factors, or BiCGSTAB's blocks) for its
    /// adjoint, whatever the model: the backward pass then forms each step's Jacobian once (the replay) instead of
    /// twice (the replay and the adjoint's recompute), and runs each network forward once per stage. At most
    /// `KeptBytes` (64 MiB) of kept steps at once (`KeptSteps`); a segment longer than that is kept a chunk at a time.
    /// A rollout with gradients keeps its last `KeptSteps` accepted steps in the forward pass too
    /// (`KernelMethod.KeptAt`), so that a backward pass over at most that many steps forms no system again.
    interface IKeepingStepper<float> with
        member _.Keeps = true
        member _.KeptSteps = int (max 1L (keptBytes / bytesPerKept))

        member _.NewKept() = {
            baseStepper.NewKept(stages + 1, stages + 1) with
                Linear = RosenbrockSystem()
        }

        member _.StepKept(u, theta, t, dt, next, kept) =
            stepWith (kept.Linear :?> RosenbrockSystem) (stagesOf kept) (Some kept) u theta t dt next

        member _.StepAdjointKept(kept, theta, t, dt, lambdaNext, stageExtra, direct, lambda, thetaAdjoint) =
            let system = kept.Linear :?> RosenbrockSystem

            try
                adjointOf system (stagesOf kept) (Some kept) theta t dt lambdaNext stageExtra direct lambda thetaAdjoint
            finally
                system.Release()

        member _.Discard kept =
            baseStepper.DiscardKept kept
            (kept.Linear :?> RosenbrockSystem).Release()

    interface IStepper<float> with
        member _.Plan = plan
        member _.Batch = batch
        member _.Maps = maps
        member _.NewState() = newState ()
        member _.Step(u, theta, t, dt, out) = step u theta t dt out

        member _.StepAdjoint(u, theta, t, dt, lambdaNext, lambda, thetaAdjoint) =
            adjoint u theta t dt lambdaNext null null lambda thetaAdjoint

        member _.CheckFinite(u, stepNumber, t) =
            baseStepper.CheckFinite(u, stepNumber, t)

        member _.ClosureGradients = baseStepper.ClosureGradients
        member _.ResetClosureGradients() = baseStepper.ResetClosureGradients()

/// Which models the kernels' Rodas4 runs.
[<RequireQualifiedAccess>]
module internal RosenbrockStepper =

    /// Why the generated kernels cannot run Rodas4 (and Auto) on `plan` (None when they can): a point system; a grid
    /// of one or two axes, or the ring of slow sites of a two-scale lattice, solved by blocks where it has at least
    /// 2r + 1 cells (sites) along each axis where J couples cells r apart (`TangentPlan.shortAxis`); where J goes
    /// through closures over whole fields or diagnostic solves (`TangentPlan.isGlobal`), on shorter grids and on
    /// smaller two-scale lattices, densely up to `Jacobian.maxDense` unknowns per trajectory (as the eager back end)
    /// and matrix-free above. Grids of more than two axes are refused.
    let refusal (plan: KernelPlan) : string option =
        if plan.Grid.Dims > 2 then
            Some "its grid has more than two axes"
        else
            None
