/// The energy-balance case: the compiled two-box model against its analytic step response, twin experiments
/// (parameter recovery from noisy synthetic anomalies; a hybrid against the same physics without its network when
/// the truth has a term the physics lacks), and the quick run on the real record 1880–2018 (trained on 1880–2000,
/// tested on 2001–2018; one run shared by the tests).
module Hybrid.Tests.Cases.EnergyBalanceTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training
open Hybrid.Numerics
open Hybrid.TensorArithmetic
open Hybrid.Models.Cases

let private outcome =
    lazy (EnergyBalance.run { EnergyBalance.quick with Seeds = 1 })

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let private parameter (m: EnergyBalance.ModelResult) name =
    m.Parameters |> Array.find (fun (n, _) -> n = name) |> snd

let private f64 = torch.ScalarType.Float64

/// Sets C, C_d (physical units), λ, γ and T₀ of a compiled two-box model.
let private setPhysical (sim: Hybrid.Compiler.Simulator) (values: float[]) (t0: float) =
    Array.iteri (fun i name -> (sim.Param name).Set(values[i] / EnergyBalance.scales[i])) EnergyBalance.parameterNames

    (sim.Param "T0").Set t0

/// The truth of the twins: C 8, C_d 90 W yr/m²/K, λ 1.3, γ 0.6 W/m²/K, T₀ = −0.2 °C (not the literature values
/// the fits start from).
let private truth = [| 8.0; 90.0; 1.3; 0.6 |]

let private truthOffset = -0.2

/// The surface record of `sim` over `years` years, without gradients, detached.
let private surfaceOf (sim: Hybrid.Compiler.Simulator) years =
    use _ = torch.no_grad ()
    (fst (EnergyBalance.simulateRecord sim years)).detach().clone ()

/// `record` plus Gaussian noise of standard deviation `sigma` from a generator seeded with `seed`.
let private noisy (record: torch.Tensor) (sigma: float) (seed: int) =
    use generator = new torch.Generator(uint64 seed)

    record
    .+ torch.randn (record.shape, dtype = f64, generator = generator) .* sigma

/// The truth of the hybrid twin: `physicsModel` with the truth's values fixed and an extra feedback
/// −0.3 (T − T₀)² W/m² on the surface budget.
let private feedbackTruth =
    let v (x: float) =
        x.ToString("R", Globalization.CultureInfo.InvariantCulture)

    Parse.model
        $"""
model two_box_with_feedback
domain point
field A
field D
forcing F
param c = {v (truth[0] / 10.0)} fixed
param cd = {v (truth[1] / 100.0)} fixed
param lambda = {v truth[2]} fixed
param gamma = {v truth[3]} fixed
param T0 = {v truthOffset} fixed
dA/dt = (F - lambda*(A - T0) - gamma*(A - T0 - D) - 0.3*(A - T0)*(A - T0))/(10*c)
dD/dt = gamma*(A - T0 - D)/(100*cd)
initial A = T0
initial D = 0
"""

