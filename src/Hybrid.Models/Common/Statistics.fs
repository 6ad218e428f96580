/// The statistics of the report's comparisons, one rule for every case and for the quick and the full settings:
/// a two-sided Student-t interval of a mean over seeds, the ratio of two models' errors from log-MSE differences
/// paired by seed, the verdict on a claim of "at least X% lower error", and percentile and basic (bias-corrected)
/// bootstrap intervals.
module Hybrid.Models.Common.Statistics

open System
open MathNet.Numerics.Distributions

/// A point estimate and its two-sided confidence interval.
type Interval = {
    /// The point estimate (a mean, or a ratio of geometric means).
    Estimate: float
    /// The interval's lower end.
    Lower: float
    /// The interval's upper end.
    Upper: float
    /// The confidence level, e.g. 0.95.
    Level: float
    /// How many values (seeds, pairs) it rests on.
    Count: int
}

/// What the interval of an error ratio says about a claim of "at least X% lower error".
[<RequireQualifiedAccess>]
type Verdict =
    /// The whole interval lies at least X% lower: the claim holds.
    | Holds
    /// The whole interval lies above X% lower (less of a reduction, or none): the claim fails.
    | Fails
    /// The interval straddles the claimed reduction.
    | Inconclusive

let private refuse (message: string) = raise (Hybrid.HybridException message)

let private checkLevel (name: string) (level: float) =
    if not (level > 0.0 && level < 1.0) then
        refuse $"Statistics.{name}: level = {level}; a confidence level lies strictly between 0 and 1, e.g. 0.95."

let private checkValues (name: string) (what: string) (least: int) (values: float[]) =
    if isNull values || values.Length < least then
        let n = if isNull values then 0 else values.Length

        refuse
            $"Statistics.{name}: {n} {what}; an interval needs at least {least} (run the models over more seeds, e.g. 3 in quick mode and 5 in full)."

    match values |> Array.tryFindIndex (fun v -> Double.IsNaN v || Double.IsInfinity v) with
    | Some i -> refuse $"Statistics.{name}: {what} [{i}] = {values[i]} is not finite; every value must be."
    | None -> ()

/// The two-sided quantile t such that P(|T| ≤ t) = `level` for Student's t with `df` degrees of freedom.
let tQuantile (level: float) (df: int) : float =
    checkLevel "tQuantile" level

    if df < 1 then
        refuse $"Statistics.tQuantile: df = {df}; Student's t needs at least 1 degree of freedom."

    StudentT.InvCDF(0.0, 1.0, float df, 0.5 + level / 2.0)

/// Mean of `values` with its two-sided Student-t interval at `level` (mean ± t·s/√n, s the sample standard
/// deviation); at least two values.
let meanInterval (level: float) (values: float[]) : Interval =
    checkLevel "meanInterval" level
    checkValues "meanInterval" "values" 2 values
    let n = values.Length
    let mean = Array.average values

    let sd =
        sqrt ((values |> Array.sumBy (fun v -> (v - mean) * (v - mean))) / float (n - 1))

    let half = tQuantile level (n - 1) * sd / sqrt (float n)

    {
        Estimate = mean
        Lower = mean - half
        Upper = mean + half
        Level = level
        Count = n
    }

/// The ratio of `candidate`'s error to `baseline`'s, from their MSEs paired by seed (entry i of both from seed
/// i): the Student-t interval of the mean difference of log-MSEs, back on the ratio scale (exp), so the
/// estimate is the ratio of geometric means. A ratio of 0.7 is 30% lower error. MSEs must be positive.
let errorRatio (level: float) (candidate: float[]) (baseline: float[]) : Interval =
    checkValues "errorRatio" "candidate MSEs" 2 candidate
    checkValues "errorRatio" "baseline MSEs" 2 baseline

    if candidate.Length <> baseline.Length then
        refuse
            $"Statistics.errorRatio: {candidate.Length} candidate MSEs but {baseline.Length} baseline MSEs; pair them by seed (one of each per seed)."

    let positive (what: string) (xs: float[]) =
        match xs |> Array.tryFindIndex (fun x -> x <= 0.0) with
        | Some i -> refuse $"Statistics.errorRatio: {what} [{i}] = {xs[i]}; an MSE must be positive to take its log."
        | None -> ()

    positive "candidate MSEs" candidate
    positive "baseline MSEs" baseline
    let d = Array.map2 (fun c b -> log c - log b) candidate baseline
    let i = meanInterval level d

    {
        i with
            Estimate = exp i.Estimate
            Lower = exp i.Lower
            Upper = exp i.Upper
    }

