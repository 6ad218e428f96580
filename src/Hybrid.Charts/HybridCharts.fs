namespace Hybrid.Charts

open System
open System.Collections.Generic
open System.IO
open System.Threading.Tasks
open Plotly.NET
open Hybrid
open Hybrid.Training
open Hybrid.Models.Common

/// The charts of `Charts` for C# programs, written as files: HTML pages (plotly.js loaded from its CDN when
/// opened), and PNG, SVG or JPG images where a Chromium browser is installed (see `Charts.tryWriteImage`). No F#
/// types in the signatures: arrays, dictionaries, strings and tasks.
[<AbstractClass; Sealed>]
type HybridCharts =

    static member private Output (path: string) (chart: GenericChart) : Task<string> =
        match Path.GetExtension(path).ToLowerInvariant() with
        | ".html"
        | ".htm" ->
            Charts.writeHtml path chart
            Task.FromResult path
        | ".png"
        | ".svg"
        | ".jpg"
        | ".jpeg" as extension ->
            let format =
                match extension with
                | ".png" -> ImageFormat.Png
                | ".svg" -> ImageFormat.Svg
                | _ -> ImageFormat.Jpg

            Task.Run(fun () ->
                match Charts.tryWriteImage path format chart with
                | ImageResult.Written written -> written
                | ImageResult.NoBrowser message
                | ImageResult.Failed message -> raise (InvalidOperationException message))
        | other ->
            raise (
                ArgumentException(
                    $"HybridCharts: cannot write '{path}': the extension '{other}' is none of .html, .png, .svg, .jpg. Name the file for the format you want, e.g. chart.html.",
                    nameof path
                )
            )

    /// Whether `WritePngAsync` and the other image writers can run here: a Chromium or Chrome executable was found
    /// (environment variable HYBRID_CHROMIUM, else chromium, chromium-browser, google-chrome on PATH).
    static member CanWriteImages: bool = (Browser.findHere ()).IsSome

    /// Writes a line chart to `path` (.html, .png, .svg or .jpg, by its extension): each of `series` (name ↦ y
    /// values, one per `x`; NaN leaves a gap) as a line, `observedX`/`observedY` as black dots named "observed"
    /// (empty arrays for none). Returns the path written; images fail with InvalidOperationException without a
    /// browser.
    static member WriteLinesAsync
        (
            path: string,
            title: string,
            xLabel: string,
            yLabel: string,
            x: double[],
            series: IReadOnlyDictionary<string, double[]>,
            observedX: double[],
            observedY: double[]
        ) : Task<string> =
        ArgumentNullException.ThrowIfNull path
        ArgumentNullException.ThrowIfNull x
        ArgumentNullException.ThrowIfNull series
        ArgumentNullException.ThrowIfNull observedX
        ArgumentNullException.ThrowIfNull observedY

        for KeyValue(name, values) in series do
            if isNull values || values.Length <> x.Length then
                raise (
                    ArgumentException(
                        $"HybridCharts.WriteLinesAsync: series '{name}' has {(if isNull values then 0 else values.Length)} values but x has {x.Length}. Give one value per x (NaN for a gap).",
                        nameof series
                    )
                )

        if observedX.Length <> observedY.Length then
            raise (
                ArgumentException(
                    $"HybridCharts.WriteLinesAsync: observedX has {observedX.Length} values but observedY has {observedY.Length}. Give one y per x.",
                    nameof observedY
                )
            )

        let chart: LineChart.Chart = {
            Title = title
            XLabel = xLabel
            YLabel = yLabel
            Observed = Array.zip observedX observedY
            Series = [| for KeyValue(name, values) in series -> name, Array.zip x values |]
            Split = nan
        }

        HybridCharts.Output path (Charts.ofLineChart chart)

    /// Writes a simulation chart to `path` (.html, .png, .svg or .jpg): each field (name ↦ one value per time) as
    /// a line over `times`. Returns the path written.
    static member WriteSimulationAsync
        (path: string, times: double[], fields: IReadOnlyDictionary<string, double[]>)
        : Task<string> =
        ArgumentNullException.ThrowIfNull times
        ArgumentNullException.ThrowIfNull fields

        HybridCharts.WriteLinesAsync(path, "simulation", "time", "value", times, fields, [||], [||])

    /// Writes a training run's losses (one per epoch; NaN for epochs without validation) to `path` on a log
    /// axis; `validationLosses` may be empty. Returns the path written.
    static member WriteLossesAsync
        (path: string, trainLosses: double[], validationLosses: double[], bestEpoch: int)
        : Task<string> =
        ArgumentNullException.ThrowIfNull trainLosses
        ArgumentNullException.ThrowIfNull validationLosses

        let result: TrainResult = {
            TrainLosses = trainLosses
            ValidationLosses = validationLosses
            Epochs = trainLosses.Length
            BestEpoch = bestEpoch
            StoppedEarly = false
            Cancelled = false
            WallTime = TimeSpan.Zero
            Theta = [||]
            Recoveries = 0
        }

        HybridCharts.Output path (Charts.losses result)

    /// Writes a reliability diagram to `path`: for each name, the observed coverage (`coverage[name]`, one per
    /// level) of central intervals against their nominal `levels`, with the diagonal. Returns the path written.
    static member WriteReliabilityAsync
        (path: string, levels: double[], coverage: IReadOnlyDictionary<string, double[]>)
        : Task<string> =
        ArgumentNullException.ThrowIfNull levels
        ArgumentNullException.ThrowIfNull coverage

        let named = coverage |> Seq.map (fun pair -> pair.Key, pair.Value) |> Array.ofSeq

        for name, observed in named do
            if isNull observed || observed.Length <> levels.Length then
                let count = if isNull observed then 0 else observed.Length

                raise (
                    ArgumentException(
                        $"HybridCharts.WriteReliabilityAsync: '{name}' has {count} coverages but there are {levels.Length} levels. Give one coverage per level.",
                        nameof coverage
                    )
                )

        let calibrate (observed: double[]) : Calibration = {
            Levels = levels
            Coverage = observed
            Ece = Array.map2 (fun c l -> abs (c - l)) observed levels |> Array.average
        }

        let calibrations =
            named |> Array.map (fun (name, observed) -> name, calibrate observed)

        HybridCharts.Output path (Charts.reliability calibrations)
