/// The physics-residual loss term, λ schedules and penalties.
module Hybrid.Tests.Training.LossTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Training

let f64 = torch.ScalarType.Float64

let tests =
    testSequenced
    <| testList "Loss" [
        test "λ·physics residual alone recovers D and r of Fisher–KPP from a trajectory within 1%" {
            Engine.init ()
            let grid = Grid.line 0.0 1.0 16
            let bcs = Boundary.periodic grid

            let dyn =
                Dynamics.ofFunction [| "u" |] grid (fun th _ u -> [|
                    th[0] * Operators.laplacian grid bcs u[0] + th[1] * u[0] * (1.0 - u[0])
                |])

            // One Euler step per save, so the Consistent(Euler) residual is exactly zero at the truth.
            let times = Array.init 21 (fun i -> 0.05 * float i)

            let data =
                use _ = torch.no_grad ()

                let u0 =
                    Grid.init grid 2 f64 (fun x _ ->
                        0.3
                        + 0.2 * cos (2.0 * System.Math.PI * x)
                        + 0.1 * sin (4.0 * System.Math.PI * x))

                let truth = [| torch.tensor (0.01, dtype = f64); torch.tensor (2.0, dtype = f64) |]

                (Rollout.run dyn truth [| u0 |] {
                    Rollout.defaults with
                        Scheme = Scheme.Euler
                        Dt = 0.05
                        SaveTimes = times
                })
                    .Values[0]

            let d = Param("D", Constraint.Positive, 0.02, dtype = f64)
            let r = Param("r", Constraint.Positive, 1.0, dtype = f64)

            let result =
                Trainer.train
                    {
                        Trainer.defaults with
                            Epochs = 400
                            Groups = [|
                                {
                                    Trainer.group "theta" 0.05 [ d.Raw; r.Raw ] with
                                        Schedule = LrSchedule.Cosine 0.01
                                }
                            |]
                            Lambda = LambdaSchedule.Linear(0.1, 1.0, 100)
                    }
                    {
                        Loss =
                            fun ctx ->
                                let p =
                                    Loss.residual
                                        dyn
                                        [| d.Value; r.Value |]
                                        (ResidualForm.Consistent Scheme.Euler)
                                        times
                                        [| data |]

                                {
                                    Total = ctx.Lambda * p
                                    Parts = [| "physics", p |]
                                }
                        Validation = None
                    }

            printfn "Residual fit: D %.5f, r %.4f, final loss %.2e" (d.Get()) (r.Get()) result.TrainLosses[399]
            Expect.floatClose { absolute = 0.0; relative = 0.01 } (d.Get()) 0.01 "D"
            Expect.floatClose { absolute = 0.0; relative = 0.01 } (r.Get()) 2.0 "r"
        }

        test "metrics report: in- and out-of-domain MSE, timing" {
            Engine.init ()
            let x = torch.linspace (0.0, 1.0, 11L, dtype = f64)
            let xo = torch.linspace (2.0, 3.0, 11L, dtype = f64)

            let r =
                Metrics.report (fun t -> 2.0 * t) (x, 2.0 * x) (Some(xo, 2.0 * xo + 0.1)) 1.5

            Expect.floatClose Accuracy.high r.MseInDomain 0.0 "exact in domain"
            Expect.floatClose Accuracy.high r.MseOutOfDomain 0.01 "0.1² out of domain"
            Expect.isGreaterThanOrEqual r.InferenceSeconds 0.0 "timed"
            Expect.isTrue (System.Double.IsNaN r.Ece) "ECE left for the caller"
            Expect.floatClose Accuracy.high (Metrics.relativeL2 (2.0 * x) x) 1.0 "relative L2"
        }

        test "penalties and λ schedules have their closed forms" {
            Engine.init ()
            let ramp = torch.arange(5.0, dtype = f64).reshape (1L, 5L)
            Expect.floatClose Accuracy.high ((Loss.smoothness true ramp).ToDouble()) 1.0 "unit steps"

            Expect.floatClose
                Accuracy.high
                ((Loss.smoothness false (torch.ones (3L, 3L, dtype = f64))).ToDouble())
                0.0
                "constant"

            Expect.floatClose
                Accuracy.high
                ((Loss.prior 1.0 0.5 (torch.tensor (2.0, dtype = f64))).ToDouble())
                2.0
                "½((2 − 1)/0.5)²"

            Expect.equal (Loss.lambdaAt (LambdaSchedule.Exponential(1.0, 2.0, 5.0)) 3) 5.0 "capped"
            Expect.equal (Loss.lambdaAt (LambdaSchedule.Constant 0.3) 7) 0.3 "constant"

            let mean, std, y =
                torch.zeros (2L, dtype = f64), torch.ones (2L, dtype = f64), torch.tensor ([| 0.0; nan |], dtype = f64)

            Expect.floatClose
                Accuracy.high
                ((Loss.gaussianNll mean std y).ToDouble())
                (0.5 * log (2.0 * System.Math.PI))
                "NLL at the mean, NaN masked"

            Expect.throwsT<HybridException> (fun () -> Loss.prior 0.0 0.0 mean |> ignore) "sd = 0"
        }

        test "Loss.mse masks NaN as missing: the mean over the observed entries" {
            let prediction = torch.tensor ([| 1.0; 2.0; 3.0; 4.0 |], dtype = f64)
            let target = torch.tensor ([| 0.0; nan; 1.0; nan |], dtype = f64)
            // (1² + 2²) / 2 over the two observed entries.
            Expect.equal ((Loss.mse prediction target).ToDouble()) 2.5 "NaN entries ignored"
        }

        test "Loss.mse refuses +∞ and −∞ in the data, with the count and the first position" {
            let prediction = torch.zeros ([| 2L; 3L |], dtype = f64)

            let flat = torch.tensor ([| 0.0; 1.0; nan; 2.0; -infinity; infinity |], dtype = f64)
            let target = flat.reshape (2L, 3L)

            let e = Expect.throwsC (fun () -> Loss.mse prediction target |> ignore) id

            Expect.equal (e.GetType()) typeof<HybridException> "a HybridException"

            Expect.equal
                e.Message
                "Loss.mse: the target holds 2 infinite values (the first is -∞ at index [1, 1]). Only NaN marks a missing value, so ±∞ is not ignored: it usually comes from an overflow or from text such as 'Infinity' in the data. Replace it by NaN to mark it missing, or correct the data."
                "count, first position, why and the fix"

            let one = torch.tensor ([| 0.0; infinity |], dtype = f64)

            let e1 =
                Expect.throwsC (fun () -> Loss.mse (torch.zeros (2L, dtype = f64)) one |> ignore) id

            Expect.stringContains e1.Message "holds 1 infinite value (the first is +∞ at index [1])" "one +∞"
        }

        test "Loss.gaussianNll refuses ±∞ targets too" {
            let e =
                Expect.throwsC
                    (fun () ->
                        Loss.gaussianNll
                            (torch.zeros (2L, dtype = f64))
                            (torch.ones (2L, dtype = f64))
                            (torch.tensor ([| infinity; 0.0 |], dtype = f64))
                        |> ignore)
                    id

            Expect.stringContains e.Message "Loss.gaussianNll: the target holds 1 infinite value" "names the loss"
        }
    ]
