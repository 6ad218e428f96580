// Case study: theophylline after one oral dose (12 subjects, R `Theoph`): the one-compartment model with
// textbook and with fitted parameters, a hybrid whose elimination gets an MLP term, and an MLP C(t, dose)
// without physics. Quick settings: fold 3 only (train on subjects 1–8 up to 8 h after the dose, predict 9–12 after
// 8 h from their dose alone), about a minute; `hybrid report` runs all three leave-four-subjects-out folds.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/pharmacokinetics.fsx
#load "Hybrid.fsx"

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common

let outcome = Pharmacokinetics.run Pharmacokinetics.quick

printfn "%-34s %12s %12s %8s  parameters" "model" "test (> 8 h)" "train MSE" "time s"

for m in outcome.Models do
    let parameters =
        m.Parameters |> Array.map (fun (n, v) -> $"{n}={v:G4}") |> String.concat " "

    // Models with fixed parameters are not trained: no training MSE.
    let train =
        if System.Double.IsNaN m.TrainMse then
            "—"
        else
            $"{m.TrainMse:F3}"

    printfn "%-34s %12.3f %12s %8.2f  %s" m.Name m.TestMse train m.TrainSeconds parameters

let model name =
    outcome.Models |> Array.find (fun m -> m.Name = name)

// What must hold whatever the data say (see tests/Hybrid.Tests/Cases/PharmacokineticsTests.fs): the hybrid starts
// as the fitted one-compartment model and fits the training samples better than it once trained through the solver.
if
    (model "hybrid (1-cpt + MLP elimination)").TrainMse
    >= (model "1-cpt fitted").TrainMse
then
    failwith "the hybrid does not fit the training samples better than the fitted model it starts from"
