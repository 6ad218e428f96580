/// The order in which the local pool hands out tasks: longest first, learnt as the sweep goes. A task's kind is
/// its experiment, settings, model and data share (not its seed, member or trial: those repeat the same work);
/// a kind's cost is the mean wall time of its finished tasks (those of earlier runs in the folder too). A task
/// of a kind never measured and not running goes first, in plan order, so that every kind is measured early;
/// then the task of the costliest kind. The sweep ends on short tasks instead of waiting for a long one started
/// last. The order changes nothing in any result: each task is computed from its own inputs alone.
module internal Hybrid.Cli.TaskOrder

open Hybrid.Models.Tasks

/// A task's kind: experiment, settings, model and share.
type Kind = string * string * string * float option

/// The kind of `t`.
let kindOf (t: TaskSpec) : Kind =
    t.Experiment, t.Settings, t.Model, t.Share

/// Index in `pending` of the task to start next, given the measured wall times per kind and the kinds of the
/// tasks running now; None when `pending` is empty.
let next (pending: SweepStatus.Entry list) (measured: Map<Kind, float list>) (running: Kind list) : int option =
    if List.isEmpty pending then
        None
    else
        let unmeasured =
            pending
            |> List.tryFindIndex (fun e ->
                let k = kindOf e.Task
                not (measured.ContainsKey k) && not (List.contains k running))

        match unmeasured with
        | Some i -> Some i
        | None ->
            // Every pending kind is measured or being measured; a kind being measured counts as the cheapest.
            let cost (e: SweepStatus.Entry) =
                match measured.TryFind(kindOf e.Task) with
                | Some seconds -> List.average seconds
                | None -> 0.0

            // The first of the costliest (plan order among equals).
            let costs = pending |> List.map cost
            let top = List.max costs
            List.tryFindIndex ((=) top) costs

/// The wall times of the finished tasks of `entries` per kind, read from their result files in `folder`.
let measuredIn (folder: string) (entries: SweepStatus.Entry[]) : Map<Kind, float list> =
    entries
    |> Array.filter (fun e -> e.State = SweepStatus.Done)
    |> Array.choose (fun e ->
        try
            Some(kindOf e.Task, (SweepFolder.readResult folder e.Id).Seconds)
        with _ ->
            None)
    |> Array.groupBy fst
    |> Array.map (fun (k, xs) -> k, xs |> Array.map snd |> Array.toList)
    |> Map.ofArray
