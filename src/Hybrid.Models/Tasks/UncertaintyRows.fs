/// An uncertainty task's output (`CaseUncertainty.Output`: one ensemble member's or one MC-dropout network's
/// predictions on every split, with the targets) as result rows, series and texts and back, exactly, so that the
/// case's `assemble` computes the same calibration rows from task results as a run in one process.
module Hybrid.Models.Tasks.UncertaintyRows

open Hybrid
open Hybrid.Models.Common

/// The rows of `o` for `case`, `model` (the part's model) and `seed`: "noise_variance" and "seconds" (split "").
let rows (case: string) (model: string) (seed: int) (o: CaseUncertainty.Output) : ResultRow[] =
    let row metric value = {
        Case = case
        Model = model
        Split = ""
        Metric = metric
        Seed = seed
        Value = value
    }

    [| row "noise_variance" o.NoiseVariance; row "seconds" o.Seconds |]

/// The series of `o`, per split i (in order): "uncertainty-target:i", "uncertainty-mean:i", "uncertainty-std:i".
let series (o: CaseUncertainty.Output) : (string * float[])[] = [|
    for i in 0 .. o.Splits.Length - 1 do
        $"uncertainty-target:{i}", o.Targets[i]
        $"uncertainty-mean:{i}", o.Mean[i]
        $"uncertainty-std:{i}", o.Std[i]
|]

/// The texts of `o`: each split's name as "uncertainty-split:i".
let texts (o: CaseUncertainty.Output) : (string * string)[] =
    o.Splits |> Array.mapi (fun i name -> $"uncertainty-split:{i}", name)

/// The output back from a task result written with `rows`, `series` and `texts`.
let ofResult (r: TaskResult) : CaseUncertainty.Output =
    let splits =
        r.Texts
        |> Array.choose (fun (k, v) ->
            if k.StartsWith "uncertainty-split:" then
                Some(int (k.Substring "uncertainty-split:".Length), v)
            else
                None)
        |> Array.sortBy fst
        |> Array.map snd

    let each kind =
        Array.init splits.Length (fun i -> TaskResult.series $"uncertainty-{kind}:{i}" r)

    let value metric =
        ResultRow.value r.Task.Model "" metric r.Rows

    {
        Splits = splits
        Targets = each "target"
        Mean = each "mean"
        Std = each "std"
        NoiseVariance = value "noise_variance"
        Seconds = value "seconds"
    }
