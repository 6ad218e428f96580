/// The validation split and early-stopping rule every trained network of a case shares (issue #15, item 3): the
/// last block of the training data is held out as validation data, every network model trains on the rest, is
/// scored on the validation block every `Every` epochs, stops when it has not improved for the rule's patience and
/// gets back the parameters of its best validation epoch (`TrainOptions.RestoreBest`).
module Hybrid.Models.Common.EarlyStopping

open Hybrid.Training

/// The validation split and the early-stopping rule of a case.
type Rule = {
    /// Share of the training block held out at its end as validation data, in [0, 1); 0 keeps every training item
    /// for training and turns validation and early stopping off.
    Share: float
    /// Patience as a share of a model's epochs: it stops after ⌈Patience · epochs⌉ epochs (at least `Every`) without
    /// an improvement of its validation MSE. The same rule for every model of a case.
    Patience: float
    /// Validate every this many epochs (and after the last).
    Every: int
}

/// The rule of the report's runs: the last 20% of the training block for validation, patience a quarter of the
/// epochs, validated every 5 epochs.
let defaults = {
    Share = 0.2
    Patience = 0.25
    Every = 5
}

/// No validation: every training item is trained on, no early stopping.
let off = {
    Share = 0.0
    Patience = 0.0
    Every = 1
}

/// The number of items held out at the end of a training block of `n`: round(Share · n), at least 1 when the share
/// is positive, and 0 (no validation) when that would leave fewer than `minFit` items to train on.
let heldOut (rule: Rule) (n: int) (minFit: int) : int =
    if rule.Share < 0.0 || rule.Share >= 1.0 then
        raise (
            Hybrid.HybridException
                $"The validation share {rule.Share} must lie in [0, 1); use e.g. 0.2 (the last 20%% of the training data), or 0 for none."
        )

    if rule.Share = 0.0 then
        0
    else
        let v = max 1 (int (System.Math.Round(rule.Share * float n)))
        if n - v < minFit then 0 else v

/// The patience in epochs of a model trained for `epochs` epochs: ⌈Patience · epochs⌉, at least `Every`.
let patience (rule: Rule) (epochs: int) : int =
    max (max 1 rule.Every) (int (ceil (rule.Patience * float epochs)))

/// `o` with validation every `Every` epochs, the rule's patience for `epochs` epochs and the best epoch restored.
let options (rule: Rule) (epochs: int) (o: TrainOptions) : TrainOptions = {
    o with
        ValidateEvery = max 1 rule.Every
        Patience = patience rule epochs
        MinDelta = 0.0
        RestoreBest = true
}

/// A validation score with its rule: what a trainer needs to stop early.
type Check = {
    /// The validation MSE of the model as it is now (called without gradients, modules in eval mode).
    Score: unit -> float
    /// The rule (its `Every` and patience).
    Rule: Rule
}

/// The trainer's objective validation and options of an optional check: none leaves `o` as it is.
let apply (check: Check option) (epochs: int) (o: TrainOptions) : TrainOptions * (TrainContext -> float) option =
    match check with
    | Some c -> options c.Rule epochs o, Some(fun _ -> c.Score())
    | None -> o, None
