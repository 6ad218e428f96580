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

    /// The weights B as whole numbers over a common divisor d: B[i] = w[i] / d (RK4: d = 6, w = 1, 2, 2, 1), so
    /// that a step can add whole multiples of the slopes and divide by d once. Falls back to d = 1, w = B.
    let integerWeights (t: Tableau) : float * float[] =
        let candidates = [ 1.0; 2.0; 3.0; 4.0; 6.0; 8.0; 12.0; 24.0 ]

        let fits (d: float) =
            t.B |> Array.forall (fun b -> let w = b * d in abs (w - round w) < 1e-12)

        match candidates |> List.tryFind fits with
        | Some d -> d, t.B |> Array.map (fun b -> round (b * d))
        | None -> 1.0, t.B
