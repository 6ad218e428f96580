/// Fusion ŷ = α·F_θ(z) + (1 − α)·G_φ(z) on a 0-D decay problem: z = initial state u₀ (and time), F_θ a
/// rollout of du/dt = −k u, G_φ an MLP of (u₀, t).
module Hybrid.Tests.Training.FusionTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Training

let f64 = torch.ScalarType.Float64
let times = [| 0.0; 0.25; 0.5; 0.75; 1.0 |]

let options = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 0.125
        SaveTimes = times
        FiniteCheckEvery = 0
}

let u0s (values: float[]) = torch.tensor (values, dtype = f64)

/// Truth du/dt = −1.5 u + c u² (c = 0: the physics branch is exactly right; c = 1: the truth has a
/// stationary point at u = 1.5 where decay stalls, which linear decay cannot represent).
let truth (c: float) (u0: torch.Tensor) =
    let dyn =
        Dynamics.ofFunction [| "u" |] Grid.point (fun _ _ u -> [| -1.5 * u[0] + c * u[0].square () |])

    use _ = torch.no_grad ()
    (Rollout.run dyn [||] [| u0 |] options).Values[0] // [S; B]

let physicsDyn =
    Dynamics.ofFunction [| "u" |] Grid.point (fun th _ u -> [| -th[0] * u[0] |])

let physics (k: Param) (u0: torch.Tensor) =
    (Rollout.run physicsDyn [| k.Value |] [| u0 |] options).Values[0]

/// Pointwise features (u₀, t) for every (time, trajectory): [S; B; 2].
let features (u0: torch.Tensor) =
    let s = int64 times.Length
    let b = u0.shape[0]
    let t = torch.tensor(times, dtype = f64).reshape([| s; 1L |]).expand ([| s; b |])
    torch.stack ([| u0.unsqueeze(0L).expand ([| s; b |]); t |], -1L)

let fit (mode: FusionMode) (c: float) =
    Engine.seed 3
    let train = u0s [| 0.5; 0.7; 0.9; 1.1; 1.3; 1.5 |]
    let y = truth c train
    let k = Param("k", Constraint.Positive, 1.0, dtype = f64)
    let net = new Mlp("G", 2, 1, 16, 1, dtype = f64)
    let fusion = new Fusion(mode, dtype = f64)
    let z = features train

    let branches (u0: torch.Tensor) (zz: torch.Tensor) =
        physics k u0, Closure.pointwise net [| zz.select (-1L, 0L); zz.select (-1L, 1L) |]

    let predict (u0: torch.Tensor) (zz: torch.Tensor) =
        let f, g = branches u0 zz
        fusion.Forward(zz, f, g)

    let result =
        Trainer.train
            {
                Trainer.defaults with
                    Epochs = 500
                    Seed = 3
                    Groups = [|
                        Trainer.group "theta" 0.05 [ k.Raw ]
                        Trainer.group "phi" 0.02 (Neural.parameters net)
                        Trainer.group
                            "alpha"
                            (match mode with
                             | FusionMode.Gate _ -> 0.01 // a gate network saturates at high rates
                             | _ -> 0.2)
                            (Neural.parameters fusion)
                    |]
                    Theta = [| "k", k.Get; "alpha", (fun () -> fusion.Alpha) |]
            }
            {
                Loss =
                    fun _ ->
                        let f, g = branches train z
                        let l = Loss.fusedMse 1.0 (fusion.Forward(z, f, g)) f g y
                        { Total = l; Parts = [||] }
                Validation = None
            }

    let heldOut = u0s [| 0.6; 0.8; 1.0; 1.2; 1.4 |]
    let yh = truth c heldOut

    let fusedMse =
        use _ = torch.no_grad ()
        Metrics.mse (predict heldOut (features heldOut)) yh

    // Physics alone: θ-only fit by LBFGS.
    let kAlone = Param("k", Constraint.Positive, 1.0, dtype = f64)

    Trainer.lbfgs [| kAlone.Raw |] 0.5 5 20 (fun () -> Loss.mse (physics kAlone train) y)
    |> ignore

    let physicsMse =
        use _ = torch.no_grad ()
        Metrics.mse (physics kAlone heldOut) yh

    fusion.Alpha, fusedMse, physicsMse, k.Get(), result.WallTime.TotalSeconds

let tests =
    testSequenced
    <| testList "Fusion" [
        test "exactly right physics: α ends ≥ 0.9" {
            let alpha, fused, phys, k, secs = fit (FusionMode.Scalar 0.5) 0.0

            printfn
                "Fusion (right physics): α = %.4f, k = %.4f, held-out MSE fused %.2e physics %.2e, %.1f s"
                alpha
                k
                fused
                phys
                secs

            Expect.isGreaterThanOrEqual alpha 0.9 "α moves to the physics branch"
        }

        test "structurally wrong physics: α moves toward the neural branch and fusion beats physics alone" {
            let alpha, fused, phys, k, secs = fit (FusionMode.Scalar 0.5) 1.0

            printfn
                "Fusion (wrong physics): α = %.4f, k = %.4f, held-out MSE fused %.2e physics %.2e, %.1f s"
                alpha
                k
                fused
                phys
                secs

            Expect.isLessThan alpha 0.5 "α below its initial 0.5"
            Expect.isLessThan fused (0.5 * phys) "fused held-out MSE at most half the physics-only MSE"
        }

        test "per-point gate (physics-informed attention) with wrong physics beats physics alone" {
            let alpha, fused, phys, _, secs = fit (FusionMode.Gate(2, 8)) 1.0

            printfn
                "Fusion gate (wrong physics): mean gate %.4f, held-out MSE fused %.2e physics %.2e, %.1f s"
                alpha
                fused
                phys
                secs

            Expect.isLessThan alpha 0.5 "the gate leans to the neural branch"
            Expect.isLessThan fused (0.5 * phys) "fused held-out MSE at most half the physics-only MSE"
        }

        test "gate and residual modes: shapes and reported α" {
            let g = new Fusion(FusionMode.Gate(1, 8), dtype = f64)
            let f = torch.ones ([| 3L; 4L |], dtype = f64)
            let n = torch.zeros ([| 3L; 4L |], dtype = f64)
            let y = g.Forward(torch.rand ([| 3L; 4L |], dtype = f64), f, n)
            Expect.equal y.shape [| 3L; 4L |] "gate output shape"
            Expect.floatClose Accuracy.high (y.mean().ToDouble()) g.Alpha "with F = 1, G = 0 the output is α"
            let r = new Fusion(FusionMode.Residual, dtype = f64)
            Expect.floatClose Accuracy.high (r.Forward(n, f, f).mean().ToDouble()) 2.0 "residual adds"
        }

        test "mismatched branch shapes fail clearly" {
            let s = new Fusion(FusionMode.Scalar 0.5, dtype = f64)

            let e =
                Expect.throwsC
                    (fun () ->
                        s.Forward(
                            torch.zeros (3L),
                            torch.zeros ([| 3L |], dtype = f64),
                            torch.zeros ([| 4L |], dtype = f64)
                        )
                        |> ignore)
                    id

            Expect.stringContains e.Message "same shape" "names the problem"
            Expect.throwsT<HybridException> (fun () -> new Fusion(FusionMode.Scalar 1.5) |> ignore) "α outside (0, 1)"
        }
    ]