/// The verdict on "the error ratio is at most `bar`" from the interval of an error ratio (`errorRatio`): `Holds`
/// when its upper end is at most `bar`, `Fails` when its lower end is above it, `Inconclusive` otherwise. `bar`
/// must be positive, e.g. 1.1 for "at most 10% higher error".
let verdictAt (bar: float) (ratio: Interval) : Verdict =
    if not (bar > 0.0 && Double.IsFinite bar) then
        refuse $"Statistics.verdictAt: bar = {bar}; an error-ratio bar is a positive number, e.g. 1.1."

    if ratio.Upper <= bar then Verdict.Holds
    elif ratio.Lower > bar then Verdict.Fails
    else Verdict.Inconclusive

/// The verdict on "at least `reductionPercent`% lower error" from the interval of an error ratio (`errorRatio`):
/// `verdictAt` the bar 1 − X/100.
let verdict (reductionPercent: float) (ratio: Interval) : Verdict =
    if not (reductionPercent >= 0.0 && reductionPercent < 100.0) then
        refuse
            $"Statistics.verdict: reductionPercent = {reductionPercent}; a claimed reduction lies in [0, 100), e.g. 20 for \"20%% lower error\"."

    verdictAt (1.0 - reductionPercent / 100.0) ratio

/// The sorted statistics of `resamples` resamples of `n` item indices drawn with replacement from a generator
/// seeded with `seed`, and the function giving their `p`-quantile (linear interpolation between order statistics).
let private resampled (name: string) (level: float) (resamples: int) (seed: int) (n: int) (statistic: int[] -> float) =
    checkLevel name level

    if n < 2 then
        refuse $"Statistics.{name}: n = {n}; resampling needs at least 2 items."

    if resamples < 100 then
        refuse
            $"Statistics.{name}: resamples = {resamples}; a bootstrap interval needs at least 100 (1,000 or more for 95%%)."

    let random = Random seed

    let draws =
        Array.init resamples (fun _ -> statistic (Array.init n (fun _ -> random.Next n)))
        |> Array.sort

    let quantile (p: float) =
        let position = p * float (resamples - 1)
        let lo = int (floor position)
        let hi = min (resamples - 1) (lo + 1)
        draws[lo] + (position - float lo) * (draws[hi] - draws[lo])

    draws, quantile

/// A percentile bootstrap interval at `level` of `statistic` over `n` items: `resamples` resamples of the item
/// indices drawn with replacement from a generator seeded with `seed` (the same seed gives the same interval);
/// the estimate is the statistic of all items in order. Right for a statistic without bias (a mean); for a biased
/// one use `basicBootstrap`.
let bootstrap (level: float) (resamples: int) (seed: int) (n: int) (statistic: int[] -> float) : Interval =
    let _, quantile = resampled "bootstrap" level resamples seed n statistic

    {
        Estimate = statistic (Array.init n id)
        Lower = quantile ((1.0 - level) / 2.0)
        Upper = quantile ((1.0 + level) / 2.0)
        Level = level
        Count = n
    }

/// The basic (reflected) bootstrap at `level` of a statistic that is biased and bounded below by `least`, such as
/// the ECE (a mean of absolute deviations: sampling noise alone makes it positive, so the plug-in value θ̂ lies
/// above the true one and its resamples θ* lie above θ̂ again; a percentile interval then often misses θ̂). The
/// bias is estimated by mean(θ*) − θ̂ and removed: the estimate is 2θ̂ − mean(θ*), the interval
/// [2θ̂ − q(1 − α/2), 2θ̂ − q(α/2)] (q the quantiles of θ*), each clipped at `least` (Efron and Tibshirani 1993,
/// ch. 10 and 13). Resamples as `bootstrap`.
let basicBootstrap
    (level: float)
    (resamples: int)
    (seed: int)
    (n: int)
    (least: float)
    (statistic: int[] -> float)
    : Interval =
    let draws, quantile = resampled "basicBootstrap" level resamples seed n statistic
    let plugIn = statistic (Array.init n id)
    let reflect (v: float) = max least (2.0 * plugIn - v)

    {
        Estimate = reflect (Array.average draws)
        Lower = reflect (quantile ((1.0 + level) / 2.0))
        Upper = reflect (quantile ((1.0 - level) / 2.0))
        Level = level
        Count = n
    }
