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

/// The proposal's claim for one hybrid on one split: its error against the best pure-ML baseline.
type internal Claim = {
    /// The best pure-ML baseline: the lowest geometric mean of its per-seed MSEs.
    Baseline: string
    /// Seeds paired (entry i of the hybrid's and the baseline's runs); the shorter of the two.
    Pairs: int
    /// The hybrid's error ratio against the baseline (`Statistics.errorRatio` at 95%); None with fewer than two
    /// pairs (no interval).
    Ratio: Statistics.Interval option
    /// `Statistics.verdict` on "at least `ClaimedReduction`% lower error"; inconclusive without an interval.
    Verdict: Statistics.Verdict
}

let private geometricMean (runs: float[]) = runs |> Array.averageBy log |> exp

/// The claim of `hybrid` (its test MSE per seed, in seed order) against `baselines` (name, test MSE per seed):
/// the best baseline by geometric mean, the 95% interval of the error ratio from log-MSE differences paired by
/// seed over the seeds both have, and the verdict. The same rule in quick and full settings.
let internal claim (hybrid: float[]) (baselines: (string * float[])[]) : Claim =
    if baselines.Length = 0 then
        raise (Hybrid.HybridException "Comparison.claim: no pure-ML baselines to compare with.")

    if
        hybrid.Length = 0
        || baselines |> Array.exists (fun (_, runs) -> runs.Length = 0)
    then
        raise (Hybrid.HybridException "Comparison.claim: every model needs at least one seed's test MSE.")

    let name, runs = baselines |> Array.minBy (snd >> geometricMean)
    let pairs = min hybrid.Length runs.Length

    let ratio =
        if pairs < 2 then
            None
        else
            Some(Statistics.errorRatio 0.95 hybrid[.. pairs - 1] runs[.. pairs - 1])

    {
        Baseline = name
        Pairs = pairs
        Ratio = ratio
        Verdict =
            ratio
            |> Option.map (Statistics.verdict ClaimedReduction)
            |> Option.defaultValue Statistics.Verdict.Inconclusive
    }

/// One sentence on how `hybridName` (test MSE per seed `hybrid`) compares with the best of `baselines` (name,
/// test MSE per seed) on `what` (e.g. "1916–1920 forecast"), and the verdict on the proposal's claim of at least
/// 20% lower error (`claim`).
let internal claimSentence
    (what: string)
    (hybridName: string)
    (hybrid: float[])
    (baselines: (string * float[])[])
    : string =
    let c = claim hybrid baselines
    let best = baselines |> Array.find (fun (n, _) -> n = c.Baseline) |> snd

    let f (v: float) =
        v.ToString("F2", Globalization.CultureInfo.InvariantCulture)

    let g (v: float) =
        v.ToString("g3", Globalization.CultureInfo.InvariantCulture)

    match c.Ratio with
    | None ->
        let change =
            (geometricMean hybrid - geometricMean best) / geometricMean best * 100.0

        let direction =
            if change < 0.0 then
                $"{percentDigits -change}%% lower than"
            else
                $"{percentDigits change}%% higher than"

        $"On the {what}, {hybridName} (MSE {g (geometricMean hybrid)}) is {direction} the best pure-ML baseline, {c.Baseline} (MSE {g (geometricMean best)}), from one seed: without an interval the proposal's claim of at least {ClaimedReduction:F0}%% lower error is inconclusive."
    | Some r ->
        let verdict =
            match c.Verdict with
            | Statistics.Verdict.Holds when r.Upper <= 0.6 ->
                "holds (the whole interval lies at least 40% lower: more than the proposal's 20–40%)"
            | Statistics.Verdict.Holds -> "holds (the whole interval lies at least 20% lower)"
            | Statistics.Verdict.Fails -> "fails (the whole interval lies less than 20% lower)"
            | Statistics.Verdict.Inconclusive -> "is inconclusive (the interval straddles 20% lower)"

        $"On the {what}, {hybridName}'s MSE is {f r.Estimate}× that of the best pure-ML baseline, {c.Baseline} (ratio of geometric means over {c.Pairs} seeds; 95%% CI {f r.Lower}–{f r.Upper} from log-MSE differences paired by seed): the proposal's claim of at least {ClaimedReduction:F0}%% lower error {verdict}."
