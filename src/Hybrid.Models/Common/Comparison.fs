/// Comparing a hybrid with its pure-ML baselines: summaries over seeds and the proposal's claim (a hybrid has
/// 20–40% lower out-of-domain MSE than the best pure-ML baseline).
module Hybrid.Models.Common.Comparison

open System

/// Test MSEs of one model over seeds.
type SeedSummary = {
    /// One MSE per seed, in seed order.
    Runs: float[]
    /// Mean over seeds.
    Mean: float
    /// Sample standard deviation over seeds (0 for one seed).
    Spread: float
}

/// Mean and sample standard deviation of `runs` (at least one value).
let summarise (runs: float[]) : SeedSummary =
    if runs.Length = 0 then
        raise (Hybrid.HybridException "Comparison.summarise: no runs; give at least one seed's MSE.")

    let mean = Array.average runs

    let spread =
        if runs.Length < 2 then
            0.0
        else
            sqrt (
                (runs |> Array.sumBy (fun r -> (r - mean) * (r - mean)))
                / float (runs.Length - 1)
            )

    {
        Runs = runs
        Mean = mean
        Spread = spread
    }

/// The seeds of one network of a case: `count` seeds from `first`, 1000 apart, so that the seed lists of a case's
/// networks (started from nearby `first` values) never overlap. `count` must be at least 1.
let seeds (first: int) (count: int) : int[] =
    if count < 1 then
        raise (
            Hybrid.HybridException
                $"Comparison.seeds: Seeds = {count}; a model needs at least one seed (1 runs it once, 3 gives a spread)."
        )

    Array.init count (fun i -> first + 1000 * i)

/// Runs `model` once per seed of `seeds` and hands the first seed's run (its curves, parameters and train MSE
/// stand for the rest), the summary of every seed's `TestMse` and the mean `TrainSeconds` to `summarised`, which
/// returns the row to report (typically the first run with the mean test MSE, the per-seed MSEs and the mean time).
let inline overSeeds
    (seeds: int[])
    ([<InlineIfLambda>] model: int -> ^R)
    ([<InlineIfLambda>] summarised: ^R -> SeedSummary -> float -> ^R)
    : ^R =
    let runs = seeds |> Array.map model
    let mses = runs |> Array.map (fun r -> (^R: (member TestMse: float) r))

    let seconds =
        runs |> Array.averageBy (fun r -> (^R: (member TrainSeconds: float) r))

    summarised runs[0] (summarise mses) seconds

/// Relative change of `hybrid` against `baseline` in percent ((hybrid − baseline) / baseline · 100; negative =
/// the hybrid's error is lower).
let internal change (hybrid: float) (baseline: float) : float = (hybrid - baseline) / baseline * 100.0

/// A percentage with no decimals, or two where no decimals would round a change just short of ±100% to 100
/// (99.97 → "99.97", not "100").
let internal percentDigits (p: float) : string =
    let digits = if abs p >= 99.5 && abs p < 100.0 then "F2" else "F0"
    p.ToString(digits, Globalization.CultureInfo.InvariantCulture)

/// The proposal's claimed reduction: at least 20% lower MSE (up to 40%).
[<Literal>]
let internal ClaimedReduction = 20.0

/// One sentence on how `hybridName` (test MSE `hybrid`) compares with the best of `baselines` (name, mean test
/// MSE over seeds) on `what` (e.g. "1916–1920 forecast"), and whether the claimed 20–40% reduction holds.
let internal claimSentence
    (what: string)
    (hybridName: string)
    (hybrid: float)
    (baselines: (string * float)[])
    : string =
    if baselines.Length = 0 then
        raise (Hybrid.HybridException "Comparison.claimSentence: no pure-ML baselines to compare with.")

    let bestName, best = baselines |> Array.minBy snd
    let c = change hybrid best

    let g (v: float) =
        v.ToString("g3", Globalization.CultureInfo.InvariantCulture)

    let direction =
        if c < 0.0 then
            $"{percentDigits -c}%% lower than"
        else
            $"{percentDigits c}%% higher than"

    let verdict =
        if -c >= 40.0 then
            "the proposal's 20–40% reduction holds (the reduction is larger than claimed)"
        elif -c >= ClaimedReduction then
            "the proposal's 20–40% reduction holds"
        elif c < 0.0 then
            "the hybrid is better, but by less than the proposal's 20–40%: the claim does not hold"
        else
            "the hybrid is not better: the proposal's 20–40% claim does not hold"

    $"On the {what}, {hybridName} (MSE {g hybrid}) is {direction} the best pure-ML baseline, {bestName} (MSE {g best}, the mean where it ran over several seeds); {verdict}."
