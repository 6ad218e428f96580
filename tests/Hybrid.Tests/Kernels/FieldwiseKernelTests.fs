/// The generated kernels on models they used to leave to the eager back end: closures over whole fields (a CNN
/// taking fields as channels, in 1-D and 2-D, several outputs) and periodic diagnostic fields (an elliptic solve
/// before each right-hand side, in TorchSharp). Trajectories and gradients for θ, u0 and the network weights against
/// the eager compiled simulator (1e-10 relative, float64); Backend.Auto picks the kernels for them and names the
/// construct for what the kernels still refuse. Rodas4 and Auto on them: the tangent plan (the CNNs' JVPs, tangent
/// elliptic solves) against autograd, one step and rollouts against the eager dense Jacobian's steps.
module Hybrid.Tests.Kernels.FieldwiseKernelTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Numerics
open Hybrid.Kernels

let private x, y = Sym "x", Sym "y"
let private u, v = Sym "u", Sym "v"
let private omega, psi = Sym "omega", Sym "psi"
let private sin (e: Expr) = Apply(Fn.Sin, e)
let private cos (e: Expr) = Apply(Fn.Cos, e)

let private cnnClosure (name: string) (channels: int list) = {
    Name = name
    Arity = List.head channels
    Architecture = Architecture.Cnn(channels, 3, Activation.Tanh)
    Units = None
}

let private periodicSides = [
    Side.Left, BoundaryCondition.Periodic
    Side.Right, BoundaryCondition.Periodic
    Side.Bottom, BoundaryCondition.Periodic
    Side.Top, BoundaryCondition.Periodic
]

let private withSides (field: string) (sides: (Side * BoundaryCondition) list) (m: Model) =
    sides |> List.fold (fun m (side, bc) -> Model.setBoundary field side bc m) m

/// 2-D, periodic in x and no-flux in y (the CNN pads circularly along x, by replication along y): a two-output CNN
/// sgs(u, ∂x v) drives u (output 1) and v (output 2).
let cnnPlane =
    let sides = [
        Side.Left, BoundaryCondition.Periodic
        Side.Right, BoundaryCondition.Periodic
        Side.Bottom, BoundaryCondition.NoFlux
        Side.Top, BoundaryCondition.NoFlux
    ]

    let args = [ u; Partial(Axis.X, v) ]

    Model.empty "cnn_plane"
    |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, 7, 5))
    |> Model.addField (Model.field "u")
    |> Model.addField (Model.field "v")
    |> Model.addParam (Model.param "D" 0.05)
    |> Model.addParam (Model.param "a" 0.7)
    |> Model.addClosure (cnnClosure "sgs" [ 2; 3; 2 ])
    |> Model.addEquation "u" (Sym "D" * Laplacian u + CallOutput("sgs", 1, args))
    |> Model.addEquation "v" (Sym "D" * Laplacian v + Sym "a" * CallOutput("sgs", 2, args) - Sym "a" * u * v)
    |> withSides "u" sides
    |> withSides "v" sides
    |> Model.setInitial "u" (InitialCondition.Expr(0.5 + 0.3 * sin (6.283185307179586 * x) * cos (3.0 * y)))
    |> Model.setInitial "v" (InitialCondition.Expr(0.2 + 0.4 * cos (6.283185307179586 * x + 1.0) * y))

/// 1-D with a Dirichlet and a Neumann end: a CNN c(u, x) over the whole line ([B; 2; N]) in a reaction.
let cnnLine =
    Model.empty "cnn_line"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 13))
    |> Model.addField (Model.field "u")
    |> Model.addParam (Model.param "D" 0.02)
    |> Model.addParam (Model.param "r" 0.8)
    |> Model.addClosure (cnnClosure "c" [ 2; 4; 1 ])
    |> Model.addEquation "u" (Sym "D" * Laplacian u + Sym "r" * Call("c", [ u; x ]) * u - 0.3 * u)
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(Num 0.2))
    |> Model.setBoundary "u" Side.Right (BoundaryCondition.Neumann(Num -0.1))
    |> Model.setInitial "u" (InitialCondition.Expr(0.6 + 0.3 * sin (3.0 * x)))

