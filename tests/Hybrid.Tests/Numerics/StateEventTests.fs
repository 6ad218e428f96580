/// State events: a bouncing ball (dh/dt = v, dv/dt = −g, v → −e·v where h falls through 0) against its closed
/// form on Dopri5 and Rodas4 — the bounce times, the height after one and two bounces, and the gradients of the
/// height with respect to the drop height and the restitution (which need the event time's sensitivity); a batch
/// whose trajectories bounce at different times; and the refusals.
module Hybrid.Tests.Numerics.StateEventTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics

let private f64 = torch.ScalarType.Float64
let private g = 9.81

let private ball =
    Dynamics.ofFunction [| "h"; "v" |] (Grid.ofDomain Domain.Point) (fun _ _ u -> [|
        u[1]
        torch.zeros_like u[1] .- g
    |])

/// The floor: h falls through 0, and v becomes −e·v.
let private floor (e: torch.Tensor) = {
    Name = "floor"
    Condition = fun _ u -> u[0]
    Direction = Crossing.Falling
    Jump = fun u -> [| u[0]; -e .* u[1] |]
}

let private options scheme (e: torch.Tensor) (saves: float[]) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = 1e-3
        SaveTimes = saves
        Tolerance = { Relative = 1e-10; Absolute = 1e-12 }
        FiniteCheckEvery = 0
        StateEvents = [| floor e |]
}

/// Dropped from h0 at rest: the first bounce at t1 = √(2 h0 / g), then bounces every 2 e^k g t1 / g … apart;
/// the height at T and its derivatives by h0 and e (closed form, T after the first bounce and before the second).
let private afterOne (h0: float) (e: float) (T: float) =
    let t1 = sqrt (2.0 * h0 / g)
    let s = T - t1
    let h = e * g * t1 * s - 0.5 * g * s * s
    let dhdt1 = g * ((1.0 + e) * s - e * t1)
    h, dhdt1 / (g * t1), g * t1 * s

let private value (t: torch.Tensor) = t.reshape(-1L).ToDouble()

let tests =
    testList "State events" [
        for scheme in [ Scheme.Dopri5; Scheme.Rodas4 ] do
            test $"a bouncing ball on {scheme}: bounce times, heights after one and two bounces, gradients by h0 and e" {
                let h0 = torch.tensor (1.0, dtype = f64, requires_grad = true)
                let e = torch.tensor (0.8, dtype = f64, requires_grad = true)
                let t1 = sqrt (2.0 * 1.0 / g)
                let t2 = t1 + 2.0 * 0.8 * t1
                let T1 = t1 + 0.3 * (t2 - t1)
                let T2 = t2 + 0.4 * 2.0 * 0.64 * t1
                let u0 = [| h0.reshape (1L); torch.zeros ([| 1L |], dtype = f64) |]
                let tr = Rollout.run ball [||] u0 (options scheme e [| T1; T2 |])

                let fired = Rollout.lastEvents ()

                Expect.equal
                    (fired |> Array.map (fun (n, _, b) -> n, b))
                    [| "floor", [| 0 |]; "floor", [| 0 |] |]
                    "two bounces"

                let _, time1, _ = fired[0]
                let _, time2, _ = fired[1]
                Expect.floatClose { absolute = 1e-9; relative = 1e-9 } time1 t1 "first bounce at √(2 h0 / g)"
                Expect.floatClose { absolute = 1e-9; relative = 1e-9 } time2 t2 "second bounce 2 e t1 later"

                let h, dh0, de = afterOne 1.0 0.8 T1
                let hT1 = tr.Values[0][0L]
                Expect.floatClose { absolute = 1e-8; relative = 1e-8 } (value hT1) h "h(T1)"

                let s2 = T2 - t2
                let v2 = 0.64 * g * t1

                Expect.floatClose
                    { absolute = 1e-8; relative = 1e-8 }
                    (value (tr.Values[0][1L]))
                    (v2 * s2 - 0.5 * g * s2 * s2)
                    "h(T2)"

                let grads = torch.autograd.grad ([| hT1.sum () |], [| h0; e |])
                // Without the event time's sensitivity dh(T1)/dh0 would miss the term −(dh/dt⁺ … ) and be wrong.
                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } (grads[0].ToDouble()) dh0 "∂h(T1)/∂h0"
                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } (grads[1].ToDouble()) de "∂h(T1)/∂e"
            }

        test "a batch: each trajectory bounces at its own time, only it takes the jump" {
            use _ = torch.no_grad ()
            let e = torch.tensor (0.5, dtype = f64)
            let heights = [| 1.0; 2.0 |]
            let u0 = [| torch.tensor (heights, dtype = f64); torch.zeros ([| 2L |], dtype = f64) |]
            let T = 0.55
            let tr = Rollout.run ball [||] u0 (options Scheme.Dopri5 e [| T |])
            let fired = Rollout.lastEvents ()
            let times = heights |> Array.map (fun h0 -> sqrt (2.0 * h0 / g))

            Expect.equal
                (fired |> Array.map (fun (_, _, b) -> b))
                [| [| 0 |] |]
                "only the lower ball reaches the floor by T"

            let _, time, _ = fired[0]
            Expect.floatClose { absolute = 1e-9; relative = 1e-9 } time times[0] "its bounce time"
            let h, _, _ = afterOne 1.0 0.5 T

            Expect.floatClose
                { absolute = 1e-8; relative = 1e-8 }
                (value (tr.Values[0].select(0, 0L).select (0, 0L)))
                h
                "the bounced ball"

            Expect.floatClose
                { absolute = 1e-8; relative = 1e-8 }
                (value (tr.Values[0].select(0, 0L).select (0, 1L)))
                (2.0 - 0.5 * g * T * T)
                "the falling ball"
        }

        test "fixed-step schemes refuse state events, naming them and the fix" {
            let e = torch.tensor (0.5, dtype = f64)
            let u0 = [| torch.ones ([| 1L |], dtype = f64); torch.zeros ([| 1L |], dtype = f64) |]

            let message =
                Expect.throwsC
                    (fun () -> Rollout.run ball [||] u0 (options Scheme.Rk4 e [| 1.0 |]) |> ignore)
                    (fun ex -> ex.Message)

            Expect.stringContains message "State events ('floor') need an adaptive scheme" "what"
            Expect.stringContains message "Use Scheme.Dopri5, Scheme.Rodas4 or Scheme.Auto" "the fix"
        }

        test "a condition of the wrong shape is refused with the shape it must have" {
            let e = torch.tensor (0.5, dtype = f64)
            let u0 = [| torch.ones ([| 2L |], dtype = f64); torch.zeros ([| 2L |], dtype = f64) |]

            let o = {
                options Scheme.Dopri5 e [| 1.0 |] with
                    StateEvents = [|
                        {
                            floor e with
                                Condition = fun _ u -> u[0].sum ()
                        }
                    |]
            }

            let message =
                Expect.throwsC (fun () -> Rollout.run ball [||] u0 o |> ignore) (fun ex -> ex.Message)

            Expect.stringContains message "State event 'floor': its condition gave a tensor of shape []" "what"
            Expect.stringContains message "shape [2]" "the fix"
        }
    ]
