/// The energy balance case's hyper-parameter search (`hybrid tune --case energy-balance`): the learning rate
/// (log-uniform) and the width of every network model (the two hybrids, the no-physics control, the autoregressive
/// MLP, the LSTM, the transformer and the PINN), each trial one run of the model from its first report seed on
/// 1900–1915 without the validation years, scored by its forecast MSE of the validation years.
module Hybrid.Models.Tuning.EnergyBalanceTuning

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Report
open Hybrid.Models.Tuning.SearchSpace

/// The search space of a model: the hybrid and the control learn at 1e-3 … 3e-2 (default 5e-3) with widths 8, 16,
/// 32; the sequence models at 1e-3 … 5e-2 (default 1e-2) with widths 8, 16, 32; the PINN at 1e-3 … 5e-2 with
/// widths 16, 32, 64.
let space (model: string) : HyperParameter list =
    match model with
    | "LSTM"
    | "Transformer" -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 8.0; 16.0; 32.0 ]
      ]
    | "PINN" -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 16.0; 32.0; 64.0 ]
      ]
    | _ -> [
        logUniform Tuned.LearningRate 1e-3 3e-2
        oneOf Tuned.Width [ 8.0; 16.0; 32.0 ]
      ]

/// The models tuned under a settings key with their first report seed (`EnergyBalance.parts`), in the file's order.
let models (key: string) : TuningExperiment.TunedModel list =
    let s = EnergyBalanceTasks.baseSettings key

    [
        "hybrid", s.Seed
        ModelTable.NoPhysics, s.Seed
        "LSTM", s.Seed + 100
        "Transformer", s.Seed + 100
        "PINN", s.Seed + 100
    ]
    |> List.mapi (fun i (model, seed) -> {
        TuningExperiment.TunedModel.Model = model
        Seed = seed
        Space = space model
        DrawSeed = 1600 + i
    })

/// The validation MSE of one run of `model` with `values` (the base settings of `key`, no other model tuned).
let score (key: string) (model: string) (seed: int) (values: (string * float)[]) : float =
    let s = {
        EnergyBalanceTasks.baseSettings key with
            Tuned = Tuned.withModel model values Tuned.none
    }

    let r = EnergyBalance.runPart s { Model = model; Seed = seed }
    let m = r.Models[0]

    if System.Double.IsNaN m.ValidationMse && s.EarlyStopping.Share = 0.0 then
        raise (
            HybridException
                "Tuning energy balance: the settings hold out no validation years (EarlyStopping.Share = 0); tuning needs them."
        )

    m.ValidationMse

/// The search.
let search: TuningExperiment.Search = {
    Case = EnergyBalanceTasks.Name
    Title = "energy balance"
    Models = models
    Score = score
}
