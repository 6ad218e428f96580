namespace Hybrid

open System

/// Splits text into tokens. Newlines inside ( ) and [ ] are skipped so that long expressions can span lines.
/// Numbers use the ASCII digits only. Invisible characters, bidirectional controls and letters that look like
/// Latin letters (Cyrillic а, Greek Ο, fullwidth ａ) are refused by code point and Unicode name. A byte-order
/// mark (U+FEFF) as the very first character is skipped silently; anywhere else it is refused.
module internal Lexer =

    /// Reads the token (or the whitespace or comment) that starts at the scanner's position.
    let private step (s: Scanner) =
        let c = s.Source[s.Pos]

        if c = '\n' then
            LexLayout.newline s
        elif LexRefusals.isLineSeparator c then
            LexRefusals.lineSeparator s s.Pos
        elif Char.IsWhiteSpace c then
            LexLayout.whitespace s
        elif LexLayout.startsComment s then
            LexLayout.comment s
        elif (Confusables.tryInvisible c).IsSome then
            LexRefusals.invisible s s.Pos (Confusables.tryInvisible c).Value
        elif LexNumbers.startsNumber s then
            LexNumbers.number s
        elif Char.IsDigit c then
            LexRefusals.foreignDigit s s.Pos
        elif LexNames.startsName c then
            LexNames.name s
        elif c = '"' then
            LexNames.quoted s
        elif LexOperators.startsSymbol c then
            LexOperators.symbol s
        elif LexNumbers.startsSuperscript c then
            LexNumbers.superscript s
        else
            LexOperators.punctuation s

    /// Tokenises `source`; raises ParseException on a character that cannot start a token, an unclosed bracket,
    /// a malformed number, or a name that is too long or holds a look-alike character.
    let tokenize (source: string) : Token[] =
        let s = Scanner(source)

        if s.Length > 0 && source[0] = '\uFEFF' then
            // A byte-order mark at the very start is an encoding signature, not text.
            s.Pos <- 1
            s.LineStart <- 1

        while s.Pos < s.Length do
            step s

        LexOperators.refuseUnclosed s
        s.Add(Tok.Eof, s.Length)
        s.Tokens.ToArray()
