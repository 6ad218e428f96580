namespace Hybrid.Kernels

open System
open System.Collections.Generic
open System.Numerics
open System.Runtime.CompilerServices
open Hybrid.Numerics

/// What a kernel rollout does: its steps and which of them it saves, and how often it keeps a checkpoint.
type internal RolloutSpec = {
    /// The steps (`Rollout.Schedule`, the eager back end's own: the same times and sizes, the step before a save
    /// time shortened so that it is hit exactly); the state is saved after the last step of every save interval
    /// that has steps (in order; an empty interval is a save time at T0, the initial state).
    Schedule: Rollout.Schedule
    /// Keep the state every `Segment` steps for the backward pass; the states inside a segment are
    /// recomputed, so memory holds Steps / Segment checkpoints plus one segment (√Steps for both is best).
    Segment: int
    /// Whether a backward pass will follow (a rollout with gradients): the forward pass of a stepper that keeps its
    /// stages (`IKeepingStepper<'T>`) then keeps the last segment's, which the backward pass sweeps first without
    /// replaying it.
    KeepLast: bool
}

/// Making rollout specs.
[<RequireQualifiedAccess>]
module internal RolloutSpec =

    /// `steps` steps of size `dt` from `t0`, saving after every `saveEvery`-th (`steps` a multiple of it), with
    /// checkpoints every `segment` steps.
    let uniform (t0: float) (dt: float) (steps: int) (saveEvery: int) (segment: int) : RolloutSpec =
        let saves = steps / saveEvery

        {
            Schedule = {
                Dt = dt
                Starts = Array.init saves (fun j -> t0 + float (j * saveEvery) * dt)
                Spans = Array.create saves (float saveEvery * dt)
                First = Array.init saves (fun j -> j * saveEvery)
                Counts = Array.create saves saveEvery
                Length = steps
            }
            Segment = segment
            KeepLast = false
        }

    /// Per save interval of `spec`, the index of its saved state among the rollout's (intervals without steps
    /// save none: theirs is the next one's).
    let outputs (spec: RolloutSpec) : int[] =
        spec.Schedule.Counts |> Array.scan (fun n c -> if c > 0 then n + 1 else n) 0

/// A forward rollout on flat arrays of the kernels' element type 'T: the saved states and the checkpoints the adjoint
/// restarts from.
type internal RolloutTape<'T> = {
    /// Saved states, one per save point: [save][field][B·Cells].
    Saved: 'T[][][]
    /// Checkpoints by step index (0, Segment, 2·Segment, …): the initial state's a new array, the others states of
    /// the stepper's `StatePool`, which a backward pass that releases them gives back (a later backward pass over the
    /// same tape recomputes them from the initial state's).
    Checkpoints: Dictionary<int, 'T[][]>
    /// The last segment's kept steps (`RolloutSpec.KeepLast`), from step `LastStart` on: their networks' and solves'
    /// graphs, which the first backward pass uses and disposes (then null; a later backward pass replays the segment).
    mutable LastKept: KeptStep<'T>[]
    /// The first step of the last segment.
    LastStart: int
}

