/// The data-efficiency experiment (issue #6 (b)): what each case's `TrainFraction` selects (the pure selection
/// functions, no training), the claim sentences on synthetic numbers, and one real run of the runner on the
/// cheapest case (Lorenz-96, quick settings cut further: shorter free runs and fewer start states and epochs,
/// two fractions).
module Hybrid.Tests.Experiments.DataEfficiencyTests

open System
open System.IO
open Expecto
open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Experiments

let private synthetic (models: (string * float[])[]) : DataEfficiency.Result = {
    Case = "synthetic"
    Fractions = [| 0.25; 0.5; 1.0 |]
    Models = Array.map fst models
    TestMse = Array.map snd models
    Seconds = [| 0.0; 0.0; 0.0 |]
}

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

        test "predator–prey: a fraction keeps the most recent years, windows shortened where needed" {
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
                    WindowYears = 5
                }
                "all 16 years, 5-year windows"

            Expect.equal
                (at 0.5)
                {
                    FirstYear = 8
                    KeptYears = 8
                    WindowYears = 5
                }
                "1908–1915"

            Expect.equal
                (at 0.25)
                {
                    FirstYear = 12
                    KeptYears = 4
                    WindowYears = 3
                }
                "1912–1915, 3-year window"

            Expect.equal
                (at 0.1)
                {
                    FirstYear = 14
                    KeptYears = 2
                    WindowYears = 1
                }
                "1914–1915, one 1-year window"
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

        test "claim sentences: holds within the tolerance, and says why it fails" {
            let holds =
                synthetic [| "MLP x", [| 3.0; 2.0; 1.0 |]; "hybrid a", [| 1.2; 1.05; 1.0 |] |]
                |> DataEfficiency.claimLines
                |> String.concat "\n"

            Expect.stringContains holds "the claim HOLDS" "1.05 is within 10% of 1.0"

            Expect.stringContains holds "Shares at which hybrid a is within 10% of MLP x at 100%: 50%, 100%." "shares"


            let lines =
                synthetic [|
                    "LSTM", [| 3.0; 2.0; 1.0 |]
                    "Transformer", [| 3.0; 2.0; 1.5 |]
                    "hybrid accurate", [| 3.0; 1.5; 0.9 |]
                    "hybrid poor", [| 3.0; 2.5; 2.0 |]
                |]
                |> DataEfficiency.claimLines
                |> String.concat "\n"

            Expect.stringContains lines "Best pure-ML model with all the training data: LSTM (1)" "best ML at 100%"
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
                Expect.equal csv[1] "\"MLP C(t, dose)\",0.25,3" "quoted name"
            finally
                Directory.Delete(dir, true)
        }

        test "the runner rejects unusable fractions" {
            let run fs =
                DataEfficiency.run "c" fs (fun _ -> [| "m", 1.0 |]) |> ignore

            Expect.throwsT<HybridException> (fun () -> run [||]) "none"
            Expect.throwsT<HybridException> (fun () -> run [| 0.0; 1.0 |]) "zero"
            Expect.throwsT<HybridException> (fun () -> run [| 1.0; 0.5 |]) "descending"

            Expect.throwsT<HybridException>
                (fun () -> DataEfficiency.run "c" [| 0.5; 1.0 |] (fun f -> [| $"m{f}", 1.0 |]) |> ignore)
                "different models per fraction"
        }

        test
            "a real run on Lorenz-96 (cut quick settings, 25% and 100%): every model at every fraction, finite, files written" {
            let r =
                DataEfficiency.run "lorenz96" [| 0.25; 1.0 |] (fun f ->
                    let o = Lorenz96.run { tiny with TrainFraction = f }
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
