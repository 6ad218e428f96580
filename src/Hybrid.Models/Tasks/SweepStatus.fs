/// Where a sweep stands, read from its folder: each planned task is done (a valid result), failed (an `.err`
/// file and no result) or missing (neither).
module Hybrid.Models.Tasks.SweepStatus

open System.IO

/// The state of one planned task.
type State =
    /// Its result file exists (`results/<id>.json`).
    | Done
    /// It failed: the `.err` file's text (exit code and last lines of standard error).
    | Failed of error: string
    /// Neither a result nor an error: not run yet, running, or killed before it could record anything.
    | Missing

/// One planned task with its index in the plan, id and state.
type Entry = {
    /// Line of the plan, from 0 (`hybrid sweep run --index`).
    Index: int
    /// The task's id.
    Id: string
    /// The task.
    Task: TaskSpec
    /// Its state.
    State: State
}

/// The state of every task of the plan in `folder`, in plan order.
let read (folder: string) : Entry[] =
    SweepFolder.readPlan folder
    |> Array.mapi (fun i (id, task) ->
        let state =
            if File.Exists(SweepFolder.resultPath folder id) then
                Done
            elif File.Exists(SweepFolder.errorPath folder id) then
                Failed(File.ReadAllText(SweepFolder.errorPath folder id))
            else
                Missing

        {
            Index = i
            Id = id
            Task = task
            State = state
        })

/// Counts: (done, failed, missing).
let counts (entries: Entry[]) : int * int * int =
    let count f =
        entries |> Array.filter (fun e -> f e.State) |> Array.length

    count (fun s -> s = Done),
    count (function
        | Failed _ -> true
        | _ -> false),
    count (fun s -> s = Missing)

/// The tasks a run should start: the missing ones, and with `retry` the failed ones too (finished tasks are never
/// run again).
let pending (retry: bool) (entries: Entry[]) : Entry[] =
    entries
    |> Array.filter (fun e ->
        match e.State with
        | Done -> false
        | Missing -> true
        | Failed _ -> retry)

/// A progress line: "12/40 done, 2 running, 1 failed, ETA 3 min 20 s" (no ETA before a task of this run has
/// finished; `perTask` is the mean wall time of the tasks this run finished, `workers` how many run at once).
let progressLine (total: int) (doneCount: int) (running: int) (failed: int) (perTask: float option) (workers: int) =
    let eta =
        match perTask with
        | Some seconds when doneCount + failed < total ->
            let left = float (total - doneCount - failed) * seconds / float (max 1 workers)
            let s = int (ceil left)

            if s >= 60 then
                $", ETA {s / 60} min {s % 60} s"
            else
                $", ETA {s} s"
        | _ -> ""

    $"{doneCount}/{total} done, {running} running, {failed} failed{eta}"
