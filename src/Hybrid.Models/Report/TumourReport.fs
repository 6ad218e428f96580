/// The tumour-growth twin section of the report: in- and out-of-domain errors, parameter recovery over seeds,
/// physics residuals, training and inference times, the learned kill curves, the pure-ML baselines (LSTM,
/// transformer) and the PINN against the hybrid, and the hybrid's uncertainty (deep ensemble, MC dropout).
module internal Hybrid.Models.Report.TumourReport

open System
open System.IO
open System.Text
open Hybrid.Training
open Hybrid.Models.Baselines
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat
open Hybrid.Models.Common.ModelTable

let private mean (vs: float[]) = Array.average vs

/// An error in scientific notation, e.g. 4.87e-05.
let private sci (v: float) =
    v.ToString("0.00e+00", Globalization.CultureInfo.InvariantCulture)

/// Sample standard deviation (0 for one value).
let private spread (vs: float[]) =
    if vs.Length < 2 then
        0.0
    else
        let m = mean vs
        sqrt ((vs |> Array.sumBy (fun v -> (v - m) * (v - m))) / float (vs.Length - 1))

/// The split of the in-domain MSE rows (the in-domain test schedules: unseen timings).
[<Literal>]
let InDomain = "in-domain"

/// Writes the tumour files into `dir` and returns its section of summary.md.
let write (dir: string) (o: Tumour.Outcome) : string =
    let s = o.Settings

    // The shared table's CSV files, from the run's result rows: test MSE = out-of-domain ("test" rows), the other
    // numbers and the parameters the means over the seeds.
    let table = {
        ModelTable.table (o.Models |> Array.map (fun m -> m.Name, m.Description)) o.Rows with
            SeedMeans = true
    }

    ModelTable.writeCsv dir "tumour" table

    // A model's values of one split and metric per seed, in seed order, from the run's rows.
    let perSeed (model: string) (split: string) (metric: string) =
        o.Rows
        |> Array.filter (fun r -> r.Model = model && r.Split = split && r.Metric = metric)
        |> Array.map (fun r -> r.Value)

    let inDomainRuns m = perSeed m InDomain "mse"
    let inDomain m = mean (inDomainRuns m)
    let outOfDomain m = ModelTable.testMse table m
    let residualOf m = ModelTable.physicsResidual table m
    // A model's parameters, each with its value per seed.
    let parametersOf m =
        ModelTable.parameters table m
        |> Array.map (fun (n, _) -> n, perSeed m "" (ResultRow.ParameterPrefix + n))

    let models = ModelTable.names table

    Csv.write (Path.Combine(dir, "tumour-errors.csv")) [|
        "model"
        "in_domain_mse"
        "out_of_domain_mse"
        "train_mse"
        "residual_rms"
        "train_seconds"
        "inference_seconds"
    |] [
        for m in models ->
            [|
                m
                inv (inDomain m)
                inv (outOfDomain m)
                inv (ModelTable.trainMse table m)
                inv (residualOf m)
                inv (ModelTable.trainSeconds table m)
                inv (ModelTable.inferenceSeconds table m)
            |]
    ]

    let truthOf name =
        o.TrueParameters |> Array.tryFind (fun (n, _) -> n = name) |> Option.map snd

    Csv.write (Path.Combine(dir, "tumour-parameters-seeds.csv")) [| "model"; "parameter"; "seed"; "value"; "truth" |] [
        for m in models do
            for n, vs in parametersOf m do
                let truth = truthOf n |> Option.map inv |> Option.defaultValue ""

                for seed, v in List.zip s.Seeds (List.ofArray vs) -> [| m; n; string seed; inv v; truth |]
    ]

    let withKill = o.Models |> Array.filter (fun m -> m.Kill.Length > 0)

    Csv.write (Path.Combine(dir, "tumour-kill.csv")) [| "model"; "c"; "kill_per_day" |] [
        for c, k in Array.zip o.KillConcentrations o.TrueKill -> [| "truth"; inv c; inv k |]
        for m in withKill do
            for c, k in Array.zip o.KillConcentrations m.Kill -> [| m.Name; inv c; inv k |]
    ]

    Csv.write (Path.Combine(dir, "tumour-burden.csv")) [| "schedule"; "model"; "day"; "mean_u" |] [
        for i, schedule in Array.indexed Tumour.outOfDomain do
            for t, b in Array.zip o.BurdenTimes o.TrueBurden[i] -> [| schedule.Name; "truth"; inv t; inv b |]

            for m in o.Models do
                for t, b in m.Burden[i] -> [| schedule.Name; m.Name; inv t; inv b |]
    ]

    let killChart =
        LineChart.save dir "tumour-kill" {
            Title =
                $"tumour: kill rate at u = 0.5 against drug concentration (truth as dots; training reaches c = {o.TrainingMaxConcentration:F2})"
            XLabel = "c"
            YLabel = "kill (1/day)"
            Observed = Array.zip o.KillConcentrations o.TrueKill
            Series = withKill |> Array.map (fun m -> m.Name, Array.zip o.KillConcentrations m.Kill)
            Split = o.TrainingMaxConcentration
        }

    let shown = 0

    let burdenChart =
        LineChart.save dir "tumour-burden" {
            Title =
                $"tumour: burden (mean u) under the unseen schedule \"{Tumour.outOfDomain[shown].Name}\" (truth as dots)"
            XLabel = "day"
            YLabel = "mean u"
            Observed = Array.zip o.BurdenTimes o.TrueBurden[shown]
            Series = o.Models |> Array.map (fun m -> m.Name, m.Burden[shown])
            Split = 0.0
        }

    let byName (prefix: string) =
        models |> Array.find (fun m -> m.StartsWith prefix)

    let prior, fitted, hybrid = byName "prior", byName "fitted", byName "hybrid"

    // A model's kill curve (its first seed's).
    let killOf (name: string) =
        (o.Models |> Array.find (fun m -> m.Name = name)).Kill

    let md = StringBuilder()
    let add (x: string) = md.AppendLine x |> ignore

    let names (xs: Tumour.Schedule[]) =
        xs |> Array.map (fun x -> x.Name) |> String.concat "; "

    add "## Tumour growth (twin): reaction–diffusion with an unknown drug effect"
    add ""

    add
        $"∂u/∂t = ∇·(D∇u) + r u (1 − u) − kill(u, c) u on [0, 10] ({Tumour.Truth.Cells} cells, no flux), 0–{Tumour.Truth.Horizon:F0} days, u(0, x) = exp(−(x − 5)²). The drug c(t, x) = Σ dose·exp(−(t − tₖ)/{Tumour.Truth.DecayTime}) exp(−x/{Tumour.Truth.VesselLength}) comes from the dosing schedule (a vessel at x = 0). The truth (hidden from the models) kills with the saturating Emax effect k_max c/(EC50 + c), k_max = {Tumour.Truth.KMax} /day, EC50 = {Tumour.Truth.EC50}, and has D = {Tumour.Truth.D}, r = {Tumour.Truth.r} /day. The truth is not the models' discretisation (no inverse crime): the same equation compiled on {Tumour.Truth.FineCells} cells and integrated with {Tumour.Truth.Scheme} at Δt = {Tumour.Truth.FineDt} day, then restricted to the models' {Tumour.Truth.Cells} cells by cell averages; its observations and the errors below include the models' discretisation error. Observations: u on every cell at days 2, 4, …, 12 with noise of standard deviation {s.Noise}. Training: {names Tumour.training}. In-domain test (same doses, unseen timings): {names Tumour.inDomain}. Out-of-domain test (unseen schedules, higher doses; c up to {o.KillConcentrations[o.KillConcentrations.Length - 1]:F2} against {o.TrainingMaxConcentration:F2} in training): {names Tumour.outOfDomain}. Validation: the last 20%% of the kept observation times of the training schedules (day 12) are held out; every model, the physics fit included, is fitted to the earlier times, and every network stops early on its MSE against the held-out noisy observations (patience a quarter of its epochs, the best epoch's weights restored); learning rates and widths are those `hybrid tune` chose where `tuning/tumour.csv` exists (each row's description names them). Errors are MSEs of u against the noise-free truth at the observation times, averaged over {s.Seeds.Length} seed(s) (each seed draws the noise and the network initialisation). Every model is a `model {{ }}` compiled by `Compiler.compile` with c as a forcing, integrated with {s.Scheme}, Δt = {s.Dt} day; the fitted and hybrid models are trained with `Trainer.train` (Adam, {s.PhysicsEpochs} and {s.HybridEpochs} epochs). Pure-ML baselines (`Baselines.SequenceModels`, {s.SequenceIterations} full-batch epochs): an LSTM and a transformer forecaster of the 32-cell profile at the observation times, with the mean drug concentration at the vessel over each 2-day step as exogenous input (c(t, x) = c(t, 0)·exp(−x/{Tumour.Truth.VesselLength}), so no spatial information is lost), trained on the noisy training observations and forecasting every observation time of a schedule from u(0, x) alone. The neural ODE (no physics) is the “same network, no physics” control, also counted as pure ML: ∂u/∂t = N(u, c) in every cell with the hybrid's kill network form (same inputs, seeds, zero output layer; its width and rate, its own where tuned, in its description), declared in the DSL and trained like the hybrid ({s.HybridEpochs} epochs, same data loss) but from the seed, without diffusion, growth or the kill's form (so no coupling between cells). PINN (`Baselines.Pinn`, {s.PinnIterations} Adam iterations): an MLP u(t, x, A) with A(t) = ∫₀ᵗ c(s, 0) ds the exposure at the vessel (how it knows the schedule), fitted to the training observations and u(0, x), plus the residual of the known physics only, ∂u/∂t − D ∂²u/∂x² − r u (1 − u) + c κ u with the hybrid's D, r (same seed) and the kill c·κ(t, x, A) a second output of its own network (no kill law imposed, only no drug, no kill), at every day and every second cell of all eight schedules. The residual column is the RMS physics residual of each model's predicted test trajectories under the true equation (`Residual.compute`, consistent {s.Scheme} form on the models' grid; the restricted truth's own is {o.TruthResidualNorm:G2}, the discretisation error no model on this grid can remove); the sequence models predict the observation times only, so they have none (—). Errors of models over several seeds: mean ± sample standard deviation."

    add ""

    add
        "| model | in-domain MSE | out-of-domain MSE | train MSE | residual (RMS) | training s | epochs | inference s | what |"

    add "|---|---:|---:|---:|---:|---:|---:|---:|---|"

    let withSpread (runs: float[]) =
        let summary = Comparison.summarise runs

        if runs.Length > 1 then
            $"{sci summary.Mean} ± {sci summary.Spread}"
        else
            sci summary.Mean

    for m in models do
        let residual =
            if Double.IsNaN(residualOf m) then
                "—"
            else
                $"{residualOf m:F4}"

        let train, seconds, epochs, inference =
            ModelTable.trainMse table m,
            ModelTable.trainSeconds table m,
            ModelTable.epochs table m,
            ModelTable.inferenceSeconds table m

        add
            $"| {m} | {withSpread (inDomainRuns m)} | {withSpread (ModelTable.seedRuns table m)} | {sci train} | {residual} | {seconds:F1} | {epochs} | {inference:F3} | {ModelTable.description table m} |"

    add ""
    let seedList = s.Seeds |> List.map string |> String.concat ", "
    add $"Parameter recovery (mean ± standard deviation over seeds {seedList}):"
    add ""
    add "| parameter | truth | prior | fitted (log-kill) | hybrid |"
    add "|---|---:|---:|---:|---:|"

    let cell m name =
        match parametersOf m |> Array.tryFind (fun (n, _) -> n = name) with
        | Some(_, vs) when vs.Length > 1 -> $"{mean vs:F4} ± {spread vs:F4}"
        | Some(_, vs) -> $"{mean vs:F4}"
        | None -> "—"

    for name, truth in Array.append o.TrueParameters [| "k", nan |] do
        let t = if Double.IsNaN truth then "— (Emax)" else $"{truth:G4}"
        add $"| {name} | {t} | {cell prior name} | {cell fitted name} | {cell hybrid name} |"

    add ""
    add "What the numbers say (generated from the tables):"
    add ""

    for reference in [ prior; fitted ] do
        let h, r = outOfDomain hybrid, outOfDomain reference
        let hi, ri = inDomain hybrid, inDomain reference

        add
            $"- {hybrid} {verdict h r} {reference} out of domain ({sci h} vs {sci r}, {percentChange 0 h r}) and {verdict hi ri} it in domain ({sci hi} vs {sci ri})."

    let last = o.KillConcentrations.Length - 1

    let fittedKill, hybridKill, priorKill = killOf fitted, killOf hybrid, killOf prior

    let direction =
        if fittedKill[last] > o.TrueKill[last] then
            "overshoots"
        else
            "undershoots"

    add
        $"- Kill at the largest out-of-domain concentration c = {o.KillConcentrations[last]:F2}: truth {o.TrueKill[last]:F2} /day, hybrid {hybridKill[last]:F2}, fitted log-kill {fittedKill[last]:F2}, prior {priorKill[last]:F2}. A kill linear in c cannot level off as the Emax truth does; fitted to the training doses it {direction} the truth there by {percentChange 0 fittedKill[last] o.TrueKill[last]}, the network by {percentChange 0 hybridKill[last] o.TrueKill[last]}. The fitted log-kill model {verdict (outOfDomain fitted) (outOfDomain prior)} the prior out of domain ({sci (outOfDomain fitted)} vs {sci (outOfDomain prior)}) and {verdict (inDomain fitted) (inDomain prior)} it in domain ({sci (inDomain fitted)} vs {sci (inDomain prior)})."

    let relative m name truth =
        let vs = parametersOf m |> Array.find (fun (n, _) -> n = name) |> snd
        percentChange 1 (mean vs) truth

    let fittedD, fittedR =
        relative fitted "D" Tumour.Truth.D, relative fitted "r" Tumour.Truth.r

    let hybridD, hybridR =
        relative hybrid "D" Tumour.Truth.D, relative hybrid "r" Tumour.Truth.r

    let error m name truth =
        let vs = parametersOf m |> Array.find (fun (n, _) -> n = name) |> snd
        abs (mean vs - truth)

    let closer =
        if
            error hybrid "D" Tumour.Truth.D < error fitted "D" Tumour.Truth.D
            && error hybrid "r" Tumour.Truth.r < error fitted "r" Tumour.Truth.r
        then
            "the hybrid recovers both more closely"
        else
            "the hybrid does NOT recover both more closely"

    add
        $"- Parameters (means over seeds): the fitted log-kill model's D and r are off by {fittedD} and {fittedR}, the hybrid's by {hybridD} and {hybridR}; {closer}. The log-kill model can make up for its wrong kill only through growth and spread."

    // The proposal's claim (issue #6): the hybrid against the best pure-ML baseline (LSTM, transformer), in and
    // out of domain.
    let pureMl = models |> Array.filter ModelTable.isPureMl

    for what, mse in
        [
            "in-domain test schedules (unseen timings)", inDomainRuns
            "out-of-domain test schedules (unseen, higher doses)", ModelTable.seedRuns table
        ] do
        add (
            "- "
            + Comparison.claimSentence what hybrid (mse hybrid) (pureMl |> Array.map (fun m -> m, mse m))
        )

    ModelTable.noPhysicsLines "out-of-domain test schedules" table |> List.iter add

    let pinn = byName "PINN"

    add
        $"- {hybrid} {verdict (outOfDomain hybrid) (outOfDomain pinn)} the PINN (known physics with a learned kill) out of domain ({sci (outOfDomain hybrid)} vs {sci (outOfDomain pinn)}, {percentChange 0 (outOfDomain hybrid) (outOfDomain pinn)}) and {verdict (inDomain hybrid) (inDomain pinn)} it in domain ({sci (inDomain hybrid)} vs {sci (inDomain pinn)}). The LSTM, transformer and PINN rows are the mean over the same {s.Seeds.Length} seed(s) as the other models (each seed its own observation noise and network initialisation)."

    let closest =
        models
        |> Array.filter (fun m -> Double.IsFinite(residualOf m))
        |> Array.minBy residualOf

    add
        $"- Residual under the true equation: prior {residualOf prior:F4}, fitted {residualOf fitted:F4}, hybrid {residualOf hybrid:F4}, PINN {residualOf pinn:F4}; the trajectories of {closest} come closest to obeying the true physics."

    add
        $"- Times: training {ModelTable.trainSeconds table fitted:F1} s (fitted) and {ModelTable.trainSeconds table hybrid:F1} s (hybrid, including the physics fit it starts from) per seed; one prediction of the five test schedules takes {ModelTable.inferenceSeconds table hybrid:F3} s (hybrid) against {ModelTable.inferenceSeconds table prior:F3} s (scientific model)."

    if o.Ablation.Length > 0 then
        add ""

        AblationTable.section
            dir
            "tumour"
            7
            $"Issue #15, item 2 (b–d): {hybrid} as in the table above (θ = D, r and φ at one Adam rate, the hybrid's; no physics-residual term, λ = 0) against variants trained from the same fitted D, r (the fused models: the fitted D, r, k), seeds (each seed's noise draw and network initialisation), training observations, validation time (day 12, early stopping) and epochs ({ModelTable.epochs table hybrid} with the physics fit). Test MSE: the out-of-domain schedules, as in the table above. Physics residual: RMS under the true equation of the out- and in-domain test trajectories, as above. Parameters: means over seeds; the fused models' include the learned α (scalar) or the mean of the gate over the training trajectories."
            {
                table with
                    Models =
                        Array.append
                            [| hybrid, ModelTable.description table hybrid |]
                            (o.Ablation |> Array.map (fun m -> m.Name, m.Description))
            }
            []
        |> List.iter add

    add ""
    add killChart
    add ""
    add burdenChart
    add ""

    let truths = dict o.TrueParameters

    Claims.write dir "tumour" [|
        yield! Claims.oodOfRows "tumour" "out-of-domain schedules" table
        Claims.interpretable "tumour" [|
            for name, values in parametersOf hybrid do
                if truths.ContainsKey name then
                    Claims.overSeeds name values (Some truths[name]) None
        |]
        yield! Claims.calibrated "tumour" o.Uncertainty
    |]

    UncertaintyReport.section
        dir
        "tumour"
        $"The hybrid on the test schedules at the observation times (every cell): a deep ensemble (M members from M network seeds) and MC dropout (p = dropout probability, T passes; each pass draws one dropout mask and keeps it for the whole rollout) of one hybrid trained with dropout, all trained on the first seed's data from its fitted D, r; in the report settings every member is trained for {Tumour.defaults.Uncertainty.Iterations} hybrid epochs, not {Tumour.defaults.HybridEpochs} (to keep the report's run time modest). Targets: noisy observations of the test schedules (a fixed draw, noise standard deviation {s.Noise}), not the noise-free truth of the MSEs above. Noise variance: the member's MSE against its training data. The pure-ML models are compared too: deep ensembles (M members each, from the same seeds; no MC dropout) of the no-physics control (at the hybrid members' epochs), the LSTM and the transformer (at the same fraction of their own iterations), on the same data; no network of this experiment stops early. Validation split: the first seed's held-out noisy observations of the training schedules at the validation times."
        4
        o.Uncertainty
    |> List.iter add

    md.ToString()
