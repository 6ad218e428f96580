namespace Hybrid

open System
open System.Diagnostics
open System.Threading

/// One rule for threads: one thread drives torch at a time.
///
/// libtorch's random generator is process-wide (weights, dropout masks and `Engine.seed` all use it), and
/// TorchSharp 0.107 hands libtorch temporary Scalars that a garbage collection on another thread can free
/// mid-call (see `TensorArithmetic`). Two threads compiling or training at once would mix their random
/// streams (results that do not repeat) or crash inside libtorch. So Hybrid's entry points that draw random
/// numbers, train or integrate (`Compiler.compile`, `Rollout.run`, `Trainer.train`, `Trainer.lbfgs`,
/// `Engine.seed` and the `Uncertainty` functions that run passes or members) run inside this guard:
/// - on the thread that holds it, calls nest freely (training compiles and simulates inside);
/// - a call from any other thread while a run is active is refused at once with an
///   `InvalidOperationException` naming both runs and threads, never queued and never raced;
/// - the guard is released when the outermost call returns or throws.
/// Each run applies its seed inside the guard, at its start, so runs made one after another (on any threads)
/// give the same numbers as each made alone. Parallel training belongs to separate processes.
[<RequireQualifiedAccess>]
module TorchGuard =

    /// The thread holding the guard, the run it started with, when, and how deeply calls are nested.
    [<NoComparison; NoEquality>]
    type private Holder = {
        Thread: int
        ThreadName: string
        Run: string
        Clock: Stopwatch
        mutable Depth: int
    }

    let private gate = obj ()
    let mutable private holder: Holder option = None

    let private threadName (id: int) (name: string) =
        if String.IsNullOrEmpty name then
            $"thread {id}"
        else
            $"thread {id} ('{name}')"

    /// The active run and the managed id of the thread running it, or None when no run is active.
    let active () : (string * int) option =
        lock gate (fun () -> holder |> Option.map (fun h -> h.Run, h.Thread))

    let private release (thread: int) =
        lock gate (fun () ->
            match holder with
            | Some h when h.Thread = thread ->
                h.Depth <- h.Depth - 1

                if h.Depth = 0 then
                    holder <- None
            | _ -> ())

    /// The guard held by one `enter`: disposing it releases one level, once.
    type private Lease(thread: int, release: int -> unit) =
        let mutable released = 0

        interface IDisposable with
            member _.Dispose() =
                if Interlocked.Exchange(&released, 1) = 0 then
                    release thread

    /// Takes the guard for the run `name` (e.g. "Trainer.train") on this thread until the returned value is
    /// disposed (`use _ = TorchGuard.enter "…"`); disposing twice releases once. Re-entrant on the thread that
    /// holds it. Raises `InvalidOperationException` at once when another thread holds it, naming both runs,
    /// both threads and the fix.
    let enter (name: string) : IDisposable =
        let me = Thread.CurrentThread

        lock gate (fun () ->
            match holder with
            | Some h when h.Thread <> me.ManagedThreadId ->
                let elapsed =
                    h.Clock.Elapsed.TotalSeconds.ToString("F1", Globalization.CultureInfo.InvariantCulture)

                raise (
                    InvalidOperationException(
                        $"{name} was called on {threadName me.ManagedThreadId me.Name} while {h.Run} is running on {threadName h.Thread h.ThreadName} (for {elapsed} s). Hybrid drives torch from one thread at a time: libtorch's random generator is process-wide, so concurrent runs would mix their seeds and dropout masks and not repeat, and TorchSharp's temporary Scalars can be freed by another thread mid-call. Call Hybrid from one thread, or wait for the running call to finish before starting the next (the C# facade queues its own calls on one thread); to train in parallel, run separate processes."
                    )
                )
            | Some h -> h.Depth <- h.Depth + 1
            | None ->
                holder <-
                    Some {
                        Thread = me.ManagedThreadId
                        ThreadName = me.Name
                        Run = name
                        Clock = Stopwatch.StartNew()
                        Depth = 1
                    })

        new Lease(me.ManagedThreadId, release) :> IDisposable

    /// Runs `f` as the run `name` while holding the guard (see `enter`); released when `f` returns or throws.
    let run (name: string) (f: unit -> 'T) : 'T =
        use _ = enter name
        f ()
