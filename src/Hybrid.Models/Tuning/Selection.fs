/// The choice among a model's trials: the setting with the lowest validation MSE.
module Hybrid.Models.Tuning.Selection

open System
open Hybrid

/// One trial's setting and score.
type TrialScore = {
    /// The trial (from 0).
    Trial: int
    /// Its hyper-parameters, (name, value).
    Values: (string * float)[]
    /// The validation MSE of the run with them (NaN or ∞ for a run that failed or diverged).
    ValidationMse: float
}

/// The trial with the lowest validation MSE (the first of equal ones); a trial whose MSE is NaN or infinite is
/// never chosen. `model` names the model in the error raised when no trial has a finite MSE.
let best (model: string) (trials: TrialScore seq) : TrialScore =
    let finite =
        trials |> Seq.filter (fun t -> Double.IsFinite t.ValidationMse) |> Array.ofSeq

    if finite.Length = 0 then
        raise (
            HybridException
                $"Tuning {model}: no trial has a finite validation MSE; widen or move its search space, or check the run."
        )

    finite |> Array.minBy (fun t -> t.ValidationMse, t.Trial)
