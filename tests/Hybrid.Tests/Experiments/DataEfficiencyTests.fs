/// The data-efficiency experiment (issue #6 (b)): what each case's `TrainFraction` and `TrainSubset` select (the
/// pure selection functions, no training), the seeded blocks and subsets of `TrainFraction`, the half-the-data ratio
/// interval and verdict and the claim sentences on synthetic numbers, the task plan, and one real run of the runner
/// on the cheapest case (Lorenz-96, quick settings cut further: shorter free runs and fewer start states and epochs,
/// two fractions, one subset).
module Hybrid.Tests.Experiments.DataEfficiencyTests

open System
open System.IO
open Expecto
open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Experiments
open Hybrid.Models.Report

/// A result at 25%, 50% and 100% from (model, [fraction][subset] test MSEs) over `subsets` subsets.
let private replicated (subsets: int) (models: (string * float[][])[]) : DataEfficiency.Result =
    DataEfficiency.ofRuns
        "synthetic"
        [| 0.25; 0.5; 1.0 |]
        (Array.init subsets (fun k -> k + 1))
        (Array.init 3 (fun i ->
            Array.init subsets (fun k -> (models |> Array.map (fun (name, mse) -> name, mse[i][k])), 0.0)))

/// A result at 25%, 50% and 100% with one subset: (model, test MSE per fraction).
let private synthetic (models: (string * float[])[]) : DataEfficiency.Result =
    replicated
        1
        (models
         |> Array.map (fun (name, mse) -> name, mse |> Array.map (fun v -> [| v |])))

let private close (expected: float) (actual: float) (what: string) =
    Expect.floatClose Accuracy.veryHigh actual expected what

/// Lorenz-96 quick settings cut to what the runner test needs (most of a quick run is the 50-MTU free runs; one
/// network seed: the runner sees one MSE per model and fraction whatever the number of seeds behind it).
let private tiny = {
    Lorenz96.quick with
        NetworkSeeds = [ 5 ]
        SpinUp = 1.0
        TrainSpan = 10.0
        Starts = 5
        FreeRun = 5.0
        Epochs = 100
        PosteriorEpochs = 10
        MaxHorizon = 3
        SequenceIterations = 20
        Uncertainty = CaseUncertainty.off
}

