/// An uncertainty task's output (`CaseUncertainty.Output`: one ensemble member's or one MC-dropout network's
/// predictions on every split, with the targets) as result rows, series and texts and back, exactly, so that the
/// case's `assemble` computes the same calibration rows from task results as a run in one process.
module Hybrid.Models.Tasks.UncertaintyRows

open Hybrid
open Hybrid.Models.Common

/// The rows of `o` for `case`, `model` (the part's model) and `seed`: "noise_variance" and "seconds" (split "").
let rows (case: string) (model: string) (seed: int) (o: CaseUncertainty.Output) : ResultRow[] =
    let row metric value = {
        Case = case
        Model = model
        Split = ""
        Metric = metric
        Seed = seed
        Value = value
    }

    [| row "noise_variance" o.NoiseVariance; row "seconds" o.Seconds |]

/// The series of `o`, per split i (in order): "uncertainty-target:i", "uncertainty-mean:i", "uncertainty-std:i".
let series (o: CaseUncertainty.Output) : (string * float[])[] = [|
    for i in 0 .. o.Splits.Length - 1 do
        $"uncertainty-target:{i}", o.Targets[i]
        $"uncertainty-mean:{i}", o.Mean[i]
        $"uncertainty-std:{i}", o.Std[i]
|]

/// The texts of `o`: each split's name as "uncertainty-split:i".
let texts (o: CaseUncertainty.Output) : (string * string)[] =
    o.Splits |> Array.mapi (fun i name -> $"uncertainty-split:{i}", name)

/// The output back from a task result written with `rows`, `series` and `texts`.
let ofResult (r: TaskResult) : CaseUncertainty.Output =
    let splits =
        r.Texts
        |> Array.choose (fun (k, v) ->
            if k.StartsWith "uncertainty-split:" then
                Some(int (k.Substring "uncertainty-split:".Length), v)
            else
                None)
        |> Array.sortBy fst
        |> Array.map snd

    let each kind =
        Array.init splits.Length (fun i -> TaskResult.series $"uncertainty-{kind}:{i}" r)

    let value metric =
        ResultRow.value r.Task.Model "" metric r.Rows

    {
        Splits = splits
        Targets = each "target"
        Mean = each "mean"
        Std = each "std"
        NoiseVariance = value "noise_variance"
        Seconds = value "seconds"
    }

let private calibrationMetrics: (string * (CaseUncertainty.MethodResult -> float)) list = [
    "ece", fun m -> m.Calibration.Ece
    "ece_corrected", fun m -> m.EceInterval.Estimate
    "ece_lower", fun m -> m.EceInterval.Lower
    "ece_upper", fun m -> m.EceInterval.Upper
    "variance_scale", fun m -> m.VarianceScale
    "coverage50", fun m -> m.Coverage50
    "coverage90", fun m -> m.Coverage90
    "nll", fun m -> m.Nll
    "crps", fun m -> m.Crps
    "rmse", fun m -> m.Rmse
    "mean_std", fun m -> m.MeanStd
    "noise_std", fun m -> m.NoiseStd
    "model_std", fun m -> m.ModelStd
    "model_coverage90", fun m -> m.ModelCoverage90
    "points", fun m -> float m.Points
    "seconds", fun m -> m.Seconds
]

/// The calibration results of a case's uncertainty experiment (what its `assemble` computes from the member tasks'
/// outputs) as rows of `case`: model "model|method", with "|recalibrated" after variance scaling; split the
/// split's name; one row per metric (ECE, its bias-corrected value with its basic-bootstrap bounds, variance scale, coverage of the 50% and 90%
/// intervals, NLL, CRPS, RMSE, mean predictive σ, noise σ, model σ, the model spread's 90% coverage, points,
/// seconds); seed 0. They go to the section's `<case>-results.csv` with the tasks' rows.
let calibration (case: string) (results: CaseUncertainty.MethodResult[]) : ResultRow[] = [|
    for m in results do
        let model =
            if m.VarianceScale = 1.0 then
                $"{m.Model}|{m.Method}"
            else
                $"{m.Model}|{m.Method}|recalibrated"

        for metric, value in calibrationMetrics ->
            {
                Case = case
                Model = model
                Split = m.Split
                Metric = metric
                Seed = 0
                Value = value m
            }
|]
