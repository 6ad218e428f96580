/// Shared entry point of the Expecto test projects: runs the tests and, when the environment variable
/// HYBRID_TEST_SUMMARY names a file, writes "passed failed skipped" to it so that the build script can
/// add up all test projects into one closing line.
module Hybrid.Tests.Summary

open System.IO
open Expecto
open Expecto.Impl

let private record (counts: int * int * int) =
    match System.Environment.GetEnvironmentVariable "HYBRID_TEST_SUMMARY" with
    | null
    | "" -> ()
    | path ->
        let passed, failed, skipped = counts
        File.WriteAllText(path, $"{passed} {failed} {skipped}")

let private runCounting (args: CLIArguments list) (argv: string[]) (tests: Test) =
    let mutable counts = (0, 0, 0)

    let keep (s: TestRunSummary) =
        counts <- (s.passed.Length, s.failed.Length + s.errored.Length, s.ignored.Length)

    let code =
        runTestsWithCLIArgs (Append_Summary_Handler(SummaryHandler keep) :: args) argv tests

    code, counts

/// Runs `tests` with Expecto's command-line arguments and records the counts; returns the exit code.
let run (argv: string[]) (tests: Test) : int =
    let code, counts = runCounting [] argv tests
    record counts
    code

/// Runs `tests` one at a time, in the order given, and records the counts. Test projects that use TorchSharp
/// run this way: TorchSharp 0.107 hands libtorch temporary Scalars (in `t * 2.0`, in `a + b`, inside its
/// optimisers) that nothing keeps alive during the native call, so a garbage collection started by a test
/// on another thread can free one mid-call ("Expected false to be true", "Unknown scalar type"). One test
/// at a time leaves no other thread to start that collection; libtorch still uses every core inside each
/// operation. Tests that change process-wide state or measure process memory need this too.
let runOneAtATime (argv: string[]) (tests: Test) : int =
    let code, counts = runCounting [ Sequenced ] argv tests
    record counts
    code
