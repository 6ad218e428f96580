/// The tumour-growth twin in quick mode (one seed, fixed seeds): truth with a hidden saturating (Emax) kill,
/// training on a control arm and two low-dose schedules, tests on unseen timings (in-domain) and unseen,
/// higher-dose schedules (out-of-domain); pure-ML baselines, a PINN and the hybrid's uncertainty. One run shared
/// by the tests.
module Hybrid.Tests.Cases.TumourTests

open System
open Expecto
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Report

let private outcome = lazy (Tumour.run Tumour.quick)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let private prior = "prior (log-kill, fixed prior values)"
let private fitted = "fitted (log-kill, D r k fitted)"
let private hybrid = "hybrid (D r + MLP kill)"

let private parameter (m: Tumour.ModelResult) name =
    m.Parameters |> Array.find (fun (n, _) -> n = name) |> snd |> Array.head

/// d/dt ∫u dx = ∫ (r u (1 − u) − k_max c/(EC50 + c) u) dx on a fine-step truth run (no flux leaves the domain,
/// so diffusion moves no mass): the change of ∫u over 12 days against the trapezoid rule of the right-hand
/// side, relative to the size of the change. Written from the stated equation, not from the compiled model.
let private massBalance (schedule: Tumour.Schedule) =
    let dt = 0.01
    let u, centres = Tumour.truthTrajectory dt schedule
    let dx = 10.0 / float centres.Length

    let source (i: int) =
        let t = float i * dt

        Array.map2
            (fun ui x ->
                let c = Tumour.concentration schedule t x

                Tumour.Truth.r * ui * (1.0 - ui)
                - Tumour.Truth.KMax * c / (Tumour.Truth.EC50 + c) * ui)
            u[i]
            centres
        |> Array.sum
        |> (*) dx

    let mass (i: int) = Array.sum u[i] * dx
    let last = u.Length - 1
    let change = mass last - mass 0

    let integral =
        [| 0 .. last - 1 |]
        |> Array.sumBy (fun i -> 0.5 * dt * (source i + source (i + 1)))

    change, abs (change - integral) / abs change

