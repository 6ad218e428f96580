/// One simulator interface, two back ends: `Simulate` runs the generated kernels wherever they apply
/// (`Backend.Auto`) and the eager TorchSharp back end otherwise, with the same results and gradients.
module Hybrid.Tests.Compiler.BackendTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic

/// `Compiler.compile` with back end `backend` and seed 3 (shared with the adaptive kernel tests).
let compileWith (backend: Backend) (m: Model) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
                Seed = 3
        }
        m

let private options saveTimes = {
    Rollout.defaults with
        Dt = 0.002
        SaveTimes = saveTimes
}

/// The trajectory's values and the gradients of Σ u² over it with respect to every trainable tensor.
let private valuesAndGradients (sim: Simulator) (o: RolloutOptions) =
    for p in sim.Trainable() do
        p.grad <- null

    let traj = sim.Simulate(sim.Initial 2, o)

    let loss =
        traj.Values |> Array.map (fun v -> (square v).sum ()) |> Array.reduce (.+)

    loss.backward ()
    let values = traj.Values |> Array.map (fun v -> v.detach().clone ())
    let grads = sim.Trainable() |> Array.map (fun p -> p.grad.clone ())
    traj.Backend, values, grads

let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-12 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

let tests =
    testList "Backends" [
        test "Auto runs Fisher–KPP on the kernels with the eager back end's values and gradients (1e-10)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let m = CompilerTests.fisherKpp 24 0.02 1.5
            // T0 itself, then two whole numbers of steps.
            let o = options [| 0.0; 0.1; 0.3 |]
            let auto, eager = compileWith Backend.Auto m, compileWith Backend.Eager m
            Expect.equal (auto.BackendFor o) (Backend.Kernels, "") "Auto picks the kernels"
            Expect.equal (fst (eager.BackendFor o)) Backend.Eager "Eager stays eager"
            let ranK, valuesK, gradsK = valuesAndGradients auto o
            let ranE, valuesE, gradsE = valuesAndGradients eager o
            Expect.equal ranK Backend.Kernels "the result says the kernels ran"
            Expect.equal ranE Backend.Eager "the result says the eager back end ran"
            Expect.equal valuesK[0].shape valuesE[0].shape "same result shape [S; B; cells]"

            Expect.isLessThan (maxRelative valuesK[0] valuesE[0]) 1e-10 "values"

            for g in 0 .. gradsK.Length - 1 do
                Expect.isLessThan (maxRelative gradsK[g] gradsE[g]) 1e-10 $"gradient {g}"
        }

        test "Lorenz-96 (K = 40) on the kernels matches an independent RK4 to 1e-10 over 100 steps" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let sim = compileWith Backend.Auto (CompilerTests.lorenz96 40 8.0)

            let x0 =
                Array.init 40 (fun i -> 8.0 + (if i = 19 then 0.01 else 0.0) + 0.001 * sin (float i))

            let dt = 0.005

            let traj =
                use _ = torch.no_grad ()

                sim.Simulate(
                    [| torch.tensor(x0, dtype = torch.float64).reshape (1L, 40L) |],
                    {
                        Rollout.defaults with
                            Dt = dt
                            SaveTimes = [| 100.0 * dt |]
                    }
                )

            let expected = CompilerTests.referenceL96 x0 8.0 dt 100
            let got = traj.Values[0].reshape(-1L).data<float>().ToArray()
            Expect.equal traj.Backend Backend.Kernels "ran on the kernels"
            Expect.isLessThan (Array.map2 (fun a b -> abs (a - b)) got expected |> Array.max) 1e-10 "matches"
        }

        test "a neural closure shares its network: the kernels' weight gradients equal the eager ones (1e-10)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let m = CompilerTests.fisherWithKill ()
            let o = options [| 0.05; 0.1 |]
            let auto, eager = compileWith Backend.Auto m, compileWith Backend.Eager m
            let ranK, valuesK, gradsK = valuesAndGradients auto o
            let _, valuesE, gradsE = valuesAndGradients eager o
            Expect.equal ranK Backend.Kernels "kernels ran"
            // Both were seeded alike, so the networks start equal; the gradients reach θ and every weight.
            Expect.equal gradsK.Length gradsE.Length "same trainable tensors"
            Expect.isGreaterThan gradsK.Length 2 "θ and the network's weights"
            Expect.isLessThan (maxRelative valuesK[0] valuesE[0]) 1e-10 "values"

            for g in 0 .. gradsK.Length - 1 do
                Expect.isLessThan (maxRelative gradsK[g] gradsE[g]) 1e-10 $"gradient {g}"
        }

        test "Auto falls back to eager, and says why, where the kernels do not apply; Kernels refuses" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let m = CompilerTests.fisherKpp 16 0.02 1.5
            let auto = compileWith Backend.Auto m
            let kernels = compileWith Backend.Kernels m
            // A time event stops and restarts the integration: the kernels run one uninterrupted schedule.
            let withEvent = {
                options [| 0.01 |] with
                    Events = [|
                        {
                            Time = 0.005
                            Jump = Array.map (fun u -> u * 0.5)
                        }
                    |]
            }

            let backend, why = auto.BackendFor withEvent
            Expect.equal backend Backend.Eager "a time event"
            Expect.stringContains why "time events" "the reason names the events"
            Expect.equal (auto.Simulate(auto.Initial 1, withEvent)).Backend Backend.Eager "ran eager"
            // 0.003 is 1.5 steps of 0.002: both back ends shorten the step before it.
            Expect.equal (auto.BackendFor(options [| 0.003; 0.01 |])) (Backend.Kernels, "") "off the step grid"

            let imex = {
                options [| 0.01 |] with
                    Scheme = Scheme.ImexEuler
            }

            Expect.equal (auto.BackendFor imex) (Backend.Kernels, "") "fixed-step IMEX schemes run on the kernels"

            let e =
                Expect.throwsC (fun () -> kernels.Simulate(kernels.Initial 1, withEvent) |> ignore) id

            Expect.stringContains e.Message "cannot run on the generated kernels" "Kernels refuses"
            Expect.stringContains e.Message "Backend.Auto" "and names the fix"
            Expect.equal (kernels.Simulate(kernels.Initial 1, options [| 0.01 |])).Backend Backend.Kernels "on the grid"
        }

        test "KenCarp4 runs on the kernels on a compiled model with implicit diffusion, agreeing with eager and Rodas4" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let m = CompilerTests.fisherKpp 32 0.5 1.5

            let compile backend =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = backend
                            ImplicitDiffusion = true
                            Seed = 3
                    }
                    m

            let auto = compile Backend.Auto
            let kernels = compile Backend.Kernels

            let o = {
                options [| 0.05; 0.1 |] with
                    Scheme = Scheme.KenCarp4
                    Tolerance = { Relative = 1e-8; Absolute = 1e-10 }
            }

            Expect.equal (auto.BackendFor o) (Backend.Kernels, "") "Auto picks the kernels"
            let u0 = auto.Initial 1
            let traj = auto.Simulate(u0, o)
            Expect.equal traj.Backend Backend.Kernels "ran on the kernels"
            let onKernels = kernels.Simulate(u0, o)
            Expect.equal onKernels.Backend Backend.Kernels "Backend.Kernels runs it"
            let eager = compile Backend.Eager
            let traj2 = eager.Simulate(u0, o)
            Expect.equal traj2.Backend Backend.Eager "ran eager"

            Expect.isLessThan
                ((traj.Values[0] - traj2.Values[0]).abs().max().ToDouble())
                1e-10
                "kernels and eager agree"
            // The same model by Rodas4 (all terms through its exact Jacobian) at a tight tolerance.
            let reference =
                auto.Simulate(
                    u0,
                    {
                        o with
                            Scheme = Scheme.Rodas4
                            Tolerance = { Relative = 1e-9; Absolute = 1e-11 }
                    }
                )

            let err = (traj.Values[0] - reference.Values[0]).abs().max().ToDouble()
            Expect.isLessThan err 1e-6 "KenCarp4 agrees with Rodas4"
        }
    ]
