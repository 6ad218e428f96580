/// The file of a case's chosen hyper-parameters, `tuning/<case>.csv` (RFC 4180, written by the library's CSV
/// writer): one row per model and hyper-parameter with the chosen value, the validation MSE of the trial that chose
/// it and the number of trials. `hybrid tune` writes it; the report reads it (each case's `…Tasks.settings`,
/// e.g. `PredatorPreyTasks.settings`) and never tunes again.
module Hybrid.Models.Tuning.TuningFile

open System
open System.Globalization
open System.IO
open Hybrid
open Hybrid.Training

/// A model's chosen setting.
type Chosen = {
    /// The model.
    Model: string
    /// The chosen hyper-parameters, (name, value).
    Values: (string * float)[]
    /// The validation MSE of the chosen trial.
    ValidationMse: float
    /// How many trials the model had.
    Trials: int
}

/// The file's columns.
let columns = [| "model"; "hyperparameter"; "value"; "validation_mse"; "trials" |]

let private number (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// The file's text for `chosen` (models in the order given), after `comments` as "# " lines (where the settings came
/// from; readers skip them).
let format (comments: string list) (chosen: Chosen list) : string =
    (comments |> List.map (fun c -> "# " + c + "\n") |> String.concat "")
    + Csv.format "tuning file" columns [
        for c in chosen do
            for name, value in c.Values -> [| c.Model; name; number value; number c.ValidationMse; string c.Trials |]
    ]

/// Parses a tuning file's text (`source` names it in messages) into the chosen settings, models in file order.
let parse (source: string) (text: string) : Chosen list =
    let table = Csv.parse source text

    let column name =
        match Array.tryFindIndex ((=) name) table.Columns with
        | Some i -> i
        | None ->
            let names = String.concat ", " columns
            raise (HybridException $"{source} has no column '{name}'; a tuning file has the columns {names}.")

    let model, parameter, value, mse, trials =
        column "model", column "hyperparameter", column "value", column "validation_mse", column "trials"

    let read (row: int) (cell: string) =
        match Double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture) with
        | true, v -> v
        | _ -> raise (HybridException $"{source}, line {table.Lines[row]}: '{cell}' is not a number.")

    table.Rows
    |> Array.mapi (fun i r -> i, r)
    |> Array.groupBy (fun (_, r) -> r[model])
    |> Array.map (fun (name, rows) ->
        let i, first = rows[0]

        {
            Model = name
            Values = rows |> Array.map (fun (j, r) -> r[parameter], read j r[value])
            ValidationMse = read i first[mse]
            Trials = int (read i first[trials])
        })
    |> List.ofArray

/// Writes the file at `path` (its folder created), `comments` first (see `format`).
let write (path: string) (comments: string list) (chosen: Chosen list) : unit =
    match Path.GetDirectoryName path with
    | null
    | "" -> ()
    | dir -> Directory.CreateDirectory dir |> ignore

    File.WriteAllText(path, format comments chosen)

/// Reads the file at `path`.
let read (path: string) : Chosen list = parse path (File.ReadAllText path)

/// The chosen settings as the values a case's settings carry.
let values (chosen: Chosen list) : Map<string, Map<string, float>> =
    chosen
    |> List.fold (fun acc c -> Tuned.withModel c.Model c.Values acc) Tuned.none

/// The folder of the tuning files: $HYBRID_TUNING where set, else `tuning` under the current directory (the
/// repository's root when the report runs from there).
let folder () : string =
    match Environment.GetEnvironmentVariable "HYBRID_TUNING" with
    | null
    | "" -> "tuning"
    | dir -> dir

/// `<folder>/<case>.csv`.
let path (folder: string) (case: string) : string = Path.Combine(folder, case + ".csv")

/// The tuned values of `case` from `folder ()`, none where it has no file.
let load (case: string) : Map<string, Map<string, float>> =
    let p = path (folder ()) case
    if File.Exists p then values (read p) else Tuned.none

/// The tuned values the report's settings of `key` carry for `case`: `load case` for "quick" and "full" (none where
/// the file is missing), nothing for "tiny" (tests never read a tuning file). The report does not tune.
let forKey (key: string) (case: string) : Map<string, Map<string, float>> =
    if key = "tiny" then Tuned.none else load case
