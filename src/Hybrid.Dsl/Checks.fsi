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
    val maxExpressionNodes: int = 100000

    /// The deepest nesting one expression may have, not counting the terms of a sum or the factors of a
    /// product: 1,000 levels (e.g. exp(exp(…)) 1,000 times). A deeper expression is a problem that says to name
    /// its parts; sums and products of any length are not limited by it.
    [<Literal>]
    val maxNesting: int = 1000

    /// All problems with a model written in `syntax`, each a sentence naming the symbol, the problem and the
    /// fix, the fix written in that syntax; empty when the model is well formed. Units are checked only when
    /// every other rule passes (they are meaningful only once symbols resolve). Runs in time linear in the
    /// model's size, without recursion.
    val problemsIn: syntax: ModelSyntax -> m: Model -> string list

    /// All problems with a model (`problemsIn`), the fixes written for the `model { }` builder.
    val problems: m: Model -> string list

    /// Raises `ModelException` listing every problem (one per line, fixes written in `syntax`) when the model
    /// is ill formed: a domain without cells, duplicate or invalid names, parameter values outside their
    /// constraints, a field without exactly one equation, initial condition, and boundary condition per side,
    /// undefined symbols, closures called with the wrong arity, operators the domain lacks, inconsistent units,
    /// and expressions of more than `maxExpressionNodes` nodes. `Parse.model` calls it with `ModelSyntax.Text`.
    val validateIn: syntax: ModelSyntax -> m: Model -> unit

    /// `validateIn` with the fixes written for the `model { }` builder (which calls it).
    val validate: m: Model -> unit

    /// The rules a compiled simulator needs: everything `validateIn` checks except that every field has an
    /// initial condition (a rollout can start from a given state) and units. Raises `ModelException` with the
    /// same problems `validateIn` reports, fixes written in `syntax`.
    val compilableIn: syntax: ModelSyntax -> m: Model -> unit

    /// `compilableIn` with the fixes written for the `model { }` builder. The compiler and the kernel lowering
    /// call this instead of restating those messages.
    val compilable: m: Model -> unit

    /// The equation of a field; raises `ModelException` with the problem `validate` reports when the field has
    /// no equation or several.
    val equationOf: m: Model -> field: string -> Equation

    /// The boundary condition of a field on one side; raises `ModelException` with the problem `validate`
    /// reports when the field has none on that side or several.
    val boundaryOf: m: Model -> field: string -> side: Side -> BoundaryCondition
