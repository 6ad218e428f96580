/// The climate case's hyper-parameter search (`hybrid tune --case climate`): the learning rate of every trained
/// model of `ClimateModels.all` (log-uniform; the physics has nothing to train), each trial one build of the model
/// (`Climate.build`) from the first report seed on the training block, scored by its best validation error (the
/// normalised forecast error at the longest lead on the validation block that early stopping watches,
/// `Climate.validationLoss`); the test block and the out-of-distribution run take no part. Widths are not searched:
/// the pure-ML emulator keeps the hybrid's capacity, as the comparison requires.
module Hybrid.Models.Tuning.ClimateTuning

open System
open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Report
open Hybrid.Models.Tuning.SearchSpace

/// The models tuned: every model of `ClimateModels.all` but the fixed physics, in the report's order.
let tunedModels: string list =
    ClimateModels.all
    |> List.map (fun b -> b.Name)
    |> List.filter (fun name -> name <> Climate.physics.Name)

/// The search space of a model: the classic closure's coefficients learn at 1e-2 … 2e-1 (default 0.05,
/// `Climate.CoefficientRateName`); every network at 3e-4 … 3e-2 (default 1e-3).
let space (model: string) : HyperParameter list =
    if model = ClimateClassic.leith.Name then
        [ logUniform Climate.CoefficientRateName 1e-2 2e-1 ]
    else
        [ logUniform Tuned.LearningRate 3e-4 3e-2 ]

/// The models tuned under a settings key with the first report seed, in the file's order.
let models (key: string) : TuningExperiment.TunedModel list =
    let seed = List.head (ClimateTasks.seeds key)

    tunedModels
    |> List.mapi (fun i model -> {
        TuningExperiment.TunedModel.Model = model
        Seed = seed
        Space = space model
        DrawSeed = 2000 + i
    })

/// The best validation error of one build of `model` from seed `seed` with `values` under the base settings of
/// `key` (no other model tuned); +∞ where no epoch's validation error was finite.
let score (key: string) (model: string) (seed: int) (values: (string * float)[]) : float =
    if not (List.contains model tunedModels) then
        let known = String.concat "; " tunedModels
        raise (HybridException $"Tuning climate: there is no tuned model '{model}'; the models are {known}.")

    let s = {
        ClimateTasks.baseSettings key with
            Seed = seed
            Tuned = Tuned.withModel model values Tuned.none
    }

    Climate.withThreads s (fun () ->
        let m = Climate.build (ClimateTasks.builder model) s (Climate.data s)
        let finite = m.ValidationLosses |> Array.filter Double.IsFinite
        if finite.Length = 0 then infinity else Array.min finite)

/// The search.
let search: TuningExperiment.Search = {
    Case = ClimateTasks.Name
    Title = "climate GCM-lite"
    Models = models
    Score = score
}
