namespace Hybrid

open System

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
