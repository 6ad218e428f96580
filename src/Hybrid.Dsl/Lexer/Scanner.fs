namespace Hybrid

open System.Collections.Generic

/// The lexer's state while it walks a text: the offset of the next character, the current line, whether
/// whitespace came before the next token, the open brackets and the tokens read so far.
type internal Scanner(source: string) =
    let out = ResizeArray<Token>()
    // Open brackets: the character, its line and column.
    let openers = Stack<char * int * int>()

    /// The text being read.
    member _.Source = source

    /// The length of the text.
    member _.Length = source.Length

    /// The 0-based offset of the next character.
    member val Pos = 0 with get, set

    /// The 1-based current line.
    member val Line = 1 with get, set

    /// The offset where the current line starts.
    member val LineStart = 0 with get, set

    /// True when whitespace (or the start of a line) comes before the next token.
    member val Space = true with get, set

    /// Where the last number token ends (for two numbers in a row).
    member val LastNumberEnd = -1 with get, set

    /// The tokens read so far.
    member _.Tokens = out

    /// The open brackets, innermost on top: the character, its line and column.
    member _.Openers = openers

    /// The 1-based column of an offset on the current line.
    member s.Column(at: int) = at - s.LineStart + 1

    /// Raises a ParseException at an offset on the current line.
    member s.Fail(at: int, msg: string) : 'a =
        raise (SourceText.error source s.Line (s.Column at) msg)

    /// Adds a token that starts at `start` on the current line.
    member s.Add(tok: Tok, start: int) =
        out.Add(
            {
                Tok = tok
                Line = s.Line
                Col = s.Column start
                Offset = start
                SpaceBefore = s.Space
            }
        )

        s.Space <- false

    /// True inside [ ] (bounds, layer widths), where the innermost open bracket is '['.
    member _.InList = openers.Count > 0 && (let o, _, _ = openers.Peek() in o = '[')
