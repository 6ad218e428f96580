/// Writes the case-study report into a folder: `summary.md` (the sections of every case, in
/// `*Report.fs`), a CSV file of every number, and charts of observed against predicted values as SVG
/// (`LineChart`), with an interactive page each where the caller gives a page writer (`LineChart.withPages`;
/// `hybrid report` gives Hybrid.Charts' Plotly.NET pages). Every section is an `Experiment` of tasks
/// (`ReportTasks.report`): `write` runs them in this process, a sweep runs them anywhere and `SweepMerge` assembles
/// the same sections from their results.
module Hybrid.Models.Report.CaseReport

open System
open System.Globalization
open System.IO
open System.Text
open Hybrid.Models.Tasks

/// Runs `section` (one case or experiment of the report) with a progress line on standard error before and after
/// (the full report takes tens of minutes).
let private step (name: string) (section: unit -> string) : string =
    eprintfn $"report: {name} ..."
    let watch = Diagnostics.Stopwatch.StartNew()
    let md = section ()
    eprintfn $"report: {name} done in {watch.Elapsed.TotalSeconds:F0} s"
    md

/// Writes `dir`/summary.md: the title, a line saying `command` generated it, the claims table from the sections'
/// `*-claims.csv` files in `dir` (`Claims`), the sections' markdown in order and the closing line `footer`; returns
/// its path.
let compose (dir: string) (command: string) (sections: string list) (footer: string) : string =
    let md = StringBuilder()
    md.AppendLine "# Case-study report" |> ignore
    md.AppendLine "" |> ignore

    let stamp =
        DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)

    md.AppendLine $"Generated {stamp} UTC by `{command}`. Every number is also in the CSV files next to this one."
    |> ignore

    md.AppendLine "" |> ignore

    for line in Hybrid.Models.Common.Claims.markdown (Hybrid.Models.Common.Claims.readAll dir) do
        md.AppendLine line |> ignore

    for section in sections do
        md.Append section |> ignore

    md.AppendLine footer |> ignore
    let path = Path.Combine(dir, "summary.md")
    File.WriteAllText(path, md.ToString())
    path

/// Where the report was made: cores, operating system, .NET and the engine.
let machine () =
    $"{Environment.ProcessorCount} cores, {Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}, {Hybrid.Engine.describe ()}"

/// Runs `sections` under the settings key `key` ("quick", "full", "tiny") in this process, every task of every
/// section one after another, and writes their report into `dir` (`compose`, naming `command` as what generated it);
/// returns summary.md's path. Progress goes to standard error, one line as each section starts and ends.
let writeSections (dir: string) (key: string) (sections: Experiment list) (command: string) : string =
    Directory.CreateDirectory dir |> ignore
    Hybrid.Models.Common.Claims.clear dir
    let clock = Diagnostics.Stopwatch.StartNew()

    let markdown =
        sections
        |> List.mapi (fun i e -> step $"{i + 1}/{sections.Length} {e.Title}" (fun () -> Experiment.inProcess e dir key))

    compose dir command markdown $"Made in {clock.Elapsed.TotalSeconds:F0} s on {machine ()}."

/// Runs the case studies (`quick`: the quick settings) in this process, every task of every section one after
/// another, and writes the report into `dir`; returns summary.md's path. Progress goes to standard error, one
/// line as each section starts and ends.
let write (dir: string) (quick: bool) : string =
    let flag = if quick then " --quick" else ""
    writeSections dir (Experiment.settingsKey quick) ReportTasks.report $"hybrid report{flag}"
