/// The two-scale Lorenz-96 twin experiment in quick mode (fixed seeds): truth at F = 20 (and 18, 24 out of
/// domain), closures fitted on the F = 20 training pairs. One run shared by the tests (≈ 6 s).
module Hybrid.Tests.Cases.Lorenz96Tests

open System
open Expecto
open Hybrid.Models.Cases

let private outcome = lazy (Lorenz96.run Lorenz96.quick)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let tests =
    testSequenced
    <| testList "Cases.Lorenz96" [
        // Step-size check of the truth integrator. Chaos (the fast scale's Lyapunov exponents are large) lets
        // any difference grow, so the comparison is short: 0.1 MTU from the random start (no spin-up), where dt
        // 0.001 and 0.0005 agree to ≈ 2e-7 and dt 0.005 is off by ≈ 3e-4.
        test "the truth at dt = 0.001 agrees with half the step over 0.1 MTU" {
            let s = {
                Lorenz96.quick with
                    SpinUp = 0.0
                    SampleInterval = 0.1
            }

            let coarse = Lorenz96.truth s 20.0 3 2
            let fine = Lorenz96.truth { s with TruthDt = 0.0005 } 20.0 3 2

            let gap =
                Array.map2 (fun (a: float) b -> abs (a - b)) coarse.X[1] fine.X[1] |> Array.max

            Expect.isLessThan gap 1e-5 "largest |X| difference after 0.1 MTU"
        }

        test "every model has finite forecasts and statistics at every forcing" {
            let o = outcome.Force()
            Expect.equal o.Truth.Length 3 "F = 20, 18, 24"

            for m in o.Models do
                Expect.equal m.Skills.Length 3 $"{m.Name}: three forcings"

                for k in m.Skills do
                    Expect.equal k.Rmse.Length o.Settings.Leads.Length $"{m.Name}: one RMSE per lead"

                    Expect.isTrue
                        (Array.forall Double.IsFinite k.Rmse
                         && Double.IsFinite k.Mean
                         && Double.IsFinite k.Std)
                        $"{m.Name} at F = {k.Forcing}: finite"
        }

        test "the fitted closures fit the training pairs far better than no closure" {
            let truncated = (model "truncated").TrainMse
            Expect.isLessThan (model "cubic closure").TrainMse (0.2 * truncated) "cubic vs U = 0"
            Expect.isLessThan (model "hybrid (X + MLP)").TrainMse (0.2 * truncated) "MLP vs U = 0"
        }

        // The proposal's claim against the pure data-driven LSTM (issue #6), in and out of domain: forecast MSE (RMSE²)
        // at the longest lead (1 MTU) at least 20% lower. Quick mode (60 LSTM epochs): RMSE 2.15 vs 4.5 at F = 20,
        // 1.44 vs 3.7 at F = 18, 3.8 vs 7.3 at F = 24, i.e. 73–85% lower MSE; the LSTM's free run at F = 24 blows up
        // (standard deviation in the hundreds).
        test "the hybrid's 1-MTU forecast MSE is at least 20% below the LSTM's at every forcing" {
            let hybrid = model "hybrid (X + MLP)"
            let lstm = model "LSTM"
            let last = outcome.Force().Settings.Leads.Length - 1

            for i, k in Array.indexed hybrid.Skills do
                let h = k.Rmse[last] * k.Rmse[last]
                let l = lstm.Skills[i].Rmse[last] * lstm.Skills[i].Rmse[last]
                Expect.isLessThan h (0.8 * l) $"F = {k.Forcing}: hybrid vs LSTM forecast MSE"
        }

        // The issue's claim, with fixed seeds: RMSE of X on the held-out start states at every lead, in domain.
        // The margin is large (quick mode: about 0.72 against 3.9 at lead 0.5 MTU) and holds for network seeds 1–5.
        // Not asserted: the hybrid also beats the cubic closure in quick mode (0.72 vs 0.84 at 0.5 MTU), by less.
        test "the hybrid beats the truncated (fixed-parameter) model on the test forecasts" {
            let hybrid = (model "hybrid (X + MLP)").Skills[0]
            let truncated = (model "truncated").Skills[0]

            for i, lead in Array.indexed (outcome.Force().Settings.Leads) do
                Expect.isLessThan hybrid.Rmse[i] truncated.Rmse[i] $"hybrid < truncated at lead {lead} MTU"
        }
        test "the uncertainty of the hybrid: ensemble and MC dropout in and out of domain, finite and well formed" {
            let o = outcome.Force()
            Expect.equal o.Uncertainty.Length (2 * (1 + o.Settings.OutOfDomain.Length)) "two methods per forcing"

            for r in o.Uncertainty do
                CaseUncertaintyTests.checkResult r
                Expect.equal r.Points (o.Settings.Starts * o.Settings.K) $"{r.Method}, {r.Split}: every start and site"
        }
    ]
