/// A search space of hyper-parameters and the seeded random trials drawn from it (issue #15, item 3: the same
/// number of random trials for every model of a case).
module Hybrid.Models.Tuning.SearchSpace

open System
open Hybrid

/// Where a hyper-parameter's values come from.
type Range =
    /// Log-uniform between `low` and `high` (both > 0): log v uniform on [log low, log high].
    | LogUniform of low: float * high: float
    /// One of the listed values, each equally likely (e.g. widths 8, 16, 32).
    | OneOf of values: float[]

/// A named hyper-parameter and its range.
type HyperParameter = {
    /// The name (e.g. `Tuned.LearningRate`).
    Name: string
    /// Its range.
    Range: Range
}

/// A log-uniform hyper-parameter.
let logUniform (name: string) (low: float) (high: float) : HyperParameter =
    if not (low > 0.0 && high > low) then
        raise (HybridException $"The log-uniform range of '{name}' is [{low}, {high}]; give 0 < low < high.")

    {
        Name = name
        Range = LogUniform(low, high)
    }

/// A hyper-parameter drawn from a list of values.
let oneOf (name: string) (values: float list) : HyperParameter =
    if List.isEmpty values then
        raise (HybridException $"The list of values of '{name}' is empty; give at least one.")

    {
        Name = name
        Range = OneOf(Array.ofList values)
    }

/// One value of `p` drawn from `random`.
let sample (random: Random) (p: HyperParameter) : float =
    match p.Range with
    | LogUniform(low, high) -> exp (log low + random.NextDouble() * (log high - log low))
    | OneOf values -> values[random.Next values.Length]

/// The values of trial `trial` (from 0) of `space`: the (trial + 1)-th draw of every hyper-parameter, in the
/// space's order, from a generator seeded with `seed` (`System.Random(seed)`, the same sequence on every machine).
/// A trial's values do not depend on how many trials are run.
let draw (seed: int) (space: HyperParameter list) (trial: int) : (string * float)[] =
    if trial < 0 then
        raise (HybridException $"Trial {trial} is negative; trials count from 0.")

    let random = Random seed
    let mutable values = [||]

    for _ in 0..trial do
        values <- space |> List.map (fun p -> p.Name, sample random p) |> Array.ofList

    values
