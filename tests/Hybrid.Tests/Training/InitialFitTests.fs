/// Parameters that appear in `initial` lines are trained like any other: the gradient of a loss reaches them
/// through `Simulator.Initial` on both back ends (checked against central differences in float64), and twin
/// experiments recover an initial amplitude (Fisher–KPP) and an initial state (Lotka–Volterra's hare₀ and
/// lynx₀) within 3 standard errors of the truth, on the eager and the kernel path.
module Hybrid.Tests.Training.InitialFitTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Tests.Training.Twins

/// Fisher–KPP whose initial bump has a learnable amplitude A.
let private fisherAmplitude =
    Parse.model
        """
model fisher_amplitude
domain interval [0, 1] cells 16
field u
param D > 0 = 0.01
param r > 0 = 2
param A > 0 = 0.6
∂u/∂t = D Δu + r u (1 − u)
boundary u noflux
initial u = 0.1 + A exp(−100 (x − 0.3)²)
"""

/// Lotka–Volterra whose start state (hare₀, lynx₀) is a pair of learnable parameters.
let private lotkaVolterraStart =
    Parse.model
        """
model lotka_volterra_start
domain point
field H
field L
param alpha > 0 = 0.55
param beta > 0 = 0.028
param gamma > 0 = 0.84
param delta > 0 = 0.026
param H0 > 0 = 30
param L0 > 0 = 4
∂H/∂t = alpha H − beta H L
∂L/∂t = delta H L − gamma L
initial H = H0
initial L = L0
"""

let private amplitudeTwin path =
    twin fisherAmplitude [ "D"; "r"; "A" ] 0.03125 32 8 false 0.01 path

let private startTwin path =
    twin lotkaVolterraStart [ "alpha"; "beta"; "gamma"; "delta"; "H0"; "L0" ] 0.1 20 2 true 0.05 path

/// ∂L/∂raw of the parameter `name` by autograd through `Initial` and `Simulate`, against a central difference
/// of the loss in the raw value (float64).
let private gradientCheck (label: string) (make: TwinPath -> Twin) (name: string) (path: TwinPath) =
    test $"{label}, {path} path: ∂loss/∂{name} through the initial condition matches central differences" {
        let t = make path
        use gen = new torch.Generator(7UL)
        let data = t.Noisy gen
        setAll t 0.9
        let p = t.Fit.Param name
        let loss () = (square (t.Residuals data ())).mean ()

        for q in t.Fit.Trainable() do
            q.grad <- null

        (loss ()).backward ()
        let analytic = p.Raw.grad.ToDouble()
        let raw0 = p.Raw.ToDouble()
        let h = 1e-6

        let at (v: float) =
            use _ = torch.no_grad ()
            p.Raw.copy_ (torch.tensor (v, dtype = torch.ScalarType.Float64)) |> ignore
            (loss ()).ToDouble()

        let numeric = (at (raw0 + h) - at (raw0 - h)) / (2.0 * h)
        at raw0 |> ignore
        Expect.isGreaterThan (abs numeric) 1e-6 $"the loss depends on {name}"
        Expect.floatClose { absolute = 1e-9; relative = 1e-5 } analytic numeric $"∂loss/∂{name}"
    }

/// Fits every parameter of the twin (the initial ones included) by default L-BFGS from `scale`× the truth; each
/// estimate must lie within 3 standard errors (Gauss–Newton at the optimum) of the truth, and the initial
/// parameters must have moved from their start by more than 5 standard errors (so a fit that ignores them fails).
let private recovers (label: string) (make: TwinPath -> Twin) (initialNames: string list) (scale: float) path =
    test $"{label}, {path} path: L-BFGS from {scale}× the truth recovers the initial parameters within 3 SE" {
        let t = make path
        use gen = new torch.Generator(20261204UL)
        let data = t.Noisy gen
        let _, estimate = fitFrom t data scale
        let cov = Covariance.gaussNewton (t.Residuals data) (parameters t)

        t.Names
        |> List.iteri (fun k n ->
            let se = cov.StandardErrors[k]

            Expect.isLessThanOrEqual
                (abs (estimate[k] - t.Truth[n]))
                (3.0 * se)
                $"{n} = {estimate[k]:G6}: within 3 standard errors ({se:G3}) of {t.Truth[n]}"

            if List.contains n initialNames then
                Expect.isGreaterThan
                    (abs (estimate[k] - scale * t.Truth[n]))
                    (5.0 * se)
                    $"{n} moved from its start {scale * t.Truth[n]}")
    }

let tests =
    testSequenced
    <| testList "InitialFit" [
        test "Initial carries the graph to a parameter used in an initial line" {
            let sim = Compiler.compile Compiler.defaults fisherAmplitude
            let u0 = sim.Initial 1
            Expect.isTrue u0[0].requires_grad "the initial state requires grad"
            (u0[0].sum ()).backward ()
            let a = sim.Param "A"
            // u0 = 0.1 + A·g(x), so ∂Σu0/∂A = Σ g(x) and ∂/∂raw = that · dA/draw (softplus: sigmoid(raw)).
            let x = Grid.coordinate sim.Grid 0 torch.ScalarType.Float64
            let g = torch.exp (-100.0 .* square (x .- 0.3))

            let expected = (g.sum ()).ToDouble() * (torch.sigmoid (a.Raw.detach ())).ToDouble()

            Expect.floatClose { absolute = 1e-12; relative = 1e-10 } (a.Raw.grad.ToDouble()) expected "∂Σu0/∂raw(A)"
        }
        gradientCheck "Fisher–KPP amplitude" amplitudeTwin "A" Eager
        gradientCheck "Fisher–KPP amplitude" amplitudeTwin "A" Kernel
        gradientCheck "Lotka–Volterra start" startTwin "H0" Eager
        gradientCheck "Lotka–Volterra start" startTwin "L0" Kernel
        recovers "Fisher–KPP amplitude" amplitudeTwin [ "A" ] 0.5 Eager
        recovers "Fisher–KPP amplitude" amplitudeTwin [ "A" ] 0.5 Kernel
        recovers "Lotka–Volterra start" startTwin [ "H0"; "L0" ] 0.5 Eager
        recovers "Lotka–Volterra start" startTwin [ "H0"; "L0" ] 0.5 Kernel
    ]
