/// The compiler: models from the DSL's IR run as differentiable simulators. Lorenz-96 against an
/// independent RK4, Fisher–KPP twin experiment, IMEX split, neural closures with checkpointing.
module Hybrid.Tests.Compiler.CompilerTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Tests.Numerics.Support

let private u = Sym "u"

/// One-scale Lorenz-96: dXₖ/dt = (Xₖ₊₁ − Xₖ₋₂) Xₖ₋₁ − Xₖ + F. (A field may not be named `x`: that is the
/// coordinate, and `Checks.compilable` refuses it.)
let lorenz96 (k: int) (f: float) =
    Model.empty "lorenz96"
    |> Model.withDomain (Domain.Lattice(k, 0))
    |> Model.addField (Model.field "X")
    |> Model.addParam {
        Model.param "F" f with
            Learnable = false
    }
    |> Model.addEquation
        "X"
        (Add(Sub(Mul(Sub(Expr.shiftK "X" 1, Expr.shiftK "X" -2), Expr.shiftK "X" -1), Sym "X"), Sym "F"))

/// Fisher–KPP ∂u/∂t = ∇·(D∇u) + r u (1 − u) on [0, 1], no flux, a bump as initial condition.
let fisherKpp (cells: int) (d: float) (r: float) =
    Model.empty "fisher"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, cells))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" d with
            Constraint = Constraint.Positive
    }
    |> Model.addParam {
        Model.param "r" r with
            Constraint = Constraint.Positive
    }
    |> Model.addEquation "u" (Add(Divergence(Mul(Sym "D", Grad u)), Mul(Mul(Sym "r", u), Sub(Num 1.0, u))))
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
    |> Model.setInitial
        "u"
        (InitialCondition.Expr(Mul(Num 0.8, Apply(Fn.Exp, Mul(Num -40.0, PowInt(Sub(Sym "x", Num 0.3), 2))))))

/// Fisher–KPP (16 cells) with a neural kill term: ∂u/∂t = ∇·(D∇u) + r u (1 − u) − kill(u, x) u.
let fisherWithKill () =
    fisherKpp 16 0.05 1.0
    |> Model.addClosure {
        Name = "kill"
        Arity = 2
        Architecture = Architecture.Mlp([ 2; 8; 1 ], Activation.Tanh)
        Units = None
    }
    |> fun m -> {
        m with
            Equations = [
                {
                    Field = "u"
                    Rhs =
                        Sub(
                            Add(Divergence(Mul(Sym "D", Grad u)), Mul(Mul(Sym "r", u), Sub(Num 1.0, u))),
                            Mul(Call("kill", [ u; Sym "x" ]), u)
                        )
                }
            ]
    }

/// Independent RK4 for Lorenz-96 on float arrays (same operation order as the simulator).
let referenceL96 (x0: float[]) (f: float) (dt: float) (steps: int) =
    let k = x0.Length
    let idx i = ((i % k) + k) % k

    let rhs (x: float[]) =
        Array.init k (fun i -> (x[idx (i + 1)] - x[idx (i - 2)]) * x[idx (i - 1)] - x[i] + f)

    let mutable x = x0

    for _ in 1..steps do
        let k1 = rhs x
        let k2 = rhs (Array.init k (fun i -> x[i] + (0.5 * dt) * k1[i]))
        let k3 = rhs (Array.init k (fun i -> x[i] + (0.5 * dt) * k2[i]))
        let k4 = rhs (Array.init k (fun i -> x[i] + dt * k3[i]))
        x <- Array.init k (fun i -> x[i] + (dt / 6.0) * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))

    x

