/// Diagnostic fields solved from elliptic equations on the eager back end: second-order convergence to analytic
/// solutions (periodic: spectral with the compiler's own Δ; walled: banded / conjugate gradients), the compiler's Δ of
/// the solution against the right-hand side, gradients through the solve against central differences, a decaying
/// Taylor–Green vortex end to end, and the kernel back end's refusal.
module Hybrid.Tests.Compiler.EllipticTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

let private f64 = {
    Compiler.defaults with
        Dtype = torch.ScalarType.Float64
}

/// A model on [0, 1]² (n × n cells) whose diagnostic field psi solves `equation` under `psiBoundary` lines; a dummy
/// state field u (needed by every model) with ∂u/∂t = 0.
let private poissonModel (n: int) (extra: string) (equation: string) (psiBoundary: string) =
    Parse.model (
        $"""
model poisson
domain rectangle [0, 1] x [0, 1] cells {n} x {n}
field u
field psi diagnostic
{extra}
du/dt = 0
{equation}
boundary u periodic
{psiBoundary}
initial u = 0
"""
    )

/// The diagnostic fields of a compiled simulator at state `u` (one save time, batch 1).
let private diagnose (sim: Simulator) (u: torch.Tensor[]) : torch.Tensor[] =
    let trajectory = {
        Fields = sim.Fields
        Times = [| 0.0 |]
        Values = u |> Array.map (fun v -> v.unsqueeze 0L)
        Backend = Backend.Eager
    }

    (sim.Diagnose trajectory).Values |> Array.map (fun v -> v.select (0L, 0L))

/// ψ of the compiled model (batch 1, spatial) and the cell centres (x, y).
let private solved (m: Model) =
    let sim = Compiler.compile f64 m
    let psi = (diagnose sim (sim.Initial 1))[0]
    let x = Grid.coordinate sim.Grid 0 torch.ScalarType.Float64
    let y = Grid.coordinate sim.Grid 1 torch.ScalarType.Float64
    sim, psi, x, y

/// A number as the text form reads it back exactly.
let private num (v: float) =
    v.ToString("R", Globalization.CultureInfo.InvariantCulture)

let private pi = Math.PI

let private maxAbs (t: torch.Tensor) = t.abs().max().ToDouble()

/// Observed orders log₂(eₙ / e₂ₙ) of the max-norm errors at successive doublings.
let private orders (errors: float list) =
    errors |> List.pairwise |> List.map (fun (a, b) -> Math.Log(a / b, 2.0))

