/// The data-efficiency experiment as tasks: one task per case, share of its training data (`Share`) and training
/// subset (the task's `Seed` is the subset seed, `Settings.TrainSubset`; the case's own network seeds run inside),
/// so a sweep runs the replicates in parallel; each carries every model's test MSE as rows (their `Seed` the subset
/// seed too), and the section is assembled by `DataEfficiencyReport.assemble` with each task's wall time as the
/// run's time.
module internal Hybrid.Models.Report.DataEfficiencyTasks

open Hybrid
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The experiment's name in tasks.
[<Literal>]
let Name = "data-efficiency"

let private quickOf (key: string) =
    match key with
    | "quick" -> true
    | "full" -> false
    | other ->
        raise (
            HybridException
                $"The data-efficiency section runs under the settings quick or full, not '{other}'; plan it with --quick or without."
        )

/// The data-efficiency experiment as tasks.
let experiment: Experiment = {
    Name = Name
    Title = "data efficiency"
    Tasks =
        fun key ->
            DataEfficiencyReport.runs (quickOf key)
            |> List.map (fun (stem, share, subset) -> {
                TaskSpec.create Name key stem subset with
                    Share = Some share
            })
    Run =
        fun _ t ->
            let rows =
                DataEfficiencyReport.runOne (quickOf t.Settings) t.Model t.Share.Value t.Seed

            Experiment.result
                t
                (rows
                 |> Array.map (fun (model, mse) -> {
                     Case = t.Model
                     Model = model
                     Split = "test"
                     Metric = "mse"
                     Seed = t.Seed
                     Value = mse
                 })) [||] [||]
    Assemble =
        fun dir key results ->
            results
            |> List.map (fun r ->
                (r.Task.Model, r.Task.Share.Value, r.Task.Seed),
                (r.Rows |> Array.map (fun row -> row.Model, row.Value), r.Seconds))
            |> DataEfficiencyReport.assemble dir (quickOf key)
            |> fun markdown -> Experiment.fromTasks markdown results
}
