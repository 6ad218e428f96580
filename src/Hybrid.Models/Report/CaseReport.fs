/// Writes the case-study report into a folder: `summary.md` (the sections of every case, in
/// `*Report.fs`), a CSV file of every number, and charts of observed against predicted values as SVG
/// (`LineChart`), with an interactive page each where the caller gives a page writer (`LineChart.withPages`;
/// `hybrid report` gives Hybrid.Charts' Plotly.NET pages).
module Hybrid.Models.Report.CaseReport

open System
open System.Globalization
open System.IO
open System.Text
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Report

/// Runs `section` (one case or experiment of the report) with a progress line on standard error before and after
/// (the full report takes tens of minutes).
let private step (name: string) (section: unit -> string) : string =
    eprintfn $"report: {name} ..."
    let watch = Diagnostics.Stopwatch.StartNew()
    let md = section ()
    eprintfn $"report: {name} done in {watch.Elapsed.TotalSeconds:F0} s"
    md

/// Runs the case studies (`quick`: the quick settings) and writes the report into `dir`; returns summary.md's path.
/// Progress goes to standard error, one line as each case starts and ends.
let write (dir: string) (quick: bool) : string =
    Directory.CreateDirectory dir |> ignore
    let clock = Diagnostics.Stopwatch.StartNew()

    let pick quickSettings fullSettings =
        if quick then quickSettings else fullSettings

    let md = StringBuilder()
    md.AppendLine "# Case-study report" |> ignore
    md.AppendLine "" |> ignore

    let stamp =
        DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)

    let flag = if quick then " --quick" else ""

    md.AppendLine
        $"Generated {stamp} UTC by `hybrid report{flag}`. Every number is also in the CSV files next to this one."
    |> ignore

    md.AppendLine "" |> ignore

    // The flagship first: the twin experiment where the hybrid's advantage is clear.
    let sections = [
        "two-scale Lorenz-96", fun () -> Lorenz96Report.write dir (Lorenz96.run (pick Lorenz96.quick Lorenz96.defaults))
        "predator–prey",
        fun () -> PredatorPreyReport.write dir (PredatorPrey.run (pick PredatorPrey.quick PredatorPrey.defaults))
        "pharmacokinetics",
        fun () ->
            PharmacokineticsReport.write
                dir
                (Pharmacokinetics.run (pick Pharmacokinetics.quick Pharmacokinetics.defaults))
        "energy balance",
        fun () -> EnergyBalanceReport.write dir (EnergyBalance.run (pick EnergyBalance.quick EnergyBalance.defaults))
        "tumour growth", fun () -> TumourReport.write dir (Tumour.run (pick Tumour.quick Tumour.defaults))
        "data efficiency", fun () -> DataEfficiencyReport.write dir quick
    ]

    for i, (name, section) in List.indexed sections do
        md.Append(step $"{i + 1}/{sections.Length} {name}" section) |> ignore

    md.AppendLine
        $"Made in {clock.Elapsed.TotalSeconds:F0} s on {Environment.ProcessorCount} cores, {Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}, {Hybrid.Engine.describe ()}."
    |> ignore

    let path = Path.Combine(dir, "summary.md")
    File.WriteAllText(path, md.ToString())
    path
