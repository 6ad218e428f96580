/// Dopri5 with adaptive steps on the generated kernels (`AdaptiveRollout`) for grid models, with neural closures and
/// forcings, against the eager back end: the same accepted and rejected steps, the same states and the same
/// gradients (parameters, initial state, network weights) to 1e-10 in float64, and within float32's rounding in
/// float32; which back end `Backend.Auto` picks; and the accuracy against an exact solution as the tolerance tightens.
module Hybrid.Tests.Kernels.AdaptiveGridKernelTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64

/// A forcing c(t) = 0.5 + 0.3 sin 5t (0-dim) for every forcing of `model`.
let private forcingsOf (model: Model) =
    model.Forcings
    |> List.map (fun f -> f.Name, (fun (t: float) -> torch.tensor (0.5 + 0.3 * sin (5.0 * t), dtype = f64)))
    |> Map.ofList

let compileSplit (implicitDiffusion: bool) (backend: Backend) (model: Model) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
                Seed = 3
                Forcings = forcingsOf model
                ImplicitDiffusion = implicitDiffusion
        }
        model

let private compile = compileSplit false

/// Dopri5 at relative tolerance 1e-6 (absolute 1e-9), first step `dt`, saving at T0, inside steps and at the end.
let private dopri (dt: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = Scheme.Dopri5
        Dt = dt
        SaveTimes = saves
        Tolerance = { Relative = 1e-6; Absolute = 1e-9 }
}

/// The largest difference relative to b's largest magnitude.
let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-300 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

/// Runs `sim` from its initial state (2 trajectories, the second scaled by 0.9) with gradients of a fixed weighting
/// of every saved value, calling `afterForward` between the forward and the backward pass: the back end that ran,
/// the step counts, the values, and the gradients with respect to u0 and every trainable tensor.
let internal runWithGradientsThen (afterForward: unit -> unit) (sim: Simulator) (o: RolloutOptions) =
    for p in sim.Trainable() do
        p.grad <- null

    let u0 =
        sim.Initial 2
        |> Array.map (fun x ->
            let scale =
                torch
                    .tensor([| 1.0; 0.9 |], dtype = x.dtype)
                    .reshape (Array.append [| 2L |] (Array.create (int (x.dim ()) - 1) 1L))

            (x.detach () * scale).requires_grad_ true)

    let chosen = sim.BackendFor(o, u0)
    let traj = sim.Simulate(u0, o)
    let steps = Rollout.lastSteps ()
    afterForward ()

    let loss =
        traj.Values
        |> Array.map (fun v ->
            let n = v.numel ()

            let w =
                torch
                    .tensor(Array.init (int n) (fun i -> 1.0 + 0.5 * sin (0.7 * float i)), dtype = v.dtype)
                    .reshape (v.shape)

            (w * square v).sum ())
        |> Array.reduce (.+)

    loss.backward ()
    let values = traj.Values |> Array.map (fun v -> v.detach().clone ())

    let grads =
        Array.append
            (u0 |> Array.map (fun x -> x.grad.clone ()))
            (sim.Trainable() |> Array.map (fun p -> p.grad.clone ()))

    chosen, traj.Backend, steps, values, grads

/// `runWithGradientsThen` with nothing between the passes.
let internal runWithGradients = runWithGradientsThen ignore

