/// `FusedRollout`: a compiled simulator's rollout fused with a neural branch, ŷ = α·F_θ + (1 − α)·G_φ, on a 0-D
/// decay model du/dt = −k u (F) and an MLP of (u₀, t) (G): the limits α = 1 and α = 0 give each branch exactly, the
/// gate is a weight per point, and the gradients of ŷ with respect to θ, φ and α agree with central finite
/// differences in float64 (α's also with its closed form).
module Hybrid.Tests.Training.FusedRolloutTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64
let private times = [| 0.0; 0.25; 0.5; 0.75; 1.0 |]

let private options = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 0.125
        SaveTimes = times
        FiniteCheckEvery = 0
}

let private decay: Model =
    let u, k = sym "u", sym "k"

    model "decay" {
        domain point
        field "u"
        param "k" (positive 1.3)
        equation (dt u == -k * u)
        initialValue "u" 1.0
    }

/// The pieces of a fused decay model: the simulator, the neural branch's network, the start states and G at the save
/// times ([S; B], an MLP of (u₀, t)).
let private setup (seed: int) =
    Engine.seed seed
    let sim = Compiler.compile Compiler.defaults decay
    let net = new Mlp("G", 2, 1, 8, 1, dtype = f64)
    let u0 = torch.tensor ([| 0.5; 0.9; 1.4 |], dtype = f64)

    let neural () =
        let s, b = int64 times.Length, u0.shape[0]
        let t = torch.tensor(times, dtype = f64).reshape([| s; 1L |]).expand ([| s; b |])
        Closure.pointwise net [| u0.unsqueeze(0L).expand ([| s; b |]); t |]

    sim, net, u0, neural

/// Sets a scalar fusion's α by its raw value (α = sigmoid(raw)).
let private setRaw (fusion: Fusion) (raw: float) =
    use _ = torch.no_grad ()

    for p in fusion.parameters () do
        withScalar raw p.fill_ |> ignore

let private values (t: torch.Tensor) =
    t.detach().reshape(-1L).data<float>().ToArray()

