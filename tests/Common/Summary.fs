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

/// Runs `exclusive` first, one test at a time and alone (tests that change process-wide state such as
/// TorchSharp's default dtype must not overlap others), then `others` in parallel as usual; records the sums.
let runWithExclusive (argv: string[]) (exclusive: Test) (others: Test) : int =
    let code1, (p1, f1, s1) = runCounting [ Sequenced ] argv exclusive
    let code2, (p2, f2, s2) = runCounting [] argv others
    record (p1 + p2, f1 + f2, s1 + s2)
    max code1 code2