/// `model` with an adaptive scheme on Backend.Auto (the kernels) and Backend.Eager: Auto picks the kernels, both take
/// the same steps (at least `minSteps` accepted, and some rejected when `rejects`), and values agree to `valueTolerance`
/// and gradients to `gradientTolerance` relative (the eager side without checkpointing).
let agreesWithin
    (valueTolerance: float)
    (gradientTolerance: float)
    (compile: Backend -> Model -> Simulator)
    (model: Model)
    (o: RolloutOptions)
    (minSteps: int)
    (rejects: bool)
    =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let auto, eager = compile Backend.Auto model, compile Backend.Eager model
    let chosenK, ranK, stepsK, valuesK, gradsK = runWithGradients auto o
    // The eager back end keeps the whole graph of adaptive steps (it refuses Checkpointing for them).
    let _, ranE, stepsE, valuesE, gradsE =
        runWithGradients eager {
            o with
                Checkpointing = Checkpointing.Off
        }

    Expect.equal chosenK (Backend.Kernels, "") $"{model.Name}: Auto picks the kernels with gradients"
    Expect.equal ranK Backend.Kernels "the kernels ran"
    Expect.equal ranE Backend.Eager "the eager back end ran"
    Expect.equal stepsK stepsE $"{model.Name}: the same accepted and rejected steps"
    Expect.isGreaterThanOrEqual (fst stepsK) minSteps $"{model.Name}: a real run ({stepsK})"

    if rejects then
        Expect.isGreaterThan (snd stepsK) 0 $"{model.Name}: some steps rejected ({stepsK})"

    for f in 0 .. valuesK.Length - 1 do
        Expect.equal valuesK[f].shape valuesE[f].shape "same shape [S; B; spatial…]"
        let d = maxRelative valuesK[f] valuesE[f]
        Expect.isLessThan d valueTolerance $"{model.Name}: field {f} values ({d:G3})"

    Expect.equal gradsK.Length gradsE.Length "same gradients"

    for g in 0 .. gradsK.Length - 1 do
        let d = maxRelative gradsK[g] gradsE[g]
        Expect.isLessThan d gradientTolerance $"{model.Name}: gradient {g} ({d:G3})"

/// `agreesWithin` 1e-10 1e-10.
let private agreesWith = agreesWithin 1e-10 1e-10

let private agrees = agreesWith compile

/// float32's machine epsilon, 2⁻²³ ≈ 1.19e-7.
let private eps32 = float (System.MathF.BitIncrement 1.0f - 1.0f)

/// Dopri5 at relative tolerance 1e-4 (absolute 1e-7), a tolerance float32 can meet: a float32 error estimate
/// h Σⱼ (bⱼ − b̂ⱼ)kⱼ carries a rounding of about eps₃₂·h|k| (≲ 1e-8 of |u| on these models), so the error norms of
/// two float32 runs differ by ~1e-4 of the tolerance and both back ends accept and reject the same steps (at 1e-6 the
/// rounding would be a percent of the norm).
let private dopri32 (dt: float) (saves: float[]) = {
    dopri dt saves with
        Tolerance = { Relative = 1e-4; Absolute = 1e-7 }
}

/// The bound on the relative difference between a float32 Dopri5 run of `accepted` steps and another computation of
/// the same steps (float32 on the other back end, or float64): each step rounds every value about twice per stage
/// (a product and a sum of each stage combination; 7 stages) and the continuous extension a further 10 times, each
/// rounding of relative size ≤ eps₃₂ and amplified by at most the step's condition (≈ 1 for these diffusive steps),
/// adding up over the steps: (14·accepted + 10)·eps₃₂. The two float32 runs' step sizes differ by the float32
/// rounding of their error norms (≲ 1e-3 relative), which moves the solution by that fraction of a local error
/// (≤ tolerance): ≲ 1e-7, below one eps₃₂. The float64 run sizes its steps from unrounded norms (on forced Fisher–KPP
/// one step fewer), which moves its solution by a small fraction of the tolerance (≤ 1e-6 measured here). Gradients
/// run the steps twice (forward, adjoint) and sum over the cells: twice that plus log₂(cells)·eps₃₂.
let private bound32 (accepted: int) = (14.0 * float accepted + 10.0) * eps32

let private gradientBound32 (accepted: int) (cells: int) =
    2.0 * bound32 accepted + System.Math.Log2(float cells) * eps32

