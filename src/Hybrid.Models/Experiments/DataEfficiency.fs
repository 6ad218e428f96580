/// Experiment (b) of issue #6, data efficiency: a case study run with a growing share of its training data
/// (`Settings.TrainFraction`, the same reduced data for every model of the case), each share over several random
/// training subsets (`Settings.TrainSubset`, the replicates), every model's test MSE per share and subset, and
/// generated sentences on the proposal's claim that the hybrid matches pure machine learning with half the data:
/// the ratio hybrid at 50% over the best pure-ML model at 100%, paired by subset, with its 95% t-interval over the
/// subsets on the log scale, holds when the whole interval is within `Tolerance`. One runner and one writer for
/// every case; `Report/DataEfficiencyReport.fs` says which cases run and with which settings.
module Hybrid.Models.Experiments.DataEfficiency

open System
open System.Diagnostics
open System.IO
open System.Text
open Hybrid
open Hybrid.Training
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat

/// The shares of the training data the experiment runs unless a case passes its own.
let fractions = [| 0.1; 0.25; 0.5; 1.0 |]

/// "Matches" allows this relative excess: hybrid at 50% ≤ (1 + Tolerance) · best pure ML at 100%.
[<Literal>]
let Tolerance = 0.1

/// The test MSE of every model of a case at every fraction and training subset.
type Result = {
    /// File-name stem of the case, e.g. "predator-prey" (the CSV is `<Case>-data-efficiency.csv`).
    Case: string
    /// Fractions run, ascending.
    Fractions: float[]
    /// The subset seeds run at every fraction (`Settings.TrainSubset`), the replicates of the experiment.
    Subsets: int[]
    /// Model names, in the case's order.
    Models: string[]
    /// Test MSE [model][fraction][subset], one replicate per subset seed.
    Replicates: float[][][]
    /// Test MSE [model][fraction]: the mean over the subsets.
    TestMse: float[][]
    /// Wall time of the case's runs at each fraction, summed over the subsets (s).
    Seconds: float[]
}

/// Checks that `fractions` are shares of the training data, distinct and ascending, and `subsets` distinct subset
/// seeds (a `HybridException` otherwise).
let checkRuns (case: string) (fractions: float[]) (subsets: int[]) : unit =
    if fractions.Length = 0 then
        raise (HybridException $"DataEfficiency.run '{case}': no fractions given; pass e.g. [| 0.5; 1.0 |].")

    for f in fractions do
        if not (f > 0.0 && f <= 1.0) then
            raise (
                HybridException
                    $"DataEfficiency.run '{case}': fraction {f} is outside (0, 1]; give shares of the training data."
            )

    if Array.sort fractions <> fractions || Array.distinct fractions <> fractions then
        raise (HybridException $"DataEfficiency.run '{case}': fractions %A{fractions} must be distinct and ascending.")

    if
        subsets.Length = 0
        || Array.distinct subsets <> subsets
        || Array.exists (fun k -> k < 0) subsets
    then
        raise (
            HybridException
                $"DataEfficiency.run '{case}': subsets %A{subsets} must be distinct subset seeds ≥ 0, at least one (e.g. [| 1; 2; 3 |])."
        )

/// The result from one run per fraction and subset (every model's (name, test MSE), the run's wall time in
/// seconds), indexed [fraction][subset] in the order of `fractions` and `subsets`: the same models in every run, or
/// a `HybridException`.
let ofRuns (case: string) (fractions: float[]) (subsets: int[]) (runs: ((string * float)[] * float)[][]) : Result =
    if
        runs.Length <> fractions.Length
        || runs |> Array.exists (fun r -> r.Length <> subsets.Length)
    then
        raise (
            HybridException
                $"DataEfficiency.run '{case}': give one run per fraction ({fractions.Length}) and subset ({subsets.Length})."
        )

    let models = runs[0][0] |> fst |> Array.map fst

    runs
    |> Array.iteri (fun i row ->
        row
        |> Array.iteri (fun k (rows, _) ->
            if Array.map fst rows <> models then
                raise (
                    HybridException
                        $"DataEfficiency.run '{case}': the models at fraction {fractions[i]}, subset {subsets[k]} differ from those at {fractions[0]}, subset {subsets[0]}; a case must return the same rows in every run."
                )))

    let replicates =
        models
        |> Array.mapi (fun m _ -> runs |> Array.map (Array.map (fun (rows, _) -> snd rows[m])))

    {
        Case = case
        Fractions = fractions
        Subsets = subsets
        Models = models
        Replicates = replicates
        TestMse = replicates |> Array.map (Array.map Array.average)
        Seconds = runs |> Array.map (Array.sumBy snd)
    }

