/// The Arakawa Jacobian J(a, b) and the van Leer flux advection advectFlux(v…, q) on the generated kernels (the
/// operators of the climate case): corner ghost cells of doubly periodic fields, the SIMD and scalar kernels of the
/// same plan, Arakawa's conservation of Σ J, Σ a·J and Σ b·J in the kernel form, positivity and conservation of the
/// limited flux form on a kernel rollout, each face's flux taken once along periodic axes (face copies) against both
/// cells computing it, Backend.Auto's choice, and refusals naming the boundary. Rollouts and
/// gradients against the eager simulator run in `KernelTests`' suite (`vortex`, `tracers`).
module Hybrid.Tests.Kernels.ArakawaKernelTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Kernels
open Hybrid.Compiler

let private x, y = Sym "x", Sym "y"
let private omega, psi, q = Sym "omega", Sym "psi", Sym "q"

/// −advectFlux(−∂y ψ, ∂x ψ, q): q carried by the velocity of the streamfunction ψ, in the limited flux form.
let private carried (q: Expr) =
    Neg(FluxAdvect([ Neg(Partial(Axis.Y, psi)); Partial(Axis.X, psi) ], q))

/// The climate case's dynamics with a prognostic streamfunction, on an `nx` × `ny` doubly periodic rectangle
/// [0, 2π] × [0, `ly`]: vorticity ω stirred by −J(ψ, ω), with β ∂x ψ, drag and viscosity; ψ relaxing towards −ω at
/// rate c; a tracer q carried by (−∂y ψ, ∂x ψ) in the limited flux form, with an evaporation max(0.6 − q, 0). q
/// starts on a plateau of 0.5 with a bump (the limiter's flat and one-sided branches all occur).
let internal vortex (nx: int) (ny: int) (ly: float) =
    Model.empty "arakawa_vortex"
    |> Model.withDomain (Domain.Rectangle(0.0, 2.0 * Math.PI, 0.0, ly, nx, ny))
    |> Model.addField (Model.field "omega")
    |> Model.addField (Model.field "psi")
    |> Model.addField (Model.field "q")
    |> Model.addParam (Model.param "beta" 0.5)
    |> Model.addParam (Model.param "mu" 0.1)
    |> Model.addParam (Model.param "nu" 0.01)
    |> Model.addParam (Model.param "c" 1.0)
    |> Model.addParam (Model.param "E" 0.3)
    |> Model.addEquation
        "omega"
        (Neg(Jacobian(psi, omega)) - Sym "beta" * Partial(Axis.X, psi) - Sym "mu" * omega
         + Sym "nu" * Laplacian omega)
    |> Model.addEquation "psi" (Sym "c" * (Neg omega - psi))
    |> Model.addEquation "q" (carried q + Sym "E" * Max(0.6 - q, Num 0.0))
    |> Model.setBoundaryAll "omega" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "psi" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "q" BoundaryCondition.Periodic
    |> Model.setInitial
        "omega"
        (InitialCondition.Expr(
            2.0 * Apply(Fn.Sin, 4.0 * y)
            + 0.5 * Apply(Fn.Sin, 3.0 * x + 1.0) * Apply(Fn.Cos, 2.0 * y)
            + 0.3 * Apply(Fn.Cos, 5.0 * x + 2.0 * y)
        ))
    |> Model.setInitial
        "psi"
        (InitialCondition.Expr(
            0.5 * Apply(Fn.Cos, x + 0.3) * Apply(Fn.Sin, 2.0 * y + 0.2)
            + 0.2 * Apply(Fn.Sin, 3.0 * y)
        ))
    |> Model.setInitial
        "q"
        (InitialCondition.Expr(
            0.5
            + 0.3 * Apply(Fn.Sin, x) * Apply(Fn.Sin, 2.0 * y)
            + 0.1 * Apply(Fn.Cos, 3.0 * x + y)
        ))

