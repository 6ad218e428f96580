/// The library's CSV reader and writer (`Csv`): one test per RFC 4180 rule, the comment rule, the errors that name
/// the cause, and writer → reader round trips of awkward cells (exact and FsCheck).
module Hybrid.Tests.Training.CsvTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Hybrid.Training

let private message (f: unit -> unit) = (Expect.throwsC f id).Message

/// A strict RFC 4180 reader written independently of CsvHelper, for checking what the writer writes: a cell is
/// either unquoted (no comma, quote, CR or LF) or enclosed in quotes with inner quotes doubled; records end with
/// LF or CRLF; every record has as many cells as the first. Any other character is allowed (RFC 4180 itself names
/// only ASCII; files here are UTF-8). Raises on any violation.
let strictRfc4180 (text: string) : string[][] =
    let records = ResizeArray<string[]>()
    let cells = ResizeArray<string>()
    let cell = Text.StringBuilder()
    let mutable i = 0

    let fail why =
        failwithf "not RFC 4180 at character %d: %s" i why

    let endCell () =
        cells.Add(cell.ToString())
        cell.Clear() |> ignore

    let endRecord () =
        endCell ()
        records.Add(cells.ToArray())
        cells.Clear()

        if records[records.Count - 1].Length <> records[0].Length then
            fail
                $"record {records.Count} has {records[records.Count - 1].Length} cells, the first has {records[0].Length}"

    while i < text.Length do
        if text[i] = '"' then
            i <- i + 1
            let mutable closed = false

            while not closed do
                if i >= text.Length then
                    fail "a quoted cell is never closed"
                elif text[i] = '"' && i + 1 < text.Length && text[i + 1] = '"' then
                    cell.Append '"' |> ignore
                    i <- i + 2
                elif text[i] = '"' then
                    closed <- true
                    i <- i + 1
                else
                    cell.Append text[i] |> ignore
                    i <- i + 1
        else
            while i < text.Length && text[i] <> ',' && text[i] <> '\r' && text[i] <> '\n' do
                if text[i] = '"' then
                    fail "a quote inside an unquoted cell"

                cell.Append text[i] |> ignore
                i <- i + 1

        if i = text.Length then
            fail "the last record has no line break"
        elif text[i] = ',' then
            endCell ()
            i <- i + 1
        elif text[i] = '\n' then
            endRecord ()
            i <- i + 1
        elif text[i] = '\r' && i + 1 < text.Length && text[i + 1] = '\n' then
            endRecord ()
            i <- i + 2
        else
            fail $"'{text[i]}' after a cell"

    records.ToArray()

/// Cells built from the characters that need care in CSV.
let private awkwardCell =
    gen {
        let! n = Gen.choose (0, 6)

        let! chars =
            Gen.arrayOfLength
                n
                (Gen.elements [ ','; '"'; '\n'; '\r'; ' '; '\t'; '#'; ';'; 'a'; '1'; '.'; '-'; 'é'; '∞' ])

        return String(chars)
    }

let private awkwardRows =
    gen {
        let! n = Gen.choose (0, 6)
        return! Gen.arrayOfLength n (Gen.arrayOfLength 3 awkwardCell)
    }

let private awkward = [|
    [| "MLP C(t, dose)"; "he said \"hi\""; "line 1\nline 2" |]
    [| "# not a comment"; " padded "; "" |]
    [| "#N/A"; "\"quoted\""; "tab\tinside" |]
    [| "=1+2"; "-0.5"; "∞ Δ μ; a" |]
    [| ""; "windows\r\nline"; "," |]
|]

