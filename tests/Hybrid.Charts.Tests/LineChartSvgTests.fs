/// The report's dependency-free SVG charts (`LineChart` in Hybrid.Models): rounded axis ticks, no "-0", well-formed
/// XML, and `save`'s files and markdown with and without a page writer.
module Hybrid.Charts.Tests.LineChartSvgTests

open System
open System.IO
open System.Text.RegularExpressions
open System.Xml
open Expecto
open Hybrid.Models.Common

let private chart = Figure.sample "hare & lynx <test>"

let private labels (ticks: (float * string)[]) = ticks |> Array.map snd |> List.ofArray

let private tempDir () =
    let dir = Path.Combine(Path.GetTempPath(), $"hybrid-chart-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    dir

let tests =
    testList "LineChart.svg" [
        test "ticks of the issue's range -0.04 … 0.42 step by 0.1 and show 0, not -0" {
            // The old axis read 0.42, 0.31, 0.19, 0.08, -0.04 (quarters of the range).
            Expect.equal
                (labels (LineChart.niceTicks -0.04 0.42))
                [ "-0.1"; "0"; "0.1"; "0.2"; "0.3"; "0.4"; "0.5" ]
                "steps of 0.1 around the data"
        }

        test "ticks step by 1, 2 or 5 times a power of ten for ranges of every size" {
            Expect.equal (labels (LineChart.niceTicks 1900.0 1920.0)) [ "1900"; "1905"; "1910"; "1915"; "1920" ] "years"
            Expect.equal (labels (LineChart.niceTicks 0.0 1.0)) [ "0"; "0.2"; "0.4"; "0.6"; "0.8"; "1.0" ] "unit range"

            Expect.equal
                (labels (LineChart.niceTicks 0.0 73.71))
                [ "0"; "20"; "40"; "60"; "80" ]
                "pelts: 73.71 / 5 = 14.7 → step 20"

            Expect.equal
                (labels (LineChart.niceTicks -3e-4 2e-4))
                [ "-0.0003"; "-0.0002"; "-0.0001"; "0"; "0.0001"; "0.0002" ]
                "small values"

            Expect.equal
                (labels (LineChart.niceTicks 5.0 5.0))
                [ "4.9"; "5.0"; "5.1" ]
                "one value, widened by a step each side"
        }

        test "no tick label is -0 for ranges whose ends round to zero" {
            for lo, hi in [ -1e-12, 1.0; -0.04, 0.42; -0.001, 0.3; -2.0, 2e-9; -5e-5, 0.0 ] do
                let ticks = LineChart.niceTicks lo hi
                let bad = ticks |> Array.filter (fun (_, l) -> Regex.IsMatch(l, "^-0(\\.0*)?$"))
                Expect.isEmpty bad $"no -0 among the ticks of {lo} … {hi}: {labels ticks}"
                // Within a millionth of the range: -1e-12 … 1 starts at 0.
                let slack = 1e-6 * (hi - lo)
                Expect.isLessThanOrEqual (fst ticks[0]) (lo + slack) $"the first tick is at or below {lo}"

                Expect.isGreaterThanOrEqual
                    (fst ticks[ticks.Length - 1])
                    (hi - slack)
                    $"the last tick is at or above {hi}"
        }

        test "the SVG is well-formed XML with the ticks as labels and no -0" {
            let svg =
                LineChart.toSvg {
                    chart with
                        Observed = [| 0.0, -0.04; 1.0, 0.42 |]
                        Series = [| "m", [| 0.0, 0.1; 1.0, 0.2 |] |]
                }

            let xml = XmlDocument()
            xml.LoadXml svg
            Expect.equal xml.DocumentElement.Name "svg" "an SVG document"

            let texts = [ for n in xml.GetElementsByTagName "text" -> n.InnerText ]

            for label in [ "-0.1"; "0"; "0.1"; "0.5"; "0.2"; "1.0" ] do
                Expect.contains texts label $"tick label {label}"

            Expect.isFalse (texts |> List.exists (fun t -> t = "-0" || t = "-0.0")) "no -0 label"
            Expect.stringContains svg "hare &amp; lynx &lt;test&gt;" "escaped title"
        }

        test "a NaN point leaves a gap: the line starts again after it" {
            let svg = LineChart.toSvg chart

            let model =
                Regex.Match(svg, "<path d=\"([^\"]*)\" fill=\"none\" stroke=\"#1f77b4\"").Groups[1].Value

            Expect.equal (Regex.Matches(model, "M").Count) 2 $"two runs (M … M …) in '{model}'"
            Expect.isFalse (model.Contains "NaN") "no NaN coordinates"
        }

        test "save writes the SVG and no page without a page writer; with one it links the page it wrote" {
            let dir = tempDir ()

            try
                Expect.equal (LineChart.save dir "c" chart) "![c](c.svg)" "SVG only"
                Expect.isTrue (File.Exists(Path.Combine(dir, "c.svg"))) "SVG written"
                Expect.isFalse (File.Exists(Path.Combine(dir, "c.html"))) "no page"

                let written = Collections.Generic.List<string * string>()

                let md =
                    LineChart.withPages (fun d name c -> written.Add((d, $"{name}: {c.Title}"))) (fun () ->
                        LineChart.save dir "c" chart)

                Expect.equal md "![c](c.svg) ([interactive](c.html))" "links the page"

                Expect.equal
                    (List.ofSeq written)
                    [ dir, "c: hare & lynx <test>" ]
                    "the writer got the folder, name and chart"

                Expect.equal (LineChart.save dir "d" chart) "![d](d.svg)" "the writer is gone after withPages"
            finally
                Directory.Delete(dir, true)
        }
    ]
