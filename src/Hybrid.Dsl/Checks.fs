// The public surface and its documentation: Checks.fsi.
namespace Hybrid

[<RequireQualifiedAccess>]
module Checks =

    [<Literal>]
    let maxExpressionNodes = SizeRules.MaxNodes

    [<Literal>]
    let maxNesting = SizeRules.MaxNesting

    /// The rules of the domain, declarations and equations, in the order their problems are listed.
    let private modelRules: (CheckScope -> string list) list = [
        DomainRules.domain
        DomainRules.hasFields
        DeclarationRules.duplicates
        DeclarationRules.names
        DeclarationRules.parameters
        DeclarationRules.constants
        DeclarationRules.closures
        DeclarationRules.fastFields
        EquationRules.onePerField
        EquationRules.ofFields
        SizeRules.expressionSizes
        ExpressionRules.equations
        OperatorRules.equations
        DiagnosticRules.domain
        DiagnosticRules.onePerDiagnostic
        DiagnosticRules.ofDiagnostics
        DiagnosticRules.rightHandSides
        OperatorRules.ellipticEquations
        DiagnosticRules.acyclic
        ExpressionRules.fieldwiseArguments
        ExpressionRules.fieldwiseInFluxCoefficients
    ]

    /// The rules of the initial conditions given (not that every field has one).
    let private initialValueRules: (CheckScope -> string list) list = [ InitialRules.values; InitialRules.onePerField ]

    /// The rules of the boundary conditions.
    let private boundaryRules: (CheckScope -> string list) list = [
        BoundaryRules.onlyWithSides
        BoundaryRules.values
        BoundaryRules.everySide
    ]

    /// The structural rules, in the order their problems are listed.
    let private rules =
        modelRules @ (InitialRules.everyField :: initialValueRules) @ boundaryRules

    let problemsIn (syntax: ModelSyntax) (m: Model) : string list =
        let scope = CheckScope(m, syntax)
        let structural = rules |> List.collect (fun rule -> rule scope)

        let all =
            if structural.IsEmpty then
                UnitRules.consistency scope
            else
                structural

        List.distinct all

    let problems (m: Model) : string list = problemsIn ModelSyntax.Builder m

    /// The exception `validate` raises for these problems of model `m`.
    let private failure (m: Model) (problems: string list) : exn =
        match problems with
        | [ one ] -> ModelException(sprintf "Model '%s': %s" m.Name one)
        | many ->
            ModelException(
                sprintf
                    "Model '%s' has %d problems:\n%s"
                    m.Name
                    many.Length
                    (many |> List.map (fun s -> "  - " + s) |> String.concat "\n")
            )

    let validateIn (syntax: ModelSyntax) (m: Model) : unit =
        match problemsIn syntax m with
        | [] -> ()
        | many -> raise (failure m many)

    let validate (m: Model) : unit = validateIn ModelSyntax.Builder m

    let compilableIn (syntax: ModelSyntax) (m: Model) : unit =
        let scope = CheckScope(m, syntax)

        match
            modelRules @ initialValueRules @ boundaryRules
            |> List.collect (fun rule -> rule scope)
            |> List.distinct
        with
        | [] -> ()
        | many -> raise (failure m many)

    let compilable (m: Model) : unit = compilableIn ModelSyntax.Builder m

    let equationOf (m: Model) (field: string) : Equation =
        match m.Equations |> List.filter (fun e -> e.Field = field) with
        | [ eq ] -> eq
        | [] -> raise (failure m [ EquationRules.missing ModelSyntax.Builder field ])
        | many -> raise (failure m [ EquationRules.several field many.Length ])

    let boundaryOf (m: Model) (field: string) (side: Side) : BoundaryCondition =
        match m.Boundaries |> List.filter (fun b -> b.Field = field && b.Side = side) with
        | [ b ] -> b.Condition
        | [] -> raise (failure m [ BoundaryRules.missing ModelSyntax.Builder m.Domain field side ])
        | _ -> raise (failure m [ BoundaryRules.several field side ])
