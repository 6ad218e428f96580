/// The generated kernels against eager TorchSharp code doing the same operations (values and gradients to 1e-10 in
/// float64), against finite differences, across every explicit scheme, boundary kind and operator it
/// compiles; checkpointing invariance; NaN reporting; clear errors for what it cannot compile.
module Hybrid.Tests.Kernels.KernelTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Kernels
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64

let private scalar (v: float) =
    torch.tensor (v, dtype = f64, requires_grad = true)

/// A test case: a model, its eager right-hand side written by hand with `Numerics.Operators`, parameter values,
/// and an initial state.
type private Case = {
    Name: string
    Model: Model
    /// Eager F(θ, t, u) written independently of the kernel lowering.
    Eager: torch.Tensor[] -> float -> torch.Tensor[] -> torch.Tensor[]
    Theta: float[]
    Initial: int -> torch.Tensor[]
    Dt: float
    Steps: int
}

let private x = Sym "x"
let private u = Sym "u"
let private v = Sym "v"

let private withBc (bc: BoundaryCondition) (m: Model) =
    m.Fields |> List.fold (fun m f -> Model.setBoundaryAll f.Name bc m) m

let private line n = Grid.line 0.0 1.0 n

/// Smooth bump initial states, one per trajectory (b shifts the bump).
let private bump (g: Grid) (batch: int) =
    let values =
        Array.init batch (fun b ->
            Grid.init g 1 f64 (fun x y ->
                0.3 + 0.5 * exp (-20.0 * ((x - 0.4 - 0.1 * float b) ** 2.0 + (y - 0.5) ** 2.0))))

    torch.cat (values, 0L)

/// The right-hand side of the eager compiled simulator of `m` (compiled on first use), for cases whose
/// hand-written eager form would be long.
let private compiledEager (m: Model) =
    let compiled =
        lazy (Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults m)

    fun (theta: torch.Tensor[]) (t: float) (s: torch.Tensor[]) -> Dynamics.total compiled.Value.Dynamics theta t s

/// Two-scale Lorenz-96 (K = 8, J = 4) with parameters F and c, exercising everything the fast ring has: Σⱼ
/// of a fast expression with the fast coordinate, fast shifts, a fast field shifted by a slow site (J sites),
/// the slow field at the parent site and shifted, and the coordinate x = n on the fast ring.
let internal twoScale =
    let X, Y, F, c = Sym "X", Sym "Y", Sym "F", Sym "c"

    Model.empty "l96_two_scale"
    |> Model.withDomain (Domain.Lattice(8, 4))
    |> Model.addField (Model.field "X")
    |> Model.addField { Model.field "Y" with Fast = true }
    |> Model.addParam (Model.param "F" 10.0)
    |> Model.addParam (Model.param "c" 10.0)
    |> Model.addEquation
        "X"
        ((Expr.shiftK "X" 1 - Expr.shiftK "X" -2) * Expr.shiftK "X" -1 - X + F
         - 0.1 * c * FastSum(Y * (1.0 + 0.001 * Sym "x")))
    |> Model.addEquation
        "Y"
        (-10.0 * c * Expr.shiftJ "Y" 1 * (Expr.shiftJ "Y" 2 - Expr.shiftJ "Y" -1) - c * Y
         + 0.1 * c * X
         + 0.01 * Expr.shiftK "X" 1
         + 0.01 * Expr.shiftK "Y" 1
         + 0.001 * Sym "x")

/// Fisher–KPP with boundary values that move with time and depend on the boundary coordinate and a parameter.
let private movingBoundaries =
    Model.empty "fkpp_moving_bc"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 20))
    |> Model.addField (Model.field "u")
    |> Model.addParam (Model.param "D" 0.02)
    |> Model.addParam (Model.param "a" 0.3)
    |> Model.addEquation "u" (Sym "D" * Laplacian u + u * (1.0 - u) + 0.1 * Partial(Axis.X, u))
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(0.5 + Sym "a" * Apply(Fn.Sin, 3.0 * Sym "t")))
    |> Model.setBoundary "u" Side.Right (BoundaryCondition.Neumann(Sym "a" * Sym "t" - 0.2 * Sym "x"))

let private fisherKpp (bc: BoundaryCondition) (eagerBc: Grid -> FieldBoundary) =
    let n = 24
    let g = line n

    {
        Name = $"Fisher-KPP, {bc}"
        Model =
            Model.empty "fkpp"
            |> Model.withDomain (Domain.Interval(0.0, 1.0, n))
            |> Model.addField (Model.field "u")
            |> Model.addParam (Model.param "D" 0.01)
            |> Model.addParam (Model.param "r" 1.0)
            |> Model.addEquation "u" (Sym "D" * Laplacian u + Sym "r" * u * (1.0 - u))
            |> withBc bc
        Eager =
            fun th _ s ->
                let w = s[0]
                [| th[0] * Operators.laplacian g (eagerBc g) w + th[1] * w * (1.0 - w) |]
        Theta = [| 0.01; 1.0 |]
        Initial = fun b -> [| bump g b |]
        Dt = 0.01
        Steps = 40
    }

