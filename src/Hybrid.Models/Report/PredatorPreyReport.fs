/// The predator–prey section of the report: lynx–hare forecasts for 1916–1920 against the observations.
module internal Hybrid.Models.Report.PredatorPreyReport

open System
open System.IO
open System.Text
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat
open Hybrid.Models.Common.ModelTable

/// Writes the predator–prey files into `dir` and returns its section of summary.md.
let write (dir: string) (o: PredatorPrey.Outcome) : string =
    // The shared table, from the run's result rows.
    let table =
        ModelTable.table (o.Models |> Array.map (fun m -> m.Name, m.Description)) o.Rows

    ModelTable.writeCsv dir "predator-prey" table

    let testYears = o.Years |> Array.skip o.TrainYears

    Csv.write (Path.Combine(dir, "predator-prey-forecasts.csv")) [| "model"; "year"; "hare"; "lynx" |] [
        for i, y in Array.indexed o.Years -> [| "observed"; string y; inv (o.Observed[i][0]); inv (o.Observed[i][1]) |]
        for m in o.Models do
            for i, y in Array.indexed testYears ->
                [| m.Name; string y; inv (m.Forecast[i][0]); inv (m.Forecast[i][1]) |]
    ]

    let last = o.TrainYears - 1

    let charts = [
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

            LineChart.save dir $"predator-prey-{species}" {
                Title = $"{species} pelts: observed and 1916–1920 forecasts from 1915"
                XLabel = "year"
                YLabel = "thousands of pelts"
                Observed = observed
                Series = series
                Split = float o.Years[last]
            }
    ]

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    add "## Predator–prey: Hudson's Bay lynx and hare, 1900–1920"
    add ""

    add
        "Train 1900–1915, forecast 1916–1920 from the observed 1915 state. Every equation is a DSL model compiled by `Compiler.compile` and integrated by `Simulate` (RK4); every model is trained by `Trainer.train`. LV fitted: the four rates and the 1900 state fitted by maximum likelihood under log-normal errors (MSE of log counts along one trajectory; Adam with a growing horizon, then L-BFGS). The hybrids, the neural ODE and the autoregressive MLP: windows from every training year, growing from one to five years. The neural ODE (no physics) is the “same network, no physics” control: the additive hybrid's equation without its Lotka–Volterra terms, dH/dt = 10 NH(H, L), dL/dt = 10 NL(H, L), with the additive hybrid's network form, seeds, penalty, windows and iterations (its width and Adam rate, its own where tuned, in its description) (it has no physics fit to start from, so its epochs are the hybrid's network iterations alone); it counts as a pure-ML baseline. Test MSE: both species, thousands of pelts squared. Train MSE: five-year windows from every training year. A hybrid's training time includes the physics fit it starts from. Physics residual: the forecast's one-year defect under the fitted Lotka–Volterra flow, x(y + 1) − Φ(x(y)) from the observed 1915 state through 1920, RMS over years and species (thousands of pelts; 0 for LV fitted itself, so it measures how far a model departs from the fitted physics). Inference s: the 1916–1920 forecast. Data: Hewitt (1921), `data/hudson-bay-lynx-hare.csv`."

    add ""
    ModelTable.markdown 2 table |> List.iter add

    add ""
    add "What the numbers say (generated from the table):"
    add ""

    let mse name = ModelTable.testMse table name
    let best = ModelTable.names table |> Array.minBy mse
    add $"- Lowest test MSE: {best} ({mse best:F2})."

    for h in [ "hybrid (LV + MLP)"; "hybrid (neural interaction)" ] do
        let hm = mse h

        for other in [ "LV prior"; "LV fitted"; "MLP autoregressive" ] do
            let om = mse other

            add $"- {h} {verdict hm om} {other} on 1916–1920 ({hm:F2} vs {om:F2}, {percentChange 0 hm om})."

    ModelTable.claimLines "1916–1920 forecast" table |> List.iter add
    ModelTable.noPhysicsLines "1916–1920 forecast" table |> List.iter add
    let pinn = mse "PINN"

    for h in [ "hybrid (LV + MLP)"; "hybrid (neural interaction)" ] do
        let hm = mse h

        add
            $"- {h} {verdict hm pinn} the PINN (Lotka–Volterra residual with the fitted parameters) on 1916–1920 ({hm:F2} vs {pinn:F2}, {percentChange 0 hm pinn})."

    add
        $"- The literature parameters were fitted to all of 1900–1920, so they have seen the test years; they are a reference, not a baseline. Five test years (ten numbers) make every comparison here noisy. The sequence models forecast from the last years of the record (their context, see the table), the others from the 1915 state alone; the PINN fits one curve through 1900–1920."

    ModelTable.seedLines 2 [ "LV prior"; "LV fitted" ] table |> List.iter add

    let hybrid = "hybrid (LV + MLP)"

    if o.Ablation.Length > 0 then
        add ""

        AblationTable.section
            dir
            "predator-prey"
            2
            $"Issue #15, item 2 (b–d): the additive hybrid (LV + MLP) as in the table above (θ and φ at one Adam rate, the hybrid's: 5e-3 or its tuned rate; no physics-residual term, λ = 0) against variants trained from the same fitted Lotka–Volterra rates, network seeds, training windows and iterations ({ModelTable.epochs table hybrid} with the physics fit). Test MSE on 1916–1920 (thousands of pelts squared); five test years, so every ratio is noisy. The fused models' parameters include the learned α (scalar) or the mean of the gate over the 1916–1920 forecast."
            (ModelTable.table
                (Array.append
                    [| hybrid, ModelTable.description table hybrid |]
                    (o.Ablation |> Array.map (fun m -> m.Name, m.Description)))
                o.Rows)
            []
        |> List.iter add

    add ""
    add (String.concat " " charts)
    add ""

    let u = PredatorPrey.defaults.Uncertainty

    Claims.write dir "predator-prey" [|
        yield! Claims.oodOfRows "predator-prey" "1916–1920" table
        Claims.interpretable
            "predator-prey"
            (Claims.againstLiterature
                "predator-prey"
                (ModelTable.parameters table hybrid)
                (List.zip [ "alpha"; "beta"; "gamma"; "delta" ] (List.ofArray PredatorPrey.literature)))
        yield! Claims.calibrated "predator-prey" o.Uncertainty
    |]

    UncertaintyReport.section
        dir
        "predator-prey"
        $"The additive hybrid (LV + MLP) on the ten 1916–1920 values: a deep ensemble (M members from M network seeds) and MC dropout (p = dropout probability, T passes) of one hybrid trained with dropout; in the report settings every member is trained for {u.Iterations} hybrid iterations, not {PredatorPrey.defaults.HybridIterations} (the quick budget, to keep the report's run time modest). Noise variance: the member's training-window MSE (1- to 5-year forecasts). The pure-ML models are compared too: deep ensembles (M members each, from the same seeds; no MC dropout) of the no-physics control (at the hybrid members' iterations), the LSTM and the transformer (at the same fraction of their own iterations; noise variance: their one-step training MSE). Validation split: the validation years held out of every model's training, forecast from the last training year (the networks stop early on them, so recalibration is fitted on years that chose their stopping epoch)."
        2
        o.Uncertainty
    |> List.iter add

    md.ToString()
