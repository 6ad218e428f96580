// The foundation demo as a script: recover the diffusion coefficient of the 1-D heat equation from
// noisy data by gradient descent through the simulation.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/heat-demo.fsx
//
// src/Hybrid.Cli/bin/Release/net10.0 holds every Hybrid assembly together with TorchSharp and the
// native libtorch files, so one #I line and a few #r lines are all a script needs.
#I "../src/Hybrid.Cli/bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Hybrid.Dsl.dll"
#r "Hybrid.Core.dll"
#r "Hybrid.Models.dll"

open Hybrid
open Hybrid.Models.Demos

Engine.init ()
printfn "%s" (Engine.describe ())

let settings = {
    HeatRecovery.defaults with
        NoiseLevel = 0.01
}

let outcome =
    HeatRecovery.run settings (fun iteration loss d -> printfn "iteration %4d  loss %.3g  D = %.5f" iteration loss d)

printfn
    "true D = %.5f, recovered D = %.5f (%.2f%% off) in %.1f s"
    outcome.TrueD
    outcome.RecoveredD
    (100.0 * outcome.RelativeError)
    outcome.WallTime.TotalSeconds

if outcome.RelativeError > 0.02 then
    failwith "the recovered D is more than 2% off"
