/// A case's uncertainty results (`CaseUncertainty.MethodResult`) as result rows and series and back, so an
/// uncertainty task's result file carries everything the section shows.
module Hybrid.Models.Tasks.UncertaintyRows

open Hybrid
open Hybrid.Training
open Hybrid.Models.Common

let private metrics: (string * (CaseUncertainty.MethodResult -> float)) list = [
    "ece", fun m -> m.Calibration.Ece
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

/// The rows of `results` (model = method, split = split; one row per metric) for `case` and `seed`.
let rows (case: string) (seed: int) (results: CaseUncertainty.MethodResult[]) : ResultRow[] = [|
    for m in results do
        for metric, value in metrics ->
            {
                Case = case
                Model = m.Method
                Split = m.Split
                Metric = metric
                Seed = seed
                Value = value m
            }
|]

/// The calibration curves of `results`: "levels:<method>|<split>" and "coverage:<method>|<split>".
let series (results: CaseUncertainty.MethodResult[]) : (string * float[])[] = [|
    for m in results do
        $"levels:{m.Method}|{m.Split}", m.Calibration.Levels
        $"coverage:{m.Method}|{m.Split}", m.Calibration.Coverage
|]

/// The method results back from a task result written with `rows` and `series`, in their order.
let ofResult (r: TaskResult) : CaseUncertainty.MethodResult[] =
    let pairs =
        r.Rows
        |> Array.filter (fun row -> row.Metric = "ece")
        |> Array.map (fun row -> row.Model, row.Split)

    [|
        for method, split in pairs ->
            let value metric =
                r.Rows
                |> Array.filter (fun row -> row.Model = method && row.Split = split)
                |> ResultRow.value method split metric

            {
                Method = method
                Split = split
                Calibration = {
                    Levels = TaskResult.series $"levels:{method}|{split}" r
                    Coverage = TaskResult.series $"coverage:{method}|{split}" r
                    Ece = value "ece"
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
