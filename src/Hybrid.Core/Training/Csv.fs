namespace Hybrid.Training

open System
open System.IO
open System.Text
open CsvHelper
open Hybrid

/// A CSV file read as text: a header of column names and rows of cells.
type CsvTable = {
    /// Where it came from (for messages).
    Source: string
    /// Column names from the header.
    Columns: string[]
    /// Rows of cells (each as many as there are columns).
    Rows: string[][]
    /// The 1-based line of the text on which each row starts, for messages (a row spans several lines when a quoted
    /// cell holds a line break; comment and blank lines count as lines).
    Lines: int[]
}

/// How `Csv.parseWith` and `Csv.readWith` split text into cells.
type CsvOptions = {
    /// The character between cells: `,` (RFC 4180, the default), or e.g. `;` or `'\t'` for a file that uses one.
    Delimiter: char
}

/// The library's one CSV reader and writer (RFC 4180, through CsvHelper).
///
/// Reading: cells are separated by the delimiter (`,` unless named); a cell that starts with a double quote is quoted
/// and may contain the delimiter, line breaks and doubled quotes (`""` for one `"`). Lines end with LF or CRLF.
/// Spaces and tabs around a cell are dropped, those inside quotes kept. The first row is the header. Blank lines are
/// skipped. A comment is a line (outside a quoted cell) whose first character is `#` followed by a space or a tab,
/// or a line that is just `#`; every other line is a row, so `#N/A` is a cell like any other. Malformed quoting (a
/// quote that is never closed, a quote inside an unquoted cell, text after a closing quote), a row with more or
/// fewer cells than the header, a repeated column name and a file that looks separated by another delimiter are
/// errors that name the line and the fix.
///
/// Writing: comma-separated, LF line ends (the line ends of the files the report has always written; every RFC 4180
/// reader accepts them), a cell quoted when it holds a comma, a quote, a line break, starts or ends with a space or
/// a tab, or (first cell of a row) starts with `#`, so that it reads back exactly.
[<RequireQualifiedAccess>]
module Csv =

    /// Comma-separated (RFC 4180).
    let defaults = { Delimiter = ',' }

    let private describe (c: char) =
        match c with
        | ',' -> "comma"
        | ';' -> "semicolon"
        | '\t' -> "tab"
        | '|' -> "pipe"
        | c -> $"'{c}'"

    let private literal (c: char) = if c = '\t' then "'\\t'" else $"'{c}'"

    let private isComment (line: string) =
        let line = line.TrimEnd '\r'

        line = "#"
        || (line.Length >= 2 && line[0] = '#' && (line[1] = ' ' || line[1] = '\t'))

    /// The text with every comment line and blank line outside quoted cells emptied (their line breaks kept, so line
    /// numbers stay those of the input). Quotes are counted by parity: a line that leaves a quoted cell open ends
    /// inside quotes. Malformed quoting can mislead the count, but CsvHelper reports it at an earlier row.
    let private blankComments (text: string) =
        let sb = StringBuilder(text.Length)
        let mutable inQuotes = false
        let mutable start = 0

        while start < text.Length do
            let stop =
                match text.IndexOf('\n', start) with
                | -1 -> text.Length
                | i -> i

            let line = text.Substring(start, stop - start)

            if not inQuotes && (isComment line || String.IsNullOrWhiteSpace line) then
                if line.EndsWith '\r' then
                    sb.Append '\r' |> ignore
            else
                sb.Append line |> ignore

                for c in line do
                    if c = '"' then
                        inQuotes <- not inQuotes

            if stop < text.Length then
                sb.Append '\n' |> ignore

            start <- stop + 1

        sb.ToString()

    let private shorten (raw: string) =
        let oneLine = raw.Replace("\r", "").Replace("\n", "⏎")

        if oneLine.Length > 60 then
            oneLine.Substring(0, 57) + "..."
        else
            oneLine

    let private malformed (source: string) (m: CsvMalformedRecord) =
        let at = $"CSV '{source}', line {m.LineNumber}"

        match m.Reason with
        | CsvMalformedReason.UnterminatedQuote ->
            $"{at}: the row starting on this line opens a quoted cell that is never closed (an unterminated quote), so the rest of the file would be read as one cell. Close the quote, or write a quote that belongs to the text as two quotes (\"\") inside a quoted cell."
        | CsvMalformedReason.StrayQuote ->
            $"{at}: a cell contains a quote but does not start with one ({shorten m.RawRecord}). Enclose the cell in quotes and double the quote inside it, e.g. \"5\"\" screen\"."
        | CsvMalformedReason.TextAfterClosingQuote ->
            $"{at}: text follows the closing quote of a quoted cell ({shorten m.RawRecord}). Put the whole cell inside the quotes, and double a quote that belongs to the text: \"\"\"a\"\" b\"."
        | reason -> $"{at}: malformed CSV ({reason}: {shorten m.RawRecord})."

    let private readerOptions (delimiter: char) (onMalformed: CsvMalformedRecord -> unit) =
        CsvReaderOptions(
            Separator = Nullable delimiter,
            HasHeader = false,
            Mode = CsvMode.Rfc4180,
            TrackLineNumbers = true,
            TrimWhitespace = true,
            AllowLineBreaksInQuotes = true,
            SkipEmptyLines = true,
            DetectSeparatorHint = false,
            OnMalformedRecord = Action<CsvMalformedRecord> onMalformed
        )

    /// Raises when the header is one column that another delimiter would split into several.
    let private checkDelimiter (source: string) (delimiter: char) (header: string[]) =
        if header.Length = 1 then
            let candidates =
                [ ','; ';'; '\t'; '|' ]
                |> List.filter (fun c -> c <> delimiter)
                |> List.map (fun c -> c, header[0].Split(c).Length)
                |> List.filter (fun (_, n) -> n > 1)

            match candidates |> List.sortByDescending snd with
            | (c, n) :: _ ->
                let fix =
                    if c = ',' then
                        $"Csv.readWith {{ Delimiter = ',' }}, or Data.readCsv, which reads commas"
                    else
                        $"Csv.readWith {{ Delimiter = {literal c} }}"

                let decimals =
                    if c = ';' then
                        " (its numbers must still use a decimal point: 0.5, not 0,5)"
                    else
                        ""

                raise (
                    HybridException(
                        $"CSV '{source}' looks {describe c}-separated: its header '{header[0]}' is one column when split at {describe delimiter}s ({literal delimiter}) and {n} columns when split at {literal c}. Read it with {fix}{decimals}, or save the file comma-separated."
                    )
                )
            | [] -> ()

    let private checkColumns (source: string) (header: string[]) =
        header
        |> Array.indexed
        |> Array.filter (fun (_, name) -> name <> "")
        |> Array.groupBy snd
        |> Array.tryFind (fun (_, uses) -> uses.Length > 1)
        |> Option.iter (fun (name, uses) ->
            let positions =
                uses |> Array.map (fun (i, _) -> string (i + 1)) |> String.concat " and "

            raise (
                HybridException(
                    $"CSV '{source}' has the column '{name}' twice (columns {positions}), so a lookup by name would be ambiguous. Rename one of them in the header."
                )
            ))

    let private ragged (source: string) (delimiter: char) (header: string[]) (row: int) (line: int) (cells: string[]) =
        let hint =
            if cells.Length > 0 && cells[0].StartsWith "#" then
                " Comment lines start with '#' and a space; any other line is a row."
            elif cells.Length > header.Length then
                $" A cell that contains a {describe delimiter} must be enclosed in double quotes, e.g. \"MLP C(t{delimiter} dose)\"."
            else
                $" Leave a missing value as an empty cell, keeping its delimiter (e.g. 1{delimiter}{delimiter}3)."

        let columns = String.Join(", ", header)

        HybridException(
            $"CSV '{source}', line {line}: row {row} has {cells.Length} cells but the header has {header.Length} columns ({columns}).{hint}"
        )

    /// Parses CSV `text` (named `source` in messages) with `options`; see the module's rules.
    let parseWith (options: CsvOptions) (source: string) (text: string) : CsvTable =
        if isNull text then
            raise (ArgumentNullException("text", $"CSV '{source}': the text is null."))

        let mutable problem: CsvMalformedRecord option = None

        let onMalformed (m: CsvMalformedRecord) =
            if problem.IsNone then
                problem <- Some m

        // A byte order mark left in a string (File.ReadAllText drops it) would hide a comment on the first line.
        let text = if text.StartsWith '\uFEFF' then text.Substring 1 else text

        use reader =
            CsvReader.FromText(blankComments text, readerOptions options.Delimiter onMalformed)

        let records = ResizeArray<string[] * int>()

        let check () =
            match problem with
            | Some m -> raise (HybridException(malformed source m))
            | None -> ()

        while reader.Read() do
            check ()
            records.Add(reader.Current.ToArray(), int reader.LineNumber)

        check ()

        if records.Count = 0 then
            raise (
                HybridException($"CSV '{source}' is empty: it has no header line. The first line names the columns.")
            )

        let header, _ = records[0]
        checkDelimiter source options.Delimiter header
        checkColumns source header

        let body = records |> Seq.skip 1 |> Array.ofSeq

        body
        |> Array.iteri (fun i (cells, line) ->
            if cells.Length <> header.Length then
                raise (ragged source options.Delimiter header (i + 1) line cells))

        {
            Source = source
            Columns = header
            Rows = body |> Array.map fst
            Lines = body |> Array.map snd
        }

    /// Parses comma-separated `text` (named `source` in messages); see the module's rules.
    let parse (source: string) (text: string) : CsvTable = parseWith defaults source text

    /// Reads the CSV file at `path` with `options`.
    let readWith (options: CsvOptions) (path: string) : CsvTable =
        if not (File.Exists path) then
            raise (HybridException($"CSV file '{path}' does not exist."))

        parseWith options path (File.ReadAllText path)

    /// Reads the comma-separated file at `path`.
    let read (path: string) : CsvTable = readWith defaults path

    let private writerOptions =
        CsvWriterOptions(
            Mode = CsvMode.Rfc4180,
            NewLine = "\n",
            Quoting = CsvQuoting.WhenNeededOrWhitespace,
            CommentPrefix = Nullable '#'
        )

    /// The CSV text of a header `columns` and `rows` of cells (each row as many cells as there are columns; a null
    /// cell is written empty), quoted where needed (see the module's rules); `what` names the table in messages.
    let format (what: string) (columns: string[]) (rows: seq<string[]>) : string =
        if isNull columns || columns.Length = 0 then
            raise (HybridException($"CSV '{what}': a table needs at least one column."))

        use text = new StringWriter()

        do
            use writer = CsvWriter.Create(text, writerOptions, true)
            writer.WriteRecord columns

            rows
            |> Seq.iteri (fun i row ->
                if isNull row || row.Length <> columns.Length then
                    let cells = if isNull row then 0 else row.Length
                    let names = String.Join(", ", columns)

                    raise (
                        HybridException(
                            $"CSV '{what}': row {i + 1} has {cells} cells but the header has {columns.Length} columns ({names}). Give every row one cell per column (an empty string for a missing value)."
                        )
                    )

                writer.WriteRecord row)

        text.ToString()

    /// Writes a header `columns` and `rows` of cells to the file `path` (UTF-8, no byte order mark) as `format`
    /// does, replacing any file there.
    let write (path: string) (columns: string[]) (rows: seq<string[]>) : unit =
        File.WriteAllText(path, format path columns rows)
