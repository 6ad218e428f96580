/// Rodas4 on the generated kernels (`RosenbrockStepper`, `TangentPlan`) against autograd and the eager back end: the
/// tangent plan's J d and second-order adjoint ∂/∂(u, θ, w) [λᵀ J(u) d] against autograd to 1e-12 on 1-D and 2-D
/// stencils, with neural closures (their networks' JVPs and the weights w); Rodas4 rollouts on grids and point systems taking the eager back end's steps, with values and gradients
/// (initial state, parameters, closure weights): values to 1e-10 (2-D: 1e-8, ten times BiCGSTAB's stopping tolerance 1e-9 at the tests'
/// rtol 1e-6, since the kernels' array BiCGSTAB sums in another order than the eager tensor one and both stop at that
/// residual), gradients to 1e-8 (see `stepAdjointAgrees`); Auto switching where the eager back end does; stencils
/// wider than the nearest neighbours (flux advection, Arakawa's Jacobian: BiCGSTAB in 1-D too, against the eager
/// back end's dense solves, and beyond their 1,000-unknown limit against Dopri5).
module Hybrid.Tests.Kernels.RosenbrockKernelTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels
open Hybrid.TensorArithmetic
open Hybrid.Tests.Kernels.AdaptiveGridKernelTests

let private f64 = torch.ScalarType.Float64

let private compile = compileSplit false

/// A 1-D Brusselator (24 cells) with Dirichlet walls, one of them a parameter (moving ghosts).
let private brusselator =
    Parse.model
        "model bruss\ndomain interval [0, 1] cells 24\nfield u\nfield v\nparam D = 0.02\nparam a = 1\nparam b = 3\ndu/dt = D*lap(u) + a + u^2*v - (b + 1)*u\ndv/dt = D*lap(v) + b*u - u^2*v\nboundary u dirichlet a\nboundary v dirichlet 3\ninitial u = 1 + sin(6.283185307179586*x)\ninitial v = 3"

/// A periodic 1-D advection–reaction model with a nonlinear diffusion coefficient.
let private periodic =
    Parse.model
        "model ring\ndomain interval [0, 1] cells 20\nfield u\nparam k = 0.05\nparam r = 2\ndu/dt = div(k*(1 + u^2)*grad(u)) - r*u^3 + sin(u)\nboundary u periodic\ninitial u = 0.5 + 0.4*cos(6.283185307179586*x)"

/// Van der Pol's oscillator, stiff at μ = 20 (a point system).
let internal vanDerPol =
    Parse.model
        "model vdp\nfield p\nfield q\nparam mu = 20\ndp/dt = q\ndq/dt = mu*((1 - p^2)*q) - p\ninitial p = 2\ninitial q = 0"

/// Robertson's kinetics (ROBER) in every cell of a 1-D grid with mild diffusion: stiff once the fast reactions
/// equilibrate, so Auto switches to Rodas4.
let internal roberGrid =
    Parse.model
        "model robergrid\ndomain interval [0, 1] cells 12\nfield a\nfield b\nfield c\nparam D = 0.01\nparam k1 = 0.04\nda/dt = D*lap(a) - k1*a + 1e4*b*c\ndb/dt = D*lap(b) + k1*a - 1e4*b*c - 3e7*b^2\ndc/dt = D*lap(c) + 3e7*b^2\nboundary a noflux\nboundary b noflux\nboundary c noflux\ninitial a = 1 + 0.1*cos(6.283185307179586*x)\ninitial b = 0\ninitial c = 0"

/// `ArakawaKernelTests.tracers` on `n` cells with tracers q and p that vary between every two cells (q without its
/// plateau, p's cosine shifted off the grid's symmetry): where a tracer is flat to round-off the limiter's branch, and
/// so the step and its gradient, is round-off's choice (`ArakawaKernelTests`).
let private varyingTracers (n: int) =
    ArakawaKernelTests.tracers n
    |> Model.setInitial "q" (InitialCondition.Expr(0.5 + 0.3 * Apply(Fn.Sin, 9.0 * Sym "x" + 0.4)))
    |> Model.setInitial "p" (InitialCondition.Expr(0.4 + 0.3 * Apply(Fn.Cos, 2.0 * System.Math.PI * Sym "x" + 0.3)))

/// 1-D flux advection without the limiter's kinks: a tracer q increasing along x, carried by a positive velocity u
/// (diffusing between a Dirichlet and a no-flux end), with logistic growth; q enters at a Dirichlet wall and leaves at
/// a Neumann one. Every slope ratio stays positive, where van Leer's limiter is smooth, so Rodas4's step control
/// follows the model, not round-off (where a slope crosses zero the limiter's kink makes it reject step after step,
/// and the two back ends' solves, dense and BiCGSTAB, can tip a step either way).
let private risingTracer =
    Parse.model
        "model rising\ndomain interval [0, 1] cells 16\nfield u\nfield q\nparam D = 0.02\nparam k = 0.5\ndu/dt = D*lap(u)\ndq/dt = -advectFlux(u, q) + k*q*(1 - q)\nboundary u noflux\nboundary u left dirichlet 0.6\nboundary q neumann 0.1\nboundary q left dirichlet 0.2\ninitial u = 0.6 + 0.2*sin(7*x)\ninitial q = 0.2 + 0.5*x"

