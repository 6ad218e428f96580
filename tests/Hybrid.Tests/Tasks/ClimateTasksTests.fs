/// The climate case as tasks (`ClimateTasks`) under the "tiny" settings: the plan (every model of
/// `ClimateModels.all` at every seed), each task's result through JSON and back unchanged, metrics that can be checked
/// against their definitions (the coarse physics' own residual is round-off beside the truth's; the free run's
/// regional rates add up to its precipitation map's domain integral; a model without randomness gives the same
/// numbers at every seed), and the section assembled from the results: its markdown, CSV files, figures, claims and
/// calibration rows. One run of the tasks shared by the tests (its truth is the climate tests' own, generated once
/// per process).
module Hybrid.Tests.Tasks.ClimateTasksTests

open System
open System.IO
open Expecto
open Hybrid.Numerics
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks
open Hybrid.Models.Report

let private bits (v: float) = BitConverter.DoubleToInt64Bits v

/// Every tiny task run in plan order, its result written to JSON and read back (once for all tests).
let private results =
    lazy
        (let e = ClimateTasks.experiment

         e.Tasks "tiny"
         |> List.map (fun t -> TaskResult.ofJson "memory" (TaskResult.toJson (Experiment.run e "" t))))

/// Every number of an evaluation but its wall times, in a fixed order.
let private numbers (e: ClimateMetrics.Evaluation) : float[] =
    let scores (sc: ClimateMetrics.SplitScores) =
        Array.concat [ sc.Omega; sc.Q; sc.Precipitation; sc.TotalPrecipitation; sc.PerRegion ]

    Array.concat [
        scores e.Test
        scores e.Ood
        [| e.Free.BlowUp; e.PhysicsResidual; e.Uncertainty.NoiseVariance |]
        e.Free.MeanMap
        e.Free.RegionMean
        e.Free.RegionVariance
        e.Free.Spectrum.Energy
        e.Free.Spectrum.Enstrophy
        e.TrainLosses
        yield! e.Uncertainty.Mean
        yield! e.Uncertainty.Targets
    ]

let private folder () =
    let dir =
        Path.Combine(Path.GetTempPath(), $"hybrid-climate-tasks-{Guid.NewGuid():N}")

    Directory.CreateDirectory dir |> ignore
    dir

