/// Writing charts: HTML pages that carry the figure, the report's page writer, and static images through a browser
/// (a real Chromium only where one is installed; without one, an answer at once, never a hang).
module Hybrid.Charts.Tests.ChartFilesTests

open System
open System.IO
open Expecto
open Hybrid.Models.Common
open Hybrid.Charts

let private chart: LineChart.Chart = {
    Title = "hares"
    XLabel = "year"
    YLabel = "pelts"
    Observed = [| 1900.0, 30.0; 1901.0, 47.2 |]
    Series = [| "fitted model", [| 1900.0, 31.0; 1901.0, 46.5 |] |]
    Split = 1901.0
}

let private tempDir () =
    let dir = Path.Combine(Path.GetTempPath(), $"hybrid-charts-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    dir

let private inTemp (f: string -> unit) =
    let dir = tempDir ()

    try
        f dir
    finally
        Directory.Delete(dir, true)

let tests =
    testList "Charts.files" [
        test "writeHtml writes a page that loads plotly.js and holds the traces, values and titles" {
            inTemp (fun dir ->
                let path = Path.Combine(dir, "sub", "c.html")
                Charts.writeHtml path (Charts.ofLineChart chart)
                let html = File.ReadAllText path
                Expect.stringContains html Charts.PlotlyScript "loads plotly.js from its CDN"
                Expect.stringContains html "\"name\":\"fitted model\"" "the series"
                Expect.stringContains html "\"name\":\"observed\"" "the observations"
                Expect.stringContains html "[31.0,46.5]" "the series' values"
                Expect.stringContains html "\"text\":\"pelts\"" "the y title"
                Expect.isLessThan html.Length 100_000 "plotly.js is not inlined")
        }

        test "writeStandaloneHtml inlines plotly.js so the page works offline" {
            inTemp (fun dir ->
                let path = Path.Combine(dir, "c.html")
                Charts.writeStandaloneHtml path (Charts.ofLineChart chart)
                let html = File.ReadAllText path
                Expect.isFalse (html.Contains Charts.PlotlyScript) "no CDN script"
                Expect.isGreaterThan html.Length 1_000_000 "plotly.js inside"
                Expect.stringContains html "\"name\":\"fitted model\"" "the series")
        }

        test "the report's page writer writes <name>.html beside the SVG; save links it" {
            inTemp (fun dir ->
                let md =
                    LineChart.withPages (ReportPages.writeWith false) (fun () -> LineChart.save dir "c" chart)

                Expect.equal md "![c](c.svg) ([interactive](c.html))" "markdown"
                Expect.isTrue (File.Exists(Path.Combine(dir, "c.svg"))) "SVG"

                Expect.stringContains
                    (File.ReadAllText(Path.Combine(dir, "c.html")))
                    "\"name\":\"fitted model\""
                    "HTML")
        }

        test "the browser is HYBRID_CHROMIUM's file, else the first known name on PATH, else none" {
            inTemp (fun dir ->
                let empty = Path.Combine(dir, "empty")
                let bin = Path.Combine(dir, "bin")
                Directory.CreateDirectory empty |> ignore
                Directory.CreateDirectory bin |> ignore
                let chrome = Path.Combine(bin, "google-chrome")
                File.WriteAllText(chrome, "")
                let path = String.Join(Path.PathSeparator, [ empty; bin ])
                Expect.equal (Browser.find None empty) None "nothing on PATH"
                Expect.equal (Browser.find None path) (Some chrome) "found on PATH"
                Expect.equal (Browser.find (Some "/no/such/browser") path) (Some chrome) "a missing file is ignored"
                let own = Path.Combine(dir, "my-chromium")
                File.WriteAllText(own, "")
                Expect.equal (Browser.find (Some own) path) (Some own) "the variable wins")
        }

        test "without a browser tryWriteImage says so at once and writes nothing" {
            match Browser.findHere () with
            | Some exe -> skiptest $"a browser is installed here ({exe}); the next tests render with it"
            | None ->
                inTemp (fun dir ->
                    let path = Path.Combine(dir, "c.png")

                    match Charts.tryWriteImage path ImageFormat.Png (Charts.ofLineChart chart) with
                    | ImageResult.NoBrowser message ->
                        Expect.equal
                            message
                            $"No browser to render the image {path}: none of chromium, chromium-browser, google-chrome, google-chrome-stable is on PATH and HYBRID_CHROMIUM is not set. Install one (e.g. Debian's 'apt-get install chromium') or set HYBRID_CHROMIUM to a Chromium executable; the HTML page needs no browser (Charts.writeHtml)."
                            "message"
                    | other -> failtest $"expected NoBrowser, got {other}"

                    Expect.isFalse (File.Exists path) "no file")
        }

        test "a browser that cannot start gives Failed with its path, within the time limit" {
            inTemp (fun dir ->
                let fake = Path.Combine(dir, "chromium")
                File.WriteAllText(fake, "#!/bin/sh\necho 'not a browser' >&2\nexit 3\n")

                File.SetUnixFileMode(
                    fake,
                    UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute
                )

                let watch = Diagnostics.Stopwatch.StartNew()
                let path = Path.Combine(dir, "c.png")

                match
                    Browser.render
                        fake
                        (TimeSpan.FromSeconds 20.0)
                        ImageFormat.Png
                        200
                        100
                        path
                        (Charts.ofLineChart chart)
                with
                | ImageResult.Failed message ->
                    Expect.stringStarts message $"{fake} " "names the browser"
                    Expect.stringContains message path "names the image"
                | other -> failtest $"expected Failed, got {other}"

                Expect.isLessThan watch.Elapsed.TotalSeconds 20.0 "gave up within the limit"
                Expect.isFalse (File.Exists path) "no file")
        }

        test "a real Chromium renders PNG and SVG images" {
            match Browser.findHere () with
            | None -> skiptest "no chromium, chromium-browser, google-chrome or HYBRID_CHROMIUM here (CI installs none)"
            | Some _ ->
                inTemp (fun dir ->
                    let plot = Charts.ofLineChart chart

                    match Charts.tryWriteImage (Path.Combine(dir, "c")) ImageFormat.Png plot with
                    | ImageResult.Written path ->
                        Expect.equal path (Path.Combine(dir, "c.png")) "the extension is added"
                        let png = File.ReadAllBytes path

                        Expect.sequenceEqual
                            png[0..7]
                            [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]
                            "the PNG signature"
                    | other -> failtest $"expected a PNG, got {other}"

                    match Charts.tryWriteImage (Path.Combine(dir, "c.svg")) ImageFormat.Svg plot with
                    | ImageResult.Written path ->
                        Expect.stringContains (File.ReadAllText path) "fitted model" "the SVG's legend"
                    | other -> failtest $"expected an SVG, got {other}")
        }
    ]