/// `KernelTests.twoScale` (two-scale Lorenz-96, K = 8, J = 4: 40 unknowns) from X = F + sin k, Y = 0.1 cos n.
let private lattice =
    KernelTests.twoScale
    |> Model.setInitial "X" (InitialCondition.Expr(10.0 + Apply(Fn.Sin, Sym "x")))
    |> Model.setInitial "Y" (InitialCondition.Expr(0.1 * Apply(Fn.Cos, Sym "x")))

/// Lorenz-96 (K = 8) whose fast ring (J = 4) relaxes at rate g = 5000 towards 0.1 X of its slow site, coupled back
/// through Σⱼ: stiff for Dopri5 (|λ| = 5000, where the slow ring's own rates are ~50), so Auto switches to Rodas4.
let private slavedLattice =
    let X, Y = Sym "X", Sym "Y"

    Model.empty "l96_slaved"
    |> Model.withDomain (Domain.Lattice(8, 4))
    |> Model.addField (Model.field "X")
    |> Model.addField { Model.field "Y" with Fast = true }
    |> Model.addParam (Model.param "F" 8.0)
    |> Model.addParam (Model.param "g" 5000.0)
    |> Model.addEquation
        "X"
        ((Expr.shiftK "X" 1 - Expr.shiftK "X" -2) * Expr.shiftK "X" -1 - X + Sym "F"
         - 0.1 * FastSum Y)
    |> Model.addEquation "Y" (Neg(Sym "g") * (Y - 0.1 * X) + 0.01 * Expr.shiftJ "Y" 1)
    |> Model.setInitial "X" (InitialCondition.Expr(8.0 + Apply(Fn.Sin, Sym "x")))
    |> Model.setInitial "Y" (InitialCondition.Expr(Num 0.0))

/// The largest difference relative to b's largest magnitude.
let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-300 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

/// The networks of `plan`'s closure sites, one per site, from the eager simulator `sim`.
let internal modulesOf (sim: Simulator) (plan: KernelPlan) =
    plan.Sites
    |> Array.map (fun site -> sim.Modules |> Array.find (fun (name, _) -> name = site.Name) |> snd)

/// The weights of `sim`'s networks, each network once, in the order of the kernels' `ClosureGradients`.
let private weightsOf (sim: Simulator) =
    sim.Modules
    |> Array.distinctBy fst
    |> Array.collect (fun (_, m) -> m.parameters () |> Seq.map (fun p -> p :> torch.Tensor) |> Array.ofSeq)

/// Gradients from `torch.autograd.grad` with unused inputs as zeros.
let private gradsOrZeros (outputs: torch.Tensor[]) (inputs: torch.Tensor[]) =
    torch.autograd.grad (outputs, inputs, retain_graph = true, allow_unused = true)
    |> Seq.mapi (fun i g ->
        if isNull g || g.IsInvalid then
            torch.zeros_like inputs[i]
        else
            g)
    |> Array.ofSeq

/// `fisherWithKill` (a neural closure kill(u, x) per cell) on 32 cells with D = 0.5: D/Δx² = 512, stiff.
let internal stiffKill =
    let m =
        Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()
        |> Model.withDomain (Domain.Interval(0.0, 1.0, 32))

    {
        m with
            Params =
                m.Params
                |> List.map (fun p -> if p.Name = "D" then { p with Value = 0.5 } else p)
    }

/// `planeOf` 6 × 7 with a neural closure: ∂u/∂t gains −kill(u, v, y)·u.
let private planeWithKill =
    let m =
        planeOf 6 7
        |> Model.addClosure {
            Name = "kill"
            Arity = 3
            Architecture = Architecture.Mlp([ 3; 6; 1 ], Activation.Tanh)
            Units = None
        }

    let kill = Mul(Call("kill", [ Sym "u"; Sym "v"; Sym "y" ]), Sym "u")

    {
        m with
            Equations =
                m.Equations
                |> List.map (fun eq -> {
                    eq with
                        Rhs = if eq.Field = "u" then Sub(eq.Rhs, kill) else eq.Rhs
                })
    }

