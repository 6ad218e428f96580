/// Rollouts: conservation, batch dimension, save times, stability and NaN messages, gradient checks of every
/// integrator, checkpointed = plain gradients with less memory, the physics residual, constrained parameters.
module Hybrid.Tests.Numerics.RolloutTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Tests.Numerics.Support

/// Reaction–diffusion ∂u/∂t = ∇·(D(u)∇u) + r u(1 − u) with D(u) = D (1 + a u²), θ = [D; r; a].
/// With a = 0 the diffusion is also offered as a stiff linear part (for IMEX).
let reactionDiffusion (g: Grid) (bcs: FieldBoundary) (nonlinear: bool) =
    let reaction (th: torch.Tensor[]) (u: torch.Tensor) = th[1] * u * (1.0 - u)

    let diff (th: torch.Tensor[]) (u: torch.Tensor) =
        Operators.diffusion g bcs (fun a -> th[0] * (1.0 + th[2] * (Operators.toFaces g bcs a u).square ())) u

    {
        Dynamics.ofFunction [| "u" |] g (fun th _ u ->
            if nonlinear then
                [| diff th u[0] + reaction th u[0] |]
            else
                [| reaction th u[0] |]) with
            Stiff =
                if nonlinear then
                    [| None |]
                else
                    [| Some(fun th u -> Operators.diffusion g bcs (fun _ -> th[0]) u) |]
            Limits =
                fun th u -> {
                    Diffusivity =
                        if nonlinear then
                            th[0].ToDouble() * (1.0 + th[2].ToDouble() * u[0].square().max().ToDouble())
                        else
                            0.0
                    StiffDiffusivity = if nonlinear then 0.0 else th[0].ToDouble()
                    Speed = 0.0
                }
    }

let private theta () = [| scalar 0.05; scalar 1.0; scalar 0.5 |]

let private bump (g: Grid) =
    Grid.init g 2 f64 (fun x y ->
        let dy = if g.Dims = 2 then y - 0.5 else 0.0
        0.2 + 0.6 * exp (-30.0 * ((x - 0.4) ** 2.0 + dy ** 2.0)))

let private allSchemes = [
    Scheme.Euler
    Scheme.Heun
    Scheme.SspRk3
    Scheme.Rk4
    Scheme.ImexEuler
    Scheme.ImexCrankNicolson
]

/// Reads the whole process's peak memory, so it runs early and alone (Main.fs runs all tests one at a time).
let memoryTest =
    test "checkpointing uses measurably less memory (1,000 RK4 steps)" {
        let g = Grid.line 0.0 1.0 256
        let dyn = reactionDiffusion g (Boundary.noFlux g) false

        let measure c =
            peakRss (fun () ->
                use _ = torch.NewDisposeScope()
                let th = theta () |> Array.map (fun t -> t.requires_grad_ true)
                let u0 = Grid.init g 8 f64 (fun x _ -> 0.5 + 0.4 * sin (6.0 * x))

                let traj =
                    Rollout.run dyn th [| u0 |] {
                        // 1,000 steps: the plain tape grows with T (≈ 930 MB at 2,000 steps, ≈ 460 MB here), the
                        // checkpointed one with √T (≈ 48 MB at 2,000 steps), still far inside the factor 2 asserted.
                        options Scheme.Rk4 1e-5 [| 0.01 |] with
                            Checkpointing = c
                    }

                traj.Values[0].sum().backward ())

        // Checkpointed first: memory freed by the first run may stay mapped and hide the second's peak.
        match measure Checkpointing.Sqrt, measure Checkpointing.Off with
        | Some withCheckpoints, Some plain ->
            printfn
                "Peak memory of a 1,000-step RK4 rollout with gradients (B = 8, N = 256, float64): plain %.1f MB, checkpointed (√T segments) %.1f MB"
                (float plain / 1e6)
                (float withCheckpoints / 1e6)

            Expect.isLessThan (float withCheckpoints) (0.5 * float plain) "checkpointing at least halves the peak"
        | _ -> skiptest "peak RSS is not readable here (/proc)"
    }

/// Tests that must not overlap others; Main.fs runs them first.
let exclusiveTests = testList "Rollouts" [ memoryTest ]