let private cases: Case list =
    let n2x, n2y = 8, 6
    let plane = Grid.plane (0.0, 1.0, n2x) (0.0, 1.0, n2y)

    let uBc (_: Grid) : FieldBoundary = [|
        Boundary.both Bc.NoFlux
        {
            Low = Boundary.dirichlet 0.2
            High = Boundary.neumann -0.5
        }
    |]

    let vBc (g: Grid) : FieldBoundary = Boundary.periodic g

    let lorenzK = 12

    [
        fisherKpp BoundaryCondition.NoFlux Boundary.noFlux
        fisherKpp BoundaryCondition.Periodic Boundary.periodic
        fisherKpp (BoundaryCondition.Dirichlet(Num 0.25)) (fun g -> Boundary.uniform g (Boundary.dirichlet 0.25))
        fisherKpp (BoundaryCondition.Neumann(Num 0.7)) (fun g -> Boundary.uniform g (Boundary.neumann 0.7))

        // Nonlinear conservative diffusion with κ(u) at faces, a reaction, and a second periodic field, in 2-D.
        {
            Name = "2-D ∇·(D(u)∇u) with mixed boundaries, two fields"
            Model =
                Model.empty "nonlinear2d"
                |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, n2x, n2y))
                |> Model.addField (Model.field "u")
                |> Model.addField (Model.field "v")
                |> Model.addParam (Model.param "D0" 0.02)
                |> Model.addParam (Model.param "k" 0.5)
                |> Model.addEquation "u" (Divergence(Sym "D0" * (1.0 + PowInt(u, 2)) * Grad u) - u * PowInt(v, 2))
                |> Model.addEquation
                    "v"
                    (Sym "D0" * Laplacian v + u * PowInt(v, 2) - Sym "k" * v
                     + 0.1 * Sym "x" * Sym "y")
                |> Model.setBoundary "u" Side.Left BoundaryCondition.NoFlux
                |> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
                |> Model.setBoundary "u" Side.Bottom (BoundaryCondition.Dirichlet(Num 0.2))
                |> Model.setBoundary "u" Side.Top (BoundaryCondition.Neumann(Num -0.5))
                |> Model.setBoundaryAll "v" BoundaryCondition.Periodic
            Eager =
                fun th _ s ->
                    let a, b = s[0], s[1]

                    let kappa axis =
                        let face = Operators.toFaces plane (uBc plane) axis a
                        th[0] * (1.0 + face * face)

                    let xs = Grid.coordinate plane 0 f64
                    let ys = Grid.coordinate plane 1 f64

                    [|
                        Operators.diffusion plane (uBc plane) kappa a - a * b * b
                        th[0] * Operators.laplacian plane (vBc plane) b + a * b * b - th[1] * b
                        + 0.1 * xs * ys
                    |]
            Theta = [| 0.02; 0.5 |]
            Initial = fun b -> [| bump plane b; 1.0 - 0.5 * bump plane b |]
            Dt = 0.002
            Steps = 30
        }

        // Advection (upwind; the velocity changes sign in time), central ∂x, time and coordinate dependence.
        {
            Name = "1-D advection with sign change, ∂x, t and x"
            Model =
                Model.empty "advect"
                |> Model.withDomain (Domain.Interval(0.0, 1.0, 20))
                |> Model.addField (Model.field "u")
                |> Model.addParam (Model.param "c" 0.8)
                |> Model.addParam (Model.param "a" 0.3)
                |> Model.addEquation
                    "u"
                    (Neg(Advect([ Sym "c" * Apply(Fn.Cos, 8.0 * Sym "t") ], u))
                     + Sym "a" * Partial(Axis.X, u) * x)
                |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Num 1.0))
                |> Model.setBoundary "u" Side.Right (BoundaryCondition.Neumann(Num 0.3))
            Eager =
                fun th t s ->
                    let g = line 20

                    let bcs = [|
                        {
                            Low = Boundary.dirichlet 1.0
                            High = Boundary.neumann 0.3
                        }
                    |]

                    let vel = th[0] * cos (8.0 * t)

                    [|
                        -(Operators.advection g bcs [| vel |] s[0])
                        + th[1] * Operators.ddx g bcs s[0] * Grid.coordinate g 0 f64
                    |]
            Theta = [| 0.8; 0.3 |]
            Initial = fun b -> [| bump (line 20) b |]
            Dt = 0.01
            Steps = 40
        }

        // Lattice shifts: one-scale Lorenz-96.
        {
            Name = "Lorenz-96 lattice shifts"
            Model =
                Model.empty "l96"
                |> Model.withDomain (Domain.Lattice(lorenzK, 0))
                |> Model.addField (Model.field "X")
                |> Model.addParam (Model.param "F" 8.0)
                |> Model.addEquation
                    "X"
                    ((Shift("X", LatticeIndex.K, 1) - Shift("X", LatticeIndex.K, -2))
                     * Shift("X", LatticeIndex.K, -1)
                     - Sym "X"
                     + Sym "F")
            Eager =
                fun th _ s ->
                    let w = s[0]

                    [|
                        (Operators.shift 1 w - Operators.shift -2 w) * Operators.shift -1 w - w + th[0]
                    |]
            Theta = [| 8.0 |]
            Initial =
                fun b -> [|
                    torch
                        .tensor(
                            Array.init (b * lorenzK) (fun i ->
                                8.0
                                + (if i % lorenzK = 3 then
                                       0.01 * float (1 + i / lorenzK)
                                   else
                                       0.0)),
                            dtype = f64
                        )
                        .reshape ([| int64 b; int64 lorenzK |])
                |]
            Dt = 0.01
            Steps = 50
        }

        // 0-D system with functions of every kind the kernel language has.
        {
            Name = "0-D Lotka-Volterra with softplus, sigmoid, tanh, sqrt, abs, min, max, real power"
            Model =
                Model.empty "lv"
                |> Model.addField (Model.field "u")
                |> Model.addField (Model.field "v")
                |> Model.addParam (Model.param "a" 1.1)
                |> Model.addParam (Model.param "b" 0.4)
                |> Model.addEquation
                    "u"
                    (Sym "a" * u - Sym "b" * u * v + 0.1 * Apply(Fn.Softplus, u - 1.0)
                     - 0.05 * Apply(Fn.Tanh, v) * Apply(Fn.Sqrt, u + 1.0))
                |> Model.addEquation
                    "v"
                    (-0.4 * v
                     + 0.1 * u * v
                     + 0.02 * Apply(Fn.Sigmoid, u)
                     + 0.01 * Apply(Fn.Abs, u - v)
                     + 0.01 * Min(u, v)
                     - 0.01 * Max(u, 2.0 * v)
                     + 0.01 * PowReal(u + 1.0, Sym "b"))
            Eager =
                fun th _ s ->
                    let a, b = s[0], s[1]

                    [|
                        th[0] * a - th[1] * a * b + 0.1 * torch.nn.functional.softplus (a - 1.0)
                        - 0.05 * b.tanh () * (a + 1.0).sqrt ()
                        -0.4 * b
                        + 0.1 * a * b
                        + 0.02 * a.sigmoid ()
                        + 0.01 * (a - b).abs ()
                        + 0.01 * torch.minimum (a, b)
                        - 0.01 * torch.maximum (a, 2.0 * b)
                        + 0.01 * (a + 1.0).pow (th[1])
                    |]
            Theta = [| 1.1; 0.4 |]
            Initial =
                fun b -> [|
                    torch.tensor (Array.init b (fun i -> 1.0 + 0.1 * float i), dtype = f64)
                    torch.tensor (Array.init b (fun i -> 0.5 + 0.05 * float i), dtype = f64)
                |]
            Dt = 0.05
            Steps = 40
        }

        // A spatial parameter: the growth rate has one value per cell (gradients per cell).
        {
            Name = "Fisher-KPP with a spatial growth rate r(x)"
            Model =
                Model.empty "fkpp_spatial"
                |> Model.withDomain (Domain.Interval(0.0, 1.0, 24))
                |> Model.addField (Model.field "u")
                |> Model.addParam (Model.param "D" 0.01)
                |> Model.addParam {
                    Model.param "r" 1.0 with
                        Shape = ParamShape.Spatial
                }
                |> Model.addEquation "u" (Sym "D" * Laplacian u + Sym "r" * u * (1.0 - u))
                |> withBc BoundaryCondition.NoFlux
            Eager =
                fun th _ s ->
                    let g = line 24
                    let w = s[0]

                    [|
                        th[0] .* Operators.laplacian g (Boundary.noFlux g) w .+ th[1] .* w .* (1.0 .- w)
                    |]
            Theta = [| 0.01; 1.0 |]
            Initial = fun b -> [| bump (line 24) b |]
            Dt = 0.01
            Steps = 40
        }

        // A spatial parameter inside a diffusion coefficient: κ = k(x)(1 + u²) at the faces, k the mean of its two
        // cells (its edge value at the walls), under a Dirichlet and a Neumann end.
        {
            Name = "1-D ∇·(k(x)(1 + u²)∇u), k spatial, Dirichlet and Neumann ends"
            Model =
                Model.empty "spatial_kappa"
                |> Model.withDomain (Domain.Interval(0.0, 1.0, 18))
                |> Model.addField (Model.field "u")
                |> Model.addParam {
                    Model.param "k" 0.02 with
                        Shape = ParamShape.Spatial
                }
                |> Model.addEquation "u" (Divergence(Sym "k" * (1.0 + PowInt(u, 2)) * Grad u))
                |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Num 0.2))
                |> Model.setBoundary "u" Side.Right (BoundaryCondition.Neumann(Num -0.4))
            Eager =
                fun th _ s ->
                    let g = line 18

                    let bcs = [|
                        {
                            Low = Boundary.dirichlet 0.2
                            High = Boundary.neumann -0.4
                        }
                    |]

                    let kappa axis =
                        let face = Operators.toFaces g bcs axis s[0]
                        Operators.toFaces g (Boundary.noFlux g) axis th[0] * (1.0 + face * face)

                    [| Operators.diffusion g bcs kappa s[0] |]
            Theta = [| 0.02 |]
            Initial = fun b -> [| bump (line 18) b |]
            Dt = 0.01
            Steps = 40
        }

        // The same in 2-D, periodic in x (k wraps) and walls in y (k's edge value).
        {
            Name = "2-D ∇·(k(x, y)∇u), k spatial, periodic x, no-flux and Dirichlet y"
            Model =
                Model.empty "spatial_kappa_2d"
                |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, n2x, n2y))
                |> Model.addField (Model.field "u")
                |> Model.addParam {
                    Model.param "k" 0.01 with
                        Shape = ParamShape.Spatial
                }
                |> Model.addEquation "u" (Divergence(Sym "k" * Grad u) + 0.1 * u * (1.0 - u))
                |> Model.setBoundary "u" Side.Left BoundaryCondition.Periodic
                |> Model.setBoundary "u" Side.Right BoundaryCondition.Periodic
                |> Model.setBoundary "u" Side.Bottom BoundaryCondition.NoFlux
                |> Model.setBoundary "u" Side.Top (BoundaryCondition.Dirichlet(Num 0.6))
            Eager =
                fun th _ s ->
                    let bcs = [|
                        Boundary.both Bc.Periodic
                        {
                            Low = Bc.NoFlux
                            High = Boundary.dirichlet 0.6
                        }
                    |]

                    let kSides = [| Boundary.both Bc.Periodic; Boundary.both Bc.NoFlux |]

                    let kappa axis =
                        Operators.toFaces plane kSides axis th[0]

                    [| Operators.diffusion plane bcs kappa s[0] + 0.1 * s[0] * (1.0 - s[0]) |]
            Theta = [| 0.01 |]
            Initial = fun b -> [| bump plane b |]
            Dt = 0.01
            Steps = 30
        }

        {
            Name = "Fisher-KPP with boundary values in t, x and a parameter"
            Model = movingBoundaries
            Eager = compiledEager movingBoundaries
            Theta = [| 0.02; 0.3 |]
            Initial = fun b -> [| bump (line 20) b |]
            Dt = 0.01
            Steps = 40
        }

        {
            Name = "two-scale Lorenz-96 (K = 8, J = 4)"
            Model = twoScale
            Eager = compiledEager twoScale
            Theta = [| 10.0; 10.0 |]
            Initial =
                fun b -> [|
                    torch
                        .tensor(Array.init (b * 8) (fun i -> 10.0 + sin (float i)), dtype = f64)
                        .reshape ([| int64 b; 8L |])
                    torch
                        .tensor(Array.init (b * 32) (fun i -> 0.1 * cos (float i)), dtype = f64)
                        .reshape ([| int64 b; 32L |])
                |]
            Dt = 0.002
            Steps = 30
        }
    ]

