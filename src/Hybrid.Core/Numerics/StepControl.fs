namespace Hybrid.Numerics

open System
open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// One attempted step of an adaptive method from (t, u) with size h.
type internal StepAttempt = {
    /// The new state (the method's higher-order solution).
    Next: torch.Tensor[]
    /// The error estimate per field (higher- minus lower-order solution).
    Error: torch.Tensor[]
    /// The continuous extension on the step: s ∈ [0, 1] ↦ the state at t + s·h (s = 0: u; s = 1: Next).
    Dense: float -> torch.Tensor[]
    /// What the method carries to its next step when this one is accepted (Dopri5: f at Next); may be empty.
    Carry: torch.Tensor[]
    /// Called once when the step is accepted (before the next attempt).
    Accept: unit -> unit
}

/// An adaptive method as the step-size controller sees it.
type internal AdaptiveMethod = {
    /// Its name in messages (the `Scheme` case).
    Name: string
    /// The order q of the lower-order solution of the error estimate: errors scale like h^(q+1).
    EstimateOrder: int
    /// The carry at the start (t0, u0).
    Start: float -> torch.Tensor[] -> torch.Tensor[]
    /// Attempts a step: t, h, u, carry.
    Attempt: float -> float -> torch.Tensor[] -> torch.Tensor[] -> StepAttempt
    /// The sentence the step-limit error adds about the likely cause and the fix.
    LimitHint: string
    /// True when steps are shortened to end on every save time (save times are then the steps' own ends, not read
    /// from the continuous extension); false when only the last save time is landed on.
    LandsOnSaves: bool
}

/// What an adaptive run did: the states at the save times, and the numbers of accepted and rejected steps.
type internal AdaptiveResult = {
    Saves: torch.Tensor[][]
    Accepted: int
    Rejected: int
}

/// The PI step-size controller all adaptive schemes share, on both back ends (Hairer, Nørsett and Wanner, Solving
/// ODEs I, §II.4; Gustafsson 1991): after a step with error norm ‖e‖ (≤ 1 accepts it) the next step is h times the
/// factor it returns. Safety 0.9, factors within [0.2, 10], no growth right after a rejection; exponents for an error
/// of order h^(q+1), q = `estimateOrder` (Hairer's DOPRI5 for q = 4: β = 0.04, α = 1/5 − 0.75β).
type internal PiController(estimateOrder: int) =
    let safety = 0.9
    let smallest = 0.2
    let largest = 10.0
    let beta = 0.2 / float (estimateOrder + 1)
    let alpha = 1.0 / float (estimateOrder + 1) - 0.75 * beta
    let mutable previousError = 1e-4
    let mutable rejectedLast = false

    /// The factor of the next step after an accepted step with error norm `norm`.
    member _.Accepted(norm: float) : float =
        let factor =
            safety * Math.Pow(max norm 1e-10, -alpha) * Math.Pow(previousError, beta)
            |> max smallest
            |> min (if rejectedLast then 1.0 else largest)

        previousError <- max norm 1e-4
        rejectedLast <- false
        factor

    /// The factor of the retried step after a rejected step with error norm `norm` (> 1 or not finite).
    member _.Rejected(norm: float) : float =
        rejectedLast <- true

        if Double.IsFinite norm then
            max smallest (safety * Math.Pow(norm, -alpha))
        else
            smallest

