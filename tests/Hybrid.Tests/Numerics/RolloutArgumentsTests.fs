/// Rollout arguments checked before the first step (save times, Δt, the step bound), the step schedule made
/// on demand, and the blow-up bound of the finite check.
module Hybrid.Tests.Numerics.RolloutArgumentsTests

open System
open System.Diagnostics
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Tests.Numerics.Support

/// du/dt = −u on one point: cheap, so only the arguments matter.
let private decay () =
    Dynamics.ofFunction [| "u" |] Grid.point (fun _ _ u -> [| -u[0] |])

let private u0 () = [| (scalar 1.0).reshape 1L |]

/// The message of the `HybridException` that `Rollout.run` raises for `o`.
let private refusal (o: RolloutOptions) =
    let e =
        Expect.throwsC (fun () -> Rollout.run (decay ()) [||] (u0 ()) o |> ignore) id

    Expect.equal (e.GetType()) typeof<HybridException> $"a HybridException, got {e.GetType().Name}: {e.Message}"
    e.Message

/// The eager schedule the rollout used before it was made lazy: every step of every save interval (a last step
/// within round-off of Dt is Dt, as the kernels take it too).
let private eagerSchedule (o: RolloutOptions) =
    let steps = ResizeArray()
    let mutable t = o.T0

    o.SaveTimes
    |> Array.iteri (fun i s ->
        let span = s - t
        let n = if span <= 0.0 then 0 else int (ceil (span / o.Dt - 1e-9))

        for k in 0 .. n - 1 do
            let h = if k = n - 1 then span - float (n - 1) * o.Dt else o.Dt

            let h =
                if abs (h - o.Dt) <= 1e-14 * (abs t + abs span + float n * o.Dt) then
                    o.Dt
                else
                    h

            steps.Add(t + float k * o.Dt, h, (if k = n - 1 then i else -1))

        t <- s)

    steps.ToArray()

/// ∂u/∂t = D Δu + 1000 u on [0, 1] (8 cells, no flux) from u = 1: Δu stays 0, so RK4 multiplies u by
/// g = 1 + z + z²/2 + z³/6 + z⁴/24 with z = 1000 Δt per step.
let private fastGrowth () =
    Model.empty "growth"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 8))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" 0.01 with
            Constraint = Constraint.Positive
    }
    |> Model.addEquation "u" (Add(Mul(Sym "D", Laplacian(Sym "u")), Mul(Num 1000.0, Sym "u")))
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
    |> Model.setInitial "u" (InitialCondition.Expr(Num 1.0))

