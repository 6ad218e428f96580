namespace Hybrid

open System

/// The characters the lexer refuses, each with a message that names it by code point and Unicode name and says
/// what to type instead: invisible characters, bidirectional controls in comments, Unicode line separators,
/// non-ASCII digits, look-alikes of ASCII operators and any other character that cannot start a token.
module internal LexRefusals =

    /// How an unexpected character is shown, quoted: '$', 'U+0001' for a control character, or the character
    /// with its code point and Unicode category when it is not ASCII.
    let private show (source: string) (i: int) : string =
        let c = source[i]

        if
            Char.IsHighSurrogate c
            && i + 1 < source.Length
            && Char.IsLowSurrogate source[i + 1]
        then
            sprintf
                "'%s' (U+%X, outside the Basic Multilingual Plane, e.g. a mathematical italic letter; use plain letters and digits)"
                (source.Substring(i, 2))
                (Char.ConvertToUtf32(c, source[i + 1]))
        elif Char.IsControl c || Char.IsSurrogate c then
            sprintf "'%s'" (Confusables.codePoint c)
        elif c > '~' then
            sprintf "'%c' (%s, Unicode category %A)" c (Confusables.codePoint c) (Char.GetUnicodeCategory c)
        else
            sprintf "'%c'" c

    /// True for the Unicode line and paragraph separators and NEXT LINE, which look like line breaks.
    let isLineSeparator (c: char) =
        c = '\u2028' || c = '\u2029' || c = '\u0085'

    /// Refuses a Unicode line separator at `at`.
    let lineSeparator (s: Scanner) (at: int) : 'a =
        let c = s.Source[at]

        s.Fail(
            at,
            sprintf
                "%s %s may show as a line break but does not end a statement; use an ordinary newline"
                (Confusables.codePoint c)
                (match c with
                 | '\u2028' -> "LINE SEPARATOR"
                 | '\u2029' -> "PARAGRAPH SEPARATOR"
                 | _ -> "NEXT LINE")
        )

    /// Refuses the invisible character at `at`, whose Unicode name is `name`.
    let invisible (s: Scanner) (at: int) (name: string) : 'a =
        s.Fail(
            at,
            sprintf
                "%s %s is an invisible character (often pasted along with copied text); delete it"
                (Confusables.codePoint s.Source[at])
                name
        )

    /// Refuses the bidirectional control `name` at `at` inside a comment.
    let bidiInComment (s: Scanner) (at: int) (name: string) : 'a =
        s.Fail(
            at,
            sprintf
                "%s %s inside this comment changes how the line is displayed; delete it"
                (Confusables.codePoint s.Source[at])
                name
        )

    /// Refuses a decimal digit of another script at `at` (Arabic-Indic ٣, fullwidth ３), giving its value.
    let foreignDigit (s: Scanner) (at: int) : 'a =
        let c = s.Source[at]
        let name, v = (Confusables.tryForeignDigit c).Value

        s.Fail(
            at,
            sprintf
                "%s %s is not an ASCII digit: numbers are written with the digits 0-9 (here %d)"
                (Confusables.codePoint c)
                name
                v
        )

    /// Refuses a character at `at` that cannot start a token, naming the ASCII character it looks like if any.
    let unexpected (s: Scanner) (at: int) : 'a =
        let c = s.Source[at]

        match Confusables.tryLookAlike c with
        | Some(name, ascii) ->
            s.Fail(
                at,
                sprintf
                    "unexpected character %s %s, which looks like '%c' but is a different character. Type '%c' instead"
                    (Confusables.codePoint c)
                    name
                    ascii
                    ascii
            )
        | None ->
            s.Fail(
                at,
                sprintf
                    "unexpected character %s. Use ASCII operators (+ - * / ^) or the Unicode forms (− × ∇ ∇· Δ ∂ √)"
                    (show s.Source at)
            )
