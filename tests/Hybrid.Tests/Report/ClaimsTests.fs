/// The claims page: each outcome's rule on numbers whose verdict is known, the CSV round trip, and the table.
module Hybrid.Tests.Report.ClaimsTests

open System
open System.IO
open Expecto
open Hybrid.Models.Common

let private uncertaintyRow
    (model: string)
    (split: string)
    (ece: float)
    (lower: float)
    (upper: float)
    : CaseUncertainty.MethodResult =
    {
        Model = model
        Method = "deep ensemble (M = 5)"
        VarianceScale = 1.0
        Split = split
        Calibration = {
            Levels = [| 0.5 |]
            Coverage = [| 0.5 |]
            Ece = ece
        }
        EceInterval = {
            Estimate = ece
            Lower = lower
            Upper = upper
            Level = 0.95
            Count = 100
        }
        Coverage50 = 0.5
        Coverage90 = 0.9
        Nll = 1.0
        Crps = 1.0
        Rmse = 1.0
        MeanStd = 1.0
        NoiseStd = 1.0
        ModelStd = 1.0
        ModelCoverage90 = 0.9
        Points = 100
        Seconds = 1.0
    }

let private parameter name estimate se truth plausible : Claims.Parameter = {
    Name = name
    Estimate = estimate
    StandardError = se
    Truth = truth
    Plausible = plausible
}

