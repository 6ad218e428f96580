/// What the cases run in parts (`CasePart`) share as tasks: a part's models as result rows (the shared table's
/// fields, parameters as "param:<name>"), named series ("<kind>:<model>") and a "description:<model>" text per
/// model, and an uncertainty part's output as `UncertaintyRows`; and the way back.
module internal Hybrid.Models.Report.CasePartTasks

open Hybrid.Models.Common
open Hybrid.Models.Common.ModelTable
open Hybrid.Models.Tasks

let private modelRows (case: string) (seed: int) (m: ModelRow) : ResultRow[] =
    let row split metric value = {
        Case = case
        Model = m.Name
        Split = split
        Metric = metric
        Seed = seed
        Value = value
    }

    Array.append
        [|
            row "test" "mse" m.TestMse
            row "train" "mse" m.TrainMse
            row "" "seconds" m.TrainSeconds
            row "" "inference_seconds" m.InferenceSeconds
            row "" "epochs" (float m.Epochs)
            row "" "physics_residual" m.PhysicsResidual
        |]
        (m.Parameters
         |> Array.map (fun (n, v) -> row "" (ResultRow.ParameterPrefix + n) v))

/// The task result of a part of `case`: each model's rows (by `row`, its shared-table fields), its series (by
/// `series`, each (kind, values) named "<kind>:<model>") and its description; an uncertainty part's output.
let toResult
    (case: string)
    (row: 'M -> ModelRow)
    (series: 'M -> (string * float[])[])
    (task: TaskSpec)
    (r: CasePart.PartResult<'M>)
    : TaskResult =
    let rows = r.Models |> Array.map row

    Experiment.result
        task
        (Array.append
            (rows |> Array.collect (modelRows case task.Seed))
            (r.Uncertainty |> Array.collect (UncertaintyRows.rows case task.Model task.Seed)))
        (Array.append
            (Array.map2
                (fun (m: ModelRow) x -> series x |> Array.map (fun (kind, values) -> $"{kind}:{m.Name}", values))
                rows
                r.Models
             |> Array.concat)
            (r.Uncertainty |> Array.collect UncertaintyRows.series))
        (Array.append
            (rows |> Array.map (fun m -> $"description:{m.Name}", m.Description))
            (r.Uncertainty |> Array.collect UncertaintyRows.texts))

/// A part and its result back from a task result: each model rebuilt by `model` from its shared-table row
/// (`SeedTestMse` empty; `PhysicsResidual` as the part computed it, NaN where the case's `assemble` fills it or
/// the result predates the row) and its series (`series kind` is its "<kind>:<model>" series).
let ofResult (model: ModelRow -> (string -> float[]) -> 'M) (r: TaskResult) : CasePart.Part * CasePart.PartResult<'M> =
    let names =
        r.Texts
        |> Array.choose (fun (k, _) ->
            if k.StartsWith "description:" then
                Some(k.Substring "description:".Length)
            else
                None)

    let rebuild name =
        let rows = r.Rows |> Array.filter (fun row -> row.Model = name)
        let value split metric = ResultRow.value name split metric rows

        model
            {
                Name = name
                Description = TaskResult.text $"description:{name}" r
                TestMse = value "test" "mse"
                TrainMse = value "train" "mse"
                TrainSeconds = value "" "seconds"
                InferenceSeconds = value "" "inference_seconds"
                Epochs = int (value "" "epochs")
                SeedTestMse = [||]
                PhysicsResidual =
                    rows
                    |> Array.tryFind (fun row -> row.Split = "" && row.Metric = "physics_residual")
                    |> Option.map (fun row -> row.Value)
                    |> Option.defaultValue nan
                Parameters = ResultRow.parameters name rows
            }
            (fun kind -> TaskResult.series $"{kind}:{name}" r)

    {
        Model = r.Task.Model
        Seed = r.Task.Seed
    },
    {
        Models = names |> Array.map rebuild
        Uncertainty =
            match r.Task.Model with
            | CasePart.UncertaintyOf _ -> [| UncertaintyRows.ofResult r |]
            | _ -> [||]
    }

/// Each model's validation MSE (`validation` of the model) as a "validation" "mse" row of `case` at `seed`: the
/// cases with early stopping add them to a part's result rows.
let validationRows (case: string) (seed: int) (validation: 'M -> string * float) (models: 'M[]) : ResultRow[] =
    models
    |> Array.map (fun m ->
        let name, value = validation m

        {
            Case = case
            Model = name
            Split = "validation"
            Metric = "mse"
            Seed = seed
            Value = value
        })

/// The validation MSE of model `name` in a task result (NaN in a result written without one).
let validationOf (r: TaskResult) (name: string) : float =
    r.Rows
    |> Array.tryFind (fun row -> row.Model = name && row.Split = "validation" && row.Metric = "mse")
    |> Option.map (fun row -> row.Value)
    |> Option.defaultValue nan
