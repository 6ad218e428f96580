namespace Hybrid

open System

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

/// Positions and the caret-under-the-spot error format shared by lexer and parser.
module internal SourceText =

    /// Builds a ParseException whose message shows the line and a caret under the column.
    let error (source: string) (line: int) (col: int) (message: string) : exn =
        let lines = source.Split('\n')

        let text =
            if line >= 1 && line <= lines.Length then
                lines[line - 1].TrimEnd('\r')
            else
                ""

        let caret = String(' ', max 0 (col - 1)) + "^"
        ParseException(sprintf "Line %d, column %d: %s\n  %s\n  %s" line col message text caret, line, col) :> exn

    /// 1-based (line, column) of a 0-based offset.
    let position (source: string) (offset: int) : int * int =
        let mutable line = 1
        let mutable col = 1

        for i in 0 .. (min offset source.Length) - 1 do
            if source[i] = '\n' then
                line <- line + 1
                col <- 1
            else
                col <- col + 1

        line, col

/// Splits text into tokens. Newlines inside ( ) and [ ] are skipped so that long expressions can span lines.
/// Numbers use the ASCII digits only. Invisible characters, bidirectional controls and letters that look like
/// Latin letters (Cyrillic а, Greek Ο, fullwidth ａ) are refused by code point and Unicode name. A byte-order
/// mark (U+FEFF) as the very first character is skipped silently; anywhere else it is refused.
module internal Lexer =

    let private superDigits = "⁰¹²³⁴⁵⁶⁷⁸⁹"

    let private isAsciiDigit (c: char) = c >= '0' && c <= '9'

    let private isIdentStart (c: char) =
        (Char.IsLetter c && c <> 'Δ' && c <> 'Σ') || c = '_'

    let private isIdentChar (c: char) =
        (Char.IsLetter c && c <> 'Δ' && c <> 'Σ') || isAsciiDigit c || c = '_'

    /// A minus sign as it may appear in an exponent: '-', '−' (U+2212) or '–' (U+2013); or a '+'.
    let private isSign (c: char) =
        c = '+' || c = '-' || c = '−' || c = '–'

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

    /// Tokenises `source`; raises ParseException on a character that cannot start a token, an unclosed bracket,
    /// a malformed number, or a name that is too long or holds a look-alike character.
    let tokenize (source: string) : Token[] =
        let n = source.Length
        let out = ResizeArray<Token>()
        let mutable i = 0
        let mutable line = 1
        let mutable lineStart = 0
        let mutable space = true
        // Open brackets: the character, its line and column.
        let openers = Collections.Generic.Stack<char * int * int>()
        // Where the last number token ends (for two numbers in a row).
        let mutable lastNumberEnd = -1

        let fail (at: int) (msg: string) =
            raise (SourceText.error source line (at - lineStart + 1) msg)

        let add tok start =
            out.Add(
                {
                    Tok = tok
                    Line = line
                    Col = start - lineStart + 1
                    Offset = start
                    SpaceBefore = space
                }
            )

            space <- false

        let invisible (at: int) (name: string) =
            fail
                at
                (sprintf
                    "%s %s is an invisible character (often pasted along with copied text); delete it"
                    (Confusables.codePoint source[at])
                    name)

        if n > 0 && source[0] = '\uFEFF' then
            // A byte-order mark at the very start is an encoding signature, not text.
            i <- 1
            lineStart <- 1

        while i < n do
            let c = source[i]
            let start = i

            if c = '\n' then
                if openers.Count = 0 then
                    add Tok.Newline start

                i <- i + 1
                line <- line + 1
                lineStart <- i
                space <- true
            elif c = '\u2028' || c = '\u2029' || c = '\u0085' then
                fail
                    start
                    (sprintf
                        "%s %s may show as a line break but does not end a statement; use an ordinary newline"
                        (Confusables.codePoint c)
                        (match c with
                         | '\u2028' -> "LINE SEPARATOR"
                         | '\u2029' -> "PARAGRAPH SEPARATOR"
                         | _ -> "NEXT LINE"))
            elif Char.IsWhiteSpace c then
                i <- i + 1
                space <- true
            elif c = '#' || (c = '/' && i + 1 < n && source[i + 1] = '/') then
                while i < n && source[i] <> '\n' do
                    match Confusables.tryBidiControl source[i] with
                    | Some name ->
                        fail
                            i
                            (sprintf
                                "%s %s inside this comment changes how the line is displayed; delete it"
                                (Confusables.codePoint source[i])
                                name)
                    | None -> i <- i + 1

                space <- true
            elif (Confusables.tryInvisible c).IsSome then
                invisible i (Confusables.tryInvisible c).Value
            elif isAsciiDigit c || (c = '.' && i + 1 < n && isAsciiDigit source[i + 1]) then
                let mutable isInt = true
                let mutable hasPoint = false

                while i < n && isAsciiDigit source[i] do
                    i <- i + 1

                if i < n && source[i] = '.' && i + 1 < n && isAsciiDigit source[i + 1] then
                    isInt <- false
                    hasPoint <- true
                    i <- i + 1

                    while i < n && isAsciiDigit source[i] do
                        i <- i + 1
                elif i < n && source[i] = '.' && not (i + 1 < n && Char.IsLetter source[i + 1]) then
                    // "2." is a real number
                    isInt <- false
                    hasPoint <- true
                    i <- i + 1

                if
                    i < n
                    && (source[i] = 'e' || source[i] = 'E')
                    && i + 1 < n
                    && (isAsciiDigit source[i + 1]
                        || (isSign source[i + 1] && i + 2 < n && isAsciiDigit source[i + 2]))
                then
                    isInt <- false
                    i <- i + 2

                    while i < n && isAsciiDigit source[i] do
                        i <- i + 1

                if
                    i < n
                    && source[i] = '.'
                    && (hasPoint || (i + 1 < n && isAsciiDigit source[i + 1]))
                then
                    let mutable j = i

                    while j < n && (isAsciiDigit source[j] || source[j] = '.') do
                        j <- j + 1

                    fail
                        start
                        (sprintf
                            "'%s' is not a number: a number has at most one decimal point and none in its exponent. Write one number (e.g. 1.25), or put an operator between two numbers (e.g. 1.2 * 0.3)"
                            (source.Substring(start, j - start)))

                let text = source.Substring(start, i - start)

                // Inside [ ] (bounds, layer widths) the parser asks for the missing ',' instead.
                let inList = openers.Count > 0 && (let o, _, _ = openers.Peek() in o = '[')

                let afterNumber =
                    not inList
                    && out.Count > 0
                    && (match out[out.Count - 1].Tok with
                        | Tok.Number _ -> true
                        | _ -> false)

                if afterNumber then
                    let prev = out[out.Count - 1]
                    let first = source.Substring(prev.Offset, lastNumberEnd - prev.Offset)

                    fail
                        start
                        (sprintf
                            "two numbers in a row, '%s' then '%s': a number has no spaces inside (write %s%s), and two numbers are multiplied with an operator (%s * %s)"
                            first
                            text
                            first
                            text
                            first
                            text)

                let normalised = text.Replace('−', '-').Replace('–', '-')

                match
                    Double.TryParse(
                        normalised,
                        Globalization.NumberStyles.Float,
                        Globalization.CultureInfo.InvariantCulture
                    )
                with
                | true, v when not (Double.IsInfinity v) ->
                    add (Tok.Number(v, isInt)) start
                    lastNumberEnd <- i
                | _ -> fail start (sprintf "the number '%s' is not a finite real number" text)
            elif Char.IsDigit c then
                let name, v = (Confusables.tryForeignDigit c).Value

                fail
                    start
                    (sprintf
                        "%s %s is not an ASCII digit: numbers are written with the digits 0-9 (here %d)"
                        (Confusables.codePoint c)
                        name
                        v)
            elif isIdentStart c then
                while i < n && isIdentChar source[i] do
                    i <- i + 1

                if i - start > Limits.MaxIdentifierLength then
                    fail
                        start
                        (sprintf
                            "this name has %d characters; a name has at most %d (Limits.MaxIdentifierLength). Choose a shorter name"
                            (i - start)
                            Limits.MaxIdentifierLength)

                for k in start .. i - 1 do
                    match Confusables.tryLookAlike source[k] with
                    | Some(name, latin) ->
                        fail
                            k
                            (sprintf
                                "%s %s looks like '%c' but is a different character, so the name would not match one typed with '%c'. Type '%c' instead"
                                (Confusables.codePoint source[k])
                                name
                                latin
                                latin
                                latin)
                    | None -> ()

                let word = source.Substring(start, i - start)

                if word = "sum_j" then
                    add Tok.FastSum start
                else
                    add (Tok.Ident word) start
            elif c = '"' then
                i <- i + 1

                while i < n && source[i] <> '"' && source[i] <> '\n' do
                    match Confusables.tryInvisible source[i] with
                    | Some name -> invisible i name
                    | None -> i <- i + 1

                if i >= n || source[i] <> '"' then
                    fail start "this string is not closed; add a '\"' before the end of the line"

                add (Tok.Str(source.Substring(start + 1, i - start - 1))) start
                i <- i + 1
            elif c = '∇' then
                if i + 1 < n && (source[i + 1] = '·' || source[i + 1] = '⋅' || source[i + 1] = '.') then
                    add Tok.NablaDot start
                    i <- i + 2
                elif i + 1 < n && source[i + 1] = '²' then
                    add Tok.Laplace start
                    i <- i + 2
                else
                    add Tok.Nabla start
                    i <- i + 1
            elif c = 'Δ' then
                add Tok.Laplace start
                i <- i + 1
            elif c = 'Σ' then
                // Σ_j or Σⱼ
                if i + 2 < n && source[i + 1] = '_' && source[i + 2] = 'j' then
                    add Tok.FastSum start
                    i <- i + 3
                elif i + 1 < n && source[i + 1] = 'ⱼ' then
                    add Tok.FastSum start
                    i <- i + 2
                else
                    fail start "'Σ' must be followed by '_j' (the sum over the fast index), e.g. Σ_j(Y[j])"
            elif c = '∂' then
                add Tok.Partial start
                i <- i + 1
            elif c = '√' then
                add Tok.Root start
                i <- i + 1
            elif c = '⁻' || superDigits.IndexOf c >= 0 then
                let neg = (c = '⁻')

                if neg then
                    i <- i + 1

                let digitsStart = i

                while i < n && superDigits.IndexOf source[i] >= 0 do
                    i <- i + 1

                if i = digitsStart then
                    fail start "'⁻' must be followed by superscript digits, e.g. x⁻¹"

                let digits =
                    source.Substring(digitsStart, i - digitsStart)
                    |> Seq.map (fun d -> char (int '0' + superDigits.IndexOf d))
                    |> Array.ofSeq
                    |> String

                match Int32.TryParse digits with
                | true, v -> add (Tok.Superscript(if neg then -v else v)) start
                | _ -> fail start "this superscript exponent is too large"
            else
                let closes (opener: char) (closer: char) =
                    if openers.Count = 0 then
                        fail
                            start
                            (sprintf
                                "this '%c' has no matching '%c'; remove it or add the '%c' it closes"
                                closer
                                opener
                                opener)

                    let o, l, col = openers.Peek()

                    if o <> opener then
                        let wanted = if o = '(' then ')' else ']'

                        raise (
                            SourceText.error
                                source
                                l
                                col
                                (sprintf
                                    "this '%c' is not closed: the '%c' at line %d, column %d comes first. Add '%c' before it"
                                    o
                                    closer
                                    line
                                    (start - lineStart + 1)
                                    wanted)
                        )

                    openers.Pop() |> ignore

                let op =
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
                        openers.Push((c, line, start - lineStart + 1))
                        Some(string c)
                    | ')' ->
                        closes '(' ')'
                        Some ")"
                    | ']' ->
                        closes '[' ']'
                        Some "]"
                    | _ -> None

                match op with
                | Some o ->
                    add (Tok.Op o) start
                    i <- i + 1
                | None ->
                    match Confusables.tryLookAlike c with
                    | Some(name, ascii) ->
                        fail
                            start
                            (sprintf
                                "unexpected character %s %s, which looks like '%c' but is a different character. Type '%c' instead"
                                (Confusables.codePoint c)
                                name
                                ascii
                                ascii)
                    | None ->
                        fail
                            start
                            (sprintf
                                "unexpected character %s. Use ASCII operators (+ - * / ^) or the Unicode forms (− × ∇ ∇· Δ ∂ √)"
                                (show source start))

        if openers.Count > 0 then
            let o, l, col = openers.Peek()

            raise (
                SourceText.error
                    source
                    l
                    col
                    (sprintf
                        "this '%c' is not closed; add '%c' where it ends (inside brackets a new line does not end the statement, so the rest of the text was read as part of it)"
                        o
                        (if o = '(' then ')' else ']'))
            )

        add Tok.Eof n
        out.ToArray()
