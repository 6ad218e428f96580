/// A part's result as rows (`PartRows.rows`), the same for every case: each model's shared numbers, the uncertainty
/// output's, each extra split model by model, then the case's own rows, in that order. (`PartRows.ofFields`, inline,
/// cannot be called from another assembly; the cases' task tests cover it: a field read wrongly changes the outcome
/// assembled from task results against the one-process run.)
module Hybrid.Tests.Tasks.PartRowsTests

open Expecto
open Hybrid.Models.Common
open Hybrid.Models.Tasks

let private fit name k : PartRows.ModelNumbers = {
    Name = name
    TestMse = 1.0 + k
    TrainMse = 2.0 + k
    TrainSeconds = 3.0 + k
    InferenceSeconds = 4.0 + k
    Epochs = 5 + int k
    PhysicsResidual = 6.0 + k
    Parameters = [| "a", 7.0 + k; "b", 8.0 + k |]
    SplitMse = [| "in-domain", 10.0 + k; "validation", 9.0 + k |]
}

let private key (r: ResultRow) =
    r.Case, r.Model, r.Split, r.Metric, r.Seed, r.Value

[<Tests>]
let tests =
    testList "Tasks.PartRows" [
        test
            "a part's rows: each model's numbers, the uncertainty output's, the splits model by model, then the case's own" {
            let part: CasePart.Part = {
                Model = "uncertainty:hybrid"
                Seed = 3
            }

            let output: CaseUncertainty.Output = {
                Splits = [| "test" |]
                Targets = [| [| 1.0 |] |]
                Mean = [| [| 1.0 |] |]
                Std = [| [| 0.0 |] |]
                NoiseVariance = 0.5
                Seconds = 11.0
            }

            let own = CasePart.row "case" 3 "truth" "" "seconds" 12.0

            let r: CasePart.PartResult<PartRows.ModelNumbers> = {
                Models = [| fit "hybrid" 0.0; fit "MLP" 100.0 |]
                Rows = [||]
                Uncertainty = [| output |]
            }

            let got = PartRows.rows "case" part id r.Models r.Uncertainty [| own |]
            let withRows = PartRows.withRows "case" part id r

            let shared name k = [
                "case", name, "test", "mse", 3, 1.0 + k
                "case", name, "train", "mse", 3, 2.0 + k
                "case", name, "", "seconds", 3, 3.0 + k
                "case", name, "", "inference_seconds", 3, 4.0 + k
                "case", name, "", "epochs", 3, 5.0 + k
                "case", name, "", "physics_residual", 3, 6.0 + k
                "case", name, "", "param:a", 3, 7.0 + k
                "case", name, "", "param:b", 3, 8.0 + k
            ]

            let expected =
                shared "hybrid" 0.0
                @ shared "MLP" 100.0
                @ [
                    "case", "uncertainty:hybrid", "", "noise_variance", 3, 0.5
                    "case", "uncertainty:hybrid", "", "seconds", 3, 11.0
                    "case", "hybrid", "in-domain", "mse", 3, 10.0
                    "case", "MLP", "in-domain", "mse", 3, 110.0
                    "case", "hybrid", "validation", "mse", 3, 9.0
                    "case", "MLP", "validation", "mse", 3, 109.0
                    "case", "truth", "", "seconds", 3, 12.0
                ]

            Expect.sequenceEqual (got |> Array.map key) expected "the rows, in order"

            Expect.sequenceEqual
                (withRows.Rows |> Array.map key)
                (List.take (expected.Length - 1) expected)
                "withRows: the same rows, none of the case's own"

            Expect.equal withRows.Models r.Models "the models kept"
            Expect.equal withRows.Uncertainty r.Uncertainty "the uncertainty output kept"
        }
    ]