/// `model` with Dopri5 in float32 on Backend.Auto (the float32 kernels), on Backend.Eager in float32, and on the
/// float64 kernels as the reference: Auto picks the kernels, the two float32 runs take the same accepted and rejected
/// steps (at least `minSteps` accepted, some rejected when `rejects`), return float32, and each value and gradient of
/// the float32 kernels is within `bound32` (`gradientBound32`) of the float64 run, or within 4× the eager float32
/// run's own error where that is larger (a θ gradient that sums terms of both signs over every cell and step is
/// ill-conditioned, and eager float32's error measures its condition), and within that plus eager float32's error of
/// eager float32. The float32 kernels compute in float32: their states differ from the float64 run rounded to float32
/// by more than one rounding (a float64-internal run would take the float64 steps and round once at the end).
let private float32Agrees (model: Model) (o: RolloutOptions) (minSteps: int) (rejects: bool) =
    Engine.init ()
    use _ = torch.NewDisposeScope()

    let compileIn (dtype: torch.ScalarType) (backend: Backend) =
        Compiler.compile
            {
                Compiler.defaults with
                    Backend = backend
                    Seed = 3
                    Forcings = forcingsOf model
                    Dtype = dtype
            }
            model

    let f32 = torch.ScalarType.Float32
    let kernels32 = compileIn f32 Backend.Auto
    // The float64 reference runs the float32 simulator's networks (their weights drawn in float32).
    let reference = compileIn f64 Backend.Auto

    do
        use _ = torch.no_grad ()

        for (_, m), (_, source) in Array.zip reference.Modules kernels32.Modules do
            Seq.iter2
                (fun (p: Modules.Parameter) (q: Modules.Parameter) -> p.copy_ (q.to_type p.dtype) |> ignore)
                (m.parameters ())
                (source.parameters ())

    let chosen, ranK, stepsK, valuesK, gradsK = runWithGradients kernels32 o

    let _, ranE, stepsE, valuesE, gradsE =
        runWithGradients (compileIn f32 Backend.Eager) {
            o with
                Checkpointing = Checkpointing.Off
        }

    let _, ran64, _, values64, grads64 = runWithGradients reference o
    Expect.equal chosen (Backend.Kernels, "") $"{model.Name}: Auto picks the float32 kernels with gradients"
    Expect.equal (ranK, ranE, ran64) (Backend.Kernels, Backend.Eager, Backend.Kernels) "the back ends that ran"
    Expect.equal stepsK stepsE $"{model.Name}: the same accepted and rejected steps in float32"
    Expect.isGreaterThanOrEqual (fst stepsK) minSteps $"{model.Name}: a real run ({stepsK})"

    if rejects then
        Expect.isGreaterThan (snd stepsK) 0 $"{model.Name}: some steps rejected ({stepsK})"

    let cells = valuesK |> Array.sumBy (fun v -> int (v.numel () / v.shape[0]))

    let check (what: string) (limit: float) (k: torch.Tensor) (e: torch.Tensor) (exact: torch.Tensor) =
        Expect.equal k.dtype f32 $"{model.Name}: {what} in float32"
        let exact = exact.to_type f64
        let eagerError = maxRelative (e.to_type f64) exact
        let tolerance = max limit (4.0 * eagerError)
        let kernelError = maxRelative (k.to_type f64) exact

        printfn
            $"float32 Dopri5, {model.Name}, {what}: float32 kernels {kernelError:G3}, eager float32 {eagerError:G3}, bound {limit:G3}"

        Expect.isLessThan kernelError tolerance $"{model.Name}: {what} against float64 ({eagerError:G3} eager)"

        Expect.isLessThan
            (maxRelative (k.to_type f64) (e.to_type f64))
            (tolerance + eagerError)
            $"{model.Name}: {what} against eager float32"

    for f in 0 .. valuesK.Length - 1 do
        check $"field {f}" (bound32 (fst stepsK)) valuesK[f] valuesE[f] values64[f]

    for g in 0 .. gradsK.Length - 1 do
        check $"gradient {g}" (gradientBound32 (fst stepsK) cells) gradsK[g] gradsE[g] grads64[g]

    let gap =
        valuesK
        |> Array.mapi (fun f v ->
            maxRelative (v.to_type f64) (values64[f].to_type(torch.ScalarType.Float32).to_type f64))
        |> Array.max

    Expect.isGreaterThan gap eps32 $"{model.Name}: float32 states differ from the rounded float64 ones"

/// KenCarp4 with implicit diffusion at relative tolerance `rtol` (absolute 1e-3·rtol), first step `dt`.
let private kenCarp (rtol: float) (dt: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = Scheme.KenCarp4
        Dt = dt
        SaveTimes = saves
        Tolerance = {
            Relative = rtol
            Absolute = 1e-3 * rtol
        }
}

