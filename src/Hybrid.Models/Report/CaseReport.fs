/// Writes the case-study report into a folder: `summary.md` (tables), a CSV file of every number, and
/// SVG charts of observed against predicted values (self-contained SVG, no plotting package).
module Hybrid.Models.Report.CaseReport

open System
open System.Globalization
open System.IO
open System.Text
open Hybrid.Models.Cases

let private inv (x: float) =
    x.ToString("G6", CultureInfo.InvariantCulture)

let private palette = [|
    "#1f77b4"
    "#d62728"
    "#2ca02c"
    "#9467bd"
    "#ff7f0e"
    "#8c564b"
    "#17becf"
|]

/// A line chart as a self-contained SVG: `observed` (x, y) as black dots joined by a thin line, each of
/// `series` (name, points) as a coloured line, a dashed vertical line at `split` (start of the test years).
let lineChart
    (title: string)
    (xLabel: string)
    (yLabel: string)
    (observed: (float * float)[])
    (series: (string * (float * float)[])[])
    (split: float)
    : string =
    let width, height = 760.0, 360.0
    let left, right, top, bottom = 60.0, 240.0, 30.0, 40.0
    let all = Array.append observed (series |> Array.collect snd)
    let xs = all |> Array.map fst
    let ys = all |> Array.map snd
    let x0, x1 = Array.min xs, Array.max xs
    let y0 = min 0.0 (Array.min ys)
    let y1 = Array.max ys * 1.05

    let px x =
        left + (x - x0) / (x1 - x0) * (width - left - right)

    let py y =
        height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    let path (points: (float * float)[]) =
        points
        |> Array.mapi (fun i (x, y) -> $"""{(if i = 0 then "M" else "L")}{inv (px x)},{inv (py y)}""")
        |> String.concat " "

    let sb = StringBuilder()
    let add (s: string) = sb.AppendLine s |> ignore

    add
        $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"""

    add $"""<rect width="{width}" height="{height}" fill="white"/>"""
    add $"""<text x="{left}" y="18" font-size="13">{Security.SecurityElement.Escape title}</text>"""
    // Axes and ticks.
    add
        $"""<line x1="{left}" y1="{inv (py y0)}" x2="{inv (px x1)}" y2="{inv (py y0)}" stroke="black"/><line x1="{left}" y1="{inv (py y0)}" x2="{left}" y2="{inv (py y1)}" stroke="black"/>"""

    for i in 0..4 do
        let y = y0 + float i * (y1 - y0) / 4.0

        add
            $"""<text x="{left - 6.0}" y="{inv (py y + 4.0)}" text-anchor="end">{y.ToString("0", CultureInfo.InvariantCulture)}</text>"""

    for i in 0..4 do
        let x = x0 + float i * (x1 - x0) / 4.0

        add
            $"""<text x="{inv (px x)}" y="{height - bottom + 16.0}" text-anchor="middle">{x.ToString("0", CultureInfo.InvariantCulture)}</text>"""

    add
        $"""<text x="14" y="{inv ((top + height - bottom) / 2.0)}" transform="rotate(-90 14 {inv ((top + height - bottom) / 2.0)})" text-anchor="middle">{Security.SecurityElement.Escape yLabel}</text>"""

    add
        $"""<text x="{inv ((left + width - right) / 2.0)}" y="{inv (height - 4.0)}" text-anchor="middle">{Security.SecurityElement.Escape xLabel}</text>"""

    add
        $"""<line x1="{inv (px split)}" y1="{inv (py y0)}" x2="{inv (px split)}" y2="{inv (py y1)}" stroke="gray" stroke-dasharray="4 3"/>"""

    add $"""<path d="{path observed}" fill="none" stroke="black" stroke-width="0.8"/>"""

    for x, y in observed do
        add $"""<circle cx="{inv (px x)}" cy="{inv (py y)}" r="2.5" fill="black"/>"""

    series
    |> Array.iteri (fun i (name, points) ->
        let colour = palette[i % palette.Length]
        add $"""<path d="{path points}" fill="none" stroke="{colour}" stroke-width="1.6"/>"""
        let ly = top + 14.0 * float (i + 1)

        add
            $"""<line x1="{width - right + 10.0}" y1="{ly}" x2="{width - right + 28.0}" y2="{ly}" stroke="{colour}" stroke-width="2"/>"""

        add $"""<text x="{width - right + 32.0}" y="{ly + 4.0}">{Security.SecurityElement.Escape name}</text>""")

    add
        $"""<circle cx="{width - right + 19.0}" cy="{top}" r="2.5" fill="black"/><text x="{width - right + 32.0}" y="{top + 4.0}">observed</text>"""

    add "</svg>"
    sb.ToString()

/// One model's row of a case's tables (both cases' results project to it).
type private ModelRow = {
    Name: string
    Description: string
    TestMse: float
    TrainMse: float
    TrainSeconds: float
    Parameters: (string * float)[]
}

/// Writes `<case>-metrics.csv` (test and train MSE, training time per model) and `<case>-parameters.csv`
/// (every named parameter of every model) into `dir`.
let private writeModelTables (dir: string) (case: string) (models: ModelRow[]) =
    let csv = StringBuilder()
    csv.AppendLine "model,test_mse,train_mse,train_seconds" |> ignore

    for m in models do
        csv.AppendLine $"{m.Name},{inv m.TestMse},{inv m.TrainMse},{inv m.TrainSeconds}"
        |> ignore

    File.WriteAllText(Path.Combine(dir, $"{case}-metrics.csv"), csv.ToString())

    let pars = StringBuilder()
    pars.AppendLine "model,parameter,value" |> ignore

    for m in models do
        for n, v in m.Parameters do
            pars.AppendLine $"{m.Name},{n},{inv v}" |> ignore

    File.WriteAllText(Path.Combine(dir, $"{case}-parameters.csv"), pars.ToString())

/// The markdown table of a case's models, errors with `digits` decimals.
let private modelTable (digits: int) (models: ModelRow[]) : string list = [
    "| model | test MSE | train MSE | training s | parameters | what |"
    "|---|---:|---:|---:|---|---|"
    for m in models do
        let ps =
            m.Parameters |> Array.map (fun (n, v) -> $"{n} {v:G4}") |> String.concat ", "

        let fixedPoint (v: float) = v.ToString($"F{digits}")

        let train =
            if Double.IsNaN m.TrainMse then
                "—"
            else
                fixedPoint m.TrainMse

        $"| {m.Name} | {fixedPoint m.TestMse} | {train} | {m.TrainSeconds:F1} | {ps} | {m.Description} |"
]

/// Writes the predator–prey files into `dir` and returns its section of summary.md.
let writePredatorPrey (dir: string) (o: PredatorPrey.Outcome) : string =
    let rows =
        o.Models
        |> Array.map (fun m -> {
            Name = m.Name
            Description = m.Description
            TestMse = m.TestMse
            TrainMse = m.TrainMse
            TrainSeconds = m.TrainSeconds
            Parameters = m.Parameters
        })

    writeModelTables dir "predator-prey" rows

    let testYears = o.Years |> Array.skip o.TrainYears
    let fc = StringBuilder()
    fc.AppendLine "model,year,hare,lynx" |> ignore

    for i, y in Array.indexed o.Years do
        fc.AppendLine $"observed,{y},{inv (o.Observed[i][0])},{inv (o.Observed[i][1])}"
        |> ignore

    for m in o.Models do
        for i, y in Array.indexed testYears do
            fc.AppendLine $"{m.Name},{y},{inv (m.Forecast[i][0])},{inv (m.Forecast[i][1])}"
            |> ignore

    File.WriteAllText(Path.Combine(dir, "predator-prey-forecasts.csv"), fc.ToString())

    let last = o.TrainYears - 1

    for species, column in [ "hare", 0; "lynx", 1 ] do
        let observed =
            Array.map2 (fun (y: int) (r: float[]) -> float y, r[column]) o.Years o.Observed

        let series =
            o.Models
            |> Array.map (fun m ->
                m.Name,
                Array.append
                    [| float o.Years[last], o.Observed[last][column] |]
                    (Array.map2 (fun (y: int) (r: float[]) -> float y, r[column]) testYears m.Forecast))

        let svg =
            lineChart
                $"{species} pelts: observed and 1916–1920 forecasts from 1915"
                "year"
                "thousands of pelts"
                observed
                series
                (float o.Years[last])

        File.WriteAllText(Path.Combine(dir, $"predator-prey-{species}.svg"), svg)

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    add "## Predator–prey: Hudson's Bay lynx and hare, 1900–1920"
    add ""

    add
        "Train 1900–1915, forecast 1916–1920 from the observed 1915 state. Test MSE: both species, thousands of pelts squared. Train MSE: five-year windows from every training year. A hybrid's training time includes the physics fit it starts from. Data: Hewitt (1921), `data/hudson-bay-lynx-hare.csv`."

    add ""
    modelTable 2 rows |> List.iter add

    add ""
    add "What the numbers say (generated from the table):"
    add ""

    let byName name =
        o.Models |> Array.find (fun m -> m.Name = name)

    let best = o.Models |> Array.minBy (fun m -> m.TestMse)
    add $"- Lowest test MSE: {best.Name} ({best.TestMse:F2})."

    for h in [ "hybrid (LV + MLP)"; "hybrid (neural interaction)" ] do
        let hm = byName h

        for other in [ "LV prior"; "LV fitted"; "MLP autoregressive" ] do
            let om = byName other
            let verdict = if hm.TestMse < om.TestMse then "beats" else "does NOT beat"
            let change = 100.0 * (hm.TestMse - om.TestMse) / om.TestMse

            let pct =
                (if change >= 0.0 then "+" else "")
                + change.ToString("0", CultureInfo.InvariantCulture)
                + "%"

            add $"- {h} {verdict} {other} on 1916–1920 ({hm.TestMse:F2} vs {om.TestMse:F2}, {pct})."

    add
        "- The literature parameters were fitted to all of 1900–1920, so they have seen the test years; they are a reference, not a baseline. Five test years (ten numbers) make every comparison here noisy; no repeated seeds or confidence intervals yet."

    add ""
    add "![hare](predator-prey-hare.svg) ![lynx](predator-prey-lynx.svg)"
    add ""
    md.ToString()

/// Writes the pharmacokinetics files into `dir` and returns its section of summary.md.
let writePharmacokinetics (dir: string) (o: Pharmacokinetics.Outcome) : string =
    let rows =
        o.Models
        |> Array.map (fun m -> {
            Name = m.Name
            Description = m.Description
            TestMse = m.TestMse
            TrainMse = m.TrainMse
            TrainSeconds = m.TrainSeconds
            Parameters = m.Parameters
        })

    writeModelTables dir "pharmacokinetics" rows

    let curves = StringBuilder()
    curves.AppendLine "model,subject,time_h,concentration_mg_per_l" |> ignore

    for t, c in Array.zip o.Shown.Times o.Shown.Concentrations do
        curves.AppendLine $"observed,{o.Shown.Id},{inv t},{inv c}" |> ignore

    for m in o.Models do
        for t, c in Array.zip o.CurveTimes m.Curve do
            curves.AppendLine $"{m.Name},{o.Shown.Id},{inv t},{inv c}" |> ignore

    File.WriteAllText(Path.Combine(dir, "pharmacokinetics-curves.csv"), curves.ToString())

    let svg =
        lineChart
            $"theophylline, held-out subject {o.Shown.Id} (dose {o.Shown.Dose} mg/kg): observed and predicted"
            "time after the dose (h)"
            "concentration (mg/L)"
            (Array.zip o.Shown.Times o.Shown.Concentrations)
            (o.Models |> Array.map (fun m -> m.Name, Array.zip o.CurveTimes m.Curve))
            0.0

    File.WriteAllText(Path.Combine(dir, "pharmacokinetics.svg"), svg)

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    let folds = o.Folds |> List.map string |> String.concat ", "
    add "## Pharmacokinetics: theophylline, one oral dose, 12 subjects"
    add ""

    add
        $"Leave-subjects-out, folds {folds} (fold k holds out subjects 4k−3 … 4k; the others train). Predictions for held-out subjects use only their dose. Test MSE: all held-out samples pooled, (mg/L)². Train MSE: training subjects, averaged over folds. Parameters: last fold. The hybrid's training time includes the physics fit it starts from. Data: Boeckmann, Sheiner and Beal (1994), `data/theophylline-pk.csv`."

    add ""
    modelTable 3 rows |> List.iter add

    add ""
    add "What the numbers say (generated from the table):"
    add ""
    let best = o.Models |> Array.minBy (fun m -> m.TestMse)
    add $"- Lowest test MSE: {best.Name} ({best.TestMse:F3})."
    let hm = o.Models |> Array.find (fun m -> m.Name.StartsWith "hybrid")

    for om in o.Models |> Array.filter (fun m -> not (m.Name.StartsWith "hybrid")) do
        let verdict = if hm.TestMse < om.TestMse then "beats" else "does NOT beat"
        add $"- {hm.Name} {verdict} {om.Name} ({hm.TestMse:F3} vs {om.TestMse:F3})."

    add
        "- Population predictions only (no per-subject parameters), so the between-subject variability sets a floor under every model's test MSE."

    add ""
    add "![theophylline](pharmacokinetics.svg)"
    add ""
    md.ToString()

/// Runs the case studies (`quick`: the quick settings) and writes the report into `dir`; returns summary.md's path.
let write (dir: string) (quick: bool) : string =
    Directory.CreateDirectory dir |> ignore
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
    md.Append(writePredatorPrey dir predatorPrey) |> ignore
    md.Append(writePharmacokinetics dir pk) |> ignore
    let path = Path.Combine(dir, "summary.md")
    File.WriteAllText(path, md.ToString())
    path
