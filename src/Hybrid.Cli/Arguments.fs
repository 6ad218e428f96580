/// The `hybrid` command line: verbs and options (Argu templates), parsed into a `Command`.
module internal Hybrid.Cli.Arguments

open Argu

/// A verb without options (`hybrid demo`, `hybrid info`): Argu needs a case, so it has one that is hidden
/// and never given.
[<HelpFlags("--help", "-h")>]
type NoOptions =
    | [<Hidden; CustomCommandLine("--no-options")>] No_Options

    interface IArgParserTemplate with
        member _.Usage = "(none)"

/// `hybrid report [--quick] [--on local[:k]] [folder]`.
[<HelpFlags("--help", "-h")>]
type ReportArgs =
    | Quick
    | [<Unique>] On of backend: string
    | [<MainCommand; Unique>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Quick ->
                "quick settings: small budgets, three seeds, several minutes (the full run, five seeds, takes over an hour on two cores)."
            | On _ ->
                "run the report's tasks as a sweep in <folder>/sweep on a pool of local processes (local or local:k), then merge; resumes where an earlier run stopped."
            | Folder _ -> "folder for summary.md, the CSV files and the charts (default: report)."

/// `hybrid climate [--full] [folder]`.
[<HelpFlags("--help", "-h")>]
type ClimateArgs =
    | Full
    | [<MainCommand; Unique>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Full ->
                "the full settings: truth on 256², models on 32², five seeds (about 25 minutes in this one process; the report ran the same tasks on two workers in 16–20); default: the quick ones (about 7 minutes)."
            | Folder _ -> "folder for summary.md, the CSV files and the figures (default: climate)."

/// `hybrid sweep plan <folder> [--quick] [--settings key] [--only name …]`.
[<HelpFlags("--help", "-h")>]
type SweepPlanArgs =
    | Quick
    | [<Unique>] Settings of key: string
    | Only of names: string list
    | [<MainCommand; ExactlyOnce>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Quick -> "the quick settings (default: the full report's)."
            | Settings _ ->
                "a settings key: quick, full, or tiny (tests); the synthetic experiment has tiny, slow, failing."
            | Only _ ->
                "only these experiments (default: every section of the report): climate, lorenz96, predator-prey, pharmacokinetics, energy-balance, tumour, data-efficiency, synthetic."
            | Folder _ -> "the sweep's folder: tasks.jsonl, results/, logs/."

/// `hybrid sweep run <folder> [--index N | --on local[:k]|slurm] [--retry] [--threads t] [--dry-run]`.
[<HelpFlags("--help", "-h")>]
type SweepRunArgs =
    | [<Unique>] Index of index: int
    | [<Unique>] On of backend: string
    | Retry
    | [<Unique>] Threads of threads: int
    | [<CustomCommandLine("--dry-run")>] Dry_Run
    | [<Unique>] Limit of tasks: int
    | [<Unique; Hidden; CustomCommandLine("--record-exit")>] Record_Exit of code: int
    | [<Unique; Hidden>] Log of file: string
    | [<Hidden>] Worker
    | [<MainCommand; ExactlyOnce>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Index _ ->
                "run the one task on this line of tasks.jsonl (from 0; default: $SLURM_ARRAY_TASK_ID where set) in this process."
            | On _ ->
                "run every unfinished task: local (the default) or local:k (a pool of k processes), or slurm (a job array and a merge job)."
            | Retry -> "also run the failed tasks again (finished ones are always skipped)."
            | Threads _ ->
                "libtorch threads per task (default: $SLURM_CPUS_PER_TASK, or the cores shared out by the pool)."
            | Dry_Run -> "with --on slurm: write sweep.sbatch and print the commands, submit nothing."
            | Limit _ -> "with --on slurm: at most this many array tasks at once (default 16)."
            | Record_Exit _ -> "record that the task of --index exited with this code (the sbatch script calls it)."
            | Log _ -> "the task's standard-error log whose last lines --record-exit keeps."
            | Worker -> "run the tasks whose indices arrive on standard input, one a line (the local pool's workers)."
            | Folder _ -> "the sweep's folder (written by hybrid sweep plan)."

/// `hybrid sweep status <folder>`.
[<HelpFlags("--help", "-h")>]
type SweepStatusArgs =
    | [<MainCommand; ExactlyOnce>] Folder of folder: string

    interface IArgParserTemplate with
        member _.Usage = "the sweep's folder."

/// `hybrid sweep merge <folder> [--partial] [--out dir]`.
[<HelpFlags("--help", "-h")>]
type SweepMergeArgs =
    | Partial
    | [<Unique>] Out of dir: string
    | [<MainCommand; ExactlyOnce>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Partial -> "merge even with failed or missing tasks (their sections say what they lack)."
            | Out _ -> "the report folder (default: <folder>/report)."
            | Folder _ -> "the sweep's folder."

/// `hybrid sweep plan|run|status|merge`.
[<HelpFlags("--help", "-h")>]
type SweepArgs =
    | [<CliPrefix(CliPrefix.None)>] Plan of ParseResults<SweepPlanArgs>
    | [<CliPrefix(CliPrefix.None)>] Run of ParseResults<SweepRunArgs>
    | [<CliPrefix(CliPrefix.None)>] Status of ParseResults<SweepStatusArgs>
    | [<CliPrefix(CliPrefix.None)>] Merge of ParseResults<SweepMergeArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Plan _ -> "write tasks.jsonl: the report's runs as tasks, one a line with a stable id."
            | Run _ ->
                "run tasks: one (--index) or all unfinished ones on a back end (--on); finished tasks are skipped."
            | Status _ -> "list done, failed and missing tasks."
            | Merge _ -> "build the report from the results (refused with missing ones unless --partial)."

/// `hybrid tune [--case name …] [--trials N] [--quick] [--settings key] [--on local[:k]|slurm] [--out folder]
/// [--sweep folder]`.
[<HelpFlags("--help", "-h")>]
type TuneArgs =
    | Case of names: string list
    | [<Unique>] Trials of count: int
    | Quick
    | [<Unique>] Settings of key: string
    | [<Unique>] On of backend: string
    | [<Unique>] Out of folder: string
    | [<Unique>] Sweep of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Case _ ->
                "only these cases (default: every case with a search): climate, lorenz96, predator-prey, pharmacokinetics, energy-balance, tumour."
            | Trials _ -> "random trials per model, 1 to 8 (default 8), the same for every model of a case."
            | Quick -> "tune under the quick settings (default: the full report's)."
            | Settings _ -> "a settings key: quick, full, or tiny (tests)."
            | On _ -> "where the trials run: local (default), local:k (a pool of k processes) or slurm (a job array)."
            | Out _ -> "folder of the chosen settings, <case>.csv (default: tuning, the files the report reads)."
            | Sweep _ -> "the trials' sweep folder (default: <out>/sweep); a run stopped midway resumes from it."

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

/// `hybrid bench-closures [--quick]`.
[<HelpFlags("--help", "-h")>]
type BenchClosuresArgs =
    | Quick

    interface IArgParserTemplate with
        member _.Usage =
            "3 pairs instead of 7; writes bench/closures-quick.md instead of bench/closures.md."

/// `hybrid bench-rodas [--quick]`.
[<HelpFlags("--help", "-h")>]
type BenchRodasArgs =
    | Quick

    interface IArgParserTemplate with
        member _.Usage =
            "2 rounds instead of 5; writes bench/rodas-quick.md instead of bench/rodas.md."

/// `hybrid bench-face-fluxes [--quick]`.
[<HelpFlags("--help", "-h")>]
type BenchFaceFluxesArgs =
    | Quick

    interface IArgParserTemplate with
        member _.Usage =
            "3 rounds instead of 9; writes bench/face-fluxes-quick.md instead of bench/face-fluxes.md."

/// `hybrid bench-gpu [--quick] [--cpu]`.
[<HelpFlags("--help", "-h")>]
type BenchGpuArgs =
    | Quick
    | Cpu

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Quick -> "64² and 128² instead of 512² and 1024²; writes bench/gpu-results-quick.md."
            | Cpu -> "ILGPU's CPU accelerator even where a CUDA GPU is present."

/// `hybrid bench-peers [--quick]`.
[<HelpFlags("--help", "-h")>]
type BenchPeersArgs =
    | Quick

    interface IArgParserTemplate with
        member _.Usage =
            "tiny 1-D and 2-D problems, the full Lorenz-96, 3 runs (a check that the peers agree, no figures to quote); writes bench/peers-quick.md instead of bench/peers.md."

/// `hybrid bench-stiff [--quick]`.
[<HelpFlags("--help", "-h")>]
type BenchStiffArgs =
    | Quick

    interface IArgParserTemplate with
        member _.Usage =
            "tolerances 1e-3, 1e-5, 1e-7 and a 10 s budget per SciPy run; writes bench/work-precision-quick.* instead of bench/work-precision.*."

/// `hybrid bench-kernels-memory steps segment` (used by `bench-kernels` to measure one rollout in a fresh process).
[<HelpFlags("--help", "-h")>]
type BenchKernelsMemoryArgs =
    | [<MainCommand; ExactlyOnce>] Rollout of steps: int * segment: int

    interface IArgParserTemplate with
        member _.Usage = "steps of the rollout and steps per checkpoint segment."

/// `hybrid bench-kernel-phases [reps]`: the phase tables of `bench-kernels` alone, printed.
[<HelpFlags("--help", "-h")>]
type BenchKernelPhasesArgs =
    | [<MainCommand>] Reps of reps: int
    | Only of case: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Reps _ -> "interleaved rounds per phase (default 15)."
            | Only _ -> "one table: 1d (Fisher–KPP against the SIMD reference) or 2d (Gray–Scott, 1 and 2 threads)."

/// The verbs.
[<HelpFlags("--help", "-h")>]
type Verbs =
    | [<CliPrefix(CliPrefix.None)>] Demo of ParseResults<NoOptions>
    | [<CliPrefix(CliPrefix.None)>] Info of ParseResults<NoOptions>
    | [<CliPrefix(CliPrefix.None)>] Bench of ParseResults<BenchArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-kernels")>] Bench_Kernels of ParseResults<BenchKernelsArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-kernels-memory"); Hidden>] Bench_Kernels_Memory of
        ParseResults<BenchKernelsMemoryArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-kernel-phases")>] Bench_Kernel_Phases of
        ParseResults<BenchKernelPhasesArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-gpu")>] Bench_Gpu of ParseResults<BenchGpuArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-peers")>] Bench_Peers of ParseResults<BenchPeersArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-stiff")>] Bench_Stiff of ParseResults<BenchStiffArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-closures")>] Bench_Closures of
        ParseResults<BenchClosuresArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-rodas")>] Bench_Rodas of ParseResults<BenchRodasArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("bench-face-fluxes")>] Bench_Face_Fluxes of
        ParseResults<BenchFaceFluxesArgs>
    | [<CliPrefix(CliPrefix.None)>] Report of ParseResults<ReportArgs>
    | [<CliPrefix(CliPrefix.None)>] Climate of ParseResults<ClimateArgs>
    | [<CliPrefix(CliPrefix.None)>] Sweep of ParseResults<SweepArgs>
    | [<CliPrefix(CliPrefix.None)>] Tune of ParseResults<TuneArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Demo _ -> "simulate the 1-D heat equation, add 1% noise, recover D by gradient descent (the default)."
            | Info _ -> "print what engine was loaded (TorchSharp version, native bridge, device)."
            | Bench _ ->
                "compiled simulators vs hand-written TorchSharp, and checkpointing memory; writes bench/results.md."
            | Bench_Kernels _ ->
                "generated kernels vs eager TorchSharp vs a hand-written loop, scaling, long-rollout memory; writes bench/kernels.md."
            | Bench_Gpu _ ->
                "Gray–Scott 2-D forward and adjoint kernels on a CUDA GPU through ILGPU (its CPU accelerator where there is none) against the host kernels; writes bench/gpu-results.md."
            | Bench_Peers _ ->
                "the kernel bench's three problems in PyTorch (eager and TorchScript, Debian's python3-torch) against Hybrid's kernels and compiled eager code, interleaved, with a roofline line; writes bench/peers.md."
            | Bench_Stiff _ ->
                "work-precision of Hybrid's Rodas4 and Auto against SciPy's solve_ivp on HIRES, Robertson, Van der Pol and Pollution; writes bench/work-precision.md, .csv and .html (needs python3-scipy)."
            | Bench_Closures _ ->
                "CNN closures over whole fields (the climate case's coarse model, 32²) on the generated kernels against eager, forward + backward, interleaved; writes bench/closures.md."
            | Bench_Rodas _ ->
                "Rodas4 with gradients on the generated kernels: the backward pass keeping each step's stages and system against recomputing them, matrix-free steps against forming A, interleaved; writes bench/rodas.md."
            | Bench_Face_Fluxes _ ->
                "advectFlux on the generated kernels with each face's flux computed once against in both cells (climate physics, a stirred tracer), forward + backward, interleaved; writes bench/face-fluxes.md."
            | Bench_Kernels_Memory _ -> "peak memory of one kernel rollout (run by bench-kernels in a fresh process)."
            | Bench_Kernel_Phases _ -> "where the kernels' time goes: bench-kernels' phase tables alone, printed."
            | Report _ ->
                "run the case studies against their baselines; writes summary.md, CSV files and charts (default folder: report)."
            | Climate _ ->
                "the flagship: the climate GCM-lite case (a CNN sub-grid closure learned through the solver) against its baselines, quick settings; writes summary.md, CSV files and figures (default folder: climate)."
            | Sweep _ ->
                "the report's runs as tasks: plan, run on a local process pool or Slurm, status, merge (resumable)."
            | Tune _ ->
                "random search of each model's learning rate (and, outside climate, its width) on the validation block (≤ 8 trials per model); writes tuning/<case>.csv, which the report reads."

