/// The "Data efficiency" section of the report (issue #6, experiment (b)): which cases run
/// `Experiments.DataEfficiency` with which settings and shares, and what each case's share selects. Every case runs
/// with its QUICK settings here (four full-settings runs per case would take most of an hour), so the numbers are
/// comparable across shares within a case but not with the full-settings tables above.
module internal Hybrid.Models.Report.DataEfficiencyReport

open System
open System.Text
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Experiments

/// One case of the experiment: file stem, heading, what a share selects (generated per fraction), metric, and the
/// case's run at a fraction → every model's (name, test MSE).
type private Case = {
    Stem: string
    Title: string
    Selects: float -> string
    /// What else the reader must know about the selection in this case.
    Remark: string
    Metric: string
    Run: float -> (string * float)[]
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
                fun f ->
                    let n =
                        Lorenz96.trainingSamples
                            {
                                Lorenz96.quick with
                                    TrainFraction = f
                            }
                            lorenzSamples

                    $"{n} samples ({n * Lorenz96.quick.K} pairs)"
            Remark =
                "The closures and the sequence baselines (LSTM, transformer) see the first samples of the training run in time; the test runs start after the whole training period."
            Metric = "X at the last lead, in domain"
            Run =
                fun f ->
                    let o =
                        Lorenz96.run {
                            Lorenz96.quick with
                                TrainFraction = f
                                // Every network over the experiment's seeds.
                                NetworkSeeds = List.init seeds (fun i -> List.head Lorenz96.quick.NetworkSeeds + i)
                                Uncertainty = CaseUncertainty.off
                        }

                    let last = Lorenz96.quick.Leads.Length - 1

                    o.Models
                    |> Array.map (fun m -> m.Name, m.Skills[0].Rmse[last] * m.Skills[0].Rmse[last])
        }
        {
            Stem = "predator-prey"
            Title = "Predator–prey"
            Selects =
                fun f ->
                    let k =
                        PredatorPrey.selection
                            {
                                PredatorPrey.quick with
                                    TrainFraction = f
                            }
                            ppYears

                    $"the last {k.KeptYears} years, {k.WindowYears}-year windows"
            Remark =
                "Windows shorter than five years where fewer than six years are kept; the LSTM and transformer shorten their context likewise. The forecast still starts from the observed 1915 state."
            Metric = "thousands of pelts²"
            Run =
                fun f ->
                    (PredatorPrey.run {
                        PredatorPrey.quick with
                            TrainFraction = f
                            Seeds = seeds
                            Uncertainty = CaseUncertainty.off
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.TestMse)
        }
        {
            Stem = "pharmacokinetics"
            Title = "Pharmacokinetics"
            Selects =
                fun f ->
                    let kept =
                        Pharmacokinetics.trainingSubjects
                            {
                                Pharmacokinetics.quick with
                                    TrainFraction = f
                            }
                            pkSubjects
                            pkFold

                    let ids = kept |> Array.map (fun x -> string x.Id) |> String.concat ", "
                    $"{kept.Length} of {pkCandidates} subjects (ids {ids})"
            Remark = "The held-out fold is the same at every share."
            Metric = $"(mg/L)², held-out subjects after {Pharmacokinetics.quick.Cutoff} h"
            Run =
                fun f ->
                    (Pharmacokinetics.run {
                        Pharmacokinetics.quick with
                            TrainFraction = f
                            Seeds = seeds
                            Uncertainty = CaseUncertainty.off
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.TestMse)
        }
        {
            Stem = "energy-balance"
            Title = "Energy balance"
            Selects =
                fun f ->
                    let first, kept =
                        EnergyBalance.trainingYears
                            {
                                EnergyBalance.quick with
                                    TrainFraction = f
                            }
                            ebYears

                    $"{ebData.Years[first]}–{ebData.Years[first + kept - 1]} ({kept} years)"
            Remark =
                "Every rollout still starts in 1880 (the forcing is known throughout); only the years kept enter the loss, including the literature model's fitted offset T0."
            Metric = "°C², 2001–2018"
            Run =
                fun f ->
                    (EnergyBalance.run {
                        EnergyBalance.quick with
                            TrainFraction = f
                            Seeds = seeds
                            Uncertainty = CaseUncertainty.off
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.TestMse)
        }
        {
            Stem = "tumour"
            Title = "Tumour growth"
            Selects =
                fun f ->
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
                "All three training schedules at the first observation times, for every model (the LSTM and transformer records and the PINN's data end there too)."
            Metric = "out-of-domain schedules"
            Run =
                fun f ->
                    (Tumour.run {
                        Tumour.quick with
                            TrainFraction = f
                            Seeds = List.init seeds (fun i -> i + 1)
                            Uncertainty = CaseUncertainty.off
                    })
                        .Models
                    |> Array.map (fun m -> m.Name, m.OutOfDomainMse)
        }
    ]

/// Seeds of every network model in the full experiment (one in `--quick`).
[<Literal>]
let Seeds = 3

/// The cases and shares of the experiment (see `write`): every case at `DataEfficiency.fractions` with networks
/// over `Seeds` seeds, or with `quick` Lorenz-96 only at 50% and 100%, one seed.
let private chosen (quick: bool) =
    let seeds = if quick then 1 else Seeds

    let cases =
        if quick then
            cases seeds |> List.filter (fun c -> c.Stem = "lorenz96")
        else
            cases seeds

    seeds, cases, (if quick then [| 0.5; 1.0 |] else DataEfficiency.fractions)

/// The experiment's runs: (case stem, share), every case at every share, in the order `write` reports them.
let runs (quick: bool) : (string * float) list =
    let _, cases, fractions = chosen quick

    [
        for c in cases do
            for f in fractions -> c.Stem, f
    ]

/// One run: the case `stem` with `TrainFraction = share`, every model's (name, test MSE).
let runOne (quick: bool) (stem: string) (share: float) : (string * float)[] =
    let _, cases, _ = chosen quick

    match cases |> List.tryFind (fun c -> c.Stem = stem) with
    | Some c ->
        eprintfn $"report: data efficiency, {c.Title} at {DataEfficiency.percent share} ..."
        c.Run share
    | None ->
        let known = cases |> List.map (fun c -> c.Stem) |> String.concat ", "
        raise (Hybrid.HybridException $"Data efficiency: no case '{stem}' in these settings; the cases are {known}.")

/// The section of summary.md (files into `dir`) from the result of every run of `runs quick`: (stem, share) →
/// (every model's (name, test MSE), wall time in seconds).
let assemble (dir: string) (quick: bool) (results: ((string * float) * ((string * float)[] * float)) list) : string =
    let seeds, cases, fractions = chosen quick

    let md = StringBuilder()
    let cells = ResizeArray<Claims.Cell>()
    let add (s: string) = md.AppendLine s |> ignore
    let shares = fractions |> Array.map DataEfficiency.percent |> String.concat ", "
    add $"## Data efficiency: {shares} of the training data"
    add ""

    add
        $"Issue #6, experiment (b): the proposal claims the hybrid matches pure machine learning with half the data. Each case below is rerun with a share of its training data (`TrainFraction`), the same reduced data for every model of the case (physics fit, hybrid, LSTM / transformer / MLP, PINN); the test data never change. To bound the run time every case runs with its QUICK settings (fewer iterations than the tables above), each model with a network trained from {seeds} seed(s) (the mean test MSE is shown), so single numbers are noisy. \"Matches\" means the hybrid's test MSE at 50%% is at most {100.0 * DataEfficiency.Tolerance:G3}%% above the best pure-ML model's at 100%%. Charts show log10 of the test MSE."

    if quick then
        add ""
        add "`--quick`: one case (Lorenz-96, the cheapest with both a hybrid and a pure-ML model) at 50% and 100% only."

    add ""

    for c in cases do
        let selects =
            fractions
            |> Array.map (fun f -> $"{DataEfficiency.percent f}: {c.Selects f}")
            |> String.concat "; "

        let caseRuns =
            fractions
            |> Array.map (fun f ->
                results
                |> List.tryFind (fun (key, _) -> key = (c.Stem, f))
                |> Option.map snd
                |> Option.defaultWith (fun () ->
                    raise (
                        Hybrid.HybridException
                            $"Data efficiency: no result for {c.Title} at {DataEfficiency.percent f}; run it before assembling the section."
                    )))

        let result = DataEfficiency.ofRuns c.Stem fractions caseRuns
        cells.AddRange(DataEfficiency.claimCells result)

        md.Append(DataEfficiency.write dir c.Title $"Training data per share: {selects}. {c.Remark}" c.Metric result)
        |> ignore

    Claims.write dir "data-efficiency" (cells.ToArray())
    md.ToString()

/// Runs the experiment and returns the section of summary.md (files into `dir`). Full mode: every case at
/// `DataEfficiency.fractions`, networks over `Seeds` seeds; `quick`: Lorenz-96 only (the cheapest case with a
/// hybrid and a pure-ML model), at 50% and 100% (what the claim needs), one seed.
let write (dir: string) (quick: bool) : string =
    let _, _, fractions = chosen quick

    for stem in runs quick |> List.map fst |> List.distinct do
        DataEfficiency.checkFractions stem fractions

    runs quick
    |> List.map (fun (stem, f) ->
        let watch = Diagnostics.Stopwatch.StartNew()
        let rows = runOne quick stem f
        (stem, f), (rows, watch.Elapsed.TotalSeconds))
    |> assemble dir quick
