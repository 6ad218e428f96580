/// Experiment (b) of issue #6, data efficiency: a case study run with a growing share of its training data
/// (`Settings.TrainFraction`, the same reduced data for every model of the case), every model's test MSE per
/// share, and generated sentences on the proposal's claim that the hybrid matches pure machine learning with
/// half the data (hybrid at 50% within `Tolerance` of the best pure-ML model at 100%). One runner and one writer
/// for every case; `Report/CaseReport.fs` says which cases run and with which settings.
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

/// The test MSE of every model of a case at every fraction.
type Result = {
    /// File-name stem of the case, e.g. "predator-prey" (the CSV is `<Case>-data-efficiency.csv`).
    Case: string
    /// Fractions run, ascending.
    Fractions: float[]
    /// Model names, in the case's order.
    Models: string[]
    /// Test MSE [model][fraction].
    TestMse: float[][]
    /// Wall time of the case's run at each fraction (s).
    Seconds: float[]
}

/// Checks that `fractions` are shares of the training data, distinct and ascending (a `HybridException` otherwise).
let checkFractions (case: string) (fractions: float[]) : unit =
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

/// The result from one run per fraction (every model's (name, test MSE), the run's wall time in seconds), in the
/// order of `fractions`: the same models at every fraction, or a `HybridException`.
let ofRuns (case: string) (fractions: float[]) (runs: ((string * float)[] * float)[]) : Result =
    let models = runs[0] |> fst |> Array.map fst

    runs
    |> Array.iteri (fun i (rows, _) ->
        if Array.map fst rows <> models then
            raise (
                HybridException
                    $"DataEfficiency.run '{case}': the models at fraction {fractions[i]} differ from those at {fractions[0]}; a case must return the same rows at every fraction."
            ))

    {
        Case = case
        Fractions = fractions
        Models = models
        TestMse =
            models
            |> Array.mapi (fun m _ -> runs |> Array.map (fun (rows, _) -> snd rows[m]))
        Seconds = runs |> Array.map snd
    }

/// Runs `runCase f` (every model's (name, test MSE) with `TrainFraction = f`) for each of `fractions`.
let run (case: string) (fractions: float[]) (runCase: float -> (string * float)[]) : Result =
    checkFractions case fractions

    fractions
    |> Array.map (fun f ->
        let watch = Stopwatch.StartNew()
        let rows = runCase f
        rows, watch.Elapsed.TotalSeconds)
    |> ofRuns case fractions

/// A fraction as a percentage, "10%", "25%", "50%", "100%".
let percent (f: float) = $"{100.0 * f:G4}%%"

/// The test MSE of `model` at fraction `f`, if both were run.
let private at (r: Result) (model: int) (f: float) =
    Array.tryFindIndex (fun x -> abs (x - f) < 1e-12) r.Fractions
    |> Option.map (fun i -> r.TestMse[model][i])