let tests =
    testSequenced
    <| testList "Experiments.DataEfficiency" [
        test "TrainFraction.count is the ceiling of f·n, at least `least`, and rejects fractions outside (0, 1]" {
            Expect.equal (TrainFraction.count "t" 0.5 1 16) 8 "half of 16"
            Expect.equal (TrainFraction.count "t" 0.1 1 121) 13 "⌈12.1⌉"
            Expect.equal (TrainFraction.count "t" 0.3 1 10) 3 "0.3·10 is 3, not 4"
            Expect.equal (TrainFraction.count "t" 0.01 2 16) 2 "at least two"
            Expect.equal (TrainFraction.count "t" 1.0 1 7) 7 "all"

            for bad in [ 0.0; -0.5; 1.5; nan ] do
                Expect.throwsT<HybridException> (fun () -> TrainFraction.count "Case X" bad 1 10 |> ignore) $"{bad}"

            try
                TrainFraction.count "Case X" 1.5 1 10 |> ignore
            with :? HybridException as e ->
                Expect.stringContains e.Message "Case X: TrainFraction = 1.5" "the message names the case and value"
        }

        test "TrainFraction.blockStart: subset 0 is the fixed block, a seed a deterministic random block in range" {
            Expect.equal (TrainFraction.blockStart "t" 0 7 50 100) 7 "subset 0: the case's own start"

            for seed in 1..20 do
                let start = TrainFraction.blockStart "t" seed 0 50 100
                Expect.isTrue (start >= 0 && start <= 50) $"seed {seed}: the block {start}…{start + 49} lies in 0…99"
                Expect.equal (TrainFraction.blockStart "t" seed 0 50 100) start $"seed {seed}: the same again"
                Expect.equal (TrainFraction.blockStart "t" seed 0 100 100) 0 $"seed {seed}: all items start at 0"

            let starts =
                [ 1..3 ] |> List.map (fun seed -> TrainFraction.blockStart "t" seed 0 50 100)

            Expect.equal (List.distinct starts) starts $"seeds 1, 2, 3 keep different blocks: %A{starts}"

            let e =
                Expect.throwsC (fun () -> TrainFraction.blockStart "Case X" -1 0 5 10 |> ignore) id

            Expect.stringContains e.Message "Case X: TrainSubset = -1" "names the case and value"

            Expect.throwsT<HybridException>
                (fun () -> TrainFraction.blockStart "t" 1 0 11 10 |> ignore)
                "more items than there are"
        }

        test "TrainFraction.indices: subset 0 the first, a seed a deterministic random choice of the right count" {
            Expect.equal (TrainFraction.indices "t" 0 4 8) [| 0..3 |] "subset 0: the first four"

            for seed in 1..20 do
                let chosen = TrainFraction.indices "t" seed 4 8
                Expect.equal chosen.Length 4 $"seed {seed}: four"
                Expect.equal (Array.distinct chosen) chosen $"seed {seed}: distinct"
                Expect.equal (Array.sort chosen) chosen $"seed {seed}: ascending"
                Expect.all chosen (fun i -> i >= 0 && i < 8) $"seed {seed}: in range"
                Expect.equal (TrainFraction.indices "t" seed 4 8) chosen $"seed {seed}: the same again"
                Expect.equal (TrainFraction.indices "t" seed 8 8) [| 0..7 |] $"seed {seed}: all at 100%%"

            let choices = [ 1..3 ] |> List.map (fun seed -> TrainFraction.indices "t" seed 4 8)
            Expect.equal (List.distinct choices) choices $"seeds 1, 2, 3 keep different subjects: %A{choices}"

            // Over many seeds every index is chosen about count/n = half the time (uniform choice).
            let hits = Array.zeroCreate 8

            for seed in 1..2000 do
                for i in TrainFraction.indices "t" seed 4 8 do
                    hits[i] <- hits[i] + 1

            // Binomial(2000, 0.5): sd ≈ 22; 5 sd either side.
            Expect.all hits (fun h -> abs (h - 1000) < 112) $"each index about 1000 times of 2000: %A{hits}"
        }

        test "each case at 50% with subset seeds 1 and 2 trains on different data of the same size; at 100% on all" {
            let l96 f k =
                Lorenz96.trainingBlock
                    {
                        Lorenz96.quick with
                            TrainFraction = f
                            TrainSubset = k
                    }
                    600

            Expect.notEqual (l96 0.5 1) (l96 0.5 2) "Lorenz-96: different blocks"
            Expect.equal (snd (l96 0.5 1)) (snd (l96 0.5 2)) "Lorenz-96: 300 samples each"
            Expect.equal (l96 1.0 2) (0, 600) "Lorenz-96: all at 100%"

            let subjects = Pharmacokinetics.load ()

            let pk f k =
                Pharmacokinetics.trainingSubjects
                    {
                        Pharmacokinetics.quick with
                            TrainFraction = f
                            TrainSubset = k
                    }
                    subjects
                    3
                |> Array.map (fun x -> x.Id)

            Expect.notEqual (pk 0.5 1) (pk 0.5 2) "pharmacokinetics: different subjects"
            Expect.equal [ (pk 0.5 1).Length; (pk 0.5 2).Length ] [ 4; 4 ] "four of eight each"
            Expect.equal (pk 1.0 2) [| 1..8 |] "pharmacokinetics: all at 100%"

            let eb f k =
                EnergyBalance.trainingYears
                    {
                        EnergyBalance.quick with
                            TrainFraction = f
                            TrainSubset = k
                    }
                    121

            Expect.notEqual (eb 0.5 1) (eb 0.5 2) "energy balance: different blocks"
            Expect.equal (snd (eb 0.5 1)) 61 "61 years"
            Expect.equal (eb 1.0 3) (0, 121) "energy balance: all at 100%"

            let pp f k =
                PredatorPrey.selection
                    {
                        PredatorPrey.quick with
                            TrainFraction = f
                            TrainSubset = k
                    }
                    16

            Expect.notEqual (pp 0.5 1).FirstYear (pp 0.5 2).FirstYear "predator–prey: different blocks"
            Expect.equal (pp 0.5 2).KeptYears 8 "eight years"
            Expect.isLessThanOrEqual ((pp 0.5 2).FirstYear + 8) 16 "inside 1900–1915"

            let noise k =
                Tumour.noiseSeed { Tumour.quick with TrainSubset = k } 1

            Expect.equal (noise 0) 1001 "tumour: subset 0 keeps the case's own noise draw"
            Expect.notEqual (noise 1) (noise 2) "tumour: another noise draw per subset"
        }

        test "the half-the-data ratio: the paired t-interval on the log scale, and its verdict" {
            // Ratios 1, 2, 4 (log: 0, ln 2, 2 ln 2; mean ln 2, sd ln 2): 2 · exp(± t(0.975, 2) · ln 2 / √3).
            match DataEfficiency.halfDataRatio [| 1.0; 2.0; 4.0 |] [| 1.0; 1.0; 1.0 |] with
            | Ok i ->
                let half = 4.302652729911275 * log 2.0 / sqrt 3.0
                close 2.0 i.Estimate "geometric mean ratio"
                close (2.0 * exp -half) i.Lower "lower"
                close (2.0 * exp half) i.Upper "upper"
                Expect.equal i.Count 3 "three subsets"

                Expect.equal
                    (DataEfficiency.halfDataVerdict i)
                    Statistics.Verdict.Inconclusive
                    "0.36…11.2 straddles 1.1"
            | Error e -> failtest e

            let verdictOf h ml =
                match DataEfficiency.halfDataRatio h ml with
                | Ok i -> DataEfficiency.halfDataVerdict i
                | Error e -> failtest e

            // Paired by subset: the ratios are 0.5, 0.55, 0.6 (upper end ≈ 0.69) although the MSEs vary 4-fold.
            Expect.equal
                (verdictOf [| 0.5; 1.1; 2.4 |] [| 1.0; 2.0; 4.0 |])
                Statistics.Verdict.Holds
                "ratios 0.5–0.6: the whole interval ≤ 1.1"

            Expect.equal
                (verdictOf [| 2.0; 4.4; 9.6 |] [| 1.0; 2.0; 4.0 |])
                Statistics.Verdict.Fails
                "ratios 2–2.4: the whole interval above 1.1 (lower end ≈ 1.75)"

            let errorOf h ml =
                match DataEfficiency.halfDataRatio h ml with
                | Ok i -> failtest $"expected no interval, got %A{i}"
                | Error e -> e

            Expect.stringContains (errorOf [| 0.5 |] [| 1.0 |]) "one subset" "one replicate"
            Expect.stringContains (errorOf [| 0.5; infinity |] [| 1.0; 1.0 |]) "blew up" "a run blew up"
        }

        test "claim cells: holds, fails or inconclusive from the subsets' interval; inconclusive with one subset" {
            let r =
                replicated 3 [|
                    "LSTM", [| [| 9.0; 9.0; 9.0 |]; [| 5.0; 5.0; 5.0 |]; [| 1.0; 2.0; 4.0 |] |]
                    "Transformer", [| [| 9.0; 9.0; 9.0 |]; [| 9.0; 9.0; 9.0 |]; [| 8.0; 8.0; 8.0 |] |]
                    "hybrid good", [| [| 1.0; 1.0; 1.0 |]; [| 0.5; 1.1; 2.4 |]; [| 0.5; 0.5; 0.5 |] |]
                    "hybrid poor", [| [| 9.0; 9.0; 9.0 |]; [| 2.0; 4.4; 9.6 |]; [| 2.0; 2.0; 2.0 |] |]
                |]

            let cells = DataEfficiency.claimCells r

            Expect.equal
                (cells |> Array.map (fun c -> c.Verdict))
                [| Claims.Verdict.Holds; Claims.Verdict.Fails |]
                "verdicts"

            Expect.stringContains cells[0].Detail "hybrid good at 50% over LSTM at 100%: MSE ratio 0.55 [" "detail"
            Expect.stringContains cells[0].Detail "3 subsets (matches at ≤ 1.10)" "replicates and bar"

            let lines = DataEfficiency.claimLines r |> String.concat "\n"
            Expect.stringContains lines "the claim HOLDS" "sentence: holds"
            Expect.stringContains lines "the claim does NOT hold" "sentence: fails"
            Expect.stringContains lines "95% t-interval over 3 subsets" "sentence: interval"

            let one =
                synthetic [| "MLP x", [| 3.0; 2.0; 1.0 |]; "hybrid a", [| 1.2; 1.05; 1.0 |] |]
                |> DataEfficiency.claimCells

            Expect.equal one[0].Verdict Claims.Verdict.Inconclusive "one subset: no interval"
            Expect.stringContains one[0].Detail "MSE ratio of the means 1.05" "ratio of the means"
            Expect.stringContains one[0].Detail "one subset, no interval" "why"
        }

        test
            "the task plan: one task per case × share × subset (one run where the subsets are the same run), distinct ids" {
            let plan key =
                DataEfficiencyTasks.experiment.Tasks key
                |> List.map (fun t -> t.Model, t.Share.Value, t.Seed)

            // At 100% every subset is the whole training set: one run, except in the tumour twin (noise per subset).
            let expected stems fractions = [
                for stem in stems do
                    for f in fractions do
                        for k in (if f = 1.0 && stem <> "tumour" then [ 1 ] else [ 1..3 ]) -> stem, f, k
            ]

            let stems = [ "lorenz96"; "predator-prey"; "pharmacokinetics"; "energy-balance"; "tumour" ]

            Expect.equal
                (plan "full")
                (expected stems [ 0.1; 0.25; 0.5; 1.0 ])
                "full: 5 cases × 3 shares × 3 subsets, + one run at 100% (three for the tumour)"

            Expect.equal
                (plan "quick")
                (expected [ "lorenz96" ] [ 0.5; 1.0 ])
                "quick: Lorenz-96, 3 subsets at 50%, 1 run at 100%"

            let ids =
                DataEfficiencyTasks.experiment.Tasks "full"
                |> List.map Hybrid.Models.Tasks.TaskSpec.id

            Expect.equal (List.distinct ids).Length 52 "every task its own id"
        }

        test
            "the quick section from task results: each subset's block named, the claim from the interval, files written" {
            let dir =
                Path.Combine(Path.GetTempPath(), $"hybrid-data-efficiency-{Guid.NewGuid():N}")

            Directory.CreateDirectory dir |> ignore

            try
                // At 100% every subset is the same run (one run, subset 1); the hybrid's MSE at 50% is 0.5, 0.55, 0.6
                // of the LSTM's at 100% by subset: the claim holds.
                let mse share subset =
                    let k = float subset

                    [|
                        "LSTM", (if share = 1.0 then 1.0 else 2.0 * k)
                        "hybrid x", (if share = 1.0 then 0.4 else 0.45 + 0.05 * k)
                    |]

                let runs = DataEfficiencyReport.runs true

                Expect.equal
                    runs
                    [
                        "lorenz96", 0.5, 1
                        "lorenz96", 0.5, 2
                        "lorenz96", 0.5, 3
                        "lorenz96", 1.0, 1
                    ]
                    "three subsets at 50%, one run at 100% (every subset the whole training run)"

                let results =
                    runs
                    |> List.map (fun (stem, share, subset) -> (stem, share, subset), (mse share subset, 1.0))

                let md = DataEfficiencyReport.assemble dir true results
                Expect.stringContains md "50%: subset 1: samples " "each subset's block at 50%"
                Expect.stringContains md "(every subset)" "one text at 100%"
                Expect.stringContains md "the claim HOLDS" "the claim from the interval"
                let cells = Claims.readAll dir

                Expect.equal
                    (cells |> Array.map (fun c -> c.Case, c.Verdict))
                    [| "lorenz96", Claims.Verdict.Holds |]
                    "cell"

                let csv = File.ReadAllLines(Path.Combine(dir, "lorenz96-data-efficiency.csv"))
                Expect.equal csv.Length (1 + 2 * 2 * 3) "a line per model, share and subset"
            finally
                Directory.Delete(dir, true)
        }

        // The quick settings hold out round(0.2 · kept) years (at least 1) for validation where at least 3 remain.
        test
            "predator–prey: a fraction keeps the most recent years, the last of them for validation, windows shortened where needed" {
            let at f =
                PredatorPrey.selection
                    {
                        PredatorPrey.quick with
                            TrainFraction = f
                    }
                    16

            Expect.equal
                (at 1.0)
                {
                    FirstYear = 0
                    KeptYears = 16
                    ValidationYears = 3
                    WindowYears = 5
                }
                "all 16 years, 1913–1915 for validation, 5-year windows"

            Expect.equal
                (at 0.5)
                {
                    FirstYear = 8
                    KeptYears = 8
                    ValidationYears = 2
                    WindowYears = 5
                }
                "1908–1915, 1914–1915 for validation"

            Expect.equal
                (at 0.25)
                {
                    FirstYear = 12
                    KeptYears = 4
                    ValidationYears = 1
                    WindowYears = 2
                }
                "1912–1915, 1915 for validation, 2-year windows"

            Expect.equal
                (at 0.1)
                {
                    FirstYear = 14
                    KeptYears = 2
                    ValidationYears = 0
                    WindowYears = 1
                }
                "1914–1915, no validation (one year would be left to train on), one 1-year window"
        }

        test "pharmacokinetics: a fraction keeps the first ⌈f·n⌉ training subjects of the fold" {
            let subjects = Pharmacokinetics.load ()

            let ids f fold =
                Pharmacokinetics.trainingSubjects
                    {
                        Pharmacokinetics.quick with
                            TrainFraction = f
                    }
                    subjects
                    fold
                |> Array.map (fun x -> x.Id)

            Expect.equal (ids 1.0 3) [| 1..8 |] "fold 3 trains on subjects 1–8"
            Expect.equal (ids 0.25 3) [| 1; 2 |] "⌈0.25·8⌉ = 2"
            Expect.equal (ids 0.5 1) [| 5; 6; 7; 8 |] "fold 1: the first four of 5–12"
            Expect.equal (ids 0.1 3) [| 1 |] "at least one"
        }

        test "energy balance: a fraction keeps the most recent training years" {
            let at f =
                EnergyBalance.trainingYears
                    {
                        EnergyBalance.quick with
                            TrainFraction = f
                    }
                    121

            Expect.equal (at 0.1) (108, 13) "1988–2000"
            Expect.equal (at 0.5) (60, 61) "1940–2000"
            Expect.equal (at 1.0) (0, 121) "1880–2000"
        }

        test "Lorenz-96 and tumour: a fraction keeps the first samples and the first observation times" {
            let samples f =
                Lorenz96.trainingSamples
                    {
                        Lorenz96.quick with
                            TrainFraction = f
                    }
                    600

            Expect.equal (samples 0.1) 60 "first 60 of 600 samples"
            Expect.equal (samples 1.0) 600 "all"
            Expect.equal (samples 0.001) (Lorenz96.quick.SequenceWindow + 1) "at least one LSTM window"

            let times f =
                Tumour.trainingTimes { Tumour.quick with TrainFraction = f }

            Expect.equal [ times 0.1; times 0.25; times 0.5; times 1.0 ] [ 1; 2; 3; 6 ] "of six observation times"
        }

        test "claim sentences (one subset): the verdict waits for an interval, and says why the means miss" {
            let holds =
                synthetic [| "MLP x", [| 3.0; 2.0; 1.0 |]; "hybrid a", [| 1.2; 1.05; 1.0 |] |]
                |> DataEfficiency.claimLines
                |> String.concat "\n"

            Expect.stringContains
                holds
                "the claim is not decided (on the means it would hold"
                "1.05 is within 10% of 1.0"

            Expect.stringContains
                holds
                "Shares at which hybrid a's mean is within 10% of MLP x at 100%: 50%, 100%."
                "shares"


            let lines =
                synthetic [|
                    "LSTM", [| 3.0; 2.0; 1.0 |]
                    "Transformer", [| 3.0; 2.0; 1.5 |]
                    "hybrid accurate", [| 3.0; 1.5; 0.9 |]
                    "hybrid poor", [| 3.0; 2.5; 2.0 |]
                |]
                |> DataEfficiency.claimLines
                |> String.concat "\n"

            Expect.stringContains
                lines
                "Best pure-ML model with all the training data: LSTM (1, mean over one subset)"
                "best ML at 100%"

            Expect.stringContains lines "hybrid accurate with 50% of the training data: test MSE 1.5" "hybrid at 50%"
            Expect.stringContains lines "halving the data raises its MSE by +67%" "why: data efficiency"
            Expect.stringContains lines "fails on accuracy, not on data efficiency" "why: accuracy"

            Expect.stringContains
                lines
                "At equal data (50%), hybrid accurate beats the best pure-ML model, LSTM (1.5 vs 2"
                "equal data"

            Expect.isFalse (lines.Contains "More data does not always help") "every MSE falls with more data"

            let noisy =
                synthetic [| "LSTM", [| 3.0; 1.0; 2.0 |]; "hybrid a", [| 1.0; 1.0; 1.0 |] |]
                |> DataEfficiency.claimLines
                |> String.concat "\n"

            Expect.stringContains noisy "rises by more than 10% from one share to the next larger one for LSTM." "noise"

            let noMl =
                synthetic [| "hybrid a", [| 1.0; 1.0; 1.0 |] |] |> DataEfficiency.claimLines

            Expect.stringContains noMl.Head "cannot be tested" "no pure-ML row"
        }

        test "the CSV quotes model names with commas" {
            let dir =
                Path.Combine(Path.GetTempPath(), $"hybrid-data-efficiency-{Guid.NewGuid():N}")

            Directory.CreateDirectory dir |> ignore

            try
                DataEfficiency.writeCsv dir (synthetic [| "MLP C(t, dose)", [| 3.0; 2.0; 1.0 |] |])
                let csv = File.ReadAllLines(Path.Combine(dir, "synthetic-data-efficiency.csv"))
                Expect.equal csv[0] "model,fraction,subset,test_mse" "header"
                Expect.equal csv[1] "\"MLP C(t, dose)\",0.25,1,3" "quoted name"
            finally
                Directory.Delete(dir, true)
        }

        test "the runner rejects unusable fractions and subsets" {
            let run fs ks =
                DataEfficiency.run "c" fs ks (fun _ _ -> [| "m", 1.0 |]) |> ignore

            Expect.throwsT<HybridException> (fun () -> run [||] [| 1 |]) "none"
            Expect.throwsT<HybridException> (fun () -> run [| 0.0; 1.0 |] [| 1 |]) "zero"
            Expect.throwsT<HybridException> (fun () -> run [| 1.0; 0.5 |] [| 1 |]) "descending"
            Expect.throwsT<HybridException> (fun () -> run [| 0.5; 1.0 |] [||]) "no subset"
            Expect.throwsT<HybridException> (fun () -> run [| 0.5; 1.0 |] [| 1; 1 |]) "repeated subset"

            Expect.throwsT<HybridException>
                (fun () ->
                    DataEfficiency.run "c" [| 0.5; 1.0 |] [| 1 |] (fun f _ -> [| $"m{f}", 1.0 |])
                    |> ignore)
                "different models per fraction"

            Expect.throwsT<HybridException>
                (fun () ->
                    DataEfficiency.run "c" [| 1.0 |] [| 1; 2 |] (fun _ k -> [| $"m{k}", 1.0 |])
                    |> ignore)
                "different models per subset"
        }

        test
            "a real run on Lorenz-96 (cut quick settings, 25% and 100%): every model at every fraction, finite, files written" {
            let r =
                DataEfficiency.run "lorenz96" [| 0.25; 1.0 |] [| 1 |] (fun f k ->
                    let o =
                        Lorenz96.run {
                            tiny with
                                TrainFraction = f
                                TrainSubset = k
                        }

                    let last = tiny.Leads.Length - 1

                    o.Models
                    |> Array.map (fun m -> m.Name, m.Skills[0].Rmse[last] * m.Skills[0].Rmse[last]))

            Expect.isGreaterThan r.Models.Length 2 "several models"
            Expect.equal r.TestMse.Length r.Models.Length "a row per model"

            for m, row in Array.zip r.Models r.TestMse do
                Expect.equal row.Length 2 $"{m}: one MSE per fraction"
                Expect.all row Double.IsFinite $"{m}: finite"

            let dir =
                Path.Combine(Path.GetTempPath(), $"hybrid-data-efficiency-{Guid.NewGuid():N}")

            Directory.CreateDirectory dir |> ignore

            try
                let md = DataEfficiency.write dir "Two-scale Lorenz-96" "Note." "X" r
                let csv = File.ReadAllLines(Path.Combine(dir, "lorenz96-data-efficiency.csv"))
                Expect.equal csv.Length (1 + 2 * r.Models.Length) "header and a line per model and fraction"
                Expect.stringContains md "| model | 25% | 100% |" "table header"
                Expect.isTrue (File.Exists(Path.Combine(dir, "lorenz96-data-efficiency.svg"))) "chart"
                Expect.stringContains md "50% and 100% runs are not both" "no claim without a 50% run"
            finally
                Directory.Delete(dir, true)
        }
    ]
