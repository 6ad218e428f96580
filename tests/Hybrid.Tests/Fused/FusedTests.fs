/// The fused path against eager TorchSharp code doing the same operations (values and gradients to 1e-10 in
/// float64), against finite differences, across every explicit scheme, boundary kind and operator it
/// compiles; checkpointing invariance; NaN reporting; clear errors for what it cannot compile.
module Hybrid.Tests.Fused.FusedTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Fused

let private f64 = torch.ScalarType.Float64

let private scalar (v: float) =
    torch.tensor (v, dtype = f64, requires_grad = true)

/// A test case: a model, its eager right-hand side written by hand with `Numerics.Operators`, parameter values,
/// and an initial state.
type private Case = {
    Name: string
    Model: Model
    /// Eager F(θ, t, u) written independently of the fused lowering.
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
    ]

/// A fixed random weighting of the saved states, so that the loss touches every value.
let private weights (shape: int64[]) (seed: int) =
    use gen = new torch.Generator(uint64 seed)
    torch.randn (shape, dtype = f64, generator = gen)

let private schemes = [ Scheme.Euler; Scheme.Heun; Scheme.SspRk3; Scheme.Rk4 ]

/// Saved states (every 5 steps) and loss of the eager reference.
let private eagerRollout (c: Case) (scheme: Scheme) (theta: torch.Tensor[]) (u0: torch.Tensor[]) =
    let saves = ResizeArray<torch.Tensor[]>()
    let mutable state = u0

    for n in 0 .. c.Steps - 1 do
        state <- Integrators.explicitStep scheme (c.Eager theta) (float n * c.Dt) c.Dt state

        if (n + 1) % 5 = 0 then
            saves.Add state

    Array.init u0.Length (fun f -> torch.stack (saves |> Seq.map (fun s -> s[f]), 0L))

let private loss (saved: torch.Tensor[]) =
    saved
    |> Array.mapi (fun f s -> (s * weights s.shape (17 + f)).sum ())
    |> Array.reduce (+)

let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    ((a - b).abs().max().ToDouble()) / (max 1e-300 (b.abs().max().ToDouble()))

let private agreementTest (c: Case) (scheme: Scheme) =
    test $"{c.Name}, {scheme}: fused = eager to 1e-10 (values and gradients)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()
        let batch = 2
        let sim = Fused.compile scheme c.Model

        let run (fused: bool) =
            let theta = c.Theta |> Array.map scalar
            let u0 = c.Initial batch |> Array.map (fun t -> t.detach().requires_grad_ (true))

            let saved =
                if fused then
                    Fused.rollout sim u0 theta 0.0 c.Dt c.Steps 5 7
                else
                    eagerRollout c scheme theta u0

            let l = loss saved
            l.backward ()
            saved, theta |> Array.map (fun t -> t.grad), u0 |> Array.map (fun t -> t.grad)

        let fusedSaved, fusedTheta, fusedU0 = run true
        let eagerSaved, eagerTheta, eagerU0 = run false

        for f in 0 .. fusedSaved.Length - 1 do
            Expect.isLessThan (maxRelative fusedSaved[f] eagerSaved[f]) 1e-10 $"saved states of field {f}"
            Expect.isLessThan (maxRelative fusedU0[f] eagerU0[f]) 1e-10 $"∂L/∂u0 of field {f}"

        for p in 0 .. fusedTheta.Length - 1 do
            Expect.isLessThan (maxRelative fusedTheta[p] eagerTheta[p]) 1e-10 $"∂L/∂{sim.Parameters[p]}"
    }

/// Central finite differences of the fused loss in one parameter, against the generated adjoint.
let private finiteDifferenceTest (c: Case) (scheme: Scheme) =
    test $"{c.Name}, {scheme}: adjoint = finite differences (rel. 1e-6)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()
        let sim = Fused.compile scheme c.Model
        let u0 = c.Initial 1

        let lossAt (thetaValues: float[]) (u0: torch.Tensor[]) =
            let theta = thetaValues |> Array.map scalar
            Fused.rollout sim u0 theta 0.0 c.Dt c.Steps 5 c.Steps |> loss, theta

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

