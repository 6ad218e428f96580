namespace Hybrid.Numerics

open System
open System.Collections.Generic
open TorchSharp
open Hybrid

/// How a rollout trades memory for recomputation in the backward pass.
[<RequireQualifiedAccess>]
type Checkpointing =
    /// Keep the whole autograd graph (memory grows like the number of steps T).
    | Off
    /// Segments of this many steps: only segment-start states are kept; each segment is recomputed
    /// during the backward pass.
    | Segments of steps: int
    /// Segments of ⌈√T⌉ steps, so memory grows like √T.
    | Sqrt
    /// Segment length chosen so that the estimated graph memory stays within this many bytes.
    | Budget of bytes: int64

/// What to do when the explicit step exceeds the stability limit.
[<RequireQualifiedAccess>]
type OnUnstable =
    /// Raise a `HybridException` naming the largest stable Δt.
    | Fail
    /// Print a warning with the largest stable Δt to standard error and continue.
    | Warn
    /// Do not check.
    | Ignore

/// Settings of a rollout. `Rollout.run` checks them before the first step (`Rollout.validate`) and raises a
/// `HybridException` naming the value and the fix for any invalid setting: argument errors of a rollout are
/// all `HybridException`s, like its runtime errors (instability, NaN/Inf, blow-up).
type RolloutOptions = {
    /// Time integration scheme.
    Scheme: Scheme
    /// Time step (positive, finite); the step before a save time is shortened so that every save time is hit
    /// exactly. The whole rollout may take at most `Rollout.maxSteps` steps.
    Dt: float
    /// Start time.
    T0: float
    /// Times at which the state is returned: at least one, finite, strictly increasing, ≥ T0 (T0 itself
    /// returns the initial state).
    SaveTimes: float[]
    /// Gradient checkpointing.
    Checkpointing: Checkpointing
    /// Check for NaN/Inf and for |u| above `Rollout.maxMagnitude` every this many steps (and at every save);
    /// 0 = never.
    FiniteCheckEvery: int
    /// Stability check of explicit schemes at the start of the rollout.
    OnUnstable: OnUnstable
    /// Error tolerance of adaptive schemes (`Dopri5`, `Rodas4`, `Auto`, `KenCarp4`) for every field not named in
    /// `FieldTolerances`; fixed-step schemes ignore it.
    Tolerance: Tolerance
    /// Tolerances of single fields by name (e.g. a tiny absolute tolerance for a species of concentration 1e-5);
    /// the other fields use `Tolerance`. Empty by default; fixed-step schemes ignore it.
    FieldTolerances: Map<string, Tolerance>
    /// Time events (doses, jumps), in increasing time order: the rollout stops exactly at each, applies its jump
    /// and restarts. Empty by default. Rollouts with events run on the eager back end.
    Events: TimeEvent[]
    /// State events (a jump where a condition of the state crosses zero: a bounce, a threshold), located on the
    /// continuous extension of the adaptive schemes (`Dopri5`, `Rodas4`, `Auto`); fixed-step schemes refuse them.
    /// Empty by default. `Rollout.lastEvents ()` lists where they fired.
    StateEvents: StateEvent[]
}

/// States at the save times.
type Trajectory = {
    /// Field names.
    Fields: string[]
    /// Save times.
    Times: float[]
    /// One tensor per field, shape [S; B; spatial…] with S = number of save times.
    Values: torch.Tensor[]
    /// The back end that computed it (`Backend.Eager` or `Backend.Kernels`).
    Backend: Backend
}

