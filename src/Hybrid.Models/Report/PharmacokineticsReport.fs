/// The pharmacokinetics section of the report: theophylline concentrations of held-out subjects.
module internal Hybrid.Models.Report.PharmacokineticsReport

open System
open System.IO
open System.Text
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat
open Hybrid.Models.Common.ModelTable

/// The split of the in-distribution MSE rows (held-out subjects' samples up to the cutoff).
[<Literal>]
let InDistribution = "in-distribution"

/// Writes the pharmacokinetics files into `dir` and returns its section of summary.md.
let write (dir: string) (o: Pharmacokinetics.Outcome) : string =
    // The shared table, from the run's result rows.
    let table =
        ModelTable.table (o.Models |> Array.map (fun m -> m.Name, m.Description)) o.Rows

    ModelTable.writeCsv dir "pharmacokinetics" table

    let subject = string o.Shown.Id

    Csv.write (Path.Combine(dir, "pharmacokinetics-curves.csv")) [|
        "model"
        "subject"
        "time_h"
        "concentration_mg_per_l"
    |] [
        for t, c in Array.zip o.Shown.Times o.Shown.Concentrations -> [| "observed"; subject; inv t; inv c |]
        for m in o.Models do
            for t, c in Array.zip o.CurveTimes m.Curve -> [| m.Name; subject; inv t; inv c |]
    ]

    let chart =
        LineChart.save dir "pharmacokinetics" {
            Title = $"theophylline, held-out subject {o.Shown.Id} (dose {o.Shown.Dose} mg/kg): observed and predicted"
            XLabel = "time after the dose (h)"
            YLabel = "concentration (mg/L)"
            Observed = Array.zip o.Shown.Times o.Shown.Concentrations
            Series = o.Models |> Array.map (fun m -> m.Name, Array.zip o.CurveTimes m.Curve)
            Split = 0.0
        }

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    let folds = o.Folds |> List.map string |> String.concat ", "
    add "## Pharmacokinetics: theophylline, one oral dose, 12 subjects"
    add ""

    add
        $"Out-of-distribution split, extrapolation in time and in subjects: leave-subjects-out folds {folds} (fold k holds out subjects 4k−3 … 4k; the others train), and every model is trained on the training subjects' samples up to {o.Cutoff} h after the dose only. Validation: the last 20%% of each fold's training subjects (two of eight) are held out with their samples up to {o.Cutoff} h; every model, the physics fit included, is fitted to the other training subjects, and every network stops early on its MSE on the validation subjects (patience a quarter of its epochs, the best epoch's weights restored); learning rates and widths are those `hybrid tune` chose where `tuning/pharmacokinetics.csv` exists (each row's description names them). Predictions for held-out subjects use only their dose. Test MSE: the held-out subjects' samples after {o.Cutoff} h (9, 12 and 24 h, the late elimination no training sample shows), all folds pooled, (mg/L)². In-distribution MSE (below the table): the held-out subjects' samples up to {o.Cutoff} h. Train MSE: training samples, averaged over folds. Parameters: last fold. Every model with an equation is the DSL one-compartment model (or its hybrid) compiled by `Compiler.compile`, integrated by `Simulate` (RK4, the dose as the start state A(0)) and trained by `Trainer.train` (the fitted model polished by `Trainer.lbfgs`). The hybrid's training time includes the physics fit it starts from. Physics residual: the defect of the model's curve for subject {o.Shown.Id} (every 0.25 h) under the one-compartment flow with the last fold's fitted ka, ke, V, C(t + Δ) − Φ(C(t), A(t)) with the fitted model's gut amount A(t), RMS in mg/L (0 for 1-cpt fitted itself). Inference s: predicting the held-out subjects, summed over folds. Data: Boeckmann, Sheiner and Beal (1994), `data/theophylline-pk.csv`."

    add ""
    ModelTable.markdown 3 table |> List.iter add

    add ""
    add "What the numbers say (generated from the table):"
    add ""
    let mse name = ModelTable.testMse table name
    let best = ModelTable.names table |> Array.minBy mse
    add $"- Lowest test MSE: {best} ({mse best:F3})."
    let hybrid = ModelTable.names table |> Array.find (fun m -> m.StartsWith "hybrid")

    for other in ModelTable.names table |> Array.filter (fun m -> not (m.StartsWith "hybrid")) do
        add $"- {hybrid} {verdict (mse hybrid) (mse other)} {other} ({mse hybrid:F3} vs {mse other:F3})."

    ModelTable.claimLines
        $"held-out subjects after {o.Cutoff} h (out of distribution: later times and subjects not seen in training)"
        table
    |> List.iter add

    add
        "- No “same network, no physics” control (a neural ODE with the hybrid's network and the scientific terms removed) in this case: the hybrid's network sees the plasma concentration C alone, and the dose enters only through the absorption physics (the gut amount A and ka A / V). Removed, that leaves dC/dt = −N(C/10) from C(0) = 0, the same curve for every subject whatever the dose, and a one-dimensional autonomous ODE is monotone, so it cannot rise and fall as every concentration curve does. The MLP C(t, dose) row is the pure-ML model with the dose as input."

    add ""
    add $"In-distribution MSE (held-out subjects, samples up to {o.Cutoff} h, (mg/L)²):"
    add ""
    add "| model | in-distribution MSE | out-of-distribution (test) MSE |"
    add "|---|---|---|"

    for m in ModelTable.names table do
        // The first seed's in-distribution MSE (its first row), the test MSE's mean over the seeds.
        let inDistribution = ResultRow.value m InDistribution "mse" o.Rows
        add $"| {m} | {inDistribution:F3} | {mse m:F3} |"

    add ""

    ModelTable.seedLines 3 [ "1-cpt textbook"; "1-cpt fitted" ] table
    |> List.iter add

    if o.Ablation.Length > 0 then
        AblationTable.section
            dir
            "pharmacokinetics"
            3
            $"Issue #15, item 2 (b–d): the hybrid (1-cpt + MLP elimination) as in the table above (θ and φ at one Adam rate, the hybrid's: 5e-3 or its tuned rate; no physics-residual term, λ = 0) against variants trained from the same fitted ka, ke, V, network seeds, folds, training samples and iterations ({ModelTable.epochs table hybrid} per fold with the physics fit). Test MSE: held-out subjects after {o.Cutoff} h, folds pooled, (mg/L)². The fused models' parameters (last fold) include the learned α (scalar) or the mean of the gate over the training samples."
            (ModelTable.table
                (Array.append
                    [| hybrid, ModelTable.description table hybrid |]
                    (o.Ablation |> Array.map (fun m -> m.Name, m.Description)))
                o.Rows)
            []
        |> List.iter add

        add ""

    add
        "- Each seed of a network row is trained on every fold; training times are per seed, summed over folds; epochs are per fold."

    add
        "- Population predictions only (no per-subject parameters), so the between-subject variability sets a floor under every model's test MSE."

    add ""
    add chart
    add ""

    Claims.write dir "pharmacokinetics" [|
        yield! Claims.oodOfRows "pharmacokinetics" $"held-out subjects after {o.Cutoff} h" table
        Claims.interpretable
            "pharmacokinetics"
            (Claims.againstLiterature
                "pharmacokinetics"
                (ModelTable.parameters table hybrid)
                (List.zip [ "ka (1/h)"; "ke (1/h)"; "V (L/kg)" ] (List.ofArray Pharmacokinetics.textbook)))
        yield! Claims.calibrated "pharmacokinetics" o.Uncertainty
    |]

    UncertaintyReport.section
        dir
        "pharmacokinetics"
        $"The hybrid (1-cpt + MLP elimination) on the held-out subjects' samples after the cutoff of every evaluated fold, pooled: a deep ensemble (M members from M network seeds; a member is one hybrid per fold, trained as the table's) and MC dropout (p = dropout probability, T passes) of one such hybrid per fold trained with dropout. In the report settings there are {Pharmacokinetics.defaults.Uncertainty.Members} members, each trained for {Pharmacokinetics.defaults.Uncertainty.Iterations} hybrid iterations, not {Pharmacokinetics.defaults.HybridIterations} (the quick budget, to keep the report's run time modest). Noise variance: the member's training-sample MSE averaged over folds (it holds the between-subject variability a population model cannot follow). The pure-ML models are compared too: deep ensembles (M members each, from the same seeds; no MC dropout) of the MLP C(t, dose), the LSTM and the transformer (one network per fold each, at the same fraction of their own iterations). No network of this experiment stops early. Validation split: the samples after the cutoff of each fold's validation subjects (the last 20%% of its training subjects, which none of these networks trains on)."
        3
        o.Uncertainty
    |> List.iter add

    md.ToString()