/// A fixed random weighting of the saved states, so that the loss touches every value.
let private weights (shape: int64[]) (seed: int) =
    use gen = new torch.Generator(uint64 seed)
    torch.randn (shape, dtype = f64, generator = gen)

/// The parameter tensors of a case from leaves holding `c.Theta`: a scalar parameter is its leaf, a spatial one
/// the leaf times a fixed pattern 1 + 0.2 sin(3i) over the cells i (shape [1; spatial…]), so the values differ
/// per cell and the leaf's gradient is the pattern-weighted sum of the per-cell gradients.
let private thetaOf (c: Case) (leaves: torch.Tensor[]) =
    let grid = Grid.ofDomain c.Model.Domain

    Array.map2
        (fun (p: ParamDecl) (leaf: torch.Tensor) ->
            if p.Shape = ParamShape.Spatial then
                let pattern =
                    torch
                        .tensor(Array.init grid.CellCount (fun i -> 1.0 + 0.2 * sin (3.0 * float i)), dtype = f64)
                        .reshape (Grid.fieldShape grid 1)

                leaf .* pattern
            else
                leaf)
        (Array.ofList c.Model.Params)
        leaves

let private schemes = [ Scheme.Euler; Scheme.Heun; Scheme.SspRk3; Scheme.Rk4 ]

/// Saved states (every 5 steps) of an eager rollout of `rhs`.
let private eagerRolloutOf rhs (scheme: Scheme) (dt: float) (steps: int) (theta: torch.Tensor[]) (u0: torch.Tensor[]) =
    let saves = ResizeArray<torch.Tensor[]>()
    let mutable state = u0

    for n in 0 .. steps - 1 do
        state <- Integrators.explicitStep scheme (rhs theta) (float n * dt) dt state

        if (n + 1) % 5 = 0 then
            saves.Add state

    Array.init u0.Length (fun f -> torch.stack (saves |> Seq.map (fun s -> s[f]), 0L))

