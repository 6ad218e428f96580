/// The uncertainty part of each case's report section (issue #6, experiment e; issue #15, item 6): a CSV of
/// coverage per level, a reliability chart (observed against nominal coverage, the diagonal as a series), a table
/// with the ECE's bootstrap interval, and generated sentences saying whether each compared model's deep ensemble
/// (the hybrid's and the pure-ML models') and MC dropout are over- or under-confident, before and after
/// recalibration on the validation split, which calibrates best, and which could not be recalibrated.
module internal Hybrid.Models.Report.UncertaintyReport

open System.IO
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat

/// Mean signed coverage gap (observed − nominal) within which a method counts as "about right".
let Tolerance = 0.05

/// Writes `<case>-calibration.csv`: model, method, variance scale (1 as trained), split (quoted where they contain
/// commas), level, expected and observed coverage.
let writeCsv (dir: string) (case: string) (results: CaseUncertainty.MethodResult[]) =
    Csv.write (Path.Combine(dir, $"{case}-calibration.csv")) [|
        "model"
        "method"
        "variance_scale"
        "split"
        "level"
        "expected"
        "observed"
    |] [
        for r in results do
            for l, c in Array.zip r.Calibration.Levels r.Calibration.Coverage ->
                [| r.Model; r.Method; inv r.VarianceScale; r.Split; inv l; inv l; inv c |]
    ]

/// How a row names itself: model, method and split, with the variance scale where it was recalibrated.
let private label (r: CaseUncertainty.MethodResult) =
    if r.VarianceScale = 1.0 then
        $"{r.Model}, {r.Method}, {r.Split}"
    else
        $"{r.Model}, {r.Method} recalibrated (σ × {r.VarianceScale:F2}), {r.Split}"

/// The reliability chart (SVG + HTML) of every method and split; returns its markdown.
let chart (dir: string) (case: string) (results: CaseUncertainty.MethodResult[]) : string =
    let series =
        results
        |> Array.map (fun r ->
            label r,
            Array.append [| 0.0, 0.0 |] (Array.zip r.Calibration.Levels r.Calibration.Coverage)
            |> fun a -> Array.append a [| 1.0, 1.0 |])

    LineChart.save dir $"{case}-reliability" {
        Title = "reliability: observed coverage of central intervals against their nominal level"
        XLabel = "nominal level"
        YLabel = "observed coverage"
        Observed = [||]
        Series = Array.append [| "ideal (diagonal)", [| 0.0, 0.0; 1.0, 1.0 |] |] series
        Split = 0.0
    }

/// The markdown table of the results (`digits` after the point for NLL, CRPS, RMSE and spreads).
let table (digits: int) (results: CaseUncertainty.MethodResult[]) : string list = [
    "| model | method | σ scale | split | values | ECE | ECE bias-corrected [95% CI] | 50% coverage | 90% coverage | NLL | CRPS | RMSE | predictive σ | noise σ | model σ | 90% coverage, model σ alone |"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for r in results do
        let f (x: float) =
            x.ToString($"F{digits}", System.Globalization.CultureInfo.InvariantCulture)

        let e = r.EceInterval

        $"| {r.Model} | {r.Method} | {r.VarianceScale:F2} | {r.Split} | {r.Points} | {r.Calibration.Ece:F3} | {e.Estimate:F3} [{e.Lower:F3}, {e.Upper:F3}] | {r.Coverage50:F2} | {r.Coverage90:F2} | {r.Nll:F2} | {f r.Crps} | {f r.Rmse} | {f r.MeanStd} | {f r.NoiseStd} | {f r.ModelStd} | {r.ModelCoverage90:F2} |"
]

