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
        let mutable stiffSteps = 0
        let mutable calmSteps = 0

        report
            $"Scheme.Auto ran Dopri5 throughout: its stiffness test (h·|λ| ≥ {limit} on {needed} accepted steps) never fired."

        let accepted (t: float) (ratio: float) () =
            if ratio >= limit then
                stiffSteps <- stiffSteps + 1
                calmSteps <- 0
            else
                calmSteps <- calmSteps + 1

                if calmSteps >= calm then
                    stiffSteps <- 0

            if stiffSteps >= needed then
                watching <- false

                match stiff () with
                | Ok m ->
                    rodas <- Some m

                    report
                        $"Scheme.Auto ran Dopri5 until t = {t:G6}, then Rodas4 to the end: the problem turned stiff there (h·|λ| ≈ {ratio:G3} at Dopri5's steps, {needed} accepted steps at its stability limit)."
                | Error why ->
                    report
                        $"Scheme.Auto ran Dopri5 throughout: the problem turned stiff at t = {t:G6}, but Rodas4 cannot run this system ({why})."

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
            LimitHint =
                "Scheme.Auto switches to Rodas4 only once it detects stiffness: loosen the Tolerance, use Scheme.Rodas4 from the start, or raise the limit with Rollout.maxSteps."
        }
