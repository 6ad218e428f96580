/// The fixed-step IMEX schemes (ImexEuler, ImexCrankNicolson) on the generated kernels: saved states and gradients
/// against the eager compiled simulator (dense implicit solves) to 1e-10 in float64 on every boundary kind in 1-D
/// and 2-D, with a closure in the explicit part and at steps far above the explicit limit; with closures of the
/// coordinates or spatial parameters inside the implicit diffusion coefficient (KenCarp4 too); a non-symmetric 2-D
/// diffusion c(x)Δu (BiCGSTAB on the kernels) against the dense solve to a tolerance derived from its stopping
/// residual; their orders in time against the exact solution of a semi-discrete heat equation; finite differences;
/// Backend.Auto's choice; a diffusivity negative somewhere (dense solves) and its refusal above the dense limit.
module Hybrid.Tests.Kernels.ImexKernelTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Kernels

let private f64 = torch.ScalarType.Float64
let private u = Sym "u"
let private x = Sym "x"
let private y = Sym "y"

/// `Compiler.compile` with implicit diffusion on back end `backend` (seed 3, so closures start alike).
let private compile (backend: Backend) (m: Model) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
                ImplicitDiffusion = true
                Seed = 3
        }
        m

/// The initial bump on a line (at x = 0.4) or a rectangle (at (0.4, 0.6)).
let private bumpOn (domain: Domain) =
    match domain with
    | Domain.Rectangle _ ->
        0.3
        + 0.5 * Apply(Fn.Exp, -20.0 * ((x - 0.4) * (x - 0.4) + (y - 0.6) * (y - 0.6)))
    | _ -> 0.3 + 0.5 * Apply(Fn.Exp, -40.0 * (x - 0.4) * (x - 0.4))

/// Fisher–KPP ∂u/∂t = diffusion + r u (1 − u) with D positive and r, from a bump; `walls` sets the boundaries.
let private fisher (name: string) (domain: Domain) (diffusion: Expr) (walls: Model -> Model) =
    Model.empty name
    |> Model.withDomain domain
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" 0.05 with
            Constraint = Constraint.Positive
    }
    |> Model.addParam (Model.param "r" 1.0)
    |> Model.addEquation "u" (diffusion + Sym "r" * u * (1.0 - u))
    |> walls
    |> Model.setInitial "u" (InitialCondition.Expr(bumpOn domain))

let private line n = Domain.Interval(0.0, 1.0, n)

let private plane nx ny =
    Domain.Rectangle(0.0, 1.0, 0.0, 1.0, nx, ny)

let private all (bc: BoundaryCondition) = Model.setBoundaryAll "u" bc

/// Walls that read the parameter a = 0.2.
let private withWall (walls: Model -> Model) =
    Model.addParam (Model.param "a" 0.2) >> walls

/// The models of the agreement tests: every boundary kind in 1-D and 2-D; the stiff coefficient holds D (and x:
/// a symmetric flux form, and c(x)Δu whose banded solve is not symmetric); walls with the parameter a.
let private models: (string * Model) list = [
    "1-D periodic, D Δu", fisher "p1" (line 24) (Sym "D" * Laplacian u) (all BoundaryCondition.Periodic)
    "1-D Dirichlet a and 0.6, ∇·(D(1 + x)∇u)",
    fisher
        "d1"
        (line 20)
        (Divergence(Sym "D" * (1.0 + x) * Grad u))
        (withWall (
            Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Sym "a"))
            >> Model.setBoundary "u" Side.Right (BoundaryCondition.Dirichlet(Num 0.6))
        ))
    "1-D Neumann a and no flux, D(1 + x/2) Δu (not symmetric)",
    fisher
        "n1"
        (line 22)
        (Sym "D" * (1.0 + 0.5 * x) * Laplacian u)
        (withWall (
            Model.setBoundary "u" Side.Left (BoundaryCondition.Neumann(Sym "a"))
            >> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
        ))
    "2-D periodic, D Δu", fisher "p2" (plane 10 8) (Sym "D" * Laplacian u) (all BoundaryCondition.Periodic)
    "2-D Dirichlet a, ∇·(D(1 + xy)∇u)",
    fisher
        "d2"
        (plane 9 11)
        (Divergence(Sym "D" * (1.0 + x * y) * Grad u))
        (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))
]