let tests =
    testList "Rollouts" [
        testList "conservation" [
            for g, name in [ Grid.line 0.0 1.0 24, "1-D"; Grid.plane (0.0, 1.0, 10) (0.0, 1.0, 8), "2-D" ] do
                for nonlinear in [ false; true ] do
                    for scheme in [ Scheme.Rk4; Scheme.ImexEuler ] do
                        if not (nonlinear && Integrators.isImex scheme) then
                            let kind = if nonlinear then "D(u)" else "D const"

                            test $"no-flux diffusion conserves mass ({name}, {kind}, {scheme})" {
                                let dyn = reactionDiffusion g (Boundary.noFlux g) nonlinear
                                // Pure diffusion: r = 0.
                                let th = [| scalar 0.05; scalar 0.0; scalar 2.0 |]
                                let u0 = bump g
                                let traj = Rollout.run dyn th [| u0 |] (options scheme 2e-3 [| 0.1 |])
                                let m0 = Grid.integrate g u0
                                let m1 = Grid.integrate g (traj.Values[0][0L])
                                let drift = maxAbs (m1 - m0)
                                Expect.isLessThan drift 1e-10 $"mass drift {drift:E2}"
                                Expect.isGreaterThan (maxAbs (traj.Values[0][0L] - u0)) 1e-3 "the field did change"
                            }
        ]

        test "batch dimension: one batched rollout equals separate rollouts" {
            let g = Grid.line 0.0 1.0 16
            let dyn = reactionDiffusion g (Boundary.noFlux g) true
            let scale = torch.tensor ([| 1.0; 0.5 |], dtype = f64)
            let u0 = bump g * scale.reshape (2L, 1L)
            let o = options Scheme.Rk4 1e-3 [| 0.05 |]
            let both = Rollout.run dyn (theta ()) [| u0 |] o
            let second = Rollout.run dyn (theta ()) [| u0.narrow (0L, 1L, 1L) |] o
            Expect.isLessThan (maxAbs (both.Values[0][0L, 1L] - second.Values[0][0L, 0L])) 1e-15 "identical"
        }

        test "save times that are not multiples of Δt are hit exactly" {
            let dyn = Dynamics.ofFunction [| "u" |] Grid.point (fun _ _ u -> [| -u[0] |])
            let saves = [| 0.0; 0.25; 1.0 / 3.0; 0.7 |]

            let traj =
                Rollout.run dyn [||] [| (scalar 1.0).reshape 1L |] (options Scheme.Rk4 0.1 saves)

            Expect.equal traj.Values[0].shape [| 4L; 1L |] "one snapshot per save time"

            saves
            |> Array.iteri (fun i t ->
                let value = (traj.Values[0][int64 i, 0L]).ToDouble()
                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } value (exp (-t)) $"u({t})")
        }

        test "an explicit step above the diffusion limit fails with the largest stable Δt" {
            let g = Grid.line 0.0 1.0 32
            let dyn = reactionDiffusion g (Boundary.noFlux g) false

            let o = {
                options Scheme.Rk4 0.02 [| 0.1 |] with
                    OnUnstable = OnUnstable.Fail
            }

            let e =
                Expect.throwsC (fun () -> Rollout.run dyn (theta ()) [| bump g |] o |> ignore) id

            let expected = 2.7853 / (4.0 * 0.05 * 32.0 * 32.0)
            Expect.stringContains e.Message $"largest stable Δt is {expected:G4}" "names the limit"
            // The IMEX scheme treats the diffusion implicitly and accepts the step.
            let imex =
                Rollout.run dyn (theta ()) [| bump g |] { o with Scheme = Scheme.ImexEuler }

            Expect.isTrue (torch.isfinite(imex.Values[0]).all().ToBoolean()) "IMEX runs"
        }

        test "NaN/Inf is reported with the step, the time and the field" {
            let dyn =
                Dynamics.ofFunction [| "a"; "blowup" |] Grid.point (fun _ _ u -> [| -u[0]; u[1].square () |])

            let o = {
                options Scheme.Euler 0.1 [| 10.0 |] with
                    FiniteCheckEvery = 1
            }

            let u0 = [| (scalar 1.0).reshape 1L; (scalar 1.0).reshape 1L |]
            let e = Expect.throwsC (fun () -> Rollout.run dyn [||] u0 o |> ignore) id
            Expect.stringContains e.Message "Field 'blowup'" "names the field"
            Expect.stringContains e.Message "at step" "names the step"
            Expect.stringContains e.Message "(t = " "names the time"
        }

        testList "gradient checks of every integrator (u0, D, r, a)" [
            for scheme in allSchemes ->
                test $"{scheme}" {
                    let g = Grid.line 0.0 1.0 10

                    let dyn =
                        reactionDiffusion
                            g
                            (Boundary.uniform g (Boundary.dirichlet 0.1))
                            (not (Integrators.isImex scheme))

                    let w = Grid.init g 1 f64 (fun x _ -> cos (5.0 * x))

                    let err =
                        gradCheck
                            (fun xs ->
                                let traj =
                                    Rollout.run dyn xs[1..] [| xs[0] |] (options scheme 0.01 [| 0.03; 0.05 |])

                                (w * traj.Values[0]).sum ())
                            (Array.append [| bump g |] (theta ()))

                    Expect.isLessThan err 1e-6 $"relative error {err:E2}"
                }
        ]

        testList "checkpointing" [
            for scheme in [ Scheme.Rk4; Scheme.ImexCrankNicolson ] do
                test $"checkpointed and plain rollouts give the same gradients ({scheme})" {
                    let g = Grid.line 0.0 1.0 16
                    let dyn = reactionDiffusion g (Boundary.noFlux g) (scheme = Scheme.Rk4)
                    let saves = [| 0.013; 0.05; 0.1 |]

                    let grads c =
                        let th = theta () |> Array.map (fun t -> t.requires_grad_ true)
                        let u0 = (bump g).requires_grad_ true

                        let traj =
                            Rollout.run dyn th [| u0 |] {
                                options scheme 0.002 saves with
                                    Checkpointing = c
                            }

                        let loss = (traj.Values[0].square () * Grid.coordinate g 0 f64).sum ()
                        loss.backward ()
                        loss.ToDouble(), Array.append [| u0.grad |] (th |> Array.map (fun t -> t.grad))

                    let l0, g0 = grads Checkpointing.Off

                    for c in [ Checkpointing.Sqrt; Checkpointing.Segments 7; Checkpointing.Budget 100_000L ] do
                        let l1, g1 = grads c
                        Expect.floatClose Accuracy.veryHigh l1 l0 $"{c}: same loss"

                        Array.iter2
                            (fun (a: torch.Tensor) (b: torch.Tensor) ->
                                let orZero (t: torch.Tensor) (other: torch.Tensor) =
                                    if isNull t then torch.zeros_like other else t

                                let a, b = orZero a b, orZero b a
                                let diff = maxAbs (a - b) / max 1e-300 (maxAbs a)
                                Expect.isLessThan diff 1e-12 $"{c}: relative gradient difference {diff:E2}")
                            g0
                            g1
                }

        ]

        testList "physics residual" [
            test "zero on the scheme's own trajectory (consistent form), O(Δt) in the forward-Euler form" {
                let g = Grid.line 0.0 1.0 16
                let dyn = reactionDiffusion g (Boundary.noFlux g) true
                let dt = 1e-3
                let times = Array.init 6 (fun i -> float i * dt)
                let traj = Rollout.run dyn (theta ()) [| bump g |] (options Scheme.Rk4 dt times)

                let consistent =
                    Residual.compute dyn (theta ()) (ResidualForm.Consistent Scheme.Rk4) times traj.Values

                Expect.isLessThan (consistent.Norms[0].ToDouble()) 1e-10 "consistent residual vanishes"

                let euler =
                    Residual.compute dyn (theta ()) ResidualForm.ForwardEuler times traj.Values

                let r = euler.Norms[0].ToDouble()
                Expect.isGreaterThan r 0.0 "Euler residual is not zero"
                Expect.isLessThan r 1.0 "but small"
                Expect.equal euler.Values[0].shape [| 5L; 2L; 16L |] "[S − 1; B; N]"
                // A trajectory with the wrong parameters has a larger residual.
                let wrong =
                    Residual.compute
                        dyn
                        [| scalar 0.2; scalar 1.0; scalar 0.5 |]
                        ResidualForm.ForwardEuler
                        times
                        traj.Values

                Expect.isGreaterThan (wrong.Norms[0].ToDouble()) (10.0 * r) "wrong D shows"
            }
        ]

        testList "constrained parameters" [
            test "positive and bounded values round-trip and stay inside" {
                let p = Param("D", Constraint.Positive, 0.05, dtype = f64)
                Expect.floatClose Accuracy.veryHigh (p.Get()) 0.05 "positive"
                let b = Param("alpha", Constraint.Bounded(0.0, 1.0), 0.3, dtype = f64)
                Expect.floatClose Accuracy.veryHigh (b.Get()) 0.3 "bounded"
                b.Set 0.9
                Expect.floatClose Accuracy.veryHigh (b.Get()) 0.9 "set"

                use _ = torch.no_grad ()
                p.Raw.fill_ ((-50.0).ToScalar()) |> ignore
                b.Raw.fill_ ((50.0).ToScalar()) |> ignore
                Expect.isGreaterThan (p.Get()) 0.0 "still positive"
                Expect.isLessThanOrEqual (b.Get()) 1.0 "still bounded"
            }

            test "out-of-range values are rejected with the name and the fix" {
                let e =
                    Expect.throwsC (fun () -> Param("D", Constraint.Positive, -1.0) |> ignore) id

                Expect.stringContains e.Message "'D'" "names the parameter"

                let e2 =
                    Expect.throwsC (fun () -> Param("a", Constraint.Bounded(0.0, 1.0), 1.5) |> ignore) id

                Expect.stringContains e2.Message "strictly inside" "says the fix"
            }

            test "gradients flow through the constraint to the raw value" {
                let p = Param("D", Constraint.Positive, 0.7, dtype = f64)
                let b = Param("a", Constraint.Bounded(-1.0, 3.0), 0.5, dtype = f64)

                let err =
                    gradCheck
                        (fun xs -> (torch.nn.functional.softplus xs[0] * (-1.0 + 4.0 * torch.sigmoid xs[1])).sin ())
                        [| p.Raw.detach (); b.Raw.detach () |]

                Expect.isLessThan err 1e-6 $"relative error {err:E2}"
            }
        ]
    ]
