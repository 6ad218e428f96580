/// Rodas4 on 1-D and 2-D grids with solves that fit the grid: the Jacobian probed by coloured vector–Jacobian
/// products against the dense autograd Jacobian, the block (cyclic) tridiagonal and BiCGSTAB solves (and their
/// transposes) against dense solves, a stiff Brusselator against a tight Dopri5 reference, exact semi-discrete
/// solutions of stiffly coupled linear fields in 1-D (beyond 4,096 unknowns) and 2-D, and gradients against central
/// differences in float64.
module Hybrid.Tests.Numerics.GridRosenbrockTests

open System
open System.Diagnostics
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Tests.Numerics.Support

let private pi = Math.PI

/// The Brusselator with diffusion (Hairer and Wanner, Solving ODEs II, §IV.10, with a reaction rate k):
/// u' = κΔu + k(1 + u²v − 4u), v' = κΔv + k(3u − u²v), θ = [κ; k].
let private brusselator (g: Grid) (bcs: FieldBoundary) =
    Dynamics.ofFunction [| "u"; "v" |] g (fun th _ x ->
        let u, v = x[0], x[1]
        let uuv = u * u * v

        [|
            th[0] * Operators.laplacian g bcs u + th[1] * (1.0 + uuv - 4.0 * u)
            th[0] * Operators.laplacian g bcs v + th[1] * (3.0 * u - uuv)
        |])

/// u' = κΔu − k(u − v), v' = κΔv + k(u − v) on a periodic grid: on a Fourier mode with discrete eigenvalue λ,
/// u + v decays like e^(−κλt) and u − v like e^(−(κλ + 2k)t). θ = [κ; k].
let private exchange (g: Grid) =
    let bcs = Boundary.periodic g

    Dynamics.ofFunction [| "u"; "v" |] g (fun th _ x ->
        let d = th[1] * (x[0] - x[1])

        [|
            th[0] * Operators.laplacian g bcs x[0] - d
            th[0] * Operators.laplacian g bcs x[1] + d
        |])

/// Rodas4 on `exchange` from u = 2·mode, v = 0 (mode = sin(2πx)·cos(2πy), discrete Laplacian eigenvalue λ) to
/// tEnd at tolerance tol, checking that solve `expected` ran: the largest error against the exact solution, in which
/// u + v = 2e^(−κλt)·mode and u − v = 2e^(−(κλ + 2k)t)·mode.
let private exchangeError (g: Grid) (lambda: float) (kappa: float) (k: float) (tEnd: float) (tol: float) expected =
    let dyn = exchange g
    let theta = [| scalar kappa; scalar k |]
    let mode = Grid.init g 1 f64 (fun x y -> sin (2.0 * pi * x) * cos (2.0 * pi * y))
    let u0 = [| 2.0 * mode; torch.zeros_like mode |]
    Expect.equal (Rosenbrock.solveName dyn theta u0) expected "the solve chosen"

    let traj =
        Rollout.run dyn theta u0 (adaptive Scheme.Rodas4 (tolerance tol tol) 1e-5 [| tEnd |])

    Expect.equal (Rollout.lastRodasSolve ()) expected "the solve that ran"
    let s = exp (-kappa * lambda * tEnd)
    let d = exp (-(kappa * lambda + 2.0 * k) * tEnd)

    let err =
        max (maxAbs (traj.Values[0][0L] - (s + d) * mode)) (maxAbs (traj.Values[1][0L] - (s - d) * mode))

    printfn
        "exchange (%s), %d unknowns, tol %g: steps %A, error %.3g"
        expected
        (2L * mode.NumberOfElements)
        tol
        (Rollout.lastSteps ())
        err

    err

/// The dense Jacobian of the full tendency by autograd, with the unknowns interleaved (cell by cell) like the blocks.
let private denseInterleaved (dyn: Dynamics) (theta: torch.Tensor[]) (u: torch.Tensor[]) =
    let cells = u[0].NumberOfElements
    let n = int64 u.Length

    let layout = {
        Cells = 1L
        Size = cells * n
        Pointwise = false
    }

    let j =
        (Jacobian.autograd (Dynamics.total dyn theta 0.0) layout false u).select(0L, 0L).select (0L, 0L)
    // Field-major index f·cells + c → interleaved c·n + f.
    let perm =
        torch.tensor (Array.init (int (cells * n)) (fun e -> int64 (e % int n) * cells + int64 (e / int n)))

    j.index_select(0L, perm).index_select (1L, perm)

/// The matrix of a block stencil as a dense [Cells·n; Cells·n] (trajectory 0).
let private toDense (m: BlockStencil) =
    let n = m.Fields
    let size = m.Cells * n
    let values = m.Values.select(0L, 0L).contiguous().data<float>().ToArray()
    let k = m.Opposite.Length
    let dense = Array2D.zeroCreate<float> size size

    for i in 0 .. m.Cells - 1 do
        for kk in 0 .. k - 1 do
            let j = m.ColumnArray[i][kk]

            for a in 0 .. n - 1 do
                for b in 0 .. n - 1 do
                    dense[i * n + a, j * n + b] <-
                        dense[i * n + a, j * n + b] + values[(((i * k) + kk) * n + a) * n + b]

    torch.tensor (dense, dtype = f64)

