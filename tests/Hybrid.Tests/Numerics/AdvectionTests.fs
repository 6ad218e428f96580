/// The Arakawa Jacobian and the limited flux-form advection: conservation to round-off, convergence orders against
/// analytic results, positivity, gradients against finite differences (float64), and models that use them through
/// the DSL and the compiler (on the kernels under Backend.Auto, with their refusal by name of what they lack).
module Hybrid.Tests.Numerics.AdvectionTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Tests.Numerics.Support

let private twoPi = 2.0 * Math.PI

/// The doubly periodic square [0, 2π]² with n × n cells.
let private periodicSquare (n: int) =
    Grid.plane (0.0, twoPi, n) (0.0, twoPi, n)

/// A smooth doubly periodic field: a few Fourier modes with seeded random amplitudes and phases.
let private smooth (seed: int) (g: Grid) =
    let rng = Random seed

    let modes =
        List.init 6 (fun _ -> rng.Next(0, 4), rng.Next(0, 4), rng.NextDouble() - 0.5, twoPi * rng.NextDouble())

    Grid.init g 1 f64 (fun x y ->
        modes
        |> List.sumBy (fun (k, l, a, phase) -> a * cos (float k * x + float l * y + phase)))

let private sum (t: torch.Tensor) = t.sum().ToDouble()

/// J(a, b) from products of central differences alone (J⁺⁺), which conserves neither Σ a·J nor Σ b·J.
let private centralJacobian (g: Grid) (a: torch.Tensor) (b: torch.Tensor) =
    let bcs = Boundary.periodic g

    Operators.ddx g bcs a * Operators.ddy g bcs b
    - Operators.ddy g bcs a * Operators.ddx g bcs b

/// Compiles a model text (float64, the eager back end unless told otherwise).
let private compile (text: string) =
    Compiler.compile Compiler.defaults (Parse.model text)

/// ∂q/∂t = −J(ψ, q) with ψ a field held fixed, on the periodic square with 24² cells; `jacobian` spells J.
let private rotation (jacobian: string) =
    $"""
model rotation
domain rectangle [0, {twoPi:R}] x [0, {twoPi:R}] cells 24 x 24
field psi
field q
dpsi/dt = 0
dq/dt = -({jacobian})
boundary psi periodic
boundary q periodic
initial psi = sin(x) sin(y) + 0.4 cos(2 x - y)
initial q = exp(-2 ((x - 3)^2 + (y - 2.5)^2)) + 0.3 sin(2 y)
"""

/// The change of Σq and of Σq² over t ∈ [0, 2] of `rotation` with SspRk3 at step dt.
let private drifts (sim: Simulator) (dt: float) =
    use _ = torch.NewDisposeScope()
    let u0 = sim.Initial 1
    let q0 = u0[1]
    let traj = sim.Simulate(u0, options Scheme.SspRk3 dt [| 2.0 |])
    let q = traj.Values[1][0L]
    abs (sum q - sum q0), abs (sum (square q) - sum (square q0)), sum (square q0)

