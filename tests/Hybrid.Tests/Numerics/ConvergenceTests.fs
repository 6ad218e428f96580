/// Convergence: the heat equation against its analytic solution (periodic and Dirichlet, 1-D and 2-D), a
/// manufactured solution of ∂u/∂t = ∇·(D(u)∇u) + R(u) + S with Neumann boundaries (spatial order 2), and
/// the temporal order of every integrator (1, 2, 3, 4; IMEX 1, 2). All in float64.
module Hybrid.Tests.Numerics.ConvergenceTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Tests.Numerics.Support

let private pi = Math.PI

/// Heat equation ∂u/∂t = D Δu as Dynamics on grid g with boundaries bcs; D is θ[0].
let heat (g: Grid) (bcs: FieldBoundary) = {
    Dynamics.ofFunction [| "u" |] g (fun th _ u -> [| Operators.laplacian g bcs u[0] * th[0] |]) with
        Limits =
            fun th _ -> {
                Diffusivity = th[0].ToDouble()
                StiffDiffusivity = 0.0
                Speed = 0.0
            }
}

let private expectOrder (name: string) (expected: float) (errors: float list) =
    let observed = orders errors
    printfn "%s: errors %A, observed orders %A" name errors observed

    for p in observed do
        Expect.isLessThan
            (abs (p - expected))
            0.2
            $"{name}: observed order {p:F3}, expected {expected} (errors {errors})"

/// Error of the heat equation at T against the exact solution, for cells n per unit length.
let private heatError (makeGrid: int -> Grid) (bc: Grid -> FieldBoundary) (exact: float -> float -> float -> float) n =
    let g = makeGrid n
    let d = 0.1
    let tEnd = 0.05
    let h = g.Axes |> Array.map (fun a -> a.Spacing) |> Array.min
    // RK4 with Δt well inside the limit, so that the time error is negligible next to the O(h²) space error.
    let dt = 0.2 * h * h / d
    let u0 = Grid.init g 1 f64 (fun x y -> exact x y 0.0)

    let traj =
        Rollout.run (heat g (bc g)) [| scalar d |] [| u0 |] (options Scheme.Rk4 dt [| tEnd |])

    let reference = Grid.init g 1 f64 (fun x y -> exact x y tEnd)
    maxAbs (traj.Values[0][0L] - reference)

/// Manufactured problem: u = 2 + e⁻ᵗ cos(πx) on [0, 1], D(u) = d₀(1 + u²), R(u) = r u (1 − u/4),
/// homogeneous Neumann (∂u/∂x = 0 at both ends); S = ∂u/∂t − ∂x(D(u)∂x u) − R(u) computed by hand.
let private manufactured (g: Grid) =
    let d0, r = 0.05, 0.5
    let bcs = Boundary.uniform g (Boundary.neumann 0.0)
    let x = Grid.coordinate g 0 f64

    let source (t: float) =
        let a = exp -t
        let c = torch.cos (pi * x)
        let s = torch.sin (pi * x)
        let u = 2.0 + a * c
        let ut = -a * c
        let ux = -a * pi * s
        let uxx = -a * pi * pi * c
        let dudx = d0 * (1.0 + u.square ()) * uxx + 2.0 * d0 * u * ux.square ()
        ut - dudx - r * u * (1.0 - u / 4.0)

    Dynamics.ofFunction [| "u" |] g (fun _ t u ->
        let kappa a =
            d0 * (1.0 + (Operators.toFaces g bcs a u[0]).square ())

        [|
            Operators.diffusion g bcs kappa u[0] + r * u[0] * (1.0 - u[0] / 4.0) + source t
        |])

let private exactManufactured x t = 2.0 + exp -t * cos (pi * x)

/// A nonlinear, non-autonomous 0-D system for temporal orders: a forced Lotka–Volterra pair.
let private ode =
    Dynamics.ofFunction [| "u"; "v" |] Grid.point (fun th t s ->
        let u, v = s[0], s[1]
        [| th[0] * u - u * v + 0.1 * Math.Sin t; u * v - v |])

let private odeStart () = [| (scalar 1.5).reshape 1L; (scalar 0.8).reshape 1L |]

/// The reference solution at t = 2 (RK4, 8,192 steps): computed once and shared by every temporal-order test (it
/// costs more than all their runs together).
let private odeReference =
    lazy (Rollout.run ode [| scalar 1.1 |] (odeStart ()) (options Scheme.Rk4 (2.0 / 8192.0) [| 2.0 |])).Values

let private odeError scheme n =
    let u0 = odeStart ()

    let run dt =
        Rollout.run ode [| scalar 1.1 |] u0 (options scheme dt [| 2.0 |])

    let reference = odeReference.Force()
    let approx = run (2.0 / float n)
    max (maxAbs (approx.Values[0] - reference[0])) (maxAbs (approx.Values[1] - reference[1]))

