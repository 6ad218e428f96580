/// `hybrid sweep` as a user runs it, with the built CLI started as processes: a synthetic sweep killed midway
/// and resumed (nothing that had finished is computed again, every result on disk stays valid), failures recorded
/// and retried, and a small sweep of the energy-balance case on a pool of two processes whose merged files
/// equal those of the same tasks run in this process (same seeds, same numbers).
module Hybrid.Cli.Tests.SweepTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Hybrid.Models.Tasks
open Hybrid.Models.Report
open Hybrid.Cli

let private temporaryFolder () =
    let folder =
        Path.Combine(Path.GetTempPath(), "hybrid-sweep-cli-" + Guid.NewGuid().ToString("N"))

    Directory.CreateDirectory folder |> ignore
    folder

let private startInfo (args: string list) (environment: (string * string) list) =
    let info = ProcessStartInfo("dotnet")
    info.ArgumentList.Add CliTests.cli.Value

    for a in args do
        info.ArgumentList.Add a

    for name, value in environment do
        info.Environment[name] <- value

    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info

/// Runs `hybrid args` to the end (at most `seconds`): exit code, standard output, standard error.
let internal hybrid (seconds: int) (environment: (string * string) list) (args: string list) =
    use p = Process.Start(startInfo args environment)
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()

    if not (p.WaitForExit(seconds * 1000)) then
        p.Kill true
        failwith $"hybrid {args} did not finish within {seconds} s"

    p.WaitForExit()
    p.ExitCode, out.Result, err.Result

let private results (folder: string) =
    let dir = Path.Combine(folder, "results")

    if Directory.Exists dir then
        Directory.GetFiles(dir, "*.json")
        |> Array.map (fun f -> Path.GetFileName f, File.ReadAllBytes f)
        |> Map.ofArray
    else
        Map.empty

/// The synthetic section's table: model a over seeds 1–3 has MSE 10 + seed/4 (mean 10.5), b 20 + seed/4.
let private synthetic3 = "| a | 10.500000 | 3 |\n| b | 20.500000 | 3 |"

/// A report CSV's rows without the columns named in `drop` and, in a long-format file, without the wall-time rows.
let private withoutColumns (drop: string list) (path: string) =
    let table = Hybrid.Training.Csv.read path

    let keep =
        table.Columns
        |> Array.indexed
        |> Array.filter (fun (_, h) -> not (List.contains h drop))
        |> Array.map fst

    // In a long-format results file (a "metric" column) the wall times are rows, not columns: drop those rows.
    let timing (cells: string[]) =
        match Array.tryFindIndex ((=) "metric") table.Columns with
        | Some m -> List.contains cells[m] [ "seconds"; "inference_seconds" ]
        | None -> false

    // Its values are written in full (round-trip) precision, where the transformer baseline's last digits are not
    // repeatable run to run (libtorch); nine significant digits, like the six of the wide tables, are.
    let value = Array.tryFindIndex ((=) "value") table.Columns

    let shown (i: int) (cell: string) =
        match
            value, Double.TryParse(cell, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture)
        with
        | Some v, (true, x) when v = i -> x.ToString("G9", Globalization.CultureInfo.InvariantCulture)
        | _ -> cell

    table.Rows
    |> Array.filter (timing >> not)
    |> Array.map (fun cells -> keep |> Array.map (fun i -> shown i cells[i]))

/// A report file as rows to compare: a CSV file without the columns named in `drop` (wall times) and a long-format
/// file's wall-time rows; a chart whole.
let private csvWithout (drop: string list) (path: string) =
    if not (path.EndsWith ".csv") then
        // A chart: compared whole.
        [| File.ReadAllLines path |]
    else
        withoutColumns drop path

/// The energy-balance section's tasks under the "tiny" settings run in this process (once for all tests).
let private inProcess =
    lazy
        (let dir = temporaryFolder ()
         Experiment.inProcess EnergyBalanceTasks.experiment dir "tiny" |> ignore
         dir)

