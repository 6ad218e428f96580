/// A synthetic experiment for testing sweeps without training anything: models "a" and "b" (and, under the
/// "failing" settings, "flaky") over seeds 1–3, each task's numbers a known function of its model and seed.
/// Settings keys: "tiny" (instant tasks), "slow" (each task sleeps `SlowMilliseconds`, for kill-and-resume tests),
/// "failing" (adds "flaky", which exits the process with code 3 while the environment variable
/// `HYBRID_SYNTHETIC_FAIL` is set, and succeeds otherwise), "many" (a and b over seeds 1–60: 120 tasks of
/// `ManyMilliseconds` each, for trying a back end at scale).
module Hybrid.Models.Tasks.Synthetic

open System
open System.IO
open System.Threading
open Hybrid
open Hybrid.Models.Common

/// The experiment's name.
[<Literal>]
let Name = "synthetic"

/// How long a task sleeps under the "slow" settings (ms).
[<Literal>]
let SlowMilliseconds = 1500

/// How long a task sleeps under the "many" settings (ms).
[<Literal>]
let ManyMilliseconds = 2000

/// The environment variable that makes the "flaky" task fail.
[<Literal>]
let FailVariable = "HYBRID_SYNTHETIC_FAIL"

/// A task's test MSE: 10·(index of the model, a = 1, b = 2, flaky = 3) + seed / 4.
let mse (model: string) (seed: int) : float =
    let index =
        match model with
        | "a" -> 1.0
        | "b" -> 2.0
        | _ -> 3.0

    10.0 * index + float seed / 4.0

let private models (settings: string) =
    match settings with
    | "tiny"
    | "slow"
    | "many" -> [ "a"; "b" ]
    | "failing" -> [ "a"; "b"; "flaky" ]
    | other -> raise (HybridException $"Synthetic: unknown settings key '{other}'; use tiny, slow, failing or many.")

let private tasks (settings: string) = [
    for model in models settings do
        for seed in 1 .. (if settings = "many" then 60 else 3) -> TaskSpec.create Name settings model seed
]

let private run (_: string) (task: TaskSpec) : TaskResult =
    if task.Settings = "slow" then
        Thread.Sleep SlowMilliseconds

    if task.Settings = "many" then
        Thread.Sleep ManyMilliseconds

    if
        task.Model = "flaky"
        && not (String.IsNullOrEmpty(Environment.GetEnvironmentVariable FailVariable))
    then
        eprintfn $"synthetic: the flaky task fails as asked ({FailVariable} is set)"
        exit 3

    let row split metric value = {
        Case = Name
        Model = task.Model
        Split = split
        Metric = metric
        Seed = task.Seed
        Value = value
    }

    Experiment.result
        task
        [|
            row "test" "mse" (mse task.Model task.Seed)
            row "" "param:k" (float task.Seed * 0.1)
        |] [| $"curve:{task.Model}", [| float task.Seed; nan; 1.0 / 3.0 |] |] [|
            $"description:{task.Model}", $"synthetic model {task.Model}"
        |]

/// The section: one line per model, "| model | mean test MSE | seeds |", means with six decimals, in plan order.
let private assemble (dir: string) (_: string) (results: TaskResult list) : string =
    let rows = results |> List.collect (fun r -> List.ofArray r.Rows)

    let lines = [
        "## Synthetic"
        ""
        "| model | mean test MSE | seeds |"
        "|---|---:|---:|"
        for model in rows |> List.map (fun r -> r.Model) |> List.distinct do
            let mses =
                rows
                |> List.filter (fun r -> r.Model = model && r.Metric = "mse")
                |> List.map (fun r -> r.Value)

            let mean =
                (List.average mses).ToString("F6", Globalization.CultureInfo.InvariantCulture)

            $"| {model} | {mean} | {mses.Length} |"
    ]

    File.WriteAllLines(
        Path.Combine(dir, "synthetic.csv"),
        [
            "model,seed,test_mse"
            for r in rows do
                if r.Metric = "mse" then
                    $"""{r.Model},{r.Seed},{r.Value.ToString("R", Globalization.CultureInfo.InvariantCulture)}"""
        ]
    )

    String.concat "\n" lines + "\n\n"

/// The synthetic experiment.
let experiment: Experiment = {
    Name = Name
    Title = "synthetic"
    Tasks = tasks
    Run = run
    Assemble = fun dir key results -> Experiment.fromTasks (assemble dir key results) results
}
