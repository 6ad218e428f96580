/// The climate case (issue #16) as tasks: one task per model of `ClimateModels.all` and seed, each building the model
/// on the case's data (`Climate.ModelBuilder.Build` with the task's seed), measuring it (`ClimateMetrics.evaluate`)
/// and the truth's reference values, and returning them as result rows and series; the section assembled from them by
/// `ClimateReport.write`. Every model runs at every seed, so a model added to `ClimateModels.all` joins the plan, the
/// tables, the claim and the calibration without a change here.
module Hybrid.Models.Report.ClimateTasks

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The experiment's name in tasks (and the case's in rows and files).
[<Literal>]
let Name = "climate"

/// The model name of the truth's rows and series in a task's result.
[<Literal>]
let private Truth = "truth"

/// The settings of the "tiny" key (tests): the truth of the climate tests' cut-down settings (64², Δt = 0.02, so one
/// process generates it once for both), leads of 1 and 2 saves, 2 epochs of 2 windows with the horizon growing to 2,
/// free runs of 20 saves (10 × that horizon).
let tiny: Climate.Settings = {
    Climate.quick with
        Truth = {
            Climate.quick.Truth with
                Cells = 64
                Dt = 0.02
        }
        Leads = [ 1; 2 ]
        Epochs = 2
        Batch = 2
        Horizon = { Start = 1; Max = 2; GrowEvery = 1 }
        FreeRunIntervals = 20
}

/// The settings of a key: "quick" (`Climate.quick`), "full" (`Climate.full`) and "tiny" (tests, seconds).
let baseSettings (key: string) : Climate.Settings =
    Experiment.pick key Climate.quick Climate.full tiny

/// The settings of a key with the learning rates `hybrid tune` chose (`tuning/climate.csv`, `TuningFile.forKey`) for
/// "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : Climate.Settings = {
    baseSettings key with
        Tuned = Hybrid.Models.Tuning.TuningFile.forKey key Name
}

/// The seeds every model runs at: 3 (quick), 5 (full) or 2 (tiny), from the settings' seed, 1000 apart.
let seeds (key: string) : int list =
    Comparison.seeds (settings key).Seed (Experiment.pick key 3 5 2) |> List.ofArray

/// The builder of the model named `name` in `ClimateModels.all`; a `HybridException` names the known ones.
let builder (name: string) : Climate.ModelBuilder =
    ClimateModels.all
    |> List.tryFind (fun b -> b.Name = name)
    |> Option.defaultWith (fun () ->
        let known = ClimateModels.all |> List.map (fun b -> b.Name) |> String.concat "; "
        raise (HybridException $"climate: there is no model '{name}'; the models are {known}."))

/// Builds the model named `name` from `seed` under the settings of `key` (its tuned rates, `Climate.build`) and
/// measures it and the truth, with the settings' libtorch threads.
let runModel (key: string) (name: string) (seed: int) : ClimateMetrics.Evaluation * ClimateMetrics.TruthReference =
    let b = builder name
    let s = { settings key with Seed = seed }

    Climate.withThreads s (fun () ->
        let d = Climate.data s
        let m = Climate.build b s d
        let physics = Climate.physics.Build s d
        ClimateMetrics.evaluate s d physics m seed, ClimateMetrics.truth s d physics)

/// The rows of a split's scores: "mse" (the regional precipitation MSE at the longest lead), then per lead
/// "omega_mse:lead<l>", "q_mse:lead<l>", "precipitation_mse:lead<l>", "total_precipitation_mse:lead<l>", then
/// "precipitation_mse:region<r>" at the longest lead.
let private scoreRows (row: string -> string -> float -> ResultRow) (split: string) (sc: ClimateMetrics.SplitScores) = [|
    yield row split "mse" (sc.Precipitation[sc.Precipitation.Length - 1])
    for i, lead in Array.indexed sc.Leads do
        yield row split $"omega_mse:lead{lead}" (sc.Omega[i])
        yield row split $"q_mse:lead{lead}" (sc.Q[i])
        yield row split $"precipitation_mse:lead{lead}" (sc.Precipitation[i])
        yield row split $"total_precipitation_mse:lead{lead}" (sc.TotalPrecipitation[i])
    for r, v in Array.indexed sc.PerRegion do
        yield row split $"precipitation_mse:region{r}" v
|]

/// The scores back from `scoreRows` (`value split metric` finds a number).
let private scoresOf
    (leads: int[])
    (regions: int)
    (value: string -> string -> float)
    (split: string)
    : ClimateMetrics.SplitScores =
    {
        ClimateMetrics.SplitScores.Leads = leads
        Omega = leads |> Array.map (fun l -> value split $"omega_mse:lead{l}")
        Q = leads |> Array.map (fun l -> value split $"q_mse:lead{l}")
        Precipitation = leads |> Array.map (fun l -> value split $"precipitation_mse:lead{l}")
        TotalPrecipitation = leads |> Array.map (fun l -> value split $"total_precipitation_mse:lead{l}")
        PerRegion = Array.init (regions * regions) (fun r -> value split $"precipitation_mse:region{r}")
    }

/// A free run's series, each named "<prefix>:<kind>".
let private freeSeries (prefix: string) (f: ClimateMetrics.FreeRun) : (string * float[])[] = [|
    $"{prefix}:mean_map", f.MeanMap
    $"{prefix}:region_mean", f.RegionMean
    $"{prefix}:region_variance", f.RegionVariance
    $"{prefix}:wavenumbers", f.Spectrum.Wavenumbers
    $"{prefix}:energy", f.Spectrum.Energy
    $"{prefix}:enstrophy", f.Spectrum.Enstrophy
|]

