/// Heat maps of 2-D fields side by side on one colour scale, as a self-contained SVG for the markdown summary (no
/// plotting package, no browser): e.g. the climate case's mean precipitation maps of the truth and of each model.
module Hybrid.Models.Common.Heatmap

open System
open System.IO
open System.Text
open Hybrid.Models.Common.ReportFormat

/// One panel: a title and an n × m field, row-major (row i, column j at i·m + j; row 0 drawn at the bottom, as the
/// y axis of a map grows upwards).
type Panel = {
    /// The panel's title.
    Title: string
    /// Rows.
    Rows: int
    /// Columns.
    Columns: int
    /// The values, row-major; NaN and infinite values are drawn grey.
    Values: float[]
}

/// The colour scale's stops (viridis, from low to high).
let private stops = [| 68, 1, 84; 59, 82, 139; 33, 145, 140; 94, 201, 98; 253, 231, 37 |]

/// The colour (#rrggbb) of `v` on the scale lo … hi (clipped to it; the middle of the scale where lo = hi).
let colour (lo: float) (hi: float) (v: float) : string =
    let t =
        if hi > lo then
            Math.Clamp((v - lo) / (hi - lo), 0.0, 1.0)
        else
            0.5

    let position = t * float (stops.Length - 1)
    let i = min (stops.Length - 2) (int position)
    let f = position - float i
    let r0, g0, b0 = stops[i]
    let r1, g1, b1 = stops[i + 1]

    let mix (a: int) (b: int) =
        int (Math.Round(float a + f * float (b - a)))

    $"#{mix r0 r1:x2}{mix g0 g1:x2}{mix b0 b1:x2}"

/// The panels side by side (`title` above them, `label` under the colour bar) as an SVG document, every panel on
/// the one scale from the smallest to the largest finite value of all of them.
let toSvg (title: string) (label: string) (panels: Panel[]) : string =
    let size = 180.0
    let gap = 20.0
    let top = 46.0
    let left = 10.0
    let barWidth = 16.0

    let finite =
        panels |> Array.collect (fun p -> p.Values) |> Array.filter Double.IsFinite

    let lo, hi =
        if finite.Length = 0 then
            0.0, 1.0
        else
            Array.min finite, Array.max finite

    let width = left + float panels.Length * (size + gap) + barWidth + 90.0
    let height = top + size + 30.0
    let sb = StringBuilder()
    let add (s: string) = sb.AppendLine s |> ignore

    add
        $"""<svg xmlns="http://www.w3.org/2000/svg" width="{inv width}" height="{inv height}" font-family="sans-serif" font-size="11">"""

    add $"""<rect width="{inv width}" height="{inv height}" fill="white"/>"""
    add $"""<text x="{left}" y="18" font-size="13">{Security.SecurityElement.Escape title}</text>"""

    panels
    |> Array.iteri (fun k p ->
        let x0 = left + float k * (size + gap)
        let cw = size / float p.Columns
        let ch = size / float p.Rows
        add $"""<text x="{inv x0}" y="{inv (top - 6.0)}">{Security.SecurityElement.Escape p.Title}</text>"""

        for i in 0 .. p.Rows - 1 do
            for j in 0 .. p.Columns - 1 do
                let v = p.Values[i * p.Columns + j]
                let fill = if Double.IsFinite v then colour lo hi v else "#bbbbbb"
                let y = top + size - float (i + 1) * ch

                add
                    $"""<rect x="{inv (x0 + float j * cw)}" y="{inv y}" width="{inv (cw + 0.05)}" height="{inv (ch + 0.05)}" fill="{fill}"/>""")

    // The colour bar, low at the bottom.
    let bx = left + float panels.Length * (size + gap)

    for s in 0..49 do
        let v = lo + (hi - lo) * (float s + 0.5) / 50.0
        let y = top + size - float (s + 1) * size / 50.0

        add
            $"""<rect x="{inv bx}" y="{inv y}" width="{barWidth}" height="{inv (size / 50.0 + 0.05)}" fill="{colour lo hi v}"/>"""

    add $"""<text x="{inv (bx + barWidth + 4.0)}" y="{inv (top + 8.0)}">{inv hi}</text>"""
    add $"""<text x="{inv (bx + barWidth + 4.0)}" y="{inv (top + size)}">{inv lo}</text>"""
    add $"""<text x="{inv bx}" y="{inv (top + size + 20.0)}">{Security.SecurityElement.Escape label}</text>"""
    add "</svg>"
    sb.ToString()

/// Writes `<name>.svg` (`toSvg`) into `dir` and returns the markdown that shows it.
let save (dir: string) (name: string) (title: string) (label: string) (panels: Panel[]) : string =
    File.WriteAllText(Path.Combine(dir, $"{name}.svg"), toSvg title label panels)
    $"![{name}]({name}.svg)"