/// The tangent plan of `model` against autograd of the eager right-hand side at a random state u, direction d and
/// cotangent λ (2 trajectories, t = 0.3): J d, Jᵀλ, ∂/∂u [λᵀ J d], ∂/∂θ [λᵀ J d] and, through neural closures (their
/// networks' JVPs, `TangentNetwork`), ∂/∂w [λᵀ J d] for the networks' weights w, to 1e-12.
let internal tangentAgrees (model: Model) =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let sim = compile Backend.Eager model
    let plan = Lowering.lowerWith false (ResolvedSystem.ofModel model)
    let weights = weightsOf sim
    let n = plan.Fields.Length
    let t = 0.3
    let gen = new torch.Generator(7UL)

    let random (like: torch.Tensor) =
        torch.randn (like.shape, dtype = f64, generator = gen) * 0.3

    let u0 =
        sim.Initial 2
        |> Array.map (fun x -> (x.detach () + random x).requires_grad_ true)

    let d = u0 |> Array.map random
    let lambda = u0 |> Array.map random

    let theta =
        sim.Theta() |> Array.map (fun p -> p.detach().clone().requires_grad_ true)

    // Autograd: w ↦ Jᵀw with a graph, then J d = ∂/∂w ⟨Jᵀw, d⟩ and the second-order terms of ⟨Jᵀλ, d⟩.
    let out = Dynamics.total sim.Dynamics theta t u0

    let vjp (seed: torch.Tensor[]) =
        torch.autograd.grad (out, u0, seed, retain_graph = true, create_graph = true, allow_unused = true)
        |> Seq.mapi (fun i g ->
            if isNull g || g.IsInvalid then
                torch.zeros_like u0[i]
            else
                g)
        |> Array.ofSeq

    let inner (a: torch.Tensor[]) (b: torch.Tensor[]) =
        Array.map2 (fun (x: torch.Tensor) (y: torch.Tensor) -> (x * y).sum ()) a b
        |> Array.reduce (.+)

    let w = out |> Array.map (fun x -> torch.zeros_like(x).requires_grad_ true)

    let jd =
        torch.autograd.grad ([| inner (vjp w) d |], w, retain_graph = true)
        |> Array.ofSeq

    let jtl = vjp lambda
    let second = inner jtl d

    let grads = gradsOrZeros [| second |] (Array.concat [ u0; theta; weights ])

    // Kernels: the tangent plan's forward and adjoint at (u, d).
    let tangent = TangentPlan.create plan

    let stepper =
        Stepper<float>(tangent, Tableau.ofScheme Scheme.Euler, 2, TangentPlan.networks plan (modulesOf sim plan), [||])

    let detached = Array.append u0 d |> Array.map (fun x -> x.detach ())
    let values, thetaVector = Kernels.pack tangent detached theta
    let thetaValues = thetaVector.data<float>().ToArray()
    let state = StateLayout.toFields stepper (values.data<float>().ToArray()) 0
    stepper.FillGhosts(state, thetaValues, t)
    let output = stepper.NewState()
    stepper.Rhs(state, thetaValues, t, output)

    let cotangent =
        StateLayout.toFields
            stepper
            ((fst (Kernels.pack tangent (Array.append lambda lambda) theta)).data<float>().ToArray())
            0

    for f in 0 .. n - 1 do
        System.Array.Clear cotangent[f]

    let stateAdjoint = stepper.NewState()
    let thetaAdjoint = Array.zeroCreate<float> thetaValues.Length
    stepper.RhsAdjoint(state, thetaValues, t, cotangent, stateAdjoint, thetaAdjoint)

    // Per trajectory the fields one after the other, each with its own cells (a fast field on a lattice's ring).
    let fieldsOf (padded: float[][]) =
        let flat = StateLayout.ofFields stepper padded
        let sizes = Array.init (2 * n) (KernelPlan.cells tangent)
        let offsets = Array.scan (+) 0 sizes
        let total = flat.Length / 2

        Array.init (2 * n) (fun f ->
            let cells = sizes[f]

            torch.tensor (
                Array.init (2 * cells) (fun i -> flat[(i / cells) * total + offsets[f] + i % cells]),
                dtype = f64
            ))

    let kernelOut, kernelAdjoint = fieldsOf output, fieldsOf stateAdjoint

    for f in 0 .. n - 1 do
        let check (name: string) (got: torch.Tensor) (expected: torch.Tensor) =
            let e = expected.detach().reshape (-1L)
            let diff = maxRelative got e
            Expect.isLessThan diff 1e-12 $"{model.Name}: {name} of field {f} ({diff:G3})"

        check "J d" kernelOut[n + f] jd[f]
        check "Jᵀλ" kernelAdjoint[n + f] jtl[f]
        check "∂/∂u λᵀJd" kernelAdjoint[f] grads[f]

    let thetaExpected =
        torch.cat (
            grads[n .. n + theta.Length - 1]
            |> Array.map (fun g -> g.detach().reshape (-1L)),
            0L
        )

    let diff = maxRelative (torch.tensor (thetaAdjoint, dtype = f64)) thetaExpected
    Expect.isLessThan diff 1e-12 $"{model.Name}: ∂/∂θ λᵀJd ({diff:G3})"

    let kernelWeights = Array.concat stepper.ClosureGradients
    Expect.equal kernelWeights.Length weights.Length "one gradient per weight"

    // A CNN's output bias shifts F, not J: its second-order terms are 0 (every other weight's are not).
    let read =
        grads[n + theta.Length ..]
        |> Array.filter (fun g -> g.abs().max().ToDouble() > 0.0)
        |> Array.length

    let networks = sim.Modules |> Array.distinctBy fst |> Array.length

    Expect.isGreaterThanOrEqual read (weights.Length - networks) "the products read every weight but the output biases"

    for w in 0 .. weights.Length - 1 do
        let expected = grads[n + theta.Length + w]
        let diff = maxRelative kernelWeights[w] expected
        Expect.isLessThan diff 1e-12 $"{model.Name}: ∂/∂w λᵀJd, weight {w} ({diff:G3})"