/// ∂ω/∂t = −J(ψ, ω) − μω + νΔω, ∂ψ/∂t = c(−ω − ψ) on `nx` × `ny` cells of [0, 2π] × [0, 3], periodic along one
/// axis (x where `periodicX`, else y) with walls on the other, boundary values moving with t and varying along the
/// wall (and a Neumann and a no-flux side): J of single fields, whose corner ghosts are the wall's rule in the wrapped
/// column or row (with the value of the nearest end row where y wraps, as the eager corner padding extends it).
let internal channel (periodicX: bool) (nx: int) (ny: int) =
    let wall (low: Side) (high: Side) (m: Model) =
        let along = if periodicX then x else y

        m
        |> Model.setBoundary "psi" low (BoundaryCondition.Dirichlet(0.1 * Apply(Fn.Sin, along) * (1.0 + Sym "t")))
        |> Model.setBoundary "psi" high (BoundaryCondition.Neumann(0.2 + 0.1 * along))
        |> Model.setBoundary "omega" low BoundaryCondition.NoFlux
        |> Model.setBoundary "omega" high (BoundaryCondition.Dirichlet(0.3 + Sym "mu" * Apply(Fn.Cos, along)))

    Model.empty "arakawa_channel"
    |> Model.withDomain (Domain.Rectangle(0.0, 2.0 * Math.PI, 0.0, 3.0, nx, ny))
    |> Model.addField (Model.field "omega")
    |> Model.addField (Model.field "psi")
    |> Model.addParam (Model.param "mu" 0.1)
    |> Model.addParam (Model.param "nu" 0.01)
    |> Model.addParam (Model.param "c" 1.0)
    |> Model.addEquation "omega" (Neg(Jacobian(psi, omega)) - Sym "mu" * omega + Sym "nu" * Laplacian omega)
    |> Model.addEquation "psi" (Sym "c" * (Neg omega - psi))
    |> Model.setBoundaryAll "omega" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "psi" BoundaryCondition.Periodic
    |> (if periodicX then
            wall Side.Bottom Side.Top
        else
            wall Side.Left Side.Right)
    |> Model.setInitial
        "omega"
        (InitialCondition.Expr(
            Apply(Fn.Sin, 2.0 * y + 0.5)
            + 0.5 * Apply(Fn.Sin, 3.0 * x + 1.0) * Apply(Fn.Cos, y)
        ))
    |> Model.setInitial
        "psi"
        (InitialCondition.Expr(0.5 * Apply(Fn.Cos, x + 0.3) * Apply(Fn.Sin, 2.0 * y + 0.2) + 0.2 * y))

/// 1-D, `n` cells on [0, 1]: a velocity field u (diffusing, a Dirichlet and a no-flux end) carrying a tracer q with
/// walls (Dirichlet, Neumann), and a periodic tracer p carried by the uniform velocity a cos(8t), which changes sign:
/// the flux advection of single fields, whose own ghost cells (any boundary kind) are the eager padding.
let internal tracers (n: int) =
    let u, p = Sym "u", Sym "p"

    Model.empty "flux_tracers"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, n))
    |> Model.addField (Model.field "u")
    |> Model.addField (Model.field "q")
    |> Model.addField (Model.field "p")
    |> Model.addParam (Model.param "D" 0.02)
    |> Model.addParam (Model.param "k" 0.5)
    |> Model.addParam (Model.param "a" 0.7)
    |> Model.addEquation "u" (Sym "D" * Laplacian u)
    |> Model.addEquation "q" (Neg(FluxAdvect([ u ], q)) + Sym "k" * q * (1.0 - q))
    |> Model.addEquation "p" (Neg(FluxAdvect([ Sym "a" * Apply(Fn.Cos, 8.0 * Sym "t") ], p)))
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Num 0.8))
    |> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
    |> Model.setBoundary "q" Side.Left (BoundaryCondition.Dirichlet(Num 0.2))
    |> Model.setBoundary "q" Side.Right (BoundaryCondition.Neumann(Num 0.1))
    |> Model.setBoundaryAll "p" BoundaryCondition.Periodic
    |> Model.setInitial "u" (InitialCondition.Expr(0.2 + 0.5 * Apply(Fn.Sin, 7.0 * x)))
    |> Model.setInitial "q" (InitialCondition.Expr(0.3 + Max(Num 0.0, 0.5 * Apply(Fn.Sin, 9.0 * x))))
    |> Model.setInitial "p" (InitialCondition.Expr(0.4 + 0.3 * Apply(Fn.Cos, 2.0 * Math.PI * x)))

/// ∂a/∂t = 0, ∂b/∂t = J(a, b) on an `nx` × `ny` doubly periodic rectangle: the plan whose right-hand side of b is J.
let private jacobianOnly (nx: int) (ny: int) =
    Model.empty "jacobian_only"
    |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.7, nx, ny))
    |> Model.addField (Model.field "a")
    |> Model.addField (Model.field "b")
    |> Model.addEquation "a" (Num 0.0)
    |> Model.addEquation "b" (Jacobian(Sym "a", Sym "b"))
    |> Model.setBoundaryAll "a" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "b" BoundaryCondition.Periodic

