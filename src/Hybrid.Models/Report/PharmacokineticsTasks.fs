/// The pharmacokinetics case as tasks: one task per part of the case (`Pharmacokinetics.parts`: the physics, each
/// network model per seed, the ablation variants per seed with `Settings.Ablation`, the uncertainty experiment), its
/// models carried as result rows (the shared table's, "in-distribution" and "validation" MSEs), the shown subject's
/// curves ("curve:<model>") and descriptions, and the section assembled from them by `PharmacokineticsReport.write`;
/// the settings of a key as the report and `hybrid tune` run them.
module internal Hybrid.Models.Report.PharmacokineticsTasks

open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The case's name in tasks and its tuning file's name.
[<Literal>]
let Name = "pharmacokinetics"

/// The settings of a key: "quick", "full" (the report's), and "tiny" (one fold, two seeds of a few iterations each,
/// the ablation and a two-member uncertainty experiment of 3 iterations, for tests; seconds, not minutes).
let baseSettings (key: string) : Pharmacokinetics.Settings =
    Experiment.pick key Pharmacokinetics.quick Pharmacokinetics.defaults {
        Pharmacokinetics.quick with
            PhysicsIterations = 20
            HybridIterations = 10
            DataIterations = 20
            SequenceIterations = 10
            PinnIterations = 20
            Seeds = 2
            Ablation = true
            Uncertainty = {
                Pharmacokinetics.quick.Uncertainty with
                    Iterations = 3
                    Passes = 4
            }
    }

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/pharmacokinetics.csv`,
/// `TuningFile.forKey`) for "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does
/// not tune.
let settings (key: string) : Pharmacokinetics.Settings = {
    baseSettings key with
        Tuned = Hybrid.Models.Tuning.TuningFile.forKey key Name
}

/// The split of the in-distribution MSE rows (held-out subjects' samples up to the cutoff).
[<Literal>]
let InDistribution = PharmacokineticsReport.InDistribution

/// The task result of one part's result (its rows, with each model's in-distribution and validation MSEs as
/// "in-distribution" and "validation" "mse" rows; one "curve:<model>" series and "description:<model>" text per model;
/// the uncertainty part's calibration curves).
let toResult (task: TaskSpec) (r: Pharmacokinetics.PartResult) : TaskResult =
    CasePartTasks.toResult
        (fun (m: Pharmacokinetics.ModelResult) -> m.Name)
        (fun m -> m.Description)
        (fun m -> [| "curve", m.Curve |])
        task
        r

/// The part's result back from its task result (each model's numbers from its rows).
let ofResult (r: TaskResult) : Pharmacokinetics.Part * Pharmacokinetics.PartResult =
    CasePartTasks.ofResult
        (fun name description rows series ->
            let value split metric = ResultRow.value name split metric rows

            {
                Pharmacokinetics.ModelResult.Name = name
                Description = description
                TestMse = value "test" "mse"
                InDistributionMse = value InDistribution "mse"
                TrainMse = value "train" "mse"
                ValidationMse = CasePartTasks.validationOf rows
                TrainSeconds = value "" "seconds"
                InferenceSeconds = value "" "inference_seconds"
                Epochs = int (value "" "epochs")
                SeedTestMse = [||]
                PhysicsResidual = CasePartTasks.residualOf rows
                Parameters = ResultRow.parameters name rows
                Curve = series "curve"
            })
        r

/// The pharmacokinetics section as tasks.
let experiment: Experiment = {
    Name = Name
    Title = "pharmacokinetics"
    Tasks =
        fun key ->
            Pharmacokinetics.parts (settings key)
            |> List.map (fun p -> TaskSpec.create Name key p.Model p.Seed)
    Run = fun _ t -> toResult t (Pharmacokinetics.runPart (settings t.Settings) { Model = t.Model; Seed = t.Seed })
    Assemble =
        fun dir key results ->
            let o = Pharmacokinetics.assemble (settings key) (results |> List.map ofResult)

            {
                Markdown = PharmacokineticsReport.write dir o
                Rows = Array.append o.Rows (UncertaintyRows.calibration Name o.Uncertainty)
            }
}
