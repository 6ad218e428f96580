namespace Hybrid.Models.Tasks

open System
open System.Diagnostics
open Hybrid
open Hybrid.Models.Common

/// A report section built from its tasks' results: its markdown, and every number it shows as long-format rows
/// (the tasks' rows and what the section derives from them, e.g. a physics residual computed over seeds or a
/// calibration metric computed from ensemble members), which go to `<name>-results.csv`.
type Section = {
    /// The section's markdown.
    Markdown: string
    /// Every number of the section as rows.
    Rows: ResultRow[]
}

/// A case study or experiment of the report as tasks: the one code path of an in-process run and a distributed
/// one (a sweep). `Tasks` plans, `Run` computes one task (in any process, in any order), `Assemble` builds the
/// report section from the results.
type Experiment = {
    /// The name tasks carry (`TaskSpec.Experiment`), e.g. "energy-balance".
    Name: string
    /// The section's title in progress lines, e.g. "energy balance".
    Title: string
    /// The tasks under a settings key ("quick", "full", "tiny"), in the order an in-process run takes them.
    Tasks: string -> TaskSpec list
    /// Computes one task. `files` is a folder the task may write files into that the section keeps (in a sweep
    /// `files/<id>/`, copied next to summary.md by the merge); most tasks return rows only. The returned result's
    /// id, task and wall time are set by `Experiment.run`.
    Run: string -> TaskSpec -> TaskResult
    /// Writes the section's files into the report folder (first argument) and returns its markdown and rows, from
    /// the results of every task of `Tasks settings` (third argument, in plan order) under the settings key (second).
    Assemble: string -> string -> TaskResult list -> Section
}

/// Running and assembling experiments.
module Experiment =

    /// A result of `task` with these rows, series and texts (id set, wall time 0 until `run` sets it).
    let result (task: TaskSpec) (rows: ResultRow[]) (series: (string * float[])[]) (texts: (string * string)[]) = {
        Id = TaskSpec.id task
        Task = task
        Rows = rows
        Series = series
        Texts = texts
        Seconds = 0.0
    }

    /// Runs one task of `e`: seeds TorchSharp's global generator from the task's seed (so anything that draws from
    /// it, such as MC dropout, gives the same numbers in every process), runs it, and sets the result's id, task
    /// and wall time.
    let run (e: Experiment) (files: string) (task: TaskSpec) : TaskResult =
        if task.Experiment <> e.Name then
            raise (
                HybridException $"The task {TaskSpec.describe task} belongs to '{task.Experiment}', not to '{e.Name}'."
            )

        Engine.init ()
        Engine.seed task.Seed
        let watch = Stopwatch.StartNew()
        let r = e.Run files task

        {
            r with
                Id = TaskSpec.id task
                Task = task
                Seconds = watch.Elapsed.TotalSeconds
        }

    /// The name of an experiment's long-format results file in the report folder: `<name>-results.csv`.
    let resultsFile (name: string) = $"{name}-results.csv"

    /// The rows of `results` in task order as written to the results file: a task's rows as it made them, except
    /// that a task with a training share (`TaskSpec.Share`, data efficiency) names it in the rows' split, e.g.
    /// "test, share 0.5".
    let resultRows (results: TaskResult list) : ResultRow[] =
        results
        |> List.toArray
        |> Array.collect (fun r ->
            match r.Task.Share with
            | None -> r.Rows
            | Some share ->
                let text = share.ToString("R", Globalization.CultureInfo.InvariantCulture)

                r.Rows
                |> Array.map (fun row -> {
                    row with
                        Split = $"{row.Split}, share {text}"
                }))

    /// Writes `rows` (a section's, `Section.Rows`) into `dir`/`<name>-results.csv` in long format
    /// (`ResultRow.writeCsv`: case, model, split, metric, seed, value); writes nothing where there are none.
    let writeResults (name: string) (dir: string) (rows: ResultRow[]) : unit =
        if rows.Length > 0 then
            ResultRow.writeCsv (IO.Path.Combine(dir, resultsFile name)) rows

    /// Assembles the section of `e` from `results` into `dir` (`Assemble`), writes its rows into
    /// `<name>-results.csv` (`writeResults`) and returns its markdown: what an in-process run and a sweep's merge
    /// both do. Initialises the engine first: a merge process runs no task, and assembling may use tensors (the
    /// calibration of ensemble members' outputs).
    let assemble (e: Experiment) (dir: string) (settings: string) (results: TaskResult list) : string =
        Engine.init ()
        let section = e.Assemble dir settings results
        writeResults e.Name dir section.Rows
        section.Markdown

    /// The section of `e` run in this process: every task one after another (files into `dir`), then `assemble`.
    let inProcess (e: Experiment) (dir: string) (settings: string) : string =
        e.Tasks settings |> List.map (run e dir) |> assemble e dir settings

    /// A section whose rows are its tasks' rows as they are (`resultRows`): for experiments that derive no number.
    let fromTasks (markdown: string) (results: TaskResult list) : Section = {
        Markdown = markdown
        Rows = resultRows results
    }

    /// The settings key of a `--quick` flag: "quick" or "full".
    let settingsKey (quick: bool) = if quick then "quick" else "full"

    /// Picks the settings of a key among quick, full and (for tests) tiny; an unknown key raises a
    /// `HybridException` that names the known ones.
    let pick (key: string) (quick: 'S) (full: 'S) (tiny: 'S) : 'S =
        match key with
        | "quick" -> quick
        | "full" -> full
        | "tiny" -> tiny
        | other -> raise (HybridException $"Unknown settings key '{other}'; use quick, full or tiny (tests).")
