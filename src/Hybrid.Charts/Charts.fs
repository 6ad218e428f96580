namespace Hybrid.Charts

open System
open System.IO
open TorchSharp
open Plotly.NET
open Plotly.NET.LayoutObjects
open Hybrid
open Hybrid.Numerics
open Hybrid.Training
open Hybrid.Models.Common

/// Hybrid's results as Plotly.NET charts: `GenericChart` values to restyle (`Chart.withTitle`, …), combine
/// (`Chart.combine`, `Chart.Grid`) and show (`Chart.show`), or write as HTML pages (`writeHtml`) and static images
/// (`tryWriteImage`, where a Chromium browser is installed).
[<RequireQualifiedAccess>]
module Charts =

    /// The plotly.js script the HTML pages of `writeHtml` load (the release Plotly.NET was built for).
    let PlotlyScript = $"https://cdn.plot.ly/plotly-{Globals.PLOTLYJS_VERSION}.min.js"

    /// How long `tryWriteImage` waits for the browser before it gives up.
    let ImageTimeout = TimeSpan.FromSeconds 60.0

    let private styled (title: string) (xLabel: string) (yLabel: string) (chart: GenericChart) =
        chart
        |> Chart.withTitle title
        |> Chart.withXAxisStyle (TitleText = xLabel)
        |> Chart.withYAxisStyle (TitleText = yLabel)

    let private dash (dashed: bool) =
        if dashed then
            StyleParam.DrawingStyle.Dash
        else
            StyleParam.DrawingStyle.Solid

    let private line (name: string) (x: float[]) (y: float[]) =
        Chart.Line(x = x, y = y, Name = name, ShowMarkers = false)

    let private points (name: string) (x: float[]) (y: float[]) =
        Chart.Point(x = x, y = y, Name = name, MarkerColor = Color.fromString "black")

    let private verticalLine (x: float) =
        Shape.init (
            ShapeType = StyleParam.ShapeType.Line,
            X0 = x,
            X1 = x,
            Y0 = 0,
            Y1 = 1,
            Yref = "paper",
            Line = Line.init (Color = Color.fromString "gray", Dash = StyleParam.DrawingStyle.Dash)
        )

    /// One of the report's charts (`LineChart.Chart`): each series a coloured line (the SVG's colours; past the
    /// palette, dashed), the observations as black dots named "observed", a dashed grey vertical line at `Split`
    /// (none where it is NaN), the title and axis titles. Points whose value is NaN leave a gap.
    let ofLineChart (chart: LineChart.Chart) : GenericChart =
        if chart.Series.Length = 0 && chart.Observed.Length = 0 then
            raise (
                HybridException(
                    $"Charts.ofLineChart: the chart '{chart.Title}' has no series and no observations. Give at least one series or observed point."
                )
            )

        [
            for i, (name, xy) in Array.indexed chart.Series do
                Chart.Line(
                    x = Array.map fst xy,
                    y = Array.map snd xy,
                    Name = name,
                    ShowMarkers = false,
                    LineColor = Color.fromHex (LineChart.colour i),
                    LineDash = dash (LineChart.dashed i)
                )
            if chart.Observed.Length > 0 then
                points "observed" (Array.map fst chart.Observed) (Array.map snd chart.Observed)
        ]
        |> Chart.combine
        |> styled chart.Title chart.XLabel chart.YLabel
        |> fun c ->
            if Double.IsFinite chart.Split then
                c |> Chart.withShape (verticalLine chart.Split)
            else
                c

    /// Batch element `b` of a field's values [S; B; spatial…] as float64 on the CPU: the values per save time
    /// (`S` rows) and the spatial shape.
    let private fieldValues (what: string) (field: string) (values: torch.Tensor) : float[][] * int64[] =
        use _ = torch.NewDisposeScope()

        if values.dim () < 2L then
            raise (
                HybridException(
                    $"{what}: field '{field}' has shape {values.shape}; a trajectory holds [S, B, spatial…] (save times, batch, space)."
                )
            )

        let first = values.select(1L, 0L).to_type(torch.float64).cpu().contiguous ()
        let rows = int first.shape[0]
        let spatial = first.shape[1..]
        let flat = first.reshape(int64 rows, -1L).data<float>().ToArray()
        let width = if rows = 0 then 0 else flat.Length / rows
        Array.init rows (fun s -> flat[s * width .. (s + 1) * width - 1]), spatial

    /// A simulation (`Trajectory`, batch element 0): the fields with one value per time as lines over time in one
    /// plot, each 1-D field as a heatmap over time and cells, each 2-D field as a heatmap of its last save time;
    /// several plots are stacked in one column (`Chart.Grid`). Title "simulation".
    let simulation (trajectory: Trajectory) : GenericChart =
        let times = trajectory.Times

        let fields =
            Array.map2
                (fun name values -> name, fieldValues "Charts.simulation" name values)
                trajectory.Fields
                trajectory.Values

        let scalar, spatial =
            fields
            |> Array.partition (fun (_, (_, shape)) -> Array.fold (fun a b -> a * b) 1L shape = 1L)

        let lines =
            if scalar.Length = 0 then
                []
            else
                [
                    scalar
                    |> Array.map (fun (name, (rows, _)) -> line name times (rows |> Array.map (fun r -> r[0])))
                    |> Chart.combine
                    |> Chart.withXAxisStyle (TitleText = "time")
                    |> Chart.withYAxisStyle (TitleText = "value")
                ]

        let maps = [
            for name, (rows, shape) in spatial do
                match shape.Length with
                | 1 ->
                    Chart.Heatmap(zData = rows, X = Array.init rows[0].Length id, Y = times, Name = name)
                    |> Chart.withXAxisStyle (TitleText = $"{name}: cell")
                    |> Chart.withYAxisStyle (TitleText = "time")
                | 2 ->
                    let nx, ny = int shape[0], int shape[1]
                    let last = rows[rows.Length - 1]
                    let z = Array.init ny (fun j -> Array.init nx (fun i -> last[i * ny + j]))

                    Chart.Heatmap(zData = z, Name = name)
                    |> Chart.withXAxisStyle (TitleText = $"{name} at t = {times[times.Length - 1]}: x cell")
                    |> Chart.withYAxisStyle (TitleText = "y cell")
                | _ ->
                    raise (
                        HybridException(
                            $"Charts.simulation: field '{name}' has {shape.Length} spatial dimensions; charts show fields of 0, 1 or 2. Slice the tensor and chart it with Plotly.NET directly."
                        )
                    )
        ]

        let plots = lines @ maps

        match plots with
        | [] ->
            raise (
                HybridException
                    "Charts.simulation: the trajectory has no fields. Simulate a model with at least one field."
            )
        | [ single ] -> single |> Chart.withTitle "simulation"
        | many -> Chart.Grid (nRows = many.Length, nCols = 1) many |> Chart.withTitle "simulation"

    /// Observed against predicted values over time (batch element 0 of both trajectories): for every field of
    /// `predicted` that `observed` also has, the observations as black dots named "<field> observed" and the
    /// prediction as a line named "<field> predicted"; fields with several values per time (sensors, cells) get one
    /// pair per value, named "<field>[k] …". Both must have the same number of values per time for a field.
    let fit (observed: Trajectory) (predicted: Trajectory) : GenericChart =
        let shared =
            predicted.Fields |> Array.filter (fun f -> Array.contains f observed.Fields)

        if shared.Length = 0 then
            raise (
                HybridException(
                    $"""Charts.fit: the observed fields [{String.Join(", ", observed.Fields)}] and the predicted fields [{String.Join(", ", predicted.Fields)}] have no name in common. Name the observations after the model's fields."""
                )
            )

        let of' (t: Trajectory) (field: string) =
            fst (fieldValues "Charts.fit" field t.Values[Array.IndexOf(t.Fields, field)])

        [
            for field in shared do
                let o, p = of' observed field, of' predicted field
                let ow = if o.Length = 0 then 0 else o[0].Length
                let pw = if p.Length = 0 then 0 else p[0].Length

                if ow <> pw then
                    raise (
                        HybridException(
                            $"Charts.fit: field '{field}' has {ow} observed values per time but {pw} predicted ones. Map the prediction to the observations first (e.g. with an ObservationOperator)."
                        )
                    )

                for k in 0 .. ow - 1 do
                    let label = if ow = 1 then field else $"{field}[{k}]"
                    points $"{label} observed" observed.Times (o |> Array.map (fun r -> r[k]))
                    line $"{label} predicted" predicted.Times (p |> Array.map (fun r -> r[k]))
        ]
        |> Chart.combine
        |> styled "observed and predicted" "time" "value"

    /// A training run's losses per epoch (`TrainResult`): "training" and, where validated, "validation" (epochs
    /// without validation are left out), on a log axis, with a dashed vertical line at the best validation epoch.
    let losses (result: TrainResult) : GenericChart =
        let epochs (values: float[]) =
            Array.init values.Length (fun i -> float (i + 1))

        let validated =
            Array.zip (epochs result.ValidationLosses) result.ValidationLosses
            |> Array.filter (fun (_, v) -> Double.IsFinite v)

        if result.TrainLosses.Length = 0 then
            raise (HybridException "Charts.losses: the training result has no epochs. Train for at least one epoch.")

        [
            line "training" (epochs result.TrainLosses) result.TrainLosses
            if validated.Length > 0 then
                line "validation" (Array.map fst validated) (Array.map snd validated)
        ]
        |> Chart.combine
        |> styled "losses" "epoch" "loss"
        |> Chart.withYAxisStyle (AxisType = StyleParam.AxisType.Log)
        |> fun c ->
            if result.BestEpoch > 0 then
                c |> Chart.withShape (verticalLine (float result.BestEpoch))
            else
                c

    /// A reliability diagram: for each named `Calibration`, the observed coverage of the central intervals against
    /// their nominal level (a line with markers named "<name> (ECE 0.012)"), with the ideal diagonal as a dashed
    /// grey line named "ideal"; both axes span 0 to 1.
    let reliability (calibrations: (string * Calibration) seq) : GenericChart =
        let calibrations = Array.ofSeq calibrations

        if calibrations.Length = 0 then
            raise (
                HybridException "Charts.reliability: no calibrations were given. Give at least one (name, Calibration)."
            )

        [
            Chart.Line(
                x = [| 0.0; 1.0 |],
                y = [| 0.0; 1.0 |],
                Name = "ideal",
                LineColor = Color.fromString "gray",
                LineDash = StyleParam.DrawingStyle.Dash
            )
            for name, c in calibrations do
                Chart.Line(x = c.Levels, y = c.Coverage, Name = $"{name} (ECE {c.Ece:F3})", ShowMarkers = true)
        ]
        |> Chart.combine
        |> styled "reliability" "nominal level" "observed coverage"
        |> Chart.withXAxisStyle (MinMax = (0.0, 1.0))
        |> Chart.withYAxisStyle (MinMax = (0.0, 1.0))

    /// The chart's figure (`data`, `layout`) as JSON, as plotly.js reads it.
    let toJson (chart: GenericChart) : string = GenericChart.toJson chart

    /// The chart as a whole HTML page that loads plotly.js from `PlotlyScript` when opened (a few kilobytes).
    let toHtml (chart: GenericChart) : string =
        chart
        |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.CDN PlotlyScript))
        |> GenericChart.toEmbeddedHTML

    /// Writes the chart as an HTML page to `path` (folders created), loading plotly.js from `PlotlyScript` when
    /// opened; `writeStandaloneHtml` writes a page that works offline.
    let writeHtml (path: string) (chart: GenericChart) : unit =
        match Path.GetDirectoryName(Path.GetFullPath path) with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore

        File.WriteAllText(path, toHtml chart)

    /// Writes the chart as an HTML page with plotly.js inside it (about 3.6 MB; works offline) to `path`.
    let writeStandaloneHtml (path: string) (chart: GenericChart) : unit =
        match Path.GetDirectoryName(Path.GetFullPath path) with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore

        chart
        |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.Full))
        |> GenericChart.toEmbeddedHTML
        |> fun html -> File.WriteAllText(path, html)

    /// Writes the chart as a `width` × `height` pixel image in `format` to `path` (the format's extension is added
    /// when `path` lacks it) through Plotly.NET.ImageExport and a local Chromium: the executable named by the
    /// environment variable HYBRID_CHROMIUM, else the first of chromium, chromium-browser, google-chrome,
    /// google-chrome-stable on PATH. Never downloads a browser: without one it returns `NoBrowser` at once, and a
    /// browser that takes longer than `ImageTimeout` gives `Failed`.
    let tryWriteImageSized (width: int) (height: int) (path: string) (format: ImageFormat) (chart: GenericChart) =
        match Browser.findHere () with
        | None -> ImageResult.NoBrowser(Browser.noBrowserMessage path)
        | Some exe ->
            match Path.GetDirectoryName(Path.GetFullPath path) with
            | null -> ()
            | dir -> Directory.CreateDirectory dir |> ignore

            chart
            |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.Full))
            |> Browser.render exe ImageTimeout format width height path

    /// `tryWriteImageSized` at 900 × 500 pixels.
    let tryWriteImage (path: string) (format: ImageFormat) (chart: GenericChart) : ImageResult =
        tryWriteImageSized 900 500 path format chart