/// Saved states (every 5 steps) of the eager reference of a case.
let private eagerRollout (c: Case) (scheme: Scheme) (theta: torch.Tensor[]) (u0: torch.Tensor[]) =
    eagerRolloutOf c.Eager scheme c.Dt c.Steps theta u0

let private loss (saved: torch.Tensor[]) =
    saved
    |> Array.mapi (fun f s -> (s * weights s.shape (17 + f)).sum ())
    |> Array.reduce (+)

let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    ((a - b).abs().max().ToDouble()) / (max 1e-300 (b.abs().max().ToDouble()))

/// The kernels of case `c` against eager, built with `Vector<float>` when `narrow` (`Codegen.narrowly`: where the
/// machine's loops are wider, the runtime's vectors run too).
let private agreementTestWith (narrow: bool) (c: Case) (scheme: Scheme) =
    let width = if narrow then ", kernels built with Vector<float>" else ""

    test $"{c.Name}, {scheme}{width}: kernels = eager to 1e-10 (values and gradients)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()
        let batch = 2
        let sim = Kernels.compile scheme c.Model

        let run (onKernels: bool) =
            let theta = c.Theta |> Array.map scalar
            let u0 = c.Initial batch |> Array.map (fun t -> t.detach().requires_grad_ (true))

            let saved =
                if onKernels then
                    Kernels.rollout sim u0 (thetaOf c theta) 0.0 c.Dt c.Steps 5 7
                else
                    eagerRollout c scheme (thetaOf c theta) u0

            let l = loss saved
            l.backward ()
            saved, theta |> Array.map (fun t -> t.grad), u0 |> Array.map (fun t -> t.grad)

        let fusedSaved, fusedTheta, fusedU0 =
            if narrow then
                Codegen.narrowly (fun () -> run true)
            else
                run true

        let eagerSaved, eagerTheta, eagerU0 = run false

        for f in 0 .. fusedSaved.Length - 1 do
            Expect.isLessThan (maxRelative fusedSaved[f] eagerSaved[f]) 1e-10 $"saved states of field {f}"
            Expect.isLessThan (maxRelative fusedU0[f] eagerU0[f]) 1e-10 $"∂L/∂u0 of field {f}"

        for p in 0 .. fusedTheta.Length - 1 do
            Expect.isLessThan (maxRelative fusedTheta[p] eagerTheta[p]) 1e-10 $"∂L/∂{sim.Parameters[p]}"
    }

let private agreementTest = agreementTestWith false

/// Central finite differences of the kernel loss in one parameter, against the generated adjoint.
let private finiteDifferenceTest (c: Case) (scheme: Scheme) =
    test $"{c.Name}, {scheme}: adjoint = finite differences (rel. 1e-6)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()
        let sim = Kernels.compile scheme c.Model
        let u0 = c.Initial 1

        let lossAt (thetaValues: float[]) (u0: torch.Tensor[]) =
            let theta = thetaValues |> Array.map scalar
            Kernels.rollout sim u0 (thetaOf c theta) 0.0 c.Dt c.Steps 5 c.Steps |> loss, theta

        let l, theta =
            lossAt c.Theta (u0 |> Array.map (fun t -> t.detach().requires_grad_ (true)))

        l.backward ()

        for p in 0 .. c.Theta.Length - 1 do
            let h = 1e-6 * max 1.0 (abs c.Theta[p])

            let shifted (delta: float) =
                c.Theta |> Array.mapi (fun i v -> if i = p then v + delta else v)

            let plus = (fst (lossAt (shifted h) u0)).ToDouble()
            let minus = (fst (lossAt (shifted -h) u0)).ToDouble()
            let fd = (plus - minus) / (2.0 * h)
            let ad = theta[p].grad.ToDouble()
            Expect.isLessThan (abs (ad - fd) / max 1e-8 (abs fd)) 1e-6 $"∂L/∂{sim.Parameters[p]}: adjoint {ad}, FD {fd}"
    }

/// The kernel simulator against the eager compiled simulator of the same model (`Compiler.compile`).
let private compiledAgreementTest (c: Case) =
    test $"{c.Name}: kernels = compiled eager simulator to 1e-10 (values and gradients)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()

        let compiled =
            Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults c.Model

        let sim = Kernels.compile Scheme.Rk4 c.Model

        let run (onKernels: bool) =
            let theta = c.Theta |> Array.map scalar
            let u0 = c.Initial 2 |> Array.map (fun t -> t.detach().requires_grad_ (true))

            let saved =
                if onKernels then
                    Kernels.rollout sim u0 (thetaOf c theta) 0.0 c.Dt c.Steps 5 c.Steps
                else
                    eagerRollout
                        {
                            c with
                                Eager = Dynamics.total compiled.Dynamics
                        }
                        Scheme.Rk4
                        (thetaOf c theta)
                        u0

            (loss saved).backward ()
            saved, theta |> Array.map (fun t -> t.grad)

        let fusedSaved, fusedTheta = run true
        let compiledSaved, compiledTheta = run false

        for f in 0 .. fusedSaved.Length - 1 do
            Expect.isLessThan (maxRelative fusedSaved[f] compiledSaved[f]) 1e-10 $"saved states of field {f}"

        for p in 0 .. fusedTheta.Length - 1 do
            Expect.isLessThan (maxRelative fusedTheta[p] compiledTheta[p]) 1e-10 $"∂L/∂{sim.Parameters[p]}"
    }

/// What the kernel path must do with a model of the test suite.
type private Expected =
    /// Compile, and agree with the eager compiled simulator (values and gradients).
    | Agrees
    /// Be refused by `Kernels.compile` with a message containing this text (naming the construct).
    | Refused of string

/// One model that some test of the suite compiles, with where it comes from and what the kernel path must do.
type private SuiteModel = {
    Source: string
    Model: Model
    /// The initial state of B trajectories (None: the model's initial conditions).
    Initial: (int -> torch.Tensor[]) option
    Expected: Expected
}

/// A plane with a spatial decay rate k(x, y) (also in a ∂y term) and boundary values in x, y, t and a
/// parameter on three sides: spatial parameters and moving boundary values in 2-D.
let private planeSpatialMoving =
    Model.empty "plane_spatial_moving_bc"
    |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, 7, 5))
    |> Model.addField (Model.field "u")
    |> Model.addParam (Model.param "D" 0.02)
    |> Model.addParam (Model.param "a" 0.4)
    |> Model.addParam {
        Model.param "k" 0.5 with
            Shape = ParamShape.Spatial
    }
    |> Model.addEquation "u" (Sym "D" * Laplacian u - Sym "k" * u * u + 0.2 * Sym "k" * Partial(Axis.Y, u))
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(0.1 + Sym "a" * Sym "y" * Sym "y"))
    |> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
    |> Model.setBoundary "u" Side.Bottom (BoundaryCondition.Neumann(0.3 * Sym "x" * Sym "a" * Sym "t"))
    |> Model.setBoundary
        "u"
        Side.Top
        (BoundaryCondition.Dirichlet(0.2 + 0.1 * Apply(Fn.Cos, 2.0 * Sym "x") + Sym "t" * Sym "a"))
    |> Model.setInitial
        "u"
        (InitialCondition.Expr(
            0.3
            + 0.5
              * Apply(Fn.Exp, -20.0 * (PowInt(Sym "x" - 0.4, 2) + PowInt(Sym "y" - 0.5, 2)))
        ))

