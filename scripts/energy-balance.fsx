// Case study: global temperature anomaly 1880–2018 driven by CO₂ forcing, F = 5.35 ln(C/280) W/m², with a
// two-box energy-balance model (literature parameters, fitted parameters) and a hybrid with a neural correction
// N(T, F). Trains on 1880–2000, tests on 2001–2018. Quick settings (about 12 s); `hybrid report` runs the full ones.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/energy-balance.fsx
#load "Hybrid.fsx"

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common

let data = EnergyBalance.load ()
let firstFit, lastFit = data.Co2FitYears

printfn
    "CO2 before %d: 280 + a E, a = %.3f ppm/GtC (least squares on %d-%d: RMSE %.1f ppm, largest error %.1f ppm)"
    firstFit
    data.Co2Slope
    firstFit
    lastFit
    data.Co2FitRmse
    data.Co2FitMaxError

let outcome = EnergyBalance.run EnergyBalance.quick

printfn "%-20s %10s %10s %8s %7s  parameters" "model" "test MSE" "train MSE" "time s" "epochs"

for m in outcome.Models do
    let parameters =
        m.Parameters |> Array.map (fun (n, v) -> $"{n}={v:G4}") |> String.concat " "

    printfn "%-20s %10.5f %10.5f %8.2f %7d  %s" m.Name m.TestMse m.TrainMse m.TrainSeconds m.Epochs parameters

printfn "best straight line through the test years' own observations (oracle yardstick): MSE %.5f" outcome.TestTrendMse

let mse name =
    (outcome.Models |> Array.find (fun m -> m.Name = name)).TestMse

// What the CI test asserts (tests/Hybrid.Tests/Cases/EnergyBalanceTests.fs); the margin is small, of the size of
// year-to-year variability.
if mse "hybrid (EBM + MLP)" >= mse "EBM literature" then
    failwith "the hybrid does not beat the fixed-parameter (literature) EBM on 2001–2018"
