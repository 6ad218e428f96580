/// The share of a case's training data its models see (`Settings.TrainFraction` of every case): how many of the
/// n training items (years, subjects, samples, observation times) a fraction keeps, and which ones a subset seed
/// (`Settings.TrainSubset`) keeps: subset 0 is the case's own fixed block (the most recent years, the first
/// subjects, …), a seed ≥ 1 a seeded random contiguous block of time-ordered items (`blockStart`, so rollouts and
/// windows stay valid) or a seeded random subset of exchangeable ones (`indices`). Each case applies them in the
/// one place it selects its training data, so every model of the case sees the same reduced data; test and
/// out-of-domain data never change.
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

let private checkSubset (case: string) (subset: int) (count: int) (n: int) =
    if subset < 0 then
        raise (
            HybridException
                $"{case}: TrainSubset = {subset} is negative; give 0 for the case's fixed block or a subset seed ≥ 1."
        )

    if count < 1 || count > n then
        raise (HybridException $"{case}: cannot keep {count} of {n} training items; keep between 1 and {n}.")

/// The first index of the contiguous block of `count` of the `n` items (years, samples, observation times, in
/// time order) that subset `subset` keeps: `fixedStart`, the case's own block, for subset 0; for a subset seed ≥ 1
/// a start drawn uniformly from 0 … n − count by `System.Random(subset)`, the same for the same seed on every
/// machine. A block of all n items starts at 0 whatever the seed. A negative subset, or a count outside 1 … n,
/// raises a `HybridException` that names the case.
let blockStart (case: string) (subset: int) (fixedStart: int) (count: int) (n: int) : int =
    checkSubset case subset count n

    if subset = 0 then fixedStart
    elif count = n then 0
    else Random(subset).Next(n - count + 1)

/// The indices, ascending, of the `count` of the `n` exchangeable items (subjects) that subset `subset` keeps: the
/// first `count` for subset 0; for a subset seed ≥ 1 a uniformly random choice of `count` distinct indices (a
/// partial Fisher–Yates shuffle by `System.Random(subset)`, the same for the same seed); all n when count = n.
/// Errors as `blockStart`.
let indices (case: string) (subset: int) (count: int) (n: int) : int[] =
    checkSubset case subset count n

    if subset = 0 || count = n then
        Array.init count id
    else
        let random = Random subset
        let order = Array.init n id

        for i in 0 .. count - 1 do
            let j = i + random.Next(n - i)
            let t = order[i]
            order[i] <- order[j]
            order[j] <- t

        Array.sort order[0 .. count - 1]
