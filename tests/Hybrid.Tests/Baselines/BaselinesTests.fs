/// The pure-ML and PINN baselines: shapes, causality, determinism by seed, that the sequence models learn a sine
/// and that the PINN's residual term recovers an exponential decay outside its data.
module Hybrid.Tests.Baselines.BaselinesTests

open System
open Expecto
open TorchSharp
open Hybrid.TensorArithmetic
open Hybrid.Models.Baselines
open Hybrid.Models.Common

let private sine (k: int) = [| sin (2.0 * Math.PI * float k / 12.0) |]

/// A sine of period 12 steps, 36 steps of history, forecast 12 steps.
let private sineForecast (architecture: SequenceModels.Architecture) (seed: int) =
    let s = {
        SequenceModels.defaults architecture with
            Window = 6
            Iterations = 200
            LearningRate = 2e-2
            Seed = seed
    }

    let model = SequenceModels.fitForecaster s [| Array.init 36 sine |] [||]
    let predicted = SequenceModels.forecast model (Array.init 36 sine) [||] 12

    let mse =
        Array.init 12 (fun i -> (predicted[i][0] - (sine (36 + i)).[0]) ** 2.0)
        |> Array.average

    model, predicted, mse

let tests =
    testSequenced
    <| testList "Baselines" [
        test "LSTM and transformer map [batch; steps; inputs] to [batch; steps; outputs], causally" {
            for a in [ SequenceModels.Architecture.Lstm; SequenceModels.Architecture.Transformer ] do
                use net = new SequenceModels.SequenceNet("t", 3, 2, SequenceModels.defaults a)
                use _ = torch.no_grad ()
                let x = torch.randn (4L, 6L, 3L, dtype = torch.ScalarType.Float64)
                let y = net.forward x
                Expect.sequenceEqual y.shape [| 4L; 6L; 2L |] $"{a}: output shape"
                // Changing the last step must leave the outputs at the earlier steps unchanged.
                let x2 = x.clone ()
                x2.select(1L, 5L).zero_ () |> ignore
                let early = (net.forward x2 .- y).narrow(1L, 0L, 5L).abs().max().ToDouble()
                Expect.isLessThan early 1e-12 $"{a}: steps 0–4 do not see step 5"
        }

        test "the same seed gives the same forecast, another seed another one" {
            for a in [ SequenceModels.Architecture.Lstm; SequenceModels.Architecture.Transformer ] do
                let s = {
                    SequenceModels.defaults a with
                        Window = 4
                        Iterations = 20
                }

                let series = [| Array.init 20 (fun k -> [| sin (0.5 * float k); cos (0.3 * float k) |]) |]
                let exo = [| Array.init 23 (fun k -> [| 0.1 * float k |]) |]

                let run seed =
                    let m = SequenceModels.fitForecaster { s with Seed = seed } series exo
                    SequenceModels.forecast m series[0] exo[0] 3

                let first = run 5
                Expect.equal first.Length 3 $"{a}: three forecast steps"
                Expect.equal first[0].Length 2 $"{a}: two channels"
                Expect.equal (run 5) first $"{a}: same seed, same forecast"
                Expect.notEqual (run 6) first $"{a}: another seed, another forecast"
        }

        // Reference: sin(2πk/12), whose values have mean square 0.5. Tolerance 0.01 = 2% of that; measured
        // (200 Adam iterations at 2e-2, the first third teacher-forced, 16 hidden units, 6-step windows):
        // LSTM ≈ 1.0e-3, transformer ≈ 3.6e-3; the same budget on free-running rollouts alone (WarmStart 0) gives
        // 0.02 for both, so the warm start is what this checks along with the rollouts.
        test "LSTM and transformer forecast a sine one period ahead to MSE < 0.01" {
            for a in [ SequenceModels.Architecture.Lstm; SequenceModels.Architecture.Transformer ] do
                let _, _, mse = sineForecast a 1
                Expect.isLessThan mse 0.01 $"{a}: 12-step forecast MSE of a unit sine"
        }

        // The training rollouts are forecasts: after the observed context, the free-running window of the training
        // objective must predict exactly what `forecast` predicts from the same history and exogenous inputs.
        test "a free-running training window predicts what forecast predicts from the same history" {
            for a in [ SequenceModels.Architecture.Lstm; SequenceModels.Architecture.Transformer ] do
                let s = {
                    SequenceModels.defaults a with
                        Window = 6
                }

                use net = new SequenceModels.SequenceNet("t", 3, 2, s)
                CaseTraining.initialise net 3 false
                let series = Array.init 7 (fun k -> [| sin (0.7 * float k); cos (0.4 * float k) |])
                let exogenous = Array.init 7 (fun k -> [| 0.2 * float k - 0.5 |])

                let x =
                    torch
                        .tensor(
                            Array.init 6 (fun k -> Array.append series[k] exogenous[k + 1]) |> Array.concat,
                            dtype = torch.ScalarType.Float64
                        )
                        .reshape (1L, 6L, 3L)

                let trained: SequenceModels.Trained = {
                    Net = net
                    Settings = s
                    Epochs = 0
                    Seconds = 0.0
                    TrainLoss = 0.0
                }

                use _ = torch.no_grad ()

                let rolled =
                    (SequenceModels.rollWindow net 2 3 x).squeeze(0L).contiguous().data<float>().ToArray()

                let forecast =
                    SequenceModels.forecast trained series[0..2] exogenous 4 |> Array.concat

                Expect.equal rolled.Length 8 $"{a}: four predicted states of two channels"

                for i in 0 .. rolled.Length - 1 do
                    Expect.floatClose Accuracy.veryHigh rolled[i] forecast[i] $"{a}: value {i}"
        }

        test "the sequence regression maps a covariate sequence to its outputs" {
            // y(k) = cumulative sum of x up to k (needs memory), three records of eight steps.
            let inputs =
                Array.init 3 (fun r -> Array.init 8 (fun k -> [| 0.1 * float ((r + k) % 3) |]))

            let targets =
                inputs
                |> Array.map (fun xs ->
                    xs
                    |> Array.scan (fun acc x -> acc + x[0]) 0.0
                    |> Array.tail
                    |> Array.map (fun v -> [| v |]))

            let s = {
                SequenceModels.defaults SequenceModels.Architecture.Lstm with
                    Iterations = 200
            }

            let m = SequenceModels.fitRegression s inputs targets
            let y = SequenceModels.regress m inputs
            Expect.equal (y.Length, y.[0].Length, y.[0].[0].Length) (3, 8, 1) "shape [records; steps; outputs]"
            Expect.isLessThan m.TrainLoss 1e-3 "training MSE of a running sum (targets up to 0.9)"
        }

        test "the PINN derivative is the input derivative: d(x0² x1)/dx0 = 2 x0 x1" {
            let x =
                torch.tensor([| 1.0; 2.0; -0.5; 3.0 |], dtype = torch.ScalarType.Float64).reshape(2L, 2L).requires_grad_
                    true

            let y = (x.select (1L, 0L) .* x.select (1L, 0L) .* x.select (1L, 1L)).unsqueeze 1L
            let d = (Pinn.derivative x y 0).data<float>().ToArray()
            Expect.floatClose Accuracy.veryHigh d[0] 4.0 "2·1·2"
            Expect.floatClose Accuracy.veryHigh d[1] -3.0 "2·(−0.5)·3"
        }

        // u' = −k u with k = 0.5 and u(0) = 1: data at t = 0, 0.5, 1 only, residual on [0, 4]. At t = 4 the
        // exact value is e^−2 ≈ 0.135; with the residual the PINN must be within 0.02 of it. Without the
        // residual (weight 0) the same network has nothing to say about t = 4 (checked to be > 0.02 off), so the
        // residual term is what carries the decay.
        test "the PINN recovers an exponential decay u' = −k u beyond its three data points" {
            let k = 0.5

            let problem = {
                Pinn.Inputs = [| [| 0.0 |]; [| 0.5 |]; [| 1.0 |] |]
                Pinn.Targets = [| 0.0; 0.5; 1.0 |] |> Array.map (fun t -> [| exp (-k * t) |])
                Pinn.Collocation = Array.init 41 (fun i -> [| 0.1 * float i |])
                Pinn.InputShift = [| 2.0 |]
                Pinn.InputScale = [| 2.0 |]
                Pinn.OutputShift = [| 0.0 |]
                Pinn.OutputScale = [| 1.0 |]
                Pinn.Residual = fun f -> f.D f.U 0 .+ k .* f.U
            }

            let s = {
                Pinn.defaults with
                    Width = 16
                    Iterations = 600
                    LearningRate = 1e-2
            }

            let informed = Pinn.fit s problem
            let u4 = (informed.Predict [| [| 4.0 |] |]).[0].[0]
            Expect.isLessThan (abs (u4 - exp (-2.0))) 0.02 $"u(4) = {u4}, exact {exp (-2.0)}"
            Expect.isLessThan informed.ResidualLoss 1e-3 "mean squared residual"
            let blind = Pinn.fit { s with ResidualWeight = 0.0 } problem
            let b4 = (blind.Predict [| [| 4.0 |] |]).[0].[0]
            Expect.isGreaterThan (abs (b4 - exp (-2.0))) 0.02 $"data only: u(4) = {b4}"
        }

        test "seed summaries and the claim sentence" {
            let s = Comparison.summarise [| 1.0; 2.0; 3.0 |]
            Expect.floatClose Accuracy.veryHigh s.Mean 2.0 "mean"
            Expect.floatClose Accuracy.veryHigh s.Spread 1.0 "sample standard deviation"
            Expect.floatClose Accuracy.veryHigh (Comparison.change 0.7 1.0) -30.0 "30% lower"

            // Ratios per seed 0.50, 0.55, 0.52 against the LSTM (the best baseline by geometric mean): the interval
            // of the ratio lies far below 0.8, so "at least 20% lower" holds.
            let holds =
                Comparison.claimSentence "test years" "hybrid" [| 0.5; 0.55; 0.52 |] [|
                    "LSTM", [| 1.0; 1.0; 1.0 |]
                    "Transformer", [| 1.2; 1.3; 1.1 |]
                |]

            Expect.stringContains holds "best pure-ML baseline, LSTM" "names the best baseline"
            Expect.stringContains holds "over 3 seeds" "says how many pairs"
            Expect.stringContains holds "at least 20% lower error holds" "the whole interval is below 0.8"

            // Ratios 0.95, 0.97, 0.93: the whole interval lies above 0.8, so the claim fails.
            let fails =
                Comparison.claimSentence "test years" "hybrid" [| 0.95; 0.97; 0.93 |] [| "LSTM", [| 1.0; 1.0; 1.0 |] |]

            Expect.stringContains fails "lower error fails" "less than 20% lower throughout"

            // Ratios 0.5 and 1.1: the interval straddles 0.8.
            let unsure =
                Comparison.claimSentence "test years" "hybrid" [| 0.5; 1.1 |] [| "LSTM", [| 1.0; 1.0 |] |]

            Expect.stringContains unsure "is inconclusive" "straddles"

            let c = Comparison.claim [| 0.5; 1.1 |] [| "LSTM", [| 1.0; 1.0 |] |]
            let r = c.Ratio.Value
            // log ratios log 0.5, log 1.1: mean −0.299, sd 0.558, t(0.975, 1) = 12.706, half-width 12.706·0.558/√2.
            Expect.floatClose Accuracy.high r.Estimate (sqrt 0.55) "geometric mean ratio √(0.5 · 1.1)"

            Expect.floatClose
                Accuracy.medium
                (log r.Upper - log r.Estimate)
                (12.706204736 * 0.557523546 / sqrt 2.0)
                "t half-width"

            let once =
                Comparison.claimSentence "test years" "hybrid" [| 0.0003 |] [| "LSTM", [| 1.0 |] |]

            Expect.stringContains once "99.97% lower" "not rounded to 100%"
            Expect.stringContains once "from one seed" "no interval"
            Expect.stringContains once "is inconclusive" "one seed cannot decide"
            Expect.equal (Hybrid.Models.Common.ReportFormat.percentChange 0 0.0003 1.0) "-99.97%" "likewise"
            Expect.equal (Hybrid.Models.Common.ReportFormat.percentChange 0 0.5 1.0) "-50%" "no decimals otherwise"
        }

        test "a model over seeds: distinct seeds, the mean MSE and time, the first run's other fields" {
            Expect.equal (Comparison.seeds 7 3) [| 7; 1007; 2007 |] "1000 apart from the first"

            Expect.throwsT<Hybrid.HybridException> (fun () -> Comparison.seeds 7 0 |> ignore) "no seeds is an error"

            let run seed = {|
                Seed = seed
                TestMse = float (seed % 10)
                TrainSeconds = float seed
                Runs = [||]
            |}

            let row =
                Comparison.overSeeds [| 1; 3; 8 |] run (fun first mses seconds -> {|
                    first with
                        TestMse = mses.Mean
                        TrainSeconds = seconds
                        Runs = mses.Runs
                |})

            Expect.equal row.Seed 1 "the first seed's run stands for the rest"
            Expect.equal row.Runs [| 1.0; 3.0; 8.0 |] "every seed's MSE, in seed order"
            Expect.floatClose Accuracy.veryHigh row.TestMse 4.0 "mean MSE"
            Expect.floatClose Accuracy.veryHigh row.TrainSeconds 4.0 "mean training time"
        }
    ]
