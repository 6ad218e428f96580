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
/// `TuningFile.load`) for "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does
/// not tune.
let settings (key: string) : Pharmacokinetics.Settings =
    let s = baseSettings key

    if key = "tiny" then
        s
    else
        {
            s with
                Tuned = Hybrid.Models.Tuning.TuningFile.load Name
        }

/// The split of the in-distribution MSE rows (held-out subjects' samples up to the cutoff).
[<Literal>]
let InDistribution = "in-distribution"

/// The task result of one part's result (rows, one "curve:<model>" series and "description:<model>" text per model;
/// each model's in-distribution and validation MSEs as "in-distribution" and "validation" "mse" rows; the uncertainty
/// part's methods as `UncertaintyRows`).
let toResult (task: TaskSpec) (r: Pharmacokinetics.PartResult) : TaskResult =
    let result =
        CasePartTasks.toResult
            Name
            ModelTable.rowOf
            (fun (m: Pharmacokinetics.ModelResult) -> [| "curve", m.Curve |])
            task
            r

    let inDistribution =
        r.Models
        |> Array.map (fun m -> {
            ResultRow.Case = Name
            Model = m.Name
            Split = InDistribution
            Metric = "mse"
            Seed = task.Seed
            Value = m.InDistributionMse
        })

    {
        result with
            Rows =
                Array.concat [
                    result.Rows
                    inDistribution
                    CasePartTasks.validationRows
                        Name
                        task.Seed
                        (fun (m: Pharmacokinetics.ModelResult) -> m.Name, m.ValidationMse)
                        r.Models
                ]
    }

/// The part's result back from its task result (each model's in-distribution and validation MSEs from its rows).
let ofResult (r: TaskResult) : Pharmacokinetics.Part * Pharmacokinetics.PartResult =
    CasePartTasks.ofResult
        (fun (row: ModelTable.ModelRow) series -> {
            Pharmacokinetics.ModelResult.Name = row.Name
            Description = row.Description
            TestMse = row.TestMse
            InDistributionMse = ResultRow.value row.Name InDistribution "mse" r.Rows
            TrainMse = row.TrainMse
            ValidationMse = CasePartTasks.validationOf r row.Name
            TrainSeconds = row.TrainSeconds
            InferenceSeconds = row.InferenceSeconds
            Epochs = row.Epochs
            SeedTestMse = row.SeedTestMse
            PhysicsResidual = row.PhysicsResidual
            Parameters = row.Parameters
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
            PharmacokineticsReport.write dir (Pharmacokinetics.assemble (settings key) (results |> List.map ofResult))
}
