/// The energy-balance case in quick mode (fixed seeds): global temperature 1880–2018 from CO₂ forcing, trained
/// on 1880–2000 and tested on 2001–2018. One run shared by the tests.
module Hybrid.Tests.Cases.EnergyBalanceTests

open Expecto
open Hybrid.Models.Cases
open Hybrid.Models.Common

let private outcome = lazy (EnergyBalance.run EnergyBalance.quick)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let private parameter (m: EnergyBalance.ModelResult) name =
    m.Parameters |> Array.find (fun (n, _) -> n = name) |> snd


let private bestPureMl () =
    outcome.Force().Models
    |> Array.filter (fun m -> Hybrid.Models.Common.ModelTable.isPureMl m.Name)
    |> Array.minBy (fun m -> m.TestMse)

let tests =
    testSequenced
    <| testList "Cases.EnergyBalance" [
        test "the data run 1880–2018 and the CO2 reconstruction fits Mauna Loa" {
            let d = EnergyBalance.load ()
            Expect.equal d.Years.Length 139 "years 1880–2018"
            Expect.equal (d.Years[0], d.Years[138]) (1880, 2018) "first and last year"
            Expect.equal d.Co2FitYears (1959, 2014) "fit years"
            Expect.isTrue (d.Co2Slope > 0.15 && d.Co2Slope < 0.4) $"a = {d.Co2Slope} ppm/GtC"
            Expect.isLessThan d.Co2FitRmse 8.0 "fit RMSE (ppm): a straight line through 280 ppm misses by about 6"
            Expect.isTrue (d.Forcing[138] > 1.8 && d.Forcing[138] < 2.2) $"F(2018) = {d.Forcing[138]} W/m2"
            Expect.isTrue (d.Co2[0] > 280.0 && d.Co2[0] < 295.0) $"C(1880) = {d.Co2[0]} ppm"
        }

        test "the physics residual is round-off for the fitted physics and clearly positive for every other model" {
            let models = outcome.Force().Models
            let fitted = (model "EBM fitted").PhysicsResidual
            let others = models |> Array.filter (fun m -> m.Name <> "EBM fitted")
            let scale = others |> Array.map (fun m -> m.PhysicsResidual) |> Array.max
            Expect.isLessThan fitted (1e-9 * scale) $"EBM fitted: its own flow ({fitted} °C)"

            for m in others do
                Expect.isGreaterThan m.PhysicsResidual (1e-4 * scale) $"{m.Name}: {m.PhysicsResidual} °C"
        }

        test "every model simulates 139 finite years" {
            for m in outcome.Force().Models do
                Expect.equal m.Simulated.Length 139 $"{m.Name}: 139 years"
                Expect.isTrue (m.Simulated |> Array.forall System.Double.IsFinite) $"{m.Name}: finite"
        }

        test "the fitted EBM fits the training years better than the literature EBM, with a positive feedback" {
            let fitted = model "EBM fitted"
            Expect.isLessThan fitted.TrainMse (model "EBM literature").TrainMse "fitted < literature on 1880–2000"
            let ecs = parameter fitted "ECS (K)"
            Expect.isTrue (ecs > 0.5 && ecs < 10.0) $"ECS {ecs} K"
        }

        test "every row with a network (hybrids, MLPs, LSTM, transformer, PINN) reports its seeds and training budget" {
            for name in [ "hybrid (EBM + MLP)"; "LSTM"; "Transformer"; "PINN" ] do
                let m = model name
                Expect.equal m.SeedTestMse.Length EnergyBalance.quick.Seeds $"{name}: one test MSE per seed"
                Expect.floatClose Accuracy.veryHigh m.TestMse (Array.average m.SeedTestMse) $"{name}: mean over seeds"
                Expect.isGreaterThan m.Epochs 0 $"{name}: epochs"
                Expect.isGreaterThan m.TrainSeconds 0.0 $"{name}: wall time"
                Expect.isGreaterThan m.InferenceSeconds 0.0 $"{name}: inference time"
        }

        // The proposal's claim (issue #6): a hybrid has 20–40% lower out-of-domain MSE than the best pure-ML baseline.
        // Pure-ML rows: LSTM, Transformer and MLP rows (Report.ModelTable.isPureMl).
        // Quick mode: hybrid ≈ 0.00672 °C² against the LSTM ≈ 0.0148 (transformer ≈ 0.0177): −55%, more than claimed.
        // The PINN (≈ 0.00678) and both physics models are as good as the hybrid: the sequence models' free forecast
        // of a noisy record is what is weak, not the hybrid that is strong. Report settings (3 seeds): hybrid ≈ 0.00679
        // against the transformer ≈ 0.0173 ± 0.014 (LSTM ≈ 0.043 ± 0.029, PINN ≈ 0.00691): −61%.
        // Two seeds: every network row is trained twice (the hybrid each time from the fitted EBM), its first seed
        // reproduces the one-seed run exactly, and the physics rows have no seeds. Both runs on a fifth of the quick
        // budgets (the seed bookkeeping does not depend on them; at the quick budgets this test cost more than the
        // shared quick run itself).
        test "with two seeds, the network rows average two runs whose first is the one-seed run" {
            let small = {
                EnergyBalance.quick with
                    PhysicsIterations = 100
                    HybridIterations = 30
                    SequenceIterations = 30
                    PinnIterations = 100
                    Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
            }

            let oneSeed = EnergyBalance.run small
            let two = EnergyBalance.run { small with Seeds = 2 }

            for m in two.Models do
                let one = oneSeed.Models |> Array.find (fun o -> o.Name = m.Name)

                if m.Name.StartsWith "EBM" then
                    Expect.isEmpty m.SeedTestMse $"{m.Name}: no seeds"
                    Expect.equal m.TestMse one.TestMse $"{m.Name}: the same fit"
                else
                    Expect.equal m.SeedTestMse.Length 2 $"{m.Name}: two seeds"

                    Expect.floatClose
                        Accuracy.veryHigh
                        m.SeedTestMse[0]
                        one.TestMse
                        $"{m.Name}: first seed = one-seed run"

                    Expect.notEqual m.SeedTestMse[1] m.SeedTestMse[0] $"{m.Name}: the second seed is another network"
                    Expect.floatClose Accuracy.veryHigh m.TestMse (Array.average m.SeedTestMse) $"{m.Name}: the mean"
        }

        test "the hybrid's 2001–2018 MSE is at least 20% below the best pure-ML baseline's" {
            let best = bestPureMl ()
            Expect.isLessThan (model "hybrid (EBM + MLP)").TestMse (0.8 * best.TestMse) best.Name
        }

        // The issue's claim, with fixed seeds. It holds by a thin margin (quick mode: hybrid ≈ 0.00672 °C² against
        // ≈ 0.00685 for the literature EBM and ≈ 0.00679 for the fitted EBM), far inside the year-to-year
        // variability of the test years (the best straight line through them leaves ≈ 0.00689). With the report's
        // settings the hybrid still beats the literature EBM but not the fitted one (≈ 0.00680 vs 0.00679). Over
        // network seeds 1–6 in quick mode (seed 3, the default, was set before any run) it beats the literature
        // EBM for five; seed 2 gives ≈ 0.00773, worse than both physics models.
        test "the hybrid beats the fixed-parameter (literature) EBM on 2001–2018" {
            Expect.isLessThan
                (model "hybrid (EBM + MLP)").TestMse
                (model "EBM literature").TestMse
                "hybrid < literature EBM on the test years"
        }
        test "the uncertainty of the hybrid: ensemble and MC dropout on the test years, finite and well formed" {
            let u = outcome.Force().Uncertainty
            Expect.equal u.Length 2 "ensemble and MC dropout"

            for r in u do
                CaseUncertaintyTests.checkResult r
                Expect.equal r.Points 18 $"{r.Method}: 2001–2018"
        }
    ]
