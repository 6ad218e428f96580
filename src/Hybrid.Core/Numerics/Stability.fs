namespace Hybrid.Numerics

open System
open Hybrid

/// Stability limits of single terms, with messages that name the term, its values, the limit and the fix:
/// advection terms c·∂(u) against the Courant limit, the pointwise (reaction) part of an equation against the
/// scheme's stability region along the negative real axis, and fast growth as the cause of a blow-up.
[<RequireQualifiedAccess>]
module internal Stability =

    /// The Courant limit of an advection term: |c|·Δt/Δx ≤ 1 for every explicit scheme (as for `Advect`).
    let courantLimit = 1.0

    let private inv = Globalization.CultureInfo.InvariantCulture

    let private g4 (v: float) = v.ToString("G4", inv)

    let private axisName (axis: int) = if axis = 0 then "x" else "y"

    let private spacing (grid: Grid) (axis: int) =
        if axis < grid.Axes.Length then
            grid.Axes[axis].Spacing
        else
            nan

    /// The largest Δt at which the advection term stays within the Courant limit on `grid` (∞ when it does not
    /// move, or the grid has no such axis).
    let advectionDt (grid: Grid) (a: AdvectionSpeed) : float =
        let h = spacing grid a.Axis

        if a.Speed > 0.0 && h > 0.0 then
            courantLimit * h / a.Speed
        else
            infinity

    /// The largest Δt at which `scheme` is stable for the most negative rate λ of the reaction (|λ|Δt within the
    /// stability region along the negative real axis; ∞ when nothing decays).
    let reactionDt (scheme: Scheme) (r: ReactionRate) : float =
        if r.Lowest < 0.0 then
            Integrators.realStabilityRadius scheme / -r.Lowest
        else
            infinity

    /// The Courant number of a limited flux-form term (advectFlux) up to which it keeps its tracer ≥ 0 under
    /// Scheme.Euler, Heun and SspRk3: Δt·Σₐ max|vₐ|/Δₐ ≤ ½.
    let positivityLimit = 0.5

    /// The largest Δt at which the limited flux-form term of `a` keeps its tracer ≥ 0 (Δt·Σₐ max|vₐ|/Δₐ ≤ ½, summed
    /// over that term's entries in `all`); ∞ for other terms.
    let positivityDt (grid: Grid) (all: AdvectionSpeed[]) (a: AdvectionSpeed) : float =
        let rate =
            all
            |> Array.filter (fun b -> b.Positivity && b.Field = a.Field && b.Term = a.Term)
            |> Array.sumBy (fun b -> b.Speed / spacing grid b.Axis)

        if a.Positivity && rate > 0.0 then
            positivityLimit / rate
        else
            infinity

    /// " advectFlux keeps …" on the Courant number ½ that positivity needs, for a limited flux-form term; "" otherwise.
    let private positivityNote (grid: Grid) (all: AdvectionSpeed[]) (a: AdvectionSpeed) =
        if a.Positivity then
            $" advectFlux keeps its tracer ≥ 0 only at Courant numbers Δt·Σₐ max|vₐ|/Δₐ ≤ {g4 positivityLimit} (with Scheme.Euler, Heun or SspRk3): Dt ≤ {g4 (positivityDt grid all a)} for that."
        else
            ""

    /// The error text for an advection term above the Courant limit at step `dt` (`all`: every advection entry, for
    /// the positivity bound of a limited flux-form term).
    let advectionMessage
        (scheme: Scheme)
        (grid: Grid)
        (dt: float)
        (all: AdvectionSpeed[])
        (a: AdvectionSpeed)
        : string =
        let h = spacing grid a.Axis
        let x = axisName a.Axis
        let cfl = a.Speed * dt / h

        $"The advection term '{a.Term}' of ∂{a.Field}/∂t moves at speed {g4 a.Speed} along {x}: with Δt = {g4 dt} and Δ{x} = {g4 h} its CFL number |speed|·Δt/Δ{x} = {g4 cfl} is above the stability limit {g4 courantLimit} of explicit schemes ({scheme}). Use Dt ≤ {g4 (advectionDt grid a)}, or Scheme.Dopri5 (adaptive: steps chosen by an error estimate); if that speed is not meant, check the velocity's value and units.{positivityNote grid all a}"

    /// The advection term with the largest speed: the clause "; the fastest advection is '−advectFlux(u, q)' of ∂q/∂t,
    /// speed 3 along x" and, for a limited flux-form term, the sentence on its positivity bound ("" each when there is
    /// none).
    let fastestAdvection (grid: Grid) (terms: TermLimits) : string * string =
        terms.Advection
        |> Array.filter (fun a -> a.Speed > 0.0)
        |> Array.sortBy (fun a -> -a.Speed)
        |> Array.tryHead
        |> Option.map (fun a ->
            $"; the fastest advection is '{a.Term}' of ∂{a.Field}/∂t, speed {g4 a.Speed} along {axisName a.Axis}",
            positivityNote grid terms.Advection a)
        |> Option.defaultValue ("", "")

    /// The terms of a reaction whose rate goes below zero, most negative first, as "'term' (λ down to v)".
    let private decaying (r: ReactionRate) =
        r.Terms()
        |> Array.filter (fun (_, low, _) -> low < 0.0)
        |> Array.sortBy (fun (_, low, _) -> low)
        |> Array.truncate 3
        |> Array.map (fun (term, low, _) -> $"'{term}' (λ down to {g4 low})")
        |> fun ts -> String.Join(", ", ts)

    /// The terms of a reaction whose rate goes above zero, fastest first, as "'term' (λ up to v)".
    let private growing (r: ReactionRate) =
        r.Terms()
        |> Array.filter (fun (_, _, high) -> high > 0.0)
        |> Array.sortBy (fun (_, _, high) -> -high)
        |> Array.truncate 3
        |> Array.map (fun (term, _, high) -> $"'{term}' (λ up to {g4 high})")
        |> fun ts -> String.Join(", ", ts)

    /// The diffusion term with the largest diffusivity, as "; the fastest diffusion is 'D Δu' of ∂u/∂t, diffusivity
    /// 10" ("" when there is none). Under an IMEX scheme only nonlinear diffusion counts (the linear part is implicit).
    let fastestDiffusion (scheme: Scheme) (terms: TermLimits) : string =
        terms.Diffusion
        |> Array.filter (fun d -> d.Diffusivity > 0.0 && (d.Nonlinear || not (Integrators.isImex scheme)))
        |> Array.sortBy (fun d -> -d.Diffusivity)
        |> Array.tryHead
        |> Option.map (fun d ->
            $"; the fastest diffusion is '{d.Term}' of ∂{d.Field}/∂t, diffusivity {g4 d.Diffusivity}")
        |> Option.defaultValue ""

    /// The error text for a reaction that decays too fast for `scheme` at step `dt`.
    let reactionMessage (scheme: Scheme) (dt: float) (r: ReactionRate) : string =
        let radius = Integrators.realStabilityRadius scheme

        $"The pointwise (reaction) part of ∂{r.Field}/∂t decays at rate |λ| = {g4 -r.Lowest} at the start ({decaying r}; λ = ∂/∂{r.Field} of these terms): with Δt = {g4 dt}, |λ|·Δt = {g4 (-r.Lowest * dt)} is above the stability limit {g4 radius} of {scheme} along the negative real axis. Use Dt ≤ {g4 (reactionDt scheme r)}, or a stiff scheme: Scheme.Rodas4, or Scheme.Auto (Dopri5 switching to Rodas4 where the problem turns stiff); if that rate is not meant, check the terms' coefficients and units."

    let private complexText (z: Numerics.Complex) =
        if abs z.Imaginary < 1e-12 * max 1.0 (abs z.Real) then
            g4 z.Real
        else
            $"{g4 z.Real} ± {g4 (abs z.Imaginary)}i"

    /// The limit and error text for the worst mode of the local coupling (`CouplingProbe.worst`) at step `dt`.
    let couplingViolation (scheme: Scheme) (dt: float) (mode: CoupledMode) : float * string =
        let limit = CouplingProbe.stableDt scheme mode.Lambda dt
        let z = mode.Lambda * Numerics.Complex(dt, 0.0)
        let factor = Integrators.amplification scheme z

        let equations = String.Join(", ", mode.Fields |> Array.map (fun f -> $"∂{f}/∂t"))

        let entries =
            mode.Entries
            |> Array.map (fun (i, j, v) -> $"∂(∂{i}/∂t)/∂{j} = {g4 v}")
            |> fun es -> String.Join(", ", es)

        let what =
            if mode.Fields.Length > 1 then
                $"The coupled pointwise part of {equations}"
            else
                $"The pointwise part of {equations} (closures included)"

        limit,
        $"{what} has a mode with eigenvalue λ = {complexText mode.Lambda} at the start (largest entries of its local Jacobian there: {entries}): with Δt = {g4 dt}, |λ|·Δt = {g4 z.Magnitude} lies outside the stability region of {scheme}, whose steps multiply that mode by {g4 factor} where the solution changes by {g4 (exp z.Real)}. Use Dt ≤ {g4 limit}, or a stiff scheme: Scheme.Rodas4, or Scheme.Auto (Dopri5 switching to Rodas4 where the problem turns stiff); if that rate is not meant, check the coupling coefficients and units."

    /// The term that limits the step most, when one is above its limit at step `dt`: the largest stable Δt it
    /// allows and its message.
    let violation (scheme: Scheme) (grid: Grid) (dt: float) (terms: TermLimits) : (float * string) option =
        let advection =
            terms.Advection
            |> Array.map (fun a -> advectionDt grid a, (fun () -> advectionMessage scheme grid dt terms.Advection a))

        let reaction =
            terms.Reaction
            |> Array.map (fun r -> reactionDt scheme r, (fun () -> reactionMessage scheme dt r))

        Array.append advection reaction
        |> Array.filter (fun (limit, _) -> dt > limit)
        |> Array.sortBy fst
        |> Array.tryHead
        |> Option.map (fun (limit, message) -> limit, message ())

    /// Why a rollout may pass `bound` by growth that the equations themselves produce: for each field whose
    /// pointwise part grows at its start (λ > 0), when e^(λ·span)·`start` passes `bound` or λ·Δt is above the
    /// scheme's limit, a sentence naming the terms, the rate, the factor over the span, the limit and the fix.
    /// `start` gives the largest |u| at the start (called only when a field grows). None when no field grows
    /// that fast.
    let growthCause
        (scheme: Scheme)
        (dt: float)
        (span: float)
        (start: unit -> float)
        (bound: float)
        (terms: TermLimits)
        : string option =
        let radius = Integrators.realStabilityRadius scheme

        let start = lazy (start ())

        let causes =
            terms.Reaction
            |> Array.filter (fun r ->
                r.Highest > 0.0
                && (r.Highest * span > log (bound / max start.Value Double.Epsilon)
                    || r.Highest * dt > radius))
            |> Array.map (fun r ->
                let lambda = r.Highest
                let decades = lambda * span / log 10.0

                let resolve =
                    if lambda * dt > radius then
                        $" Δt = {g4 dt} does not resolve that growth either: λ·Δt = {g4 (lambda * dt)} is above {g4 radius} for {scheme} (Dt ≤ {g4 (radius / lambda)} would)."
                    else
                        ""

                $"The pointwise (reaction) part of ∂{r.Field}/∂t grows at rate λ = {g4 lambda} at the start ({growing r}): the solution grows like e^(λt), by a factor of about 10^{g4 decades} over the span of {g4 span}.{resolve} If that rate is not meant, check the terms' signs, coefficients and units; if it is, shorten the span or raise Rollout.maxMagnitude.")

        if causes.Length = 0 then
            None
        else
            Some(String.Join(" ", causes))
