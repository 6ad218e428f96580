namespace Hybrid.Interactive

open System
open Hybrid.Training

/// A training run's outcome as a table (epochs, final losses, how it ended, wall time, θ) and its loss chart.
[<RequireQualifiedAccess>]
module TrainResultDisplay =

    let private last (losses: float[]) =
        if losses.Length = 0 then nan else Array.last losses

    let private ending (r: TrainResult) =
        if r.Cancelled then "cancelled"
        elif r.StoppedEarly then "stopped early"
        else "all epochs run"

    /// The table's rows (label, value): epochs, final training loss, final validation loss and best epoch
    /// (where validated), how the run ended, wall time in seconds, then one row per θ value.
    let rows (r: TrainResult) : (string * string) list = [
        "epochs", string r.Epochs
        "final training loss", Html.number (last r.TrainLosses)
        if r.ValidationLosses |> Array.exists Double.IsFinite then
            "final validation loss", Html.number (last r.ValidationLosses)
            "best epoch", string r.BestEpoch
        "ended", ending r
        "wall time", $"{r.WallTime.TotalSeconds:F1} s"
        for name, value in r.Theta do
            $"θ {name}", Html.number value
    ]

    /// The table, one `label: value` line each.
    let text (r: TrainResult) : string =
        rows r |> List.map (fun (k, v) -> $"{k}: {v}") |> String.concat "\n"

    /// The table as HTML followed by the loss chart (`LossChart.svg`).
    let html (r: TrainResult) : string =
        let body =
            rows r
            |> List.map (fun (k, v) -> $"<tr><th>{Html.escape k}</th><td>{Html.escape v}</td></tr>")
            |> String.concat "\n"

        String.concat "\n" [
            "<div class=\"hybrid-train-result\">"
            $"<table class=\"hybrid-train-result-table\">\n<tbody>\n{body}\n</tbody>\n</table>"
            LossChart.svg r
            "</div>"
        ]
