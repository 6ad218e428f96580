namespace Hybrid.Numerics

open TorchSharp

/// `Scheme.Auto`: Dopri5 while the problem is not stiff, Rodas4 from the step where it turns stiff to the end of
/// the rollout. The test is Hairer's in DOPRI5 (Solving ODEs I, §II.10, and his code): each accepted step's
/// h·|λ| is estimated from its last two stages; at 3.25 or more (the pair's stability limit on the negative real
/// axis is 3.3) the step was limited by stability, not accuracy; 15 such steps without 6 calm ones between mean
/// the problem is stiff.
[<RequireQualifiedAccess>]
module internal AutoScheme =

    let private limit = 3.25
    let private needed = 15
    let private calm = 6

    /// The sentence `Rollout.lastAuto` gives while Dopri5 runs (from the start of a rollout).
    let throughout =
        $"Scheme.Auto ran Dopri5 throughout: its stiffness test (h·|λ| ≥ {limit} on {needed} accepted steps) never fired."

    /// The sentence once Rodas4 took over at time t, the last step's h·|λ| being `ratio`.
    let switched (t: float) (ratio: float) =
        $"Scheme.Auto ran Dopri5 until t = {t:G6}, then Rodas4 to the end: the problem turned stiff there (h·|λ| ≈ {ratio:G3} at Dopri5's steps, {needed} accepted steps at its stability limit)."

    /// The sentence when the problem turned stiff at t but Rodas4 cannot run the system (`why`).
    let cannotSwitch (t: float) (why: string) =
        $"Scheme.Auto ran Dopri5 throughout: the problem turned stiff at t = {t:G6}, but Rodas4 cannot run this system ({why})."

    /// The hint of the step-limit error.
    let limitHint =
        "Scheme.Auto switches to Rodas4 only once it detects stiffness: loosen the Tolerance, use Scheme.Rodas4 from the start, or raise the limit with Rollout.maxSteps."

    /// Hairer's stiffness test as a counter over accepted Dopri5 steps, shared by both back ends: `Accepted ratio`
    /// records one accepted step's h·|λ| and returns true once the problem counts as stiff (then stop watching).
    type Watch() =
        let mutable stiffSteps = 0
        let mutable calmSteps = 0

        /// Records an accepted step's h·|λ|; true when `needed` steps sat at the limit without `calm` calm ones between.
        member _.Accepted(ratio: float) : bool =
            if ratio >= limit then
                stiffSteps <- stiffSteps + 1
                calmSteps <- 0
            else
                calmSteps <- calmSteps + 1

                if calmSteps >= calm then
                    stiffSteps <- 0

            stiffSteps >= needed

    /// Auto on du/dt = f(t, u): `stiff ()` builds the Rodas4 method when needed (or says why it cannot run this
    /// system); `report` receives the sentence saying what was chosen, first when the rollout starts and again
    /// when the choice changes.
    let method
        (f: float -> torch.Tensor[] -> torch.Tensor[])
        (stiff: unit -> Result<AdaptiveMethod, string>)
        (report: string -> unit)
        : AdaptiveMethod =
        let mutable rodas: AdaptiveMethod option = None
        let mutable watching = true
        let watch = Watch()

        report throughout

        let accepted (t: float) (ratio: float) () =
            if watch.Accepted ratio then
                watching <- false

                match stiff () with
                | Ok m ->
                    rodas <- Some m
                    report (switched t ratio)
                | Error why -> report (cannotSwitch t why)

        {
            Name = "Auto"
            EstimateOrder = 4
            Start = f
            Attempt =
                fun t h u carry ->
                    match rodas with
                    | Some m -> m.Attempt t h u carry
                    | None ->
                        let a, ratio = Adaptive.attempt f watching t h u carry

                        if watching then
                            {
                                a with
                                    Accept = accepted (t + h) ratio
                            }
                        else
                            a
            LimitHint = limitHint
            LandsOnSaves = false
        }