/// Two fields, one with a stiff part: u diffuses implicitly under no-flux walls, v's nonlinear diffusion
/// ∇·(v∇v) stays explicit (its coefficient reads a field) under a Dirichlet wall; they react.
let private twoFields =
    let v = Sym "v"

    Model.empty "two"
    |> Model.withDomain (line 20)
    |> Model.addField (Model.field "u")
    |> Model.addField (Model.field "v")
    |> Model.addParam {
        Model.param "D" 0.05 with
            Constraint = Constraint.Positive
    }
    |> Model.addParam (Model.param "k" 0.5)
    |> Model.addEquation "u" (Sym "D" * Laplacian u - Sym "k" * u * v)
    |> Model.addEquation "v" (0.02 * Divergence(v * Grad v) + Sym "k" * u * v - 0.1 * v)
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
    |> Model.setBoundaryAll "v" (BoundaryCondition.Dirichlet(Num 0.1))
    |> Model.setInitial "u" (InitialCondition.Expr(0.3 + 0.5 * Apply(Fn.Exp, -40.0 * (x - 0.4) * (x - 0.4))))
    |> Model.setInitial "v" (InitialCondition.Expr(0.2 + 0.1 * Apply(Fn.Sin, System.Math.PI * x)))

/// Rollout options: steps of `dt` to the save times, `scheme`, checkpoints every 3 steps (the adjoint recomputes).
let private options (scheme: Scheme) (dt: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = dt
        SaveTimes = saves
        Checkpointing = Checkpointing.Segments 3
}

/// Two trajectories from the model's initial state (the second scaled by 0.8), a leaf that requires grad.
let private start (sim: Simulator) =
    use _ = torch.no_grad ()
    let u0 = sim.Initial 2
    let shape = Array.append [| 2L |] (Array.create (int (u0[0].dim ()) - 1) 1L)
    let scale = torch.tensor([| 1.0; 0.8 |], dtype = f64).reshape shape
    u0 |> Array.map (fun v -> (v * scale).detach().requires_grad_ true)

/// The back end that ran, the saved states, and the gradients of Σ(u² + u³) over them with respect to every
/// trainable tensor (raw parameters, closure weights) and the initial state `initial sim`.
let runFrom (initial: Simulator -> torch.Tensor[]) (sim: Simulator) (o: RolloutOptions) =
    for p in sim.Trainable() do
        p.grad <- null

    let u0 = initial sim
    let traj = sim.Simulate(u0, o)

    let loss =
        traj.Values
        |> Array.map (fun v -> (square v).sum () + (v * v * v).sum ())
        |> Array.reduce (.+)

    loss.backward ()

    let grads =
        Array.append
            (sim.Trainable() |> Array.map (fun p -> p.grad.clone ()))
            (u0 |> Array.map (fun v -> v.grad.clone ()))

    traj.Backend, traj.Values |> Array.map (fun v -> v.detach().clone ()), grads

/// `runFrom` the start of two trajectories (`start`).
let private run = runFrom start

let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-300 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

/// KenCarp4 (adaptive) from a first step of 0.01 at relative tolerance `rtol` (absolute 1e-3·rtol), saving at `saves`.
let private kenCarp (rtol: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = Scheme.KenCarp4
        Dt = 0.01
        SaveTimes = saves
        Tolerance = {
            Relative = rtol
            Absolute = 1e-3 * rtol
        }
}

/// Kernels and eager agree on `m` with `scheme`, each simulator set up by `prepare` first: values and every gradient
/// to `tolerance` relative.
let private agreePrepared
    (prepare: Simulator -> unit)
    (tolerance: float)
    (m: Model)
    (scheme: Scheme)
    (dt: float)
    (saves: float[])
    =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let o = options scheme dt saves
    let kernels, eager = compile Backend.Kernels m, compile Backend.Eager m
    prepare kernels
    prepare eager
    let ranK, valuesK, gradsK = run kernels o
    let ranE, valuesE, gradsE = run eager o
    Expect.equal ranK Backend.Kernels "the kernels ran"
    Expect.equal ranE Backend.Eager "the eager back end ran"

    for f in 0 .. valuesK.Length - 1 do
        let d = maxRelative valuesK[f] valuesE[f]
        Expect.isLessThan d tolerance $"saved states of field {f} ({d:G3})"

    Expect.equal gradsK.Length gradsE.Length "same trainable tensors"

    for g in 0 .. gradsK.Length - 1 do
        Expect.isGreaterThan (gradsE[g].abs().max().ToDouble()) 0.0 $"gradient {g} is not zero"
        let d = maxRelative gradsK[g] gradsE[g]
        Expect.isLessThan d tolerance $"gradient {g} ({d:G3})"

