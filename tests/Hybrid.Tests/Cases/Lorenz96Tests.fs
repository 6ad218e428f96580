/// The two-scale Lorenz-96 twin experiment in quick mode (fixed seeds): truth at F = 20 (and 18, 24 out of
/// domain), closures fitted on the F = 20 training pairs (MLP and CNN over two network seeds). One run shared
/// by the tests (≈ 30–50 s on two loaded cores).
module Hybrid.Tests.Cases.Lorenz96Tests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common

let private outcome = lazy (Lorenz96.run Lorenz96.quick)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let private hybrids = [ "hybrid (X + MLP)"; "hybrid (X + CNN)" ]

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

        // The forecasts run the trained CNN as plain F# (`Lorenz96.convFunction`); it must be the network's own
        // forward pass on the ring (circular padding), with random weights and biases, kernel widths 3 and 5.
        test "the CNN closure as an F# function agrees with TorchSharp's forward pass" {
            Engine.init ()
            torch.random.manual_seed 11L |> ignore

            for kernel in [ 3; 5 ] do
                use net =
                    new Cnn1d("c", 1, 1, 6, 2, kernel, padding = Padding.Periodic, dtype = torch.ScalarType.Float64)

                let f = Lorenz96.convFunction net
                let rng = Random 3

                let states =
                    Array.init 5 (fun _ -> Array.init 8 (fun _ -> 4.0 * rng.NextDouble() - 2.0))

                use input =
                    torch.tensor(Array.concat states, dtype = torch.ScalarType.Float64).reshape (5L, 1L, 8L)

                use output = (net.forward input).squeeze 1L
                let expected = output.data<float>().ToArray() |> Array.chunkBySize 8

                for x, e in Array.zip states expected do
                    let got = f x
                    Expect.equal got.Length 8 "one value per site"

                    for i in 0..7 do
                        Expect.floatClose Accuracy.veryHigh got[i] e[i] $"kernel {kernel}, site {i}"

                // Not trivially local: moving one neighbour changes the site's output.
                let x = states[0]
                let moved = Array.copy x
                moved[1] <- moved[1] + 1.0
                let u0 (state: float[]) = (f state).[0]
                Expect.notEqual (u0 moved) (u0 x) $"kernel {kernel}: U_0 depends on X_1"
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
            Expect.isLessThan (model "hybrid (X + CNN)").TrainMse (0.2 * truncated) "CNN vs U = 0"
        }

        test
            "every network (closures, LSTM, transformer) runs over every network seed; its RMSE is the root of the mean MSE over seeds" {
            let o = outcome.Force()
            let seeds = o.Settings.NetworkSeeds.Length
            Expect.isGreaterThan seeds 1 "quick mode has several seeds"

            for name in hybrids @ [ "LSTM"; "Transformer" ] do
                let m = model name
                Expect.equal m.SeedRmse.Length seeds $"{name}: one RMSE set per seed"

                for i, k in Array.indexed m.Skills do
                    for l in 0 .. k.Rmse.Length - 1 do
                        let runs = m.SeedRmse |> Array.map (fun r -> r[i][l])
                        let combined = sqrt (runs |> Array.averageBy (fun r -> r * r))
                        Expect.floatClose Accuracy.high k.Rmse[l] combined $"{name}, F = {k.Forcing}, lead {l}"

                // Different seeds give different networks (the seeds are used).
                let first (r: float[][]) = r.[0].[0]
                Expect.notEqual (first m.SeedRmse[0]) (first m.SeedRmse[1]) $"{name}: seeds differ"

            for name in [ "truncated"; "cubic closure" ] do
                Expect.isEmpty (model name).SeedRmse $"{name}: not fitted over seeds"
        }

        test "the sequence baselines report their epochs, time and size, and have no closure" {
            for name, iterations in
                [
                    "LSTM", Lorenz96.quick.SequenceIterations
                    "Transformer", Lorenz96.quick.TransformerIterations
                ] do
                let m = model name
                Expect.equal m.Epochs iterations $"{name}: epochs"
                Expect.isGreaterThan m.TrainSeconds 0.0 $"{name}: training time"
                Expect.isGreaterThan m.InferenceSeconds 0.0 $"{name}: inference time"

                Expect.isGreaterThan
                    (m.Parameters |> Array.find (fun (n, _) -> n = "network weights") |> snd)
                    100.0
                    $"{name}: network size"

                Expect.isTrue (Double.IsNaN m.TrainMse) $"{name}: no closure, no train MSE"
                Expect.all m.Closure Double.IsNaN $"{name}: no closure curve"
        }

        // The proposal's claim against the pure data-driven baselines (issue #6), in and out of domain: forecast MSE
        // (RMSE², mean over network seeds) at the longest lead (1 MTU) at least 20% lower than the LSTM's and than the
        // transformer's, for both hybrids. Quick mode (60 epochs each): MLP RMSE 2.14 / 1.44 / 3.77 and CNN 1.61 /
        // 1.32 / 4.09 at F = 20 / 18 / 24, against LSTM 5.2 / 3.9 / 8.7 and transformer 4.4 / 4.0 / 6.7, i.e. 60–90%
        // lower MSE.
        test "both hybrids' 1-MTU forecast MSE is at least 20% below the LSTM's and the transformer's at every forcing" {
            let last = outcome.Force().Settings.Leads.Length - 1

            for name in hybrids do
                for baseline in [ "LSTM"; "Transformer" ] do
                    let b = model baseline

                    for i, k in Array.indexed (model name).Skills do
                        let h = k.Rmse[last] * k.Rmse[last]
                        let l = b.Skills[i].Rmse[last] * b.Skills[i].Rmse[last]
                        Expect.isLessThan h (0.8 * l) $"F = {k.Forcing}: {name} vs {baseline} forecast MSE"
        }

        // Neighbours help in domain: the CNN closure sees X_{k−3} … X_{k+3}, the MLP X_k alone. Quick mode: 1-MTU MSE
        // 2.57 and 2.63 (CNN, seeds 5 and 6) against 4.63 and 4.55 (MLP). Not asserted out of domain: at F = 24 the
        // CNN's 1-MTU MSE is higher than the MLP's (16.8 vs 14.2), though lower at the shorter leads.
        test "in domain, the CNN closure's 1-MTU forecast MSE is below the pointwise MLP's for every network seed" {
            let last = outcome.Force().Settings.Leads.Length - 1

            let inDomain (m: Lorenz96.ModelResult) =
                m.SeedRmse |> Array.map (fun r -> r[0][last] * r[0][last])

            for seed, c, m in
                Array.zip3
                    (Array.ofList Lorenz96.quick.NetworkSeeds)
                    (inDomain (model "hybrid (X + CNN)"))
                    (inDomain (model "hybrid (X + MLP)")) do
                Expect.isLessThan c m $"seed {seed}: CNN vs MLP forecast MSE at 1 MTU, F = 20"
        }

        // The issue's claim, with fixed seeds: RMSE of X on the held-out start states at every lead, in domain, for
        // both hybrids. The margin is large (quick mode: MLP 0.71 and CNN 0.48 against 3.9 at lead 0.5 MTU).
        // Not asserted: both also beat the cubic closure in domain in quick mode (0.71 and 0.48 vs 0.84 at 0.5 MTU).
        test "the physics residual: round-off for the truncated model, the truth's sub-grid effect for the truth" {
            let o = outcome.Force()
            let truth = o.TruthPhysicsResidual
            let truncated = (model "truncated").PhysicsResidual
            Expect.isLessThan truncated (1e-9 * truth) $"truncated: its own flow ({truncated})"

            for m in o.Models |> Array.filter (fun m -> m.Name <> "truncated") do
                Expect.isGreaterThan
                    m.PhysicsResidual
                    (1e-3 * truth)
                    $"{m.Name}: leans on something beyond the X equation"

            // A closure that stands in for the fast variables departs from the X equation about as much as the truth.
            for h in hybrids do
                let r = (model h).PhysicsResidual
                Expect.isTrue (r > 0.5 * truth && r < 2.0 * truth) $"{h}: {r} against the truth's {truth}"

            // Quick mode: truth 0.296, both hybrids 0.288, LSTM 0.98, transformer 1.24.
            for ml in [ "LSTM"; "Transformer" ] do
                for h in hybrids do
                    Expect.isGreaterThan
                        (model ml).PhysicsResidual
                        (model h).PhysicsResidual
                        $"{ml}: its forecasts depart further from the X equation than {h}'s"
        }

        test "both hybrids beat the truncated (fixed-parameter) model on the test forecasts" {
            let truncated = (model "truncated").Skills[0]

            for name in hybrids do
                let hybrid = (model name).Skills[0]

                for i, lead in Array.indexed (outcome.Force().Settings.Leads) do
                    Expect.isLessThan hybrid.Rmse[i] truncated.Rmse[i] $"{name} < truncated at lead {lead} MTU"
        }
        test "the uncertainty of the hybrid: ensemble and MC dropout in and out of domain, finite and well formed" {
            let o = outcome.Force()
            Expect.equal o.Uncertainty.Length (2 * (1 + o.Settings.OutOfDomain.Length)) "two methods per forcing"

            for r in o.Uncertainty do
                CaseUncertaintyTests.checkResult r
                Expect.equal r.Points (o.Settings.Starts * o.Settings.K) $"{r.Method}, {r.Split}: every start and site"
        }
    ]
