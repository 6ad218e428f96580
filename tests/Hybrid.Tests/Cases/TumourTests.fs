/// The tumour-growth twin in quick mode (one seed, fixed seeds): truth with a hidden saturating (Emax) kill,
/// training on a control arm and two low-dose schedules, tests on unseen timings (in-domain) and unseen,
/// higher-dose schedules (out-of-domain); pure-ML baselines, a PINN and the hybrid's uncertainty. One run shared
/// by the tests; the truth itself (128 cells, RK4, restricted to the models' 32) is checked separately.
module Hybrid.Tests.Cases.TumourTests

open System
open Expecto
open TorchSharp
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Report
open Hybrid.TensorArithmetic

/// The quick settings with one seed (the quick report's three triple the run time; the bookkeeping is the same),
/// without validation times or early stopping: every model fits all six observation times for its whole budget (what
/// the kill-curve tests check; validation and early stopping have their own tests in `CaseTuningTests`).
let private settings = {
    Tumour.quick with
        Seeds = [ 1 ]
        EarlyStopping = EarlyStopping.off
        Ablation = false
}

let private outcome = lazy (Tumour.run settings)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let private prior = "prior (log-kill, fixed prior values)"
let private fitted = "fitted (log-kill, D r k fitted)"
let private hybrid = "hybrid (D r + MLP kill)"

let private parameter (m: Tumour.ModelResult) name =
    m.Parameters |> Array.find (fun (n, _) -> n = name) |> snd |> Array.head

/// d/dt ∫u dx = ∫ (r u (1 − u) − k_max c/(EC50 + c) u) dx on a fine-step truth run (no flux leaves the domain,
/// so diffusion moves no mass): the change of ∫u over 12 days against the trapezoid rule of the right-hand
/// side, relative to the size of the change. Written from the stated equation, not from the compiled model.
let private massBalance (schedule: Tumour.Schedule) =
    let dt = 0.01
    let u, centres = Tumour.truthTrajectory dt schedule
    let dx = 10.0 / float centres.Length

    let source (i: int) =
        let t = float i * dt

        Array.map2
            (fun ui x ->
                let c = Tumour.concentration schedule t x

                Tumour.Truth.r * ui * (1.0 - ui)
                - Tumour.Truth.KMax * c / (Tumour.Truth.EC50 + c) * ui)
            u[i]
            centres
        |> Array.sum
        |> (*) dx

    let mass (i: int) = Array.sum u[i] * dx
    let last = u.Length - 1
    let change = mass last - mass 0

    let integral =
        [| 0 .. last - 1 |]
        |> Array.sumBy (fun i -> 0.5 * dt * (source i + source (i + 1)))

    change, abs (change - integral) / abs change

