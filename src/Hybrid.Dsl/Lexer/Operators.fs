namespace Hybrid

/// Operators and punctuation, normalised (− and – to -, × and ⋅ to *, ÷ to /), brackets matched as they are
/// read, and the mathematical symbols ∇, ∇·, ∇², Δ, Σ_j, ∂ and √.
module internal LexOperators =

    /// True when `c` starts one of the mathematical symbols.
    let startsSymbol (c: char) =
        c = '∇' || c = 'Δ' || c = 'Σ' || c = '∂' || c = '√'

    /// Reads the mathematical symbol at the scanner's position.
    let symbol (s: Scanner) =
        let source = s.Source
        let n = s.Length
        let i = s.Pos

        match source[i] with
        | '∇' ->
            if i + 1 < n && (source[i + 1] = '·' || source[i + 1] = '⋅' || source[i + 1] = '.') then
                s.Add(Tok.NablaDot, i)
                s.Pos <- i + 2
            elif i + 1 < n && source[i + 1] = '²' then
                s.Add(Tok.Laplace, i)
                s.Pos <- i + 2
            else
                s.Add(Tok.Nabla, i)
                s.Pos <- i + 1
        | 'Δ' ->
            s.Add(Tok.Laplace, i)
            s.Pos <- i + 1
        | 'Σ' ->
            // Σ_j or Σⱼ
            if i + 2 < n && source[i + 1] = '_' && source[i + 2] = 'j' then
                s.Add(Tok.FastSum, i)
                s.Pos <- i + 3
            elif i + 1 < n && source[i + 1] = 'ⱼ' then
                s.Add(Tok.FastSum, i)
                s.Pos <- i + 2
            else
                s.Fail(i, "'Σ' must be followed by '_j' (the sum over the fast index), e.g. Σ_j(Y[j])")
        | '∂' ->
            s.Add(Tok.Partial, i)
            s.Pos <- i + 1
        | _ ->
            s.Add(Tok.Root, i)
            s.Pos <- i + 1

    /// Pops the innermost open bracket for the `closer` at `start`, refusing a closer with no opener or one
    /// that does not match.
    let private close (s: Scanner) (start: int) (opener: char) (closer: char) =
        if s.Openers.Count = 0 then
            s.Fail(
                start,
                sprintf "this '%c' has no matching '%c'; remove it or add the '%c' it closes" closer opener opener
            )

        let o, l, col = s.Openers.Peek()

        if o <> opener then
            let wanted = if o = '(' then ')' else ']'

            raise (
                SourceText.error
                    s.Source
                    l
                    col
                    (sprintf
                        "this '%c' is not closed: the '%c' at line %d, column %d comes first. Add '%c' before it"
                        o
                        closer
                        s.Line
                        (s.Column start)
                        wanted)
            )

        s.Openers.Pop() |> ignore

    /// The operator `c` at `start` stands for, normalised, after opening or closing a bracket; None when `c` is
    /// no operator.
    let private operator (s: Scanner) (start: int) (c: char) : string option =
        match c with
        | '+'
        | '*'
        | '/'
        | '^'
        | ','
        | '='
        | ';'
        | '>'
        | '<' -> Some(string c)
        | '-'
        | '−'
        | '–' -> Some "-"
        | '×'
        | '⋅' -> Some "*"
        | '·' -> Some "·"
        | '÷' -> Some "/"
        | '('
        | '[' ->
            s.Openers.Push((c, s.Line, s.Column start))
            Some(string c)
        | ')' ->
            close s start '(' ')'
            Some ")"
        | ']' ->
            close s start '[' ']'
            Some "]"
        | _ -> None

    /// Reads the operator at the scanner's position into an Op token; refuses any other character.
    let punctuation (s: Scanner) =
        let start = s.Pos

        match operator s start s.Source[start] with
        | Some o ->
            s.Add(Tok.Op o, start)
            s.Pos <- start + 1
        | None -> LexRefusals.unexpected s start

    /// Refuses a bracket still open at the end of the text.
    let refuseUnclosed (s: Scanner) =
        if s.Openers.Count > 0 then
            let o, l, col = s.Openers.Peek()

            raise (
                SourceText.error
                    s.Source
                    l
                    col
                    (sprintf
                        "this '%c' is not closed; add '%c' where it ends (inside brackets a new line does not end the statement, so the rest of the text was read as part of it)"
                        o
                        (if o = '(' then ')' else ']'))
            )