/// Rollouts: integrate `Dynamics` over time, with save times, NaN/Inf detection and checkpointing.
[<RequireQualifiedAccess>]
module Rollout =

    /// RK4, Δt = 0.01, from 0, saving at t = 1, no checkpointing, NaN/Inf check every 10 steps, fail when unstable;
    /// for adaptive schemes a relative tolerance of 1e-6 and an absolute one of 1e-9 for every field.
    let defaults: RolloutOptions = {
        Scheme = Scheme.Rk4
        Dt = 0.01
        T0 = 0.0
        SaveTimes = [| 1.0 |]
        Checkpointing = Checkpointing.Off
        FiniteCheckEvery = 10
        OnUnstable = OnUnstable.Fail
        Tolerance = { Relative = 1e-6; Absolute = 1e-9 }
        FieldTolerances = Map.empty
        Events = [||]
        StateEvents = [||]
    }

    /// The most steps one rollout may take (default 10 million): a rollout that would need more is refused
    /// before its first step, with the count and this limit in the message. Process-wide; raise it with
    /// `Rollout.maxSteps <- n` for legitimately long rollouts.
    let mutable maxSteps = 10_000_000

    /// The largest |u| a state may reach (default 1e100): the NaN/Inf check (every `FiniteCheckEvery` steps
    /// and at every save) also stops the rollout when any field's max |u| passes this bound, naming the field,
    /// the step, the time and the value. Process-wide; set it with `Rollout.maxMagnitude <- v`.
    let mutable maxMagnitude = 1e100

    /// One step of the schedule: start time, size, and the save index reached at its end (−1 for none). A struct:
    /// the generated kernels' rollouts read one per step (`TapedRollout`) and allocate nothing per step.
    [<Struct>]
    type internal Step = { T: float; H: float; Save: int }

    /// The steps from T0 through the last save time, produced on demand: save interval j runs from
    /// `Starts[j]` over `Spans[j]` in `Counts[j]` steps numbered from `First[j]`; step k of it starts at
    /// Starts[j] + k·Dt and has size Dt, except the last, of size Spans[j] − (Counts[j] − 1)·Dt so that the save time
    /// is hit exactly (shorter than Dt, or longer by at most 1e-9·Dt), or Dt itself where that size is Dt to
    /// round-off (a save time on the step grid: one step size, one implicit factorisation). Both back ends step
    /// this schedule (`TapedRollout` on the kernels). Memory grows with the number of save times, not of steps.
    type internal Schedule = {
        Dt: float
        Starts: float[]
        Spans: float[]
        First: int[]
        Counts: int[]
        /// Total number of steps.
        Length: int
    } with

        /// Step i of save interval j (First[j] ≤ i < First[j] + Counts[j]; `Interval` or `Seek` finds j).
        member s.Of (j: int) (i: int) : Step =
            let k = i - s.First[j]
            let n = s.Counts[j]

            if k = n - 1 then
                let h = s.Spans[j] - float (n - 1) * s.Dt
                // The round-off of that difference is a few units in the last place of the save times.
                let roundOff = 1e-14 * (abs s.Starts[j] + abs s.Spans[j] + float n * s.Dt)

                {
                    T = s.Starts[j] + float k * s.Dt
                    H = if abs (h - s.Dt) <= roundOff then s.Dt else h
                    Save = j
                }
            else
                {
                    T = s.Starts[j] + float k * s.Dt
                    H = s.Dt
                    Save = -1
                }

        /// The save interval of step i: the last whose first step is ≤ i (empty intervals share their First with the
        /// next), by bisection.
        member s.Interval(i: int) : int =
            let mutable lo = 0
            let mutable hi = s.First.Length - 1

            while lo < hi do
                let mid = (lo + hi + 1) / 2
                if s.First[mid] <= i then lo <- mid else hi <- mid - 1

            lo

        /// The save interval of step i, walked to from interval j (a step or a few away in a rollout that steps
        /// forward or backward: a comparison or two per step instead of a bisection).
        member s.Seek (j: int) (i: int) : int =
            let mutable j = j

            while s.First[j] > i do
                j <- j - 1

            while s.First[j] + s.Counts[j] <= i do
                j <- j + 1

            j

        /// Step i (0 ≤ i < Length).
        member s.Item(i: int) : Step = s.Of (s.Interval i) i

        /// The distinct step sizes of steps [first, last).
        member s.StepSizes (first: int) (last: int) : float[] =
            [|
                for j in 0 .. s.First.Length - 1 do
                    let n = s.Counts[j]

                    if n > 0 && s.First[j] < last && s.First[j] + n > first then
                        if s.First[j] + n - 1 > first && n > 1 then
                            yield s.Dt

                        if s.First[j] + n - 1 < last then
                            yield s[s.First[j] + n - 1].H
            |]
            |> Array.distinct

    let private inv = Globalization.CultureInfo.InvariantCulture

    /// A number as the messages show it: shortest round-trip form, invariant culture ("Infinity", "NaN").
    let private num (v: float) = v.ToString("R", inv)

    /// A number with `digits` significant digits, invariant culture.
    let private short (digits: int) (v: float) = v.ToString("G" + string digits, inv)

    /// A step count with thousands separators, invariant culture.
    let private count (v: float) = v.ToString("N0", inv)

    let private sameTime (a: float) (b: float) = abs (a - b) <= 1e-12 * max 1.0 (abs b)

    /// Number of steps of a save interval of length `span`.
    let private stepsOf (span: float) (dt: float) =
        if span <= 0.0 then
            0.0
        else
            max 1.0 (ceil (span / dt - 1e-9))

    /// `validate` for a back end that checkpoints adaptive steps when `checkpointsAdaptive` (the generated kernels'
    /// Dopri5 and KenCarp4), so `Checkpointing` other than `Off` is refused with adaptive schemes only where it is false.
    let validateFor (checkpointsAdaptive: bool) (o: RolloutOptions) : unit =
        if not (o.Dt > 0.0 && Double.IsFinite o.Dt) then
            raise (
                HybridException(
                    $"The time step must be a positive finite number, got Dt = {num o.Dt}. Give e.g. Dt = 0.01."
                )
            )

        if not (Double.IsFinite o.T0) then
            raise (HybridException($"The start time must be a finite number, got T0 = {num o.T0}. Give e.g. T0 = 0.0."))

        if isNull o.SaveTimes then
            raise (
                HybridException(
                    "SaveTimes is null. Give the times at which to return the state, e.g. SaveTimes = [| 1.0 |]."
                )
            )

        if o.SaveTimes.Length = 0 then
            raise (
                HybridException(
                    "SaveTimes is empty, so the rollout would return nothing. Give at least one save time, e.g. SaveTimes = [| 1.0 |]."
                )
            )

        let mutable previous = o.T0

        o.SaveTimes
        |> Array.iteri (fun i s ->
            if not (Double.IsFinite s) then
                raise (
                    HybridException(
                        $"Save time {i} is {num s}: save times must be finite numbers. Remove it or replace it by a finite time."
                    )
                )

            if s < o.T0 && not (sameTime s o.T0) then
                raise (
                    HybridException(
                        $"Save time {i} is {num s}, before the start time T0 = {num o.T0}. Save times must be ≥ T0: remove it or lower T0."
                    )
                )

            if i > 0 && (s < previous || sameTime s previous) then
                raise (
                    HybridException(
                        $"Save times must be increasing: save time {i} is {num s} but save time {i - 1} is {num previous}. Sort them and remove repeated times."
                    )
                )

            previous <- s)

        if isNull o.Events then
            raise (HybridException("Events is null. Give [||] for a rollout without time events."))

        if isNull o.StateEvents then
            raise (HybridException("StateEvents is null. Give [||] for a rollout without state events."))

        if o.StateEvents.Length > 0 && not (Scheme.isAdaptive o.Scheme) then
            let names = String.Join(", ", o.StateEvents |> Array.map (fun e -> $"'{e.Name}'"))

            raise (
                HybridException(
                    $"State events ({names}) need an adaptive scheme, which locates the crossing on its continuous extension; {o.Scheme} takes fixed steps. Use Scheme.Dopri5, Scheme.Rodas4 or Scheme.Auto."
                )
            )

        let last = o.SaveTimes[o.SaveTimes.Length - 1]

        o.Events
        |> Array.iteri (fun i e ->
            if not (Double.IsFinite e.Time) || e.Time < o.T0 && not (sameTime e.Time o.T0) then
                raise (
                    HybridException(
                        $"Event {i} is at t = {num e.Time}: events must be at finite times ≥ T0 = {num o.T0}. Move it, or lower T0."
                    )
                )

            if e.Time > last && not (sameTime e.Time last) then
                raise (
                    HybridException(
                        $"Event {i} is at t = {num e.Time}, after the last save time {num last}: it would never act on a saved state. Remove it, or add a later save time."
                    )
                )

            if i > 0 && (e.Time < o.Events[i - 1].Time || sameTime e.Time o.Events[i - 1].Time) then
                raise (
                    HybridException(
                        $"Events must be in increasing time order: event {i} is at t = {num e.Time} but event {i - 1} at t = {num o.Events[i - 1].Time}. Sort them, and merge events at the same time into one jump."
                    )
                ))

        if Scheme.isAdaptive o.Scheme then
            let checkTolerance (where: string) (tol: Tolerance) =
                if
                    not (
                        tol.Relative >= 0.0
                        && tol.Absolute >= 0.0
                        && Double.IsFinite tol.Relative
                        && Double.IsFinite tol.Absolute
                        && tol.Relative + tol.Absolute > 0.0
                    )
                then
                    raise (
                        HybridException(
                            $"{o.Scheme} needs finite tolerances ≥ 0, not both 0; got {where} = {{ Relative = {num tol.Relative}; Absolute = {num tol.Absolute} }}. Give e.g. {where} = {{ Relative = 1e-6; Absolute = 1e-9 }}."
                        )
                    )

            checkTolerance "Tolerance" o.Tolerance

            if isNull (box o.FieldTolerances) then
                raise (
                    HybridException(
                        "FieldTolerances is null. Give Map.empty when every field uses Tolerance, or a map from field names to tolerances."
                    )
                )

            for KeyValue(field, tol) in o.FieldTolerances do
                checkTolerance $"FieldTolerances[\"{field}\"]" tol

            if o.Checkpointing <> Checkpointing.Off && not checkpointsAdaptive then
                raise (
                    HybridException(
                        $"{o.Scheme} on the eager back end keeps the whole autograd graph: Checkpointing = {o.Checkpointing} is not supported there with adaptive steps. Use Checkpointing.Off, a compiled model on the generated kernels (Backend.Auto or Backend.Kernels checkpoint Dopri5, in float64 or float32, and KenCarp4, in float64), or a fixed-step scheme (Rk4) with checkpointing."
                    )
                )

        let mutable t = o.T0
        let mutable total = 0.0

        for s in (if Scheme.isAdaptive o.Scheme then [||] else o.SaveTimes) do
            total <- total + stepsOf (s - t) o.Dt
            t <- s

        if total > float maxSteps then
            let last = o.SaveTimes[o.SaveTimes.Length - 1]

            raise (
                HybridException(
                    $"The rollout from T0 = {num o.T0} to t = {num last} with Dt = {num o.Dt} needs {count total} steps, more than the limit of {count (float maxSteps)} steps per rollout. Use a larger Dt or a shorter time span, or raise the limit with Rollout.maxSteps <- {num (min (float Int32.MaxValue) total)}."
                )
            )


    /// Checks the options before anything runs; raises `HybridException` naming the value and the fix for a
    /// non-positive or non-finite Dt, a non-finite T0, null, empty, non-finite, unsorted or repeated save
    /// times, save times before T0, more steps than `maxSteps`, and checkpointing with adaptive steps.
    let validate (o: RolloutOptions) : unit = validateFor false o

    /// The step schedule of valid options (see `validate`): O(save times) memory, steps made on demand.
    let internal schedule (o: RolloutOptions) : Schedule =
        validate o
        let n = o.SaveTimes.Length
        let starts = Array.zeroCreate n
        let spans = Array.zeroCreate n
        let first = Array.zeroCreate n
        let counts = Array.zeroCreate n
        let mutable t = o.T0
        let mutable total = 0

        for j in 0 .. n - 1 do
            let s = o.SaveTimes[j]
            let span = if sameTime s t then 0.0 else s - t
            starts[j] <- t
            spans[j] <- span
            first[j] <- total
            counts[j] <- int (stepsOf span o.Dt)
            total <- total + counts[j]
            t <- s

        {
            Dt = o.Dt
            Starts = starts
            Spans = spans
            First = first
            Counts = counts
            Length = total
        }

    /// Why the current rollout may pass the blow-up bound, as `checkStability` found at its start (None when no
    /// field grows fast): the blow-up and NaN errors name it. One rollout runs at a time (`TorchGuard`).
    let mutable private growth: string option = None

    /// Raises (or warns) when the explicit step is above a stability limit: diffusion and `Advect` speeds
    /// (`Dynamics.Limits`: the largest stable Δt), and single terms (`Dynamics.Terms`: an advection term's CFL
    /// number, the decay rate of a field's pointwise part against the scheme's stability region), naming the
    /// term, its values, the limit and the fix; the most restrictive limit is reported. Also notes which terms
    /// grow fast at the start, for the blow-up error.
    let checkStability (dyn: Dynamics) (theta: torch.Tensor[]) (u: torch.Tensor[]) (o: RolloutOptions) : unit =
        growth <- None

        match o.OnUnstable with
        | OnUnstable.Ignore -> ()
        | policy ->
            let limits, terms =
                use _ = torch.no_grad ()
                dyn.Limits theta u, dyn.Terms theta u

            // The largest |u| at the start, read only when a field's pointwise part grows.
            let start () =
                use _ = torch.no_grad ()
                use _ = torch.NewDisposeScope()

                u
                |> Array.fold
                    (fun m (x: torch.Tensor) ->
                        if x.NumberOfElements > 0L then
                            max m (x.abs().max().ToDouble())
                        else
                            m)
                    0.0

            let dtMax = Integrators.maxStableDt o.Scheme dyn.Grid limits

            let generic =
                if o.Dt > dtMax then
                    // Name the diffusion term when diffusion sets the limit (not the speed of an `Advect` term).
                    let byDiffusion =
                        Integrators.maxStableDt o.Scheme dyn.Grid { limits with Speed = 0.0 } <= dtMax

                    // Otherwise name the fastest advection term, and the positivity bound of a limited flux form.
                    let named, note =
                        if byDiffusion then
                            Stability.fastestDiffusion o.Scheme terms, ""
                        else
                            Stability.fastestAdvection dyn.Grid terms

                    Some(
                        dtMax,
                        $"Δt = {o.Dt:G4} is above the stability limit of {o.Scheme} for the current parameters (diffusivity {limits.Diffusivity + limits.StiffDiffusivity:G4}, speed {limits.Speed:G4}{named}): the largest stable Δt is {dtMax:G4}. Use Dt ≤ {dtMax:G4}, or for stiff diffusion an IMEX scheme with implicit diffusion (CompileOptions.ImplicitDiffusion): Scheme.KenCarp4 (adaptive), ImexEuler or ImexCrankNicolson, or Scheme.Rodas4 (adaptive and stiff).{note}"
                    )
                else
                    None

            let span =
                if isNull o.SaveTimes || o.SaveTimes.Length = 0 then
                    0.0
                else
                    Array.max o.SaveTimes - o.T0

            growth <- Stability.growthCause o.Scheme o.Dt span start maxMagnitude terms

            match
                [
                    generic
                    Stability.violation o.Scheme dyn.Grid o.Dt terms
                    CouplingProbe.worst o.Scheme o.Dt dyn theta o.T0 u
                    |> Option.map (Stability.couplingViolation o.Scheme o.Dt)
                ]
                |> List.choose id
                |> List.sortBy fst
                |> List.tryHead
            with
            | Some(_, message) ->
                match policy with
                | OnUnstable.Fail -> raise (HybridException message)
                | _ -> eprintfn "warning: %s" message
            | None -> ()

    /// The growth found at the start of the rollout, as a sentence to put in an error ("" when none).
    let private cause () =
        match growth with
        | Some note -> note + " "
        | None -> ""

    /// The error for a field whose max |u| = `m` passed `maxMagnitude` at `step` (time t); both back ends raise it.
    /// It names the terms that grow fast at the start when `checkStability` found any.
    let internal blowUp (field: string) (m: float) (step: int) (t: float) : exn =
        DivergenceException(
            $"Field '{field}' is blowing up: max |{field}| = {short 4 m} at step {step} (t = {short 6 t}) passed the bound {short 4 maxMagnitude} (Rollout.maxMagnitude). {cause ()}If the solution should stay bounded, the scheme is unstable: use a smaller Dt, or a stiff/implicit scheme (Scheme.ImexEuler or ImexCrankNicolson for stiff diffusion). If such values are real, raise Rollout.maxMagnitude."
        )

    /// Raises when a field holds NaN/Inf or when its max |u| passes `maxMagnitude`, naming the field, the
    /// step and the time.
    let internal checkFinite (fields: string[]) (step: int) (t: float) (u: torch.Tensor[]) =
        u
        |> Array.iteri (fun i x ->
            if x.NumberOfElements > 0L then
                use _ = torch.no_grad ()
                use _ = torch.NewDisposeScope()
                use ok = torch.isfinite(x).all ()

                if not (ok.ToBoolean()) then
                    use nan = x.isnan().sum ()
                    use total = torch.isfinite(x).logical_not().sum ()

                    raise (
                        DivergenceException(
                            $"Field '{fields[i]}' became non-finite at step {step} (t = {t:G6}): {total.ToInt64()} values NaN/Inf ({nan.ToInt64()} NaN). {cause ()}Lower Dt, check the stability limit, or check parameter values."
                        )
                    )

                use size = x.abs().max ()
                let m = size.ToDouble()

                if m > maxMagnitude then
                    raise (blowUp fields[i] m step t))

    /// Runs steps [first, last) from `u`, returning the end state followed by the states saved inside.
    let internal runSteps
        (dyn: Dynamics)
        (o: RolloutOptions)
        (steps: Schedule)
        (first: int)
        (last: int)
        (theta: torch.Tensor[])
        (u0: torch.Tensor[])
        : torch.Tensor[] * torch.Tensor[] list =
        let hs = steps.StepSizes first last
        let step = Integrators.stepper o.Scheme dyn theta hs u0
        let mutable u = u0
        let saves = ResizeArray<torch.Tensor[]>()

        for i in first .. last - 1 do
            let s = steps[i]

            let next =
                use scope = torch.NewDisposeScope()
                let v = step s.T s.H u
                v |> Array.iter (fun x -> x.MoveToOuterDisposeScope() |> ignore)
                v

            if o.FiniteCheckEvery > 0 && ((i + 1) % o.FiniteCheckEvery = 0 || s.Save >= 0) then
                checkFinite dyn.Fields (i + 1) (s.T + s.H) next

            // Free the previous state unless the caller owns it or it was saved (the autograd graph keeps
            // what it needs natively).
            if
                not (obj.ReferenceEquals(u, u0))
                && not (saves.Count > 0 && obj.ReferenceEquals(saves[saves.Count - 1], u))
            then
                u |> Array.iter (fun x -> x.Dispose())

            if s.Save >= 0 then
                saves.Add next

            u <- next

        u, List.ofSeq saves

    /// Runs one segment under a custom autograd function: forward without a graph; backward recomputes the
    /// segment with a graph and returns gradients for the start state, θ and the leaves.
    type internal Segment() =
        inherit torch.autograd.MultiTensorFunction<Segment>()

        override _.Name = "HybridCheckpointSegment"

        override _.forward(ctx: torch.autograd.AutogradContext, vars: obj[]) =
            let run = vars[0] :?> (torch.Tensor[] -> torch.Tensor[] -> torch.Tensor[])
            let nState = vars[1] :?> int
            let nTheta = vars[2] :?> int
            let tensors = vars[3..] |> Array.map (fun v -> v :?> torch.Tensor)
            let state = tensors[0 .. nState - 1]
            let theta = tensors[nState .. nState + nTheta - 1]
            ctx.save_for_backward (List<torch.Tensor>(Array.append state theta))
            ctx.save_data ("run", box run)
            ctx.save_data ("nState", box nState)
            ctx.save_data ("nTheta", box nTheta)
            ctx.save_data ("leaves", box tensors[nState + nTheta ..])
            ctx.save_data ("needs", box (tensors |> Array.map (fun t -> t.requires_grad)))
            List<torch.Tensor>(run state theta)

        override _.backward(ctx: torch.autograd.AutogradContext, grads: List<torch.Tensor>) =
            let run =
                ctx.get_data "run" :?> (torch.Tensor[] -> torch.Tensor[] -> torch.Tensor[])

            let nState = ctx.get_data "nState" :?> int
            let leaves = ctx.get_data "leaves" :?> torch.Tensor[]
            let needs = ctx.get_data "needs" :?> bool[]
            let saved = ctx.get_saved_variables () |> Array.ofSeq

            use _ = torch.enable_grad ()
            // The recomputed segment graph lives only inside this scope; the gradients are moved out.
            use _ = torch.NewDisposeScope()

            let copies = saved |> Array.map (fun t -> t.detach().requires_grad_ true)
            let state = copies[0 .. nState - 1]
            let theta = copies[nState..]
            let outputs = run state theta
            let liveLeaves = leaves |> Array.filter (fun l -> l.requires_grad)
            let inputs = Array.append copies liveLeaves

            let g =
                torch.autograd.grad (outputs, inputs, grads, allow_unused = true) |> Array.ofSeq

            let result = List<torch.Tensor>()
            result.Add null
            result.Add null
            result.Add null
            let mutable leafIndex = copies.Length

            for i in 0 .. needs.Length - 1 do
                if not needs[i] then
                    result.Add null
                elif i < copies.Length then
                    let gi = g[i]

                    result.Add(
                        if isNull gi || gi.IsInvalid then
                            torch.zeros_like copies[i]
                        else
                            gi
                    )
                else
                    let gi = g[leafIndex]
                    leafIndex <- leafIndex + 1

                    result.Add(
                        if isNull gi || gi.IsInvalid then
                            torch.zeros_like leaves[i - copies.Length]
                        else
                            gi
                    )

            for t in result do
                if not (isNull t) then
                    t.MoveToOuterDisposeScope() |> ignore

            result

    /// The segment length a checkpointing policy gives for T steps of a state of `stateBytes` bytes and
    /// `stages` tendency evaluations per step (graph memory per step is estimated as 8 states per stage).
    let segmentLength (c: Checkpointing) (steps: int) (stateBytes: int64) (stages: int) : int =
        match c with
        | Checkpointing.Off -> steps
        | Checkpointing.Segments n -> max 1 n
        | Checkpointing.Sqrt -> max 1 (int (ceil (sqrt (float steps))))
        | Checkpointing.Budget bytes ->
            let perStep = float stateBytes * 8.0 * float stages

            let cost l =
                float stateBytes * ceil (float steps / float l) + float l * perStep

            // The longest segment within the budget (a loop: `steps` can be millions).
            let mutable best = 0

            for l in 1..steps do
                if cost l <= float bytes then
                    best <- l

            if best > 0 then
                best
            else
                max 1 (int (ceil (sqrt (float steps))))

    let private stages (s: Scheme) =
        match s with
        | Scheme.Euler
        | Scheme.ImexEuler -> 1
        | Scheme.Heun
        | Scheme.ImexCrankNicolson -> 2
        | Scheme.SspRk3 -> 3
        | Scheme.Rk4 -> 4
        | Scheme.Dopri5
        | Scheme.Rodas4
        | Scheme.Auto
        | Scheme.KenCarp4 -> 6

    /// Each field's tolerance: its entry in `FieldTolerances`, or `Tolerance`. Raises for a name that is not a
    /// field, listing the fields.
    let internal tolerances (fields: string[]) (o: RolloutOptions) : Tolerance[] =
        for KeyValue(name, _) in o.FieldTolerances do
            if not (Array.contains name fields) then
                let names = String.Join(", ", fields)

                raise (
                    HybridException(
                        $"FieldTolerances names '{name}', which is not a field of this system (fields: {names}). Use one of those names, or remove the entry."
                    )
                )

        fields
        |> Array.map (fun f -> o.FieldTolerances |> Map.tryFind f |> Option.defaultValue o.Tolerance)

    /// What `Scheme.Auto` chose in the latest rollout that used it (one rollout runs at a time: `TorchGuard`).
    let mutable private auto = "No rollout has used Scheme.Auto yet."

    /// How the latest Rodas4 method solved its linear systems.
    let mutable private rodasSolve = "No rollout has used Scheme.Rodas4 yet."

    let private fired = Collections.Generic.List<string * float * int[]>()

    /// The state events the latest rollout with state events fired, in order: each event's name, its time and
    /// the trajectories (batch indices) that took its jump.
    let lastEvents () : (string * float * int[])[] = fired.ToArray()

    /// What `Scheme.Auto` chose in the latest rollout that used it, where and why, as a sentence (e.g. "Scheme.Auto
    /// ran Dopri5 until t = 0.0127, then Rodas4 to the end: the problem turned stiff there (…)").
    let lastAuto () : string = auto

    /// How the latest Rodas4 method (`Scheme.Rodas4`, or `Scheme.Auto`'s stiff part, on the eager back end) solved
    /// its linear systems: "per cell" (pointwise systems), "block tridiagonal" (1-D grids), "BiCGSTAB" (2-D grids)
    /// or "dense".
    let lastRodasSolve () : string = rodasSolve

    let mutable private stepCounts = (0, 0)

    /// The accepted and rejected steps of the latest adaptive rollout (either back end; with time events, its last
    /// piece): how tests check that two back ends took the same steps.
    let internal lastSteps () : int * int = stepCounts

    /// Records the step counts of an adaptive rollout.
    let internal reportSteps (accepted: int) (rejected: int) = stepCounts <- (accepted, rejected)

    /// Records what `Scheme.Auto` chose (the kernel back end's adaptive rollouts report here too).
    let internal reportAuto (sentence: string) = auto <- sentence

    /// The adaptive method of scheme `s` on `dyn` with parameters θ and per-field tolerances (Rodas4 builds its
    /// Jacobian with an autograd graph when gradients through the rollout are wanted; Rodas4 and KenCarp4 tie their
    /// iterative solves' stopping tolerance to the tolerances).
    let private adaptiveMethod
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (u0: torch.Tensor[])
        (tolerances: Tolerance[])
        (s: Scheme)
        =
        let rodas () =
            let wanted =
                torch.is_grad_enabled ()
                && (Array.concat [ u0; theta; dyn.Leaves ]
                    |> Array.exists (fun t -> t.requires_grad))

            let name, m = Rosenbrock.create dyn theta wanted tolerances u0
            rodasSolve <- name
            m

        match s with
        | Scheme.Rodas4 -> rodas ()
        | Scheme.KenCarp4 -> AdditiveRungeKutta.method dyn theta tolerances u0
        | Scheme.Auto ->
            let stiff () =
                try
                    Ok(rodas ())
                with :? HybridException as e ->
                    Error e.Message

            AutoScheme.method (Dynamics.total dyn theta) stiff reportAuto
        | _ -> Adaptive.method (Dynamics.total dyn theta)

    /// A rollout without time events.
    let private runPlain (dyn: Dynamics) (theta: torch.Tensor[]) (u0: torch.Tensor[]) (o: RolloutOptions) : Trajectory =

        if u0.Length <> dyn.Fields.Length then
            let names = String.Join(", ", dyn.Fields)

            raise (
                HybridException(
                    $"The initial state has {u0.Length} tensors but the system has {dyn.Fields.Length} fields ({names})."
                )
            )

        if Scheme.isAdaptive o.Scheme then
            validate o

            let check (step: int) (t: float) (u: torch.Tensor[]) =
                if o.FiniteCheckEvery > 0 && step % o.FiniteCheckEvery = 0 then
                    checkFinite dyn.Fields step t u

            let events: EventSetup =
                if o.StateEvents.Length = 0 then
                    EventLocation.none
                else
                    {
                        Events = o.StateEvents
                        Tendency = Dynamics.total dyn theta
                        Fired = fun name time batch -> fired.Add((name, time, batch))
                    }

            let perField = tolerances dyn.Fields o

            let result =
                StepControl.integrateWith
                    events
                    (adaptiveMethod dyn theta u0 perField o.Scheme)
                    perField
                    o.T0
                    o.Dt
                    o.SaveTimes
                    maxSteps
                    check
                    u0

            reportSteps result.Accepted result.Rejected

            result.Saves
            |> Array.iteri (fun i s ->
                if not (obj.ReferenceEquals(s, u0)) then
                    checkFinite dyn.Fields i o.SaveTimes[i] s)

            {
                Fields = dyn.Fields
                Times = Array.copy o.SaveTimes
                Values = Array.init u0.Length (fun f -> torch.stack (result.Saves |> Array.map (fun s -> s[f]), 0L))
                Backend = Backend.Eager
            }
        else

            let steps = schedule o
            checkStability dyn theta u0 o

            let saves =
                Array.init o.SaveTimes.Length (fun _ -> Array.zeroCreate<torch.Tensor> u0.Length)

            // Saves at T0 itself.
            o.SaveTimes
            |> Array.iteri (fun i s ->
                if abs (s - o.T0) <= 1e-12 * max 1.0 (abs s) then
                    saves[i] <- u0)

            let savedIndices (first: int) (last: int) = [
                for i in first .. last - 1 do
                    if steps[i].Save >= 0 then
                        yield steps[i].Save
            ]

            let anyGrad =
                torch.is_grad_enabled ()
                && (Array.append (Array.append u0 theta) dyn.Leaves
                    |> Array.exists (fun t -> t.requires_grad))

            let length =
                if anyGrad then
                    let stateBytes =
                        u0 |> Array.sumBy (fun t -> t.NumberOfElements * int64 (t.ElementSize))

                    segmentLength o.Checkpointing steps.Length stateBytes (stages o.Scheme)
                else
                    steps.Length

            let mutable u = u0
            let mutable first = 0

            while first < steps.Length do
                let last = min steps.Length (first + max 1 length)
                let indices = savedIndices first last

                let next, inside =
                    if length >= steps.Length || not anyGrad then
                        runSteps dyn o steps first last theta u
                    else
                        // The backward pass calls this after the loop has moved on: capture the bounds by value.
                        let segmentFirst = first

                        let run (state: torch.Tensor[]) (th: torch.Tensor[]) =
                            let e, s = runSteps dyn o steps segmentFirst last th state
                            // Saved states are cloned so that no output of the segment appears twice.
                            Array.append e (s |> Array.concat |> Array.map (fun t -> t.clone ()))

                        let vars: obj[] =
                            Array.concat [
                                [| box run; box u.Length; box theta.Length |]
                                u |> Array.map box
                                theta |> Array.map box
                                dyn.Leaves |> Array.map box
                            ]

                        let out = Segment.apply vars |> Array.ofSeq
                        let e = out[0 .. u.Length - 1]

                        let s = [
                            for k in 0 .. indices.Length - 1 -> out[u.Length * (k + 1) .. u.Length * (k + 2) - 1]
                        ]

                        e, s

                List.iter2 (fun idx (state: torch.Tensor[]) -> saves[idx] <- state) indices inside
                u <- next
                first <- last

            {
                Fields = dyn.Fields
                Times = Array.copy o.SaveTimes
                Values = Array.init u0.Length (fun f -> torch.stack (saves |> Array.map (fun s -> s[f]), 0L))
                Backend = Backend.Eager
            }

    /// Integrates `dyn` with parameters θ from `u0` (one tensor per field, [B; spatial…]) and returns the
    /// states at `o.SaveTimes`. Differentiable with respect to u0, θ and `dyn.Leaves`; with checkpointing
    /// the same gradients come from recomputing each segment in the backward pass. With time events
    /// (`o.Events`) the rollout runs from event to event, each piece a rollout of its own (fixed steps restart
    /// at the event time, adaptive ones with the step size `Dt`), and applies each jump in between.
    /// Runs inside `TorchGuard` (refused while another thread runs Hybrid).
    let run (dyn: Dynamics) (theta: torch.Tensor[]) (u0: torch.Tensor[]) (o: RolloutOptions) : Trajectory =
        Engine.init ()
        use _ = TorchGuard.enter "Rollout.run"

        if not (isNull o.StateEvents) && o.StateEvents.Length > 0 then
            fired.Clear()

        if isNull o.Events || o.Events.Length = 0 then
            runPlain dyn theta u0 o
        else
            validate o
            let saves = Array.zeroCreate<torch.Tensor[]> o.SaveTimes.Length
            let mutable u = u0
            let mutable start = o.T0
            let last = o.SaveTimes[o.SaveTimes.Length - 1]

            let ends =
                Array.append (o.Events |> Array.map (fun e -> e.Time, Some e)) [| last, None |]

            ends
            |> Array.iteri (fun k (finish, event) ->
                // The save times of this piece: after its start (at T0 itself in the first), up to its end.
                let indices = [|
                    for i in 0 .. o.SaveTimes.Length - 1 do
                        let s = o.SaveTimes[i]

                        if
                            (s > start && not (sameTime s start) || k = 0 && sameTime s start)
                            && (s < finish || sameTime s finish)
                        then
                            yield i
                |]

                if sameTime finish start then
                    for i in indices do
                        saves[i] <- u
                else
                    let times = indices |> Array.map (fun i -> o.SaveTimes[i])

                    let times =
                        if times.Length > 0 && sameTime times[times.Length - 1] finish then
                            times
                        else
                            Array.append times [| finish |]

                    let piece =
                        runPlain dyn theta u {
                            o with
                                T0 = start
                                SaveTimes = times
                                Events = [||]
                        }

                    indices
                    |> Array.iteri (fun j i -> saves[i] <- piece.Values |> Array.map (fun v -> v[int64 j]))

                    u <- piece.Values |> Array.map (fun v -> v[int64 (times.Length - 1)])

                match event with
                | Some e -> u <- e.Jump u
                | None -> ()

                start <- finish)

            {
                Fields = dyn.Fields
                Times = Array.copy o.SaveTimes
                Values = Array.init u0.Length (fun f -> torch.stack (saves |> Array.map (fun s -> s[f]), 0L))
                Backend = Backend.Eager
            }
