/// The energy-balance case as tasks: one task per part of the case (`EnergyBalance.parts`: the physics, each
/// network model per seed, the uncertainty experiment), its models carried as result rows, simulated curves and
/// descriptions, and the section assembled from them by `EnergyBalanceReport.write`.
module Hybrid.Models.Report.EnergyBalanceTasks

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The experiment's name in tasks.
[<Literal>]
let Name = "energy-balance"

/// The settings of a key: "quick", "full" (the report's), and "tiny" (two seeds of a few iterations each, for
/// the sweep tests; seconds, not minutes).
let settings (key: string) : EnergyBalance.Settings =
    Experiment.pick key EnergyBalance.quick EnergyBalance.defaults {
        EnergyBalance.quick with
            PhysicsIterations = 40
            HybridIterations = 10
            SequenceIterations = 10
            PinnIterations = 20
            Seeds = 2
            Uncertainty = {
                EnergyBalance.quick.Uncertainty with
                    Iterations = 3
                    Passes = 4
            }
    }

let private task (key: string) (p: EnergyBalance.Part) = TaskSpec.create Name key p.Model p.Seed

let private modelRows (seed: int) (m: EnergyBalance.ModelResult) : ResultRow[] =
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

/// The task result of one part's result (rows, one "simulated:<model>" series and "description:<model>" text per
/// model; the uncertainty part's methods as `UncertaintyRows`).
let toResult (task: TaskSpec) (r: EnergyBalance.PartResult) : TaskResult =
    Experiment.result
        task
        (Array.append
            (r.Models |> Array.collect (modelRows task.Seed))
            (UncertaintyRows.rows Name task.Seed r.Uncertainty))
        (Array.append
            (r.Models |> Array.map (fun m -> $"simulated:{m.Name}", m.Simulated))
            (UncertaintyRows.series r.Uncertainty))
        (r.Models |> Array.map (fun m -> $"description:{m.Name}", m.Description))

/// The part's result back from its task result.
let ofResult (r: TaskResult) : EnergyBalance.Part * EnergyBalance.PartResult =
    let names =
        r.Texts
        |> Array.choose (fun (k, _) ->
            if k.StartsWith "description:" then
                Some(k.Substring "description:".Length)
            else
                None)

    let model name : EnergyBalance.ModelResult =
        let rows = r.Rows |> Array.filter (fun row -> row.Model = name)

        let value split metric = ResultRow.value name split metric rows

        {
            Name = name
            Description = TaskResult.text $"description:{name}" r
            TestMse = value "test" "mse"
            TrainMse = value "train" "mse"
            TrainSeconds = value "" "seconds"
            InferenceSeconds = value "" "inference_seconds"
            SeedTestMse = [||]
            PhysicsResidual = nan
            Epochs = int (value "" "epochs")
            Parameters = ResultRow.parameters name rows
            Simulated = TaskResult.series $"simulated:{name}" r
        }

    let models = names |> Array.map model

    let part: EnergyBalance.Part = {
        Model = r.Task.Model
        Seed = r.Task.Seed
    }

    let uncertainty =
        if r.Task.Model = "uncertainty" then
            UncertaintyRows.ofResult r
        else
            [||]

    part,
    {
        Models = models
        Uncertainty = uncertainty
    }

/// The energy-balance section as tasks.
let experiment: Experiment = {
    Name = Name
    Title = "energy balance"
    Tasks = fun key -> EnergyBalance.parts (settings key) |> List.map (task key)
    Run = fun _ t -> toResult t (EnergyBalance.runPart (settings t.Settings) { Model = t.Model; Seed = t.Seed })
    Assemble =
        fun dir key results ->
            EnergyBalanceReport.write dir (EnergyBalance.assemble (settings key) (results |> List.map ofResult))
}
