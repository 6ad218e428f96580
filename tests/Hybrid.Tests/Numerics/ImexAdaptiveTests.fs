/// KenCarp4 (adaptive IMEX) and the implicit solves that fit the grid: the pair's order conditions and L-stability,
/// its observed order on a manufactured 1-D periodic heat equation with a nonlinear reaction, its step count against
/// Dopri5's stability bound on stiff diffusion, a 2-D case against the semi-discrete exact solution, the banded
/// (cyclic) and conjugate-gradient solves against dense ones, gradients through both against central differences in
/// float64, and the fixed-step IMEX schemes beyond the dense limit.
module Hybrid.Tests.Numerics.ImexAdaptiveTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Tests.Numerics.Support

let private pi = Math.PI

/// Manufactured u = 0.5 + a(t) sin(2πx), a = 0.25 e⁻ᵗ, for ∂u/∂t = κΔₕu + r u(1 − u) + S on a periodic grid of
/// n cells: S uses the discrete Laplacian's eigenvalue, so this u solves the semi-discrete system exactly and the
/// error is the time integration's alone. θ = [κ; r].
let private manufactured (n: int) =
    let g = Grid.line 0.0 1.0 n
    let bcs = Boundary.periodic g
    let lambda = discreteEigen g.Axes[0].Spacing 1.0
    let s = torch.sin (2.0 * pi * Grid.coordinate g 0 f64)

    let dyn = {
        Dynamics.ofFunction [| "u" |] g (fun th t u ->
            let a = 0.25 * exp -t
            let exact = 0.5 + a * s
            let source = -a * s + th[0] * lambda * a * s - th[1] * exact * (1.0 - exact)
            [| th[1] * u[0] * (1.0 - u[0]) + source |]) with
            Stiff = [| Some(fun th u -> th[0] * Operators.laplacian g bcs u) |]
    }

    dyn, g, (fun (t: float) -> Grid.init g 1 f64 (fun x _ -> 0.5 + 0.25 * exp -t * sin (2.0 * pi * x)))

/// bᵀ M v.
let private dot (b: float[]) (v: float[]) =
    Array.fold2 (fun s x y -> s + x * y) 0.0 b v

let private times (m: float[][]) (v: float[]) = m |> Array.map (fun row -> dot row v)

/// Fisher–KPP-like stiff diffusion: ∂u/∂t = κΔu + u(1 − u), Dirichlet 0, n cells on [0, 1].
let private stiffDiffusion (n: int) =
    let g = Grid.line 0.0 1.0 n
    let bcs = Boundary.uniform g (Boundary.dirichlet 0.0)

    {
        Dynamics.ofFunction [| "u" |] g (fun _ _ u -> [| u[0] * (1.0 - u[0]) |]) with
            Stiff = [| Some(fun th u -> th[0] * Operators.laplacian g bcs u) |]
    },
    g

/// ∂u/∂t = κΔu + r u(1 − u) on a grid with boundaries `bcs`; θ = [κ; r].
let private reactionDiffusion (g: Grid) (bcs: FieldBoundary) = {
    Dynamics.ofFunction [| "u" |] g (fun th _ u -> [| th[1] * u[0] * (1.0 - u[0]) |]) with
        Stiff = [| Some(fun th u -> th[0] * Operators.laplacian g bcs u) |]
}