let tests =
    testList "Report.Claims" [
        test
            "OOD error: paired ratios far below 0.8 hold, near 1 fail, straddling is inconclusive, one seed has no interval" {
            let lstm = "LSTM", [| 1.0; 1.0; 1.0 |]
            let holds = Claims.ood "c" "test" "hybrid" [| 0.5; 0.55; 0.52 |] [| lstm |]
            Expect.equal holds.Verdict Claims.Verdict.Holds "ratios ≈ 0.52"
            Expect.stringContains holds.Detail "hybrid vs LSTM on test: MSE ratio 0.52" "the numbers"

            Expect.equal
                (Claims.ood "c" "test" "hybrid" [| 0.95; 0.97; 0.93 |] [| lstm |]).Verdict
                Claims.Verdict.Fails
                "≈ 0.95"

            Expect.equal
                (Claims.ood "c" "test" "hybrid" [| 0.5; 1.1 |] [| "LSTM", [| 1.0; 1.0 |] |]).Verdict
                Claims.Verdict.Inconclusive
                "0.5 and 1.1"

            let once = Claims.ood "c" "test" "hybrid" [| 0.1 |] [| "LSTM", [| 1.0 |] |]
            Expect.equal once.Verdict Claims.Verdict.Inconclusive "one seed"
            Expect.stringContains once.Detail "one seed, no interval" "says why"
            Expect.equal (Claims.ood "c" "test" "hybrid" [| 0.1 |] [||]).Verdict Claims.Verdict.NotTested "no baseline"
        }

        test "OOD error of a case's table: one cell per hybrid row against the pure-ML rows, by per-seed MSE" {
            let cells =
                Claims.oodOfRows
                    "c"
                    "test"
                    (TableRows.table [
                        "hybrid (a)", [| 0.5; 0.55; 0.52 |]
                        "hybrid (b)", [| 0.95; 0.97; 0.93 |]
                        "fitted physics", [| 0.1; 0.1; 0.1 |]
                        "LSTM", [| 1.0; 1.0; 1.0 |]
                        "Transformer", [| 2.0; 2.0; 2.0 |]
                    ])

            Expect.equal
                (cells |> Array.map (fun c -> c.Verdict))
                [| Claims.Verdict.Holds; Claims.Verdict.Fails |]
                "hybrids only, against the better baseline (the LSTM), not the physics"

            Expect.stringContains cells[0].Detail "hybrid (a) vs LSTM" "names both"
        }

        test "interpretable θ from a twin's seeds: the mean estimate within 2 standard errors over seeds of the truth" {
            let p = Claims.overSeeds "D" [| 0.098; 0.102; 0.1; 0.104 |] (Some 0.1) None
            Expect.floatClose Accuracy.high p.Estimate 0.101 "mean"
            // sample sd of (−3, 1, −1, 3)·1e-3 = sqrt(20/3)·1e-3, over sqrt 4
            Expect.floatClose Accuracy.high p.StandardError (sqrt (20.0 / 3.0) * 1e-3 / 2.0) "sd / sqrt n"
            Expect.equal (Claims.interpretable "c" [| p |]).Verdict Claims.Verdict.Holds "0.77 SE"

            let biased = Claims.overSeeds "D" [| 0.118; 0.122; 0.12; 0.124 |] (Some 0.1) None
            Expect.equal (Claims.interpretable "c" [| biased |]).Verdict Claims.Verdict.Fails "15 SE off"

            Expect.isTrue
                (Double.IsNaN (Claims.overSeeds "D" [| 0.1 |] (Some 0.1) None).StandardError)
                "one seed: no SE"
        }

        test "interpretable θ on real data: literature values looked up with their standard errors, a factor of two" {
            let fitted = [|
                "ka (1/h)", 1.2
                "ka (1/h) SE", 0.1
                "ke (1/h)", 0.1
                "V (L/kg)", 0.45
                "V (L/kg) SE", 0.02
            |]

            let ps =
                Claims.againstLiterature "pk" fitted [ "ka (1/h)", 1.5; "ke (1/h)", 0.087; "V (L/kg)", 0.5 ]

            Expect.equal
                (ps |> Array.map (fun p -> p.Plausible))
                [| Some(0.75, 3.0); Some(0.0435, 0.174); Some(0.25, 1.0) |]
                "÷2 to ×2"

            Expect.equal ps[0].StandardError 0.1 "ka's SE"
            Expect.isTrue (Double.IsNaN ps[1].StandardError) "ke has none"
            Expect.equal (Claims.interpretable "pk" ps).Verdict Claims.Verdict.Inconclusive "a missing SE"

            Expect.equal
                (Claims.interpretable "pk" [| ps[0]; ps[2] |]).Verdict
                Claims.Verdict.Holds
                "[1.0, 1.4] and [0.41, 0.49]"

            Expect.throwsT<Hybrid.HybridException>
                (fun () -> Claims.againstLiterature "pk" fitted [ "CL", 1.0 ] |> ignore)
                "a name the model lacks"
        }

        test
            "calibration: the hybrid's best ECE interval against 0.05, recalibrated where it was, baselines named, validation split left out" {
            let rows = [|
                uncertaintyRow "hybrid" "test" 0.03 0.02 0.04
                uncertaintyRow "hybrid" "test" 0.08 0.06 0.10
                uncertaintyRow "LSTM" "test" 0.01 0.005 0.015
            |]

            let c = Claims.calibrated "c" rows |> Array.exactlyOne
            Expect.equal c.Verdict Claims.Verdict.Holds "[0.02, 0.04] ≤ 0.05"

            Expect.stringContains
                c.Detail
                "ECE 0.030, bias-corrected 0.030 [0.020, 0.040]"
                "the hybrid's best, not the LSTM's"

            Expect.equal
                (Claims.calibrated "c" [| uncertaintyRow "hybrid" "test" 0.08 0.06 0.1 |]
                 |> Array.exactlyOne)
                    .Verdict
                Claims.Verdict.Fails
                "[0.06, 0.10] > 0.05"

            Expect.equal
                (Claims.calibrated "c" [| uncertaintyRow "hybrid" "test" 0.05 0.03 0.07 |]
                 |> Array.exactlyOne)
                    .Verdict
                Claims.Verdict.Inconclusive
                "straddles"

            let recalibrated = {
                uncertaintyRow "hybrid" "test" 0.01 0.0 0.02 with
                    VarianceScale = 1.5
            }

            let withRecalibration =
                Claims.calibrated "c" [|
                    uncertaintyRow "hybrid" "test" 0.08 0.06 0.10
                    recalibrated
                    uncertaintyRow "LSTM" "test" 0.2 0.15 0.25
                    {
                        uncertaintyRow "LSTM" "test" 0.04 0.03 0.06 with
                            VarianceScale = 2.0
                    }
                    uncertaintyRow "hybrid" CaseUncertainty.Validation 0.3 0.2 0.4
                |]
                |> Array.exactlyOne

            Expect.equal withRecalibration.Verdict Claims.Verdict.Holds "recalibrated [0.00, 0.02] ≤ 0.05"

            Expect.stringContains
                withRecalibration.Detail
                "recalibrated (σ × 1.50) on test: ECE 0.010, bias-corrected 0.010 [0.000, 0.020]"
                "the recalibrated row, not the one as trained"

            Expect.stringContains
                withRecalibration.Detail
                "best baseline LSTM deep ensemble (M = 5): ECE 0.040, bias-corrected 0.040 [0.030, 0.060]"
                "the baselines after recalibration"

            let splits =
                Claims.calibrated "c" [|
                    uncertaintyRow "hybrid" "in domain" 0.03 0.02 0.04
                    uncertaintyRow "hybrid" "out of domain" 0.08 0.06 0.10
                |]

            Expect.equal
                (splits |> Array.map (fun c -> c.Verdict))
                [| Claims.Verdict.Holds; Claims.Verdict.Fails |]
                "one cell per split, each by its own interval"
        }

        test
            "interpretable θ: within 2 SE of the truth holds, beyond 3 fails, a missing SE is inconclusive; ranges on real data" {
            let verdict ps = (Claims.interpretable "c" ps).Verdict
            Expect.equal (verdict [| parameter "D" 0.105 0.005 (Some 0.1) None |]) Claims.Verdict.Holds "1 SE"
            Expect.equal (verdict [| parameter "D" 0.1125 0.005 (Some 0.1) None |]) Claims.Verdict.Inconclusive "2.5 SE"

            Expect.equal
                (verdict [|
                    parameter "D" 0.105 0.005 (Some 0.1) None
                    parameter "r" 0.8 0.05 (Some 1.0) None
                |])
                Claims.Verdict.Fails
                "r is 4 SE off"

            Expect.equal (verdict [| parameter "D" 0.105 nan (Some 0.1) None |]) Claims.Verdict.Inconclusive "no SE"

            Expect.equal
                (verdict [| parameter "ke" 0.08 0.01 None (Some(0.02, 0.2)) |])
                Claims.Verdict.Holds
                "[0.06, 0.10] inside"

            Expect.equal
                (verdict [| parameter "ke" 0.5 0.01 None (Some(0.02, 0.2)) |])
                Claims.Verdict.Fails
                "wholly above"

            Expect.equal
                (verdict [| parameter "ke" 0.19 0.01 None (Some(0.02, 0.2)) |])
                Claims.Verdict.Inconclusive
                "crosses 0.2"
        }

        test "cells round-trip through the claims CSV files, and the table has a row per case and a column per outcome" {
            let dir = Path.Combine(Path.GetTempPath(), $"hybrid-claims-{Guid.NewGuid():N}")
            Directory.CreateDirectory dir |> ignore

            try
                let a = [|
                    Claims.ood "alpha" "test" "hybrid" [| 0.5; 0.55; 0.52 |] [| "LSTM", [| 1.0; 1.0; 1.0 |] |]
                    Claims.notTested "alpha" Claims.outcomes[1] "no data-efficiency run, with \"quotes\", commas"
                |]

                let b = Claims.calibrated "beta" [| uncertaintyRow "hybrid" "test" 0.03 0.02 0.04 |]
                Claims.write dir "alpha" a
                Claims.write dir "beta" b
                Expect.equal (Claims.readAll dir) (Array.append a b) "read back, by file name"
                let md = Claims.markdown (Claims.readAll dir)

                let rows =
                    md |> List.filter (fun l -> l.StartsWith "| alpha" || l.StartsWith "| beta")

                Expect.equal rows.Length 2 "one row per case"
                Expect.stringContains rows[0] "**holds**: hybrid vs LSTM" "alpha's OOD cell"
                Expect.stringContains rows[0] "**not tested**: no data-efficiency run" "alpha's data-efficiency cell"
                Expect.stringContains rows[0] "not reported" "alpha's missing outcomes"
                Expect.stringContains rows[1] "**holds**: hybrid deep ensemble" "beta's calibration cell"
                Claims.clear dir
                Expect.isEmpty (Claims.readAll dir) "cleared"
                Expect.isEmpty (Claims.markdown [||]) "no table without cells"
            finally
                Directory.Delete(dir, true)
        }
    ]
