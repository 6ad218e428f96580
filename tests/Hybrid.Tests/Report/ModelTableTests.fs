module Hybrid.Tests.Report.ModelTableTests

open Expecto
open Hybrid.Models.Report
open Hybrid.Models.Common

let private row name mse seeds : ModelTable.ModelRow = {
    Name = name
    Description = ""
    TestMse = mse
    TrainMse = nan
    TrainSeconds = 0.0
    InferenceSeconds = 0.0
    Epochs = 0
    SeedTestMse = seeds
    PhysicsResidual = nan
    Parameters = [||]
}

[<Tests>]
let tests =
    testList "Report.ModelTable" [
        test "the seed sentences count a hybrid's seeds that beat each reference" {
            let rows = [|
                row "physics prior" 2.0 [||]
                row "hybrid (A)" 2.0 [| 1.5; 2.5; 2.0 |]
                row "LSTM" 3.0 [| 3.0; 3.0; 3.0 |]
            |]

            let lines = ModelTable.seedLines 1 [ "physics prior"; "missing row" ] rows
            Expect.equal lines.Length 2 "the seed count, then one line per hybrid and reference found"
            Expect.stringContains lines[0] "over 3 seed(s)" "the seed count"

            Expect.equal
                lines[1]
                "- hybrid (A) beats physics prior (2.0) with 1 of its 3 seeds (per seed: 1.5, 2.5, 2.0)."
                "a tie is not a win"
        }

        test "one seed: no per-seed sentence, the table shows the MSE alone" {
            let rows = [| row "hybrid (A)" 1.25 [| 1.25 |]; row "physics" 2.0 [||] |]
            Expect.equal (ModelTable.seedLines 2 [ "physics" ] rows).Length 1 "the seed count only"
            let table = ModelTable.markdown 2 rows
            Expect.stringContains table[2] "| hybrid (A) | 1.25 | — | — |" "no ± for one seed, no residual"
            let spread = ModelTable.markdown 2 [| row "hybrid (A)" 2.0 [| 1.0; 3.0 |] |]
            Expect.stringContains spread[2] "2.00 ± 1.41 (2 seeds)" "mean ± sample sd"
        }
    ]