/// Nonlinear diffusion whose coefficient reads a (spatially uniform) forcing c(t): κ = D (1 + c) (1 + u²).
let private forcedKappa =
    Model.empty "forced_kappa"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 16))
    |> Model.addField (Model.field "u")
    |> Model.addParam (Model.param "D" 0.02)
    |> Model.addForcing { Name = "c"; Units = None }
    |> Model.addEquation
        "u"
        (Divergence(Sym "D" * (1.0 + Sym "c") * (1.0 + PowInt(u, 2)) * Grad u)
         + Sym "c" * u)
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Num 0.4))
    |> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
    |> Model.setInitial "u" (InitialCondition.Expr(0.3 + 0.2 * Apply(Fn.Sin, 6.0 * Sym "x")))

/// The climate case's coarse model whole (16², viscosity 0.01): diagnostic ψ (Δψ = ω) read by J and advectFlux,
/// CNN closures over whole fields, Leith's eddy terms. Its initial q = q_sat(y) is flat along x, where advectFlux's limiter
/// picks its branch by round-off (∂L/∂q(0) then differs by 1e-5 between the back ends, as between two eager
/// runs whose q(0) differs by 1e-15): the start here varies every field by 1% from cell to cell.
let climate =
    Parse.model (
        Hybrid.Models.Cases.ClimateModel.textWith
            Hybrid.Models.Cases.ClimateModel.reference
            16
            0.01
            [ 4 ]
            (Some { Omega = 0.2; Q = 0.2 })
    )

/// `climate`'s initial state for `b` trajectories, every field varied by 1% from cell to cell.
let climateStart (b: int) =
    (Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults climate).Initial b
    |> Array.map (fun t ->
        let n = int (t.numel ())

        t.detach ()
        * torch.tensor(Array.init n (fun i -> 1.0 + 0.01 * sin (7.0 * float i)), dtype = t.dtype).reshape (t.shape))

/// Every model the test suite compiles (Compiler, Training and Kernel tests, and the catalogue `Examples.all`),
/// with what the kernel path must do with it. The suite test below goes over all of them, so none is skipped
/// silently; a model added to the suite should be added here.
let private suiteModels: SuiteModel list =
    let agrees source model initial = {
        Source = source
        Model = model
        Initial = initial
        Expected = Agrees
    }

    let lorenzInitial (b: int) = [|
        torch
            .tensor(Array.init (b * 40) (fun i -> 8.0 + 0.01 * sin (float i)), dtype = f64)
            .reshape ([| int64 b; 40L |])
    |]

    let fastOutsideSum = {
        Examples.lorenz96 with
            Domain = Domain.Lattice(8, 4)
            Equations =
                Examples.lorenz96.Equations
                |> List.map (fun e ->
                    if e.Field = "X" then
                        { e with Rhs = Sym "Y" - Sym "X" }
                    else
                        e)
    }

    let unknownSymbol = {
        Hybrid.Tests.Compiler.CompilerTests.fisherKpp 8 0.1 1.0 with
            Equations = [ { Field = "u"; Rhs = Sym "nope" * u } ]
    }

    [ for m in Examples.all -> agrees $"Examples.all: {m.Name}" m None ]
    @ [
        agrees
            "CompilerTests: two-scale Lorenz-96 (K = 8, J = 4)"
            {
                Examples.lorenz96 with
                    Domain = Domain.Lattice(8, 4)
            }
            None
        {
            Source = "CompilerTests: a fast field outside Σⱼ"
            Model = fastOutsideSum
            Initial = None
            Expected = Refused "Wrap it in sumFast"
        }
        agrees
            "CompilerTests: one-scale Lorenz-96 (K = 40)"
            (Hybrid.Tests.Compiler.CompilerTests.lorenz96 40 8.0)
            (Some lorenzInitial)
        agrees "CompilerTests: Fisher–KPP" (Hybrid.Tests.Compiler.CompilerTests.fisherKpp 24 0.02 1.5) None
        agrees
            "CompilerTests: Fisher–KPP with a neural kill(u, x)"
            (Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ())
            None
        agrees
            "CompilerTests: Fisher–KPP with an unused forcing"
            (Hybrid.Tests.Compiler.CompilerTests.fisherKpp 8 0.1 1.0
             |> Model.addForcing { Name = "c"; Units = None })
            None
        {
            Source = "CompilerTests: an unknown symbol"
            Model = unknownSymbol
            Initial = None
            Expected = Refused "'nope'"
        }
        agrees "UdeTests: Fisher–KPP UDE with R(u)" Hybrid.Tests.Training.UdeTests.fisherUde None
        agrees "KernelTests: 2-D spatial parameter and moving boundary values" planeSpatialMoving None
        agrees "KernelTests: a forcing inside a diffusion coefficient" forcedKappa None
        agrees
            "SimdKernelTests: 1-D, 23 cells (SIMD loops with a scalar tail), every leaf and function"
            (SimdKernelTests.line 23)
            None
        agrees "SimdKernelTests: 2-D, 7 × 11 cells (SIMD loops with a scalar tail)" (SimdKernelTests.plane 7 11) None
        agrees
            "SimdKernelTests: 2-D, 100 × 90 cells, 2 trajectories (passes split over the kernel worker pool)"
            (SimdKernelTests.plane 100 90)
            None
        agrees
            "ArakawaKernelTests: J(ψ, ω) and advectFlux(−∂yψ, ∂xψ, q), doubly periodic 16 × 16 on [0, 2π]²"
            (ArakawaKernelTests.vortex 16 16 (2.0 * Math.PI))
            None
        agrees
            "ArakawaKernelTests: J and advectFlux, 24 × 18 cells on [0, 2π] × [0, 5] (hx ≠ hy)"
            (ArakawaKernelTests.vortex 24 18 5.0)
            None
        agrees
            "ArakawaKernelTests: J and advectFlux, 100 × 90 cells, 2 trajectories (passes split over the worker pool)"
            (ArakawaKernelTests.vortex 100 90 5.0)
            None
        agrees
            "ArakawaKernelTests: J of fields with walls in y (moving, varying along the wall), periodic in x, 12 × 10"
            (ArakawaKernelTests.channel true 12 10)
            None
        agrees
            "ArakawaKernelTests: J of fields with walls in x (values varying along y), periodic in y, 10 × 12"
            (ArakawaKernelTests.channel false 10 12)
            None
        agrees
            "ArakawaKernelTests: 1-D advectFlux of fields with walls and of a uniform velocity that changes sign"
            (ArakawaKernelTests.tracers 23)
            None
        agrees
            "ClimateModel.textWith: the climate case's model, 16², CNN closures [4] and Leith's terms"
            climate
            (Some climateStart)
    ]
    @ [ for c in cases -> agrees $"KernelTests: {c.Name}" c.Model (Some c.Initial) ]

