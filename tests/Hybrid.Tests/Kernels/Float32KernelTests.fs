/// The float32 generated kernels (`Precision.Float32`: Codegen's loops over `Vector<float32>`, the explicit stepper,
/// its adjoint, ghosts and tape on float32 arrays) against the eager compiled simulator in float32 and against the
/// float64 kernels, values and gradients, within a bound derived from float32's machine epsilon; and evidence that
/// the path computes in float32: it reports Float32, and it differs from the float64 kernels rounded to float32 (which
/// is exactly what the float64-internal path returns) by more than one rounding. 1-D and 2-D, split over the worker
/// pool or not, with and without checkpoints; neural closures (per cell and over whole fields) and diagnostic
/// fields, their networks and solves in float32 too.
module Hybrid.Tests.Kernels.Float32KernelTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Kernels

let private f32, f64 = torch.ScalarType.Float32, torch.ScalarType.Float64

/// float32's machine epsilon, 2⁻²³ ≈ 1.19e-7 (the gap between 1 and the next float32).
let private eps32 = float (System.MathF.BitIncrement 1.0f - 1.0f)

/// The bound on the relative difference of two float32 rollouts of `steps` RK4 steps (or of one and the exact
/// float64 one): each step rounds every value a few times per stage (4 stages: ≤ 8 roundings of relative size eps
/// each, amplified by at most the step's condition, ≈ 1 for these diffusive steps), and the errors add up over the
/// steps, so 8·steps·eps; the gradients run the steps twice (forward, adjoint) and sum over the cells (the θ
/// gradients: log₂(cells) levels of pairwise-ish sums), so twice that plus log₂(cells)·eps.
let private bound (steps: int) = 8.0 * float steps * eps32

let private gradientBound (steps: int) (cells: int) =
    2.0 * bound steps + System.Math.Log2(float cells) * eps32

type private Case = {
    Name: string
    /// The model, with its initial conditions; its parameters' values are those `Compiler.compile` gives them.
    Model: Model
    Batch: int
    Dt: float
    Steps: int
}

let private u, x = Sym "u", Sym "x"

/// Fisher–KPP in flux form with no-flux walls, n cells on [0, 1]: a moving front.
let private fisher (n: int) (batch: int) = {
    Name = $"1-D Fisher–KPP, {n} cells, batch {batch}"
    Model =
        Model.empty "fisher32"
        |> Model.withDomain (Domain.Interval(0.0, 1.0, n))
        |> Model.addField (Model.field "u")
        |> Model.addParam (Model.param "D" 1e-3)
        |> Model.addParam (Model.param "r" 2.0)
        |> Model.addEquation "u" (Add(Divergence(Mul(Sym "D", Grad u)), Mul(Mul(Sym "r", u), Sub(Num 1.0, u))))
        |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
        |> Model.setInitial "u" (InitialCondition.Expr(0.2 + 0.7 * Apply(Fn.Exp, -80.0 * PowInt(x - 0.4, 2))))
    Batch = batch
    Dt = min 0.01 (0.25 / (1e-3 * float (n * n)))
    Steps = 20
}

/// `SimdKernelTests.plane`: two fields on a 2-D grid with nonlinear diffusion, a spatial parameter, ∂x and ∂y,
/// coordinates, moving Dirichlet, Neumann and periodic boundaries.
let private plane (nx: int) (ny: int) (batch: int) = {
    Name = $"2-D plane, {nx} × {ny}, batch {batch}"
    Model = SimdKernelTests.plane nx ny
    Batch = batch
    Dt = 0.2 / (0.02 * 1.5 * float (max nx ny) ** 2.0) |> min 0.01
    Steps = 20
}

/// Σ s·w over the saved states, w = 1 + sin(i/50)/2 over the flat index i, in s's dtype: smooth, so that the
/// gradients are well-conditioned sums (weights that alternate from cell to cell make ∂L/∂D a sum of terms of size
/// λ/h² that cancel to a small remainder, which no float32 computation gets to many digits).
let private loss (saved: torch.Tensor[]) =
    saved
    |> Array.mapi (fun f s ->
        let w =
            1.0
            .+ 0.5
               .* (torch.arange (s.numel (), dtype = s.dtype) .* (0.02 + 0.01 * float f)).sin().reshape (s.shape)

        (s * w).sum ())
    |> Array.reduce (fun a b -> a + b)

