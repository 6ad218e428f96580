module Hybrid.Interactive.Tests.TrainResultDisplayTests

open System
open Expecto
open Hybrid.Training
open Hybrid.Interactive

let private result: TrainResult = {
    TrainLosses = [| 1.0; 0.1; 0.01 |]
    ValidationLosses = [| nan; nan; nan |]
    Epochs = 3
    BestEpoch = 0
    StoppedEarly = false
    Cancelled = false
    WallTime = TimeSpan.FromSeconds 1.25
    Theta = [| "r", 0.7; "K", 2.0 |]
    Recoveries = 0
}

let tests =
    testList "TrainResultDisplay" [
        test "the table: epochs, final loss, how it ended, wall time, θ" {
            Expect.equal
                (TrainResultDisplay.text result)
                "epochs: 3\nfinal training loss: 0.01\nended: all epochs run\nwall time: 1.2 s\nθ r: 0.7\nθ K: 2"
                "text"
        }

        test "a validated run adds its final validation loss and best epoch" {
            let validated = {
                result with
                    ValidationLosses = [| 2.0; 0.5; 0.75 |]
                    BestEpoch = 2
                    StoppedEarly = true
            }

            Expect.equal
                (TrainResultDisplay.rows validated |> List.take 5)
                [
                    "epochs", "3"
                    "final training loss", "0.01"
                    "final validation loss", "0.75"
                    "best epoch", "2"
                    "ended", "stopped early"
                ]
                "rows"
        }

        test "the HTML: the table, then the loss chart" {
            let html = TrainResultDisplay.html result

            Expect.stringStarts
                html
                ("<div class=\"hybrid-train-result\">\n<table class=\"hybrid-train-result-table\">\n<tbody>\n"
                 + "<tr><th>epochs</th><td>3</td></tr>\n<tr><th>final training loss</th><td>0.01</td></tr>\n"
                 + "<tr><th>ended</th><td>all epochs run</td></tr>\n<tr><th>wall time</th><td>1.2 s</td></tr>\n"
                 + "<tr><th>θ r</th><td>0.7</td></tr>\n<tr><th>θ K</th><td>2</td></tr>\n</tbody>\n</table>\n<svg ")
                "table then chart"

            Expect.stringEnds html "</svg>\n</div>" "end"
        }

        test "the loss chart: a logarithmic axis at powers of ten, the training line through its points" {
            let svg = LossChart.svg result
            Expect.stringContains svg "<path d=\"M60,24 L215,122 L370,220\" fill=\"none\" stroke=\"#1f77b4\"" "line"

            for label in [ ">1e-2<"; ">1e-1<"; ">1<" ] do
                Expect.stringContains svg label $"tick {label}"

            Expect.isFalse (svg.Contains "validation") "no validation line without validation"
        }

        test "round ticks, no -0" {
            Expect.equal (LossChart.ticks 0.0 1.0) [| 0.0; 0.5; 1.0 |] "0..1"
            Expect.equal (LossChart.ticks -0.3 0.42) [| -0.2; 0.0; 0.2; 0.4 |] "-0.3..0.42"
            Expect.equal (LossChart.ticks -0.3 0.42 |> Array.map Html.number) [| "-0.2"; "0"; "0.2"; "0.4" |] "labels"
        }
    ]
