/// The theophylline case: its compiled one-compartment model against the closed-form (Bateman) solution, a twin
/// experiment for the least-squares fit of ka, ke and V, the out-of-distribution split, and the quick run (fold 3:
/// train on subjects 1–8 up to 8 h, test on subjects 9–12 after 8 h; fixed seeds).
module Hybrid.Tests.Cases.PharmacokineticsTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Models.Cases

let private f64 = torch.ScalarType.Float64

// Without validation subjects or early stopping: every model trains on subjects 1–8 for its whole budget (what the
// hybrid's training-fit test checks; validation and early stopping have their own tests in `CaseTuningTests`).
let private outcome =
    lazy
        (Pharmacokinetics.run {
            Pharmacokinetics.quick with
                Seeds = 1
                Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
                EarlyStopping = Hybrid.Models.Common.EarlyStopping.off
        })

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

/// The closed-form one-compartment oral concentration (Bateman): dose ka / (V (ka − ke)) (e^(−ke t) − e^(−ka t)).
let private bateman (ka: float) (ke: float) (v: float) (dose: float) (t: float) =
    dose * ka / (v * (ka - ke)) * (exp (-ke * t) - exp (-ka * t))

/// The case's one-compartment model compiled with ka, ke, V.
let private oneCompartment (ka: float) (ke: float) (v: float) =
    let sim = Compiler.compile Compiler.defaults Pharmacokinetics.oneCompartmentModel
    (sim.Param "ka").Set ka
    (sim.Param "ke").Set ke
    (sim.Param "V").Set v
    sim

