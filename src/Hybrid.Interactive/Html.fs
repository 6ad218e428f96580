namespace Hybrid.Interactive

open System
open System.Globalization
open System.Net

/// The pieces every display shares: HTML escaping, numbers as the tables write them.
module internal Html =

    /// Text as HTML (`&`, `<`, `>`, `"` and `'` escaped).
    let escape (s: string) : string = WebUtility.HtmlEncode s

    /// A number in at most 6 significant digits, invariant culture (`0.5`, `1.5E-07`, `NaN`); never `-0`.
    let number (v: float) : string =
        if v = 0.0 then
            "0"
        else
            v.ToString("G6", CultureInfo.InvariantCulture)

    /// A shape as users write it: `[32, 2]`, `[]` for a scalar.
    let shape (dims: int64 seq) : string = "[" + String.Join(", ", dims) + "]"

    /// A table: a header row and body rows, every cell escaped.
    let table (cssClass: string) (header: string list) (rows: string list list) : string =
        let cells tag (row: string list) =
            row |> List.map (fun c -> $"<{tag}>{escape c}</{tag}>") |> String.concat ""

        let row (r: string list) = "<tr>" + cells "td" r + "</tr>"
        let body = rows |> List.map row |> String.concat "\n"
        let head = "<tr>" + cells "th" header + "</tr>"

        $"<table class=\"{cssClass}\">\n<thead>{head}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"
