/// `hybrid sweep`: the report's runs as tasks in a folder (see `Hybrid.Models.Tasks.SweepFolder`). `plan` writes
/// tasks.jsonl, `run --index N` runs one task in this process, `run --on …` runs every unfinished one on a back end
/// (`LocalPool`, `Slurm`), `status` lists done, failed and missing tasks, `merge` builds the report.
module internal Hybrid.Cli.Sweep

open System
open System.IO
open Hybrid
open Hybrid.Models.Common
open Hybrid.Models.Tasks
open Hybrid.Models.Report

/// A positive whole number from an environment variable, if it holds one.
let private fromEnvironment (name: string) =
    match Environment.GetEnvironmentVariable name with
    | null -> None
    | text ->
        match Int32.TryParse text with
        | true, n -> Some n
        | _ -> None

/// Threads per task: the given count, else $SLURM_CPUS_PER_TASK, else none (libtorch's default).
let threadsFor (threads: int option) : int option =
    match threads with
    | Some t -> Some t
    | None -> fromEnvironment "SLURM_CPUS_PER_TASK"

/// `hybrid sweep plan`: writes the plan and says how many of its tasks are done already (results are keyed by
/// content, so a plan written again keeps them).
let plan (folder: string) (key: string) (only: string list) : int =
    let tasks = ReportTasks.plan key only
    SweepFolder.writePlan folder tasks
    let finished, failed, missing = SweepStatus.counts (SweepStatus.read folder)

    printfn
        $"wrote {SweepFolder.planPath folder}: {tasks.Length} tasks ({finished} done already, {failed} failed, {missing} to run)"

    0

let private entryOf (folder: string) (index: int option) =
    let i =
        match index with
        | Some i -> i
        | None ->
            fromEnvironment "SLURM_ARRAY_TASK_ID"
            |> Option.defaultWith (fun () ->
                raise (
                    HybridException
                        "No task index: give --index N, or run inside a Slurm array job ($SLURM_ARRAY_TASK_ID)."
                ))

    let entries = SweepStatus.read folder

    if i < 0 || i >= entries.Length then
        raise (
            HybridException
                $"--index {i} is outside the plan: {SweepFolder.planPath folder} has {entries.Length} tasks (indices 0–{entries.Length - 1})."
        )

    entries[i]

// Runs the task of `entry` in this process and writes its result, or its `.err` file (code 1 and the error)
// when it raises; returns the exit code.
let private runEntry (folder: string) (entry: SweepStatus.Entry) : int =
    eprintfn $"sweep: task {entry.Index} ({TaskSpec.describe entry.Task}, id {entry.Id}) ..."

    try
        let e = ReportTasks.find entry.Task.Experiment
        let files = SweepFolder.filesPath folder entry.Id
        Directory.CreateDirectory files |> ignore

        let r =
            LineChart.withPages Hybrid.Charts.ReportPages.write (fun () -> Experiment.run e files entry.Task)

        SweepFolder.writeResult folder r
        eprintfn $"sweep: task {entry.Index} done in {r.Seconds:F1} s"
        0
    with e ->
        eprintfn "%s" (e.ToString())
        let lines = e.ToString().Split('\n') |> Array.truncate 20 |> Array.toList
        SweepFolder.writeError folder entry.Id 1 lines
        1

/// `hybrid sweep run --index N`: runs one task in this process (skipped when it is done) and writes its result,
/// or its `.err` file (exit code 1 and the error) when it raises.
let runOne (folder: string) (index: int option) (threads: int option) : int =
    let entry = entryOf folder index

    if entry.State = SweepStatus.Done then
        eprintfn $"sweep: task {entry.Index} ({TaskSpec.describe entry.Task}) is done already; skipped"
        0
    else
        threadsFor threads |> Option.iter Engine.useThreads
        runEntry folder entry

/// The line a worker (`worker`) writes on standard output and on standard error after each task, followed by the
/// task's index and exit code. Each stream is ordered, so a pool that has read the marker on both has read all of
/// the task's output.
[<Literal>]
let WorkerMarker = "##hybrid-sweep-worker## finished"

/// `hybrid sweep run --worker`: the local pool's worker. Reads task indices from standard input, one a line, and
/// runs each in this process as `--index` would (a finished task skipped), then writes `WorkerMarker`, the index
/// and the exit code on both output streams; ends at the end of its input. One process runs many tasks, so the
/// cases' per-process caches (a truth, a physics fit) serve every task after the first, and the process start and
/// libtorch's initialisation are paid once. A task that ends the process (a crash, an `exit`) ends the worker: the
/// pool records the task as failed and starts another worker.
let worker (folder: string) (threads: int option) : int =
    threadsFor threads |> Option.iter Engine.useThreads
    let mutable line = Console.In.ReadLine()

    while not (isNull line) do
        let index = Int32.Parse(line.Trim(), Globalization.CultureInfo.InvariantCulture)
        let entry = entryOf folder (Some index)

        let code =
            if entry.State = SweepStatus.Done then
                eprintfn $"sweep: task {entry.Index} ({TaskSpec.describe entry.Task}) is done already; skipped"
                0
            else
                runEntry folder entry

        let marker = $"{WorkerMarker} {index} {code}"
        Console.Error.WriteLine marker
        Console.Error.Flush()
        Console.Out.WriteLine marker
        Console.Out.Flush()
        line <- Console.In.ReadLine()

    0

/// `hybrid sweep run --index N --record-exit code --log file`: records a task's failure (its exit code and the
/// last lines of its log) unless it wrote its result.
let recordExit (folder: string) (index: int option) (code: int) (log: string option) : int =
    let entry = entryOf folder index

    if code <> 0 && not (File.Exists(SweepFolder.resultPath folder entry.Id)) then
        SweepFolder.writeError
            folder
            entry.Id
            code
            (log |> Option.map (SweepFolder.lastLines 20) |> Option.defaultValue [])

    0

/// `hybrid sweep status`: counts, then one line per failed task (with its error's first and last lines) and per
/// missing task. Exit code 0 when every task is done, 1 otherwise.
let status (folder: string) : int =
    let entries = SweepStatus.read folder
    let finished, failed, missing = SweepStatus.counts entries

    printfn $"{folder}: {entries.Length} tasks, {finished} done, {failed} failed, {missing} missing"

    for e in entries do
        match e.State with
        | SweepStatus.Failed text ->
            let lines = text.Trim().Split '\n'

            let last =
                if lines.Length > 1 then
                    " … " + lines[lines.Length - 1]
                else
                    ""

            printfn $"failed  {e.Index} {e.Id} {TaskSpec.describe e.Task}: {lines[0]}{last}"
        | SweepStatus.Missing -> printfn $"missing {e.Index} {e.Id} {TaskSpec.describe e.Task}"
        | SweepStatus.Done -> ()

    if finished = entries.Length then 0 else 1

/// `hybrid sweep merge`: the report from the results into `out` (default `<folder>/report`).
let merge (folder: string) (out: string option) (partial: bool) : int =
    let dir = out |> Option.defaultValue (Path.Combine(folder, "report"))

    let path =
        LineChart.withPages Hybrid.Charts.ReportPages.write (fun () -> SweepMerge.merge folder dir partial)

    printfn "wrote %s" path
    0