let tests =
    testSequenced
    <| testList "Cases.EnergyBalance" [
        test "the data run 1880–2018 and the CO2 reconstruction fits Mauna Loa" {
            let d = EnergyBalance.load ()
            Expect.equal d.Years.Length 139 "years 1880–2018"
            Expect.equal (d.Years[0], d.Years[138]) (1880, 2018) "first and last year"
            Expect.equal d.Co2FitYears (1959, 2014) "fit years"
            Expect.isTrue (d.Co2Slope > 0.15 && d.Co2Slope < 0.4) $"a = {d.Co2Slope} ppm/GtC"
            Expect.isLessThan d.Co2FitRmse 8.0 "fit RMSE (ppm): a straight line through 280 ppm misses by about 6"
            Expect.isTrue (d.Forcing[138] > 1.8 && d.Forcing[138] < 2.2) $"F(2018) = {d.Forcing[138]} W/m2"
            Expect.isTrue (d.Co2[0] > 280.0 && d.Co2[0] < 295.0) $"C(1880) = {d.Co2[0]} ppm"
        }

        // Under a constant forcing F from (T₀, 0), T − T₀ = F/λ + a₁ e^{μ₁t} + a₂ e^{μ₂t} with μ₁,₂ the eigenvalues
        // of [−(λ + γ)/C, γ/C; γ/C_d, −γ/C_d], a₁ + a₂ = −F/λ and μ₁a₁ + μ₂a₂ = dT/dt(0) = F/C; the deep box
        // T_d = F/λ + b₁ e^{μ₁t} + b₂ e^{μ₂t} with bᵢ = aᵢ (C μᵢ + λ + γ)/γ (the first equation). The compiled
        // model with RK4 at Δt = 0.05 yr (not the case's yearly Euler step): its error, O(Δt⁴), is far below 1e-6 °C.
        test "the compiled two-box EBM under a step forcing is the analytic sum of two exponentials (1e-6 °C)" {
            Engine.init ()
            let c, cd, lambda, gamma = truth[0], truth[1], truth[2], truth[3]
            let f = 3.7
            let sim = EnergyBalance.compileWith [| f; f |] [] EnergyBalance.physicsModel
            setPhysical sim truth truthOffset
            let times = Array.init 41 (fun i -> 5.0 * float i)

            let values =
                use _ = torch.no_grad ()

                sim
                    .Simulate(
                        sim.Initial 1,
                        {
                            EnergyBalance.yearly 1 with
                                Scheme = Hybrid.Numerics.Scheme.Rk4
                                Dt = 0.05
                                SaveTimes = times
                        }
                    )
                    .Values
                |> Array.map (fun v -> v.reshape(-1L).data<float>().ToArray())

            let trace = -(lambda + gamma) / c - gamma / cd
            let det = lambda * gamma / (c * cd)
            let root = sqrt (trace * trace - 4.0 * det)
            let mu1, mu2 = (trace + root) / 2.0, (trace - root) / 2.0
            let a1 = (f / c + mu2 * f / lambda) / (mu1 - mu2)
            let a2 = -f / lambda - a1

            let b1, b2 =
                a1 * (c * mu1 + lambda + gamma) / gamma, a2 * (c * mu2 + lambda + gamma) / gamma

            for i, t in Array.indexed times do
                let surface = truthOffset + f / lambda + a1 * exp (mu1 * t) + a2 * exp (mu2 * t)
                let deep = f / lambda + b1 * exp (mu1 * t) + b2 * exp (mu2 * t)
                let simulatedSurface, simulatedDeep = values[0].[i], values[1].[i]
                Expect.floatClose { absolute = 1e-6; relative = 0.0 } simulatedSurface surface $"T at t = {t}"
                Expect.floatClose { absolute = 1e-6; relative = 0.0 } simulatedDeep deep $"T_d at t = {t}"
        }

        // An abrupt forcing of 7.4 W/m² (4×CO₂) for 150 years, anomalies with noise σ = 0.05 °C; the case's fit
        // (`fitPhysics`, from the literature values) must land within 4 Gauss–Newton standard errors (computed from
        // the fit's residuals, so the tolerance follows from the noise) of the truth for C, λ and γ, and the
        // design must determine them (standard errors below 20% of the value).
        test "a twin with noisy anomalies: the fit recovers C, lambda and gamma within 4 standard errors" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let years = 150
            let forcing = Array.create years 7.4
            let truthSim = EnergyBalance.compileWith forcing [] EnergyBalance.physicsModel
            setPhysical truthSim truth truthOffset
            let observed = noisy (surfaceOf truthSim years) 0.05 11

            let target: EnergyBalance.Target = {
                Forcing = forcing
                Observed = observed
                First = 0
                Kept = years
                Validation = 0
            }

            let sim = EnergyBalance.compileWith forcing [] EnergyBalance.physicsModel
            EnergyBalance.fitPhysics target sim 400 |> ignore

            let cov =
                Covariance.gaussNewton
                    (fun () -> fst (EnergyBalance.simulateRecord sim years) - observed)
                    sim.Parameters

            for i in [ 0; 2; 3 ] do
                let name = EnergyBalance.parameterNames[i]
                let j = Array.IndexOf(cov.Names, name)
                let estimate = cov.Estimates[j] * EnergyBalance.scales[i]
                let se = cov.StandardErrors[j] * EnergyBalance.scales[i]
                Expect.isLessThan se (0.2 * truth[i]) $"{name}: standard error {se} (design determines it)"

                Expect.isLessThan
                    (abs (estimate - truth[i]))
                    (4.0 * se)
                    $"{name}: estimate {estimate}, truth {truth[i]}, standard error {se}"
        }

        // The truth has a state-dependent feedback the two-box model lacks, −0.3 (T − T₀)² W/m² on the surface
        // budget, under a forcing that rises and falls, F = 2 + 3 sin(2πt/50) W/m² (so that T visits the same
        // values on the way up and down and the feedback's curvature shows in the record, which it does not under
        // the monotone CO₂ forcing, where λ absorbs it). Noisy anomalies (σ = 0.02 °C) of years 0–89 for training,
        // 90–119 for the test, against the noise-free truth. The physics fit and the hybrid are the case's own
        // (`fitPhysics`, then `trainHybrid` from the fitted values with the quick settings, 100 epochs). Seen: EBM
        // fitted ≈ 3e-3, hybrid ≈ 2e-4 °C². The hybrid must end below half of the EBM's test MSE: it fails when
        // training through the solver does not reach N.
        test "a twin with a missing feedback: the trained hybrid beats the same EBM without its network" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let years, trainYears = 120, 90

            let forcing =
                Array.init years (fun k -> 2.0 + 3.0 * sin (2.0 * Math.PI * float k / 50.0))

            let clean = surfaceOf (EnergyBalance.compileWith forcing [] feedbackTruth) years

            let target: EnergyBalance.Target = {
                Forcing = forcing
                Observed = noisy clean 0.02 5
                First = 0
                Kept = trainYears
                Validation = 0
            }

            let testMse (sim: Hybrid.Compiler.Simulator) =
                let test = int64 (years - trainYears)
                let s = surfaceOf sim years

                (square (
                    s.narrow (0L, int64 trainYears, test)
                    - clean.narrow (0L, int64 trainYears, test)
                ))
                    .mean()
                    .ToDouble()

            let physics = EnergyBalance.compileWith forcing [] EnergyBalance.physicsModel
            EnergyBalance.fitPhysics target physics 200 |> ignore

            let hybrid, _, _ =
                EnergyBalance.trainHybrid
                    EnergyBalance.quick
                    target
                    (EnergyBalance.physicsValues physics)
                    EnergyBalance.quick.Seed
                    0.0
                    100

            let h, p = testMse hybrid, testMse physics
            Expect.isLessThan h (0.5 * p) $"test MSE: hybrid {h}, EBM fitted {p} (°C²)"
        }

        // The control must be the network and nothing else: its compiled right-hand side at two states and a
        // forcing year equals 0.5·N(T − T₀, F/2) / 7.3 from the network called directly (non-zero output layer).
        test "the no-physics control's right-hand side is the network alone: 0.5 N(T - T0, F/2) / 7.3" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let data = EnergyBalance.load ()
            let net = new Mlp("N", 2, 1, 16, 2, dtype = f64)
            Hybrid.Models.Common.CaseTraining.initialise net 3 false

            let sim =
                EnergyBalance.compileWith data.Forcing [ "N", net ] (EnergyBalance.neuralOdeModel 16 0.5)

            (sim.Param "T0").Set 0.3
            Expect.equal (sim.Parameters |> Array.map (fun p -> p.Name)) [| "T0" |] "T0 its only parameter"
            let year = 100
            let t = torch.tensor ([| 0.1; 0.8 |], dtype = f64)
            let theta = sim.Theta()
            let tendency = Dynamics.total sim.Dynamics theta (float year) [| t |]
            let rhs = tendency[0].data<float>().ToArray()
            let half = data.Forcing[year] / 2.0

            let inputs =
                torch.tensor([| 0.1 - 0.3; half; 0.8 - 0.3; half |], dtype = f64).reshape (2L, 2L)

            let expected = (net.forward inputs).data<float>().ToArray()

            for b in 0..1 do
                Expect.floatClose Accuracy.veryHigh rhs[b] (0.5 * expected[b] / 7.3) $"state {b}"
                Expect.isGreaterThan (abs expected[b]) 1e-3 "the network's output is not zero"
        }

        // Row bookkeeping: the control is trained over exactly the hybrid's seeds, for the hybrid's epochs without
        // the physics fit, and reports T0 and the same network.
        test "the no-physics control runs over the hybrid's seeds and epochs" {
            let seedsOf name =
                EnergyBalance.parts EnergyBalance.quick
                |> List.filter (fun p -> p.Model = name)
                |> List.map (fun p -> p.Seed)

            let control = Hybrid.Models.Common.ModelTable.NoPhysics
            Expect.equal (seedsOf control) (seedsOf "hybrid") "the hybrid's seeds"
            Expect.equal (seedsOf control).Length EnergyBalance.quick.Seeds "one part per seed"
            let c = model control
            let h = model "hybrid (EBM + MLP)"
            Expect.equal c.Epochs EnergyBalance.quick.HybridIterations "the hybrid's network epochs"
            Expect.equal (parameter c "network weights") (parameter h "network weights") "the same network"
            Expect.equal (c.Parameters |> Array.map fst) [| "T0 (C)"; "network weights" |] "no two-box parameter"
        }

        test "the physics residual is round-off for the fitted physics and clearly positive for every other model" {
            let models = outcome.Force().Models
            let fitted = (model "EBM fitted").PhysicsResidual
            let others = models |> Array.filter (fun m -> m.Name <> "EBM fitted")
            let scale = others |> Array.map (fun m -> m.PhysicsResidual) |> Array.max
            Expect.isLessThan fitted (1e-9 * scale) $"EBM fitted: its own flow ({fitted} °C)"

            for m in others do
                Expect.isGreaterThan m.PhysicsResidual (1e-4 * scale) $"{m.Name}: {m.PhysicsResidual} °C"
        }

        // T − T₀ does not depend on T₀, so the least-squares offset makes the mean training residual zero.
        // The offset is fitted to the years before the validation block (1880–1976 of the quick settings).
        test "the literature EBM's offset is the least-squares one: its mean residual over the fitted years is zero" {
            let o = outcome.Force()
            let m = model "EBM literature"
            let first, fitted, validation = EnergyBalance.split EnergyBalance.quick o.TrainYears
            Expect.equal (first, fitted, validation) (0, 97, 24) "1880–1976 fitted, 1977–2000 for validation"

            let mean =
                Array.init fitted (fun k -> o.Data.Temperature[k] - m.Simulated[k])
                |> Array.average

            Expect.floatClose { absolute = 1e-12; relative = 0.0 } mean 0.0 "mean residual 1880–1976"
        }

        test "the fitted EBM fits the training years better than the literature EBM, with a positive feedback" {
            let fitted = model "EBM fitted"
            Expect.isLessThan fitted.TrainMse (model "EBM literature").TrainMse "fitted < literature on 1880–2000"
            let ecs = parameter fitted "ECS (K)"
            Expect.isTrue (ecs > 0.5 && ecs < 10.0) $"ECS {ecs} K"
        }

        // Two seeds: every network row is trained twice (the hybrid each time from the fitted EBM), its first seed
        // reproduces the one-seed run exactly, and the physics rows have no seeds. Both runs on small budgets (the seed
        // bookkeeping does not depend on them).
        test "with two seeds, the network rows average two runs whose first is the one-seed run" {
            let small = {
                EnergyBalance.quick with
                    PhysicsIterations = 20
                    HybridIterations = 5
                    SequenceIterations = 10
                    PinnIterations = 20
                    Seeds = 1
                    Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
            }

            let oneSeed = EnergyBalance.run small
            let two = EnergyBalance.run { small with Seeds = 2 }

            for m in two.Models do
                let one = oneSeed.Models |> Array.find (fun o -> o.Name = m.Name)

                if m.Name.StartsWith "EBM" then
                    Expect.isEmpty m.SeedTestMse $"{m.Name}: no seeds"
                    Expect.equal m.TestMse one.TestMse $"{m.Name}: the same fit"
                else
                    Expect.equal m.SeedTestMse.Length 2 $"{m.Name}: two seeds"

                    Expect.floatClose
                        Accuracy.veryHigh
                        m.SeedTestMse[0]
                        one.TestMse
                        $"{m.Name}: first seed = one-seed run"

                    Expect.notEqual m.SeedTestMse[1] m.SeedTestMse[0] $"{m.Name}: the second seed is another network"
                    Expect.floatClose Accuracy.veryHigh m.TestMse (Array.average m.SeedTestMse) $"{m.Name}: the mean"
        }

        // The ablation parts (one per hybrid seed) train each variant from the fitted EBM with the hybrid's budget;
        // only the report's settings include them. Small budgets: the bookkeeping does not depend on them.
        test
            "the ablation parts: separate rates, a lambda schedule and two fused models per hybrid seed, only with Ablation" {
            let small = {
                EnergyBalance.quick with
                    PhysicsIterations = 20
                    HybridIterations = 6
                    Ablation = true
            }

            Expect.isFalse
                (EnergyBalance.parts EnergyBalance.quick
                 |> List.exists (fun p -> p.Model = "ablation"))
                "quick: no ablation"

            let seedsOf name =
                EnergyBalance.parts small
                |> List.filter (fun p -> p.Model = name)
                |> List.map (fun p -> p.Seed)

            Expect.equal (seedsOf "ablation") (seedsOf "hybrid") "one ablation part per hybrid seed"

            let result =
                EnergyBalance.runPart small {
                    Model = "ablation"
                    Seed = small.Seed
                }

            Expect.equal
                (result.Models |> Array.map (fun m -> m.Name) |> List.ofArray)
                Hybrid.Models.Common.AblationTable.names
                "the variants"

            for m in result.Models do
                Expect.equal m.Epochs 26 $"{m.Name}: physics fit and hybrid epochs"
                Expect.equal m.Simulated.Length 139 $"{m.Name}: 1880–2018"

            let alpha = result.Models[2].Parameters |> Array.find (fun (n, _) -> n = "α") |> snd

            Expect.notEqual alpha 0.5 "alpha was trained away from its start"

            Expect.isTrue
                (result.Models[3].Parameters |> Array.exists (fun (n, _) -> n = "mean gate α"))
                "the mean gate"
        }

        test "the uncertainty of the hybrid and the pure-ML models: one value per test year" {
            let u = outcome.Force().Uncertainty

            Expect.equal
                u.Length
                15
                "5 methods (4 models' ensembles, the hybrid's MC dropout): validation and test as trained, test recalibrated"

            for r in u do
                CaseUncertaintyTests.checkResult r

                if r.Split <> Hybrid.Models.Common.CaseUncertainty.Validation then
                    Expect.equal r.Points 18 $"{r.Model}, {r.Method}: 2001–2018"
        }
    ]
