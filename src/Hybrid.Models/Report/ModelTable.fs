/// The table every case shares: one row per model (test and train MSE, training time, parameters), as
/// markdown and as CSV files.
module Hybrid.Models.Report.ModelTable

open System
open System.IO
open System.Text
open Hybrid.Models.Report.ReportFormat

/// One model's row of a case's tables (every case's results project to it).
type ModelRow = {
    Name: string
    Description: string
    TestMse: float
    TrainMse: float
    TrainSeconds: float
    Parameters: (string * float)[]
}

/// Writes `<case>-metrics.csv` (test and train MSE, training time per model) and `<case>-parameters.csv`
/// (every named parameter of every model) into `dir`.
let writeCsv (dir: string) (case: string) (models: ModelRow[]) =
    let csv = StringBuilder()
    csv.AppendLine "model,test_mse,train_mse,train_seconds" |> ignore

    for m in models do
        csv.AppendLine $"{m.Name},{inv m.TestMse},{inv m.TrainMse},{inv m.TrainSeconds}"
        |> ignore

    File.WriteAllText(Path.Combine(dir, $"{case}-metrics.csv"), csv.ToString())

    let pars = StringBuilder()
    pars.AppendLine "model,parameter,value" |> ignore

    for m in models do
        for n, v in m.Parameters do
            pars.AppendLine $"{m.Name},{n},{inv v}" |> ignore

    File.WriteAllText(Path.Combine(dir, $"{case}-parameters.csv"), pars.ToString())

/// The markdown table of a case's models, errors with `digits` decimals.
let markdown (digits: int) (models: ModelRow[]) : string list = [
    "| model | test MSE | train MSE | training s | parameters | what |"
    "|---|---:|---:|---:|---|---|"
    for m in models do
        let ps =
            m.Parameters |> Array.map (fun (n, v) -> $"{n} {v:G4}") |> String.concat ", "

        let fixedPoint (v: float) = v.ToString($"F{digits}")

        let train =
            if Double.IsNaN m.TrainMse then
                "—"
            else
                fixedPoint m.TrainMse

        $"| {m.Name} | {fixedPoint m.TestMse} | {train} | {m.TrainSeconds:F1} | {ps} | {m.Description} |"
]