/// The generated sentences on the claim "the hybrid matches pure ML with half the data", one or more per hybrid
/// (rows named "hybrid…"), as markdown bullets: its MSE at 50% against the best pure-ML model's (`ModelTable.isPureMl`)
/// at 100%, whether it is within `Tolerance`, and where not, why (the hybrid does not match even with all the
/// data, or it loses more than the tolerance when the data is halved); the smallest fraction at which it matches.
let claimLines (r: Result) : string list =
    let indexed = r.Models |> Array.indexed
    let ml = indexed |> Array.filter (fun (_, n) -> ModelTable.isPureMl n)
    let hybrids = indexed |> Array.filter (fun (_, n: string) -> n.StartsWith "hybrid")
    let tolerance = $"{100.0 * Tolerance:G3}%%"

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
                $"- Best pure-ML model with all the training data: {mlName} ({ml100:G4}); with half of it its MSE is {ml50:G4} ({percentChange 0 ml50 ml100})."
                for i, h in hybrids do
                    let h50 = (at r i 0.5).Value
                    let h100 = (at r i 1.0).Value
                    let holds = h50 <= limit

                    let why =
                        if holds then
                            ""
                        elif h100 > limit then
                            $" Even with all the training data it does not match {mlName} ({h100:G4} vs {ml100:G4}, {percentChange 0 h100 ml100}), so the claim fails on accuracy, not on data efficiency."
                        else
                            $" With all the data it does match ({h100:G4}); halving the data raises its MSE by {percentChange 0 h50 h100}, more than the tolerance allows."

                    let verdict = if holds then "HOLDS" else "does NOT hold"

                    $"- {h} with 50%% of the training data: test MSE {h50:G4} against {mlName} with 100%%: {ml100:G4} ({percentChange 0 h50 ml100}); the claim {verdict} (tolerance {tolerance}).{why}"

                    // At equal data: the best pure-ML model at 50% (which may be another one than at 100%).
                    let ml50Index, ml50Name = ml |> Array.minBy (fun (j, _) -> (at r j 0.5).Value)
                    let best50 = (at r ml50Index 0.5).Value

                    $"- At equal data (50%%), {h} {ReportFormat.verdict h50 best50} the best pure-ML model, {ml50Name} ({h50:G4} vs {best50:G4}, {percentChange 0 h50 best50})."

                    let matching = r.Fractions |> Array.filter (fun f -> (at r i f).Value <= limit)

                    if matching.Length = 0 then
                        let shares = r.Fractions |> Array.map percent |> String.concat ", "
                        $"- {h} is not within {tolerance} of {mlName} at 100%% at any share run ({shares})."
                    else
                        let shares = matching |> Array.map percent |> String.concat ", "
                        $"- Shares at which {h} is within {tolerance} of {mlName} at 100%%: {shares}."

                let rising =
                    indexed
                    |> Array.filter (fun (m, _) ->
                        r.TestMse[m]
                        |> Array.pairwise
                        |> Array.exists (fun (a, b) -> b > (1.0 + Tolerance) * a))
                    |> Array.map (fun (_, n) -> n)

                if rising.Length > 0 then
                    let names = String.concat ", " rising

                    $"- More data does not always help here: the test MSE rises by more than {tolerance} from one share to the next larger one for {names}. Each share is one subset of the training data (the most recent years, the first subjects or samples, …), so the differences mix how much data with which data (and with training noise); single shares should not be over-read."
            ]

/// The data-efficiency cells of the claims table (`Claims`), one per hybrid: its test MSE at 50% over the best
/// pure-ML model's at 100%, with the same tolerance as `claimLines`. The runs give one number per model and share
/// (the mean over seeds), so there is no interval and every cell is inconclusive, with the ratio as its detail; not
/// tested without a pure-ML model or without both shares.
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
        let ml100 = (at r mlIndex 1.0).Value

        [|
            for i, h in hybrids ->
                let h50 = (at r i 0.5).Value

                Claims.ofVerdict
                    r.Case
                    outcome
                    Claims.Verdict.Inconclusive
                    $"{h} at 50%% over {mlName} at 100%%: MSE ratio {h50 / ml100:F2} (matches at ≤ {1.0 + Tolerance:F2}); seed means only, no interval"
        |]

/// Writes `<case>-data-efficiency.csv` (model, fraction, test MSE) into `dir` with the library's CSV writer (a model
/// name with a comma is quoted, e.g. "MLP C(t, dose)").
let writeCsv (dir: string) (r: Result) =
    Csv.write (Path.Combine(dir, $"{r.Case}-data-efficiency.csv")) [| "model"; "fraction"; "test_mse" |] [
        for m, name in Array.indexed r.Models do
            for i, f in Array.indexed r.Fractions -> [| name; inv f; inv (r.TestMse[m][i]) |]
    ]

/// The markdown table model × fraction (test MSE, four significant digits).
let markdown (r: Result) : string list = [
    yield "| model | " + (r.Fractions |> Array.map percent |> String.concat " | ") + " |"
    yield "|---|" + String.replicate r.Fractions.Length "---:|"
    for m, name in Array.indexed r.Models ->
        $"| {name} | "
        + (r.TestMse[m] |> Array.map (fun v -> v.ToString "G4") |> String.concat " | ")
        + " |"
]

/// Writes the CSV and the chart (log₁₀ of the test MSE against the share of training data, one line per model
/// with a finite positive MSE at every share; dashed line at 50%) into `dir`, and returns the case's markdown:
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

    add
        $"{note} Test MSE ({metric}) per share of the training data; the case ran in {Array.sum r.Seconds:F0} s over {r.Fractions.Length} shares."

    add ""
    markdown r |> List.iter add
    add ""
    add "What the numbers say (generated from the table):"
    add ""
    claimLines r |> List.iter add
    add ""
    add chart
    add ""
    md.ToString()
