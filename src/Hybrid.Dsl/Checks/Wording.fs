namespace Hybrid

/// The words the model checks share: "Did you mean" suggestions, side and domain names, printed terms and
/// the phrases naming where an expression sits.
[<RequireQualifiedAccess>]
module internal CheckWording =

    /// " Did you mean 'x'?" for the closest candidate (bounded edit distance, look-alikes named), or "".
    let suggest (name: string) (candidates: string list) = Suggest.didYouMean name candidates

    let sideName (s: Side) =
        match s with
        | Side.Left -> "left"
        | Side.Right -> "right"
        | Side.Bottom -> "bottom"
        | Side.Top -> "top"

    let domainName (d: Domain) =
        match d with
        | Domain.Point -> "0-D model"
        | Domain.Interval _ -> "1-D interval"
        | Domain.Rectangle _ -> "2-D rectangle"
        | Domain.Lattice _ -> "periodic lattice"

    /// An expression as the user reads it (Unicode notation).
    let term (e: Expr) = Print.expr Notation.Unicode e

    /// The phrase with its first letter capitalised, to start a sentence.
    let sentence (phrase: string) =
        System.Char.ToUpper(phrase[0]).ToString() + phrase.Substring 1

    /// Where the right-hand side of a field's equation sits: "the equation of 'u'".
    let inEquation (field: string) = sprintf "the equation of '%s'" field

    /// Where an initial condition sits: "the initial condition of 'u'".
    let inInitial (field: string) =
        sprintf "the initial condition of '%s'" field

    /// Where a boundary value sits: "the left boundary condition of 'u'".
    let inBoundary (side: Side) (field: string) =
        sprintf "the %s boundary condition of '%s'" (sideName side) field