/// `model` on the kernels (`scheme`, `steps` steps of 10⁻³) against its eager compiled simulator with the same
/// networks and forcing data: saved states, and gradients of a random weighting of them with respect to every
/// parameter (per cell for spatial ones, which start from their value times 1 + 0.3 sin(3i) over the cells i, so
/// that they differ per cell), the initial state and every network weight, all to 1e-10 relative.
let agreesWithCompiled (scheme: Scheme) (steps: int) (model: Model) (initial: (int -> torch.Tensor[]) option) =
    Engine.init ()
    use _ = torch.NewDisposeScope()

    let forcings =
        model.Forcings
        |> List.map (fun f -> f.Name, (fun (t: float) -> torch.tensor (0.5 + 0.3 * sin t, dtype = f64)))
        |> Map.ofList

    let compiled =
        Hybrid.Compiler.Compiler.compile
            {
                Hybrid.Compiler.Compiler.defaults with
                    Forcings = forcings
            }
            model

    let sim =
        Kernels.compileWith
            {
                Modules = Map.ofArray compiled.Modules
                Forcings = forcings
            }
            scheme
            model

    let dt = 1e-3
    let initial = defaultArg initial compiled.Initial

    let pattern (t: torch.Tensor) =
        let n = int (t.numel ())

        let values =
            torch.tensor(Array.init n (fun i -> 1.0 + 0.3 * sin (3.0 * float i)), dtype = t.dtype).reshape (t.shape)

        t * values

    let run (onKernels: bool) =
        for w in sim.Weights do
            if not (isNull w.grad) then
                w.grad.zero_ () |> ignore

        let theta =
            compiled.Theta()
            |> Array.map (fun t ->
                let t = t.detach().clone ()
                (if t.numel () > 1L then pattern t else t).requires_grad_ (true))

        let u0 = initial 2 |> Array.map (fun t -> t.detach().clone().requires_grad_ (true))

        let saved =
            if onKernels then
                Kernels.rollout sim u0 theta 0.0 dt steps 5 3
            else
                eagerRolloutOf (Dynamics.total compiled.Dynamics) scheme dt steps theta u0

        (loss saved).backward ()

        // A parameter the equations do not read has no gradient: zero.
        let gradient (t: torch.Tensor) =
            if isNull t.grad then
                torch.zeros_like t
            else
                t.grad.clone ()

        saved |> Array.map (fun t -> t.detach().clone ()),
        theta |> Array.map gradient,
        u0 |> Array.map gradient,
        sim.Weights |> Array.map gradient

    let fs, ft, fu, fw = run true
    let es, et, eu, ew = run false

    for f in 0 .. fs.Length - 1 do
        Expect.isLessThan (maxRelative fs[f] es[f]) 1e-10 $"saved states of {sim.Fields[f]}"
        Expect.isLessThan (maxRelative fu[f] eu[f]) 1e-10 $"∂L/∂{sim.Fields[f]}(0)"

    for p in 0 .. ft.Length - 1 do
        Expect.equal ft[p].shape et[p].shape $"shape of ∂L/∂{sim.Parameters[p]}"
        Expect.isLessThan (maxRelative ft[p] et[p]) 1e-10 $"∂L/∂{sim.Parameters[p]}"

    for i in 0 .. fw.Length - 1 do
        Expect.isLessThan (maxRelative fw[i] ew[i]) 1e-10 $"∂L/∂(weight {i})"

/// A suite model on the kernels (RK4, 5 steps) against its eager compiled simulator (`agreesWithCompiled`), or,
/// for the refused ones, the refusal names the construct.
let private suiteTest (s: SuiteModel) =
    test $"{s.Source}: kernels = compiled (values and gradients), or a named refusal" {
        match s.Expected with
        | Refused text ->
            Engine.init ()
            let e = Expect.throwsC (fun () -> Kernels.compile Scheme.Rk4 s.Model |> ignore) id

            Expect.stringContains e.Message text "the refusal names the construct"
        | Agrees -> agreesWithCompiled Scheme.Rk4 5 s.Model s.Initial
    }

/// Models whose diffusion coefficient holds a neural closure, a spatial parameter, or both (κ at the faces: the
/// closure on the face values of its arguments, k the mean of its two cells).
let private kappaModels = [
    let periodic1 = [
        Side.Left, BoundaryCondition.Periodic
        Side.Right, BoundaryCondition.Periodic
    ]

    let walls1 = [
        Side.Left, BoundaryCondition.Dirichlet(Num 0.2)
        Side.Right, BoundaryCondition.Neumann(Num -0.3)
    ]

    let line = Domain.Interval(0.0, 1.0, 13)
    let plane = Domain.Rectangle(0.0, 1.0, 0.0, 1.0, 7, 5)
    "1-D periodic, κ = 0.1 D(u)", SimdKernelTests.faceKappa "kappa_d_periodic" line 1 (0.1 * Call("D", [ u ])) periodic1

    "1-D Dirichlet and Neumann ends, κ = 0.1 D(u, x)",
    SimdKernelTests.faceKappa "kappa_d_walls" line 2 (0.1 * Call("D", [ u; x ])) walls1

    "1-D periodic, κ = k(x) (spatial)", SimdKernelTests.faceKappa "kappa_k_periodic" line 1 (0.1 * Sym "k") periodic1

    "1-D Dirichlet and Neumann ends, κ = k(x) D(u)², both",
    SimdKernelTests.faceKappa "kappa_kd_walls" line 1 (0.1 * Sym "k" * PowInt(Call("D", [ u ]), 2)) walls1

    "2-D periodic x, walls y, κ = k D(u, k, y), k also inside the closure",
    SimdKernelTests.faceKappa "kappa_kd_plane" plane 3 (0.05 * Sym "k" * Call("D", [ u; Sym "k"; Sym "y" ])) [
        Side.Left, BoundaryCondition.Periodic
        Side.Right, BoundaryCondition.Periodic
        Side.Bottom, BoundaryCondition.NoFlux
        Side.Top, BoundaryCondition.Dirichlet(Num 0.4)
    ]

    "2-D Neumann x, periodic y, κ = 0.1 (1 + D(u)) + k",
    SimdKernelTests.faceKappa "kappa_kd_plane_neumann" plane 1 (0.1 * (1.0 + Call("D", [ u ])) + 0.05 * Sym "k") [
        Side.Left, BoundaryCondition.Neumann(Num 0.2)
        Side.Right, BoundaryCondition.Neumann(Num -0.1)
        Side.Bottom, BoundaryCondition.Periodic
        Side.Top, BoundaryCondition.Periodic
    ]
]

