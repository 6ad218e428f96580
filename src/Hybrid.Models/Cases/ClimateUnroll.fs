/// Training through unrolled forecasts for the climate case's pure-ML and fused models (issue #16): the same
/// objective, data, budget and early stopping as the a-posteriori hybrid (`Climate.hybrid`), for any model that
/// forecasts saved states from start states. Climate.hybrid's own loop does the same; this copy lets the models
/// that are not a single simulator (the ConvLSTM, the α-fusion) use it until the case shares one.
module Hybrid.Models.Cases.ClimateUnroll

open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common

/// The models' rollout over `intervals` saved intervals: Heun at `ModelDt`, saves every `Truth.SaveEvery` from 0, no
/// finite checks (as `Climate`'s models).
let rolloutOptions (s: Climate.Settings) (intervals: int) : RolloutOptions = {
    Rollout.defaults with
        Scheme = Scheme.Heun
        Dt = s.ModelDt
        SaveTimes = Array.init (intervals + 1) (fun i -> float i * s.Truth.SaveEvery)
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// The case's objective: the normalised error of a forecast against the truth over saves 1 … H (each field
/// [H + 1; B; n; n]), Σ over ω, q, P of MSE / `d.Scales`.
let windowLoss (d: Climate.Data) (forecast: torch.Tensor[]) (target: torch.Tensor[]) : torch.Tensor =
    Array.init forecast.Length (fun f ->
        let later (v: torch.Tensor) = v.narrow (0L, 1L, v.shape[0] - 1L)
        Loss.mse (later (forecast[f])) (later (target[f])) ./ d.Scales[f])
    |> Array.reduce (.+)

/// The root-mean-square change of ω, q and P over one saved interval in the training block (√`d.Scales`): the
/// pure-ML models' output scales, so their networks predict changes of order one.
let changeScales (d: Climate.Data) : float[] = d.Scales |> Array.map sqrt

/// The mean change of the accumulated precipitation P over one saved interval in the training block (the domain
/// mean): the pure-ML models' precipitation starts at this climatology.
let meanPrecipitationChange (s: Climate.Settings) (d: Climate.Data) : float =
    use _ = torch.no_grad ()
    let p = d.Truth.Main.Fields[2]
    let total = (p[int64 s.TrainIntervals] .- p[0L]).mean().ToDouble()
    total / float s.TrainIntervals

/// Trains `groups` by `Trainer.train` on the case's objective with the a-posteriori hybrid's budget: `s.Epochs`
/// epochs of one Adam step on `s.Batch` windows drawn from `d.TrainStarts`, the horizon growing by `s.Horizon`, the
/// gradient norm clipped at `s.ClipNorm`, seed `s.Seed`, and early stopping (`s.EarlyStopping`) on the validation
/// windows at the longest lead, the best epoch's parameters restored. `forecast u0 intervals` is the model's
/// forecast (each field [intervals + 1; B; n; n]); `modules` are switched to training mode for the steps. Returns
/// the trainer's result and the wall time of training in seconds.
let train
    (s: Climate.Settings)
    (d: Climate.Data)
    (groups: ParamGroup[])
    (modules: torch.nn.Module[])
    (forecast: torch.Tensor[] -> int -> torch.Tensor[])
    : TrainResult * float =
    let main = d.Truth.Main

    let check: EarlyStopping.Check = {
        Rule = s.EarlyStopping
        Score =
            fun () ->
                let lead = List.max s.Leads
                let u0 = Climate.startStates main d.ValidationStarts
                let target = Climate.truthWindows main d.ValidationStarts lead
                (windowLoss d (forecast u0 lead) target).ToDouble()
    }

    let watch = Stopwatch.StartNew()

    let options, validation =
        EarlyStopping.apply (Some check) s.Epochs {
            Trainer.defaults with
                Epochs = s.Epochs
                Seed = s.Seed
                Groups = groups
                ClipNorm = s.ClipNorm
                Horizon = s.Horizon
                Modules = modules
        }

    let result =
        Trainer.train options {
            Loss =
                fun context ->
                    let starts =
                        Array.init s.Batch (fun _ -> d.TrainStarts[context.Random.Next d.TrainStarts.Length])

                    let u0 = Climate.startStates main starts
                    let target = Climate.truthWindows main starts context.Horizon
                    let loss = windowLoss d (forecast u0 context.Horizon) target

                    {
                        Total = loss
                        Parts = [| "data", loss |]
                    }
            Validation = validation
        }

    result, watch.Elapsed.TotalSeconds