/// Where a sweep's tasks run.
type Backend =
    /// A pool of child processes on this machine (`None`: as many as the cores allow).
    | Local of workers: int option
    /// A Slurm job array plus a merge job.
    | Slurm

/// What the command line asks for.
type Command =
    | RunDemo
    | ShowInfo
    | RunBench of file: string
    | RunBenchKernels of quick: bool
    | RunBenchKernelsMemory of steps: int * segment: int
    | RunBenchKernelPhases of reps: int * only: string
    | RunBenchGpu of quick: bool * cpu: bool
    | RunBenchPeers of quick: bool
    | RunBenchStiff of quick: bool
    | RunBenchClosures of quick: bool
    | RunBenchFaceFluxes of quick: bool
    | RunBenchRodas of quick: bool
    | RunReport of folder: string * quick: bool
    /// `hybrid report --on …`: plan the report in `<folder>/sweep`, run it on the back end, merge into `folder`.
    | RunReportOn of folder: string * quick: bool * backend: Backend
    /// `hybrid climate [--full] [folder]`: the climate case alone, in this process (quick unless --full).
    | RunClimate of folder: string * quick: bool
    /// `hybrid sweep plan`.
    | SweepPlan of folder: string * settings: string * only: string list
    /// `hybrid sweep run --index` (index `None`: from $SLURM_ARRAY_TASK_ID).
    | SweepRunOne of folder: string * index: int option * threads: int option
    /// `hybrid sweep run --index N --record-exit code --log file`.
    | SweepRecordExit of folder: string * index: int option * code: int * log: string option
    /// `hybrid sweep run <folder> --worker`: run the tasks whose indices arrive on standard input.
    | SweepWorker of folder: string * threads: int option
    /// `hybrid sweep run --on …`.
    | SweepRun of folder: string * backend: Backend * retry: bool * threads: int option * dryRun: bool * limit: int
    /// `hybrid sweep status`.
    | SweepStatus of folder: string
    /// `hybrid sweep merge`.
    | SweepMerge of folder: string * out: string option * partial: bool
    /// `hybrid tune`.
    | RunTune of cases: string list * trials: int * settings: string * backend: Backend * out: string * sweep: string
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