let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let a, b = a.to_type f64, b.to_type f64
    (a - b).abs().max().ToDouble() / max 1e-300 (b.abs().max().ToDouble())

/// What one rollout gives: the saved states, ∂L/∂θ and ∂L/∂u0, all as float64 copies.
type private Run = {
    Saved: torch.Tensor[]
    Theta: torch.Tensor[]
    U0: torch.Tensor[]
}

/// A rollout of case `c` from its initial state and parameters in `dtype`, saving every 5 steps: on the kernels of
/// `sim` with checkpoints every `segment` steps (Some), or on the eager compiled simulator's right-hand side (None),
/// with the gradients of `loss`.
let private run (c: Case) (dtype: torch.ScalarType) (kernels: (KernelSimulator * int) option) =
    use _ = torch.NewDisposeScope()

    let eagerIn (precision: torch.ScalarType) =
        Hybrid.Compiler.Compiler.compile
            {
                Hybrid.Compiler.Compiler.defaults with
                    Dtype = precision
                    Backend = Backend.Eager
            }
            c.Model

    let compiled = eagerIn f64

    // The model's values; a spatial parameter's made non-uniform (1 + 0.3 sin) so every cell's gradient differs.
    let theta =
        compiled.Theta()
        |> Array.map (fun t ->
            let t = t.detach().clone ()

            let t =
                if t.numel () > 1L then
                    t
                    .* (1.0 .+ 0.3 .* torch.arange(t.numel (), dtype = f64).sin().reshape (t.shape))
                else
                    t

            t.to_type(dtype).requires_grad_ (true))

    let u0 =
        compiled.Initial c.Batch
        |> Array.map (fun t -> t.to_type(dtype).detach().requires_grad_ (true))

    let saved =
        match kernels with
        | Some(sim, segment) -> Kernels.rollout sim u0 theta 0.0 c.Dt c.Steps 5 segment
        | None ->
            let eager = eagerIn dtype
            let rhs = Dynamics.total eager.Dynamics theta
            let saves = ResizeArray<torch.Tensor[]>()
            let mutable state = u0

            for n in 0 .. c.Steps - 1 do
                state <- Integrators.explicitStep Scheme.Rk4 rhs (float n * c.Dt) c.Dt state

                if (n + 1) % 5 = 0 then
                    saves.Add state

            Array.init u0.Length (fun f -> torch.stack (saves |> Seq.map (fun s -> s[f]), 0L))

    (loss saved).backward ()

    let keep (t: torch.Tensor) =
        t.detach().to_type(f64).clone().DetachFromDisposeScope()

    {
        Saved = saved |> Array.map keep
        Theta = theta |> Array.map (fun t -> keep t.grad)
        U0 = u0 |> Array.map (fun t -> keep t.grad)
    },
    saved[0].dtype

/// The float32 kernels' run `k32` against the float64 kernels' `k64` and the eager float32 simulator's `e32`, for
/// every quantity (states, ∂L/∂u0, ∂L/∂θ). Its error against float64 must stay within the eps-derived bound, or,
/// where the quantity is ill-conditioned, within 4× the eager float32 simulator's own error: a θ gradient sums terms
/// of both signs over every cell and step (∂L/∂D with no-flux walls sums a telescoping Laplacian, ≈ 0), so its
/// condition number multiplies every float32 result's error, and eager float32's error against float64 measures that
/// condition (factor 4: the kernels sum in another order, per vector lane then across lanes). The difference from
/// eager float32 is bounded by the sum of the two errors.
let private accurate (what: string) (c: Case) (cells: int) (k32: Run) (e32: Run) (k64: Run) =
    let check (name: string) (limit: float) (k: torch.Tensor) (e: torch.Tensor) (exact: torch.Tensor) =
        let eagerError = maxRelative e exact
        let tolerance = max limit (4.0 * eagerError)
        let kernelError = maxRelative k exact

        printfn
            $"{what}, {c.Name}, {name}: float32 kernels {kernelError:G3}, eager float32 {eagerError:G3}, bound {limit:G3}"

        Expect.isLessThan
            kernelError
            tolerance
            $"{what}: {name} against float64 (eager float32's error {eagerError:G3})"

        Expect.isLessThan (maxRelative k e) (tolerance + eagerError) $"{what}: {name} against eager float32"

    for f in 0 .. k32.Saved.Length - 1 do
        check $"saved states of field {f}" (bound c.Steps) k32.Saved[f] e32.Saved[f] k64.Saved[f]
        check $"∂L/∂u0 of field {f}" (gradientBound c.Steps cells) k32.U0[f] e32.U0[f] k64.U0[f]

    for p in 0 .. k32.Theta.Length - 1 do
        check $"∂L/∂θ{p}" (gradientBound c.Steps cells) k32.Theta[p] e32.Theta[p] k64.Theta[p]

