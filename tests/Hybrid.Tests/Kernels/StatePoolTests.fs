/// The kernels' state pool (`StatePool`): what it hands out and keeps, and that rollouts renting their working states
/// from it compute the same bits whatever the spare states held before (poisoned with NaN), run after other rollouts,
/// and that a second backward pass over the same graph (retain_graph) gives the same gradients after another rollout
/// has reused the pool in between.
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
/// of 12 RK4 steps of `sim` from u0 = the model's initial state scaled by `scale`, saving every 3 steps, checkpoints
/// every 4; as float64 copies. `between` runs after the first backward pass, before a second one over the same graph
/// (retain_graph), whose gradients (the accumulated ones less the first) come back too.
let private run (sim: KernelSimulator) (model: Model) (scale: float) (between: unit -> unit) =
    use _ = torch.NewDisposeScope()

    let compiled = eager model

    let theta =
        compiled.Theta() |> Array.map (fun t -> t.detach().clone().requires_grad_ true)

    let u0 =
        compiled.Initial 1
        |> Array.map (fun t -> t.detach().mul(torch.tensor (scale, dtype = f64)).requires_grad_ true)

    let saved = Kernels.rollout sim u0 theta 0.0 0.002 12 3 4

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
            let reference, grads, _ = run sim model 1.0 ignore
            let pool = StatePool.Of(sim.StepperOf<float> 1)
            // Every spare state NaN, and more of them than a rollout rents: a state read before it is written (a
            // rented state used as zeros without asking for zeros) turns the results into NaN.
            let states = Array.init 40 (fun _ -> pool.Rent false)

            for s in states do
                for a in s do
                    Array.fill a 0 a.Length nan

            states |> Array.iter pool.Return
            Expect.isGreaterThan pool.SpareBytes 0L "spare states kept"
            let other () = run sim model 0.5 ignore |> ignore
            let again, gradsAgain, second = run sim model 1.0 other

            Array.iteri2
                (fun f a b -> Expect.isTrue (same a b) $"saved states of field {f}: the same bits")
                again
                reference

            Array.iteri2 (fun i a b -> Expect.isTrue (same a b) $"gradient {i}: the same bits") gradsAgain grads

            Array.iteri2
                (fun i a b -> Expect.isTrue (same a b) $"gradient {i}, second backward pass after another rollout")
                second
                grads
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
    ]
