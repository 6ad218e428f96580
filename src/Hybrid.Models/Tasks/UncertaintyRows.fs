/// A case's uncertainty results (`CaseUncertainty.MethodResult`) as result rows and series and back, so an
/// uncertainty task's result file carries everything the section shows.
module Hybrid.Models.Tasks.UncertaintyRows

open Hybrid
open Hybrid.Training
open Hybrid.Models.Common

let private metrics: (string * (CaseUncertainty.MethodResult -> float)) list = [
    "ece", fun m -> m.Calibration.Ece
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

/// A result's key in the rows' model column: "model|method", with "|recalibrated" after variance scaling.
let private key (m: CaseUncertainty.MethodResult) =
    if m.VarianceScale = 1.0 then
        $"{m.Model}|{m.Method}"
    else
        $"{m.Model}|{m.Method}|recalibrated"

/// The rows of `results` (model = "model|method[|recalibrated]", split = split; one row per metric) for `case`
/// and `seed`.
let rows (case: string) (seed: int) (results: CaseUncertainty.MethodResult[]) : ResultRow[] = [|
    for m in results do
        for metric, value in metrics ->
            {
                Case = case
                Model = key m
                Split = m.Split
                Metric = metric
                Seed = seed
                Value = value m
            }
|]

/// The calibration curves of `results`: "levels:<key>|<split>" and "coverage:<key>|<split>" (the key as in `rows`).
let series (results: CaseUncertainty.MethodResult[]) : (string * float[])[] = [|
    for m in results do
        $"levels:{key m}|{m.Split}", m.Calibration.Levels
        $"coverage:{key m}|{m.Split}", m.Calibration.Coverage
|]

/// The method results back from a task result written with `rows` and `series`, in their order.
let ofResult (r: TaskResult) : CaseUncertainty.MethodResult[] =
    let pairs =
        r.Rows
        |> Array.filter (fun row -> row.Metric = "ece")
        |> Array.map (fun row -> row.Model, row.Split)

    [|
        for key, split in pairs ->
            let value metric =
                r.Rows
                |> Array.filter (fun row -> row.Model = key && row.Split = split)
                |> ResultRow.value key split metric

            let parts = key.Split '|'

            {
                Model = parts[0]
                Method = parts[1]
                VarianceScale = value "variance_scale"
                Split = split
                Calibration = {
                    Levels = TaskResult.series $"levels:{key}|{split}" r
                    Coverage = TaskResult.series $"coverage:{key}|{split}" r
                    Ece = value "ece"
                }
                EceInterval = {
                    Estimate = value "ece"
                    Lower = value "ece_lower"
                    Upper = value "ece_upper"
                    Level = 0.95
                    Count = int (value "points")
                }
                Coverage50 = value "coverage50"
                Coverage90 = value "coverage90"
                Nll = value "nll"
                Crps = value "crps"
                Rmse = value "rmse"
                MeanStd = value "mean_std"
                NoiseStd = value "noise_std"
                ModelStd = value "model_std"
                ModelCoverage90 = value "model_coverage90"
                Points = int (value "points")
                Seconds = value "seconds"
            }
    |]
