/// The `hybrid` command as a user runs it: the built CLI (a build dependency of this project) started as a
/// process from an empty folder; help exits 0 and prints usage to standard output, unknown verbs and options
/// exit 2 with the error and usage on standard error, and nothing is run or written.
module Hybrid.Cli.Tests.CliTests

open System
open System.Diagnostics
open System.IO
open Expecto

/// hybrid.dll of the configuration this test assembly was built in (bin/<configuration>/<tfm>/).
let internal cli =
    lazy
        (let here =
            DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar))

         let tfm, configuration = here.Name, here.Parent.Name

         let rec root (d: DirectoryInfo) =
             if isNull d then
                 failwith $"no folder above {AppContext.BaseDirectory} holds src/Hybrid.Cli"
             elif File.Exists(Path.Combine(d.FullName, "src", "Hybrid.Cli", "Hybrid.Cli.fsproj")) then
                 d.FullName
             else
                 root d.Parent

         let dll =
             Path.Combine(root here, "src", "Hybrid.Cli", "bin", configuration, tfm, "hybrid.dll")

         if not (File.Exists dll) then
             failwith $"{dll} is missing: build tests/Hybrid.Cli.Tests (it builds the CLI)."

         dll)

/// Runs `hybrid args` in a fresh empty folder: exit code, standard output, standard error, and the folder's
/// entries afterwards.
let private hybrid (args: string list) =
    let folder =
        Path.Combine(Path.GetTempPath(), "hybrid-cli-" + Guid.NewGuid().ToString("N"))

    Directory.CreateDirectory folder |> ignore

    try
        let info = ProcessStartInfo("dotnet")
        info.ArgumentList.Add cli.Value

        for a in args do
            info.ArgumentList.Add a

        info.WorkingDirectory <- folder
        info.RedirectStandardOutput <- true
        info.RedirectStandardError <- true
        use p = Process.Start info
        let out = p.StandardOutput.ReadToEndAsync()
        let err = p.StandardError.ReadToEndAsync()

        if not (p.WaitForExit 60_000) then
            p.Kill true
            failwith $"hybrid {args} did not finish within 60 s"

        p.ExitCode, out.Result, err.Result, Directory.GetFileSystemEntries folder
    finally
        Directory.Delete(folder, true)