/// 2-D periodic vorticity ω with the stream function ψ of Δψ = ω (a diagnostic field, solved spectrally): the
/// Jacobian as products of central differences, β ∂xψ, drag, viscosity, and ψ read at the cell by q. ω starts with
/// a non-zero mean, which the zero-mean gauge of ψ drops (so its gradient through ψ must vanish alike). On nx × ny
/// cells.
let vorticityOn (nx: int) (ny: int) =
    Model.empty "vorticity"
    |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.5, nx, ny))
    |> Model.addField (Model.field "omega")
    |> Model.addField (Model.field "q")
    |> Model.addDiagnostic { Name = "psi"; Units = None }
    |> Model.addParam (Model.param "beta" 0.9)
    |> Model.addParam (Model.param "nu" 0.02)
    |> Model.addParam (Model.param "mu" 0.1)
    |> Model.addEquation
        "omega"
        (Partial(Axis.Y, psi) * Partial(Axis.X, omega)
         - Partial(Axis.X, psi) * Partial(Axis.Y, omega)
         - Sym "beta" * Partial(Axis.X, psi)
         + Sym "nu" * Laplacian omega
         - Sym "mu" * omega)
    |> Model.addEquation "q" (Sym "nu" * Laplacian(Sym "q") + psi * Sym "q" - 0.5 * Laplacian psi)
    |> Model.addElliptic "psi" 0.0 omega
    |> withSides "omega" periodicSides
    |> withSides "q" periodicSides
    |> withSides "psi" periodicSides
    |> Model.setInitial
        "omega"
        (InitialCondition.Expr(
            0.3
            + sin (6.283185307179586 * x) * cos (4.1887902047863905 * y)
            + 0.4 * cos (12.566370614359172 * x + 4.1887902047863905 * y)
        ))
    |> Model.setInitial "q" (InitialCondition.Expr(1.0 + 0.2 * sin (6.283185307179586 * x)))

let private vorticity = vorticityOn 8 6

/// 1-D periodic, a screened diagnostic field p of (Δ − 4)p = u + a, read by a per-cell closure R(u, p), by ∂x and
/// by Δ; and a CNN closure s(u, p) over the whole line reading it too.
let screenedLine =
    let p = Sym "p"

    Model.empty "screened_line"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 16))
    |> Model.addField (Model.field "u")
    |> Model.addDiagnostic { Name = "p"; Units = None }
    |> Model.addParam (Model.param "D" 0.03)
    |> Model.addParam (Model.param "a" 0.4)
    |> Model.addClosure {
        Name = "R"
        Arity = 2
        Architecture = Architecture.Mlp([ 2; 6; 1 ], Activation.Tanh)
        Units = None
    }
    |> Model.addClosure (cnnClosure "s" [ 2; 3; 1 ])
    |> Model.addEquation
        "u"
        (Sym "D" * Laplacian u
         + Partial(Axis.X, p)
         + 0.5 * Call("R", [ u; p ])
         + 0.2 * Call("s", [ u; p ])
         - 0.1 * Laplacian p)
    |> Model.addElliptic "p" 4.0 (u + Sym "a")
    |> Model.setBoundaryAll "u" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "p" BoundaryCondition.Periodic
    |> Model.setInitial "u" (InitialCondition.Expr(0.5 + 0.3 * sin (6.283185307179586 * x)))

// Steps of 2⁻¹⁴, below the diffusion limit on 100 × 90 cells.
let private rk4 = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 0.00006103515625
        SaveTimes = [| 0.0001220703125; 0.000244140625 |]
}

