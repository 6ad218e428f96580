/// Line charts of observed against predicted values: the chart's data (`Chart`), and a self-contained SVG of it
/// for the markdown summary (no plotting package, no browser). The interactive pages come from Hybrid.Charts
/// (Plotly.NET), which `hybrid report` passes in as a `PageWriter`.
module Hybrid.Models.Common.LineChart

open System
open System.Globalization
open System.IO
open System.Text
open System.Threading
open Hybrid.Models.Common.ReportFormat

/// One chart: `Observed` (x, y) drawn as black dots, each of `Series` (name, points) as a coloured line, and
/// a dashed vertical line at `Split` (the start of the test period; at the left edge it shows nothing new).
type Chart = {
    /// The title above the plot.
    Title: string
    /// The x axis' label (with its units).
    XLabel: string
    /// The y axis' label (with its units).
    YLabel: string
    /// The observations as (x, y) points, drawn as black dots (empty for none).
    Observed: (float * float)[]
    /// The predictions: each a name (the legend's entry) and its (x, y) points, drawn as a line.
    Series: (string * (float * float)[])[]
    /// The x where the test period starts, drawn as a dashed vertical line (the axis' minimum for none).
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

/// The colour (#rrggbb) of the `i`-th series (0-based): the palette's colours in turn.
let colour (i: int) = palette[i % palette.Length]

/// Whether the `i`-th series is dashed: series past the palette's length repeat its colours dashed, so no two
/// lines of a chart look alike (up to twice the palette's length).
let dashed (i: int) = i / palette.Length % 2 = 1

/// Axis ticks for the values `lo` … `hi`: about five steps of 1, 2 or 5 times a power of ten, from the last
/// multiple of the step at or below `lo` to the first at or above `hi`, each with its label (as many decimals as
/// the step needs, invariant culture, "0" rather than "-0"). A range of one value is widened by one step each side.
let niceTicks (lo: float) (hi: float) : (float * string)[] =
    if not (Double.IsFinite lo && Double.IsFinite hi) || lo > hi then
        invalidArg (nameof lo) $"niceTicks: the range {lo} … {hi} must be finite with lo ≤ hi."

    let span =
        if hi > lo then hi - lo
        elif lo = 0.0 then 1.0
        else abs lo * 0.1

    let raw = span / 5.0
    let magnitude = 10.0 ** floor (log10 raw)

    let step =
        [ 1.0; 2.0; 5.0; 10.0 ]
        |> List.map (fun m -> m * magnitude)
        |> List.find (fun s -> s >= raw * (1.0 - 1e-9))

    // Whole multiples of the step (so 0.1 + 0.2 never shows as 0.30000000000000004), as many decimals as it needs.
    let decimals = max 0 (int (-(floor (log10 step + 1e-9))))
    let first = floor (lo / step + 1e-9)
    let last = ceil (hi / step - 1e-9)

    let first, last =
        if first = last then
            first - 1.0, last + 1.0
        else
            first, last

    [|
        for k in first..last do
            let value = Math.Round(k * step, decimals)
            let label = value.ToString($"F{decimals}", CultureInfo.InvariantCulture)
            // A tiny negative value rounds to "-0.0": the axis shows "0".
            let label =
                if Double.Parse(label, CultureInfo.InvariantCulture) = 0.0 then
                    "0"
                else
                    label

            (if value = 0.0 then 0.0 else value), label
    |]

/// The chart as a self-contained SVG document (no plotting package, no script), with rounded axis ticks
/// (`niceTicks`); NaN and infinite values are left out.
let toSvg (chart: Chart) : string =
    let title, xLabel, yLabel = chart.Title, chart.XLabel, chart.YLabel
    let observed, series, split = chart.Observed, chart.Series, chart.Split
    let width, height = 760.0, 360.0
    let left, right, top, bottom = 60.0, 240.0, 30.0, 40.0
    let finite (x, y) = Double.IsFinite x && Double.IsFinite y
    let all = Array.append observed (series |> Array.collect snd) |> Array.filter finite
    let xs = all |> Array.map fst
    let ys = all |> Array.map snd

    let xs, ys =
        (if xs.Length = 0 then
             [| 0.0; 1.0 |], [| 0.0; 1.0 |]
         else
             xs, ys)

    let xTicks = niceTicks (Array.min xs) (Array.max xs)
    let yTicks = niceTicks (min 0.0 (Array.min ys)) (Array.max ys)
    let x0, x1 = fst xTicks[0], fst xTicks[xTicks.Length - 1]
    let y0, y1 = fst yTicks[0], fst yTicks[yTicks.Length - 1]

    let px x =
        left + (x - x0) / (x1 - x0) * (width - left - right)

    let py y =
        height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    // A path per run of finite points: a NaN leaves a gap.
    let path (points: (float * float)[]) =
        points
        |> Array.mapi (fun i p -> i, p)
        |> Array.filter (snd >> finite)
        |> Array.mapi (fun j (i, (x, y)) ->
            let move = j = 0 || not (finite points[i - 1])
            $"""{(if move then "M" else "L")}{inv (px x)},{inv (py y)}""")
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

    for y, label in yTicks do
        add
            $"""<line x1="{left - 3.0}" y1="{inv (py y)}" x2="{left}" y2="{inv (py y)}" stroke="black"/><text x="{left - 6.0}" y="{inv (py y + 4.0)}" text-anchor="end">{label}</text>"""

    for x, label in xTicks do
        add
            $"""<line x1="{inv (px x)}" y1="{inv (py y0)}" x2="{inv (px x)}" y2="{inv (py y0 + 3.0)}" stroke="black"/><text x="{inv (px x)}" y="{height - bottom + 16.0}" text-anchor="middle">{label}</text>"""

    add
        $"""<text x="14" y="{inv ((top + height - bottom) / 2.0)}" transform="rotate(-90 14 {inv ((top + height - bottom) / 2.0)})" text-anchor="middle">{Security.SecurityElement.Escape yLabel}</text>"""

    add
        $"""<text x="{inv ((left + width - right) / 2.0)}" y="{inv (height - 4.0)}" text-anchor="middle">{Security.SecurityElement.Escape xLabel}</text>"""

    if Double.IsFinite split && split >= x0 && split <= x1 then
        add
            $"""<line x1="{inv (px split)}" y1="{inv (py y0)}" x2="{inv (px split)}" y2="{inv (py y1)}" stroke="gray" stroke-dasharray="4 3"/>"""

    if observed.Length > 0 then
        add $"""<path d="{path observed}" fill="none" stroke="black" stroke-width="0.8"/>"""

    for x, y in observed |> Array.filter finite do
        add $"""<circle cx="{inv (px x)}" cy="{inv (py y)}" r="2.5" fill="black"/>"""

    series
    |> Array.iteri (fun i (name, points) ->
        let colour = colour i
        let dash = if dashed i then " stroke-dasharray=\"5,3\"" else ""
        add $"""<path d="{path points}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>"""
        let ly = top + 14.0 * float (i + 1)

        add
            $"""<line x1="{width - right + 10.0}" y1="{ly}" x2="{width - right + 28.0}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>"""

        add $"""<text x="{width - right + 32.0}" y="{ly + 4.0}">{Security.SecurityElement.Escape name}</text>""")

    if observed.Length > 0 then
        add
            $"""<circle cx="{width - right + 19.0}" cy="{top}" r="2.5" fill="black"/><text x="{width - right + 32.0}" y="{top + 4.0}">observed</text>"""

    add "</svg>"
    sb.ToString()

/// Writes a chart's interactive files beside its SVG: given the folder, the base name and the chart, it writes
/// `<name>.html` (and may write more, e.g. `<name>.png`). Hybrid.Charts' `ReportPages.write` is the one
/// `hybrid report` uses (Plotly.NET); Hybrid.Models itself writes only SVG.
type PageWriter = string -> string -> Chart -> unit

/// The page writer of `save`, set by `withPages` for the code it runs (this thread and the tasks it starts).
let private pages = AsyncLocal<PageWriter option>()

/// Runs `action` with `writer` writing the page of every chart that `save` writes inside it (the report's
/// sections call `save`; the CLI wraps the report in this), and restores the previous writer afterwards.
let withPages (writer: PageWriter) (action: unit -> 'T) : 'T =
    let before = pages.Value
    pages.Value <- Some writer

    try
        action ()
    finally
        pages.Value <- before

/// Writes `<name>.svg` into `dir` and, when `pages` is given, lets it write the interactive page `<name>.html`;
/// returns the markdown that shows the SVG (and links the page where one was written).
let saveWith (pages: PageWriter option) (dir: string) (name: string) (chart: Chart) : string =
    File.WriteAllText(Path.Combine(dir, $"{name}.svg"), toSvg chart)

    match pages with
    | Some write ->
        write dir name chart
        $"![{name}]({name}.svg) ([interactive]({name}.html))"
    | None -> $"![{name}]({name}.svg)"

/// `saveWith` with the page writer of the enclosing `withPages` (none outside one: SVG only).
let save (dir: string) (name: string) (chart: Chart) : string = saveWith pages.Value dir name chart
