/// A sweep's folder on disk: the plan `tasks.jsonl` (one task a line with its id), `results/<id>.json` for each
/// finished task (written atomically), `results/<id>.err` for each failed one (its exit code and the last lines of
/// its standard error), `files/<id>/` for the files a task writes for its section, and `logs/<id>.log` (the
/// standard error of the task's process where a pool or Slurm captured it).
/// Results are keyed by the task's content, so a plan written again keeps every result of a task it still holds.
module Hybrid.Models.Tasks.SweepFolder

open System
open System.IO
open System.Text.Json
open Hybrid

/// The plan's file name.
[<Literal>]
let PlanFile = "tasks.jsonl"

/// `folder`/tasks.jsonl.
let planPath (folder: string) = Path.Combine(folder, PlanFile)

/// `folder`/results/<id>.json.
let resultPath (folder: string) (id: string) =
    Path.Combine(folder, "results", id + ".json")

/// `folder`/results/<id>.err.
let errorPath (folder: string) (id: string) =
    Path.Combine(folder, "results", id + ".err")

/// `folder`/files/<id>: the files a task writes for its section (charts, CSV files), copied next to summary.md by
/// the merge.
let filesPath (folder: string) (id: string) = Path.Combine(folder, "files", id)

/// `folder`/logs/<id>.log.
let logPath (folder: string) (id: string) =
    Path.Combine(folder, "logs", id + ".log")

/// Writes the plan: one line `{"id":…,"task":{…}}` per task, in order (the line number, from 0, is the task's
/// index for `hybrid sweep run --index`). Refuses a plan with a task twice.
let writePlan (folder: string) (tasks: TaskSpec list) : unit =
    let ids = tasks |> List.map TaskSpec.id

    match ids |> List.countBy id |> List.tryFind (fun (_, n) -> n > 1) with
    | Some(twice, _) ->
        let t = tasks |> List.find (fun t -> TaskSpec.id t = twice)
        raise (HybridException $"The plan holds the task {TaskSpec.describe t} twice; each task must be unique.")
    | None -> ()

    let lines =
        List.map2 (fun i t -> $"{{\"id\":\"{i}\",\"task\":{TaskSpec.canonical t}}}") ids tasks

    AtomicFile.write (planPath folder) (String.concat "\n" lines + "\n")

/// Reads the plan: (id, task) per line, in order. Missing plan or a line whose id does not match its task raise
/// a `HybridException` with the fix.
let readPlan (folder: string) : (string * TaskSpec)[] =
    let path = planPath folder

    if not (File.Exists path) then
        raise (HybridException $"There is no plan {path}; write one with `hybrid sweep plan {folder}`.")

    File.ReadAllLines path
    |> Array.indexed
    |> Array.filter (fun (_, line) -> line.Trim() <> "")
    |> Array.map (fun (n, line) ->
        let where = $"{path}, line {n + 1}"

        use doc =
            try
                JsonDocument.Parse line
            with :? JsonException as e ->
                raise (
                    HybridException
                        $"{where} is not valid JSON ({e.Message}); write the plan again with `hybrid sweep plan`."
                )

        let task =
            match doc.RootElement.TryGetProperty "task" with
            | true, t -> TaskSpec.ofJson where t
            | _ -> raise (HybridException $"{where} has no \"task\"; write the plan again with `hybrid sweep plan`.")

        let id =
            match doc.RootElement.TryGetProperty "id" with
            | true, v when v.ValueKind = JsonValueKind.String -> v.GetString()
            | _ -> ""

        if id <> TaskSpec.id task then
            raise (
                HybridException
                    $"{where}: id '{id}' does not match its task (id {TaskSpec.id task}); the line was edited. Write the plan again with `hybrid sweep plan`."
            )

        id, task)

/// Writes a finished task's result atomically and removes an `.err` file an earlier failed try left.
let writeResult (folder: string) (r: TaskResult) : unit =
    AtomicFile.write (resultPath folder r.Id) (TaskResult.toJson r)
    let err = errorPath folder r.Id

    if File.Exists err then
        File.Delete err

/// Records a failed task: `results/<id>.err` with its exit code and the last lines of its standard error.
let writeError (folder: string) (id: string) (exitCode: int) (lastLines: string list) : unit =
    let text =
        $"exit code {exitCode}\n"
        + (lastLines |> List.map (fun l -> l + "\n") |> String.concat "")

    AtomicFile.write (errorPath folder id) text

/// The last `count` lines of a text file (none when it does not exist).
let lastLines (count: int) (path: string) : string list =
    if File.Exists path then
        let lines = File.ReadAllLines path
        lines |> Array.skip (max 0 (lines.Length - count)) |> Array.toList
    else
        []

/// Reads a finished task's result (a `HybridException` when the file is missing, invalid or of another format).
let readResult (folder: string) (id: string) : TaskResult =
    let path = resultPath folder id

    if not (File.Exists path) then
        raise (HybridException $"The task {id} has no result {path}; run it with `hybrid sweep run {folder}`.")

    TaskResult.ofJson path (File.ReadAllText path)