/// A 2-D reaction–diffusion system (two fields, no-flux walls) on nx × ny cells.
let planeOf (nx: int) (ny: int) =
    Parse.model (
        $"model rd2\ndomain rectangle [0, 1] x [0, 1] cells {nx} x {ny}\nfield u\nfield v\nparam D = 0.02\nparam k = 2\ndu/dt = D*lap(u) + u*(1 - u) - k*u*v\ndv/dt = 0.5*D*lap(v) + k*u*v - v\nboundary u noflux\nboundary v noflux\ninitial u = 0.5 + 0.3*cos(3*x)*sin(2*y)\ninitial v = 0.2 + 0.1*sin(4*x)"
    )

/// `planeOf` 10 × 12 cells.
let private plane = planeOf 10 12

/// Fisher–KPP (16 cells) with a forcing c(t) in the reaction: ∂u/∂t = ∇·(D∇u) + r u (1 − u) + c u.
let forcedFisher =
    let m =
        Hybrid.Tests.Compiler.CompilerTests.fisherKpp 16 0.02 1.5
        |> Model.addForcing { Name = "c"; Units = None }

    {
        m with
            Equations =
                m.Equations
                |> List.map (fun e -> {
                    e with
                        Rhs = e.Rhs + Sym "c" * Sym "u"
                })
            Name = "forced_fisher"
    }

/// ∂u/∂t = D ∂²u/∂x² − r u on [0, 1] with no-flux walls from cos(2πx): on the cell centres cos(2πx) is an
/// eigenvector of the discrete Laplacian, so the semi-discrete solution is cos(2πx)·exp((λ − r) t) with
/// λ = −(4D/Δx²) sin²(πΔx).
let private decay (cells: int) =
    Parse.model (
        sprintf
            "model decay\ndomain interval [0, 1] cells %d\nfield u\nparam D = 0.01\nparam r = 0.5\ndu/dt = D*lap(u) - r*u\nboundary u noflux\ninitial u = cos(6.283185307179586*x)"
            cells
    )

