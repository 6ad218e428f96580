/// Rodas4 on the kernels keeps its steps for the backward pass (`RosenbrockStepper` as an `IKeepingStepper`): each
/// kept step holds its stages and its linear system (J probed, A factored or its blocks formed), so the adjoint forms
/// no system again, and a rollout with gradients keeps its last accepted steps already in the forward pass
/// (`KernelMethod.KeptAt`). Counted by the systems the stepper forms (`RosenbrockStepper.Systems`): the forward
/// pass one per attempt, the backward pass none where every accepted step fits the kept budget, against at least one
/// per accepted step when the stages are recomputed (`TapedRollout.keepStages` off); the gradients equal the
/// recomputing adjoint's to 1e-12. With a budget of two steps and checkpoints every three accepted steps, the
/// backward pass replays the rest in chunks of two (the forward pass's window ending inside a segment), to the same
/// gradients, forming fewer systems than recomputing. On a 1-D grid whose right-hand side reads the time (the forward
/// difference's state kept too), a 1-D neural closure (its graphs kept, those of rejected attempts discarded), a 2-D
/// grid (BiCGSTAB's blocks kept) and a stiff point system (the dense inverse kept). Auto, once it has switched to Rodas4,
/// keeps its Rodas4 steps in the forward pass too, and the backward pass replays its earlier Rodas4 steps keeping their
/// systems (the steps before the switch are Dopri5's, replayed plainly): on a stiff 1-D grid with a neural closure, its
/// backward pass forms no system with the default budget, one per Rodas4 step outside a window of three, to the same
/// gradients.
module Hybrid.Tests.Kernels.RosenbrockKeepingTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels

/// A 1-D reaction–diffusion pair forced in time (F reads t: Rodas4 differentiates F in t).
let private forcedLine =
    Parse.model
        "model forced\ndomain interval [0, 1] cells 40\nfield u\nfield v\nparam D = 0.05\nparam r = 3\ndu/dt = D*lap(u) + r*u*(1 - u) - u*v + 0.2*sin(5*t)\ndv/dt = D*lap(v) + u - 2*v\nboundary u noflux\nboundary v dirichlet 0.1\ninitial u = 0.5 + 0.4*cos(6.283185307179586*x)\ninitial v = 0.2"

/// A Rodas4 rollout of `model` with gradients on the kernels (`AdaptiveGridKernelTests.runWithGradientsThen`),
/// keeping the stages (`keep`) or recomputing them, the kept budget `keptSteps` steps (None: the default): the
/// accepted and rejected steps, the systems formed by the forward and by the backward pass, the values and the
/// gradients, and the kept budget in steps.
let private run (model: Model) (o: RolloutOptions) (keep: bool) (keptSteps: int option) =
    let sim = AdaptiveGridKernelTests.compileSplit false Backend.Auto model

    // Auto's Rodas4 stepper is its own, beside its Dopri5 stepper.
    let stepper =
        match sim.KernelsOf o.Scheme with
        | Ok kernels when o.Scheme = Scheme.Auto -> kernels.Rosenbrock 2
        | Ok kernels -> kernels.Stepper 2 :?> RosenbrockStepper
        | Error why -> failwith why

    keptSteps
    |> Option.iter (fun n -> stepper.KeptBytes <- int64 n * stepper.KeptStepBytes)

    TapedRollout.keepStages <- keep

    try
        let mutable forward = 0L

        let _, ran, steps, values, grads =
            AdaptiveGridKernelTests.runWithGradientsThen (fun () -> forward <- stepper.Systems) sim o

        Expect.equal ran Backend.Kernels "the kernels ran"
        steps, forward, stepper.Systems - forward, values, grads, (stepper :> IKeepingStepper<float>).KeptSteps
    finally
        TapedRollout.keepStages <- true

/// The largest difference relative to b's largest magnitude.
let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-300 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

/// Kept and recomputed runs give the same values and gradients (1e-12 relative).
let private same (name: string) (kept: torch.Tensor[]) (recomputed: torch.Tensor[]) =
    Expect.equal kept.Length recomputed.Length $"{name}: as many tensors"

    for i in 0 .. kept.Length - 1 do
        let d = maxRelative kept[i] recomputed[i]
        Expect.isLessThan d 1e-12 $"{name} {i}: kept and recomputed agree ({d:G3})"

/// `model` under `o` (at least `minSteps` accepted steps, some rejected when `rejects`): kept with the default
/// budget, the forward pass forms one system per attempt and the backward pass none; recomputed, the backward pass
/// forms at least one per accepted step; with a budget of two steps and checkpoints every 3 accepted steps, fewer
/// than recomputing under the same checkpoints and at least one per step outside the forward pass's window; the
/// same values and gradients throughout.
let private keepsSystems (model: Model) (o: RolloutOptions) (minSteps: int) (rejects: bool) =
    Engine.init ()
    use _ = torch.NewDisposeScope()

    let (accepted, rejected), forward, backward, values, grads, budget =
        run model o true None

    let name = model.Name
    Expect.isGreaterThanOrEqual accepted minSteps $"{name}: a real run ({accepted} accepted)"

    if rejects then
        Expect.isGreaterThan rejected 0 $"{name}: some attempts rejected"

    Expect.isLessThanOrEqual accepted budget $"{name}: every accepted step fits the kept budget ({budget} steps)"
    Expect.equal forward (int64 (accepted + rejected)) $"{name}: one system per attempt in the forward pass"
    Expect.equal backward 0L $"{name}: the backward pass forms no system"

    let steps, _, recomputing, recomputedValues, recomputedGrads, _ =
        run model o false None

    Expect.equal steps (accepted, rejected) $"{name}: the same steps recomputing"
    Expect.isGreaterThanOrEqual recomputing (int64 accepted) $"{name}: recomputing forms one per step at least"
    same $"{name} value" values recomputedValues
    same $"{name} gradient" grads recomputedGrads

    let segments = {
        o with
            Checkpointing = Checkpointing.Segments 3
    }

    let _, _, chunked, chunkedValues, chunkedGrads, two =
        run model segments true (Some 2)

    Expect.equal two 2 $"{name}: a budget of two steps"
    let _, _, recomputingSegments, _, _, _ = run model segments false None

    Expect.isLessThan
        chunked
        recomputingSegments
        $"{name}: chunks of two form fewer systems ({chunked}) than recomputing ({recomputingSegments})"

    Expect.isGreaterThanOrEqual chunked (int64 (accepted - 2)) $"{name}: every step outside the window formed again"
    same $"{name} value (chunks of two)" chunkedValues values
    same $"{name} gradient (chunks of two)" chunkedGrads grads

