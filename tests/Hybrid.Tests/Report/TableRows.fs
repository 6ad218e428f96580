/// Result rows for the tests of the tables computed from them (`ModelTable`, `AblationTable`, `Claims`).
module internal Hybrid.Tests.Report.TableRows

open Hybrid.Models.Common

/// A row of case "c" for model `name`.
let private row name split metric seed value : ResultRow = {
    Case = "c"
    Model = name
    Split = split
    Metric = metric
    Seed = seed
    Value = value
}

/// A model's rows: its test MSE at each seed (seeds 1, 2, … in order), then at its first seed its train MSE,
/// training and inference time, epochs, physics residual (NaN) and `parameters`.
let modelRows
    (name: string)
    (seeds: float[])
    (trainMse: float)
    (trainSeconds: float)
    (inferenceSeconds: float)
    (epochs: int)
    (parameters: (string * float)[])
    : ResultRow[] =
    Array.concat [
        seeds |> Array.mapi (fun i v -> row name "test" "mse" (i + 1) v)
        [|
            row name "train" "mse" 1 trainMse
            row name "" "seconds" 1 trainSeconds
            row name "" "inference_seconds" 1 inferenceSeconds
            row name "" "epochs" 1 (float epochs)
            row name "" "physics_residual" 1 nan
        |]
        parameters
        |> Array.map (fun (n, v) -> row name "" (ResultRow.ParameterPrefix + n) 1 v)
    ]

/// The table of models (name, test MSE per seed), each with no train MSE, 0 s, 0 epochs and no parameters, described
/// as "<name> (test row)".
let table (models: (string * float[]) list) : ModelTable.Table =
    ModelTable.table [| for name, _ in models -> name, $"{name} (test row)" |] [|
        for name, seeds in models do
            yield! modelRows name seeds nan 0.0 0.0 0 [||]
    |]
