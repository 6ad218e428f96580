/// `hybrid` — the command-line front door. `hybrid demo` runs the heat-equation recovery demo.
module Hybrid.Cli.Program

open System
open Hybrid
open Hybrid.Models.Demos

let private usage =
    """usage: hybrid <command>

commands:
  demo     simulate the 1-D heat equation, add 1% noise, recover D by gradient descent
  info     print what engine was loaded (TorchSharp version, native bridge, device)
  bench    compiled simulators vs hand-written TorchSharp, and checkpointing memory; writes bench/results.md
  bench-fused [--quick]
           fused kernels vs eager TorchSharp vs a hand-written loop, scaling, long-rollout memory; writes bench/fused.md
  report [--quick] [folder]
           run the case studies against their baselines; writes folder/summary.md, CSV files, SVG charts (default report/)"""

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
    let path = Hybrid.Models.Report.CaseReport.write folder quick
    printfn "%s" (IO.File.ReadAllText path)
    printfn "wrote %s" path
    0

[<EntryPoint>]
let main argv =
    try
        match argv with
        | [| "demo" |]
        | [||] -> demo ()
        | [| "bench" |] -> Bench.run "bench/results.md" 7
        | [| "bench"; path |] -> Bench.run path 7
        | [| "bench-fused" |] -> FusedBench.run "bench/fused.md" false
        | [| "bench-fused"; "--quick" |] -> FusedBench.run "bench/fused-quick.md" true
        | [| "bench-fused-memory"; steps; segment |] -> FusedBench.memory (int steps) (int segment)
        | [| "report" |] -> report "report" false
        | [| "report"; "--quick" |] -> report "report" true
        | [| "report"; "--quick"; folder |] -> report folder true
        | [| "report"; folder |] -> report folder false
        | [| "info" |] ->
            printfn "%s" (Engine.describe ())
            0
        | _ ->
            eprintfn "%s" usage
            2
    with :? HybridException as e ->
        eprintfn "error: %s" e.Message
        1
