namespace Hybrid.Kernels

open System
open System.Collections.Generic
open System.Numerics
open System.Runtime.CompilerServices
open TorchSharp
open Hybrid
open Hybrid.Numerics

/// Where a save time falls in an adaptive run: the initial state, the end of accepted step n, or inside accepted
/// step n at fraction s of it (read from the continuous extension).
type internal SavePoint =
    | AtStart
    | AtEnd of step: int
    | Inside of step: int * fraction: float

/// What an adaptive kernel rollout does: the step control's inputs (as `StepControl.integrate` takes them) and
/// whether the backward pass will need the accepted steps.
type internal AdaptiveSpec = {
    /// One tolerance per field.
    Tolerances: Tolerance[]
    /// Time of the initial state.
    T0: float
    /// The first attempted step size.
    FirstStep: float
    /// Save times (increasing, ≥ T0).
    SaveTimes: float[]
    /// The most steps (accepted and rejected) the run may attempt.
    MaxSteps: int
    /// Check for NaN/Inf and blow-up after every this many accepted steps (0: never).
    FiniteCheckEvery: int
    /// Record the accepted steps (times, sizes, checkpoints) for the backward pass.
    Record: bool
    /// Which accepted steps' start states the record keeps (`AdaptiveCheckpoints`).
    Checkpointing: Hybrid.Numerics.Checkpointing
}

/// Start states of accepted steps kept for the backward pass, every `Segment` accepted steps (step 0 always): the
/// adjoint recomputes the states inside a segment from its checkpoint with the recorded step sizes. The number of
/// accepted steps is not known in advance, so `Checkpointing.Sqrt` starts with segments of one step and doubles the
/// segment (dropping the checkpoints off the new multiples) whenever more than twice as many checkpoints as the
/// segment's length are kept: after T accepted steps a segment has k steps, √(T/2) ≤ k ≤ √(2T), and at most 2k
/// checkpoints are kept (with the k states of the segment being recomputed, at most 3√(2T) states).
/// `Checkpointing.Budget` doubles the segment whenever the checkpoints' bytes pass half the budget (the other half
/// is for the states of the segment being recomputed); `Segments n` keeps every n-th; `Off` keeps every one.
/// 'T is the states' element type (float, or float32 for a float32 Dopri5 run). `keep` copies the start state of an
/// accepted step (its index, the state) into the checkpoint kept; `drop` takes a checkpoint thinned away.
type internal AdaptiveCheckpoints<'T>
    (policy: Hybrid.Numerics.Checkpointing, stateBytes: int64, keep: int -> 'T[][] -> 'T[][], drop: 'T[][] -> unit) =
    let kept = Dictionary<int, 'T[][]>()

    let mutable segment =
        match policy with
        | Hybrid.Numerics.Checkpointing.Segments n -> max 1 n
        | _ -> 1

    let tooMany () =
        match policy with
        | Hybrid.Numerics.Checkpointing.Sqrt -> kept.Count > 2 * segment
        | Hybrid.Numerics.Checkpointing.Budget bytes -> int64 kept.Count * stateBytes > bytes / 2L
        | _ -> false

    /// Checkpoints in new arrays, those thinned away left to the collector.
    new(policy, stateBytes)= AdaptiveCheckpoints<'T>(policy, stateBytes, (fun _ u -> u |> Array.map Array.copy), ignore)

    /// The current segment length (steps between checkpoints).
    member _.Segment = segment

    /// The checkpoints by accepted step index.
    member _.Kept = kept

    /// Offers the start state of accepted step n (before it is overwritten); keeps a copy at multiples of the
    /// segment, then thins if the policy asks.
    member _.Offer(n: int, u: 'T[][]) =
        if n % segment = 0 then
            kept[n] <- keep n u

            while tooMany () && segment < System.Int32.MaxValue / 2 do
                segment <- 2 * segment

                for k in Seq.toArray kept.Keys do
                    if k % segment <> 0 then
                        drop kept[k]
                        kept.Remove k |> ignore

/// A forward adaptive run on the padded layout: the saved states, where each save time fell, the step counts and,
/// when recorded, the accepted steps (times, sizes and checkpoints of start states) that the adjoint replays. Times
/// and sizes are float64 whatever the states' element type 'T, as on the eager back end.
type internal AdaptiveTape<'T> = {
    /// Saved states, one per save time: states of the stepper's `StatePool` (a caller done with them may give them
    /// back).
    Saved: 'T[][][]
    /// Where each save time fell.
    Points: SavePoint[]
    /// Start states of accepted steps by index, every `Segment` steps (empty when not recorded): step 0's in new
    /// arrays, the others states of the stepper's `StatePool`, which a backward pass that releases them gives back (a
    /// later backward pass over the same tape recomputes them from step 0's).
    Checkpoints: Dictionary<int, 'T[][]>
    /// Accepted steps between checkpoints.
    Segment: int
    Times: float[]
    Sizes: float[]
    Accepted: int
    Rejected: int
    /// The last accepted steps kept by the forward pass (`KernelMethod.KeptAt`), from step `LastStart` on:
    /// their stages, graphs and systems, which the first backward pass uses and disposes (then null; a later backward
    /// pass replays them). Null when none.
    mutable LastKept: KeptStep<'T>[]
    /// The first step of `LastKept`.
    LastStart: int
    /// How the steps of `LastKept` were kept (their adjoint, and the keeper whose `KeptPool` they go back to).
    LastKeeper: KeptAttempts<'T> option
}

/// How an adaptive method keeps the steps it attempts for the backward pass (`KernelMethod.KeptAt`), so that the
/// forward pass of a rollout with gradients keeps its last accepted steps (`AdaptiveTape.LastKept`).
and internal KeptAttempts<'T> = {
    /// The stepper that keeps them (its `KeptPool`, its budget `KeptSteps`, `Discard`).
    Keeper: IKeepingStepper<'T>
    /// Attempts the step (t, h) from u with θ as `KernelMethod.Attempt` does, keeping it into a kept step of `Keeper`.
    Attempt: 'T[][] -> 'T[] -> float -> float -> 'T[][] -> KeptStep<'T> -> 'T[][]
    /// The adjoint of a step that `Attempt` kept, as `KernelMethod.Adjoint`'s (`Keeper.StepAdjointKept`, and what
    /// the method adds: Auto moves Rodas4's closure-weight gradients to its Dopri5 stepper).
    Adjoint: KeptStep<'T> -> 'T[] -> float -> float -> 'T[][] -> 'T[][][] -> 'T[][] -> 'T[][] -> 'T[] -> unit
}

