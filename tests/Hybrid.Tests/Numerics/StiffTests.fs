/// Rodas4 and the exact Jacobian: the method's order, the Jacobian three ways (symbolic blocks, autograd,
/// analytic), the "Test Set for IVP Solvers" problems HIRES, Robertson and Van der Pol against their published
/// reference solutions, gradients of a stiff adaptive solve against finite differences, the continuous
/// extensions' orders (Dopri5 and Rodas4) and per-field tolerances.
module Hybrid.Tests.Numerics.StiffTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Compiler

let private f64 = torch.ScalarType.Float64

let private point = Grid.ofDomain Domain.Point

/// A state of 0-D fields, one trajectory: one [1] tensor per value.
let private state (values: float[]) =
    values |> Array.map (fun v -> torch.tensor ([| v |], dtype = f64))

let private values (u: torch.Tensor[]) = u |> Array.map (fun x -> x.ToDouble())

let private tolerance (relative: float) (absolute: float) = {
    Relative = relative
    Absolute = absolute
}

let private order (a: float) (b: float) = log (a / b) / log 2.0

/// u′ = −u², v′ = u·v from (1, 1): u = 1/(1 + t), v = 1 + t. Nonlinear and coupled (∂v′/∂u = v).
let private coupled =
    Dynamics.ofFunction [| "u"; "v" |] point (fun _ _ u -> [| -(square u[0]); u[0] .* u[1] |])

let private coupledExact (t: float) = [| 1.0 / (1.0 + t); 1.0 + t |]

/// The largest error against `exact` of n fixed steps over [0, 1] of an adaptive method's steps.
let private fixedSteps (m: AdaptiveMethod) (n: int) =
    use _ = torch.no_grad ()
    let h = 1.0 / float n
    let mutable u = state [| 1.0; 1.0 |]

    for i in 0 .. n - 1 do
        u <- (m.Attempt (float i * h) h u (m.Start (float i * h) u)).Next

    Array.map2 (fun a b -> abs (a - b)) (values u) (coupledExact 1.0) |> Array.max

/// The largest error at t = h/2 of one step of size h from the exact state at 0, read from the continuous
/// extension.
let private denseError (m: AdaptiveMethod) (h: float) =
    use _ = torch.no_grad ()
    let u = state [| 1.0; 1.0 |]
    let a = m.Attempt 0.0 h u (m.Start 0.0 u)

    Array.map2 (fun x y -> abs (x - y)) (values (a.Dense 0.5)) (coupledExact (h / 2.0))
    |> Array.max

/// The published reference solutions of HIRES, ROBER and VDPOL (`IvpTestSet`).
let private hiresReference = IvpTestSet.hires.Reference
let private robertsonReference = IvpTestSet.robertson.Reference
let private vanDerPolReference = IvpTestSet.vanDerPol.Reference

/// Robertson as a plain function (its Jacobian comes from autograd).
let private robertson =
    Dynamics.ofFunction [| "y1"; "y2"; "y3" |] point (fun _ _ y ->
        let y2y3 = 1e4 .* (y[1] .* y[2])
        let y2y2 = 3e7 .* square y[1]
        [| y2y3 .- 0.04 .* y[0]; 0.04 .* y[0] .- y2y3 .- y2y2; y2y2 |])

let private vanDerPol =
    Dynamics.ofFunction [| "y1"; "y2" |] point (fun _ _ y -> [|
        y[1]
        1000.0 .* ((1.0 .- square y[0]) .* y[1]) .- y[0]
    |])

let private adaptive scheme (tol: Tolerance) (dt: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = dt
        SaveTimes = saves
        Tolerance = tol
        FiniteCheckEvery = 0
}

/// Relative errors of the last saved state against a reference.
let private relativeErrors (trajectory: Trajectory) (reference: float[]) =
    trajectory.Values
    |> Array.mapi (fun i v ->
        let x = v[-1L].reshape(-1L).ToDouble()
        abs (x - reference[i]) / abs reference[i])

