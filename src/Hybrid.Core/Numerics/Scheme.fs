namespace Hybrid.Numerics

open Hybrid

/// Time integration schemes.
[<RequireQualifiedAccess>]
type Scheme =
    /// Explicit Euler, order 1.
    | Euler
    /// Heun (explicit trapezoid), order 2.
    | Heun
    /// Shu–Osher strong-stability-preserving Runge–Kutta, order 3.
    | SspRk3
    /// Classical Runge–Kutta, order 4.
    | Rk4
    /// IMEX Euler: backward Euler on the stiff (linear diffusion) part, forward Euler on the rest; order 1.
    | ImexEuler
    /// IMEX Crank–Nicolson: trapezoid on both parts, predictor–corrector (Heun) for the explicit part; order 2.
    | ImexCrankNicolson
    /// Dormand–Prince 5(4), adaptive: each step's error is estimated from the embedded 4th-order solution and
    /// kept within `RolloutOptions.Tolerance` by PI step-size control; `Dt` is the first step tried; save times
    /// are read from its 4th-order continuous extension (they do not shorten steps). Order 5.
    | Dopri5
    /// Rodas4 (Hairer and Wanner's RODAS, Solving ODEs II §IV.7), adaptive and stiff: a stiffly accurate
    /// Rosenbrock method of order 4 with an embedded order-3 error estimate, L-stable, with the exact Jacobian of
    /// the system (symbolic per cell where the compiler derives it, autograd otherwise) and one linear solve per
    /// stage; save times from its 3rd-order continuous extension. Same tolerance, step limit and gradients as
    /// `Dopri5`. Linear solves: per cell (n×n blocks for n fields, batched) for pointwise systems of any size;
    /// dense over all unknowns of a trajectory for systems that couple cells (stencils), up to 1,000 unknowns
    /// (larger ones are refused with the fixes). Order 4.
    | Rodas4
    /// Dopri5, switching to Rodas4 for the rest of the rollout once the problem turns out stiff: Hairer's stiffness
    /// test of DOPRI5 (h·|λ| estimated from the last two stages at the stability limit, 3.25, on 15 accepted steps
    /// without 6 calm ones between). `Rollout.lastAuto ()` says what it chose, where and why.
    | Auto
    /// KenCarp4 (Kennedy and Carpenter's additive Runge–Kutta pair ARK4(3)6L[2]SA, 2003), adaptive IMEX: the
    /// compiler's stiff part (linear diffusion of a field by itself, compiled with `ImplicitDiffusion = true`) is
    /// integrated by an L-stable, stiffly accurate ESDIRK tableau with constant diagonal γ = 1/4, the rest (reactions,
    /// advection, nonlinear diffusion) by the paired explicit tableau, six stages, order 4 with an embedded order-3
    /// error estimate under the same `Tolerance`, PI control, step limit and gradients as `Dopri5`. Steps land on the
    /// save times (state events are located on a cubic Hermite interpolant). The implicit stage systems
    /// (I − γhL)x = r are solved as fits the grid: banded (cyclic tridiagonal, O(N)) on 1-D grids, conjugate gradients
    /// (stopping at a residual 1,000× below the relative tolerance) on 2-D grids with a symmetric L, dense up to 4,096
    /// unknowns otherwise; gradients go through the solves by their adjoint solves. Without a stiff part it is a
    /// 4th-order explicit pair. Eager back end only. Order 4.
    | KenCarp4

/// Helpers on schemes.
[<RequireQualifiedAccess>]
module Scheme =

    /// True for the adaptive schemes (`Dopri5`, `Rodas4`, `Auto`, `KenCarp4`): steps chosen by an error estimate and a
    /// `Tolerance`.
    let isAdaptive (s: Scheme) : bool =
        match s with
        | Scheme.Dopri5
        | Scheme.Rodas4
        | Scheme.Auto
        | Scheme.KenCarp4 -> true
        | _ -> false

/// Error tolerance of adaptive schemes: a step is accepted when the RMS over all values of
/// (error / (Absolute + Relative·|u|)) is at most 1.
type Tolerance = {
    /// Relative tolerance.
    Relative: float
    /// Absolute tolerance (in the fields' units).
    Absolute: float
}

/// An explicit Runge–Kutta method as a Butcher tableau: stage i evaluates F at u + Δt Σⱼ A[i][j] kⱼ and time
/// t + C[i] Δt; the step is u + Δt Σᵢ B[i] kᵢ.
type Tableau = {
    /// The stage coefficients: row i holds A[i][j] for the earlier stages j < i (row 0 is empty; s rows).
    A: float[][]
    /// The weights of the stages in the step (s values, summing to 1).
    B: float[]
    /// The stage times as fractions of Δt (s values, C[0] = 0).
    C: float[]
}

