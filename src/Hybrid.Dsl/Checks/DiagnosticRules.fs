namespace Hybrid

open System.Collections.Generic

/// Checks of diagnostic fields (defined by an elliptic equation (Δ − κ²)ψ = rhs at every instant): a 1-D interval or
/// 2-D rectangle domain, exactly one elliptic equation each and no ∂/∂t equation or initial condition, κ² ≥ 0,
/// right-hand sides whose symbols resolve, and no cycle among diagnostic fields that use each other.
[<RequireQualifiedAccess>]
module internal DiagnosticRules =

    /// Diagnostic fields need a 1-D interval or a 2-D rectangle.
    let domain (s: CheckScope) : string list = [
        match s.Model.Domain with
        | Domain.Interval _
        | Domain.Rectangle _ -> ()
        | d ->
            for n in s.DiagnosticNames |> List.truncate 1 do
                sprintf
                    "Diagnostic field '%s' is solved from an elliptic equation on a 1-D interval or 2-D rectangle, but the domain is a %s. Declare e.g. %s, or make '%s' a state field (%s)."
                    n
                    (CheckWording.domainName d)
                    (CheckFixes.interval s.Syntax)
                    n
                    (CheckFixes.field s.Syntax n)
    ]

    /// Each diagnostic field has exactly one elliptic equation, no ∂/∂t equation and no initial condition.
    let onePerDiagnostic (s: CheckScope) : string list = [
        for n in s.DiagnosticNames do
            match s.EllipticOf n with
            | [] ->
                sprintf
                    "Diagnostic field '%s' has no elliptic equation. Add one, e.g. %s."
                    n
                    (CheckFixes.ellipticEquation s.Syntax n)
            | [ _ ] -> ()
            | many -> sprintf "Diagnostic field '%s' has %d elliptic equations. Keep exactly one." n many.Length

            if not (s.EquationsOf n).IsEmpty then
                sprintf
                    "Diagnostic field '%s' has a time equation ∂%s/∂t = …, but a diagnostic field is defined by its elliptic equation alone. Remove the ∂%s/∂t equation, or declare '%s' as a state field (%s) without an elliptic equation."
                    n
                    n
                    n
                    n
                    (CheckFixes.field s.Syntax n)

            if not (s.InitialsOf n).IsEmpty then
                sprintf
                    "Diagnostic field '%s' has an initial condition, but it is solved from its elliptic equation at every instant. Remove the initial condition."
                    n
    ]

    /// Each elliptic equation belongs to a declared diagnostic field and has a finite κ² ≥ 0.
    let ofDiagnostics (s: CheckScope) : string list = [
        for eq in s.Model.EllipticEquations do
            if s.IsField eq.Field then
                sprintf
                    "There is an elliptic equation for '%s', which is a state field (with ∂%s/∂t). Declare '%s' as a diagnostic field (%s) without a time equation or initial condition, or remove the elliptic equation."
                    eq.Field
                    eq.Field
                    eq.Field
                    (CheckFixes.diagnostic s.Syntax eq.Field)
            elif not (s.IsDiagnostic eq.Field) then
                sprintf
                    "There is an elliptic equation for '%s', which is not a declared diagnostic field%s. Declare it with %s.%s"
                    eq.Field
                    (match s.KindOf eq.Field with
                     | Some k -> sprintf " (it is a %s)" k
                     | None -> "")
                    (CheckFixes.diagnostic s.Syntax eq.Field)
                    (CheckWording.suggest eq.Field s.DiagnosticNames)

            if
                System.Double.IsNaN eq.Screening
                || System.Double.IsInfinity eq.Screening
                || eq.Screening < 0.0
            then
                sprintf
                    "The elliptic equation of '%s' has κ² = %g in (Δ − κ²)%s = …; κ² must be a finite number ≥ 0 (a negative κ² makes the operator indefinite). Use Δ%s − c %s with c ≥ 0."
                    eq.Field
                    eq.Screening
                    eq.Field
                    eq.Field
                    eq.Field
    ]

    /// The symbols and operators of each elliptic right-hand side (`ExpressionRules.inExpression`).
    let rightHandSides (s: CheckScope) : string list = [
        for eq in s.Model.EllipticEquations do
            yield! ExpressionRules.inExpression s (CheckWording.inEquation eq.Field) (fun _ -> true) "" eq.Rhs
    ]

    /// The diagnostic fields each diagnostic's right-hand side uses.
    let private uses (s: CheckScope) (eq: EllipticEquation) : string list =
        let found = ResizeArray<string>()

        eq.Rhs
        |> Expr.iter (fun node ->
            match node with
            | Sym n when s.IsDiagnostic n && not (found.Contains n) -> found.Add n
            | _ -> ())

        List.ofSeq found

    /// The order in which diagnostic fields can be solved (each after those its right-hand side uses), or the
    /// first cycle found (its names, the first repeated at the end).
    let order (s: CheckScope) : Result<string list, string list> =
        let equations =
            s.Model.EllipticEquations
            |> List.filter (fun e -> s.IsDiagnostic e.Field)
            |> List.distinctBy (fun e -> e.Field)

        let usesOf = equations |> List.map (fun e -> e.Field, uses s e) |> dict
        let state = Dictionary<string, int>() // 1 = on the path, 2 = done
        let ordered = ResizeArray<string>()
        let mutable cycle = None

        let rec visit (path: string list) (n: string) =
            if cycle.IsNone then
                match state.TryGetValue n with
                | true, 2 -> ()
                | true, _ ->
                    let loop = n :: (path |> List.takeWhile (fun m -> m <> n)) @ [ n ]
                    cycle <- Some(List.rev loop)
                | _ ->
                    state[n] <- 1

                    match usesOf.TryGetValue n with
                    | true, next -> next |> List.iter (visit (n :: path))
                    | _ -> ()

                    state[n] <- 2
                    ordered.Add n

        for e in equations do
            visit [] e.Field

        match cycle with
        | Some c -> Error c
        | None -> Ok(List.ofSeq ordered)

    /// No cycle among diagnostic fields whose right-hand sides use each other (or themselves).
    let acyclic (s: CheckScope) : string list = [
        match order s with
        | Error [ a; _ ] ->
            sprintf
                "The elliptic equation of '%s' uses '%s' itself on its right-hand side, so it is not solved by one linear solve. Move the term to the left-hand side (Δ%s − c %s = …, c ≥ 0), or make '%s' a state field."
                a
                a
                a
                a
                a
        | Error cycle ->
            sprintf
                "The diagnostic fields %s depend on each other in a cycle (%s), so no order solves them one after another. Break the cycle: one right-hand side must not use the others."
                (cycle |> List.distinct |> List.map (sprintf "'%s'") |> String.concat ", ")
                (String.concat " → " cycle)
        | Ok _ -> ()
    ]
