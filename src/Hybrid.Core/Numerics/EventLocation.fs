namespace Hybrid.Numerics

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// State events as the adaptive step control uses them: the events, the system's full tendency f(t, u) (for the
/// jump conditions of the gradients) and what to do when one fires (`Rollout.lastEvents` records it).
type internal EventSetup = {
    Events: StateEvent[]
    Tendency: float -> torch.Tensor[] -> torch.Tensor[]
    Fired: string -> float -> int[] -> unit
}

/// A crossing located inside an accepted step: the event, the fraction s* of the step where it happens (the
/// earliest over events and trajectories) and the trajectories that cross there.
type internal Located = {
    Event: StateEvent
    Fraction: float
    Triggered: bool[]
}

/// Finding where a state event's condition crosses zero inside a step (on the method's continuous extension, by
/// the Illinois variant of regula falsi), and the state just after it with gradients that account for the event
/// time's dependence on everything upstream.
[<RequireQualifiedAccess>]
module internal EventLocation =

    /// No state events.
    let none: EventSetup = {
        Events = [||]
        Tendency = fun _ u -> u
        Fired = fun _ _ _ -> ()
    }

    let private numbers (g: torch.Tensor) : float[] =
        use _ = torch.no_grad ()
        g.detach().reshape(-1L).to_type(torch.ScalarType.Float64).cpu().data<float>().ToArray()

    /// The condition's values [B] at (t, u), checked for shape and finiteness.
    let values (e: StateEvent) (t: float) (u: torch.Tensor[]) : float[] =
        use _ = torch.no_grad ()
        let g = e.Condition t u

        let batch =
            if u.Length > 0 && u[0].dim () > 0 then
                u[0].shape[0]
            else
                1L

        if g.NumberOfElements <> batch then
            let shape = String.Join(", ", g.shape)

            raise (
                HybridException(
                    $"State event '{e.Name}': its condition gave a tensor of shape [{shape}] but the state has {batch} trajectories; return one value per trajectory, shape [{batch}]."
                )
            )

        let v = numbers g

        match v |> Array.tryFind (Double.IsFinite >> not) with
        | Some bad ->
            raise (
                HybridException(
                    $"State event '{e.Name}': its condition is {bad} at t = {t:G6}; it must be finite to locate the crossing."
                )
            )
        | None -> v

    /// Whether a move of the condition from `g0` to `g1` is a crossing in `direction`.
    let crosses (direction: Crossing) (g0: float) (g1: float) =
        let rising = g0 < 0.0 && g1 >= 0.0
        let falling = g0 > 0.0 && g1 <= 0.0

        match direction with
        | Crossing.Rising -> rising
        | Crossing.Falling -> falling
        | Crossing.Either -> rising || falling

    /// The root in [a, b] of s ↦ value s, which is fa at a and fb at b with opposite signs (or fb = 0): Illinois
    /// iterations until the bracket is below 1e-13 of the step or the value is exactly 0.
    let root (value: float -> float) (a: float) (fa: float) (b: float) (fb: float) : float =
        if fb = 0.0 then
            b
        else
            let mutable a, fa = a, fa
            let mutable b, fb = b, fb
            let mutable side = 0
            let mutable iterations = 0

            while b - a > 1e-13 && iterations < 200 do
                let c = (a * fb - b * fa) / (fb - fa)
                let c = if c <= a || c >= b then 0.5 * (a + b) else c
                let fc = value c
                iterations <- iterations + 1

                if fc = 0.0 then
                    a <- c
                    b <- c
                elif (fc > 0.0) = (fb > 0.0) then
                    b <- c
                    fb <- fc

                    if side = -1 then
                        fa <- fa / 2.0

                    side <- -1
                else
                    a <- c
                    fa <- fc

                    if side = 1 then
                        fb <- fb / 2.0

                    side <- 1

            b

    /// Points per step at which the conditions are sampled on the continuous extension, so that a condition that
    /// crosses zero and back within one step (a ball bouncing up and falling again in one long step) is not missed.
    let Samples = 8

    /// The earliest crossing of any event on the step from (t, u) of size h whose continuous extension is
    /// `dense` (s ∈ [0, 1]), given the conditions at its start `g0` and end `g1` (per event, per trajectory):
    /// the conditions are sampled at `Samples` equal fractions of the step, and the first sign change in the
    /// event's direction is refined by `root`. `skipBelow`: crossings at s at or below it are ignored (the state an
    /// event just produced sits on its zero).
    let locate
        (events: StateEvent[])
        (dense: float -> torch.Tensor[])
        (t: float)
        (h: float)
        (g0: float[][])
        (g1: float[][])
        (skipBelow: float)
        : Located option =
        let fractions = Array.init (Samples + 1) (fun j -> float j / float Samples)

        // [sample][event][trajectory]
        let sampled =
            fractions
            |> Array.mapi (fun j s ->
                if j = 0 then
                    g0
                elif j = Samples then
                    g1
                else
                    events |> Array.map (fun e -> values e (t + s * h) (dense s)))

        let roots = [|
            for k in 0 .. events.Length - 1 do
                for b in 0 .. g0[k].Length - 1 do
                    let value s =
                        (values events[k] (t + s * h) (dense s))[b]

                    let first =
                        Seq.init Samples id
                        |> Seq.tryPick (fun j ->
                            let before = sampled[j].[k].[b]
                            let after = sampled[j + 1].[k].[b]

                            if crosses events[k].Direction before after then
                                let s = root value fractions.[j] before fractions.[j + 1] after
                                if s > skipBelow then Some s else None
                            else
                                None)

                    match first with
                    | Some s -> yield k, b, s
                    | None -> ()
        |]

        if roots.Length = 0 then
            None
        else
            let _, _, first = roots |> Array.minBy (fun (_, _, s) -> s)
            let k, _, _ = roots |> Array.find (fun (_, _, s) -> s = first)
            let batch = g0[k].Length

            Some {
                Event = events[k]
                Fraction = first
                Triggered =
                    Array.init batch (fun b ->
                        roots
                        |> Array.exists (fun (k', b', s) -> k' = k && b' = b && s - first <= 1e-12))
            }

    /// `d` [B] shaped to broadcast against a field [B; spatial…].
    let private perTrajectory (d: torch.Tensor) (like: torch.Tensor) =
        d.reshape (Array.append [| d.shape[0] |] (Array.create (max 0 (int (like.dim ()) - 1)) 1L))

    /// The state just after the located event at t* = t + s*·h: the jump of the triggered trajectories, the
    /// others unchanged. Its value is `Jump (dense s*)`; its gradients follow the sensitivities' jump conditions:
    /// with Δ = −(g − stop(g)) / ġ (value 0, gradient −∇g / ġ, ġ = dg/dt along the solution, by central
    /// differences), u⁺ = Jump(u* + f⁻ Δ) − f⁺ Δ.
    let after
        (tendency: float -> torch.Tensor[] -> torch.Tensor[])
        (dense: float -> torch.Tensor[])
        (t: float)
        (h: float)
        (l: Located)
        : torch.Tensor[] =
        let tStar = t + l.Fraction * h
        let uStar = dense l.Fraction
        let fMinus = tendency tStar uStar
        let g = (l.Event.Condition tStar uStar).reshape (-1L)
        let like = uStar[0]

        let mask =
            torch.tensor(l.Triggered, device = like.device).reshape (int64 l.Triggered.Length)

        let gdot =
            use _ = torch.no_grad ()
            let delta = 1e-7 * max h (abs tStar)

            let shifted (sign: float) =
                Array.map2 (fun (u: torch.Tensor) f -> u .+ (sign * delta) .* f) uStar fMinus

            ((l.Event.Condition (tStar + delta) (shifted 1.0)
              .- l.Event.Condition (tStar - delta) (shifted -1.0))
             ./ (2.0 * delta))
                .reshape (-1L)

        let one = torch.ones_like gdot
        let safe = torch.where (mask, gdot, one)

        // A grazing crossing (ġ = 0) has no defined event-time sensitivity.
        if (torch.where (mask, gdot.abs (), one)).min().ToDouble() = 0.0 then
            raise (
                HybridException(
                    $"State event '{l.Event.Name}' at t = {tStar:G6}: the condition touches zero without crossing (dg/dt = 0), so the event time has no derivative. Shift the condition's threshold slightly."
                )
            )

        let delta =
            torch.where (mask, (g.detach () .- g) ./ safe.detach (), torch.zeros_like g)

        let before =
            Array.map2 (fun (u: torch.Tensor) (f: torch.Tensor) -> u .+ f .* perTrajectory delta f) uStar fMinus

        let jumped = l.Event.Jump before

        let fPlus =
            use _ = torch.no_grad ()
            tendency tStar (jumped |> Array.map (fun x -> x.detach ()))

        Array.init uStar.Length (fun i ->
            let plus = jumped[i] .- fPlus[i] .* perTrajectory delta fPlus[i]
            torch.where (perTrajectory mask uStar[i], plus, uStar[i]))
