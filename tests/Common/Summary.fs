/// Shared entry point of the Expecto test projects: runs the tests and, when the environment variable
/// HYBRID_TEST_SUMMARY names a file, writes "passed failed skipped" to it so that the build script can
/// add up all test projects into one closing line.
module Hybrid.Tests.Summary

open System.IO
open Expecto
open Expecto.Impl

let private record (summary: TestRunSummary) =
    match System.Environment.GetEnvironmentVariable "HYBRID_TEST_SUMMARY" with
    | null
    | "" -> ()
    | path ->
        let failed = summary.failed.Length + summary.errored.Length
        File.WriteAllText(path, $"{summary.passed.Length} {failed} {summary.ignored.Length}")

/// Runs `tests` with Expecto's command-line arguments and records the counts; returns the exit code.
let run (argv: string[]) (tests: Test) : int =
    runTestsWithCLIArgs [ Append_Summary_Handler(SummaryHandler record) ] argv tests
