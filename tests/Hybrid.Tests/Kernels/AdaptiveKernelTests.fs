/// Dopri5, Rodas4 and Auto on the generated kernels (`AdaptiveKernels`) against the eager back end on the test-set
/// problems: the same steps (accepted and rejected counts) and the same states to round-off; what the kernels refuse
/// and why; which back end `Backend.Auto` picks.
module Hybrid.Tests.Kernels.AdaptiveKernelTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

let private compileWith (backend: Backend) (text: string) =
    Hybrid.Tests.Compiler.BackendTests.compileWith backend (Parse.model text)

/// Options of problem `p` at relative tolerance `rtol` (absolute tolerances per field from `p.Scale`), saving at
/// `saves`.
let private options (p: IvpTestSet.Problem) (fields: string[]) (scheme: Scheme) (rtol: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = p.FirstStep
        SaveTimes = saves
        Tolerance = {
            Relative = rtol
            Absolute = rtol * Array.min p.Scale
        }
        FieldTolerances =
            fields
            |> Array.mapi (fun i f ->
                f,
                {
                    Relative = rtol
                    Absolute = rtol * p.Scale[i]
                })
            |> Map.ofArray
}

/// Runs `sim` forward (no gradients) and returns the back end that ran, the step counts and the saved values.
let private run (sim: Simulator) (o: RolloutOptions) =
    use _ = torch.no_grad ()
    let traj = sim.Simulate(sim.Initial 1, o)

    let values =
        traj.Values |> Array.map (fun v -> v.reshape(-1L).data<float>().ToArray())

    traj.Backend, Rollout.lastSteps (), values, Rollout.lastAuto ()

/// The largest difference over every saved value of every field, relative to that field's largest magnitude.
let private maxRelative (a: float[][]) (b: float[][]) =
    Array.map2
        (fun (x: float[]) (y: float[]) ->
            let scale = y |> Array.map abs |> Array.max |> max 1e-300
            Array.map2 (fun u v -> abs (u - v) / scale) x y |> Array.max)
        a
        b
    |> Array.max

/// Kernel against eager: same back-end labels, same steps, states within `bound` (relative to each field's size).
let private agree (p: IvpTestSet.Problem) (scheme: Scheme) (rtol: float) (saves: float[]) (bound: float) =
    let auto = compileWith Backend.Auto p.Text
    let eager = compileWith Backend.Eager p.Text
    let o = options p auto.Fields scheme rtol saves
    let ranK, stepsK, valuesK, autoK = run auto o
    let ranE, stepsE, valuesE, autoE = run eager o
    Expect.equal ranK Backend.Kernels "the kernels ran"
    Expect.equal ranE Backend.Eager "the eager back end ran"
    Expect.equal stepsK stepsE "the same accepted and rejected steps"
    Expect.isGreaterThan (fst stepsK) 5 "a real run"

    if scheme = Scheme.Auto then
        Expect.equal autoK autoE "Auto chose alike"

    let difference = maxRelative valuesK valuesE
    Expect.isLessThan difference bound $"states agree to round-off ({difference:G3}; steps {stepsK})"
    autoK

