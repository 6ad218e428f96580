/// The "Data efficiency" section of the report (issue #6, experiment (b)): which cases run
/// `Experiments.DataEfficiency` with which settings, shares and training subsets, and what each case's share and
/// subset select. Every case runs with its QUICK settings here (four full-settings runs per case and subset would
/// take hours), so the numbers are comparable across shares within a case but not with the full-settings tables
/// above.
module internal Hybrid.Models.Report.DataEfficiencyReport

open System
open System.Text
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Experiments

/// One case of the experiment: file stem, heading, what a share and subset select (generated per fraction and
/// subset seed), metric, and the case's run at a fraction and subset seed → every model's (name, test MSE).
type private Case = {
    Stem: string
    Title: string
    Selects: float -> int -> string
    /// What else the reader must know about the selection in this case.
    Remark: string
    Metric: string
    Run: float -> int -> (string * float)[]
    /// Whether a subset also redraws the observation noise (the tumour twin): its runs differ even where every
    /// subset selects the same data.
    NoiseSubsets: bool
}

/// The cases, every model with a network trained from `seeds` seeds (where the case supports it; see `write`).
let private cases (seeds: int) : Case list =
    let ppYears =
        PredatorPrey.load () |> fst |> Array.filter (fun y -> y <= 1915) |> Array.length

    let ebData = EnergyBalance.load ()

    let ebYears =
        ebData.Years
        |> Array.filter (fun y -> y <= EnergyBalance.quick.CutoffYear)
        |> Array.length

    // The quick settings evaluate one fold; its training subjects are the subjects outside it.
    let pkSubjects = Pharmacokinetics.load ()
    let pkFold = List.last Pharmacokinetics.quick.Folds

    let pkCandidates =
        (Pharmacokinetics.trainingSubjects Pharmacokinetics.quick pkSubjects pkFold).Length

    let lorenzSamples =
        int (Math.Round(Lorenz96.quick.TrainSpan / Lorenz96.quick.SampleInterval))

    [
        {
            Stem = "lorenz96"
            Title = "Two-scale Lorenz-96"
            Selects =
                fun f k ->
                    let first, n =
                        Lorenz96.trainingBlock
                            {
                                Lorenz96.quick with
                                    TrainFraction = f
                                    TrainSubset = k
                            }
                            lorenzSamples

                    $"samples {first + 1}–{first + n} of {lorenzSamples} ({n * Lorenz96.quick.K} pairs)"
            Remark =
                "The closures, the no-physics control (neural ODE) and the sequence baselines (LSTM, transformer) see one contiguous block of samples of the training run (a random block per subset); the test runs start after the whole training period."
            Metric = "X at the last lead, in domain"
            NoiseSubsets = false
            Run =
                fun f k ->
                    let o =
                        Lorenz96.run {
                            Lorenz96.quick with
                                TrainFraction = f
                                TrainSubset = k
                                // Every network over the experiment's seeds.
                                NetworkSeeds = List.init seeds (fun i -> List.head Lorenz96.quick.NetworkSeeds + i)
                                Uncertainty = CaseUncertainty.off
                                // The hyper-parameters `hybrid tune` chose, as in the case's own section.
                                Tuned = Hybrid.Models.Tuning.TuningFile.load "lorenz96"
                        }

                    let last = Lorenz96.quick.Leads.Length - 1

                    o.Models
                    |> Array.map (fun m -> m.Name, m.Skills[0].Rmse[last] * m.Skills[0].Rmse[last])
        }
        {
            Stem = "predator-prey"
            Title = "Predator–prey"
            Selects =
                fun f k ->
                    let kept =
                        PredatorPrey.selection
                            {
                                PredatorPrey.quick with
                                    TrainFraction = f
                                    TrainSubset = k
                            }
                            ppYears

                    $"{1900 + kept.FirstYear}–{1900 + kept.FirstYear + kept.KeptYears - 1} ({kept.KeptYears} years, {kept.WindowYears}-year windows)"
            Remark =
                "A random block of contiguous years per subset; windows shorter than five years where fewer than six years are kept. The forecast still starts from the observed 1915 state (the LSTM and transformer from as many years up to 1915 as were kept, as context)."
            Metric = "thousands of pelts²"
            NoiseSubsets = false
            Run =
                fun f k ->
                    (PredatorPrey.run {
                        PredatorPrey.quick with
                            TrainFraction = f
                            TrainSubset = k
                            Seeds = seeds
                            Uncertainty = CaseUncertainty.off
                            // The hyper-parameters `hybrid tune` chose, as in the case's own section.
                            Tuned = Hybrid.Models.Tuning.TuningFile.load "predator-prey"
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.TestMse)
        }
        {
            Stem = "pharmacokinetics"
            Title = "Pharmacokinetics"
            Selects =
                fun f k ->
                    let kept =
                        Pharmacokinetics.trainingSubjects
                            {
                                Pharmacokinetics.quick with
                                    TrainFraction = f
                                    TrainSubset = k
                            }
                            pkSubjects
                            pkFold

                    let ids = kept |> Array.map (fun x -> string x.Id) |> String.concat ", "
                    $"{kept.Length} of {pkCandidates} subjects (ids {ids})"
            Remark = "A random choice of subjects per subset; the held-out fold is the same at every share."
            Metric = $"(mg/L)², held-out subjects after {Pharmacokinetics.quick.Cutoff} h"
            NoiseSubsets = false
            Run =
                fun f k ->
                    (Pharmacokinetics.run {
                        Pharmacokinetics.quick with
                            TrainFraction = f
                            TrainSubset = k
                            Seeds = seeds
                            Uncertainty = CaseUncertainty.off
                            // The hyper-parameters `hybrid tune` chose, as in the case's own section.
                            Tuned = Hybrid.Models.Tuning.TuningFile.load "pharmacokinetics"
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.TestMse)
        }
        {
            Stem = "energy-balance"
            Title = "Energy balance"
            Selects =
                fun f k ->
                    let first, kept =
                        EnergyBalance.trainingYears
                            {
                                EnergyBalance.quick with
                                    TrainFraction = f
                                    TrainSubset = k
                            }
                            ebYears

                    $"{ebData.Years[first]}–{ebData.Years[first + kept - 1]} ({kept} years)"
            Remark =
                "A random block of contiguous years per subset. Every rollout still starts in 1880 (the forcing is known throughout); only the years kept enter the loss, including the literature model's fitted offset T0."
            Metric = "°C², 2001–2018"
            NoiseSubsets = false
            Run =
                fun f k ->
                    (EnergyBalance.run {
                        EnergyBalance.quick with
                            TrainFraction = f
                            TrainSubset = k
                            Seeds = seeds
                            Uncertainty = CaseUncertainty.off
                            // The hyper-parameters `hybrid tune` chose, as in the case's own section.
                            Tuned = Hybrid.Models.Tuning.TuningFile.load "energy-balance"
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.TestMse)
        }
        {
            Stem = "tumour"
            Title = "Tumour growth"
            Selects =
                fun f _ ->
                    let n = Tumour.trainingTimes { Tumour.quick with TrainFraction = f }
                    let times = Tumour.Truth.ObservationTimes
                    let last = times[n - 1]

                    let days =
                        if n = 1 then
                            $"day {last:G3}"
                        else
                            $"days {times[0]:G3}–{last:G3}"

                    $"{days} ({n} of {times.Length} observation times)"
            Remark =
                "All three training schedules at the first observation times, for every model (the LSTM and transformer records and the PINN's data end there too). The observation times are the same for every subset (every model runs from day 0, and a later block of one time would leave the sequence models no transition): a subset here is another draw of the observation noise, the same draw at every share."
            Metric = "out-of-domain schedules"
            NoiseSubsets = true
            Run =
                fun f k ->
                    (Tumour.run {
                        Tumour.quick with
                            TrainFraction = f
                            TrainSubset = k
                            Seeds = List.init seeds (fun i -> i + 1)
                            Uncertainty = CaseUncertainty.off
                            // The hyper-parameters `hybrid tune` chose, as in the case's own section.
                            Tuned = Hybrid.Models.Tuning.TuningFile.load "tumour"
                            // The model table only: the ablation is the case section's.
                            Ablation = false
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.OutOfDomainMse)
        }
    ]

/// Seeds of every network model, in the full experiment and in `--quick` alike (the interval is over the training
/// subsets; one seed keeps the full experiment, every case at four shares, within the report's time budget).
[<Literal>]
let Seeds = 1

/// Random training subsets per share (the replicates), in the full experiment and in `--quick`: subset seeds
/// 1 … `Subsets` (`Settings.TrainSubset`).
[<Literal>]
let Subsets = 3

/// The subset seeds every share runs.
let subsets = Array.init Subsets (fun i -> i + 1)

/// The cases and shares of the experiment (see `write`): every case at `DataEfficiency.fractions`, or with `quick`
/// Lorenz-96 only at 50% and 100%; networks over `Seeds` seeds and `subsets` in both.
let private chosen (quick: bool) =
    let seeds = Seeds

    let cases =
        if quick then
            cases seeds |> List.filter (fun c -> c.Stem = "lorenz96")
        else
            cases seeds

    seeds, cases, (if quick then [| 0.5; 1.0 |] else DataEfficiency.fractions)

/// The subset whose run stands for subset `k` of `c` at share `f`: the first where every subset selects the same
/// data (e.g. at 100%) and the case draws no noise per subset, since those runs are the same run; `k` otherwise.
let private runFor (c: Case) (f: float) (k: int) =
    let selections = subsets |> Array.map (c.Selects f) |> Array.distinct

    if selections.Length = 1 && not c.NoiseSubsets then
        subsets[0]
    else
        k

/// The experiment's runs: (case stem, share, subset seed), every case at every share and subset, in the order
/// `write` reports them; one run per share where the subsets are the same run (`runFor`, e.g. at 100%).
let runs (quick: bool) : (string * float * int) list =
    let _, cases, fractions = chosen quick

    [
        for c in cases do
            for f in fractions do
                for k in subsets |> Array.map (runFor c f) |> Array.distinct -> c.Stem, f, k
    ]

/// One run: the case `stem` with `TrainFraction = share` and `TrainSubset = subset`, every model's (name, test MSE).
let runOne (quick: bool) (stem: string) (share: float) (subset: int) : (string * float)[] =
    let _, cases, _ = chosen quick

    match cases |> List.tryFind (fun c -> c.Stem = stem) with
    | Some c ->
        eprintfn $"report: data efficiency, {c.Title} at {DataEfficiency.percent share}, subset {subset} ..."
        c.Run share subset
    | None ->
        let known = cases |> List.map (fun c -> c.Stem) |> String.concat ", "
        raise (Hybrid.HybridException $"Data efficiency: no case '{stem}' in these settings; the cases are {known}.")

/// What `c` trains on at share `f`, over the subsets: one text where every subset selects the same (e.g. at 100%).
let private selection (c: Case) (f: float) =
    let each = subsets |> Array.map (c.Selects f)

    if Array.distinct each |> Array.length = 1 then
        $"{DataEfficiency.percent f}: {each[0]} (every subset)"
    else
        let listed =
            Array.map2 (fun k s -> $"subset {k}: {s}") subsets each |> String.concat "; "

        $"{DataEfficiency.percent f}: {listed}"

/// The section of summary.md (files into `dir`) from the result of every run of `runs quick`: (stem, share, subset)
/// → (every model's (name, test MSE), wall time in seconds).
let assemble
    (dir: string)
    (quick: bool)
    (results: ((string * float * int) * ((string * float)[] * float)) list)
    : string =
    let seeds, cases, fractions = chosen quick

    let md = StringBuilder()
    let cells = ResizeArray<Claims.Cell>()
    let add (s: string) = md.AppendLine s |> ignore
    let shares = fractions |> Array.map DataEfficiency.percent |> String.concat ", "
    add $"## Data efficiency: {shares} of the training data"
    add ""

    add
        $"Issue #6, experiment (b): the proposal claims the hybrid matches pure machine learning with half the data. Each case below is rerun with a share of its training data (`TrainFraction`), the same reduced data for every model of the case (physics fit, hybrid, LSTM / transformer / MLP, PINN); the test data never change. Each share runs on {Subsets} random subsets of the training data (`TrainSubset` 1–{Subsets}: a random contiguous block of years, samples or times for time series, a random choice of subjects for exchangeable ones; at 100%% every subset is the whole set, so one run stands for all of them, except in the tumour twin, whose subsets redraw the observation noise), with the case's network seeds as they are. To bound the run time every case runs with its QUICK settings (fewer iterations than the tables above), each model with a network trained from {seeds} seed(s) (the mean test MSE over them per run); the tables show the mean over the subsets, the CSV files every replicate. The claim is decided on the ratio MSE(hybrid at 50%%, subset r) / MSE(best pure-ML model at 100%%, subset r) with a {100.0 * DataEfficiency.Level:G3}%% Student-t interval over the subsets on the log scale: it holds when the whole interval is at most {1.0 + DataEfficiency.Tolerance:F2} (at most {100.0 * DataEfficiency.Tolerance:G3}%% above), fails when the whole interval is above, and is inconclusive otherwise. The interval covers the choice of training subset only (the network seeds are the same in every replicate). Charts show log10 of the mean test MSE."

    if quick then
        add ""

        add
            $"`--quick`: one case (Lorenz-96, the cheapest with both a hybrid and a pure-ML model) at 50%% and 100%% only, {Subsets} subsets."

    add ""

    for c in cases do
        let selects = fractions |> Array.map (selection c) |> String.concat ". "

        let caseRuns =
            fractions
            |> Array.map (fun f ->
                subsets
                |> Array.map (fun k ->
                    results
                    |> List.tryFind (fun (key, _) -> key = (c.Stem, f, runFor c f k))
                    |> Option.map snd
                    |> Option.defaultWith (fun () ->
                        raise (
                            Hybrid.HybridException
                                $"Data efficiency: no result for {c.Title} at {DataEfficiency.percent f}, subset {k}; run it before assembling the section."
                        ))))

        let result = DataEfficiency.ofRuns c.Stem fractions subsets caseRuns
        cells.AddRange(DataEfficiency.claimCells result)

        md.Append(DataEfficiency.write dir c.Title $"Training data per share. {selects}. {c.Remark}" c.Metric result)
        |> ignore

    Claims.write dir "data-efficiency" (cells.ToArray())
    md.ToString()

/// Runs the experiment and returns the section of summary.md (files into `dir`). Full mode: every case at
/// `DataEfficiency.fractions`; `quick`: Lorenz-96 only (the cheapest case with a hybrid and a pure-ML model), at 50%
/// and 100% (what the claim needs); networks over `Seeds` seeds and `Subsets` subsets per share in both (`runs`).
let write (dir: string) (quick: bool) : string =
    let _, _, fractions = chosen quick

    for stem in runs quick |> List.map (fun (stem, _, _) -> stem) |> List.distinct do
        DataEfficiency.checkRuns stem fractions subsets

    runs quick
    |> List.map (fun (stem, f, k) ->
        let watch = Diagnostics.Stopwatch.StartNew()
        let rows = runOne quick stem f k
        (stem, f, k), (rows, watch.Elapsed.TotalSeconds))
    |> assemble dir quick
