/// Fixed-step rollouts whose save times are not whole numbers of steps Δt after T0 on the generated kernels: they
/// take the eager back end's steps (`Rollout.schedule`: the step before a save time shortened so that it is hit
/// exactly), so saved states and the gradients to u0, θ and closure weights equal the eager ones to 1e-10 relative
/// in float64: the theophylline hybrid (a point system with a closure) at irregular sampling times, a 1-D grid with
/// a closure and a moving boundary under Rk4, ImexEuler and ImexCrankNicolson, with checkpoint segments that cut
/// across the save intervals. A rollout that does not shorten the step is shown to miss by far more than that.
module Hybrid.Tests.Kernels.OffGridKernelTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Cases

let private f64 = torch.ScalarType.Float64
let private u = Sym "u"
let private x = Sym "x"

/// `Compiler.compile` on back end `backend` (seed 3, so closures start alike), with implicit diffusion for IMEX
/// schemes and the networks `modules`.
let private compile (backend: Backend) (modules: Map<string, torch.nn.Module<torch.Tensor, torch.Tensor>>) (m: Model) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
                ImplicitDiffusion = true
                Modules = modules
                Seed = 3
        }
        m

/// Fisher–KPP on 20 cells of [0, 1] with a kill closure, ∂u/∂t = ∇·(D(1 + x)∇u) + r u (1 − u) − kill(u, x) u, the
/// value `wall` on the left and no flux on the right.
let private fisherWith (wall: Expr) =
    Model.empty "fisher_offgrid"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 20))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" 0.05 with
            Constraint = Constraint.Positive
    }
    |> Model.addParam (Model.param "r" 1.0)
    |> Model.addParam (Model.param "a" 0.3)
    |> Model.addClosure {
        Name = "kill"
        Arity = 2
        Architecture = Architecture.Mlp([ 2; 8; 1 ], Activation.Tanh)
        Units = None
    }
    |> Model.addEquation
        "u"
        (Divergence(Sym "D" * (1.0 + x) * Grad u) + Sym "r" * u * (1.0 - u)
         - Call("kill", [ u; x ]) * u)
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet wall)
    |> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
    |> Model.setInitial "u" (InitialCondition.Expr(0.3 + 0.5 * Apply(Fn.Exp, -40.0 * (x - 0.4) * (x - 0.4))))

/// `fisherWith` a left wall that moves with time (so the stages' times count).
let private fisher = fisherWith (0.4 + Sym "a" * Apply(Fn.Sin, 20.0 * Sym "t"))

/// `fisherWith` a fixed left wall a + 0.4 (the IMEX schemes' implicit solves take a wall that does not move).
let private fisherFixedWall = fisherWith (0.4 + Sym "a")

/// Fisher's initial state for two trajectories (the second scaled by 0.8), a leaf that requires grad.
let private fisherStart (sim: Simulator) =
    use _ = torch.no_grad ()
    let u0 = sim.Initial 2
    let scale = torch.tensor([| 1.0; 0.8 |], dtype = f64).reshape ([| 2L; 1L |])
    u0 |> Array.map (fun v -> (v * scale).detach().requires_grad_ true)

/// The theophylline hybrid (dA/dt = −ka A, dC/dt = ka A / V − ke C − N(C / 10)) on both back ends sharing one network
/// N (1 → 8 → 8 → 1, tanh, fixed seed).
let private theophylline () =
    torch.random.manual_seed 7L |> ignore
    let net = new Mlp("elimination", 1, 1, 8, 2, dtype = f64)

    do
        use _ = torch.no_grad ()

        for p in net.parameters () do
            p.copy_ (0.3 * torch.randn (p.shape, dtype = f64)) |> ignore

    let modules = Map [ "N", net :> torch.nn.Module<torch.Tensor, torch.Tensor> ]

    compile Backend.Kernels modules Pharmacokinetics.hybridModel,
    compile Backend.Eager modules Pharmacokinetics.hybridModel

/// Two subjects' doses as A(0) and C(0) = 0.1 (leaves that require grad).
let private doses (_: Simulator) = [|
    torch.tensor([| 4.02; 5.5 |], dtype = f64).requires_grad_ true
    torch.tensor([| 0.1; 0.1 |], dtype = f64).requires_grad_ true
|]

