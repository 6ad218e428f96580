namespace Hybrid

/// The tokens of the text form.
[<RequireQualifiedAccess>]
type internal Tok =
    | Number of value: float * isInt: bool
    | Ident of string
    | Str of string
    /// Punctuation and operators, normalised: + - * / ^ ( ) [ ] , = ; > < ' (and · for ·, × and ÷ become * and /)
    | Op of string
    | Nabla
    | NablaDot
    | Laplace
    | Partial
    | Root
    | FastSum
    /// An integer written in superscript digits (x² → Superscript 2).
    | Superscript of int
    | Newline
    | Eof

/// A token with its 1-based position, its 0-based source offset and whether whitespace precedes it.
type internal Token = {
    Tok: Tok
    Line: int
    Col: int
    Offset: int
    SpaceBefore: bool
}
