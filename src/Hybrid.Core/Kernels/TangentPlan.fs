namespace Hybrid.Kernels

open Hybrid

/// The tangent (Jacobian–vector product) of a lowered model, as a plan the kernel generator compiles like any other:
/// fields u₀ … uₙ₋₁ followed by directions d₀ … dₙ₋₁ (one per field, on the same cells, with the linear part of the
/// field's ghost rules: Dirichlet and Neumann values 0, periodic and no-flux walls as they are), and right-hand sides
/// 0 for the fields and, for direction i,
///     (J d)ᵢ = Σⱼ Σ_offsets ∂Fᵢ/∂(uⱼ at offset) · (dⱼ at offset),
/// from the symbolic derivatives of the kernel expressions (`KExpr.derivative`), J = ∂F/∂u at (t, u, θ). Its
/// generated forward kernel gives J d (the Rodas4 stepper probes J into stencil blocks with coloured directions); its
/// generated adjoint, with cotangent r̄ on the directions' outputs, gives ∂/∂u [r̄ᵀ J(u) d] (into the fields' adjoints),
/// ∂/∂θ [r̄ᵀ J(u) d] and Jᵀ r̄ (into the directions' adjoints): the second-order terms of the discrete adjoint of a
/// Rosenbrock step, whose matrix depends on u and θ.
[<RequireQualifiedAccess>]
module internal TangentPlan =

    /// The ghost rule of a direction: the linear part of the field's rule (a ghost is ±(interior value) + a value
    /// that does not depend on the state).
    let private linearRule (rule: GhostRule) =
        match rule with
        | GhostRule.Dirichlet _ -> GhostRule.Dirichlet(KConst 0.0)
        | GhostRule.Neumann _ -> GhostRule.Neumann(KConst 0.0)
        | GhostRule.Periodic
        | GhostRule.NoFlux -> rule

    /// (J d)ᵢ for right-hand side `rhs` of a plan with `fields` fields: the direction of field j is field fields + j.
    let jvp (fields: int) (rhs: KExpr) : KExpr =
        KExpr.reads rhs
        |> List.fold
            (fun sum (f, dx, dy) ->
                KExpr.add sum (KExpr.mul (KExpr.derivative (KRead(f, dx, dy)) rhs) (KRead(fields + f, dx, dy))))
            (KConst 0.0)

    /// Why the tangent plan of `plan` cannot be built (None when it can): the Jacobian of neural closures and of
    /// diagnostic fields' solves is not symbolic, and two-scale lattices are not supported.
    let refusal (plan: KernelPlan) : string option =
        if plan.Sites.Length > 0 then
            Some "its Jacobian goes through neural closures, which the kernels do not differentiate twice"
        elif plan.Diagnostics.Length > 0 then
            Some "its Jacobian goes through the elliptic solves of diagnostic fields"
        elif plan.FastSites > 0 then
            Some "it lives on a two-scale lattice"
        else
            None

    /// The tangent plan of `plan` (see `refusal`).
    let create (plan: KernelPlan) : KernelPlan =
        let n = plan.Fields.Length

        {
            plan with
                Fields = Array.append plan.Fields (plan.Fields |> Array.map (fun f -> $"d{f}"))
                Rhs = Array.append (Array.create n (KConst 0.0)) (plan.Rhs |> Array.map (jvp n))
                RhsFast = Array.create (2 * n) false
                Rules =
                    Array.append
                        plan.Rules
                        (plan.Rules
                         |> Array.map (Array.map (fun (lo, hi) -> linearRule lo, linearRule hi)))
                Fast = Array.append plan.Fast plan.Fast
        }
