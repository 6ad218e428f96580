/// The Plotly.NET charts of `Charts`: each figure's traces (names, x and y values), titles and axis titles for a
/// known input, read back from the figure's JSON.
module Hybrid.Charts.Tests.ChartsTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Training
open Hybrid.Models.Common
open Hybrid.Charts

let private lineChart = Figure.sample "hares"

/// A trajectory of batch size 2 (the charts show element 0) at times 0, 0.5, 1.
let private trajectory (fields: (string * float[,]) list) : Trajectory =
    let tensor (values: float[,]) =
        // [S; spatial] for element 0; element 1 is 100 times larger, so a chart of the wrong element shows.
        let s, n = Array2D.length1 values, Array2D.length2 values
        let flat = Array.init (s * n) (fun k -> values[k / n, k % n])
        let other = flat |> Array.map (fun v -> 100.0 * v)
        torch.tensor(Array.append flat other, dtype = torch.float32).reshape(2L, int64 s, int64 n).permute (1L, 0L, 2L)

    {
        Fields = fields |> List.map fst |> Array.ofList
        Times = [| 0.0; 0.5; 1.0 |]
        Values = fields |> List.map (snd >> tensor) |> Array.ofList
        Backend = Backend.Eager
    }

let private scalar (values: float[]) =
    Array2D.init values.Length 1 (fun i _ -> values[i])