/// The largest difference relative to b's largest magnitude.
let private maxRelative (a: torch.Tensor) (b: torch.Tensor) =
    let scale = max 1e-300 (b.abs().max().ToDouble())
    (a - b).abs().max().ToDouble() / scale

/// Backend.Auto on `m` picks the kernels, and runs them.
let private autoPicksKernels (m: Model) =
    Engine.init ()
    use _ = torch.NewDisposeScope()

    let sim =
        Compiler.compile
            {
                Compiler.defaults with
                    Backend = Backend.Auto
            }
            m

    Expect.equal (sim.BackendFor rk4) (Backend.Kernels, "") "Backend.Auto picks the kernels"

    use _ = torch.no_grad ()
    Expect.equal (sim.Simulate(sim.Initial 1, rk4)).Backend Backend.Kernels "and runs them"

/// Backend.Auto on `m` runs eager with `options`, and says why, naming the construct.
let private autoRefuses (m: Model) (options: RolloutOptions) (construct: string) =
    Engine.init ()
    use _ = torch.NewDisposeScope()

    let sim =
        Compiler.compile
            {
                Compiler.defaults with
                    Backend = Backend.Auto
            }
            m

    let backend, why = sim.BackendFor options
    Expect.equal backend Backend.Eager "eager"
    Expect.stringContains why construct "the reason names the construct"

let private models = [
    "2-D CNN with two outputs, periodic x, no-flux y", cnnPlane
    "1-D CNN over the whole line, Dirichlet and Neumann ends", cnnLine
    "2-D periodic vorticity with the diagnostic Δψ = ω", vorticity
    "2-D periodic vorticity, 100 × 90 cells (passes split over the kernel worker pool)", vorticityOn 100 90
    "1-D periodic screened diagnostic (Δ − 4)p = u + a, read by a per-cell and a CNN closure", screenedLine
]

