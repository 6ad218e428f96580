namespace Hybrid

/// Checks that every field has exactly one equation and every equation belongs to a field.
[<RequireQualifiedAccess>]
module internal EquationRules =

    /// The problem of a field without an equation, with the fix in the model's syntax.
    let missing (syntax: ModelSyntax) (field: string) : string =
        sprintf "Field '%s' has no equation. Add one, e.g. %s." field (CheckFixes.equation syntax field)

    /// The problem of a field with several equations.
    let several (field: string) (count: int) : string =
        sprintf "Field '%s' has %d equations. Keep exactly one." field count

    /// Each field has exactly one equation.
    let onePerField (s: CheckScope) : string list = [
        for f in s.Model.Fields do
            match s.EquationsOf f.Name with
            | [] -> missing s.Syntax f.Name
            | [ _ ] -> ()
            | many -> several f.Name many.Length
    ]

    /// Each equation is the equation of a declared field.
    let ofFields (s: CheckScope) : string list = [
        for eq in s.Model.Equations do
            if not (s.IsField eq.Field) && not (s.IsDiagnostic eq.Field) then
                sprintf
                    "There is an equation for '%s', which is not a declared field%s. Declare it with %s.%s"
                    eq.Field
                    (match s.KindOf eq.Field with
                     | Some k -> sprintf " (it is a %s)" k
                     | None -> "")
                    (CheckFixes.field s.Syntax eq.Field)
                    (CheckWording.suggest eq.Field s.FieldNames)
    ]
