/// The climate section of the report (issue #16): every model of `ClimateModels.all` over its seeds — precipitation
/// and field errors at each lead in distribution and out of distribution with 95% intervals over seeds, the
/// a-posteriori hybrid's claimed ≥ 20% lower out-of-distribution precipitation MSE against each other model (the
/// verdict per comparison), free runs (stability, mean precipitation map, regional variance, spectra) against the
/// truth's, physics residual, training and inference time against the truth's cost, and the calibration of the
/// regional precipitation from the ensemble of each model's seeds; CSV files, SVG figures and the claims cells.
module internal Hybrid.Models.Report.ClimateReport

open System
open System.Globalization
open System.IO
open System.Text
open Hybrid.Training
open Hybrid.Numerics
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Common.ReportFormat

/// The case's name in rows and files.
[<Literal>]
let Case = "climate"

/// The claimed reduction of the a-posteriori hybrid's out-of-distribution precipitation MSE against every other
/// model (issue #16): at least 20%.
[<Literal>]
let ClaimedReduction = 20.0

let private g3 (v: float) =
    v.ToString("g3", CultureInfo.InvariantCulture)

/// The models in order of first appearance, each with its evaluations in seed order.
let byModel (evaluations: ClimateMetrics.Evaluation list) : (string * ClimateMetrics.Evaluation[])[] =
    evaluations |> List.toArray |> Array.groupBy (fun e -> e.Name)

/// "mean [lower, upper]" of `values` over seeds (95% Student-t interval), the value alone for one seed, and the count
/// of non-finite ones where there are any.
let interval (values: float[]) : string =
    let finite = values |> Array.filter Double.IsFinite

    let note =
        if finite.Length < values.Length then
            $" ({values.Length - finite.Length} of {values.Length} seeds not finite)"
        else
            ""

    match finite.Length with
    | 0 -> "not finite"
    | 1 -> g3 (finite[0]) + note
    | _ ->
        let i = Statistics.meanInterval 0.95 finite
        $"{g3 i.Estimate} [{g3 i.Lower}, {g3 i.Upper}]{note}"

/// A shell the truth leaves empty holds less than this share of the energy of the truth's fullest shell. The
/// generated truth's ω keeps the translation symmetry of its forcing F0 cos(4y) and start (shifts by (0, π) and
/// (π, π/2): only modes with k_y even and k_x + k_y/2 even), so shells 1 and 3 stay empty to round-off; a model that
/// breaks it (a closure of ω that reads q, whose q_sat(y) lacks it) puts energy there, which `emptyShellShare`
/// measures apart, since a log ratio against round-off says nothing of the flow.
[<Literal>]
let EmptyShell = 1e-6

/// The shells 1 … n/2 of `truth` and whether each is populated (E ≥ `EmptyShell` × the fullest shell's E). An n × n
/// grid's spectrum runs to K = ⌊√2 n/2⌉, so n/2 = ⌊K/√2⌉ (exact for every n ≥ 4).
let private shells (truth: Spectrum) (model: Spectrum) : (int * bool)[] =
    let largest = float (truth.Wavenumbers.Length - 1)
    let half = int (Math.Round(largest / sqrt 2.0)) |> max 1
    let last = min half (model.Energy.Length - 1)
    let peak = Array.max truth.Energy[1..last]
    [| for k in 1..last -> k, truth.Energy[k] >= EmptyShell * peak |]

/// The shells 1 … n/2 the truth leaves empty (`EmptyShell`).
let emptyShells (truth: Spectrum) : int[] =
    shells truth truth |> Array.filter (snd >> not) |> Array.map fst

/// Mean |log10(E_model / E_truth)| over the shells 1 … n/2 the truth populates (`EmptyShell`) where the model's E is
/// positive: how far a spectrum lies from the truth's, in decades (NaN for a run that blew up).
let spectrumLogError (truth: Spectrum) (model: Spectrum) : float =
    let logs = [|
        for k, populated in shells truth model do
            let t, m = truth.Energy[k], model.Energy[k]

            if Double.IsNaN m then
                nan
            elif populated && m > 0.0 then
                abs (log10 (m / t))
    |]

    if logs.Length = 0 then nan else Array.average logs

