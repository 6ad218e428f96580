/// A sweep's folder without processes: the plan written and read back, each task's state (done, failed,
/// missing), what a run or a retry starts, and the merge of synthetic results (known means) into the same section
/// the in-process run writes; the merge refuses missing results unless partial.
module Hybrid.Tests.Tasks.SweepFolderTests

open System
open System.IO
open Expecto
open Hybrid
open Hybrid.Models.Tasks
open Hybrid.Models.Report

let private temporaryFolder () =
    let folder =
        Path.Combine(Path.GetTempPath(), "hybrid-sweep-" + Guid.NewGuid().ToString("N"))

    Directory.CreateDirectory folder |> ignore
    folder

/// The synthetic section's table: a has seeds 1–3 (MSE 10 + seed/4: mean 10.5), b the same plus 10 (20.5).
let private expectedTable =
    "| model | mean test MSE | seeds |\n|---|---:|---:|\n| a | 10.500000 | 3 |\n| b | 20.500000 | 3 |"

let private sectionOf (summary: string) =
    let start = summary.IndexOf "## Synthetic"
    let stop = summary.IndexOf("Merged from", start)
    summary.Substring(start, stop - start)

/// The message of the `HybridException` that `f` raises.
let private raises (f: unit -> unit) : string =
    let e = Expect.throwsC f id
    Expect.isTrue (e :? HybridException) $"a HybridException, not {e.GetType().Name}: {e.Message}"
    e.Message

let tests =
    testList "Tasks.SweepFolder" [
        test "the plan is one task a line with its id, read back in order" {
            let folder = temporaryFolder ()
            let tasks = ReportTasks.plan "tiny" [ "synthetic" ]
            SweepFolder.writePlan folder tasks
            let lines = File.ReadAllLines(SweepFolder.planPath folder)
            Expect.equal lines.Length 6 "a and b over seeds 1–3"

            Expect.equal
                lines[0]
                """{"id":"12008613a685eb9d","task":{"experiment":"synthetic","settings":"tiny","model":"a","seed":1}}"""
                "first line"

            Expect.equal (SweepFolder.readPlan folder |> Array.map snd |> Array.toList) tasks "read back"
            Directory.Delete(folder, true)
        }

        test "a plan with a task twice is refused" {
            let t = TaskSpec.create "synthetic" "tiny" "a" 1

            let e = raises (fun () -> SweepFolder.writePlan (temporaryFolder ()) [ t; t ])

            Expect.equal e "The plan holds the task synthetic/tiny a seed 1 twice; each task must be unique." "message"
        }

        test "status: done, failed and missing; a run starts the missing ones, a retry the failed ones too" {
            let folder = temporaryFolder ()
            let tasks = ReportTasks.plan "tiny" [ "synthetic" ]
            SweepFolder.writePlan folder tasks
            let e = ReportTasks.find "synthetic"
            SweepFolder.writeResult folder (Experiment.run e folder tasks[0])
            SweepFolder.writeError folder (TaskSpec.id tasks[1]) 3 [ "line one"; "line two" ]
            let entries = SweepStatus.read folder
            Expect.equal (SweepStatus.counts entries) (1, 1, 4) "1 done, 1 failed, 4 missing"
            Expect.equal entries[1].State (SweepStatus.Failed "exit code 3\nline one\nline two\n") "the .err text"
            Expect.equal (SweepStatus.pending false entries |> Array.map (fun e -> e.Index)) [| 2..5 |] "run: missing"

            Expect.equal
                (SweepStatus.pending true entries |> Array.map (fun e -> e.Index))
                [| 1..5 |]
                "retry: failed too"
            // A result written later replaces the failure.
            SweepFolder.writeResult folder (Experiment.run e folder tasks[1])
            Expect.isFalse (File.Exists(SweepFolder.errorPath folder (TaskSpec.id tasks[1]))) ".err removed"
            Expect.equal (SweepStatus.counts (SweepStatus.read folder)) (2, 0, 4) "2 done"
            Directory.Delete(folder, true)
        }

        test "progress lines count and estimate the time left" {
            Expect.equal
                (SweepStatus.progressLine 40 12 2 1 (Some 10.0) 2)
                "12/40 done, 2 running, 1 failed, ETA 2 min 15 s"
                "27 left × 10 s / 2"

            Expect.equal (SweepStatus.progressLine 6 0 2 0 None 2) "0/6 done, 2 running, 0 failed" "no ETA yet"
        }

        test "the merge of synthetic results gives the in-process section, with known means" {
            let folder = temporaryFolder ()
            let e = ReportTasks.find "synthetic"
            let tasks = e.Tasks "tiny"
            SweepFolder.writePlan folder tasks

            // Results written in reverse order: the merge follows the plan.
            for t in List.rev tasks do
                SweepFolder.writeResult folder (Experiment.run e folder t)

            let out = Path.Combine(folder, "report")
            let summary = File.ReadAllText(SweepMerge.merge folder out false)
            Expect.stringContains summary expectedTable "table"
            let inProcessDir = Path.Combine(folder, "in-process")
            Directory.CreateDirectory inProcessDir |> ignore
            let inProcess = Experiment.inProcess e inProcessDir "tiny"
            Expect.equal (sectionOf summary) inProcess "same section"

            Expect.equal
                (File.ReadAllText(Path.Combine(out, "synthetic.csv")))
                (File.ReadAllText(Path.Combine(inProcessDir, "synthetic.csv")))
                "same CSV"

            // The long-format results file: every task's rows in plan order, the same from the merge and in process.
            let merged =
                Hybrid.Models.Common.ResultRow.readCsv (Path.Combine(out, "synthetic-results.csv"))

            Expect.equal
                merged
                (Hybrid.Models.Common.ResultRow.readCsv (Path.Combine(inProcessDir, "synthetic-results.csv")))
                "same results file"

            Expect.equal
                [
                    for (r: Hybrid.Models.Common.ResultRow) in merged -> r.Model, r.Seed, r.Metric, r.Value
                ]
                [
                    for t in tasks do
                        (t.Model, t.Seed, "mse", Synthetic.mse t.Model t.Seed)
                        (t.Model, t.Seed, "param:k", float t.Seed * 0.1)
                ]
                "every task's rows, in plan order"

            Expect.stringContains summary "Merged from 6 task results" "footer"
            Directory.Delete(folder, true)
        }

        test "the merge refuses missing results, and with partial leaves out the sections that lack them" {
            let folder = temporaryFolder ()
            let e = ReportTasks.find "synthetic"
            let tasks = e.Tasks "tiny"
            SweepFolder.writePlan folder tasks

            for t in tasks |> List.take 4 do
                SweepFolder.writeResult folder (Experiment.run e folder t)

            let out = Path.Combine(folder, "report")

            let error = raises (fun () -> SweepMerge.merge folder out false |> ignore)

            Expect.equal
                error
                $"The sweep {folder} has 4 of 6 tasks done, 0 failed and 2 missing (e.g. 4 synthetic/tiny b seed 2; 5 synthetic/tiny b seed 3). Run them with `hybrid sweep run {folder} --retry`, or merge what is there with `hybrid sweep merge {folder} --partial`."
                "message"

            let summary = File.ReadAllText(SweepMerge.merge folder out true)

            Expect.stringContains
                summary
                "Left out of this partial merge: 2 of its 6 tasks have no result"
                "the section says what it lacks"

            Expect.stringContains summary "Partial: 2 of 6 tasks had no result." "footer"
            Directory.Delete(folder, true)
        }
    ]