/// The one set of tableaux of the explicit schemes, used by the eager integrators and the generated kernels.
[<RequireQualifiedAccess>]
module Tableau =

    /// The tableau of an explicit scheme; IMEX schemes raise (they are not plain Runge–Kutta methods).
    let ofScheme (scheme: Scheme) : Tableau =
        match scheme with
        | Scheme.Euler -> {
            A = [| [||] |]
            B = [| 1.0 |]
            C = [| 0.0 |]
          }
        | Scheme.Heun -> {
            A = [| [||]; [| 1.0 |] |]
            B = [| 0.5; 0.5 |]
            C = [| 0.0; 1.0 |]
          }
        | Scheme.SspRk3 -> {
            A = [| [||]; [| 1.0 |]; [| 0.25; 0.25 |] |]
            B = [| 1.0 / 6.0; 1.0 / 6.0; 2.0 / 3.0 |]
            C = [| 0.0; 1.0; 0.5 |]
          }
        | Scheme.Rk4 -> {
            A = [| [||]; [| 0.5 |]; [| 0.0; 0.5 |]; [| 0.0; 0.0; 1.0 |] |]
            B = [| 1.0 / 6.0; 1.0 / 3.0; 1.0 / 3.0; 1.0 / 6.0 |]
            C = [| 0.0; 0.5; 0.5; 1.0 |]
          }
        | Scheme.ImexEuler
        | Scheme.ImexCrankNicolson ->
            raise (
                ModelException(
                    $"{scheme} is an IMEX scheme, not an explicit Runge–Kutta method. Use Euler, Heun, SspRk3 or Rk4 here, or Integrators.stepper for IMEX steps."
                )
            )
        | Scheme.Dopri5
        | Scheme.Rodas4
        | Scheme.Auto
        | Scheme.KenCarp4 ->
            raise (
                ModelException(
                    $"{scheme} is an adaptive scheme with an embedded error estimate, not a fixed-step explicit tableau. Use Euler, Heun, SspRk3 or Rk4 here; Rollout.run integrates {scheme}."
                )
            )

    /// The 5th-order weights of Dormand and Prince's pair, which are also its last stage's row (first same as last).
    let private dormandPrinceFifth = [|
        35.0 / 384.0
        0.0
        500.0 / 1113.0
        125.0 / 192.0
        -2187.0 / 6784.0
        11.0 / 84.0
    |]

    /// Dormand and Prince's 5(4) pair (1980), 7 stages with the last evaluated at the new state (first same as
    /// last): B gives the 5th-order solution.
    let dormandPrince: Tableau = {
        A = [|
            [||]
            [| 1.0 / 5.0 |]
            [| 3.0 / 40.0; 9.0 / 40.0 |]
            [| 44.0 / 45.0; -56.0 / 15.0; 32.0 / 9.0 |]
            [| 19372.0 / 6561.0; -25360.0 / 2187.0; 64448.0 / 6561.0; -212.0 / 729.0 |]
            [|
                9017.0 / 3168.0
                -355.0 / 33.0
                46732.0 / 5247.0
                49.0 / 176.0
                -5103.0 / 18656.0
            |]
            dormandPrinceFifth
        |]
        B = Array.append dormandPrinceFifth [| 0.0 |]
        C = [| 0.0; 1.0 / 5.0; 3.0 / 10.0; 4.0 / 5.0; 8.0 / 9.0; 1.0; 1.0 |]
    }

    /// The embedded 4th-order weights of `dormandPrince`; the difference to its B estimates the step's error.
    let dormandPrinceEmbedded = [|
        5179.0 / 57600.0
        0.0
        7571.0 / 16695.0
        393.0 / 640.0
        -92097.0 / 339200.0
        187.0 / 2100.0
        1.0 / 40.0
    |]

    /// The coefficients d of the 4th-order continuous extension of Dormand and Prince's pair (Hairer's DOPRI5,
    /// after Shampine 1986), one per stage (the second is 0).
    let dormandPrinceDense = [|
        -12715105075.0 / 11282082432.0
        0.0
        87487479700.0 / 32700410799.0
        -10690763975.0 / 1880347072.0
        701980252875.0 / 199316789632.0
        -1453857185.0 / 822651844.0
        69997945.0 / 29380423.0
    |]

    /// The weights B as whole numbers over a common divisor d: B[i] = w[i] / d (RK4: d = 6, w = 1, 2, 2, 1), so
    /// that a step can add whole multiples of the slopes and divide by d once. Falls back to d = 1, w = B.
    let integerWeights (t: Tableau) : float * float[] =
        let candidates = [ 1.0; 2.0; 3.0; 4.0; 6.0; 8.0; 12.0; 24.0 ]

        let fits (d: float) =
            t.B |> Array.forall (fun b -> let w = b * d in abs (w - round w) < 1e-12)

        match candidates |> List.tryFind fits with
        | Some d -> d, t.B |> Array.map (fun b -> round (b * d))
        | None -> 1.0, t.B
