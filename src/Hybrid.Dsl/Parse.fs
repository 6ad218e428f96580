// The public surface and its documentation: Parse.fsi.
namespace Hybrid

open System

[<RequireQualifiedAccess>]
module Parse =

    let functions: (string * Fn) list = ExprParser.functions

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

    let expr (text: string) : Expr = guard text ExprParser.parseExpr

    let equation (text: string) : Equation = guard text ExprParser.parseEquation

    let ellipticEquation (text: string) : EllipticEquation = guard text EllipticStatement.parse

    let modelUnchecked (text: string) : Model = guard text ModelParser.parse

    let model (text: string) : Model =
        let m = modelUnchecked text
        Checks.validateIn ModelSyntax.Text m
        m
