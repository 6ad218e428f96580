namespace Hybrid.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics

/// How a stepper splits its passes into parts for the worker pool: ranges of the kernels' outer index (rows of a
/// 2-D grid, cells of a 1-D one) and ranges of the flat padded arrays for the stage combinations. The split
/// depends on the plan and the batch only, never on the number of threads, so results are the same bit for bit
/// whatever the thread count (partial sums are combined in part order).
type internal RowSplit = {
    /// [x0, x1) of each kernel part, covering 0 … Nx − 1 in order.
    Rows: (int * int)[]
    /// [lo, hi) of each part of a flat per-field array of `Length` entries, in order (multiples of the vector
    /// width except the last end).
    Flat: (int * int)[]
    /// Entries of one field's flat array (batch × padded cells).
    Length: int
}

[<RequireQualifiedAccess>]
module internal RowSplit =

    /// The fewest cells (times trajectories) a part gets: below twice this a pass is not split.
    let minimumCells = 8192

    /// [0, n) in `parts` nearly equal ranges whose inner ends are multiples of `align`.
    let private ranges (n: int) (parts: int) (align: int) =
        let cut (j: int) =
            if j = parts then
                n
            else
                min n (int (int64 n * int64 j / int64 parts) / align * align)

        Array.init parts (fun j -> cut j, cut (j + 1))
        |> Array.filter (fun (lo, hi) -> hi > lo)

    /// The split of a plan's passes for `batch` trajectories: one part (no split) unless the kernels vectorise
    /// (`Codegen.vectorises`) and the grid has at least 2 × `minimumCells` cells over the batch.
    let ofPlanWidth (width: int) (plan: KernelPlan) (batch: int) : RowSplit =
        let length = batch * plan.PaddedCells
        let work = batch * plan.Cells

        let parts =
            if Codegen.vectorises plan then
                let outer = if plan.Grid.Dims >= 2 then plan.Nx else plan.Nx / width

                max 1 (min outer (work / minimumCells))
            else
                1

        let align = if plan.Grid.Dims >= 2 then 1 else width
        let rows = ranges plan.Nx parts align

        {
            Rows = rows
            Flat = ranges length rows.Length width
            Length = length
        }

    /// `ofPlanWidth` for the float64 kernels built now on this thread.
    let ofPlan (plan: KernelPlan) (batch: int) : RowSplit =
        ofPlanWidth (Codegen.width ()) plan batch