let tests =
    testList "Adaptive grid kernels" [
        test "Dopri5 on 1-D Fisher–KPP: kernels take the eager steps, values and gradients to 1e-10" {
            // A first step of 0.05 is far too large at 1e-6: the run starts with rejections.
            agrees
                (Hybrid.Tests.Compiler.CompilerTests.fisherKpp 32 0.02 1.5)
                (dopri 0.05 [| 0.0; 0.05; 0.13; 0.2 |])
                8
                true
        }

        test "Dopri5 on 2-D reaction–diffusion: kernels take the eager steps, values and gradients to 1e-10" {
            agrees plane (dopri 0.002 [| 0.5; 1.3; 2.0 |]) 8 false
        }

        test "Dopri5 with a neural closure: kernels take the eager steps, values and weight gradients to 1e-10" {
            agrees (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()) (dopri 0.002 [| 0.05; 0.1; 0.3 |]) 8 false
        }

        test
            "Dopri5 with a neural closure and checkpoint segments of 5 and √T steps (stages kept in chunks): the eager steps, values and weight gradients to 1e-10" {
            for policy in [ Checkpointing.Segments 5; Checkpointing.Sqrt ] do
                agrees
                    (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
                    {
                        dopri 0.002 [| 0.05; 0.1; 0.3 |] with
                            Checkpointing = policy
                    }
                    8
                    false
        }

        test
            "Dopri5 in float32 (1-D Fisher–KPP with rejections, checkpointed; 2-D reaction–diffusion; a point system; a forcing; a neural closure): the float32 kernels take the eager float32 steps, values and gradients within float32 rounding of float64" {
            // Steps sized by accuracy, not by stability: at Dopri5's stability limit (the controller's steps on
            // `plane` up to t = 2, or Fisher–KPP with D = 0.02 up to t = 1) the steps amplify the grid's highest modes,
            // where each run's rounding grows to the tolerance (1e-4 of the states, 10% of ∂L/∂u0 on either float32
            // back end), and no two float32 computations agree to rounding. A first step of 0.5 is rejected.
            float32Agrees
                (Hybrid.Tests.Compiler.CompilerTests.fisherKpp 32 0.002 8.0)
                {
                    dopri32 0.5 [| 0.0; 0.05; 0.13; 0.6 |] with
                        Checkpointing = Checkpointing.Sqrt
                }
                6
                true

            float32Agrees plane (dopri32 0.01 [| 0.05; 0.25; 0.5 |]) 5 false

            let lotkaVolterra =
                Parse.model
                    "model lv\ndomain point\nfield prey\nfield pred\nparam a = 1.1\nparam b = 0.4\ndprey/dt = a*prey - b*prey*pred\ndpred/dt = 0.1*prey*pred - 0.4*pred\ninitial prey = 10\ninitial pred = 10"

            float32Agrees lotkaVolterra (dopri32 0.01 [| 0.0; 1.0; 2.5; 4.0 |]) 8 false
            float32Agrees forcedFisher (dopri32 0.002 [| 0.07; 0.3 |]) 4 false
            // A neural closure kill(u, x), its network in float32 on both back ends.
            float32Agrees
                (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
                (dopri32 0.002 [| 0.05; 0.2 |])
                4
                false
        }

        test "Dopri5 with a forcing: kernels take the eager steps, values and gradients to 1e-10" {
            agrees forcedFisher (dopri 0.002 [| 0.07; 0.3 |]) 8 false
        }

        test
            "Dopri5 with gradients on a point system (Lotka–Volterra) runs on the kernel stepper: steps, values and gradients to 1e-10" {
            let lotkaVolterra =
                Parse.model
                    "model lv\ndomain point\nfield prey\nfield pred\nparam a = 1.1\nparam b = 0.4\ndprey/dt = a*prey - b*prey*pred\ndpred/dt = 0.1*prey*pred - 0.4*pred\ninitial prey = 10\ninitial pred = 10"

            agrees lotkaVolterra (dopri 0.01 [| 0.0; 1.0; 2.5; 4.0 |]) 8 false
        }

        test
            "KenCarp4 (implicit diffusion, banded solves) on stiff 1-D Fisher–KPP: kernels take the eager steps, values and gradients to 1e-10" {
            // D/Δx² = 0.5·32² = 512: Dopri5 would need hundreds of steps.
            agreesWith
                (compileSplit true)
                (Hybrid.Tests.Compiler.CompilerTests.fisherKpp 32 0.5 1.5)
                (kenCarp 1e-6 0.05 [| 0.0; 0.05; 0.13; 0.2 |])
                4
                false
        }

        test
            "KenCarp4 with a neural closure and a forcing in 1-D: kernels take the eager steps, values and gradients to 1e-10" {
            agreesWith
                (compileSplit true)
                (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
                (kenCarp 1e-6 0.01 [| 0.1; 0.3 |])
                4
                false

            agreesWith (compileSplit true) forcedFisher (kenCarp 1e-6 0.01 [| 0.07; 0.3 |]) 4 false
        }

        test
            "KenCarp4 (conjugate gradients) on 2-D reaction–diffusion at a tight tolerance: kernels take the eager steps, values and gradients to 1e-10" {
            // rtol 1e-10: both back ends' CG stop at a relative residual of 1e-13.
            agreesWith (compileSplit true) plane (kenCarp 1e-10 0.01 [| 0.1; 0.2 |]) 4 false
        }

        test
            "KenCarp4 (BiCGSTAB) on a 2-D c(x)Δu with Dirichlet walls (not symmetric): kernels take the eager steps (dense solves), values and gradients to 1e-9" {
            // Each BiCGSTAB solve stops at a relative residual of 1e-13 (ImplicitSolve.fixedStepTolerance), so it is
            // within κ·1e-13 of the eager dense solve, κ ≤ 1 + 2γh·max|Lᵢᵢ| ≤ 1 + 2·0.25·0.05·0.05·2·488 ≈ 2.2 for steps
            // h ≤ 0.05; 5 solves per step and as many adjoint ones over ≤ 40 steps add up to ≤ 1e-10 (the steps do not
            // amplify): 1e-9 leaves 10× for the sums of the loss and the gradients.
            let skew =
                Parse.model
                    "model skew\ndomain rectangle [0, 1] x [0, 1] cells 12 x 10\nfield u\nparam D = 0.05\nparam a = 0.2\ndu/dt = D*(1 + x)*lap(u) + u*(1 - u)\nboundary u dirichlet a\ninitial u = 0.3 + 0.5*exp(-20*((x - 0.4)*(x - 0.4) + (y - 0.6)*(y - 0.6)))"

            agreesWithin 1e-9 1e-9 (compileSplit true) skew (kenCarp 1e-6 0.01 [| 0.1; 0.3 |]) 4 false
        }

        test
            "KenCarp4 without implicit diffusion (no stiff part: its explicit tableau, no solves) in 1-D and 2-D and with a closure: kernels take the eager steps, values and gradients to 1e-10" {
            // The eager back end's stages are then Uₛ = u + h Σ aᴱₛⱼ Fⱼ (no implicit operator): the kernels' too.
            agrees
                (Hybrid.Tests.Compiler.CompilerTests.fisherKpp 32 0.02 1.5)
                (kenCarp 1e-6 0.05 [| 0.0; 0.05; 0.13; 0.2 |])
                8
                true

            agrees plane (kenCarp 1e-6 0.002 [| 0.5; 1.3 |]) 8 false
            agrees (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()) (kenCarp 1e-6 0.01 [| 0.1; 0.3 |]) 4 false
        }

        test
            "Dopri5 and KenCarp4 on the kernels with Checkpointing (Sqrt, Segments 3, a budget): the eager steps, values and gradients to 1e-10" {
            // Long enough for several segments: Sqrt doubles its segment a few times, Segments 3 ends mid-segment.
            let fisher = Hybrid.Tests.Compiler.CompilerTests.fisherKpp 32 0.02 1.5
            let long = dopri 0.05 [| 0.0; 0.13; 1.0; 2.0 |]
            // 32 cells × 8 bytes: a budget of 20 states' bytes.
            for policy in
                [
                    Checkpointing.Sqrt
                    Checkpointing.Segments 3
                    Checkpointing.Budget(20L * 32L * 8L)
                ] do
                agrees fisher { long with Checkpointing = policy } 40 true

            agreesWith
                (compileSplit true)
                (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
                {
                    kenCarp 1e-8 0.01 [| 0.1; 0.6 |] with
                        Checkpointing = Checkpointing.Sqrt
                }
                16
                false
        }

        test "Checkpointing adaptive steps keeps O(√T) start states: Sqrt, Budget, Segments and Off" {
            let state = [| Array.zeroCreate<float> 4 |] // 32 bytes

            let offer policy steps =
                let c = Hybrid.Kernels.AdaptiveCheckpoints(policy, 32L)

                for n in 0 .. steps - 1 do
                    c.Offer(n, state)
                    // Every kept start is a multiple of the current segment, and step 0 is always kept.
                    Expect.isTrue (c.Kept.ContainsKey 0) "step 0 kept"

                c

            for steps in [ 1; 7; 100; 1000; 12345 ] do
                let c = offer Checkpointing.Sqrt steps
                let k = float c.Segment
                Expect.isLessThanOrEqual c.Kept.Count (2 * c.Segment) $"T = {steps}: at most 2k checkpoints"
                Expect.isLessThanOrEqual k (sqrt (2.0 * float steps) + 1.0) $"T = {steps}: k = {k} ≤ √(2T)"
                Expect.isGreaterThanOrEqual k (sqrt (float steps / 2.0) - 1.0) $"T = {steps}: k = {k} ≥ √(T/2)"
                Expect.equal c.Kept.Count ((steps - 1) / c.Segment + 1) $"T = {steps}: every multiple of k kept"

                for key in c.Kept.Keys do
                    Expect.equal (key % c.Segment) 0 $"T = {steps}: checkpoint {key} on a multiple of {c.Segment}"

            let budget = offer (Checkpointing.Budget(32L * 50L)) 1000
            Expect.isLessThanOrEqual (int64 budget.Kept.Count * 32L) (32L * 25L) "half the budget for checkpoints"
            Expect.equal (offer (Checkpointing.Segments 7) 100).Kept.Count 15 "every 7th of 100 steps"
            Expect.equal (offer Checkpointing.Off 100).Kept.Count 100 "Off keeps every start state"
        }

        test "Checkpointing with adaptive steps on the eager back end says where it runs" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let eager = compile Backend.Eager plane

            let o = {
                dopri 0.002 [| 0.1 |] with
                    Checkpointing = Checkpointing.Sqrt
            }

            let e = Expect.throwsC (fun () -> eager.Simulate(eager.Initial 1, o) |> ignore) id
            Expect.stringContains e.Message "Checkpointing = Sqrt" "names the value"
            Expect.stringContains e.Message "Backend.Auto or Backend.Kernels" "the fix"
        }

        test
            "Auto picks the kernels for Dopri5 (float64 and float32), Rodas4, Auto and KenCarp4 on grids and refuses the other schemes in float32 with reasons" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let auto = compile Backend.Auto plane
            let o = dopri 0.002 [| 0.1 |]
            Expect.equal (auto.BackendFor o) (Backend.Kernels, "") "Dopri5 forward"

            for scheme in [ Scheme.Rodas4; Scheme.Auto ] do
                Expect.equal (auto.BackendFor { o with Scheme = scheme }) (Backend.Kernels, "") $"{scheme}: the kernels"

            Expect.equal
                (auto.BackendFor { o with Scheme = Scheme.KenCarp4 })
                (Backend.Kernels, "")
                "KenCarp4 without implicit diffusion: the kernels"

            let single =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Dtype = torch.ScalarType.Float32
                    }
                    plane

            Expect.equal (single.BackendFor o) (Backend.Kernels, "") "float32 Dopri5: the float32 kernels"

            for scheme in [ Scheme.Rodas4; Scheme.Auto ] do
                let backend, why = single.BackendFor { o with Scheme = scheme }
                Expect.equal backend Backend.Eager $"float32 {scheme} runs eager"
                Expect.stringContains why $"run {scheme} in float64 only" $"float32 {scheme}: names the scheme"
                Expect.stringContains why "Float32" $"float32 {scheme}: names the dtype"
                Expect.stringContains why "Dtype = Float64" $"float32 {scheme}: the fix"

            let split = compileSplit true Backend.Auto plane

            Expect.equal
                (split.BackendFor { o with Scheme = Scheme.KenCarp4 })
                (Backend.Kernels, "")
                "KenCarp4 with implicit diffusion: the kernels"

            let splitSingle =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Dtype = torch.ScalarType.Float32
                            ImplicitDiffusion = true
                    }
                    plane

            let backend, why = splitSingle.BackendFor { o with Scheme = Scheme.KenCarp4 }
            Expect.equal backend Backend.Eager "float32 KenCarp4 runs eager"
            Expect.stringContains why "run KenCarp4 in float64 only" "float32 KenCarp4: says why"

            // The closure's network runs in float32 on the float32 kernels.
            let killSingle =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Dtype = torch.ScalarType.Float32
                            Seed = 3
                    }
                    (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())

            Expect.equal (killSingle.BackendFor o) (Backend.Kernels, "") "float32 Dopri5 with a closure: the kernels"
        }

        test "Dopri5 on the kernels converges to the exact solution of a decaying mode as the tolerance tightens" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let cells = 32
            let sim = compile Backend.Auto (decay cells)
            let dx = 1.0 / float cells
            let lambda = -(4.0 * 0.01 / (dx * dx)) * (sin (System.Math.PI * dx) ** 2.0) - 0.5
            let tEnd = 2.0

            let error (rtol: float) =
                use _ = torch.no_grad ()

                let o = {
                    dopri 0.01 [| tEnd |] with
                        Tolerance = {
                            Relative = rtol
                            Absolute = rtol * 1e-3
                        }
                }

                let traj = sim.Simulate(sim.Initial 1, o)
                Expect.equal traj.Backend Backend.Kernels "ran on the kernels"
                let got = traj.Values[0].reshape(-1L).data<float>().ToArray()

                got
                |> Array.mapi (fun i v ->
                    let x = (float i + 0.5) * dx
                    abs (v - cos (2.0 * System.Math.PI * x) * exp (lambda * tEnd)))
                |> Array.max

            let errors = [| 1e-3; 1e-5; 1e-7; 1e-9 |] |> Array.map (fun tol -> tol, error tol)

            for tol, e in errors do
                Expect.isLessThan e (10.0 * tol) $"error {e:G3} within 10× the tolerance {tol:G1}"

            for (t1, e1), (t2, e2) in Array.pairwise errors do
                // Error per step ∝ h⁵ and steps ∝ h⁻¹: 100× tighter tolerances shrink the global error ≥ 100^(4/5)/2.
                Expect.isLessThan e2 (e1 / 20.0) $"tolerance {t1:G1} → {t2:G1}: error {e1:G3} → {e2:G3}"
        }
    ]
