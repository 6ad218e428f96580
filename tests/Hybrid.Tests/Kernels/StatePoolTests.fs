/// The kernels' state pool (`StatePool`) and kept-step pool (`KeptPool`): what they hand out and keep, and that
/// rollouts renting their working states and kept steps
/// from them (fixed steps; adaptive Dopri5, KenCarp4, Rodas4 and Auto on grids) compute the same bits whatever the spare
/// states held before (poisoned with NaN), run after other rollouts, and that a second backward pass over the same
/// graph (retain_graph) gives the same gradients after another rollout has reused the pool in between.
module Hybrid.Tests.Kernels.StatePoolTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Kernels

let private f64 = torch.ScalarType.Float64

/// Whether `a` and `b` hold the same numbers, bit for bit (NaN differs from everything).
let private same (a: torch.Tensor) (b: torch.Tensor) =
    a.shape = b.shape && (a - b).abs().max().ToDouble() = 0.0

/// `model` compiled for the eager back end (its initial state and parameter values).
let private eager (model: Model) =
    Hybrid.Compiler.Compiler.compile
        {
            Hybrid.Compiler.Compiler.defaults with
                Backend = Backend.Eager
        }
        model

/// The saved states and the gradients of Σ s·w over them (w varies over the flat index) with respect to u0 and θ,
/// of the rollout `roll` (u0, θ ↦ saved states per field) from u0 = the model's initial state scaled by `scale`; as
/// float64 copies. `between` runs after the first backward pass, before a second one over the same graph
/// (retain_graph), whose gradients (the accumulated ones less the first) come back too.
let private runWith
    (roll: torch.Tensor[] -> torch.Tensor[] -> torch.Tensor[])
    (model: Model)
    (scale: float)
    (between: unit -> unit)
    =
    use _ = torch.NewDisposeScope()

    let compiled = eager model

    let theta =
        compiled.Theta() |> Array.map (fun t -> t.detach().clone().requires_grad_ true)

    let u0 =
        compiled.Initial 1
        |> Array.map (fun t -> t.detach().mul(torch.tensor (scale, dtype = f64)).requires_grad_ true)

    let saved = roll u0 theta

    let loss =
        saved
        |> Array.map (fun s ->
            let w =
                torch
                    .arange(s.numel (), dtype = f64)
                    .mul(torch.tensor (0.03, dtype = f64))
                    .sin()
                    .mul(torch.tensor (0.5, dtype = f64))
                    .add(torch.tensor (1.0, dtype = f64))
                    .reshape (s.shape)

            (s * w).sum ())
        |> Array.reduce (+)

    let keep (t: torch.Tensor) =
        t.detach().clone().DetachFromDisposeScope()

    loss.backward (retain_graph = true)

    let grads () =
        Array.append u0 theta |> Array.map (fun t -> keep t.grad)

    let first = grads ()
    between ()
    loss.backward ()

    let second =
        Array.map2 (fun (total: torch.Tensor) (g: torch.Tensor) -> keep (total - g)) (grads ()) first

    saved |> Array.map keep, first, second

/// `runWith` on 12 RK4 steps of `sim`, saving every 3 steps, checkpoints every 4.
let private run (sim: KernelSimulator) =
    runWith (fun u0 theta -> Kernels.rollout sim u0 theta 0.0 0.002 12 3 4)

/// Fills the stepper's pool with 40 spare states of NaN, more than a rollout rents: a state read before it is written
/// (a rented state used as zeros without asking for zeros) turns the results into NaN.
let private poison (stepper: IStepper<float>) =
    let pool = StatePool.Of stepper
    let states = Array.init 40 (fun _ -> pool.Rent false)

    for s in states do
        for a in s do
            Array.fill a 0 a.Length nan

    states |> Array.iter pool.Return
    Expect.isGreaterThan pool.SpareBytes 0L "spare states kept"

/// Expects `reference`'s saved states and gradients (`runWith`) from a rerun: the same bits, and from its second
/// backward pass too.
let private expectSame (reference, grads, _) (again, gradsAgain, second) =
    Array.iteri2 (fun f a b -> Expect.isTrue (same a b) $"saved states of field {f}: the same bits") again reference
    Array.iteri2 (fun i a b -> Expect.isTrue (same a b) $"gradient {i}: the same bits") gradsAgain grads

    Array.iteri2
        (fun i a b -> Expect.isTrue (same a b) $"gradient {i}, second backward pass after another rollout")
        second
        grads

/// `scheme` (Dopri5, KenCarp4 with implicit diffusion, Rodas4 or Auto) on `model` with options `o` on the kernels,
/// then again after its stepper's pool is poisoned (`poison`), with a second backward pass after another rollout
/// (`expectSame`); at least `minSteps` accepted, so that checkpoints past step 0 are kept, released and recomputed.
let private adaptiveAgrees (scheme: Scheme) (model: Model) (o: RolloutOptions) (minSteps: int) =
    Engine.init ()
    let system = Hybrid.Compiler.ResolvedSystem.ofModel model

    let kernels =
        Kernels.compileSystem Kernels.defaults scheme (Hybrid.Compiler.ImexSplit.split system true) system

    let o = { o with Scheme = scheme }

    let roll u0 theta =
        (Hybrid.Compiler.KernelRollout.runAdaptiveStepper kernels u0 theta o).Values

    let reference = runWith roll model 1.0 ignore
    let steps = Rollout.lastSteps ()
    Expect.isGreaterThanOrEqual (fst steps) minSteps $"{scheme}: a real run ({steps})"
    poison (kernels.StepperOf<float> 1)
    expectSame reference (runWith roll model 1.0 (fun () -> runWith roll model 0.5 ignore |> ignore))