/// Σ J(a, b), Σ a·J(a, b) and Σ b·J(a, b) over the cells of random doubly periodic a and b (ghosts filled by the
/// plan's ghost maps, corners included), by the vectorised or the scalar forward kernel: zero to round-off (1e-13 of
/// the sum of the terms' magnitudes; one corner ghost left unfilled or misplaced breaks them by O(1)).
let private conservesTest (nx: int) (ny: int) (vectorise: bool) =
    let form = if vectorise then "SIMD" else "scalar"

    test $"Σ J, Σ a·J and Σ b·J vanish to round-off, {nx} × {ny}, {form}" {
        let plan = SimdKernelTests.planOf (jacobianOnly nx ny)
        let maps = Array.init 2 (Ghosts.map plan)
        let rng = Random 7
        let batch = 2

        let values =
            Array.init 2 (fun _ -> SimdKernelTests.uniform rng (batch * plan.Cells) -1.0 1.0)

        let padded = Array.init 2 (fun _ -> Array.zeroCreate (batch * plan.PaddedCells))
        Ghosts.scatter maps batch values padded
        Ghosts.fill maps batch padded
        let output = Array.init 2 (fun _ -> Array.zeroCreate (batch * plan.PaddedCells))
        (Codegen.forwardWith vectorise plan).Invoke(padded, [||], 0.0, output, batch, [||], [||])
        let j = Ghosts.gather maps batch output
        let a, b = values[0], values[1]

        for traj in 0 .. batch - 1 do
            let cells = [ traj * plan.Cells .. (traj + 1) * plan.Cells - 1 ]

            let check (name: string) (weight: int -> float) =
                let sum = cells |> List.sumBy (fun c -> weight c * j[1].[c])
                let scale = cells |> List.sumBy (fun c -> abs (weight c * j[1].[c]))
                Expect.isGreaterThan scale 1.0 $"{name}: the terms are not all small"
                Expect.isLessThan (abs sum) (1e-13 * scale) $"{name} = {sum} (trajectory {traj})"

            check "Σ J" (fun _ -> 1.0)
            check "Σ a·J" (fun c -> a[c])
            check "Σ b·J" (fun c -> b[c])
    }

/// ∂q/∂t = −advectFlux(−∂y ψ, ∂x ψ, q) with a steady ψ = cos(x) sin(y) (|v| ≤ 1) on a 32 × 24 doubly periodic
/// [0, 2π]², from q = max(0, sin x sin 2y)³ (zero on half the domain, with kinks).
let private stirred =
    Model.empty "stirred"
    |> Model.withDomain (Domain.Rectangle(0.0, 2.0 * Math.PI, 0.0, 2.0 * Math.PI, 32, 24))
    |> Model.addField (Model.field "psi")
    |> Model.addField (Model.field "q")
    |> Model.addEquation "psi" (Num 0.0)
    |> Model.addEquation "q" (carried q)
    |> Model.setBoundaryAll "psi" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "q" BoundaryCondition.Periodic
    |> Model.setInitial "psi" (InitialCondition.Expr(Apply(Fn.Cos, x) * Apply(Fn.Sin, y)))
    |> Model.setInitial "q" (InitialCondition.Expr(PowInt(Max(Num 0.0, Apply(Fn.Sin, x) * Apply(Fn.Sin, 2.0 * y)), 3)))

/// Rollout options: `scheme`, steps of `dt`, states saved at `saves`.
let private options (scheme: Scheme) (dt: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = dt
        SaveTimes = saves
}

let private compile (backend: Backend) (m: Model) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
        }
        m