let tests =
    testList "Adaptive kernels" [
        test "Dopri5 on the kernels takes the eager steps on HIRES, ROBER and VDPOL (states to 1e-12)" {
            agree IvpTestSet.hires Scheme.Dopri5 1e-6 [| 0.5; 1.0; 2.0 |] 1e-12 |> ignore
            agree IvpTestSet.robertson Scheme.Dopri5 1e-5 [| 0.01; 0.02 |] 1e-12 |> ignore
            agree IvpTestSet.vanDerPol Scheme.Dopri5 1e-5 [| 0.05; 0.1 |] 1e-12 |> ignore
        }

        test "Rodas4 on the kernels takes the eager steps on HIRES, ROBER and VDPOL (states to 1e-11)" {
            agree IvpTestSet.hires Scheme.Rodas4 1e-5 [| 10.0; IvpTestSet.hires.End |] 1e-11
            |> ignore

            agree IvpTestSet.robertson Scheme.Rodas4 1e-5 [| 1.0; 1e5; IvpTestSet.robertson.End |] 1e-11
            |> ignore

            agree IvpTestSet.vanDerPol Scheme.Rodas4 1e-5 [| 1.0; IvpTestSet.vanDerPol.End |] 1e-11
            |> ignore
        }

        test "Auto on the kernels switches where the eager back end does, with its steps (HIRES, ROBER, VDPOL)" {
            let hires = agree IvpTestSet.hires Scheme.Auto 1e-5 [| 10.0; 50.0 |] 1e-11
            Expect.stringContains hires "then Rodas4" "HIRES turns stiff"
            let rober = agree IvpTestSet.robertson Scheme.Auto 1e-5 [| 1.0; 100.0 |] 1e-11
            Expect.stringContains rober "then Rodas4" "ROBER turns stiff"
            agree IvpTestSet.vanDerPol Scheme.Auto 1e-5 [| 1.0; 5.0 |] 1e-11 |> ignore
        }

        test "Auto picks the point kernels for forward solves and the Rodas4 stepper kernels with gradients" {
            let p = IvpTestSet.hires
            let auto = compileWith Backend.Auto p.Text
            let o = options p auto.Fields Scheme.Rodas4 1e-5 [| 1.0 |]

            let forward () =
                use _ = torch.no_grad ()
                auto.BackendFor o

            Expect.equal (forward ()) (Backend.Kernels, "") "forward: kernels"

            // Gradients wanted: a parameter requires grad with grad mode on.
            use _ = torch.enable_grad ()
            let u0 = auto.Initial 1 |> Array.map (fun x -> x.detach().requires_grad_ true)
            Expect.equal (auto.BackendFor(o, u0)) (Backend.Kernels, "") "gradients: the kernels (RosenbrockStepper)"
            let traj = auto.Simulate(u0, o)
            Expect.equal traj.Backend Backend.Kernels "ran on the kernels"
            Expect.isTrue traj.Values[0].requires_grad "with a graph"
        }

        test
            "Rodas4 runs on the kernels on a grid, with a neural closure and with a closure over whole fields; above 1,000 unknowns the latter matrix-free, where the eager back end refuses" {
            let heat =
                "model heat\ndomain interval [0, 1] cells 8\nfield u\nparam D = 0.1\ndu/dt = D lap(u)\nboundary u noflux\ninitial u = cos(3*x)"

            let o = {
                Rollout.defaults with
                    Scheme = Scheme.Rodas4
                    SaveTimes = [| 0.1 |]
            }

            use _ = torch.no_grad ()
            let auto = compileWith Backend.Auto heat
            Expect.equal (auto.BackendFor o) (Backend.Kernels, "") "a grid runs on the kernels"
            Expect.equal (auto.Simulate(auto.Initial 1, o)).Backend Backend.Kernels "ran on the kernels"
            let closure = Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()
            let withNet = Hybrid.Tests.Compiler.BackendTests.compileWith Backend.Auto closure
            Expect.equal (withNet.BackendFor o) (Backend.Kernels, "") "a per-cell neural closure runs on the kernels"
            Expect.equal (withNet.Simulate(withNet.Initial 1, o)).Backend Backend.Kernels "ran on the kernels"

            // The same closure as a CNN over the whole line: its Jacobian couples every cell (dense, as eager).
            let cnn = {
                closure with
                    Closures =
                        closure.Closures
                        |> List.map (fun c -> {
                            c with
                                Architecture = Architecture.Cnn([ 2; 3; 1 ], 3, Activation.Tanh)
                        })
            }

            let withCnn = Hybrid.Tests.Compiler.BackendTests.compileWith Backend.Auto cnn
            Expect.equal (withCnn.BackendFor o) (Backend.Kernels, "") "a closure over whole fields runs on the kernels"
            Expect.equal (withCnn.Simulate(withCnn.Initial 1, o)).Backend Backend.Kernels "ran on the kernels"

            // On 1,200 cells its dense Jacobian is above the eager back end's limit: the kernels solve it matrix-free.
            let large = cnn |> Model.withDomain (Domain.Interval(0.0, 1.0, 1200))
            let auto = Hybrid.Tests.Compiler.BackendTests.compileWith Backend.Auto large
            Expect.equal (auto.BackendFor o) (Backend.Kernels, "") "1,200 unknowns: the kernels"
            // A short run (its values are tested in "Rosenbrock kernels" and "Kernels over whole fields").
            let ran = auto.Simulate(auto.Initial 1, { o with SaveTimes = [| 0.01 |] })
            Expect.equal ran.Backend Backend.Kernels "ran on the kernels"
            let eager = Hybrid.Tests.Compiler.BackendTests.compileWith Backend.Eager large

            let e = Expect.throwsC (fun () -> eager.Simulate(eager.Initial 1, o) |> ignore) id

            Expect.stringContains
                e.Message
                "1200 unknowns per trajectory (fields u), above the limit of 1000"
                "eager refuses"

            Expect.stringContains e.Message "matrix-free above this limit" "and points to the kernels"
        }
    ]