/// The loops of `CombinationPass` for either vector type (`Vector<float>` or `Vector512<float>`, whose operators
/// the inlining resolves): `load`, `splat` and `store` read, broadcast and write a vector of `width` lanes.
module private CombinationLoops =

    /// y[lo, hi) = x (or 0 when null) + Σⱼ cⱼ·tⱼ[f] over the first `count` terms: up to four fused with the origin
    /// in one sweep (hoisted arrays; a Runge–Kutta step's last sum is one sweep), any further term added in its own
    /// sweep; the sums keep the order x + c₀t₀ + c₁t₁ + … either way, so every entry gets the same value whatever
    /// the vector width.
    let inline run
        (width: int)
        ([<InlineIfLambda>] load: 'T[] -> int -> ^V)
        ([<InlineIfLambda>] splat: 'T -> ^V)
        ([<InlineIfLambda>] store: ^V -> 'T[] -> int -> unit)
        (zero: ^V)
        (scalarZero: 'T)
        (x: 'T[])
        (y: 'T[])
        (lo: int)
        (hi: int)
        (count: int)
        (c: 'T[])
        (t: 'T[][][])
        (f: int)
        =
        let t0 = if count > 0 then t[0][f] else null
        let t1 = if count > 1 then t[1][f] else null
        let t2 = if count > 2 then t[2][f] else null
        let t3 = if count > 3 then t[3][f] else null
        let c0 = if count > 0 then c[0] else scalarZero
        let c1 = if count > 1 then c[1] else scalarZero
        let c2 = if count > 2 then c[2] else scalarZero
        let c3 = if count > 3 then c[3] else scalarZero
        let v0, v1, v2, v3 = splat c0, splat c1, splat c2, splat c3
        let mutable i = lo

        while i <= hi - width do
            let mutable v = if isNull x then zero else load x i

            if count > 0 then
                v <- v + v0 * load t0 i

            if count > 1 then
                v <- v + v1 * load t1 i

            if count > 2 then
                v <- v + v2 * load t2 i

            if count > 3 then
                v <- v + v3 * load t3 i

            store v y i
            i <- i + width

        while i < hi do
            let mutable v = if isNull x then scalarZero else x[i]

            if count > 0 then
                v <- v + c0 * t0[i]

            if count > 1 then
                v <- v + c1 * t1[i]

            if count > 2 then
                v <- v + c2 * t2[i]

            if count > 3 then
                v <- v + c3 * t3[i]

            y[i] <- v
            i <- i + 1

        for j in 4 .. count - 1 do
            let tj = t[j][f]
            let cj = c[j]
            let vc = splat cj
            let mutable i = lo

            while i <= hi - width do
                store (load y i + vc * load tj i) y i
                i <- i + width

            while i < hi do
                y[i] <- y[i] + cj * tj[i]
                i <- i + 1

    let inline load512 (a: 'T[]) (i: int) = Vector512.Create<'T>(a, i)
    let inline store512 (v: Vector512<'T>) (a: 'T[]) (i: int) = v.CopyTo(a, i)
    let inline load (a: 'T[]) (i: int) = Vector<'T>(a, i)
    let inline splat (c: 'T) = Vector<'T>(c)
    let inline store (v: Vector<'T>) (a: 'T[]) (i: int) = v.CopyTo(a, i)

/// target = base + Σⱼ cⱼ·termⱼ (base optional) over every field, as pool parts: one per field and flat range.
/// Set up once per call (`Set`), run by `WorkerPool.Run(Parts, this)`; it allocates nothing. Its loops run
/// `Vector512<T>` where the kernels do (`Codegen.wide` when it is built), else `Vector<T>`, on arrays of the
/// kernels' element type 'T (float or float32; the coefficients are rounded to it).
[<Sealed>]
type internal CombinationPass<'T when 'T :> INumber<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
    (split: RowSplit, fields: int, maxTerms: int) =
    let coefficients = Array.zeroCreate<'T> maxTerms
    let terms = Array.zeroCreate<'T[][]> maxTerms
    let wide = Codegen.wide ()
    let mutable count = 0
    let mutable target: 'T[][] = null
    let mutable origin: 'T[][] = null

    /// Parts of one run.
    member _.Parts = fields * split.Flat.Length

    /// Sets the next run: target ← origin (or 0 when null) + Σ coefficient·term over the terms added with `Add`.
    member _.Set(into: 'T[][], from: 'T[][]) =
        target <- into
        origin <- from
        count <- 0

    /// Adds c·term to the next run (a zero coefficient is skipped).
    member _.Add(c: float, term: 'T[][]) =
        if c <> 0.0 then
            coefficients[count] <- KernelElement.ofFloat c
            terms[count] <- term
            count <- count + 1

    interface IParts with
        [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
        member _.Execute(part: int) =
            // Range-major (part = range·fields + field), so that consecutive parts cover the same rows in every pass.
            let f = part % fields
            let y = target[f]
            // Unsplit, a field's whole array (the fast ring of a two-scale lattice has its own length).
            let whole = split.Flat.Length = 1
            let lo = if whole then 0 else fst split.Flat[part / fields]
            let hi = if whole then y.Length else snd split.Flat[part / fields]

            let x = if isNull origin then null else origin[f]

            if wide then
                CombinationLoops.run
                    Vector512<'T>.Count
                    CombinationLoops.load512
                    (fun (c: 'T) -> Vector512.Create<'T> c)
                    CombinationLoops.store512
                    Vector512<'T>.Zero
                    'T.Zero
                    x
                    y
                    lo
                    hi
                    count
                    coefficients
                    terms
                    f
            else
                CombinationLoops.run
                    Vector<'T>.Count
                    CombinationLoops.load
                    CombinationLoops.splat
                    CombinationLoops.store
                    Vector<'T>.Zero
                    'T.Zero
                    x
                    y
                    lo
                    hi
                    count
                    coefficients
                    terms
                    f

/// Two passes split alike (the same parts over the same ranges, e.g. two `CombinationPass`es) run as one: part j runs
/// part j of the first, then of the second, so one pool run (one barrier) does both, and the second finds the arrays
/// they share in the cache of the core that just read them. The second may overwrite what the first read in the same
/// part's range, never what another part reads.
[<Sealed>]
type internal PassPair(first: IParts, second: IParts, parts: int) =

    /// Parts of one run (those of either pass).
    member _.Parts = parts

    interface IParts with
        member _.Execute(part: int) =
            first.Execute part
            second.Execute part

/// The forward kernel over the split's rows, as pool parts.
[<Sealed>]
type internal ForwardPass<'T>(split: RowSplit, rows: ForwardRows<'T>, batch: int) =
    let mutable padded: 'T[][] = null
    let mutable theta: 'T[] = null
    let mutable t = 0.0
    let mutable output: 'T[][] = null
    let mutable inputs: 'T[][] = null
    let mutable data: 'T[][] = null

    /// Parts of one run.
    member _.Parts = split.Rows.Length

    /// Sets the next run's arguments (those of `ForwardKernel`).
    member _.Set(u: 'T[][], th: 'T[], time: float, out: 'T[][], closureOutputs: 'T[][], forcings: 'T[][]) =
        padded <- u
        theta <- th
        t <- time
        output <- out
        inputs <- closureOutputs
        data <- forcings

    interface IParts with
        member _.Execute(part: int) =
            let x0, x1 = split.Rows[part]
            rows.Invoke(padded, theta, t, output, batch, inputs, data, x0, x1)

/// The gather-form adjoint as pool parts: part 0 is the boundary band over all rows, parts 1 … the core over the
/// split's rows. Each part adds its scalar parameters' terms into its own array; `Run` sums them into θ̄ in part
/// order after the parts ran.
[<Sealed>]
type internal AdjointPass<'T when 'T :> INumber<'T>>
    (split: RowSplit, band: AdjointRows<'T>, core: AdjointRows<'T>, plan: KernelPlan, batch: int) =
    let scalarOffsets =
        plan.ParamOffsets
        |> Array.indexed
        |> Array.filter (fun (p, _) -> not plan.ParamSpatial[p])
        |> Array.map snd

    let partials =
        Array.init (split.Rows.Length + 1) (fun _ -> Array.zeroCreate<'T> plan.ThetaLength)

    let mutable padded: 'T[][] = null
    let mutable theta: 'T[] = null
    let mutable t = 0.0
    let mutable lambda: 'T[][] = null
    let mutable paddedAdjoint: 'T[][] = null
    let mutable thetaAdjoint: 'T[] = null
    let mutable inputs: 'T[][] = null
    let mutable inputAdjoint: 'T[][] = null
    let mutable data: 'T[][] = null

    /// Parts of one run.
    member _.Parts = split.Rows.Length + 1

    /// Runs the adjoint (the arguments of `AdjointKernel`) over `pool`.
    member this.Run
        (
            pool: WorkerPool,
            u: 'T[][],
            th: 'T[],
            time: float,
            lam: 'T[][],
            uBar: 'T[][],
            thBar: 'T[],
            closureOutputs: 'T[][],
            closureBar: 'T[][],
            forcings: 'T[][]
        ) =
        padded <- u
        theta <- th
        t <- time
        lambda <- lam
        paddedAdjoint <- uBar
        thetaAdjoint <- thBar
        inputs <- closureOutputs
        inputAdjoint <- closureBar
        data <- forcings

        for p in partials do
            for o in scalarOffsets do
                p[o] <- 'T.Zero

        pool.Run(this.Parts, this)

        for p in partials do
            for o in scalarOffsets do
                thBar[o] <- thBar[o] + p[o]

    interface IParts with
        member _.Execute(part: int) =
            let kernel, (x0, x1) =
                if part = 0 then
                    band, (0, plan.Nx)
                else
                    core, split.Rows[part - 1]

            kernel.Invoke(
                padded,
                theta,
                t,
                lambda,
                paddedAdjoint,
                thetaAdjoint,
                partials[part],
                batch,
                inputs,
                inputAdjoint,
                data,
                x0,
                x1
            )
