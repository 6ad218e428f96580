/// `hybrid bench-peers`' parts: PyTorch's runs of bench/peers.py (eager and TorchScript) agree with Hybrid's
/// generated kernels on tiny versions of the 1-D and 2-D problems and the full Lorenz-96 (loss and parameter
/// gradients to 1e-9, float64: both sides run the same RK4 steps summed in the same order, so only rounding
/// separates them, which Lorenz-96's chaos would amplify to 1e-8 otherwise), and the hand-written SIMD
/// reference agrees with the kernels on the 1-D case.
module Hybrid.Cli.Tests.PeerBenchTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Cli

let tests =
    testList "PeerBench" [
        test "PyTorch eager and TorchScript agree with the kernels on tiny Fisher–KPP and Gray–Scott and on Lorenz-96" {
            match PeerBench.interpreter () with
            | None ->
                skiptest
                    "PyTorch is not importable by python3 or /usr/bin/python3 (Debian: apt-get install python3-torch)"
            | Some python ->
                Engine.init ()
                let problems = PeerBench.problems true
                use peer = new PeerBench.Peer(python, problems, 1)

                problems
                |> Array.iteri (fun i p ->
                    let hybrid = PeerBench.hybridOutcome p

                    for mode in [ "eager"; "script" ] do
                        let _, outcome = peer.Run(i, mode)
                        let diff = PeerBench.difference hybrid outcome

                        Expect.isLessThanOrEqual
                            diff
                            1e-9
                            $"{p.Label}, PyTorch {mode}: L and ∂L/∂θ differ by {diff:E2} (relative); Hybrid {hybrid}, PyTorch {outcome}")
        }

        test "the SIMD reference's L and gradients = the kernels' on Fisher–KPP (N = 37, an odd width)" {
            Engine.init ()
            let n, steps, dt = 37, 30, 0.01
            let c = Compiler.Compiler.compile Bench.eagerOnly (Bench.fisherModel n)

            let p: PeerBench.Problem = {
                Label = "Fisher–KPP"
                Kind = "fisher"
                N = n
                Steps = steps
                Dt = dt
                Compiled = c
                Kernels = Kernels.Kernels.compile Numerics.Scheme.Rk4 c.Model
                U0 = c.Initial 1
            }

            let theta =
                c.Theta() |> Array.map (fun (t: TorchSharp.torch.Tensor) -> t.ToDouble())

            let u0 = p.U0[0].data<float>().ToArray()
            let loss, gd, gr = SimdFisher.lossAndGradient n theta[0] theta[1] dt steps u0

            let diff =
                PeerBench.difference
                    (PeerBench.hybridOutcome p)
                    ({ Loss = loss; Gradient = [| gd; gr |] }: PeerBench.Outcome)

            Expect.isLessThanOrEqual diff 1e-10 $"SIMD reference vs kernels: {diff:E2} (relative)"
        }
    ]
