/// How often the generated kernels run each closure network forward in a rollout with gradients. The backward pass
/// replays each checkpoint segment (of an adaptive run: each chunk of one) keeping every stage's network graphs for
/// the adjoint steps, so a network runs once per stage in the forward rollout and once in the backward pass: explicit
/// RK4 (a CNN over whole fields), the fixed-step IMEX schemes, adaptive Dopri5 and KenCarp4 (a per-cell closure in
/// the explicit part). A fixed-step rollout's forward pass keeps its last segment's graphs, which the backward pass
/// does not replay (a second backward pass over the same graph replays it). Each is counted against the adjoint that
/// recomputes the stages (`TapedRollout.keepStages` off, as before keeping), whose gradients the kept stages
/// reproduce.
module Hybrid.Tests.Kernels.NetworkCallTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Numerics
open Hybrid.Kernels

/// A network that counts its forward calls.
type private Counting(inner: torch.nn.Module<torch.Tensor, torch.Tensor>) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>("counting")
    let mutable calls = 0
    do this.register_module ("inner", inner) |> ignore

    /// Forward calls so far.
    member _.Calls = calls

    override _.forward(x: torch.Tensor) =
        calls <- calls + 1
        inner.forward x

/// The eager simulator of `model` (seed 3) and a kernel simulator of it for `scheme` (diffusion solved implicitly
/// under the IMEX schemes and KenCarp4) whose networks are the eager one's, counting their forward calls; and the
/// count so far.
let private countingSim (scheme: Scheme) (model: Model) =
    let compiled = Compiler.compile { Compiler.defaults with Seed = 3 } model

    let counting =
        compiled.Modules |> Array.map (fun (name, m) -> name, new Counting(m))

    let options = {
        Kernels.defaults with
            Modules =
                counting
                |> Array.map (fun (name, c) -> name, c :> torch.nn.Module<torch.Tensor, torch.Tensor>)
                |> Map.ofArray
    }

    let system = ResolvedSystem.ofModel model
    let sim = Kernels.compileSystem options scheme (ImexSplit.split system true) system
    compiled, sim, (fun () -> counting |> Array.sumBy (fun (_, c) -> c.Calls))

/// The networks' forward calls in `run θ` (a rollout returning the saved states) and in the backward pass of the sum
/// of their squares, and ∂L/∂θ (flattened), the backward pass keeping the replayed stages (`keep`) or recomputing
/// them.
let private callsOf (keep: bool) (calls: unit -> int) (run: torch.Tensor[] -> torch.Tensor[]) (theta0: torch.Tensor[]) =
    TapedRollout.keepStages <- keep

    try
        let theta = theta0 |> Array.map (fun t -> t.detach().clone().requires_grad_ true)
        let start = calls ()
        let saved = run theta
        let forward = calls () - start
        (saved |> Array.map (fun s -> s.square().sum ()) |> Array.reduce (+)).backward ()
        let backward = calls () - start - forward
        forward, backward, torch.cat (theta |> Array.map (fun t -> t.grad.reshape (-1L)), 0L)
    finally
        TapedRollout.keepStages <- true

/// Kept and recomputed gradients agree to 1e-12 relative.
let private sameGradients (kept: torch.Tensor) (recomputed: torch.Tensor) =
    let scale = max 1e-300 (recomputed.abs().max().ToDouble())
    let d = (kept - recomputed).abs().max().ToDouble() / scale
    Expect.isLessThan d 1e-12 $"kept and recomputed stages give the same ∂L/∂θ ({d:G3})"

/// `steps` fixed steps of size `dt` of `model` under `scheme` (`stages` evaluations of the explicit part per step;
/// `adjointCalls` of them in the recomputing adjoint of one step) checkpointed every `segment` ≤ 20 / `stages`
/// steps: once per stage forward, once per stage backward except in the last segment (kept by the forward pass;
/// a second backward pass over the same graph replays it too, to the same gradients), against (segment − 1) replays
/// per segment plus `adjointCalls` per step when the stages are recomputed.
let private fixedStep (scheme: Scheme) (model: Model) stages adjointCalls dt steps segment =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let compiled, sim, calls = countingSim scheme model
    let u0 = compiled.Initial 1

    let run theta =
        Kernels.rollout sim u0 theta 0.0 dt steps steps segment

    let forward, backward, kept = callsOf true calls run (compiled.Theta())
    let _, recomputing, recomputed = callsOf false calls run (compiled.Theta())
    let name = $"{scheme}, {steps} steps in segments of {segment}"
    Expect.equal forward (stages * steps) $"{name}: once per stage in the forward rollout"
    let lastSegment = steps - (steps - 1) / segment * segment

    Expect.equal
        backward
        (stages * (steps - lastSegment))
        $"{name}: once per stage in the backward pass (the replay) but in the last segment"

    let replays = steps - (steps + segment - 1) / segment

    Expect.equal
        recomputing
        (stages * replays + adjointCalls * steps)
        $"{name}: recomputing, the replays and {adjointCalls} per step"

    sameGradients kept recomputed

    // A second backward pass over the same graph: the forward pass's kept graphs are used up, so it replays the last
    // segment as well, to the same gradients.
    let theta =
        compiled.Theta() |> Array.map (fun t -> t.detach().clone().requires_grad_ true)

    let loss = run theta |> Array.map (fun s -> s.square().sum ()) |> Array.reduce (+)

    let flat (gs: System.Collections.Generic.IList<torch.Tensor>) =
        torch.cat (gs |> Seq.map (fun g -> g.reshape (-1L)) |> Array.ofSeq, 0L)

    let first = flat (torch.autograd.grad ([| loss |], theta, retain_graph = true))
    let before = calls ()
    let second = flat (torch.autograd.grad ([| loss |], theta))
    // The first backward pass gave its checkpoints back: the second one steps again from the initial state to the
    // last (the walk takes the step after it too), then replays every segment.
    let lastStart = (steps - 1) / segment * segment
    let restore = if lastStart > 0 then lastStart + 1 else 0

    Expect.equal
        (calls () - before)
        (stages * (restore + steps))
        $"{name}: a second backward pass restores the checkpoints and replays every segment"

    sameGradients second first
    sameGradients first recomputed

