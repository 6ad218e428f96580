namespace Hybrid

/// The `domain` statement: `point`, `interval [a, b] cells n`, `rectangle [a, b] x [c, d] cells nx x ny` or
/// `lattice K [x J]`.
module internal DomainStatement =

    open ExprParser
    open StatementReaders

    let private interval (p: Cursor) : Domain =
        let a, b = bracketPair p "the interval"
        let c = p.Advance()

        if c.Tok <> Tok.Ident "cells" then
            failAt p c (sprintf "expected 'cells <n>' after the interval but found %s" (describe c))

        Domain.Interval(a, b, integer p "the number of cells")

    let private rectangle (p: Cursor) : Domain =
        let a, b = bracketPair p "the x range"
        let x = p.Advance()

        if not (isTimes p x) then
            failAt p x (sprintf "expected 'x' (or '×') between the two ranges but found %s" (describe x))

        let c, d = bracketPair p "the y range"
        let cl = p.Advance()

        if cl.Tok <> Tok.Ident "cells" then
            failAt p cl (sprintf "expected 'cells <nx> x <ny>' but found %s" (describe cl))

        let nx = integer p "the number of cells along x"
        let ny = byCount p "cells <nx> x <ny>" "the number of cells along y"
        Domain.Rectangle(a, b, c, d, nx, ny)

    let private lattice (p: Cursor) : Domain =
        let k = integer p "the number of lattice sites"

        let j =
            match fusedCount p.Peek with
            | Some j ->
                p.Advance() |> ignore
                j
            | None when isTimes p p.Peek ->
                p.Advance() |> ignore
                integer p "the number of fast sites per slow site"
            | None -> 0

        Domain.Lattice(k, j)

    /// Reads a `domain` statement, the cursor on the keyword.
    let read (p: Cursor) : Domain =
        p.Advance() |> ignore
        let k = p.Advance()

        match k.Tok with
        | Tok.Ident "point" -> Domain.Point
        | Tok.Ident "interval" -> interval p
        | Tok.Ident "rectangle" -> rectangle p
        | Tok.Ident "lattice" -> lattice p
        | _ ->
            failAt
                p
                k
                (sprintf
                    "expected a domain: point, interval [a, b] cells n, rectangle [a, b] x [c, d] cells nx x ny, or lattice K [x J]; found %s"
                    (describe k))
