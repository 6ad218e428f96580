/// Hyper-parameter tuning (`Hybrid.Models.Tuning`) and the validation split with early stopping: seeded trials from
/// a log-uniform range (checked at its quartiles, not just its bounds) and from a list, the choice of the trial with
/// the lowest validation MSE on given numbers, the tuning file read back exactly (a model name with a comma and a
/// quote), the validation blocks of predator–prey and energy balance disjoint from their training and test years,
/// and early stopping that stops a run and restores the weights of its best validation epoch.
module Hybrid.Tests.Tuning.TuningTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks
open Hybrid.Models.Tuning

let private rate = SearchSpace.logUniform Tuned.LearningRate 1e-3 1e-1
let private width = SearchSpace.oneOf Tuned.Width [ 8.0; 16.0; 32.0 ]

/// The q-quantile (0 < q < 1) of `values` (the order statistic at ⌈q·n⌉).
let private quantile (q: float) (values: float[]) =
    let sorted = Array.sort values
    sorted[int (ceil (q * float sorted.Length)) - 1]

let private trialResult (model: string) (trial: int) (mse: float) (lr: float) =
    let task = {
        TaskSpec.create "tune-test" "tiny" model 1 with
            Trial = Some trial
    }

    Experiment.result
        task
        [|
            {
                Case = "test"
                Model = model
                Split = "validation"
                Metric = "mse"
                Seed = 1
                Value = mse
            }
            {
                Case = "test"
                Model = model
                Split = ""
                Metric = ResultRow.ParameterPrefix + Tuned.LearningRate
                Seed = 1
                Value = lr
            }
        |] [||] [||]