/// A decay chain a → b → ∅ with rates k1 = 100 (stiff) and k2 = 1 as a model: the compiler gives the Jacobian
/// blocks symbolically.
let private chainText =
    """
model chain
domain point
field a
field b
param k1 = 100
param k2 = 1
da/dt = -k1*a
db/dt = k1*a - k2*b
initial a = 1
initial b = 0
"""

/// b(T) of the chain from (1, 0): k1 (e^(−k1 T) − e^(−k2 T)) / (k2 − k1), and its derivatives by k1 and k2.
let private chainExact (k1: float) (k2: float) (t: float) =
    let e1, e2, d = exp (-k1 * t), exp (-k2 * t), k2 - k1
    let b = k1 * (e1 - e2) / d
    let dk2 = k1 * (t * e2 * d - (e1 - e2)) / (d * d)
    let dk1 = ((e1 - e2) - k1 * t * e1) / d + k1 * (e1 - e2) / (d * d)
    b, dk1, dk2

let tests =
    testList "Stiff Rodas4" [
        test "Rodas4 converges with order 4 on fixed steps, its error estimate with order 3" {
            let m =
                Rosenbrock.method coupled [||] false [| { Relative = 1e-6; Absolute = 1e-9 } |] (state [| 1.0; 1.0 |])

            let errors = [ 8; 16; 32 ] |> List.map (fixedSteps m)

            for a, b in List.pairwise errors do
                let p = order a b
                Expect.isTrue (p > 3.7 && p < 4.5) $"observed order {p} (errors {errors})"

            // The embedded solution (Next − Error) has local error O(h⁴): one step of h and of h/2.
            let local (h: float) =
                use _ = torch.no_grad ()
                let u = state [| 1.0; 1.0 |]
                let a = m.Attempt 0.0 h u [||]

                let embedded =
                    Array.map2 (fun (x: torch.Tensor) (e: torch.Tensor) -> (x .- e).ToDouble()) a.Next a.Error

                Array.map2 (fun x y -> abs (x - y)) embedded (coupledExact h) |> Array.max

            let p3 = order (local 0.1) (local 0.05)
            Expect.isTrue (p3 > 3.6 && p3 < 4.5) $"embedded order 3: local error like h⁴, observed {p3}"
        }

        test
            "a non-autonomous problem (∂f/∂t by a forward difference): u′ = −2t·u gives e^(−t²) within 10× the tolerance" {
            use _ = torch.no_grad ()

            let gaussian =
                Dynamics.ofFunction [| "u" |] point (fun _ t u -> [| (-2.0 * t) .* u[0] |])

            let saves = [| 0.5; 1.0; 2.0 |]
            let o = adaptive Scheme.Rodas4 (tolerance 1e-8 1e-8) 1e-3 saves

            let u =
                (Rollout.run gaussian [||] (state [| 1.0 |]) o).Values[0].reshape(-1L).data<float>().ToArray()

            Array.iter2
                (fun x t -> Expect.floatClose { absolute = 1e-7; relative = 0.0 } x (exp (-t * t)) $"u({t})")
                u
                saves
        }

        test "the Jacobian: symbolic blocks from the compiler = autograd per cell = autograd dense = analytic" {
            let model =
                Parse.model
                    """
model react
domain interval [0, 1] cells 5
field u
field v
param k = 2
du/dt = -k*u^2*v + sin(u)
dv/dt = u*v - exp(-v)
boundary u periodic
boundary v periodic
initial u = 0.5 + 0.3*sin(6*x)
initial v = 1 + 0.2*cos(4*x)
"""

            let sim = Compiler.compile Compiler.defaults model
            let dyn = sim.Dynamics
            let theta = sim.Theta()
            let u = sim.Initial 1
            use _ = torch.no_grad ()

            let blocks =
                match dyn.Jacobian with
                | JacobianForm.Blocks b -> b theta 0.0 u
                | other -> failtest $"a pointwise model gets symbolic blocks, got {other}"

            Expect.sequenceEqual blocks.shape [| 1L; 5L; 2L; 2L |] "[B; cells; fields; fields]"
            let layout = Jacobian.layout "Rodas4" dyn u
            let byAutograd = Jacobian.autograd (Dynamics.total dyn theta 0.0) layout false u

            let dense =
                Jacobian.autograd
                    (Dynamics.total dyn theta 0.0)
                    {
                        Cells = 1L
                        Size = 10L
                        Pointwise = false
                    }
                    false
                    u

            let uv = u |> Array.map (fun x -> x.reshape(-1L).data<float>().ToArray())

            for c in 0..4 do
                let uc, vc = uv[0][c], uv[1][c]

                let analytic =
                    array2D [ [ -4.0 * uc * vc + cos uc; -2.0 * uc * uc ]; [ vc; uc + exp (-vc) ] ]

                for i in 0..1 do
                    for j in 0..1 do
                        let close what (x: float) =
                            Expect.floatClose
                                { absolute = 1e-13; relative = 1e-12 }
                                x
                                analytic[i, j]
                                $"{what} ∂F{i}/∂u{j} in cell {c}"

                        close "symbolic" (blocks[0L, int64 c, int64 i, int64 j].ToDouble())
                        close "autograd per cell" (byAutograd[0L, int64 c, int64 i, int64 j].ToDouble())
                        close "autograd dense" (dense[0L, 0L, int64 (i * 5 + c), int64 (j * 5 + c)].ToDouble())

            // Off the cells' blocks the dense Jacobian is exactly 0: the system is pointwise.
            let mask = torch.zeros ([| 10L; 10L |], dtype = f64)

            for c in 0..4 do
                for i in 0..1 do
                    for j in 0..1 do
                        mask[int64 (i * 5 + c), int64 (j * 5 + c)] <- torch.tensor (1.0, dtype = f64)

            let outside = (dense[0L, 0L] .* (1.0 .- mask)).abs().max().ToDouble()
            Expect.equal outside 0.0 "no coupling across cells"
        }

        test
            "a stencil's dense Jacobian by autograd is the Laplacian matrix; a global coupling above 1,000 unknowns is refused" {
            let heat (cells: int) =
                Parse.model (
                    $"model heat\ndomain interval [0, 1] cells {cells}\nfield u\nparam D = 0.1\ndu/dt = D lap(u)\nboundary u noflux\ninitial u = cos(3*x)"
                )

            let sim = Compiler.compile Compiler.defaults (heat 6)
            let u = sim.Initial 1
            use _ = torch.no_grad ()
            let layout = Jacobian.layout "Rodas4" sim.Dynamics u
            Expect.isFalse layout.Pointwise "a stencil couples cells"

            let j =
                Jacobian.autograd (Dynamics.total sim.Dynamics (sim.Theta()) 0.0) layout false u

            // D/h² (u[i−1] − 2u[i] + u[i+1]) with mirrored ghost cells at both no-flux ends (h = 1/6).
            let scale = 0.1 * 36.0

            for i in 0..5 do
                for k in 0..5 do
                    let expected =
                        if i = k then
                            (if i = 0 || i = 5 then -1.0 else -2.0) * scale
                        elif abs (i - k) = 1 then
                            scale
                        else
                            0.0

                    Expect.floatClose
                        { absolute = 1e-12; relative = 1e-12 }
                        (j[0L, 0L, int64 i, int64 k].ToDouble())
                        expected
                        $"J[{i}, {k}]"

            // A stencil system of any size takes the grid solve (`GridRosenbrockTests`); one that couples every cell
            // (here through the grid mean) is dense and refused above 1,000 unknowns.
            let big = Compiler.compile Compiler.defaults (heat 1200)

            Expect.equal
                (Rosenbrock.solveName big.Dynamics (big.Theta()) (big.Initial 1))
                "block tridiagonal"
                "a 1-D stencil takes the block tridiagonal solve"

            let line = Grid.line 0.0 1.0 1200

            let meanField =
                Dynamics.ofFunction [| "u" |] line (fun _ _ u -> [| u[0].mean ([| 1L |], true) - u[0] |])

            let e =
                Expect.throwsC
                    (fun () ->
                        Rollout.run
                            meanField
                            [||]
                            [| Grid.init line 1 f64 (fun x _ -> x) |]
                            (adaptive Scheme.Rodas4 (tolerance 1e-6 1e-9) 1e-3 [| 0.01 |])
                        |> ignore)
                    id

            Expect.stringStarts
                e.Message
                "Rodas4 needs the Jacobian of the system, and this one couples cells beyond the nearest-neighbour stencils"
                "what"

            Expect.stringContains e.Message "1200 unknowns per trajectory (fields u), above the limit of 1000" "values"
            Expect.stringContains e.Message "with stencils of any width and on lattices, at any size" "the kernels"
            Expect.stringContains e.Message "use a coarser grid, Scheme.Dopri5, or Scheme.KenCarp4" "the fix"
        }

        test "HIRES (compiled, symbolic Jacobian) at t = 321.8122 within 10× the tolerance of the test set's reference" {
            let sim = Compiler.compile Compiler.defaults (Parse.model IvpTestSet.hires.Text)
            use _ = torch.no_grad ()
            let rtol = 1e-6

            let o = adaptive Scheme.Rodas4 (tolerance rtol 1e-10) 1e-4 [| 321.8122 |]
            let backend, why = sim.BackendFor o

            Expect.equal
                (backend, why)
                (Backend.Kernels, "")
                "forward adaptive solves of point systems run on the kernels"

            let errors = relativeErrors (sim.Simulate(sim.Initial 1, o)) hiresReference

            Expect.isLessThan (Array.max errors) (10.0 * rtol) $"relative errors {errors}"
        }

        test "POLLU (20 species, rates 1e-4 … 4e11) at t = 60 within 10× the tolerance of the test set's reference" {
            let p = IvpTestSet.pollution
            let sim = Compiler.compile Compiler.defaults (Parse.model p.Text)
            use _ = torch.no_grad ()
            let rtol = 1e-5

            let o = {
                adaptive Scheme.Rodas4 (tolerance rtol (rtol * 1e-6)) p.FirstStep [| p.End |] with
                    FieldTolerances =
                        sim.Fields
                        |> Array.mapi (fun i f -> f, tolerance rtol (rtol * p.Scale[i]))
                        |> Map.ofArray
            }

            let y =
                (sim.Simulate(sim.Initial 1, o)).Values
                |> Array.map (fun v -> v[-1L].reshape(-1L).ToDouble())

            let error = IvpTestSet.mixedError p y
            Expect.isLessThan error (10.0 * rtol) $"mixed error {error}"
            // The mixed error is relative for the large species: NO2 (y1) itself within 10× the tolerance.
            Expect.isLessThan (abs (y[0] - p.Reference[0]) / p.Reference[0]) (10.0 * rtol) "NO2 relative error"
        }

        test "Robertson (autograd Jacobian) at t = 1e11 against the test set, y2 with its own absolute tolerance" {
            use _ = torch.no_grad ()
            let rtol = 1e-6

            let o = {
                adaptive Scheme.Rodas4 (tolerance rtol 1e-12) 1e-6 [| 1e11 |] with
                    FieldTolerances = Map.ofList [ "y2", tolerance rtol 1e-20 ]
            }

            let errors =
                relativeErrors (Rollout.run robertson [||] (state [| 1.0; 0.0; 0.0 |]) o) robertsonReference

            Expect.isLessThan (Array.max errors) (10.0 * rtol) $"relative errors of y1, y2, y3: {errors}"

            // Without its own tolerance y2 (≈ 1e-13) is far below the absolute tolerance 1e-12 and goes unchecked.
            let loose =
                relativeErrors
                    (Rollout.run robertson [||] (state [| 1.0; 0.0; 0.0 |]) { o with FieldTolerances = Map.empty })
                    robertsonReference

            Expect.isGreaterThan loose[1] errors[1] $"y2's error without its tolerance {loose[1]} vs with {errors[1]}"
        }

        test "per-field tolerances naming no field are refused, naming the fields" {
            let o = {
                adaptive Scheme.Rodas4 (tolerance 1e-6 1e-9) 1e-3 [| 1.0 |] with
                    FieldTolerances = Map.ofList [ "y4", tolerance 1e-6 1e-12 ]
            }

            let e =
                Expect.throwsC (fun () -> Rollout.run robertson [||] (state [| 1.0; 0.0; 0.0 |]) o |> ignore) id

            Expect.equal
                e.Message
                "FieldTolerances names 'y4', which is not a field of this system (fields: y1, y2, y3). Use one of those names, or remove the entry."
                "message"

            let negative = {
                o with
                    FieldTolerances = Map.ofList [ "y2", tolerance -1.0 1e-12 ]
            }

            let e2 = Expect.throwsC (fun () -> Rollout.validate negative) id

            Expect.stringStarts
                e2.Message
                "Rodas4 needs finite tolerances ≥ 0, not both 0; got FieldTolerances[\"y2\"] = { Relative = -1; Absolute = 1E-12 }"
                "message"
        }

        test
            "Van der Pol, μ = 10³ (test set VDPOL): Rodas4 solves it within 1,500 steps (≈ 1,100 measured); Dopri5 hits that step limit" {
            use _ = torch.no_grad ()
            let tol = 1e-6
            let limit = 1500
            let u0 = state [| 2.0; 0.0 |]
            let tolerances = [| tolerance tol 1e-9; tolerance tol 1e-9 |]

            // Both methods under the same step limit, from the same first step.
            let solve (m: AdaptiveMethod) =
                StepControl.integrate m tolerances 0.0 1e-6 [| 2000.0 |] limit (fun _ _ _ -> ()) u0

            let result =
                solve (Rosenbrock.method vanDerPol [||] false [| { Relative = 1e-6; Absolute = 1e-9 } |] u0)

            let y = values result.Saves[0]
            Expect.isLessThan (result.Accepted + result.Rejected) limit "within the limit"

            for i in 0..1 do
                Expect.floatClose
                    {
                        absolute = 0.0
                        relative = 10.0 * tol
                    }
                    y[i]
                    vanDerPolReference[i]
                    $"y{i + 1}(2000)"

            let e =
                Expect.throwsC (fun () -> solve (Adaptive.method (Dynamics.total vanDerPol [||])) |> ignore) id

            Expect.stringStarts e.Message $"Dopri5 needed more than {limit} steps (" "the limit"
            Expect.stringContains e.Message "The problem may be stiff: use Scheme.Rodas4" "the fix"
        }

        test
            "Scheme.Auto runs Dopri5 until Van der Pol turns stiff, then Rodas4, and says so; a non-stiff problem stays on Dopri5" {
            use _ = torch.no_grad ()
            let tol = 1e-6

            let o = {
                adaptive Scheme.Auto (tolerance tol 1e-9) 1e-6 [| 2000.0 |] with
                    FieldTolerances = Map.empty
            }

            let errors =
                relativeErrors (Rollout.run vanDerPol [||] (state [| 2.0; 0.0 |]) o) vanDerPolReference

            Expect.isLessThan (Array.max errors) (10.0 * tol) $"relative errors {errors}"
            Expect.stringStarts (Rollout.lastAuto ()) "Scheme.Auto ran Dopri5 until t = " "where it switched"

            Expect.stringContains
                (Rollout.lastAuto ())
                ", then Rodas4 to the end: the problem turned stiff there (h·|λ| ≈ "
                "what and why"

            let calm =
                Rollout.run coupled [||] (state [| 1.0; 1.0 |]) { o with SaveTimes = [| 1.0 |] }

            let u = calm.Values |> Array.map (fun v -> v.reshape(-1L).ToDouble())

            Array.iter2
                (fun x e -> Expect.floatClose { absolute = 1e-8; relative = 1e-5 } x e "u(1), v(1)")
                u
                (coupledExact 1.0)

            Expect.equal
                (Rollout.lastAuto ())
                "Scheme.Auto ran Dopri5 throughout: its stiffness test (h·|λ| ≥ 3.25 on 15 accepted steps) never fired."
                "stays explicit"
        }

        test "gradients of a stiff adaptive solve (symbolic and autograd Jacobians) = central differences = analytic" {
            let sim = Compiler.compile Compiler.defaults (Parse.model chainText)
            let t = 1.0
            let o = adaptive Scheme.Rodas4 (tolerance 1e-8 1e-12) 1e-4 [| t |]
            let _, dk1, dk2 = chainExact 100.0 1.0 t

            let byFunction =
                Dynamics.ofFunction [| "a"; "b" |] point (fun th _ u -> [|
                    -(th[0] .* u[0])
                    th[0] .* u[0] .- th[1] .* u[1]
                |])

            for name, dyn in [ "compiled", sim.Dynamics; "function", byFunction ] do
                let bAt (k1: float) (k2: float) (grad: bool) =
                    let theta = [|
                        torch.tensor(k1, dtype = f64).requires_grad_ grad
                        torch.tensor(k2, dtype = f64).requires_grad_ grad
                    |]

                    let b = (Rollout.run dyn theta (state [| 1.0; 0.0 |]) o).Values[1].sum ()
                    theta, b

                let theta, b = bAt 100.0 1.0 true

                let g =
                    torch.autograd.grad ([| b |], theta)
                    |> Array.ofSeq
                    |> Array.map (fun x -> x.ToDouble())

                let central (i: int) =
                    let step = 1e-5 * (if i = 0 then 100.0 else 1.0)

                    let at (s: float) =
                        use _ = torch.no_grad ()
                        let k = [| 100.0; 1.0 |]
                        k[i] <- k[i] + s * step
                        (snd (bAt k[0] k[1] false)).ToDouble()

                    (at 1.0 - at -1.0) / (2.0 * step)

                for i, analytic in [ 0, dk1; 1, dk2 ] do
                    // Central differences on one path (each costs two more solves), the analytic value on both.
                    if name = "compiled" then
                        Expect.floatClose
                            { absolute = 0.0; relative = 1e-6 }
                            g[i]
                            (central i)
                            $"{name}: db(T)/dk{i + 1} vs central differences"

                    Expect.floatClose
                        { absolute = 0.0; relative = 1e-6 }
                        g[i]
                        analytic
                        $"{name}: db(T)/dk{i + 1} vs analytic"
        }

        test "continuous extensions: Dopri5's has order 4 (local error h⁵), Rodas4's order 3 (local error h⁴)" {
            let dopri = Adaptive.method (Dynamics.total coupled [||])

            let rodas =
                Rosenbrock.method coupled [||] false [| { Relative = 1e-6; Absolute = 1e-9 } |] (state [| 1.0; 1.0 |])

            for name, m, expected in [ "Dopri5", dopri, 5.0; "Rodas4", rodas, 4.0 ] do
                let errors = [ 0.04; 0.02; 0.01 ] |> List.map (denseError m)

                for a, b in List.pairwise errors do
                    let p = order a b

                    Expect.isTrue
                        (abs (p - expected) < 0.5)
                        $"{name}: local error of the interpolant like h^{expected}, observed {p} ({errors})"
        }

        test "Dopri5 with dense output: save times do not shorten steps, values within the tolerance" {
            use _ = torch.no_grad ()
            let tol = 1e-8
            let f = Dynamics.total coupled [||]
            let every = Array.init 40 (fun i -> 0.05 * float (i + 1))
            let last = [| 2.0 |]

            let run saves =
                StepControl.integrate
                    (Adaptive.method f)
                    [| tolerance tol tol; tolerance tol tol |]
                    0.0
                    0.01
                    saves
                    100_000
                    (fun _ _ _ -> ())
                    (state [| 1.0; 1.0 |])

            let many, one = run every, run last
            Expect.equal many.Accepted one.Accepted "40 save times take the same steps as one"

            Array.iteri2
                (fun i (s: torch.Tensor[]) t ->
                    Array.iter2
                        (fun x e ->
                            Expect.floatClose
                                {
                                    absolute = 10.0 * tol
                                    relative = 10.0 * tol
                                }
                                x
                                e
                                $"save {i}")
                        (values s)
                        (coupledExact t))
                many.Saves
                every
        }
    ]
