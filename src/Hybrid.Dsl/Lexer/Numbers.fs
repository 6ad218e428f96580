namespace Hybrid

open System

/// Numbers in ASCII digits (`2`, `0.5`, `.5`, `2.`, `1e-3`, `1e−3`) and exponents in superscript digits (`²`,
/// `⁻¹`). A number with two decimal points, and two numbers in a row outside [ ], are refused.
module internal LexNumbers =

    let private superDigits = "⁰¹²³⁴⁵⁶⁷⁸⁹"

    /// True for the digits 0-9.
    let isAsciiDigit (c: char) = c >= '0' && c <= '9'

    /// A minus sign as it may appear in an exponent: '-', '−' (U+2212) or '–' (U+2013); or a '+'.
    let private isSign (c: char) =
        c = '+' || c = '-' || c = '−' || c = '–'

    /// True when a number starts at the scanner's position: an ASCII digit, or '.' before one.
    let startsNumber (s: Scanner) =
        let i = s.Pos
        let c = s.Source[i]

        isAsciiDigit c || (c = '.' && i + 1 < s.Length && isAsciiDigit s.Source[i + 1])

    /// True when a superscript exponent starts with `c`.
    let startsSuperscript (c: char) = c = '⁻' || superDigits.IndexOf c >= 0

    let private skipDigits (s: Scanner) =
        while s.Pos < s.Length && isAsciiDigit s.Source[s.Pos] do
            s.Pos <- s.Pos + 1

    /// Moves past the digits, the decimal point and the exponent of the number at the scanner's position;
    /// returns whether it is written as an integer and whether it has a decimal point.
    let private extent (s: Scanner) : bool * bool =
        let source = s.Source
        let n = s.Length
        let mutable isInt = true
        let mutable hasPoint = false
        skipDigits s

        if
            s.Pos < n
            && source[s.Pos] = '.'
            && s.Pos + 1 < n
            && isAsciiDigit source[s.Pos + 1]
        then
            isInt <- false
            hasPoint <- true
            s.Pos <- s.Pos + 1
            skipDigits s
        elif
            s.Pos < n
            && source[s.Pos] = '.'
            && not (s.Pos + 1 < n && Char.IsLetter source[s.Pos + 1])
        then
            // "2." is a real number
            isInt <- false
            hasPoint <- true
            s.Pos <- s.Pos + 1

        let i = s.Pos

        if
            i < n
            && (source[i] = 'e' || source[i] = 'E')
            && i + 1 < n
            && (isAsciiDigit source[i + 1]
                || (isSign source[i + 1] && i + 2 < n && isAsciiDigit source[i + 2]))
        then
            isInt <- false
            s.Pos <- i + 2
            skipDigits s

        isInt, hasPoint

    /// Refuses a second decimal point (or one in the exponent) right after the number read from `start`.
    let private refuseSecondPoint (s: Scanner) (start: int) (hasPoint: bool) =
        let source = s.Source
        let n = s.Length
        let i = s.Pos

        if
            i < n
            && source[i] = '.'
            && (hasPoint || (i + 1 < n && isAsciiDigit source[i + 1]))
        then
            let mutable j = i

            while j < n && (isAsciiDigit source[j] || source[j] = '.') do
                j <- j + 1

            s.Fail(
                start,
                sprintf
                    "'%s' is not a number: a number has at most one decimal point and none in its exponent. Write one number (e.g. 1.25), or put an operator between two numbers (e.g. 1.2 * 0.3)"
                    (source.Substring(start, j - start))
            )

    /// Refuses a number `text` at `start` that follows another number token (outside [ ], where the parser asks
    /// for the missing ',' instead).
    let private refuseTwoInARow (s: Scanner) (start: int) (text: string) =
        let out = s.Tokens

        let afterNumber =
            not s.InList
            && out.Count > 0
            && (match out[out.Count - 1].Tok with
                | Tok.Number _ -> true
                | _ -> false)

        if afterNumber then
            let prev = out[out.Count - 1]
            let first = s.Source.Substring(prev.Offset, s.LastNumberEnd - prev.Offset)

            s.Fail(
                start,
                sprintf
                    "two numbers in a row, '%s' then '%s': a number has no spaces inside (write %s%s), and two numbers are multiplied with an operator (%s * %s)"
                    first
                    text
                    first
                    text
                    first
                    text
            )

    /// Reads the number at the scanner's position into a Number token.
    let number (s: Scanner) =
        let start = s.Pos
        let isInt, hasPoint = extent s
        refuseSecondPoint s start hasPoint
        let text = s.Source.Substring(start, s.Pos - start)
        refuseTwoInARow s start text
        let normalised = text.Replace('−', '-').Replace('–', '-')

        match
            Double.TryParse(normalised, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture)
        with
        | true, v when not (Double.IsInfinity v) ->
            s.Add(Tok.Number(v, isInt), start)
            s.LastNumberEnd <- s.Pos
        | _ -> s.Fail(start, sprintf "the number '%s' is not a finite real number" text)

    /// Reads a superscript exponent (`²`, `⁻¹`) at the scanner's position into a Superscript token.
    let superscript (s: Scanner) =
        let source = s.Source
        let start = s.Pos
        let neg = (source[start] = '⁻')

        if neg then
            s.Pos <- s.Pos + 1

        let digitsStart = s.Pos

        while s.Pos < s.Length && superDigits.IndexOf source[s.Pos] >= 0 do
            s.Pos <- s.Pos + 1

        if s.Pos = digitsStart then
            s.Fail(start, "'⁻' must be followed by superscript digits, e.g. x⁻¹")

        let digits =
            source.Substring(digitsStart, s.Pos - digitsStart)
            |> Seq.map (fun d -> char (int '0' + superDigits.IndexOf d))
            |> Array.ofSeq
            |> String

        match Int32.TryParse digits with
        | true, v -> s.Add(Tok.Superscript(if neg then -v else v), start)
        | _ -> s.Fail(start, "this superscript exponent is too large")
