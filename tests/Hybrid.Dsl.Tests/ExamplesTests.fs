/// The catalogue models: each written with the builder and as text (Unicode and ASCII, by hand), equal,
/// printing back, and passing checks.
module Hybrid.Dsl.Tests.ExamplesTests

open Expecto
open Hybrid

/// Hand-written text forms: (model, Unicode text, ASCII text).
let texts: (Model * string * string) list = [
    Examples.tumour,
    """
model tumour
domain interval [0, 10] cells 128
field u                       // tumour cell density
param D > 0 = 0.05            // diffusivity, learnable, kept > 0
param r > 0 = 1
closure kill/2 = mlp [2, 32, 32, 1]
forcing c                     // drug concentration, given as data
∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u
boundary u noflux
initial u = exp(−(x − 5)²)
""",
    """
model tumour; domain interval [0, 10] cells 128
field u; param D = 0.05 positive; param r = 1.0 positive
closure kill/2 = mlp [2, 32, 32, 1] tanh; forcing c
du/dt = div(D*grad(u)) + r*u*(1 - u) - kill(u, c)*u
boundary u noflux; initial u = exp(-(x - 5)^2)
"""

    Examples.fisherKpp,
    """
model fisher_kpp
domain interval [0, 1] cells 200
field u [1]
param D > 0 = 1e-4 [m^2/s]
param r > 0 = 1 [1/s]
∂u/∂t = D Δu + r u (1 − u)
boundary u left dirichlet 1
boundary u right dirichlet 0
initial u = sigmoid(−50 (x − 0.1))
""",
    """
model fisher_kpp; domain interval [0, 1] cells 200; field u [1]
param D = 0.0001 positive [m^2 s^-1]; param r = 1 positive [s^-1]
du/dt = D*lap(u) + r*u*(1 - u)
boundary u left dirichlet 1; boundary u right dirichlet 0
initial u = sigmoid(-50*(x - 0.1))
"""

    Examples.grayScott,
    """
model gray_scott
domain rectangle [0, 1] x [0, 1] cells 64 x 64
field u; field v
param Du > 0 = 2e-5; param Dv > 0 = 1e-5
param F = 0.04 in [0, 0.1]; param k = 0.06 in [0, 0.1]
∂u/∂t = Du ∇²u − u v² + F (1 − u)
∂v/∂t = Dv Δv + u v² − (F + k) v
boundary u periodic; boundary v periodic
initial u = 1 − 0.5 exp(−(((x − 0.5)² + (y − 0.5)²)/0.01))
initial v = 0.25 exp(−(((x − 0.5)² + (y − 0.5)²)/0.01))
""",
    """
model gray_scott
domain rectangle [0, 1] x [0, 1] cells 64 x 64
field u
field v
param Du = 2e-5 positive
param Dv = 1e-5 positive
param F = 0.04 in [0, 0.1]
param k = 0.06 in [0, 0.1]
du/dt = Du*lap(u) - u*v^2 + F*(1 - u)
dv/dt = Dv*lap(v) + u*v^2 - (F + k)*v
boundary u periodic
boundary v periodic
initial u = 1 - 0.5*exp(-(((x - 0.5)^2 + (y - 0.5)^2)/0.01))
initial v = 0.25*exp(-(((x - 0.5)^2 + (y - 0.5)^2)/0.01))
"""

    Examples.lotkaVolterra,
    """
model lotka_volterra
field H; field L
param alpha > 0 = 0.55; param beta > 0 = 0.028; param gamma > 0 = 0.84; param delta > 0 = 0.026
∂H/∂t = alpha H − beta H L
∂L/∂t = delta H L − gamma L
initial H = 30; initial L = 4
""",
    """
model lotka_volterra; domain point
field H; field L
param alpha = 0.55 positive; param beta = 0.028 positive
param gamma = 0.84 positive; param delta = 0.026 positive
dH/dt = alpha*H - beta*H*L; dL/dt = delta*H*L - gamma*L
initial H = 30; initial L = 4
"""

    Examples.pharmacokinetics,
    """
model pk_oral
domain point
field A [mg]; field C [mg/L]
param ka > 0 = 1.5 [1/h]; param ke > 0 = 0.08 [1/h]; param V > 0 = 30 [L]
forcing dose [mg/h]
∂A/∂t = dose − ka A
∂C/∂t = ka A/V − ke C
initial A = 320; initial C = 0
""",
    """
model pk_oral
field A [mg]
field C [mg L^-1]
param ka = 1.5 positive [h^-1]
param ke = 0.08 positive [h^-1]
param V = 30 positive [L]
forcing dose [mg/h]
dA/dt = dose - ka*A
dC/dt = ka*A/V - ke*C
initial A = 320
initial C = 0
"""

    Examples.lorenz96,
    """
model lorenz96
domain lattice 36 x 10
field X; field Y fast
const F = 10; const h = 1; const c = 10; const b = 10
∂X/∂t = (X[k+1] − X[k−2]) X[k−1] − X + F − h c/b Σ_j(Y)
∂Y/∂t = −c b Y[j+1] (Y[j+2] − Y[j−1]) − c Y + h c/b X
initial X = F + sin(x)
initial Y = 0.01 cos(x)
""",
    """
model lorenz96; domain lattice 36 x 10
field X; field Y fast
const F = 10; const h = 1; const c = 10; const b = 10
dX/dt = (X[k+1] - X[k-2])*X[k-1] - X + F - h*c/b*sum_j(Y)
dY/dt = -c*b*Y[j+1]*(Y[j+2] - Y[j-1]) - c*Y + h*c/b*X
initial X = F + sin(x); initial Y = 0.01*cos(x)
"""
]