/// Checks that the merged report in `merged` has the same CSV and SVG files as the in-process run (wall-time
/// columns left out).
let private expectSameFiles (merged: string) =
    let files =
        Directory.GetFiles(inProcess.Value)
        |> Array.map Path.GetFileName
        |> Array.filter (fun f -> f.EndsWith ".csv" || f.EndsWith ".svg")
        |> Array.sort

    Expect.equal
        files
        [|
            "energy-balance-calibration.csv"
            "energy-balance-claims.csv"
            "energy-balance-data.csv"
            "energy-balance-metrics.csv"
            "energy-balance-parameters.csv"
            "energy-balance-reliability.svg"
            "energy-balance-results.csv"
            "energy-balance-simulations.csv"
            "energy-balance.svg"
        |]
        "the section's files"

    for f in files do
        let read dir =
            csvWithout [ "train_seconds"; "inference_seconds" ] (Path.Combine(dir, f))

        Expect.equal (read merged) (read inProcess.Value) $"{f}: same numbers"

/// The repository's root (the folder above this test assembly that holds scripts/slurm).
let private repositoryRoot () =
    let rec up (d: DirectoryInfo) =
        if isNull d then
            failwith $"no folder above {AppContext.BaseDirectory} holds scripts/slurm/start.sh"
        elif File.Exists(Path.Combine(d.FullName, "scripts", "slurm", "start.sh")) then
            d.FullName
        else
            up d.Parent

    up (DirectoryInfo AppContext.BaseDirectory)

/// Runs a script of scripts/slurm with `args`: exit code and standard error.
let private slurmScript (name: string) (args: string list) =
    let info = ProcessStartInfo("bash")
    info.ArgumentList.Add(Path.Combine(repositoryRoot (), "scripts", "slurm", name))

    for a in args do
        info.ArgumentList.Add a

    info.RedirectStandardError <- true
    info.RedirectStandardOutput <- true
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()

    if not (p.WaitForExit 180_000) then
        p.Kill true
        failwith $"{name} did not finish within 180 s"

    p.WaitForExit()
    p.ExitCode, out.Result + err.Result