let tests =
    testList "Advection operators" [
        test "Arakawa: ΣJ, Σψ·J and Σq·J vanish to round-off on a doubly periodic grid (J⁺⁺ alone does not)" {
            use _ = torch.NewDisposeScope()
            let g = Grid.plane (0.0, twoPi, 32) (0.0, 3.0, 24)
            let bcs = Boundary.periodic g
            let psi, q = smooth 1 g, smooth 2 g
            let j = Operators.jacobian g bcs bcs psi q
            let scale = sum ((psi.abs () + q.abs () + 1.0) * j.abs ())
            Expect.isLessThan (abs (sum j) / scale) 1e-14 "Σ J"
            Expect.isLessThan (abs (sum (psi * j)) / scale) 1e-14 "Σ ψ J (energy)"
            Expect.isLessThan (abs (sum (q * j)) / scale) 1e-14 "Σ q J (enstrophy)"
            let jpp = centralJacobian g psi q
            Expect.isGreaterThan (abs (sum (q * jpp)) / scale) 1e-6 "the central J⁺⁺ does not conserve Σ q J"
            let antisymmetric = maxAbs (Operators.jacobian g bcs bcs q psi + j)
            Expect.isLessThan antisymmetric 1e-13 "J(q, ψ) = −J(ψ, q)"
        }

        test "Arakawa with walls: ΣJ, Σψ·J, Σq·J vanish to round-off when ψ is constant along the walls, not otherwise" {
            use _ = torch.NewDisposeScope()
            let nx, ny = 16, 12
            let g = Grid.plane (0.0, 1.0, nx) (0.0, 1.0, ny)
            let hx, hy = 1.0 / float nx, 1.0 / float ny
            // Zero at the centres of the first and last cells along each axis, so ψ is constant (0) in the cells next
            // to every wall, and the wall conditions mirror that constant into the ghost cells.
            let bump (t: float) (h: float) =
                sin (Math.PI * (t - h / 2.0) / (1.0 - h))

            let still = Grid.init g 1 f64 (fun x y -> 1.0 + bump x hx * bump y hy)
            // The same plus 0.3 x y, which varies along the walls x = 1 and y = 1.
            let sloped =
                Grid.init g 1 f64 (fun x y -> 1.0 + bump x hx * bump y hy + 0.3 * x * y)

            let q =
                Grid.init g 1 f64 (fun x y ->
                    exp (-8.0 * ((x - 0.4) ** 2.0 + (y - 0.6) ** 2.0)) + 0.3 * cos (2.0 * x + y))

            let walls = [
                "Dirichlet 0", Boundary.uniform g (Boundary.dirichlet 0.0)
                "no flux", Boundary.noFlux g
            ]

            // The three sums relative to Σ (|ψ| + |q| + 1)|J|.
            let sums (psi: torch.Tensor) bcsPsi bcsQ =
                let j = Operators.jacobian g bcsPsi bcsQ psi q
                let scale = sum ((psi.abs () + q.abs () + 1.0) * j.abs ())
                [ abs (sum j) / scale; abs (sum (psi * j)) / scale; abs (sum (q * j)) / scale ]

            for psiWall, bcsPsi in walls do
                for qWall, bcsQ in walls do
                    let held = sums still bcsPsi bcsQ
                    let broken = sums sloped bcsPsi bcsQ
                    let case = $"ψ {psiWall}, q {qWall}"

                    for name, value in List.zip [ "Σ J"; "Σ ψ J"; "Σ q J" ] held do
                        Expect.isLessThan value 1e-14 $"{case}: {name} with ψ constant along the walls"

                    // The boundary terms of a ψ that varies along a wall are of the order of the sums themselves.
                    Expect.isGreaterThan
                        (List.max broken)
                        1e-4
                        $"{case}: a ψ varying along a wall breaks a sum {broken}"
        }

        test "Arakawa: second-order convergence to the analytic Jacobian (order 2 ± 0.2 over 32², 64², 128²)" {
            use _ = torch.NewDisposeScope()

            let psi x y =
                sin x * cos (2.0 * y) + 0.3 * cos (x + y)

            let q x y =
                cos (3.0 * x) * sin y + 0.2 * sin (x - 2.0 * y)
            // ∂ψ/∂x ∂q/∂y − ∂ψ/∂y ∂q/∂x, by hand.
            let exact x y =
                let px = cos x * cos (2.0 * y) - 0.3 * sin (x + y)
                let py = -2.0 * sin x * sin (2.0 * y) - 0.3 * sin (x + y)
                let qx = -3.0 * sin (3.0 * x) * sin y + 0.2 * cos (x - 2.0 * y)
                let qy = cos (3.0 * x) * cos y - 0.4 * cos (x - 2.0 * y)
                px * qy - py * qx

            let errors =
                [ 32; 64; 128 ]
                |> List.map (fun n ->
                    let g = periodicSquare n
                    let bcs = Boundary.periodic g
                    let j = Operators.jacobian g bcs bcs (Grid.init g 1 f64 psi) (Grid.init g 1 f64 q)
                    maxAbs (j - Grid.init g 1 f64 exact))

            for o in orders errors do
                Expect.floatClose { absolute = 0.2; relative = 0.0 } o 2.0 $"observed order {o:F3} (errors {errors})"
        }

        test "Arakawa in a model: −J(ψ, q) conserves Σq to round-off; the drift of Σq² shrinks as Δt³ (SspRk3)" {
            let sim = compile (rotation "J(psi, q)")
            let dts = [ 0.1; 0.05; 0.025 ]
            let results = dts |> List.map (drifts sim)

            for (mass, _, _), dt in List.zip results dts do
                Expect.isLessThan mass 1e-11 $"Σq at Δt = {dt}"

            let enstrophy = results |> List.map (fun (_, e, _) -> e)
            let (_, _, size) = results.Head

            // For a skew-symmetric linear system SSP-RK3 damps each mode by |R(iz)|² = 1 − z⁴/12: a drift ∝ Δt³.
            for o in orders enstrophy do
                Expect.floatClose
                    { absolute = 0.3; relative = 0.0 }
                    o
                    3.0
                    $"order of the Σq² drift {o:F3} ({enstrophy})"

            // The same model with the central J⁺⁺ drifts by a Δt-independent amount, far above Arakawa's.
            let central = compile (rotation "dx(psi) dy(q) - dy(psi) dx(q)")
            let _, centralDrift, _ = drifts central 0.025

            Expect.isGreaterThan
                centralDrift
                (100.0 * List.last enstrophy)
                $"central J⁺⁺ drift {centralDrift:E2} vs Arakawa {List.last enstrophy:E2} (Σq² = {size:F2})"
        }

        test
            "flux advection keeps a step profile ≥ 0 at Courant number ½ (Euler, Heun, SspRk3); centred differences do not" {
            use _ = torch.NewDisposeScope()

            let model advection =
                compile (
                    $"model step\ndomain interval [0, 1] cells 50\nfield q\nparam c = 1\ndq/dt = -({advection})\nboundary q periodic\ninitial q = max(0, min(1, 1000 (0.1 - abs(x - 0.3))))"
                )

            let limited = model "advectFlux(c, q)"
            let u0 = limited.Initial 1
            let mass0 = sum u0[0]

            for scheme in [ Scheme.Euler; Scheme.Heun; Scheme.SspRk3 ] do
                // Δt = ½ Δx / c; 150 steps carry the step 1.5 times around the ring.
                let q = (limited.Simulate(u0, options scheme 0.01 [| 1.5 |])).Values[0]
                Expect.isGreaterThanOrEqual (q.min().ToDouble()) 0.0 $"{scheme}: min q ≥ 0"
                Expect.isLessThan (abs (sum q - mass0) / mass0) 1e-12 $"{scheme}: Σq conserved"

            let centred = model "dx(c q)"
            let q = (centred.Simulate(u0, options Scheme.SspRk3 0.01 [| 1.5 |])).Values[0]
            Expect.isLessThan (q.min().ToDouble()) -1e-2 "the centred scheme undershoots below 0"
        }

        test "flux advection in 2-D: a block in a solid-body rotation stays ≥ 0 at Σ Courant ½, Σq conserved" {
            use _ = torch.NewDisposeScope()

            let sim =
                compile
                    "model spin\ndomain rectangle [0, 1] x [0, 1] cells 32 x 32\nfield q\ndq/dt = -advectFlux(-(y - 0.5), x - 0.5, q)\nboundary q periodic\ninitial q = max(0, min(1, 40 (0.1 - max(abs(x - 0.3), abs(y - 0.5)))))"

            let u0 = sim.Initial 1
            let mass0 = sum u0[0]
            // max|u| = max|v| = 0.5 (cell centres reach ±15.5/32), h = 1/32: Δt (|u| + |v|)/h ≤ ½ for Δt = 1/64.
            let q = (sim.Simulate(u0, options Scheme.SspRk3 (1.0 / 64.0) [| 1.5 |])).Values[0]
            Expect.isGreaterThanOrEqual (q.min().ToDouble()) 0.0 "min q ≥ 0"
            Expect.isLessThan (abs (sum q - mass0) / mass0) 1e-12 "Σq conserved"
            Expect.isLessThan (q.max().ToDouble()) (1.0 + 1e-12) "no overshoot above the initial maximum"
        }

        test
            "flux advection: second order for a smooth monotone profile (2 ± 0.2), first order at least through extrema" {
            use _ = torch.NewDisposeScope()
            // The operator on q = eˣ with v = 1 + x/2 on [0, 1], interior cells: ∇·(v q) = (1.5 + x/2) eˣ.
            let operatorErrors =
                [ 32; 64; 128 ]
                |> List.map (fun n ->
                    let g = Grid.line 0.0 1.0 n
                    let q = Grid.init g 1 f64 (fun x _ -> exp x)
                    let v = Grid.init g 1 f64 (fun x _ -> 1.0 + 0.5 * x)
                    let bcs = Boundary.noFlux g
                    let d = Operators.fluxAdvection g [| bcs |] bcs [| v |] q
                    let exact = Grid.init g 1 f64 (fun x _ -> (1.5 + 0.5 * x) * exp x)
                    maxAbs ((d - exact).narrow (1L, 3L, int64 n - 6L)))

            for o in orders operatorErrors do
                Expect.floatClose { absolute = 0.2; relative = 0.0 } o 2.0 $"operator order {o:F3} ({operatorErrors})"

            // One period of a sine: the limiter flattens the two extrema, so the L1 error falls between first and
            // second order.
            let periodErrors =
                [ 32; 64; 128 ]
                |> List.map (fun n ->
                    let sim =
                        compile
                            $"model wave\ndomain interval [0, 1] cells {n}\nfield q\ndq/dt = -advectFlux(1, q)\nboundary q periodic\ninitial q = 1 + 0.5 sin({twoPi:R} x)"

                    let u0 = sim.Initial 1

                    let q =
                        (sim.Simulate(u0, options Scheme.SspRk3 (0.4 / float n) [| 1.0 |])).Values[0]

                    (q - u0[0]).abs().mean().ToDouble())

            for o in orders periodErrors do
                Expect.isGreaterThan o 1.0 $"L1 order through extrema {o:F3} ({periodErrors})"
        }

        test "gradients through J (walls and periodic) and the flux advection match finite differences (float64)" {
            let g = Grid.plane (0.0, 1.0, 7) (0.0, 2.0, 6)
            let init (f: float -> float -> float) = Grid.init g 2 f64 f
            let a0 = init (fun x y -> sin (3.0 * x + 1.0) + 0.3 * cos (2.0 * y))
            let b0 = init (fun x y -> cos (2.0 * x) * sin (y + 0.5) + 0.5 * x)
            use gen = new torch.Generator(11UL)
            let w = torch.randn (Grid.fieldShape g 2, dtype = f64, generator = gen)

            let walls (v: torch.Tensor) = [|
                {
                    Low = Bc.Dirichlet v
                    High = Bc.NoFlux
                }
                {
                    Low = Bc.Neumann v
                    High = Bc.Dirichlet v
                }
            |]

            let errJ =
                gradCheck (fun xs -> (w * Operators.jacobian g (walls xs[2]) (Boundary.periodic g) xs[0] xs[1]).sum ()) [|
                    a0
                    b0
                    scalar 0.4
                |]

            Expect.isLessThan errJ 1e-6 $"J: relative error {errJ:E2}"
            let q0 = init (fun x y -> 1.0 + 0.5 * sin (4.0 * x + y))
            let u0 = init (fun x y -> 0.7 + sin (2.0 * y + x))
            let v0 = init (fun x _ -> cos (3.0 * x) - 0.2)

            let errF =
                gradCheck
                    (fun xs ->
                        let bcs = walls xs[3]

                        (w
                         * Operators.fluxAdvection g [| bcs; Boundary.periodic g |] bcs [| xs[0]; xs[1] |] xs[2])
                            .sum ())
                    [| u0; v0; q0; scalar 0.4 |]

            Expect.isLessThan errF 1e-6 $"flux advection: relative error {errF:E2}"
        }

        test "a loss after a rollout through J and advectFlux has the finite-difference gradient in the parameters" {
            let text =
                $"model both\ndomain rectangle [0, {twoPi:R}] x [0, {twoPi:R}] cells 12 x 12\nfield q\nparam a = 0.8\nparam c = 0.3\ndq/dt = -a J(sin(x) sin(y), q) - advectFlux(c, c cos(x), q)\nboundary q periodic\ninitial q = 1 + 0.5 sin(x + 2 y)"

            let sim = compile text
            let u0 = sim.Initial 1
            let weights = Grid.init sim.Grid 1 f64 (fun x y -> 1.0 + 0.3 * cos (x - y))

            let loss (theta: torch.Tensor[]) =
                let traj = Rollout.run sim.Dynamics theta u0 (options Scheme.Heun 0.05 [| 0.5 |])
                (weights * square (traj.Values[0][0L])).sum ()

            let errors = gradientErrors loss [| 0.8; 0.3 |]

            for e in errors do
                Expect.isLessThan e 1e-6 $"relative errors {errors}"
        }

        test "climate terms: β ∂ψ/∂x, a forcing f(x, y, t) and softplus(k (q − q_sat(y)))/k with k a parameter" {
            use _ = torch.NewDisposeScope()

            let sim =
                compile
                    $"model moist\ndomain rectangle [0, {twoPi:R}] x [0, 1] cells 16 x 8\nfield psi\nfield q\nparam beta = 0.7\nparam k = 20 positive\ndpsi/dt = -beta dx(psi) + sin(x) y (1 + t)\ndq/dt = -softplus(k (q - (0.5 + 0.4 cos(y))))/k\nboundary psi periodic\nboundary q periodic\ninitial psi = cos(x)\ninitial q = 0.3 + y"

            let u0 = sim.Initial 1
            let dt = 1e-3
            let traj = sim.Simulate(u0, options Scheme.Euler dt [| dt |])
            let g = sim.Grid
            let h = g.Axes[0].Spacing
            let t0 = 0.0
            // One Euler step by hand: the central difference of cos x is −sin x · sin h / h.
            let psi1 =
                Grid.init g 1 f64 (fun x y -> cos x + dt * (0.7 * sin x * sin h / h + sin x * y * (1.0 + t0)))

            let softplus z = log (1.0 + exp z)

            let q1 =
                Grid.init g 1 f64 (fun _ y ->
                    let q = 0.3 + y
                    q - dt * softplus (20.0 * (q - (0.5 + 0.4 * cos y))) / 20.0)

            Expect.isLessThan (maxAbs (traj.Values[0][0L] - psi1)) 1e-14 "β term and forcing f(x, y, t)"
            Expect.isLessThan (maxAbs (traj.Values[1][0L] - q1)) 1e-14 "smooth condensation threshold"

            let loss (theta: torch.Tensor[]) =
                let traj = Rollout.run sim.Dynamics theta u0 (options Scheme.Heun 0.01 [| 0.1 |])
                (square (traj.Values[0]) .+ traj.Values[1]).sum ()

            // β and the threshold's sharpness k are learnable: their gradients match finite differences.
            let errors = gradientErrors loss [| 0.7; 20.0 |]

            for e in errors do
                Expect.isLessThan e 1e-6 $"relative errors {errors}"
        }

        test
            "Auto runs J and advectFlux of fields on the kernels with the eager result; an operand of the coordinates is refused by name" {
            use _ = torch.NewDisposeScope()
            let o = options Scheme.Rk4 0.05 [| 0.2 |]

            let onBackend (backend: Backend) (text: string) =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = backend
                    }
                    (Parse.model text)

            for term in [ "J(psi, q)"; "advectFlux(psi, psi, q)" ] do
                let text = (rotation term).Replace("rotation", "both")
                let auto = compile text
                Expect.equal (auto.BackendFor o) (Backend.Kernels, "") $"{term}: Auto picks the kernels"
                let eager = onBackend Backend.Eager text
                let onKernels = auto.Simulate(auto.Initial 1, o)
                let onEager = eager.Simulate(eager.Initial 1, o)
                Expect.equal onKernels.Backend Backend.Kernels $"{term}: the kernels ran"

                Expect.isLessThan (maxAbs (onKernels.Values[1] - onEager.Values[1])) 1e-12 $"{term}: kernels = eager"

            // J(sin(x) sin(y), q): the eager back end wraps the operand's values into the ghost cells; the kernels
            // would read the coordinates there, so they refuse it.
            let text = (rotation "J(sin(x) sin(y), q)").Replace("rotation", "refused")
            let backend, why = (compile text).BackendFor o
            Expect.equal backend Backend.Eager "an operand of the coordinates: eager"
            Expect.stringContains why "the Arakawa Jacobian" "the reason names the operator"
            Expect.stringContains why "coordinates" "and why"
            let kernels = onBackend Backend.Kernels text

            Expect.throwsC (fun () -> kernels.Simulate(kernels.Initial 1, o) |> ignore) (fun e ->
                Expect.stringContains e.Message "the Arakawa Jacobian" "Backend.Kernels names the operator")
        }
    ]