let tests =
    testList "Elliptic solves" [
        test "periodic: ψ = sin(2πx)cos(4πy) from Δψ, second order at 16, 32, 64 cells (spectral solve of Δₕ)" {
            let errors =
                [ 16; 32; 64 ]
                |> List.map (fun n ->
                    let m =
                        poissonModel
                            n
                            ""
                            $"Δpsi = −{num (20.0 * pi * pi)} sin({num (2.0 * pi)} x) cos({num (4.0 * pi)} y)"
                            "boundary psi periodic"

                    let _, psi, x, y = solved m
                    let exact = torch.sin (2.0 * Math.PI * x) * torch.cos (4.0 * Math.PI * y)
                    maxAbs (psi - exact.squeeze 0L))

            for o in orders errors do
                Expect.floatClose { absolute = 0.2; relative = 0.0 } o 2.0 (sprintf "order (errors %A)" errors)
        }

        test "walled (Dirichlet 0): ψ = sin(πx)sin(2πy), second order at 16, 32, 64 cells (conjugate gradients)" {
            let errors =
                [ 16; 32; 64 ]
                |> List.map (fun n ->
                    let m =
                        poissonModel
                            n
                            ""
                            $"Δpsi = −{num (5.0 * pi * pi)} sin({num pi} x) sin({num (2.0 * pi)} y)"
                            "boundary psi dirichlet 0"

                    let _, psi, x, y = solved m
                    let exact = torch.sin (Math.PI * x) * torch.sin (2.0 * Math.PI * y)
                    maxAbs (psi - exact.squeeze 0L))

            for o in orders errors do
                Expect.floatClose { absolute = 0.2; relative = 0.0 } o 2.0 (sprintf "order (errors %A)" errors)
        }

        test "1-D walled (Dirichlet 0 and no-flux): ψ = sin(πx/2), second order (banded solve)" {
            let errors =
                [ 16; 32; 64 ]
                |> List.map (fun n ->
                    let m =
                        Parse.model (
                            String.concat "\n" [
                                $"domain interval [0, 1] cells {n}"
                                "field u"
                                "field psi diagnostic"
                                "du/dt = 0"
                                $"Δpsi = −{num (pi * pi / 4.0)} sin({num (pi / 2.0)} x)"
                                "boundary u noflux"
                                "boundary psi left dirichlet 0"
                                "boundary psi right noflux"
                                "initial u = 0"
                            ]
                        )

                    let sim = Compiler.compile f64 m
                    let psi = (diagnose sim (sim.Initial 1))[0]
                    let x = Grid.coordinate sim.Grid 0 torch.ScalarType.Float64
                    maxAbs (psi - torch.sin (Math.PI / 2.0 * x)))

            for o in orders errors do
                Expect.floatClose { absolute = 0.2; relative = 0.0 } o 2.0 (sprintf "order (errors %A)" errors)
        }

        test "the compiler's Δ of the solution gives back the right-hand side (periodic: minus its mean) to 1e-10" {
            let rhs = $"1 + exp(sin({num (2.0 * pi)} x)) cos({num (2.0 * pi)} y) + x"

            let cases = [
                // (equation, ψ's boundary lines, boundary conditions of Δ, κ², mean removed)
                $"Δpsi = {rhs}", "boundary psi periodic", (fun g -> Boundary.periodic g), 0.0, true
                $"Δpsi − 3 psi = {rhs}", "boundary psi periodic", (fun g -> Boundary.periodic g), 3.0, false
                $"Δpsi = {rhs}", "boundary psi noflux", (fun g -> Boundary.noFlux g), 0.0, true
                $"Δpsi = {rhs}",
                "boundary psi dirichlet 1",
                (fun g -> Boundary.uniform g (Boundary.dirichlet 1.0)),
                0.0,
                false
            ]

            for equation, lines, bcs, k2, centred in cases do
                let sim, psi, x, y = solved (poissonModel 24 "" equation lines)

                let f =
                    (1.0
                     + torch.exp (torch.sin (2.0 * Math.PI * x)) * torch.cos (2.0 * Math.PI * y)
                     + x)
                        .expand ([| 1L; 24L; 24L |])

                let target = if centred then f - f.mean () else f
                let lap = Operators.laplacian sim.Grid (bcs sim.Grid) psi - k2 * psi
                let err = maxAbs (lap - target)

                if lines.Contains "dirichlet" then
                    // Conjugate gradients stop at ‖r‖₂ ≤ 1e-12 ‖b − f‖₂, b = Δₕ0 the walls' part of the system.
                    let walls = Operators.laplacian sim.Grid (bcs sim.Grid) (torch.zeros_like psi)
                    let bound = 1e-12 * (walls - f).norm().ToDouble()
                    Expect.isLessThan err bound (sprintf "%s with %s: residual %g" equation lines err)
                else
                    let relative = err / maxAbs f

                    Expect.isLessThan
                        relative
                        1e-10
                        (sprintf "%s with %s: relative residual %g" equation lines relative)

                if centred then
                    Expect.isLessThan (abs (psi.mean().ToDouble())) 1e-12 "ψ has zero mean"
        }

        test "gradients through the solve match central differences (float64, relative 1e-6), periodic and walled" {
            let cases = [
                "boundary psi periodic", $"Δpsi = 40 a sin({num (2.0 * pi)} x) + 40 a² cos({num (2.0 * pi)} y) x"
                "boundary psi dirichlet b", $"Δpsi = 40 a sin({num (2.0 * pi)} x) + 40 a² cos({num (2.0 * pi)} y) x"
                "boundary psi noflux", $"Δpsi − 2 psi = 40 a sin({num (2.0 * pi)} x) + 40 a² cos({num (2.0 * pi)} y) x"
            ]

            for lines, equation in cases do
                let m = poissonModel 12 "param a = 0.7\nparam b = 0.3" equation lines
                let sim = Compiler.compile f64 m
                let u0 = sim.Initial 1
                let weight = (Grid.coordinate sim.Grid 0 torch.ScalarType.Float64 + 0.5).detach ()

                // A loss downstream of ψ: Σ w ψ³ (cubic, so the central difference has a truncation error).
                let loss () =
                    let psi = (diagnose sim u0)[0]
                    (weight * psi * psi * psi).sum ()

                // b (a Dirichlet value) reaches ψ only through the walls' contribution to the solve.
                let names = if lines.Contains "dirichlet" then [ "a"; "b" ] else [ "a" ]

                for name in names do
                    let p = sim.Param name
                    let value = p.Get()
                    let g = torch.autograd.grad ([| loss () |], [| p.Raw :> torch.Tensor |])
                    let autograd = g[0].ToDouble()
                    let h = 1e-4
                    p.Set(value + h)
                    let up = using (torch.no_grad ()) (fun _ -> loss().ToDouble())
                    p.Set(value - h)
                    let down = using (torch.no_grad ()) (fun _ -> loss().ToDouble())
                    p.Set value
                    let central = (up - down) / (2.0 * h)
                    Expect.isGreaterThan (abs central) 1e-2 (sprintf "%s: a gradient to compare" lines)

                    Expect.floatClose
                        { absolute = 0.0; relative = 1e-6 }
                        autograd
                        central
                        (sprintf "%s: ∂loss/∂%s" lines name)
        }

        test "Taylor–Green vortex: the nonlinear term vanishes and ω decays at Δₕ's rate 2ν(2 − 2cos h)/h² ≈ 2ν" {
            let n = 16

            let side = num (2.0 * pi)

            let m =
                Parse.model (
                    String.concat "\n" [
                        "model taylorGreen"
                        $"domain rectangle [0, {side}] x [0, {side}] cells {n} x {n}"
                        "field omega"
                        "field psi diagnostic"
                        "param nu = 0.05"
                        "∂omega/∂t = ∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega) + nu Δomega"
                        "Δpsi = omega"
                        "boundary omega periodic"
                        "boundary psi periodic"
                        "initial omega = sin(x) sin(y)"
                    ]
                )

            let sim = Compiler.compile f64 m

            let options = {
                Rollout.defaults with
                    Dt = 0.02
                    SaveTimes = [| 2.0 |]
            }

            Expect.stringContains
                sim.Display
                "\n  diagnostic: Δpsi = omega\n"
                "the REPL display names the diagnostic field"

            Expect.equal (sim.BackendFor options) (Backend.Kernels, "") "periodic diagnostic fields run on the kernels"

            let u0 = sim.Initial 1
            let tr = sim.Simulate(u0, options)
            let omegaT = tr.Values[0].select (0L, 0L)
            let h = 2.0 * Math.PI / float n
            let discrete = 2.0 * 0.05 * (2.0 - 2.0 * cos h) / (h * h)
            let ratio = (omegaT / u0[0]).mean().ToDouble()
            let rate = -log ratio / 2.0
            // The same shape all along (the Jacobian term is zero to round-off): ω(T) = e^(−rate·T) ω(0) everywhere.
            Expect.isLessThan (maxAbs (omegaT - ratio * u0[0])) 1e-12 "shape kept"
            // RK4 with Δt = 0.02 on a decay rate of 0.1: time error far below 1e-8.
            Expect.floatClose { absolute = 1e-8; relative = 0.0 } rate discrete "Δₕ's decay rate"
            // Against the analytic 2ν: the five-point Laplacian's relative error h²/12 (plus O(h⁴)).
            let analytic = 2.0 * 0.05
            Expect.isLessThan (abs (rate / analytic - 1.0)) (h * h / 12.0 * 1.05) "analytic rate to O(h²)"
            Expect.isGreaterThan (abs (rate / analytic - 1.0)) (h * h / 12.0 * 0.9) "and the error is Δₕ's"
            // ψ = ω/λₕ with λₕ = −2(2 − 2cos h)/h², the eigenvalue of sin x sin y.
            let psiT = (sim.Diagnose tr).Values[0].select (0L, 0L)
            let lambda = -2.0 * (2.0 - 2.0 * cos h) / (h * h)
            Expect.isLessThan (maxAbs (psiT - omegaT / lambda)) 1e-12 "ψ(T) from ω(T)"
        }

        test "a diagnostic field in a flux coefficient: κ's face values average the cell-centred solution" {
            // ∇·(κ ∇u) with κ = 1 + ψ² + u/10: the compiler solves Δψ = u once on the cells and averages ψ to the
            // faces like u; by hand, κᵢ₊½ = 1 + ((ψᵢ + ψᵢ₊₁)/2)² + (uᵢ + uᵢ₊₁)/20, Fᵢ₊½ = κᵢ₊½ (uᵢ₊₁ − uᵢ)/h and the
            // tendency Σₐ (Fᵢ₊½ − Fᵢ₋½)/h (periodic, so neighbours by rolling).
            let nx, ny = 16, 12

            let m =
                Parse.model (
                    String.concat "\n" [
                        "model faces"
                        $"domain rectangle [0, 1] x [0, 1] cells {nx} x {ny}"
                        "field u"
                        "field psi diagnostic"
                        "∂u/∂t = ∇·((1 + psi² + 0.1 u) ∇u)"
                        "Δpsi = 40 u"
                        "boundary u periodic"
                        "boundary psi periodic"
                        $"initial u = sin({num (2.0 * pi)} x) cos({num (2.0 * pi)} y) + 0.5 sin({num (4.0 * pi)} y)"
                    ]
                )

            let sim = Compiler.compile f64 m
            let u0 = sim.Initial 1
            let tendency = (Dynamics.total sim.Dynamics (sim.Theta()) 0.0 u0)[0]
            let u = u0[0]
            let psi = (diagnose sim u0)[0]
            Expect.isGreaterThan (maxAbs psi) 0.1 "ψ is not small"

            let byHand =
                [ 1, 1.0 / float nx; 2, 1.0 / float ny ]
                |> List.map (fun (dim, h) ->
                    let next (t: torch.Tensor) = torch.roll (t, -1L, int64 dim)
                    let psiFace = 0.5 * (psi + next psi)
                    let uFace = 0.5 * (u + next u)
                    let kappa = 1.0 + psiFace * psiFace + 0.1 * uFace
                    let flux = kappa * (next u - u) / h
                    (flux - torch.roll (flux, 1L, int64 dim)) / h)
                |> List.reduce (+)

            let scale = maxAbs byHand
            Expect.isGreaterThan scale 1.0 "a tendency to compare"

            Expect.isLessThan
                (maxAbs (tendency - byHand) / scale)
                1e-12
                "the compiled tendency is the hand-computed flux divergence"
        }

        test "float32 solves agree with float64 to float32's tolerance (spectral and conjugate gradients)" {
            for lines in [ "boundary psi periodic"; "boundary psi dirichlet 0.5" ] do
                let m =
                    poissonModel 32 "" $"Δpsi = 40 exp(sin({num (2.0 * pi)} x)) cos({num (2.0 * pi)} y)" lines

                let solve (dtype: torch.ScalarType) =
                    let sim = Compiler.compile { f64 with Dtype = dtype } m
                    let psi = (diagnose sim (sim.Initial 1)).[0]
                    psi.to_type torch.ScalarType.Float64

                let double, single = solve torch.ScalarType.Float64, solve torch.ScalarType.Float32
                // CG stops at relative residual 1e-6 in float32; the condition number of Δₕ on 32² cells is ≈ 400.
                let err = maxAbs (single - double) / maxAbs double
                Expect.isLessThan err 1e-3 (sprintf "%s: relative difference %g" lines err)
        }

        test "conjugate gradients that fail name the diagnostic field and its equation, not the implicit diffusion" {
            // A right-hand side that is not finite (log 0 = −∞) never converges: the compiler's solve gives up after
            // its 2N + 100 iterations.
            let m = poissonModel 6 "" "Δpsi = log(u)" "boundary psi dirichlet 0"
            let sim = Compiler.compile f64 m

            let message =
                try
                    diagnose sim (sim.Initial 1) |> ignore
                    "no exception"
                with :? HybridException as e ->
                    e.Message

            Expect.stringStarts
                message
                "Conjugate gradients did not reach the relative residual 1E-12 in 172 iterations on 36 unknowns while solving the elliptic equation of the diagnostic field 'psi' (Δpsi = log(u))."
                "names the field and its equation"

            Expect.stringContains message "the right-hand side is probably not finite" "and the likely cause"
            Expect.isFalse (message.Contains "implicit diffusion") "not the implicit diffusion's words"

            // A finite right-hand side with an iteration cap of 1 fails the same way, with the cap in the message.
            let g = Grid.plane (0.0, 1.0, 6) (0.0, 1.0, 6)
            let walls = Boundary.uniform g (Boundary.dirichlet 0.0)

            let solver =
                EllipticSolve.create g walls 0.0 torch.ScalarType.Float64 torch.CPU 1e-12 {
                    EllipticSolve.caller "the diagnostic field 'psi' (Δpsi = f)" with
                        MaxIterations = Some 1
                }

            let f =
                Grid.init g 1 torch.ScalarType.Float64 (fun x y -> sin (3.0 * x) + cos (2.0 * y))

            let capped =
                try
                    solver.Solve walls f |> ignore
                    "no exception"
                with :? HybridException as e ->
                    e.Message

            Expect.stringStarts
                capped
                "Conjugate gradients did not reach the relative residual 1E-12 in 1 iterations on 36 unknowns while solving the elliptic equation of the diagnostic field 'psi' (Δpsi = f)."
                "the cap and the caller's context"
        }

        test "the kernel back end refuses a diagnostic field with walls by name" {
            let m = poissonModel 8 "" "Δpsi = u" "boundary psi dirichlet 0"

            let sim = Compiler.compile { f64 with Backend = Backend.Kernels } m

            let message =
                try
                    sim.Simulate(sim.Initial 1, Rollout.defaults) |> ignore
                    failtest "expected a ModelException"
                with :? ModelException as e ->
                    e.Message

            Expect.stringContains
                message
                "The generated kernels cannot compile the diagnostic field 'psi' (elliptic solve Δpsi = u) with walls. The kernels solve periodic diagnostic fields only"
                "names the diagnostic field and what the kernels take"
        }
    ]
