/// The predator–prey case: its compiled Lotka–Volterra model against an independent reference solution, a twin
/// experiment for the fitted physics (log-normal likelihood, start state fitted), and the quick run (fixed seeds):
/// what training through the solver must achieve whatever the data say.
module Hybrid.Tests.Cases.PredatorPreyTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Models.Cases

let private f64 = torch.ScalarType.Float64

// Without the validation block and early stopping: these tests check what full training does (a hybrid trained
// through the solver fits its windows better than its start), which early stopping on 1913–1915 may cut short on
// purpose. The validation path runs in the tuning and sweep tests.
let private outcome =
    lazy
        (PredatorPrey.run {
            PredatorPrey.quick with
                Seeds = 1
                Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
                EarlyStopping = Hybrid.Models.Common.EarlyStopping.off
        })

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

/// Lotka–Volterra with Carpenter's (2018) posterior means from (H, L) = (30, 4), classical RK4 on plain floats with
/// step `dt`: the states at t = 0, 1, …, `years` (an independent reference for the compiled model).
let private reference (dt: float) (years: int) =
    let a, b, g, d = 0.55, 0.028, 0.80, 0.024
    let f (h, l) = a * h - b * h * l, d * h * l - g * l
    let steps = int (round (1.0 / dt))

    let step (h, l) =
        let k1h, k1l = f (h, l)
        let k2h, k2l = f (h + 0.5 * dt * k1h, l + 0.5 * dt * k1l)
        let k3h, k3l = f (h + 0.5 * dt * k2h, l + 0.5 * dt * k2l)
        let k4h, k4l = f (h + dt * k3h, l + dt * k3l)
        h + dt / 6.0 * (k1h + 2.0 * k2h + 2.0 * k3h + k4h), l + dt / 6.0 * (k1l + 2.0 * k2l + 2.0 * k3l + k4l)

    Array.scan (fun x _ -> Seq.fold (fun y _ -> step y) x (seq { 1..steps })) (30.0, 4.0) [| 1..years |]

/// The case's Lotka–Volterra model with the literature rates and the start state (30, 4).
let private literature () =
    let sim = Compiler.compile Compiler.defaults PredatorPrey.lotkaVolterraModel

    for n, v in
        [
            "alpha", 0.55
            "beta", 0.028
            "gamma", 0.80
            "delta", 0.024
            "H0", 30.0
            "L0", 4.0
        ] do
        (sim.Param n).Set v

    sim

let private yearly (dt: float) (years: int) = {
    Rollout.defaults with
        Dt = dt
        SaveTimes = Array.init (years + 1) float
}

