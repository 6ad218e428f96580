namespace Hybrid

/// Parsing the text form (Unicode or ASCII) into expressions, equations and models. Every failure is a
/// `ParseException` (with 1-based line and column and a caret under the spot) or, for a well-formed text
/// that describes an ill-formed model, a `ModelException`; no other exception escapes, except
/// `ArgumentNullException` for a null text. Texts are limited in size (see `Limits`).
[<RequireQualifiedAccess>]
module Parse =

    /// Names of the built-in one-argument functions.
    val functions: (string * Fn) list

    /// Words with a built-in meaning inside expressions; they cannot name symbols.
    val reserved: string list

    /// Parses one expression (Unicode or ASCII). See docs/dsl.fsx for the grammar.
    val expr: text: string -> Expr

    /// Parses one equation `∂u/∂t = rhs` or `du/dt = rhs`.
    val equation: text: string -> Equation

    /// Parses one elliptic equation of a diagnostic field: `Δψ = rhs`, `Δψ − c ψ = rhs` with a number c ≥ 0
    /// (ASCII `lap(psi) = rhs`, `lap(psi) - c*psi = rhs`).
    val ellipticEquation: text: string -> EllipticEquation

    /// Parses a model from its text form without checking it (see `model`). A repeated initial condition, or a
    /// repeated boundary condition for the same field and side, is a ParseException naming both lines; a
    /// boundary line for one side after a line for every side of the same field replaces it on that side.
    val modelUnchecked: text: string -> Model

    /// Parses a model from its text form and checks it (`Checks.validateIn ModelSyntax.Text`): raises
    /// `ParseException` for text that does not follow the grammar and `ModelException` for a model that fails
    /// its checks, each fix written as a statement of the text form.
    val model: text: string -> Model
