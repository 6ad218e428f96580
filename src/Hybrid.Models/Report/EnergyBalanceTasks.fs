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
let baseSettings (key: string) : EnergyBalance.Settings =
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

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/energy-balance.csv`, `TuningFile.forKey`)
/// for "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : EnergyBalance.Settings = {
    baseSettings key with
        Tuned = Hybrid.Models.Tuning.TuningFile.forKey key Name
}

/// The task result of one part's result (its rows, one "simulated:<model>" series and "description:<model>" text per
/// model; an uncertainty part's output as `UncertaintyRows`).
let toResult (task: TaskSpec) (r: EnergyBalance.PartResult) : TaskResult =
    CasePartTasks.toResult
        (fun (m: EnergyBalance.ModelResult) -> m.Name)
        (fun m -> m.Description)
        (fun m -> [| "simulated", m.Simulated |])
        task
        r

/// The part's result back from its task result (each model's numbers from its rows).
let ofResult (r: TaskResult) : EnergyBalance.Part * EnergyBalance.PartResult =
    CasePartTasks.ofResult
        (fun name description rows series ->
            let value split metric = ResultRow.value name split metric rows

            {
                EnergyBalance.ModelResult.Name = name
                Description = description
                TestMse = value "test" "mse"
                TrainMse = value "train" "mse"
                TrainSeconds = value "" "seconds"
                InferenceSeconds = value "" "inference_seconds"
                Epochs = int (value "" "epochs")
                SeedTestMse = [||]
                ValidationMse = CasePartTasks.validationOf rows
                PhysicsResidual = CasePartTasks.residualOf rows
                Parameters = ResultRow.parameters name rows
                Simulated = series "simulated"
            })
        r

/// The energy-balance section as tasks.
let experiment: Experiment = {
    Name = Name
    Title = "energy balance"
    Tasks =
        fun key ->
            EnergyBalance.parts (settings key)
            |> List.map (fun p -> TaskSpec.create Name key p.Model p.Seed)
    Run = fun _ t -> toResult t (EnergyBalance.runPart (settings t.Settings) { Model = t.Model; Seed = t.Seed })
    Assemble =
        fun dir key results ->
            let o = EnergyBalance.assemble (settings key) (results |> List.map ofResult)

            {
                Markdown = EnergyBalanceReport.write dir o
                Rows = Array.append o.Rows (UncertaintyRows.calibration Name o.Uncertainty)
            }
}
