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
module internal Lexer =

    let private superDigits = "⁰¹²³⁴⁵⁶⁷⁸⁹"

    let private isIdentStart (c: char) =
        (Char.IsLetter c && c <> 'Δ' && c <> 'Σ') || c = '_'

    let private isIdentChar (c: char) =
        (Char.IsLetterOrDigit c && c <> 'Δ' && c <> 'Σ') || c = '_'

    /// Tokenises `source`; raises ParseException on a character that cannot start a token.
    let tokenize (source: string) : Token list =
        let n = source.Length
        let out = ResizeArray<Token>()
        let mutable i = 0
        let mutable line = 1
        let mutable lineStart = 0
        let mutable space = true
        let mutable depth = 0

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

        while i < n do
            let c = source[i]
            let start = i

            if c = '\n' then
                if depth = 0 then
                    add Tok.Newline start

                i <- i + 1
                line <- line + 1
                lineStart <- i
                space <- true
            elif Char.IsWhiteSpace c then
                i <- i + 1
                space <- true
            elif c = '#' || (c = '/' && i + 1 < n && source[i + 1] = '/') then
                while i < n && source[i] <> '\n' do
                    i <- i + 1

                space <- true
            elif Char.IsDigit c || (c = '.' && i + 1 < n && Char.IsDigit source[i + 1]) then
                let mutable isInt = true

                while i < n && Char.IsDigit source[i] do
                    i <- i + 1

                if i < n && source[i] = '.' && i + 1 < n && Char.IsDigit source[i + 1] then
                    isInt <- false
                    i <- i + 1

                    while i < n && Char.IsDigit source[i] do
                        i <- i + 1
                elif i < n && source[i] = '.' && not (i + 1 < n && Char.IsLetter source[i + 1]) then
                    // "2." is a real number
                    isInt <- false
                    i <- i + 1

                if
                    i < n
                    && (source[i] = 'e' || source[i] = 'E')
                    && i + 1 < n
                    && (Char.IsDigit source[i + 1]
                        || ((source[i + 1] = '+' || source[i + 1] = '-')
                            && i + 2 < n
                            && Char.IsDigit source[i + 2]))
                then
                    isInt <- false
                    i <- i + 2

                    while i < n && Char.IsDigit source[i] do
                        i <- i + 1

                let text = source.Substring(start, i - start)

                match
                    Double.TryParse(text, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture)
                with
                | true, v when not (Double.IsInfinity v) -> add (Tok.Number(v, isInt)) start
                | _ -> fail start (sprintf "the number '%s' is not a finite real number" text)
            elif isIdentStart c then
                while i < n && isIdentChar source[i] do
                    i <- i + 1

                let word = source.Substring(start, i - start)

                if word = "sum_j" then
                    add Tok.FastSum start
                else
                    add (Tok.Ident word) start
            elif c = '"' then
                i <- i + 1

                while i < n && source[i] <> '"' && source[i] <> '\n' do
                    i <- i + 1

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
                    | '(' ->
                        depth <- depth + 1
                        Some "("
                    | '[' ->
                        depth <- depth + 1
                        Some "["
                    | ')' ->
                        depth <- max 0 (depth - 1)
                        Some ")"
                    | ']' ->
                        depth <- max 0 (depth - 1)
                        Some "]"
                    | _ -> None

                match op with
                | Some o ->
                    add (Tok.Op o) start
                    i <- i + 1
                | None ->
                    let shown =
                        if Char.IsControl c then
                            sprintf "U+%04X" (int c)
                        else
                            string c

                    fail
                        start
                        (sprintf
                            "unexpected character '%s'. Use ASCII operators (+ - * / ^) or the Unicode forms (− × ∇ ∇· Δ ∂ √)"
                            shown)

        add Tok.Eof n
        List.ofSeq out
