/// Adaptive Dormand–Prince 5(4): the pair's orders 5 and 4, errors that follow the tolerance on an analytic
/// solution, save times hit exactly, gradients of the computed solution, the step limit, and compiled models.
module Hybrid.Tests.Numerics.AdaptiveTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Compiler

let private f64 = torch.ScalarType.Float64

/// du/dt = −2t u, u(0) = 1: u(t) = exp(−t²).
let private gaussian (t: float) (u: torch.Tensor[]) = [| (-2.0 * t) .* u[0] |]

let private exact (t: float) = Math.Exp(-t * t)

let private one () = [| torch.ones ([| 1L; 1L |], dtype = f64) |]

let private tolerance (tol: float) = { Relative = tol; Absolute = tol }

/// The largest error of an adaptive run of `gaussian` at its save times.
let private run (tol: float) (times: float[]) =
    use _ = torch.no_grad ()

    let r =
        StepControl.integrate
            (Adaptive.method gaussian)
            [| tolerance tol |]
            0.0
            0.1
            times
            100_000
            (fun _ _ _ -> ())
            (one ())

    let worst =
        Array.map2 (fun (s: torch.Tensor[]) t -> abs (s[0].ToDouble() - exact t)) r.Saves times
        |> Array.max

    worst, r

let tests =
    testList "Adaptive Dopri5" [
        test "the Dormand–Prince pair has orders 5 and 4 on fixed steps" {
            use _ = torch.no_grad ()

            let errors (n: int) =
                let h = 1.0 / float n
                let mutable u = one ()
                let mutable k1 = gaussian 0.0 u
                let mutable fourth = 0.0

                for i in 0 .. n - 1 do
                    let next, error, last = Adaptive.step gaussian (float i * h) h u k1
                    // The embedded 4th-order solution of this step from the 5th-order path's start.
                    fourth <- (next[0] .- error[0]).ToDouble()
                    u <- next
                    k1 <- last

                abs (u[0].ToDouble() - exact 1.0), abs (fourth - exact 1.0)

            let e = [ 16; 32; 64 ] |> List.map errors
            let order (a: float) (b: float) = log (a / b) / log 2.0

            for (a5, _), (b5, _) in List.pairwise e do
                let p = order a5 b5
                Expect.isTrue (p > 4.7 && p < 5.5) $"5th-order solution: observed order {p}"

            // The 4th-order solution's error is its last step's local error plus the 5th-order path before it:
            // compare the local errors instead, one step of h and of h/2 from t = 0.5.
            let local (h: float) =
                let start = torch.tensor ([| Math.Exp(-0.25) |], dtype = f64)
                let u = [| start.reshape (1L, 1L) |]
                let next, error, _ = Adaptive.step gaussian 0.5 h u (gaussian 0.5 u)
                abs (next[0].ToDouble() - exact (0.5 + h)), abs ((next[0] .- error[0]).ToDouble() - exact (0.5 + h))

            let (l5a, l4a), (l5b, l4b) = local 0.2, local 0.1
            let p4 = order l4a l4b
            Expect.isTrue (p4 > 4.5 && p4 < 5.5) $"4th-order solution: local error of order 5 (h⁵), observed {p4}"
            // The 5th-order local error is far smaller (h⁶): the estimate measures the 4th-order one.
            Expect.isLessThan (l5a + l5b) (0.5 * (l4a + l4b)) "the 5th-order step is the more accurate"
        }

        test "errors follow the tolerance, save times are hit exactly, and tighter tolerances take more steps" {
            let times = [| 0.3; 1.0; 2.5 |]

            let results = [ 1e-4; 1e-6; 1e-8 ] |> List.map (fun tol -> tol, run tol times)

            for tol, (worst, _) in results do
                Expect.isLessThan worst (10.0 * tol) $"within 10× the tolerance {tol}"

            let errors = results |> List.map (fun (_, (w, _)) -> w)
            let steps = results |> List.map (fun (_, (_, r)) -> r.Accepted)
            Expect.isTrue (errors |> List.pairwise |> List.forall (fun (a, b) -> b < a)) $"errors fall: {errors}"
            Expect.isTrue (steps |> List.pairwise |> List.forall (fun (a, b) -> b > a)) $"steps grow: {steps}"

            // Steps per tolerance decade grow like 10^(1/5) for a 5th-order method (≈ 1.58), far below a 4th-order
            // one's 1.78 only asymptotically: check the broad rate, 1.2–2.2× per two decades of 10^(2/5) = 2.5.
            let ratio = float steps[2] / float steps[1]
            Expect.isTrue (ratio > 1.8 && ratio < 3.5) $"1e-6 → 1e-8 multiplies the steps by {ratio} (≈ 10^(2/5) = 2.5)"
        }

        test "Rollout.run with Scheme.Dopri5 returns the states at the save times, within the tolerance" {
            let dyn =
                Dynamics.ofFunction [| "u" |] (Grid.ofDomain Domain.Point) (fun _ t u -> gaussian t u)

            let o = {
                Rollout.defaults with
                    Scheme = Scheme.Dopri5
                    Dt = 0.05
                    SaveTimes = [| 0.0; 0.5; 1.5 |]
                    Tolerance = tolerance 1e-9
            }

            let trajectory = Rollout.run dyn [||] (one ()) o
            let values = trajectory.Values[0].reshape([| -1L |]).data<float>().ToArray()
            Expect.equal values[0] 1.0 "T0 itself gives the initial state"

            for i in 1..2 do
                Expect.floatClose
                    { absolute = 1e-8; relative = 0.0 }
                    values[i]
                    (exact o.SaveTimes[i])
                    $"u({o.SaveTimes[i]})"
        }

        test "the gradient through an adaptive solve is the derivative of the solution: du(T)/dk = −T e^(−kT)" {
            let k = torch.tensor (0.7, dtype = f64, requires_grad = true)

            let dyn =
                Dynamics.ofFunction [| "u" |] (Grid.ofDomain Domain.Point) (fun (th: torch.Tensor[]) _ u -> [|
                    (torch.zeros_like u[0] .- th[0]) .* u[0]
                |])

            let o = {
                Rollout.defaults with
                    Scheme = Scheme.Dopri5
                    Dt = 0.1
                    SaveTimes = [| 2.0 |]
                    Tolerance = tolerance 1e-11
            }

            let u = Rollout.run dyn [| k |] (one ()) o
            u.Values[0].sum().backward ()
            let analytic = -2.0 * Math.Exp(-1.4)
            Expect.floatClose { absolute = 0.0; relative = 1e-7 } (k.grad.ToDouble()) analytic "d u(2) / dk"
        }

        test "the gradient of a nonlinear adaptive solve equals central differences: logistic growth, du(T)/dr" {
            // u′ = r u (1 − u): gradients of the computed solution, step sizes fixed in the backward pass; at a tight
            // tolerance they agree with central differences of whole solves (whose steps may differ) to 1e-6.
            let dyn =
                Dynamics.ofFunction [| "u" |] (Grid.ofDomain Domain.Point) (fun (th: torch.Tensor[]) _ u -> [|
                    th[0] .* u[0] .* (1.0 .- u[0])
                |])

            let o = {
                Rollout.defaults with
                    Scheme = Scheme.Dopri5
                    Dt = 0.1
                    SaveTimes = [| 3.0 |]
                    Tolerance = tolerance 1e-11
            }

            let start () = [| torch.tensor ([| 0.1 |], dtype = f64) |]

            let solve (r: torch.Tensor) =
                (Rollout.run dyn [| r |] (start ()) o).Values[0].sum ()

            let r = torch.tensor (1.3, dtype = f64, requires_grad = true)
            (solve r).backward ()

            let at (v: float) =
                use _ = torch.no_grad ()
                (solve (torch.tensor (v, dtype = f64))).ToDouble()

            let central = (at (1.3 + 1e-5) - at (1.3 - 1e-5)) / 2e-5
            Expect.floatClose { absolute = 0.0; relative = 1e-6 } (r.grad.ToDouble()) central "du(3)/dr"
        }

        test "a solve that needs more steps than allowed is refused, naming the counts and the fixes" {
            use _ = torch.no_grad ()
            // du/dt = −1000 (u − cos t): stiff, so the explicit pair needs thousands of steps over [0, 10].
            let stiff (t: float) (u: torch.Tensor[]) = [| -1000.0 .* (u[0] .- cos t) |]

            let e =
                Expect.throwsC
                    (fun () ->
                        StepControl.integrate
                            (Adaptive.method stiff)
                            [| tolerance 1e-6 |]
                            0.0
                            0.01
                            [| 10.0 |]
                            200
                            (fun _ _ _ -> ())
                            (one ())
                        |> ignore)
                    id

            Expect.stringStarts e.Message "Dopri5 needed more than 200 steps (" "the limit"
            Expect.stringContains e.Message "The problem may be stiff" "the likely cause"
            Expect.stringContains e.Message "raise the limit with Rollout.maxSteps" "the fix"
        }

        test "a compiled grid model runs Dopri5 on either back end, matching a fine RK4 run" {
            let model =
                Model.empty "heat"
                |> Model.withDomain (Domain.Interval(0.0, 1.0, 16))
                |> Model.addField (Model.field "u")
                |> Model.addParam (Model.param "D" 0.1)
                |> Model.addEquation "u" (Mul(Sym "D", Laplacian(Sym "u")))
                |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
                |> Model.setInitial "u" (InitialCondition.Expr(Apply(Fn.Cos, Mul(Num Math.PI, Sym "x"))))

            let sim = Compiler.compile Compiler.defaults model

            let eager =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = Backend.Eager
                    }
                    model

            let adaptive = {
                Rollout.defaults with
                    Scheme = Scheme.Dopri5
                    Dt = 0.01
                    SaveTimes = [| 0.2 |]
                    Tolerance = tolerance 1e-10
            }

            Expect.equal (sim.BackendFor adaptive) (Backend.Kernels, "") "Auto: the kernels"
            Expect.equal (fst (eager.BackendFor adaptive)) Backend.Eager "Eager: eager"

            use _ = torch.no_grad ()
            let a = sim.Simulate(sim.Initial 1, adaptive).Values[0]

            let fine = {
                adaptive with
                    Scheme = Scheme.Rk4
                    Dt = 1e-4
            }

            let b = sim.Simulate(sim.Initial 1, fine).Values[0]
            let difference = (a .- b).abs().max().ToDouble()
            Expect.isLessThan difference 1e-8 "the same semi-discrete solution"
            let e = eager.Simulate(eager.Initial 1, adaptive).Values[0]
            Expect.isLessThan ((e .- b).abs().max().ToDouble()) 1e-8 "eager too"
        }
    ]
