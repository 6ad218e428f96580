/// The predator–prey case as tasks: one task per part of the case (`PredatorPrey.parts`: the physics, each network
/// model per seed, the uncertainty experiment), its models carried as result rows, forecasts and descriptions, and
/// the section assembled from them by `PredatorPreyReport.write`.
module internal Hybrid.Models.Report.PredatorPreyTasks

open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The experiment's name in tasks.
[<Literal>]
let Name = "predator-prey"

/// The settings of a key: "quick", "full" (the report's), and "tiny" (two seeds of a few iterations each, for
/// tests).
let settings (key: string) : PredatorPrey.Settings =
    Experiment.pick key PredatorPrey.quick PredatorPrey.defaults {
        PredatorPrey.quick with
            PhysicsIterations = 40
            HybridIterations = 10
            DataIterations = 20
            SequenceIterations = 10
            PinnIterations = 20
            Seeds = 2
            Uncertainty = {
                PredatorPrey.quick.Uncertainty with
                    Iterations = 3
                    Passes = 4
            }
    }

let private modelRows (seed: int) (m: PredatorPrey.ModelResult) : ResultRow[] =
    let row split metric value = {
        Case = Name
        Model = m.Name
        Split = split
        Metric = metric
        Seed = seed
        Value = value
    }

    Array.append
        [|
            row "test" "mse" m.TestMse
            row "train" "mse" m.TrainMse
            row "" "seconds" m.TrainSeconds
            row "" "inference_seconds" m.InferenceSeconds
            row "" "epochs" (float m.Epochs)
        |]
        (m.Parameters
         |> Array.map (fun (n, v) -> row "" (ResultRow.ParameterPrefix + n) v))

/// The task result of one part's result (rows, one "forecast:<model>" series (hare, lynx per year, flattened) and
/// "description:<model>" text per model; the uncertainty part's methods as `UncertaintyRows`).
let toResult (task: TaskSpec) (r: PredatorPrey.PartResult) : TaskResult =
    Experiment.result
        task
        (Array.append
            (r.Models |> Array.collect (modelRows task.Seed))
            (UncertaintyRows.rows Name task.Seed r.Uncertainty))
        (Array.append
            (r.Models |> Array.map (fun m -> $"forecast:{m.Name}", Array.concat m.Forecast))
            (UncertaintyRows.series r.Uncertainty))
        (r.Models |> Array.map (fun m -> $"description:{m.Name}", m.Description))

/// The part's result back from its task result.
let ofResult (r: TaskResult) : PredatorPrey.Part * PredatorPrey.PartResult =
    let names =
        r.Texts
        |> Array.choose (fun (k, _) ->
            if k.StartsWith "description:" then
                Some(k.Substring "description:".Length)
            else
                None)

    let model name : PredatorPrey.ModelResult =
        let rows = r.Rows |> Array.filter (fun row -> row.Model = name)
        let value split metric = ResultRow.value name split metric rows

        {
            Name = name
            Description = TaskResult.text $"description:{name}" r
            TestMse = value "test" "mse"
            TrainMse = value "train" "mse"
            TrainSeconds = value "" "seconds"
            InferenceSeconds = value "" "inference_seconds"
            Epochs = int (value "" "epochs")
            SeedTestMse = [||]
            PhysicsResidual = nan
            Parameters = ResultRow.parameters name rows
            Forecast = TaskResult.series $"forecast:{name}" r |> Array.chunkBySize 2
        }

    let part: PredatorPrey.Part = {
        Model = r.Task.Model
        Seed = r.Task.Seed
    }

    part,
    {
        Models = names |> Array.map model
        Uncertainty =
            if r.Task.Model = "uncertainty" then
                UncertaintyRows.ofResult r
            else
                [||]
    }

/// The predator–prey section as tasks.
let experiment: Experiment = {
    Name = Name
    Title = "predator–prey"
    Tasks =
        fun key ->
            PredatorPrey.parts (settings key)
            |> List.map (fun p -> TaskSpec.create Name key p.Model p.Seed)
    Run = fun _ t -> toResult t (PredatorPrey.runPart (settings t.Settings) { Model = t.Model; Seed = t.Seed })
    Assemble =
        fun dir key results ->
            PredatorPreyReport.write dir (PredatorPrey.assemble (settings key) (results |> List.map ofResult))
}
