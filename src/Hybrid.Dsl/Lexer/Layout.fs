namespace Hybrid

/// What separates tokens: newlines (a token outside brackets, skipped inside them so that long expressions can
/// span lines), whitespace and comments (`#` or `//` to the end of the line).
module internal LexLayout =

    /// True when a comment starts at the scanner's position.
    let startsComment (s: Scanner) =
        let i = s.Pos
        let c = s.Source[i]
        c = '#' || (c = '/' && i + 1 < s.Length && s.Source[i + 1] = '/')

    /// Reads a newline: a Newline token unless a bracket is open, then the start of the next line.
    let newline (s: Scanner) =
        if s.Openers.Count = 0 then
            s.Add(Tok.Newline, s.Pos)

        s.Pos <- s.Pos + 1
        s.Line <- s.Line + 1
        s.LineStart <- s.Pos
        s.Space <- true

    /// Skips one whitespace character.
    let whitespace (s: Scanner) =
        s.Pos <- s.Pos + 1
        s.Space <- true

    /// Skips a comment up to the end of its line, refusing bidirectional controls inside it.
    let comment (s: Scanner) =
        let source = s.Source

        while s.Pos < s.Length && source[s.Pos] <> '\n' do
            match Confusables.tryBidiControl source[s.Pos] with
            | Some name -> LexRefusals.bidiInComment s s.Pos name
            | None -> s.Pos <- s.Pos + 1

        s.Space <- true
