/// Validation, early stopping and `hybrid tune` in pharmacokinetics, tumour, Lorenz-96 and climate: each case's validation block disjoint from its training and test data, a tiny run with
/// early stopping that reports a validation MSE (checked against the same MSE computed directly where a model has
/// no network), each search space's draws within its bounds, and the report's settings reading a tuning file from
/// $HYBRID_TUNING (a temporary folder) while "tiny" never does; and the no-physics control's description in
/// predator–prey and energy balance stating its own tuned width and rate.
module Hybrid.Tests.Tuning.CaseTuningTests

open System
open System.IO
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Report
open Hybrid.Models.Tuning

/// Every trial of every model of `search` under "quick" lies in its model's space: a log-uniform value within its
/// bounds, a listed value one of the list.
let private drawsWithin (search: TuningExperiment.Search) =
    for m in search.Models "quick" do
        for trial in 0 .. TuningExperiment.MaxTrials - 1 do
            let values = SearchSpace.draw m.DrawSeed m.Space trial
            Expect.equal (values |> Array.map fst) (m.Space |> List.map (fun p -> p.Name) |> Array.ofList) m.Model

            for p, (_, v) in Seq.zip m.Space values do
                match p.Range with
                | SearchSpace.LogUniform(low, high) ->
                    Expect.isTrue (v >= low && v <= high) $"{m.Model} trial {trial}: {p.Name} {v} in [{low}, {high}]"
                | SearchSpace.OneOf listed ->
                    Expect.contains listed v $"{m.Model} trial {trial}: {p.Name} {v} one of the list"

/// `settings "quick"` reads the tuning file of `case` from $HYBRID_TUNING (a temporary folder holding one written
/// here) and `settings "tiny"` does not: `tunedOf` gives a settings' tuned values.
let private readsTuningFile (case: string) (model: string) (tunedOf: string -> Map<string, Map<string, float>>) =
    let folder = Path.Combine(Path.GetTempPath(), $"hybrid-tuning-{Guid.NewGuid():N}")
    let before = Environment.GetEnvironmentVariable "HYBRID_TUNING"

    try
        TuningFile.write (TuningFile.path folder case) [ "test" ] [
            {
                Model = model
                Values = [| Tuned.LearningRate, 0.0123; Tuned.Width, 24.0 |]
                ValidationMse = 1.5
                Trials = 3
            }
        ]

        Environment.SetEnvironmentVariable("HYBRID_TUNING", folder)
        let quick = tunedOf "quick"
        Expect.equal (Tuned.value quick model Tuned.LearningRate nan) 0.0123 $"{case} quick: the file's rate"
        Expect.equal (Tuned.width quick model 0) 24 $"{case} quick: the file's width"
        Expect.equal (tunedOf "tiny") Tuned.none $"{case} tiny: never reads the file"
    finally
        Environment.SetEnvironmentVariable("HYBRID_TUNING", before)
        Directory.Delete(folder, true)

