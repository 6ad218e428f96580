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
let baseSettings (key: string) : PredatorPrey.Settings =
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

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/predator-prey.csv`, `TuningFile.forKey`)
/// for "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : PredatorPrey.Settings = {
    baseSettings key with
        Tuned = Hybrid.Models.Tuning.TuningFile.forKey key Name
}

/// The task result of one part's result (its rows, one "forecast:<model>" series and "description:<model>" text per
/// model; an uncertainty part's output as `UncertaintyRows`).
let toResult (task: TaskSpec) (r: PredatorPrey.PartResult) : TaskResult =
    CasePartTasks.toResult
        (fun (m: PredatorPrey.ModelResult) -> m.Name)
        (fun m -> m.Description)
        (fun m -> [| "forecast", Array.concat m.Forecast |])
        task
        r

/// The part's result back from its task result (each model's numbers from its rows).
let ofResult (r: TaskResult) : PredatorPrey.Part * PredatorPrey.PartResult =
    CasePartTasks.ofResult
        (fun name description rows series ->
            let value split metric = ResultRow.value name split metric rows

            {
                PredatorPrey.ModelResult.Name = name
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
                Forecast = series "forecast" |> Array.chunkBySize 2
            })
        r

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
            let o = PredatorPrey.assemble (settings key) (results |> List.map ofResult)

            {
                Markdown = PredatorPreyReport.write dir o
                Rows = Array.append o.Rows (UncertaintyRows.calibration Name o.Uncertainty)
            }
}
