/// The equations of the climate case (issue #16): a forced barotropic vorticity equation on a doubly periodic
/// β-plane [0, 2π]² with a moisture tracer and accumulated precipitation, written in the DSL's text form. For a
/// 32 × 32 grid without closure, `ClimateModel.text ClimateModel.reference 32 2e-3 []` gives
///
///     model climate
///     domain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells 32 x 32
///     field omega
///     field psi diagnostic
///     field q
///     field P
///     param beta = 1 fixed
///     param mu = 0.05 fixed
///     param nu = 0.002 fixed
///     param F0 = 0.2 fixed
///     param E = 0.2 fixed
///     param k = 30 fixed
///     param tau = 0.5 fixed
///     ∂omega/∂t = −J(psi, omega) − beta ∂x(psi) + F0 cos(4 y) − mu omega + nu Δomega
///     Δpsi = omega
///     ∂q/∂t = −advectFlux(−∂y(psi), ∂x(psi), q) + E max(0.6 − 0.4 cos(y) − q, 0) − softplus(k (q − (0.6 − 0.4 cos(y))))/(k tau)
///     ∂P/∂t = softplus(k (q − (0.6 − 0.4 cos(y))))/(k tau)
///     boundary omega periodic
///     …
///     initial omega = 2 sin(4 y) + 0.5 sin(3 x + 1) cos(2 y) + 0.3 cos(5 x + 2 y)
///     initial q = 0.6 − 0.4 cos(y)
///     initial P = 0
///
/// ω is the relative vorticity, ψ the streamfunction (Δψ = ω, velocity (−∂ψ/∂y, ∂ψ/∂x)), q the specific humidity
/// and P the precipitation accumulated since t = 0 (so the precipitation of a window is a difference of P). The
/// saturation q_sat(y) = 0.6 − 0.4 cos y is warm (1.0) at the equator y = π and cold (0.2) at the poles y = 0, 2π;
/// evaporation E·max(q_sat − q, 0) moistens air below saturation; condensation softplus(k (q − q_sat))/(k τ) is a
/// smooth max(q − q_sat, 0)/τ of sharpness k, and all of it falls out as precipitation. The forcing F0 cos(4y)
/// drives four pairs of zonal jets (Kolmogorov forcing), whose shear is far above the Rayleigh–Kuo threshold
/// (U'' ≈ 16 U ≫ β), so they break into eddies that carry moist equatorial air poleward, where it rains; the drag
/// μ sets the jets' amplitude (F0/μ = 4 in ω) and ν removes enstrophy at the grid scale.
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateModel

open System.Globalization

/// The physical parameters of the climate model (non-dimensional: domain 2π, time unit ≈ one eddy turnover).
type Physics = {
    /// β, the meridional gradient of the Coriolis parameter.
    Beta: float
    /// μ, linear (Ekman) drag on the vorticity.
    Drag: float
    /// F0, the amplitude of the vorticity forcing F0 cos(4 y).
    Forcing: float
    /// E, the evaporation rate towards saturation.
    Evaporation: float
    /// k, the sharpness of the smooth condensation threshold (softplus).
    Sharpness: float
    /// τ, the condensation time scale.
    CondensationTime: float
    /// The mean of q_sat(y) = QsatMean − QsatAmplitude cos y.
    QsatMean: float
    /// The equator-to-pole half-range of q_sat.
    QsatAmplitude: float
}

/// β = 1, μ = 0.05, F0 = 0.2, E = 0.2, k = 30, τ = 0.5, q_sat(y) = 0.6 − 0.4 cos y: jets of |ω| ≈ 2–3 that go
/// unstable after about 15 time units, precipitation ≈ 0.015 per unit area and time.
let reference = {
    Beta = 1.0
    Drag = 0.05
    Forcing = 0.2
    Evaporation = 0.2
    Sharpness = 30.0
    CondensationTime = 0.5
    QsatMean = 0.6
    QsatAmplitude = 0.4
}

