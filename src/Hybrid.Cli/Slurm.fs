/// The Slurm back end of `hybrid sweep run --on slurm`: writes `<folder>/sweep.sbatch`, a job array of the
/// unfinished tasks (one `hybrid sweep run <folder> --index $SLURM_ARRAY_TASK_ID` each, `--cpus-per-task` threads,
/// at most `limit` at once; a task that fails records its exit code and the last lines of its log), and
/// `<folder>/merge.sbatch`, which runs `hybrid sweep merge` after the array (`--dependency=afterany`); submits
/// both and follows the sweep's progress until they leave the queue, or with `--dry-run` prints them and submits
/// nothing. Both files are plain scripts to edit and submit by hand (partition, account, time limits).
module internal Hybrid.Cli.Slurm

open System
open System.Diagnostics
open System.IO
open Hybrid
open Hybrid.Models.Tasks

/// A word quoted for bash ('…', with every ' written as '\'').
let quote (word: string) = "'" + word.Replace("'", "'\\''") + "'"

/// Slurm's array index list of `indices` (ascending): ranges where they run on, e.g. "0-3,5,7-9".
let arrayList (indices: int[]) : string =
    let ranges = ResizeArray<int * int>()

    for i in indices do
        if ranges.Count > 0 && snd ranges[ranges.Count - 1] = i - 1 then
            ranges[ranges.Count - 1] <- (fst ranges[ranges.Count - 1], i)
        else
            ranges.Add(i, i)

    ranges
    |> Seq.map (fun (a, b) -> if a = b then string a else $"{a}-{b}")
    |> String.concat ","

/// The job-array script for the tasks at `indices` of the sweep in `folder` (absolute), `threads` CPUs per task,
/// at most `limit` running at once; `hybrid` is the command that starts Hybrid's CLI.
let arrayScript (folder: string) (hybrid: string) (indices: int[]) (threads: int) (limit: int) : string =
    let f = quote folder
    let logs = Path.Combine(folder, "logs")

    String.concat "\n" [
        "#!/bin/bash"
        "# One task of a Hybrid sweep per array index (the line of tasks.jsonl); written by `hybrid sweep run --on slurm`."
        "# Edit the #SBATCH lines (partition, account, time limit) and submit it yourself if you like: finished tasks"
        "# are skipped, so submitting it again resumes the sweep."
        "#SBATCH --job-name=hybrid-sweep"
        $"#SBATCH --array={arrayList indices}%%{limit}"
        $"#SBATCH --cpus-per-task={threads}"
        $"#SBATCH --output={logs}/slurm-%%A_%%a.out"
        $"hybrid=({hybrid})"
        "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"
        $"log={quote logs}/task-$SLURM_ARRAY_TASK_ID.log"
        $"\"${{hybrid[@]}}\" sweep run {f} --index \"$SLURM_ARRAY_TASK_ID\" --threads \"$SLURM_CPUS_PER_TASK\" 2> >(tee \"$log\" >&2)"
        "code=$?"
        "if [ \"$code\" -ne 0 ]; then"
        $"    \"${{hybrid[@]}}\" sweep run {f} --index \"$SLURM_ARRAY_TASK_ID\" --record-exit \"$code\" --log \"$log\""
        "fi"
        "exit \"$code\""
        ""
    ]

/// The merge job's script: the sweep's status, then `hybrid sweep merge` into `<folder>/report`.
let mergeScript (folder: string) (hybrid: string) : string =
    let f = quote folder
    let logs = Path.Combine(folder, "logs")

    String.concat "\n" [
        "#!/bin/bash"
        "# Merges a Hybrid sweep's results into <folder>/report once its array has ended (written by `hybrid sweep run --on slurm`)."
        "#SBATCH --job-name=hybrid-merge"
        "#SBATCH --cpus-per-task=1"
        $"#SBATCH --output={logs}/slurm-merge-%%j.out"
        $"hybrid=({hybrid})"
        $"\"${{hybrid[@]}}\" sweep status {f}"
        $"\"${{hybrid[@]}}\" sweep merge {f}"
        ""
    ]

