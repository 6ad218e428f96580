/// The share of a case's training data its models see (`Settings.TrainFraction` of every case): how many of the
/// n training items (years, subjects, samples, observation times) a fraction keeps. Each case decides which items
/// (the most recent years, the first subjects, …) and applies the count in the one place it selects its training
/// data, so every model of the case sees the same reduced data; test and out-of-domain data never change.
module internal Hybrid.Models.Common.TrainFraction

open System
open Hybrid

/// ⌈fraction · n⌉ items of `n`, and at least `least` (clamped to n). `fraction` must lie in (0, 1]; otherwise a
/// `HybridException` names the case and the value. A product that lands a rounding error above a whole number
/// (0.3 · 10 = 3.0000000000000004) counts as that number.
let count (case: string) (fraction: float) (least: int) (n: int) : int =
    if not (fraction > 0.0 && fraction <= 1.0) then
        raise (
            HybridException
                $"{case}: TrainFraction = {fraction} is outside (0, 1]; give the share of the training data to keep, e.g. 0.5 for half (1.0 keeps all)."
        )

    if n < 1 then
        raise (HybridException $"{case}: there are no training items to take a fraction of (n = {n}).")

    min n (max least (int (Math.Ceiling(fraction * float n - 1e-9))))