let tests =
    testList "Examples" [
        for m, unicode, ascii in texts do
            testList m.Name [
                test "passes checks" { Expect.isEmpty (Checks.problems m) "no problems" }
                test "Unicode text parses to the builder's model" {
                    Expect.equal (Parse.model unicode) m "same Model value"
                }
                test "ASCII text parses to the builder's model" {
                    Expect.equal (Parse.model ascii) m "same Model value"
                }
                test "prints back (Unicode, ASCII) and parses to the same model" {
                    Expect.equal (Parse.model (Print.model Notation.Unicode m)) m "Unicode round trip"
                    Expect.equal (Parse.model (Print.model Notation.Ascii m)) m "ASCII round trip"
                }
                test "prints to LaTeX" {
                    let latex = Print.model Notation.Latex m
                    Expect.stringContains latex "\\frac{\\partial" "time derivative"
                    Expect.stringContains latex "\\begin{aligned}" "aligned block"
                }
            ]

        test "printed models match the golden files (tests/Hybrid.Dsl.Tests/golden)" {
            // To accept a deliberate change of the printed form, delete the golden files and run the tests once.
            let dir = System.IO.Path.Combine(__SOURCE_DIRECTORY__, "golden")

            for m in Examples.all do
                for n, ext in
                    [
                        Notation.Unicode, "unicode"
                        Notation.Ascii, "ascii"
                        Notation.Latex, "latex"
                    ] do
                    let path = System.IO.Path.Combine(dir, sprintf "%s.%s.txt" m.Name ext)
                    let printed = Print.model n m

                    if not (System.IO.File.Exists path) then
                        System.IO.Directory.CreateDirectory dir |> ignore
                        System.IO.File.WriteAllText(path, printed)

                    Expect.equal printed (System.IO.File.ReadAllText path) path
        }

        test "the tumour model prints the DESIGN.md equation" {
            Expect.equal
                (Print.equation Notation.Unicode Examples.tumour.Equations.Head)
                "∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u"
                "Unicode"

            Expect.equal
                (Print.equation Notation.Ascii Examples.tumour.Equations.Head)
                "du/dt = div(D*grad(u)) + r*u*(1 - u) - kill(u, c)*u"
                "ASCII"

            Expect.equal
                (Print.equation Notation.Latex Examples.tumour.Equations.Head)
                "\\frac{\\partial u}{\\partial t} = \\nabla\\cdot \\left(D \\, \\nabla u\\right) + r \\, u \\, \\left(1 - u\\right) - \\mathrm{kill}\\left(u, c\\right) \\, u"
                "LaTeX"
        }

        test "the Gray–Scott model has two fields, a 2-D domain and periodic sides" {
            let m = Examples.grayScott
            Expect.equal (m.Fields |> List.map (fun f -> f.Name)) [ "u"; "v" ] "fields"
            Expect.equal m.Domain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, 64, 64)) "domain"
            Expect.equal m.Boundaries.Length 8 "4 sides × 2 fields"

            Expect.isTrue (m.Boundaries |> List.forall (fun b -> b.Condition = BoundaryCondition.Periodic)) "periodic"
        }

        test "symbol kinds resolve through the declarations" {
            let m = Examples.lorenz96
            Expect.equal (Model.kindOf "X" m) (Some SymbolKind.Field) "slow field"
            Expect.equal (Model.kindOf "Y" m) (Some SymbolKind.FastField) "fast field"
            Expect.equal (Model.kindOf "F" m) (Some SymbolKind.Constant) "constant"
            Expect.equal (Model.kindOf "t" m) (Some SymbolKind.Coordinate) "time"
            Expect.equal (Model.kindOf "kill" Examples.tumour) (Some SymbolKind.Closure) "closure"
            Expect.equal (Model.kindOf "c" Examples.tumour) (Some SymbolKind.Forcing) "forcing"
            Expect.equal (Model.kindOf "D" Examples.tumour) (Some SymbolKind.Parameter) "parameter"
            Expect.equal (Model.kindOf "nope" m) None "undeclared"
        }

        test "Lorenz-96 uses the fast sum and fast shifts" {
            let m = Examples.lorenz96
            Expect.equal m.Domain (Domain.Lattice(36, 10)) "K = 36, J = 10"
            let slow = (Model.tryEquation "X" m).Value.Rhs
            let fast = (Model.tryEquation "Y" m).Value.Rhs
            Expect.contains (Expr.subterms slow) (FastSum(Sym "Y")) "Σ_j Y"
            Expect.contains (Expr.subterms slow) (Shift("X", LatticeIndex.K, -2)) "X[k-2]"
            Expect.contains (Expr.subterms fast) (Shift("Y", LatticeIndex.J, 2)) "Y[j+2]"
        }

        test "the builder and the programmatic API build the same value" {
            let byHand =
                Model.empty "lotka_volterra"
                |> Model.addField (Model.field "H")
                |> Model.addField (Model.field "L")
                |> Model.addParam {
                    Model.param "alpha" 0.55 with
                        Constraint = Constraint.Positive
                }
                |> Model.addParam {
                    Model.param "beta" 0.028 with
                        Constraint = Constraint.Positive
                }
                |> Model.addParam {
                    Model.param "gamma" 0.84 with
                        Constraint = Constraint.Positive
                }
                |> Model.addParam {
                    Model.param "delta" 0.026 with
                        Constraint = Constraint.Positive
                }
                |> Model.addEquation "H" (Parse.expr "alpha H - beta H L")
                |> Model.addEquation "L" (Parse.expr "delta H L - gamma L")
                |> Model.setInitial "H" (InitialCondition.Expr(Num 30.0))
                |> Model.setInitial "L" (InitialCondition.Expr(Num 4.0))

            Expect.equal byHand Examples.lotkaVolterra "same record"
        }

        test "units of the tumour-style flux: D in m²/s and u in mol/m³ give mol/(m³·s)" {
            let m =
                model "flux" {
                    domain (interval 0.0 1.0) (cells 10)
                    field "u"
                    param "D" (positive 0.1)
                    units "u" "mol/m^3"
                    units "D" "m^2/s"
                    equation "du/dt = div(D*grad(u))"
                    boundary "u" noFlux
                    initialValue "u" 1.0
                }

            Expect.isEmpty (Checks.problems m) "consistent units"
        }
    ]
