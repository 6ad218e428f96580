/// Operators and boundary conditions: exactness on polynomials, and autograd against central finite
/// differences (float64, relative error ≤ 1e-6) for every operator and every boundary kind.
module Hybrid.Tests.Numerics.OperatorTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Tests.Numerics.Support

let private line = Grid.line 0.0 1.0 12
let private plane = Grid.plane (0.0, 1.0, 6) (0.0, 2.0, 5)

/// Boundary kinds, with the boundary values as extra differentiable inputs (Dirichlet value, Neumann slope).
let private kinds: (string * (torch.Tensor -> Bc)) list = [
    "periodic", (fun _ -> Bc.Periodic)
    "Dirichlet", (fun v -> Bc.Dirichlet v)
    "Neumann", (fun v -> Bc.Neumann v)
    "no-flux", (fun _ -> Bc.NoFlux)
]

let private field (g: Grid) =
    Grid.init g 2 f64 (fun x y -> sin (3.0 * x + 1.0) + 0.3 * cos (2.0 * y) + 0.5)

let private weights (g: Grid) =
    use gen = new torch.Generator(7UL)
    torch.randn (Grid.fieldShape g 2, dtype = f64, generator = gen)

let private check name (g: Grid) (op: FieldBoundary -> torch.Tensor[] -> torch.Tensor) = [
    for kind, make in kinds ->
        test $"{name}, {kind}" {
            let w = weights g

            let err =
                gradCheck
                    (fun xs ->
                        let bcs = Array.init g.Dims (fun _ -> Boundary.both (make xs[1]))
                        (w * op bcs xs).sum ())
                    [| field g; scalar 0.7; scalar 1.3 |]

            Expect.isLessThan err 1e-6 $"relative error {err:E2}"
        }
]

let tests =
    testList "Operators" [
        test "Dirichlet ghost cell puts the boundary value on the face" {
            let u = Grid.init line 1 f64 (fun x _ -> x)

            let faces =
                Operators.toFaces line (Boundary.uniform line (Boundary.dirichlet 3.0)) 0 u

            Expect.floatClose Accuracy.veryHigh (faces[0L, 0L].ToDouble()) 3.0 "left face"
            Expect.floatClose Accuracy.veryHigh (faces[0L, 12L].ToDouble()) 3.0 "right face"
        }

        test "Laplacian of x² is 2 in the interior; Neumann ghost reproduces a linear slope" {
            let u = Grid.init line 1 f64 (fun x _ -> x * x)
            let lap = Operators.laplacian line (Boundary.noFlux line) u
            Expect.floatClose Accuracy.high (lap[0L, 5L].ToDouble()) 2.0 "interior"
            let lin = Grid.init line 1 f64 (fun x _ -> 2.0 * x)

            let bcs = [|
                {
                    Low = Boundary.neumann -2.0
                    High = Boundary.neumann 2.0
                }
            |]

            let d = Operators.ddx line bcs lin
            Expect.floatClose Accuracy.veryHigh (d.min().ToDouble()) 2.0 "slope everywhere"
            Expect.floatClose Accuracy.veryHigh (d.max().ToDouble()) 2.0 "slope everywhere"
        }

        test "lattice shift moves values by the offset" {
            let u = Grid.init (Grid.lattice 5) 1 f64 (fun k _ -> k)
            let s = Operators.shift 1 u
            Expect.equal (s[0L, 0L].ToDouble()) 1.0 "site 0 sees site 1"
            Expect.equal (s[0L, 4L].ToDouble()) 0.0 "wraps"
            let back = Operators.shift (-2) u
            Expect.equal (back[0L, 0L].ToDouble()) 3.0 "site 0 sees site −2 = 3"
        }

        test "periodic on one side only is rejected with the axis name" {
            let bcs = [| { Low = Bc.Periodic; High = Bc.NoFlux } |]
            let u = Grid.init line 1 f64 (fun x _ -> x)
            let e = Expect.throwsC (fun () -> Operators.laplacian line bcs u |> ignore) id
            Expect.stringContains e.Message "'x'" "names the axis"
        }

        testList "gradient checks" [
            yield! check "∂x (1-D)" line (fun bcs xs -> Operators.ddx line bcs xs[0])
            yield! check "∂y (2-D)" plane (fun bcs xs -> Operators.ddy plane bcs xs[0])
            yield! check "∇ (2-D)" plane (fun bcs xs -> Operators.gradient plane bcs xs[0] |> Array.reduce (+))
            yield! check "∇· (2-D)" plane (fun bcs xs -> Operators.divergence plane bcs [| xs[0]; xs[0].square () |])
            yield! check "Δ (1-D)" line (fun bcs xs -> Operators.laplacian line bcs xs[0])
            yield! check "Δ (2-D)" plane (fun bcs xs -> Operators.laplacian plane bcs xs[0])
            yield!
                check "∇·(κ∇u), κ constant (1-D)" line (fun bcs xs ->
                    Operators.diffusion line bcs (fun _ -> xs[2]) xs[0])
            yield!
                check "∇·(D(u)∇u), D = κ(1 + u²) at faces (1-D)" line (fun bcs xs ->
                    Operators.diffusion
                        line
                        bcs
                        (fun a -> xs[2] * (1.0 + (Operators.toFaces line bcs a xs[0]).square ()))
                        xs[0])
            yield!
                check "∇·(D(u)∇u) (2-D)" plane (fun bcs xs ->
                    Operators.diffusion
                        plane
                        bcs
                        (fun a -> xs[2] * (1.0 + (Operators.toFaces plane bcs a xs[0]).square ()))
                        xs[0])
            yield!
                check "upwind advection, both signs (1-D)" line (fun bcs xs ->
                    Operators.advection line bcs [| xs[2] * (xs[0] - 0.5) |] xs[0])
            test "lattice shift" {
                let g = Grid.lattice 6
                let w = weights g
                let u = Grid.init g 2 f64 (fun k _ -> sin k)

                let err =
                    gradCheck (fun xs -> (w * Operators.shift -2 xs[0] * Operators.shift 1 xs[0]).sum ()) [| u |]

                Expect.isLessThan err 1e-6 $"relative error {err:E2}"
            }
        ]
    ]