let tests =
    testList "Cli" [
        test "verbs and options parse in any order; no verb runs the demo" {
            let parse = Hybrid.Cli.Arguments.parse

            for argv, expected in
                [
                    [||], Hybrid.Cli.Arguments.RunDemo
                    [| "demo" |], Hybrid.Cli.Arguments.RunDemo
                    [| "info" |], Hybrid.Cli.Arguments.ShowInfo
                    [| "report" |], Hybrid.Cli.Arguments.RunReport("report", false)
                    [| "report"; "--quick"; "report" |], Hybrid.Cli.Arguments.RunReport("report", true)
                    [| "report"; "out"; "--quick" |], Hybrid.Cli.Arguments.RunReport("out", true)
                    [| "report"; "out" |], Hybrid.Cli.Arguments.RunReport("out", false)
                    [| "climate" |], Hybrid.Cli.Arguments.RunClimate("climate", true)
                    [| "climate"; "--full" |], Hybrid.Cli.Arguments.RunClimate("climate", false)
                    [| "climate"; "out"; "--full" |], Hybrid.Cli.Arguments.RunClimate("out", false)
                    [| "climate"; "out" |], Hybrid.Cli.Arguments.RunClimate("out", true)
                    [| "bench" |], Hybrid.Cli.Arguments.RunBench "bench/results.md"
                    [| "bench"; "b.md" |], Hybrid.Cli.Arguments.RunBench "b.md"
                    [| "bench-kernels" |], Hybrid.Cli.Arguments.RunBenchKernels false
                    [| "bench-kernels"; "--quick" |], Hybrid.Cli.Arguments.RunBenchKernels true
                    [| "bench-gpu" |], Hybrid.Cli.Arguments.RunBenchGpu(false, false)
                    [| "bench-gpu"; "--quick"; "--cpu" |], Hybrid.Cli.Arguments.RunBenchGpu(true, true)
                    [| "bench-peers" |], Hybrid.Cli.Arguments.RunBenchPeers false
                    [| "bench-peers"; "--quick" |], Hybrid.Cli.Arguments.RunBenchPeers true
                    [| "bench-stiff" |], Hybrid.Cli.Arguments.RunBenchStiff false
                    [| "bench-stiff"; "--quick" |], Hybrid.Cli.Arguments.RunBenchStiff true
                    [| "bench-closures" |], Hybrid.Cli.Arguments.RunBenchClosures false
                    [| "bench-closures"; "--quick" |], Hybrid.Cli.Arguments.RunBenchClosures true
                    [| "bench-face-fluxes" |], Hybrid.Cli.Arguments.RunBenchFaceFluxes false
                    [| "bench-rodas" |], Hybrid.Cli.Arguments.RunBenchRodas false
                    [| "bench-rodas"; "--quick" |], Hybrid.Cli.Arguments.RunBenchRodas true
                    [| "bench-face-fluxes"; "--quick" |], Hybrid.Cli.Arguments.RunBenchFaceFluxes true
                    [| "bench-kernels-memory"; "1000"; "32" |], Hybrid.Cli.Arguments.RunBenchKernelsMemory(1000, 32)
                ] do
                Expect.equal (parse argv) expected $"hybrid {String.Join(' ', argv)}"
        }

        test "hybrid --help lists every verb and exits 0" {
            let code, out, err, written = hybrid [ "--help" ]
            Expect.equal code 0 "exit code"
            Expect.stringStarts out "USAGE: hybrid [--help] [<subcommand> [<options>]]" "usage line"

            for verb in
                [
                    "demo"
                    "info"
                    "bench"
                    "bench-kernels"
                    "bench-gpu"
                    "bench-peers"
                    "bench-closures"
                    "bench-face-fluxes"
                    "bench-rodas"
                    "report"
                    "climate"
                    "sweep"
                ] do
                Expect.stringContains out $"\n    {verb} <options>" $"lists {verb}"

            Expect.isFalse (out.Contains "bench-kernels-memory") "the internal verb is hidden"
            Expect.equal err "" "nothing on standard error"
            Expect.isEmpty written "nothing written"
        }

        test "hybrid report --help prints the report's usage, exits 0 and starts no report" {
            for flag in [ "--help"; "-h" ] do
                let code, out, err, written = hybrid [ "report"; flag ]
                Expect.equal code 0 $"exit code ({flag})"

                Expect.stringStarts
                    out
                    "USAGE: hybrid report [--help] [--quick] [--on <backend>] [<folder>]"
                    "usage line"

                Expect.stringContains out "--on <backend>" "documents --on"
                Expect.stringContains out "--quick" "documents --quick"
                Expect.equal err "" "nothing on standard error"
                Expect.isEmpty written "no report folder"
        }

        test "every verb has help" {
            for verb, usage in
                [
                    "demo", "USAGE: hybrid demo [--help]"
                    "info", "USAGE: hybrid info [--help]"
                    "bench", "USAGE: hybrid bench [--help] [<file>]"
                    "bench-kernels", "USAGE: hybrid bench-kernels [--help] [--quick]"
                    "climate", "USAGE: hybrid climate [--help] [--full] [<folder>]"
                    "bench-peers", "USAGE: hybrid bench-peers [--help] [--quick]"
                    "sweep", "USAGE: hybrid sweep [--help] [<subcommand> [<options>]]"
                ] do
                let code, out, _, _ = hybrid [ verb; "--help" ]
                Expect.equal code 0 $"{verb} --help exit code"
                Expect.stringStarts out usage $"{verb} usage"
        }

        test "unknown verbs and options exit 2 with the error and the usage on standard error" {
            for args, error, usage in
                [
                    [ "frobnicate" ], "ERROR: unrecognized argument: 'frobnicate'.", "USAGE: hybrid [--help]"
                    [ "report"; "--bogus" ], "ERROR: unrecognized argument: '--bogus'.", "USAGE: hybrid report"
                    [ "report"; "out"; "--quick"; "--bogus" ],
                    "ERROR: unrecognized argument: '--bogus'.",
                    "USAGE: hybrid report"
                    [ "bench-kernels"; "--fast" ],
                    "ERROR: unrecognized argument: '--fast'.",
                    "USAGE: hybrid bench-kernels"
                    [ "info"; "extra" ], "ERROR: unrecognized argument: 'extra'.", "USAGE: hybrid info"
                    [ "climate"; "--quick" ], "ERROR: unrecognized argument: '--quick'.", "USAGE: hybrid climate"
                ] do
                let code, out, err, written = hybrid args
                Expect.equal code 2 $"hybrid {args}: exit code"
                Expect.stringStarts err error $"hybrid {args}: the error first"
                Expect.stringContains err usage $"hybrid {args}: then the usage"
                Expect.equal out "" $"hybrid {args}: nothing on standard output"
                Expect.isEmpty written $"hybrid {args}: nothing written"
        }
    ]
