/// Time events: a one-compartment model with repeated doses against its analytic solution on every kind of
/// scheme (fixed steps, Dopri5, Rodas4), the gradient with respect to the dose, the compiled path, and the
/// refusals of badly placed events.
module Hybrid.Tests.Numerics.EventTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Compiler

let private f64 = torch.ScalarType.Float64

let private k = 0.5
let private doses = [| 0.0; 1.3; 2.9 |]
let private saves = [| 0.0; 0.5; 1.3; 1.31; 2.0; 2.9; 4.0 |]

/// One compartment, dC/dt = −k C from C = 0, a dose of `amount` at each dose time; a save time equal to a
/// dose time sees the state before the dose: C(t) = amount · Σ over doses before t of e^(−k (t − tᵢ)).
let private exact (amount: float) (t: float) =
    doses
    |> Array.sumBy (fun d -> if d < t then amount * exp (-k * (t - d)) else 0.0)

let private compartment =
    Dynamics.ofFunction [| "C" |] (Grid.ofDomain Domain.Point) (fun _ _ u -> [| -k .* u[0] |])

let private options scheme (amount: torch.Tensor) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = 0.01
        SaveTimes = saves
        Tolerance = { Relative = 1e-10; Absolute = 1e-12 }
        FiniteCheckEvery = 0
        Events = doses |> Array.map (fun d -> TimeEvent.dose [| "C" |] "C" d amount)
}

let private zero () = [| torch.zeros ([| 1L |], dtype = f64) |]

let tests =
    testList "Time events" [
        test "doses stop and restart every scheme exactly at the dose times: C(t) matches the analytic sum" {
            use _ = torch.no_grad ()
            let amount = torch.tensor (2.0, dtype = f64)

            for scheme in [ Scheme.Rk4; Scheme.Dopri5; Scheme.Rodas4 ] do
                let trajectory = Rollout.run compartment [||] (zero ()) (options scheme amount)
                let c = trajectory.Values[0].reshape(-1L).data<float>().ToArray()

                Array.iteri2
                    (fun i value t ->
                        Expect.floatClose
                            { absolute = 1e-8; relative = 0.0 }
                            value
                            (exact 2.0 t)
                            $"{scheme}: C({t}) (save {i})")
                    c
                    saves
        }

        test "the gradient with respect to the dose amount flows through the jumps: dC(4)/dA = Σ e^(−k(4 − tᵢ))" {
            let amount = torch.tensor(2.0, dtype = f64).requires_grad_ true

            let c =
                (Rollout.run compartment [||] (zero ()) (options Scheme.Rodas4 amount)).Values[0]

            c[-1L].sum().backward ()
            let analytic = doses |> Array.sumBy (fun d -> exp (-k * (4.0 - d)))
            Expect.floatClose { absolute = 0.0; relative = 1e-8 } (amount.grad.ToDouble()) analytic "dC(4)/dA"
        }

        test "a compiled model takes doses on the eager back end and says why" {
            let sim =
                Compiler.compile
                    Compiler.defaults
                    (Parse.model "model pk\ndomain point\nfield C\nparam k = 0.5\ndC/dt = -k*C\ninitial C = 0")

            let o = options Scheme.Rk4 (torch.tensor (2.0, dtype = f64))

            let o = {
                o with
                    Events =
                        doses
                        |> Array.map (fun d -> TimeEvent.dose sim.Fields "C" d (torch.tensor (2.0, dtype = f64)))
            }

            let backend, why = sim.BackendFor o
            Expect.equal backend Backend.Eager "eager"
            Expect.stringContains why "time events" "says why"
            use _ = torch.no_grad ()
            let trajectory = sim.Simulate(sim.Initial 1, o)
            let c = trajectory.Values[0]
            let last = c[-1L].ToDouble()
            Expect.floatClose { absolute = 1e-8; relative = 0.0 } last (exact 2.0 4.0) "C(4)"
        }

        test "events out of order, after the last save, or dosing a field that does not exist are refused" {
            let amount = torch.tensor (1.0, dtype = f64)
            let event t = TimeEvent.dose [| "C" |] "C" t amount

            let refused (events: TimeEvent[]) =
                let o = {
                    options Scheme.Rk4 amount with
                        Events = events
                }

                let e = Expect.throwsC (fun () -> Rollout.validate o) id
                e.Message

            Expect.equal
                (refused [| event 2.0; event 1.0 |])
                "Events must be in increasing time order: event 1 is at t = 1 but event 0 at t = 2. Sort them, and merge events at the same time into one jump."
                "order"

            Expect.equal
                (refused [| event 5.0 |])
                "Event 0 is at t = 5, after the last save time 4: it would never act on a saved state. Remove it, or add a later save time."
                "after the end"

            let e =
                Expect.throwsC (fun () -> TimeEvent.dose [| "A"; "C" |] "B" 1.0 amount |> ignore) id

            Expect.equal
                e.Message
                "A dose at t = 1 names field 'B', which the system does not have (fields: A, C). Use one of those names."
                "unknown field"
        }
    ]
