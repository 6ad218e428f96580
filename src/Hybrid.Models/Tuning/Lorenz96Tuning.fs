/// The two-scale Lorenz-96 case's hyper-parameter search (`hybrid tune --case lorenz96`): the learning rate
/// (log-uniform) and the width of every network part (the MLP and CNN closures and the no-physics control: their
/// a-priori rate and hidden width or channels; the LSTM and the transformer: their Adam rate and width; see
/// `Lorenz96.tunedFor`), each trial one run of the part from its first network seed on the training block without
/// its validation samples, scored by its forecast MSE of X from start states in the validation block
/// (`Lorenz96.validationBlock`; the test runs take no part).
module Hybrid.Models.Tuning.Lorenz96Tuning

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Report
open Hybrid.Models.Tuning.SearchSpace

/// The parts tuned, in the file's order.
let tunedParts = [ "MLP"; "CNN"; ModelTable.NoPhysics; "LSTM"; "Transformer" ]

/// The search space of a part: the closures and the control learn (a-priori) at 1e-3 … 5e-2 (default 1e-2) with
/// widths (channels) 8, 16, 32; the sequence models at 1e-3 … 5e-2 (default 1e-2) with widths 16, 32, 64 (multiples
/// of the transformer's 4 heads).
let space (model: string) : HyperParameter list =
    match model with
    | "LSTM"
    | "Transformer" -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 16.0; 32.0; 64.0 ]
      ]
    | _ -> [
        logUniform Tuned.LearningRate 1e-3 5e-2
        oneOf Tuned.Width [ 8.0; 16.0; 32.0 ]
      ]

/// The parts tuned under a settings key with their first network seed, in the file's order.
let models (key: string) : TuningExperiment.TunedModel list =
    let s = Lorenz96Tasks.baseSettings key

    tunedParts
    |> List.mapi (fun i model -> {
        TuningExperiment.TunedModel.Model = model
        Seed = List.head s.NetworkSeeds
        Space = space model
        DrawSeed = 1900 + i
    })

/// The validation MSE of one run of part `model` from network seed `seed` with `values` (the base settings of `key`,
/// no other part tuned): its first model's (a closure part's hybrid, not its a-priori-only ablation network).
let score (key: string) (model: string) (seed: int) (values: (string * float)[]) : float =
    if not (List.contains model tunedParts) then
        raise (HybridException $"Tuning Lorenz-96: there is no part '{model}'.")

    let s = {
        Lorenz96Tasks.baseSettings key with
            Tuned = Tuned.withModel model values Tuned.none
    }

    if s.EarlyStopping.Share = 0.0 then
        raise (
            HybridException
                "Tuning Lorenz-96: the settings hold out no validation samples (EarlyStopping.Share = 0); tuning needs them."
        )

    (Lorenz96.runPart s { Model = model; Seed = seed }).Models[0].ValidationMse

/// The search.
let search: TuningExperiment.Search = {
    Case = Lorenz96Tasks.Name
    Title = "two-scale Lorenz-96"
    Models = models
    Score = score
}
