/// The cases `hybrid tune` searches, as experiments of model × trial tasks (`TuningExperiment`).
module Hybrid.Models.Tuning.TuningTasks

open Hybrid
open Hybrid.Models.Tasks

/// The cases with a search, in report order.
let searches: TuningExperiment.Search list = [
    ClimateTuning.search
    Lorenz96Tuning.search
    PredatorPreyTuning.search
    PharmacokineticsTuning.search
    EnergyBalanceTuning.search
    TumourTuning.search
]

/// The search of `case` (e.g. "energy-balance"); an unknown name raises a `HybridException` that lists the known
/// ones.
let find (case: string) : TuningExperiment.Search =
    searches
    |> List.tryFind (fun s -> s.Case = case)
    |> Option.defaultWith (fun () ->
        let known = searches |> List.map (fun s -> s.Case) |> String.concat ", "
        raise (HybridException $"There is no tuning search for '{case}'; the cases with one are {known}."))

/// Every search as an experiment of `trials` trials per model (a sweep's runner finds them by name; a trial's
/// values do not depend on the number of trials).
let experiments (trials: int) : Experiment list =
    searches |> List.map (fun s -> TuningExperiment.experiment s trials)