/// An adaptive method on kernel states of element type 'T as `AdaptiveSteps` drives it (`AdaptiveMethod` on
/// tensors): float, or float32 for Dopri5 on a `Stepper<float32>`.
type internal KernelMethod<'T> = {
    /// Its name in messages (the `Scheme` case).
    Name: string
    /// The sentence the step-limit error adds.
    LimitHint: string
    /// The order q of the lower-order solution of the error estimate.
    EstimateOrder: int
    /// Steps shortened to end on every save time (no continuous extension needed).
    LandsOnSaves: bool
    /// The stepper whose steps it takes.
    Stepper: IStepper<'T>
    /// Whether every recorded step is `Stepper`'s own, so that the backward pass may replay them keeping the stepper's
    /// stages (`TapedRollout.keeping`) instead of through `Replay` and `Adjoint` (Auto: until it switches to Rodas4).
    OwnSteps: unit -> bool
    /// Attempts the step (t, h) from u with θ: the new state into `next`; returns the error estimate (valid until
    /// the next attempt).
    Attempt: 'T[][] -> 'T[] -> float -> float -> 'T[][] -> 'T[][]
    /// How it keeps the step it attempts at time t for the backward pass (`KeptAttempts`), where that pays; None
    /// elsewhere. Rodas4 (and Auto once it has switched to Rodas4): a kept step costs what a step does, and the
    /// backward pass then forms none of their Jacobians again (Dopri5 would give up its first-same-as-last stage and
    /// run its networks under autograd on every attempt). Read only while `TapedRollout.keepStages` holds.
    KeptAt: float -> KeptAttempts<'T> option
    /// Recomputes an accepted step (t, h) from u with θ into `next`, with no carried stage (the backward pass's
    /// replay of a segment from its checkpoint).
    Replay: 'T[][] -> 'T[] -> float -> float -> 'T[][] -> unit
    /// Called once an attempt is accepted and its saves are read (before the next attempt).
    Accept: unit -> unit
    /// Gives the working states that `Attempt` rented back to the stepper's `StatePool` (once the forward run is over:
    /// `Replay` and `Adjoint` need none of them).
    Release: unit -> unit
    /// The continuous extension of the latest attempt (h, u, next) at fraction s, into the last state (whose ghost
    /// entries must be zero: Dopri5's writes the interior cells only).
    Dense: float -> 'T[][] -> 'T[][] -> float -> 'T[][] -> unit
    /// The weights of the continuous extension at fraction s per stage of the accepted step that starts at time t
    /// (t, s): y(s) = u + h Σⱼ wⱼ kⱼ (Rodas4: u + Σⱼ wⱼ kⱼ), as its `Adjoint` reads them.
    DenseWeights: float -> float -> float[]
    /// The adjoint of an accepted step (u, θ, t, h, λ′, per-stage extra cotangents or null, direct or null, λ, θ̄).
    Adjoint: 'T[][] -> 'T[] -> float -> float -> 'T[][] -> 'T[][][] -> 'T[][] -> 'T[][] -> 'T[] -> unit
}