/// Independent RK4 for two-scale Lorenz-96 (Wilks 2005) on float arrays: slow X (K sites), fast Y on one
/// ring of K·J sites (n = k·J + j):
/// dXₖ/dt = (Xₖ₊₁ − Xₖ₋₂) Xₖ₋₁ − Xₖ + F − (hc/b) Σⱼ Y_{kJ+j},
/// dYₙ/dt = −cb Yₙ₊₁ (Yₙ₊₂ − Yₙ₋₁) − c Yₙ + (hc/b) X_{n/J}.
let private referenceTwoScale (k: int) (j: int) (x0: float[]) (y0: float[]) (dt: float) (steps: int) =
    let f, h, c, b = 10.0, 1.0, 10.0, 10.0
    let n = k * j
    let wrap m i = ((i % m) + m) % m

    let rhs (x: float[], y: float[]) =
        let dx =
            Array.init k (fun i ->
                let sum = Array.sum y[i * j .. i * j + j - 1]

                (x[wrap k (i + 1)] - x[wrap k (i - 2)]) * x[wrap k (i - 1)] - x[i] + f
                - h * c / b * sum)

        let dy =
            Array.init n (fun i ->
                -c * b * y[wrap n (i + 1)] * (y[wrap n (i + 2)] - y[wrap n (i - 1)]) - c * y[i]
                + h * c / b * x[i / j])

        dx, dy

    let axpy (x: float[], y: float[]) (a: float) (dx: float[], dy: float[]) =
        Array.map2 (fun p q -> p + a * q) x dx, Array.map2 (fun p q -> p + a * q) y dy

    let mutable state = (x0, y0)

    for _ in 1..steps do
        let k1 = rhs state
        let k2 = rhs (axpy state (0.5 * dt) k1)
        let k3 = rhs (axpy state (0.5 * dt) k2)
        let k4 = rhs (axpy state dt k3)
        let x, y = state

        let combine (v: float[]) (a: float[]) (bb: float[]) (cc: float[]) (d: float[]) =
            Array.init v.Length (fun i -> v[i] + (dt / 6.0) * (a[i] + 2.0 * bb[i] + 2.0 * cc[i] + d[i]))

        state <- (combine x (fst k1) (fst k2) (fst k3) (fst k4), combine y (snd k1) (snd k2) (snd k3) (snd k4))

    state