/// Runs `runCase f k` (every model's (name, test MSE) with `TrainFraction = f` and `TrainSubset = k`) for each of
/// `fractions` and each of `subsets`.
let run (case: string) (fractions: float[]) (subsets: int[]) (runCase: float -> int -> (string * float)[]) : Result =
    checkRuns case fractions subsets

    fractions
    |> Array.map (fun f ->
        subsets
        |> Array.map (fun k ->
            let watch = Stopwatch.StartNew()
            let rows = runCase f k
            rows, watch.Elapsed.TotalSeconds))
    |> ofRuns case fractions subsets

/// The confidence level of the half-the-data interval.
[<Literal>]
let Level = 0.95

/// The interval of the ratio MSE(hybrid at 50%) / MSE(best pure ML at 100%) from the two models' test MSEs per
/// subset (entry r of both from subset r: paired): `Statistics.errorRatio` at `Level`, the Student-t interval over
/// the subsets of the log ratio, back on the ratio scale. `Error` says why there is none: one subset only, or a
/// non-finite or non-positive MSE (a run that blew up).
let halfDataRatio (hybrid50: float[]) (ml100: float[]) : Result<Statistics.Interval, string> =
    let bad =
        Array.append hybrid50 ml100
        |> Array.exists (fun v -> not (Double.IsFinite v && v > 0.0))

    if hybrid50.Length <> ml100.Length then
        Error $"{hybrid50.Length} hybrid and {ml100.Length} baseline replicates; they must pair by subset"
    elif hybrid50.Length < 2 then
        Error "one subset, no interval"
    elif bad then
        Error "a replicate's MSE is not a finite positive number (a run blew up), no interval"
    else
        Ok(Statistics.errorRatio Level hybrid50 ml100)

/// The verdict on "the hybrid at 50% matches the best pure-ML model at 100%" from `halfDataRatio`'s interval:
/// holds when the whole interval is at most 1 + `Tolerance`, fails when the whole interval is above it,
/// inconclusive otherwise (`Statistics.verdictAt`).
let halfDataVerdict (ratio: Statistics.Interval) : Statistics.Verdict =
    Statistics.verdictAt (1.0 + Tolerance) ratio

/// A fraction as a percentage, "10%", "25%", "50%", "100%".
let percent (f: float) = $"{100.0 * f:G4}%%"

/// The index of fraction `f` in the result, if it was run.
let private fractionIndex (r: Result) (f: float) =
    Array.tryFindIndex (fun x -> abs (x - f) < 1e-12) r.Fractions

/// The mean test MSE over the subsets of `model` at fraction `f`, if both were run.
let private at (r: Result) (model: int) (f: float) =
    fractionIndex r f |> Option.map (fun i -> r.TestMse[model][i])

/// The test MSE per subset of `model` at fraction `f` (which must have been run).
let private replicatesAt (r: Result) (model: int) (f: float) =
    r.Replicates[model][(fractionIndex r f).Value]

let private ratioText (i: Statistics.Interval) =
    $"{i.Estimate:F2} [{i.Lower:F2}, {i.Upper:F2}]"

let private subsetsText (r: Result) =
    if r.Subsets.Length = 1 then
        "one subset"
    else
        $"{r.Subsets.Length} subsets"

