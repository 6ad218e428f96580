namespace Hybrid.Models.Common

/// One number of a case study or experiment in long format: which case, model, data split, metric and seed it
/// belongs to. The report's task results carry their numbers as these rows (a sweep's `results/<id>.json`), and a
/// section rebuilds its tables from them.
type ResultRow = {
    /// The case or experiment, e.g. "energy-balance".
    Case: string
    /// The model's table name, e.g. "hybrid (EBM + MLP)".
    Model: string
    /// The data split the number is measured on: "train", "test", an out-of-domain split's name, or "" where the
    /// metric belongs to no split (training time, epochs, fitted parameters).
    Split: string
    /// What is measured: "mse", "seconds", "inference_seconds", "epochs"; a fitted parameter as "param:<name>"
    /// (e.g. "param:ECS (K)").
    Metric: string
    /// The network seed the number comes from (0 for models with no random element).
    Seed: int
    /// The number (NaN where not computed).
    Value: float
}

/// Building and finding result rows.
module ResultRow =

    /// The prefix of a fitted parameter's metric name: "param:<name>".
    [<Literal>]
    let ParameterPrefix = "param:"

    /// The value of the row of `rows` with this model, split and metric (the first one where several seeds have
    /// it); a `HybridException` names the row when there is none.
    let value (model: string) (split: string) (metric: string) (rows: ResultRow seq) : float =
        rows
        |> Seq.tryFind (fun r -> r.Model = model && r.Split = split && r.Metric = metric)
        |> Option.map (fun r -> r.Value)
        |> Option.defaultWith (fun () ->
            raise (
                Hybrid.HybridException
                    $"No result row for model '{model}', split '{split}', metric '{metric}'; the task that computes it has not run or did not write it."
            ))

    /// A model's fitted parameters (rows "param:<name>", split ""), in row order, as (name, value) pairs.
    let parameters (model: string) (rows: ResultRow seq) : (string * float)[] =
        rows
        |> Seq.filter (fun r -> r.Model = model && r.Split = "" && r.Metric.StartsWith ParameterPrefix)
        |> Seq.map (fun r -> r.Metric.Substring ParameterPrefix.Length, r.Value)
        |> Seq.toArray

    /// The columns of a long-format results file (`<case>-results.csv` in the report): one `ResultRow` a line.
    let columns = [| "case"; "model"; "split"; "metric"; "seed"; "value" |]

    let private number (v: float) =
        v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)

    /// Writes `rows` to `path` in long format (`columns`; RFC 4180 through the library's CSV writer, numbers in
    /// round-trip form, NaN as "NaN").
    let writeCsv (path: string) (rows: ResultRow seq) : unit =
        Hybrid.Training.Csv.write path columns [
            for r in rows -> [| r.Case; r.Model; r.Split; r.Metric; string r.Seed; number r.Value |]
        ]

    /// The rows of a long-format results file (`writeCsv`); a `HybridException` names the file, line and cell of a
    /// missing column, a seed that is not an integer or a value that is not a number.
    let readCsv (path: string) : ResultRow[] =
        let table = Hybrid.Training.Csv.read path

        let column name =
            match Array.tryFindIndex ((=) name) table.Columns with
            | Some i -> i
            | None ->
                let expected = String.concat ", " columns

                raise (
                    Hybrid.HybridException $"{path} has no column '{name}'; a results file has the columns {expected}."
                )

        let case, model, split, metric, seed, value =
            column "case", column "model", column "split", column "metric", column "seed", column "value"

        let invariant = System.Globalization.CultureInfo.InvariantCulture

        table.Rows
        |> Array.mapi (fun i cells ->
            let bad what (cell: string) =
                Hybrid.HybridException $"{path}, line {table.Lines[i]}: '{cell}' is not {what}."

            {
                Case = cells[case]
                Model = cells[model]
                Split = cells[split]
                Metric = cells[metric]
                Seed =
                    match System.Int32.TryParse(cells[seed], System.Globalization.NumberStyles.Integer, invariant) with
                    | true, s -> s
                    | _ -> raise (bad "a whole-number seed" cells[seed])
                Value =
                    match System.Double.TryParse(cells[value], System.Globalization.NumberStyles.Float, invariant) with
                    | true, v -> v
                    | _ -> raise (bad "a number" cells[value])
            })