/// Fisher–KPP on 16 cells (Dirichlet 0): stiff diffusion split from the logistic reaction.
let private fisher () =
    let g = Grid.line 0.0 1.0 16
    let bcs = Boundary.uniform g (Boundary.dirichlet 0.0)

    {
        Dynamics.ofFunction [| "u" |] g (fun th _ u -> [| th[1] * u[0] * (1.0 - u[0]) |]) with
            Stiff = [| Some(fun th u -> th[0] * Operators.laplacian g bcs u) |]
    },
    g

let tests =
    testList "Convergence" [
        test "heat 1-D periodic: spatial order 2" {
            [ 16; 32; 64 ]
            |> List.map (
                heatError (fun n -> Grid.line 0.0 1.0 n) Boundary.periodic (fun x _ t ->
                    sin (2.0 * pi * x) * exp (-4.0 * pi * pi * 0.1 * t))
            )
            |> expectOrder "heat 1-D periodic" 2.0
        }

        test "heat 1-D Dirichlet: spatial order 2" {
            [ 16; 32; 64 ]
            |> List.map (
                heatError
                    (fun n -> Grid.line 0.0 1.0 n)
                    (fun g -> Boundary.uniform g (Boundary.dirichlet 0.0))
                    (fun x _ t -> sin (pi * x) * exp (-pi * pi * 0.1 * t))
            )
            |> expectOrder "heat 1-D Dirichlet" 2.0
        }

        test "heat 2-D periodic: spatial order 2" {
            [ 8; 16; 32 ]
            |> List.map (
                heatError (fun n -> Grid.plane (0.0, 1.0, n) (0.0, 1.0, n)) Boundary.periodic (fun x y t ->
                    sin (2.0 * pi * x) * cos (2.0 * pi * y) * exp (-8.0 * pi * pi * 0.1 * t))
            )
            |> expectOrder "heat 2-D periodic" 2.0
        }

        test "heat 2-D Dirichlet: spatial order 2" {
            [ 8; 16; 32 ]
            |> List.map (
                heatError
                    (fun n -> Grid.plane (0.0, 1.0, n) (0.0, 1.0, n))
                    (fun g -> Boundary.uniform g (Boundary.dirichlet 0.0))
                    (fun x y t -> sin (pi * x) * sin (pi * y) * exp (-2.0 * pi * pi * 0.1 * t))
            )
            |> expectOrder "heat 2-D Dirichlet" 2.0
        }

        test "manufactured nonlinear ∇·(D(u)∇u) + R(u), Neumann: spatial order 2" {
            [ 16; 32; 64 ]
            |> List.map (fun n ->
                let g = Grid.line 0.0 1.0 n
                let h = 1.0 / float n
                let dt = 0.4 * h * h / (0.05 * 10.0)
                let u0 = Grid.init g 1 f64 (fun x _ -> exactManufactured x 0.0)

                let traj =
                    Rollout.run (manufactured g) [||] [| u0 |] (options Scheme.Rk4 dt [| 0.1 |])

                maxAbs (traj.Values[0][0L] - Grid.init g 1 f64 (fun x _ -> exactManufactured x 0.1)))
            |> expectOrder "manufactured" 2.0
        }

        testList "temporal order" [
            for scheme, p in [ Scheme.Euler, 1.0; Scheme.Heun, 2.0; Scheme.SspRk3, 3.0; Scheme.Rk4, 4.0 ] ->
                test $"{scheme}: order {p}" {
                    // Euler needs smaller steps to sit in its asymptotic range.
                    let ns = if p = 1.0 then [ 160; 320; 640 ] else [ 20; 40; 80; 160 ]
                    ns |> List.map (odeError scheme) |> expectOrder $"{scheme}" p
                }

            for scheme, p in [ Scheme.ImexEuler, 1.0; Scheme.ImexCrankNicolson, 2.0 ] ->
                test $"{scheme} on Fisher–KPP: order {p}" {
                    let dyn, g = fisher ()
                    let theta = [| scalar 0.1; scalar 1.0 |]
                    let u0 = Grid.init g 1 f64 (fun x _ -> sin (pi * x))
                    let reference = Rollout.run dyn theta [| u0 |] (options Scheme.Rk4 1e-3 [| 0.5 |])

                    [ 0.05; 0.025; 0.0125; 0.00625 ]
                    |> List.map (fun dt ->
                        let traj = Rollout.run dyn theta [| u0 |] (options scheme dt [| 0.5 |])
                        maxAbs (traj.Values[0] - reference.Values[0]))
                    |> expectOrder $"{scheme}" p
                }
        ]
    ]