let tests =
    testSequenced
    <| testList "Cases.Pharmacokinetics" [
        test "the data set has 12 subjects and 132 samples, 12 of subjects 9–12 after 8 h" {
            let subjects = Pharmacokinetics.load ()
            Expect.equal subjects.Length 12 "subjects"
            Expect.equal (subjects |> Array.sumBy (fun s -> s.Times.Length)) 132 "samples"
            let pairs, _ = Pharmacokinetics.samples (fun t -> t > 8.0) subjects[8..11]
            Expect.equal pairs.Length 12 "three samples (≈ 9, 12, 24 h) per held-out subject"
        }

        test "the compiled one-compartment model matches the Bateman solution to 1e-8 at every subject's sampling times" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let subjects = Pharmacokinetics.load ()
            let sim = oneCompartment 1.5 0.087 0.5
            let pairs, _ = Pharmacokinetics.samples (fun _ -> true) subjects
            let doses = subjects |> Array.map (fun s -> s.Dose)

            let predicted =
                (Pharmacokinetics.predictAt sim 0.005 doses pairs).data<float>().ToArray()

            for (b, t), c in Array.zip pairs predicted do
                Expect.floatClose
                    { absolute = 1e-8; relative = 1e-8 }
                    c
                    (bateman 1.5 0.087 0.5 doses[b] t)
                    $"subject {subjects[b].Id} at {t} h"
        }

        // Twin: subjects 1–6's doses and sampling times, concentrations from ka 1.2 /h, ke 0.09 /h, V 0.45 L/kg plus
        // Gaussian noise of 0.3 mg/L (a fixed draw); the fit starts from the textbook values. Each estimate must lie
        // within 3 Gauss–Newton standard errors of the truth.
        test "twin: the least-squares fit recovers ka, ke and V within 3 standard errors" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let subjects = (Pharmacokinetics.load ())[0..5]
            let truth = [ "ka", 1.2; "ke", 0.09; "V", 0.45 ]
            let pairs, _ = Pharmacokinetics.samples (fun _ -> true) subjects
            use gen = new torch.Generator(20261205UL)

            let noise =
                torch.randn(int64 pairs.Length, dtype = f64, generator = gen).data<float>().ToArray()

            let synthetic =
                let mutable k = -1

                subjects
                |> Array.map (fun s -> {
                    s with
                        Concentrations =
                            s.Times
                            |> Array.map (fun t ->
                                k <- k + 1
                                bateman 1.2 0.09 0.45 s.Dose t + 0.3 * noise[k])
                })

            let sim, residuals, _ =
                Pharmacokinetics.fitOneCompartment 60 0.1 (fun _ -> true) synthetic

            let cov =
                Covariance.gaussNewton residuals (truth |> List.map (fst >> sim.Param) |> Array.ofList)

            truth
            |> List.iteri (fun k (n, t) ->
                let estimate = (sim.Param n).Get()
                let se = cov.StandardErrors[k]

                Expect.isLessThanOrEqual
                    (abs (estimate - t))
                    (3.0 * se)
                    $"{n} = {estimate:G5}: within 3 standard errors ({se:G3}) of {t}")
        }

        test "the fitted physics' curve is its own flow: its physics residual is round-off, every other model's is not" {
            let models = outcome.Force().Models
            let fitted = (model "1-cpt fitted").PhysicsResidual
            let others = models |> Array.filter (fun m -> m.Name <> "1-cpt fitted")
            let scale = others |> Array.map (fun m -> m.PhysicsResidual) |> Array.max
            Expect.isLessThan fitted (1e-9 * scale) $"1-cpt fitted: its own flow ({fitted} mg/L)"

            for m in others do
                Expect.isGreaterThan m.PhysicsResidual (1e-4 * scale) $"{m.Name}: {m.PhysicsResidual} mg/L"
        }

        // The hybrid starts as the fitted model (elimination term at zero, the fitted ka, ke, V: the least-squares
        // optimum of the physics on the same samples); it fits them better only if training through the solver works.
        test "fold 3: the hybrid fits the training samples better than the fitted model it starts from" {
            let h = model "hybrid (1-cpt + MLP elimination)"
            let fitted = model "1-cpt fitted"
            Expect.isLessThan h.TrainMse (0.97 * fitted.TrainMse) "hybrid train MSE < 97% of the fitted model's"
        }

        test "every row with a network (hybrids, MLPs, LSTM, transformer, PINN) reports its seeds and training budget" {
            for name in
                [
                    "hybrid (1-cpt + MLP elimination)"
                    "MLP C(t, dose)"
                    "LSTM"
                    "Transformer"
                    "PINN"
                ] do
                let m = model name
                Expect.equal m.SeedTestMse.Length 1 $"{name}: one test MSE per seed"
                Expect.equal m.Curve.Length 101 $"{name}: the shown subject's curve, 0–25 h every 0.25 h"
                Expect.isGreaterThan m.Epochs 0 $"{name}: epochs"
                Expect.isGreaterThan m.TrainSeconds 0.0 $"{name}: wall time"
        }

        // The ablation (tiny budgets, two seeds: the bookkeeping does not depend on them): every variant over the
        // hybrid's seeds with its budget, kept out of the model table, a fused model reporting its learned α, and the
        // section's one ablation table with a row per variant.
        test "a tiny run with Ablation gives the four ablation rows over the hybrid's seeds and one ablation table" {
            let s = {
                Pharmacokinetics.quick with
                    PhysicsIterations = 20
                    HybridIterations = 6
                    DataIterations = 10
                    SequenceIterations = 5
                    PinnIterations = 10
                    Seeds = 2
                    Ablation = true
                    Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
            }

            let o = Pharmacokinetics.run s

            let hybrid =
                o.Models |> Array.find (fun m -> m.Name = "hybrid (1-cpt + MLP elimination)")

            Expect.equal
                (o.Ablation |> Array.map (fun m -> m.Name) |> List.ofArray)
                Hybrid.Models.Common.AblationTable.names
                "the four variants in order"

            Expect.isFalse
                (o.Models
                 |> Array.exists (fun m -> Hybrid.Models.Common.AblationTable.isAblation m.Name))
                "no ablation row in the model table"

            for m in o.Ablation do
                Expect.equal m.SeedTestMse.Length 2 $"{m.Name}: the hybrid's two seeds"
                Expect.equal m.Epochs hybrid.Epochs $"{m.Name}: the hybrid's budget"
                Expect.notEqual m.SeedTestMse hybrid.SeedTestMse $"{m.Name}: another model than the hybrid"

            let alpha = o.Ablation[2].Parameters |> Array.find (fun (n, _) -> n = "α") |> snd
            Expect.notEqual alpha 0.5 "α was trained away from its start"
            Expect.isTrue (o.Ablation[3].Parameters |> Array.exists (fun (n, _) -> n = "mean gate α")) "the mean gate"

            let dir =
                System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"pk-ablation-{System.Guid.NewGuid()}")

            System.IO.Directory.CreateDirectory dir |> ignore

            try
                let md = Hybrid.Models.Report.PharmacokineticsReport.write dir o
                Expect.stringContains md "### Ablation: the proposal's mechanisms" "the ablation section"

                for m in o.Ablation do
                    Expect.stringContains md $"| {m.Name} | " $"{m.Name}: a row of the table"
            finally
                System.IO.Directory.Delete(dir, true)
        }
    ]