/// Auto on `model` under `o` (it switches to Rodas4 after at least one Dopri5 step): kept with the default budget, the
/// backward pass forms no system (every Rodas4 step kept by the forward pass), where recomputing forms at least one
/// per Rodas4 step; with checkpoints every 3 accepted steps and a budget of three steps, one per Rodas4 step outside
/// the window (replayed keeping its system, where recomputing forms two: replay and adjoint); with a budget of two,
/// fewer than recomputing; the same values and gradients throughout.
let private autoKeepsSystems (model: Model) (o: RolloutOptions) =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let name = model.Name

    let (accepted, rejected), forward, backward, values, grads, budget =
        run model o true None

    Expect.stringContains (Rollout.lastAuto ()) "then Rodas4" $"{name}: it turned stiff"
    // Rodas4's attempts: one system each.
    Expect.isGreaterThan forward 2L $"{name}: Rodas4 took steps ({forward} attempts)"
    Expect.isLessThan forward (int64 (accepted + rejected)) $"{name}: Dopri5 took the first ones"
    Expect.isLessThanOrEqual forward (int64 budget) $"{name}: every Rodas4 attempt fits the kept budget"
    Expect.equal backward 0L $"{name}: the backward pass forms no system"

    let steps, _, recomputing, recomputedValues, recomputedGrads, _ =
        run model o false None

    Expect.equal steps (accepted, rejected) $"{name}: the same steps recomputing"
    Expect.isGreaterThan recomputing 2L $"{name}: recomputing forms systems again ({recomputing})"
    same $"{name} value" values recomputedValues
    same $"{name} gradient" grads recomputedGrads

    let segments = {
        o with
            Checkpointing = Checkpointing.Segments 3
    }

    let _, _, recomputingSegments, _, _, _ = run model segments false None

    // A budget of three steps, one segment: the window holds the last three; every other Rodas4 step is replayed once,
    // keeping its system for its adjoint (Dopri5's before the switch are replayed plainly, forming none).
    let _, _, replayed, replayedValues, replayedGrads, _ =
        run model segments true (Some 3)

    Expect.isLessThanOrEqual
        replayed
        (forward - 3L)
        $"{name}: one system per Rodas4 step outside a window of three ({replayed}; recomputing {recomputingSegments})"

    Expect.isGreaterThanOrEqual
        replayed
        (forward - int64 rejected - 3L)
        $"{name}: every Rodas4 step outside the window formed again"

    same $"{name} value (a window of three)" replayedValues values
    same $"{name} gradient (a window of three)" replayedGrads grads

    // A budget of two: chunks of two inside segments of three, a chunk also starting at the switch.
    let _, _, chunked, chunkedValues, chunkedGrads, _ = run model segments true (Some 2)

    Expect.isGreaterThanOrEqual
        chunked
        (forward - int64 rejected - 2L)
        $"{name}: the Rodas4 steps outside a window of two formed again"

    Expect.isLessThan
        chunked
        recomputingSegments
        $"{name}: chunks of two form fewer systems ({chunked}) than recomputing ({recomputingSegments})"

    same $"{name} value (a window of two)" chunkedValues values
    same $"{name} gradient (a window of two)" chunkedGrads grads

let tests =
    testSequenced
    <| testList "Rodas4 keeps its steps for the backward pass" [
        test "a 1-D grid whose right-hand side reads the time (banded solves)" {
            keepsSystems forcedLine (RosenbrockKernelTests.rodas 1e-6 1e-3 [| 0.05; 0.2 |]) 8 false
        }

        test "a 1-D neural closure (its graphs kept)" {
            keepsSystems
                (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
                (RosenbrockKernelTests.rodas 1e-6 0.01 [| 0.1; 0.3 |])
                4
                false
        }

        test "a 2-D grid (BiCGSTAB's blocks kept)" {
            keepsSystems
                (AdaptiveGridKernelTests.planeOf 6 7)
                (RosenbrockKernelTests.rodas 1e-6 0.01 [| 0.13; 0.4 |])
                6
                false
        }

        test "Auto after it switches to Rodas4: a stiff 1-D grid with a neural closure" {
            autoKeepsSystems RosenbrockKernelTests.stiffKill {
                RosenbrockKernelTests.rodas 1e-6 1e-4 [| 0.1; 0.3 |] with
                    Scheme = Scheme.Auto
            }
        }

        test "a stiff point system (the dense inverse kept; rejected attempts)" {
            keepsSystems RosenbrockKernelTests.vanDerPol (RosenbrockKernelTests.rodas 1e-6 0.01 [| 1.0; 3.0 |]) 20 true
        }
    ]
