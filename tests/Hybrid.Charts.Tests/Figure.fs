/// Reading a chart's Plotly figure back: the traces and layout of `Charts.toJson`, as JSON elements.
module Hybrid.Charts.Tests.Figure

open System.Text.Json
open Plotly.NET
open Hybrid.Charts

/// The charts' test data: hares observed in 1900–1902, the test period from 1901, and two model series, one with
/// a gap (NaN) and one of a single point; `title` as given (e.g. with characters SVG must escape).
let sample (title: string) : Hybrid.Models.Common.LineChart.Chart = {
    Title = title
    XLabel = "year"
    YLabel = "pelts"
    Observed = [| 1900.0, 30.0; 1901.0, 47.2; 1902.0, 70.2 |]
    Series = [|
        "model A", [| 1900.0, 31.0; 1901.0, nan; 1902.0, 69.0 |]
        "model B", [| 1901.0, 45.0 |]
    |]
    Split = 1901.0
}

/// The figure's JSON document (dispose it).
let parse (chart: GenericChart) : JsonDocument = JsonDocument.Parse(Charts.toJson chart)

/// The traces of the figure.
let traces (doc: JsonDocument) : JsonElement list = [
    for t in doc.RootElement.GetProperty("data").EnumerateArray() -> t
]

/// A trace's name.
let name (trace: JsonElement) : string = trace.GetProperty("name").GetString()

/// A trace's numbers under `key` ("x", "y"); NaN where the figure holds a non-number (a gap).
let numbers (key: string) (trace: JsonElement) : float list = [
    for v in trace.GetProperty(key).EnumerateArray() ->
        if v.ValueKind = JsonValueKind.Number then
            v.GetDouble()
        else
            nan
]

/// The layout's `title.text` of `axis` ("xaxis", "yaxis"), or of the figure for "".
let title (axis: string) (doc: JsonDocument) : string =
    let layout = doc.RootElement.GetProperty "layout"
    let owner = if axis = "" then layout else layout.GetProperty axis
    owner.GetProperty("title").GetProperty("text").GetString()

/// The message of the exception of type 'E that `f` raises (fails the test when it raises none or another type).
let messageOf<'E when 'E :> exn> (f: unit -> unit) : string =
    try
        f ()
        Expecto.Tests.failtestf "expected %s, nothing was raised" typeof<'E>.Name
    with :? 'E as e ->
        e.Message
