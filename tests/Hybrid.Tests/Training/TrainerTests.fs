/// Repeatability, checkpoint/resume, early stopping, progress hook and horizon/λ schedules.
module Hybrid.Tests.Training.TrainerTests

open System
open System.IO
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training

let f64 = torch.ScalarType.Float64

/// A small regression with dropout (so the RNG matters) and random mini-batches (so sampling matters).
let run (seed: int) (dir: string option) (epochs: int) (killAt: int) =
    Engine.seed seed
    let net = new Mlp("net", 1, 1, 16, 2, dropout = 0.1, dtype = f64)
    let x = torch.linspace(-1.0, 1.0, 64L, dtype = f64).unsqueeze (-1L)
    let y = torch.sin (3.0 * x)

    let options = {
        Trainer.defaults with
            Epochs = epochs
            StepsPerEpoch = 2
            Seed = seed
            Groups = [|
                {
                    Trainer.group "phi" 0.01 (Neural.parameters net) with
                        Schedule = LrSchedule.Exponential 0.99
                }
            |]
            ClipNorm = 1.0
            CheckpointDir = dir
            CheckpointEvery = 5
            Modules = [| net |]
            Progress = {
                Progress.silent with
                    Hook =
                        Some(
                            Progress.hook (fun r ->
                                if r.Epoch = killAt then
                                    failwith "killed")
                        )
            }
    }

    let objective = {
        Loss =
            fun ctx ->
                let idx =
                    Windows.sample ctx.Random 16 (Array.init 64 (fun i -> (i, 0)))
                    |> Array.map (fst >> int64)

                let it = torch.tensor idx
                let l = Loss.mse (net.forward (x.index_select (0L, it))) (y.index_select (0L, it))
                { Total = l; Parts = [| "data", l |] }
        Validation = Some(fun _ -> Metrics.mse (net.forward x) y)
    }

    let result = Trainer.train options objective
    let weights = Neural.parameters net |> Array.map (fun p -> p.detach().clone ())
    result, weights

let tempDir () =
    let d =
        Path.Combine(Path.GetTempPath(), "hybrid-ckpt-" + Guid.NewGuid().ToString("N"))

    d

let sameWeights (a: torch.Tensor[]) (b: torch.Tensor[]) =
    Array.forall2 (fun (x: torch.Tensor) (y: torch.Tensor) -> (x - y).abs().max().ToDouble() = 0.0) a b