let tests =
    testSequenced
    <| testList "Sweep" [
        test "sweep verbs parse" {
            let parse = Hybrid.Cli.Arguments.parse

            for argv, expected in
                [
                    [| "sweep"; "plan"; "s"; "--quick" |], Hybrid.Cli.Arguments.SweepPlan("s", "quick", [])
                    [|
                        "sweep"
                        "plan"
                        "s"
                        "--settings"
                        "tiny"
                        "--only"
                        "energy-balance"
                        "synthetic"
                    |],
                    Hybrid.Cli.Arguments.SweepPlan("s", "tiny", [ "energy-balance"; "synthetic" ])
                    [| "sweep"; "plan"; "s" |], Hybrid.Cli.Arguments.SweepPlan("s", "full", [])
                    [| "sweep"; "run"; "s"; "--index"; "3" |], Hybrid.Cli.Arguments.SweepRunOne("s", Some 3, None)
                    [| "sweep"; "run"; "s"; "--on"; "local:3"; "--retry" |],
                    Hybrid.Cli.Arguments.SweepRun("s", Hybrid.Cli.Arguments.Local(Some 3), true, None, false, 16)
                    [|
                        "sweep"
                        "run"
                        "s"
                        "--on"
                        "slurm"
                        "--dry-run"
                        "--threads"
                        "2"
                        "--limit"
                        "4"
                    |],
                    Hybrid.Cli.Arguments.SweepRun("s", Hybrid.Cli.Arguments.Slurm, false, Some 2, true, 4)
                    [| "sweep"; "status"; "s" |], Hybrid.Cli.Arguments.SweepStatus "s"
                    [| "sweep"; "merge"; "s"; "--partial"; "--out"; "r" |],
                    Hybrid.Cli.Arguments.SweepMerge("s", Some "r", true)
                    [| "report"; "--quick"; "--on"; "local:2"; "out" |],
                    Hybrid.Cli.Arguments.RunReportOn("out", true, Hybrid.Cli.Arguments.Local(Some 2))
                ] do
                Expect.equal (parse argv) expected $"hybrid {String.Join(' ', argv)}"

            match parse [| "sweep"; "run"; "s"; "--on"; "local:0" |] with
            | Hybrid.Cli.Arguments.Usage(text, 2) ->
                Expect.stringStarts
                    text
                    "ERROR: --on local:0: the pool size must be a whole number ≥ 1, e.g. local:2."
                    "message"
            | other -> failtest $"local:0 parsed as {other}"
        }

        test "the pool hands out unmeasured kinds first, then the costliest kind, in plan order among equals" {
            let entry i model seed : SweepStatus.Entry = {
                Index = i
                Id = string i
                Task = TaskSpec.create "case" "quick" model seed
                State = SweepStatus.Missing
            }

            let kind model =
                TaskOrder.kindOf (TaskSpec.create "case" "quick" model 0)

            let pending = [ entry 0 "physics" 0; entry 1 "MLP" 1; entry 2 "LSTM" 1; entry 3 "LSTM" 2 ]
            let next = Hybrid.Cli.TaskOrder.next

            // Nothing measured: plan order, skipping a kind already running (being measured).
            Expect.equal (next pending Map.empty []) (Some 0) "first unmeasured"
            Expect.equal (next pending Map.empty [ kind "physics"; kind "MLP" ]) (Some 2) "LSTM not running yet"

            // All measured: the costliest (LSTM, mean 30 s) first, its first seed first.
            let measured =
                Map.ofList [
                    kind "physics", [ 1.0 ]
                    kind "MLP", [ 5.0; 7.0 ]
                    kind "LSTM", [ 20.0; 40.0 ]
                ]

            Expect.equal (next pending measured []) (Some 2) "costliest kind"
            Expect.equal (next [ entry 0 "physics" 0; entry 1 "MLP" 1 ] measured []) (Some 1) "MLP (6 s) before physics"

            // A kind being measured (running, no time yet) waits behind every measured one.
            let partly = measured |> Map.remove (kind "LSTM")

            Expect.equal (next pending partly [ kind "LSTM" ]) (Some 1) "measured MLP before the running LSTM's seeds"
            Expect.equal (next [] measured []) None "nothing pending"

            // A data share is part of the kind: another share is another kind, measured or not.
            let share (s: float) = {
                (TaskSpec.create "data-efficiency" "quick" "lorenz96" 0) with
                    Share = Some s
            }

            Expect.notEqual (TaskOrder.kindOf (share 0.5)) (TaskOrder.kindOf (share 1.0)) "share in the kind"
        }

        test "the Slurm array lists the unfinished tasks' indices as ranges, with the threads and the failure record" {
            Expect.equal (Hybrid.Cli.Slurm.arrayList [| 0; 1; 2; 3; 5; 7; 8; 9 |]) "0-3,5,7-9" "ranges"
            Expect.equal (Hybrid.Cli.Slurm.arrayList [| 4 |]) "4" "one task"

            let script =
                Hybrid.Cli.Slurm.arrayScript "/s w" "'dotnet' '/h.dll'" [| 3; 4; 6 |] 2 5

            Expect.stringContains script "#SBATCH --array=3-4,6%5\n#SBATCH --cpus-per-task=2\n" "array and CPUs"
            Expect.stringContains script "hybrid=('dotnet' '/h.dll')\n" "the command as a bash array"

            Expect.stringContains
                script
                "\"${hybrid[@]}\" sweep run '/s w' --index \"$SLURM_ARRAY_TASK_ID\" --threads \"$SLURM_CPUS_PER_TASK\""
                "one task per index, quoted folder, threads from Slurm"

            Expect.stringContains script "--record-exit \"$code\" --log \"$log\"" "a failure is recorded"
            Expect.equal (Hybrid.Cli.Slurm.quote "it's") "'it'\\''s'" "a quote inside quotes"
        }

        test "a failed task is recorded with its exit code and last lines, refused by the merge, and retried" {
            let folder = temporaryFolder ()

            let code, _, _ =
                hybrid 60 [] [ "sweep"; "plan"; folder; "--settings"; "failing"; "--only"; "synthetic" ]

            Expect.equal code 0 "plan"

            let code, _, err =
                hybrid 120 [ Synthetic.FailVariable, "1" ] [ "sweep"; "run"; folder; "--on"; "local:2" ]

            Expect.equal code 1 "the run reports the failures"
            Expect.stringContains err "sweep: 6/9 done, 0 running, 3 failed" "progress at the end"

            let code, out, _ = hybrid 60 [] [ "sweep"; "status"; folder ]
            Expect.equal code 1 "status: not all done"
            Expect.stringContains out $"{folder}: 9 tasks, 6 done, 3 failed, 0 missing" "counts"

            Expect.stringContains
                out
                "synthetic/failing flaky seed 1: exit code 3 … synthetic: the flaky task fails as asked (HYBRID_SYNTHETIC_FAIL is set)"
                "the failure's exit code and last line"

            let code, _, err = hybrid 60 [] [ "sweep"; "merge"; folder ]
            Expect.equal code 1 "merge refused"
            Expect.stringContains err "has 6 of 9 tasks done, 3 failed and 0 missing" "says why"
            let before = results folder
            let code, _, err = hybrid 120 [] [ "sweep"; "run"; folder; "--retry" ]
            Expect.equal code 0 $"retry: {err}"
            Expect.stringContains err "9 tasks, 6 done already, 3 to run" "only the failed ones run"
            let after = results folder

            for KeyValue(name, bytes) in before do
                Expect.equal after[name] bytes $"{name} was not computed again"

            let code, _, _ = hybrid 60 [] [ "sweep"; "merge"; folder ]
            Expect.equal code 0 "merge"
            let summary = File.ReadAllText(Path.Combine(folder, "report", "summary.md"))
            Expect.stringContains summary (synthetic3 + "\n| flaky | 30.500000 | 3 |") "the merged table"
            Directory.Delete(folder, true)
        }

        test "a sweep killed midway resumes: finished results stay valid and are not computed again" {
            let folder = temporaryFolder ()

            let code, _, _ =
                hybrid 60 [] [ "sweep"; "plan"; folder; "--settings"; "slow"; "--only"; "synthetic" ]

            Expect.equal code 0 "plan"
            use pool = Process.Start(startInfo [ "sweep"; "run"; folder; "--on"; "local:2" ] [])
            pool.StandardOutput.ReadToEndAsync() |> ignore
            pool.StandardError.ReadToEndAsync() |> ignore
            let clock = Stopwatch.StartNew()

            while (results folder).Count < 2 && clock.Elapsed.TotalSeconds < 90.0 do
                Threading.Thread.Sleep 50

            pool.Kill true
            pool.WaitForExit()
            let before = results folder
            Expect.isGreaterThanOrEqual before.Count 2 "two tasks had finished"
            Expect.isLessThan before.Count 6 "killed before the end"

            // Every result on disk is whole and valid.
            for KeyValue(name, bytes) in before do
                let r = TaskResult.ofJson name (Text.Encoding.UTF8.GetString bytes)
                Expect.equal (r.Id + ".json") name "file name = id"

            let code, _, err = hybrid 120 [] [ "sweep"; "run"; folder; "--on"; "local:2" ]
            Expect.equal code 0 $"resume: {err}"
            Expect.stringContains err $"6 tasks, {before.Count} done already, {6 - before.Count} to run" "resumed"
            let after = results folder
            Expect.equal after.Count 6 "all done"

            for KeyValue(name, bytes) in before do
                Expect.equal after[name] bytes $"{name} was not computed again"

            let code, _, _ = hybrid 60 [] [ "sweep"; "merge"; folder ]
            Expect.equal code 0 "merge"
            Expect.stringContains (File.ReadAllText(Path.Combine(folder, "report", "summary.md"))) synthetic3 "table"
            Directory.Delete(folder, true)
        }

        test "energy balance on a pool of two processes merges into the same files as the same tasks in this process" {
            let folder = temporaryFolder ()

            let code, out, _ =
                hybrid 60 [] [ "sweep"; "plan"; folder; "--settings"; "tiny"; "--only"; "energy-balance" ]

            Expect.equal code 0 "plan"

            Expect.stringContains
                out
                "20 tasks"
                "physics, 2 seeds of 5 networks (hybrid, no-physics control, LSTM, transformer, PINN), uncertainty: 2 members of 4 models and the hybrid's MC dropout"

            let code, _, err = hybrid 300 [] [ "sweep"; "run"; folder; "--on"; "local:2" ]
            Expect.equal code 0 $"run: {err}"
            // Two worker processes ran the 20 tasks, and each task's log holds its own output and no other's.
            let logs = Path.Combine(folder, "logs")
            Expect.equal (Directory.GetFiles(logs, "worker-*.log").Length) 2 "two workers for twenty tasks"
            let plan = SweepStatus.read folder

            for e in plan do
                let i = e.Index
                let log = File.ReadAllText(SweepFolder.logPath folder e.Id)
                Expect.stringContains log $"sweep: task {i} done in" $"task {i}'s log"

                for j in 0 .. plan.Length - 1 do
                    if j <> i then
                        Expect.isFalse (log.Contains $"sweep: task {j} (") $"task {j}'s output is not in task {i}'s log"

            let code, _, err = hybrid 120 [] [ "sweep"; "merge"; folder ]
            Expect.equal code 0 $"merge: {err}"
            expectSameFiles (Path.Combine(folder, "report"))
            Directory.Delete(folder, true)
        }

        test "energy balance on a private Slurm of three emulated nodes merges into the same files" {
            let cluster = temporaryFolder ()
            let code, log = slurmScript "start.sh" [ cluster; "3" ]
            Expect.equal code 0 $"start.sh: {log}"
            let pids = File.ReadAllLines(Path.Combine(cluster, "pids")) |> Array.map int
            Expect.equal pids.Length 5 "munged, slurmctld and three slurmd"

            try
                let folder = temporaryFolder ()
                let slurmConf = [ "SLURM_CONF", Path.Combine(cluster, "slurm.conf") ]

                let code, _, _ =
                    hybrid 60 [] [ "sweep"; "plan"; folder; "--settings"; "tiny"; "--only"; "energy-balance" ]

                Expect.equal code 0 "plan"

                let code, out, _ =
                    hybrid 60 [] [ "sweep"; "run"; folder; "--on"; "slurm"; "--dry-run"; "--limit"; "3" ]

                Expect.equal code 0 "dry run"
                Expect.stringContains out "#SBATCH --array=0-19%3\n#SBATCH --cpus-per-task=1" "the array of 20 tasks"
                Expect.stringContains out "sbatch --parsable --dependency=afterany:<array job id>" "the merge job"
                Expect.isFalse (Directory.Exists(Path.Combine(folder, "results"))) "nothing ran"

                let code, _, err =
                    hybrid 300 slurmConf [ "sweep"; "run"; folder; "--on"; "slurm"; "--limit"; "3" ]

                Expect.equal code 0 $"run: {err}"
                Expect.stringContains err "sweep: 20/20 done, 0 running, 0 failed" "progress to the end"
                // The merge job wrote the report.
                Expect.isTrue (File.Exists(Path.Combine(folder, "report", "summary.md"))) "merged by the merge job"
                expectSameFiles (Path.Combine(folder, "report"))
                Directory.Delete(folder, true)
            finally
                let code, log = slurmScript "stop.sh" [ cluster ]
                Expect.equal code 0 $"stop.sh: {log}"

                for pid in pids do
                    let alive =
                        try
                            not (Process.GetProcessById(pid).HasExited)
                        with :? ArgumentException ->
                            false

                    Expect.isFalse alive $"daemon {pid} stopped"

                Directory.Delete(cluster, true)
        }
    ]
