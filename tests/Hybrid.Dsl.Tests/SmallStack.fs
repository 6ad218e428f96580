/// Running a test body on a thread with a small stack, so that a walk recursing once per term of a long
/// sum would overflow (and end the test process) instead of passing on the default 8 MB stack.
module Hybrid.Dsl.Tests.SmallStack

open System.Runtime.ExceptionServices
open System.Threading

/// The stack size of `run`'s thread: 256 KB (a recursive printer overflowed it at 2,000 terms).
let bytes = 256 * 1024

/// Runs `f` on a new thread with a `bytes` stack and returns its result, or rethrows its exception.
let run (f: unit -> 'a) : 'a =
    let result = ref Unchecked.defaultof<'a>
    let error = ref null

    let t =
        Thread(
            (fun () ->
                try
                    result.Value <- f ()
                with e ->
                    error.Value <- ExceptionDispatchInfo.Capture e),
            bytes
        )

    t.Start()
    t.Join()

    match error.Value with
    | null -> result.Value
    | e ->
        e.Throw()
        result.Value