let tests =
    testSequenced
    <| testList "Trainer" [
        test "a run that fails puts its modules back in the modes they had before it" {
            Engine.seed 1
            let net = new Mlp("net", 1, 1, 8, 1, dropout = 0.1, dtype = f64)
            net.eval ()
            let x = torch.linspace(-1.0, 1.0, 8L, dtype = f64).unsqueeze (-1L)

            let options = {
                Trainer.defaults with
                    Epochs = 3
                    StepsPerEpoch = 1
                    Groups = [| Trainer.group "phi" 0.01 (Neural.parameters net) |]
                    Modules = [| net |]
                    Progress = Progress.silent
            }

            // The trainer switches the module to training mode for its steps; the loss fails in epoch 1.
            let failing = {
                Loss =
                    fun ctx ->
                        if ctx.Epoch = 1 then
                            failwith "the loss failed"

                        let l = Loss.mse (net.forward x) (torch.zeros_like x)
                        { Total = l; Parts = [||] }
                Validation = None
            }

            Expect.throws (fun () -> Trainer.train options failing |> ignore) "the loss's exception propagates"
            Expect.isFalse net.training "back in eval mode, as before the run"
        }

        test "two runs with one seed give identical losses and weights" {
            let r1, w1 = run 7 None 12 -1
            let r2, w2 = run 7 None 12 -1
            Expect.sequenceEqual r1.TrainLosses r2.TrainLosses "identical training losses"
            Expect.isTrue (sameWeights w1 w2) "identical weights"
            let r3, _ = run 8 None 12 -1
            Expect.notEqual r1.TrainLosses r3.TrainLosses "another seed differs"
        }

        test "resume after a kill equals an uninterrupted run" {
            let full, wFull = run 11 None 20 -1
            let dir = tempDir ()

            try
                // Killed at the end of epoch 13; the last checkpoint is epoch 10, so 3 epochs are lost.
                Expect.throws (fun () -> run 11 (Some dir) 20 13 |> ignore) "the hook kills the run"

                Expect.equal
                    (Checkpoint.latest dir |> Option.map Path.GetFileName)
                    (Some "epoch-000010")
                    "last checkpoint"

                let resumed, wResumed = run 11 (Some dir) 20 -1
                Expect.sequenceEqual resumed.TrainLosses full.TrainLosses "same losses"
                Expect.isTrue (sameWeights wFull wResumed) "same weights"
            finally
                if Directory.Exists dir then
                    Directory.Delete(dir, true)
        }

        test "early stopping stops when validation stalls and restores the best weights" {
            Engine.seed 1
            let p = torch.nn.Parameter(torch.tensor (1.0, dtype = f64))
            let mutable calls = 0

            let r =
                Trainer.train
                    {
                        Trainer.defaults with
                            Epochs = 200
                            Groups = [| Trainer.group "theta" 0.1 [ p ] |]
                            Patience = 5
                            RestoreBest = true
                    }
                    {
                        Loss =
                            fun _ -> {
                                Total = (p - 3.0).square ()
                                Parts = [||]
                            }
                        // Validation prefers p = 2: it improves, then worsens as p heads to 3.
                        Validation =
                            Some(fun _ ->
                                calls <- calls + 1
                                (p.ToDouble() - 2.0) ** 2.0)
                    }

            Expect.isTrue r.StoppedEarly "stopped early"
            Expect.isLessThan r.Epochs 200 "before the last epoch"
            Expect.equal r.Epochs (r.BestEpoch + 5) "patience epochs after the best"
            Expect.floatClose { absolute = 0.1; relative = 0.0 } (p.ToDouble()) 2.0 "best weights restored"
        }

        test "progress reports carry epoch, losses, θ and ETA; horizon and λ follow their schedules" {
            let p = torch.nn.Parameter(torch.tensor (0.0, dtype = f64))
            let reports = ResizeArray<ProgressReport>()
            let seen = ResizeArray<int * float>()

            Trainer.train
                {
                    Trainer.defaults with
                        Epochs = 6
                        Groups = [| Trainer.group "theta" 0.1 [ p ] |]
                        Horizon = { Start = 1; Max = 3; GrowEvery = 2 }
                        Lambda = LambdaSchedule.Linear(0.0, 1.0, 4)
                        Theta = [| "p", (fun () -> p.ToDouble()) |]
                        Progress = {
                            Progress.silent with
                                Hook = Some(Progress.hook reports.Add)
                        }
                }
                {
                    Loss =
                        fun ctx ->
                            seen.Add((ctx.Horizon, ctx.Lambda))
                            let l = (p - 1.0).square ()
                            { Total = l; Parts = [| "data", l |] }
                    Validation = None
                }
            |> ignore

            Expect.equal
                (seen |> Seq.map fst |> List.ofSeq)
                [ 1; 1; 2; 2; 3; 3 ]
                "horizon grows by one every 2 epochs up to 3"

            Expect.equal (seen |> Seq.map snd |> List.ofSeq) [ 0.0; 0.25; 0.5; 0.75; 1.0; 1.0 ] "λ ramps linearly"
            Expect.equal reports.Count 6 "one report per epoch"
            Expect.equal (fst reports[5].Theta[0]) "p" "θ by name"
            Expect.stringContains (Progress.format reports[5]) "epoch 6/6" "formatted line"
            Expect.equal reports[5].Eta TimeSpan.Zero "no time left at the end"
        }

        // x_n = (1 − k)ⁿ, n = 1 … 20, against data from k = 1.5, "blows up" (a DivergenceException, as a rollout
        // raises) when |x₂₀| > 1e6, i.e. |1 − k| > 2. Adam's first step moves k by its rate: from 0.2 at rate 4 to
        // 4.2, where epoch 2 diverges. A recovery puts k back to 0.2 (the last parameters with a finite loss),
        // halves the rate and resets Adam, so epoch 2 steps to 0.2 + 2 = 2.2; without recoveries the run fails.
        test "a diverging epoch is rolled back to the last finite loss and retried at half the rate" {
            let data =
                Array.init 20 (fun n -> (1.0 - 1.5) ** float (n + 1))
                |> fun d -> torch.tensor (d, dtype = f64)

            let train (recoveries: int) =
                let k = torch.nn.Parameter(torch.tensor (0.2, dtype = f64))

                let objective = {
                    Loss =
                        fun _ ->
                            let xs = Array.zeroCreate<torch.Tensor> 20
                            let mutable x = 1.0 - k

                            for n in 0..19 do
                                xs[n] <- x
                                x <- x * (1.0 - k)

                            if abs (xs[19].ToDouble()) > 1e6 then
                                raise (DivergenceException $"x₂₀ = {xs[19].ToDouble()} at k = {k.ToDouble()}")

                            let l = (torch.stack xs - data).square().mean ()
                            { Total = l; Parts = [||] }
                    Validation = None
                }

                let options = {
                    Trainer.defaults with
                        Epochs = 2
                        Groups = [| Trainer.group "theta" 4.0 [ k ] |]
                        Recoveries = recoveries
                }

                let r = Trainer.train options objective
                r, k.ToDouble()

            Expect.throwsT<DivergenceException> (fun () -> train 0 |> ignore) "no recoveries: the second epoch fails"
            let r, k = train 3
            Expect.equal r.Recoveries 1 "one recovery"
            Expect.equal r.Epochs 2 "both epochs done"
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } k 2.2 "k stepped from 0.2 at rate 2"
            Expect.isTrue (r.TrainLosses |> Array.forall Double.IsFinite) "finite losses"
            Expect.equal Trainer.defaults.Recoveries 3 "the default allows three recoveries"
        }

        // loss(k) = (k − 3)² + where(k < 5, 0.1 √(5 − k), 0): finite for every k, but for k > 5 the unused branch is
        // √(negative) = NaN, and its gradient (0 · NaN) makes ∂loss/∂k NaN: the torch.where trap. Adam's first step
        // at rate 5 takes k from 0.5 to 5.5; there the gradient is NaN under the finite loss 6.25. The trainer refuses
        // the step (without the check Adam wrote k = NaN and the run ended without an error); a recovery puts k back
        // to 0.5, halves the rate and resets Adam, so epoch 2 steps to 0.5 + 2.5 = 3.
        test "a NaN gradient under a finite loss is a divergence caught before the step, and recovered from" {
            let train (recoveries: int) =
                let k = torch.nn.Parameter(torch.tensor (0.5, dtype = f64))

                let objective = {
                    Loss =
                        fun _ ->
                            let below = k.lt (torch.tensor (5.0, dtype = f64))
                            let rest = torch.tensor (5.0, dtype = f64) - k
                            let branch = torch.where (below, 0.1 * torch.sqrt rest, torch.zeros_like k)
                            let l = (k - 3.0).square () + branch
                            { Total = l; Parts = [||] }
                    Validation = None
                }

                let options = {
                    Trainer.defaults with
                        Epochs = 2
                        Groups = [| Trainer.group "theta" 5.0 [ k ] |]
                        Recoveries = recoveries
                }

                let outcome =
                    try
                        Ok(Trainer.train options objective)
                    with :? DivergenceException as e ->
                        Error e.Message

                outcome, k.ToDouble()

            match train 0 with
            | Error message, k ->
                Expect.stringContains message "gradient of group 'theta'" "the message names the group"
                Expect.stringContains message "epoch 2, step 1" "and the step"
                Expect.floatClose { absolute = 1e-6; relative = 0.0 } k 5.5 "the NaN never reached the parameter"
            | Ok _, k -> failtest $"no recoveries: the NaN gradient of epoch 2 must fail the run (k = {k})"

            match train 3 with
            | Ok r, k ->
                Expect.equal r.Recoveries 1 "one recovery"
                Expect.equal r.Epochs 2 "both epochs done"
                Expect.floatClose { absolute = 1e-6; relative = 0.0 } k 3.0 "k stepped from 0.5 at rate 2.5"
            | Error message, _ -> failtest $"with recoveries the run completes: {message}"
        }

        test "bad training settings fail clearly" {
            let e =
                Expect.throwsC
                    (fun () ->
                        Trainer.train Trainer.defaults {
                            Loss = (fun _ -> failwith "unused")
                            Validation = None
                        }
                        |> ignore)
                    id

            Expect.stringContains e.Message "no parameters to train" "empty groups"

            let w = Expect.throwsC (fun () -> Windows.starts 3 2 5 |> ignore) id
            Expect.stringContains w.Message "needs more than 5 snapshots" "horizon too long"
        }
    ]