/// The share of the model's energy over the shells 1 … n/2 that lies in shells the truth leaves empty (`EmptyShell`):
/// 0 where the model keeps the truth's symmetry (NaN for a run that blew up).
let emptyShellShare (truth: Spectrum) (model: Spectrum) : float =
    let ks = shells truth model
    let total = ks |> Array.sumBy (fun (k, _) -> model.Energy[k])

    let empty =
        ks
        |> Array.sumBy (fun (k, populated) -> if populated then 0.0 else model.Energy[k])

    if total > 0.0 then empty / total else nan

/// RMS difference of two maps.
let private mapRmse (a: float[]) (b: float[]) =
    sqrt (Array.map2 (fun x y -> (x - y) * (x - y)) a b |> Array.average)

/// The verdict on the issue's claim for one comparison: the a-posteriori hybrid's per-seed MSEs `hybrid` against
/// `other`'s (paired by seed), the ratio's 95% interval (`Statistics.errorRatio`) and `Statistics.verdict` at
/// `ClaimedReduction`; None where the interval cannot be computed (fewer than two seeds, a non-finite or zero MSE).
let comparison (hybrid: float[]) (other: float[]) : (Statistics.Interval * Statistics.Verdict) option =
    let usable (xs: float[]) =
        xs.Length >= 2 && xs |> Array.forall (fun v -> Double.IsFinite v && v > 0.0)

    let n = min hybrid.Length other.Length

    if n >= 2 && usable (hybrid[.. n - 1]) && usable (other[.. n - 1]) then
        let r = Statistics.errorRatio 0.95 (hybrid[.. n - 1]) (other[.. n - 1])
        Some(r, Statistics.verdict ClaimedReduction r)
    else
        None

let private verdictWord (v: Statistics.Verdict) =
    match v with
    | Statistics.Verdict.Holds -> "holds"
    | Statistics.Verdict.Fails -> "fails"
    | Statistics.Verdict.Inconclusive -> "inconclusive"

/// Whether a model of this case counts as pure ML for the claims table: the shared names (`ModelTable.isPureMl`),
/// the CNN emulator or the ConvLSTM.
let isPureMl (name: string) =
    ModelTable.isPureMl name
    || name = ClimateEmulator.Name
    || name = ClimateConvLstm.Name

/// The calibration of each model's ensemble over its seeds (at least two, every forecast finite), recalibrated on
/// the validation block (`CaseUncertainty.combine`).
let calibration (models: (string * ClimateMetrics.Evaluation[])[]) : CaseUncertainty.MethodResult[] =
    let finite (e: ClimateMetrics.Evaluation) =
        e.Uncertainty.Mean |> Array.forall (Array.forall Double.IsFinite)

    models
    |> Array.filter (fun (_, es) -> es.Length >= 2 && es |> Array.forall finite)
    |> Array.map (fun (name, es) -> {
        CaseUncertainty.CandidateOutputs.Name = name
        CaseUncertainty.CandidateOutputs.Members = es |> Array.map (fun e -> e.Uncertainty)
        CaseUncertainty.CandidateOutputs.Dropout = None
    })
    |> CaseUncertainty.combine CaseUncertainty.defaults (Some CaseUncertainty.Validation)