let tests =
    testList "Compiler" [
        test "two-scale Lorenz-96 (K = 8, J = 4) from the catalogue matches an independent RK4 to 1e-10" {
            let k, j = 8, 4

            let model = {
                Examples.lorenz96 with
                    Domain = Domain.Lattice(k, j)
            }

            let sim = Compiler.compile Compiler.defaults model
            let u0 = sim.Initial 1
            Expect.equal u0[1].shape [| 1L; int64 (k * j) |] "the fast field lives on the K·J ring"
            let x0 = u0[0].reshape(-1L).data<float>().ToArray()
            let y0 = u0[1].reshape(-1L).data<float>().ToArray()
            Expect.floatClose Accuracy.veryHigh x0[3] (10.0 + sin 3.0) "X₀ = F + sin k"
            Expect.floatClose Accuracy.veryHigh y0[5] (0.01 * cos 5.0) "Y₀ = 0.01 cos n on the fast ring"
            let dt = 0.001

            let traj =
                use _ = torch.no_grad ()
                sim.Simulate(u0, options Scheme.Rk4 dt [| 300.0 * dt |])

            let ex, ey = referenceTwoScale k j x0 y0 dt 300
            let gx = traj.Values[0].reshape(-1L).data<float>().ToArray()
            let gy = traj.Values[1].reshape(-1L).data<float>().ToArray()

            let err =
                max
                    (Array.map2 (fun a b -> abs (a - b)) gx ex |> Array.max)
                    (Array.map2 (fun a b -> abs (a - b)) gy ey |> Array.max)

            printfn "two-scale Lorenz-96: max |compiled − reference| after 300 RK4 steps = %.3e" err
            Expect.isLessThan err 1e-10 "matches the reference"
            Expect.isGreaterThan (Array.max gy - Array.min gy) 0.01 "the fast variables moved"
        }

        test "a fast field outside Σⱼ in a slow equation is refused with the fix" {
            let model = {
                Examples.lorenz96 with
                    Domain = Domain.Lattice(8, 4)
                    Equations =
                        Examples.lorenz96.Equations
                        |> List.map (fun e ->
                            if e.Field = "X" then
                                { e with Rhs = Sym "Y" - Sym "X" }
                            else
                                e)
            }

            let e =
                Expect.throwsC (fun () -> Compiler.compile Compiler.defaults model |> ignore) id

            Expect.stringContains e.Message "Wrap it in sumFast" "names the fix"
        }

        test "Lorenz-96 (K = 40, F = 8) matches an independent RK4 to 1e-10 over 1,000 steps" {
            // The eager back end does the reference's arithmetic operation for operation; the generated kernels
            // round differently, which this chaotic system amplifies to ~1e-8 by step 1,000 (BackendTests
            // compares them over 100 steps).
            let sim =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = Backend.Eager
                    }
                    (lorenz96 40 8.0)

            let x0 =
                Array.init 40 (fun i -> 8.0 + (if i = 19 then 0.01 else 0.0) + 0.001 * sin (float i))

            let dt = 0.005
            let u0 = torch.tensor(x0, dtype = f64).reshape (1L, 40L)

            let traj =
                use _ = torch.no_grad ()
                sim.Simulate([| u0 |], options Scheme.Rk4 dt [| 1000.0 * dt |])

            let expected = referenceL96 x0 8.0 dt 1000
            let got = traj.Values[0].reshape(-1L).data<float>().ToArray()
            let err = Array.map2 (fun a b -> abs (a - b)) got expected |> Array.max
            printfn "Lorenz-96: max |compiled − reference| after 1,000 RK4 steps = %.3e" err
            Expect.isLessThan err 1e-10 "matches the reference"
            Expect.isGreaterThan (Array.max got - Array.min got) 1.0 "the dynamics developed (not the fixed point)"
        }

        test "compiled Fisher–KPP equals the hand-built Dynamics, and IMEX moves diffusion to the stiff part" {
            let model = fisherKpp 24 0.02 1.5
            let sim = Compiler.compile Compiler.defaults model

            let imex =
                Compiler.compile
                    {
                        Compiler.defaults with
                            ImplicitDiffusion = true
                    }
                    model

            let u0 = sim.Initial 2
            Expect.equal u0[0].shape [| 2L; 24L |] "[B; N]"
            let g = Grid.line 0.0 1.0 24
            let bcs = Boundary.noFlux g

            let hand =
                Dynamics.ofFunction [| "u" |] g (fun th _ s -> [|
                    Operators.diffusion g bcs (fun _ -> th[0]) s[0] + th[1] * s[0] * (1.0 - s[0])
                |])

            let o = options Scheme.Rk4 0.005 [| 0.1; 0.2 |]
            let a = sim.Simulate(u0, o)
            let b = Rollout.run hand (sim.Theta()) u0 o
            Expect.isLessThan (maxAbs (a.Values[0] - b.Values[0])) 1e-14 "same trajectory"
            Expect.isTrue imex.Dynamics.Stiff[0].IsSome "diffusion is stiff"
            Expect.isTrue sim.Dynamics.Stiff[0].IsNone "not split by default"

            let c =
                imex.Simulate(
                    u0,
                    {
                        o with
                            Scheme = Scheme.ImexCrankNicolson
                    }
                )

            Expect.isLessThan (maxAbs (a.Values[0] - c.Values[0])) 1e-4 "IMEX CN agrees with RK4"
        }

        test
            "a diffusion coefficient that reads a forcing stays explicit under ImplicitDiffusion, so IMEX converges to RK4" {
            // κ = D(1 + c(t)) changes in time, and the implicit solves factor I − γhL once per step size: taken
            // implicitly, the step kept L at c(0) = 0 and missed RK4's answer by 2.6e-3 (relative) at any Δt.
            let model =
                Model.empty "forced_kappa"
                |> Model.withDomain (Domain.Interval(0.0, 1.0, 24))
                |> Model.addField (Model.field "u")
                |> Model.addParam (Model.param "D" 0.05)
                |> Model.addForcing { Name = "c"; Units = None }
                |> Model.addEquation "u" (Divergence(Sym "D" * (1.0 + Sym "c") * Grad u) + u * (1.0 - u))
                |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
                |> Model.setInitial
                    "u"
                    (InitialCondition.Expr(0.3 + 0.5 * Apply(Fn.Exp, -40.0 * (Sym "x" - 0.4) * (Sym "x" - 0.4))))

            let compileWith (implicitDiffusion: bool) (backend: Backend) =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = backend
                            ImplicitDiffusion = implicitDiffusion
                            Forcings =
                                Map.ofList [
                                    "c",
                                    (fun (t: float) ->
                                        torch.tensor (2.0 * sin (20.0 * t), dtype = torch.ScalarType.Float64))
                                ]
                    }
                    model

            let reference =
                (compileWith false Backend.Eager)
                    .Simulate((compileWith false Backend.Eager).Initial 1, options Scheme.Rk4 0.0005 [| 0.3 |])
                    .Values[0]

            for backend in [ Backend.Eager; Backend.Kernels ] do
                let imex = compileWith true backend

                Expect.isTrue
                    imex.Dynamics.Stiff[0].IsNone
                    $"{backend}: κ reads the forcing, so the diffusion is explicit"

                let c =
                    imex.Simulate(imex.Initial 1, options Scheme.ImexCrankNicolson 0.001 [| 0.3 |])

                Expect.equal c.Backend backend "the back end asked for ran"
                let d = maxAbs (c.Values[0] - reference) / maxAbs reference
                Expect.isLessThan d 1e-5 $"{backend}: IMEX CN agrees with RK4 ({d:G3})"
        }

        test "stability check of the compiled model names the largest stable Δt" {
            let sim = Compiler.compile Compiler.defaults (fisherKpp 64 0.5 1.0)

            let o = {
                options Scheme.Rk4 0.01 [| 0.1 |] with
                    OnUnstable = OnUnstable.Fail
            }

            let e = Expect.throwsC (fun () -> sim.Simulate(sim.Initial 1, o) |> ignore) id
            Expect.stringContains e.Message "largest stable Δt" "message"
        }

        test "unknown symbols and missing forcings are reported by name" {
            let bad = fisherKpp 8 0.1 1.0 |> Model.addEquation "u" (Sym "nope")

            let bad = {
                bad with
                    Equations = [
                        {
                            Field = "u"
                            Rhs = Mul(Sym "nope", u)
                        }
                    ]
            }

            let e =
                Expect.throwsC (fun () -> Compiler.compile Compiler.defaults bad |> ignore) id

            Expect.stringContains e.Message "'nope'" "names the symbol"
            let forced = fisherKpp 8 0.1 1.0 |> Model.addForcing { Name = "c"; Units = None }

            let e2 =
                Expect.throwsC (fun () -> Compiler.compile Compiler.defaults forced |> ignore) id

            Expect.stringContains e2.Message "Forcing 'c'" "names the forcing"
        }

        test "a field without an initial condition compiles; asking for its initial state says the fix" {
            let m = fisherKpp 8 0.1 1.0
            let sim = Compiler.compile Compiler.defaults { m with Initials = [] }
            let e = Expect.throwsC (fun () -> sim.Initial 1 |> ignore) id

            Expect.equal
                e.Message
                "Field 'u' has no initial condition. Add one, e.g. initialValue \"u\" 0.0 or initial \"u\" (fun x -> ...), or initialData \"u\" \"u0\" for values given as data. Or pass the initial state to Simulate."
                "the checks' message and the simulator's alternative"
        }

        test "neural closure: gradients w.r.t. θ and φ, checkpointed = plain" {
            let model = fisherWithKill ()

            let sim = Compiler.compile { Compiler.defaults with Seed = 3 } model

            let grads c =
                for p in sim.Trainable() do
                    p.grad <- null

                let traj =
                    sim.Simulate(
                        sim.Initial 1,
                        {
                            options Scheme.Rk4 0.005 [| 0.05; 0.1 |] with
                                Checkpointing = c
                        }
                    )

                traj.Values[0].square().sum().backward ()
                sim.Trainable() |> Array.map (fun p -> p.grad.clone ())

            let plain = grads Checkpointing.Off
            let checkpointed = grads (Checkpointing.Segments 5)
            Expect.equal plain.Length 6 "D, r and four MLP tensors"

            Array.iter2
                (fun (a: torch.Tensor) (b: torch.Tensor) ->
                    Expect.isGreaterThan (maxAbs a) 0.0 "non-zero gradient"
                    Expect.isLessThan (maxAbs (a - b) / maxAbs a) 1e-12 "same gradient")
                plain
                checkpointed
        }

        test "twin experiment: D and r of Fisher–KPP recovered within 2% from 1%-noise data" {
            let trueD, trueR = 0.02, 1.5
            let truth = Compiler.compile Compiler.defaults (fisherKpp 32 trueD trueR)
            let times = Array.init 8 (fun i -> 0.25 * float (i + 1))
            let o = options Scheme.Rk4 0.02 times
            let u0 = truth.Initial 1

            let data =
                use _ = torch.no_grad ()
                let clean = truth.Simulate(u0, o).Values[0]
                use gen = new torch.Generator(42UL)
                let rms = clean.square().mean().sqrt().ToDouble()
                clean + 0.01 * rms * torch.randn (clean.shape, dtype = f64, generator = gen)

            let sim = Compiler.compile Compiler.defaults (fisherKpp 32 0.01 0.8)

            use optimizer =
                new Hybrid.Training.Adam(
                    [|
                        sim.Trainable() |> Seq.map (fun p -> p :> torch.Tensor) |> Array.ofSeq, 0.05
                    |]
                )

            // 100 Adam steps: both errors stay below 0.5% from step 88 on (0.38% and 0.18% at step 100, 0.14% and 0.11%
            // at step 150), a 4× margin to the 2% bound; a wrong gradient or simulator misses it by far.
            for _ in 1..100 do
                use _ = torch.NewDisposeScope()
                optimizer.ZeroGrad()
                let loss = (sim.Simulate(u0, o).Values[0] - data).square().mean ()
                loss.backward ()
                optimizer.Step()

            let d, r = sim.Param("D").Get(), sim.Param("r").Get()

            printfn
                "Twin experiment: D = %.5f (true %.3f, error %.2f%%), r = %.4f (true %.2f, error %.2f%%)"
                d
                trueD
                (100.0 * abs (d - trueD) / trueD)
                r
                trueR
                (100.0 * abs (r - trueR) / trueR)

            Expect.isLessThan (abs (d - trueD) / trueD) 0.02 "D within 2%"
            Expect.isLessThan (abs (r - trueR) / trueR) 0.02 "r within 2%"
        }
    ]