/// A universal differential equation: Fisher–KPP whose reaction is an MLP closure R(u, x) (called twice, once
/// inside the reaction and once scaled, to check shared networks), on the kernels against the compiled simulator with
/// the same networks: values and gradients for θ, u0 and every network weight.
let private closureTest (scheme: Scheme) =
    test $"UDE with a neural closure, {scheme}: kernels = compiled to 1e-10 (values, θ, u0 and weight gradients)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()
        let n = 12

        let m =
            Model.empty "ude"
            |> Model.withDomain (Domain.Interval(0.0, 1.0, n))
            |> Model.addField (Model.field "u")
            |> Model.addParam (Model.param "D" 0.01)
            |> Model.addClosure {
                Name = "R"
                Arity = 2
                Architecture = Architecture.Mlp([ 2; 8; 1 ], Activation.Tanh)
                Units = None
            }
            |> Model.addEquation
                "u"
                (Sym "D" * Laplacian u + Call("R", [ u; x ]) * u
                 - 0.1 * Call("R", [ Num 0.5 * u; x ]))
            |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
            |> Model.setInitial "u" (InitialCondition.Expr(Num 0.5))

        let compiled = Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults m

        let sim =
            Kernels.compileWith
                {
                    Kernels.defaults with
                        Modules = Map.ofArray compiled.Modules
                }
                scheme
                m

        let weights = sim.Weights
        Expect.isGreaterThan weights.Length 0 "the network's weights are inputs of the kernel function"

        let run (onKernels: bool) =
            for w in weights do
                if not (isNull w.grad) then
                    w.grad.zero_ () |> ignore

            let theta = [| scalar 0.01 |]
            let u0 = [| (bump (line n) 2).requires_grad_ (true) |]

            let saved =
                if onKernels then
                    Kernels.rollout sim u0 theta 0.0 0.01 20 5 6
                else
                    eagerRollout
                        {
                            cases.Head with
                                Eager = Dynamics.total compiled.Dynamics
                                Steps = 20
                        }
                        scheme
                        theta
                        u0

            (loss saved).backward ()

            saved[0].detach().clone (),
            theta[0].grad.clone (),
            u0[0].grad.clone (),
            weights |> Array.map (fun w -> w.grad.clone ())

        let fs, ft, fu, fw = run true
        let es, et, eu, ew = run false
        Expect.isLessThan (maxRelative fs es) 1e-10 "saved states"
        Expect.isLessThan (maxRelative ft et) 1e-10 "∂L/∂D"
        Expect.isLessThan (maxRelative fu eu) 1e-10 "∂L/∂u0"

        for i in 0 .. fw.Length - 1 do
            Expect.isLessThan (maxRelative fw[i] ew[i]) 1e-10 $"∂L/∂(weight {i})"
    }