/// The generated sentences on the claim "the hybrid matches pure ML with half the data", one or more per hybrid
/// (rows named "hybrid…"), as markdown bullets: its MSE at 50% against the best pure-ML model's
/// (`ModelTable.isPureMl`, lowest mean over the subsets) at 100%, the ratio's interval over the subsets and its
/// verdict (`halfDataRatio`, `halfDataVerdict`), and where the means miss the tolerance, why (the hybrid does not
/// match even with all the data, or it loses more than the tolerance when the data is halved); the shares at which
/// its mean matches.
let claimLines (r: Result) : string list =
    let indexed = r.Models |> Array.indexed
    let ml = indexed |> Array.filter (fun (_, n) -> ModelTable.isPureMl n)
    let hybrids = indexed |> Array.filter (fun (_, n: string) -> n.StartsWith "hybrid")
    let tolerance = $"{100.0 * Tolerance:G3}%%"
    let bar = $"{1.0 + Tolerance:F2}"

    if ml.Length = 0 then
        [
            "- No pure machine-learning model in this case, so the claim that the hybrid matches ML with half the data cannot be tested here."
        ]
    elif hybrids.Length = 0 then
        [ "- No hybrid model in this case." ]
    else
        match at r (fst ml[0]) 1.0, at r (fst ml[0]) 0.5 with
        | None, _
        | _, None -> [
            "- The 50% and 100% runs are not both in this experiment, so the half-the-data claim is not tested here."
          ]
        | _ ->
            let mlIndex, mlName = ml |> Array.minBy (fun (i, _) -> (at r i 1.0).Value)

            let ml100 = (at r mlIndex 1.0).Value
            let ml50 = (at r mlIndex 0.5).Value
            let limit = (1.0 + Tolerance) * ml100

            [
                $"- Best pure-ML model with all the training data: {mlName} ({ml100:G4}, mean over {subsetsText r}); with half of it its MSE is {ml50:G4} ({percentChange 0 ml50 ml100})."
                for i, h in hybrids do
                    let h50 = (at r i 0.5).Value
                    let h100 = (at r i 1.0).Value

                    let ratio = halfDataRatio (replicatesAt r i 0.5) (replicatesAt r mlIndex 1.0)

                    let holds =
                        match ratio with
                        | Ok interval -> halfDataVerdict interval = Statistics.Verdict.Holds
                        | Error _ -> false

                    // Why the means miss the tolerance (not said where the interval holds the claim).
                    let why =
                        if h50 <= limit || holds then
                            ""
                        elif h100 > limit then
                            $" Even with all the training data it does not match {mlName} ({h100:G4} vs {ml100:G4}, {percentChange 0 h100 ml100}), so the claim fails on accuracy, not on data efficiency."
                        else
                            $" With all the data it does match ({h100:G4}); halving the data raises its MSE by {percentChange 0 h50 h100}, more than the tolerance allows."

                    let claim =
                        match ratio with
                        | Ok interval ->
                            let verdict =
                                match halfDataVerdict interval with
                                | Statistics.Verdict.Holds -> "HOLDS"
                                | Statistics.Verdict.Fails -> "does NOT hold"
                                | Statistics.Verdict.Inconclusive -> $"is INCONCLUSIVE (the interval straddles {bar})"

                            $"MSE ratio {ratioText interval} ({100.0 * Level:G3}%% t-interval over {r.Subsets.Length} subsets, each paired with the same subset at 100%%); the claim {verdict} (matches at ≤ {bar})."
                        | Error reason ->
                            let onMeans = if h50 <= limit then "would hold" else "would not hold"

                            $"MSE ratio of the means {h50 / ml100:F2}; {reason}, so the claim is not decided (on the means it {onMeans}; matches at ≤ {bar})."

                    $"- {h} with 50%% of the training data: test MSE {h50:G4} against {mlName} with 100%%: {ml100:G4} ({percentChange 0 h50 ml100}); {claim}{why}"

                    // At equal data (50%): the best pure-ML model at 50% (which may be another one than at 100%).
                    let ml50Index, ml50Name = ml |> Array.minBy (fun (j, _) -> (at r j 0.5).Value)
                    let best50 = (at r ml50Index 0.5).Value

                    $"- At equal data (50%%), {h} {ReportFormat.verdict h50 best50} the best pure-ML model, {ml50Name} ({h50:G4} vs {best50:G4}, {percentChange 0 h50 best50}; means)."

                    let matching = r.Fractions |> Array.filter (fun f -> (at r i f).Value <= limit)

                    if matching.Length = 0 then
                        let shares = r.Fractions |> Array.map percent |> String.concat ", "
                        $"- {h}'s mean is not within {tolerance} of {mlName} at 100%% at any share run ({shares})."
                    else
                        let shares = matching |> Array.map percent |> String.concat ", "
                        $"- Shares at which {h}'s mean is within {tolerance} of {mlName} at 100%%: {shares}."

                let rising =
                    indexed
                    |> Array.filter (fun (m, _) ->
                        r.TestMse[m]
                        |> Array.pairwise
                        |> Array.exists (fun (a, b) -> b > (1.0 + Tolerance) * a))
                    |> Array.map (fun (_, n) -> n)

                if rising.Length > 0 then
                    let names = String.concat ", " rising

                    $"- More data does not always help here: the mean test MSE rises by more than {tolerance} from one share to the next larger one for {names}. Each share is the mean over {subsetsText r} of the training data, with the case's network seeds, so the differences mix how much data with which data (and with training noise); single shares should not be over-read."
            ]

