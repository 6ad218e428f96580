/// The "Data efficiency" section of the report (issue #6, experiment (b)): which cases run
/// `Experiments.DataEfficiency` with which settings and shares, and what each case's share selects. Every case runs
/// with its QUICK settings here (four full-settings runs per case would take most of an hour), so the numbers are
/// comparable across shares within a case but not with the full-settings tables above.
module Hybrid.Models.Report.DataEfficiencyReport

open System
open System.Text
open Hybrid.Models.Cases
open Hybrid.Models.Experiments

/// One case of the experiment: file stem, heading, what a share selects (generated per fraction), metric, and the
/// case's run at a fraction → every model's (name, test MSE).
type private Case = {
    Stem: string
    Title: string
    Selects: float -> string
    Metric: string
    Run: float -> (string * float)[]
}

let private cases: Case list =
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
            Metric = "X at the last lead, in domain"
            Run =
                fun f ->
                    let o =
                        Lorenz96.run {
                            Lorenz96.quick with
                                TrainFraction = f
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
            Metric = "thousands of pelts²"
            Run =
                fun f ->
                    (PredatorPrey.run {
                        PredatorPrey.quick with
                            TrainFraction = f
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
            Metric = "(mg/L)², held-out subjects"
            Run =
                fun f ->
                    (Pharmacokinetics.run {
                        Pharmacokinetics.quick with
                            TrainFraction = f
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
            Metric = "°C², 2001–2018"
            Run =
                fun f ->
                    (EnergyBalance.run {
                        EnergyBalance.quick with
                            TrainFraction = f
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
                    $"days 2–{2 * n} ({n} of {Tumour.Truth.ObservationTimes.Length} observation times)"
            Metric = "out-of-domain schedules"
            Run =
                fun f ->
                    (Tumour.run { Tumour.quick with TrainFraction = f }).Models
                    |> Array.map (fun m -> m.Name, m.OutOfDomainMse)
        }
    ]

/// Runs the experiment and returns the section of summary.md (files into `dir`). Full mode: every case at
/// `DataEfficiency.fractions`; `quick`: predator–prey only, at 50% and 100% (what the claim needs).
let write (dir: string) (quick: bool) : string =
    let chosen, fractions =
        if quick then
            cases |> List.filter (fun c -> c.Stem = "predator-prey"), [| 0.5; 1.0 |]
        else
            cases, DataEfficiency.fractions

    let md = StringBuilder()
    let add (s: string) = md.AppendLine s |> ignore
    add "## Data efficiency: 10, 25, 50 and 100% of the training data"
    add ""

    add
        $"Issue #6, experiment (b): the proposal claims the hybrid matches pure machine learning with half the data. Each case below is rerun with a share of its training data (`TrainFraction`), the same reduced data for every model of the case (physics fit, hybrid, LSTM / transformer / MLP, PINN); the test data never change. To bound the run time every case runs with its QUICK settings (fewer iterations and seeds than the tables above; one seed for the baselines), so single numbers are noisy. \"Matches\" means the hybrid's test MSE at 50%% is at most {100.0 * DataEfficiency.Tolerance:G3}%% above the best pure-ML model's at 100%%. Charts show log10 of the test MSE."

    add ""

    for c in chosen do
        let selects =
            fractions
            |> Array.map (fun f -> $"{DataEfficiency.percent f}: {c.Selects f}")
            |> String.concat "; "

        let result = DataEfficiency.run c.Stem fractions c.Run

        md.Append(DataEfficiency.write dir c.Title $"Training data per share: {selects}." c.Metric result)
        |> ignore

    md.ToString()
