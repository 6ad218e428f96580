/// Line charts of observed against predicted values, written twice: as a self-contained SVG (for the
/// markdown summary) and as an interactive Plotly HTML page (zoom, hover, toggling series; plotly.js is
/// loaded from its CDN when the page is opened).
module Hybrid.Models.Common.LineChart

open System
open System.Globalization
open System.IO
open System.Text
open System.Text.Json
open Hybrid.Models.Common.ReportFormat

/// One chart: `Observed` (x, y) drawn as black dots, each of `Series` (name, points) as a coloured line, and
/// a dashed vertical line at `Split` (the start of the test period; at the left edge it shows nothing new).
type Chart = {
    Title: string
    XLabel: string
    YLabel: string
    Observed: (float * float)[]
    Series: (string * (float * float)[])[]
    Split: float
}

let private palette = [|
    "#1f77b4"
    "#d62728"
    "#2ca02c"
    "#9467bd"
    "#ff7f0e"
    "#8c564b"
    "#17becf"
|]

/// Series past the palette's length repeat its colours dashed, so no two lines of a chart look alike (up to twice
/// the palette's length).
let private dashed (i: int) = i / palette.Length % 2 = 1

/// The chart as a self-contained SVG document (no plotting package, no script).
let toSvg (chart: Chart) : string =
    let title, xLabel, yLabel = chart.Title, chart.XLabel, chart.YLabel
    let observed, series, split = chart.Observed, chart.Series, chart.Split
    let width, height = 760.0, 360.0
    let left, right, top, bottom = 60.0, 240.0, 30.0, 40.0
    let all = Array.append observed (series |> Array.collect snd)
    let xs = all |> Array.map fst
    let ys = all |> Array.map snd
    let x0, x1 = Array.min xs, Array.max xs
    let y0 = min 0.0 (Array.min ys)
    let y1 = Array.max ys * 1.05

    let px x =
        left + (x - x0) / (x1 - x0) * (width - left - right)

    let py y =
        height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    let path (points: (float * float)[]) =
        points
        |> Array.mapi (fun i (x, y) -> $"""{(if i = 0 then "M" else "L")}{inv (px x)},{inv (py y)}""")
        |> String.concat " "

    let sb = StringBuilder()
    let add (s: string) = sb.AppendLine s |> ignore

    add
        $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"""

    add $"""<rect width="{width}" height="{height}" fill="white"/>"""
    add $"""<text x="{left}" y="18" font-size="13">{Security.SecurityElement.Escape title}</text>"""
    // Axes and ticks.
    add
        $"""<line x1="{left}" y1="{inv (py y0)}" x2="{inv (px x1)}" y2="{inv (py y0)}" stroke="black"/><line x1="{left}" y1="{inv (py y0)}" x2="{left}" y2="{inv (py y1)}" stroke="black"/>"""

    // Whole numbers on the axes unless the range is small (temperature anomalies, concentrations).
    let yFormat = if y1 - y0 < 5.0 then "0.0#" else "0"
    let xFormat = if x1 - x0 < 5.0 then "0.0#" else "0"

    for i in 0..4 do
        let y = y0 + float i * (y1 - y0) / 4.0

        add
            $"""<text x="{left - 6.0}" y="{inv (py y + 4.0)}" text-anchor="end">{y.ToString(yFormat, CultureInfo.InvariantCulture)}</text>"""

    for i in 0..4 do
        let x = x0 + float i * (x1 - x0) / 4.0

        add
            $"""<text x="{inv (px x)}" y="{height - bottom + 16.0}" text-anchor="middle">{x.ToString(xFormat, CultureInfo.InvariantCulture)}</text>"""

    add
        $"""<text x="14" y="{inv ((top + height - bottom) / 2.0)}" transform="rotate(-90 14 {inv ((top + height - bottom) / 2.0)})" text-anchor="middle">{Security.SecurityElement.Escape yLabel}</text>"""

    add
        $"""<text x="{inv ((left + width - right) / 2.0)}" y="{inv (height - 4.0)}" text-anchor="middle">{Security.SecurityElement.Escape xLabel}</text>"""

    add
        $"""<line x1="{inv (px split)}" y1="{inv (py y0)}" x2="{inv (px split)}" y2="{inv (py y1)}" stroke="gray" stroke-dasharray="4 3"/>"""

    add $"""<path d="{path observed}" fill="none" stroke="black" stroke-width="0.8"/>"""

    for x, y in observed do
        add $"""<circle cx="{inv (px x)}" cy="{inv (py y)}" r="2.5" fill="black"/>"""

    series
    |> Array.iteri (fun i (name, points) ->
        let colour = palette[i % palette.Length]
        let dash = if dashed i then " stroke-dasharray=\"5,3\"" else ""
        add $"""<path d="{path points}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>"""
        let ly = top + 14.0 * float (i + 1)

        add
            $"""<line x1="{width - right + 10.0}" y1="{ly}" x2="{width - right + 28.0}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>"""

        add $"""<text x="{width - right + 32.0}" y="{ly + 4.0}">{Security.SecurityElement.Escape name}</text>""")

    add
        $"""<circle cx="{width - right + 19.0}" cy="{top}" r="2.5" fill="black"/><text x="{width - right + 32.0}" y="{top + 4.0}">observed</text>"""

    add "</svg>"
    sb.ToString()

/// The plotly.js release the HTML pages load.
[<Literal>]
let PlotlyScript = "https://cdn.plot.ly/plotly-2.35.2.min.js"

