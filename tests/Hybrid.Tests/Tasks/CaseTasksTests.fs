/// A case split into tasks gives the outcome of its one-process run: the predator–prey, pharmacokinetics and tumour
/// cases under the "tiny" settings (two seeds), every task's result written to JSON and read back before the outcome is
/// assembled, against the case's `run` with the same settings (same seeds: the same numbers, bit for bit); a part
/// missing from the results is named, an unknown part is refused; the tumour section keeps its long-format results
/// file.
module Hybrid.Tests.Tasks.CaseTasksTests

open System
open System.IO
open Expecto
open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks
open Hybrid.Models.Report

let private bits (v: float) = BitConverter.DoubleToInt64Bits v

/// The calibration rows of two runs agree: the same models, methods and splits in order; every number bit for bit,
/// except the LSTM's and the transformer's (their last digits are not repeatable from run to run, seen: 3e-16),
/// which agree to 1e-10.
let private sameCalibration (a: CaseUncertainty.MethodResult[]) (b: CaseUncertainty.MethodResult[]) =
    let key (u: CaseUncertainty.MethodResult) =
        u.Model, u.Method, u.Split, u.VarianceScale <> 1.0

    Expect.equal (Array.map key a) (Array.map key b) "the same calibration rows"

    for u, v in Array.zip a b do
        let numbers (r: CaseUncertainty.MethodResult) = [|
            r.Calibration.Ece
            r.EceInterval.Lower
            r.EceInterval.Upper
            r.VarianceScale
            r.Nll
            r.Crps
            r.Rmse
            r.MeanStd
            r.NoiseStd
            r.ModelStd
        |]

        if u.Model = "LSTM" || u.Model = "Transformer" then
            for x, y in Array.zip (numbers u) (numbers v) do
                Expect.isTrue (abs (x - y) <= 1e-10 * max 1.0 (abs y)) $"{u.Model}, {u.Method}, {u.Split}: {x} ≈ {y}"
        else
            Expect.equal (Array.map bits (numbers u)) (Array.map bits (numbers v)) $"{u.Model}, {u.Method}, {u.Split}"

/// The message of the `HybridException` that `f` raises (the test fails if it raises none).
let private raisedMessage (f: unit -> unit) : string =
    try
        f ()
        failtest "no HybridException was raised"
        ""
    with :? HybridException as e ->
        e.Message

/// The pharmacokinetics tasks under "tiny" in an order unlike the plan's (by task id), each run alone
/// (`Experiment.run` seeds the global generator from its own seed), its result written to JSON and read back.
let private pkFromTasks =
    lazy
        (let e = PharmacokineticsTasks.experiment

         e.Tasks "tiny"
         |> List.sortBy TaskSpec.id
         |> List.map (fun t ->
             let r = Experiment.run e "" t

             TaskResult.ofJson "memory" (TaskResult.toJson r)
             |> PharmacokineticsTasks.ofResult))

/// `rows` with every wall time ("seconds", "inference_seconds") set to 0.
let private stillRows (rows: Hybrid.Models.Common.ResultRow[]) =
    rows
    |> Array.map (fun r ->
        if r.Metric = "seconds" || r.Metric = "inference_seconds" then
            { r with Value = 0.0 }
        else
            r)

/// `o` with every wall time set to 0 (the one thing allowed to differ between two runs).
let private timeless (o: Pharmacokinetics.Outcome) : Pharmacokinetics.Outcome =
    let still (m: Pharmacokinetics.ModelResult) = {
        m with
            TrainSeconds = 0.0
            InferenceSeconds = 0.0
    }

    {
        o with
            Models = Array.map still o.Models
            Ablation = Array.map still o.Ablation
            Uncertainty = o.Uncertainty |> Array.map (fun u -> { u with Seconds = 0.0 })
            Rows = stillRows o.Rows
    }

/// The section's markdown of `o` (its files into a temporary folder, deleted after).
let private pkMarkdown (o: Pharmacokinetics.Outcome) : string =
    let dir = Path.Combine(Path.GetTempPath(), $"pk-tasks-{Guid.NewGuid()}")
    Directory.CreateDirectory dir |> ignore

    try
        PharmacokineticsReport.write dir o
    finally
        Directory.Delete(dir, true)

