/// A case's hyper-parameter search as an `Experiment` (issue #15, item 3): one task per model × trial, each a run of
/// the model with the trial's setting on the training data without its validation block, scored by its validation
/// MSE; assembling picks each model's best trial (`Selection.best`) and writes `<case>.csv` (`TuningFile`). Every
/// model of a case gets the same number of trials (at most `MaxTrials`), drawn from its own seeded generator.
module Hybrid.Models.Tuning.TuningExperiment

open System
open System.Globalization
open Hybrid
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The most trials a model may have (the issue's budget: ≤ 8 per model).
[<Literal>]
let MaxTrials = 8

/// The trials of a search when none are named.
[<Literal>]
let DefaultTrials = 8

/// A model a case tunes.
type TunedModel = {
    /// The model's part name in the case (e.g. "hybrid", "LSTM").
    Model: string
    /// The network seed its trials run with (the model's first seed in the report).
    Seed: int
    /// Its search space.
    Space: SearchSpace.HyperParameter list
    /// The seed of the generator its trials are drawn from.
    DrawSeed: int
}

/// A case's search.
type Search = {
    /// The case's name in tasks and the tuning file's name, e.g. "energy-balance".
    Case: string
    /// The case's title in progress lines.
    Title: string
    /// The models it tunes under a settings key, in the file's order.
    Models: string -> TunedModel list
    /// The validation MSE of a run of `model` (second argument) with network seed (third) and these
    /// hyper-parameters (fourth) under the settings key (first), trained on the training data without its
    /// validation block, with early stopping on it.
    Score: string -> string -> int -> (string * float)[] -> float
}

/// The experiment's name in tasks: "tune-<case>".
let name (case: string) = "tune-" + case

/// Refuses a trial count outside 1 … `MaxTrials`.
let checkTrials (trials: int) =
    if trials < 1 || trials > MaxTrials then
        raise (
            HybridException
                $"{trials} trials per model: give 1 to {MaxTrials} (the same number for every model of a case)."
        )

/// The tasks of `search` under `key` with `trials` trials per model: each model's trials 0 … trials − 1, models in
/// order.
let tasks (search: Search) (key: string) (trials: int) : TaskSpec list =
    checkTrials trials

    [
        for m in search.Models key do
            for t in 0 .. trials - 1 ->
                {
                    TaskSpec.create (name search.Case) key m.Model m.Seed with
                        Trial = Some t
                }
    ]

/// The model `model` of `search` under `key`.
let private modelOf (search: Search) (key: string) (model: string) =
    search.Models key
    |> List.tryFind (fun m -> m.Model = model)
    |> Option.defaultWith (fun () ->
        let known = search.Models key |> List.map (fun m -> m.Model) |> String.concat ", "
        raise (HybridException $"Tuning {search.Case}: there is no model '{model}'; the models are {known}."))

/// The hyper-parameters of trial `trial` of `model` (`SearchSpace.draw` from the model's draw seed).
let trialValues (search: Search) (key: string) (model: string) (trial: int) : (string * float)[] =
    let m = modelOf search key model
    SearchSpace.draw m.DrawSeed m.Space trial

/// Runs one trial task: its values, its score; rows "param:<name>" with the values and ("validation", "mse"). A
/// trial whose run the library refuses or stops (a `HybridException`: the rollout blew up under a too-large
/// learning rate, a stability check) scores +∞, so `Selection.best` passes it over, and its result carries the
/// reason as the text "failed"; the search goes on.
let run (search: Search) (task: TaskSpec) : TaskResult =
    let trial =
        task.Trial
        |> Option.defaultWith (fun () ->
            raise (HybridException $"The task {TaskSpec.describe task} has no trial; tuning tasks name one."))

    let values = trialValues search task.Settings task.Model trial

    let mse, failure =
        try
            search.Score task.Settings task.Model task.Seed values, None
        with :? HybridException as e ->
            eprintfn $"tune: {TaskSpec.describe task} failed, scored +∞: {e.Message}"
            infinity, Some e.Message

    let row split metric value = {
        Case = search.Case
        Model = task.Model
        Split = split
        Metric = metric
        Seed = task.Seed
        Value = value
    }

    Experiment.result
        task
        (Array.append
            [| row "validation" "mse" mse |]
            (values |> Array.map (fun (n, v) -> row "" (ResultRow.ParameterPrefix + n) v)))
        [||]
        (failure |> Option.map (fun m -> "failed", m) |> Option.toArray)

/// A trial's score back from its task result.
let scoreOf (r: TaskResult) : Selection.TrialScore = {
    Trial = r.Task.Trial |> Option.defaultValue 0
    Values = ResultRow.parameters r.Task.Model r.Rows
    ValidationMse = ResultRow.value r.Task.Model "validation" "mse" r.Rows
}

/// Each model's best trial among `results` (models in the order they first appear).
let choose (results: TaskResult list) : TuningFile.Chosen list =
    results
    |> List.groupBy (fun r -> r.Task.Model)
    |> List.map (fun (model, rs) ->
        let best = Selection.best model (rs |> List.map scoreOf)

        {
            TuningFile.Chosen.Model = model
            Values = best.Values
            ValidationMse = best.ValidationMse
            Trials = rs.Length
        })

let private g (v: float) =
    v.ToString("g4", CultureInfo.InvariantCulture)

/// The markdown summary of the chosen settings.
let summary (search: Search) (path: string) (chosen: TuningFile.Chosen list) : string =
    let rows = [
        for c in chosen ->
            let values =
                c.Values |> Array.map (fun (n, v) -> $"{n} {g v}") |> String.concat ", "

            $"| {c.Model} | {values} | {g c.ValidationMse} | {c.Trials} |"
    ]

    let lines =
        [
            $"## Tuning: {search.Title}"
            ""
            $"Chosen by validation MSE, written to `{path}`."
            ""
            "| model | hyper-parameters | validation MSE | trials |"
            "|---|---|---|---|"
        ]
        @ rows
        @ [ "" ]

    String.concat "\n" lines

/// `search` as an experiment with `trials` trials per model: `Assemble` writes `<dir>/<case>.csv` and returns the
/// summary.
let experiment (search: Search) (trials: int) : Experiment = {
    Name = name search.Case
    Title = $"tuning {search.Title}"
    Tasks = fun key -> tasks search key trials
    Run = fun _ t -> run search t
    Assemble =
        fun dir key results ->
            let chosen = choose results
            let path = TuningFile.path dir search.Case

            let trialCounts =
                chosen
                |> List.map (fun c -> c.Trials)
                |> List.distinct
                |> List.map string
                |> String.concat "/"

            TuningFile.write
                path
                [
                    $"Chosen by `hybrid tune --case {search.Case}` under the \"{key}\" settings: {trialCounts} random trials per model, each scored by the validation MSE of one run (the last block of the training data held out, early stopping on it)."
                ]
                chosen

            Experiment.fromTasks (summary search path chosen) results
}