/// One Rodas4 step of the kernels (h = 0.05 from t = 0.1, 2 trajectories) of `model`, L = ⟨w, next⟩: the new state
/// equals the eager step's (`Rosenbrock`) to 1e-13; the adjoint's ⟨∂L/∂u, v⟩ and ⟨∂L/∂θ, p⟩ in random directions equal
/// Richardson-extrapolated central differences of the kernel step to 1e-8 relative; ∂L/∂u and ∂L/∂θ equal the eager
/// step's autograd gradients to 1e-8. Not closer: the eager step always forms ∂F/∂t = (F(t + δ, u) − F(t, u))/δ
/// (δ ≈ 1e-8), whose gradient is exactly 0 here but reaches u and θ as two terms of size ±(1/δ)·O(h²) that cancel
/// only to round-off (measured: the eager gradient is off the extrapolated differences by 1.3e-7 relative at h = 0.2,
/// 2e-11 at h = 0.02, 2e-13 at h = 0.002, while the kernel's stays within the differences' own accuracy).
///
/// `stepAdjointWithin` takes the tolerances on the new state and on the differences, and for BiCGSTAB the solve
/// tolerance: a stencil wider than the nearest neighbours, which the eager step solves densely (exactly), against the
/// kernels' BiCGSTAB stopped at a relative residual of 1e-14, so that the step is the exact solve's to round-off
/// times A's conditioning; through van Leer's limiter, whose r ↦ 2r/(1 + r) has large higher derivatives where a
/// slope ratio r is small, the extrapolated differences themselves are good to about 1e-8 only (measured: 1.06e-8
/// off the kernels' gradient, which equals the eager autograd gradient to 6.5e-11).
/// `stepAdjointOn` takes the stepper from `make` (the plan, the networks) and returns it.
let internal stepAdjointOn
    (stateTolerance: float)
    (differenceTolerance: float)
    (solveTolerance: float option)
    (make: KernelPlan -> torch.nn.Module<torch.Tensor, torch.Tensor>[] -> RosenbrockStepper)
    (model: Model)
    =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let sim = compile Backend.Eager model
    let plan = Lowering.lowerWith false (ResolvedSystem.ofModel model)
    let rosenbrock = make plan (modulesOf sim plan)
    let stepper = rosenbrock :> IStepper<float>

    let tolerances =
        Array.create plan.Fields.Length { Relative = 1e-6; Absolute = 1e-9 }
    // BiCGSTAB (2-D) stops where the eager step's does.
    rosenbrock.SolveTolerance <- defaultArg solveTolerance (StepControl.solveTolerance tolerances f64)
    let values, thetaVector = Kernels.pack plan (sim.Initial 2) (sim.Theta())
    let u = StateLayout.toFields stepper (values.data<float>().ToArray()) 0
    let theta = thetaVector.data<float>().ToArray()
    let rng = System.Random 5
    let flat = StateLayout.ofFields stepper

    let dot (a: float[]) (b: float[]) =
        Array.fold2 (fun acc x y -> acc + x * y) 0.0 a b

    let randomLike (x: float[][]) =
        StateLayout.toFields stepper (Array.init (flat x).Length (fun _ -> rng.NextDouble() - 0.5)) 0

    let w, v = randomLike u, randomLike u
    let p = Array.init theta.Length (fun _ -> rng.NextDouble() - 0.5)
    let t, h = 0.1, 0.05

    let loss (u: float[][]) (theta: float[]) =
        let next = stepper.NewState()
        stepper.Step(u, theta, t, h, next)
        dot (flat w) (flat next)

    /// Central differences of e ↦ L at ε and ε/2, extrapolated (error O(ε⁴)).
    let richardson (at: float -> float) =
        let central (e: float) = (at e - at -e) / (2.0 * e)
        (4.0 * central 5e-4 - central 1e-3) / 3.0

    let lambda = stepper.NewState()
    let thetaAdjoint = Array.zeroCreate theta.Length
    stepper.StepAdjoint(u, theta, t, h, w, lambda, thetaAdjoint)

    let shifted (e: float) =
        Array.map2 (Array.map2 (fun a b -> a + e * b)) u v

    let du = richardson (fun e -> loss (shifted e) theta)

    let differences = {
        absolute = 0.0
        relative = differenceTolerance
    }

    Expect.floatClose differences (dot (flat lambda) (flat v)) du $"{model.Name}: ⟨∂L/∂u, v⟩"

    let dtheta =
        richardson (fun e -> loss u (Array.map2 (fun a b -> a + e * b) theta p))

    Expect.floatClose differences (dot thetaAdjoint p) dtheta $"{model.Name}: ⟨∂L/∂θ, p⟩"

    // The closure weights w in a random direction q (moved in place and back).
    let weights = weightsOf sim
    let weightGradients = Array.concat stepper.ClosureGradients

    if weights.Length > 0 then
        let q = weights |> Array.map (fun w -> torch.rand_like w - 0.5)

        let move (e: float) =
            use _ = torch.no_grad ()

            for w in 0 .. weights.Length - 1 do
                weights[w].add_ (q[w], e) |> ignore

        let dw =
            richardson (fun e ->
                move e
                let l = loss u theta
                move -e
                l)

        let projected =
            Array.map2 (fun (g: torch.Tensor) (x: torch.Tensor) -> (g * x).sum().ToDouble()) weightGradients q
            |> Array.sum

        Expect.floatClose differences projected dw $"{model.Name}: ⟨∂L/∂w, q⟩"

    // The eager step under autograd.
    let u0 =
        sim.Initial 2 |> Array.map (fun x -> x.detach().clone().requires_grad_ true)

    let thetaT =
        sim.Theta() |> Array.map (fun x -> x.detach().clone().requires_grad_ true)

    let eager = Rosenbrock.method sim.Dynamics thetaT true tolerances u0

    let eagerNext =
        (fst (Kernels.pack plan (eager.Attempt t h u0 [||]).Next thetaT)).reshape (-1L)

    let next = stepper.NewState()
    stepper.Step(u, theta, t, h, next)
    let tensor (x: float[]) = torch.tensor (x, dtype = f64)
    let d = maxRelative (tensor (flat next)) eagerNext
    Expect.isLessThan d stateTolerance $"{model.Name}: the eager step's new state ({d:G3})"

    let grads =
        gradsOrZeros [| (eagerNext * tensor (flat w)).sum () |] (Array.concat [ u0; thetaT; weights ])

    let gu = (fst (Kernels.pack plan grads[.. u0.Length - 1] thetaT)).reshape (-1L)

    let gtheta =
        torch.cat (
            grads[u0.Length .. u0.Length + thetaT.Length - 1]
            |> Array.map (fun g -> g.reshape (-1L)),
            0L
        )

    let eu, etheta =
        maxRelative (tensor (flat lambda)) gu, maxRelative (tensor thetaAdjoint) gtheta

    Expect.isLessThan eu 1e-8 $"{model.Name}: the eager step's ∂L/∂u ({eu:G3})"
    Expect.isLessThan etheta 1e-8 $"{model.Name}: the eager step's ∂L/∂θ ({etheta:G3})"

    for i in 0 .. weights.Length - 1 do
        let ew = maxRelative weightGradients[i] grads[u0.Length + thetaT.Length + i]
        Expect.isLessThan ew 1e-8 $"{model.Name}: the eager step's ∂L/∂w, weight {i} ({ew:G3})"

    rosenbrock

