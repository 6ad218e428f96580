namespace Hybrid

/// The elliptic equation of a diagnostic field: `Δψ = rhs` or `Δψ − c ψ = rhs` (ASCII `lap(psi) = rhs`,
/// `lap(psi) - c*psi = rhs`) with a number c = κ² ≥ 0, read into an `EllipticEquation`.
module internal EllipticStatement =

    open ExprParser

    /// (ψ, κ²) of a left-hand side Δψ, Δψ − ψ, Δψ − c ψ or Δψ − ψ c; None for any other expression.
    let classify (lhs: Expr) : (string * float) option =
        match lhs with
        | Laplacian(Sym n) -> Some(n, 0.0)
        | Sub(Laplacian(Sym n), Sym m) when n = m -> Some(n, 1.0)
        | Sub(Laplacian(Sym n), Mul(Num c, Sym m))
        | Sub(Laplacian(Sym n), Mul(Sym m, Num c)) when n = m -> Some(n, c)
        | _ -> None

    /// Reads the statement, the cursor on its first token (Δ or `lap`).
    let read (p: Cursor) : EllipticEquation =
        let start = p.Peek
        let lhs = expression p

        match classify lhs with
        | None ->
            failAt
                p
                start
                (sprintf
                    "the left-hand side of a diagnostic field's equation must be Δψ or Δψ − c ψ with a number c ≥ 0 (ASCII lap(psi) or lap(psi) - c*psi), but found %s"
                    (Print.expr Notation.Unicode lhs))
        | Some(field, screening) ->
            expectOp p "=" (sprintf "after the left-hand side of the equation of '%s'" field)

            if endOfStatement p.Peek then
                failAt p p.Peek (sprintf "the equation of '%s' has no right-hand side" field)

            {
                Field = field
                Screening = screening
                Rhs = expression p
            }

    /// True when a statement's text starts like an elliptic equation (Δ, ∇² or `lap`), not like ∂u/∂t.
    let startsElliptic (text: string) : bool =
        let t = text.TrimStart()
        t.StartsWith "Δ" || t.StartsWith "∇²" || t.StartsWith "lap"

    /// Parses text holding one elliptic equation `Δψ = rhs` (or `lap(psi) = rhs`, `Δψ − c ψ = rhs`).
    let parse (text: string) : EllipticEquation =
        let p = Cursor(text, Lexer.tokenize text)
        let eq = read p

        if p.Peek.Tok <> Tok.Eof && p.Peek.Tok <> Tok.Newline then
            failAt p p.Peek (sprintf "unexpected %s after the equation" (describe p.Peek))

        eq
