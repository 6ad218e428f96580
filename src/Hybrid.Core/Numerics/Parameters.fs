namespace Hybrid.Numerics

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// A scientific parameter θ kept inside its constraint by reparameterisation: the optimiser moves an
/// unconstrained raw value, users always see and set the constrained value.
/// `Positive`: value = softplus(raw); `Bounded(lo, hi)`: value = lo + (hi − lo)·sigmoid(raw); `Free`: value = raw.
/// `shape` is [||] for a scalar, or e.g. the grid's shape for a spatial field (set everywhere to `initial`).
type Param
    /// Creates the parameter `name` with its constraint and starting value (a constrained value, inside the
    /// constraint); `shape` defaults to a scalar, `dtype` to the engine's precision, `learnable` to true.
    (name: string, constr: Constraint, initial: float, ?shape: int64[], ?dtype: torch.ScalarType, ?learnable: bool) =
    do Engine.init ()

    /// eˣ − 1 without cancellation for small |x| (Kahan: (u − 1)·x / log u with u = eˣ, a few ulps).
    static let expm1 (x: float) =
        let u = Math.Exp x

        if u = 1.0 then x
        elif u - 1.0 = -1.0 then -1.0
        else (u - 1.0) * x / log u

    static let inverse (name: string) (c: Constraint) (v: float) =
        match c with
        | Constraint.Free -> v
        | Constraint.Positive ->
            if not (v > 0.0) then
                raise (
                    ModelException(
                        $"Parameter '{name}' is constrained positive but was given {v}. Give a value > 0 or make it Free."
                    )
                )

            // softplus⁻¹(v) = log(eᵛ − 1) = v + log(−expm1(−v)): exact for tiny v (where eᵛ − 1 rounds to 0
            // below ≈ 1.1e-16) and for large v (where eᵛ overflows).
            v + log (-(expm1 -v))
        | Constraint.Bounded(lo, hi) ->
            if not (lo < hi) then
                raise (ModelException($"Parameter '{name}' has bounds [{lo}, {hi}] with lo ≥ hi."))

            if not (v > lo && v < hi) then
                raise (
                    ModelException(
                        $"Parameter '{name}' is bounded in ({lo}, {hi}) but was given {v}. Give a value strictly inside the bounds."
                    )
                )

            let p = (v - lo) / (hi - lo)
            log (p / (1.0 - p))

    let dt = defaultArg dtype (Engine.dtype ())
    let shp = defaultArg shape [||]

    let raw =
        let t =
            withScalar (inverse name constr initial) (fun v ->
                torch.full (shp, v, dtype = dt, device = Engine.torchDevice ()))

        torch.nn.Parameter(t, requires_grad = defaultArg learnable true)

    /// The parameter's name.
    member _.Name = name

    /// Its constraint.
    member _.Constraint = constr

    /// The unconstrained tensor the optimiser updates (a leaf with requires_grad when learnable).
    member _.Raw: Modules.Parameter = raw

    /// True when gradients flow to it.
    member _.Learnable
        with get () = raw.requires_grad
        and set (v: bool) = raw.requires_grad_ v |> ignore

    /// The constrained value as a differentiable tensor (recomputed from `Raw` at each call; call it once
    /// per loss evaluation and pass it on).
    member _.Value: torch.Tensor =
        match constr with
        | Constraint.Free -> raw .* 1.0
        | Constraint.Positive -> softplus raw
        | Constraint.Bounded(lo, hi) -> lo .+ (hi - lo) .* torch.sigmoid raw

    /// The constrained value as a number (the mean for a spatial parameter).
    member p.Get() : float =
        use _ = torch.no_grad ()
        use v = p.Value
        v.mean().ToDouble()

    /// Sets the constrained value (everywhere, for a spatial parameter); raises `ModelException` when
    /// the value violates the constraint.
    member _.Set(value: float) : unit =
        use _ = torch.no_grad ()
        withScalar (inverse name constr value) raw.fill_ |> ignore

    /// Sets the constrained value of a spatial parameter cell by cell (shape must match).
    member _.SetTensor(value: torch.Tensor) : unit =
        use _ = torch.no_grad ()

        let rawValue =
            match constr with
            | Constraint.Free -> value
            | Constraint.Positive ->
                if (withScalar 0.0 value.le).any().ToBoolean() then
                    raise (ModelException($"Parameter '{name}' is constrained positive but a value ≤ 0 was given."))

                value .+ torch.log (-torch.expm1(-value))
            | Constraint.Bounded(lo, hi) ->
                let p = (value .- lo) ./ (hi - lo)

                if
                    (withScalar 0.0 p.le).any().ToBoolean()
                    || (withScalar 1.0 p.ge).any().ToBoolean()
                then
                    raise (
                        ModelException($"Parameter '{name}' is bounded in ({lo}, {hi}) but a value outside was given.")
                    )

                torch.log (p / (1.0 .- p))

        raw.copy_ (rawValue.to_type raw.dtype) |> ignore
