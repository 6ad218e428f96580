/// The report's interactive pages: the `LineChart.PageWriter` that `hybrid report` hands to the report, writing
/// each chart as a Plotly.NET HTML page and, where a browser is installed, a PNG image.
module Hybrid.Charts.ReportPages

open System.IO
open Hybrid.Models.Common

/// Writes `<name>.html` (Plotly.NET, plotly.js loaded from its CDN) into `dir` and, where `Charts.tryWriteImage`
/// finds a browser, `<name>.png`; a browser that fails gives a warning on standard error, no PNG.
let writeWith (images: bool) (dir: string) (name: string) (chart: LineChart.Chart) : unit =
    let plot = Charts.ofLineChart chart
    Charts.writeHtml (Path.Combine(dir, $"{name}.html")) plot

    if images then
        match Charts.tryWriteImageSized 760 360 (Path.Combine(dir, $"{name}.png")) ImageFormat.Png plot with
        | ImageResult.Written _
        | ImageResult.NoBrowser _ -> ()
        | ImageResult.Failed message -> eprintfn $"warning: {message} The SVG and HTML charts are written."

/// `writeWith true`: HTML pages, and PNG images where a browser is installed.
let write: LineChart.PageWriter = writeWith true
