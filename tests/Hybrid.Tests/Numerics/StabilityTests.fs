/// Stability checks that know their cause: a decaying reaction against the scheme's stability region, an
/// advection term against the Courant limit (both before the first step), and fast growth named in the
/// blow-up error; on both back ends; the terms read from the expressions.
module Hybrid.Tests.Numerics.StabilityTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

let private u = Sym "u"

/// ∂u/∂t = D Δu + rate·u on [0, 1] (`cells` cells, no flux) from `initial`.
let private reactionWith (d: float) (rate: float) (cells: int) (initial: Expr) =
    Model.empty "reaction"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, cells))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" d with
            Constraint = Constraint.Positive
    }
    |> Model.addEquation "u" (Add(Mul(Sym "D", Laplacian u), Mul(Num rate, u)))
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
    |> Model.setInitial "u" (InitialCondition.Expr initial)

/// ∂u/∂t = D Δu + rate·u with D = 0.01 from u = 1.
let private reaction (rate: float) (cells: int) = reactionWith 0.01 rate cells (Num 1.0)

/// ∂u/∂t = −v ∂x(u) on [0, 1] (100 cells, Δx = 0.01, periodic), a bump at x = 0.5.
let private advection (v: float) =
    Model.empty "advection"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 100))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "v" v with
            Learnable = false
    }
    |> Model.addEquation "u" (Neg(Mul(Sym "v", Partial(Axis.X, u))))
    |> Model.setBoundaryAll "u" BoundaryCondition.Periodic
    |> Model.setInitial "u" (InitialCondition.Expr(Apply(Fn.Exp, Mul(Num -100.0, PowInt(Sub(Sym "x", Num 0.5), 2)))))

let private compileOn (backend: Backend) (m: Model) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
        }
        m

let private rollout (scheme: Scheme) (dt: float) (until: float) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = dt
        SaveTimes = [| until |]
}

let private simulate (sim: Simulator) (o: RolloutOptions) =
    use _ = torch.no_grad ()
    sim.Simulate(sim.Initial 1, o)

let private refusal (sim: Simulator) (o: RolloutOptions) : string =
    (Expect.throwsC (fun () -> simulate sim o |> ignore) id).Message

/// RK4's amplification factor for du/dt = λu over one step: 1 + z + z²/2 + z³/6 + z⁴/24, z = λΔt.
let private rk4Factor (z: float) =
    1.0 + z + z * z / 2.0 + z * z * z / 6.0 + z * z * z * z / 24.0

/// A damped stiff oscillator whose diagonal is mild: ∂u/∂t = −u + 1000 v, ∂v/∂t = −1000 u − v (an ODE, u = 1,
/// v = 0): each equation's own rate is −1, the coupling gives λ = −1 ± 1000i.
let private stiffOscillator =
    let v = Sym "v"

    Model.empty "stiff-oscillator"
    |> Model.addField (Model.field "u")
    |> Model.addField (Model.field "v")
    |> Model.addEquation "u" (Add(Neg u, Mul(Num 1000.0, v)))
    |> Model.addEquation "v" (Sub(Neg(Mul(Num 1000.0, u)), v))
    |> Model.setInitial "u" (InitialCondition.Expr(Num 1.0))
    |> Model.setInitial "v" (InitialCondition.Expr(Num 0.0))

/// RK4's amplification |R(z)| for complex z, written out (independent of the library's tableau).
let private rk4Complex (z: Numerics.Complex) =
    (1.0 + z + z * z / 2.0 + z * z * z / 6.0 + z * z * z * z / 24.0).Magnitude

