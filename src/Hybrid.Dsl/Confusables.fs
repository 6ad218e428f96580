namespace Hybrid

open System
open System.Globalization

/// Characters that are invisible or look like other characters, with their Unicode names (.NET has no API for
/// Unicode names, so the common cases are kept in a table). Used by the lexer to refuse them by name and by
/// the "Did you mean" suggestions to never suggest a name that looks identical to what was typed.
module internal Confusables =

    /// Letters from other scripts that look exactly like a Latin letter: (code point, Unicode name, Latin letter).
    /// The lexer refuses them in names.
    let private strictLetters: (char * string * char) list = [
        '\u0430', "CYRILLIC SMALL LETTER A", 'a'
        '\u0435', "CYRILLIC SMALL LETTER IE", 'e'
        '\u043E', "CYRILLIC SMALL LETTER O", 'o'
        '\u0440', "CYRILLIC SMALL LETTER ER", 'p'
        '\u0441', "CYRILLIC SMALL LETTER ES", 'c'
        '\u0443', "CYRILLIC SMALL LETTER U", 'y'
        '\u0445', "CYRILLIC SMALL LETTER HA", 'x'
        '\u0455', "CYRILLIC SMALL LETTER DZE", 's'
        '\u0456', "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I", 'i'
        '\u0458', "CYRILLIC SMALL LETTER JE", 'j'
        '\u04BB', "CYRILLIC SMALL LETTER SHHA", 'h'
        '\u0501', "CYRILLIC SMALL LETTER KOMI DE", 'd'
        '\u051B', "CYRILLIC SMALL LETTER QA", 'q'
        '\u051D', "CYRILLIC SMALL LETTER WE", 'w'
        '\u0405', "CYRILLIC CAPITAL LETTER DZE", 'S'
        '\u0406', "CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I", 'I'
        '\u0408', "CYRILLIC CAPITAL LETTER JE", 'J'
        '\u0410', "CYRILLIC CAPITAL LETTER A", 'A'
        '\u0412', "CYRILLIC CAPITAL LETTER VE", 'B'
        '\u0415', "CYRILLIC CAPITAL LETTER IE", 'E'
        '\u041A', "CYRILLIC CAPITAL LETTER KA", 'K'
        '\u041C', "CYRILLIC CAPITAL LETTER EM", 'M'
        '\u041D', "CYRILLIC CAPITAL LETTER EN", 'H'
        '\u041E', "CYRILLIC CAPITAL LETTER O", 'O'
        '\u0420', "CYRILLIC CAPITAL LETTER ER", 'P'
        '\u0421', "CYRILLIC CAPITAL LETTER ES", 'C'
        '\u0422', "CYRILLIC CAPITAL LETTER TE", 'T'
        '\u0423', "CYRILLIC CAPITAL LETTER U", 'Y'
        '\u0425', "CYRILLIC CAPITAL LETTER HA", 'X'
        '\u0391', "GREEK CAPITAL LETTER ALPHA", 'A'
        '\u0392', "GREEK CAPITAL LETTER BETA", 'B'
        '\u0395', "GREEK CAPITAL LETTER EPSILON", 'E'
        '\u0396', "GREEK CAPITAL LETTER ZETA", 'Z'
        '\u0397', "GREEK CAPITAL LETTER ETA", 'H'
        '\u0399', "GREEK CAPITAL LETTER IOTA", 'I'
        '\u039A', "GREEK CAPITAL LETTER KAPPA", 'K'
        '\u039C', "GREEK CAPITAL LETTER MU", 'M'
        '\u039D', "GREEK CAPITAL LETTER NU", 'N'
        '\u039F', "GREEK CAPITAL LETTER OMICRON", 'O'
        '\u03A1', "GREEK CAPITAL LETTER RHO", 'P'
        '\u03A4', "GREEK CAPITAL LETTER TAU", 'T'
        '\u03A5', "GREEK CAPITAL LETTER UPSILON", 'Y'
        '\u03A7', "GREEK CAPITAL LETTER CHI", 'X'
        '\u03BF', "GREEK SMALL LETTER OMICRON", 'o'
    ]

    /// Greek small letters that resemble a Latin letter but are common scientific names (ν viscosity, ρ density,
    /// κ conductivity, …): allowed in names, and only named when a name is undefined and the Latin look-alike
    /// is declared.
    let private looseLetters: (char * string * char) list = [
        '\u03B1', "GREEK SMALL LETTER ALPHA", 'a'
        '\u03B3', "GREEK SMALL LETTER GAMMA", 'y'
        '\u03B9', "GREEK SMALL LETTER IOTA", 'i'
        '\u03BA', "GREEK SMALL LETTER KAPPA", 'k'
        '\u03BD', "GREEK SMALL LETTER NU", 'v'
        '\u03C1', "GREEK SMALL LETTER RHO", 'p'
        '\u03C4', "GREEK SMALL LETTER TAU", 't'
        '\u03C5', "GREEK SMALL LETTER UPSILON", 'u'
        '\u03C7', "GREEK SMALL LETTER CHI", 'x'
        '\u03C9', "GREEK SMALL LETTER OMEGA", 'w'
    ]

    /// Punctuation that looks like an ASCII operator the text form uses.
    let private punctuation: (char * string * char) list = [
        '\u2010', "HYPHEN", '-'
        '\u2011', "NON-BREAKING HYPHEN", '-'
        '\u2012', "FIGURE DASH", '-'
        '\u2014', "EM DASH", '-'
        '\uFE63', "SMALL HYPHEN-MINUS", '-'
        '\u2217', "ASTERISK OPERATOR", '*'
        '\u2215', "DIVISION SLASH", '/'
        '\u2044', "FRACTION SLASH", '/'
        '\u201C', "LEFT DOUBLE QUOTATION MARK", '"'
        '\u201D', "RIGHT DOUBLE QUOTATION MARK", '"'
        '\u201E', "DOUBLE LOW-9 QUOTATION MARK", '"'
        '\u2033', "DOUBLE PRIME", '"'
        '\u066B', "ARABIC DECIMAL SEPARATOR", '.'
        '\u066C', "ARABIC THOUSANDS SEPARATOR", ','
        '\u060C', "ARABIC COMMA", ','
        '\u061B', "ARABIC SEMICOLON", ';'
    ]

    /// Characters that change how a line is displayed without being visible (bidirectional embeddings, overrides
    /// and isolates). They can make text show something other than what it says, so they are refused everywhere,
    /// comments included.
    let private bidiControls: (char * string) list = [
        '\u202A', "LEFT-TO-RIGHT EMBEDDING"
        '\u202B', "RIGHT-TO-LEFT EMBEDDING"
        '\u202C', "POP DIRECTIONAL FORMATTING"
        '\u202D', "LEFT-TO-RIGHT OVERRIDE"
        '\u202E', "RIGHT-TO-LEFT OVERRIDE"
        '\u2066', "LEFT-TO-RIGHT ISOLATE"
        '\u2067', "RIGHT-TO-LEFT ISOLATE"
        '\u2068', "FIRST STRONG ISOLATE"
        '\u2069', "POP DIRECTIONAL ISOLATE"
    ]

    /// Other invisible characters: refused outside comments.
    let private invisibles: (char * string) list = [
        '\u200B', "ZERO WIDTH SPACE"
        '\u200C', "ZERO WIDTH NON-JOINER"
        '\u200D', "ZERO WIDTH JOINER"
        '\u200E', "LEFT-TO-RIGHT MARK"
        '\u200F', "RIGHT-TO-LEFT MARK"
        '\u061C', "ARABIC LETTER MARK"
        '\u2060', "WORD JOINER"
        '\u2061', "FUNCTION APPLICATION"
        '\u2062', "INVISIBLE TIMES"
        '\u2063', "INVISIBLE SEPARATOR"
        '\u2064', "INVISIBLE PLUS"
        '\u00AD', "SOFT HYPHEN"
        '\u180E', "MONGOLIAN VOWEL SEPARATOR"
        '\u034F', "COMBINING GRAPHEME JOINER"
        '\uFEFF', "ZERO WIDTH NO-BREAK SPACE (byte-order mark)"
    ]

    /// Decimal digit blocks of other scripts: (code point of zero, name prefix).
    let private digitBlocks: (int * string) list = [
        0x0660, "ARABIC-INDIC DIGIT"
        0x06F0, "EXTENDED ARABIC-INDIC DIGIT"
        0x07C0, "NKO DIGIT"
        0x0966, "DEVANAGARI DIGIT"
        0x09E6, "BENGALI DIGIT"
        0x0A66, "GURMUKHI DIGIT"
        0x0AE6, "GUJARATI DIGIT"
        0x0B66, "ORIYA DIGIT"
        0x0BE6, "TAMIL DIGIT"
        0x0C66, "TELUGU DIGIT"
        0x0CE6, "KANNADA DIGIT"
        0x0D66, "MALAYALAM DIGIT"
        0x0E50, "THAI DIGIT"
        0x0ED0, "LAO DIGIT"
        0x0F20, "TIBETAN DIGIT"
        0x1040, "MYANMAR DIGIT"
        0x17E0, "KHMER DIGIT"
        0x1810, "MONGOLIAN DIGIT"
        0xFF10, "FULLWIDTH DIGIT"
    ]

    let private digitNames = [|
        "ZERO"
        "ONE"
        "TWO"
        "THREE"
        "FOUR"
        "FIVE"
        "SIX"
        "SEVEN"
        "EIGHT"
        "NINE"
    |]

    let private asciiPunctuationNames: (char * string) list = [
        '!', "EXCLAMATION MARK"
        '"', "QUOTATION MARK"
        '#', "NUMBER SIGN"
        '$', "DOLLAR SIGN"
        '%', "PERCENT SIGN"
        '&', "AMPERSAND"
        '\'', "APOSTROPHE"
        '(', "LEFT PARENTHESIS"
        ')', "RIGHT PARENTHESIS"
        '*', "ASTERISK"
        '+', "PLUS SIGN"
        ',', "COMMA"
        '-', "HYPHEN-MINUS"
        '.', "FULL STOP"
        '/', "SOLIDUS"
        ':', "COLON"
        ';', "SEMICOLON"
        '<', "LESS-THAN SIGN"
        '=', "EQUALS SIGN"
        '>', "GREATER-THAN SIGN"
        '?', "QUESTION MARK"
        '@', "COMMERCIAL AT"
        '[', "LEFT SQUARE BRACKET"
        '\\', "REVERSE SOLIDUS"
        ']', "RIGHT SQUARE BRACKET"
        '^', "CIRCUMFLEX ACCENT"
        '_', "LOW LINE"
        '`', "GRAVE ACCENT"
        '{', "LEFT CURLY BRACKET"
        '|', "VERTICAL LINE"
        '}', "RIGHT CURLY BRACKET"
        '~', "TILDE"
    ]

    /// The Unicode name of a printable ASCII character (letters, digits, punctuation).
    let private asciiName (c: char) : string =
        if c >= 'a' && c <= 'z' then
            sprintf "LATIN SMALL LETTER %c" (Char.ToUpperInvariant c)
        elif c >= 'A' && c <= 'Z' then
            sprintf "LATIN CAPITAL LETTER %c" c
        elif c >= '0' && c <= '9' then
            "DIGIT " + digitNames[int c - int '0']
        else
            match asciiPunctuationNames |> List.tryFind (fun (k, _) -> k = c) with
            | Some(_, n) -> n
            | None -> "SPACE"

    /// A fullwidth form U+FF01…U+FF5E: its name and the ASCII character it stands for.
    let private fullwidth (c: char) : (string * char) option =
        if c >= '\uFF01' && c <= '\uFF5E' then
            let a = char (int c - 0xFEE0)
            Some("FULLWIDTH " + asciiName a, a)
        else
            None

    /// `U+0430` for a character.
    let codePoint (c: char) : string = sprintf "U+%04X" (int c)

    /// A letter or punctuation mark that looks exactly like an ASCII character: its Unicode name and the ASCII
    /// character. Covers the common Cyrillic and Greek look-alikes, fullwidth forms and dashes/quotes.
    let tryLookAlike (c: char) : (string * char) option =
        if c < '\u0391' then
            None
        else
            match strictLetters |> List.tryFind (fun (k, _, _) -> k = c) with
            | Some(_, n, a) -> Some(n, a)
            | None ->
                match punctuation |> List.tryFind (fun (k, _, _) -> k = c) with
                | Some(_, n, a) -> Some(n, a)
                | None -> fullwidth c

    /// Like `tryLookAlike`, and also the Greek small letters that merely resemble a Latin letter (ν and v).
    let tryLooseLookAlike (c: char) : (string * char) option =
        if c < '\u0391' then
            None
        else
            match tryLookAlike c with
            | Some r -> Some r
            | None ->
                looseLetters
                |> List.tryFind (fun (k, _, _) -> k = c)
                |> Option.map (fun (_, n, a) -> n, a)

    /// A bidirectional control (refused everywhere): its Unicode name.
    let tryBidiControl (c: char) : string option =
        if c < '\u202A' then
            None
        else
            bidiControls |> List.tryFind (fun (k, _) -> k = c) |> Option.map snd

    /// An invisible character (bidirectional controls included): its Unicode name.
    let tryInvisible (c: char) : string option =
        if c < '\u00AD' then
            None
        else
            match tryBidiControl c with
            | Some n -> Some n
            | None -> invisibles |> List.tryFind (fun (k, _) -> k = c) |> Option.map snd

    /// A decimal digit of another script (Arabic-Indic, fullwidth, Devanagari, …): its Unicode name and value.
    let tryForeignDigit (c: char) : (string * int) option =
        if c >= '0' && c <= '9' || not (Char.IsDigit c) then
            None
        else
            let v = CharUnicodeInfo.GetDecimalDigitValue c

            let name =
                match digitBlocks |> List.tryFind (fun (zero, _) -> int c - zero = v) with
                | Some(_, prefix) when v >= 0 && v <= 9 -> prefix + " " + digitNames[v]
                | _ -> sprintf "a decimal digit of another script (value %d)" v

            Some(name, v)

    /// `U+0430 CYRILLIC SMALL LETTER A`, or the code point and Unicode category when the name is not in the tables.
    let describe (c: char) : string =
        let named =
            match tryLooseLookAlike c with
            | Some(n, _) -> Some n
            | None ->
                match tryInvisible c with
                | Some n -> Some n
                | None -> tryForeignDigit c |> Option.map fst

        match named with
        | Some n -> sprintf "%s %s" (codePoint c) n
        | None ->
            if c >= ' ' && c <= '~' then
                sprintf "%s %s" (codePoint c) (asciiName c)
            else
                sprintf "%s (%A)" (codePoint c) (Char.GetUnicodeCategory c)

    /// The name with every look-alike letter (loose table) replaced by the ASCII letter it resembles and every
    /// invisible character removed: two names with the same skeleton look the same on screen.
    let skeleton (name: string) : string =
        let sb = Text.StringBuilder(name.Length)

        for c in name do
            match tryLooseLookAlike c with
            | Some(_, a) -> sb.Append a |> ignore
            | None ->
                if (tryInvisible c).IsNone then
                    sb.Append c |> ignore

        sb.ToString()