let private num (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// The starting values of the learnable coefficients of Leith's eddy viscosity and diffusivity (`textWith`).
type Leith = {
    /// c_ω of the eddy viscosity ν* = (c_ω Δ)³ |∇ω| on the vorticity.
    Omega: float
    /// c_q of the eddy diffusivity κ* = (c_q Δ)³ |∇ω| on the humidity.
    Q: float
}

/// |∇ω| in Leith's eddy coefficients is regularised as √(∂xω² + ∂yω² + ε²) with this ε (ω's gradients are of order
/// 1–10): the square root's derivative 1/(2√x) is infinite at x = 0, and 0 · ∞ would put a NaN into the gradient
/// wherever ∇ω vanishes.
let leithEpsilon = 1e-3

/// The model's text form on an `n` × `n` grid with viscosity `nu`. `closure` = [] writes the physics alone; the
/// hidden widths of the whole-field CNN closures (e.g. [16; 16]) add two: `sgsomega(omega)` (`cnn [1, …, 1]`) to the
/// vorticity and `sgsq(omega, q)` (`cnn [2, …, 1]`) to the humidity tendency, kernel 3, tanh. The vorticity's
/// closure reads ω alone: the flow does not feel the moisture, and a convolution with periodic padding commutes with
/// shifts by whole cells, so it keeps the translation symmetry of the forcing and the start (shifts by (0, π) and
/// (π, π/2)), which a closure of ω that read q (whose q_sat(y) lacks it) broke: free runs filled the domain-scale
/// shell that the truth leaves empty. `leith`
/// adds Leith's (1996) eddy viscosity ν* Δω, ν* = (c_ω Δ)³ |∇ω|, to the vorticity and an eddy diffusivity κ* Δq of
/// the same form, κ* = (c_q Δ)³ |∇ω|, to the humidity (Δ = 2π/n the grid spacing, |∇ω| regularised by
/// `leithEpsilon`), with c_ω = `cw` and c_q = `cq` learnable positive parameters started at the given values. The
/// terms are written ν* Δω, not ∇·(ν* ∇ω): the DSL evaluates a flux coefficient κ of ∇·(κ∇u) on the cell faces, where
/// it cannot take ∂x(ω), ∂y(ω); the two forms differ by ∇ν*·∇ω. Without `leith` the text is `text`'s.
let textWith (p: Physics) (n: int) (nu: float) (closure: int list) (leith: Leith option) : string =
    let qsat = $"{num p.QsatMean} − {num p.QsatAmplitude} cos(y)"
    let condensation = $"softplus(k (q − ({qsat})))/(k tau)"

    let closureLine, sgsOmega, sgsQ =
        match closure with
        | [] -> "", "", ""
        | hidden ->
            let widths inputs =
                [ inputs ] @ hidden @ [ 1 ] |> List.map string |> String.concat ", "

            $"closure sgsomega/1 = cnn [{widths 1}] kernel 3 tanh\nclosure sgsq/2 = cnn [{widths 2}] kernel 3 tanh\n",
            " + sgsomega(omega)",
            " + sgsq(omega, q)"

    let leithLines, leithOmega, leithQ =
        match leith with
        | None -> "", "", ""
        | Some c ->
            let h = 2.0 * System.Math.PI / float n

            let gradient =
                $"sqrt(∂x(omega) ∂x(omega) + ∂y(omega) ∂y(omega) + {num (leithEpsilon * leithEpsilon)})"

            $"param cw = {num c.Omega} positive\nparam cq = {num c.Q} positive\n",
            $" + {num (h * h * h)} cw³ {gradient} Δomega",
            $" + {num (h * h * h)} cq³ {gradient} Δq"

    $"""model climate
domain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells {n} x {n}
field omega
field psi diagnostic
field q
field P
param beta = {num p.Beta} fixed
param mu = {num p.Drag} fixed
param nu = {num nu} fixed
param F0 = {num p.Forcing} fixed
param E = {num p.Evaporation} fixed
param k = {num p.Sharpness} fixed
param tau = {num p.CondensationTime} fixed
{leithLines}{closureLine}∂omega/∂t = −J(psi, omega) − beta ∂x(psi) + F0 cos(4 y) − mu omega + nu Δomega{leithOmega}{sgsOmega}
Δpsi = omega
∂q/∂t = −advectFlux(−∂y(psi), ∂x(psi), q) + E max({qsat} − q, 0) − {condensation}{leithQ}{sgsQ}
∂P/∂t = {condensation}
boundary omega periodic
boundary psi periodic
boundary q periodic
boundary P periodic
initial omega = 2 sin(4 y) + 0.5 sin(3 x + 1) cos(2 y) + 0.3 cos(5 x + 2 y)
initial q = {qsat}
initial P = 0
"""

/// The model's text form without Leith's terms (`textWith … None`): the physics alone, or with a CNN closure of
/// `closure` hidden widths (see `textWith`).
let text (p: Physics) (n: int) (nu: float) (closure: int list) : string = textWith p n nu closure None

/// The number of weights of a 2-D CNN with channel `widths` and a square kernel of size `kernel`: Σ over its
/// convolutions of c_in · c_out · kernel² + c_out.
let cnnWeights (widths: int list) (kernel: int) : int =
    widths
    |> List.pairwise
    |> List.sumBy (fun (cin, cout) -> cin * cout * kernel * kernel + cout)

/// The weights of the closures of `hidden` widths (`textWith`): `sgsomega` [1, …, 1] and `sgsq` [2, …, 1], kernel 3
/// (5,394 at [16; 16]).
let closureWeights (hidden: int list) : int =
    cnnWeights ([ 1 ] @ hidden @ [ 1 ]) 3 + cnnWeights ([ 2 ] @ hidden @ [ 1 ]) 3
