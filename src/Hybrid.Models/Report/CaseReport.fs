/// Writes the case-study report into a folder: `summary.md` (the sections of every case, in
/// `*Report.fs`), a CSV file of every number, and charts of observed against predicted values as SVG
/// and as interactive Plotly HTML pages (`LineChart`).
module Hybrid.Models.Report.CaseReport

open System
open System.Globalization
open System.IO
open System.Text
open Hybrid.Models.Cases
open Hybrid.Models.Report

/// Runs the case studies (`quick`: the quick settings) and writes the report into `dir`; returns summary.md's path.
let write (dir: string) (quick: bool) : string =
    Directory.CreateDirectory dir |> ignore
    let clock = Diagnostics.Stopwatch.StartNew()
    let lorenz = Lorenz96.run (if quick then Lorenz96.quick else Lorenz96.defaults)
    let settings = if quick then PredatorPrey.quick else PredatorPrey.defaults
    let predatorPrey = PredatorPrey.run settings

    let pk =
        Pharmacokinetics.run (
            if quick then
                Pharmacokinetics.quick
            else
                Pharmacokinetics.defaults
        )

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
    md.Append(Lorenz96Report.write dir lorenz) |> ignore
    md.Append(PredatorPreyReport.write dir predatorPrey) |> ignore
    md.Append(PharmacokineticsReport.write dir pk) |> ignore

    let energy =
        EnergyBalance.run (
            if quick then
                EnergyBalance.quick
            else
                EnergyBalance.defaults
        )

    md.Append(EnergyBalanceReport.write dir energy) |> ignore
    let tumour = Tumour.run (if quick then Tumour.quick else Tumour.defaults)
    md.Append(TumourReport.write dir tumour) |> ignore
    md.Append(DataEfficiencyReport.write dir quick) |> ignore

    md.AppendLine
        $"Made in {clock.Elapsed.TotalSeconds:F0} s on {Environment.ProcessorCount} cores, {Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}, {Hybrid.Engine.describe ()}."
    |> ignore

    let path = Path.Combine(dir, "summary.md")
    File.WriteAllText(path, md.ToString())
    path