/// `model` on adaptive `scheme` (`stages` per step; Dopri5 reuses its last stage as the next attempt's first) from
/// first step `dt`, saving inside steps and at the end: the forward rollout runs each network once per stage
/// evaluated; the backward pass once per stage of each accepted step where every step is a checkpoint
/// (`Checkpointing.Off`), at most twice with O(√T) checkpoints (the chunks' start states replayed plainly), against
/// `adjointCalls` per accepted step when the stages are recomputed.
let private adaptive (scheme: Scheme) (model: Model) stages adjointCalls dt =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let compiled, sim, calls = countingSim scheme model
    let u0 = compiled.Initial 1

    let spec checkpointing : AdaptiveSpec = {
        Tolerances = Array.create sim.Fields.Length { Relative = 1e-6; Absolute = 1e-9 }
        T0 = 0.0
        FirstStep = dt
        SaveTimes = [| 0.05; 0.13; 0.3 |]
        MaxSteps = 100000
        FiniteCheckEvery = 0
        Record = false
        Checkpointing = checkpointing
    }

    let run checkpointing theta =
        AdaptiveRollout.run sim u0 theta (spec checkpointing)

    let forward, backward, kept =
        callsOf true calls (run Checkpointing.Off) (compiled.Theta())

    let accepted, rejected = Rollout.lastSteps ()
    Expect.isGreaterThan accepted 8 $"{scheme}: a real run ({accepted} accepted steps)"
    let firstSame = scheme = Scheme.Dopri5

    let attempts =
        if firstSame then
            stages + (stages - 1) * (accepted + rejected - 1)
        else
            stages * (accepted + rejected)

    Expect.equal forward attempts $"{scheme}: once per stage evaluated in the forward rollout"
    Expect.equal backward (stages * accepted) $"{scheme}: once per stage of each accepted step in the backward pass"

    let _, sqrtBackward, keptSqrt =
        callsOf true calls (run Checkpointing.Sqrt) (compiled.Theta())

    Expect.isLessThanOrEqual
        sqrtBackward
        (2 * stages * accepted)
        $"{scheme}: at most twice per stage of each accepted step with √T checkpoints"

    let _, recomputing, recomputed =
        callsOf false calls (run Checkpointing.Off) (compiled.Theta())

    Expect.equal recomputing (adjointCalls * accepted) $"{scheme}: recomputing, {adjointCalls} per accepted step"
    sameGradients kept recomputed
    sameGradients keptSqrt recomputed

let tests =
    testList "Network calls per stage on the kernels" [
        test
            "RK4, a CNN over whole fields: once per stage forward, once backward but in the last segment (3 + 4 per step recomputing)" {
            for steps, segment in [ 6, 3; 7, 3; 5, 5 ] do
                fixedStep Scheme.Rk4 FieldwiseKernelTests.cnnPlane 4 7 1e-3 steps segment
        }

        test
            "ImexEuler and ImexCrankNicolson, a closure in the explicit part: once per stage forward, once backward but in the last segment" {
            let fisher = Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()
            fixedStep Scheme.ImexEuler fisher 1 2 0.01 6 3
            fixedStep Scheme.ImexCrankNicolson fisher 2 4 0.01 7 3
        }

        test "Dopri5 on a grid with a closure: once per stage forward, once per accepted step's stage backward" {
            adaptive Scheme.Dopri5 (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()) 7 13 0.002
        }

        test
            "KenCarp4 with a closure in the explicit part: once per stage forward, once per accepted step's stage backward" {
            adaptive Scheme.KenCarp4 (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()) 6 12 0.01
        }
    ]