/// The free run back from `freeSeries` (`series name` finds one) with its intervals and blow-up time.
let private freeOf
    (series: string -> float[])
    (prefix: string)
    (intervals: int)
    (blowUp: float)
    : ClimateMetrics.FreeRun =
    {
        ClimateMetrics.FreeRun.Intervals = intervals
        BlowUp = blowUp
        MeanMap = series $"{prefix}:mean_map"
        RegionMean = series $"{prefix}:region_mean"
        RegionVariance = series $"{prefix}:region_variance"
        Spectrum = {
            Spectrum.Wavenumbers = series $"{prefix}:wavenumbers"
            Energy = series $"{prefix}:energy"
            Enstrophy = series $"{prefix}:enstrophy"
        }
    }

/// The task result of one model and seed: its rows (case "climate", the model's name, the seed): the test ("test")
/// and out-of-distribution ("ood") scores (`scoreRows`), "free" "blowup_time", and "" "physics_residual",
/// "train_seconds", "epochs", "inference_seconds_per_time", then its ensemble member's "noise_variance" and
/// "seconds" (`UncertaintyRows.rows`); the truth's rows (model "truth": "free" "blowup_time", "" "physics_residual",
/// "seconds", "seconds_per_time"); series: "train_losses", the free run's ("free:<kind>"), the truth's
/// ("truth:<kind>"), and the member's predictions (`UncertaintyRows.series` and `texts`).
let toResult (task: TaskSpec) (e: ClimateMetrics.Evaluation, t: ClimateMetrics.TruthReference) : TaskResult =
    let row split metric value =
        CasePart.row Name e.Seed e.Name split metric value

    let truthRow split metric value =
        CasePart.row Name e.Seed Truth split metric value

    Experiment.result
        task
        (Array.concat [
            scoreRows row "test" e.Test
            scoreRows row "ood" e.Ood
            [|
                row "free" "blowup_time" e.Free.BlowUp
                row "" "physics_residual" e.PhysicsResidual
                row "" "train_seconds" e.TrainSeconds
                row "" "epochs" (float e.TrainLosses.Length)
                row "" "inference_seconds_per_time" e.InferenceSecondsPerTime
            |]
            UncertaintyRows.rows Name e.Name e.Seed e.Uncertainty
            [|
                truthRow "free" "blowup_time" t.Free.BlowUp
                truthRow "" "physics_residual" t.PhysicsResidual
                truthRow "" "seconds" t.Seconds
                truthRow "" "seconds_per_time" t.SecondsPerTime
            |]
        ])
        (Array.concat [
            [| "train_losses", e.TrainLosses |]
            freeSeries "free" e.Free
            freeSeries Truth t.Free
            UncertaintyRows.series e.Uncertainty
        ])
        (UncertaintyRows.texts e.Uncertainty)

/// The evaluation and the truth's reference back from a task result written by `toResult`.
let ofResult (r: TaskResult) : ClimateMetrics.Evaluation * ClimateMetrics.TruthReference =
    let s = settings r.Task.Settings
    let name = r.Task.Model

    let value split metric =
        ResultRow.value name split metric r.Rows

    let truth split metric =
        ResultRow.value Truth split metric r.Rows

    let series kind = TaskResult.series kind r
    let leads = Array.ofList s.Leads

    {
        ClimateMetrics.Evaluation.Name = name
        Seed = r.Task.Seed
        Test = scoresOf leads s.Regions value "test"
        Ood = scoresOf leads s.Regions value "ood"
        Free = freeOf series "free" s.FreeRunIntervals (value "free" "blowup_time")
        PhysicsResidual = value "" "physics_residual"
        TrainSeconds = value "" "train_seconds"
        TrainLosses = series "train_losses"
        InferenceSecondsPerTime = value "" "inference_seconds_per_time"
        Uncertainty = UncertaintyRows.ofResult r
    },
    {
        ClimateMetrics.TruthReference.Free = freeOf series Truth s.FreeRunIntervals (truth "free" "blowup_time")
        PhysicsResidual = truth "" "physics_residual"
        Seconds = truth "" "seconds"
        SecondsPerTime = truth "" "seconds_per_time"
    }

/// The climate section as tasks, the report's flagship: every model of `ClimateModels.all` at every seed of `seeds`
/// (model-major, in the list's order); each task says on standard error which model and seed it runs.
let experiment: Experiment = {
    Name = Name
    Title = "climate GCM-lite"
    Tasks =
        fun key -> [
            for b in ClimateModels.all do
                for seed in seeds key -> TaskSpec.create Name key b.Name seed
        ]
    Run =
        fun _ t ->
            eprintfn $"report: climate, {t.Model} (seed {t.Seed}) ..."
            toResult t (runModel t.Settings t.Model t.Seed)
    Assemble =
        fun dir key results ->
            let pairs = results |> List.map ofResult
            let evaluations = pairs |> List.map fst

            let truth =
                match pairs with
                | (_, t) :: _ -> t
                | [] -> raise (HybridException "climate: no task results to assemble.")

            let markdown, derived = ClimateReport.write dir (settings key) evaluations truth

            {
                Markdown = markdown
                Rows = Array.append (Experiment.resultRows results) derived
            }
}