let internal stepAdjointWithin stateTolerance differenceTolerance solveTolerance (denseUpTo: int) model =
    stepAdjointOn
        stateTolerance
        differenceTolerance
        solveTolerance
        (fun plan modules -> RosenbrockStepper(plan, 2, modules, [||], denseUpTo))
        model
    |> ignore

let internal stepAdjointAgrees = stepAdjointWithin 1e-13 1e-8 None Jacobian.maxDense

/// Rodas4 at relative tolerance `rtol` (absolute 1e-3·rtol), first step `dt`.
let internal rodas (rtol: float) (dt: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = Scheme.Rodas4
        Dt = dt
        SaveTimes = saves
        Tolerance = {
            Relative = rtol
            Absolute = 1e-3 * rtol
        }
}

/// A Rodas4 rollout `o` (rtol 1e-6) of `sim` (Backend.Auto) above the eager back end's dense limit: the eager back end
/// refuses it (its dense Jacobian), the kernels run it, within 10 × the relative tolerance of a Dopri5 run at 1e-11.
/// Two trajectories, the second's start scaled by 0.9, so that the iterative solves' systems differ between them.
let internal beyondDenseLimit (sim: Simulator) (o: RolloutOptions) =
    let eager = compile Backend.Eager sim.Model

    let refused =
        Expect.throwsC (fun () -> eager.Simulate(eager.Initial 1, o) |> ignore) (fun e -> e.Message)

    Expect.stringContains refused "above the limit of 1000" "the eager back end's dense Jacobian is refused"

    let u0 =
        sim.Initial 2
        |> Array.map (fun x ->
            let y = x.detach().clone ()
            y.narrow(0L, 1L, 1L).mul_ (torch.tensor (0.9, dtype = y.dtype)) |> ignore
            y)

    let rodas4 = sim.Simulate(u0, o)
    Expect.equal rodas4.Backend Backend.Kernels "the kernels ran"

    let reference =
        sim.Simulate(
            u0,
            {
                o with
                    Scheme = Scheme.Dopri5
                    Tolerance = { Relative = 1e-11; Absolute = 1e-14 }
            }
        )

    for f in 0 .. rodas4.Values.Length - 1 do
        let d = maxRelative rodas4.Values[f] reference.Values[f]
        Expect.isLessThan d (10.0 * o.Tolerance.Relative) $"{sim.Model.Name}: field {f} ({d:G3})"

