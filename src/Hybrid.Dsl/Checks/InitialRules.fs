namespace Hybrid

/// Checks that every field has one initial condition, of coordinates, parameters, constants and forcings.
[<RequireQualifiedAccess>]
module internal InitialRules =

    /// The problem of a field without an initial condition, with the fix in the model's syntax.
    let missing (syntax: ModelSyntax) (field: string) : string =
        sprintf "Field '%s' has no initial condition. Add one, e.g. %s." field (CheckFixes.initial syntax field)

    /// Each field has an initial condition.
    let everyField (s: CheckScope) : string list = [
        for f in s.Model.Fields do
            if (s.InitialsOf f.Name).IsEmpty then
                missing s.Syntax f.Name
    ]

    /// Each initial condition belongs to a field and is an expression without fields (`ExpressionRules`), or
    /// names its data.
    let values (s: CheckScope) : string list = [
        for i in s.Model.Initials do
            if not (s.IsField i.Field) && not (s.IsDiagnostic i.Field) then
                sprintf
                    "There is an initial condition for '%s', which is not a declared field. Declare it with %s or remove it.%s"
                    i.Field
                    (CheckFixes.field s.Syntax i.Field)
                    (CheckWording.suggest i.Field s.FieldNames)

            match i.Value with
            | InitialCondition.Expr e ->
                yield!
                    ExpressionRules.inExpression
                        s
                        (CheckWording.inInitial i.Field)
                        (fun n -> not (s.IsField n) && not (s.IsDiagnostic n))
                        "initial conditions may use coordinates, parameters, constants and forcings, not fields"
                        e
            | InitialCondition.FromData key ->
                if System.String.IsNullOrWhiteSpace key then
                    sprintf "The initial condition of '%s' names no data. Give the data key." i.Field
    ]

    /// No field has two initial conditions (the first such field is named).
    let onePerField (s: CheckScope) : string list =
        match
            s.Model.Initials
            |> List.countBy (fun i -> i.Field)
            |> List.tryFind (fun (_, k) -> k > 1)
        with
        | Some(f, k) -> [ sprintf "Field '%s' has %d initial conditions. Keep one." f k ]
        | None -> []
