/// The C# entry points (`HybridCharts`): files by extension, the same traces as the F# charts, and argument errors
/// that say what to give.
module Hybrid.Charts.Tests.HybridChartsTests

open System
open System.Collections.Generic
open System.IO
open Expecto
open Hybrid.Charts

let private dict (pairs: (string * float[]) list) : IReadOnlyDictionary<string, float[]> =
    Dictionary<string, float[]>(dict pairs) :> IReadOnlyDictionary<string, float[]>

let private inTemp (f: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), $"hybrid-charts-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore

    try
        f dir
    finally
        Directory.Delete(dir, true)

let tests =
    testList "HybridCharts" [
        test "WriteSimulationAsync writes an HTML page with one line per field" {
            inTemp (fun dir ->
                let path = Path.Combine(dir, "sim.html")

                let written =
                    HybridCharts
                        .WriteSimulationAsync(path, [| 0.0; 1.0 |], dict [ "H", [| 1.0; 2.0 |]; "L", [| 3.0; 4.0 |] ])
                        .Result

                Expect.equal written path "the path written"
                let html = File.ReadAllText path
                Expect.stringContains html "\"name\":\"H\"" "H"
                Expect.stringContains html "\"name\":\"L\"" "L"
                Expect.stringContains html "[3.0,4.0]" "L's values")
        }

        test "WriteLossesAsync and WriteReliabilityAsync write their charts" {
            inTemp (fun dir ->
                let losses = Path.Combine(dir, "losses.html")
                HybridCharts.WriteLossesAsync(losses, [| 1.0; 0.5 |], [| nan; 0.7 |], 2).Wait()
                Expect.stringContains (File.ReadAllText losses) "\"name\":\"validation\"" "validation losses"
                let reliability = Path.Combine(dir, "reliability.html")

                HybridCharts
                    .WriteReliabilityAsync(reliability, [| 0.5; 0.9 |], dict [ "dropout", [| 0.3; 0.8 |] ])
                    .Wait()

                Expect.stringContains
                    (File.ReadAllText reliability)
                    "\"name\":\"dropout (ECE 0.150)\""
                    "ECE in the name")
        }

        test "a series of the wrong length and an unknown extension are errors that say what to give" {
            let e =
                Figure.messageOf<ArgumentException> (fun () ->
                    HybridCharts.WriteLinesAsync(
                        "c.html",
                        "t",
                        "x",
                        "y",
                        [| 0.0; 1.0 |],
                        dict [ "m", [| 1.0 |] ],
                        [||],
                        [||]
                    )
                    |> ignore)

            Expect.stringStarts
                e
                "HybridCharts.WriteLinesAsync: series 'm' has 1 values but x has 2. Give one value per x (NaN for a gap)."
                "length message"

            let e =
                Figure.messageOf<ArgumentException> (fun () ->
                    HybridCharts.WriteSimulationAsync("c.pdf", [| 0.0 |], dict [ "m", [| 1.0 |] ])
                    |> ignore)

            Expect.stringStarts
                e
                "HybridCharts: cannot write 'c.pdf': the extension '.pdf' is none of .html, .png, .svg, .jpg. Name the file for the format you want, e.g. chart.html."
                "extension message"
        }
    ]