/// Kernels and eager agree on `m` with `scheme`: values and every gradient to `tolerance` relative.
let private agreeWithin = agreePrepared ignore

/// `agreeWithin` 1e-10.
let private agree = agreeWithin 1e-10

/// D(1 + x)Δu on an nx × ny grid under `walls`: a coefficient that varies in space multiplying Δu, so L is not
/// symmetric and the kernels solve it by BiCGSTAB (the eager back end by its dense inverse).
let private skew (name: string) (nx: int) (ny: int) (walls: Model -> Model) =
    fisher name (plane nx ny) (Sym "D" * (1.0 + x) * Laplacian u) walls

/// The skew models: periodic, and Dirichlet walls reading the parameter a.
let private skewModels = [
    "periodic", skew "s2p" 12 10 (all BoundaryCondition.Periodic)
    "Dirichlet a", skew "s2d" 11 12 (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))
]

/// The tolerance at which kernels (BiCGSTAB) and eager (dense) agree on a skew model of nx × ny cells with D = 0.05,
/// steps of dt over `span` under `scheme`: each solve stops at the relative residual ImplicitSolve.fixedStepTolerance
/// (1e-13), so its relative error is at most that times the conditioning of A = I − γΔt·L, ‖A‖‖A⁻¹‖ ≤ 1 + 2γΔt·max|Lᵢᵢ|
/// (A is diagonally dominant with rows of L summing to ≤ 0, so ‖A⁻¹‖∞ ≤ 1), with |Lᵢᵢ| ≤ D·max(1 + x)·(2/Δx² + 2/Δy²).
/// The steps do not amplify (diffusion, and a logistic reaction over a span ≤ 0.2), so the errors of the forward and
/// adjoint solves add up at most: their number times that bound, times 10 for the sums of the loss and gradients.
let private skewTolerance (nx: int) (ny: int) (scheme: Scheme) (dt: float) (span: float) =
    let gamma, perStep = if scheme = Scheme.ImexEuler then 1.0, 1 else 0.5, 2
    let diagonal = 0.05 * 2.0 * (2.0 * float (nx * nx) + 2.0 * float (ny * ny))
    let conditioning = 1.0 + 2.0 * gamma * dt * diagonal
    let solves = 2.0 * float perStep * round (span / dt)
    10.0 * solves * conditioning * ImplicitSolve.fixedStepTolerance

/// Fisher–KPP with a neural kill term in the explicit part: ∂u/∂t = ∇·(D∇u) + r u (1 − u) − kill(u, x) u.
let private withClosure = Hybrid.Tests.Compiler.CompilerTests.fisherWithKill ()

/// A closure of the coordinates, `arity` of them (x, then y), an MLP with one hidden layer of 8.
let private coordinateClosure (name: string) (arity: int) = {
    Name = name
    Arity = arity
    Architecture = Architecture.Mlp([ arity; 8; 1 ], Activation.Tanh)
    Units = None
}

/// ∂u/∂t = ∇·(κ∇u) + r u (1 − u) (+ `extra`) on `domain` under `walls`, with D = 0.05 (spatial when `spatial`) and
/// the closures `closures`: the diffusion coefficient κ reads closures of the coordinates or a spatial parameter,
/// which the IMEX schemes solve implicitly on both back ends.
let private learnedDiffusion
    (name: string)
    (domain: Domain)
    (spatial: bool)
    (closures: ClosureDecl list)
    (kappa: Expr)
    (extra: Expr)
    (walls: Model -> Model)
    =
    closures
    |> List.fold
        (fun m c -> Model.addClosure c m)
        (Model.empty name
         |> Model.withDomain domain
         |> Model.addField (Model.field "u")
         |> Model.addParam {
             Model.param "D" 0.05 with
                 Shape = if spatial then ParamShape.Spatial else ParamShape.Scalar
         }
         |> Model.addParam (Model.param "r" 1.0))
    |> Model.addEquation "u" (Divergence(kappa * Grad u) + Sym "r" * u * (1.0 - u) + extra)
    |> walls
    |> Model.setInitial "u" (InitialCondition.Expr(bumpOn domain))