let tests =
    testSequenced
    <| testList "Cases.Tumour" [
        test "the truth obeys its stated equation: mass balance with no flux and the Emax kill" {
            let control, controlError = massBalance Tumour.training[0]
            Expect.isGreaterThan control 0.5 "without drug the tumour grows"
            Expect.isLessThan controlError 1e-3 "control arm: change of mass = ∫∫ r u (1 − u)"

            for schedule in Array.append Tumour.training Tumour.outOfDomain |> Array.skip 1 do
                let _, error = massBalance schedule
                Expect.isLessThan error 1e-3 $"{schedule.Name}: change of mass = ∫∫ (growth − Emax kill)"
        }

        test "the out-of-domain schedules reach concentrations the training never saw" {
            let o = outcome.Force()
            let top = o.KillConcentrations[o.KillConcentrations.Length - 1]
            Expect.isGreaterThan top (1.5 * o.TrainingMaxConcentration) "largest c out of domain vs training"
        }

        // The truth's grid converges: on 256 cells (Δx halved) the restricted truth moves by less than the
        // observation noise anywhere (training and out-of-domain schedules, every observation time and cell).
        test "the fine-grid truth has converged: halving its cell size changes it by less than the observation noise" {
            use _ = torch.NewDisposeScope()
            let schedules = Array.append Tumour.training Tumour.outOfDomain
            let times = Tumour.Truth.ObservationTimes

            let on cells =
                Tumour.restrictedTruth cells Tumour.Truth.Scheme Tumour.Truth.FineDt schedules times

            let change =
                (on Tumour.Truth.FineCells - on (2 * Tumour.Truth.FineCells)).abs().max().ToDouble()

            Expect.isLessThan change Tumour.quick.Noise $"largest change {change} from 128 to 256 cells"
        }

        // The inverse crime the truth avoids: the models' own grid and scheme (32 cells, Heun, Δt = 0.4) run on
        // the true equation. The restricted fine truth must differ from it by more than a tenth of the noise
        // (RMS over the training observations): the observations then carry the models' discretisation error.
        test
            "the truth is not the models' own discretisation: it differs from the 32-cell Heun run of the true equation" {
            use _ = torch.NewDisposeScope()
            let times = Tumour.Truth.ObservationTimes

            let fine =
                Tumour.restrictedTruth
                    Tumour.Truth.FineCells
                    Tumour.Truth.Scheme
                    Tumour.Truth.FineDt
                    Tumour.training
                    times

            let coarse =
                Tumour.restrictedTruth Tumour.Truth.Cells Tumour.quick.Scheme Tumour.quick.Dt Tumour.training times

            let rms = (fine - coarse).square().mean().sqrt().ToDouble()
            Expect.isGreaterThan rms (0.1 * Tumour.quick.Noise) $"RMS difference {rms}"
            Expect.isGreaterThan outcome.Value.TruthResidualNorm 1e-6 "the truth's residual on the models' grid"
        }

        test "the LSTM, transformer, PINN and no-physics rows report their seeds, epochs and training time" {
            for name, epochs in
                [
                    "LSTM", Tumour.quick.SequenceIterations
                    "Transformer", Tumour.quick.SequenceIterations
                    "PINN", Tumour.quick.PinnIterations
                    // The no-physics control: the hybrid's network epochs, over the same seeds.
                    ModelTable.NoPhysics, Tumour.quick.HybridEpochs
                ] do
                let m = model name
                let seeds = settings.Seeds.Length
                Expect.equal m.SeedOutOfDomainMse.Length seeds $"{name}: one out-of-domain MSE per seed"
                Expect.equal m.SeedInDomainMse.Length seeds $"{name}: one in-domain MSE per seed"
                Expect.equal m.Epochs epochs $"{name}: epochs"
                Expect.equal m.Burden.Length Tumour.outOfDomain.Length $"{name}: a burden curve per unseen schedule"
        }

        // The control must be the network and nothing else: its compiled right-hand side on the 32 cells equals
        // N(u, c) from the network called directly (non-zero output layer): no diffusion, growth or kill form.
        test "the no-physics control's right-hand side is the network alone: N(u, c) in every cell" {
            Hybrid.Engine.init ()
            use _ = torch.NewDisposeScope()
            let f64 = torch.ScalarType.Float64
            let net = new Hybrid.Training.Mlp("kill", 2, 1, 16, 2, dtype = f64)
            CaseTraining.initialise net 1 false
            let cells = 32L
            let u = (torch.linspace (0.0, 1.0, cells, dtype = f64)).reshape (1L, cells)
            let c = (torch.linspace (2.0, 0.0, cells, dtype = f64)).reshape (1L, cells)

            let sim =
                Hybrid.Compiler.Compiler.compile
                    {
                        Hybrid.Compiler.Compiler.defaults with
                            Forcings = Map [ "c", (fun _ -> c) ]
                            Modules = Map [ "N", (net :> torch.nn.Module<torch.Tensor, torch.Tensor>) ]
                    }
                    Tumour.neuralOdeModel

            Expect.isEmpty sim.Parameters "no scientific parameter"

            let theta = sim.Theta()

            let tendency = Hybrid.Numerics.Dynamics.total sim.Dynamics theta 0.0 [| u |]
            let rhs = tendency[0].reshape(-1L).data<float>().ToArray()

            let expected =
                (net.forward (torch.stack ([| u; c |], -1L))).reshape(-1L).data<float>().ToArray()

            Expect.equal rhs.Length 32 "one value per cell"

            for j in 0..31 do
                Expect.floatClose Accuracy.veryHigh rhs[j] expected[j] $"cell {j}"

            Expect.isGreaterThan (expected |> Array.map abs |> Array.max) 1e-3 "the network's output is not zero"
        }

        // The ablation's fused model must be what it claims: ŷ = α F + (1 − α) G with F the log-kill model's rollout
        // and G the neural ODE's, both from u(0, x), on a given forcing (two schedules, a non-zero network). α = 1 and
        // α = 0 (sigmoid(±800) is exactly 1 and 0 in float64, the scale 1) give each branch bit for bit; an α in
        // between the mix to round-off; the case's gate starts at 0.5 at every point.
        test "the ablation's fused model is α F + (1 − α) G of the log-kill model and the neural ODE" {
            Hybrid.Engine.init ()
            use _ = torch.NewDisposeScope()
            let f64 = torch.ScalarType.Float64
            let net = new Hybrid.Training.Mlp("kill", 2, 1, 16, 2, dtype = f64)
            CaseTraining.initialise net 1 false
            let cells = 32L

            let c =
                torch.stack (
                    [|
                        torch.linspace (2.0, 0.0, cells, dtype = f64)
                        torch.linspace (0.5, 0.1, cells, dtype = f64)
                    |]
                )

            let compile modules model =
                Hybrid.Compiler.Compiler.compile
                    {
                        Hybrid.Compiler.Compiler.defaults with
                            Forcings = Map [ "c", (fun t -> c .* exp (-0.3 * t)) ]
                            Modules = modules
                    }
                    model

            let physics = compile Map.empty Tumour.scientificModel
            (physics.Param "D").Set 0.04
            (physics.Param "r").Set 0.45
            (physics.Param "k").Set 0.8

            let neural =
                compile (Map [ "N", (net :> torch.nn.Module<torch.Tensor, torch.Tensor>) ]) Tumour.neuralOdeModel

            let options = {
                Hybrid.Numerics.Rollout.defaults with
                    Scheme = Tumour.quick.Scheme
                    Dt = Tumour.quick.Dt
                    SaveTimes = Array.init 11 (fun i -> 0.4 * float i)
                    FiniteCheckEvery = 0
            }

            let values (t: torch.Tensor) =
                t.detach().reshape(-1L).data<float>().ToArray()

            let f = values (physics.Simulate(physics.Initial 2, options).Values[0])
            let g = values (neural.Simulate(physics.Initial 2, options).Values[0])
            Expect.isGreaterThan (Array.map2 (fun a b -> abs (a - b)) f g |> Array.max) 1e-3 "the branches differ"
            let fusion = CaseTraining.fusionLayer (Hybrid.Training.FusionMode.Scalar 0.5) 1

            let fusedAt raw =
                use _ = torch.no_grad ()

                for p in fusion.parameters () do
                    withScalar raw p.fill_ |> ignore

                values (Tumour.fusedTrajectory fusion physics neural 2 options)

            Expect.equal (fusedAt 800.0) f "α = 1: the log-kill model's rollout"
            Expect.equal fusion.Alpha 1.0 "α = 1"
            Expect.equal (fusedAt -800.0) g "α = 0: the neural ODE's rollout"
            let mixed = fusedAt 0.7
            let alpha = 1.0 / (1.0 + exp -0.7)
            Expect.floatClose Accuracy.veryHigh fusion.Alpha alpha "α = sigmoid(0.7)"

            for i in 0 .. f.Length - 1 do
                Expect.floatClose
                    Accuracy.veryHigh
                    mixed[i]
                    (alpha * f[i] + (1.0 - alpha) * g[i])
                    $"point {i}: α F + (1 − α) G"

            let gate = CaseTraining.fusionLayer (Hybrid.Training.FusionMode.Gate(1, 16)) 1

            let gated =
                use _ = torch.no_grad ()
                values (Tumour.fusedTrajectory gate physics neural 2 options)

            Expect.equal gate.Alpha 0.5 "the gate starts at 0.5"

            for i in 0 .. f.Length - 1 do
                Expect.floatClose Accuracy.veryHigh gated[i] (0.5 * f[i] + 0.5 * g[i]) $"point {i}: (F + G) / 2"
        }

        // The ablation on tiny budgets over two seeds (the bookkeeping does not depend on the budget): the four
        // variants in order over the hybrid's seeds with its epochs, not in the model table, each another model than
        // the hybrid; the fused models report their learned α or mean gate; the model table is the same as without
        // the ablation (its first seed against a one-seed run); the section has one ablation table and its CSV file.
        test "a tiny run with Ablation gives the four ablation rows over the hybrid's seeds and leaves the table alone" {
            // One seed without the ablation or the uncertainty experiment (the "tiny" key has both).
            let tiny = {
                TumourTasks.baseSettings "tiny" with
                    HybridEpochs = 6
                    SequenceIterations = 5
                    PinnIterations = 5
                    Seeds = [ 1 ]
                    Ablation = false
                    Uncertainty = CaseUncertainty.off
            }

            let o =
                Tumour.run {
                    tiny with
                        Seeds = [ 1; 2 ]
                        Ablation = true
                }

            let alone = Tumour.run tiny
            let h = o.Models |> Array.find (fun m -> m.Name = hybrid)

            Expect.equal
                (o.Ablation |> Array.map (fun m -> m.Name) |> List.ofArray)
                AblationTable.names
                "the four variants in order"

            Expect.isFalse
                (o.Models |> Array.exists (fun m -> AblationTable.isAblation m.Name))
                "no ablation row in the table"

            for m in o.Ablation do
                Expect.equal m.SeedOutOfDomainMse.Length 2 $"{m.Name}: one out-of-domain MSE per hybrid seed"
                Expect.equal m.SeedInDomainMse.Length 2 $"{m.Name}: one in-domain MSE per hybrid seed"
                Expect.equal m.Epochs h.Epochs $"{m.Name}: the hybrid's budget"
                Expect.notEqual m.SeedOutOfDomainMse h.SeedOutOfDomainMse $"{m.Name}: another model than the hybrid"

                Expect.isTrue
                    (m.SeedOutOfDomainMse |> Array.forall (fun v -> Double.IsFinite v && v > 0.0))
                    $"{m.Name}: finite MSEs"

            let alpha = o.Ablation[2].Parameters |> Array.find (fun (n, _) -> n = "α") |> snd
            Expect.all alpha (fun a -> a <> 0.5) "α was trained away from its start (each seed)"

            for m in o.Ablation[2..] do
                for name in [ "D"; "r"; "k" ] do
                    Expect.isTrue
                        (m.Parameters |> Array.exists (fun (n, _) -> n = name))
                        $"{m.Name}: the log-kill {name}"

            Expect.isTrue (o.Ablation[3].Parameters |> Array.exists (fun (n, _) -> n = "mean gate α")) "the mean gate"

            // To round-off: the LSTM and transformer differ by ~1e-16 between two runs in one process anyway.
            for m in alone.Models do
                let same = o.Models |> Array.find (fun x -> x.Name = m.Name)

                for mse in
                    [
                        (fun (x: Tumour.ModelResult) -> x.SeedOutOfDomainMse[0])
                        (fun x -> x.SeedInDomainMse[0])
                    ] do
                    Expect.floatClose Accuracy.veryHigh (mse same) (mse m) $"{m.Name}: unmoved by the ablation"

            Expect.isEmpty alone.Ablation "no ablation without Ablation"

            let dir =
                IO.Path.Combine(IO.Path.GetTempPath(), $"tumour-ablation-{Guid.NewGuid()}")

            IO.Directory.CreateDirectory dir |> ignore

            try
                let md = TumourReport.write dir o
                Expect.stringContains md "### Ablation: the proposal's mechanisms" "the ablation section"

                for m in o.Ablation do
                    Expect.stringContains md $"| {m.Name} | " $"{m.Name}: a row of the table"

                let csv = Hybrid.Training.Csv.read (IO.Path.Combine(dir, "tumour-ablation.csv"))
                Expect.equal csv.Rows.Length 5 "the hybrid and four variants"
            finally
                IO.Directory.Delete(dir, true)
        }

        test "the uncertainty of the hybrid and the pure-ML models: in and out of domain, finite and well formed" {
            let u = outcome.Force().Uncertainty

            // These settings hold no validation times out (`EarlyStopping.off`): nothing to recalibrate on.
            Expect.equal
                u.Length
                10
                "5 methods (4 models' ensembles, the hybrid's MC dropout): in and out of domain as trained, no validation split"

            Expect.isFalse (u |> Array.exists (fun r -> r.VarianceScale <> 1.0)) "no recalibrated rows"

            let cells = Tumour.Truth.Cells * Tumour.Truth.ObservationTimes.Length

            for r in u |> Array.filter (fun r -> r.Split <> CaseUncertainty.Validation) do
                CaseUncertaintyTests.checkResult r

                let schedules =
                    if r.Split.StartsWith "in domain" then
                        Tumour.inDomain.Length
                    else
                        Tumour.outOfDomain.Length

                Expect.equal r.Points (schedules * cells) $"{r.Method}, {r.Split}: every cell at every observation time"
                Expect.isGreaterThan r.ModelStd 0.0 $"{r.Method}, {r.Split}: the members or passes differ"
        }

        test "the fitted log-kill model fits the training schedules better than the prior" {
            Expect.isLessThan (model fitted).TrainMse (model prior).TrainMse "fitted < prior on training"
        }

        // The issue's claim, with fixed seeds, against the fine-grid truth. Quick mode, seed 1: out of domain hybrid
        // ≈ 4.4e-5 against ≈ 8.2e-4 for the prior and ≈ 4.7e-3 for the fitted log-kill model, whose linear kill
        // overshoots at high doses; in domain hybrid ≈ 1.2e-3, prior ≈ 5.5e-3, fitted ≈ 3.6e-3 (in domain is the
        // harder split now: its doses at odd days fall between the models' 0.4-day steps, which the fine truth
        // resolves).
        test "the hybrid beats the fixed-parameter (prior) model on the out-of-domain schedules" {
            Expect.isLessThan (model hybrid).OutOfDomainMse (model prior).OutOfDomainMse "hybrid < prior, OOD"
        }

        test "the hybrid beats both physics models in domain and the fitted one out of domain" {
            let h = model hybrid
            Expect.isLessThan h.InDomainMse (model prior).InDomainMse "hybrid < prior, in-domain"
            Expect.isLessThan h.InDomainMse (model fitted).InDomainMse "hybrid < fitted, in-domain"
            Expect.isLessThan h.OutOfDomainMse (model fitted).OutOfDomainMse "hybrid < fitted, OOD"
        }

        // Quick mode at c ≈ 4.4: truth ≈ 1.06, hybrid ≈ 1.04, fitted ≈ 4.9 /day.
        test "the hybrid's kill saturates like the truth; the fitted linear kill overshoots at high doses" {
            let o = outcome.Force()
            let last = o.KillConcentrations.Length - 1
            let truth = o.TrueKill[last]
            Expect.isLessThan (abs ((model hybrid).Kill[last] - truth) / truth) 0.3 "hybrid kill at the top"
            Expect.isGreaterThan ((model fitted).Kill[last]) (2.0 * truth) "fitted kill at the top"
        }

        // Replaces "D and r within 30%", which the misspecified log-kill model passes too. On the fine-grid truth
        // the log-kill model's D and r are as close as the hybrid's (quick mode, seed 1: fitted D 0.0308, r 0.485;
        // hybrid D 0.0335, r 0.476): D and r do not tell the two apart, the kill does. Over the whole tabulated
        // range 0 … 4.4 the hybrid's kill must be within 15% of the truth (RMS, relative to the truth's RMS) and the
        // log-kill model's more than 50% off.
        test "the hybrid's kill curve follows the truth over the whole concentration range; the log-kill one does not" {
            let o = outcome.Force()

            let relativeRms (kill: float[]) =
                sqrt (Array.fold2 (fun acc k t -> acc + (k - t) * (k - t)) 0.0 kill o.TrueKill)
                / sqrt (Array.sumBy (fun t -> t * t) o.TrueKill)

            let h, f = relativeRms (model hybrid).Kill, relativeRms (model fitted).Kill
            Expect.isLessThan h 0.15 $"hybrid kill: relative RMS error {h}"
            Expect.isGreaterThan f 0.5 $"log-kill: relative RMS error {f}"
        }
    ]
