/// The `hybrid` command line: verbs and options (Argu templates), parsed into a `Command`.
module Hybrid.Cli.Arguments

open Argu

/// A verb without options (`hybrid demo`, `hybrid info`): Argu needs a case, so it has one that is hidden
/// and never given.
[<HelpFlags("--help", "-h")>]
type NoOptions =
    | [<Hidden; CustomCommandLine("--no-options")>] No_Options

    interface IArgParserTemplate with
        member _.Usage = "(none)"

/// `hybrid report [--quick] [folder]`.
[<HelpFlags("--help", "-h")>]
type ReportArgs =
    | Quick
    | [<MainCommand; Unique>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Quick -> "quick settings: small budgets, one seed, a few minutes (the full run takes about 40 minutes)."
            | Folder _ -> "folder for summary.md, the CSV files and the charts (default: report)."

/// `hybrid bench [file]`.
[<HelpFlags("--help", "-h")>]
type BenchArgs =
    | [<MainCommand; Unique>] Output of file: string

    interface IArgParserTemplate with
        member _.Usage = "Markdown file for the results (default: bench/results.md)."

/// `hybrid bench-kernels [--quick]`.
[<HelpFlags("--help", "-h")>]
type BenchKernelsArgs =
    | Quick

    interface IArgParserTemplate with
        member _.Usage =
            "smaller sizes and fewer repeats; writes bench/kernels-quick.md instead of bench/kernels.md."

/// `hybrid bench-kernels-memory steps segment` (used by `bench-kernels` to measure one rollout in a fresh process).
[<HelpFlags("--help", "-h")>]
type BenchKernelsMemoryArgs =
    | [<MainCommand; ExactlyOnce>] Rollout of steps: int * segment: int

    interface IArgParserTemplate with
        member _.Usage = "steps of the rollout and steps per checkpoint segment."

/// The verbs.
[<HelpFlags("--help", "-h")>]
type Verbs =
    | [<CliPrefix(CliPrefix.None)>] Demo of ParseResults<NoOptions>
    | [<CliPrefix(CliPrefix.None)>] Info of ParseResults<NoOptions>
    | [<CliPrefix(CliPrefix.None)>] Bench of ParseResults<BenchArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-kernels")>] Bench_Kernels of ParseResults<BenchKernelsArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-kernels-memory"); Hidden>] Bench_Kernels_Memory of
        ParseResults<BenchKernelsMemoryArgs>
    | [<CliPrefix(CliPrefix.None)>] Report of ParseResults<ReportArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Demo _ -> "simulate the 1-D heat equation, add 1% noise, recover D by gradient descent (the default)."
            | Info _ -> "print what engine was loaded (TorchSharp version, native bridge, device)."
            | Bench _ ->
                "compiled simulators vs hand-written TorchSharp, and checkpointing memory; writes bench/results.md."
            | Bench_Kernels _ ->
                "generated kernels vs eager TorchSharp vs a hand-written loop, scaling, long-rollout memory; writes bench/kernels.md."
            | Bench_Kernels_Memory _ -> "peak memory of one kernel rollout (run by bench-kernels in a fresh process)."
            | Report _ ->
                "run the case studies against their baselines; writes summary.md, CSV files and charts (default folder: report)."

/// What the command line asks for.
type Command =
    | RunDemo
    | ShowInfo
    | RunBench of file: string
    | RunBenchKernels of quick: bool
    | RunBenchKernelsMemory of steps: int * segment: int
    | RunReport of folder: string * quick: bool
    /// Print `text` (usage or an error with usage) and exit with `code`: 0 for help (to standard output), 2
    /// for a usage error (to standard error).
    | Usage of text: string * code: int

let private parser =
    ArgumentParser.Create<Verbs>(programName = "hybrid", errorHandler = ExceptionExiter())

/// Raised for a positional value that looks like an option: Argu takes any word for a folder or file name.
exception private UnknownOption of text: string

/// The value, unless it looks like an option (then an error with the verb's usage).
let private positional (results: ParseResults<'T>) (value: string) =
    if value.StartsWith "-" then
        raise (UnknownOption(results.Parser.PrintUsage($"ERROR: unrecognized argument: '{value}'.")))
    else
        value

/// Parses `argv`. No verb runs the demo. Never raises: help and errors come back as `Usage`.
let parse (argv: string[]) : Command =
    try
        let results = parser.ParseCommandLine(argv)

        match results.TryGetSubCommand() with
        | None -> RunDemo
        | Some(Demo _) -> RunDemo
        | Some(Info _) -> ShowInfo
        | Some(Bench r) ->
            r.TryGetResult BenchArgs.Output
            |> Option.map (positional r)
            |> Option.defaultValue "bench/results.md"
            |> RunBench
        | Some(Bench_Kernels r) -> RunBenchKernels(r.Contains BenchKernelsArgs.Quick)
        | Some(Bench_Kernels_Memory r) -> RunBenchKernelsMemory(r.GetResult BenchKernelsMemoryArgs.Rollout)
        | Some(Report r) ->
            let folder =
                r.TryGetResult ReportArgs.Folder
                |> Option.map (positional r)
                |> Option.defaultValue "report"

            RunReport(folder, r.Contains ReportArgs.Quick)
    with
    | :? ArguParseException as e ->
        match e.ErrorCode with
        | ErrorCode.HelpText -> Usage(e.Message, 0)
        | _ -> Usage(e.Message, 2)
    | UnknownOption text -> Usage(text, 2)