let tests =
    testSequenced
    <| testList "FusedRollout" [
        // sigmoid(±800) is exactly 1 and 0 in float64, and 4 is a power of two (dividing and multiplying by it is
        // exact), so the fused values must be the branches bit for bit.
        test "α = 1 reproduces the physics rollout exactly, α = 0 the neural branch" {
            let sim, _, u0, neural = setup 1
            let fusion = new Fusion(FusionMode.Scalar 0.5, dtype = f64)
            let physics = (sim.Simulate([| u0 |], options)).Values[0]

            setRaw fusion 800.0
            let one = FusedRollout.run fusion [| 4.0 |] sim [| u0 |] options [| neural () |]
            Expect.equal fusion.Alpha 1.0 "α = 1"
            Expect.equal (values one.Fused[0]) (values physics) "ŷ = F"

            setRaw fusion -800.0
            let zero = FusedRollout.run fusion [| 4.0 |] sim [| u0 |] options [| neural () |]
            Expect.equal fusion.Alpha 0.0 "α = 0"
            Expect.equal (values zero.Fused[0]) (values (neural ())) "ŷ = G"
            Expect.notEqual (values (neural ())) (values physics) "the branches differ, so the check bites"
        }

        // Each point's weight is the gate network at that point's (t / t_last, F / scale): recomputed point by point
        // through `Fusion.Weight`, it must give the fused value there, and the weights must differ between points.
        test "the gate is a weight per point, from that point's time and physics value" {
            let sim, _, u0, neural = setup 2
            let fusion = new Fusion(FusionMode.Gate(1, 6), dtype = f64)
            let scale = 2.0
            let fused = FusedRollout.run fusion [| scale |] sim [| u0 |] options [| neural () |]
            let f = values fused.Physics[0]
            let g = values fused.Neural[0]
            let y = values fused.Fused[0]
            let b = int u0.shape[0]
            Expect.equal fused.Fused[0].shape [| int64 times.Length; int64 b |] "ŷ has the rollout's shape"

            let weights =
                Array.init y.Length (fun i ->
                    use _ = torch.no_grad ()
                    let t = times[i / b] / times[times.Length - 1]
                    let z = torch.tensor ([| t |], dtype = f64)
                    let w = fusion.Weight(z, torch.tensor ([| f[i] / scale |], dtype = f64))
                    w.ToDouble())

            for i in 0 .. y.Length - 1 do
                Expect.floatClose
                    Accuracy.veryHigh
                    y[i]
                    (weights[i] * f[i] + (1.0 - weights[i]) * g[i])
                    $"point {i}: ŷ = w F + (1 − w) G with its own w"

            Expect.isGreaterThan (Array.max weights - Array.min weights) 1e-6 "the weights differ between points"
            Expect.floatClose Accuracy.veryHigh fusion.Alpha (Array.average weights) "Alpha: the mean gate"
        }

        // L = Σ c ⊙ ŷ with fixed random c. Autograd's dL/d(raw k), dL/d(raw α) and dL/d(a weight of G) against
        // central differences (h = 1e-6, float64); dL/d(raw α) also against α(1 − α) Σ c ⊙ (F − G).
        test "gradients of the fused output with respect to θ, φ and α match finite differences (float64)" {
            let sim, net, u0, neural = setup 3
            let fusion = new Fusion(FusionMode.Scalar 0.3, dtype = f64)
            use generator = new torch.Generator(17UL)

            let c =
                torch.randn ([| int64 times.Length; u0.shape[0] |], dtype = f64, generator = generator)

            let loss () =
                let y = FusedRollout.run fusion [| 1.5 |] sim [| u0 |] options [| neural () |]
                (c * y.Fused[0]).sum ()

            let k = (sim.Param "k").Raw
            let alpha = fusion.parameters () |> Seq.head
            let weight = Neural.parameters net |> Seq.head

            for p in [ k; alpha; weight ] do
                if not (isNull p.grad) then
                    p.grad.zero_ () |> ignore

            (loss ()).backward ()

            let central (p: Modules.Parameter) (index: int64) =
                use _ = torch.no_grad ()
                let flat = p.view (-1L)
                let x = flat[index].ToDouble()
                let h = 1e-6
                withScalar (x + h) flat[index].fill_ |> ignore
                let up = (loss ()).ToDouble()
                withScalar (x - h) flat[index].fill_ |> ignore
                let down = (loss ()).ToDouble()
                withScalar x flat[index].fill_ |> ignore
                (up - down) / (2.0 * h)

            for name, p in [ "raw k", k; "raw α", alpha; "a weight of G", weight ] do
                let autograd = (values p.grad)[0]
                Expect.isGreaterThan (abs autograd) 1e-6 $"{name}: a gradient that is not zero"

                Expect.floatClose
                    { absolute = 1e-9; relative = 1e-6 }
                    autograd
                    (central p 0L)
                    $"{name}: autograd = central difference"

            let closed =
                use _ = torch.no_grad ()
                let a = fusion.Alpha
                let physics = sim.Simulate([| u0 |], options).Values[0]
                a * (1.0 - a) * (c * (physics - neural ())).sum().ToDouble()

            Expect.floatClose Accuracy.high (alpha.grad.ToDouble()) closed "dL/d(raw α) = α(1 − α) Σ c (F − G)"
        }

        test "mismatched fields and scales fail with a message naming the fix" {
            let sim, _, u0, neural = setup 4
            let fusion = new Fusion(FusionMode.Scalar 0.5, dtype = f64)

            let short =
                Expect.throwsC
                    (fun () -> FusedRollout.run fusion [||] sim [| u0 |] options [| neural () |] |> ignore)
                    id

            Expect.stringContains short.Message "one scale per field" "scales"

            let shape =
                Expect.throwsC
                    (fun () ->
                        FusedRollout.run fusion [| 1.0 |] sim [| u0 |] options [| (neural ()).narrow (1L, 0L, 2L) |]
                        |> ignore)
                    id

            Expect.stringContains shape.Message "same points" "shapes"

            Expect.throwsT<HybridException>
                (fun () ->
                    FusedRollout.run fusion [| -1.0 |] sim [| u0 |] options [| neural () |]
                    |> ignore)
                "a negative scale"
        }
    ]