/// The back end of `--on`: "local", "local:k" (k ≥ 1) or "slurm".
let backendOf (results: ParseResults<'T>) (text: string) : Backend =
    match text.Split ':' with
    | [| "local" |] -> Local None
    | [| "local"; k |] ->
        match System.Int32.TryParse k with
        | true, n when n >= 1 -> Local(Some n)
        | _ ->
            raise (
                UnknownOption(
                    results.Parser.PrintUsage(
                        $"ERROR: --on {text}: the pool size must be a whole number ≥ 1, e.g. local:2."
                    )
                )
            )
    | [| "slurm" |] -> Slurm
    | _ ->
        raise (
            UnknownOption(results.Parser.PrintUsage($"ERROR: --on {text}: use local, local:k (e.g. local:2) or slurm."))
        )

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
        | Some(Bench_Gpu r) -> RunBenchGpu(r.Contains BenchGpuArgs.Quick, r.Contains BenchGpuArgs.Cpu)
        | Some(Bench_Peers r) -> RunBenchPeers(r.Contains BenchPeersArgs.Quick)
        | Some(Bench_Stiff r) -> RunBenchStiff(r.Contains BenchStiffArgs.Quick)
        | Some(Bench_Closures r) -> RunBenchClosures(r.Contains BenchClosuresArgs.Quick)
        | Some(Bench_Face_Fluxes r) -> RunBenchFaceFluxes(r.Contains BenchFaceFluxesArgs.Quick)
        | Some(Bench_Rodas r) -> RunBenchRodas(r.Contains BenchRodasArgs.Quick)
        | Some(Bench_Kernels_Memory r) -> RunBenchKernelsMemory(r.GetResult BenchKernelsMemoryArgs.Rollout)
        | Some(Bench_Kernel_Phases r) ->
            RunBenchKernelPhases(
                r.GetResult(BenchKernelPhasesArgs.Reps, 15),
                r.GetResult(BenchKernelPhasesArgs.Only, "")
            )
        | Some(Report r) ->
            let folder =
                r.TryGetResult ReportArgs.Folder
                |> Option.map (positional r)
                |> Option.defaultValue "report"

            match r.TryGetResult ReportArgs.On with
            | None -> RunReport(folder, r.Contains ReportArgs.Quick)
            | Some text ->
                match backendOf r text with
                | Local _ as pool -> RunReportOn(folder, r.Contains ReportArgs.Quick, pool)
                | Slurm ->
                    raise (
                        UnknownOption(
                            r.Parser.PrintUsage(
                                "ERROR: hybrid report --on slurm: plan and submit with hybrid sweep plan and hybrid sweep run --on slurm, then hybrid sweep merge."
                            )
                        )
                    )
        | Some(Climate r) ->
            RunClimate(
                r.TryGetResult ClimateArgs.Folder
                |> Option.map (positional r)
                |> Option.defaultValue "climate",
                not (r.Contains ClimateArgs.Full)
            )
        | Some(Sweep r) ->
            match r.TryGetSubCommand() with
            | Some(Plan p) ->
                let key =
                    match p.TryGetResult SweepPlanArgs.Settings with
                    | Some key -> key
                    | None when p.Contains SweepPlanArgs.Quick -> "quick"
                    | None -> "full"

                SweepPlan(
                    positional p (p.GetResult SweepPlanArgs.Folder),
                    key,
                    p.GetResults SweepPlanArgs.Only |> List.concat
                )
            | Some(Run p) ->
                let folder = positional p (p.GetResult SweepRunArgs.Folder)
                let threads = p.TryGetResult SweepRunArgs.Threads

                let all backend =
                    SweepRun(
                        folder,
                        backend,
                        p.Contains SweepRunArgs.Retry,
                        threads,
                        p.Contains SweepRunArgs.Dry_Run,
                        p.TryGetResult SweepRunArgs.Limit |> Option.defaultValue 16
                    )

                match
                    p.TryGetResult SweepRunArgs.Record_Exit,
                    p.TryGetResult SweepRunArgs.On,
                    p.TryGetResult SweepRunArgs.Index
                with
                | Some code, _, index -> SweepRecordExit(folder, index, code, p.TryGetResult SweepRunArgs.Log)
                | None, None, None when p.Contains SweepRunArgs.Worker -> SweepWorker(folder, threads)
                | None, Some text, _ -> all (backendOf p text)
                | None, None, Some i -> SweepRunOne(folder, Some i, threads)
                | None, None, None when not (isNull (System.Environment.GetEnvironmentVariable "SLURM_ARRAY_TASK_ID")) ->
                    SweepRunOne(folder, None, threads)
                | None, None, None -> all (Local None)
            | Some(Status p) -> SweepStatus(positional p (p.GetResult SweepStatusArgs.Folder))
            | Some(Merge p) ->
                SweepMerge(
                    positional p (p.GetResult SweepMergeArgs.Folder),
                    p.TryGetResult SweepMergeArgs.Out,
                    p.Contains SweepMergeArgs.Partial
                )
            | None -> Usage(r.Parser.PrintUsage("ERROR: missing a sweep verb: plan, run, status or merge."), 2)
        | Some(Tune r) ->
            let key =
                match r.TryGetResult TuneArgs.Settings with
                | Some key -> key
                | None when r.Contains TuneArgs.Quick -> "quick"
                | None -> "full"

            let trials = r.TryGetResult TuneArgs.Trials |> Option.defaultValue 8

            if trials < 1 || trials > 8 then
                raise (
                    UnknownOption(
                        r.Parser.PrintUsage(
                            $"ERROR: --trials {trials}: give 1 to 8 trials per model (the same for every model)."
                        )
                    )
                )

            let out = r.TryGetResult TuneArgs.Out |> Option.defaultValue "tuning"

            RunTune(
                r.GetResults TuneArgs.Case |> List.concat,
                trials,
                key,
                r.TryGetResult TuneArgs.On
                |> Option.map (backendOf r)
                |> Option.defaultValue (Local None),
                out,
                r.TryGetResult TuneArgs.Sweep
                |> Option.defaultValue (System.IO.Path.Combine(out, "sweep"))
            )
    with
    | :? ArguParseException as e ->
        match e.ErrorCode with
        | ErrorCode.HelpText -> Usage(e.Message, 0)
        | _ -> Usage(e.Message, 2)
    | UnknownOption text -> Usage(text, 2)