/// The sentence on learning rates: each trained model's rate(s) from `s.Tuned` (`hybrid tune --case climate`),
/// or the defaults where nothing was tuned.
let private rates (s: Climate.Settings) : string =
    if Map.isEmpty s.Tuned then
        $"Learning rates: no tuning file (`tuning/climate.csv`), so every network learns at {g3 s.Rate} and the classic closure's coefficients at {g3 s.CoefficientRate}."
    else
        let chosen =
            s.Tuned
            |> Map.toList
            |> List.map (fun (model, values) ->
                let v =
                    values
                    |> Map.toList
                    |> List.map (fun (name, x) -> $"{name} {g3 x}")
                    |> String.concat ", "

                $"{model}: {v}")
            |> String.concat "; "

        $"Learning rates: each trained model's own, chosen by `hybrid tune --case climate` (the same number of random trials for every model, each one build scored by its best validation error; `tuning/climate.csv`): {chosen}. A model without a row learns at {g3 s.Rate} (networks) or {g3 s.CoefficientRate} (the classic closure's coefficients)."

/// Writes the climate files into `dir` and returns the section's markdown and the rows it derives (free-run
/// comparisons with the truth, the claim's ratios, the calibration).
let write
    (dir: string)
    (s: Climate.Settings)
    (evaluations: ClimateMetrics.Evaluation list)
    (truth: ClimateMetrics.TruthReference)
    : string * ResultRow[] =
    let models = byModel evaluations
    let leads = Array.ofList s.Leads
    let last = leads.Length - 1
    let longest = leads[last]
    let saveEvery = s.Truth.SaveEvery
    let n = s.Truth.ModelCells
    let hybridName = Climate.hybrid.Name
    let hybrid = models |> Array.tryFind (fun (name, _) -> name = hybridName)
    let seedCount = models |> Array.map (snd >> Array.length) |> Array.max
    let derived = ResizeArray<ResultRow>()

    let derive model split metric seed value =
        derived.Add(CasePart.row Case seed model split metric value)

    let stable (es: ClimateMetrics.Evaluation[]) =
        es |> Array.filter (fun e -> Double.IsNaN e.Free.BlowUp)

    // CSV files of every number.
    Csv.write (Path.Combine(dir, "climate-forecasts.csv")) [|
        "model"
        "seed"
        "split"
        "lead_saves"
        "lead_time"
        "omega_mse"
        "q_mse"
        "precipitation_mse"
        "total_precipitation_mse"
    |] [
        for name, es in models do
            for e in es do
                for split, sc in [ "test", e.Test; "ood", e.Ood ] do
                    for i, lead in Array.indexed sc.Leads ->
                        [|
                            name
                            string e.Seed
                            split
                            string lead
                            inv (float lead * saveEvery)
                            inv (sc.Omega[i])
                            inv (sc.Q[i])
                            inv (sc.Precipitation[i])
                            inv (sc.TotalPrecipitation[i])
                        |]
    ]

    Csv.write (Path.Combine(dir, "climate-regions.csv")) [|
        "model"
        "seed"
        "split"
        "region_x"
        "region_y"
        "precipitation_mse"
    |] [
        for name, es in models do
            for e in es do
                for split, sc in [ "test", e.Test; "ood", e.Ood ] do
                    for region, v in Array.indexed sc.PerRegion ->
                        [|
                            name
                            string e.Seed
                            split
                            string (region / s.Regions)
                            string (region % s.Regions)
                            inv v
                        |]
    ]

    let freeRow (name: string) (seed: int) (f: ClimateMetrics.FreeRun) =
        let mapError = mapRmse f.MeanMap truth.Free.MeanMap
        let logError = spectrumLogError truth.Free.Spectrum f.Spectrum
        let emptyShare = emptyShellShare truth.Free.Spectrum f.Spectrum
        let rate = Array.sum f.RegionMean
        let variance = Array.average f.RegionVariance
        derive name "free" "map_rmse" seed mapError
        derive name "free" "spectrum_log_error" seed logError
        derive name "free" "empty_shell_energy_share" seed emptyShare
        derive name "free" "domain_precipitation_rate" seed rate
        derive name "free" "regional_variance" seed variance
        derive name "free" "energy" seed (Array.sum f.Spectrum.Energy)
        derive name "free" "enstrophy" seed (Array.sum f.Spectrum.Enstrophy)

        [|
            name
            string seed
            inv f.BlowUp
            inv rate
            inv mapError
            inv variance
            inv (Array.sum f.Spectrum.Energy)
            inv (Array.sum f.Spectrum.Enstrophy)
            inv logError
            inv emptyShare
        |]

    Csv.write (Path.Combine(dir, "climate-free-runs.csv")) [|
        "model"
        "seed"
        "blowup_time"
        "domain_precipitation_rate"
        "map_rmse"
        "regional_variance"
        "energy"
        "enstrophy"
        "spectrum_log_error"
        "empty_shell_energy_share"
    |] [
        yield freeRow "truth" 0 truth.Free
        for name, es in models do
            for e in es -> freeRow name e.Seed e.Free
    ]

    Csv.write (Path.Combine(dir, "climate-spectra.csv")) [| "model"; "seed"; "k"; "energy"; "enstrophy" |] [
        let rows (name: string) (seed: int) (sp: Spectrum) = [
            for k in 0 .. sp.Wavenumbers.Length - 1 ->
                [|
                    name
                    string seed
                    inv (sp.Wavenumbers[k])
                    inv (sp.Energy[k])
                    inv (sp.Enstrophy[k])
                |]
        ]

        yield! rows "truth" 0 truth.Free.Spectrum

        for name, es in models do
            for e in es do
                yield! rows name e.Seed e.Free.Spectrum
    ]

    Csv.write (Path.Combine(dir, "climate-precipitation-maps.csv")) [| "model"; "seed"; "x"; "y"; "rate" |] [
        let rows (name: string) (seed: int) (map: float[]) = [
            for c in 0 .. map.Length - 1 -> [| name; string seed; string (c / n); string (c % n); inv (map[c]) |]
        ]

        yield! rows "truth" 0 truth.Free.MeanMap

        for name, es in models do
            yield! rows name (es[0].Seed) (es[0].Free.MeanMap)
    ]

    // Figures: precipitation maps, spectra, error against lead.
    let panel (title: string) (map: float[]) : Heatmap.Panel = {
        Title = title
        Rows = n
        Columns = n
        // The maps are stored x-major; a panel is row-major with y up.
        Values = Array.init (n * n) (fun c -> map[(c % n) * n + c / n])
    }

    let maps =
        Heatmap.save
            dir
            "climate-precipitation-maps"
            $"Mean precipitation rate over the free runs ({float s.FreeRunIntervals * saveEvery:G3} time units from the test block's start; first seed of each model; grey: blew up)"
            "precipitation per unit area and time"
            (Array.append
                [| panel "truth (coarse-grained)" truth.Free.MeanMap |]
                (models
                 |> Array.mapi (fun i (name, es) -> panel $"{i + 1}. {name}" (es[0].Free.MeanMap))))

    let logSpectrum (sp: Spectrum) = [|
        for k in 1 .. sp.Wavenumbers.Length - 1 do
            if sp.Energy[k] > 0.0 then
                sp.Wavenumbers[k], log10 (sp.Energy[k])
    |]

    let meanSpectrum (es: ClimateMetrics.Evaluation[]) : Spectrum option =
        match stable es with
        | [||] -> None
        | ok ->
            let first = ok[0].Free.Spectrum

            Some {
                first with
                    Energy =
                        Array.init first.Energy.Length (fun k ->
                            ok |> Array.averageBy (fun e -> e.Free.Spectrum.Energy[k]))
                    Enstrophy =
                        Array.init first.Enstrophy.Length (fun k ->
                            ok |> Array.averageBy (fun e -> e.Free.Spectrum.Enstrophy[k]))
            }

    let spectra =
        LineChart.save dir "climate-spectra" {
            Title = $"Kinetic energy spectrum of the free runs' last quarter (mean over stable seeds; truth as dots)"
            XLabel = "wavenumber k"
            YLabel = "log10 E(k)"
            Observed = logSpectrum truth.Free.Spectrum
            Series =
                models
                |> Array.choose (fun (name, es) -> meanSpectrum es |> Option.map (fun sp -> name, logSpectrum sp))
            Split = 0.0
        }

    let meanOver (es: ClimateMetrics.Evaluation[]) (pick: ClimateMetrics.Evaluation -> float) =
        es |> Array.averageBy pick

    let errorChart (file: string) (what: string) (pick: ClimateMetrics.Evaluation -> ClimateMetrics.SplitScores) =
        LineChart.save dir file {
            Title = $"Regional precipitation MSE against lead, {what} (mean over seeds)"
            XLabel = "lead (time units)"
            YLabel = "precipitation MSE"
            Observed = [||]
            Series =
                models
                |> Array.map (fun (name, es) ->
                    name,
                    leads
                    |> Array.mapi (fun i lead ->
                        float lead * saveEvery, meanOver es (fun e -> (pick e).Precipitation[i])))
            Split = 0.0
        }

    let testChart = errorChart "climate-error-test" "test block" (fun e -> e.Test)

    let oodChart =
        errorChart "climate-error-ood" "out of distribution (1.5 F0)" (fun e -> e.Ood)

    // The markdown.
    let md = StringBuilder()
    let add (line: string) = md.AppendLine line |> ignore
    let t = s.Truth

    let seeds =
        models
        |> Array.tryHead
        |> Option.map (snd >> Array.map (fun e -> string e.Seed))
        |> Option.defaultValue [||]

    let seedList = String.Join(", ", seeds)

    let leadList =
        String.Join(", ", leads |> Array.map (fun l -> g3 (float l * saveEvery)))

    add "## Climate GCM-lite (twin experiment, flagship): a CNN sub-grid closure learned through the solver"
    add ""

    add
        $"Truth: a forced barotropic vorticity equation on a doubly periodic β-plane [0, 2π]² with a humidity q (limited flux advection, evaporation towards a warm-equator saturation q_sat(y), smooth condensation) and the accumulated precipitation P, on a fine grid of {t.Cells}² cells (SSP-RK3, Δt = {t.Dt:G3}, ν = {t.Nu:G3}), spun up for {t.SpinUp:G3} time units, saved every {saveEvery:G3} and block-averaged to the models' {n}² grid. Splits in time along one run: training {float s.TrainIntervals * saveEvery:G3} time units, validation {float s.ValidationIntervals * saveEvery:G3} (early stopping, recalibration), test the rest ({float (t.Intervals - s.TrainIntervals - s.ValidationIntervals) * saveEvery:G3}); out of distribution: a run with {t.OodForcingFactor:G3} × the forcing F0, branched from the spun-up state, {t.OodAdjust:G3} time units of adjustment, then {float t.OodIntervals * saveEvery:G3} of test. Every model runs on the coarse grid with Heun at Δt = {s.ModelDt:G3} and ν = {s.ModelNu:G3}: no model shares the truth's grid, scheme or step. Models with a network are trained on the same windows, objective (normalised MSE of ω, q and P over the rollout), budget ({s.Epochs} epochs of {s.Batch} windows, horizon growing from {s.Horizon.Start} to {s.Horizon.Max} saves) and early-stopping rule, each from {seeds.Length} seed(s) ({seedList}); models without randomness give the same numbers at every seed. Precipitation is regional: P(t0 + lead) − P(t0) summed over {s.Regions} × {s.Regions} blocks (times the cell area); errors are scored at leads {leadList} time units from every start of the test block and of the out-of-distribution run. Truth generation took {truth.Seconds:F1} s."

    add ""
    add (rates s)
    add ""

    add
        "No PINN and no transformer. A PINN fits one space-time solution on one domain, but every forecast here starts from a state it has never seen, over a window with nothing observed inside it, and the unknown (the sub-grid tendency) has no equation whose residual it could minimise: with the known equations' residual alone it would learn the coarse physics (the first row), and learning the sub-grid term from the training run makes it the hybrid. A transformer over the fields' patches, at the emulator's weight count and with the training block's few dozen saves, would be a weaker version of the CNN emulator rather than a credible baseline; the ConvLSTM is the recurrent sequence model."

    add ""

    add
        "The a-posteriori hybrid's model, as the DSL text it is compiled from (the coarse physics is the same without the two `closure` lines and their terms):"

    add ""
    add "```text"
    add ((Climate.modelText s s.Hidden).TrimEnd())
    add "```"
    add ""

    add
        $"Regional precipitation MSE at lead {g3 (float longest * saveEvery)} time units (the \"mse\" of the results file), mean [95%% t-interval over seeds]; total: the domain-integrated precipitation's MSE:"

    add ""
    add "| model | test: regional | test: total | out of distribution: regional | out of distribution: total |"
    add "|---|---:|---:|---:|---:|"

    for name, es in models do
        let cell (pick: ClimateMetrics.Evaluation -> float) = interval (es |> Array.map pick)

        add
            $"| {name} | {cell (fun e -> e.Test.Precipitation[last])} | {cell (fun e -> e.Test.TotalPrecipitation[last])} | {cell (fun e -> e.Ood.Precipitation[last])} | {cell (fun e -> e.Ood.TotalPrecipitation[last])} |"

    add ""

    // The issue's claim, one verdict per comparison.
    match hybrid with
    | None -> add $"No model named \"{hybridName}\": the claim is not tested."
    | Some(_, hs) ->
        add
            $"The issue's goal: the a-posteriori hybrid has at least {ClaimedReduction:F0}%% lower out-of-distribution precipitation MSE than each other model. Ratio of geometric means over seeds with its 95%% t-interval from log-MSE differences paired by seed; it holds where the whole interval lies at or below {1.0 - ClaimedReduction / 100.0:F2}, fails where it lies wholly above:"

        add ""

        for split, pick in
            [
                "out of distribution", (fun (e: ClimateMetrics.Evaluation) -> e.Ood)
                "test", (fun e -> e.Test)
            ] do
            for name, es in models do
                if name <> hybridName then
                    let h = hs |> Array.map (fun e -> (pick e).Precipitation[last])
                    let o = es |> Array.map (fun e -> (pick e).Precipitation[last])

                    match comparison h o with
                    | Some(r, v) ->
                        derive $"{hybridName} / {name}" split "precipitation_mse_ratio" 0 r.Estimate
                        derive $"{hybridName} / {name}" split "precipitation_mse_ratio_lower" 0 r.Lower
                        derive $"{hybridName} / {name}" split "precipitation_mse_ratio_upper" 0 r.Upper

                        add
                            $"- {split}: hybrid / {name}: {r.Estimate:F2} [{r.Lower:F2}, {r.Upper:F2}], {r.Count} seeds: **{verdictWord v}**."
                    | None ->
                        add
                            $"- {split}: hybrid / {name}: no interval (fewer than two seeds, or an MSE that is not finite and positive): inconclusive."

        add ""

    add
        "Field errors at each lead, mean over seeds (ω and q MSE against the coarse-grained truth; precipitation: regional MSE):"

    add ""
    add "| model | split | lead | ω MSE | q MSE | precipitation MSE |"
    add "|---|---|---:|---:|---:|---:|"

    for name, es in models do
        for split, pick in
            [
                "test", (fun (e: ClimateMetrics.Evaluation) -> e.Test)
                "out of distribution", (fun e -> e.Ood)
            ] do
            for i, lead in Array.indexed leads do
                add
                    $"| {name} | {split} | {g3 (float lead * saveEvery)} | {g3 (meanOver es (fun e -> (pick e).Omega[i]))} | {g3 (meanOver es (fun e -> (pick e).Q[i]))} | {g3 (meanOver es (fun e -> (pick e).Precipitation[i]))} |"

    add ""

    add
        $"Per region ({s.Regions} × {s.Regions}) at lead {g3 (float longest * saveEvery)}: the spread of the regions' precipitation MSE (mean over seeds); every region's in `climate-regions.csv`:"

    add ""
    add "| model | split | best region | median region | worst region (x, y) |"
    add "|---|---|---:|---:|---:|"

    for name, es in models do
        for split, pick in
            [
                "test", (fun (e: ClimateMetrics.Evaluation) -> e.Test)
                "out of distribution", (fun e -> e.Ood)
            ] do
            let regions =
                Array.init (s.Regions * s.Regions) (fun r -> meanOver es (fun e -> (pick e).PerRegion[r]))

            let sorted = regions |> Array.indexed |> Array.sortBy snd
            let worst, highest = sorted[sorted.Length - 1]
            let wx, wy = worst / s.Regions, worst % s.Regions
            let lowest, median = snd (sorted[0]), snd (sorted[sorted.Length / 2])

            add $"| {name} | {split} | {g3 lowest} | {g3 median} | {g3 highest} ({wx}, {wy}) |"

    add ""

    let freeTime = float s.FreeRunIntervals * saveEvery

    let emptyList =
        match emptyShells truth.Free.Spectrum with
        | [||] -> "none here"
        | ks -> "k = " + (ks |> Array.map string |> String.concat ", ")

    add
        $"Free runs of {freeTime:G3} time units ({s.FreeRunIntervals} saves, {float s.FreeRunIntervals / float s.Horizon.Max:G3} × the largest training horizon) from the test block's start, against the truth over the same span. Unstable: ω not finite or |ω| above {ClimateMetrics.BlowUpFactor:G3} × the truth's largest. Precipitation rate: the domain integral per unit time; map RMSE: of the mean precipitation rate per cell against the truth's; regional variance: each region's precipitation rate's variance over the run's intervals, mean over regions; energy and enstrophy: Σ E(k) and Σ Z(k) of ω over the run's last quarter (`Spectra`: Z(k) = ½ Σ over the shell of |ω̂|², E(k) the same over |k|²); spectrum error: mean |log10 E/E_truth| over the shells k = 1 … {n / 2} the truth populates (E at least {EmptyShell:G3} × its fullest shell's); empty shells: the share of the run's energy in the shells the truth leaves empty ({emptyList}: a symmetry of the generated truth's forcing and start keeps them at round-off; a model that breaks it fills them). Mean over the stable seeds:"

    add ""

    add
        "| model | stable seeds | first blow-up | precipitation rate | map RMSE | regional variance | energy | enstrophy | spectrum error (decades) | empty shells |"

    add "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    let tf = truth.Free

    add
        $"| truth | — | — | {g3 (Array.sum tf.RegionMean)} | 0 | {g3 (Array.average tf.RegionVariance)} | {g3 (Array.sum tf.Spectrum.Energy)} | {g3 (Array.sum tf.Spectrum.Enstrophy)} | 0 | {g3 (emptyShellShare tf.Spectrum tf.Spectrum)} |"

    for name, es in models do
        let ok = stable es
        let blown = es |> Array.filter (fun e -> not (Double.IsNaN e.Free.BlowUp))

        let first =
            if blown.Length = 0 then
                "—"
            else
                g3 (blown |> Array.map (fun e -> e.Free.BlowUp) |> Array.min)

        let mean (pick: ClimateMetrics.Evaluation -> float) =
            if ok.Length = 0 then
                "—"
            else
                g3 (ok |> Array.averageBy pick)

        add
            $"| {name} | {ok.Length} of {es.Length} | {first} | {mean (fun e -> Array.sum e.Free.RegionMean)} | {mean (fun e -> mapRmse e.Free.MeanMap tf.MeanMap)} | {mean (fun e -> Array.average e.Free.RegionVariance)} | {mean (fun e -> Array.sum e.Free.Spectrum.Energy)} | {mean (fun e -> Array.sum e.Free.Spectrum.Enstrophy)} | {mean (fun e -> spectrumLogError tf.Spectrum e.Free.Spectrum)} | {mean (fun e -> emptyShellShare tf.Spectrum e.Free.Spectrum)} |"

    add ""

    add
        $"Cost and physics residual. Inference: wall time of the free run per simulated time unit (one state, {s.Threads} libtorch thread(s)); the truth: its generation per simulated time unit of the fine grid ({truth.SecondsPerTime:G3} s). Physics residual: each saved state of the test forecasts flowed one save interval by the coarse physics alone, RMS of the ω difference per unit time (0 up to round-off for the physics itself; the truth's own test windows give {g3 truth.PhysicsResidual}, the size of the real sub-grid effect):"

    add ""
    add "| model | training s | epochs | inference s per time unit | ÷ truth's | physics residual |"
    add "|---|---:|---:|---:|---:|---:|"

    for name, es in models do
        let perTime = meanOver es (fun e -> e.InferenceSecondsPerTime)

        add
            $"| {name} | {meanOver es (fun e -> e.TrainSeconds):F1} | {es[0].TrainLosses.Length} | {g3 perTime} | {g3 (perTime / truth.SecondsPerTime)} | {g3 (meanOver es (fun e -> e.PhysicsResidual))} |"

    add ""

    match hybrid with
    | Some(_, hs) ->
        let ratio = meanOver hs (fun e -> e.InferenceSecondsPerTime) / truth.SecondsPerTime

        let word = if ratio <= 0.1 then "holds" else "fails"

        add
            $"- The issue's cost goal (the coarse hybrid at most 1/10 of the truth's cost per simulated time unit) {word} here: {ratio:F3} of it. Both are measured in the same process and thread count; the truth also pays for its fine grid's spin-up and the out-of-distribution run, counted in its simulated time."
    | None -> ()

    for name, es in models do
        let ok = stable es

        if ok.Length < es.Length then
            add
                $"- {name}: {es.Length - ok.Length} of {es.Length} free runs blew up (first at {g3 (
                                                                                                    es
                                                                                                    |> Array.map (fun e -> e.Free.BlowUp)
                                                                                                    |> Array.filter (not << Double.IsNaN)
                                                                                                    |> Array.min
                                                                                                )} time units)."

    add ""
    add $"{maps}"
    add ""
    add $"{spectra} {testChart} {oodChart}"
    add ""

    let results = calibration models

    let hybridCalibration =
        results
        |> Array.map (fun r ->
            if r.Model = hybridName then
                { r with Model = "hybrid" }
            else
                r)

    let pureMl =
        models
        |> Array.filter (fun (name, _) -> isPureMl name)
        |> Array.map (fun (name, es) -> name, es |> Array.map (fun e -> e.Ood.Precipitation[last]))

    Claims.write dir Case [|
        match hybrid with
        | Some(_, hs) ->
            Claims.ood
                Case
                $"out of distribution (1.5 F0), regional precipitation at lead {g3 (float longest * saveEvery)}"
                hybridName
                (hs |> Array.map (fun e -> e.Ood.Precipitation[last]))
                pureMl
        | None -> Claims.notTested Case (Claims.outcomes[0]) "no a-posteriori hybrid in this run"
        Claims.notTested Case (Claims.outcomes[1]) "the climate case has no data-efficiency runs yet"
        Claims.notTested Case (Claims.outcomes[2]) "the closure is the only unknown: no scientific parameter is fitted"
        yield! Claims.calibrated Case hybridCalibration
    |]

    UncertaintyReport.section
        dir
        Case
        $"The regional precipitation at lead {g3 (float longest * saveEvery)} time units ({s.Regions * s.Regions} regions per window) from every start of the validation block, the test block and the out-of-distribution run, predicted by each model's ensemble over its {seedCount} seeds (members: the models trained from those seeds; a model without randomness has no spread), with the aleatoric noise variance of each member's training residual (its regional precipitation MSE at that lead on the training windows). The pure deep ensemble with no MC dropout: the closures have no dropout. A model with a forecast that is not finite is left out."
        5
        results
    |> List.iter add

    md.ToString(), Array.append (derived.ToArray()) (Hybrid.Models.Tasks.UncertaintyRows.calibration Case results)
