namespace Hybrid

/// Problems of the "Test Set for IVP Solvers" (F. Mazzia and C. Magherini, release 2.4, Department of Mathematics,
/// University of Bari, 2008; https://archimede.uniba.it/~testset/) as Hybrid models in the text form, each with the
/// published reference solution at its end time: HIRES, Robertson (ROBER), Van der Pol with μ = 10³ (VDPOL) and
/// the RIVM air-pollution chemistry (POLLU, Verwer 1994). `hybrid bench-stiff` runs them over a range of
/// tolerances for Hybrid's adaptive schemes and SciPy's `solve_ivp`; use them to try a scheme or tolerance of your own.
[<RequireQualifiedAccess>]
module IvpTestSet =

    /// One problem: its model (point domain, one field per component, `initial` lines for the start state), the end
    /// time, the reference solution there, and how errors and absolute tolerances scale per component.
    type Problem = {
        /// The test set's name (HIRES, ROBER, VDPOL, POLLU).
        Name: string
        /// The model in the text form (`Parse.model`).
        Text: string
        /// The end time of the integration (the start is 0).
        End: float
        /// The reference solution at `End`, one value per field in declaration order.
        Reference: float[]
        /// Per field, the ratio of absolute to relative tolerance: a run at relative tolerance `tol` uses the absolute
        /// tolerance `tol · Scale[i]` for field i (as SciPy's `atol` array), and its error is measured in the same
        /// mixed norm (`mixedError`).
        Scale: float[]
        /// The first step Hybrid's adaptive schemes try (SciPy chooses its own).
        FirstStep: float
    }

    /// The largest mixed error of a final state against the reference: max over i of |y_i − r_i| / (|r_i| + Scale_i),
    /// relative where a component is large against its scale, absolute (in units of the scale) where it is small.
    /// Both Hybrid and SciPy are scored with it.
    let mixedError (p: Problem) (y: float[]) : float =
        Array.mapi (fun i (v: float) -> abs (v - p.Reference[i]) / (abs p.Reference[i] + p.Scale[i])) y
        |> Array.max

    /// HIRES (Schäfer 1975): 8 species of a plant's response to light, t ∈ [0, 321.8122]; the reference was computed by
    /// RADAU5 in extended precision at tolerances of 1.1e-18.
    let hires = {
        Name = "HIRES"
        Text =
            """
model hires
domain point
field y1
field y2
field y3
field y4
field y5
field y6
field y7
field y8
dy1/dt = -1.71*y1 + 0.43*y2 + 8.32*y3 + 0.0007
dy2/dt = 1.71*y1 - 8.75*y2
dy3/dt = -10.03*y3 + 0.43*y4 + 0.035*y5
dy4/dt = 8.32*y2 + 1.71*y3 - 1.12*y4
dy5/dt = -1.745*y5 + 0.43*y6 + 0.43*y7
dy6/dt = -280*y6*y8 + 0.69*y4 + 1.71*y5 - 0.43*y6 + 0.69*y7
dy7/dt = 280*y6*y8 - 1.81*y7
dy8/dt = -280*y6*y8 + 1.81*y7
initial y1 = 1
initial y2 = 0
initial y3 = 0
initial y4 = 0
initial y5 = 0
initial y6 = 0
initial y7 = 0
initial y8 = 0.0057
"""
        End = 321.8122
        Reference = [|
            0.7371312573325668e-3
            0.1442485726316185e-3
            0.5888729740967575e-4
            0.1175651343283149e-2
            0.2386356198831331e-2
            0.6238968252742796e-2
            0.2849998395185769e-2
            0.2850001604814231e-2
        |]
        Scale = Array.create 8 1e-4
        FirstStep = 1e-4
    }

    /// Robertson's chemical kinetics (ROBER): three species over t ∈ [0, 10¹¹]; y2 stays near 10⁻¹³, so its absolute
    /// tolerance is 10⁻¹⁴ of the relative one.
    let robertson = {
        Name = "ROBER"
        Text =
            """
model robertson
domain point
field y1
field y2
field y3
dy1/dt = -0.04*y1 + 1e4*y2*y3
dy2/dt = 0.04*y1 - 1e4*y2*y3 - 3e7*y2^2
dy3/dt = 3e7*y2^2
initial y1 = 1
initial y2 = 0
initial y3 = 0
"""
        End = 1e11
        Reference = [| 0.2083340149701255e-07; 0.8333360770334713e-13; 0.9999999791665050 |]
        Scale = [| 1e-6; 1e-14; 1e-6 |]
        FirstStep = 1e-6
    }

    /// Van der Pol with μ = 10³ (VDPOL): y1′ = y2, y2′ = μ (1 − y1²) y2 − y1 from (2, 0) over t ∈ [0, 2000].
    let vanDerPol = {
        Name = "VDPOL"
        Text =
            """
model van_der_pol
domain point
field y1
field y2
const mu = 1000
dy1/dt = y2
dy2/dt = mu*(1 - y1^2)*y2 - y1
initial y1 = 2
initial y2 = 0
"""
        End = 2000.0
        Reference = [| 0.1706167732170469e+01; -0.8928097010248125e-03 |]
        Scale = [| 1.0; 1.0 |]
        FirstStep = 1e-6
    }

    /// The chemistry of the RIVM air-pollution model (POLLU, Verwer 1994): 20 species, 25 reactions with rate
    /// constants from 10⁻⁴ to 4·10¹¹, t ∈ [0, 60] minutes. Species: NO2, NO, O3P, O3, HO2, OH, HCHO, CO, ALD, MEO2,
    /// C2O3, CO2, PAN, CH3O, HNO3, O1D, SO2, SO4, NO3, N2O5 (y1 … y20); r1 … r25 below are the reaction rates.
    let pollution = {
        Name = "POLLU"
        Text =
            """
model pollution
domain point
field y1
field y2
field y3
field y4
field y5
field y6
field y7
field y8
field y9
field y10
field y11
field y12
field y13
field y14
field y15
field y16
field y17
field y18
field y19
field y20
const k1 = 0.35
const k2 = 26.6
const k3 = 1.23e4
const k4 = 8.6e-4
const k5 = 8.2e-4
const k6 = 1.5e4
const k7 = 1.3e-4
const k8 = 2.4e4
const k9 = 1.65e4
const k10 = 9e3
const k11 = 0.022
const k12 = 1.2e4
const k13 = 1.88
const k14 = 1.63e4
const k15 = 4.8e6
const k16 = 3.5e-4
const k17 = 0.0175
const k18 = 1e8
const k19 = 4.44e11
const k20 = 1240
const k21 = 2.1
const k22 = 5.78
const k23 = 0.0474
const k24 = 1780
const k25 = 3.12
dy1/dt = -k1*y1 - k10*y11*y1 - k14*y1*y6 - k23*y1*y4 - k24*y19*y1 + k2*y2*y4 + k3*y5*y2 + k9*y11*y2 + k11*y13 + k12*y10*y2 + k22*y19 + k25*y20
dy2/dt = -k2*y2*y4 - k3*y5*y2 - k9*y11*y2 - k12*y10*y2 + k1*y1 + k21*y19
dy3/dt = -k15*y3 + k1*y1 + k17*y4 + k19*y16 + k22*y19
dy4/dt = -k2*y2*y4 - k16*y4 - k17*y4 - k23*y1*y4 + k15*y3
dy5/dt = -k3*y5*y2 + 2*k4*y7 + k6*y7*y6 + k7*y9 + k13*y14 + k20*y17*y6
dy6/dt = -k6*y7*y6 - k8*y9*y6 - k14*y1*y6 - k20*y17*y6 + k3*y5*y2 + 2*k18*y16
dy7/dt = -k4*y7 - k5*y7 - k6*y7*y6 + k13*y14
dy8/dt = k4*y7 + k5*y7 + k6*y7*y6 + k7*y9
dy9/dt = -k7*y9 - k8*y9*y6
dy10/dt = -k12*y10*y2 + k7*y9 + k9*y11*y2
dy11/dt = -k9*y11*y2 - k10*y11*y1 + k8*y9*y6 + k11*y13
dy12/dt = k9*y11*y2
dy13/dt = -k11*y13 + k10*y11*y1
dy14/dt = -k13*y14 + k12*y10*y2
dy15/dt = k14*y1*y6
dy16/dt = -k18*y16 - k19*y16 + k16*y4
dy17/dt = -k20*y17*y6
dy18/dt = k20*y17*y6
dy19/dt = -k21*y19 - k22*y19 - k24*y19*y1 + k23*y1*y4 + k25*y20
dy20/dt = -k25*y20 + k24*y19*y1
initial y1 = 0
initial y2 = 0.2
initial y3 = 0
initial y4 = 0.04
initial y5 = 0
initial y6 = 0
initial y7 = 0.1
initial y8 = 0.3
initial y9 = 0.01
initial y10 = 0
initial y11 = 0
initial y12 = 0
initial y13 = 0
initial y14 = 0
initial y15 = 0
initial y16 = 0
initial y17 = 0.007
initial y18 = 0
initial y19 = 0
initial y20 = 0
"""
        End = 60.0
        Reference = [|
            0.5646255480022769e-1
            0.1342484130422339
            0.4139734331099427e-8
            0.5523140207484359e-2
            0.2018977262302196e-6
            0.1464541863493966e-6
            0.7784249118997964e-1
            0.3245075353396018
            0.7494013383880406e-2
            0.1622293157301561e-7
            0.1135863833257075e-7
            0.2230505975721359e-2
            0.2087162882798630e-3
            0.1396921016840158e-4
            0.8964884856898295e-2
            0.4352846369330103e-17
            0.6899219696263405e-2
            0.1007803037365946e-3
            0.1772146513969984e-5
            0.5682943292316392e-4
        |]
        Scale = Array.create 20 1e-6
        FirstStep = 1e-6
    }

    /// The four problems, in the order the benchmark runs them.
    let all = [ hires; robertson; vanDerPol; pollution ]
