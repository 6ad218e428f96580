/// The report's charts: the Plotly HTML page carries every series (JSON that parses, gaps as null) and the
/// split line, the SVG is well-formed XML, and PNG rendering calls Chromium the way it should.
module Hybrid.Tests.Report.LineChartTests

open System
open System.IO
open System.Text.Json
open System.Xml
open Expecto
open Hybrid.Models.Report
open Hybrid.Models.Common

let private chart: LineChart.Chart = {
    Title = "hare & lynx <test>"
    XLabel = "year"
    YLabel = "pelts"
    Observed = [| 1900.0, 30.0; 1901.0, 47.2; 1902.0, 70.2 |]
    Series = [|
        "model A", [| 1900.0, 31.0; 1901.0, nan; 1902.0, 69.0 |]
        "model B", [| 1901.0, 45.0 |]
    |]
    Split = 1901.0
}

let private tempDir () =
    let dir = Path.Combine(Path.GetTempPath(), $"hybrid-chart-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    dir

let tests =
    testList "Report.LineChart" [
        test "the Plotly figure holds every series, the observations and the split line" {
            use doc = JsonDocument.Parse(LineChart.toPlotlyJson chart)
            let data = doc.RootElement.GetProperty "data"
            let names = [ for t in data.EnumerateArray() -> t.GetProperty("name").GetString() ]
            Expect.equal names [ "model A"; "model B"; "observed" ] "one trace per series, then the observations"
            let y = data[0].GetProperty "y"
            Expect.equal (y[1].ValueKind) JsonValueKind.Null "NaN is written as null (a gap)"
            Expect.equal (y[2].GetDouble()) 69.0 "values are kept"
            let observedX = data[2].GetProperty "x"
            Expect.equal (observedX[2].GetDouble()) 1902.0 "observed x"
            let layout = doc.RootElement.GetProperty "layout"
            Expect.equal (layout.GetProperty("title").GetProperty("text").GetString()) chart.Title "title"

            let shapes = layout.GetProperty "shapes"
            Expect.equal (shapes[0].GetProperty("x0").GetDouble()) 1901.0 "dashed line at the split"
        }

        test "the HTML page loads plotly.js and embeds the figure; the SVG is well-formed XML" {
            let html = LineChart.toHtml chart
            Expect.stringContains html LineChart.PlotlyScript "plotly.js script tag"
            Expect.stringContains html "Plotly.newPlot('chart'" "draws the figure"
            Expect.stringContains html "<title>hare &amp; lynx &lt;test&gt;</title>" "escaped title"
            let xml = XmlDocument()
            xml.LoadXml(LineChart.toSvg chart)
            Expect.equal xml.DocumentElement.Name "svg" "an SVG document"
        }

        test "save writes SVG and HTML and returns markdown linking both; PNG only with Chromium" {
            let dir = tempDir ()

            try
                let md = LineChart.saveWith None dir "c" chart
                Expect.equal md "![c](c.svg) ([interactive](c.html))" "markdown"
                Expect.isTrue (File.Exists(Path.Combine(dir, "c.svg"))) "SVG written"
                Expect.isTrue (File.Exists(Path.Combine(dir, "c.html"))) "HTML written"
                Expect.isFalse (File.Exists(Path.Combine(dir, "c.png"))) "no PNG without Chromium"
            finally
                Directory.Delete(dir, true)
        }

        test "PNG rendering passes the SVG's file URI and the screenshot path to Chromium" {
            // A stand-in for Chromium that writes the --screenshot file and records its arguments.
            let dir = tempDir ()

            try
                let fake = Path.Combine(dir, "chromium")

                File.WriteAllText(
                    fake,
                    "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\" >> \"$(dirname \"$0\")/args.txt\"; case \"$a\" in --screenshot=*) printf png > \"${a#--screenshot=}\";; esac; done\n"
                )

                File.SetUnixFileMode(
                    fake,
                    UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute
                )

                LineChart.saveWith (Some fake) dir "c" chart |> ignore
                Expect.equal (File.ReadAllText(Path.Combine(dir, "c.png"))) "png" "PNG written where Chromium said"
                let args = File.ReadAllLines(Path.Combine(dir, "args.txt"))
                Expect.contains args "--headless" "headless"
                Expect.contains args (Uri(Path.Combine(dir, "c.svg")).AbsoluteUri) "renders the SVG file"
            finally
                Directory.Delete(dir, true)
        }

        test "a real Chromium, where one is on PATH, renders the chart to a PNG image" {
            match LineChart.findChromium () with
            | None -> skiptest "no chromium, chromium-browser or google-chrome on PATH"
            | Some chromium ->
                let dir = tempDir ()

                try
                    LineChart.saveWith (Some chromium) dir "c" chart |> ignore
                    let png = File.ReadAllBytes(Path.Combine(dir, "c.png"))
                    Expect.isGreaterThan png.Length 1000 "a non-trivial image"

                    Expect.sequenceEqual
                        png[0..7]
                        [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]
                        "the PNG signature"
                finally
                    Directory.Delete(dir, true)
        }
    ]
