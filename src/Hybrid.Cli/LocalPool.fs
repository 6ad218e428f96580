/// The local back end of `hybrid sweep run`: a pool of k worker processes (`hybrid sweep run <folder> --worker
/// --threads t`), each running one task at a time and many tasks in its life (so the cases' per-process caches and
/// libtorch's start are shared by the tasks it runs). The pool hands a worker its next task as it finishes one,
/// longest first (`TaskOrder`), writes each task's output into its own log, records a task whose worker died
/// without a result as failed (exit code and the last lines of its log) and starts another worker, and prints
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

// The task a worker is running: its entry, its log and its clock; `Streams` counts the finish markers read
// (stdout and stderr: both mean all of the task's output has been read).
type private Running = {
    Entry: SweepStatus.Entry
    Log: StreamWriter
    Clock: Stopwatch
    mutable Streams: int
    mutable Code: int
}

type private Worker = {
    Process: Process
    mutable Current: Running option
    /// Output read while no task runs (start-up, shut-down).
    Idle: StreamWriter
}

let private start (folder: string) (threads: int) (number: int) : Worker =
    let exe, leading = selfCommand ()
    let info = ProcessStartInfo exe

    for a in leading @ [ "sweep"; "run"; folder; "--worker"; "--threads"; string threads ] do
        info.ArgumentList.Add a

    info.RedirectStandardInput <- true
    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info.UseShellExecute <- false
    let idlePath = Path.Combine(folder, "logs", $"worker-{number}.log")
    Directory.CreateDirectory(Path.GetDirectoryName idlePath) |> ignore
    let p = new Process(StartInfo = info)

    let w = {
        Process = p
        Current = None
        Idle = new StreamWriter(idlePath, true, AutoFlush = true)
    }

    let read (line: string) =
        if not (isNull line) then
            lock w (fun () ->
                match w.Current with
                | Some r when line.StartsWith Sweep.WorkerMarker ->
                    let parts = line.Substring(Sweep.WorkerMarker.Length).Trim().Split ' '
                    r.Code <- int parts[1]
                    r.Streams <- r.Streams + 1
                | Some r -> r.Log.WriteLine line
                | None -> w.Idle.WriteLine line)

    p.OutputDataReceived.Add(fun e -> read e.Data)
    p.ErrorDataReceived.Add(fun e -> read e.Data)
    p.Start() |> ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    w

// Hands `entry` to the idle worker `w`: its output goes to the task's log from now on.
let private assign (folder: string) (w: Worker) (entry: SweepStatus.Entry) =
    let logPath = SweepFolder.logPath folder entry.Id
    Directory.CreateDirectory(Path.GetDirectoryName logPath) |> ignore

    lock w (fun () ->
        w.Current <-
            Some {
                Entry = entry
                Log = new StreamWriter(logPath, false, AutoFlush = true)
                Clock = Stopwatch.StartNew()
                Streams = 0
                Code = 0
            })

    w.Process.StandardInput.WriteLine(string entry.Index)
    w.Process.StandardInput.Flush()

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
    let queue = ResizeArray pending
    let mutable measured = TaskOrder.measuredIn folder entries
    let pool = ResizeArray<Worker>()
    let mutable started = 0

    // A pool stopped by a signal (Ctrl+C, SIGTERM) stops its workers too; their tasks stay missing.
    let stopWorkers () =
        for w in pool.ToArray() do
            try
                if not w.Process.HasExited then
                    w.Process.Kill true
            with _ ->
                ()

    use _ = AppDomain.CurrentDomain.ProcessExit.Subscribe(fun _ -> stopWorkers ())

    let running () =
        pool |> Seq.filter (fun w -> w.Current.IsSome) |> Seq.length

    let progress () =
        let perTask =
            if durations.Count = 0 then
                None
            else
                Some(Seq.average durations)

        eprintfn "sweep: %s" (SweepStatus.progressLine total finished (running ()) failed perTask workers)

    eprintfn
        $"sweep: {folder}: {total} tasks, {finishedBefore} done already, {pending.Length} to run on {workers} processes of {threads} thread(s)"

    // Books the end of the task `r`: done when its result is on disk, failed otherwise (its `.err` written by the
    // worker, or here with the exit code and the log's last lines when the worker died).
    let finish (r: Running) (code: int) =
        lock r.Log (fun () -> r.Log.Dispose())
        let id = r.Entry.Id

        if File.Exists(SweepFolder.resultPath folder id) then
            finished <- finished + 1
            let seconds = r.Clock.Elapsed.TotalSeconds
            durations.Add seconds
            let kind = TaskOrder.kindOf r.Entry.Task

            measured <- measured.Add(kind, seconds :: (measured.TryFind kind |> Option.defaultValue []))
        else
            failed <- failed + 1

            if not (File.Exists(SweepFolder.errorPath folder id)) then
                SweepFolder.writeError folder id code (SweepFolder.lastLines 20 (SweepFolder.logPath folder id))

            eprintfn
                $"sweep: task {r.Entry.Index} ({TaskSpec.describe r.Entry.Task}) failed with exit code {code}; its log: {SweepFolder.logPath folder id}"

    // The next task, longest first (`TaskOrder`), taken off the queue.
    let dequeue () =
        let kinds = [
            for w in pool do
                match w.Current with
                | Some r -> TaskOrder.kindOf r.Entry.Task
                | None -> ()
        ]

        let i = (TaskOrder.next (List.ofSeq queue) measured kinds).Value
        let e = queue[i]
        queue.RemoveAt i
        e

    let mutable changed = false

    while queue.Count > 0 || running () > 0 do
        // Idle workers take the next tasks; new workers start while tasks wait and the pool is not full.
        for w in pool.ToArray() do
            if w.Current.IsNone && queue.Count > 0 && not w.Process.HasExited then
                assign folder w (dequeue ())

        while queue.Count > 0 && pool.Count < workers do
            started <- started + 1
            let w = start folder threads started
            pool.Add w
            assign folder w (dequeue ())

        // One line per ended task, once the pool has handed out the next one.
        if changed then
            progress ()
            changed <- false

        let ended =
            pool
            |> Seq.tryPick (fun w ->
                lock w (fun () ->
                    match w.Current with
                    | Some r when r.Streams >= 2 ->
                        w.Current <- None
                        Some(w, r, r.Code, false)
                    | Some r when w.Process.HasExited -> Some(w, r, 0, true)
                    | _ -> None))

        match ended with
        | None ->
            // A worker that ended between tasks (it should not) leaves the pool; another starts if tasks wait.
            for w in pool.ToArray() do
                if w.Current.IsNone && w.Process.HasExited then
                    pool.Remove w |> ignore
                    w.Idle.Dispose()

            Threading.Thread.Sleep 50
        | Some(w, r, code, died) ->
            if died then
                // Read the rest of its output into the task's log before booking the failure.
                w.Process.WaitForExit()
                lock w (fun () -> w.Current <- None)
                finish r w.Process.ExitCode
                pool.Remove w |> ignore
                w.Idle.Dispose()
                w.Process.Dispose()
            else
                finish r code

            changed <- true

    // Every task has ended: the workers read the end of their input and exit.
    for w in pool do
        try
            w.Process.StandardInput.Close()
            w.Process.WaitForExit 10000 |> ignore
        with _ ->
            ()

        w.Idle.Dispose()

    if changed then
        progress ()

    if finished = total then
        0
    else
        eprintfn
            $"sweep: {total - finished} of {total} tasks are not done; `hybrid sweep status {folder}` lists them, `hybrid sweep run {folder} --retry` runs them again."

        1