/// Runs a Slurm command; its standard output, trimmed. A failure raises a `HybridException` with its error.
let private slurm (command: string) (args: string list) : string =
    let info = ProcessStartInfo command

    for a in args do
        info.ArgumentList.Add a

    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true

    use p =
        try
            Process.Start info
        with :? ComponentModel.Win32Exception ->
            raise (
                HybridException
                    $"Cannot start {command}: Slurm's commands are not on PATH. Run on a Slurm login node, or start a private Slurm with scripts/slurm/start.sh."
            )

    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    p.WaitForExit()

    if p.ExitCode <> 0 then
        let words = String.Join(" ", args)
        raise (HybridException $"{command} {words} failed with exit code {p.ExitCode}: {err.Result.Trim()}")

    out.Result.Trim()

/// Writes the scripts, submits the array and the merge job (unless `dryRun`) and follows progress until both
/// have left the queue; returns 0 when every task is done, 1 otherwise.
let run (folder: string) (retry: bool) (threads: int) (dryRun: bool) (limit: int) : int =
    let folder = Path.GetFullPath folder
    let entries = SweepStatus.read folder
    let pending = SweepStatus.pending retry entries

    if pending.Length = 0 then
        eprintfn $"sweep: every task of {folder} is done (or failed: run with --retry); nothing to submit"

        if SweepStatus.pending true entries |> Array.isEmpty then
            0
        else
            1
    else
        let exe, leading = LocalPool.selfCommand ()
        let hybrid = exe :: leading |> List.map quote |> String.concat " "
        Directory.CreateDirectory(Path.Combine(folder, "logs")) |> ignore
        let arrayPath = Path.Combine(folder, "sweep.sbatch")
        let mergePath = Path.Combine(folder, "merge.sbatch")

        File.WriteAllText(arrayPath, arrayScript folder hybrid (pending |> Array.map (fun e -> e.Index)) threads limit)

        File.WriteAllText(mergePath, mergeScript folder hybrid)

        if dryRun then
            printfn "%s" (File.ReadAllText arrayPath)
            printfn "%s" (File.ReadAllText mergePath)
            printfn $"sbatch --parsable {arrayPath}"
            printfn $"sbatch --parsable --dependency=afterany:<array job id> {mergePath}"
            0
        else
            let array = slurm "sbatch" [ "--parsable"; arrayPath ]

            let merge =
                slurm "sbatch" [ "--parsable"; $"--dependency=afterany:{array}"; mergePath ]

            eprintfn
                $"sweep: submitted {pending.Length} tasks as job array {array} and the merge as job {merge} (afterany); following progress (Ctrl+C stops following, not the jobs)"

            let clock = Stopwatch.StartNew()
            let mutable last = ""
            let mutable queued = true

            while queued do
                Threading.Thread.Sleep 1000

                let lines =
                    slurm "squeue" [ "-h"; "-r"; "-j"; $"{array},{merge}"; "-o"; "%i %t" ]
                    |> fun s -> s.Split('\n', StringSplitOptions.RemoveEmptyEntries)

                queued <- lines.Length > 0

                let running =
                    lines
                    |> Array.filter (fun l -> l.StartsWith(array + "_") && l.EndsWith " R")
                    |> Array.length

                let now = SweepStatus.read folder
                let finished, failed, _ = SweepStatus.counts now
                let doneHere = finished - (entries.Length - pending.Length)

                let perTask =
                    if doneHere > 0 then
                        Some(clock.Elapsed.TotalSeconds * float (max 1 running) / float doneHere)
                    else
                        None

                let line =
                    SweepStatus.progressLine now.Length finished running failed perTask (max 1 running)

                if line <> last then
                    eprintfn "sweep: %s" line
                    last <- line

            let finished, _, _ = SweepStatus.counts (SweepStatus.read folder)

            if finished = entries.Length then
                let summary = Path.Combine(folder, "report", "summary.md")
                eprintfn $"sweep: done; the merge job writes {summary}"
                0
            else
                eprintfn
                    $"sweep: {entries.Length - finished} of {entries.Length} tasks are not done; `hybrid sweep status {folder}` lists them, `hybrid sweep run {folder} --on slurm --retry` submits them again."

                1