let tests =
    testList "KenCarp4 and grid solves" [
        test "the pair satisfies the additive order conditions to order 4, the embedding to order 3, and is L-stable" {
            let ae = KenCarp4Tableau.explicitMatrix ()
            let ai = KenCarp4Tableau.implicitMatrix ()
            let b = KenCarp4Tableau.b
            let e = KenCarp4Tableau.embedded
            let c = KenCarp4Tableau.c
            let ones = Array.create 6 1.0

            let close (name: string) (got: float) (want: float) =
                Expect.floatClose Accuracy.veryHigh got want name

            // Both tableaux have the stage times as row sums (so the bicoloured trees reduce to these conditions).
            for i in 0..5 do
                close $"explicit row sum {i}" (dot ae[i] ones) c[i]
                close $"implicit row sum {i}" (dot ai[i] ones) c[i]

            let c2 = c |> Array.map (fun x -> x * x)
            let c3 = c |> Array.map (fun x -> x * x * x)

            for name, w, order in [ "b", b, 4; "b̂", e, 3 ] do
                close $"{name}: Σ = 1" (Array.sum w) 1.0
                close $"{name}: ·c = 1/2" (dot w c) 0.5
                close $"{name}: ·c² = 1/3" (dot w c2) (1.0 / 3.0)

                for xn, x in [ "E", ae; "I", ai ] do
                    close $"{name}: ·A{xn}c = 1/6" (dot w (times x c)) (1.0 / 6.0)

                if order = 4 then
                    close "b·c³ = 1/4" (dot b c3) 0.25

                    for xn, x in [ "E", ae; "I", ai ] do
                        close $"b·(c∘A{xn}c) = 1/8" (dot b (Array.map2 (*) c (times x c))) 0.125
                        close $"b·A{xn}c² = 1/12" (dot b (times x c2)) (1.0 / 12.0)

                        for yn, y in [ "E", ae; "I", ai ] do
                            close $"b·A{xn}A{yn}c = 1/24" (dot b (times x (times y c))) (1.0 / 24.0)

            // The embedding is genuinely of order 3: its error estimate is not identically zero at order 4.
            Expect.isGreaterThan (abs (dot e c3 - 0.25)) 1e-4 "b̂ misses b̂·c³ = 1/4"

            // L-stability of the implicit part: R(z) = 1 + z bᵀ(I − zAᴵ)⁻¹𝟙 → 0 as z → −∞ (forward substitution).
            let z = -1e8
            let y = Array.zeroCreate<float> 6

            for i in 0..5 do
                let below = Array.init i (fun j -> ai[i][j] * y[j]) |> Array.sum
                y[i] <- (1.0 + z * below) / (1.0 - z * ai[i][i])

            Expect.isLessThan (abs (1.0 + z * dot b y)) 1e-6 "|R(−10⁸)|"
        }

        test "fixed steps on a manufactured periodic heat equation with a nonlinear reaction: order 4" {
            // h·κλ ≤ 0.5: the asymptotic range (with h·κλ ≫ 1 the stage order 2 of the ESDIRK part shows: ≈ 3).
            let dyn, _, exact = manufactured 32
            let theta = [| scalar 0.1; scalar 2.0 |]

            let error (n: int) =
                use _ = torch.no_grad ()

                let m =
                    AdditiveRungeKutta.method dyn theta [| tolerance 1e-6 1e-9 |] [| exact 0.0 |]

                let h = 1.0 / float n
                let mutable u = [| exact 0.0 |]

                for i in 0 .. n - 1 do
                    u <- (m.Attempt (float i * h) h u [||]).Next

                maxAbs (u[0] - exact 1.0)

            let errors = [ 16; 32; 64 ] |> List.map error
            let observed = orders errors
            printfn "KenCarp4 fixed steps: errors %A, orders %A" errors observed

            for p in observed do
                Expect.isLessThan (abs (p - 4.0)) 0.35 $"observed order {p:F3}, expected 4 (errors {errors})"
        }

        test "adaptive: error within 10× the tolerance at 1e-4, 1e-6, 1e-8 on the manufactured solution" {
            let dyn, _, exact = manufactured 32
            let theta = [| scalar 1.0; scalar 2.0 |]

            for tol in [ 1e-4; 1e-6; 1e-8 ] do
                let traj =
                    Rollout.run
                        dyn
                        theta
                        [| exact 0.0 |]
                        (adaptive Scheme.KenCarp4 (tolerance tol tol) 1e-3 [| 0.5; 1.0 |])

                let err =
                    max (maxAbs (traj.Values[0][0L] - exact 0.5)) (maxAbs (traj.Values[0][1L] - exact 1.0))

                printfn "KenCarp4 tol %g: error %.3g, steps %A" tol err (Rollout.lastSteps ())
                Expect.isLessThan err (10.0 * tol) $"error at tolerance {tol}"
        }

        test "stiff diffusion: Dopri5 needs at least 10× KenCarp4's steps, as its stability bound says" {
            let n = 100
            let dyn, g = stiffDiffusion n
            let kappa = 1.0
            let theta = [| scalar kappa |]
            let u0 = Grid.init g 1 f64 (fun x _ -> sin (pi * x))
            let tEnd = 0.02

            let o scheme =
                adaptive scheme (tolerance 1e-6 1e-8) 1e-4 [| tEnd |]

            let ark = Rollout.run dyn theta [| u0 |] (o Scheme.KenCarp4)
            let arkSteps = fst (Rollout.lastSteps ())
            let dopri = Rollout.run dyn theta [| u0 |] (o Scheme.Dopri5)
            let dopriSteps = fst (Rollout.lastSteps ())
            // Dopri5's steps are bounded by h·4κ/Δx² ≤ 3.3066 (its real stability radius).
            let dx = 1.0 / float n
            let bound = tEnd / (3.3066 * dx * dx / (4.0 * kappa))

            printfn
                "stiff diffusion: KenCarp4 %d steps, Dopri5 %d steps (stability bound %.0f)"
                arkSteps
                dopriSteps
                bound

            Expect.isGreaterThanOrEqual (float dopriSteps) (0.9 * bound) "Dopri5 sits at its stability bound"
            Expect.isLessThanOrEqual (10 * arkSteps) dopriSteps "KenCarp4 takes ≥ 10× fewer steps"
            Expect.isLessThan (maxAbs (ark.Values[0] - dopri.Values[0])) 1e-5 "both agree"
        }

        test "2-D periodic heat with a reaction-free source: KenCarp4 with conjugate gradients meets the tolerance" {
            let g = Grid.plane (0.0, 1.0, 16) (0.0, 1.0, 12)
            let bcs = Boundary.periodic g
            let dyn = reactionDiffusion g bcs
            let theta = [| scalar 0.5; scalar 0.0 |]
            let rate = 0.5 * (discreteEigen (1.0 / 16.0) 1.0 + discreteEigen (1.0 / 12.0) 1.0)

            let mode t =
                Grid.init g 1 f64 (fun x y -> exp (-rate * t) * sin (2.0 * pi * x) * cos (2.0 * pi * y))

            let op =
                ImplicitSolve.create (fun u -> 0.5 * Operators.laplacian g bcs u) (mode 0.0) 1e-10 false

            Expect.equal op.Method "conjugate gradients" "a 2-D symmetric operator takes CG"

            for tol in [ 1e-5; 1e-8 ] do
                let traj =
                    Rollout.run dyn theta [| mode 0.0 |] (adaptive Scheme.KenCarp4 (tolerance tol tol) 1e-3 [| 0.1 |])

                let err = maxAbs (traj.Values[0][0L] - mode 0.1)
                printfn "2-D KenCarp4 tol %g: error %.3g, steps %A" tol err (Rollout.lastSteps ())
                Expect.isLessThan err (10.0 * tol) $"error at tolerance {tol}"
        }

        test "banded (cyclic and not) and conjugate-gradient solves agree with dense solves to 1e-12" {
            let check (name: string) (g: Grid) (bcs: FieldBoundary) (kappa: torch.Tensor) (expected: string) =
                let l (u: torch.Tensor) = kappa * Operators.laplacian g bcs u
                let like = Grid.init g 3 f64 (fun _ _ -> 0.0)
                let op = ImplicitSolve.create l like 1e-15 false
                Expect.equal op.Method expected $"{name}: solve chosen"
                let at, _ = ImplicitSolve.assemble l like.shape[1..] f64 like.device
                let n = at.shape[0]
                use gen = new torch.Generator(7UL)
                let r = torch.randn (like.shape, dtype = f64, generator = gen)
                let c = 0.013

                let dense =
                    torch.linalg.solve(torch.eye (n, dtype = f64) - c * at.t (), r.reshape([| 3L; n |]).t ()).t ()

                let got = op.Solve c r
                let err = maxAbs (got.reshape ([| 3L; n |]) - dense) / maxAbs dense
                printfn "%s: %s solve vs dense, relative %.3g" name op.Method err
                Expect.isLessThan err 1e-12 $"{name}: {op.Method} vs dense"

            let line = Grid.line 0.0 1.0 40
            let plane = Grid.plane (0.0, 1.0, 9) (0.0, 2.0, 7)
            let spatial = 1.0 + Grid.coordinate line 0 f64
            check "1-D periodic" line (Boundary.periodic line) (scalar 2.0) "banded"
            check "1-D Dirichlet" line (Boundary.uniform line (Boundary.dirichlet 1.0)) (scalar 2.0) "banded"
            check "1-D Neumann, κ(x)Δu" line (Boundary.uniform line (Boundary.neumann 0.5)) spatial "banded"
            check "2-D periodic" plane (Boundary.periodic plane) (scalar 0.7) "conjugate gradients"

            check
                "2-D Dirichlet"
                plane
                (Boundary.uniform plane (Boundary.dirichlet 0.0))
                (scalar 0.7)
                "conjugate gradients"
            // κ(x)Δu is not symmetric in 2-D: the dense solve.
            check "2-D κ(x)Δu" plane (Boundary.periodic plane) (1.0 + Grid.coordinate plane 0 f64) "dense"
        }

        test "gradients through KenCarp4 w.r.t. κ and the reaction rate = central differences (1-D banded, 2-D CG)" {
            for name, g in
                [
                    "1-D periodic", Grid.line 0.0 1.0 24
                    "2-D periodic", Grid.plane (0.0, 1.0, 8) (0.0, 1.0, 6)
                ] do
                let bcs = Boundary.periodic g
                let dyn = reactionDiffusion g bcs

                let u0 =
                    Grid.init g 1 f64 (fun x y -> 0.5 + 0.3 * sin (2.0 * pi * x) + 0.1 * cos (2.0 * pi * y))

                let weights = Grid.init g 1 f64 (fun x y -> 1.0 + x + 0.5 * y)
                let o = adaptive Scheme.KenCarp4 (tolerance 1e-9 1e-11) 1e-3 [| 0.05 |]

                let loss (theta: torch.Tensor[]) =
                    ((Rollout.run dyn theta [| u0 |] o).Values[0][0L] * weights).sum ()

                let errors = gradientErrors loss [| 0.3; 2.0 |]
                printfn "%s: relative gradient errors %A" name errors

                for e in errors do
                    Expect.isLessThan e 1e-6 $"{name}: autograd vs central differences"
        }

        test "fixed-step IMEX Euler beyond 4,096 unknowns takes the banded solve and matches one exact step" {
            let n = 5000
            let g = Grid.line 0.0 1.0 n
            let bcs = Boundary.periodic g
            let dyn = reactionDiffusion g bcs
            let theta = [| scalar 0.1; scalar 0.0 |]
            let u0 = Grid.init g 1 f64 (fun x _ -> sin (2.0 * pi * x))
            let h = 0.01
            let traj = Rollout.run dyn theta [| u0 |] (options Scheme.ImexEuler h [| h |])
            // Backward Euler multiplies the mode by 1/(1 + hκλₕ).
            let factor = 1.0 / (1.0 + h * 0.1 * discreteEigen (1.0 / float n) 1.0)
            Expect.isLessThan (maxAbs (traj.Values[0][0L] - factor * u0)) 1e-11 "one backward Euler step"
        }
    ]