let tests =
    testList "Kernels" [
        testList "agreement with the compiled simulator" [ for c in cases -> compiledAgreementTest c ]

        testList "every model of the test suite" [ for m in suiteModels -> suiteTest m ]

        testList "neural closures" [ for s in [ Scheme.Euler; Scheme.Rk4 ] -> closureTest s ]

        test
            "κ = k D(u)² with walls: gradients in k (per cell) and the network's weights = finite differences (rel. 1e-6)" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let m = snd kappaModels[3]
            let compiled = Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults m

            let sim =
                Kernels.compileWith
                    {
                        Kernels.defaults with
                            Modules = Map.ofArray compiled.Modules
                    }
                    Scheme.Rk4
                    m

            let k =
                torch
                    .tensor(Array.init 13 (fun i -> 0.5 + 0.2 * sin (3.0 * float i)), dtype = f64)
                    .reshape ([| 1L; 13L |])

            let u0 = compiled.Initial 1
            let steps = 20

            let lossAt (k: torch.Tensor) =
                Kernels.rollout sim u0 [| k |] 0.0 1e-3 steps 5 steps |> loss

            for w in sim.Weights do
                if not (isNull w.grad) then
                    w.grad.zero_ () |> ignore

            let leaf = k.clone().requires_grad_ (true)
            (lossAt leaf).backward ()

            // Central difference in entry i of `t` (changed in place, then restored); h balances round-off in
            // the loss (≈ 1e-16·|L|/h) against the truncation error (≈ h²).
            let fd (t: torch.Tensor) (i: int64) =
                let h = 1e-5

                let at (delta: float) =
                    using (torch.no_grad ()) (fun _ ->
                        t.view(-1L).narrow(0L, i, 1L).add_ (torch.tensor (delta, dtype = t.dtype))
                        |> ignore)

                    let l = (lossAt k).ToDouble()

                    using (torch.no_grad ()) (fun _ ->
                        t.view(-1L).narrow(0L, i, 1L).sub_ (torch.tensor (delta, dtype = t.dtype))
                        |> ignore)

                    l

                (at h - at -h) / (2.0 * h)

            let close (what: string) (ad: float) (fdValue: float) =
                Expect.isLessThan
                    (abs (ad - fdValue) / max 1e-8 (abs fdValue))
                    1e-6
                    $"{what}: adjoint {ad}, FD {fdValue}"

            for i in [ 0L; 6L; 12L ] do
                let ad = leaf.grad.view(-1L).[i].ToDouble()
                close $"∂L/∂k[{i}]" ad (fd k i)

            for w in sim.Weights do
                for i in [ 0L; w.numel () - 1L ] do
                    let ad = w.grad.view(-1L).[i].ToDouble()
                    close $"∂L/∂(weight entry {i})" ad (fd w i)
        }

        testList "closures and spatial parameters inside κ: kernels = compiled (values and gradients)" [
            for name, m in kappaModels do
                for scheme in [ Scheme.Euler; Scheme.Rk4 ] ->
                    test $"{name}, {scheme}" { agreesWithCompiled scheme 20 m None }
        ]

        testList "agreement with eager" [
            for c in cases do
                for s in schemes -> agreementTest c s

            if Codegen.wide () then
                for c in cases -> agreementTestWith true c Scheme.Rk4
        ]

        testList "finite differences" [ for c in cases -> finiteDifferenceTest c Scheme.Rk4 ]

        test "checkpoint segment length does not change gradients (1e-12)" {
            Engine.init ()
            let c = cases.Head
            let sim = Kernels.compile Scheme.Rk4 c.Model

            let gradsWith (segment: int) =
                let theta = c.Theta |> Array.map scalar
                let u0 = c.Initial 2 |> Array.map (fun t -> t.requires_grad_ (true))
                (Kernels.rollout sim u0 theta 0.0 c.Dt c.Steps 5 segment |> loss).backward ()
                Array.append (theta |> Array.map (fun t -> t.grad.ToDouble())) (u0[0].grad.data<float>().ToArray())

            let reference = gradsWith c.Steps

            for segment in [ 1; 3; 7; 13 ] do
                let g = gradsWith segment

                for i in 0 .. g.Length - 1 do
                    Expect.floatClose
                        { absolute = 1e-12; relative = 1e-12 }
                        g[i]
                        reference[i]
                        $"segment {segment}, entry {i}"
        }

        test "float32 inputs work and gradients come back as float32" {
            Engine.init ()
            let c = cases.Head
            let sim = Kernels.compile Scheme.Heun c.Model

            let theta =
                c.Theta |> Array.map (fun v -> torch.tensor (float32 v, requires_grad = true))

            let first = (c.Initial 1).[0]
            let u0 = [| first.to_type(torch.ScalarType.Float32).requires_grad_ (true) |]
            let saved = Kernels.rollout sim u0 theta 0.0 c.Dt c.Steps 5 8
            Expect.equal saved[0].dtype torch.ScalarType.Float32 "output dtype follows the input"
            saved[0].sum().backward ()
            Expect.equal theta[0].grad.dtype torch.ScalarType.Float32 "gradient dtype"
            Expect.isTrue (Double.IsFinite(theta[0].grad.ToDouble())) "finite gradient"
        }

        test "a blow-up, and NaN, in a rollout name the field and the step" {
            Engine.init ()
            let c = cases.Head
            let sim = Kernels.compile Scheme.Euler c.Model
            let theta = [| scalar 1e6; scalar 1.0 |]

            let run () =
                Kernels.rollout sim (c.Initial 1) theta 0.0 1.0 40 5 40 |> ignore
            // First the blow-up bound (Rollout.maxMagnitude, 1e100), with the eager back end's message.
            let e = Expect.throwsC run id
            Expect.stringContains e.Message "Field 'u' is blowing up: max |u| = " "names the field"
            Expect.stringContains e.Message "at step 5 (t = 5) passed the bound 1E+100" "and the step"
            let previous = Rollout.maxMagnitude

            try
                // Without the bound the values overflow to ±∞ and NaN.
                Rollout.maxMagnitude <- infinity
                let e = Expect.throwsC run id
                Expect.stringContains e.Message "in field 'u' at step" "names field and step"
            finally
                Rollout.maxMagnitude <- previous
        }

        test "a closure without its network is refused with the closure's name and the fix" {
            let m =
                (cases.Head.Model
                 |> Model.addClosure {
                     Name = "kill"
                     Arity = 1
                     Architecture = Architecture.Mlp([ 1; 8; 1 ], Activation.Tanh)
                     Units = None
                 })

            let m = {
                m with
                    Equations = [
                        {
                            Field = "u"
                            Rhs = Laplacian u - Call("kill", [ u ])
                        }
                    ]
            }

            let e = Expect.throwsC (fun () -> Kernels.compile Scheme.Rk4 m |> ignore) id
            Expect.stringContains e.Message "closure 'kill'" "names the closure"
            Expect.stringContains e.Message "KernelOptions.Modules" "says how to supply the network"
        }

        testList "refusals name the construct" [
            let refused (name: string) (m: Model) (text: string) =
                test name {
                    let e = Expect.throwsC (fun () -> Kernels.compile Scheme.Rk4 m |> ignore) id
                    Expect.stringContains e.Message text "names the construct"
                }

            let spatial name = {
                Model.param name 0.1 with
                    Shape = ParamShape.Spatial
            }

            refused
                "a forcing in a boundary value"
                (cases.Head.Model
                 |> Model.addForcing { Name = "g"; Units = None }
                 |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Sym "g")))
                "a forcing in the boundary value on side Left of 'u'"

            refused
                "a spatial parameter on the fast ring"
                ({ twoScale with Equations = [] }
                 |> Model.addParam (spatial "k")
                 |> Model.addEquation "X" (Sym "X")
                 |> Model.addEquation "Y" (Sym "k" * Sym "Y"))
                // Refused by the model checks (Checks.compilable) before lowering.
                "Parameter 'k' is spatial but the domain is a periodic lattice"

            refused
                "a neural closure on the fast ring"
                ({ twoScale with Equations = [] }
                 |> Model.addClosure {
                     Name = "g"
                     Arity = 1
                     Architecture = Architecture.Mlp([ 1; 4; 1 ], Activation.Tanh)
                     Units = None
                 }
                 |> Model.addEquation "X" (Sym "X")
                 |> Model.addEquation "Y" (Call("g", [ Sym "Y" ])))
                "the neural closure 'g' on the fast ring"

            test "a forcing inside κ that varies in space is refused at the rollout, by name" {
                Engine.init ()
                let cells = 16

                let sim =
                    Kernels.compileWith
                        {
                            Kernels.defaults with
                                Forcings =
                                    Map [
                                        "c",
                                        (fun _ ->
                                            torch
                                                .tensor(Array.init cells float, dtype = f64)
                                                .reshape ([| 1L; int64 cells |]))
                                    ]
                        }
                        Scheme.Euler
                        forcedKappa

                let u0 = [| torch.ones ([| 1L; int64 cells |], dtype = f64) |]

                let e =
                    Expect.throwsC (fun () -> Kernels.rollout sim u0 [| scalar 0.02 |] 0.0 0.01 5 5 5 |> ignore) id

                Expect.stringContains e.Message "Forcing 'c'" "names the forcing"
                Expect.stringContains e.Message "uniform in space" "says why"
            }
        ]

        test "adaptive schemes are refused with the fixed-step alternatives" {
            let e =
                Expect.throwsC (fun () -> Kernels.compile Scheme.KenCarp4 cases.Head.Model |> ignore) id

            Expect.stringContains e.Message "Rk4" "suggests a fixed-step scheme"
        }
    ]
