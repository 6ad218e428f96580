/// The theophylline case in quick mode (fold 3: train on subjects 1–8, test on 9–12; fixed seeds).
module Hybrid.Tests.Cases.PharmacokineticsTests

open Expecto
open Hybrid.Models.Cases
open Hybrid.Models.Common

let private outcome = lazy (Pharmacokinetics.run Pharmacokinetics.quick)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)


let private bestPureMl () =
    outcome.Force().Models
    |> Array.filter (fun m -> Hybrid.Models.Common.ModelTable.isPureMl m.Name)
    |> Array.minBy (fun m -> m.TestMse)

let tests =
    testSequenced
    <| testList "Cases.Pharmacokinetics" [
        test "the data set has 12 subjects and 132 samples" {
            let subjects = Pharmacokinetics.load ()
            Expect.equal subjects.Length 12 "subjects"
            Expect.equal (subjects |> Array.sumBy (fun s -> s.Times.Length)) 132 "samples"
        }

        test
            "fold 3: the fitted one-compartment model has plausible theophylline parameters and beats the textbook values" {
            let fitted = model "1-cpt fitted"
            let p = dict fitted.Parameters
            let ka, ke, v = p["ka (1/h)"], p["ke (1/h)"], p["V (L/kg)"]
            Expect.isTrue (ka > 0.5 && ka < 5.0) $"ka {ka}"
            Expect.isTrue (ke > 0.04 && ke < 0.2) $"ke {ke}"
            Expect.isTrue (v > 0.3 && v < 0.8) $"V {v}"
            Expect.isLessThan fitted.TestMse (model "1-cpt textbook").TestMse "fitted < textbook on held-out subjects"
        }

        // Holds on fold 3 in quick mode (≈ 2.88 vs 2.92 (mg/L)², a thin margin) but NOT over the three folds of
        // the full report (hybrid ≈ 2.77, textbook ≈ 2.18, fitted ≈ 2.55): see report/summary.md.
        test "the physics residual is round-off for the fitted physics and clearly positive for every other model" {
            let models = outcome.Force().Models
            let fitted = (model "1-cpt fitted").PhysicsResidual
            let others = models |> Array.filter (fun m -> m.Name <> "1-cpt fitted")
            let scale = others |> Array.map (fun m -> m.PhysicsResidual) |> Array.max
            Expect.isLessThan fitted (1e-9 * scale) $"1-cpt fitted: its own flow ({fitted} mg/L)"

            for m in others do
                Expect.isGreaterThan m.PhysicsResidual (1e-4 * scale) $"{m.Name}: {m.PhysicsResidual} mg/L"
        }

        test "fold 3: the hybrid beats the fixed-parameter (textbook) one-compartment model on held-out subjects" {
            Expect.isLessThan
                (model "hybrid (1-cpt + MLP elimination)").TestMse
                (model "1-cpt textbook").TestMse
                "hybrid < textbook"
        }

        test "every row with a network (hybrids, MLPs, LSTM, transformer, PINN) reports its seeds and training budget" {
            for name in
                [
                    "hybrid (1-cpt + MLP elimination)"
                    "MLP C(t, dose)"
                    "LSTM"
                    "Transformer"
                    "PINN"
                ] do
                let m = model name
                Expect.equal m.SeedTestMse.Length Pharmacokinetics.quick.Seeds $"{name}: one test MSE per seed"
                Expect.floatClose Accuracy.veryHigh m.TestMse (Array.average m.SeedTestMse) $"{name}: mean over seeds"
                Expect.isGreaterThan m.Epochs 0 $"{name}: epochs"
                Expect.isGreaterThan m.TrainSeconds 0.0 $"{name}: wall time"
                Expect.isGreaterThan m.InferenceSeconds 0.0 $"{name}: inference time"
        }

        // The proposal's claim (issue #6): a hybrid has 20–40% lower out-of-domain MSE than the best pure-ML baseline.
        // Pure-ML rows: LSTM, Transformer and MLP rows (Report.ModelTable.isPureMl).
        // Does not hold (quick mode, fold 3): hybrid ≈ 2.88 against the transformer ≈ 2.44 (LSTM ≈ 2.73, MLP C(t, dose)
        // ≈ 2.55): the hybrid is 18% worse than the best pure-ML baseline. With the report's settings (three folds, 3
        // seeds) it does not hold either: see the pharmacokinetics section of docs/report/summary.md.
        ptest "the hybrid's held-out-subject MSE is at least 20% below the best pure-ML baseline's" {
            let best = bestPureMl ()
            Expect.isLessThan (model "hybrid (1-cpt + MLP elimination)").TestMse (0.8 * best.TestMse) best.Name
        }

        // Does not hold today (quick mode, fold 3: hybrid ≈ 2.88, fitted ≈ 2.81, MLP C(t, dose) ≈ 2.56 (mg/L)²).
        ptest "the hybrid beats the fitted one-compartment model and the pure MLP on held-out subjects" {
            let h = (model "hybrid (1-cpt + MLP elimination)").TestMse
            Expect.isLessThan h (model "1-cpt fitted").TestMse "hybrid < fitted"
            Expect.isLessThan h (model "MLP C(t, dose)").TestMse "hybrid < MLP"
        }
        test "the uncertainty of the hybrid: ensemble and MC dropout on held-out subjects, finite and well formed" {
            let u = outcome.Force().Uncertainty
            Expect.equal u.Length 2 "ensemble and MC dropout"

            for r in u do
                CaseUncertaintyTests.checkResult r
                Expect.equal r.Points 44 $"{r.Method}: 11 samples of subjects 9–12"
        }
    ]
