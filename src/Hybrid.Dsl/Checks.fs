namespace Hybrid

/// The checks every model passes when it is built (by the builder, the parser, or `validate` by hand). Each
/// problem names the symbol, the problem and the fix. The rules live in `Checks/`, one file per concept
/// (domain, declarations, equations, expression size, symbols in expressions, operators, initial conditions,
/// boundary conditions, units); this module runs them in order and is the one public entry point.
[<RequireQualifiedAccess>]
module Checks =

    /// The most nodes (numbers, symbols and operators) one expression — an equation's right-hand side, an
    /// initial condition or a boundary value — may have: 100,000, e.g. a flat sum of 50,000 terms. A larger
    /// expression is a problem that says to split the sum into several fields or use a closure.
    [<Literal>]
    let maxExpressionNodes = SizeRules.MaxNodes

    /// The deepest nesting one expression may have, not counting the terms of a sum or the factors of a
    /// product: 1,000 levels (e.g. exp(exp(…)) 1,000 times). A deeper expression is a problem that says to name
    /// its parts; sums and products of any length are not limited by it.
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

    /// All problems with a model written in `syntax`, each a sentence naming the symbol, the problem and the
    /// fix, the fix written in that syntax; empty when the model is well formed. Units are checked only when
    /// every other rule passes (they are meaningful only once symbols resolve). Runs in time linear in the
    /// model's size, without recursion.
    let problemsIn (syntax: ModelSyntax) (m: Model) : string list =
        let scope = CheckScope(m, syntax)
        let structural = rules |> List.collect (fun rule -> rule scope)

        let all =
            if structural.IsEmpty then
                UnitRules.consistency scope
            else
                structural

        List.distinct all

    /// All problems with a model (`problemsIn`), the fixes written for the `model { }` builder.
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

    /// Raises `ModelException` listing every problem (one per line, fixes written in `syntax`) when the model
    /// is ill formed: a domain without cells, duplicate or invalid names, parameter values outside their
    /// constraints, a field without exactly one equation, initial condition, and boundary condition per side,
    /// undefined symbols, closures called with the wrong arity, operators the domain lacks, inconsistent units,
    /// and expressions of more than `maxExpressionNodes` nodes. `Parse.model` calls it with `ModelSyntax.Text`.
    let validateIn (syntax: ModelSyntax) (m: Model) : unit =
        match problemsIn syntax m with
        | [] -> ()
        | many -> raise (failure m many)

    /// `validateIn` with the fixes written for the `model { }` builder (which calls it).
    let validate (m: Model) : unit = validateIn ModelSyntax.Builder m

    /// The rules a compiled simulator needs: everything `validateIn` checks except that every field has an
    /// initial condition (a rollout can start from a given state) and units. Raises `ModelException` with the
    /// same problems `validateIn` reports, fixes written in `syntax`.
    let compilableIn (syntax: ModelSyntax) (m: Model) : unit =
        let scope = CheckScope(m, syntax)

        match
            modelRules @ initialValueRules @ boundaryRules
            |> List.collect (fun rule -> rule scope)
            |> List.distinct
        with
        | [] -> ()
        | many -> raise (failure m many)

    /// `compilableIn` with the fixes written for the `model { }` builder. The compiler and the kernel lowering
    /// call this instead of restating those messages.
    let compilable (m: Model) : unit = compilableIn ModelSyntax.Builder m

    /// The equation of a field; raises `ModelException` with the problem `validate` reports when the field has
    /// no equation or several.
    let equationOf (m: Model) (field: string) : Equation =
        match m.Equations |> List.filter (fun e -> e.Field = field) with
        | [ eq ] -> eq
        | [] -> raise (failure m [ EquationRules.missing ModelSyntax.Builder field ])
        | many -> raise (failure m [ EquationRules.several field many.Length ])

    /// The boundary condition of a field on one side; raises `ModelException` with the problem `validate`
    /// reports when the field has none on that side or several.
    let boundaryOf (m: Model) (field: string) (side: Side) : BoundaryCondition =
        match m.Boundaries |> List.filter (fun b -> b.Field = field && b.Side = side) with
        | [ b ] -> b.Condition
        | [] -> raise (failure m [ BoundaryRules.missing ModelSyntax.Builder m.Domain field side ])
        | _ -> raise (failure m [ BoundaryRules.several field side ])