/// Theophylline-like sampling times (h): T0 itself, then times off the step grid of Δt = 0.25 h but one (2.0), and
/// one a hair past a grid point (its last step 1e-11 h longer than Δt).
let private samplingTimes = [|
    0.0
    0.27
    0.52
    0.98
    1.92
    2.0
    3.5 + 1e-11
    5.02
    7.03
    9.0
    12.12
    24.37
|]

/// The back end that ran, the saved states, and the gradients of Σ(u² + u³) over them with respect to every
/// trainable tensor and the initial state `start sim` (`ImexKernelTests.runFrom`).
let private run (sim: Simulator) (start: Simulator -> torch.Tensor[]) (o: RolloutOptions) =
    ImexKernelTests.runFrom start sim o

let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-300 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

/// The kernels and the eager back end agree on `o` from `start`: values and every (nonzero) gradient to 1e-10
/// relative; returns the kernels' values.
let private agree (kernels: Simulator) (eager: Simulator) (start: Simulator -> torch.Tensor[]) (o: RolloutOptions) =
    let ranK, valuesK, gradsK = run kernels start o
    let ranE, valuesE, gradsE = run eager start o
    Expect.equal ranK Backend.Kernels "the kernels ran"
    Expect.equal ranE Backend.Eager "the eager back end ran"

    for f in 0 .. valuesK.Length - 1 do
        Expect.equal valuesK[f].shape valuesE[f].shape $"shape of field {f}"
        let d = maxRelative valuesK[f] valuesE[f]
        Expect.isLessThan d 1e-10 $"saved states of field {f} ({d:G3})"

    Expect.equal gradsK.Length gradsE.Length "same trainable tensors"

    for g in 0 .. gradsK.Length - 1 do
        Expect.isGreaterThan (gradsE[g].abs().max().ToDouble()) 0.0 $"gradient {g} is not zero"
        let d = maxRelative gradsK[g] gradsE[g]
        Expect.isLessThan d 1e-10 $"gradient {g} ({d:G3})"

    valuesK

/// Fixed steps of `dt` with `scheme` to `saves`, checkpoints `checkpointing`, no stability check (the closure's
/// terms are probed by neither back end alike).
let private options (scheme: Scheme) (dt: float) (saves: float[]) (checkpointing: Checkpointing) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = dt
        SaveTimes = saves
        Checkpointing = checkpointing
}

/// Save times of the Fisher rollouts (Δt = 0.002): off the grid, one on it (0.01), and segments of 3 or 4 steps
/// that start inside save intervals.
let private fisherSaves = [| 0.0031; 0.01; 0.0137; 0.02; 0.0251 |]