/// Auto on `model` with options `o` on the kernels and the eager back end (no gradients): both switch to Rodas4 at the
/// same step and take the same steps, values to 1e-10; then with gradients (`agreesWithin`, at least `minSteps`
/// accepted steps): the replay takes Dopri5's and Rodas4's adjoints on the steps each took.
let internal autoAgrees (model: Model) (o: RolloutOptions) (minSteps: int) =
    Engine.init ()
    use _ = torch.NewDisposeScope()

    let run (backend: Backend) =
        use _ = torch.no_grad ()
        let sim = compile backend model
        let traj = sim.Simulate(sim.Initial 1, o)
        traj.Backend, Rollout.lastSteps (), traj.Values, Rollout.lastAuto ()

    let ranK, stepsK, valuesK, autoK = run Backend.Auto
    let ranE, stepsE, valuesE, autoE = run Backend.Eager
    Expect.equal ranK Backend.Kernels "the kernels ran"
    Expect.equal ranE Backend.Eager "the eager back end ran"
    Expect.stringContains autoK "then Rodas4" "it turned stiff"
    Expect.equal autoK autoE $"switched at the same step (kernels: {autoK} eager: {autoE})"
    Expect.equal stepsK stepsE "the same accepted and rejected steps"

    for f in 0 .. valuesK.Length - 1 do
        let d = maxRelative valuesK[f] valuesE[f]
        Expect.isLessThan d 1e-10 $"field {f} ({d:G3})"

    agreesWithin 1e-10 1e-8 compile model o minSteps false

