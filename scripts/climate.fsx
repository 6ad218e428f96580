// Case study (twin experiment, the flagship, issue #16): a differentiable 2-D moist "GCM-lite" whose CNN sub-grid
// closure is learned through the solver, forecasting regional precipitation. The truth is the model's own equations
// (a forced barotropic vorticity equation on a doubly periodic β-plane, a humidity with limited flux advection,
// evaporation and smooth condensation, the accumulated precipitation) on a fine grid, coarse-grained to the models'
// grid; every model of `ClimateModels.all` (the coarse physics with fixed parameters, the a-posteriori hybrid, and
// whatever else the list holds) is built on the coarse grid from the DSL text, compiled, rolled out by `Simulate`
// and, where it has a network, trained by `Trainer.train`. Scores: precipitation and field MSE at each lead on the
// test block and out of distribution (1.5 × the forcing), a free run of 10 × the training horizon (stability,
// precipitation, spectra), the physics residual, and time per simulated time unit against the truth's.
// Quick settings, one seed per model (minutes); `hybrid climate` runs every seed and writes the report section.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/climate.fsx
#load "Hybrid.fsx"

open Hybrid.Models.Cases
open Hybrid.Models.Report

let key = "quick"
let s = ClimateTasks.settings key
let saves (lead: int) = float lead * s.Truth.SaveEvery

printfn "The a-posteriori hybrid's model (the physics is the same without the closure):"
printfn "%s" (Climate.modelText s s.Hidden)

let runs = [ for b in ClimateModels.all -> ClimateTasks.runModel key b.Name s.Seed ]
let truth = snd runs.Head

printfn
    "truth: %d² cells coarse-grained to %d², generated in %.1f s (%.3g s per simulated time unit)"
    s.Truth.Cells
    s.Truth.ModelCells
    truth.Seconds
    truth.SecondsPerTime

printfn "regional precipitation MSE at lead %g time units, seed %d:" (saves (List.max s.Leads)) s.Seed

for e, _ in runs do
    printfn
        "  %-55s test %.4g  out of distribution %.4g"
        e.Name
        (Array.last e.Test.Precipitation)
        (Array.last e.Ood.Precipitation)

printfn "free runs of %g time units from the test block's start:" (saves s.FreeRunIntervals)

for e, _ in runs do
    let stable =
        if System.Double.IsNaN e.Free.BlowUp then
            "stable"
        else
            $"blew up at {e.Free.BlowUp:G3}"

    printfn
        "  %-55s %s, precipitation rate %.4g (truth %.4g), %.3g s per time unit (%.3g of the truth's), physics residual %.3g"
        e.Name
        stable
        (Array.sum e.Free.RegionMean)
        (Array.sum truth.Free.RegionMean)
        e.InferenceSecondsPerTime
        (e.InferenceSecondsPerTime / truth.SecondsPerTime)
        e.PhysicsResidual
