namespace Hybrid

/// Checks that every field has one boundary condition on each side of an interval or rectangle, periodic
/// ones in pairs, and that boundary values use no fields.
[<RequireQualifiedAccess>]
module internal BoundaryRules =

    /// The problem of a field without a condition on one side, with the fix in the model's syntax.
    let missing (syntax: ModelSyntax) (domain: Domain) (field: string) (side: Side) : string =
        sprintf
            "Field '%s' has no boundary condition on the %s side of the %s. Add one, e.g. %s."
            field
            (CheckWording.sideName side)
            (CheckWording.domainName domain)
            (CheckFixes.boundary syntax field)

    /// The problem of a field with several conditions on one side.
    let several (field: string) (side: Side) : string =
        sprintf
            "Field '%s' has several boundary conditions on the %s side. Keep one."
            field
            (CheckWording.sideName side)

    /// A domain without sides (a point or a lattice) has no boundary conditions.
    let onlyWithSides (s: CheckScope) : string list = [
        if s.Sides.IsEmpty then
            for b in s.Model.Boundaries |> List.distinctBy (fun b -> b.Field) do
                sprintf
                    "Field '%s' has a boundary condition but the domain is a %s, which has no sides. Remove it, or declare an interval or rectangle domain, e.g. %s."
                    b.Field
                    (CheckWording.domainName s.Model.Domain)
                    (CheckFixes.interval s.Syntax)
    ]

    /// Each boundary condition belongs to a field and a side of the domain, and its value (Dirichlet,
    /// Neumann) is an expression without fields (`ExpressionRules`).
    let values (s: CheckScope) : string list = [
        if not s.Sides.IsEmpty then
            for b in s.Model.Boundaries do
                if not (s.IsField b.Field) && not (s.IsDiagnostic b.Field) then
                    sprintf
                        "There is a boundary condition for '%s', which is not a declared field. Declare it or remove the condition.%s"
                        b.Field
                        (CheckWording.suggest b.Field s.FieldNames)
                elif not (List.contains b.Side s.Sides) then
                    sprintf
                        "Field '%s' has a boundary condition on the %s side, which a %s does not have. Remove it."
                        b.Field
                        (CheckWording.sideName b.Side)
                        (CheckWording.domainName s.Model.Domain)

                match b.Condition with
                | BoundaryCondition.Dirichlet e
                | BoundaryCondition.Neumann e ->
                    yield!
                        ExpressionRules.inExpression
                            s
                            (CheckWording.inBoundary b.Side b.Field)
                            (fun n -> not (s.IsField n) && not (s.IsDiagnostic n))
                            "boundary values may use coordinates, t, parameters, constants and forcings, not fields"
                            e
                | _ -> ()
    ]

    let periodicPairs (field: string) (bcs: Boundary list) (sides: Side list) = [
        let periodic side =
            bcs
            |> List.exists (fun b -> b.Side = side && b.Condition = BoundaryCondition.Periodic)

        for a, b in [ Side.Left, Side.Right; Side.Bottom, Side.Top ] do
            if List.contains a sides && periodic a <> periodic b then
                sprintf
                    "Field '%s' is periodic on the %s side but not on the %s side. Periodic conditions come in pairs: set both."
                    field
                    (CheckWording.sideName (if periodic a then a else b))
                    (CheckWording.sideName (if periodic a then b else a))
    ]

    /// Each field (diagnostic fields too) has exactly one condition on each side of the domain, and periodic
    /// conditions come in pairs of opposite sides.
    let everySide (s: CheckScope) : string list = [
        if not s.Sides.IsEmpty then
            for f in (s.Model.Fields |> List.map (fun f -> f.Name)) @ s.DiagnosticNames do
                let bcs = s.BoundariesOf f

                for side in s.Sides do
                    match bcs |> List.filter (fun b -> b.Side = side) with
                    | [] -> missing s.Syntax s.Model.Domain f side
                    | [ _ ] -> ()
                    | _ -> several f side

                yield! periodicPairs f bcs s.Sides
    ]