/// The fused simulator against the eager compiled simulator of the same model (`Compiler.compile`).
let private compiledAgreementTest (c: Case) =
    test $"{c.Name}: fused = compiled eager simulator to 1e-10 (values and gradients)" {
        Engine.init ()
        use _ = torch.NewDisposeScope()

        let compiled =
            Hybrid.Compiler.Compiler.compile Hybrid.Compiler.Compiler.defaults c.Model

        let sim = Fused.compile Scheme.Rk4 c.Model

        let run (fused: bool) =
            let theta = c.Theta |> Array.map scalar
            let u0 = c.Initial 2 |> Array.map (fun t -> t.detach().requires_grad_ (true))

            let saved =
                if fused then
                    Fused.rollout sim u0 theta 0.0 c.Dt c.Steps 5 c.Steps
                else
                    eagerRollout
                        {
                            c with
                                Eager = Dynamics.total compiled.Dynamics
                        }
                        Scheme.Rk4
                        theta
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

/// Every catalogue model (`Examples.all`) runs fused, with the eager simulator's networks and the same forcing
/// data, and agrees with its compiled simulator; or (two-scale lattices) is refused with a message naming why.
let private exampleTest (m: Model) =
    test $"example '{m.Name}': fused = compiled, or a named refusal" {
        Engine.init ()
        use _ = torch.NewDisposeScope()

        let forcings =
            m.Forcings
            |> List.map (fun f -> f.Name, (fun (t: float) -> torch.tensor (0.5 + 0.3 * sin t, dtype = f64)))
            |> Map.ofList

        let compiled () =
            Hybrid.Compiler.Compiler.compile
                {
                    Hybrid.Compiler.Compiler.defaults with
                        Forcings = forcings
                }
                m

        let fusedOf (c: Hybrid.Compiler.Simulator) =
            Fused.compileWith
                {
                    Modules = Map.ofArray c.Modules
                    Forcings = forcings
                }
                Scheme.Rk4
                m

        match
            (try
                Ok(Lowering.lower m)
             with :? ModelException as e ->
                 Error e.Message)
        with
        | Error message -> Expect.stringContains message "two-scale" $"only two-scale lattices are refused: {message}"
        | Ok _ ->
            let c = compiled ()
            let sim = fusedOf c
            let u0 = c.Initial 1
            let theta = c.Theta()
            let dt = 1e-3
            let fused = Fused.rollout sim u0 theta 0.0 dt 20 10 5

            let eager =
                let mutable state = u0
                let saves = ResizeArray()

                for n in 0..19 do
                    state <-
                        Integrators.explicitStep Scheme.Rk4 (Dynamics.total c.Dynamics theta) (float n * dt) dt state

                    if (n + 1) % 10 = 0 then
                        saves.Add state

                Array.init u0.Length (fun f -> torch.stack (saves |> Seq.map (fun s -> s[f]), 0L))

            for f in 0 .. fused.Length - 1 do
                Expect.isLessThan (maxRelative fused[f] eager[f]) 1e-10 $"field {sim.Fields[f]}"
    }

/// A universal differential equation: Fisher–KPP whose reaction is an MLP closure R(u, x) (called twice, once
/// inside the reaction and once scaled, to check shared networks), fused against the compiled simulator with
/// the same networks: values and gradients for θ, u0 and every network weight.
let private closureTest (scheme: Scheme) =
    test $"UDE with a neural closure, {scheme}: fused = compiled to 1e-10 (values, θ, u0 and weight gradients)" {
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
            Fused.compileWith
                {
                    Fused.defaults with
                        Modules = Map.ofArray compiled.Modules
                }
                scheme
                m

        let weights = sim.Weights
        Expect.isGreaterThan weights.Length 0 "the network's weights are inputs of the fused function"

        let run (fused: bool) =
            for w in weights do
                if not (isNull w.grad) then
                    w.grad.zero_ () |> ignore

            let theta = [| scalar 0.01 |]
            let u0 = [| (bump (line n) 2).requires_grad_ (true) |]

            let saved =
                if fused then
                    Fused.rollout sim u0 theta 0.0 0.01 20 5 6
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
    testList "Fused" [
        testList "agreement with the compiled simulator" [ for c in cases -> compiledAgreementTest c ]

        testList "catalogue models" [ for m in Examples.all -> exampleTest m ]

        testList "neural closures" [ for s in [ Scheme.Euler; Scheme.Rk4 ] -> closureTest s ]

        testList "agreement with eager" [
            for c in cases do
                for s in schemes -> agreementTest c s
        ]

        testList "finite differences" [ for c in cases -> finiteDifferenceTest c Scheme.Rk4 ]

        test "checkpoint segment length does not change gradients (1e-12)" {
            Engine.init ()
            let c = cases.Head
            let sim = Fused.compile Scheme.Rk4 c.Model

            let gradsWith (segment: int) =
                let theta = c.Theta |> Array.map scalar
                let u0 = c.Initial 2 |> Array.map (fun t -> t.requires_grad_ (true))
                (Fused.rollout sim u0 theta 0.0 c.Dt c.Steps 5 segment |> loss).backward ()
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
            let sim = Fused.compile Scheme.Heun c.Model

            let theta =
                c.Theta |> Array.map (fun v -> torch.tensor (float32 v, requires_grad = true))

            let first = (c.Initial 1).[0]
            let u0 = [| first.to_type(torch.ScalarType.Float32).requires_grad_ (true) |]
            let saved = Fused.rollout sim u0 theta 0.0 c.Dt c.Steps 5 8
            Expect.equal saved[0].dtype torch.ScalarType.Float32 "output dtype follows the input"
            saved[0].sum().backward ()
            Expect.equal theta[0].grad.dtype torch.ScalarType.Float32 "gradient dtype"
            Expect.isTrue (Double.IsFinite(theta[0].grad.ToDouble())) "finite gradient"
        }

        test "NaN in a rollout names the field and the step" {
            Engine.init ()
            let c = cases.Head
            let sim = Fused.compile Scheme.Euler c.Model
            let theta = [| scalar 1e6; scalar 1.0 |]

            let e =
                Expect.throwsC (fun () -> Fused.rollout sim (c.Initial 1) theta 0.0 1.0 40 5 40 |> ignore) id

            Expect.stringContains e.Message "field 'u' at step" "names field and step"
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

            let e = Expect.throwsC (fun () -> Fused.compile Scheme.Rk4 m |> ignore) id
            Expect.stringContains e.Message "closure 'kill'" "names the closure"
            Expect.stringContains e.Message "FusedOptions.Modules" "says how to supply the network"
        }

        test "IMEX schemes are refused with the explicit alternatives" {
            let e =
                Expect.throwsC (fun () -> Fused.compile Scheme.ImexEuler cases.Head.Model |> ignore) id

            Expect.stringContains e.Message "Rk4" "suggests an explicit scheme"
        }
    ]
