namespace Hybrid.Interactive

open System
open System.Globalization
open System.Text
open Hybrid.Training

/// The loss chart of a training run as a self-contained SVG: training (and validation, where validated)
/// loss per epoch, on a logarithmic axis when every loss is positive, else a linear one. Ticks at round
/// values, never `-0`.
[<RequireQualifiedAccess>]
module LossChart =

    // The drawing's size and its margins (pixels); one binding each, as a private tuple pattern compiles to
    // public properties.
    let private width = 480.0
    let private height = 260.0
    let private left = 60.0
    let private right = 110.0
    let private top = 24.0
    let private bottom = 40.0

    let private coordinate (v: float) =
        v.ToString("0.#", CultureInfo.InvariantCulture)

    /// Round tick positions covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about four of them.
    let internal ticks (lo: float) (hi: float) : float[] =
        let range = if hi > lo then hi - lo else 1.0
        let raw = range / 4.0
        let magnitude = 10.0 ** floor (log10 raw)

        let step =
            magnitude
            * (match raw / magnitude with
               | f when f <= 1.0 -> 1.0
               | f when f <= 2.0 -> 2.0
               | f when f <= 5.0 -> 5.0
               | _ -> 10.0)

        let first = ceil (lo / step - 1e-9)
        let last = floor (hi / step + 1e-9)
        [| for k in first..last -> Math.Round(k * step, 12) |]

    /// The chart of these loss series, each (name, colour, loss per epoch; NaN where there is none).
    let internal svgOf (series: (string * string * float[]) list) : string =
        let sb = StringBuilder()
        let add (s: string) = sb.Append(s).Append('\n') |> ignore
        let epochs = series |> List.map (fun (_, _, l) -> l.Length) |> List.fold max 0

        let values =
            series
            |> List.collect (fun (_, _, l) -> List.ofArray l)
            |> List.filter Double.IsFinite

        add
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"hybrid-loss-chart\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">"

        if values.IsEmpty then
            add
                $"<text x=\"{coordinate (width / 2.0)}\" y=\"{coordinate (height / 2.0)}\" text-anchor=\"middle\">no finite loss to draw</text>"
        else
            let logarithmic = values |> List.forall (fun v -> v > 0.0)
            let scale (v: float) = if logarithmic then log10 v else v
            let lo, hi = scale (List.min values), scale (List.max values)

            let y0, y1 =
                if logarithmic then
                    let a, b = floor lo, ceil hi
                    a, (if b > a then b else a + 1.0)
                elif hi > lo then
                    lo, hi
                else
                    lo - 1.0, hi + 1.0

            let x0, x1 = 1.0, float (max epochs 2)

            let px (x: float) =
                left + (x - x0) / (x1 - x0) * (width - left - right)

            let py (y: float) =
                height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

            let plotRight = width - right

            add $"<text x=\"{coordinate left}\" y=\"14\">loss per epoch</text>"

            add
                $"<line x1=\"{coordinate left}\" y1=\"{coordinate (height - bottom)}\" x2=\"{coordinate plotRight}\" y2=\"{coordinate (height - bottom)}\" stroke=\"#444\"/>"

            add
                $"<line x1=\"{coordinate left}\" y1=\"{coordinate top}\" x2=\"{coordinate left}\" y2=\"{coordinate (height - bottom)}\" stroke=\"#444\"/>"

            let yTicks =
                if logarithmic then
                    let stride = max 1.0 (ceil ((y1 - y0) / 6.0))
                    [| for k in y0..stride..y1 -> k |]
                else
                    ticks y0 y1

            for y in yTicks do
                let label =
                    if logarithmic then
                        (if y = 0.0 then "1" else $"1e{int y}")
                    else
                        Html.number y

                add
                    $"<line x1=\"{coordinate left}\" y1=\"{coordinate (py y)}\" x2=\"{coordinate plotRight}\" y2=\"{coordinate (py y)}\" stroke=\"#ddd\"/>"

                add
                    $"<text x=\"{coordinate (left - 4.0)}\" y=\"{coordinate (py y + 4.0)}\" text-anchor=\"end\">{label}</text>"

            for x in ticks x0 x1 |> Array.filter (fun x -> x = round x) do
                add
                    $"<text x=\"{coordinate (px x)}\" y=\"{coordinate (height - bottom + 14.0)}\" text-anchor=\"middle\">{Html.number x}</text>"

            add
                $"<text x=\"{coordinate ((left + plotRight) / 2.0)}\" y=\"{coordinate (height - 6.0)}\" text-anchor=\"middle\">epoch</text>"

            series
            |> List.iteri (fun i (name, colour, losses) ->
                let path = StringBuilder()
                let mutable pen = "M"

                losses
                |> Array.iteri (fun e v ->
                    if Double.IsFinite v then
                        path.Append($"{pen}{coordinate (px (float (e + 1)))},{coordinate (py (scale v))} ")
                        |> ignore

                        pen <- "L"
                    else
                        pen <- "M")

                if path.Length > 0 then
                    add
                        $"<path d=\"{path.ToString().TrimEnd()}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>"

                let ly = top + 14.0 * float i + 6.0

                add
                    $"<line x1=\"{coordinate (plotRight + 8.0)}\" y1=\"{coordinate ly}\" x2=\"{coordinate (plotRight + 24.0)}\" y2=\"{coordinate ly}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>"

                add
                    $"<text x=\"{coordinate (plotRight + 28.0)}\" y=\"{coordinate (ly + 4.0)}\">{Html.escape name}</text>")

        add "</svg>"
        sb.ToString().TrimEnd()

    /// The chart of a run: its training loss, and its validation loss where any epoch was validated.
    let svg (result: TrainResult) : string =
        let validated = result.ValidationLosses |> Array.exists Double.IsFinite

        [
            "training", "#1f77b4", result.TrainLosses
            if validated then
                "validation", "#ff7f0e", result.ValidationLosses
        ]
        |> svgOf