/// Whether `a` and `b` hold the same numbers, bit for bit.
let private same (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().ToDouble() = 0.0

/// The largest difference between `a` and `b` rounded to float32, relative to b's largest value.
let private fromRounded (a: torch.Tensor) (b: torch.Tensor) =
    maxRelative a (b.to_type(f32).to_type f64)

let private agreementTest (c: Case) =
    test
        $"{c.Name}: float32 kernels = float64 kernels and eager float32 within 8·steps·eps₃₂ (or eager float32's own error), computed in float32" {
        Engine.init ()
        let sim = Kernels.compile Scheme.Rk4 c.Model
        let cells = sim.Plan.Cells * c.Batch
        Expect.equal (sim.RolloutPrecision f32) Float32 "a float32 state runs the float32 kernels"
        Expect.equal (sim.RolloutPrecision f64) Float64 "a float64 state runs the float64 kernels"
        let k32, dtype = run c f32 (Some(sim, c.Steps))
        Expect.equal dtype f32 "the result is float32"
        let k64, _ = run c f64 (Some(sim, c.Steps))
        let e32, _ = run c f32 None
        accurate "float32 kernels" c cells k32 e32 k64

        // The float64-internal path returns the float64 kernels' values and gradients rounded to float32, exactly.
        // The float32 path rounds at every operation, so it differs from them by more than one rounding (eps/2).
        let stateGap =
            k32.Saved |> Array.mapi (fun f s -> fromRounded s k64.Saved[f]) |> Array.max

        let gradientGap =
            k32.Theta |> Array.mapi (fun p g -> fromRounded g k64.Theta[p]) |> Array.max

        Expect.isGreaterThan stateGap eps32 "the states differ from the rounded float64 ones by more than a rounding"
        Expect.isGreaterThan gradientGap eps32 "∂L/∂θ differs from the rounded float64 one by more than a rounding"

        // Kernels built on `Vector<float32>` where the default ones run `Vector512<float32>` (`Codegen.narrowly`): the
        // same states and ∂L/∂u0 bit for bit (every cell's value is computed alike), θ's gradients summed over other
        // lanes within the bound.
        let narrow, _ =
            Codegen.narrowly (fun () -> run c f32 (Some(Kernels.compile Scheme.Rk4 c.Model, c.Steps)))

        for f in 0 .. k32.Saved.Length - 1 do
            Expect.isTrue (same narrow.Saved[f] k32.Saved[f]) $"narrow vectors: states of field {f}"
            Expect.isTrue (same narrow.U0[f] k32.U0[f]) $"narrow vectors: ∂L/∂u0 of field {f}"

        for p in 0 .. k32.Theta.Length - 1 do
            Expect.isLessThan
                (maxRelative narrow.Theta[p] k32.Theta[p])
                (gradientBound c.Steps cells)
                $"narrow vectors: ∂L/∂θ{p}"

        // Checkpoints every 3 steps recompute the segments from float32 checkpoints: the same numbers, bit for bit.
        let checkpointed, _ = run c f32 (Some(sim, 3))

        for f in 0 .. k32.Saved.Length - 1 do
            Expect.isTrue (same checkpointed.Saved[f] k32.Saved[f]) $"checkpointed states of field {f}"
            Expect.isTrue (same checkpointed.U0[f] k32.U0[f]) $"checkpointed ∂L/∂u0 of field {f}"

        for p in 0 .. k32.Theta.Length - 1 do
            Expect.isTrue (same checkpointed.Theta[p] k32.Theta[p]) $"checkpointed ∂L/∂θ{p}"
    }

/// A grid large enough to be split over the worker pool (`RowSplit`): the float32 rollout on 1 and on 2 threads
/// gives the same numbers bit for bit (the split depends on the plan, not on the thread count), and agrees with the
/// eager float32 simulator.
let private threadedTest (c: Case) =
    test $"{c.Name}: split over the pool, 1 thread = 2 threads bit for bit, = eager float32" {
        Engine.init ()
        let sim = Kernels.compile Scheme.Rk4 c.Model
        let plan = sim.Plan

        let split = RowSplit.ofPlanWidth (Codegen.widthOf Float32) plan c.Batch

        Expect.isGreaterThan split.Rows.Length 1 "the float32 passes are split"
        let cells = plan.Cells * c.Batch

        let onThreads (threads: int) =
            KernelThreads.useThreads threads

            try
                fst (run c f32 (Some(sim, 7)))
            finally
                KernelThreads.useThreads (KernelThreads.configured ())

        let one, two = onThreads 1, onThreads 2

        for f in 0 .. one.Saved.Length - 1 do
            Expect.isTrue (same one.Saved[f] two.Saved[f]) $"states of field {f}"
            Expect.isTrue (same one.U0[f] two.U0[f]) $"∂L/∂u0 of field {f}"

        for p in 0 .. one.Theta.Length - 1 do
            Expect.isTrue (same one.Theta[p] two.Theta[p]) $"∂L/∂θ{p}"

        accurate "split float32 kernels" c cells two (fst (run c f32 None)) (fst (run c f64 (Some(sim, 7))))
    }

/// A rollout of case `c` through `sim.Simulate` (RK4, saving every 5 steps) from `start` in the simulator's dtype,
/// with the gradients of `loss` with respect to u0 and every trainable tensor (parameters and network weights): the
/// back end that ran, the result's dtype, and the run as float64 copies.
let private simulated (c: Case) (start: torch.Tensor[]) (sim: Hybrid.Compiler.Simulator) =
    use _ = torch.NewDisposeScope()

    for p in sim.Trainable() do
        p.grad <- null

    let u0 =
        start |> Array.map (fun t -> t.to_type(sim.Dtype).detach().requires_grad_ true)

    let o = {
        Rollout.defaults with
            Scheme = Scheme.Rk4
            Dt = c.Dt
            SaveTimes = Array.init (c.Steps / 5) (fun k -> float (5 * (k + 1)) * c.Dt)
    }

    let traj = sim.Simulate(u0, o)
    (loss traj.Values).backward ()

    let keep (t: torch.Tensor) =
        t.detach().to_type(f64).clone().DetachFromDisposeScope()

    traj.Backend,
    traj.Values[0].dtype,
    {
        Saved = traj.Values |> Array.map keep
        Theta = sim.Trainable() |> Array.map (fun p -> keep p.grad)
        U0 = u0 |> Array.map (fun t -> keep t.grad)
    }

/// Float32 models with neural closures and diagnostic fields on the float32 kernels (the networks run in float32, the
/// diagnostic solves in float32): against the float64 kernels and the eager float32 simulator, with the same networks
/// (the float32 simulator's weights copied into the others), values and gradients within the eps-derived bound (or
/// eager float32's own error), and computed in float32 (more than one rounding from the float64 run rounded).
let private closureTest (c: Case) (start: (int -> torch.Tensor[]) option) =
    test
        $"{c.Name}: float32 closures and diagnostic fields run on the float32 kernels = float64 kernels and eager float32, computed in float32" {
        Engine.init ()
        use _ = torch.NewDisposeScope()

        let compileIn (dtype: torch.ScalarType) (backend: Backend) =
            Hybrid.Compiler.Compiler.compile
                {
                    Hybrid.Compiler.Compiler.defaults with
                        Dtype = dtype
                        Backend = backend
                        Seed = 3
                }
                c.Model

        let k32, e32, k64 =
            compileIn f32 Backend.Kernels, compileIn f32 Backend.Eager, compileIn f64 Backend.Kernels

        let copyWeights (target: Hybrid.Compiler.Simulator) =
            use _ = torch.no_grad ()

            for name, m in target.Modules do
                let source = k32.Modules |> Array.find (fun (n, _) -> n = name) |> snd

                Seq.iter2
                    (fun (p: Modules.Parameter) (q: Modules.Parameter) -> p.copy_ (q.to_type p.dtype) |> ignore)
                    (m.parameters ())
                    (source.parameters ())

        copyWeights e32
        copyWeights k64

        let u0 =
            (defaultArg start k64.Initial) c.Batch
            |> Array.map (fun t -> t.detach().to_type(f32).DetachFromDisposeScope())

        let ranK, dtype, runK = simulated c u0 k32
        let ranE, _, runE = simulated c u0 e32
        let ran64, _, run64 = simulated c u0 k64
        Expect.equal (ranK, ranE, ran64) (Backend.Kernels, Backend.Eager, Backend.Kernels) "the back ends that ran"
        Expect.equal dtype f32 "the result is float32"
        Expect.isGreaterThan (k32.Trainable().Length) (k32.Parameters.Length) "network weights among the trainables"
        let cells = runK.Saved |> Array.sumBy (fun s -> int (s.numel () / s.shape[0]))
        accurate "float32 closures" c cells runK runE run64

        let stateGap =
            runK.Saved |> Array.mapi (fun f s -> fromRounded s run64.Saved[f]) |> Array.max

        Expect.isGreaterThan stateGap eps32 "the states differ from the rounded float64 ones by more than a rounding"
    }

let tests =
    testList "Kernels in float32" [
        agreementTest (fisher 256 2)
        agreementTest (plane 24 20 2)
        threadedTest (fisher 8192 2)
        threadedTest (plane 128 128 1)
        closureTest
            {
                Name = "1-D Fisher–KPP with a neural kill(u, x)"
                Model = Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()
                Batch = 2
                Dt = 0.005
                Steps = 20
            }
            None
        closureTest
            {
                Name = "the climate case's model, 16², diagnostic ψ, CNN closures and Leith's terms"
                Model = KernelTests.climate
                Batch = 1
                Dt = 1e-3
                Steps = 20
            }
            (Some KernelTests.climateStart)

        test "a Float32 simulator runs its fixed-step rollouts on the float32 kernels, through Simulate" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let c = fisher 64 1

            let simulator (backend: Backend) (dtype: torch.ScalarType) =
                Hybrid.Compiler.Compiler.compile
                    {
                        Hybrid.Compiler.Compiler.defaults with
                            Backend = backend
                            Dtype = dtype
                    }
                    c.Model

            let o = {
                Rollout.defaults with
                    Dt = c.Dt
                    SaveTimes = [| 10.0 * c.Dt; 20.0 * c.Dt |]
            }

            let simulate (s: Hybrid.Compiler.Simulator) =
                let u0 = s.Initial 1
                let traj = s.Simulate(u0, o)
                traj.Backend, traj.Values[0].detach().to_type f64

            let ran32, k32 = simulate (simulator Backend.Kernels f32)
            let _, k64 = simulate (simulator Backend.Kernels f64)
            let _, e32 = simulate (simulator Backend.Eager f32)
            Expect.equal ran32 Backend.Kernels "ran on the kernels"
            Expect.isLessThan (maxRelative k32 e32) (bound 20) "= eager float32"
            Expect.isLessThan (maxRelative k32 k64) (bound 20) "= float64 kernels"
            Expect.isGreaterThan (fromRounded k32 k64) eps32 "not the float64 kernels rounded: computed in float32"
        }

        test "IMEX schemes keep the float64-internal path for float32 states (no error)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let c = fisher 32 1
            let sim = Kernels.compile Scheme.ImexEuler c.Model
            Expect.isTrue sim.Stiff.IsSome "the diffusion is solved implicitly"
            Expect.equal (sim.RolloutPrecision f32) Float64 "IMEX runs in float64"
            let r, dtype = run c f32 (Some(sim, c.Steps))
            Expect.equal dtype f32 "the result keeps the state's dtype"

            Expect.isTrue
                (r.Saved
                 |> Array.forall (fun s -> System.Double.IsFinite(s.abs().max().ToDouble())))
                "finite"
        }
    ]