/// The data-efficiency cells of the claims table (`Claims`), one per hybrid: the ratio of its test MSE at 50% over
/// the best pure-ML model's at 100% (lowest mean over the subsets), paired by subset, with its interval and
/// verdict (`halfDataRatio`, `halfDataVerdict`; the same rule as `claimLines`); inconclusive where there is no
/// interval (one subset, or a run that blew up), with the ratio of the means; not tested without a pure-ML model or
/// without both shares.
let internal claimCells (r: Result) : Claims.Cell[] =
    let outcome = Claims.outcomes[1]
    let indexed = r.Models |> Array.indexed
    let ml = indexed |> Array.filter (fun (_, n) -> ModelTable.isPureMl n)
    let hybrids = indexed |> Array.filter (fun (_, n: string) -> n.StartsWith "hybrid")

    if ml.Length = 0 || hybrids.Length = 0 then
        [|
            Claims.notTested r.Case outcome "no pure-ML model (or no hybrid) in this case"
        |]
    elif (at r (fst ml[0]) 1.0).IsNone || (at r (fst ml[0]) 0.5).IsNone then
        [|
            Claims.notTested r.Case outcome "the 50% and 100% runs are not both in these settings"
        |]
    else
        let mlIndex, mlName = ml |> Array.minBy (fun (i, _) -> (at r i 1.0).Value)
        let bar = $"{1.0 + Tolerance:F2}"

        [|
            for i, h in hybrids ->
                let what = $"{h} at 50%% over {mlName} at 100%%"

                match halfDataRatio (replicatesAt r i 0.5) (replicatesAt r mlIndex 1.0) with
                | Ok interval ->
                    let verdict =
                        match halfDataVerdict interval with
                        | Statistics.Verdict.Holds -> Claims.Verdict.Holds
                        | Statistics.Verdict.Fails -> Claims.Verdict.Fails
                        | Statistics.Verdict.Inconclusive -> Claims.Verdict.Inconclusive

                    Claims.ofVerdict
                        r.Case
                        outcome
                        verdict
                        $"{what}: MSE ratio {ratioText interval}, {interval.Count} subsets (matches at ≤ {bar})"
                | Error reason ->
                    let ratio = (at r i 0.5).Value / (at r mlIndex 1.0).Value

                    Claims.ofVerdict
                        r.Case
                        outcome
                        Claims.Verdict.Inconclusive
                        $"{what}: MSE ratio of the means {ratio:F2} (matches at ≤ {bar}); {reason}"
        |]

/// Writes `<case>-data-efficiency.csv` (model, fraction, subset, test MSE; one line per replicate) into `dir` with
/// the library's CSV writer (a model name with a comma is quoted, e.g. "MLP C(t, dose)").
let writeCsv (dir: string) (r: Result) =
    Csv.write (Path.Combine(dir, $"{r.Case}-data-efficiency.csv")) [| "model"; "fraction"; "subset"; "test_mse" |] [
        for m, name in Array.indexed r.Models do
            for i, f in Array.indexed r.Fractions do
                for k, subset in Array.indexed r.Subsets do
                    let mse = r.Replicates.[m].[i].[k]
                    yield [| name; inv f; string subset; inv mse |]
    ]

/// The markdown table model × fraction (mean test MSE over the subsets, four significant digits).
let markdown (r: Result) : string list = [
    yield "| model | " + (r.Fractions |> Array.map percent |> String.concat " | ") + " |"
    yield "|---|" + String.replicate r.Fractions.Length "---:|"
    for m, name in Array.indexed r.Models ->
        $"| {name} | "
        + (r.TestMse[m] |> Array.map (fun v -> v.ToString "G4") |> String.concat " | ")
        + " |"
]

/// Writes the CSV and the chart (log₁₀ of the mean test MSE against the share of training data, one line per model
/// with a finite positive mean at every share; dashed line at 50%) into `dir`, and returns the case's markdown:
/// a `###` heading `title`, `note` (what the fraction selects in this case, which settings), the table, the
/// claim sentences and the chart.
let write (dir: string) (title: string) (note: string) (metric: string) (r: Result) : string =
    writeCsv dir r

    let series =
        r.Models
        |> Array.indexed
        |> Array.filter (fun (m, _) -> r.TestMse[m] |> Array.forall (fun v -> Double.IsFinite v && v > 0.0))
        |> Array.map (fun (m, name) -> name, Array.map2 (fun f v -> f, log10 v) r.Fractions r.TestMse[m])

    let chart =
        LineChart.save dir $"{r.Case}-data-efficiency" {
            Title = $"{title}: test MSE against the share of training data"
            XLabel = "share of the training data"
            YLabel = $"log10 test MSE ({metric})"
            Observed = [||]
            Series = series
            Split = 0.5
        }

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    add $"### {title}"
    add ""
    let seeds = r.Subsets |> Array.map string |> String.concat ", "

    add
        $"{note} Test MSE ({metric}) per share of the training data, the mean over {subsetsText r} (subset seeds {seeds}; every replicate in `{r.Case}-data-efficiency.csv`); the case ran in {Array.sum r.Seconds:F0} s over {r.Fractions.Length} shares."

    add ""
    markdown r |> List.iter add
    add ""
    add "What the numbers say (generated from the table and the replicates in the CSV):"
    add ""
    claimLines r |> List.iter add
    add ""
    add chart
    add ""
    md.ToString()