let tests =
    testList "Rollout arguments" [
        test "a save time of +∞ is refused before the first step" {
            let m =
                refusal {
                    options Scheme.Rk4 0.1 [| infinity |] with
                        T0 = 0.0
                }

            Expect.stringContains
                m
                "Save time 0 is Infinity: save times must be finite numbers. Remove it or replace it by a finite time."
                "names the value and the fix"
        }

        test "a NaN save time is refused with its index" {
            let m = refusal (options Scheme.Rk4 0.1 [| 0.5; nan |])
            Expect.stringContains m "Save time 1 is NaN: save times must be finite numbers." "names index and value"
        }

        test "a save time of −∞ is refused" {
            let m = refusal (options Scheme.Rk4 0.1 [| -infinity |])
            Expect.stringContains m "Save time 0 is -Infinity: save times must be finite numbers." "names the value"
        }

        test "empty save times are refused" {
            let m = refusal (options Scheme.Rk4 0.1 [||])

            Expect.stringContains
                m
                "SaveTimes is empty, so the rollout would return nothing. Give at least one save time, e.g. SaveTimes = [| 1.0 |]."
                "says what and the fix"
        }

        test "null save times are refused" {
            let m = refusal (options Scheme.Rk4 0.1 null)

            Expect.stringContains
                m
                "SaveTimes is null. Give the times at which to return the state, e.g. SaveTimes = [| 1.0 |]."
                "says what and the fix"
        }

        test "decreasing save times are refused, naming both" {
            let m = refusal (options Scheme.Rk4 0.1 [| 0.5; 0.2 |])

            Expect.stringContains
                m
                "Save times must be increasing: save time 1 is 0.2 but save time 0 is 0.5. Sort them and remove repeated times."
                "names both times and the fix"
        }

        test "a repeated save time is refused" {
            let m = refusal (options Scheme.Rk4 0.1 [| 0.5; 0.5 |])
            Expect.stringContains m "save time 1 is 0.5 but save time 0 is 0.5" "names the repeat"
        }

        test "a save time before T0 is refused" {
            let m =
                refusal {
                    options Scheme.Rk4 0.1 [| 0.5 |] with
                        T0 = 1.0
                }

            Expect.stringContains
                m
                "Save time 0 is 0.5, before the start time T0 = 1. Save times must be ≥ T0: remove it or lower T0."
                "names the value, T0 and the fix"
        }

        test "a non-finite or non-positive Dt is refused" {
            for dt, shown in [ 0.0, "0"; -0.1, "-0.1"; nan, "NaN"; infinity, "Infinity" ] do
                let m = refusal (options Scheme.Rk4 dt [| 1.0 |])

                Expect.stringContains
                    m
                    $"The time step must be a positive finite number, got Dt = {shown}. Give e.g. Dt = 0.01."
                    $"Dt = {shown}"
        }

        test "Δt = 1e-9 to t = 1 is refused promptly with the count, the bound and how to raise it" {
            let watch = Stopwatch.StartNew()
            let m = refusal (options Scheme.Rk4 1e-9 [| 1.0 |])
            watch.Stop()

            Expect.stringContains
                m
                "needs 1,000,000,000 steps, more than the limit of 10,000,000 steps per rollout. Use a larger Dt or a shorter time span, or raise the limit with Rollout.maxSteps <- 1000000000."
                "count, bound and fix"

            Expect.isLessThan watch.Elapsed.TotalSeconds 2.0 "refused before any step is made"
        }

        test "the step bound counts every save interval and can be raised" {
            let previous = Rollout.maxSteps

            try
                Rollout.maxSteps <- 150
                // 0 → 1 → 2 at Δt = 0.01: 100 + 100 steps.
                let m = refusal (options Scheme.Euler 0.01 [| 1.0; 2.0 |])
                Expect.stringContains m "needs 200 steps, more than the limit of 150" "both intervals"
                Rollout.maxSteps <- 200

                let traj =
                    Rollout.run (decay ()) [||] (u0 ()) (options Scheme.Euler 0.01 [| 1.0; 2.0 |])

                let atTwo = traj.Values[0].[1L, 0L].ToDouble()
                Expect.floatClose Accuracy.veryHigh atTwo (0.99 ** 200.0) "200 Euler steps of u' = −u"
            finally
                Rollout.maxSteps <- previous
        }

        test "the default step bound is 10 million" { Expect.equal Rollout.maxSteps 10_000_000 "documented default" }

        test "the schedule is made on demand and equals the eager one step for step" {
            let o = {
                options Scheme.Rk4 0.03 [| 0.0; 0.1; 0.25; 1.0 |] with
                    T0 = 0.0
            }

            let s = Rollout.schedule o
            let eager = eagerSchedule o
            Expect.equal s.Length eager.Length "same number of steps"
            Expect.equal s.Starts.Length 4 "memory per save time, not per step"

            for i in 0 .. eager.Length - 1 do
                let t, h, save = eager[i]
                let step = s[i]
                Expect.equal (step.T, step.H, step.Save) (t, h, save) $"step {i}"

            let sizes = eager |> Array.map (fun (_, h, _) -> h) |> Array.distinct |> Array.sort
            Expect.sequenceEqual (s.StepSizes 0 s.Length |> Array.sort) sizes "the distinct step sizes"
            Expect.sequenceEqual (s.StepSizes 0 1) [| 0.03 |] "the first step only"
        }

        test "a schedule of the maximum length needs no per-step memory" {
            let o = options Scheme.Euler 1e-7 [| 1.0 |]
            let watch = Stopwatch.StartNew()
            let s = Rollout.schedule o
            Expect.equal s.Length 10_000_000 "10 million steps"
            let last = s[s.Length - 1]
            Expect.equal last.Save 0 "the last step saves"
            Expect.floatClose Accuracy.high (last.T + last.H) 1.0 "ends at t = 1"
            Expect.isLessThan watch.Elapsed.TotalSeconds 0.5 "no array of 10 million steps is built"
        }

        test "a blow-up stops at the bound, naming the field, step, time and value" {
            // The eager back end checks every FiniteCheckEvery steps (the kernels check every step, below).
            let sim =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = Backend.Eager
                    }
                    (fastGrowth ())

            let o = {
                options Scheme.Rk4 0.01 [| 1.0 |] with
                    FiniteCheckEvery = 10
            }

            let e =
                Expect.throwsC
                    (fun () ->
                        use _ = torch.no_grad ()
                        sim.Simulate(sim.Initial 1, o) |> ignore)
                    id

            // g = 644.33…: gᵏ passes 1e100 between the checks at steps 30 (1.8e84) and 40 (2.3e112).
            let g = 1.0 + 10.0 + 50.0 + 1000.0 / 6.0 + 10000.0 / 24.0
            Expect.stringContains e.Message "Field 'u' is blowing up: max |u| = " "names the field"
            Expect.stringContains e.Message "at step 40 (t = 0.4) passed the bound 1E+100" "step, time, bound"
            Expect.stringContains e.Message "use a smaller Dt, or a stiff/implicit scheme" "suggests the fix"
            let shown = (e.Message.Split("max |u| = ")[1]).Split(' ')[0]
            Expect.floatClose { absolute = 0.0; relative = 1e-3 } (float shown) (g ** 40.0) "the value gᵏ⁰"
        }

        test "on the generated kernels a blow-up stops at the first step past the bound, with the same message" {
            let sim = Compiler.compile Compiler.defaults (fastGrowth ())
            let o = options Scheme.Rk4 0.01 [| 1.0 |]
            Expect.equal (fst (sim.BackendFor o)) Backend.Kernels "Auto runs this on the kernels"

            let e =
                Expect.throwsC
                    (fun () ->
                        use _ = torch.no_grad ()
                        sim.Simulate(sim.Initial 1, o) |> ignore)
                    id

            // g = 644.33…: g³⁵ = 2.0e98 < 1e100 < g³⁶ = 1.3e101.
            let g = 1.0 + 10.0 + 50.0 + 1000.0 / 6.0 + 10000.0 / 24.0
            Expect.stringContains e.Message "Field 'u' is blowing up: max |u| = " "names the field"
            Expect.stringContains e.Message "at step 36 (t = 0.36) passed the bound 1E+100" "step, time, bound"
            let shown = (e.Message.Split("max |u| = ")[1]).Split(' ')[0]
            Expect.floatClose { absolute = 0.0; relative = 1e-3 } (float shown) (g ** 36.0) "the value g³⁶"
        }

        test "the blow-up bound is settable" {
            let previous = Rollout.maxMagnitude

            let sim =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = Backend.Eager
                    }
                    (fastGrowth ())

            try
                Rollout.maxMagnitude <- 1e20

                let e =
                    Expect.throwsC
                        (fun () ->
                            use _ = torch.no_grad ()

                            sim.Simulate(
                                sim.Initial 1,
                                {
                                    options Scheme.Rk4 0.01 [| 1.0 |] with
                                        FiniteCheckEvery = 10
                                }
                            )
                            |> ignore)
                        id

                // g¹⁰ = 1.2e28 > 1e20 at the first check.
                Expect.stringContains e.Message "at step 10 (t = 0.1) passed the bound 1E+20" "the lower bound"
            finally
                Rollout.maxMagnitude <- previous
        }
    ]