/// The models whose implicit diffusion coefficient reads closures of the coordinates or a spatial parameter.
let private learnedModels: (string * Model) list = [
    "1-D no flux, ∇·(D exp(κ(x))∇u)",
    learnedDiffusion
        "k1"
        (line 20)
        false
        [ coordinateClosure "kappa" 1 ]
        (Sym "D" * Apply(Fn.Exp, Call("kappa", [ x ])))
        (Num 0.0)
        (all BoundaryCondition.NoFlux)
    "1-D Dirichlet a, ∇·(D exp(k(x))∇u) − k(x) u (one closure in both parts)",
    learnedDiffusion
        "k1s"
        (line 18)
        false
        [ coordinateClosure "k" 1 ]
        (Sym "D" * Apply(Fn.Exp, Call("k", [ x ])))
        (-(Call("k", [ x ]) * u))
        (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))
    "2-D periodic, ∇·(D exp(κ(x, y))∇u) (conjugate gradients)",
    learnedDiffusion
        "k2"
        (plane 9 8)
        false
        [ coordinateClosure "kappa" 2 ]
        (Sym "D" * Apply(Fn.Exp, Call("kappa", [ x; y ])))
        (Num 0.0)
        (all BoundaryCondition.Periodic)
    "1-D Neumann a and no flux, ∇·(D(x)∇u), D spatial",
    learnedDiffusion
        "s1"
        (line 22)
        true
        []
        (Sym "D")
        (Num 0.0)
        (withWall (
            Model.setBoundary "u" Side.Left (BoundaryCondition.Neumann(Sym "a"))
            >> Model.setBoundary "u" Side.Right BoundaryCondition.NoFlux
        ))
    "2-D Dirichlet a, ∇·(D(x, y)(1 + x)∇u), D spatial",
    learnedDiffusion
        "s2"
        (plane 8 10)
        true
        []
        (Sym "D" * (1.0 + x))
        (Num 0.0)
        (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))
]

/// Diffusivities negative on part of the domain (anti-diffusion there): I − γhL is not diagonally dominant, so both
/// back ends take the dense solve.
let private negativeModels = [
    "1-D Dirichlet a, D(x − 0.3)Δu",
    fisher "n1" (line 20) (Sym "D" * (x - 0.3) * Laplacian u) (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))
    "2-D periodic, D(x − 0.5)Δu (not symmetric)",
    fisher "n2" (plane 6 5) (Sym "D" * (x - 0.5) * Laplacian u) (all BoundaryCondition.Periodic)
    "2-D no flux, ∇·(D(y − 0.4)∇u) (symmetric)",
    fisher "n2s" (plane 7 6) (Divergence(Sym "D" * (y - 0.4) * Grad u)) (all BoundaryCondition.NoFlux)
]

/// Grids with fewer than 3 cells along an axis: no stencil solve fits, so both back ends take the dense solve.
let private shortModels = [
    "1-D periodic, 2 cells", fisher "c2" (line 2) (Sym "D" * Laplacian u) (all BoundaryCondition.Periodic)
    "1-D Dirichlet a, 2 cells, ∇·(D(1 + x)∇u)",
    fisher
        "c1"
        (line 2)
        (Divergence(Sym "D" * (1.0 + x) * Grad u))
        (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))
    "2-D no flux, 5 × 2 cells, D(1 + x)Δu",
    fisher "c52" (plane 5 2) (Sym "D" * (1.0 + x) * Laplacian u) (all BoundaryCondition.NoFlux)
]

/// Sets the spatial parameter D of `sim` (if it has one) to values that vary from cell to cell, the same on every
/// simulator: D = 0.05 (1 + 0.4 sin(1.7 i)) at cell i.
let private varyD (sim: Simulator) =
    let d = sim.Param "D"

    if d.Raw.numel () > 1L then
        use _ = torch.no_grad ()
        let n = int (d.Raw.numel ())

        let values = Array.init n (fun i -> 0.05 * (1.0 + 0.4 * sin (1.7 * float i)))

        d.Raw.copy_ (torch.tensor(values, dtype = d.Raw.dtype).reshape d.Raw.shape)
        |> ignore

