// Case study: Lotka–Volterra with a neural correction on the Hudson's Bay lynx–hare record (1900–1920),
// against persistence, fixed-parameter and fitted Lotka–Volterra, and an autoregressive MLP. Trains on
// 1900–1915, forecasts 1916–1920. Quick settings (about a minute); `hybrid report` runs the full ones.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/predator-prey.fsx
#load "Hybrid.fsx"

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common

let outcome = PredatorPrey.run PredatorPrey.quick

printfn "%-28s %12s %12s %8s  parameters" "model" "test MSE" "train MSE" "time s"

for m in outcome.Models do
    let parameters =
        m.Parameters |> Array.map (fun (n, v) -> $"{n}={v:G4}") |> String.concat " "

    printfn "%-28s %12.2f %12.2f %8.2f  %s" m.Name m.TestMse m.TrainMse m.TrainSeconds parameters

let model name =
    outcome.Models |> Array.find (fun m -> m.Name = name)

// What must hold whatever the data say (see tests/Hybrid.Tests/Cases/PredatorPreyTests.fs): both hybrids start as
// the fitted Lotka–Volterra model and fit the training windows better than it once trained through the solver.
for h in [ "hybrid (LV + MLP)"; "hybrid (neural interaction)" ] do
    if (model h).TrainMse >= (model "LV fitted").TrainMse then
        failwith $"{h} does not fit the training windows better than the fitted Lotka–Volterra model it starts from"