let tests =
    testSequenced
    <| testList "Tuning.Cases" [
        test "pharmacokinetics: the validation subjects are training subjects, disjoint from the fit and test ones" {
            let subjects = Pharmacokinetics.load ()

            for f in [ 1.0; 0.5; 0.25 ] do
                for subset in [ 0; 1; 2 ] do
                    for fold in [ 1; 2; 3 ] do
                        let s = {
                            Pharmacokinetics.quick with
                                TrainFraction = f
                                TrainSubset = subset
                        }

                        let where = $"fraction {f}, subset {subset}, fold {fold}"

                        let ids (xs: Pharmacokinetics.Subject[]) =
                            xs |> Array.map (fun x -> x.Id) |> Set.ofArray

                        let fit, validation = Pharmacokinetics.validationSplit s subjects fold
                        let kept = Pharmacokinetics.trainingSubjects s subjects fold
                        let test = set [ 4 * fold - 3 .. 4 * fold ]
                        Expect.equal (Set.union (ids fit) (ids validation)) (ids kept) $"{where}: fit ∪ validation"
                        Expect.isEmpty (Set.intersect (ids fit) (ids validation)) $"{where}: fit ∩ validation"
                        Expect.isEmpty (Set.intersect (ids validation) test) $"{where}: validation ∩ test"
                        Expect.isEmpty (Set.intersect (ids fit) test) $"{where}: fit ∩ test"

                        // round(0.2 n) of n kept subjects, none when fewer than two would be left to fit.
                        let expected =
                            let v = max 1 (int (Math.Round(0.2 * float kept.Length)))
                            if kept.Length - v < 2 then 0 else v

                        Expect.equal validation.Length expected $"{where}: 20%% of {kept.Length} held out"

            let fit, validation =
                Pharmacokinetics.validationSplit
                    {
                        Pharmacokinetics.quick with
                            EarlyStopping = EarlyStopping.off
                    }
                    subjects
                    3

            Expect.equal (fit.Length, validation.Length) (8, 0) "EarlyStopping.off: every training subject is fitted"
        }

        // The fitted physics has no network: its validation MSE must be the MSE of the same least-squares fit
        // (deterministic) on the fit subjects, predicting the validation subjects' samples up to 8 h. A tuning trial
        // of the hybrid with no tuned values trains exactly what the whole run trains from its first seed.
        test "pharmacokinetics: a tiny run reports validation MSEs, the fitted physics' equal to a direct computation" {
            // One seed, no ablation or uncertainty: the validation MSEs need no more.
            let s = {
                PharmacokineticsTasks.baseSettings "tiny" with
                    Seeds = 1
                    Ablation = false
                    Uncertainty = CaseUncertainty.off
            }

            let outcome = Pharmacokinetics.run s

            for m in outcome.Models do
                Expect.isTrue (Double.IsFinite m.ValidationMse && m.ValidationMse > 0.0) $"{m.Name}: {m.ValidationMse}"

            let subjects = Pharmacokinetics.load ()
            let fit, validation = Pharmacokinetics.validationSplit s subjects 3
            use _ = torch.NewDisposeScope()

            let sim, _, _ =
                Pharmacokinetics.fitOneCompartment s.PhysicsIterations s.Dt (fun t -> t <= s.Cutoff) fit

            let pairs, observed = Pharmacokinetics.samples (fun t -> t <= s.Cutoff) validation

            let direct =
                use _ = torch.no_grad ()

                (square (
                    Pharmacokinetics.predictAt sim s.Dt (validation |> Array.map (fun x -> x.Dose)) pairs
                    .- torch.tensor (observed, dtype = torch.float64)
                ))
                    .mean()
                    .ToDouble()

            let reported =
                (outcome.Models |> Array.find (fun m -> m.Name = "1-cpt fitted")).ValidationMse

            Expect.floatClose Accuracy.veryHigh reported direct "1-cpt fitted: validation MSE"

            let hybrid =
                (outcome.Models
                 |> Array.find (fun m -> m.Name = "hybrid (1-cpt + MLP elimination)"))
                    .ValidationMse

            Expect.equal
                (BitConverter.DoubleToInt64Bits(PharmacokineticsTuning.score "tiny" "hybrid" s.Seed [||]))
                (BitConverter.DoubleToInt64Bits hybrid)
                "the hybrid's trial with no tuned values: the run's validation MSE"

            // A trial runs its model's part alone: the hybrid (which fits the physics it starts from) and the MLP (which
            // does not).
            for model, offset in [ "hybrid", 0; "MLP", 1 ] do
                let tuned =
                    PharmacokineticsTuning.score "tiny" model (s.Seed + offset) [|
                        Tuned.LearningRate, 0.02
                        Tuned.Width, 4.0
                    |]

                Expect.isTrue (Double.IsFinite tuned && tuned > 0.0) $"{model}: a tuning trial's score: {tuned}"
        }

        test "pharmacokinetics: every model's trials draw within its search space" {
            drawsWithin PharmacokineticsTuning.search

            Expect.equal
                (PharmacokineticsTuning.models "quick" |> List.map (fun m -> m.Model))
                [ "hybrid"; "MLP"; "LSTM"; "Transformer"; "PINN" ]
                "every network model is tuned"
        }

        test "pharmacokinetics: the report's settings read tuning/pharmacokinetics.csv, tiny never does" {
            readsTuningFile PharmacokineticsTasks.Name "hybrid" (fun key -> (PharmacokineticsTasks.settings key).Tuned)
        }

        test
            "tumour: the validation times are the last kept training times, disjoint from the fit times and test schedules" {
            for f in [ 1.0; 0.5; 1.0 / 3.0; 1.0 / 6.0 ] do
                let s = { Tumour.quick with TrainFraction = f }
                let kept = Tumour.trainingTimes s
                let fit, held = Tumour.validationTimes s
                let where = $"fraction {f}"
                Expect.equal (fit + held) kept $"{where}: fit + validation = the kept times"

                // round(0.2 n) of n kept times, none when no time would be left to fit.
                let expected =
                    let v = max 1 (int (Math.Round(0.2 * float kept)))
                    if kept - v < 1 then 0 else v

                Expect.equal held expected $"{where}: 20%% of {kept} held out"
                let fitDays = set Tumour.Truth.ObservationTimes[.. fit - 1]
                let validationDays = set Tumour.Truth.ObservationTimes[fit .. kept - 1]
                Expect.isEmpty (Set.intersect fitDays validationDays) $"{where}: fit ∩ validation"

                if held > 0 then
                    Expect.isLessThan
                        (Set.maxElement fitDays)
                        (Set.minElement validationDays)
                        $"{where}: the last block"

            let _, held = Tumour.validationTimes Tumour.quick
            Expect.equal held 1 "all six times kept: day 12 held out"

            let names (xs: Tumour.Schedule[]) =
                xs |> Array.map (fun x -> x.Name) |> Set.ofArray

            Expect.isEmpty
                (Set.intersect (names Tumour.training) (names (Array.append Tumour.inDomain Tumour.outOfDomain)))
                "validation data come from the training schedules only, never a test schedule"
        }

        // The tuning trial of the hybrid (its part, its default rate and width) must train exactly what the whole run
        // trains (same seed, noise, fit times, physics start): its validation MSE equal to the whole run's.
        test "tumour: a tiny run reports validation MSEs, and a tuning trial scores the hybrid as the whole run does" {
            // One seed, no ablation or uncertainty: the validation MSEs need no more.
            let s = {
                TumourTasks.baseSettings "tiny" with
                    Seeds = [ 1 ]
                    Ablation = false
                    Uncertainty = CaseUncertainty.off
            }

            let outcome = Tumour.run s

            Expect.equal
                (outcome.Models |> Array.map (fun m -> m.Name))
                [|
                    "prior (log-kill, fixed prior values)"
                    "fitted (log-kill, D r k fitted)"
                    "hybrid (D r + MLP kill)"
                    ModelTable.NoPhysics
                    "LSTM"
                    "Transformer"
                    "PINN"
                |]
                "every model"

            for m in outcome.Models do
                Expect.isTrue (Double.IsFinite m.ValidationMse && m.ValidationMse > 0.0) $"{m.Name}: {m.ValidationMse}"

            // The PINN's trial also needs the hybrid's D, r of its seed.
            for key, name in [ "hybrid", "hybrid (D r + MLP kill)"; "PINN", "PINN" ] do
                let run = (outcome.Models |> Array.find (fun m -> m.Name = name)).ValidationMse

                Expect.equal
                    (BitConverter.DoubleToInt64Bits(TumourTuning.score "tiny" key 1 [||]))
                    (BitConverter.DoubleToInt64Bits run)
                    $"the {key}'s trial with no tuned values: the run's validation MSE"

            let off =
                Tumour.runPart
                    {
                        s with
                            EarlyStopping = EarlyStopping.off
                    }
                    { Model = "hybrid"; Seed = 1 }

            Expect.isTrue (Double.IsNaN off.Models[0].ValidationMse) "EarlyStopping.off: no validation times, NaN"
        }

        test "tumour: every model's trials draw within its search space" {
            drawsWithin TumourTuning.search

            Expect.equal
                (TumourTuning.models "quick" |> List.map (fun m -> m.Model))
                [ "hybrid"; ModelTable.NoPhysics; "LSTM"; "Transformer"; "PINN" ]
                "every network model is tuned"
        }

        test "tumour: the report's settings read tuning/tumour.csv, tiny never does" {
            readsTuningFile TumourTasks.Name ModelTable.NoPhysics (fun key -> (TumourTasks.settings key).Tuned)
        }

        test
            "lorenz96: the validation block is the training block's end, disjoint from the fit samples and the test run" {
            let samples = 600

            for f in [ 1.0; 0.5; 0.1 ] do
                for subset in [ 0; 1; 2 ] do
                    let s = {
                        Lorenz96.quick with
                            TrainFraction = f
                            TrainSubset = subset
                    }

                    let where = $"fraction {f}, subset {subset}"
                    let blockFirst, count = Lorenz96.trainingBlock s samples
                    let first, fit, held = Lorenz96.validationBlock s samples
                    Expect.equal (first, fit + held) (blockFirst, count) $"{where}: fit + validation = the kept block"

                    Expect.equal held (int (Math.Round(0.2 * float count))) $"{where}: 20%% of {count} samples held out"

                    let fitSamples = set [ first .. first + fit - 1 ]
                    let validation = set [ first + fit .. first + fit + held - 1 ]
                    Expect.isEmpty (Set.intersect fitSamples validation) $"{where}: fit ∩ validation"
                    Expect.isLessThan (Set.maxElement fitSamples) (Set.minElement validation) $"{where}: the last block"

                    // The test run starts at sample `samples` of the same truth run (after the training period).
                    Expect.isLessThan (Set.maxElement validation) samples $"{where}: before the test samples"
        }

        // A part's validation MSE must survive the task result (the sweep's carrier), and a tuning trial (the part
        // with its default width and rate) must score the part exactly as the report's run of it does.
        test "lorenz96: a tiny part reports validation MSEs through its task result, and a tuning trial scores it" {
            let s = Lorenz96Tasks.settings "tiny"
            let seed = List.head s.NetworkSeeds

            for model in [ "MLP"; "LSTM" ] do
                let r = Lorenz96.runPart s { Model = model; Seed = seed }

                for m in r.Models do
                    Expect.isTrue
                        (Double.IsFinite m.ValidationMse && m.ValidationMse > 0.0)
                        $"{model}: {m.Name}: {m.ValidationMse}"

                let task = Hybrid.Models.Tasks.TaskSpec.create Lorenz96Tasks.Name "tiny" model seed
                let _, back = Lorenz96Tasks.ofResult (Lorenz96Tasks.toResult task r)

                Expect.equal
                    (back.Models |> Array.map (fun m -> m.Name, m.ValidationMse))
                    (r.Models |> Array.map (fun m -> m.Name, m.ValidationMse))
                    $"{model}: validation MSEs through the task result"

                if model = "MLP" then
                    let trial = Lorenz96Tuning.score "tiny" model seed [||]
                    Expect.floatClose Accuracy.veryHigh trial r.Models[0].ValidationMse "the trial's validation MSE"
        }

        test "lorenz96: every part's trials draw within its search space" {
            drawsWithin Lorenz96Tuning.search

            Expect.equal
                (Lorenz96Tuning.models "quick" |> List.map (fun m -> m.Model))
                [ "MLP"; "CNN"; ModelTable.NoPhysics; "LSTM"; "Transformer" ]
                "every network part is tuned"
        }

        test "lorenz96: the report's settings read tuning/lorenz96.csv, tiny never does" {
            readsTuningFile Lorenz96Tasks.Name "CNN" (fun key -> (Lorenz96Tasks.settings key).Tuned)

            // Applied: the CNN part's channels and a-priori rate, the MLP's untouched.
            let tuned = {
                Lorenz96.quick with
                    Tuned = Tuned.withModel "CNN" [| Tuned.LearningRate, 0.0123; Tuned.Width, 24.0 |] Tuned.none
            }

            let cnn = Lorenz96.tunedFor "CNN" tuned
            Expect.equal (cnn.CnnChannels, cnn.LearningRate) (24, 0.0123) "CNN: channels and rate"
            let mlp = Lorenz96.tunedFor "MLP" tuned
            Expect.equal (mlp.Width, mlp.LearningRate) (Lorenz96.quick.Width, Lorenz96.quick.LearningRate) "MLP"
        }

        test "climate: every trained model's trials draw within its search space; the physics is not tuned" {
            drawsWithin ClimateTuning.search

            Expect.equal
                (ClimateTuning.models "quick" |> List.map (fun m -> m.Model))
                (ClimateModels.all
                 |> List.map (fun b -> b.Name)
                 |> List.filter ((<>) Climate.physics.Name))
                "every trained model is tuned"

            let seeds =
                ClimateTuning.models "quick" |> List.map (fun m -> m.Seed) |> List.distinct

            Expect.equal seeds [ List.head (ClimateTasks.seeds "quick") ] "every model from the first report seed"
        }

        test "climate: the report's settings read tuning/climate.csv, tiny never does; a model's rates are its own" {
            readsTuningFile ClimateTasks.Name Climate.hybrid.Name (fun key -> (ClimateTasks.settings key).Tuned)

            let tuned = {
                Climate.quick with
                    Tuned =
                        Tuned.none
                        |> Tuned.withModel Climate.hybrid.Name [| Tuned.LearningRate, 0.0123 |]
                        |> Tuned.withModel ClimateClassic.leith.Name [| Climate.CoefficientRateName, 0.0456 |]
            }

            let hybrid = Climate.tunedFor Climate.hybrid.Name tuned
            Expect.equal (hybrid.Rate, hybrid.CoefficientRate) (0.0123, Climate.quick.CoefficientRate) "hybrid"
            let leith = Climate.tunedFor ClimateClassic.leith.Name tuned
            Expect.equal (leith.Rate, leith.CoefficientRate) (Climate.quick.Rate, 0.0456) "Leith closure"
            let emulator = Climate.tunedFor ClimateEmulator.Name tuned

            Expect.equal
                (emulator.Rate, emulator.CoefficientRate)
                (Climate.quick.Rate, Climate.quick.CoefficientRate)
                "emulator"
        }

        // A trial is one build of the model with the trial's rate: its score must be the best validation error of
        // the same build done directly, and another rate must train differently (the rate reaches the optimiser).
        test "climate: a tuning trial scores the build's best validation error, and its rate reaches the training" {
            let s = ClimateTasks.settings "tiny"
            let d = Climate.data s
            let name = Climate.hybrid.Name
            // With the settings' threads, as the trial runs (float32 sums depend on the thread count).
            let direct = Climate.withThreads s (fun () -> Climate.build Climate.hybrid s d)
            let best = direct.ValidationLosses |> Array.filter Double.IsFinite |> Array.min
            let trial = ClimateTuning.score "tiny" name s.Seed [| Tuned.LearningRate, s.Rate |]
            Expect.floatClose Accuracy.veryHigh trial best "the trial with the default rate = the direct build"

            let other =
                ClimateTuning.score "tiny" name s.Seed [| Tuned.LearningRate, 30.0 * s.Rate |]

            Expect.notEqual other trial "a 30 × larger rate trains another model"

            Expect.throwsT<HybridException>
                (fun () -> ClimateTuning.score "tiny" Climate.physics.Name s.Seed [||] |> ignore)
                "the physics has nothing to tune"
        }

        // With a tuning file the control no longer shares the hybrid's width and rate: its description must state
        // its own (tiny runs of the control part with tuned values that no default equals).
        test "predator–prey and energy balance: the control's description states its tuned width and rate" {
            let values = [| Tuned.LearningRate, 0.0123; Tuned.Width, 24.0 |]
            let tuned = Tuned.withModel ModelTable.NoPhysics values Tuned.none

            let pp =
                PredatorPrey.runPart
                    {
                        PredatorPreyTasks.baseSettings "tiny" with
                            Tuned = tuned
                    }
                    {
                        Model = ModelTable.NoPhysics
                        Seed = (PredatorPreyTasks.baseSettings "tiny").Seed
                    }

            let eb =
                EnergyBalance.runPart
                    {
                        EnergyBalanceTasks.baseSettings "tiny" with
                            Tuned = tuned
                    }
                    {
                        Model = ModelTable.NoPhysics
                        Seed = (EnergyBalanceTasks.baseSettings "tiny").Seed
                    }

            for case, description in
                [
                    "predator–prey", pp.Models[0].Description
                    "energy balance", eb.Models[0].Description
                ] do
                Expect.stringContains description "24 units" $"{case}: the tuned width"
                Expect.stringContains description "0.0123" $"{case}: the tuned rate"
        }
    ]