/// The heat equation with decay, ∂u/∂t = D Δu − u on a periodic line of n cells, from sin(2πx): its semi-discrete
/// solution is exp((Dλ − 1)t) sin(2πx) with λ = −4 sin²(πΔx)/Δx² the three-point Laplacian's eigenvalue.
let private heat (n: int) (d: float) =
    Model.empty "heat"
    |> Model.withDomain (line n)
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" d with
            Constraint = Constraint.Positive
    }
    |> Model.addEquation "u" (Sym "D" * Laplacian u - u)
    |> Model.setBoundaryAll "u" BoundaryCondition.Periodic
    |> Model.setInitial "u" (InitialCondition.Expr(Apply(Fn.Sin, 2.0 * System.Math.PI * x)))

/// The least-squares slope of log(error) against log(Δt): the observed order.
let private slope (dts: float[]) (errors: float[]) =
    let lx = dts |> Array.map log
    let ly = errors |> Array.map log
    let mx, my = Array.average lx, Array.average ly

    Array.map2 (fun a b -> (a - mx) * (b - my)) lx ly
    |> Array.sum
    |> fun s -> s / (lx |> Array.sumBy (fun a -> (a - mx) * (a - mx)))

let private order (scheme: Scheme) =
    let n, d, t = 32, 0.1, 0.4
    let sim = compile Backend.Kernels (heat n d)
    let h = 1.0 / float n
    let lambda = -4.0 * (sin (System.Math.PI * h)) ** 2.0 / (h * h)

    let exact =
        Array.init n (fun i -> exp ((d * lambda - 1.0) * t) * sin (2.0 * System.Math.PI * (float i + 0.5) * h))

    let dts = [| 0.04; 0.02; 0.01; 0.005 |]

    let errors =
        dts
        |> Array.map (fun dt ->
            use _ = torch.no_grad ()
            let traj = sim.Simulate(sim.Initial 1, options scheme dt [| t |])
            Expect.equal traj.Backend Backend.Kernels "the kernels ran"
            let got = traj.Values[0].reshape(-1L).data<float>().ToArray()
            Array.map2 (fun a b -> abs (a - b)) got exact |> Array.max)

    slope dts errors

/// ImexCrankNicolson on the kernels: the gradients of Σu³ over the saved states with respect to D's and a's raw
/// values and u0 at cell 7 equal central differences with step `eps` (to 1e-6 relative).
let private finiteDifferences (m: Model) (eps: float) =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let sim = compile Backend.Kernels m
    let o = options Scheme.ImexCrankNicolson 0.02 [| 0.06; 0.1 |]
    let u0 = start sim

    let loss () =
        let traj = sim.Simulate(u0, o)
        traj.Values |> Array.map (fun v -> (v * v * v).sum ()) |> Array.reduce (.+)

    let l = loss ()
    l.backward ()
    let raw = sim.Param("D").Raw
    let wall = sim.Param("a").Raw

    let central (bump: float -> unit) =
        use _ = torch.no_grad ()
        bump eps
        let plus = (loss ()).ToDouble()
        bump (-2.0 * eps)
        let minus = (loss ()).ToDouble()
        bump eps
        (plus - minus) / (2.0 * eps)

    let shift (t: torch.Tensor) (i: int64) (by: float) =
        t.view(-1L).index_put_ (t.view(-1L)[i] + by, [| torch.TensorIndex.Single i |])
        |> ignore

    let check (name: string) (autograd: float) (fd: float) =
        Expect.isLessThan (abs (autograd - fd)) (1e-6 * max 1.0 (abs fd)) $"{name}: autograd {autograd}, FD {fd}"

    check "D (raw)" (raw.grad.ToDouble()) (central (fun by -> shift raw 0L by))
    check "a (raw)" (wall.grad.ToDouble()) (central (fun by -> shift wall 0L by))
    let start = u0[0]
    let autograd = start.grad.reshape(-1L).data<float>().ToArray()
    check "u0[7]" autograd[7] (central (fun by -> shift start 7L by))

/// The agreement tests of `models` with eager under ImexEuler and ImexCrankNicolson (steps of 0.01, saves at 0.05 and
/// 0.1), and of the first under KenCarp4 (the eager steps, at least `minSteps`), then `more`.
let private denseAgreement (title: string) (models: (string * Model) list) (minSteps: int) (more: Test list) =
    testList title [
        for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] do
            for name, m in models do
                yield test $"{scheme}, {name}" { agree m scheme 0.01 [| 0.05; 0.1 |] }

        let name, first = models.Head

        yield
            test $"KenCarp4 (adaptive), {name}: the eager steps, values and gradients to 1e-10" {
                AdaptiveGridKernelTests.agreesWithin
                    1e-10
                    1e-10
                    compile
                    first
                    (kenCarp 1e-6 [| 0.05; 0.1 |])
                    minSteps
                    false
            }

        yield! more
    ]

