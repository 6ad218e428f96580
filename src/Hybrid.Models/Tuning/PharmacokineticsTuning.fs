/// The pharmacokinetics case's hyper-parameter search (`hybrid tune --case pharmacokinetics`): the learning rate
/// (log-uniform) and the width of every network model (the hybrid, whose rate and width the ablation variants and
/// fused models share, the MLP, the LSTM, the transformer and the PINN), each trial one run of the model from its
/// first report seed on every evaluated fold's fit subjects, scored by its MSE on the validation subjects' samples
/// up to the cutoff (`Pharmacokinetics.validationSplit`; the held-out subjects and every sample after the cutoff
/// take no part).
module Hybrid.Models.Tuning.PharmacokineticsTuning

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Report
open Hybrid.Models.Tuning.SearchSpace

/// The search space of a model: the hybrid learns at 1e-3 … 3e-2 (default 5e-3) with widths 4, 8, 16; the MLP and
/// the sequence models at 1e-3 … 5e-2 (default 1e-2) with widths 8, 16, 32; the PINN at 1e-3 … 5e-2 with widths 16,
/// 32, 64.
let space (model: string) : HyperParameter list =
    match model with
    | "hybrid" -> [
        logUniform Tuned.LearningRate 1e-3 3e-2
        oneOf Tuned.Width [ 4.0; 8.0; 16.0 ]
      ]
    | "PINN" -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 16.0; 32.0; 64.0 ]
      ]
    | _ -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 8.0; 16.0; 32.0 ]
      ]

/// The models tuned under a settings key with their first report seed (`Pharmacokinetics.tunedModels`), in the
/// file's order.
let models (key: string) : TuningExperiment.TunedModel list =
    let s = PharmacokineticsTasks.baseSettings key

    Pharmacokinetics.tunedModels
    |> List.mapi (fun i (model, offset) -> {
        TuningExperiment.TunedModel.Model = model
        Seed = s.Seed + offset
        Space = space model
        DrawSeed = 1700 + i
    })

/// The validation MSE of one run of `model` from network seed `seed` with `values`: its part of the case
/// (`Pharmacokinetics.runPart`) under the base settings of `key`, no other model run or tuned.
let score (key: string) (model: string) (seed: int) (values: (string * float)[]) : float =
    let s = PharmacokineticsTasks.baseSettings key

    if not (Pharmacokinetics.tunedModels |> List.exists (fst >> (=) model)) then
        raise (HybridException $"Tuning pharmacokinetics: there is no model '{model}'.")

    if s.EarlyStopping.Share = 0.0 then
        raise (
            HybridException
                "Tuning pharmacokinetics: the settings hold out no validation subjects (EarlyStopping.Share = 0); tuning needs them."
        )

    let result =
        Pharmacokinetics.runPart
            {
                s with
                    Tuned = Tuned.withModel model values Tuned.none
            }
            { Model = model; Seed = seed }

    result.Models[0].ValidationMse

/// The search.
let search: TuningExperiment.Search = {
    Case = PharmacokineticsTasks.Name
    Title = "pharmacokinetics"
    Models = models
    Score = score
}
