namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// How the time derivative in the physics residual is discretised.
[<RequireQualifiedAccess>]
type ResidualForm =
    /// 𝒫ⁿ = (uⁿ⁺¹ − uⁿ)/Δtₙ − RHS(tₙ, uⁿ): forward Euler, works for any trajectory and spacing.
    | ForwardEuler
    /// 𝒫ⁿ = (uⁿ⁺¹ − Φ(uⁿ, Δtₙ))/Δtₙ with Φ one step of the scheme: zero (to round-off) on the scheme's own
    /// trajectory when the save spacing equals the step.
    | Consistent of Scheme

/// The physics residual of a trajectory, per field.
type ResidualResult = {
    /// Field names.
    Fields: string[]
    /// Residual per field, shape [S − 1; B; spatial…].
    Values: torch.Tensor[]
    /// Root-mean-square residual per field (0-dim, differentiable): the term a loss adds.
    Norms: torch.Tensor[]
}

/// The physics residual 𝒫 = ∂ₜu − RHS(u) of a trajectory (predicted or observed), from the same `Dynamics`
/// the simulator runs.
[<RequireQualifiedAccess>]
module Residual =

    /// Residual of snapshots `values` (one tensor per field, [S; B; spatial…]) at `times` (length S).
    let compute
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (form: ResidualForm)
        (times: float[])
        (values: torch.Tensor[])
        : ResidualResult =
        Engine.init ()

        if values.Length <> dyn.Fields.Length then
            raise (HybridException($"Residual: got {values.Length} fields, the system has {dyn.Fields.Length}."))

        let s = times.Length

        if s < 2 then
            raise (HybridException("Residual: need at least two snapshots (times) to difference."))

        values
        |> Array.iteri (fun i v ->
            if v.shape[0] <> int64 s then
                raise (
                    HybridException(
                        $"Residual: field '{dyn.Fields[i]}' has {v.shape[0]} snapshots but {s} times were given."
                    )
                ))

        let perStep = [|
            for n in 0 .. s - 2 do
                let h = times[n + 1] - times[n]

                if not (h > 0.0) then
                    raise (
                        HybridException(
                            $"Residual: times must increase; times[{n}] = {times[n]}, times[{n + 1}] = {times[n + 1]}."
                        )
                    )

                let un = values |> Array.map (fun v -> v[int64 n])
                let un1 = values |> Array.map (fun v -> v[int64 (n + 1)])

                match form with
                | ResidualForm.ForwardEuler ->
                    let f = Dynamics.total dyn theta times[n] un
                    yield Array.init un.Length (fun i -> (un1[i] - un[i]) ./ h - f[i])
                | ResidualForm.Consistent scheme ->
                    let step = Integrators.stepper scheme dyn theta [ h ] un
                    let next = step times[n] h un
                    yield Array.init un.Length (fun i -> (un1[i] - next[i]) ./ h)
        |]

        let fields =
            Array.init values.Length (fun i -> torch.stack (perStep |> Array.map (fun r -> r[i]), 0L))

        {
            Fields = dyn.Fields
            Values = fields
            Norms = fields |> Array.map (fun r -> (square r).mean().sqrt ())
        }