let tests =
    testList "Charts" [
        test "ofLineChart: one line per series, the observations as dots, titles and the split line" {
            use doc = Figure.parse (Charts.ofLineChart lineChart)
            let traces = Figure.traces doc
            Expect.equal (traces |> List.map Figure.name) [ "model A"; "model B"; "observed" ] "trace names"
            Expect.equal (Figure.numbers "x" traces[0]) [ 1900.0; 1901.0; 1902.0 ] "model A's x"
            let y = Figure.numbers "y" traces[0]
            Expect.equal y[0] 31.0 "model A's first y"
            Expect.isTrue (Double.IsNaN y[1]) "NaN stays a gap (not a number in the figure)"
            Expect.equal (Figure.numbers "y" traces[2]) [ 30.0; 47.2; 70.2 ] "observed y"
            Expect.equal (traces[2].GetProperty("mode").GetString()) "markers" "observations are dots"

            Expect.equal
                (traces[0].GetProperty("line").GetProperty("color").GetString())
                "rgba(31, 119, 180, 1.0)"
                "the SVG's first colour, #1f77b4"

            Expect.equal (Figure.title "" doc) "hares" "title"
            Expect.equal (Figure.title "xaxis" doc) "year" "x title"
            Expect.equal (Figure.title "yaxis" doc) "pelts" "y title"
            let shape = doc.RootElement.GetProperty("layout").GetProperty("shapes")[0]
            Expect.equal (shape.GetProperty("x0").GetDouble()) 1901.0 "dashed line at the split"
        }

        test "ofLineChart: a chart with nothing to draw is an error that says so" {
            let e =
                Figure.messageOf<HybridException> (fun () ->
                    Charts.ofLineChart {
                        lineChart with
                            Series = [||]
                            Observed = [||]
                    }
                    |> ignore)

            Expect.equal
                e
                "Charts.ofLineChart: the chart 'hares' has no series and no observations. Give at least one series or observed point."
                "message"
        }

        test "simulation: scalar fields as lines over time from batch element 0" {
            let t =
                trajectory [ "H", scalar [| 1.0; 2.0; 4.0 |]; "L", scalar [| 3.0; 2.5; 2.0 |] ]

            use doc = Figure.parse (Charts.simulation t)
            let traces = Figure.traces doc
            Expect.equal (traces |> List.map Figure.name) [ "H"; "L" ] "one line per field"
            Expect.equal (Figure.numbers "x" traces[0]) [ 0.0; 0.5; 1.0 ] "the save times"
            Expect.equal (Figure.numbers "y" traces[0]) [ 1.0; 2.0; 4.0 ] "H, element 0"
            Expect.equal (Figure.numbers "y" traces[1]) [ 3.0; 2.5; 2.0 ] "L, element 0"
            Expect.equal (Figure.title "xaxis" doc) "time" "x title"
            Expect.equal (Figure.title "" doc) "simulation" "title"
        }

        test "simulation: a 1-D field as a heatmap over cells and time, beside the scalar fields" {
            let u = Array2D.init 3 4 (fun s i -> float (10 * s + i))
            let t = trajectory [ "m", scalar [| 1.0; 2.0; 3.0 |]; "u", u ]
            use doc = Figure.parse (Charts.simulation t)
            let traces = Figure.traces doc
            Expect.equal (traces |> List.map Figure.name) [ "m"; "u" ] "a line and a heatmap"
            Expect.equal (traces[1].GetProperty("type").GetString()) "heatmap" "u is a heatmap"

            let z = [
                for row in traces[1].GetProperty("z").EnumerateArray() ->
                    [ for v in row.EnumerateArray() -> v.GetDouble() ]
            ]

            Expect.equal
                z
                [
                    [ 0.0; 1.0; 2.0; 3.0 ]
                    [ 10.0; 11.0; 12.0; 13.0 ]
                    [ 20.0; 21.0; 22.0; 23.0 ]
                ]
                "one row per time"

            Expect.equal (Figure.numbers "y" traces[1]) [ 0.0; 0.5; 1.0 ] "rows at the save times"
            Expect.equal (Figure.numbers "x" traces[1]) [ 0.0; 1.0; 2.0; 3.0 ] "columns are cells"
        }

        test "simulation: a 2-D field as a heatmap of its last state, x across and y up" {
            // [S = 3; B = 2; nx = 2; ny = 3]: at the last time the value at (i, j) is 200 + 3 i + j.
            let t = trajectory [ "v", Array2D.init 3 6 (fun s k -> float (100 * s + k)) ]

            let t = {
                t with
                    Values = [| t.Values[0].reshape (3L, 2L, 2L, 3L) |]
            }

            use doc = Figure.parse (Charts.simulation t)
            let trace = Figure.traces doc |> List.exactlyOne
            Expect.equal (trace.GetProperty("type").GetString()) "heatmap" "a heatmap"

            let z = [
                for row in trace.GetProperty("z").EnumerateArray() -> [ for v in row.EnumerateArray() -> v.GetDouble() ]
            ]

            Expect.equal z [ [ 200.0; 203.0 ]; [ 201.0; 204.0 ]; [ 202.0; 205.0 ] ] "rows are y, columns x, at t = 1"
            Expect.equal (Figure.title "xaxis" doc) "v at t = 1: x cell" "x title names the time"
        }

        test "fit: observed dots and predicted lines per shared field, one pair per sensor" {
            let observed = trajectory [ "y", Array2D.init 3 2 (fun s k -> float (s + 10 * k)) ]

            let predicted = {
                trajectory [
                    "y", Array2D.init 3 2 (fun s k -> float (s + 10 * k) + 0.5)
                    "z", scalar [| 0.0; 0.0; 0.0 |]
                ] with
                    Times = [| 0.0; 0.25; 1.0 |]
            }

            use doc = Figure.parse (Charts.fit observed predicted)
            let traces = Figure.traces doc

            Expect.equal
                (traces |> List.map Figure.name)
                [ "y[0] observed"; "y[0] predicted"; "y[1] observed"; "y[1] predicted" ]
                "pairs per sensor; z has no observations"

            Expect.equal (Figure.numbers "y" traces[2]) [ 10.0; 11.0; 12.0 ] "sensor 1 observed"
            Expect.equal (Figure.numbers "y" traces[3]) [ 10.5; 11.5; 12.5 ] "sensor 1 predicted"
            Expect.equal (Figure.numbers "x" traces[3]) [ 0.0; 0.25; 1.0 ] "predicted at its own times"
            Expect.equal (Figure.title "" doc) "observed and predicted" "title"
        }

        test "fit: no shared field is an error naming both lists" {
            let e =
                Figure.messageOf<HybridException> (fun () ->
                    Charts.fit
                        (trajectory [ "a", scalar [| 1.0; 2.0; 3.0 |] ])
                        (trajectory [ "b", scalar [| 1.0; 2.0; 3.0 |] ])
                    |> ignore)

            Expect.equal
                e
                "Charts.fit: the observed fields [a] and the predicted fields [b] have no name in common. Name the observations after the model's fields."
                "message"
        }

        test "losses: training per epoch, validation where validated, log axis, best epoch marked" {
            let result: TrainResult = {
                TrainLosses = [| 1.0; 0.5; 0.25; 0.2 |]
                ValidationLosses = [| nan; 0.6; nan; 0.3 |]
                Epochs = 4
                BestEpoch = 4
                StoppedEarly = false
                Cancelled = false
                WallTime = TimeSpan.Zero
                Theta = [||]
                Recoveries = 0
            }

            use doc = Figure.parse (Charts.losses result)
            let traces = Figure.traces doc
            Expect.equal (traces |> List.map Figure.name) [ "training"; "validation" ] "names"
            Expect.equal (Figure.numbers "x" traces[0]) [ 1.0; 2.0; 3.0; 4.0 ] "epochs from 1"
            Expect.equal (Figure.numbers "x" traces[1]) [ 2.0; 4.0 ] "validated epochs only"
            Expect.equal (Figure.numbers "y" traces[1]) [ 0.6; 0.3 ] "validation losses"
            let layout = doc.RootElement.GetProperty "layout"
            Expect.equal (layout.GetProperty("yaxis").GetProperty("type").GetString()) "log" "log axis"
            let shape = layout.GetProperty("shapes")[0]
            Expect.equal (shape.GetProperty("x0").GetDouble()) 4.0 "best epoch"
            Expect.equal (Figure.title "xaxis" doc) "epoch" "x title"
        }

        test "reliability: the diagonal and each calibration's coverage against the level, ECE in the name" {
            let c: Calibration = {
                Levels = [| 0.5; 0.9 |]
                Coverage = [| 0.4; 0.85 |]
                Ece = 0.075
            }

            use doc = Figure.parse (Charts.reliability [ "ensemble", c ])
            let traces = Figure.traces doc
            Expect.equal (traces |> List.map Figure.name) [ "ideal"; "ensemble (ECE 0.075)" ] "names"
            Expect.equal (Figure.numbers "x" traces[0]) [ 0.0; 1.0 ] "diagonal x"
            Expect.equal (Figure.numbers "y" traces[0]) [ 0.0; 1.0 ] "diagonal y"
            Expect.equal (Figure.numbers "x" traces[1]) [ 0.5; 0.9 ] "levels"
            Expect.equal (Figure.numbers "y" traces[1]) [ 0.4; 0.85 ] "coverage"
            Expect.equal (Figure.title "xaxis" doc) "nominal level" "x title"
            Expect.equal (Figure.title "yaxis" doc) "observed coverage" "y title"
        }
    ]
