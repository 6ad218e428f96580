/// The energy-balance section of the report: global temperature simulated from CO₂ forcing.
module internal Hybrid.Models.Report.EnergyBalanceReport

open System
open System.IO
open System.Text
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat
open Hybrid.Models.Common.ModelTable

/// Writes the energy-balance files into `dir` and returns its section of summary.md.
let write (dir: string) (o: EnergyBalance.Outcome) : string =
    // The shared table, from the run's result rows.
    let table =
        ModelTable.table (o.Models |> Array.map (fun m -> m.Name, m.Description)) o.Rows

    ModelTable.writeCsv dir "energy-balance" table
    let d = o.Data

    Csv.write (Path.Combine(dir, "energy-balance-data.csv")) [|
        "year"
        "temp_anomaly"
        "co2_ppm"
        "co2_reconstructed"
        "forcing_w_per_m2"
    |] [
        for i, y in Array.indexed d.Years ->
            [|
                string y
                inv (d.Temperature[i])
                inv (d.Co2[i])
                (if d.Reconstructed[i] then "1" else "0")
                inv (d.Forcing[i])
            |]
    ]

    Csv.write (Path.Combine(dir, "energy-balance-simulations.csv")) [| "model"; "year"; "temp_anomaly" |] [
        for m in o.Models do
            for i, y in Array.indexed d.Years -> [| m.Name; string y; inv (m.Simulated[i]) |]
    ]

    let years = d.Years |> Array.map float
    let cutoff = d.Years[o.TrainYears - 1]
    let firstTest = d.Years[o.TrainYears]
    let lastYear = d.Years[d.Years.Length - 1]

    let chart =
        LineChart.save dir "energy-balance" {
            Title = $"global temperature anomaly: observed and simulated from 1880 (train to {cutoff}, test after)"
            XLabel = "year"
            YLabel = "anomaly (°C)"
            Observed = Array.zip years d.Temperature
            Series = o.Models |> Array.map (fun m -> m.Name, Array.zip years m.Simulated)
            Split = float cutoff + 0.5
        }

    let parameter (model: string) name =
        ModelTable.parameters table model |> Array.find (fun (n, _) -> n = name) |> snd

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    let firstFit, lastFit = d.Co2FitYears
    let i1959 = Array.IndexOf(d.Years, firstFit)
    let joinStep = d.Co2[i1959] - d.Co2[i1959 - 1]
    add $"## Energy balance: global temperature and CO₂ forcing, {d.Years[0]}–{lastYear}"
    add ""

    add
        $"Train {d.Years[0]}–{cutoff}, test {firstTest}–{lastYear}; every model is one rollout from {d.Years[0]} driven by the CO₂ forcing F = 5.35 ln(C/280) W/m², and all are scored on the annual anomaly (°C², NOAA global land–ocean). The two-box model and the hybrid are declared in the DSL (fields T and T_d, the forcing F given to the compiler as a function of time, T₀ a parameter of the initial state), compiled by `Compiler.compile`, integrated by the simulator (explicit Euler, one step a year) and trained by `Trainer.train` (θ: C, C_d, λ, γ, T₀; the hybrid adds the network's group φ). Training time and epochs (Adam iterations, each one rollout over the training years) of a hybrid include the physics fit it starts from. The neural ODE (no physics) is the “same network, no physics” control: the hybrid's surface equation without the two-box terms, dT/dt = 0.5 N(T − T₀, F/2) / 7.3 (the network's W/m² over the literature heat capacity, a fixed conversion), no deep ocean, declared and trained like the hybrid (same network seeds, penalty and hybrid epochs; its width and rates, its own where tuned, in its description; T₀ its only other parameter, started from the mean of the first ten training years, not from a physics fit); it counts as a pure-ML baseline. Data: NOAA and CDIAC via dslabs `temp_carbon` (`data/temperature-carbon-annual.csv`), Scripps Mauna Loa CO₂ (`data/mauna-loa-co2-monthly.csv`)."

    add ""

    add
        $"CO₂: Mauna Loa annual means (seasonally adjusted) from {firstFit}; before that C = 280 + a·E with E the cumulative fossil emissions since 1751 (GtC). Least squares on {firstFit}–{lastFit}: a = {d.Co2Slope:F3} ppm/GtC, RMSE {d.Co2FitRmse:F1} ppm, largest error {d.Co2FitMaxError:F1} ppm. The airborne-fraction check (≈ 0.45 / 2.12 ≈ 0.21 ppm/GtC) is lower: fossil emissions alone leave out land use, so a also carries it, and a straight line through 280 ppm cannot follow the record closely (the misfit is systematic, not noise). The reconstruction gives {d.Co2[0]:F1} ppm in {d.Years[0]} (ice cores: about 290) and joins Mauna Loa with a step of {joinStep:F1} ppm ({5.35 * log (d.Co2[i1959] / d.Co2[i1959 - 1]):F2} W/m²) between {firstFit - 1} and {firstFit}."

    add ""

    add
        "Physics residual: the simulated record's one-year defect under one step of the compiled two-box model with EBM fitted's C, C_d, λ, γ, T₀ (the simulator's consistent residual), T(k + 1) − Φ(T(k), T_d(k)), with T_d the fitted model's own deep box, RMS over 1880–2018 in °C (0 for EBM fitted itself; the sequence models' training years are one-step predictions from the observed record). Inference s: simulating 1880–2018."

    add ""
    ModelTable.markdown 5 table |> List.iter add
    add ""
    add "What the numbers say (generated from the table):"
    add ""
    let mse name = ModelTable.testMse table name
    let best = ModelTable.names table |> Array.minBy mse
    add $"- Lowest test MSE: {best} ({mse best:F5})."
    let hybrid = "hybrid (EBM + MLP)"
    let hm = mse hybrid

    for other in [ "EBM literature"; "EBM fitted" ] do
        let om = mse other

        add
            $"- {hybrid} {verdict hm om} {other} on {firstTest}–{lastYear} ({hm:F5} vs {om:F5}, {percentChange 1 hm om})."

    ModelTable.claimLines $"{firstTest}–{lastYear} test years (out of domain: forcing above any training year's)" table
    |> List.iter add

    ModelTable.noPhysicsLines $"{firstTest}–{lastYear} test years" table
    |> List.iter add

    let pinn = mse "PINN"

    add
        $"- {hybrid} {verdict hm pinn} the PINN (two-box residual with the fitted parameters) ({hm:F5} vs {pinn:F5}, {percentChange 1 hm pinn}). The sequence models' training-years values are one-step-ahead predictions from the observed record, their test years a free forecast with the forcing known."

    add
        $"- Yardstick: the best straight line through the {firstTest}–{lastYear} observations themselves (an oracle that has seen the test years) leaves MSE {o.TestTrendMse:F5}. Every model is within a few per cent of it (a slightly curved forced response can even get under it), so what is left is year-to-year variability (the early-2000s slowdown, the 2015–16 El Niño) and the differences between the models are far smaller than it: none of the test comparisons above is meaningful on its own."

    for name in [ "EBM fitted"; "hybrid (EBM + MLP)" ] do
        let lambda = parameter name "lambda (W/m2/K)"
        let ecs = parameter name "ECS (K)"
        let c = parameter name "C (W yr/m2/K)"
        let cd = parameter name "C_d (W yr/m2/K)"
        let gamma = parameter name "gamma (W/m2/K)"

        add
            $"- {name}: λ = {lambda:F2} W/m²/K, ECS = 5.35 ln 2 / λ = {ecs:F2} K, C = {c:F1}, C_d = {cd:F2} W yr/m²/K, γ = {gamma:F2} W/m²/K (literature: λ 1.13, ECS 3.28 K, C 7.3, C_d 106, γ 0.73)."

    add
        "- The fitted two-box model collapses to one box: C_d shrinks towards zero (the deep box then just follows T) and C grows to about 50 W yr/m²/K. A CO₂-only record of 121 years does not identify a slow deep-ocean box; the fitted ECS is an effective sensitivity to CO₂ alone, with the other forcings (other greenhouse gases, aerosols, volcanoes, the sun) folded in, and should not be read as an estimate of the real ECS."

    add
        "- The neural term N(T, F) lowers the training MSE only a little: the largest misses (the warm 1940s, the volcanic and aerosol cooling of the 1960s–70s) are not functions of the model's state and forcing."

    ModelTable.seedLines 5 [ "EBM literature"; "EBM fitted" ] table |> List.iter add

    if o.Ablation.Length > 0 then
        add ""

        AblationTable.section
            dir
            "energy-balance"
            5
            $"Issue #15, item 2 (b–d): the hybrid (EBM + MLP) as in the table above (θ and φ at one Adam rate, the hybrid's: 5e-3 or its tuned rate; no physics-residual term, λ = 0) against variants trained from the same fitted EBM, network seeds, training years and iterations ({ModelTable.epochs table hybrid} with the physics fit). Test MSE on {firstTest}–{lastYear} (°C²); physics residual as in the table above. The fused models' parameters include the learned α (scalar) or the mean of the gate over 1880–{lastYear}."
            (ModelTable.table
                (Array.append
                    [| hybrid, ModelTable.description table hybrid |]
                    (o.Ablation |> Array.map (fun m -> m.Name, m.Description)))
                o.Rows)
            []
        |> List.iter add

    add ""
    add chart
    add ""

    Claims.write dir "energy-balance" [|
        yield! Claims.oodOfRows "energy-balance" $"{firstTest}–{lastYear}" table
        Claims.interpretable
            "energy-balance"
            (Claims.againstLiterature "energy-balance" (ModelTable.parameters table hybrid) [
                for i, name in
                    Array.indexed [| "C (W yr/m2/K)"; "C_d (W yr/m2/K)"; "lambda (W/m2/K)"; "gamma (W/m2/K)" |] ->
                    name, EnergyBalance.literature[i]
            ])
        yield! Claims.calibrated "energy-balance" o.Uncertainty
    |]

    UncertaintyReport.section
        dir
        "energy-balance"
        $"The hybrid (EBM + MLP) on the {o.Data.Years.Length - o.TrainYears} test years: a deep ensemble (M members from M network seeds, each trained from the fitted EBM) and MC dropout (p = dropout probability, T passes) of one such hybrid trained with dropout; in the report settings every member is trained for {EnergyBalance.defaults.Uncertainty.Iterations} hybrid iterations, not {EnergyBalance.defaults.HybridIterations} (the quick budget, to keep the report's run time modest). Noise variance: the member's training-year MSE (mostly year-to-year variability the model cannot follow). The pure-ML models are compared too: deep ensembles (M members each, from the same seeds; no MC dropout) of the no-physics control (at the hybrid members' iterations), the LSTM and the transformer (at the same fraction of their own iterations; noise variance: their training-year MSE, one step ahead). Validation split: the validation years held out of every model's training (the networks stop early on them, so recalibration is fitted on years that chose their stopping epoch)."
        5
        o.Uncertainty
    |> List.iter add

    md.ToString()
