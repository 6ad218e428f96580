namespace Hybrid.Kernels

open System.Collections.Generic

/// Arithmetic operations per cell of a plan's generated loops, counted from the kernel expressions by the
/// generator's own rules (`Codegen`): each distinct non-leaf subexpression at each evaluation offset is computed
/// once per cell; aⁿ with |n| ≤ 4 is |n| − 1 multiplications (and a division when n < 0); a function call
/// (exp, tanh, …) or a larger power counts as one operation; each λ·∂F product and each sum or accumulation
/// is one more.
[<RequireQualifiedAccess>]
module internal KernelCost =

    /// Operations of the distinct non-leaf subexpressions of `exprs`, each an expression and the offset
    /// (sx, sy) it is evaluated at, as the emitter's memo table (expression, offset) shares them.
    let private distinct (exprs: (KExpr * int * int) seq) =
        let seen = HashSet<KExpr * int * int>(HashIdentity.Structural)
        let mutable count = 0

        let rec visit (e: KExpr) (sx: int) (sy: int) =
            if seen.Add((e, sx, sy)) then
                match e with
                | KConst _
                | KRead _
                | KParam _
                | KParamAt _
                | KCoord _
                | KTime
                | KInput _
                | KData _ -> ()
                | KPowInt(a, n) ->
                    visit a sx sy
                    let m = abs n
                    count <- count + (if m <= 4 then m - 1 else 1) + (if n < 0 then 1 else 0)
                | KUn(_, a) ->
                    visit a sx sy
                    count <- count + 1
                | KBin(_, a, b) ->
                    visit a sx sy
                    visit b sx sy
                    count <- count + 1

        for e, sx, sy in exprs do
            visit e sx sy

        count

    /// Operations per cell of one evaluation of the right-hand side (all fields), the face-flux kernel's included
    /// (`KernelPlan.faces`: a loop of its own, sharing nothing with the right-hand side's).
    let forward (plan: KernelPlan) =
        let ops (p: KernelPlan) =
            distinct (p.Rhs |> Seq.map (fun e -> e, 0, 0))

        ops plan
        + (if (KernelPlan.faces plan).Length > 0 then
               ops (KernelPlan.facePlan plan)
           else
               0)

    /// Operations per cell of one evaluation of the vector–Jacobian product in gather form of `plan`'s kernel alone.
    let private adjointOf (plan: KernelPlan) =
        let derivatives = ResizeArray<KExpr * int * int>()
        let mutable extra = 0

        for target in 0 .. KernelPlan.readTargets plan - 1 do
            let mutable terms = 0

            for _, atSource, dx, dy in KernelPlan.gatherTerms plan target do
                derivatives.Add((atSource, -dx, -dy))
                terms <- terms + 1

            // One product per term, the sum of the terms, and the add into the adjoint.
            if terms > 0 then
                extra <- extra + terms + (terms - 1) + 1

        for f in 0 .. plan.Rhs.Length - 1 do
            let rhs = plan.Rhs[f]

            for p in KExpr.parameters rhs do
                let d = KExpr.derivative (KParam p) rhs

                if d <> KConst 0.0 then
                    derivatives.Add((d, 0, 0))
                    // The product with λ and the accumulation.
                    extra <- extra + 2

            for site in KExpr.inputs rhs do
                let d = KExpr.derivative (KInput site) rhs

                if d <> KConst 0.0 then
                    derivatives.Add((d, 0, 0))
                    extra <- extra + 2

        distinct derivatives + extra

    /// Operations per cell of one evaluation of the vector–Jacobian product in gather form (the form of the
    /// vectorised core): per field (and parameter copy), λ_f(q − o)·∂F_f/∂u(o) for every read o, the derivative
    /// evaluated at q − o, summed and added into the adjoint; per scalar parameter, λ·∂F/∂θ accumulated; the
    /// face-flux kernel's product likewise (`KernelPlan.faces`).
    let adjoint (plan: KernelPlan) =
        adjointOf plan
        + (if (KernelPlan.faces plan).Length > 0 then
               adjointOf (KernelPlan.facePlan plan)
           else
               0)
