/// The local back end of `hybrid sweep run`: a pool of k child processes (`hybrid sweep run <folder> --index N
/// --threads t`), each running one task and writing its result; the pool starts the next task as one ends,
/// records a child that died without a result as failed (exit code and the last lines of its log), and prints
/// progress on standard error.
module internal Hybrid.Cli.LocalPool

open System
open System.Diagnostics
open System.IO
open Hybrid.Models.Tasks

/// The command that starts this program again: the executable and the arguments before the verb (the
/// assembly's path when it runs under `dotnet`).
let selfCommand () : string * string list =
    let exe = Environment.ProcessPath

    if Path.GetFileNameWithoutExtension exe = "dotnet" then
        exe, [ Reflection.Assembly.GetEntryAssembly().Location ]
    else
        exe, []

/// Pool size and threads per task: from what is given, else k = cores / threads (threads 1 by default), and
/// threads = cores / k when only k is given.
let shape (workers: int option) (threads: int option) : int * int =
    let cores = Environment.ProcessorCount

    match workers, threads with
    | Some k, Some t -> k, t
    | Some k, None -> k, max 1 (cores / k)
    | None, Some t -> max 1 (cores / t), t
    | None, None -> cores, 1

type private Child = {
    Entry: SweepStatus.Entry
    Process: Process
    Log: StreamWriter
    Clock: Stopwatch
}

let private start (folder: string) (threads: int) (entry: SweepStatus.Entry) : Child =
    let exe, leading = selfCommand ()
    let info = ProcessStartInfo exe

    for a in
        leading
        @ [
            "sweep"
            "run"
            folder
            "--index"
            string entry.Index
            "--threads"
            string threads
        ] do
        info.ArgumentList.Add a

    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info.UseShellExecute <- false
    let logPath = SweepFolder.logPath folder entry.Id
    Directory.CreateDirectory(Path.GetDirectoryName logPath) |> ignore
    let log = new StreamWriter(logPath, false, AutoFlush = true)
    let p = new Process(StartInfo = info)

    let write (line: string) =
        if not (isNull line) then
            lock log (fun () -> log.WriteLine line)

    p.OutputDataReceived.Add(fun e -> write e.Data)
    p.ErrorDataReceived.Add(fun e -> write e.Data)
    p.Start() |> ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()

    {
        Entry = entry
        Process = p
        Log = log
        Clock = Stopwatch.StartNew()
    }

/// Runs the unfinished tasks of the sweep in `folder` (with `retry` the failed ones too) on `workers` processes of
/// `threads` libtorch threads each. Returns 0 when every task of the plan is done, 1 otherwise (with a line
/// that says how to see and retry the failed ones).
let run (folder: string) (workers: int) (threads: int) (retry: bool) : int =
    let entries = SweepStatus.read folder
    let pending = SweepStatus.pending retry entries
    let total = entries.Length
    let finishedBefore, failedBefore, _ = SweepStatus.counts entries
    let mutable finished = finishedBefore
    let mutable failed = if retry then 0 else failedBefore
    let durations = ResizeArray<float>()
    let queue = Collections.Generic.Queue pending
    let running = ResizeArray<Child>()

    // A pool stopped by a signal (Ctrl+C, SIGTERM) stops its children too; their tasks stay missing.
    let stopChildren () =
        for c in running.ToArray() do
            try
                if not c.Process.HasExited then
                    c.Process.Kill true
            with _ ->
                ()

    use _ = AppDomain.CurrentDomain.ProcessExit.Subscribe(fun _ -> stopChildren ())

    let progress () =
        let perTask =
            if durations.Count = 0 then
                None
            else
                Some(Seq.average durations)

        eprintfn "sweep: %s" (SweepStatus.progressLine total finished running.Count failed perTask workers)

    eprintfn
        $"sweep: {folder}: {total} tasks, {finishedBefore} done already, {pending.Length} to run on {workers} processes of {threads} thread(s)"

    let mutable changed = false

    while queue.Count > 0 || running.Count > 0 do
        while queue.Count > 0 && running.Count < workers do
            running.Add(start folder threads (queue.Dequeue()))

        // One line per ended task, once the pool has started the next one.
        if changed then
            progress ()
            changed <- false

        let ended = running |> Seq.tryFind (fun c -> c.Process.HasExited)

        match ended with
        | None -> Threading.Thread.Sleep 100
        | Some c ->
            c.Process.WaitForExit()
            running.Remove c |> ignore
            let code = c.Process.ExitCode
            lock c.Log (fun () -> c.Log.Dispose())
            c.Process.Dispose()
            let id = c.Entry.Id

            if File.Exists(SweepFolder.resultPath folder id) then
                finished <- finished + 1
                durations.Add c.Clock.Elapsed.TotalSeconds
            else
                failed <- failed + 1

                if not (File.Exists(SweepFolder.errorPath folder id)) then
                    SweepFolder.writeError folder id code (SweepFolder.lastLines 20 (SweepFolder.logPath folder id))

                eprintfn
                    $"sweep: task {c.Entry.Index} ({TaskSpec.describe c.Entry.Task}) failed with exit code {code}; its log: {SweepFolder.logPath folder id}"

            changed <- true

    if changed then
        progress ()

    if finished = total then
        0
    else
        eprintfn
            $"sweep: {total - finished} of {total} tasks are not done; `hybrid sweep status {folder}` lists them, `hybrid sweep run {folder} --retry` runs them again."

        1
