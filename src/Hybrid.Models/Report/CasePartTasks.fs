/// What the cases run in parts (`CasePart`) share as tasks: a part's result rows as its task result's rows (the
/// shared table's metrics, parameters as "param:<name>", the case's own splits, an uncertainty part's noise variance
/// and seconds), each model's named series ("<kind>:<model>") and a "description:<model>" text per model, and an
/// uncertainty part's output as `UncertaintyRows` series and texts; and the way back.
module internal Hybrid.Models.Report.CasePartTasks

open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The task result of a part: its rows as they are, each model's series (by `series`, each (kind, values) named
/// "<kind>:<model>") and description (`name` and `description` of the model); an uncertainty part's output.
let toResult
    (name: 'M -> string)
    (description: 'M -> string)
    (series: 'M -> (string * float[])[])
    (task: TaskSpec)
    (r: CasePart.PartResult<'M>)
    : TaskResult =
    Experiment.result
        task
        r.Rows
        (Array.append
            (r.Models
             |> Array.collect (fun m -> series m |> Array.map (fun (kind, values) -> $"{kind}:{name m}", values)))
            (r.Uncertainty |> Array.collect UncertaintyRows.series))
        (Array.append
            (r.Models |> Array.map (fun m -> $"description:{name m}", description m))
            (r.Uncertainty |> Array.collect UncertaintyRows.texts))

/// A part and its result back from a task result: its rows as they are, and each model rebuilt by `model` from its
/// name, description, its rows in the result (`ResultRow.value` finds a number) and its series (`series kind` is
/// its "<kind>:<model>" series).
let ofResult
    (model: string -> string -> ResultRow[] -> (string -> float[]) -> 'M)
    (r: TaskResult)
    : CasePart.Part * CasePart.PartResult<'M> =
    let names =
        r.Texts
        |> Array.choose (fun (k, _) ->
            if k.StartsWith "description:" then
                Some(k.Substring "description:".Length)
            else
                None)

    let rebuild name =
        model
            name
            (TaskResult.text $"description:{name}" r)
            (r.Rows |> Array.filter (fun row -> row.Model = name))
            (fun kind -> TaskResult.series $"{kind}:{name}" r)

    {
        Model = r.Task.Model
        Seed = r.Task.Seed
    },
    {
        Models = names |> Array.map rebuild
        Rows = r.Rows
        Uncertainty =
            match r.Task.Model with
            | CasePart.UncertaintyOf _ -> [| UncertaintyRows.ofResult r |]
            | _ -> [||]
    }

/// A model's physics residual among its rows (NaN where it has none: a result written before the row existed).
let residualOf (rows: ResultRow[]) : float =
    rows
    |> Array.tryFind (fun row -> row.Split = "" && row.Metric = "physics_residual")
    |> Option.map (fun row -> row.Value)
    |> Option.defaultValue nan

/// A model's validation MSE among its rows (NaN in a result written without one).
let validationOf (rows: ResultRow[]) : float =
    rows
    |> Array.tryFind (fun row -> row.Split = "validation" && row.Metric = "mse")
    |> Option.map (fun row -> row.Value)
    |> Option.defaultValue nan