let tests =
    testList "Tuning" [
        // log10 of a log-uniform draw on [1e-3, 1e-1] is uniform on [−3, −1]: its quartiles are −2.5, −2, −1.5 (a
        // uniform draw on the values would put its median at 0.05, log10 −1.3). The sample q-quantile of 4000 draws
        // of U(0, 1) has sd ≤ 0.5/√4000 ≈ 0.008, 0.016 in log10 units here; the tolerance is 5 sd (0.08).
        test "a log-uniform hyper-parameter: seeded, within its bounds, its quartiles those of log-uniform" {
            let random = Random 7
            let draws = Array.init 4000 (fun _ -> SearchSpace.sample random rate)
            let again = Array.init 4000 (fun _ -> SearchSpace.sample (Random 7) rate)
            Expect.equal draws[0] again[0] "the same seed gives the same first draw"

            Expect.isTrue (draws |> Array.forall (fun v -> v >= 1e-3 && v <= 1e-1)) "every draw within [1e-3, 1e-1]"

            for q, expected in [ 0.25, -2.5; 0.5, -2.0; 0.75, -1.5 ] do
                let actual = log10 (quantile q draws)

                Expect.isLessThan
                    (abs (actual - expected))
                    0.08
                    $"log10 of the {q} quantile: {actual}, log-uniform: {expected}"
        }

        // Each of three widths is drawn with probability 1/3: 3000 draws give each 1000 ± 26 (binomial sd); the
        // tolerance is 4 sd.
        test "a list hyper-parameter draws only its values, each about equally often" {
            let random = Random 11
            let draws = Array.init 3000 (fun _ -> SearchSpace.sample random width)
            let counts = draws |> Array.countBy id |> Map.ofArray
            Expect.equal (counts.Keys |> Seq.sort |> List.ofSeq) [ 8.0; 16.0; 32.0 ] "only the listed widths"

            for KeyValue(w, n) in counts do
                Expect.isLessThan (abs (float n - 1000.0)) 104.0 $"width {w}: drawn {n} times of 3000"
        }

        test "trials are seeded and do not depend on how many are drawn" {
            let space = [ rate; width ]
            let trials = Array.init 8 (SearchSpace.draw 42 space)
            let random = Random 42

            let expected =
                Array.init 8 (fun _ -> space |> List.map (fun p -> p.Name, SearchSpace.sample random p) |> Array.ofList)

            Expect.equal trials expected "trial i is the (i + 1)-th draw of Random 42"
            Expect.equal (SearchSpace.draw 42 space 5) trials[5] "drawn alone, trial 5 has the same values"
            Expect.notEqual (SearchSpace.draw 43 space 0) trials[0] "another seed gives other values"
        }

        test "the chosen trial is the one with the lowest finite validation MSE" {
            let scores =
                [ 5.0; 2.5; nan; 2.0; infinity; 2.0 ]
                |> List.mapi (fun i mse -> {
                    Selection.Trial = i
                    Selection.Values = [| Tuned.LearningRate, float i |]
                    Selection.ValidationMse = mse
                })

            Expect.equal (Selection.best "m" scores).Trial 3 "trial 3 (2.0; trial 5 ties and comes later)"

            Expect.throwsT<HybridException>
                (fun () ->
                    Selection.best "m" (scores |> List.map (fun s -> { s with ValidationMse = nan }))
                    |> ignore)
                "no finite MSE: an error, not a pick"

            let chosen =
                TuningExperiment.choose [
                    trialResult "a" 0 3.0 1e-3
                    trialResult "a" 1 1.0 2e-3
                    trialResult "a" 2 2.0 3e-3
                    trialResult "b" 0 0.5 4e-3
                    trialResult "b" 1 0.7 5e-3
                ]

            Expect.equal
                chosen
                [
                    {
                        Model = "a"
                        Values = [| Tuned.LearningRate, 2e-3 |]
                        ValidationMse = 1.0
                        Trials = 3
                    }
                    {
                        Model = "b"
                        Values = [| Tuned.LearningRate, 4e-3 |]
                        ValidationMse = 0.5
                        Trials = 2
                    }
                ]
                "each model's argmin with its trial count"
        }

        test "the tuning file reads back exactly, a model name with a comma and a quote included" {
            let chosen: TuningFile.Chosen list = [
                {
                    Model = "hybrid (LV, \"MLP\")"
                    Values = [| Tuned.LearningRate, 0.1 + 0.2; Tuned.Width, 16.0 |]
                    ValidationMse = 1.0 / 3.0
                    Trials = 8
                }
                {
                    Model = "LSTM"
                    Values = [| Tuned.LearningRate, 3.3e-3 |]
                    ValidationMse = 12.5
                    Trials = 8
                }
            ]

            let text = TuningFile.format [ "from a test, settings \"tiny\"" ] chosen
            Expect.stringStarts text "# from a test" "the comment comes first"
            Expect.equal (TuningFile.parse "test" text) chosen "parse ∘ format = id"

            let values = TuningFile.values chosen
            Expect.equal (Tuned.value values "hybrid (LV, \"MLP\")" Tuned.LearningRate nan) (0.1 + 0.2) "the rate"
            Expect.equal (Tuned.width values "hybrid (LV, \"MLP\")" 4) 16 "the width"
            Expect.equal (Tuned.width values "LSTM" 4) 4 "not tuned: the fallback"
        }

        test "predator–prey: the validation years lie between the training years and the test years" {
            for f in [ 1.0; 0.5; 0.25 ] do
                for subset in [ 0; 1; 2; 3 ] do
                    let s = {
                        PredatorPrey.quick with
                            TrainFraction = f
                            TrainSubset = subset
                    }

                    let k = PredatorPrey.selection s 16
                    let fit = [ k.FirstYear .. k.FirstYear + k.KeptYears - k.ValidationYears - 1 ]

                    let validation = [
                        k.FirstYear + k.KeptYears - k.ValidationYears .. k.FirstYear + k.KeptYears - 1
                    ]

                    let test = [ 16..20 ]
                    let where = $"fraction {f}, subset {subset}"
                    Expect.isGreaterThan validation.Length 0 $"{where}: a validation block"
                    Expect.isEmpty (Set.intersect (set fit) (set validation)) $"{where}: validation ∩ training"
                    Expect.isEmpty (Set.intersect (set validation) (set test)) $"{where}: validation ∩ test"
                    Expect.equal (List.max validation) (k.FirstYear + k.KeptYears - 1) $"{where}: the kept block's end"
                    Expect.isLessThan (List.max fit) (List.min validation) $"{where}: the last block"
        }

        test "energy balance: the validation years lie between the training years and the test years" {
            for f in [ 1.0; 0.5 ] do
                for subset in [ 0; 1; 2 ] do
                    let s = {
                        EnergyBalance.quick with
                            TrainFraction = f
                            TrainSubset = subset
                    }

                    let first, fit, validation = EnergyBalance.split s 121
                    let where = $"fraction {f}, subset {subset}"
                    let covered = snd (EnergyBalance.trainingYears s 121)
                    Expect.equal (fit + validation) covered $"{where}: fit + validation = the covered years"

                    Expect.equal
                        validation
                        (int (Math.Round(0.2 * float covered)))
                        $"{where}: 20%% of {covered} years held out"

                    Expect.isLessThan (first + fit + validation) 122 $"{where}: before the test years (from 121)"
        }

        // w starts at 0 and is pulled towards 1 (the training loss (w − 1)²) while validation scores (w − 0.4)²: it
        // is best near w = 0.4 and worse after. With patience 5 epochs, the run stops long before its 400 epochs
        // and puts back the best epoch's w, so the validation MSE after training equals the minimum of the history.
        test "early stopping stops a run and restores the best validation epoch" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let net = torch.nn.Linear(1L, 1L, hasBias = false, dtype = torch.float64)
            use _ = torch.no_grad ()
            withScalar 0.0 (net.weight.fill_) |> ignore
            let w () = net.weight.reshape(-1L)[0L]
            let score () = (square (w () .- 0.4)).ToDouble()

            let check: EarlyStopping.Check = {
                Score = score
                Rule = {
                    EarlyStopping.defaults with
                        Every = 1
                        Patience = 5.0 / 400.0
                }
            }

            Expect.equal (EarlyStopping.patience check.Rule 400) 5 "patience: 5 of 400 epochs"

            let fit =
                torch.set_grad_enabled true |> ignore
                CaseTraining.networkWith (Some check) net 0.01 400 1 (fun _ -> square (w () .- 1.0))

            let history = fit.ValidationLosses |> Array.filter (fun v -> not (Double.IsNaN v))
            Expect.isTrue fit.StoppedEarly "stopped early"
            Expect.isLessThan fit.Epochs 400 "before the last epoch"
            Expect.equal fit.Epochs (fit.BestEpoch + 5) "five epochs after the best one"
            Expect.equal (score ()) (Array.min history) "the best epoch's weights are back"
            Expect.isLessThan (Array.min history) history[history.Length - 1] "the last epoch was worse"
        }

        test "a trial the library stops (a blow-up) scores +∞ with its reason, and the search picks another" {
            let search: TuningExperiment.Search = {
                Case = "fake"
                Title = "fake"
                Models =
                    fun _ -> [
                        {
                            Model = "net"
                            Seed = 1
                            Space = [ rate ]
                            DrawSeed = 5
                        }
                    ]
                Score =
                    fun _ _ _ values ->
                        let lr = snd values[0]

                        if lr > 0.01 then
                            raise (HybridException "Field 'u' is blowing up")
                        else
                            lr
            }

            let results = [
                for t in TuningExperiment.tasks search "quick" 8 -> TuningExperiment.run search t
            ]

            let rates = [
                for t in 0..7 -> snd ((TuningExperiment.trialValues search "quick" "net" t).[0])
            ]

            Expect.isTrue (rates |> List.exists (fun r -> r > 0.01)) "some trial blows up"
            Expect.isTrue (rates |> List.exists (fun r -> r <= 0.01)) "some trial does not"

            for r, lr in List.zip results rates do
                let mse = ResultRow.value "net" "validation" "mse" r.Rows

                if lr > 0.01 then
                    Expect.equal mse infinity "+∞"
                    Expect.equal (TaskResult.text "failed" r) "Field 'u' is blowing up" "the reason"
                else
                    Expect.equal mse lr "the score"
                    Expect.isEmpty r.Texts "no failure text"

            let chosen = TuningExperiment.choose results

            Expect.equal
                chosen.Head.ValidationMse
                (rates |> List.filter (fun r -> r <= 0.01) |> List.min)
                "the best finite"
        }
    ]