let tests =
    testList "Rodas4 on grids" [
        test
            "coloured probes give the dense Jacobian; block tridiagonal and BiCGSTAB solves (and transposes) = dense to 1e-12" {
            let check (name: string) (g: Grid) (bcs: FieldBoundary) (expected: string) =
                let dyn = brusselator g bcs
                let theta = [| scalar 0.02; scalar 5.0 |]

                let u = [|
                    Grid.init g 1 f64 (fun x y -> 1.0 + 0.5 * sin (2.0 * pi * x) + 0.2 * cos (2.0 * pi * y))
                    Grid.init g 1 f64 (fun x y -> 3.0 + 0.3 * cos (2.0 * pi * x) - 0.1 * y)
                |]

                Expect.equal (Rosenbrock.solveName dyn theta u) expected $"{name}: the solve chosen"
                let spatial = u[0].shape[1..]

                let layout = {
                    Cells = u[0].NumberOfElements
                    Size = 2L
                    Pointwise = true
                }

                let f =
                    Jacobian.pack layout << Dynamics.total dyn theta 0.0 << Jacobian.unpack layout u

                let pattern = BlockStencil.pattern spatial 2 u[0].device
                let m = (BlockStencil.jacobian pattern f false (Jacobian.pack layout u)).Value
                let dense = denseInterleaved dyn theta u
                let jErr = maxAbs (toDense m - dense) / maxAbs dense
                Expect.isLessThan jErr 1e-13 $"{name}: probed Jacobian vs dense autograd"

                let c = 0.01
                let a = (1.0 / c) .* BlockStencil.identity m u[0] .- m.Values
                let size = dense.shape[0]
                let matrix = (1.0 / c) * torch.eye (size, dtype = f64) - dense

                let solver =
                    if spatial.Length = 1 then
                        BlockStencilSolve.banded m
                    else
                        BlockStencilSolve.biCgStab m 1e-15

                use gen = new torch.Generator(11UL)
                let r = torch.randn ([| 1L; int64 m.Cells; 2L |], dtype = f64, generator = gen)

                for direction, got, mat in
                    [
                        "A x = r", solver.Forward a r, matrix
                        "Aᵀ λ = r", solver.Transposed a r, matrix.t ()
                    ] do
                    let want = torch.linalg.solve (mat, r.reshape ([| size; 1L |]))
                    let err = maxAbs (got.reshape ([| size; 1L |]) - want) / maxAbs want
                    printfn "%s, %s: %s vs dense, relative %.3g (Jacobian %.3g)" name direction expected err jErr
                    Expect.isLessThan err 1e-12 $"{name}: {direction}"

            let line = Grid.line 0.0 1.0 30
            let plane = Grid.plane (0.0, 1.0, 9) (0.0, 1.0, 7)
            check "1-D periodic" line (Boundary.periodic line) "block tridiagonal"
            check "1-D Dirichlet" line (Boundary.uniform line (Boundary.dirichlet 1.0)) "block tridiagonal"
            check "2-D periodic" plane (Boundary.periodic plane) "BiCGSTAB"
            check "2-D Neumann" plane (Boundary.uniform plane (Boundary.neumann 0.0)) "BiCGSTAB"
        }

        test
            "stiff Brusselator on 250 cells: Rodas4 (block tridiagonal) within 10× the tolerance of a tight Dopri5 reference" {
            let g = Grid.line 0.0 1.0 250
            let bcs = Boundary.uniform g (Boundary.dirichlet 1.0)
            let dyn = brusselator g bcs
            // κ/Δx² · 4 = 5,000 and a reaction rate k = 20: both stiff for an explicit scheme.
            let theta = [| scalar 0.02; scalar 20.0 |]

            let u0 = [|
                Grid.init g 1 f64 (fun x _ -> 1.0 + sin (2.0 * pi * x))
                Grid.init g 1 f64 (fun _ _ -> 3.0)
            |]

            let tEnd = 0.5
            Expect.equal (Rosenbrock.solveName dyn theta u0) "block tridiagonal" "the solve chosen"
            let tol = 1e-6
            let clock = Stopwatch.StartNew()

            let rodas =
                Rollout.run dyn theta u0 (adaptive Scheme.Rodas4 (tolerance tol tol) 1e-4 [| tEnd |])

            let rodasTime = clock.Elapsed.TotalSeconds
            Expect.equal (Rollout.lastRodasSolve ()) "block tridiagonal" "the solve that ran"
            let rodasSteps = Rollout.lastSteps ()
            clock.Restart()

            let reference =
                Rollout.run dyn theta u0 (adaptive Scheme.Dopri5 (tolerance 1e-10 1e-10) 1e-5 [| tEnd |])

            let dopriSteps = Rollout.lastSteps ()

            let err =
                Array.init 2 (fun i -> maxAbs (rodas.Values[i][0L] - reference.Values[i][0L]))
                |> Array.max

            printfn
                "Brusselator N = 250: Rodas4 %d accepted / %d rejected steps in %.2f s, error %.3g; reference Dopri5 %A in %.2f s"
                (fst rodasSteps)
                (snd rodasSteps)
                rodasTime
                err
                dopriSteps
                clock.Elapsed.TotalSeconds

            Expect.isLessThan err (10.0 * tol) "error vs the reference"
        }

        test
            "1-D, 2 × 2,100 cells (beyond 4,096 unknowns; dense was refused above 1,000): the exact semi-discrete solution" {
            let n = 2100
            let g = Grid.line 0.0 1.0 n
            let clock = Stopwatch.StartNew()
            let tol = 1e-6

            let err =
                exchangeError g (discreteEigen (1.0 / float n) 1.0) 1e-3 1e3 0.05 tol "block tridiagonal"

            printfn "1-D exchange, %d unknowns: %.2f s" (2 * n) clock.Elapsed.TotalSeconds
            Expect.isLessThan err (10.0 * tol) "error vs the exact solution"
        }

        test "2-D, two stiffly coupled fields: Rodas4 with BiCGSTAB within 10× the tolerance of the exact solution" {
            let g = Grid.plane (0.0, 1.0, 16) (0.0, 1.0, 12)
            let lambda = discreteEigen (1.0 / 16.0) 1.0 + discreteEigen (1.0 / 12.0) 1.0

            for tol in [ 1e-5; 1e-8 ] do
                let err = exchangeError g lambda 0.05 500.0 0.1 tol "BiCGSTAB"
                Expect.isLessThan err (10.0 * tol) $"error at tolerance {tol}"
        }

        test "gradients through Rodas4 on grids w.r.t. κ and the reaction rate = central differences (1-D, 2-D)" {
            for name, g, bcs in
                [
                    "1-D periodic", Grid.line 0.0 1.0 16, Boundary.periodic (Grid.line 0.0 1.0 16)
                    "2-D periodic",
                    Grid.plane (0.0, 1.0, 6) (0.0, 1.0, 5),
                    Boundary.periodic (Grid.plane (0.0, 1.0, 6) (0.0, 1.0, 5))
                ] do
                let dyn = brusselator g bcs

                let u0 = [|
                    Grid.init g 1 f64 (fun x y -> 1.0 + 0.5 * sin (2.0 * pi * x) + 0.2 * cos (2.0 * pi * y))
                    Grid.init g 1 f64 (fun x _ -> 3.0 + 0.3 * cos (2.0 * pi * x))
                |]

                let weights = Grid.init g 1 f64 (fun x y -> 1.0 + x + 0.5 * y)
                let o = adaptive Scheme.Rodas4 (tolerance 1e-10 1e-12) 1e-3 [| 0.02 |]

                let loss (theta: torch.Tensor[]) =
                    let traj = Rollout.run dyn theta u0 o
                    ((traj.Values[0][0L] + 0.5 * traj.Values[1][0L]) * weights).sum ()

                let errors = gradientErrors loss [| 0.05; 5.0 |]

                printfn
                    "%s (%s): relative gradient errors %A"
                    name
                    (Rosenbrock.solveName dyn [| scalar 0.05; scalar 5.0 |] u0)
                    errors

                for e in errors do
                    Expect.isLessThan e 1e-6 $"{name}: autograd vs central differences"
        }

        test "timings: grid solve vs dense Jacobian and solve on small 1-D grids (2 fields)" {
            let run (cells: int) =
                let g = Grid.line 0.0 1.0 cells
                let dyn = brusselator g (Boundary.periodic g)
                let theta = [| scalar 0.002; scalar 5.0 |]

                let u0 = [|
                    Grid.init g 1 f64 (fun x _ -> 1.0 + 0.5 * sin (2.0 * pi * x))
                    Grid.init g 1 f64 (fun _ _ -> 3.0)
                |]

                let tol = [| tolerance 1e-6 1e-6; tolerance 1e-6 1e-6 |]

                let time (m: AdaptiveMethod) =
                    use _ = torch.no_grad ()
                    let clock = Stopwatch.StartNew()
                    let r = StepControl.integrate m tol 0.0 1e-3 [| 0.2 |] 100000 (fun _ _ _ -> ()) u0
                    clock.Elapsed.TotalMilliseconds, r.Accepted, r.Saves[0]

                let gridMs, gridSteps, gridEnd = time (Rosenbrock.method dyn theta false tol u0)
                let denseMs, denseSteps, denseEnd = time (Rosenbrock.denseMethod dyn theta false u0)

                printfn
                    "Rodas4, 1-D Brusselator, %d unknowns: grid %.0f ms (%d steps), dense %.0f ms (%d steps)"
                    (2 * cells)
                    gridMs
                    gridSteps
                    denseMs
                    denseSteps

                // Same steps to round-off: the two paths solve the same systems.
                Expect.equal gridSteps denseSteps "same steps"
                Expect.isLessThan (maxAbs (gridEnd[0] - denseEnd[0])) 1e-9 "same solution"

            for cells in [ 3; 5; 8; 20; 100 ] do
                run cells
        }
    ]