let tests =
    testList "Kernels over whole fields" [
        testList "kernels = compiled (values; gradients for θ, u0 and network weights; 1e-10)" [
            for name, m in models -> test name { KernelTests.agreesWithCompiled Scheme.Rk4 10 m None }
        ]

        testList "Backend.Auto picks the kernels" [ for name, m in models -> test name { autoPicksKernels m } ]

        test "Backend.Auto names a diagnostic field with walls" {
            let walled =
                vorticity
                |> withSides "psi" [
                    Side.Left, BoundaryCondition.Periodic
                    Side.Right, BoundaryCondition.Periodic
                    Side.Bottom, BoundaryCondition.Dirichlet(Num 0.0)
                    Side.Top, BoundaryCondition.Dirichlet(Num 0.0)
                ]

            autoRefuses walled rk4 "the diagnostic field 'psi' (elliptic solve Δpsi = omega) with walls"
        }

        testList "Rodas4 and Auto" [
            test "the tangent plan (CNN JVPs, tangent elliptic solves) equals autograd: J d, Jᵀλ, ∂/∂(u, θ, w) λᵀJd" {
                RosenbrockKernelTests.tangentAgrees cnnLine
                RosenbrockKernelTests.tangentAgrees cnnPlane
                RosenbrockKernelTests.tangentAgrees vorticity
                RosenbrockKernelTests.tangentAgrees screenedLine
                RosenbrockKernelTests.tangentAgrees KernelTests.climate
            }

            test "one Rodas4 step: the eager dense step's new state, its adjoint against differences and eager autograd" {
                RosenbrockKernelTests.stepAdjointAgrees cnnLine
                RosenbrockKernelTests.stepAdjointAgrees vorticity
                RosenbrockKernelTests.stepAdjointAgrees screenedLine
            }

            test
                "matrix-free on a 1-D grid, preconditioned by the local part of A: a stiff step as the dense one, in a few products per solve" {
                // The CNN line on 400 cells with D = 1 (D·4/Δx² = 6.4e5): at h = 0.01, γh|λ| ≈ 1.6e3.
                Engine.init ()
                use _ = torch.NewDisposeScope()
                use _ = torch.no_grad ()

                let model =
                    cnnLine
                    |> Model.withDomain (Domain.Interval(0.0, 1.0, 400))
                    |> fun m -> {
                        m with
                            Params =
                                m.Params
                                |> List.map (fun p -> if p.Name = "D" then { p with Value = 1.0 } else p)
                    }

                let sim = AdaptiveGridKernelTests.compileSplit false Backend.Eager model
                let plan = Lowering.lowerWith false (ResolvedSystem.ofModel model)
                let modules = RosenbrockKernelTests.modulesOf sim plan
                let matrixFree = RosenbrockStepper(plan, 1, modules, [||], 0)
                let dense = RosenbrockStepper(plan, 1, modules, [||])
                matrixFree.SolveTolerance <- 1e-12
                let values, thetaVector = Kernels.pack plan (sim.Initial 1) (sim.Theta())
                let stepper = matrixFree :> IStepper<float>
                let u = StateLayout.toFields stepper (values.data<float>().ToArray()) 0
                let theta = thetaVector.data<float>().ToArray()
                let next, expected = stepper.NewState(), stepper.NewState()
                stepper.Step(u, theta, 0.0, 0.01, next)
                (dense :> IStepper<float>).Step(u, theta, 0.0, 0.01, expected)
                let flat = StateLayout.ofFields stepper
                let a, b = flat next, flat expected
                let scale = b |> Array.map abs |> Array.max
                let d = Array.map2 (fun x y -> abs (x - y)) a b |> Array.max
                Expect.isLessThan (d / scale) 1e-9 "the dense step's new state"
                // Six solves; measured: 18 products (without the preconditioner: 3,998).
                Expect.isLessThan matrixFree.Products 100L $"{matrixFree.Products} products for six solves"
            }

            test
                "one Rodas4 step solved matrix-free (as above the dense limit): the eager dense step's new state, its adjoint against differences and eager autograd" {
                // The stepper's dense limit set to 0: BiCGSTAB with J v from the tangent plan and Jᵀw from the base
                // plan's adjoint, stopped at a relative residual of 1e-14, against the eager step's exact solves.
                let matrixFree = RosenbrockKernelTests.stepAdjointWithin 1e-11 1e-8 (Some 1e-14) 0
                matrixFree cnnLine
                matrixFree cnnPlane
                matrixFree vorticity
                matrixFree screenedLine
            }

            test "Rodas4 rollouts take the eager steps: values to 1e-10, gradients (u0, θ, weights) to 1e-8" {
                let rodas = RosenbrockKernelTests.rodas

                let agrees =
                    AdaptiveGridKernelTests.agreesWithin 1e-10 1e-8 (AdaptiveGridKernelTests.compileSplit false)

                agrees cnnLine (rodas 1e-6 0.01 [| 0.1; 0.3 |]) 4 false
                agrees cnnPlane (rodas 1e-6 0.01 [| 0.05; 0.2 |]) 4 false
                agrees vorticity (rodas 1e-6 0.01 [| 0.1; 0.25 |]) 4 false
            }

            test
                "Auto switches to Rodas4 on the kernels, near where the eager back end does, and agrees within the tolerance" {
                // `screenedLine` with D = 1 (D/Δx² = 256): Dopri5 turns stiff and runs at its stability limit, where
                // the step-size controller amplifies round-off (Dopri5 alone on both back ends: the same step counts,
                // values 6e-8 apart), so the two back ends switch a fraction of a step apart and their runs differ by
                // a fraction of the tolerance rather than by round-off.
                let stiff = {
                    screenedLine with
                        Params =
                            screenedLine.Params
                            |> List.map (fun p -> if p.Name = "D" then { p with Value = 1.0 } else p)
                }

                let o = {
                    RosenbrockKernelTests.rodas 1e-5 1e-3 [| 0.05; 0.2 |] with
                        Scheme = Scheme.Auto
                }

                let run (backend: Backend) =
                    let sim = AdaptiveGridKernelTests.compileSplit false backend stiff
                    let _, ran, steps, values, grads = AdaptiveGridKernelTests.runWithGradients sim o
                    ran, Rollout.lastAuto (), steps, values, grads

                let ranK, autoK, stepsK, valuesK, gradsK = run Backend.Auto
                let ranE, autoE, stepsE, valuesE, gradsE = run Backend.Eager
                Expect.equal (ranK, ranE) (Backend.Kernels, Backend.Eager) "the kernels ran Auto"
                Expect.stringContains autoK "then Rodas4" "the kernels switched"
                Expect.stringContains autoE "then Rodas4" "the eager back end switched"

                let switchTime (text: string) =
                    float ((text.Split("until t = ")[1]).Split([| ',' |])[0])

                let tk, te = switchTime autoK, switchTime autoE
                // A fraction of one step at the stability limit (h ≈ 3.3 Δx²/(4D) ≈ 3e-3).
                Expect.isLessThan (abs (tk - te)) 1e-4 $"switch times {tk} and {te}"
                Expect.equal stepsK stepsE "the same numbers of accepted and rejected steps"

                // Measured: values 1e-8, ∂L/∂u0 1.8e-5, ∂L/∂θ 7e-7, weights 5e-11.
                for f in 0 .. valuesK.Length - 1 do
                    let d = maxRelative valuesK[f] valuesE[f]
                    Expect.isLessThan d (0.1 * o.Tolerance.Relative) $"values of field {f} ({d:G3})"

                for g in 0 .. gradsK.Length - 1 do
                    let d = maxRelative gradsK[g] gradsE[g]
                    Expect.isLessThan d 1e-3 $"gradient {g} ({d:G3})"
            }

            test
                "above the dense limit (1,040 unknowns) the eager back end refuses Rodas4 and the kernels solve it matrix-free, within the tolerance of a tight Dopri5 run; stiff, in 33 steps where an explicit method needs about 200" {
                Engine.init ()
                use _ = torch.NewDisposeScope()
                use _ = torch.no_grad ()

                let sim =
                    AdaptiveGridKernelTests.compileSplit false Backend.Auto (vorticityOn 40 13)

                for scheme in [ Scheme.Rodas4; Scheme.Auto ] do
                    Expect.equal
                        (sim.BackendFor { rk4 with Scheme = scheme })
                        (Backend.Kernels, "")
                        $"{scheme} on the kernels"

                RosenbrockKernelTests.beyondDenseLimit sim (RosenbrockKernelTests.rodas 1e-6 0.01 [| 0.1; 0.25 |])

                // Stiff (ν = 2: ν·4/Δx² ≈ 1.3e4): with its J, Rodas4 steps past explicit stability (h·|λ| ≤ ~3, about
                // 200 steps to t = 0.05); with J left out, the solves are those of an explicit method and it could not (measured:
                // 31 accepted and 2 rejected steps; 1,727 and 8 with J v taken as 0).
                let stiff =
                    AdaptiveGridKernelTests.compileSplit
                        false
                        Backend.Auto
                        (vorticityOn 40 13
                         |> fun m -> {
                             m with
                                 Params =
                                     m.Params
                                     |> List.map (fun p -> if p.Name = "nu" then { p with Value = 2.0 } else p)
                         })

                RosenbrockKernelTests.beyondDenseLimit stiff (RosenbrockKernelTests.rodas 1e-5 0.001 [| 0.05 |])

                stiff.Simulate(stiff.Initial 1, RosenbrockKernelTests.rodas 1e-5 0.001 [| 0.05 |])
                |> ignore

                let accepted, rejected = Rollout.lastSteps ()

                Expect.isLessThan
                    (accepted + rejected)
                    60
                    $"steps past explicit stability ({accepted} accepted, {rejected} rejected)"
            }
        ]

        test
            "from 256 unknowns to the dense limit each Rodas4 step starts matrix-free: the eager dense run's steps, values to 1e-8 and gradients to 1e-7" {
            // vorticityOn 16 10: 320 unknowns, every solve within the budget (U/4 = 80 products a step; measured 63).
            // BiCGSTAB stops at a relative residual of 1e-9 (rtol 1e-6); the gradients sum its error over the
            // adjoint's transposed solves (measured 3.1e-8).
            let model = vorticityOn 16 10
            let o = RosenbrockKernelTests.rodas 1e-6 0.001 [| 0.05; 0.1 |]
            AdaptiveGridKernelTests.agreesWithin 1e-8 1e-7 (AdaptiveGridKernelTests.compileSplit false) model o 4 false
            let sim = AdaptiveGridKernelTests.compileSplit false Backend.Auto model

            let stepper =
                match sim.KernelsOf Scheme.Rodas4 with
                | Ok kernels -> kernels.Stepper 2 :?> RosenbrockStepper
                | Error why -> failwith why

            AdaptiveGridKernelTests.runWithGradients sim o |> ignore
            Expect.isGreaterThan stepper.Products 0L "solved matrix-free"
            Expect.equal stepper.Fallbacks 0L "within the budget"
        }

        test
            "a stiff step that runs out of the matrix-free budget forms A: the eager dense step's new state, its adjoint against differences and eager autograd" {
            // ν = 2 (ν·4/Δx² ≈ 2e3) and h = 0.05: BiCGSTAB to 1e-14 without a preconditioner needs more than the
            // budget, so the step forms A where it runs out; its stages before that were solved matrix-free (to 1e-14).
            let stiff =
                vorticityOn 16 10
                |> fun m -> {
                    m with
                        Params =
                            m.Params
                            |> List.map (fun p -> if p.Name = "nu" then { p with Value = 2.0 } else p)
                }

            let stepper =
                RosenbrockKernelTests.stepAdjointOn
                    1e-11
                    1e-8
                    (Some 1e-14)
                    (fun plan modules -> RosenbrockStepper(plan, 2, modules, [||]))
                    stiff

            Expect.isGreaterThan stepper.Products 0L "started matrix-free"
            Expect.isGreaterThan stepper.Fallbacks 0L "formed A"
        }

        test
            "ImexEuler, ImexCrankNicolson and KenCarp4 with and without implicit diffusion run a diagnostic field on the kernels: values and gradients as eager to 1e-10" {
            // Without implicit diffusion nothing is split, so the explicit kernels with their diagnostic solves take
            // the steps (Euler's, Heun's, KenCarp4's explicit tableau); with it, ν Δω and ν Δq are solved implicitly
            // (conjugate gradients to 1e-13 on both back ends) and the explicit part solves Δψ = ω. Fixed steps
            // report no step counts (minimum 0).
            for implicitDiffusion in [ false; true ] do
                let compile (backend: Backend) (m: Model) =
                    Compiler.compile
                        {
                            Compiler.defaults with
                                Backend = backend
                                Seed = 3
                                ImplicitDiffusion = implicitDiffusion
                        }
                        m

                for scheme in [ Scheme.ImexEuler; Scheme.ImexCrankNicolson; Scheme.KenCarp4 ] do
                    // KenCarp4's solves stop at a residual tied to its tolerance on the eager back end (at 1e-13 on
                    // the kernels): at rtol 1e-10 both stop at 1e-13 (at 1e-6 the values differ by 1.8e-9).
                    let tolerance =
                        if implicitDiffusion && scheme = Scheme.KenCarp4 then
                            { Relative = 1e-10; Absolute = 1e-13 }
                        else
                            rk4.Tolerance

                    AdaptiveGridKernelTests.agreesWithin
                        1e-10
                        1e-10
                        compile
                        vorticity
                        {
                            rk4 with
                                Scheme = scheme
                                Tolerance = tolerance
                        }
                        0
                        false
        }
    ]