let tests =
    testList "Kernels.State pool" [
        test "a pool gives back the states it was given (zeroed on request) and keeps at most its byte limit" {
            let made = ref 0

            let pool =
                StatePool<float>(
                    (fun () ->
                        made.Value <- made.Value + 1
                        [| Array.zeroCreate 60; Array.zeroCreate 40 |]),
                    1000L
                )

            let a = pool.Rent true
            Expect.equal made.Value 1 "an empty pool makes a state"

            for x in a do
                Array.fill x 0 x.Length 7.0

            pool.Return a
            Expect.equal pool.SpareBytes 800L "one spare state: 100 values of 8 bytes"
            let b = pool.Rent false
            Expect.isTrue (obj.ReferenceEquals(a, b)) "the spare state comes back"
            Expect.isTrue (b |> Array.forall (Array.forall ((=) 7.0))) "as it was, when not zeroed"
            pool.Return b
            let c = pool.Rent true
            Expect.isTrue (obj.ReferenceEquals(a, c)) "the same state again"
            Expect.isTrue (c |> Array.forall (Array.forall ((=) 0.0))) "zeroed on request"
            let d = pool.Rent true
            Expect.equal made.Value 2 "no spare state left: a new one"
            pool.Return c
            pool.Return d
            Expect.equal pool.SpareBytes 800L "the second would pass 1,000 bytes: left to the collector"
            pool.Return null
            Expect.equal pool.SpareBytes 800L "null: nothing"
        }

        test
            "rollouts on pooled states give the same bits after the spare states are poisoned, and a second backward pass after another rollout gives the same gradients" {
            Engine.init ()
            let model = SimdKernelTests.plane 7 5
            let sim = Kernels.compile Scheme.Rk4 model
            let reference = run sim model 1.0 ignore
            poison (sim.StepperOf<float> 1)
            expectSame reference (run sim model 1.0 (fun () -> run sim model 0.5 ignore |> ignore))
        }

        test
            "kept steps of closure networks go back to their pool, and rollouts on poisoned spare ones give the same bits" {
            Engine.init ()
            let model = Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()

            let sim =
                Kernels.compileWith
                    {
                        Kernels.defaults with
                            Modules = Map.ofArray (eager model).Modules
                    }
                    Scheme.Rk4
                    model

            let reference = run sim model 1.0 ignore
            let pool = KeptPool.Of(sim.StepperOf<float> 1 :?> IKeepingStepper<float>)
            // 12 steps in segments of 4: the forward pass keeps the last segment's 4, the backward pass replays the
            // other two into 4 more.
            Expect.isGreaterThan pool.SpareBytes 0L "the kept steps came back"
            let spare = pool.Rent 20

            for k in spare do
                for arrays in [ k.States; k.Inputs; k.Extra ] do
                    for xs in arrays do
                        for a in xs do
                            Array.fill a 0 a.Length nan

            pool.Return spare
            expectSame reference (run sim model 1.0 (fun () -> run sim model 0.5 ignore |> ignore))
        }

        test "a rollout without gradients (its tape keeps the initial state only) gives the same bits as one with them" {
            Engine.init ()
            let model = SimdKernelTests.plane 7 5
            let sim = Kernels.compile Scheme.Rk4 model
            let reference, _, _ = run sim model 1.0 ignore
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()

            let compiled = eager model

            let saved =
                Kernels.rollout sim (compiled.Initial 1) (compiled.Theta()) 0.0 0.002 12 3 4

            Array.iteri2 (fun f a b -> Expect.isTrue (same a b) $"field {f}: the same bits") saved reference
        }

        testList "adaptive rollouts on pooled states: the same bits after poisoning, and on a second backward pass" [
            let tolerance = { Relative = 1e-6; Absolute = 1e-9 }

            let on (saves: float[]) = {
                Rollout.defaults with
                    Dt = 0.01
                    SaveTimes = saves
                    Tolerance = tolerance
                    Checkpointing = Checkpointing.Segments 3
            }

            let plane = AdaptiveGridKernelTests.planeOf 8 9

            test "Dopri5 on a 2-D grid (saves at the start, inside steps and at the end)" {
                adaptiveAgrees Scheme.Dopri5 plane (on [| 0.0; 0.05; 0.13; 1.5 |]) 8
            }

            test "KenCarp4 with implicit diffusion on a 2-D grid (conjugate gradients; steps land on the saves)" {
                adaptiveAgrees Scheme.KenCarp4 plane (on [| 0.0; 0.05; 0.4; 1.5 |]) 6
            }

            test "Rodas4 on a 2-D grid (BiCGSTAB; saves inside steps)" {
                adaptiveAgrees Scheme.Rodas4 plane (on [| 0.05; 0.13; 0.4 |]) 6
            }

            test "Auto on a stiff 1-D grid: Dopri5, then Rodas4 (saves inside steps of both)" {
                adaptiveAgrees
                    Scheme.Auto
                    RosenbrockKernelTests.roberGrid
                    {
                        on [| 0.0; 0.002; 0.5; 5.0 |] with
                            Dt = 1e-4
                            Tolerance = { Relative = 1e-5; Absolute = 1e-10 }
                    }
                    20

                Expect.stringContains (Rollout.lastAuto ()) "then Rodas4" "it turned stiff"
            }
        ]
    ]