/// Writes one Plotly trace: `x`, `y` (NaN and ±∞ become JSON null, a gap in the line), its name and style.
let private writeTrace (w: Utf8JsonWriter) (name: string) (points: (float * float)[]) (style: Utf8JsonWriter -> unit) =
    let numbers (key: string) (values: float seq) =
        w.WriteStartArray key

        for v in values do
            if Double.IsFinite v then
                w.WriteNumberValue v
            else
                w.WriteNullValue()

        w.WriteEndArray()

    w.WriteStartObject()
    w.WriteString("type", "scatter")
    w.WriteString("name", name)
    numbers "x" (Seq.map fst points)
    numbers "y" (Seq.map snd points)
    style w
    w.WriteEndObject()

/// The Plotly figure (`data` and `layout`) as JSON.
let toPlotlyJson (chart: Chart) : string =
    use stream = new MemoryStream()

    (use w = new Utf8JsonWriter(stream)
     w.WriteStartObject()
     w.WriteStartArray "data"

     chart.Series
     |> Array.iteri (fun i (name, points) ->
         writeTrace w name points (fun w ->
             w.WriteString("mode", "lines")
             w.WriteStartObject "line"
             w.WriteString("color", palette[i % palette.Length])
             w.WriteString("dash", (if dashed i then "dash" else "solid"))
             w.WriteEndObject()))

     writeTrace w "observed" chart.Observed (fun w ->
         w.WriteString("mode", "markers")
         w.WriteStartObject "marker"
         w.WriteString("color", "black")
         w.WriteNumber("size", 6)
         w.WriteEndObject())

     w.WriteEndArray()
     w.WriteStartObject "layout"
     w.WriteStartObject "title"
     w.WriteString("text", chart.Title)
     w.WriteEndObject()

     for axis, label in [ "xaxis", chart.XLabel; "yaxis", chart.YLabel ] do
         w.WriteStartObject axis
         w.WriteStartObject "title"
         w.WriteString("text", label)
         w.WriteEndObject()
         w.WriteEndObject()

     w.WriteStartArray "shapes"
     w.WriteStartObject()
     w.WriteString("type", "line")
     w.WriteNumber("x0", chart.Split)
     w.WriteNumber("x1", chart.Split)
     w.WriteString("yref", "paper")
     w.WriteNumber("y0", 0)
     w.WriteNumber("y1", 1)
     w.WriteStartObject "line"
     w.WriteString("color", "gray")
     w.WriteString("dash", "dash")
     w.WriteEndObject()
     w.WriteEndObject()
     w.WriteEndArray()
     w.WriteEndObject()
     w.WriteEndObject())

    Encoding.UTF8.GetString(stream.ToArray())

/// The chart as an HTML page that draws it with plotly.js.
let toHtml (chart: Chart) : string =
    let title = Security.SecurityElement.Escape chart.Title

    String.concat "\n" [
        "<!DOCTYPE html>"
        "<html><head><meta charset=\"utf-8\">"
        $"<title>{title}</title>"
        $"<script src=\"{PlotlyScript}\" charset=\"utf-8\"></script>"
        "</head><body>"
        "<div id=\"chart\" style=\"width:100%;max-width:1000px;height:520px\"></div>"
        "<script>"
        $"const figure = {toPlotlyJson chart};"
        "Plotly.newPlot('chart', figure.data, figure.layout, {responsive: true});"
        "</script>"
        "</body></html>"
        ""
    ]

/// The first Chromium or Chrome executable on PATH (`chromium`, `chromium-browser`, `google-chrome`), if any.
let findChromium () : string option =
    let path =
        Environment.GetEnvironmentVariable "PATH"
        |> Option.ofObj
        |> Option.defaultValue ""

    [ "chromium"; "chromium-browser"; "google-chrome" ]
    |> List.tryPick (fun exe ->
        path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        |> Array.map (fun d -> Path.Combine(d, exe))
        |> Array.tryFind File.Exists)

/// Renders the SVG file `svg` to the PNG file `png` with headless `chromium` (the SVG is self-contained, so
/// this works offline). Returns false, leaving no PNG, if Chromium fails or takes more than 60 s.
let renderPng (chromium: string) (svg: string) (png: string) : bool =
    let info =
        Diagnostics.ProcessStartInfo(chromium, RedirectStandardOutput = true, RedirectStandardError = true)

    for arg in
        [
            "--headless"
            "--disable-gpu"
            "--no-sandbox"
            "--hide-scrollbars"
            $"--screenshot={Path.GetFullPath png}"
            "--window-size=760,360"
            Uri(Path.GetFullPath svg).AbsoluteUri
        ] do
        info.ArgumentList.Add arg

    use proc = Diagnostics.Process.Start info
    let output = proc.StandardOutput.ReadToEndAsync()
    let errors = proc.StandardError.ReadToEndAsync()

    if proc.WaitForExit 60_000 then
        output.Wait()
        errors.Wait()
        proc.ExitCode = 0 && File.Exists png
    else
        proc.Kill true
        false

/// Writes `<name>.svg` and `<name>.html` into `dir`, and `<name>.png` when `chromium` (see `findChromium`)
/// is given; returns the markdown that shows the SVG and links the interactive page.
let saveWith (chromium: string option) (dir: string) (name: string) (chart: Chart) : string =
    let svg = Path.Combine(dir, $"{name}.svg")
    File.WriteAllText(svg, toSvg chart)
    File.WriteAllText(Path.Combine(dir, $"{name}.html"), toHtml chart)

    match chromium with
    | Some exe when not (renderPng exe svg (Path.Combine(dir, $"{name}.png"))) ->
        eprintfn $"warning: {exe} could not render {name}.png; the SVG and HTML charts are written."
    | _ -> ()

    $"![{name}]({name}.svg) ([interactive]({name}.html))"

let private chromium = lazy (findChromium ())

/// `saveWith` with the Chromium found on PATH (PNG files only where one is installed).
let save (dir: string) (name: string) (chart: Chart) : string = saveWith chromium.Value dir name chart