let tests =
    testSequenced
    <| testList "Tasks.Climate" [
        test "the tasks: every model of ClimateModels.all at every seed, model-major" {
            for key, count in [ "tiny", 2; "quick", 3; "full", 5 ] do
                let expected = [
                    for b in ClimateModels.all do
                        for seed in Comparison.seeds (ClimateTasks.settings key).Seed count -> b.Name, seed
                ]

                Expect.equal
                    (ClimateTasks.experiment.Tasks key |> List.map (fun t -> t.Model, t.Seed))
                    expected
                    $"{key}: the models in order, {count} seeds each"

            Expect.equal
                (ReportTasks.plan "quick" [ "climate" ])
                (ClimateTasks.experiment.Tasks "quick")
                "the report plans them"

            Expect.equal
                (List.head ReportTasks.report).Name
                ClimateTasks.Name
                "the flagship is the report's first section"
        }

        test "a task's result through JSON gives back its numbers bit for bit" {
            let r = results.Value.Head
            let e, t = ClimateTasks.ofResult r

            let again, truth =
                ClimateTasks.ofResult (
                    TaskResult.ofJson "again" (TaskResult.toJson (ClimateTasks.toResult r.Task (e, t)))
                )

            Expect.equal (numbers again |> Array.map bits) (numbers e |> Array.map bits) "the evaluation"
            Expect.equal (bits truth.PhysicsResidual) (bits t.PhysicsResidual) "the truth's residual"
            Expect.equal (truth.Free.MeanMap |> Array.map bits) (t.Free.MeanMap |> Array.map bits) "the truth's map"
        }

        test "the coarse physics' own residual is round-off beside the truth's; its free run adds up" {
            let s = ClimateTasks.settings "tiny"
            let physics, truth = ClimateTasks.ofResult results.Value.Head
            Expect.equal physics.Name Climate.physics.Name "the first task is the physics"
            // The truth's test windows differ from the coarse physics by the sub-grid effect (order 1e-2 of ω per unit
            // time or more); the physics flowed from its own states differs only by float32 round-off (~1e-7 of ω).
            Expect.isGreaterThan truth.PhysicsResidual 1e-3 "the truth's residual: the real sub-grid effect"

            Expect.isLessThan
                physics.PhysicsResidual
                (1e-3 * truth.PhysicsResidual)
                "the physics' residual on its own forecasts"

            for name, f in [ "truth", truth.Free; "physics", physics.Free ] do
                Expect.isTrue (Double.IsNaN f.BlowUp) $"{name}: the free run is stable"
                Expect.equal f.Intervals s.FreeRunIntervals $"{name}: its length"
                // The regions' rates sum to the domain integral; the map's mean rate times the area (2π)² is the same
                // integral computed per cell.
                let integral = Array.average f.MeanMap * 4.0 * Math.PI * Math.PI

                Expect.floatClose
                    { absolute = 0.0; relative = 1e-6 }
                    (Array.sum f.RegionMean)
                    integral
                    $"{name}: regional rates against the map"

                Expect.isGreaterThan integral 0.0 $"{name}: it rains"

            let seeds =
                results.Value
                |> List.map ClimateTasks.ofResult
                |> List.map fst
                |> List.filter (fun e -> e.Name = Climate.physics.Name)

            Expect.equal seeds.Length 2 "the physics at both seeds"

            Expect.equal
                (numbers (seeds[1]) |> Array.map bits)
                (numbers (seeds[0]) |> Array.map bits)
                "the same numbers at every seed"
        }

        // Shells 0 … 11 as on a 16² grid (K = ⌊√2·8⌉ = 11, so n/2 = 8): the truth leaves shells 1 and 3 empty.
        test "the spectrum error covers the shells 1 … n/2 the truth fills; energy in its empty shells is counted apart" {
            let spectrum (energy: float[]) = {
                Spectrum.Wavenumbers = Array.init energy.Length float
                Energy = energy
                Enstrophy = energy
            }

            let t = [| 0.0; 1e-14; 1.0; 1e-15; 0.5; 0.3; 0.2; 0.1; 0.05; 0.04; 0.03; 0.02 |]
            let truth = spectrum t
            Expect.equal (ClimateReport.emptyShells truth) [| 1; 3 |] "the empty shells"
            Expect.equal (ClimateReport.spectrumLogError truth truth) 0.0 "the truth against itself"
            // Ten times the truth in every filled shell up to n/2 = 8, 0.1 in each empty one, anything beyond n/2.
            let model =
                t
                |> Array.mapi (fun k e ->
                    if k = 1 || k = 3 then 0.1
                    elif k <= 8 then 10.0 * e
                    else 99.0)

            Expect.floatClose Accuracy.veryHigh (ClimateReport.spectrumLogError truth (spectrum model)) 1.0 "one decade"
            let filled = 10.0 * (1.0 + 0.5 + 0.3 + 0.2 + 0.1 + 0.05)

            Expect.floatClose
                Accuracy.veryHigh
                (ClimateReport.emptyShellShare truth (spectrum model))
                (0.2 / (0.2 + filled))
                "the share in shells 1 and 3 of shells 1 … 8"
        }

        test "the generated truth's ω keeps its forcing's symmetry (shells 1 and 3 empty), and so does the physics" {
            let physics, truth = ClimateTasks.ofResult results.Value.Head
            Expect.equal (ClimateReport.emptyShells truth.Free.Spectrum) [| 1; 3 |] "the truth's empty shells"

            Expect.isLessThan
                (ClimateReport.emptyShellShare truth.Free.Spectrum physics.Free.Spectrum)
                1e-9
                "the coarse physics keeps the symmetry to round-off"
        }

        test "the section from the tiny tasks: markdown, files, the claim per comparison, claims and calibration" {
            let dir = folder ()

            try
                let md = Experiment.assemble ClimateTasks.experiment dir "tiny" results.Value
                Expect.stringStarts md "## Climate GCM-lite" "the section"
                Expect.stringContains md "model climate" "the model's DSL text"

                Expect.stringContains
                    md
                    $"- out of distribution: hybrid / {Climate.physics.Name}: "
                    "the claim against the physics"

                for file in
                    [
                        "climate-forecasts.csv"
                        "climate-regions.csv"
                        "climate-free-runs.csv"
                        "climate-spectra.csv"
                        "climate-precipitation-maps.csv"
                        "climate-precipitation-maps.svg"
                        "climate-spectra.svg"
                        "climate-error-test.svg"
                        "climate-error-ood.svg"
                        "climate-claims.csv"
                        "climate-calibration.csv"
                        Experiment.resultsFile "climate"
                    ] do
                    Expect.isTrue (File.Exists(Path.Combine(dir, file))) $"{file} is written"

                let cells = Claims.readAll dir

                Expect.equal
                    (cells |> Array.map (fun c -> c.Outcome) |> Array.distinct |> Array.sort)
                    (Array.sort Claims.outcomes)
                    "a cell per outcome"

                Expect.isTrue (cells |> Array.forall (fun c -> c.Case = "climate")) "of this case"

                let rows = ResultRow.readCsv (Path.Combine(dir, Experiment.resultsFile "climate"))

                for b in ClimateModels.all do
                    let ood =
                        rows
                        |> Array.filter (fun r -> r.Model = b.Name && r.Split = "ood" && r.Metric = "mse")

                    Expect.equal ood.Length 2 $"{b.Name}: its OOD precipitation MSE per seed"

                    Expect.isTrue
                        (rows
                         |> Array.exists (fun r -> r.Model = $"{b.Name}|deep ensemble (M = 2)" && r.Metric = "ece"))
                        $"{b.Name}: the calibration of its ensemble over seeds"

                Expect.isTrue
                    (rows
                     |> Array.exists (fun r ->
                         r.Model = "truth" && r.Split = "free" && r.Metric = "map_rmse" && r.Value = 0.0))
                    "the truth's map against itself"
            finally
                Directory.Delete(dir, true)
        }
    ]
