namespace Hybrid

/// The size limits of the text form (`Parse.model`, `Parse.modelUnchecked`, `Parse.expr`, `Parse.equation`).
/// Text past a limit is refused with a `ParseException` that names the limit, the size found and the fix; the
/// limits keep every later stage (checks, printing, compiling) within bounded time and memory. Models built
/// with the `model { }` builder or by hand are not limited.
[<RequireQualifiedAccess>]
module Limits =

    /// The most characters a text may have: 10,000,000 (about 10 MB).
    [<Literal>]
    let MaxTextLength = 10_000_000

    /// The most characters in one name (of a field, parameter, forcing, closure, constant or model): 256.
    [<Literal>]
    let MaxIdentifierLength = 256

    /// The most declarations (field, param, forcing, closure and const statements together) in one model text:
    /// 100,000.
    [<Literal>]
    let MaxDeclarations = 100_000

    /// The most terms (numbers, symbols and calls) in one expression: 1,000,000.
    [<Literal>]
    let MaxTerms = 1_000_000

    /// How deeply brackets and prefix operators (−, ∇, Δ, …) may nest in one expression: 150.
    [<Literal>]
    let MaxNesting = 150