/// Forward and reverse (discrete adjoint) rollouts of an `IStepper` (explicit or IMEX steps; float, or float32 for
/// explicit ones), with segment checkpointing.
[<RequireQualifiedAccess>]
module internal TapedRollout =

    /// `into` ← `from` over every field of a state: over the worker pool in the stepper's parts where its passes
    /// are split (`RowSplit`; a combination with no terms), else on this thread.
    let private copier<'T when 'T :> INumber<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: IStepper<'T>)
        (fields: int)
        =
        let width = Codegen.widthOf (KernelElement.precision<'T> ())
        let split = RowSplit.ofPlanWidth width stepper.Plan stepper.Batch
        let pass = CombinationPass<'T>(split, fields, 0)

        fun (from: 'T[][]) (into: 'T[][]) ->
            pass.Set(into, from)

            if split.Rows.Length > 1 then
                KernelThreads.pool().Run(pass.Parts, pass)
            else
                for j in 0 .. pass.Parts - 1 do
                    (pass :> IParts).Execute j

    /// A copy of state `u` (`copyInto`), in arrays allocated without zeroing: the copy writes every entry.
    let private copyOf (copyInto: 'T[][] -> 'T[][] -> unit) (u: 'T[][]) =
        let c = u |> Array.map (fun a -> GC.AllocateUninitializedArray<'T> a.Length)
        copyInto u c
        c

    /// Whether `backward` and `AdaptiveSteps.backward` keep the replayed stages of a stepper that can
    /// (`IKeepingStepper<'T>`): always, except where the recomputing adjoint is timed or counted beside it (`hybrid
    /// bench-closures`, `NetworkCallTests`).
    let mutable internal keepStages = true

    /// The stepper as an `IKeepingStepper<'T>` when a backward pass keeps its stages (here and in
    /// `AdaptiveSteps.backward`).
    let internal keeping (stepper: IStepper<'T>) =
        match stepper with
        | :? IKeepingStepper<'T> as k when k.Keeps && keepStages -> Some k
        | _ -> None

    /// Steps `steps` steps of the spec's schedule from `u0` with `step` (step index, t, h, u, next), handing the state
    /// at every multiple of `segment` steps to `checkpoint` (step index, state) and the state at the end of every save
    /// interval to `save`, which copy what they keep; the two working states come from the stepper's `StatePool` and
    /// go back to it.
    let private walkWith
        (stepper: IStepper<'T>)
        (step: int -> float -> float -> 'T[][] -> 'T[][] -> unit)
        (u0: 'T[][])
        (spec: RolloutSpec)
        (segment: int)
        (steps: int)
        (checkpoint: int -> 'T[][] -> unit)
        (save: 'T[][] -> unit)
        =
        let pool = StatePool.Of stepper
        let mutable u = pool.Rent false
        copier stepper u0.Length u0 u
        let mutable next = pool.Rent true
        let schedule = spec.Schedule
        let mutable interval = 0

        for n in 0 .. steps - 1 do
            if n % segment = 0 then
                checkpoint n u

            interval <- schedule.Seek interval n
            let at = schedule.Of interval n
            step n at.T at.H u next
            stepper.CheckFinite(next, n + 1, at.T + at.H)
            let previous = u
            u <- next
            next <- previous

            if at.Save >= 0 then
                save u

        pool.Return u
        pool.Return next

    /// The stepper's own step at θ = `theta`, as `walkWith` takes it.
    let private plainStep (stepper: IStepper<'T>) (theta: 'T[]) =
        fun (_: int) (t: float) (h: float) u next -> stepper.Step(u, theta, t, h, next)

    /// `walkWith` the stepper's own steps at θ = `theta`.
    let private walk (stepper: IStepper<'T>) (u0: 'T[][]) (theta: 'T[]) (spec: RolloutSpec) =
        walkWith stepper (plainStep stepper theta) u0 spec

    /// The first step of the last segment of `steps` steps in segments of `segment`.
    let private lastStart (segment: int) (steps: int) = (steps - 1) / segment * segment

    /// A copy of `from` in a state of the stepper's `StatePool`.
    let private rentCopy (stepper: IStepper<'T>) (copyInto: 'T[][] -> 'T[][] -> unit) (from: 'T[][]) =
        let c = (StatePool.Of stepper).Rent false
        copyInto from c
        c

    /// Runs the spec's steps from `u0`, saving at the end of every save interval and checkpointing every `Segment`.
    /// The saved states and the checkpoints after the initial one are states of the stepper's `StatePool` (a caller
    /// done with the saved states may give them back; `backward` releases the checkpoints). With `spec.KeepLast`, a
    /// stepper that keeps its stages (closure networks, diagnostic solves) keeps the last segment's steps
    /// (`RolloutTape.LastKept`), its networks and solves run under autograd: the backward pass then runs them forward
    /// once more per stage only in the other segments.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let forward<'T when 'T :> INumber<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: IStepper<'T>)
        (u0: 'T[][])
        (theta: 'T[])
        (spec: RolloutSpec)
        : RolloutTape<'T> =
        let saved = ResizeArray()
        let checkpoints = Dictionary()
        let copyInto = copier stepper u0.Length
        let rent = rentCopy stepper copyInto
        let segment = spec.Segment
        let last = lastStart segment spec.Schedule.Length

        let lastKept, step =
            match keeping stepper with
            | Some k when spec.KeepLast ->
                let kept = (KeptPool.Of k).Rent(spec.Schedule.Length - last)

                kept,
                fun n t h u next ->
                    if n >= last then
                        k.StepKept(u, theta, t, h, next, kept[n - last])
                    else
                        stepper.Step(u, theta, t, h, next)
            | _ -> null, plainStep stepper theta

        walkWith
            stepper
            step
            u0
            spec
            segment
            spec.Schedule.Length
            (fun n u -> checkpoints[n] <- if n = 0 then copyOf copyInto u else rent u)
            (fun u -> saved.Add(rent u))

        {
            Saved = saved.ToArray()
            Checkpoints = checkpoints
            LastKept = lastKept
            LastStart = last
        }

    /// The checkpoints `backward` released, recomputed from the initial state's.
    let private restoreCheckpoints (stepper: IStepper<'T>) (tape: RolloutTape<'T>) (theta: 'T[]) (spec: RolloutSpec) =
        let segment = spec.Segment

        let missing =
            [ segment..segment .. spec.Schedule.Length - 1 ]
            |> List.filter (tape.Checkpoints.ContainsKey >> not)

        if not missing.IsEmpty then
            let rent = rentCopy stepper (copier stepper tape.Checkpoints[0].Length)

            walk
                stepper
                tape.Checkpoints[0]
                theta
                spec
                segment
                (List.max missing + 1)
                (fun n u ->
                    if not (tape.Checkpoints.ContainsKey n) then
                        tape.Checkpoints[n] <- rent u)
                ignore

    /// The adjoint of `forward`: given ∂L/∂(saved states), returns ∂L/∂u0 and ∂L/∂θ. Each segment is
    /// recomputed from its checkpoint, then swept backwards; a stepper that keeps its stages (`IKeepingStepper<'T>`:
    /// closure networks, diagnostic solves) keeps the segment's, so each network and solve runs forward twice per
    /// stage in all (the rollout, the replay) and the adjoint steps reuse the replay's graphs; the last segment's, kept
    /// by the forward pass (`RolloutTape.LastKept`), is not replayed. Its working states come
    /// from the stepper's `StatePool` and go back to it; so may the returned ∂L/∂u0, once the caller is done with it.
    /// With `release`, the tape's pooled checkpoints go back to the pool at the end (a rollout's backward pass usually
    /// runs once); a backward pass over a tape whose checkpoints were released recomputes them first.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let backward<'T when 'T :> INumber<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (stepper: IStepper<'T>)
        (tape: RolloutTape<'T>)
        (theta: 'T[])
        (spec: RolloutSpec)
        (savedAdjoint: 'T[][][])
        (release: bool)
        : 'T[][] * 'T[] =
        restoreCheckpoints stepper tape theta spec
        let thetaAdjoint = Array.zeroCreate theta.Length
        let pool = StatePool.Of stepper
        let mutable lambda = pool.Rent true
        let mutable lambdaPrevious = pool.Rent true
        let segment = spec.Segment
        let steps = spec.Schedule.Length
        let outputs = RolloutSpec.outputs spec
        let schedule = spec.Schedule
        // The save interval of the latest step looked up (`Rollout.Schedule.Seek` walks from it).
        let interval = ref (schedule.First.Length - 1)

        let stepAt (i: int) =
            interval.Value <- schedule.Seek interval.Value i
            schedule.Of interval.Value i

        let segmentStarts = [ 0..segment .. steps - 1 ] |> List.rev
        // states[i] = u at step start + i within the current segment; allocated once, reused per segment.
        let states = Array.init (min segment steps) (fun _ -> pool.Rent true)
        let copyInto = copier stepper lambda.Length

        // A stepper with closure networks or diagnostic solves keeps each replayed step's stages (kept[i] for step
        // start + i, with the networks' and solves' graphs), so that the adjoint steps run none of them forward:
        // one segment's stages in memory, as the eager back end keeps one segment's graphs (all of them under
        // `Checkpointing.Off`). An earlier cut to 20 stages looked 2× faster than keeping 80 (the climate model's CNN
        // closures at 32², 20 RK4 steps, float64), but the cost was page faults, not the graphs: glibc gave the freed
        // graphs' memory back to the system after every rollout. With the heap keeping it (`NativeHeap`), keeping all
        // 80 stages took 0.91× the cut's time (465 against 509 ms; eager 585 ms), and 0.87× on the climate case's
        // training rollouts (float32, batch 4, 80 Heun steps). `last` takes the segment's last step's (unused)
        // result.
        let keeping = keeping stepper

        // Rented on the first segment the backward pass replays (none where the forward pass kept the only one);
        // `forwardKept`: the forward pass's kept steps once their segment is swept. Both go back to the `KeptPool`.
        let mutable replayKept: KeptStep<'T>[] = null
        let mutable forwardKept: KeptStep<'T>[] = null

        let keptFor (k: IKeepingStepper<'T>) =
            if isNull replayKept then
                replayKept <- (KeptPool.Of k).Rent states.Length

            replayKept

        let last = if keeping.IsSome then pool.Rent true else null

        for start in segmentStarts do
            let stop = min (start + segment) steps
            // The forward pass's kept steps of the last segment (once: their graphs are disposed as they are used).
            let fromForward =
                not (isNull tape.LastKept) && start = tape.LastStart && keeping.IsSome

            let kept =
                match keeping with
                | Some _ when fromForward ->
                    forwardKept <- tape.LastKept
                    forwardKept
                | Some k -> keptFor k
                | None -> null

            tape.LastKept <- null

            if not fromForward then
                copyInto tape.Checkpoints[start] states[0]

            match keeping with
            | Some _ when fromForward -> ()
            | Some k ->
                for i in 0 .. stop - start - 1 do
                    let next = if i + 1 < stop - start then states[i + 1] else last
                    let step = stepAt (start + i)
                    k.StepKept(states[i], theta, step.T, step.H, next, kept[i])
            | None ->
                for i in 1 .. stop - start - 1 do
                    let step = stepAt (start + i - 1)
                    stepper.Step(states[i - 1], theta, step.T, step.H, states[i])

            for n in stop .. -1 .. start + 1 do
                // Step n − 1 takes the state from n − 1 to n; its end is saved when it ends a save interval.
                let step = stepAt (n - 1)

                if step.Save >= 0 then
                    let g = savedAdjoint[outputs[step.Save]]

                    for f in 0 .. lambda.Length - 1 do
                        let l = lambda[f]
                        let gf = g[f]

                        for c in 0 .. l.Length - 1 do
                            l[c] <- 'T.op_Addition (l[c], gf[c])

                match keeping with
                | Some k ->
                    k.StepAdjointKept(
                        kept[n - 1 - start],
                        theta,
                        step.T,
                        step.H,
                        lambda,
                        null,
                        null,
                        lambdaPrevious,
                        thetaAdjoint
                    )
                | None ->
                    stepper.StepAdjoint(
                        states[n - 1 - start],
                        theta,
                        step.T,
                        step.H,
                        lambda,
                        lambdaPrevious,
                        thetaAdjoint
                    )

                let swap = lambda
                lambda <- lambdaPrevious
                lambdaPrevious <- swap

        states |> Array.iter pool.Return
        pool.Return last
        pool.Return lambdaPrevious

        keeping
        |> Option.iter (fun k ->
            let keptPool = KeptPool.Of k
            keptPool.Return replayKept
            keptPool.Return forwardKept)

        if release then
            pool.ReturnCheckpoints tape.Checkpoints

        lambda, thetaAdjoint
