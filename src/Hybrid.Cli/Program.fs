/// `hybrid` — the command-line front door: `hybrid --help` lists the verbs, `hybrid <verb> --help` their
/// options (see `Arguments`). `hybrid demo` runs the heat-equation recovery demo.
module internal Hybrid.Cli.Program

open System
open Hybrid
open Hybrid.Models.Demos

let private demo () =
    let s = HeatRecovery.defaults
    printfn "Heat equation demo: ∂u/∂t = D ∂²u/∂x² on [0, 1], u = 0 at both ends"

    printfn
        "  %d cells, t ∈ [0, %g], %d snapshots, %g%% noise; fitting D from %g with Adam (%d steps)"
        s.Cells
        s.Duration
        s.Snapshots
        (100.0 * s.NoiseLevel)
        s.InitialD
        s.Iterations

    let outcome =
        HeatRecovery.run s (fun i loss d ->
            printfn "  iteration %4d  loss %s  D = %.5f" i (loss.ToString "0.000e+00") d)

    printfn "true D      = %.5f" outcome.TrueD
    printfn "recovered D = %.5f  (relative error %.3f%%)" outcome.RecoveredD (100.0 * outcome.RelativeError)
    printfn "wall time   = %.2f s" outcome.WallTime.TotalSeconds

    if outcome.RelativeError > 0.02 then
        eprintfn "FAILED: recovered D is off by more than 2%%"
        1
    else
        0

let private report (folder: string) (quick: bool) =
    // The report writes each chart's SVG; Hybrid.Charts writes its Plotly.NET page (and PNG where a browser is).
    let path =
        Hybrid.Models.Common.LineChart.withPages Hybrid.Charts.ReportPages.write (fun () ->
            Hybrid.Models.Report.CaseReport.write folder quick)


    printfn "%s" (IO.File.ReadAllText path)
    printfn "wrote %s" path
    0

/// `hybrid climate`: the climate case alone (every model of `ClimateModels.all` at every seed) in this process, its
/// section, CSV files and figures written into `folder` with summary.md, which it prints.
let private climate (folder: string) (quick: bool) =
    let flag = if quick then "" else " --full"

    let path =
        Hybrid.Models.Common.LineChart.withPages Hybrid.Charts.ReportPages.write (fun () ->
            Hybrid.Models.Report.CaseReport.writeSections
                folder
                (Hybrid.Models.Tasks.Experiment.settingsKey quick)
                [ Hybrid.Models.Report.ClimateTasks.experiment ]
                $"hybrid climate{flag} {folder}")

    printfn "%s" (IO.File.ReadAllText path)
    printfn "wrote %s" path
    0

/// Runs every unfinished task of the sweep in `folder` on `backend`.
let private sweepRun folder backend retry threads dryRun limit =
    match backend with
    | Arguments.Local workers ->
        let k, t = LocalPool.shape workers threads
        LocalPool.run folder k t retry
    | Arguments.Slurm -> Slurm.run folder retry (defaultArg threads 1) dryRun limit

/// `hybrid report --on local[:k]`: the report as a sweep in `<folder>/sweep` (resumed where one is there), merged
/// into `folder`.
let private reportOn (folder: string) (quick: bool) (backend: Arguments.Backend) =
    let sweep = IO.Path.Combine(folder, "sweep")
    Sweep.plan sweep (Hybrid.Models.Tasks.Experiment.settingsKey quick) [] |> ignore

    match sweepRun sweep backend true None false 16 with
    | 0 ->
        Sweep.merge sweep (Some folder) false |> ignore
        printfn "%s" (IO.File.ReadAllText(IO.Path.Combine(folder, "summary.md")))
        0
    | code -> code

[<EntryPoint>]
let main argv =
    try
        match Arguments.parse argv with
        | Arguments.RunDemo -> demo ()
        | Arguments.ShowInfo ->
            printfn "%s" (Engine.describe ())
            0
        | Arguments.RunBench file -> Bench.run file 7
        | Arguments.RunBenchKernels quick ->
            KernelBench.run
                (if quick then
                     "bench/kernels-quick.md"
                 else
                     "bench/kernels.md")
                quick
        | Arguments.RunBenchKernelsMemory(steps, segment) -> KernelBench.memory steps segment
        | Arguments.RunBenchKernelPhases(reps, only) -> KernelBench.phases reps only
        | Arguments.RunBenchGpu(quick, cpu) ->
            GpuBenchRun.run
                (if quick then
                     "bench/gpu-results-quick.md"
                 else
                     "bench/gpu-results.md")
                quick
                cpu
        | Arguments.RunBenchPeers quick ->
            PeerBench.run (if quick then "bench/peers-quick.md" else "bench/peers.md") quick
        | Arguments.RunBenchStiff quick ->
            if quick then
                WorkPrecision.write WorkPrecision.quick "bench/work-precision-quick"
            else
                WorkPrecision.write WorkPrecision.defaults "bench/work-precision"
        | Arguments.RunBenchClosures quick ->
            ClosureBench.run
                (if quick then
                     "bench/closures-quick.md"
                 else
                     "bench/closures.md")
                quick
        | Arguments.RunBenchRodas quick ->
            RodasBench.run (if quick then "bench/rodas-quick.md" else "bench/rodas.md") quick
        | Arguments.RunBenchFaceFluxes quick ->
            FaceFluxBench.run
                (if quick then
                     "bench/face-fluxes-quick.md"
                 else
                     "bench/face-fluxes.md")
                quick
        | Arguments.RunReport(folder, quick) -> report folder quick
        | Arguments.RunReportOn(folder, quick, backend) -> reportOn folder quick backend
        | Arguments.RunClimate(folder, quick) -> climate folder quick
        | Arguments.SweepPlan(folder, key, only) -> Sweep.plan folder key only
        | Arguments.SweepRunOne(folder, index, threads) -> Sweep.runOne folder index threads
        | Arguments.SweepRecordExit(folder, index, code, log) -> Sweep.recordExit folder index code log
        | Arguments.SweepWorker(folder, threads) -> Sweep.worker folder threads
        | Arguments.SweepRun(folder, backend, retry, threads, dryRun, limit) ->
            sweepRun folder backend retry threads dryRun limit
        | Arguments.SweepStatus folder -> Sweep.status folder
        | Arguments.SweepMerge(folder, out, partial) -> Sweep.merge folder out partial
        | Arguments.RunTune(cases, trials, key, backend, out, sweep) -> Tune.run cases trials key backend out sweep
        | Arguments.Usage(text, 0) ->
            printfn "%s" text
            0
        | Arguments.Usage(text, code) ->
            eprintfn "%s" text
            code
    with :? HybridException as e ->
        eprintfn "error: %s" e.Message
        1
