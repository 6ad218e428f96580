/// Builds the report from a sweep's task results: each section assembled by its experiment from its tasks'
/// results, exactly as the in-process report assembles them (`CaseReport.write`).
module Hybrid.Models.Report.SweepMerge

open System.IO
open Hybrid
open Hybrid.Models.Tasks

let private copyFolder (source: string) (target: string) =
    if Directory.Exists source then
        for file in Directory.GetFiles(source, "*", SearchOption.AllDirectories) do
            let relative = Path.GetRelativePath(source, file)

            if not (AtomicFile.isTemporary file) then
                let destination = Path.Combine(target, relative)
                Directory.CreateDirectory(Path.GetDirectoryName destination) |> ignore
                File.Copy(file, destination, true)

/// Merges the sweep in `folder` into the report folder `dir` (summary.md, CSV files, charts); returns summary.md's
/// path. Refuses, with a `HybridException` that counts and names them, when tasks are failed or missing, unless
/// `partial`: then every section whose tasks all finished is assembled and each other section says what it lacks.
let merge (folder: string) (dir: string) (partial: bool) : string =
    let entries = SweepStatus.read folder
    let finished, failed, missing = SweepStatus.counts entries

    if (failed > 0 || missing > 0) && not partial then
        let unfinished =
            entries
            |> Array.filter (fun e -> e.State <> SweepStatus.Done)
            |> Array.truncate 5
            |> Array.map (fun e -> $"{e.Index} {TaskSpec.describe e.Task}")
            |> String.concat "; "

        raise (
            HybridException
                $"The sweep {folder} has {finished} of {entries.Length} tasks done, {failed} failed and {missing} missing (e.g. {unfinished}). Run them with `hybrid sweep run {folder} --retry`, or merge what is there with `hybrid sweep merge {folder} --partial`."
        )

    Directory.CreateDirectory dir |> ignore
    Hybrid.Models.Common.Claims.clear dir

    let groups =
        entries
        |> Array.groupBy (fun e -> e.Task.Experiment, e.Task.Settings)
        |> Array.toList

    let sections = [
        for (name, key), tasks in groups ->
            let e = ReportTasks.find name

            if tasks |> Array.forall (fun t -> t.State = SweepStatus.Done) then
                for t in tasks do
                    copyFolder (SweepFolder.filesPath folder t.Id) dir

                let results =
                    tasks |> Array.map (fun t -> SweepFolder.readResult folder t.Id) |> Array.toList

                eprintfn $"merge: {e.Title} ({tasks.Length} tasks)"
                Experiment.assemble e dir key results
            else
                let lacking =
                    tasks |> Array.filter (fun t -> t.State <> SweepStatus.Done) |> Array.length

                $"## {e.Title}\n\nLeft out of this partial merge: {lacking} of its {tasks.Length} tasks have no result (`hybrid sweep status {folder}` lists them).\n\n"
    ]

    let taskSeconds =
        entries
        |> Array.filter (fun e -> e.State = SweepStatus.Done)
        |> Array.sumBy (fun e -> (SweepFolder.readResult folder e.Id).Seconds)

    let partialNote =
        if finished < entries.Length then
            $" Partial: {entries.Length - finished} of {entries.Length} tasks had no result."
        else
            ""

    CaseReport.compose
        dir
        $"hybrid sweep merge {folder}"
        sections
        $"Merged from {finished} task results ({taskSeconds:F0} s of task time in all) on {CaseReport.machine ()}.{partialNote}"