/// The step-size control all adaptive schemes share: the error norm over the fields with their tolerances, a PI
/// controller (Hairer, Nørsett and Wanner, Solving ODEs I, §II.4; Gustafsson 1991), the step limit, and save
/// times read from the method's continuous extension, so that they never shorten a step (only the last save time
/// is landed on exactly), or, for methods with `LandsOnSaves` (KenCarp4), steps shortened to end on each save time.
/// Gradients: the accepted steps and the interpolants are ordinary tensor operations, so autograd differentiates
/// the computed solution; the step sizes are numbers read from the error estimates and count as fixed in the
/// backward pass (the derivative of the step-size choice is not taken, as in DifferentialEquations.jl and
/// diffrax's discrete adjoints).
[<RequireQualifiedAccess>]
module internal StepControl =

    /// True when two times agree to round-off (relative 1e-12): a save time at the end of a step is that step's end.
    let sameTime (a: float) (b: float) = abs (a - b) <= 1e-12 * max 1.0 (abs b)

    /// One error term's scale: absolute + relative·max(|u|, |next|).
    let scale (tolerance: Tolerance) (u: float) (next: float) =
        tolerance.Absolute + tolerance.Relative * max (abs u) (abs next)

    /// The relative residual at which the iterative linear solves of the implicit schemes (conjugate gradients, BiCGSTAB) stop
    /// for these tolerances: 1,000× below the smallest
    /// relative tolerance, within [1e-13, 1e-6] (1e-10 when every tolerance is absolute only); in float32 at least 1e-6.
    let solveTolerance (tolerances: Tolerance[]) (dtype: torch.ScalarType) : float =
        let relative =
            tolerances |> Array.map (fun t -> t.Relative) |> Array.filter (fun r -> r > 0.0)

        let tied =
            if relative.Length = 0 then
                1e-10
            else
                1e-3 * Array.min relative |> max 1e-13 |> min 1e-6

        if dtype = torch.ScalarType.Float64 then
            tied
        else
            max tied 1e-6

    /// The error raised when a method would need more than `maxSteps` steps.
    let limitError
        (name: string)
        (hint: string)
        (maxSteps: int)
        (accepted: int)
        (rejected: int)
        (t: float)
        (final: float)
        (size: float)
        =
        HybridException(
            $"{name} needed more than {maxSteps} steps ({accepted} accepted, {rejected} rejected) and reached only t = {t:G6} of {final:G6}, with steps of {size:G3}. {hint}"
        )

    /// True when step `size` at time t is below round-off.
    let belowRoundOff (size: float) (t: float) = size <= 1e-14 * max 1.0 (abs t)

    /// The error raised when the step size falls below round-off at time t.
    let roundOffError (name: string) (size: float) (t: float) =
        HybridException(
            $"{name}'s step size fell to {size:G3} at t = {t:G6}, below round-off: the solution changes too fast for any step there (a singularity or a blow-up). Check the model's terms near t = {t:G6}, or loosen the Tolerance."
        )

    /// The RMS over all values of error / (absolute + relative·max(|u|, |next|)), each field with its own
    /// tolerance: ≤ 1 accepts the step.
    let errorNorm (tolerances: Tolerance[]) (u: torch.Tensor[]) (next: torch.Tensor[]) (error: torch.Tensor[]) : float =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()
        let mutable sum = 0.0
        let mutable count = 0L

        for i in 0 .. u.Length - 1 do
            if u[i].NumberOfElements > 0L then
                let tolerance = tolerances[i]

                let scale =
                    tolerance.Absolute
                    .+ tolerance.Relative .* torch.maximum (u[i].abs (), next[i].abs ())

                sum <- sum + (square (error[i] ./ scale)).sum().ToDouble()
                count <- count + u[i].NumberOfElements

        if count = 0L then 0.0 else sqrt (sum / float count)

    /// Moves each distinct tensor of `groups` out of the current dispose scope once, except those in `outside`
    /// (made before the scope: a tendency may return a state tensor itself, e.g. du/dt = v).
    let private moveOut (outside: HashSet<torch.Tensor>) (groups: torch.Tensor[] seq) =
        let moved = HashSet<torch.Tensor>(outside, HashIdentity.Reference)

        for group in groups do
            for x in group do
                if moved.Add x then
                    x.MoveToOuterDisposeScope() |> ignore

    /// Disposes each distinct tensor of `groups` that is not in `keep`.
    let private release (keep: HashSet<torch.Tensor>) (groups: torch.Tensor[] seq) =
        let seen = HashSet<torch.Tensor>(keep, HashIdentity.Reference)

        for group in groups do
            for x in group do
                if seen.Add x then
                    x.Dispose()

    /// Integrates with method `m` from (t0, u0) through `saveTimes` (increasing, ≥ t0), one tolerance per field,
    /// starting with step `firstStep`, with the state events of `setup`: after each accepted step, the earliest
    /// crossing inside it (`EventLocation.locate`) cuts the step there, the save times up to it are read from the
    /// step's continuous extension (the state before the jump), and the integration restarts from the state after
    /// it (`EventLocation.after`) with the method's start carry. `check step t u` runs after every accepted step
    /// (the rollout's NaN/Inf and blow-up check). Raises `HybridException` when more than `maxSteps` steps
    /// (accepted and rejected) would be needed, or when the step size falls below round-off.
    let integrateWith
        (setup: EventSetup)
        (m: AdaptiveMethod)
        (tolerances: Tolerance[])
        (t0: float)
        (firstStep: float)
        (saveTimes: float[])
        (maxSteps: int)
        (check: int -> float -> torch.Tensor[] -> unit)
        (u0: torch.Tensor[])
        : AdaptiveResult =
        let saves = Array.zeroCreate<torch.Tensor[]> saveTimes.Length
        let close = sameTime
        let mutable next = 0

        while next < saveTimes.Length && close saveTimes[next] t0 do
            saves[next] <- u0
            next <- next + 1

        // Tensors never disposed here: the caller's initial state and every saved state.
        let keep = HashSet<torch.Tensor>(u0, HashIdentity.Reference)

        let controller = PiController m.EstimateOrder
        let final = saveTimes[saveTimes.Length - 1]
        let mutable t = t0
        let mutable u = u0
        let mutable carry = if next < saveTimes.Length then m.Start t0 u0 else [||]
        let mutable h = firstStep
        let mutable accepted = 0
        let mutable rejected = 0

        let conditions (time: float) (state: torch.Tensor[]) =
            setup.Events |> Array.map (fun e -> EventLocation.values e time state)

        // The events' conditions at the current state, and the fraction below which a crossing is ignored (just
        // after an event its own condition sits on zero).
        let mutable gAt = if next < saveTimes.Length then conditions t0 u0 else [||]
        let mutable skipBelow = -1.0

        while next < saveTimes.Length do
            let target = if m.LandsOnSaves then saveTimes[next] else final
            let landing = t + h >= target || close (t + h) target
            let size = if landing then target - t else h

            if accepted + rejected >= maxSteps then
                raise (limitError m.Name m.LimitHint maxSteps accepted rejected t final size)

            if belowRoundOff size t then
                raise (roundOffError m.Name size t)

            let ended = if landing then target else t + size

            let outcome =
                use _ = torch.NewDisposeScope()
                let a = m.Attempt t size u carry
                let norm = errorNorm tolerances u a.Next a.Error

                if norm <= 1.0 then
                    let gEnd = conditions ended a.Next

                    let located =
                        if setup.Events.Length = 0 then
                            None
                        else
                            EventLocation.locate setup.Events a.Dense t size gAt gEnd skipBelow

                    // Where the accepted part of the step ends (at the event, where one fires) and its state there
                    // (just before the jump).
                    let reached, last =
                        match located with
                        | Some l -> t + l.Fraction * size, a.Dense l.Fraction
                        | None -> ended, a.Next

                    // Save times inside the step from the continuous extension; the step's end from its state.
                    let inside = ResizeArray<int * torch.Tensor[]>()
                    let mutable k = next

                    while k < saveTimes.Length && (saveTimes[k] < reached || close saveTimes[k] reached) do
                        let s =
                            if close saveTimes[k] reached then
                                last
                            else
                                a.Dense((saveTimes[k] - t) / size)

                        inside.Add((k, s))
                        k <- k + 1

                    let candidate, nextCarry, event =
                        match located with
                        | Some l -> EventLocation.after setup.Tendency a.Dense t size l, [||], Some(l, reached)
                        | None -> a.Next, a.Carry, None

                    moveOut
                        (HashSet(Seq.concat [ u; carry ], HashIdentity.Reference))
                        (Seq.concat [
                            seq {
                                candidate
                                nextCarry
                            }
                            inside |> Seq.map snd
                        ])

                    Some(candidate, nextCarry, List.ofSeq inside, a.Accept, event, gEnd), norm
                else
                    None, norm

            match outcome with
            | Some(candidate, nextCarry, inside, accept, event, gEnd), norm ->
                accepted <- accepted + 1
                accept ()

                let ended, nextCarry =
                    match event with
                    | Some(l, reached) ->
                        setup.Fired
                            l.Event.Name
                            reached
                            (l.Triggered |> Array.indexed |> Array.filter snd |> Array.map fst)

                        reached, m.Start reached candidate
                    | None -> ended, nextCarry

                gAt <-
                    match event with
                    | Some _ -> conditions ended candidate
                    | None -> gEnd

                skipBelow <- if event.IsSome then 1e-9 else -1.0
                check accepted ended candidate

                for k, s in inside do
                    saves[k] <- s
                    keep.UnionWith s

                // The previous state and carry, except what the caller owns, what was saved and what lives on.
                let living = HashSet<torch.Tensor>(keep, HashIdentity.Reference)
                living.UnionWith candidate
                living.UnionWith nextCarry

                release living [ u; carry ]

                next <- next + inside.Length
                t <- ended
                u <- candidate
                carry <- nextCarry

                // A step shortened to land on a save time does not shrink the next one below the size proposed before.
                let proposed = size * controller.Accepted norm
                h <- if landing && size < h then max proposed h else proposed
            | None, norm ->
                rejected <- rejected + 1
                h <- size * controller.Rejected norm

        release keep [ carry ]

        {
            Saves = saves
            Accepted = accepted
            Rejected = rejected
        }

    /// `integrateWith` without state events.
    let integrate
        (m: AdaptiveMethod)
        (tolerances: Tolerance[])
        (t0: float)
        (firstStep: float)
        (saveTimes: float[])
        (maxSteps: int)
        (check: int -> float -> torch.Tensor[] -> unit)
        (u0: torch.Tensor[])
        : AdaptiveResult =
        integrateWith EventLocation.none m tolerances t0 firstStep saveTimes maxSteps check u0