let tests =
    testList "Rosenbrock kernels" [
        test "the tangent plan's J d and second-order adjoint equal autograd's on a 1-D stencil with Dirichlet walls" {
            tangentAgrees brusselator
        }

        test "the tangent plan equals autograd on a periodic 1-D stencil with nonlinear diffusion" {
            tangentAgrees periodic
        }

        test "the tangent plan equals autograd on a 2-D stencil" { tangentAgrees (planeOf 5 6) }

        test
            "the tangent plan through a neural closure (its network's JVP) equals autograd in 1-D and 2-D, weights included" {
            tangentAgrees (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
            tangentAgrees planeWithKill
        }

        test
            "one Rodas4 step with a neural closure: the eager new state, its adjoint (weights too) against differences and eager autograd" {
            stepAdjointAgrees (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
            stepAdjointAgrees planeWithKill
        }

        test
            "Rodas4 with a neural closure in 1-D: kernels take the eager steps, values to 1e-10, gradients (weights too) to 1e-8" {
            agreesWithin
                1e-10
                1e-8
                compile
                (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
                (rodas 1e-6 0.01 [| 0.1; 0.3 |])
                4
                false
        }

        test
            "Rodas4 with a neural closure in 2-D (BiCGSTAB): the eager steps, values and gradients (weights too) to 1e-8" {
            agreesWithin 1e-8 1e-8 compile planeWithKill (rodas 1e-6 0.01 [| 0.3 |]) 4 false
        }

        test
            "Auto with a neural closure on a stiff grid: Dopri5, then Rodas4 where the eager back end switches; gradients to 1e-8" {
            autoAgrees
                stiffKill
                {
                    rodas 1e-6 1e-4 [| 0.1; 0.3 |] with
                        Scheme = Scheme.Auto
                }
                8
        }

        test
            "the tangent plan equals autograd through flux advection (1-D: walls, periodic, a moving velocity) and Arakawa's Jacobian (2-D: corners, walls)" {
            tangentAgrees (varyingTracers 12)
            tangentAgrees (ArakawaKernelTests.vortex 6 7 3.0)
            tangentAgrees (ArakawaKernelTests.channel true 6 7)
        }

        test
            "one Rodas4 step on stencils wider than the nearest neighbours (BiCGSTAB): the eager dense step, its adjoint against differences and eager autograd" {
            stepAdjointWithin 1e-11 5e-8 (Some 1e-14) Jacobian.maxDense (varyingTracers 12)
            stepAdjointWithin 1e-11 1e-8 (Some 1e-14) Jacobian.maxDense (ArakawaKernelTests.vortex 6 7 3.0)
            // Its walls move with t: the step's ∂F/∂t by a forward difference (δ ≈ 1e-8) puts round-off of ~1e-8 of
            // the step's size into the differences (measured: 1.5e-8 off the kernels' gradient, which equals the
            // eager autograd gradient to 1e-11).
            stepAdjointWithin 1e-11 1e-7 (Some 1e-14) Jacobian.maxDense (ArakawaKernelTests.channel false 7 6)
        }

        test
            "Rodas4 with flux advection and Arakawa's Jacobian: the kernels take the eager (dense) steps, values and gradients to 1e-8" {
            let o = rodas 1e-6 0.01 [| 0.05; 0.15 |]
            agreesWithin 1e-8 1e-8 compile risingTracer o 4 false
            agreesWithin 1e-8 1e-8 compile (ArakawaKernelTests.channel true 6 7) o 4 false
            // The smallest grid its reach (2 cells) allows, over fewer steps: the eager back end's dense Jacobian by
            // autograd (75 backward passes per step) dominates the test's time. Gradients to 1e-7: the kernels'
            // BiCGSTAB stops at a relative residual of 1e-9 (rtol 1e-6) where the eager solve is exact, which moves
            // ∂L/∂ψ₀ by 6.2e-8 (measured; 1e-9 with BiCGSTAB stopped at 1e-14).
            agreesWithin 1e-8 1e-7 compile (ArakawaKernelTests.vortex 5 5 3.0) (rodas 1e-6 0.01 [| 0.05 |]) 4 false
        }

        test "the tangent plan equals autograd on a two-scale lattice (the fast ring, Σⱼ, shifts across the rings)" {
            tangentAgrees lattice
        }

        test
            "one Rodas4 step on a two-scale lattice, dense and as a ring of slow-site blocks (BiCGSTAB): the eager new state, its adjoint against differences and eager autograd" {
            stepAdjointAgrees lattice
            // The ring: blocks of X and its 4 fast sites, coupled 2 slow sites away; BiCGSTAB stopped at 1e-14.
            stepAdjointWithin 1e-11 1e-8 (Some 1e-14) 0 lattice
        }

        test
            "Rodas4 and Auto (switching on a stiff fast ring) on two-scale lattices: the kernels take the eager steps, values to 1e-10, gradients to 1e-8" {
            let o = rodas 1e-6 0.01 [| 0.02; 0.05 |]
            agreesWithin 1e-10 1e-8 compile lattice o 4 false

            autoAgrees
                slavedLattice
                {
                    rodas 1e-4 1e-3 [| 0.1; 0.3 |] with
                        Scheme = Scheme.Auto
                }
                8
        }

        test
            "two-scale lattices on the kernels at any size: the catalogue's Lorenz-96 (396 unknowns, dense) and 1,240 unknowns (BiCGSTAB on the ring) within the tolerance of a tight Dopri5 run; too few slow sites for the ring's blocks (1,204 unknowns) matrix-free" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()
            let sim = compile Backend.Auto Examples.lorenz96

            for scheme in [ Scheme.Rodas4; Scheme.Auto ] do
                Expect.equal
                    (sim.BackendFor {
                        rodas 1e-6 0.01 [| 0.1 |] with
                            Scheme = scheme
                    })
                    (Backend.Kernels, "")
                    $"{scheme} on the kernels"

            let large =
                compile Backend.Auto (lattice |> Model.withDomain (Domain.Lattice(40, 30)))

            // Measured: 4.6e-8 (X), 7.2e-7 (Y).
            beyondDenseLimit large (rodas 1e-6 0.01 [| 0.1 |])

            // 4 slow sites for a reach of 2 fit no block of the ring: 1,204 unknowns, solved matrix-free.
            let few =
                compile Backend.Auto (Examples.lorenz96 |> Model.withDomain (Domain.Lattice(4, 300)))

            Expect.equal (few.BackendFor(rodas 1e-6 0.01 [| 0.1 |])) (Backend.Kernels, "") "on the kernels"
            beyondDenseLimit few (rodas 1e-6 0.01 [| 0.1 |])
        }

        test
            "Rodas4 beyond the eager back end's dense limit (a 20 × 20 vortex, 1,200 unknowns): the kernels run it, within the tolerance of a tight Dopri5 run" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()
            // Measured: 1e-9 (ω, ψ), 2.7e-6 (q, through the limiter).
            beyondDenseLimit (compile Backend.Auto (ArakawaKernelTests.vortex 20 20 3.0)) (rodas 1e-6 0.01 [| 0.2 |])
        }

        test
            "Rodas4 solves densely where the stencil does not fit the grid (2r + 1 cells along an axis): the eager steps, values to 1e-10, gradients to 1e-8; matrix-free above 1,000 unknowns" {
            let reaction (domain: string) (walls: string) =
                Parse.model (
                    $"model rd\ndomain {domain}\nfield u\nfield v\nparam D = 0.5\ndu/dt = D*lap(u) + 1 - 4*u + u*u*v\ndv/dt = D*lap(v) + 3*u - u*u*v\nboundary u {walls}\nboundary v {walls}\ninitial u = 1 + 0.5*sin(6.283185307179586*x)\ninitial v = 3 - 0.5*x"
                )

            // The nearest neighbours reach 1 cell: 2 cells along an axis fit no block row of 3.
            for model in
                [
                    reaction "interval [0, 1] cells 2" "periodic"
                    reaction "rectangle [0, 1] x [0, 1] cells 5 x 2" "noflux"
                ] do
                agreesWithin 1e-10 1e-8 compile model (rodas 1e-6 0.01 [| 0.5; 1.0 |]) 4 false

                Expect.equal
                    ((compile Backend.Auto model).BackendFor {
                        rodas 1e-6 0.01 [| 0.1 |] with
                            Scheme = Scheme.Auto
                    })
                    (Backend.Kernels, "")
                    "Auto too"

            // 2 × 300 cells, two fields: 1,200 unknowns, above the dense limit: solved matrix-free.
            let long =
                compile Backend.Auto (reaction "rectangle [0, 1] x [0, 1] cells 2 x 300" "noflux")

            for scheme in [ Scheme.Rodas4; Scheme.Auto ] do
                Expect.equal
                    (long.BackendFor {
                        rodas 1e-6 0.01 [| 0.1 |] with
                            Scheme = scheme
                    })
                    (Backend.Kernels, "")
                    $"{scheme} on the kernels"

            // A 1-D grid of 2 cells solved matrix-free, one step against the eager dense step.
            stepAdjointWithin 1e-11 1e-8 (Some 1e-14) 0 (reaction "interval [0, 1] cells 2" "periodic")
            use _ = torch.no_grad ()
            beyondDenseLimit long (rodas 1e-6 0.01 [| 0.1; 0.3 |])
        }

        test "one Rodas4 step: the eager new state, its adjoint against extrapolated differences and eager autograd" {
            stepAdjointAgrees brusselator
            stepAdjointAgrees periodic
            stepAdjointAgrees (planeOf 5 6)
        }

        test "Rodas4 on a 1-D Brusselator: kernels take the eager steps, values to 1e-10, gradients to 1e-8" {
            agreesWithin 1e-10 1e-8 compile brusselator (rodas 1e-6 0.05 [| 0.0; 0.3; 0.77; 1.5 |]) 8 true
        }

        test "Rodas4 on a periodic 1-D model with nonlinear diffusion: values to 1e-10, gradients to 1e-8" {
            agreesWithin 1e-10 1e-8 compile periodic (rodas 1e-7 0.01 [| 0.2; 0.5 |]) 8 false
        }

        test "Rodas4 with a forcing (∂F/∂t by the forward difference): values to 1e-10, gradients to 1e-8" {
            agreesWithin 1e-10 1e-8 compile forcedFisher (rodas 1e-6 0.01 [| 0.07; 0.3 |]) 4 false
        }

        test "Rodas4 on 2-D reaction–diffusion (BiCGSTAB): the eager steps, values and gradients to 1e-8" {
            agreesWithin 1e-8 1e-8 compile (planeOf 8 9) (rodas 1e-6 0.01 [| 0.3; 1.0 |]) 4 false
        }

        test "Rodas4 with gradients on a point system: kernels take the eager steps, values to 1e-10, gradients to 1e-8" {
            agreesWithin 1e-10 1e-8 compile vanDerPol (rodas 1e-6 0.01 [| 0.5; 2.0 |]) 8 false
        }

        test "Auto on a grid: Dopri5 until the stiffness test switches where the eager back end's does, then Rodas4" {
            autoAgrees
                roberGrid
                {
                    rodas 1e-5 1e-4 [| 0.5; 5.0 |] with
                        Scheme = Scheme.Auto
                        Tolerance = { Relative = 1e-5; Absolute = 1e-10 }
                }
                20
        }
    ]
