namespace Hybrid.Kernels

open System
open System.Threading

/// A unit of parallel work: `Execute j` runs part j of a pass (parts are independent: no two write the same
/// memory). Passes are objects made once and reused, so running one allocates nothing.
type internal IParts =
    abstract Execute: part: int -> unit

/// The persistent threads the generated kernels split their passes over. `Run` hands the parts of one pass to the
/// calling thread and `threads − 1` workers: thread i first runs its own block of parts (the i-th of T contiguous
/// blocks, so each core works on the same rows pass after pass and finds them in its cache), then takes parts the
/// others have not started. Each part runs exactly once and the call returns when all have run, rethrowing the
/// first failure. Idle workers spin for about `spinMicroseconds` after a pass (the next pass of a step follows
/// within microseconds) and then block, so an idle pool costs no CPU. Workers never call TorchSharp: parts are
/// plain array loops.
///
/// One pass at a time: a `Run` that finds the pool busy (another thread's pass, or a part calling `Run`) runs its
/// parts on the calling thread, in order. Which thread runs a part never changes its result: parts own their
/// outputs, and partial sums are combined by the caller in part order.
type internal WorkerPool(threads: int, spinMicroseconds: float) =
    let gate = obj ()
    let mutable generation = 0L
    let mutable disposed = false
    let mutable work: IParts = Unchecked.defaultof<_>
    let mutable count = 0
    let mutable pending = 0
    let mutable failure: exn = null
    // 1 while a pass's state is complete and parts may be taken; workers inside `drain` are counted in `active`,
    // and the caller changes the state only after closing the pass and seeing no worker active.
    let mutable isOpen = 0
    let mutable active = 0
    let mutable busy = 0

    // claimed[j] = 1 once a thread took part j of the current pass.
    let mutable claimed = Array.zeroCreate<int> 64

    /// Runs part j if no other thread took it.
    let tryRun (j: int) =
        if Interlocked.CompareExchange(&claimed[j], 1, 0) = 0 then
            try
                work.Execute j
            with e ->
                Interlocked.CompareExchange(&failure, e, null) |> ignore

            Interlocked.Decrement(&pending) |> ignore

    /// Thread `me` (0 = the caller) runs its own block of parts — parts [me·n/T, (me + 1)·n/T), the same rows
    /// pass after pass, so each core keeps working on the data it wrote last (its cache) — then takes what the
    /// others have not started.
    let drain (me: int) =
        let first = int (int64 me * int64 count / int64 threads)
        let last = int (int64 (me + 1) * int64 count / int64 threads)

        for j in first .. last - 1 do
            tryRun j

        for j in 0 .. count - 1 do
            if Volatile.Read(&claimed[j]) = 0 then
                tryRun j

    let spinTicks =
        int64 (spinMicroseconds * float Diagnostics.Stopwatch.Frequency / 1e6)

    let workerLoop (me: int) () =
        let mutable seen = 0L

        while not (Volatile.Read(&disposed)) do
            // Spin briefly for the next pass, then block until one is posted.
            let started = Diagnostics.Stopwatch.GetTimestamp()

            while Volatile.Read(&generation) = seen
                  && Diagnostics.Stopwatch.GetTimestamp() - started < spinTicks do
                Thread.SpinWait(20)

            if Volatile.Read(&generation) = seen then
                lock gate (fun () ->
                    while Volatile.Read(&generation) = seen && not disposed do
                        Monitor.Wait gate |> ignore)

            seen <- Volatile.Read(&generation)
            Interlocked.Increment(&active) |> ignore

            if Volatile.Read(&isOpen) = 1 then
                drain me

            Interlocked.Decrement(&active) |> ignore

    let workers =
        Array.init (max 0 (threads - 1)) (fun i ->
            let thread =
                Thread(workerLoop (i + 1), IsBackground = true, Name = $"hybrid-kernel-{i + 1}")

            thread.Start()
            thread)

    /// Threads that run parts, the caller's included.
    member _.Threads = workers.Length + 1

    /// Runs parts 0 … parts − 1 of `pass`, over the pool when it is free and has workers, else on this thread.
    member _.Run(parts: int, pass: IParts) =
        if parts = 1 || workers.Length = 0 || Interlocked.CompareExchange(&busy, 1, 0) <> 0 then
            for j in 0 .. parts - 1 do
                pass.Execute j
        else
            try
                work <- pass
                count <- parts
                failure <- null
                pending <- parts

                if claimed.Length < parts then
                    claimed <- Array.zeroCreate parts
                else
                    Array.Clear(claimed, 0, parts)

                Interlocked.Exchange(&isOpen, 1) |> ignore

                lock gate (fun () ->
                    Interlocked.Increment(&generation) |> ignore
                    Monitor.PulseAll gate)

                drain 0
                let mutable spinner = SpinWait()

                while Volatile.Read(&pending) > 0 do
                    spinner.SpinOnce(-1)

                // Close the pass, then wait for workers still inside `drain` (they find no part left) to leave.
                Interlocked.Exchange(&isOpen, 0) |> ignore

                while Volatile.Read(&active) > 0 do
                    spinner.SpinOnce(-1)

                work <- Unchecked.defaultof<_>

                match failure with
                | null -> ()
                | e -> Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw()
            finally
                Volatile.Write(&busy, 0)

    interface IDisposable with
        member _.Dispose() =
            lock gate (fun () ->
                disposed <- true
                Monitor.PulseAll gate)

/// The process's kernel thread pool and its size.
[<RequireQualifiedAccess>]
module internal KernelThreads =

    /// Threads for the kernels: $HYBRID_THREADS, else $SLURM_CPUS_PER_TASK, else the processor count; a value
    /// that is not a positive integer is refused with the variable's name.
    let configured () =
        let read (name: string) =
            match Environment.GetEnvironmentVariable name with
            | null
            | "" -> None
            | text ->
                match Int32.TryParse(text.Trim()) with
                | true, n when n >= 1 -> Some n
                | _ ->
                    raise (
                        ArgumentException(
                            $"{name} = '{text}' is not a number of threads: set it to a positive integer (e.g. {name}=2) or unset it."
                        )
                    )

        read "HYBRID_THREADS"
        |> Option.orElse (read "SLURM_CPUS_PER_TASK")
        |> Option.defaultValue Environment.ProcessorCount

    let private gate = obj ()
    let private pools = Collections.Generic.Dictionary<int, WorkerPool>()
    let mutable private current: WorkerPool option = None

    let private poolOf (threads: int) =
        lock gate (fun () ->
            match pools.TryGetValue threads with
            | true, p -> p
            | _ ->
                let p = new WorkerPool(threads, 50.0)
                pools[threads] <- p
                p)

    /// The pool the kernels use: `configured ()` threads, started on first use, unless `useThreads` chose another.
    let pool () =
        match current with
        | Some p -> p
        | None ->
            let p = poolOf (configured ())
            current <- Some p
            p

    /// Makes the kernels run on `threads` threads from now on (benchmarks compare thread counts in one process;
    /// each count's pool is started once and kept).
    let useThreads (threads: int) =
        if threads < 1 then
            invalidArg "threads" $"threads = {threads}: give at least 1."

        current <- Some(poolOf threads)