/// Generated sentences: each method's verdict per split, and which method has the lower ECE and CRPS.
let sentences (results: CaseUncertainty.MethodResult[]) : string list = [
    for r in results do
        let verdict = CaseUncertainty.confidence Tolerance r.Calibration

        $"- {label r}: {verdict} (its 50%% intervals cover {100.0 * r.Coverage50:F0}%% and its 90%% intervals {100.0 * r.Coverage90:F0}%% of {r.Points} values; ECE {r.Calibration.Ece:F3}, bias-corrected {r.EceInterval.Estimate:F3}, 95%% CI {r.EceInterval.Lower:F3}–{r.EceInterval.Upper:F3})."

        if r.VarianceScale = 1.0 then
            let share = 100.0 * r.ModelStd * r.ModelStd / (r.MeanStd * r.MeanStd)

            let noiseVsError = if r.NoiseStd > r.Rmse then "above" else "below"

            $"  The noise σ estimated from the training residuals ({r.NoiseStd:G3}) is {noiseVsError} the RMSE of the predictive mean on this split ({r.Rmse:G3})."

            $"  The model spread is {share:F0}%% of its predictive variance; alone (no noise added) its 90%% intervals would cover {100.0 * r.ModelCoverage90:F0}%%."

    // Per split and calibration state, the row with the lowest ECE and the one with the lowest CRPS, and whether the
    // ECE intervals of the best and the worst overlap (then the ranking is within resampling noise).
    for (split, scaled), here in results |> Array.groupBy (fun r -> r.Split, r.VarianceScale <> 1.0) do
        if here.Length >= 2 then
            let byEce = here |> Array.sortBy (fun r -> r.Calibration.Ece)
            let best, worst = byEce[0], byEce[byEce.Length - 1]
            let crps = here |> Array.minBy (fun r -> r.Crps)
            let state = if scaled then " after recalibration" else ""

            let overlap =
                if best.EceInterval.Upper >= worst.EceInterval.Lower then
                    "their ECE intervals overlap, so the ranking is within resampling noise"
                else
                    "their ECE intervals do not overlap"

            $"- {split}{state}: the lowest ECE is {best.Model}, {best.Method} ({best.Calibration.Ece:F3}), the highest {worst.Model}, {worst.Method} ({worst.Calibration.Ece:F3}): {overlap}; the lowest CRPS is {crps.Model}, {crps.Method} ({crps.Crps:G4})."

    // Models and methods without a validation split cannot be recalibrated: say so rather than leave the rows out.
    for (model, method), rows in results |> Array.groupBy (fun r -> r.Model, r.Method) do
        if not (rows |> Array.exists (fun r -> r.Split = CaseUncertainty.Validation)) then
            $"- {model}, {method}: no predictions on a validation split in these settings, so it is not recalibrated."

    let asTrained = results |> Array.filter (fun r -> r.VarianceScale = 1.0)

    let shares =
        asTrained
        |> Array.map (fun r -> 100.0 * r.ModelStd * r.ModelStd / (r.MeanStd * r.MeanStd))

    let largest = Array.max shares
    let bestAlone = asTrained |> Array.map (fun r -> r.ModelCoverage90) |> Array.max

    if largest < 50.0 then
        $"- In every row the model spread (ensemble or dropout) is at most {largest:F0}%% of the predictive variance: the intervals' width comes mostly from the residual noise. The model spread alone would be over-confident: its 90%% intervals cover at most {100.0 * bestAlone:F0}%% of the values."
    else
        $"- The model spread reaches {largest:F0}%% of the predictive variance in at least one row; alone, its 90%% intervals cover at most {100.0 * bestAlone:F0}%% of the values."

    let seconds =
        results
        |> Array.distinctBy (fun r -> r.Model, r.Method)
        |> Array.sumBy (fun r -> r.Seconds)

    $"- The experiment took {seconds:F0} s (training the extra networks and sampling them)."

    let points = results |> Array.map (fun r -> r.Points) |> Array.min

    if points < 50 then
        $"- With {points} test values, coverage moves in steps of {100.0 / float points:F0} percentage points; a difference of one or two steps is within sampling noise."
]

/// The whole subsection: files written into `dir`, markdown lines returned. `setup` describes what was run.
/// Nothing when the experiment was switched off (`CaseUncertainty.off`, no results).
let section (dir: string) (case: string) (setup: string) (digits: int) (results: CaseUncertainty.MethodResult[]) =
    if results.Length = 0 then
        []
    else

        writeCsv dir case results
        let md = chart dir case results

        [
            "### Uncertainty: deep ensembles and MC dropout"
            ""
            setup
            + $" Both predictive distributions are Gaussian; the aleatoric noise variance (the training residuals' mean square) is added to the model spread. Recalibrated rows (σ scale ≠ 1) multiply every predictive σ by the variance-scaling factor √(mean z²) of the split “{CaseUncertainty.Validation}” (data held out of every model's training, described in the setup), fitted there per model and method and applied to the other splits. The ECE (expected calibration error: the mean over levels of |coverage − level|) is biased upward, since sampling noise in the observed coverages only adds to it; the table gives the plug-in value and the bias-corrected one with its 95%% basic-bootstrap interval over the values (200 resamples: estimate 2·ECE − mean of the resampled ECEs, interval reflected likewise, clipped at 0). A method is called over-confident when its intervals cover less than their nominal level on average over 10%%–90%% (by more than {Tolerance:F2}), under-confident when they cover more. Coverage per level: `{case}-calibration.csv`."
            ""
            yield! table digits results
            ""
            "What the numbers say (generated from the table):"
            ""
            yield! sentences results
            ""
            md
            ""
        ]