let tests =
    testList "Csv" [
        test "a quoted cell keeps its comma" {
            let t = Csv.parse "m.csv" "model,mse\n\"MLP C(t, dose)\",3\nLSTM,4\n"
            Expect.equal t.Columns [| "model"; "mse" |] "header"
            Expect.equal t.Rows [| [| "MLP C(t, dose)"; "3" |]; [| "LSTM"; "4" |] |] "the comma is text"
        }

        test "a doubled quote inside a quoted cell is one quote" {
            let t = Csv.parse "m.csv" "name,size\n\"5\"\" screen\",1\n\"\"\"a\"\" b\",2\n"
            Expect.equal (t.Rows |> Array.map (fun r -> r[0])) [| "5\" screen"; "\"a\" b" |] "quotes"
        }

        test "a quoted cell may hold line breaks; each row knows the line it starts on" {
            let t = Csv.parse "n.csv" "name,note\na,\"line 1\nline 2\"\nb,x\n"
            Expect.equal t.Rows [| [| "a"; "line 1\nline 2" |]; [| "b"; "x" |] |] "the line break is text"
            Expect.equal t.Lines [| 2; 4 |] "row b starts on line 4"
            let crlf = Csv.parse "n.csv" "name,note\r\na,\"line 1\r\nline 2\"\r\nb,x\r\n"
            Expect.equal (crlf.Rows[0][1]) "line 1\r\nline 2" "CRLF inside quotes is kept"
            Expect.equal (crlf.Rows[1]) [| "b"; "x" |] "CRLF ends a row"
        }

        test "spaces around a cell are dropped, inside quotes kept; blank lines are skipped" {
            let t = Csv.parse "s.csv" " a , b \n\n 1 ,\" 2 \"\n   \n3,4"
            Expect.equal t.Columns [| "a"; "b" |] "trimmed header"
            Expect.equal t.Rows [| [| "1"; " 2 " |]; [| "3"; "4" |] |] "rows"
            Expect.equal t.Lines [| 3; 5 |] "blank lines count as lines"
        }

        test "a comment is '#' and a space (or a lone '#'); '#N/A' starts a row" {
            let t =
                Csv.parse "c.csv" "# made by hand\nu,time\n#N/A,0\n#\n# a note, with a comma\n2,1\n\"# quoted\",2\n"

            Expect.equal t.Columns [| "u"; "time" |] "the comment before the header is skipped"
            Expect.equal t.Rows [| [| "#N/A"; "0" |]; [| "2"; "1" |]; [| "# quoted"; "2" |] |] "rows"
            Expect.equal t.Lines [| 3; 6; 7 |] "lines of the rows"
            let bom = Csv.parse "c.csv" "\uFEFF# made by hand\nu,time\n1,0\n"
            Expect.equal bom.Columns [| "u"; "time" |] "a comment after a byte order mark"

            Expect.stringContains
                (message (fun () -> Csv.parse "c.csv" "u,time\n#note\n" |> ignore))
                "line 2: row 1 has 1 cells but the header has 2 columns (u, time). Comment lines start with '#' and a space"
                "'#note' is a row, and the message says what a comment is"
        }

        test "an unterminated quote is named with its line" {
            Expect.equal
                (message (fun () -> Csv.parse "q.csv" "time,u\n0,1\n1,\"2\n2,3\n" |> ignore))
                "CSV 'q.csv', line 3: the row starting on this line opens a quoted cell that is never closed (an unterminated quote), so the rest of the file would be read as one cell. Close the quote, or write a quote that belongs to the text as two quotes (\"\") inside a quoted cell."
                "unterminated quote"
        }

        test "a quote inside an unquoted cell, and text after a closing quote, are named" {
            Expect.stringContains
                (message (fun () -> Csv.parse "q.csv" "name,u\na,1\n5\" screen,1\n" |> ignore))
                "CSV 'q.csv', line 3: a cell contains a quote but does not start with one (5\" screen,1)"
                "stray quote"

            Expect.stringContains
                (message (fun () -> Csv.parse "q.csv" "name,u\n\"a\"b,1\n" |> ignore))
                "CSV 'q.csv', line 2: text follows the closing quote of a quoted cell"
                "text after the closing quote"
        }

        test "a semicolon- or tab-separated file is named as such; a named delimiter reads it" {
            Expect.equal
                (message (fun () -> Csv.parse "eu.csv" "time;u\n0;0,5\n" |> ignore))
                "CSV 'eu.csv' looks semicolon-separated: its header 'time;u' is one column when split at commas (',') and 2 columns when split at ';'. Read it with Csv.readWith { Delimiter = ';' } (its numbers must still use a decimal point: 0.5, not 0,5), or save the file comma-separated."
                "semicolon"

            Expect.stringContains
                (message (fun () -> Csv.parse "t.tsv" "time\tu\tv\n0\t1\t2\n" |> ignore))
                "looks tab-separated: its header 'time\tu\tv' is one column when split at commas (',') and 3 columns when split at '\\t'. Read it with Csv.readWith { Delimiter = '\\t' }"
                "tab"

            let t = Csv.parseWith { Delimiter = ';' } "eu.csv" "time;u\n0;\"a;b\"\n"
            Expect.equal t.Rows [| [| "0"; "a;b" |] |] "semicolons with a quoted semicolon"

            Expect.stringContains
                (message (fun () -> Csv.parseWith { Delimiter = ';' } "c.csv" "time,u\n0,1\n" |> ignore))
                "looks comma-separated"
                "a comma file read with ';'"
        }

        test "ragged rows, repeated columns and empty text say what to fix" {
            Expect.equal
                (message (fun () -> Csv.parse "r.csv" "model,mse\nMLP C(t, dose),3\n" |> ignore))
                "CSV 'r.csv', line 2: row 1 has 3 cells but the header has 2 columns (model, mse). A cell that contains a comma must be enclosed in double quotes, e.g. \"MLP C(t, dose)\"."
                "too many cells"

            Expect.stringContains
                (message (fun () -> Csv.parse "r.csv" "a,b,c\n1,3\n" |> ignore))
                "row 1 has 2 cells but the header has 3 columns (a, b, c). Leave a missing value as an empty cell, keeping its delimiter (e.g. 1,,3)."
                "too few cells"

            Expect.stringContains
                (message (fun () -> Csv.parse "r.csv" "t,u,t\n1,2,3\n" |> ignore))
                "has the column 't' twice (columns 1 and 3)"
                "repeated column"

            Expect.stringContains
                (message (fun () -> Csv.parse "r.csv" "\n# only a comment\n" |> ignore))
                "is empty"
                "empty"
        }

        test "the writer quotes only where needed and the reader gives back every awkward cell" {
            let header = [| "first"; "second"; "third" |]
            let text = Csv.format "awkward" header awkward

            Expect.stringStarts
                text
                "first,second,third\n\"MLP C(t, dose)\",\"he said \"\"hi\"\"\",\"line 1\nline 2\"\n\"# not a comment\",\" padded \",\n\"#N/A\",\"\"\"quoted\"\"\",tab\tinside\n=1+2,-0.5,∞ Δ μ; a\n"
                "quotes only for commas, quotes, line breaks, outer spaces and a leading '#'"

            let back = Csv.parse "awkward" text
            Expect.equal back.Columns header "header"
            Expect.equal back.Rows awkward "every cell as written"
            Expect.equal (strictRfc4180 text) (Array.append [| header |] awkward) "a strict RFC 4180 reader agrees"
        }

        test "the writer refuses a row that does not fit the header" {
            Expect.stringContains
                (message (fun () -> Csv.format "t" [| "a"; "b" |] [ [| "1" |] ] |> ignore))
                "CSV 't': row 1 has 1 cells but the header has 2 columns (a, b)"
                "short row"
        }

        testPropertyWithConfig
            {
                FsCheckConfig.defaultConfig with
                    maxTest = 300
            }
            "writer then reader gives back any cells (and a strict RFC 4180 reader agrees)"
        <| Prop.forAll (Arb.fromGen awkwardRows) (fun rows ->
            let header = [| "a"; "b"; "c" |]
            let text = Csv.format "p" header rows
            let back = Csv.parse "p" text
            back.Rows = rows && strictRfc4180 text = Array.append [| header |] rows)
    ]