let tests =
    testList "Stability by cause" [
        test
            "stability polynomials from the tableaux: RK4's is 1 + z + z²/2 + z³/6 + z⁴/24, and |R| = 1 at each real radius" {
            let near (expected: float[]) (scheme: Scheme) =
                let actual = Integrators.stabilityPolynomial scheme
                Expect.equal actual.Length expected.Length $"{scheme}: degree"

                Array.iter2
                    (fun a e -> Expect.floatClose Accuracy.veryHigh a e $"{scheme}: coefficients")
                    actual
                    expected

            near [| 1.0; 1.0; 0.5; 1.0 / 6.0; 1.0 / 24.0 |] Scheme.Rk4
            near [| 1.0; 1.0; 0.5 |] Scheme.Heun
            near [| 1.0; 1.0 |] Scheme.ImexEuler

            for scheme in [ Scheme.Euler; Scheme.Heun; Scheme.SspRk3; Scheme.Rk4 ] do
                let z = Numerics.Complex(-Integrators.realStabilityRadius scheme, 0.0)

                Expect.floatClose
                    { absolute = 2e-4; relative = 0.0 }
                    (Integrators.amplification scheme z)
                    1.0
                    $"{scheme}"

            let z = Numerics.Complex(-0.3, 2.1)
            Expect.floatClose Accuracy.veryHigh (Integrators.amplification Scheme.Rk4 z) (rk4Complex z) "complex z"
        }

        test
            "a stiff coupled system with a mild diagonal is refused by the one-step probe, naming the mode, the coupling, the limit and the fix" {
            for backend in [ Backend.Eager; Backend.Kernels ] do
                let sim = compileOn backend stiffOscillator
                let message = refusal sim (rollout Scheme.Rk4 0.01 1.0)

                Expect.stringStarts
                    message
                    "The coupled pointwise part of ∂u/∂t, ∂v/∂t has a mode with eigenvalue λ = -1 ± 1000i at the start (largest entries of its local Jacobian there: ∂(∂u/∂t)/∂v = 1000, ∂(∂v/∂t)/∂u = -1000, ∂(∂u/∂t)/∂u = -1): with Δt = 0.01, |λ|·Δt = 10 lies outside the stability region of Rk4"
                    $"the message on {backend}"
        }

        test
            "the probe's limit is where RK4 starts to amplify the mode by more than 5%: just below runs and decays, above is refused" {
            let sim = compileOn Backend.Eager stiffOscillator
            let lambda = Numerics.Complex(-1.0, 1000.0)

            // The limit found independently: scan Δt for the first |R(λΔt)| above 1.05 (e^(Re λΔt) < 1 here).
            let limit =
                Seq.initInfinite (fun i -> 1e-7 * float i)
                |> Seq.find (fun dt -> rk4Complex (lambda * Numerics.Complex(dt, 0.0)) > 1.05)

            // RK4 is stable up to |z| = 2√2 on the imaginary axis; a 5% excess lies a little beyond.
            Expect.isTrue (limit > 2.828e-3 && limit < 3.2e-3) $"the limit {limit} is just beyond 2√2/1000"
            let message = refusal sim (rollout Scheme.Rk4 (limit * 1.02) (limit * 102.0))

            let stated =
                Text.RegularExpressions.Regex.Match(message, @"Use Dt ≤ ([0-9.e-]+)").Groups[1].Value

            Expect.floatClose { absolute = 0.0; relative = 1e-3 } (float stated) limit "the limit stated"

            // Below the strict limit 2√2/1000 it runs, and RK4 damps the oscillation: the matrix is normal and
            // both modes have |R(z)|, so after N steps |u|² + |v|² = |R(z)|^(2N) exactly (N = 100, z = λ·0.0025).
            let values = simulate sim (rollout Scheme.Rk4 2.5e-3 0.25)

            let energy =
                values.Values[0].square().sum().ToDouble()
                + values.Values[1].square().sum().ToDouble()

            let expected = rk4Complex (lambda * Numerics.Complex(2.5e-3, 0.0)) ** 200.0
            Expect.floatClose { absolute = 0.0; relative = 1e-6 } energy expected "|R(z)|^(2N)"
        }

        test "a closure's pointwise rate is probed too: ∂u/∂t = R(u) with R(u) = −1000 u is refused at Δt = 0.01" {
            let sim =
                Model.empty "closure-decay"
                |> Model.addField (Model.field "u")
                |> Model.addClosure {
                    Name = "R"
                    Arity = 1
                    Architecture = Architecture.Mlp([ 1; 1 ], Hybrid.Activation.Tanh)
                    Units = None
                }
                |> Model.addEquation "u" (Call("R", [ u ]))
                |> Model.setInitial "u" (InitialCondition.Expr(Num 1.0))
                |> compileOn Backend.Eager

            do
                use _ = torch.no_grad ()

                for struct (name, p) in (snd sim.Modules[0]).named_parameters () do
                    if name.EndsWith "weight" then
                        p.fill_ -1000.0 |> ignore
                    else
                        p.zero_ () |> ignore

            let message = refusal sim (rollout Scheme.Rk4 0.01 1.0)

            Expect.stringStarts
                message
                "The pointwise part of ∂u/∂t (closures included) has a mode with eigenvalue λ = -1000 at the start"
                "the closure's rate"

            Expect.stringContains message "Use Dt ≤ 0.002" "a limit near RK4's 2.785/1000"
        }

        test "the terms are read from the expressions: advection speeds and pointwise rates with their signs" {
            let v = Sym "v"
            let fields = [| "u"; "w" |]

            let rhs =
                Sub(
                    Add(Neg(Mul(v, Partial(Axis.X, u))), Mul(Num 1000.0, u)),
                    Add(Mul(u, Partial(Axis.Y, u)), Mul(Sym "w", PowInt(u, 2)))
                )

            let terms = Expr.signedTerms rhs

            let speeds =
                StabilityTerms.speeds fields terms
                |> List.map (fun s -> s.Term, s.Axis, s.Speed)

            Expect.equal
                speeds
                [ "−v ∂x(u)", 0, v; "−u ∂y(u)", 1, u ]
                "−v ∂x(u) moves at v along x, −u ∂y(u) at u along y"

            let rates =
                StabilityTerms.rates "u" terms
                |> List.map (fun r -> r.Term, Symbolic.eval (Map [ "u", 3.0; "w", 2.0 ]) r.Rate)

            // ∂(1000 u)/∂u = 1000; ∂(−w u²)/∂u = −2 w u = −12 at u = 3, w = 2. The advection terms are not pointwise.
            Expect.equal rates [ "1000 u", 1000.0; "−w u²", -12.0 ] "pointwise terms and their signed rates"
        }

        test "diffusion terms are read from the expressions: D Δu and ∇·(D(1 + u²)∇u), linear and nonlinear" {
            let d = Sym "D"
            let k = Mul(d, Add(Num 1.0, PowInt(u, 2)))
            let rhs = Add(Mul(d, Laplacian u), Divergence(Mul(k, Grad u)))

            let found =
                StabilityTerms.diffusions [| "u" |] (Expr.signedTerms rhs)
                |> List.map (fun t -> t.Term, Symbolic.eval (Map [ "D", 0.5; "u", 2.0 ]) t.Diffusivity, t.Nonlinear)

            // D = 0.5; D(1 + u²) = 2.5 at u = 2.
            Expect.equal
                found
                [ "D Δu", 0.5, false; "∇·(D (1 + u²) ∇u)", 2.5, true ]
                "terms, diffusivities, nonlinearity"
        }

        test "a diffusion limit names the diffusion term" {
            let bump = Apply(Fn.Exp, Mul(Num -40.0, PowInt(Sub(Sym "x", Num 0.3), 2)))
            let sim = compileOn Backend.Eager (reactionWith 10.0 1.0 8 bump)
            let message = refusal sim (rollout Scheme.Rk4 0.01 1.0)

            // RK4: Δt ≤ 2.7853 / (4 · 10 · 64) = 0.001088 on 8 cells of [0, 1].
            Expect.equal
                message
                "Δt = 0.01 is above the stability limit of Rk4 for the current parameters (diffusivity 10, speed 0; the fastest diffusion is 'D Δu' of ∂u/∂t, diffusivity 10): the largest stable Δt is 0.001088. Use Dt ≤ 0.001088, or for stiff diffusion an IMEX scheme with implicit diffusion (CompileOptions.ImplicitDiffusion): Scheme.KenCarp4 (adaptive), ImexEuler or ImexCrankNicolson, or Scheme.Rodas4 (adaptive and stiff)."
                "names the term and its diffusivity"
        }

        test
            "a reaction that decays too fast for RK4 is refused before the first step, naming the term, the rate, the limit and the fix" {
            for backend in [ Backend.Eager; Backend.Kernels ] do
                let sim = compileOn backend (reaction -1000.0 8)
                let message = refusal sim (rollout Scheme.Rk4 0.01 1.0)

                Expect.equal
                    message
                    "The pointwise (reaction) part of ∂u/∂t decays at rate |λ| = 1000 at the start ('−1000 u' (λ down to -1000); λ = ∂/∂u of these terms): with Δt = 0.01, |λ|·Δt = 10 is above the stability limit 2.785 of Rk4 along the negative real axis. Use Dt ≤ 0.002785, or a stiff scheme: Scheme.Rodas4, or Scheme.Auto (Dopri5 switching to Rodas4 where the problem turns stiff); if that rate is not meant, check the terms' coefficients and units."
                    $"the message on {backend}"
        }

        test
            "the reaction limit is the scheme's stability radius: just above it is refused, just below it runs as RK4 should" {
            let sim = compileOn Backend.Eager (reaction -1000.0 8)
            // RK4's real stability radius 2.7853 over |λ| = 1000.
            let above = refusal sim (rollout Scheme.Rk4 0.00279 0.0279)
            Expect.stringContains above "Use Dt ≤ 0.002785" "refused just above 2.7853/1000"
            let euler = refusal sim (rollout Scheme.Euler 0.00201 0.0201)
            Expect.stringContains euler "is above the stability limit 2 of Euler" "Euler's radius is 2"

            // Δt = 0.0025: z = −2.5 inside the region; u stays uniform, so Δu = 0 and u(t) = R(z)^steps exactly.
            let values = (simulate sim (rollout Scheme.Rk4 0.0025 0.01)).Values[0]
            let expected = rk4Factor -2.5 ** 4.0

            Expect.floatClose
                Accuracy.veryHigh
                (values.mean().ToDouble())
                expected
                "four RK4 steps of z = −2.5 give R(z)⁴ = 0.6484⁴"
        }

        test
            "∂u/∂t = D Δu + 1000 u with RK4 at Δt = 0.01: the blow-up error names the growing term, its rate, the limit and the fix" {
            for backend in [ Backend.Eager; Backend.Kernels ] do
                let sim = compileOn backend (reaction 1000.0 8)
                let message = refusal sim (rollout Scheme.Rk4 0.01 1.0)
                Expect.stringContains message "Field 'u' is blowing up: max |u| = " $"the blow-up on {backend}"

                // e^(1000·1) = 10^(1000 / ln 10) = 10^434.3.
                Expect.stringContains
                    message
                    "The pointwise (reaction) part of ∂u/∂t grows at rate λ = 1000 at the start ('1000 u' (λ up to 1000)): the solution grows like e^(λt), by a factor of about 10^434.3 over the span of 1. Δt = 0.01 does not resolve that growth either: λ·Δt = 10 is above 2.785 for Rk4 (Dt ≤ 0.002785 would). If that rate is not meant, check the terms' signs, coefficients and units; if it is, shorten the span or raise Rollout.maxMagnitude."
                    $"the cause on {backend}"
        }

        test "slow growth is no cause: a diffusion blow-up of ∂u/∂t = D Δu + u names no growing term" {
            // D = 10 on 8 cells: RK4 needs Δt ≤ 2.785 / (4·10·64) = 0.00109; at Δt = 0.01 (only warned about) the
            // diffusion blows up, while the reaction grows by e^1 over the span: no cause of the blow-up.
            let bump = Apply(Fn.Exp, Mul(Num -40.0, PowInt(Sub(Sym "x", Num 0.3), 2)))
            let sim = compileOn Backend.Eager (reactionWith 10.0 1.0 8 bump)

            let message =
                refusal sim {
                    rollout Scheme.Rk4 0.01 1.0 with
                        OnUnstable = OnUnstable.Warn
                }

            Expect.stringContains message "Field 'u' is blowing up" "the unstable diffusion blows up"
            Expect.isFalse (message.Contains "grows at rate") "no growing term is named as the cause"

            let growing =
                refusal (compileOn Backend.Eager (reaction 1000.0 8)) (rollout Scheme.Rk4 0.01 1.0)

            Expect.stringContains growing "grows at rate λ = 1000" "while a fast-growing term is named"
        }

        test
            "∂u/∂t = −v ∂x(u) at CFL = 100 is refused before the first step, naming the term, the CFL number, its limit and the fix" {
            for backend in [ Backend.Eager; Backend.Kernels ] do
                let sim = compileOn backend (advection 100.0)
                let message = refusal sim (rollout Scheme.Rk4 0.01 1.0)

                Expect.equal
                    message
                    "The advection term '−v ∂x(u)' of ∂u/∂t moves at speed 100 along x: with Δt = 0.01 and Δx = 0.01 its CFL number |speed|·Δt/Δx = 100 is above the stability limit 1 of explicit schemes (Rk4). Use Dt ≤ 0.0001, or Scheme.Dopri5 (adaptive: steps chosen by an error estimate); if that speed is not meant, check the velocity's value and units."
                    $"the message on {backend}"
        }

        test "the Courant limit is 1: CFL 1.01 is refused, CFL 0.99 runs and moves the bump" {
            let sim = compileOn Backend.Eager (advection 1.0)
            let above = refusal sim (rollout Scheme.Rk4 0.0101 0.0101)

            Expect.stringContains
                above
                "its CFL number |speed|·Δt/Δx = 1.01 is above the stability limit 1"
                "refused at CFL 1.01"

            // 20 steps of CFL 0.99 at v = 1 move the bump's centre of mass from 0.5 to 0.5 + 0.198.
            let o = rollout Scheme.Rk4 0.0099 0.198
            let values = (simulate sim o).Values[0].reshape ([| -1L |])
            let x = torch.linspace (0.005, 0.995, 100L, dtype = torch.ScalarType.Float64)
            let centre = (values * x).sum().ToDouble() / values.sum().ToDouble()
            Expect.floatClose { absolute = 2e-3; relative = 0.0 } centre 0.698 "the bump moved by v·t = 0.198"
        }
        test "J(ψ, q) and ∂y(ψ) ∂x(ω) of a diagnostic streamfunction: refused at CFL 1.05, run at 0.95, naming the term" {
            // ω = 20 sin x sin y on 16² cells of [0, 2π]²: ψ = ω/λₕ (λₕ = −2(2 − 2cos h)/h², Δₕ's eigenvalue), so the
            // velocity's largest component is 20 max|sin x| max|cos y| (sin h/h)/|λₕ| at the cell centres.
            let n = 16
            let h = 2.0 * Math.PI / float n
            let lambda = 2.0 * (2.0 - 2.0 * cos h) / (h * h)
            let centre = sin (3.5 * h)
            let speed = 20.0 * centre * centre * (sin h / h) / lambda
            let limit = h / speed

            let g4 (v: float) =
                v.ToString("G4", Globalization.CultureInfo.InvariantCulture)

            let side = (2.0 * Math.PI).ToString("R", Globalization.CultureInfo.InvariantCulture)

            // Each form with the terms (and axes) that may be named: both axes have the same speed and limit.
            for advection, named in
                [
                    "−J(psi, omega)", [ "−J(psi, omega)", "x"; "−J(psi, omega)", "y" ]
                    "∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega)", [ "∂y(psi) ∂x(omega)", "x"; "−∂x(psi) ∂y(omega)", "y" ]
                ] do
                let sim =
                    Parse.model (
                        String.concat "\n" [
                            "model vorticity"
                            $"domain rectangle [0, {side}] x [0, {side}] cells {n} x {n}"
                            "field omega"
                            "field psi diagnostic"
                            "param nu = 0.01"
                            $"∂omega/∂t = {advection} + nu Δomega"
                            "Δpsi = omega"
                            "boundary omega periodic"
                            "boundary psi periodic"
                            "initial omega = 20 sin(x) sin(y)"
                        ]
                    )
                    |> compileOn Backend.Eager

                let message = refusal sim (rollout Scheme.Rk4 (1.05 * limit) (2.0 * limit))

                let expected (term: string, axis: string) =
                    $"The advection term '{term}' of ∂omega/∂t moves at speed {g4 speed} along {axis}: with Δt = {g4 (1.05 * limit)} and Δ{axis} = {g4 h} its CFL number |speed|·Δt/Δ{axis} = 1.05 is above the stability limit 1 of explicit schemes (Rk4). Use Dt ≤ {g4 limit}, or Scheme.Dopri5"

                Expect.isTrue
                    (named |> List.exists (fun n -> message.StartsWith(expected n)))
                    $"{advection}: refused, naming a term; expected e.g.\n{expected named.Head}\ngot\n{message}"

                let tr = simulate sim (rollout Scheme.Rk4 (0.95 * limit) (1.9 * limit))
                Expect.isTrue (tr.Values[0].isfinite().all().ToBoolean()) $"{advection}: runs at CFL 0.95"
        }

        test "advectFlux above the Courant limit: the message names the term and the positivity bound ½" {
            let sim =
                Parse.model (
                    String.concat "\n" [
                        "model tracer"
                        "domain interval [0, 1] cells 100"
                        "field q"
                        "param v = 10 fixed"
                        "∂q/∂t = −advectFlux(v, q)"
                        "boundary q periodic"
                        "initial q = exp(−100 (x − 0.5)²)"
                    ]
                )
                |> compileOn Backend.Eager

            let message = refusal sim (rollout Scheme.Heun 0.01 0.02)

            // Stability: Δt ≤ Δx/|v| = 0.001; positivity: Δt ≤ ½ Δx/|v| = 0.0005.
            Expect.stringStarts
                message
                "Δt = 0.01 is above the stability limit of Heun for the current parameters (diffusivity 0, speed 10; the fastest advection is '−advectFlux(v, q)' of ∂q/∂t, speed 10 along x): the largest stable Δt is 0.001."
                "names the fastest advection term"

            Expect.stringEnds
                message
                "advectFlux keeps its tracer ≥ 0 only at Courant numbers Δt·Σₐ max|vₐ|/Δₐ ≤ 0.5 (with Scheme.Euler, Heun or SspRk3): Dt ≤ 0.0005 for that."
                "and the positivity bound"
        }
    ]