/// A kernel rollout of `stirred` with SSP-RK3 at the Courant limit's half (Δt Σₐ max|vₐ|/hₐ ≈ 0.49 < ½: the
/// limited scheme keeps q ≥ 0 there): q stays non-negative (its minimum starts at 0) and Σq stays put to 1e-13.
let private positivityTest =
    test "advectFlux on the kernels keeps q ≥ 0 and conserves Σq to round-off (SSP-RK3, 150 steps)" {
        Engine.init ()
        use _ = torch.no_grad ()
        let sim = compile Backend.Kernels stirred
        let h = 2.0 * Math.PI / 32.0
        let dt = 0.49 / (1.0 / h + 1.0 / (2.0 * Math.PI / 24.0))
        let saves = [| 50.0 * dt; 100.0 * dt; 150.0 * dt |]
        let u0 = sim.Initial 1
        let traj = sim.Simulate(u0, options Scheme.SspRk3 dt saves)
        Expect.equal traj.Backend Backend.Kernels "the kernels ran"
        let total0 = u0[1].sum().ToDouble()

        for k in 0 .. saves.Length - 1 do
            let qk = traj.Values[1].select (0L, int64 k)
            let total = qk.sum().ToDouble()
            Expect.isGreaterThanOrEqual (qk.min().ToDouble()) 0.0 $"min q ≥ 0 after {50 * (k + 1)} steps"
            Expect.isLessThan (abs (total - total0)) (1e-13 * total0) $"Σq after {50 * (k + 1)} steps"

        // The tracer moved (not a rollout that did nothing).
        let moved = (traj.Values[1].select (0L, 2L) - u0[1]).abs().max().ToDouble()
        Expect.isGreaterThan moved 0.05 "q changed"
    }

/// The plans of `vortex` 20 × 16 (doubly periodic: a face copy per axis) and of `tracers` 16 (1-D: q with walls
/// computes both faces in the cell, the periodic p reads a face copy) with each face's flux computed once along
/// periodic axes (`Lowering.lower`) and in both cells beside it (`Lowering.lowerWith false`): RK4 rollouts
/// (checkpoints every 2 steps) give the same saved states and gradients of Σ u² (every parameter, u(0)) to 1e-12, in
/// fewer operations forward and adjoint.
let private facesOnceTest =
    test
        "advectFlux along periodic axes takes each face's flux once: values and gradients of both cells' fluxes to 1e-12, fewer operations" {
        Engine.init ()
        use _ = torch.NewDisposeScope()

        for m, copies in [ vortex 20 16 5.0, 2; tracers 16, 1 ] do
            let eager = compile Backend.Eager m
            let system = ResolvedSystem.ofModel m

            let run (plan: KernelPlan) =
                let sim = KernelSimulator(plan, None, Scheme.Rk4, [||], [||])

                let u0 =
                    eager.Initial 2 |> Array.map (fun t -> t.detach().clone().requires_grad_ true)

                let theta =
                    eager.Theta() |> Array.map (fun t -> t.detach().clone().requires_grad_ true)

                let saved = Kernels.rollout sim u0 theta 0.0 0.01 6 3 2
                (saved |> Array.map (fun v -> (v * v).sum ()) |> Array.reduce (+)).backward ()

                Kernels.operations sim,
                Array.concat [
                    saved |> Array.map (fun v -> v.detach ())
                    theta |> Array.map _.grad
                    u0 |> Array.map _.grad
                ]

            let once, both = Lowering.lower system, Lowering.lowerWith false system
            Expect.equal (KernelPlan.faces once).Length copies $"{m.Name}: face copies"
            Expect.equal (KernelPlan.faces both).Length 0 $"{m.Name}: none in both cells"
            let opsOnce, valuesOnce = run once
            let opsBoth, valuesBoth = run both

            for i in 0 .. valuesOnce.Length - 1 do
                let scale = valuesBoth[i].abs().max().ToDouble()
                Expect.isGreaterThan scale 0.0 $"{m.Name}: entry {i} is not zero"
                let d = (valuesOnce[i] - valuesBoth[i]).abs().max().ToDouble() / scale
                Expect.isLessThan d 1e-12 $"{m.Name}: entry {i} ({d:G3})"

            Expect.isLessThan opsOnce.RightHandSide opsBoth.RightHandSide $"{m.Name}: forward operations"
            Expect.isLessThan opsOnce.Adjoint opsBoth.Adjoint $"{m.Name}: adjoint operations"
    }