/// The tumour tasks under "tiny" in the reverse of the plan's order (the uncertainty and the ablation before the
/// physics fits they start from, the PINN before the hybrid whose D, r it uses), each run alone (`Experiment.run`
/// seeds the global generator from its own seed), its result written to JSON and read back.
let private tumourResults =
    lazy
        (let e = TumourTasks.experiment

         e.Tasks "tiny"
         |> List.rev
         |> List.map (fun t -> TaskResult.ofJson "memory" (TaskResult.toJson (Experiment.run e "" t))))

/// The parts and their results from `tumourResults`.
let private tumourFromTasks =
    lazy (tumourResults.Force() |> List.map TumourTasks.ofResult)

/// The tumour outcome `o` with every wall time set to 0.
let private tumourTimeless (o: Tumour.Outcome) : Tumour.Outcome =
    let still (m: Tumour.ModelResult) = {
        m with
            TrainSeconds = 0.0
            InferenceSeconds = 0.0
    }

    {
        o with
            Models = Array.map still o.Models
            Ablation = Array.map still o.Ablation
            Uncertainty = o.Uncertainty |> Array.map (fun u -> { u with Seconds = 0.0 })
            Rows = stillRows o.Rows
    }

/// The tumour section's markdown of `o` (its files into a temporary folder, deleted after).
let private tumourMarkdown (o: Tumour.Outcome) : string =
    let dir = Path.Combine(Path.GetTempPath(), $"tumour-tasks-{Guid.NewGuid()}")
    Directory.CreateDirectory dir |> ignore

    try
        TumourReport.write dir o
    finally
        Directory.Delete(dir, true)