let tests =
    testSequenced
    <| testList "Cases.Tumour" [
        test "the truth obeys its stated equation: mass balance with no flux and the Emax kill" {
            let control, controlError = massBalance Tumour.training[0]
            Expect.isGreaterThan control 0.5 "without drug the tumour grows"
            Expect.isLessThan controlError 1e-3 "control arm: change of mass = ∫∫ r u (1 − u)"

            for schedule in Array.append Tumour.training Tumour.outOfDomain |> Array.skip 1 do
                let _, error = massBalance schedule
                Expect.isLessThan error 1e-3 $"{schedule.Name}: change of mass = ∫∫ (growth − Emax kill)"
        }

        test "the out-of-domain schedules reach concentrations the training never saw" {
            let o = outcome.Force()
            let top = o.KillConcentrations[o.KillConcentrations.Length - 1]
            Expect.isGreaterThan top (1.5 * o.TrainingMaxConcentration) "largest c out of domain vs training"
        }

        test "every model is finite and the truth's residual under its own equation is round-off" {
            let o = outcome.Force()
            Expect.isLessThan o.TruthResidualNorm 1e-10 "truth residual"

            for m in o.Models do
                for v in [ m.InDomainMse; m.OutOfDomainMse; m.TrainMse ] do
                    Expect.isTrue (Double.IsFinite v) $"{m.Name}: finite"

                // The sequence models predict the observation times only: no trajectory, no residual.
                if ModelTable.isPureMl m.Name then
                    Expect.isTrue (Double.IsNaN m.ResidualNorm) $"{m.Name}: no residual"
                else
                    Expect.isTrue (Double.IsFinite m.ResidualNorm) $"{m.Name}: finite residual"
        }

        test "the LSTM, transformer and PINN rows report their seeds, epochs and training time" {
            for name, epochs in
                [
                    "LSTM", Tumour.quick.SequenceIterations
                    "Transformer", Tumour.quick.SequenceIterations
                    "PINN", Tumour.quick.PinnIterations
                ] do
                let m = model name
                let seeds = Tumour.quick.Seeds.Length
                Expect.equal m.SeedOutOfDomainMse.Length seeds $"{name}: one out-of-domain MSE per seed"
                Expect.equal m.SeedInDomainMse.Length seeds $"{name}: one in-domain MSE per seed"

                Expect.floatClose
                    Accuracy.veryHigh
                    m.OutOfDomainMse
                    (Array.average m.SeedOutOfDomainMse)
                    $"{name}: mean"

                Expect.equal m.Epochs epochs $"{name}: epochs"
                Expect.isGreaterThan m.TrainSeconds 0.0 $"{name}: wall time"

                for runs in [ m.SeedInDomainMse; m.SeedOutOfDomainMse ] do
                    Expect.isTrue (runs |> Array.forall Double.IsFinite) $"{name}: finite per-seed MSEs"

                Expect.equal m.Burden.Length Tumour.outOfDomain.Length $"{name}: a burden curve per unseen schedule"

                Expect.isTrue
                    (m.Burden |> Array.forall (Array.forall (fun (_, b) -> Double.IsFinite b)))
                    $"{name}: finite burden"
        }

        // The proposal's claim (issue #6): the hybrid's out-of-domain MSE is at least 20% below the best pure-ML
        // baseline's (LSTM, transformer: Report.ModelTable.isPureMl). Quick mode, seed 1: hybrid ≈ 1.2e-4 against
        // ≈ 1.7e-2 for the LSTM and ≈ 7.7e-2 for the transformer, which forecast the unseen, higher-dose schedules
        // from the low-dose training records alone.
        test "the hybrid's out-of-domain MSE is at least 20% below the best pure-ML baseline's" {
            let best =
                outcome.Force().Models
                |> Array.filter (fun m -> ModelTable.isPureMl m.Name)
                |> Array.minBy (fun m -> m.OutOfDomainMse)

            Expect.isLessThan (model hybrid).OutOfDomainMse (0.8 * best.OutOfDomainMse) $"hybrid vs {best.Name}"
        }

        test "the uncertainty of the hybrid: ensemble and MC dropout in and out of domain, finite and well formed" {
            let u = outcome.Force().Uncertainty
            Expect.equal u.Length 4 "two methods × two splits"
            let cells = Tumour.Truth.Cells * Tumour.Truth.ObservationTimes.Length

            for r in u do
                CaseUncertaintyTests.checkResult r

                let schedules =
                    if r.Split.StartsWith "in domain" then
                        Tumour.inDomain.Length
                    else
                        Tumour.outOfDomain.Length

                Expect.equal r.Points (schedules * cells) $"{r.Method}, {r.Split}: every cell at every observation time"
                Expect.isGreaterThan r.ModelStd 0.0 $"{r.Method}, {r.Split}: the members or passes differ"
        }

        test "the fitted log-kill model fits the training schedules better than the prior" {
            Expect.isLessThan (model fitted).TrainMse (model prior).TrainMse "fitted < prior on training"
        }

        // The issue's claim, with fixed seeds. Quick mode, seed 1: hybrid ≈ 1.2e-4 against ≈ 8.6e-4 for the prior
        // and ≈ 7.9e-3 for the fitted log-kill model, whose linear kill overshoots at high doses. Seeds 2–4 in quick
        // mode give 4.9e-4, 2.8e-4 and 3.4e-4 for the hybrid (the prior's does not depend on the seed); the full
        // settings (3 seeds, 300 hybrid epochs) ≈ 5e-5.
        test "the hybrid beats the fixed-parameter (prior) model on the out-of-domain schedules" {
            Expect.isLessThan (model hybrid).OutOfDomainMse (model prior).OutOfDomainMse "hybrid < prior, OOD"
        }

        test "the hybrid beats both physics models in domain and the fitted one out of domain" {
            let h = model hybrid
            Expect.isLessThan h.InDomainMse (model prior).InDomainMse "hybrid < prior, in-domain"
            Expect.isLessThan h.InDomainMse (model fitted).InDomainMse "hybrid < fitted, in-domain"
            Expect.isLessThan h.OutOfDomainMse (model fitted).OutOfDomainMse "hybrid < fitted, OOD"
        }

        // Quick mode at c ≈ 4.4: truth ≈ 1.06, hybrid ≈ 0.99, fitted ≈ 5.4 /day (full settings: hybrid ≈ 0.77).
        test "the hybrid's kill saturates like the truth; the fitted linear kill overshoots at high doses" {
            let o = outcome.Force()
            let last = o.KillConcentrations.Length - 1
            let truth = o.TrueKill[last]
            Expect.isLessThan (abs ((model hybrid).Kill[last] - truth) / truth) 0.3 "hybrid kill at the top"
            Expect.isGreaterThan ((model fitted).Kill[last]) (2.0 * truth) "fitted kill at the top"
        }

        // Quick mode: D ≈ 0.0347 (+16%), r ≈ 0.468 (−6%); the full settings recover both within 2%.
        test "the hybrid recovers D and r within 30%" {
            let h = model hybrid
            let d, r = parameter h "D", parameter h "r"
            Expect.isLessThan (abs (d - Tumour.Truth.D) / Tumour.Truth.D) 0.3 $"D {d}"
            Expect.isLessThan (abs (r - Tumour.Truth.r) / Tumour.Truth.r) 0.3 $"r {r}"
        }
    ]