/// Adaptive steps on generated kernels, forward and discrete adjoint: Dopri5 on an explicit kernel `Stepper` built
/// with Dormand and Prince's tableau, KenCarp4 on a `KenCarpStepper` (implicit diffusion), Rodas4 on a
/// `RosenbrockStepper`, Auto on the first two of these in turn. The forward run takes the eager back end's steps
/// (`Adaptive`, `AdditiveRungeKutta`, `Rosenbrock` or `AutoScheme` under `StepControl.integrate`): the same error
/// estimate, error norm over the fields' interior cells, PI controller, landing on the last save time (Dopri5, whose
/// other save times come from its continuous extension) or on every save time (KenCarp4), so both back ends accept
/// and reject the same steps and agree to round-off. Dopri5 carries its last stage to the next step (first same as
/// last), as the eager stepper does.
/// As on the eager back end the step sizes are numbers read from the error estimates: the backward pass treats them
/// as fixed and replays the recorded accepted steps with the steppers' discrete adjoints, each save inside a step
/// entering through the continuous extension's weights (`denseWeights`).
///
/// Dopri5 also runs on float32 states (a float32 `Stepper`, `KernelSimulator.RolloutPrecision`), as the eager back
/// end runs it on float32 tensors: the stages, error estimate, error terms and continuous extension are computed in
/// float32, every coefficient (h·aᵢⱼ, the tolerances, s) rounded to float32 as torch rounds a scalar operand, while
/// times, step sizes, the error norm's sum and the controller stay float64 (`StepControl` reads the norm with
/// `ToDouble`); both back ends then take the same steps, their sizes differing by the float32 rounding of the norms.
[<RequireQualifiedAccess>]
module internal AdaptiveSteps =

    /// The weights w(s) of Dopri5's continuous extension at fraction s of a step as a combination of the stages:
    /// `Adaptive.dense` expanded, y(s) = u + h Σⱼ wⱼ(s) kⱼ with wⱼ(s) = s bⱼ + s(1 − s)(e₁ⱼ − bⱼ + s(2bⱼ − e₇ⱼ −
    /// e₁ⱼ) + s(1 − s) dⱼ), e₁ and e₇ the first and last unit vectors (w(1) = b).
    let denseWeights (s: float) : float[] =
        let b = Tableau.dormandPrince.B
        let d = Tableau.dormandPrinceDense
        let last = b.Length - 1

        Array.init b.Length (fun j ->
            let e1 = if j = 0 then 1.0 else 0.0
            let e7 = if j = last then 1.0 else 0.0

            s * b[j]
            + s
              * (1.0 - s)
              * ((e1 - b[j]) + s * (2.0 * b[j] - e7 - e1) + s * (1.0 - s) * d[j]))

    /// The error weights B − B̂ of the pair.
    let private errorWeights =
        Array.map2 (-) Tableau.dormandPrince.B Tableau.dormandPrinceEmbedded

    /// Σⱼ (h·wⱼ)·k[j] at entry i of field f over the non-zero weights, in the order of `Adaptive`'s sums, in 'T
    /// (each h·wⱼ rounded to 'T).
    let inline private sumAt<'T when 'T :> INumber<'T>> (k: 'T[][][]) (h: float) (weights: float[]) (f: int) (i: int) =
        let mutable sum = 'T.Zero
        let mutable any = false

        for j in 0 .. weights.Length - 1 do
            if weights[j] <> 0.0 then
                let term = 'T.op_Multiply (KernelElement.ofFloat<'T> (h * weights[j]), k[j].[f].[i])
                sum <- if any then 'T.op_Addition (sum, term) else term
                any <- true

        sum

    /// `StepControl.errorNorm` over the interior cells of a step from u to next with error estimate `error`: each
    /// term (e / (absolute + relative·max(|u|, |next|)))² in 'T, as on tensors of that dtype, summed in float64.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private errorNorm<'T when 'T :> IFloatingPointIeee754<'T>>
        (stepper: IStepper<'T>)
        (tolerances: Tolerance[])
        (u: 'T[][])
        (next: 'T[][])
        (error: 'T[][])
        =
        let mutable sum = 0.0
        let mutable count = 0

        for f in 0 .. u.Length - 1 do
            let map = stepper.Maps[f]
            let absolute = KernelElement.ofFloat<'T> tolerances[f].Absolute
            let relative = KernelElement.ofFloat<'T> tolerances[f].Relative
            let mutable field = 0.0

            for b in 0 .. stepper.Batch - 1 do
                for c in 0 .. map.Interior.Length - 1 do
                    let i = b * map.Padded + map.Interior[c]
                    let larger = 'T.Max('T.Abs u[f].[i], 'T.Abs next[f].[i])
                    let scale = 'T.op_Addition (absolute, 'T.op_Multiply (relative, larger))
                    let x = 'T.op_Division (error[f].[i], scale)
                    field <- field + KernelElement.toFloat ('T.op_Multiply (x, x))

            sum <- sum + field
            count <- count + stepper.Batch * map.Interior.Length

        if count = 0 then 0.0 else sqrt (sum / float count)

    /// The continuous extension of the latest step of `stepper` (size h, from u to next) at fraction s, as
    /// `Adaptive.dense` computes it on tensors of 'T (h, s and 1 − s rounded to 'T), into the interior cells of `out`.
    let private dense<'T
        when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: Stepper<'T>)
        (h: float)
        (u: 'T[][])
        (next: 'T[][])
        (s: float)
        (out: 'T[][])
        =
        let k = stepper.Slopes
        let last = k.Length - 1
        let size = KernelElement.ofFloat<'T> h
        let at = KernelElement.ofFloat<'T> s
        let rest = KernelElement.ofFloat<'T> (1.0 - s)
        let inline add a b = 'T.op_Addition (a, b)
        let inline sub a b = 'T.op_Subtraction (a, b)
        let inline mul a b = 'T.op_Multiply (a, b)

        for f in 0 .. u.Length - 1 do
            let map = stepper.Maps[f]

            for b in 0 .. stepper.Batch - 1 do
                for c in 0 .. map.Interior.Length - 1 do
                    let i = b * map.Padded + map.Interior[c]
                    let fifth = sumAt k h Tableau.dormandPrinceDense f i
                    let delta = sub next[f].[i] u[f].[i]
                    let r3 = sub (mul size k[0].[f].[i]) delta
                    let r4 = sub (sub delta (mul size k[last].[f].[i])) r3
                    let inner = add r3 (mul at (add r4 (mul rest fifth)))
                    out[f].[i] <- add u[f].[i] (mul at (add delta (mul rest inner)))

    /// A copy of `u` in a state of `pool` (every entry written).
    let private rentCopy (pool: StatePool<'T>) (u: 'T[][]) =
        let c = pool.Rent false

        for f in 0 .. u.Length - 1 do
            Array.Copy(u[f], c[f], u[f].Length)

        c

    /// Dopri5 on a `Stepper` built with `Tableau.dormandPrince` (float, or float32 arrays): first same as last (after
    /// the first attempt, the first stage's slope is a rejected attempt's from the same state or the accepted step's
    /// last). Its error estimate is a state of the stepper's `StatePool`, rented at the first attempt.
    let dopri5<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: Stepper<'T>)
        : KernelMethod<'T> =
        let pool = StatePool.Of stepper
        let mutable error: 'T[][] = null
        let mutable firstKnown = false

        {
            Name = "Dopri5"
            LimitHint = Adaptive.limitHint
            EstimateOrder = 4
            LandsOnSaves = false
            Stepper = stepper
            OwnSteps = fun () -> true
            Attempt =
                fun u theta t h next ->
                    stepper.StepFrom(u, theta, t, h, next, firstKnown)
                    firstKnown <- true
                    let k = stepper.Slopes

                    if isNull error then
                        error <- pool.Rent false

                    for f in 0 .. error.Length - 1 do
                        let e = error[f]

                        for i in 0 .. e.Length - 1 do
                            e[i] <- sumAt k h errorWeights f i

                    error
            KeptAt = fun _ -> None
            Replay =
                fun u theta t h next ->
                    stepper.StepFrom(u, theta, t, h, next, false)
                    firstKnown <- false
            Accept = stepper.CarryLast
            Release =
                fun () ->
                    pool.Return error
                    error <- null
            Dense = dense stepper
            DenseWeights = fun _ s -> denseWeights s
            Adjoint =
                fun u theta t h lambdaNext extra direct lambda thetaAdjoint ->
                    stepper.StepAdjointWith(u, theta, t, h, lambdaNext, extra, direct, lambda, thetaAdjoint)
        }

    /// KenCarp4 on a `KenCarpStepper` (steps land on every save time).
    let kenCarp4 (stepper: KenCarpStepper) : KernelMethod<float> =
        let steps = stepper :> IStepper<float>

        {
            Name = "KenCarp4"
            LimitHint = AdditiveRungeKutta.limitHint
            EstimateOrder = 3
            LandsOnSaves = true
            Stepper = steps
            OwnSteps = fun () -> true
            Attempt =
                fun u theta t h next ->
                    steps.Step(u, theta, t, h, next)
                    stepper.Error
            KeptAt = fun _ -> None
            Replay = fun u theta t h next -> steps.Step(u, theta, t, h, next)
            Accept = ignore
            Release = ignore
            Dense = fun _ _ _ _ _ -> invalidOp "KenCarp4's steps land on the save times."
            DenseWeights = fun _ _ -> invalidOp "KenCarp4's steps land on the save times."
            Adjoint =
                fun u theta t h lambdaNext extra _ lambda thetaAdjoint ->
                    if not (isNull extra) then
                        invalidOp "KenCarp4's steps land on the save times."

                    steps.StepAdjoint(u, theta, t, h, lambdaNext, lambda, thetaAdjoint)
        }

    /// Integrates with method `m` from `u0` (padded layout) with parameter values θ as `StepControl.integrate` does
    /// with the eager method: same first step, PI control (`PiController`), landing (on the last save time, or on
    /// each with `LandsOnSaves`), save times from the continuous extension, step limit and messages. Raises
    /// `HybridException` past `spec.MaxSteps` steps or when the step size falls below round-off, and the stepper's
    /// divergence errors from its finite checks. The working states come from the stepper's `StatePool` and go back to
    /// it (`m.Release` too); the saved states and the checkpoints after step 0's are states of the pool
    /// (`AdaptiveTape`).
    let forward<'T when 'T :> IFloatingPointIeee754<'T>>
        (m: KernelMethod<'T>)
        (theta: 'T[])
        (spec: AdaptiveSpec)
        (u0: 'T[][])
        : AdaptiveTape<'T> =
        let stepper = m.Stepper
        let pool = StatePool.Of stepper
        let saveTimes = spec.SaveTimes
        let saved = Array.zeroCreate<'T[][]> saveTimes.Length
        let points = Array.create saveTimes.Length AtStart
        let mutable next = 0

        while next < saveTimes.Length && StepControl.sameTime saveTimes[next] spec.T0 do
            saved[next] <- rentCopy pool u0
            next <- next + 1

        let times, sizes = ResizeArray(), ResizeArray()

        let checkpoints =
            AdaptiveCheckpoints<'T>(
                spec.Checkpointing,
                int64 sizeof<'T> * (u0 |> Array.sumBy (fun a -> int64 a.Length)),
                (fun n u -> if n = 0 then u |> Array.map Array.copy else rentCopy pool u),
                pool.Return
            )

        // With gradients, a method that keeps its attempts (`KeptAt`) keeps its last accepted steps, at most
        // `KeptSteps` of them (`window`, oldest first, all of one keeper's, `windowKeeper`, and consecutive up to the
        // last accepted step; `slot`: the latest attempt's kept step, a rejected one's discarded and reused).
        let window = Queue<KeptStep<'T>>()
        let windowKeeper: KeptAttempts<'T> option ref = ref None
        let slot: (KeptAttempts<'T> * KeptStep<'T>) option ref = ref None
        // Whether the latest attempt was kept (into `slot`).
        let keptLatest = ref false

        let returnTo (keeper: KeptAttempts<'T>) (steps: KeptStep<'T>[]) =
            for s in steps do
                keeper.Keeper.Discard s

            (KeptPool.Of keeper.Keeper).Return steps

        let attempt u t size next =
            match
                (if spec.Record && TapedRollout.keepStages then
                     m.KeptAt t
                 else
                     None)
            with
            | Some keeper ->
                let s =
                    match slot.Value with
                    | Some(k, s) when obj.ReferenceEquals(k.Keeper, keeper.Keeper) -> s
                    | other ->
                        other |> Option.iter (fun (k, s) -> (KeptPool.Of k.Keeper).Return [| s |])
                        (KeptPool.Of keeper.Keeper).Rent(1).[0]

                slot.Value <- Some(keeper, s)
                keptLatest.Value <- true
                keeper.Attempt u theta t size next s
            | None ->
                keptLatest.Value <- false
                m.Attempt u theta t size next

        let controller = PiController m.EstimateOrder
        let final = saveTimes[saveTimes.Length - 1]
        let mutable t = spec.T0
        let mutable u = rentCopy pool u0
        let mutable candidate = pool.Rent true
        let mutable h = spec.FirstStep
        let mutable accepted = 0
        let mutable rejected = 0

        while next < saveTimes.Length do
            let target = if m.LandsOnSaves then saveTimes[next] else final
            let landing = t + h >= target || StepControl.sameTime (t + h) target
            let size = if landing then target - t else h

            if accepted + rejected >= spec.MaxSteps then
                raise (StepControl.limitError m.Name m.LimitHint spec.MaxSteps accepted rejected t final size)

            if StepControl.belowRoundOff size t then
                raise (StepControl.roundOffError m.Name size t)

            let ended = if landing then target else t + size
            let error = attempt u t size candidate
            let norm = errorNorm stepper spec.Tolerances u candidate error

            if norm <= 1.0 then
                let step = accepted
                accepted <- accepted + 1

                if spec.Record then
                    checkpoints.Offer(step, u)
                    times.Add t
                    sizes.Add size

                while next < saveTimes.Length
                      && (saveTimes[next] < ended || StepControl.sameTime saveTimes[next] ended) do
                    if StepControl.sameTime saveTimes[next] ended then
                        saved[next] <- rentCopy pool candidate
                        points[next] <- AtEnd step
                    else
                        let s = (saveTimes[next] - t) / size
                        saved[next] <- pool.Rent true
                        m.Dense size u candidate s saved[next]
                        points[next] <- Inside(step, s)

                    next <- next + 1

                m.Accept()

                match slot.Value with
                | Some(keeper, s) when keptLatest.Value ->
                    // A keeper's steps follow another's: the window starts again.
                    match windowKeeper.Value with
                    | Some w when not (obj.ReferenceEquals(w.Keeper, keeper.Keeper)) ->
                        returnTo w (window.ToArray())
                        window.Clear()
                    | _ -> ()

                    windowKeeper.Value <- Some keeper
                    window.Enqueue s
                    slot.Value <- None

                    if window.Count > keeper.Keeper.KeptSteps then
                        let oldest = window.Dequeue()
                        keeper.Keeper.Discard oldest
                        slot.Value <- Some(keeper, oldest)
                | _ ->
                    // A step not kept: the window, which ends at the last accepted step, is empty again.
                    windowKeeper.Value |> Option.iter (fun w -> returnTo w (window.ToArray()))
                    window.Clear()
                    windowKeeper.Value <- None

                if spec.FiniteCheckEvery > 0 && accepted % spec.FiniteCheckEvery = 0 then
                    stepper.CheckFinite(candidate, accepted, ended)

                let previous = u
                u <- candidate
                candidate <- previous

                t <- ended
                let proposed = size * controller.Accepted norm
                h <- if landing && size < h then max proposed h else proposed
            else
                rejected <- rejected + 1
                h <- size * controller.Rejected norm

                match slot.Value with
                | Some(keeper, s) when keptLatest.Value -> keeper.Keeper.Discard s
                | _ -> ()

        pool.Return u
        pool.Return candidate
        m.Release()

        slot.Value
        |> Option.iter (fun (keeper, s) -> (KeptPool.Of keeper.Keeper).Return [| s |])

        points
        |> Array.iteri (fun i p ->
            if p <> AtStart then
                stepper.CheckFinite(saved[i], i, saveTimes[i]))

        {
            Saved = saved
            Points = points
            Checkpoints = checkpoints.Kept
            Segment = checkpoints.Segment
            Times = times.ToArray()
            Sizes = sizes.ToArray()
            Accepted = accepted
            Rejected = rejected
            LastKept = if window.Count = 0 then null else window.ToArray()
            LastStart = accepted - window.Count
            LastKeeper = if window.Count = 0 then None else windowKeeper.Value
        }

    /// target += w·x over every entry (w rounded to 'T).
    let private addScaled<'T when 'T :> INumber<'T>> (target: 'T[][]) (w: float) (x: 'T[][]) =
        let w = KernelElement.ofFloat<'T> w

        for f in 0 .. target.Length - 1 do
            let y, z = target[f], x[f]

            for i in 0 .. y.Length - 1 do
                y[i] <- 'T.op_Addition (y[i], 'T.op_Multiply (w, z[i]))

    /// The checkpoints a `backward` pass released (every multiple of the tape's segment below its accepted steps),
    /// recomputed by replaying the recorded steps from step 0's into states of the stepper's `StatePool`.
    let private restoreCheckpoints (m: KernelMethod<'T>) (tape: AdaptiveTape<'T>) (theta: 'T[]) =
        let segment = tape.Segment

        let missing =
            [ segment..segment .. tape.Sizes.Length - 1 ]
            |> List.filter (tape.Checkpoints.ContainsKey >> not)

        if not missing.IsEmpty then
            let pool = StatePool.Of m.Stepper
            let mutable u = rentCopy pool tape.Checkpoints[0]
            let mutable next = pool.Rent true

            for n in 0 .. List.max missing - 1 do
                m.Replay u theta tape.Times[n] tape.Sizes[n] next
                let previous = u
                u <- next
                next <- previous

                if (n + 1) % segment = 0 && not (tape.Checkpoints.ContainsKey(n + 1)) then
                    tape.Checkpoints[n + 1] <- rentCopy pool u

            pool.Return u
            pool.Return next

    /// The adjoint of a recorded `forward`: given ∂L/∂(saved states) (padded, ghost entries zero), returns ∂L/∂u0
    /// and ∂L/∂θ, replaying the accepted steps backwards with fixed sizes (the stepper's `StepAdjointWith`, saves
    /// inside a step through `denseWeights`).
    ///
    /// A stepper that keeps its stages (`TapedRollout.keeping`: Dopri5's `Stepper` and KenCarp4's with closure
    /// networks or diagnostic solves; Rodas4's always; Auto's Dopri5 stepper when it took no Rodas4 step, `OwnSteps`,
    /// and its Rodas4 stepper for the Rodas4 steps once it has switched, `KernelMethod.KeptAt`) keeps the
    /// replayed steps' stages instead of recomputing them in the adjoint: each segment is cut into chunks of at most
    /// `IKeepingStepper.KeptSteps` steps, the last chunk's start state is replayed plainly from the checkpoint, and
    /// each chunk, last first, is replayed keeping its stages' network and solve graphs (one chunk's graphs in memory,
    /// at most `KeptStep.stagesAtOnce` stages; Rodas4: its steps' linear systems, within a memory budget) for its
    /// adjoint steps, which then run no network forward and form no Jacobian: each network runs once per stage of an
    /// accepted step in the backward pass (plus the plain replays that reach the segment's last chunk) instead of
    /// about three times, and Rodas4 forms each step's Jacobian once instead of twice.
    ///
    /// Its working states come from the stepper's `StatePool` and go back to it; so may the returned ∂L/∂u0, once the
    /// caller is done with it. With `release`, the tape's pooled checkpoints go back to the pool at the end (a
    /// rollout's backward pass usually runs once); a backward pass over a tape whose checkpoints were released
    /// replays the recorded steps from step 0's checkpoint to restore them first.
    let backward<'T when 'T :> INumber<'T>>
        (m: KernelMethod<'T>)
        (tape: AdaptiveTape<'T>)
        (theta: 'T[])
        (savedAdjoint: 'T[][][])
        (release: bool)
        : 'T[][] * 'T[] =
        let stepper = m.Stepper
        let pool = StatePool.Of stepper
        restoreCheckpoints m tape theta
        let thetaAdjoint = Array.zeroCreate<'T> theta.Length
        let mutable lambda = pool.Rent true
        let mutable lambdaPrevious = pool.Rent true
        // Per stage, the cotangents of the saves inside a step (rented at the first such save, cleared before use).
        let mutable extra: 'T[][][] = null
        let direct = pool.Rent false
        let ends = Dictionary<int, ResizeArray<int>>()
        let insides = Dictionary<int, ResizeArray<int * float>>()

        let entry (d: Dictionary<int, ResizeArray<'a>>) (step: int) =
            match d.TryGetValue step with
            | true, list -> list
            | _ ->
                let list = ResizeArray()
                d[step] <- list
                list

        tape.Points
        |> Array.iteri (fun i p ->
            match p with
            | AtStart -> ()
            | AtEnd step -> (entry ends step).Add i
            | Inside(step, s) -> (entry insides step).Add((i, s)))

        // states[i] = start state of accepted step segmentStart + i, recomputed from the segment's checkpoint.
        let segment = tape.Segment

        let states = Array.init (min segment tape.Sizes.Length) (fun _ -> pool.Rent true)

        let recompute (start: int) (stop: int) =
            let checkpoint = tape.Checkpoints[start]

            for f in 0 .. checkpoint.Length - 1 do
                System.Array.Copy(checkpoint[f], states[0].[f], checkpoint[f].Length)

            for n in start .. stop - 2 do
                m.Replay states[n - start] theta tape.Times[n] tape.Sizes[n] states[n + 1 - start]

        // The steps from `lastStart` on were kept by the forward pass (`AdaptiveTape.LastKept`, by `tape.LastKeeper`:
        // Auto's Rodas4 steps too): neither replayed nor recomputed; the backward pass starts replaying at the step
        // before.
        let fromForward = tape.LastKept
        tape.LastKept <- null

        let lastStart =
            if isNull fromForward then
                tape.Sizes.Length
            else
                tape.LastStart

        // Who keeps each replayed step's stages, and its adjoint from them: the method's own stepper where every step
        // is its own (`TapedRollout.keeping`), else the step's `KeptAt` (Auto's Rodas4 steps once it has switched, its
        // adjoint moving the closure gradients); None: the step is recomputed in its adjoint (Auto's Dopri5 steps
        // before the switch).
        let own =
            if m.OwnSteps() then
                TapedRollout.keeping stepper
                |> Option.map (fun k ->
                    k,
                    (fun kept theta t h lambdaNext extra direct lambda thetaAdjoint ->
                        k.StepAdjointKept(kept, theta, t, h, lambdaNext, extra, direct, lambda, thetaAdjoint)))
            else
                None

        let keepers =
            Array.init lastStart (fun n ->
                match own with
                | Some _ -> own
                | None when TapedRollout.keepStages ->
                    m.KeptAt tape.Times[n] |> Option.map (fun a -> a.Keeper, a.Adjoint)
                | None -> None)

        // Steps are kept in chunks of at most the keeper's `KeptSteps` from the start of each run of steps with one
        // keeper within a segment (`regionStart`: the first step of n's run); `last` takes the unused new state of a
        // chunk's last step.
        let sameKeeper (a: (IKeepingStepper<'T> * _) option) (b: (IKeepingStepper<'T> * _) option) =
            match a, b with
            | Some(k, _), Some(l, _) -> obj.ReferenceEquals(k, l)
            | None, None -> true
            | _ -> false

        let regionStart = Array.zeroCreate lastStart

        for n in 1 .. lastStart - 1 do
            regionStart[n] <-
                if sameKeeper keepers[n - 1] keepers[n] then
                    regionStart[n - 1]
                else
                    n

        let chunkOf (n: int) =
            let first = max (n - n % segment) regionStart[n]

            let size =
                match keepers[n] with
                | Some(k, _) -> min segment k.KeptSteps
                | None -> segment

            first + (n - first) / size * size

        let endsChunk (n: int) =
            n + 1 >= lastStart || chunkOf (n + 1) = n + 1

        // Each keeper's kept steps (kept[i] for step chunkOf n + i), rented at its first chunk.
        let keptArrays =
            Dictionary<IKeepingStepper<'T>, KeptStep<'T>[]>(HashIdentity.Reference)

        let keptOf (k: IKeepingStepper<'T>) =
            match keptArrays.TryGetValue k with
            | true, kept -> kept
            | _ ->
                let kept = (KeptPool.Of k).Rent(min (min segment k.KeptSteps) lastStart)
                keptArrays[k] <- kept
                kept

        let last =
            if Array.exists Option.isSome keepers then
                pool.Rent true
            else
                null

        for n in tape.Sizes.Length - 1 .. -1 .. 0 do
            let segmentEnd = n < lastStart && (n % segment = segment - 1 || n = lastStart - 1)
            let start = n - n % segment
            let keeper = if n < lastStart then keepers[n] else None

            if segmentEnd then
                // Up to the step whose adjoint comes first; a kept step only to its chunk's start.
                recompute start (if keeper.IsSome then chunkOf n + 1 else n + 1)

            match keeper with
            | Some(k, _) when segmentEnd || endsChunk n ->
                let first = chunkOf n
                let kept = keptOf k

                for j in first..n do
                    let next = if j < n then states[j + 1 - start] else last
                    k.StepKept(states[j - start], theta, tape.Times[j], tape.Sizes[j], next, kept[j - first])
            | _ -> ()

            let u = states[n % segment]

            // Step n's kept step and the adjoint that reads it: the forward pass's, or this pass's chunk's.
            let keptStep =
                match keeper, tape.LastKeeper with
                | _, Some forwardKeeper when n >= lastStart -> Some(forwardKeeper.Adjoint, fromForward[n - lastStart])
                | Some(k, stepAdjoint), _ -> Some(stepAdjoint, (keptOf k).[n - chunkOf n])
                | None, _ -> None

            // The adjoint of step n with the saves' cotangents inside it (null when none).
            let adjoint (extra: 'T[][][]) (direct: 'T[][]) =
                match keptStep with
                | Some(stepAdjoint, kept) ->
                    stepAdjoint kept theta tape.Times[n] tape.Sizes[n] lambda extra direct lambdaPrevious thetaAdjoint
                | None -> m.Adjoint u theta tape.Times[n] tape.Sizes[n] lambda extra direct lambdaPrevious thetaAdjoint

            match ends.TryGetValue n with
            | true, saves ->
                for i in saves do
                    addScaled lambda 1.0 savedAdjoint[i]
            | _ -> ()

            match insides.TryGetValue n with
            | true, saves ->
                if isNull extra then
                    extra <- Array.init (m.DenseWeights tape.Times[n] 0.5).Length (fun _ -> pool.Rent false)

                for x in Array.append extra [| direct |] do
                    for a in x do
                        System.Array.Clear a

                for i, s in saves do
                    let w = m.DenseWeights tape.Times[n] s

                    for j in 0 .. w.Length - 1 do
                        if w[j] <> 0.0 then
                            addScaled extra[j] w[j] savedAdjoint[i]

                    addScaled direct 1.0 savedAdjoint[i]

                adjoint extra direct
            | _ -> adjoint null null

            let swap = lambda
            lambda <- lambdaPrevious
            lambdaPrevious <- swap

        tape.Points
        |> Array.iteri (fun i p ->
            if p = AtStart then
                addScaled lambda 1.0 savedAdjoint[i])

        for x in
            Array.concat [
                states
                (if isNull extra then [||] else extra)
                [| last; direct; lambdaPrevious |]
            ] do
            pool.Return x

        for KeyValue(k, kept) in keptArrays do
            (KeptPool.Of k).Return kept

        match tape.LastKeeper with
        | Some keeper when not (isNull fromForward) -> (KeptPool.Of keeper.Keeper).Return fromForward
        | _ -> ()

        if release then
            pool.ReturnCheckpoints tape.Checkpoints

        lambda, thetaAdjoint

    /// Rodas4 on a `RosenbrockStepper`, its BiCGSTAB (2-D grids) stopped at `StepControl.solveTolerance` of
    /// `tolerances` as on the eager back end. Its continuous extension's weights have no factor h (`DenseWeights`).
    let rodas4 (stepper: RosenbrockStepper) (tolerances: Tolerance[]) : KernelMethod<float> =
        let steps = stepper :> IStepper<float>
        stepper.SolveTolerance <- StepControl.solveTolerance tolerances torch.ScalarType.Float64

        {
            Name = "Rodas4"
            LimitHint = Rosenbrock.limitHint
            EstimateOrder = 3
            LandsOnSaves = false
            Stepper = steps
            OwnSteps = fun () -> true
            Attempt =
                fun u theta t h next ->
                    steps.Step(u, theta, t, h, next)
                    stepper.Error
            KeptAt =
                let keeper = stepper :> IKeepingStepper<float>

                let attempts = {
                    Keeper = keeper
                    Attempt =
                        fun u theta t h next kept ->
                            keeper.StepKept(u, theta, t, h, next, kept)
                            stepper.Error
                    Adjoint =
                        fun kept theta t h lambdaNext extra direct lambda thetaAdjoint ->
                            keeper.StepAdjointKept(kept, theta, t, h, lambdaNext, extra, direct, lambda, thetaAdjoint)
                }

                fun _ -> if keeper.Keeps then Some attempts else None
            Replay = fun u theta t h next -> steps.Step(u, theta, t, h, next)
            Accept = ignore
            Release = ignore
            Dense = fun _ u next s into -> stepper.Dense u next s into
            DenseWeights = fun _ s -> RosenbrockStepper.DenseWeights s
            Adjoint =
                fun u theta t h lambdaNext extra direct lambda thetaAdjoint ->
                    stepper.StepAdjointWith(u, theta, t, h, lambdaNext, extra, direct, lambda, thetaAdjoint)
        }

    /// Hairer's stiffness estimate h·|λ| of the latest Dopri5 step of `stepper` (size h, from u to next), as
    /// `Adaptive`'s: h‖k₇ − k₆‖ / ‖next − y₆‖ over the interior cells, y₆ = u + h Σⱼ a₆ⱼ kⱼ the sixth stage's state.
    /// The differences are formed here and summed by TorchSharp on tensors shaped as the eager back end's fields, so
    /// the sums round alike: at the stability limit the estimate hovers at the threshold that `AutoScheme.Watch`
    /// compares it with, and a differently rounded sum would switch a step earlier or later.
    let private stiffness (stepper: Stepper<float>) (h: float) (u: float[][]) (next: float[][]) =
        use _ = torch.NewDisposeScope()
        let plan = stepper.Plan
        let k = stepper.Slopes
        let last = k.Length - 1

        // The eager field's shape: a two-scale lattice's fast field lives on its K·J ring.
        let shape (f: int) =
            match plan.Grid.Dims with
            | 0 -> [| int64 stepper.Batch |]
            | 1 when plan.Fast[f] -> [| int64 stepper.Batch; int64 plan.FastCells |]
            | 1 -> [| int64 stepper.Batch; int64 plan.Nx |]
            | _ -> [| int64 stepper.Batch; int64 plan.Nx; int64 plan.Ny |]

        // The differences are written straight into the tensor's storage (no managed array per call).
        let squaredSum (f: int) (value: int -> float) =
            let map = stepper.Maps[f]
            let cells = map.Interior.Length
            let t = torch.empty (shape f, dtype = torch.ScalarType.Float64)
            let values = KernelElement.span<float> t

            for e in 0 .. stepper.Batch * cells - 1 do
                values[e] <- value ((e / cells) * map.Padded + map.Interior[e % cells])

            (t * t).sum().ToDouble()

        let mutable numerator = 0.0
        let mutable denominator = 0.0

        for f in 0 .. u.Length - 1 do
            numerator <- numerator + squaredSum f (fun i -> k[last].[f].[i] - k[last - 1].[f].[i])

            denominator <-
                denominator
                + squaredSum f (fun i -> next[f].[i] - (u[f].[i] + sumAt k h Tableau.dormandPrince.A[5] f i))

        if denominator > 0.0 then
            h * sqrt (numerator / denominator)
        else
            0.0

    /// `Scheme.Auto` as `AutoScheme.method` runs it: Dopri5 (on `dopri`) watching the stiffness estimate of its
    /// accepted steps (`AutoScheme.Watch`), Rodas4 (on `rosenbrock`) from the end of the step where the problem
    /// turned stiff to the end of the run; error order 4 throughout; the sentences go to `Rollout.reportAuto`. The
    /// backward pass replays each recorded step with the method that took it (by its start time), so the method must
    /// be the forward run's own.
    let auto (dopri: Stepper<float>) (rosenbrock: RosenbrockStepper) (tolerances: Tolerance[]) : KernelMethod<float> =
        let explicitSteps = dopri5 dopri
        let stiffSteps = rodas4 rosenbrock tolerances
        let watch = AutoScheme.Watch()
        let mutable watching = true
        // Start time of the first Rodas4 step (+∞ while Dopri5 runs).
        let mutable switched = infinity
        let mutable ratio = 0.0
        let mutable ended = 0.0

        let pick (t: float) =
            if t >= switched then stiffSteps else explicitSteps

        Rollout.reportAuto AutoScheme.throughout

        {
            explicitSteps with
                Name = "Auto"
                LimitHint = AutoScheme.limitHint
                OwnSteps = fun () -> switched = infinity
                KeptAt =
                    fun t ->
                        if t >= switched then
                            stiffSteps.KeptAt t
                            |> Option.map (fun attempts -> {
                                attempts with
                                    Adjoint =
                                        fun kept theta t h lambdaNext extra direct lambda thetaAdjoint ->
                                            attempts.Adjoint kept theta t h lambdaNext extra direct lambda thetaAdjoint
                                            // The closure weights' gradients are read from the Dopri5 stepper's.
                                            rosenbrock.MoveClosureGradients dopri.ClosureGradients
                            })
                        else
                            None
                Attempt =
                    fun u theta t h next ->
                        let error = (pick t).Attempt u theta t h next

                        if watching then
                            ratio <- stiffness dopri h u next
                            ended <- t + h

                        error
                Replay = fun u theta t h next -> (pick t).Replay u theta t h next
                Accept =
                    fun () ->
                        if switched = infinity then
                            explicitSteps.Accept()

                        if watching && watch.Accepted ratio then
                            watching <- false
                            switched <- ended
                            Rollout.reportAuto (AutoScheme.switched ended ratio)
                Dense =
                    fun h u next s into ->
                        (if switched = infinity then explicitSteps else stiffSteps).Dense h u next s into
                DenseWeights =
                    fun t s ->
                        let w = (pick t).DenseWeights t s
                        // Dopri5's 7 weights, or Rodas4's 6 and a 0: one set of stage buffers serves both.
                        Array.init 7 (fun j -> if j < w.Length then w[j] else 0.0)
                Adjoint =
                    fun u theta t h lambdaNext extra direct lambda thetaAdjoint ->
                        (pick t).Adjoint u theta t h lambdaNext extra direct lambda thetaAdjoint

                        // The closure weights' gradients are read from the Dopri5 stepper's accumulators.
                        if t >= switched then
                            rosenbrock.MoveClosureGradients dopri.ClosureGradients
        }

    /// The method of `sim`'s scheme (Dopri5, KenCarp4, Rodas4 or Auto) on its stepper of element type 'T
    /// (`KernelSimulator.StepperOf`: float, or float32 for Dopri5 where `RolloutPrecision` allows) for `batch`
    /// trajectories, for a run with these tolerances.
    let ofSimulator<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (sim: KernelSimulator)
        (batch: int)
        (tolerances: Tolerance[])
        : KernelMethod<'T> =
        match sim.StepperOf<'T> batch with
        | :? Stepper<'T> as s when sim.Scheme <> Scheme.Auto -> dopri5 s
        | :? Stepper<float> as s -> unbox (box (auto s (sim.Rosenbrock batch) tolerances))
        | :? KenCarpStepper as s -> unbox (box (kenCarp4 s))
        | :? RosenbrockStepper as s -> unbox (box (rodas4 s tolerances))
        | _ -> invalidOp $"{sim.Scheme} has no adaptive steps on the kernels."

/// The custom autograd function of an adaptive kernel rollout: inputs (simulator, spec, u0 [B; N], θ [P], then the
/// closures' weights) in the dtype of 'T (float64, or float32 for Dopri5 on the float32 kernels) on the CPU
/// (`StateLayout`); output the saved states [S; B; N]. Forward runs `AdaptiveSteps.forward` (and reports its step
/// counts as the eager back end does); backward replays the recorded accepted steps with the generated adjoint and
/// returns gradients for u0, θ and every weight.
type internal AdaptiveRolloutFunction<'T
    when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>() =
    inherit torch.autograd.SingleTensorFunction<AdaptiveRolloutFunction<'T>>()

    override _.Name = "HybridAdaptiveRollout"

    override _.forward(ctx, vars) =
        let sim = vars[0] :?> KernelSimulator
        let spec = vars[1] :?> AdaptiveSpec
        let u0 = vars[2] :?> torch.Tensor
        let theta = vars[3] :?> torch.Tensor
        let batch = int u0.shape[0]
        let m = AdaptiveSteps.ofSimulator<'T> sim batch spec.Tolerances
        let stepper = m.Stepper
        let pool = StatePool.Of stepper
        let thetaValues = KernelElement.values<'T> theta
        let start = StateLayout.ofTensor stepper u0 0
        let tape = AdaptiveSteps.forward m thetaValues spec start
        pool.Return start
        Rollout.reportSteps tape.Accepted tape.Rejected
        let output = StateLayout.savedTensor stepper tape.Saved
        // The saved states are in the output now: the backward pass needs only where they fell (`Points`).
        tape.Saved |> Array.iter pool.Return
        ctx.save_data ("method", m)
        ctx.save_data ("tape", { tape with Saved = [||] })
        ctx.save_data ("theta", thetaValues)
        ctx.save_data ("batch", batch)
        output

    override _.backward(ctx, grad) =
        // The forward run's own method (Auto's switch time).
        let m = ctx.get_data "method" :?> KernelMethod<'T>
        let tape = ctx.get_data "tape" :?> AdaptiveTape<'T>
        let theta = ctx.get_data "theta" :?> 'T[]
        let stepper = m.Stepper
        let pool = StatePool.Of stepper
        let savedAdjoint = StateLayout.savedAdjoints stepper grad tape.Points.Length
        stepper.ResetClosureGradients()
        let u0Adjoint, thetaAdjoint = AdaptiveSteps.backward m tape theta savedAdjoint true
        let gradients = StateLayout.inputGradients stepper u0Adjoint thetaAdjoint
        savedAdjoint |> Array.iter pool.Return
        pool.Return u0Adjoint
        gradients

/// Adaptive Dopri5, KenCarp4, Rodas4 and Auto rollouts on generated kernels (see `AdaptiveSteps`), with gradients through `AdaptiveRolloutFunction`.
[<RequireQualifiedAccess>]
module internal AdaptiveRollout =

    /// Runs `sim` (compiled for Dopri5, KenCarp4, Rodas4 or Auto) from `u0` (one tensor per field, [B; spatial…]) with parameter values θ
    /// (one tensor per entry of `sim.Parameters`) on `spec`; returns each field's saved states [S; B; spatial…] in
    /// `u0`'s dtype. A float32 `u0` runs Dopri5 on the float32 kernels (`sim.RolloutPrecision`), the other schemes
    /// on the float64 kernels converted at the tensor boundary.
    /// The accepted steps are recorded for the backward pass only when grad mode is on and u0, θ or a network
    /// weight requires grad.
    let run (sim: KernelSimulator) (u0: torch.Tensor[]) (theta: torch.Tensor[]) (spec: AdaptiveSpec) : torch.Tensor[] =
        Engine.init ()
        let precision = sim.RolloutPrecision u0[0].dtype

        let state, thetaVector =
            match precision with
            | Float32 -> Kernels.packAs torch.ScalarType.Float32 sim.Plan u0 theta
            | Float64 -> Kernels.pack sim.Plan u0 theta

        let record =
            torch.is_grad_enabled ()
            && (Array.concat [ u0; theta; sim.Weights ]
                |> Array.exists (fun x -> x.requires_grad))

        let inputs =
            Array.append
                [| box sim; box { spec with Record = record }; box state; box thetaVector |]
                (sim.Weights |> Array.map box)

        let saved =
            match precision with
            | Float32 -> AdaptiveRolloutFunction<float32>.apply inputs
            | Float64 -> AdaptiveRolloutFunction<float>.apply inputs

        Kernels.unpack sim.Plan u0[0] saved