let tests =
    testList "Tasks.Cases" [
        test "predator–prey from task results read back from JSON = the one-process run" {
            let s = PredatorPreyTasks.settings "tiny"
            let e = PredatorPreyTasks.experiment
            let tasks = e.Tasks "tiny"

            Expect.equal
                tasks.Length
                24
                "physics, 7 networks × 2 seeds, uncertainty: 4 models × 2 members and the hybrid's MC dropout"

            let fromTasks =
                tasks
                |> List.map (fun t ->
                    let r = Experiment.run e "" t
                    TaskResult.ofJson "memory" (TaskResult.toJson r) |> PredatorPreyTasks.ofResult)
                |> PredatorPrey.assemble s

            let direct = PredatorPrey.run s

            Expect.equal
                (fromTasks.Models |> Array.map (fun m -> m.Name))
                (direct.Models |> Array.map (fun m -> m.Name))
                "the same models in the same order"

            for a, b in Array.zip fromTasks.Models direct.Models do
                Expect.equal (bits a.TestMse) (bits b.TestMse) $"{a.Name}: test MSE"
                Expect.equal (Array.map bits a.SeedTestMse) (Array.map bits b.SeedTestMse) $"{a.Name}: per seed"
                Expect.equal (bits a.TrainMse) (bits b.TrainMse) $"{a.Name}: train MSE"
                Expect.equal (bits a.ValidationMse) (bits b.ValidationMse) $"{a.Name}: validation MSE"
                Expect.equal (bits a.PhysicsResidual) (bits b.PhysicsResidual) $"{a.Name}: physics residual"
                Expect.equal a.Epochs b.Epochs $"{a.Name}: epochs"
                Expect.equal a.Description b.Description $"{a.Name}: description"

                Expect.equal
                    (a.Parameters |> Array.map (fun (n, v) -> n, bits v))
                    (b.Parameters |> Array.map (fun (n, v) -> n, bits v))
                    $"{a.Name}: parameters"

                Expect.equal
                    (a.Forecast |> Array.map (Array.map bits))
                    (b.Forecast |> Array.map (Array.map bits))
                    $"{a.Name}: forecast"

            Expect.equal fromTasks.Models[4].SeedTestMse.Length 2 "two seeds"

            // The deep ensembles' members have their own seeds; MC dropout draws from the global generator, which a
            // task seeds at its start and the one-process run leaves as earlier work left it.
            let ensemble (o: PredatorPrey.Outcome) =
                o.Uncertainty |> Array.filter (fun u -> u.Method.StartsWith "deep ensemble")

            Expect.equal
                (ensemble fromTasks).Length
                12
                "4 models' ensembles: validation and test as trained, test recalibrated"

            sameCalibration (ensemble fromTasks) (ensemble direct)
        }

        test "pharmacokinetics from task results read back from JSON, in another order = the one-process run" {
            let s = PharmacokineticsTasks.settings "tiny"
            let tasks = PharmacokineticsTasks.experiment.Tasks "tiny"

            Expect.equal
                tasks.Length
                28
                "physics, 5 networks × 2 seeds, 4 ablation variants × the hybrid's 2 seeds, uncertainty: 4 models × 2 members and the hybrid's MC dropout"

            Expect.notEqual
                (pkFromTasks.Force() |> List.map (fun (p, _) -> p.Model, p.Seed))
                (tasks |> List.map (fun t -> t.Model, t.Seed))
                "the tasks run in another order than the plan's"

            let fromTasks = Pharmacokinetics.assemble s (pkFromTasks.Force())
            let direct = Pharmacokinetics.run s

            let same (what: string) (a: Pharmacokinetics.ModelResult[]) (b: Pharmacokinetics.ModelResult[]) =
                Expect.equal
                    (a |> Array.map (fun m -> m.Name))
                    (b |> Array.map (fun m -> m.Name))
                    $"{what}: the same rows"

                for a, b in Array.zip a b do
                    let numbers (m: Pharmacokinetics.ModelResult) =
                        Array.map bits [|
                            m.TestMse
                            m.InDistributionMse
                            m.TrainMse
                            m.ValidationMse
                            m.PhysicsResidual
                        |]

                    Expect.equal
                        (numbers a)
                        (numbers b)
                        $"{a.Name}: test, in-distribution, train, validation MSE, residual"

                    Expect.equal (Array.map bits a.SeedTestMse) (Array.map bits b.SeedTestMse) $"{a.Name}: per seed"
                    Expect.equal (Array.map bits a.Curve) (Array.map bits b.Curve) $"{a.Name}: curve"
                    Expect.equal a.Epochs b.Epochs $"{a.Name}: epochs"
                    Expect.equal a.Description b.Description $"{a.Name}: description"

                    Expect.equal
                        (a.Parameters |> Array.map (fun (n, v) -> n, bits v))
                        (b.Parameters |> Array.map (fun (n, v) -> n, bits v))
                        $"{a.Name}: parameters"

            same "models" fromTasks.Models direct.Models
            same "ablation" fromTasks.Ablation direct.Ablation

            // The rows the section's tables are computed from: the same rows in the same (plan) order, wall times aside.
            let key (r: Hybrid.Models.Common.ResultRow) =
                r.Case, r.Model, r.Split, r.Metric, r.Seed, bits r.Value

            Expect.equal
                (stillRows fromTasks.Rows |> Array.map key)
                (stillRows direct.Rows |> Array.map key)
                "the rows, wall times aside"

            Expect.equal fromTasks.Models.Length 7 "textbook, fitted and 5 network models"
            Expect.equal fromTasks.Ablation.Length 4 "the four ablation variants"
            Expect.equal fromTasks.Models[2].SeedTestMse.Length 2 "two seeds"

            // The deep ensembles' members and the MC-dropout masks have their own seeds.
            Expect.equal
                fromTasks.Uncertainty.Length
                15
                "4 models' ensembles and the hybrid's MC dropout: validation and test as trained, test recalibrated"

            sameCalibration fromTasks.Uncertainty direct.Uncertainty

            Expect.equal
                (pkMarkdown (timeless fromTasks))
                (pkMarkdown (timeless direct))
                "the section, wall times aside"
        }

        test "pharmacokinetics: a part missing from the results is named, an unknown part is refused" {
            let s = PharmacokineticsTasks.settings "tiny"

            let withoutHybrid =
                pkFromTasks.Force()
                |> List.filter (fun (p, _) -> not (p.Model = "hybrid" && p.Seed = s.Seed + 1000))

            Expect.stringContains
                (raisedMessage (fun () -> Pharmacokinetics.assemble s withoutHybrid |> ignore))
                $"the part hybrid (seed {s.Seed + 1000}) has no result"
                "names the missing part"

            let unknown =
                raisedMessage (fun () -> Pharmacokinetics.runPart s { Model = "GRU"; Seed = 0 } |> ignore)

            Expect.stringContains unknown "there is no part 'GRU'" "names the part"

            Expect.stringContains
                unknown
                "physics, hybrid, MLP, LSTM, Transformer, PINN, separate rates, lambda schedule, fused scalar, fused gate, uncertainty:hybrid, uncertainty:hybrid:MC dropout, uncertainty:MLP, uncertainty:LSTM, uncertainty:Transformer"
                "lists the parts"

            Expect.stringContains
                (raisedMessage (fun () ->
                    Pharmacokinetics.runPart { s with Ablation = false } { Model = "fused gate"; Seed = s.Seed }
                    |> ignore))
                "there is no part 'fused gate'"
                "no ablation part without the ablation"
        }

        test "tumour from task results read back from JSON, in reverse order = the one-process run" {
            let s = TumourTasks.settings "tiny"
            let tasks = TumourTasks.experiment.Tasks "tiny"

            Expect.equal
                tasks.Length
                29
                "physics, 5 networks and 4 ablation variants, each at 2 seeds (its noise draw and network seed), uncertainty: 4 models × 2 members and the hybrid's MC dropout"

            let fromTasks = Tumour.assemble s (tumourFromTasks.Force())
            let direct = Tumour.run s

            // Every number bit for bit, except the LSTM's and the transformer's: their last digits are not repeatable
            // from run to run (seen: 3e-16), so theirs agree to 1e-10.
            let same (what: string) (a: Tumour.ModelResult[]) (b: Tumour.ModelResult[]) =
                Expect.equal
                    (a |> Array.map (fun m -> m.Name))
                    (b |> Array.map (fun m -> m.Name))
                    $"{what}: the same rows"

                for a, b in Array.zip a b do
                    let numbers (m: Tumour.ModelResult) =
                        Array.concat [
                            [|
                                m.InDomainMse
                                m.OutOfDomainMse
                                m.TrainMse
                                m.ValidationMse
                                m.ResidualNorm
                            |]
                            m.SeedInDomainMse
                            m.SeedOutOfDomainMse
                            m.Kill
                            m.Burden |> Array.concat |> Array.collect (fun (t, u) -> [| t; u |])
                            m.Parameters |> Array.collect snd
                        ]

                    let x, y = numbers a, numbers b
                    Expect.equal x.Length y.Length $"{a.Name}: as many numbers"

                    if a.Name = "LSTM" || a.Name = "Transformer" then
                        for u, v in Array.zip x y do
                            Expect.isTrue
                                (abs (u - v) <= 1e-10 || (Double.IsNaN u && Double.IsNaN v))
                                $"{a.Name}: {u} against {v}"
                    else
                        Expect.equal
                            (Array.map bits x)
                            (Array.map bits y)
                            $"{a.Name}: MSEs, residual, curves, parameters"

                    Expect.equal (Array.map fst a.Parameters) (Array.map fst b.Parameters) $"{a.Name}: parameter names"
                    Expect.equal a.Epochs b.Epochs $"{a.Name}: epochs"
                    Expect.equal a.Description b.Description $"{a.Name}: description"

            same "models" fromTasks.Models direct.Models
            same "ablation" fromTasks.Ablation direct.Ablation
            Expect.equal fromTasks.Models.Length 7 "prior, fitted and 5 network models"
            Expect.equal fromTasks.Ablation.Length 4 "the four ablation variants"
            Expect.equal fromTasks.Models[1].SeedOutOfDomainMse.Length 2 "the fit at two seeds"
            Expect.equal (snd fromTasks.Models[2].Parameters[0]).Length 2 "the hybrid's D at two seeds"

            Expect.equal (bits fromTasks.TruthResidualNorm) (bits direct.TruthResidualNorm) "the truth's residual"

            Expect.equal
                fromTasks.Uncertainty.Length
                25
                "4 models' ensembles and the hybrid's MC dropout: validation, in and out of domain as trained, both recalibrated"

            // The rows the section's tables are computed from: the same rows in the same (plan) order, wall times aside;
            // every value bit for bit but the LSTM's and the transformer's, their ensemble members' included (to 1e-10,
            // as above).
            let key (r: Hybrid.Models.Common.ResultRow) =
                r.Case, r.Model, r.Split, r.Metric, r.Seed

            let rowsA, rowsB = stillRows fromTasks.Rows, stillRows direct.Rows
            Expect.equal (Array.map key rowsA) (Array.map key rowsB) "the rows, wall times aside"

            for a, b in Array.zip rowsA rowsB do
                if a.Model.Contains "LSTM" || a.Model.Contains "Transformer" then
                    Expect.isTrue
                        (abs (a.Value - b.Value) <= 1e-10
                         || (Double.IsNaN a.Value && Double.IsNaN b.Value))
                        $"{key a}: {a.Value} against {b.Value}"
                else
                    Expect.equal (bits a.Value) (bits b.Value) $"{key a}: the value"

            sameCalibration fromTasks.Uncertainty direct.Uncertainty

            Expect.equal
                (tumourMarkdown (tumourTimeless fromTasks))
                (tumourMarkdown (tumourTimeless direct))
                "the section, wall times aside"
        }

        test "tumour: the section's results file holds every task's row and the calibration rows it derives" {
            // In plan order, as a merge reads them (`tumourResults` is reversed).
            let results = tumourResults.Force() |> List.rev
            let dir = Path.Combine(Path.GetTempPath(), $"tumour-files-{Guid.NewGuid()}")
            Directory.CreateDirectory dir |> ignore

            try
                // As `Experiment.inProcess` and the sweep's merge do: assemble, then the section's rows to the file.
                Experiment.assemble TumourTasks.experiment dir "tiny" results |> ignore

                let key (r: Hybrid.Models.Common.ResultRow) =
                    r.Case, r.Model, r.Split, r.Metric, r.Seed, bits r.Value

                let written =
                    Hybrid.Models.Common.ResultRow.readCsv (Path.Combine(dir, Experiment.resultsFile TumourTasks.Name))
                    |> Array.map key

                // Every task's row is there, unchanged (the tumour's tables read the rows as the tasks wrote them).
                let taskRows = Experiment.resultRows results |> Array.map key
                Expect.equal written[.. taskRows.Length - 1] taskRows "the tasks' rows first, as written"

                // Then the calibration rows the section computed from the ensemble members' outputs: the ECE of the
                // hybrid's deep ensemble on each split it shows, the same values as the assembled outcome's.
                let o = Tumour.assemble (TumourTasks.settings "tiny") (tumourFromTasks.Force())
                let ensembles = o.Uncertainty |> Array.filter (fun m -> m.Model = "hybrid")
                Expect.isNonEmpty ensembles "the hybrid's calibration results"

                for m in ensembles do
                    let model =
                        if m.VarianceScale = 1.0 then
                            $"hybrid|{m.Method}"
                        else
                            $"hybrid|{m.Method}|recalibrated"

                    Expect.contains
                        written
                        (TumourTasks.Name, model, m.Split, "ece", 0, bits m.Calibration.Ece)
                        $"{model} on {m.Split}: its ECE"

                Expect.isTrue (File.Exists(Path.Combine(dir, "tumour-errors.csv"))) "the wide error table"
            finally
                Directory.Delete(dir, true)
        }

        test "tumour: a part missing from the results is named, an unknown part is refused" {
            let s = TumourTasks.settings "tiny"

            let withoutHybrid =
                tumourFromTasks.Force()
                |> List.filter (fun (p, _) -> not (p.Model = "hybrid" && p.Seed = 2))

            Expect.stringContains
                (raisedMessage (fun () -> Tumour.assemble s withoutHybrid |> ignore))
                "the part hybrid (seed 2) has no result"
                "names the missing part"

            let unknown =
                raisedMessage (fun () -> Tumour.runPart s { Model = "GRU"; Seed = 1 } |> ignore)

            Expect.stringContains unknown "there is no part 'GRU'" "names the part"

            Expect.stringContains
                unknown
                "physics, hybrid, neural ODE (no physics), LSTM, Transformer, PINN, separate rates, lambda schedule, fused scalar, fused gate, uncertainty:hybrid, uncertainty:hybrid:MC dropout, uncertainty:neural ODE (no physics), uncertainty:LSTM, uncertainty:Transformer"
                "lists the parts"

            Expect.stringContains
                (raisedMessage (fun () ->
                    Tumour.runPart { s with Ablation = false } { Model = "fused gate"; Seed = 1 }
                    |> ignore))
                "there is no part 'fused gate'"
                "no ablation part without the ablation"
        }
    ]
