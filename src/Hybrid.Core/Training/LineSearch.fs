namespace Hybrid.Training

open System

/// One trial point of a line search along a direction d: φ(α) = L(x + α d) and its slope φ'(α) = ∇L·d.
/// A failed trial (non-finite loss or gradient, or a simulation that raised) has `Loss = +∞` and no slope.
type internal Trial = {
    /// Step length α.
    Alpha: float
    /// φ(α), +∞ for a failed trial.
    Loss: float
    /// φ'(α) (NaN for a failed trial).
    Slope: float
    /// The full gradient at x + α d (empty for a failed trial).
    Gradient: float[]
    /// Why the trial failed (None when it did not).
    Failure: string option
}

/// Result of a line search.
[<RequireQualifiedAccess>]
type internal SearchOutcome =
    /// A step satisfying the strong Wolfe conditions.
    | Wolfe of Trial
    /// No Wolfe step within the evaluation budget, but this one lowers the loss sufficiently (Armijo).
    | Decrease of Trial
    /// No step lowered the loss.
    | NoStep

/// Settings of the strong-Wolfe line search.
type internal SearchSettings = {
    /// Sufficient-decrease constant c₁ (Armijo), 0 < c₁ < c₂.
    C1: float
    /// Curvature constant c₂ < 1.
    C2: float
    /// Trial evaluations at most.
    MaxEvaluations: int
}

/// The strong-Wolfe line search of Nocedal & Wright (Numerical Optimization, 2nd ed., algorithms 3.5 and 3.6):
/// bracketing by extrapolation, then zoom by safeguarded cubic interpolation (bisection when the cubic is
/// undefined). A failed trial counts as an infinite loss: it violates sufficient decrease, so it becomes the
/// upper end of the bracket and the search retreats towards the last good point (by bisection, since a failed
/// point has no value to interpolate).
module internal LineSearch =

    /// The minimiser of the cubic through (a, fa, da) and (b, fb, db) (N&W eq. 3.59), or NaN when undefined.
    let cubicMinimum (a: float) (fa: float) (da: float) (b: float) (fb: float) (db: float) : float =
        let d1 = da + db - 3.0 * (fa - fb) / (a - b)
        let disc = d1 * d1 - da * db

        if not (disc >= 0.0) || a = b then
            nan
        else
            let d2 = float (sign (b - a)) * sqrt disc
            let denominator = db - da + 2.0 * d2

            if denominator = 0.0 then
                nan
            else
                b - (b - a) * (db + d2 - d1) / denominator

    /// A trial inside [lo, hi] (either order): the cubic's minimum kept at least 10% of the interval away from
    /// both ends, or the midpoint when the cubic is undefined or the upper point failed.
    let internal interpolate (lo: Trial) (hi: Trial) : float =
        let a, b = min lo.Alpha hi.Alpha, max lo.Alpha hi.Alpha
        let width = b - a

        let c =
            if hi.Failure.IsSome || Double.IsInfinity hi.Loss then
                nan
            else
                cubicMinimum lo.Alpha lo.Loss lo.Slope hi.Alpha hi.Loss hi.Slope

        if Double.IsNaN c || Double.IsInfinity c then
            0.5 * (a + b)
        else
            max (a + 0.1 * width) (min (b - 0.1 * width) c)

    /// Searches along a descent direction from φ(0) = `f0` with slope `slope0` < 0, first trying `alpha1`.
    /// `evaluate α` computes the trial at x + α d. Returns the outcome and every trial evaluated.
    let strongWolfe
        (settings: SearchSettings)
        (evaluate: float -> Trial)
        (f0: float)
        (slope0: float)
        (alpha1: float)
        : SearchOutcome * Trial list =
        let trials = ResizeArray<Trial>()

        let eval alpha =
            let t = evaluate alpha
            trials.Add t
            t

        let sufficient (t: Trial) =
            t.Failure.IsNone && t.Loss <= f0 + settings.C1 * t.Alpha * slope0

        let curvature (t: Trial) = abs t.Slope <= -settings.C2 * slope0

        // The best sufficiently decreasing trial seen, for when the budget runs out.
        let fallback () =
            let good =
                trials |> Seq.filter (fun t -> sufficient t && t.Loss < f0) |> Array.ofSeq

            if good.Length = 0 then
                SearchOutcome.NoStep
            else
                SearchOutcome.Decrease(good |> Array.minBy (fun t -> t.Loss))

        // Algorithm 3.6: lo satisfies sufficient decrease and has the lowest loss so far; the bracket [lo, hi]
        // contains a Wolfe step.
        let rec zoom (lo: Trial) (hi: Trial) =
            if trials.Count >= settings.MaxEvaluations then
                fallback ()
            elif abs (hi.Alpha - lo.Alpha) <= 1e-14 * max 1.0 (abs lo.Alpha) then
                fallback ()
            else
                let t = eval (interpolate lo hi)

                if not (sufficient t) || t.Loss >= lo.Loss then zoom lo t
                elif curvature t then SearchOutcome.Wolfe t
                elif t.Slope * (hi.Alpha - lo.Alpha) >= 0.0 then zoom t lo
                else zoom t hi

        // Algorithm 3.5: extrapolate until the bracket is found.
        let start = {
            Alpha = 0.0
            Loss = f0
            Slope = slope0
            Gradient = [||]
            Failure = None
        }

        let rec bracket (previous: Trial) (alpha: float) (first: bool) =
            let t = eval alpha

            if not (sufficient t) || (not first && t.Loss >= previous.Loss) then
                zoom previous t
            elif curvature t then
                SearchOutcome.Wolfe t
            elif t.Slope >= 0.0 then
                zoom t previous
            elif trials.Count >= settings.MaxEvaluations then
                fallback ()
            else
                // Still descending: extrapolate, by the cubic's minimum kept within [1.1 α, 10 α].
                let c =
                    cubicMinimum previous.Alpha previous.Loss previous.Slope t.Alpha t.Loss t.Slope

                let next =
                    if Double.IsNaN c || Double.IsInfinity c then
                        4.0 * alpha
                    else
                        max (1.1 * alpha) (min (10.0 * alpha) c)

                bracket t next false

        let outcome = bracket start alpha1 true
        outcome, List.ofSeq trials