/// `vortex` 20 × 16 with ν Δω taken implicitly (ImexEuler, ImexCrankNicolson, Δt = 0.01 with checkpoints every
/// 2 steps): Auto picks the kernels, whose saved states and gradients of Σ u² over them (every parameter, u(0))
/// equal the eager simulator's to 1e-10.
let private imexTest (scheme: Scheme) =
    test $"{scheme} with J and advectFlux explicit: kernels = eager (values and gradients)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()

        let o = {
            options scheme 0.01 [| 0.03; 0.06 |] with
                Checkpointing = Checkpointing.Segments 2
        }

        let m = vortex 20 16 5.0

        let run (backend: Backend) =
            let sim =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = backend
                            ImplicitDiffusion = true
                    }
                    m

            let u0 = sim.Initial 2 |> Array.map (fun t -> t.detach().requires_grad_ true)
            let traj = sim.Simulate(u0, o)
            let loss = traj.Values |> Array.map (fun v -> (v * v).sum ()) |> Array.reduce (+)
            loss.backward ()
            let theta = sim.Parameters |> Array.map (fun p -> p.Raw.grad.clone ())

            traj.Backend,
            Array.concat [
                traj.Values |> Array.map (fun v -> v.detach ())
                theta
                u0 |> Array.map _.grad
            ]

        let auto =
            Compiler.compile
                {
                    Compiler.defaults with
                        ImplicitDiffusion = true
                }
                m

        Expect.equal (auto.BackendFor o) (Backend.Kernels, "") "Auto picks the kernels"
        let onKernels, kernels = run Backend.Kernels
        let onEager, eager = run Backend.Eager
        Expect.equal (onKernels, onEager) (Backend.Kernels, Backend.Eager) "each back end ran"

        for i in 0 .. kernels.Length - 1 do
            let scale = eager[i].abs().max().ToDouble()
            Expect.isGreaterThan scale 0.0 $"entry {i} is not zero"
            Expect.isLessThan ((kernels[i] - eager[i]).abs().max().ToDouble() / scale) 1e-10 $"entry {i}"
    }

let tests =
    testList "Arakawa Jacobian and flux advection on the kernels" [
        testList "IMEX" [
            for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] -> imexTest scheme
        ]

        testList "SIMD kernels = scalar kernels" [
            for nx, ny in [ 4, 4; 5, 7; 9, 6 ] ->
                SimdKernelTests.agreement $"J and advectFlux, {nx} × {ny}" (vortex nx ny 5.0)
            for n in [ 5; 9; 23 ] -> SimdKernelTests.agreement $"1-D advectFlux, {n} cells" (tracers n)
            for periodicX, axis in [ true, "x"; false, "y" ] do
                for nx, ny in [ 4, 5; 9, 6 ] ->
                    SimdKernelTests.agreement
                        $"J of fields with walls (periodic in {axis}), {nx} × {ny}"
                        (channel periodicX nx ny)
        ]

        testList "conservation of the kernel form" [
            for nx, ny in [ 8, 8; 11, 6 ] do
                for vectorise in [ true; false ] -> conservesTest nx ny vectorise
        ]

        positivityTest
        facesOnceTest

        test "Backend.Auto picks the kernels for J and advectFlux" {
            Engine.init ()
            use _ = torch.NewDisposeScope()

            for m in [ vortex 12 10 5.0; tracers 16 ] do
                let auto = compile Backend.Auto m

                for scheme in [ Scheme.Rk4; Scheme.Heun ] do
                    let o = options scheme 1e-3 [| 0.005 |]
                    Expect.equal (auto.BackendFor o) (Backend.Kernels, "") $"{m.Name}, {scheme}: Auto picks the kernels"

                Expect.equal
                    (auto.Simulate(auto.Initial 1, options Scheme.Rk4 1e-3 [| 0.005 |])).Backend
                    Backend.Kernels
                    "and runs them"
        }

        testList "refusals name the operator and the boundary" [
            let refused (name: string) (m: Model) (texts: string list) =
                test name {
                    Engine.init ()
                    let e = Expect.throwsC (fun () -> Kernels.compile Scheme.Rk4 m |> ignore) id

                    for text in texts do
                        Expect.stringContains e.Message text "names the construct"
                }

            /// `m` with the equation of `field` replaced by `rhs`.
            let replace (field: string) (rhs: Expr) (m: Model) = {
                m with
                    Equations =
                        m.Equations
                        |> List.map (fun e -> if e.Field = field then { e with Rhs = rhs } else e)
            }

            refused
                "J of a field with walls"
                (vortex 6 6 5.0
                 |> Model.setBoundaryAll "psi" (BoundaryCondition.Dirichlet(Num 0.0)))
                [ "the Arakawa Jacobian J(a, b)"; "'psi'"; "side Left"; "equation of 'omega'" ]

            refused
                "advectFlux of a composite velocity reading a field with walls"
                (tracers 8 |> replace "q" (Neg(FluxAdvect([ Sym "u" * Sym "u" ], q))))
                [ "advectFlux"; "'u'"; "side Left"; "equation of 'q'" ]

            refused
                "J of an operand that reads the coordinates"
                (vortex 6 6 5.0 |> replace "omega" (Neg(Jacobian(psi + Apply(Fn.Sin, x), omega))))
                [ "the Arakawa Jacobian J(a, b)"; "coordinates" ]
        ]
    ]
