/// Deep ensembles on a heteroscedastic problem, MC dropout away from the data, calibration and scores.
module Hybrid.Tests.Training.UncertaintyTests

open System
open System.IO
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training
open Hybrid.TensorArithmetic

let f64 = torch.ScalarType.Float64

/// y = sin(3x) + σ(x)·ε with σ(x) = 0.05 + 0.25·(x + 1)/2 on x ∈ [−1, 1].
let sample (n: int) (seed: int64) =
    Engine.init ()
    let g = new torch.Generator(uint64 seed, torch.CPU)
    let x = (2.0 * torch.rand ([| int64 n; 1L |], dtype = f64, generator = g) - 1.0)
    let sigma = 0.05 + 0.25 * (x + 1.0) / 2.0

    x,
    torch.sin (3.0 * x)
    + sigma * torch.randn ([| int64 n; 1L |], dtype = f64, generator = g)

let gaussianHead (net: Mlp) (x: torch.Tensor) =
    let out = net.forward x

    {
        Mean = out.narrow (1L, 0L, 1L)
        Std = torch.nn.functional.softplus (out.narrow (1L, 1L, 1L)) + 1e-3
    }

let tests =
    testSequenced
    <| testList "Uncertainty" [
        test "deep ensemble on a heteroscedastic problem: ECE below 0.08" {
            let x, y = sample 400 1L
            let xt, yt = sample 2000 2L

            let train (net: Mlp) =
                Trainer.train
                    {
                        Trainer.defaults with
                            Epochs = 400
                            Groups = [| Trainer.group "phi" 0.01 (Neural.parameters net) |]
                    }
                    {
                        Loss =
                            fun _ ->
                                let p = gaussianHead net x

                                {
                                    Total = Loss.gaussianNll p.Mean p.Std y
                                    Parts = [||]
                                }
                        Validation = None
                    }
                |> ignore

            let members, seconds =
                Metrics.timed (fun () ->
                    Uncertainty.ensemble 3 100 (fun k -> new Mlp($"member{k}", 1, 2, 32, 2, dtype = f64)) train)

            let p =
                use _ = torch.no_grad ()
                members |> Array.map (fun m -> gaussianHead m xt) |> Uncertainty.combine

            let c = Uncertainty.calibration Uncertainty.defaultLevels p yt
            let nll = Uncertainty.nll p yt
            let crps = Uncertainty.crps p yt

            let svg =
                Uncertainty.reliabilitySvg (Path.Combine(Path.GetTempPath(), "hybrid-reliability.svg")) "ensemble" c

            printfn
                "Ensemble: ECE %.4f, NLL %.3f, CRPS %.4f, coverage %A, %.1f s (3 members, parallel)"
                c.Ece
                nll
                crps
                c.Coverage
                seconds

            // 0.08: with 2,000 test points the sampling error of a coverage is ≈ 0.01; a mis-specified
            // (homoscedastic) model scores ≈ 0.1 here.
            Expect.isLessThan c.Ece 0.08 "calibrated intervals"
            Expect.stringContains svg "<polyline" "reliability plot drawn"
        }

        test "MC dropout: the spread grows away from the data" {
            Engine.seed 5

            let net =
                new Mlp("dropout", 1, 1, 64, 2, activation = Activation.Relu, dropout = 0.2, dtype = f64)

            let x = torch.linspace(-1.0, 1.0, 64L, dtype = f64).unsqueeze (-1L)
            let y = torch.sin (3.0 * x)

            Trainer.train
                {
                    Trainer.defaults with
                        Epochs = 300
                        Groups = [| Trainer.group "phi" 0.01 (Neural.parameters net) |]
                        Modules = [| net |]
                }
                {
                    Loss =
                        fun _ -> {
                            Total = Loss.mse (net.forward x) y
                            Parts = [||]
                        }
                    Validation = None
                }
            |> ignore

            let spread (lo: float) (hi: float) =
                let xs = torch.linspace(lo, hi, 20L, dtype = f64).unsqueeze (-1L)
                (Uncertainty.mcDropout [| net |] 50 (fun () -> net.forward xs)).Std.mean().ToDouble()

            let inside = spread -1.0 1.0
            let outside = spread 3.0 4.0
            printfn "MC dropout: mean std inside %.4f, at x ∈ [3, 4] %.4f" inside outside
            Expect.isGreaterThan outside (2.0 * inside) "spread at least doubles away from the data"
        }

        test "calibration of an exact Gaussian is near perfect; scores match closed forms" {
            Engine.init ()
            let g = new torch.Generator(42UL, torch.CPU)
            let y = torch.randn ([| 20000L |], dtype = f64, generator = g)

            let p = {
                Mean = torch.zeros_like y
                Std = torch.ones_like y
            }

            let c = Uncertainty.calibration Uncertainty.defaultLevels p y
            Expect.isLessThan c.Ece 0.01 "ECE of the true distribution"
            // E[CRPS] of N(0,1) for y ~ N(0,1) is E|X − Y| − ½E|X − X'| = 2/√π − 1/√π = 1/√π ≈ 0.5642;
            // the NLL is ½(1 + log 2π) ≈ 1.4189. Tolerances: Monte Carlo error with 20,000 samples.
            Expect.floatClose { absolute = 0.01; relative = 0.0 } (Uncertainty.crps p y) (1.0 / sqrt Math.PI) "CRPS"

            Expect.floatClose
                { absolute = 0.02; relative = 0.0 }
                (Uncertainty.nll p y)
                (0.5 * (1.0 + log (2.0 * Math.PI)))
                "NLL"

            Expect.floatClose
                { absolute = 1e-8; relative = 0.0 }
                (Uncertainty.normalQuantile 0.975)
                1.959963985
                "Φ⁻¹(0.975)"
        }

        test "variance scaling recovers an overconfidence factor of 2 and restores calibration on new data" {
            Engine.init ()
            let g = new torch.Generator(7UL, torch.CPU)
            // Targets ~ N(μ, 2²) while the model claims σ = 1: s² = mean z² has relative sd √(2/n), so with
            // n = 20,000 the factor 2 is found within 4·½√(2/n)·2 ≈ 0.02; a mean-|z| estimator gives 1.6.
            let n = 20000L
            let mu = torch.linspace (-3.0, 3.0, n, dtype = f64)

            let draw () =
                mu + 2.0 .* torch.randn ([| n |], dtype = f64, generator = g)

            let validation, test = draw (), draw ()

            let p = { Mean = mu; Std = torch.ones_like mu }

            let s = Uncertainty.varianceScale p validation
            Expect.floatClose { absolute = 0.02; relative = 0.0 } s 2.0 "the factor"
            let before = Uncertainty.calibration Uncertainty.defaultLevels p test

            let after =
                Uncertainty.calibration Uncertainty.defaultLevels (Uncertainty.rescale s p) test
            // Coverage of an exact Gaussian over 20,000 points scatters by ≤ √(¼/20000) ≈ 0.0035 per level.
            Expect.isGreaterThan before.Ece 0.2 "overconfident before"
            Expect.isLessThan after.Ece 0.01 "calibrated after, on data the factor never saw"

            Expect.throwsT<HybridException> (fun () -> Uncertainty.rescale 0.0 p |> ignore) "a zero factor is refused"

            Expect.throwsT<HybridException>
                (fun () ->
                    Uncertainty.varianceScale p (torch.zeros ([| n |], dtype = f64) .+ nan)
                    |> ignore)
                "no observed target"
        }

        test "bad uncertainty inputs fail clearly" {
            Expect.throwsT<HybridException>
                (fun () -> Uncertainty.mcDropout [||] 1 (fun () -> torch.zeros 1L) |> ignore)
                "one pass"

            Expect.throwsT<HybridException> (fun () -> Uncertainty.ensemble 0 1 id ignore |> ignore) "no members"
        }

        test "mcDropoutSeeded: two calls with one seed draw identical masks, another seed differs" {
            Engine.seed 1
            let net = new Mlp("net", 1, 1, 16, 2, dropout = 0.3, dtype = f64)
            net.eval ()
            let xs = torch.linspace(-1.0, 1.0, 10L, dtype = f64).unsqueeze (-1L)

            let draw seed =
                Uncertainty.mcDropoutSeeded [| net |] 5 seed (fun () -> net.forward xs)

            let a, b, c = draw 7, draw 7, draw 8
            let bits (t: torch.Tensor) = t.reshape(-1L).data<float>().ToArray()
            Expect.sequenceEqual (bits b.Mean) (bits a.Mean) "identical means"
            Expect.sequenceEqual (bits b.Std) (bits a.Std) "identical spreads"
            Expect.notEqual (bits c.Mean) (bits a.Mean) "another seed draws other masks"
            Expect.isFalse net.training "back in eval mode"
        }

        test "mcDropoutSeeded leaves the caller's random stream where it was" {
            Engine.init ()
            let net = new Mlp("net", 1, 1, 8, 1, dropout = 0.5, dtype = f64)
            let xs = torch.zeros ([| 4L; 1L |], dtype = f64)
            Engine.seed 3
            let expected = torch.rand(3L, dtype = f64).data<float>().ToArray()
            Engine.seed 3
            Uncertainty.mcDropoutSeeded [| net |] 3 11 (fun () -> net.forward xs) |> ignore
            let after = torch.rand(3L, dtype = f64).data<float>().ToArray()
            Expect.sequenceEqual after expected "the same numbers as without the call"
        }

        test "a throwing predict leaves every module in the mode it had before" {
            Engine.init ()
            let net = new Mlp("net", 1, 1, 8, 1, dropout = 0.5, dtype = f64)
            let other = new Mlp("other", 1, 1, 8, 1, dropout = 0.5, dtype = f64)
            net.eval ()
            other.train ()

            let modes (m: torch.nn.Module) =
                Array.append [| m.training |] [| for s in m.modules () -> s.training |]

            let before = modes net, modes other

            let e =
                Expect.throwsC
                    (fun () ->
                        Uncertainty.mcDropout [| net; other |] 3 (fun () -> failwith "predict failed")
                        |> ignore)
                    id

            Expect.equal e.Message "predict failed" "the predict's own error"
            Expect.equal (modes net, modes other) before "eval stays eval, train stays train"
            Expect.isFalse net.training "net in eval mode"
            Expect.isTrue (Array.forall not (modes net)) "every submodule of net in eval mode"

            Engine.seed 4
            let expected = torch.rand(2L, dtype = f64).data<float>().ToArray()
            Engine.seed 4

            Expect.throws
                (fun () ->
                    Uncertainty.mcDropoutSeeded [| net |] 3 9 (fun () -> failwith "predict failed")
                    |> ignore)
                "the seeded version throws too"

            Expect.sequenceEqual (torch.rand(2L, dtype = f64).data<float>().ToArray()) expected "random state restored"
            Expect.isFalse net.training "eval again"
        }
    ]
