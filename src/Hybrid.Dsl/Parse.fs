namespace Hybrid

open System

/// Parsing the text form (Unicode or ASCII) into expressions, equations and models. Every failure is a
/// `ParseException` (with 1-based line and column and a caret under the spot) or, for a well-formed text
/// that describes an ill-formed model, a `ModelException`; no other exception escapes, except
/// `ArgumentNullException` for a null text. Texts are limited in size (see `Limits`).
[<RequireQualifiedAccess>]
module Parse =

    /// Names of the built-in one-argument functions.
    let functions: (string * Fn) list = ExprParser.functions

    /// Words with a built-in meaning inside expressions; they cannot name symbols.
    let reserved: string list = ExprParser.reserved

    /// Refuses null and over-long text, then runs `f`, turning any unexpected exception into a ParseException
    /// that asks for a bug report.
    let private guard (text: string) (f: string -> 'a) : 'a =
        if isNull text then
            nullArg "text"

        if text.Length > Limits.MaxTextLength then
            raise (
                ParseException(
                    sprintf
                        "The text has %d characters; the limit is %d (Limits.MaxTextLength). Split the model, or use spatial parameters and data instead of one symbol per value."
                        text.Length
                        Limits.MaxTextLength,
                    1,
                    1
                )
            )

        try
            f text
        with
        | :? HybridException -> reraise ()
        | e ->
            raise (
                ParseException(
                    sprintf
                        "Internal parser error (%s: %s); please report this text as a bug."
                        (e.GetType().Name)
                        e.Message,
                    1,
                    1
                )
            )

    /// Parses one expression (Unicode or ASCII). See docs/dsl.fsx for the grammar.
    let expr (text: string) : Expr = guard text ExprParser.parseExpr

    /// Parses one equation `∂u/∂t = rhs` or `du/dt = rhs`.
    let equation (text: string) : Equation = guard text ExprParser.parseEquation

    /// Parses a model from its text form without checking it (see `model`). A repeated initial condition, or a
    /// repeated boundary condition for the same field and side, is a ParseException naming both lines; a
    /// boundary line for one side after a line for every side of the same field replaces it on that side.
    let modelUnchecked (text: string) : Model = guard text ModelParser.parse

    /// Parses a model from its text form and checks it (`Checks.validateIn ModelSyntax.Text`): raises
    /// `ParseException` for text that does not follow the grammar and `ModelException` for a model that fails
    /// its checks, each fix written as a statement of the text form.
    let model (text: string) : Model =
        let m = modelUnchecked text
        Checks.validateIn ModelSyntax.Text m
        m
