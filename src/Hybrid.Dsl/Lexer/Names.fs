namespace Hybrid

open System

/// Names (letters, ASCII digits and '_', at most `Limits.MaxIdentifierLength` characters, no letter that looks
/// like a Latin one) and quoted strings (module and data keys, on one line, no invisible characters).
module internal LexNames =

    let private isLetter (c: char) = Char.IsLetter c && c <> 'Δ' && c <> 'Σ'

    /// True when a name can start with `c`: a letter (not the operators Δ and Σ) or '_'.
    let startsName (c: char) = isLetter c || c = '_'

    let private isNameChar (c: char) =
        isLetter c || LexNumbers.isAsciiDigit c || c = '_'

    /// Refuses a name from `start` to the scanner's position that is too long or holds a look-alike letter.
    let private refuseBadName (s: Scanner) (start: int) =
        let source = s.Source
        let i = s.Pos

        if i - start > Limits.MaxIdentifierLength then
            s.Fail(
                start,
                sprintf
                    "this name has %d characters; a name has at most %d (Limits.MaxIdentifierLength). Choose a shorter name"
                    (i - start)
                    Limits.MaxIdentifierLength
            )

        for k in start .. i - 1 do
            match Confusables.tryLookAlike source[k] with
            | Some(name, latin) ->
                s.Fail(
                    k,
                    sprintf
                        "%s %s looks like '%c' but is a different character, so the name would not match one typed with '%c'. Type '%c' instead"
                        (Confusables.codePoint source[k])
                        name
                        latin
                        latin
                        latin
                )
            | None -> ()

    /// Reads the name at the scanner's position into an Ident token (`sum_j` into FastSum).
    let name (s: Scanner) =
        let start = s.Pos

        while s.Pos < s.Length && isNameChar s.Source[s.Pos] do
            s.Pos <- s.Pos + 1

        refuseBadName s start
        let word = s.Source.Substring(start, s.Pos - start)

        if word = "sum_j" then
            s.Add(Tok.FastSum, start)
        else
            s.Add(Tok.Ident word, start)

    /// Reads the quoted string at the scanner's position into a Str token.
    let quoted (s: Scanner) =
        let source = s.Source
        let start = s.Pos
        s.Pos <- s.Pos + 1

        while s.Pos < s.Length && source[s.Pos] <> '"' && source[s.Pos] <> '\n' do
            match Confusables.tryInvisible source[s.Pos] with
            | Some name -> LexRefusals.invisible s s.Pos name
            | None -> s.Pos <- s.Pos + 1

        if s.Pos >= s.Length || source[s.Pos] <> '"' then
            s.Fail(start, "this string is not closed; add a '\"' before the end of the line")

        s.Add(Tok.Str(source.Substring(start + 1, s.Pos - start - 1)), start)
        s.Pos <- s.Pos + 1