let tests =
    testSequenced
    <| testList "Cases.PredatorPrey" [
        test "the compiled Lotka–Volterra model matches a reference RK4 solution (Δt = 1e-4) to 1e-6 over ten years" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let sim = literature ()
            let v = sim.Simulate(sim.Initial 1, yearly 1e-3 10).Values
            let expected = reference 1e-4 10

            let hares = v[0].reshape(-1L).data<float>().ToArray()
            let lynx = v[1].reshape(-1L).data<float>().ToArray()

            for y, (h, l) in Array.indexed expected do
                Expect.floatClose { absolute = 1e-9; relative = 1e-6 } hares[y] h $"hares in year {y}"
                Expect.floatClose { absolute = 1e-9; relative = 1e-6 } lynx[y] l $"lynx in year {y}"
        }

        // Twin: 16 yearly counts of the literature model with log-normal errors (σ = 0.1 on log counts, a fixed
        // draw); the fit starts from the prior means and the first noisy count. Each of the six estimates must lie
        // within 3 Gauss–Newton standard errors of the truth (a fit ignoring the start state or using another
        // likelihood is biased by more).
        test "twin: the log-normal fit recovers the four rates and the start state within 3 standard errors" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let sigma = 0.1

            let counts =
                use _ = torch.no_grad ()
                let sim = literature ()
                let v = sim.Simulate(sim.Initial 1, yearly 0.1 15).Values
                use gen = new torch.Generator(20261205UL)

                let noisy (x: torch.Tensor) =
                    (x.squeeze(1L).log () .+ sigma .* torch.randn (16L, dtype = f64, generator = gen))
                        .exp()
                        .data<float>()
                        .ToArray()

                Array.map2 (fun h l -> [| h; l |]) (noisy v[0]) (noisy v[1])

            let sim, residuals, _ = PredatorPrey.fitLotkaVolterra 300 10 5 counts
            let names = [ "alpha"; "beta"; "gamma"; "delta"; "H0"; "L0" ]
            let truth = [ 0.55; 0.028; 0.80; 0.024; 30.0; 4.0 ]

            let cov =
                Covariance.gaussNewton residuals (names |> List.map sim.Param |> Array.ofList)

            List.iteri2
                (fun k n t ->
                    let estimate = (sim.Param n).Get()
                    let se = cov.StandardErrors[k]

                    Expect.isLessThanOrEqual
                        (abs (estimate - t))
                        (3.0 * se)
                        $"{n} = {estimate:G5}: within 3 standard errors ({se:G3}) of {t}")
                names
                truth
        }

        test
            "the fitted physics forecasts with its own flow: its physics residual is round-off, every other model's is not" {
            let models = outcome.Force().Models
            let fitted = (model "LV fitted").PhysicsResidual
            let others = models |> Array.filter (fun m -> m.Name <> "LV fitted")
            let scale = others |> Array.map (fun m -> m.PhysicsResidual) |> Array.max
            Expect.isLessThan fitted (1e-9 * scale) $"LV fitted: its own flow ({fitted} thousands of pelts)"

            for m in others do
                Expect.isGreaterThan
                    m.PhysicsResidual
                    (1e-4 * scale)
                    $"{m.Name}: {m.PhysicsResidual} thousands of pelts"
        }

        // The control must be the network and nothing else: its compiled right-hand side at two states equals
        // 10·N(H/50, L/50) from the network called directly (a non-zero output layer, so the check bites).
        test "the no-physics control's right-hand side is the network alone: 10 N(H/50, L/50), no Lotka–Volterra term" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            let net = new Mlp("correction", 2, 2, 16, 2, dtype = f64)
            Hybrid.Models.Common.CaseTraining.initialise net 7 false
            let sim = PredatorPrey.compileWith PredatorPrey.neuralOdeModel (Some net)
            Expect.isEmpty sim.Parameters "no scientific parameter"
            let h = torch.tensor ([| 30.0; 5.0 |], dtype = f64)
            let l = torch.tensor ([| 4.0; 60.0 |], dtype = f64)
            let theta = sim.Theta()
            let rhs = Dynamics.total sim.Dynamics theta 0.0 [| h; l |]

            let expected =
                (10.0 .* net.forward (torch.stack ([| h; l |], 1L) ./ 50.0)).data<float>().ToArray()

            for k in 0..1 do
                let values = rhs[k].data<float>().ToArray()

                for b in 0..1 do
                    Expect.floatClose Accuracy.veryHigh values[b] expected[2 * b + k] $"species {k}, state {b}"

                    Expect.isGreaterThan (abs expected[2 * b + k]) 1e-3 "the network's output is not zero"
        }

        // Row bookkeeping: the control is trained over exactly the additive hybrid's seeds, for the hybrid's network
        // iterations (no physics fit before them), and reports the same network with no rates.
        test "the no-physics control runs over the hybrid's seeds and network iterations" {
            let seedsOf name =
                PredatorPrey.parts PredatorPrey.quick
                |> List.filter (fun p -> p.Model = name)
                |> List.map (fun p -> p.Seed)

            let control = Hybrid.Models.Common.ModelTable.NoPhysics
            Expect.equal (seedsOf control) (seedsOf "hybrid") "the hybrid's seeds"
            Expect.equal (seedsOf control).Length PredatorPrey.quick.Seeds "one part per seed"
            let c = model control
            let h = model "hybrid (LV + MLP)"
            Expect.equal c.Epochs PredatorPrey.quick.HybridIterations "the hybrid's network iterations"
            Expect.equal h.Epochs (PredatorPrey.quick.PhysicsIterations + c.Epochs) "the hybrid's, with its physics fit"
            Expect.equal c.SeedTestMse.Length 1 "one seed in this run"

            Expect.equal
                c.Parameters
                [| h.Parameters |> Array.find (fun (n, _) -> n = "network weights") |]
                "the same network"
        }

        // Both hybrids start as the fitted Lotka–Volterra model (correction at zero, the fitted rates): their
        // training windows fit better than that start only if training through the solver works.
        test "both hybrids fit the training windows better than the fitted Lotka–Volterra model they start from" {
            let lv = model "LV fitted"

            for h in [ "hybrid (LV + MLP)"; "hybrid (neural interaction)" ] do
                Expect.isLessThan (model h).TrainMse (0.5 * lv.TrainMse) $"{h}: train MSE < half the fitted LV's"
        }

        test "every row with a network (hybrids, MLPs, LSTM, transformer, PINN) reports its seeds and training budget" {
            for name in
                [
                    "hybrid (LV + MLP)"
                    "hybrid (neural interaction)"
                    "MLP autoregressive"
                    "LSTM"
                    "Transformer"
                    "PINN"
                ] do
                let m = model name
                Expect.equal m.SeedTestMse.Length 1 $"{name}: one test MSE per seed"
                Expect.equal m.Forecast.Length 5 $"{name}: five test years"
                Expect.isGreaterThan m.Epochs 0 $"{name}: epochs"
                Expect.isGreaterThan m.TrainSeconds 0.0 $"{name}: wall time"
        }

        // The ablation (tiny budgets, one seed: the bookkeeping does not depend on them): its parts are planned over
        // the additive hybrid's seeds only with Ablation, and each trains its variant with the hybrid's budget; a
        // fused model reports its learned α.
        test "the ablation parts: four variants over the hybrid's seeds with its budget, only with Ablation" {
            let s = {
                Hybrid.Models.Report.PredatorPreyTasks.settings "tiny" with
                    Ablation = true
                    Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
            }

            let seedsOf (settings: PredatorPrey.Settings) name =
                PredatorPrey.parts settings
                |> List.filter (fun p -> p.Model = name)
                |> List.map (fun p -> p.Seed)

            let variants = [ "separate rates"; "lambda schedule"; "fused scalar"; "fused gate" ]

            for v in variants do
                Expect.equal (seedsOf s v) (seedsOf s "hybrid") $"{v}: the hybrid's seeds"
                Expect.isEmpty (seedsOf PredatorPrey.quick v) $"{v}: not in the quick settings"

            let rows =
                variants
                |> List.map (fun v -> (PredatorPrey.runPart s { Model = v; Seed = s.Seed }).Models[0])

            Expect.equal (rows |> List.map (fun m -> m.Name)) Hybrid.Models.Common.AblationTable.names "the rows"

            for m in rows do
                Expect.equal m.Epochs (s.PhysicsIterations + s.HybridIterations) $"{m.Name}: the hybrid's budget"
                Expect.equal m.Forecast.Length 5 $"{m.Name}: five test years"

            let alpha = rows[2].Parameters |> Array.find (fun (n, _) -> n = "α") |> snd
            Expect.notEqual alpha 0.5 "α was trained away from its start"
            Expect.isTrue (rows[3].Parameters |> Array.exists (fun (n, _) -> n = "mean gate α")) "the mean gate"
        }
    ]
