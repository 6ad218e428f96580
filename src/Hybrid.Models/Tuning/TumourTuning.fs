/// The tumour case's hyper-parameter search (`hybrid tune --case tumour`): the learning rate (log-uniform) and the
/// width of every network model (the hybrid, the no-physics control, the LSTM, the transformer and the PINN), each
/// trial one run of the model from the first report seed (its noise draw and network seed) on the training
/// schedules' fit times, scored by its MSE against the noisy observations of the validation times
/// (`Tumour.validationTimes`; the test schedules take no part).
module Hybrid.Models.Tuning.TumourTuning

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Report
open Hybrid.Models.Tuning.SearchSpace

/// The search space of a model: the hybrid and the control learn at 3e-3 … 1e-1 (default 0.03) with widths 8, 16,
/// 32; the sequence models at 1e-3 … 5e-2 (default 1e-2) with widths 16, 32, 64; the PINN at 1e-3 … 5e-2 with widths
/// 16, 32, 64.
let space (model: string) : HyperParameter list =
    match model with
    | "LSTM"
    | "Transformer"
    | "PINN" -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 16.0; 32.0; 64.0 ]
      ]
    | _ -> [
        logUniform Tuned.LearningRate 3e-3 1e-1
        oneOf Tuned.Width [ 8.0; 16.0; 32.0 ]
      ]

/// The models tuned under a settings key with the first report seed, in the file's order.
let models (key: string) : TuningExperiment.TunedModel list =
    let s = TumourTasks.baseSettings key

    Tumour.tunedModels
    |> List.mapi (fun i model -> {
        TuningExperiment.TunedModel.Model = model
        Seed = List.head s.Seeds
        Space = space model
        DrawSeed = 1800 + i
    })

/// The validation MSE of one run of `model` from seed `seed` with `values`: its part of the case (`Tumour.runPart`)
/// under the base settings of `key`, no other model tuned (the PINN's part also trains the hybrid at its defaults for
/// its D, r).
let score (key: string) (model: string) (seed: int) (values: (string * float)[]) : float =
    let s = TumourTasks.baseSettings key

    if not (List.contains model Tumour.tunedModels) then
        raise (HybridException $"Tuning tumour: there is no model '{model}'.")

    if s.EarlyStopping.Share = 0.0 then
        raise (
            HybridException
                "Tuning tumour: the settings hold out no validation times (EarlyStopping.Share = 0); tuning needs them."
        )

    let result =
        Tumour.runPart
            {
                s with
                    Tuned = Tuned.withModel model values Tuned.none
            }
            { Model = model; Seed = seed }

    result.Models[0].ValidationMse

/// The search.
let search: TuningExperiment.Search = {
    Case = TumourTasks.Name
    Title = "tumour growth"
    Models = models
    Score = score
}