let tests =
    testList "IMEX kernels" [
        testList "agree with the eager compiled simulator (values and gradients, 1e-10)" [
            for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] do
                for name, m in models do
                    yield test $"{scheme}, {name}" { agree m scheme 0.01 [| 0.05; 0.1; 0.2 |] }

                yield
                    test $"{scheme}, two fields, one with a stiff part" {
                        agree twoFields scheme 0.002 [| 0.02; 0.04 |]
                    }

                yield test $"{scheme}, a closure in the explicit part" { agree withClosure scheme 0.01 [| 0.05; 0.1 |] }

                // Above ImplicitSolve.maxDense cells the eager back end solves by conjugate gradients too: both stop at
                // ImplicitSolve.fixedStepTolerance (1e-13), so they agree to round-off.
                yield
                    test $"{scheme}, 2-D Dirichlet on 66 × 64 cells (conjugate gradients on both back ends)" {
                        let m =
                            fisher
                                "cg2"
                                (plane 66 64)
                                (Sym "D" * Laplacian u)
                                (withWall (all (BoundaryCondition.Dirichlet(Sym "a"))))

                        agree m scheme 0.01 [| 0.03 |]
                    }

                yield
                    test $"{scheme}, Fisher–KPP at 16× the explicit step limit" {
                        let m = Hybrid.Tests.Compiler.CompilerTests.fisherKpp 64 0.2 1.0
                        let dt = 0.01
                        // Euler is stable up to Δx²/(2D); IMEX takes the diffusion implicitly.
                        Expect.isGreaterThan
                            dt
                            (16.0 * (1.0 / 64.0) ** 2.0 / (2.0 * 0.2))
                            "far above the explicit limit"

                        let explicitRun () =
                            let sim = compile Backend.Kernels m
                            sim.Simulate(sim.Initial 1, options Scheme.Euler dt [| 0.1 |]) |> ignore

                        Expect.throwsC explicitRun (fun e ->
                            Expect.stringContains e.Message "stability limit" "Euler refuses")

                        agree m scheme dt [| 0.1; 0.3 |]
                    }
        ]

        testList
            "agree with eager where the implicit diffusion coefficient reads closures of the coordinates or a spatial parameter (values and gradients, 1e-10)"
            [
                for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] do
                    for name, m in learnedModels do
                        yield test $"{scheme}, {name}" { agreePrepared varyD 1e-10 m scheme 0.01 [| 0.05; 0.1; 0.2 |] }

                yield
                    test
                        "KenCarp4 (adaptive) with a closure in both parts and a spatial parameter in 1-D, and a spatial parameter in 2-D (at rtol 1e-10: the eager conjugate gradients stop at a residual tied to it): the eager steps, values and gradients to 1e-10" {
                        let o (rtol: float) = kenCarp rtol [| 0.07; 0.2 |]

                        for (_, m), rtol in [ learnedModels[1], 1e-6; learnedModels[3], 1e-6; learnedModels[4], 1e-10 ] do
                            AdaptiveGridKernelTests.agreesWithin 1e-10 1e-10 compile m (o rtol) 4 false
                    }

                yield
                    test "after the closure's weights change, the kernels solve with the new coefficient" {
                        Engine.init ()
                        use _ = torch.NewDisposeScope()
                        let m = snd learnedModels[0]
                        let o = options Scheme.ImexCrankNicolson 0.01 [| 0.1 |]
                        let kernels, eager = compile Backend.Kernels m, compile Backend.Eager m

                        let final (sim: Simulator) =
                            use _ = torch.no_grad ()
                            let traj = sim.Simulate(sim.Initial 1, o)
                            Expect.equal traj.Backend sim.Backend "the compiled back end ran"
                            traj.Values[0].clone ()

                        let before = final kernels
                        Expect.isLessThan (maxRelative before (final eager)) 1e-10 "they agree"

                        for sim in [ kernels; eager ] do
                            use _ = torch.no_grad ()

                            for p in sim.Trainable() do
                                if p.numel () > 1L then
                                    p.mul_ (torch.tensor 1.5) |> ignore

                        let after = final kernels
                        Expect.isGreaterThan (maxRelative after before) 1e-4 "the new weights change the solution"
                        Expect.isLessThan (maxRelative after (final eager)) 1e-10 "and both back ends solve with them"
                    }
            ]

        denseAgreement
            "agree with eager where the diffusivity is negative somewhere (dense solves on both back ends; values and gradients, 1e-10)"
            negativeModels
            4
            [
                test "the kernels take the dense solve for them" {
                    for name, m in negativeModels do
                        let stepper =
                            (Hybrid.Kernels.Kernels.compile Scheme.ImexEuler m).Stepper 1 :?> Hybrid.Kernels.ImexStepper

                        let theta = Array.init stepper.Plan.Params.Length (fun i -> [| 0.05; 1.0; 0.2 |][i])

                        Expect.equal (stepper.Methods(theta, 0.01)) [| Some "dense" |] name
                }

                test
                    "the dense solve pivots: a zero on the diagonal of I − cL, both solves against TorchSharp's (1e-12)" {
                    // A full stencil of 7 cells (every column in each row, the cell itself first), random entries,
                    // row 0's own entry 1/c: (I − cL)[0, 0] = 0, so elimination must swap rows.
                    let n, c = 7, 0.7
                    let random = Random 11

                    let columns =
                        Array.init n (fun i -> Array.append [| i |] (Array.init n id |> Array.filter ((<>) i)))

                    let values =
                        Array.init (n * n) (fun e -> if e = 0 then 1.0 / c else random.NextDouble() * 2.0 - 1.0)

                    let stencil = {
                        Field = "u"
                        Columns = columns
                        Values = values
                        Full = true
                        Affine = Array.zeroCreate n
                    }

                    let a = Array2D.init n n (fun i j -> if i = j then 1.0 else 0.0)

                    for i in 0 .. n - 1 do
                        for e in 0 .. n - 1 do
                            a[i, columns[i][e]] <- a[i, columns[i][e]] - c * values[i * n + e]

                    Expect.equal a[0, 0] 0.0 "a zero pivot without row swaps"

                    let solver =
                        match ImplicitStencil.solver (SolveVectors()) stencil c with
                        | Ok solver -> solver
                        | Error why -> failtest why

                    Expect.equal solver.Method "dense" "the dense solve"
                    let r = Array.init n (fun _ -> random.NextDouble() - 0.5)
                    let matrix = torch.tensor (a, dtype = torch.ScalarType.Float64)

                    for name, transposed, m in [ "Solve", false, matrix; "SolveTransposed", true, matrix.t () ] do
                        let x = Array.copy r
                        (if transposed then solver.SolveTransposed else solver.Solve) x

                        let expected =
                            torch.linalg
                                .solve(m, torch.tensor (r, dtype = torch.ScalarType.Float64))
                                .data<float>()
                                .ToArray()

                        for i in 0 .. n - 1 do
                            Expect.floatClose { absolute = 1e-12; relative = 1e-12 } x[i] expected[i] $"{name}: x[{i}]"

                    // L = I/c: I − cL = 0, no inverse.
                    let singular = {
                        stencil with
                            Values = Array.init (n * n) (fun e -> if e % n = 0 then 1.0 / c else 0.0)
                    }

                    match ImplicitStencil.solver (SolveVectors()) singular c with
                    | Ok _ -> failtest "a singular I − cL was solved"
                    | Error why -> Expect.stringContains why "has no inverse at this step size" "the reason"
                }
            ]

        denseAgreement
            "agree with eager on grids with fewer than 3 cells along an axis (dense solves on both back ends; values and gradients, 1e-10)"
            shortModels
            2
            [
                test "above 4,096 cells (2 × 2,100) both back ends refuse; Auto names the count" {
                    let m =
                        fisher "short_long" (plane 2 2100) (Sym "D" * Laplacian u) (all BoundaryCondition.NoFlux)

                    let backend, why =
                        (compile Backend.Auto m).BackendFor(options Scheme.ImexEuler 0.01 [| 0.05 |])

                    Expect.equal backend Backend.Eager "Auto goes eager"
                    Expect.stringContains why "2 × 2100 cells" "names the grid"
                    Expect.stringContains why "4200 cells are above the dense solve's 4096" "and the count"
                }
            ]

        testList "agree with eager on a 2-D c(x)Δu (not symmetric: BiCGSTAB against the dense solve)" [
            for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] do
                for name, m in skewModels do
                    let nx, ny =
                        match m.Domain with
                        | Domain.Rectangle(_, _, _, _, nx, ny) -> nx, ny
                        | _ -> failwith "a 2-D model"

                    yield
                        test $"{scheme}, {name}" {
                            let tolerance = skewTolerance nx ny scheme 0.01 0.2
                            agreeWithin tolerance m scheme 0.01 [| 0.05; 0.1; 0.2 |]
                        }
        ]

        testList "orders in time against the semi-discrete heat equation" [
            test "ImexEuler is first order" {
                let p = order Scheme.ImexEuler
                Expect.isTrue (p > 0.9 && p < 1.2) $"observed order {p:F3}"
            }
            test "ImexCrankNicolson is second order" {
                let p = order Scheme.ImexCrankNicolson
                Expect.isTrue (p > 1.85 && p < 2.2) $"observed order {p:F3}"
            }
        ]

        test "the gradients equal central finite differences (ImexCrankNicolson, 1-D Dirichlet)" {
            finiteDifferences (snd models[1]) 1e-6
        }

        test "the gradients equal central finite differences (ImexCrankNicolson, 2-D Dirichlet c(x)Δu: BiCGSTAB)" {
            // BiCGSTAB's results move by up to ~1e-13 relative as its iterations change with the bumps: a step of
            // 1e-4 keeps that below 1e-9 of the difference quotient (its truncation error is O(1e-8)).
            finiteDifferences (snd skewModels[1]) 1e-4
        }


        test
            "Backend.Auto picks the kernels for ImexEuler, ImexCrankNicolson and KenCarp4 (c(x)Δu in 2-D too), and the eager back end where no solve fits" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let auto = compile Backend.Auto (snd models[3])

            for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson ] do
                let o = options scheme 0.01 [| 0.05 |]
                Expect.equal (auto.BackendFor o) (Backend.Kernels, "") $"{scheme}: Auto picks the kernels"
                Expect.equal (auto.Simulate(auto.Initial 1, o)).Backend Backend.Kernels "and runs them"

            // c(x)Δu on a 2-D grid is not symmetric: BiCGSTAB instead of conjugate gradients.
            let nonSymmetric = skew "s2" 6 5 (all BoundaryCondition.Periodic)

            for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson; Scheme.KenCarp4 ] do
                let o = options scheme 0.01 [| 0.05 |]
                let auto = compile Backend.Auto nonSymmetric
                Expect.equal (auto.BackendFor o) (Backend.Kernels, "") $"{scheme}: Auto picks the kernels for c(x)Δu"
                Expect.equal (auto.Simulate(auto.Initial 1, o)).Backend Backend.Kernels "and runs them"

            let stepper =
                (Hybrid.Kernels.Kernels.compile Scheme.ImexEuler nonSymmetric).Stepper 1 :?> Hybrid.Kernels.ImexStepper

            Expect.equal (stepper.Methods([| 0.05; 1.0 |], 0.01)) [| Some "BiCGSTAB" |] "solved by BiCGSTAB"

            // A coefficient negative somewhere on a line above the dense solve's 4,096 cells: I − γhL is not
            // diagonally dominant, which the banded solve needs (the eager back end refuses it too).
            let negative =
                fisher "n1long" (line 4100) (Sym "D" * (x - 0.5) * Laplacian u) (all BoundaryCondition.Periodic)

            let o = options Scheme.ImexEuler 1e-6 [| 2e-6 |]
            let backend, why = (compile Backend.Auto negative).BackendFor o
            Expect.equal backend Backend.Eager "Auto goes eager"
            Expect.stringContains why "negative diffusivity" "and says why"
            Expect.stringContains why "'u'" "naming the field"
            Expect.stringContains why "4100 cells" "and the count"
            let kernels = compile Backend.Kernels negative

            let e =
                Expect.throwsC (fun () -> kernels.Simulate(kernels.Initial 1, o) |> ignore) id

            Expect.stringContains e.Message "negative diffusivity" "Kernels refuses with the reason"
            Expect.stringContains e.Message "positive coefficient" "and names the fix"
        }

        test "Kernels.compile (fixed-step schemes) refuses KenCarp4 by name: Compiler.compile runs it adaptively" {
            let e =
                Expect.throwsC (fun () -> Hybrid.Kernels.Kernels.compile Scheme.KenCarp4 (snd models[0]) |> ignore) id

            Expect.stringContains e.Message "KenCarp4" "names the scheme"
        }
    ]
