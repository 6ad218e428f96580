/// The report as tasks: its sections in report order, each an `Experiment` (the climate flagship, Lorenz-96,
/// predator–prey, pharmacokinetics, energy balance and tumour split into one task per model and seed, data efficiency into one per
/// case, share and training subset), and the synthetic experiment for tests.
module Hybrid.Models.Report.ReportTasks

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Tasks

/// The report's sections as experiments, in report order (the flagship first).
let report: Experiment list = [
    ClimateTasks.experiment
    Lorenz96Tasks.experiment
    PredatorPreyTasks.experiment
    PharmacokineticsTasks.experiment
    EnergyBalanceTasks.experiment
    TumourTasks.experiment
    DataEfficiencyTasks.experiment
]

/// Every experiment a sweep can run: the report's, the hyper-parameter searches of `hybrid tune`
/// ("tune-<case>") and the synthetic one.
let all: Experiment list =
    report
    @ Hybrid.Models.Tuning.TuningTasks.experiments Hybrid.Models.Tuning.TuningExperiment.DefaultTrials
    @ [ Synthetic.experiment ]

/// The experiment named `name`; an unknown name raises a `HybridException` that lists the known ones.
let find (name: string) : Experiment =
    all
    |> List.tryFind (fun e -> e.Name = name)
    |> Option.defaultWith (fun () ->
        let known = all |> List.map (fun e -> e.Name) |> String.concat ", "
        raise (HybridException $"There is no experiment '{name}'; the known ones are {known}."))

/// The tasks of the experiments named in `only` (all of the report's where empty) under the settings key, in
/// report order.
let plan (key: string) (only: string list) : TaskSpec list =
    let chosen =
        match only with
        | [] -> report
        | names -> names |> List.map find

    chosen |> List.collect (fun e -> e.Tasks key)
