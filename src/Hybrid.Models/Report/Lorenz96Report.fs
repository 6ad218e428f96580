/// The two-scale Lorenz-96 section of the report: forecast skill and long-run statistics of sub-grid closures.
module internal Hybrid.Models.Report.Lorenz96Report

open System
open System.Globalization
open System.IO
open System.Text
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat
open Hybrid.Models.Common.ModelTable

/// Rows of model `m` with the forecast MSE of X at forcing i (0: in domain) and the longest lead as its "test" "mse",
/// one per network seed (its one run where it has none): what the out-of-domain sentences compare (the shared table
/// reads the run's rows, `Outcome.Rows`, which hold the in-domain ones).
let private skillRows (i: int) (m: Lorenz96.ModelResult) : ResultRow[] =
    let last = m.Skills[i].Rmse.Length - 1

    let runs =
        if m.SeedRmse.Length = 0 then
            [| m.Skills[i].Rmse[last] |]
        else
            m.SeedRmse |> Array.map (fun r -> r[i][last])

    runs
    |> Array.mapi (fun seed rmse -> {
        Case = "lorenz96"
        Model = m.Name
        Split = "test"
        Metric = "mse"
        Seed = seed
        Value = rmse * rmse
    })

/// Writes the two-scale Lorenz-96 files into `dir` and returns its section of summary.md.
let write (dir: string) (o: Lorenz96.Outcome) : string =
    let s = o.Settings
    let last = s.Leads.Length - 1

    // The shared table, from the run's result rows.
    let table =
        ModelTable.table (o.Models |> Array.map (fun m -> m.Name, m.Description)) o.Rows

    ModelTable.writeCsv dir "lorenz96" table

    Csv.write (Path.Combine(dir, "lorenz96-forecasts.csv")) [| "model"; "forcing"; "lead_mtu"; "rmse_x" |] [
        for m in o.Models do
            for k in m.Skills do
                for i, lead in Array.indexed s.Leads -> [| m.Name; inv k.Forcing; inv lead; inv (k.Rmse[i]) |]
    ]

    Csv.write (Path.Combine(dir, "lorenz96-seeds.csv")) [| "model"; "network_seed"; "forcing"; "lead_mtu"; "rmse_x" |] [
        for m in o.Models do
            for seed, r in Seq.zip s.NetworkSeeds m.SeedRmse do
                for i, k in Array.indexed m.Skills do
                    for l, lead in Array.indexed s.Leads ->
                        [| m.Name; string seed; inv k.Forcing; inv lead; inv (r[i][l]) |]
    ]

    let statRows =
        Array.append
            (o.Truth |> Array.map (fun t -> "truth", t))
            (o.Models |> Array.collect (fun m -> m.Skills |> Array.map (fun k -> m.Name, k)))

    Csv.write (Path.Combine(dir, "lorenz96-statistics.csv")) [|
        "model"
        "forcing"
        "mean_x"
        "std_x"
        "autocorrelation"
        "closure_mse"
    |] [
        for name, k in statRows ->
            [|
                name
                inv k.Forcing
                inv k.Mean
                inv k.Std
                inv k.Autocorrelation
                inv k.ClosureMse
            |]
    ]

    Csv.write (Path.Combine(dir, "lorenz96-closures.csv")) [| "model"; "x"; "u" |] [
        for x, u in o.BinnedTruth -> [| "truth (binned mean)"; inv x; inv u |]
        for m in o.Models do
            for x, u in Array.zip o.ClosureGrid m.Closure -> [| m.Name; inv x; inv u |]
    ]

    let times = Array.init o.TruthExample.Length (fun t -> float t * s.SampleInterval)

    let example =
        LineChart.save dir "lorenz96-forecast" {
            Title = $"Lorenz-96, F = {s.Forcing}: X_0 of the first held-out forecast (truth as dots)"
            XLabel = "lead (MTU)"
            YLabel = "X_0"
            Observed = Array.zip times o.TruthExample
            Series = o.Models |> Array.map (fun m -> m.Name, Array.zip times m.Example)
            Split = 0.0
        }

    let lo = fst o.BinnedTruth[0] - 0.5
    let hi = fst o.BinnedTruth[o.BinnedTruth.Length - 1] + 0.5

    let closureChart =
        LineChart.save dir "lorenz96-closures" {
            Title =
                $"Lorenz-96, F = {s.Forcing}: sub-grid tendency U against X (the CNN's at the uniform state X_k = X; dots: binned mean of the training pairs)"
            XLabel = "X_k"
            YLabel = "U_k"
            Observed = o.BinnedTruth
            Series =
                o.Models
                |> Array.filter (fun m -> m.Closure |> Array.exists Double.IsFinite)
                |> Array.map (fun m ->
                    m.Name,
                    Array.zip o.ClosureGrid m.Closure
                    |> Array.filter (fun (x, _) -> x >= lo && x <= hi))
            Split = lo
        }

    let md = StringBuilder()
    let add (str: string) = md.AppendLine str |> ignore
    let leads = s.Leads |> Array.map (fun l -> $"{l:G3}") |> String.concat ", "
    let seeds = Array.ofList s.NetworkSeeds
    let seedList = seeds |> Array.map string |> String.concat ", "
    let ood = s.OutOfDomain |> Array.map (fun f -> $"{f:G3}") |> String.concat " and "
    add "## Two-scale Lorenz-96 (twin experiment): sub-grid closures"
    add ""

    add
        $"Truth: the coupled X–Y system, K = {s.K}, J = {s.J}, h = {s.H:G3}, b = {s.B:G3}, c = {s.C:G3} (Wilks 2005; Arnold et al. 2013), declared in the DSL on the compiler's two-scale lattice and integrated by the compiled simulator (RK4 at dt = {s.TruthDt:G3} MTU), {s.SpinUp:G3} MTU spin-up. Training: {o.TrainPairs} pairs (X_k, U_k = −(hc/b) Σ_j Y_jk) from {s.TrainSpan:G3} MTU at F = {s.Forcing:G3}, every {s.SampleInterval:G3} MTU. Every model but the sequence baselines and the neural ODE is the X equation alone, a DSL model on the one-scale lattice of {s.K} sites integrated by the compiled simulator (RK4 at dt = {s.ModelDt:G3} MTU), with its closure: per site U_k = U(X_k) (cubic, a `neural` MLP closure), or U_k from the stencil of {2 * Lorenz96.cnnReach s + 1} sites around k (a CNN over the periodic ring, kernel width {s.CnnKernel}, as a `named` closure). The MLP and CNN closures are trained with `Trainer.train` in two stages: a-priori, {s.Epochs} epochs of regression onto the true U; then a-posteriori, {s.PosteriorEpochs} epochs on the rollout error of X alone through the solver ({s.Windows} random windows of the training run per epoch, horizon growing from 1 to {s.MaxHorizon} samples); the ablation below trains the same networks a-priori only for as many epochs. The neural ODE (no physics) is the “same network, no physics” control, also counted as pure ML: dX_k/dt = C(stencil) with the CNN hybrid's network (same `named` closure, {s.CnnChannels}-{s.CnnChannels} channels or its own tuned ones as its description states, kernel width {s.CnnKernel}, input standardisation, output scaling by the mean and sd of its target, seeds), declared in the DSL on the same lattice and integrated the same way, but with the resolved Lorenz-96 terms (advection, −X_k and F) removed, so it does not see F; trained in the CNN hybrid's two stages with the same budget, except that its a-priori target is the observed tendency of X (centred differences of the training samples {s.SampleInterval:G3} MTU apart), since the true U needs the fast variables, then the same {s.PosteriorEpochs} epochs through the solver. The MLP and CNN closures, the neural ODE and the LSTM and transformer are trained from each of {seeds.Length} network seed(s) ({seedList}): their forecast errors combine the seeds (RMSE = root of the mean MSE over seeds; test MSE in the table as mean ± sample sd), while train MSE, closure MSE, the long-run statistics, the example forecast and the closure curves are the first seed's. No PINN baseline: a PINN fits u(t) on one trajectory's time domain, but each test forecast starts from an unseen state of a chaotic system with nothing observed over its window, and the sub-grid term has no known equation for the residual, so a PINN would reduce to the truncated X equation (the truncated row) or, learning U from the training run, to the hybrid. Validation: the last 20%% of the training samples are held out; every model, the cubic closure and the standardisation included, is fitted to the earlier samples, and the closures' a-posteriori stage, the control's and the LSTM and transformer stop early on forecasts of up to {s.MaxHorizon} samples from start states in the held-out block (patience a quarter of their epochs, the best epoch's weights restored; the a-priori regression runs its whole budget); widths and rates are those `hybrid tune` chose where `tuning/lorenz96.csv` exists (each row's description names them). Test: {s.Starts} held-out start states {s.StartSpacing:G3} MTU apart after the training period (truth X; the fast variables are unknown to the models); out of domain: fresh truth runs at F = {ood}, closures trained at F = {s.Forcing:G3}. Truth integrations took {o.TruthSeconds:F1} s."

    add ""

    add
        $"Shared table: test MSE = squared forecast RMSE of X at lead {s.Leads[last]:G3} MTU in domain; train MSE = the closure's MSE against U_k on the training pairs; physics residual = the in-domain forecasts' defect under the X equation with no sub-grid term from each {s.SampleInterval:G3}-MTU sample to the next (RMS over start states, samples up to {s.Leads[last]:G3} MTU and sites; 0 for truncated itself, {o.TruthPhysicsResidual:G3} for the truth's own X: the size of the real sub-grid effect over one interval); inference s = forecasting every test start state at every forcing to the largest lead (the first seed's network)."

    add ""
    ModelTable.markdown 3 table |> List.iter add
    add ""

    add
        $"Forecast RMSE of X (over start states and sites) at leads {leads} MTU, and the closure's MSE against the truth's U_k on the test samples:"

    add ""

    let leadHeads =
        s.Leads |> Array.map (fun l -> $" lead {l:G3} |") |> String.concat ""

    add $"| model | F |{leadHeads} closure MSE |"
    add ("|---|---:|" + String.replicate s.Leads.Length "---:|" + "---:|")

    for m in o.Models do
        for k in m.Skills do
            let cells = k.Rmse |> Array.map (fun r -> $" {r:F3} |") |> String.concat ""
            add $"| {m.Name} | {k.Forcing:G3} |{cells} {k.ClosureMse:F2} |"

    add ""

    add
        $"Long-run statistics of X (pooled over sites) from a free run of {s.FreeRun:G3} MTU started at the first test state, against the truth's over the same span; autocorrelation at lag {s.Lag:G3} MTU:"

    add ""
    add "| model | F | mean | std | autocorrelation |"
    add "|---|---:|---:|---:|---:|"

    for name, k in statRows do
        add $"| {name} | {k.Forcing:G3} | {k.Mean:F3} | {k.Std:F3} | {k.Autocorrelation:F3} |"

    add ""

    add
        $"Ablation (issue #15, 2 e): each closure network trained a-priori only (regression onto the true U, a target no baseline sees) against a-posteriori (the same a-priori start, then through the solver on X alone), on the same training run and with the same number of Adam epochs; forecast RMSE of X at {s.Leads[last]:G3} MTU (root of the mean MSE over {seeds.Length} network seed(s)) at each forcing, and the closure's MSE against U on the in-domain test samples:"

    add ""

    let forcingHeads =
        o.Truth |> Array.map (fun t -> $" F = {t.Forcing:G3} |") |> String.concat ""

    add $"| closure | training | epochs |{forcingHeads} closure MSE | train s |"
    add ("|---|---|---:|" + String.replicate o.Truth.Length "---:|" + "---:|---:|")

    for a in o.Ablation do
        let cells = a.Rmse |> Array.map (fun r -> $" {r[last]:F3} |") |> String.concat ""
        add $"| {a.Closure} | {a.Training} | {a.Epochs} |{cells} {a.ClosureMse:F2} | {a.TrainSeconds:F1} |"

    Csv.write (Path.Combine(dir, "lorenz96-ablation.csv")) [| "closure"; "training"; "forcing"; "lead_mtu"; "rmse_x" |] [
        for a in o.Ablation do
            for i, t in Array.indexed o.Truth do
                for l, lead in Array.indexed s.Leads ->
                    [| a.Closure; a.Training; inv t.Forcing; inv lead; inv (a.Rmse[i][l]) |]
    ]

    add ""
    add "What the numbers say (generated from the tables):"
    add ""

    let byName name =
        o.Models |> Array.find (fun m -> m.Name = name)

    let mlp = byName "hybrid (X + MLP)"
    let cnn = byName "hybrid (X + CNN)"
    let hybrids = [ mlp; cnn ]
    let longest = s.Leads.Length - 1
    let mse (r: float) = r * r

    // Mean ± sample sd over network seeds of a closure network's forecast MSE at forcing i, lead l.
    let seedMse (m: Lorenz96.ModelResult) i l =
        Hybrid.Models.Common.Comparison.summarise (m.SeedRmse |> Array.map (fun r -> mse (r[i][l])))

    let g3 (v: float) =
        v.ToString("g3", CultureInfo.InvariantCulture)

    for hybrid in hybrids do
        for other in [ "truncated"; "cubic closure" ] do
            let om = byName other

            for i, k in Array.indexed hybrid.Skills do
                let verdicts =
                    s.Leads
                    |> Array.mapi (fun l lead ->
                        $"{verdict k.Rmse[l] om.Skills[i].Rmse[l]} at {lead:G3} MTU ({k.Rmse[l]:F3} vs {om.Skills[i].Rmse[l]:F3})")
                    |> String.concat ", "

                add $"- F = {k.Forcing:G3}: {hybrid.Name} vs {other} (RMSE): {verdicts}."

    // Do neighbours help? The CNN (sees neighbouring sites) against the MLP (a CNN of kernel width 1), forecast
    // MSE over seeds at every lead and forcing.
    let better = [|
        for i, k in Array.indexed cnn.Skills do
            let cells =
                s.Leads
                |> Array.mapi (fun l lead ->
                    let c, m = seedMse cnn i l, seedMse mlp i l
                    let word = if c.Mean < m.Mean then "lower" else "higher"
                    $"{word} at {lead:G3} MTU ({g3 c.Mean} ± {g3 c.Spread} vs {g3 m.Mean} ± {g3 m.Spread})")
                |> String.concat ", "

            add
                $"- F = {k.Forcing:G3}: the CNN closure's forecast MSE against the pointwise MLP's (mean ± sd over {seeds.Length} seed(s)): {cells}."

            k.Forcing, cnn.Skills[i].Rmse[longest] < mlp.Skills[i].Rmse[longest]
    |]

    let forcingList (fs: (float * bool)[]) =
        fs |> Array.map (fun (f, _) -> $"F = {f:G3}") |> String.concat ", "

    let wins, losses = better |> Array.partition snd

    add (
        $"- Neighbours (the issue's CNN closure against the local MLP), mean MSE at {s.Leads[longest]:G3} MTU: "
        + (if losses.Length = 0 then
               "the CNN is better at every forcing."
           elif wins.Length = 0 then
               "the CNN is NOT better at any forcing; the pointwise MLP is the stronger hybrid here."
           else
               $"the CNN is better at {forcingList wins} but NOT at {forcingList losses}.")
    )

    // The proposal's claim (issue #6): each hybrid against the best pure data-driven model (LSTM, transformer), in
    // and out of domain, on the forecast MSE (RMSE²) at the longest lead.
    let pureMl = o.Models |> Array.filter (fun m -> ModelTable.isPureMl m.Name)

    // A model's forecast MSE at forcing i and the longest lead per network seed (its one run where it has none).
    let seedRuns (m: Lorenz96.ModelResult) i =
        if m.SeedRmse.Length = 0 then
            [| mse (m.Skills[i].Rmse[longest]) |]
        else
            m.SeedRmse |> Array.map (fun r -> mse (r[i][longest]))

    for i, k in Array.indexed cnn.Skills do
        let where = if i = 0 then "in domain" else "out of domain"

        for hybrid in hybrids do
            add (
                "- "
                + Hybrid.Models.Common.Comparison.claimSentence
                    $"F = {k.Forcing:G3} forecasts ({where}), MSE of X at {s.Leads[longest]:G3} MTU"
                    hybrid.Name
                    (seedRuns hybrid i)
                    (pureMl |> Array.map (fun m -> m.Name, seedRuns m i))
            )

    // What the physics adds: the CNN hybrid against the control with its network, paired by seed, at each forcing.
    for i, k in Array.indexed cnn.Skills do
        let where = if i = 0 then "in domain" else "out of domain"

        let compared =
            o.Models
            |> Array.filter (fun m -> m.Name = cnn.Name || m.Name = ModelTable.NoPhysics)

        ModelTable.table
            (compared |> Array.map (fun m -> m.Name, m.Description))
            (compared |> Array.collect (skillRows i))
        |> ModelTable.noPhysicsLines $"F = {k.Forcing:G3} forecasts ({where}), MSE of X at {s.Leads[longest]:G3} MTU"
        |> List.iter add

    for i, t in Array.indexed o.Truth do
        let gaps =
            o.Models
            |> Array.map (fun m ->
                let k = m.Skills[i]

                let signed (v: float) =
                    v.ToString("+0.000;-0.000", CultureInfo.InvariantCulture)

                $"{m.Name} {signed (k.Mean - t.Mean)} / {signed (k.Std - t.Std)}")
            |> String.concat ", "

        add $"- F = {t.Forcing:G3}, free-run mean / std minus the truth's: {gaps}."

    // The ablation (issue #15, 2 e): a-posteriori against a-priori training of the same closure from the same
    // seeds, forecast MSE at the longest lead paired by seed (`Statistics.errorRatio`, 95% t-interval).
    for kind in o.Ablation |> Array.map (fun a -> a.Closure) |> Array.distinct do
        let rows = o.Ablation |> Array.filter (fun a -> a.Closure = kind)
        let prior, posterior = rows[0], rows[1]

        let cells =
            o.Truth
            |> Array.mapi (fun i t ->
                let mses (a: Lorenz96.AblationRow) =
                    a.SeedRmse |> Array.map (fun r -> mse (r[i][longest]))

                if seeds.Length >= 2 then
                    let ratio = Statistics.errorRatio 0.95 (mses posterior) (mses prior)
                    $"F = {t.Forcing:G3}: ratio {ratio.Estimate:F3} [{ratio.Lower:F3}, {ratio.Upper:F3}]"
                else
                    $"F = {t.Forcing:G3}: ratio {mse (posterior.Rmse[i][longest]) / mse (prior.Rmse[i][longest]):F3}")
            |> String.concat "; "

        add
            $"- Ablation, {kind} closure: forecast MSE at {s.Leads[longest]:G3} MTU trained a-posteriori (through the solver) over trained a-priori only (regression onto U), same seeds, data and epochs (below 1: through the solver is better; 95%% t-interval of the ratio from log-MSEs paired by seed): {cells}."

    add
        $"- The closures are deterministic functions of the current X (of X_k alone, or for the CNN of the sites within {Lorenz96.cnnReach s} of k); the truth's U_k scatters widely around its conditional mean (the closure MSE floor), which a stochastic or memory closure would be needed to represent (Arnold et al. 2013). The long-run statistics come from one free run per model (the first network seed's, and one truth run of the same length), with no estimate of their sampling noise; one truth seed is used."

    add ""
    add $"{example} {closureChart}"
    add ""

    Claims.write dir "lorenz96" [|
        for i, k in Array.indexed cnn.Skills do
            if i > 0 then
                for hybrid in hybrids do
                    Claims.ood
                        "lorenz96"
                        $"F = {k.Forcing:G3}, {s.Leads[longest]:G3} MTU"
                        hybrid.Name
                        (seedRuns hybrid i)
                        (pureMl |> Array.map (fun m -> m.Name, seedRuns m i))
        Claims.notTested
            "lorenz96"
            Claims.outcomes[2]
            "the closure is the only unknown: no scientific parameter is fitted"
        yield! Claims.calibrated "lorenz96" o.Uncertainty
    |]

    UncertaintyReport.section
        dir
        "lorenz96"
        $"The MLP hybrid's (pointwise closure's) X forecasts at lead {o.Settings.UncertaintyLead} MTU from the {o.Settings.Starts} test start states (all {o.Settings.K} sites), at F = {o.Settings.Forcing} and out of domain: a deep ensemble (M closures from M network seeds, each trained a-priori for {o.Settings.Uncertainty.Iterations} epochs of regression onto U, not through the solver) and MC dropout (p = dropout probability, T passes; each pass draws one dropout mask and keeps it at every site and step of every forecast). Noise variance: the member's forecast MSE at the same lead from start states of the training run (F = {o.Settings.Forcing}), the same at every forcing. The pure-ML models are compared too: deep ensembles (M members each, from the same seeds; no MC dropout) of the no-physics control (its network regressed a-priori onto the observed tendency for as many epochs), the LSTM and the transformer (at the same fraction of their own iterations). Validation split: forecasts at the same lead from start states of the validation block, the end of the training run held out of every model's training."
        3
        o.Uncertainty
    |> List.iter add

    md.ToString()