let tests =
    testList "Kernels.Off-grid save times" [
        test "the schedule shortens the step before each save time and keeps Dt for save times on the grid" {
            let steps (saves: float[]) =
                let s =
                    Rollout.schedule {
                        Rollout.defaults with
                            Dt = 0.25
                            SaveTimes = saves
                    }

                [ for i in 0 .. s.Length - 1 -> s[i].T, s[i].H, s[i].Save ]

            // 0.6 = 2 steps + 0.1; then from 0.6 to 1.0: 0.25 + 0.15; T0 itself takes no step.
            let got = steps [| 0.0; 0.6; 1.0 |]
            let expected = [ 0.0, 0.25, -1; 0.25, 0.25, -1; 0.5, 0.1, 1; 0.6, 0.25, -1; 0.85, 0.15, 2 ]
            Expect.equal got.Length expected.Length "five steps"

            for (t, h, save), (te, he, se) in List.zip got expected do
                Expect.floatClose Accuracy.veryHigh t te "start"
                Expect.floatClose Accuracy.veryHigh h he "size"
                Expect.equal save se "save index"

            // The kernels walk to each step's interval from the previous one's (forward, or backward in the adjoint):
            // from any interval, the bisection's (the first interval, T0's, is empty).
            let s =
                Rollout.schedule {
                    Rollout.defaults with
                        Dt = 0.25
                        SaveTimes = [| 0.0; 0.6; 1.0 |]
                }

            for i in 0 .. s.Length - 1 do
                for j in 0..2 do
                    Expect.equal (s.Seek j i) (s.Interval i) $"step {i} from interval {j}"
                    Expect.equal (s.Of (s.Seek j i) i) s[i] $"step {i}"

            // Save times on the grid (0.1 is not exact in binary): every step exactly Dt, one implicit factorisation.
            let s =
                Rollout.schedule {
                    Rollout.defaults with
                        Dt = 0.01
                        SaveTimes = [| 0.1; 0.2; 0.3; 0.7; 1.1 |]
                }

            Expect.equal (s.StepSizes 0 s.Length) [| 0.01 |] "one step size"
            Expect.equal s.Length 110 "110 steps"
        }

        test
            "the theophylline hybrid at irregular sampling times runs on the kernels: values and gradients of A(0), C(0), ka, ke, V and N's weights equal the eager ones (1e-10)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let kernels, eager = theophylline ()
            let o = options Scheme.Rk4 0.25 samplingTimes Checkpointing.Off
            Expect.equal (kernels.BackendFor o) (Backend.Kernels, "") "the kernels take off-grid save times"
            agree kernels eager doses o |> ignore
            // Checkpoints every 5 steps (segments across the save intervals): the same values and gradients.
            agree kernels eager doses {
                o with
                    Checkpointing = Checkpointing.Segments 5
            }
            |> ignore
        }

        test
            "a 1-D grid with a closure and a moving wall: Rk4 to off-grid save times, with and without checkpoints, equals eager (1e-10)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()

            let kernels, eager =
                compile Backend.Kernels Map.empty fisher, compile Backend.Eager Map.empty fisher

            for c in [ Checkpointing.Off; Checkpointing.Segments 3; Checkpointing.Segments 4 ] do
                agree kernels eager fisherStart (options Scheme.Rk4 0.002 fisherSaves c)
                |> ignore
        }

        test
            "ImexEuler and ImexCrankNicolson to off-grid save times (a solve per step size), checkpointed, equal eager (1e-10)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()

            let kernels, eager =
                compile Backend.Kernels Map.empty fisherFixedWall, compile Backend.Eager Map.empty fisherFixedWall

            for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] do
                // Δt = 0.01 is far above the explicit limit of the diffusion (≈ 0.0025 · 2 / 2): the solves carry it.
                let o =
                    options scheme 0.01 [| 0.013; 0.04; 0.0555; 0.1 |] (Checkpointing.Segments 3)

                Expect.equal (kernels.BackendFor o) (Backend.Kernels, "") $"{scheme} on the kernels"
                agree kernels eager fisherStart o |> ignore
        }

        test
            "a float32 simulator takes off-grid save times on the float32 kernels, within float32 rounding of eager float32" {
            Engine.init ()
            use _ = torch.NewDisposeScope()

            let compile32 backend =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = backend
                            Dtype = torch.ScalarType.Float32
                    }
                    Pharmacokinetics.oneCompartmentModel

            let kernels, eager = compile32 Backend.Kernels, compile32 Backend.Eager
            let o = options Scheme.Rk4 0.25 samplingTimes Checkpointing.Off

            let start () = [| torch.tensor ([| 4.02f; 5.5f |]); torch.tensor ([| 0.1f; 0.1f |]) |]

            let k = kernels.Simulate(start (), o)
            let e = eager.Simulate(start (), o)
            Expect.equal k.Backend Backend.Kernels "the kernels ran"
            Expect.equal k.Values[1].dtype torch.ScalarType.Float32 "in float32"
            // ≤ 8 roundings per RK4 step over the 102 steps to 24.37 h (`Float32KernelTests`' bound).
            let eps32 = float (System.MathF.BitIncrement 1.0f - 1.0f)

            for f in 0..1 do
                let d = maxRelative (k.Values[f].to_type f64) (e.Values[f].to_type f64)
                Expect.isLessThan d (8.0 * 102.0 * eps32) $"field {f} ({d:G3})"
        }

        test "a rollout that does not shorten the step before a save time misses the eager one by far more than 1e-10" {
            Engine.init ()
            use _ = torch.NewDisposeScope()

            let kernels, eager =
                compile Backend.Kernels Map.empty fisher, compile Backend.Eager Map.empty fisher

            let o = options Scheme.Rk4 0.002 fisherSaves Checkpointing.Off
            let valuesK = agree kernels eager fisherStart o

            // Whole steps past each save time (what the kernels did not do): the state 0.0009 later, and so on.
            let whole = {
                o with
                    SaveTimes = o.SaveTimes |> Array.map (fun s -> ceil (s / o.Dt - 1e-9) * o.Dt)
            }

            let _, unshortened, _ = run eager fisherStart whole
            let d = maxRelative unshortened[0] valuesK[0]
            Expect.isGreaterThan d 1e-6 $"whole steps differ ({d:G3})"
        }
    ]
