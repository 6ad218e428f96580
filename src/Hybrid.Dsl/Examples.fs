namespace Hybrid

/// A catalogue of models written with the `model { }` builder: the case studies and textbook systems. Each
/// passes `Checks.validate`; their text forms are in docs/dsl.fsx.
[<RequireQualifiedAccess>]
module Examples =

    /// Tumour growth with an unknown drug effect (DESIGN.md): ∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u
    /// on [0, 10] with 128 cells, no-flux boundaries and a Gaussian initial density.
    let tumour: Model =
        let u, D, r, c = sym "u", sym "D", sym "r", sym "c"
        let kill = call "kill"

        model "tumour" {
            domain (interval 0.0 10.0) (cells 128)
            field "u"
            param "D" (positive 0.05)
            param "r" (positive 1.0)
            neural "kill" (mlp [ 2; 32; 32; 1 ])
            forcing "c"
            equation (dt u == div (D * grad u) + r * u * (1.0 - u) - kill [ u; c ] * u)
            boundary "u" noFlux
            initial "u" (fun x -> exp (-((x - 5.0) ** 2)))
        }

    /// Fisher–KPP with units: ∂u/∂t = D Δu + r u (1 − u), u dimensionless, D in m²/s, r in 1/s, on [0, 1] m
    /// with u = 1 on the left and u = 0 on the right.
    let fisherKpp: Model =
        let u, D, r = sym "u", sym "D", sym "r"

        model "fisher_kpp" {
            domain (interval 0.0 1.0) (cells 200)
            field "u"
            param "D" (positive 1e-4)
            param "r" (positive 1.0)
            units "u" "1"
            units "D" "m^2/s"
            units "r" "1/s"
            equation (dt u == D * lap u + r * u * (1.0 - u))
            boundary "u" left (dirichlet 1.0)
            boundary "u" right (dirichlet 0.0)
            initial "u" (fun x -> sigmoid (-50.0 * (x - 0.1)))
        }

    /// Gray–Scott reaction–diffusion, two fields on the periodic unit square (64 × 64):
    /// ∂u/∂t = Du Δu − u v² + F (1 − u), ∂v/∂t = Dv Δv + u v² − (F + k) v.
    let grayScott: Model =
        let u, v, Du, Dv, F, k = sym "u", sym "v", sym "Du", sym "Dv", sym "F", sym "k"

        model "gray_scott" {
            domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 64 64)
            field "u"
            field "v"
            param "Du" (positive 2e-5)
            param "Dv" (positive 1e-5)
            param "F" (bounded 0.0 0.1 0.04)
            param "k" (bounded 0.0 0.1 0.06)
            equation (dt u == Du * lap u - u * v ** 2 + F * (1.0 - u))
            equation (dt v == Dv * lap v + u * v ** 2 - (F + k) * v)
            boundary "u" periodic
            boundary "v" periodic
            initial2 "u" (fun x y -> 1.0 - 0.5 * exp (-(((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.01)))
            initial2 "v" (fun x y -> 0.25 * exp (-(((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.01)))
        }

    /// Lotka–Volterra predator–prey (0-D): dH/dt = α H − β H L, dL/dt = δ H L − γ L (hares H, lynx L).
    let lotkaVolterra: Model =
        let H, L = sym "H", sym "L"
        let alpha, beta, gamma, delta = sym "alpha", sym "beta", sym "gamma", sym "delta"

        model "lotka_volterra" {
            domain point
            field "H"
            field "L"
            param "alpha" (positive 0.55)
            param "beta" (positive 0.028)
            param "gamma" (positive 0.84)
            param "delta" (positive 0.026)
            equation (dt H == alpha * H - beta * H * L)
            equation (dt L == delta * H * L - gamma * L)
            initialValue "H" 30.0
            initialValue "L" 4.0
        }

    /// One-compartment pharmacokinetics with first-order oral absorption (0-D) and dosing as a forcing:
    /// dA/dt = dose − ka A (gut amount, mg), dC/dt = ka A / V − ke C (plasma concentration, mg/L).
    let pharmacokinetics: Model =
        let A, C, ka, ke, V, dose =
            sym "A", sym "C", sym "ka", sym "ke", sym "V", sym "dose"

        model "pk_oral" {
            domain point
            field "A"
            field "C"
            param "ka" (positive 1.5)
            param "ke" (positive 0.08)
            param "V" (positive 30.0)
            forcing "dose"
            units "A" "mg"
            units "C" "mg/L"
            units "ka" "1/h"
            units "ke" "1/h"
            units "V" "L"
            units "dose" "mg/h"
            equation (dt A == dose - ka * A)
            equation (dt C == ka * A / V - ke * C)
            initialValue "A" 320.0
            initialValue "C" 0.0
        }

    /// Two-scale Lorenz-96 with K = 36 slow variables X and J = 10 fast variables Y per slow site:
    /// dX/dt = (X[k+1] − X[k−2]) X[k−1] − X + F − (h c / b) Σⱼ Y,
    /// dY/dt = −c b Y[j+1] (Y[j+2] − Y[j−1]) − c Y + (h c / b) X (X at the parent slow site).
    let lorenz96: Model =
        let X, Y, F, h, c, b = sym "X", sym "Y", sym "F", sym "h", sym "c", sym "b"

        model "lorenz96" {
            domain (twoScaleLattice 36 10)
            field "X"
            fastField "Y"
            constant "F" 10.0
            constant "h" 1.0
            constant "c" 10.0
            constant "b" 10.0
            equation (dt X == (shift X 1 - shift X -2) * shift X -1 - X + F - h * c / b * sumFast Y)

            equation (
                dt Y
                == -c * b * shiftFast Y 1 * (shiftFast Y 2 - shiftFast Y -1) - c * Y
                   + h * c / b * X
            )

            initial "X" (fun x -> F + sin x)
            initial "Y" (fun x -> 0.01 * cos x)
        }

    /// All catalogue models.
    let all: Model list = [ tumour; fisherKpp; grayScott; lotkaVolterra; pharmacokinetics; lorenz96 ]
