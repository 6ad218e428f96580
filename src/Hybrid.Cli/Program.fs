/// `hybrid` — the command-line front door: `hybrid --help` lists the verbs, `hybrid <verb> --help` their
/// options (see `Arguments`). `hybrid demo` runs the heat-equation recovery demo.
module Hybrid.Cli.Program

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
        | Arguments.RunReport(folder, quick) -> report folder quick
        | Arguments.Usage(text, 0) ->
            printfn "%s" text
            0
        | Arguments.Usage(text, code) ->
            eprintfn "%s" text
            code
    with :? HybridException as e ->
        eprintfn "error: %s" e.Message
        1
