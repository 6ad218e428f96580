(**
# Fitting a model to a CSV file, start to finish

`./build.sh test` runs this page. It reads a time series from a CSV file, writes the model as text, fits its
parameters θ with L-BFGS, prints θ with standard errors from the fit's covariance and plots the data against
the fitted model. The whole page runs in a few seconds.

The data here are hares and lynx counted once a year, made from a Lotka–Volterra system with known
parameters plus 5% noise, so that the page can check the answer. With a file of your own, skip the first step
and point `Data.readCsv` at it (the repository's `data/hudson-bay-lynx-hare.csv` has the same layout).
*)

#I "../src/Hybrid.Cli/bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Hybrid.Dsl.dll"
#r "Hybrid.Core.dll"
#r "Hybrid.Models.dll"

open System
open System.IO
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Models.Report
open Hybrid.Models.Common

let check (what: string) (ok: bool) =
    if not ok then
        failwithf "docs/fit-csv.fsx: %s" what

Engine.init ()
Engine.seed 7

let folder = Path.Combine(Path.GetTempPath(), "hybrid-fit-csv")
Directory.CreateDirectory folder |> ignore
let csvPath = Path.Combine(folder, "hares-lynx.csv")

(**
## 1. The CSV file

One row per time, a header naming the columns: `year,H,L`. Missing cells may be empty or `NA` (they become
NaN and drop out of the loss); comment lines start with `# `. This step writes the file from the truth
α = 0.55, β = 0.028, γ = 0.84, δ = 0.026, started at H = 30, L = 4.
*)

let truth = [ "alpha", 0.55; "beta", 0.028; "gamma", 0.84; "delta", 0.026 ]
let years = Array.init 21 float

do
    let m =
        Parse.model
            "model truth\nfield H\nfield L\nparam alpha = 0.55 positive\nparam beta = 0.028 positive\nparam gamma = 0.84 positive\nparam delta = 0.026 positive\ndH/dt = alpha H - beta H L\ndL/dt = delta H L - gamma L\ninitial H = 30\ninitial L = 4"

    let sim = Compiler.compile Compiler.defaults m
    use _ = torch.no_grad ()

    let run =
        sim.Simulate(
            sim.Initial 1,
            {
                Rollout.defaults with
                    Dt = 0.05
                    SaveTimes = years
            }
        )

    let series (i: int) =
        run.Values[i].reshape(-1L).data<float>().ToArray()

    let h, l = series 0, series 1
    let rng = Random 11

    let noisy (v: float) =
        v * (1.0 + 0.05 * (2.0 * rng.NextDouble() - 1.0) * sqrt 3.0)

    let lines = [
        "# hares H and lynx L (thousands), one count a year"
        "year,H,L"
        for k in 0 .. years.Length - 1 do
            let cell (v: float) =
                v.ToString("R", Globalization.CultureInfo.InvariantCulture)

            sprintf "%g,%s,%s" years[k] (cell (noisy h[k])) (cell (noisy l[k]))
    ]

    File.WriteAllLines(csvPath, lines)

(**
## 2. Reading it

`Data.readCsv` reads the table (RFC 4180; errors name the line and the fix); `Data.timeSeries` takes the time
column and the named value columns as a tensor [T; columns], checking that times increase.
*)

let table = Data.readCsv csvPath
let times, observed = Data.timeSeries table "year" [| "H"; "L" |] torch.float64

printfn
    "%d rows, columns %s; observed is [%s]"
    table.Rows.Length
    (String.Join(", ", table.Columns))
    (String.Join("; ", observed.shape))

check "21 rows" (times.Length = 21)

(**
## 3. The model, as text

The parameters start at guesses 30% off the truth; the initial state is the first row of the file.
*)

let first (column: int) = observed[0L, int64 column].ToDouble()

let modelText =
    sprintf
        """
model lotka_volterra
field H
field L
param alpha = 0.7 positive
param beta = 0.02 positive
param gamma = 0.6 positive
param delta = 0.034 positive
dH/dt = alpha H - beta H L
dL/dt = delta H L - gamma L
initial H = %s
initial L = %s
"""
        ((first 0).ToString("R", Globalization.CultureInfo.InvariantCulture))
        ((first 1).ToString("R", Globalization.CultureInfo.InvariantCulture))

let simulator = Compiler.compile Compiler.defaults (Parse.model modelText)

let options = {
    Rollout.defaults with
        Dt = 0.05
        SaveTimes = times
}

(** The prediction at the data's times, [T; 2] like `observed`, and its residuals (prediction − data). *)
let predict () =
    let run = simulator.Simulate(simulator.Initial 1, options)
    torch.stack ([| run.Values[0].reshape (-1L); run.Values[1].reshape (-1L) |], dim = 1L)

let residuals () = predict () .- observed

(**
## 4. The fit

`Lbfgs.minimize` takes the trainable tensors and a loss (rebuilt at each call). Its line search treats a trial
step at which the simulation fails as a failed step and backs off, so a poor start does not end the fit.
*)

let fit =
    Lbfgs.minimize Lbfgs.defaults (simulator.Trainable()) (fun () -> (square (residuals ())).mean ())

printfn
    "L-BFGS: loss %.4g → %.4g in %d iterations (%d evaluations), %.1f s"
    fit.InitialLoss
    fit.Loss
    fit.Iterations
    fit.Evaluations
    fit.WallTime.TotalSeconds

(**
## 5. θ with standard errors

`Covariance.gaussNewton` evaluates σ² (JᵀJ)⁻¹ at the optimum, J the Jacobian of the residuals with respect
to θ. The truth lies within about two standard errors of each estimate.
*)

let cov = Covariance.gaussNewton residuals simulator.Parameters

for name, value in truth do
    let k = Array.IndexOf(cov.Names, name)
    let estimate, se = cov.Estimates[k], cov.StandardErrors[k]
    printfn "%-6s = %.5f ± %.5f   (truth %g, %.1f SE away)" name estimate se value (abs (estimate - value) / se)
    check (sprintf "%s within 3 SE of the truth" name) (abs (estimate - value) < 3.0 * se)
    check (sprintf "%s has a positive SE below 10%% of it" name) (se > 0.0 && se < 0.1 * estimate)

(**
## 6. The plot

`LineChart.saveWith` writes an SVG (Hybrid.Charts turns the same chart into an interactive Plotly.NET page):
the data as dots, the fitted model as lines
(on a finer time grid than the data).
*)

let fine = Array.init 201 (fun i -> 0.1 * float i)

let curves =
    use _ = torch.no_grad ()

    let run = simulator.Simulate(simulator.Initial 1, { options with SaveTimes = fine })

    [| 0; 1 |]
    |> Array.map (fun i -> run.Values[i].reshape(-1L).data<float>().ToArray())

let column (i: int) =
    observed[torch.TensorIndex.Colon, torch.TensorIndex.Single(int64 i)].data<float>().ToArray()

let chart: LineChart.Chart = {
    Title = "Hares and lynx: data and the fitted Lotka–Volterra model"
    XLabel = "year"
    YLabel = "thousands"
    Observed = Array.append (Array.zip times (column 0)) (Array.zip times (column 1))
    Series = [| "H (fit)", Array.zip fine curves[0]; "L (fit)", Array.zip fine curves[1] |]
    Split = 0.0
}

LineChart.saveWith None folder "fit" chart |> ignore
let svg = File.ReadAllText(Path.Combine(folder, "fit.svg"))
printfn "plot: %s" (Path.Combine(folder, "fit.svg"))
check "the plot has both fitted curves" (svg.Contains "H (fit)" && svg.Contains "L (fit)")
