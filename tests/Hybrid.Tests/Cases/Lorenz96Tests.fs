/// The two-scale Lorenz-96 twin experiment: the compiled truth against the textbook equations, the CNN closure on
/// stencils against the network on the ring, a closure trained through the solver against the truncated model,
/// and one run of the whole case in CI settings (smaller than `Lorenz96.quick`: 20 MTU of training data, 10
/// start states, short training) shared by the remaining tests.
module Hybrid.Tests.Cases.Lorenz96Tests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Models.Cases
open Hybrid.Models.Common

let private f64 = torch.ScalarType.Float64

/// CI settings: the case's structure (K = 8, J = 32, three forcings, two network seeds) with short spans and budgets.
let private ci = {
    Lorenz96.quick with
        NetworkSeeds = [ 5; 6 ]
        SpinUp = 2.0
        TrainSpan = 20.0
        Starts = 10
        FreeRun = 15.0
        Epochs = 200
        PosteriorEpochs = 20
        Windows = 16
        MaxHorizon = 3
        SequenceIterations = 10
        TransformerIterations = 10
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 50
        }
}

let private outcome = lazy (Lorenz96.run ci)

let private model name =
    outcome.Force().Models |> Array.find (fun m -> m.Name = name)

let private hybrids = [ "hybrid (X + MLP)"; "hybrid (X + CNN)" ]

/// The textbook two-scale Lorenz-96 tendencies (Wilks 2005) at x [K], y [K·J] (fast ring n = k·J + j).
let private textbook (k: int) (j: int) (h: float) (b: float) (c: float) (f: float) (x: float[]) (y: float[]) =
    let n = k * j

    let at (v: float[]) i =
        v[((i % v.Length) + v.Length) % v.Length]

    let dx =
        Array.init k (fun i ->
            -(at x (i - 1)) * (at x (i - 2) - at x (i + 1)) - x[i] + f
            - h * c / b * Array.sum (Array.sub y (i * j) j))

    let dy =
        Array.init n (fun i ->
            -c * b * at y (i + 1) * (at y (i + 2) - at y (i - 1)) - c * y[i]
            + h * c / b * x[i / j])

    dx, dy

let tests =
    testSequenced
    <| testList "Cases.Lorenz96" [
        // The DSL model on the two-scale lattice against the formula written out independently here, with h, b, c
        // away from 1 and 10 so that every constant and index is exercised (a wrong shift, sign or parent site
        // gives an O(1) difference).
        test "the compiled two-scale truth's tendency equals the textbook Lorenz-96 at random states to 1e-12" {
            Engine.init ()

            for k, j, h, b, c in [ 8, 32, 1.0, 10.0, 10.0; 6, 5, 0.7, 8.0, 12.0 ] do
                let s = {
                    Lorenz96.quick with
                        K = k
                        J = j
                        H = h
                        B = b
                        C = c
                }

                let forcing = 17.5

                let sim =
                    Compiler.compile
                        {
                            Compiler.defaults with
                                Forcings = Map [ "F", (fun _ -> torch.tensor (forcing, dtype = f64)) ]
                        }
                        (Lorenz96.truthModel s)

                let rng = Random 7
                let x = Array.init k (fun _ -> 20.0 * rng.NextDouble() - 5.0)
                let y = Array.init (k * j) (fun _ -> rng.NextDouble() - 0.5)
                let dx, dy = textbook k j h b c forcing x y

                use tx = torch.tensor(x, dtype = f64).reshape (1L, int64 k)
                use ty = torch.tensor(y, dtype = f64).reshape (1L, int64 (k * j))
                let d = Dynamics.total sim.Dynamics (sim.Theta()) 0.0 [| tx; ty |]
                let gotX = d[0].data<float>().ToArray()
                let gotY = d[1].data<float>().ToArray()

                for i in 0 .. k - 1 do
                    Expect.floatClose
                        { absolute = 1e-12; relative = 1e-12 }
                        gotX[i]
                        dx[i]
                        $"K = {k}, J = {j}: dX_{i}/dt"

                for i in 0 .. k * j - 1 do
                    Expect.floatClose
                        { absolute = 1e-12; relative = 1e-12 }
                        gotY[i]
                        dy[i]
                        $"K = {k}, J = {j}: dY_{i}/dt"
        }

        // Step-size check of the truth (compiled, RK4). Chaos lets any difference grow, so the comparison is short:
        // 0.1 MTU from the random start (no spin-up), where dt 0.001 and 0.0005 agree to ≈ 2e-7 (RK4's error) and
        // dt 0.005 is off by ≈ 3e-4.
        test "the truth at dt = 0.001 agrees with half the step over 0.1 MTU" {
            let s = {
                Lorenz96.quick with
                    SpinUp = 0.0
                    SampleInterval = 0.1
            }

            let coarse = Lorenz96.truth s 20.0 3 2
            let fine = Lorenz96.truth { s with TruthDt = 0.0005 } 20.0 3 2

            let gap =
                Array.map2 (fun (a: float) b -> abs (a - b)) coarse.X[1] fine.X[1] |> Array.max

            Expect.isLessThan gap 1e-5 "largest |X| difference after 0.1 MTU"
            Expect.notEqual coarse.X[1] coarse.X[0] "the state moved"
        }

        // The compiled CNN model calls the network on each site's stencil; it must be the network's own forward
        // pass on the ring (circular padding), with random weights and biases, kernel widths 3 and 5 (reach 3 and
        // 6: the stencil of 13 sites wraps around the ring of 8).
        test "the CNN closure on each site's stencil equals the Cnn1d on the periodic ring" {
            Engine.init ()
            torch.random.manual_seed 11L |> ignore

            for kernel in [ 3; 5 ] do
                let s = {
                    Lorenz96.quick with
                        CnnKernel = kernel
                }

                let reach = Lorenz96.cnnReach s

                use net =
                    new Cnn1d("c", 1, 1, 6, Lorenz96.CnnHiddenLayers, kernel, padding = Padding.Periodic, dtype = f64)

                use stencil = new Lorenz96.StencilCnn(net, reach)
                use _ = torch.no_grad ()
                use states = torch.randn (5L, 8L, dtype = f64)
                use ring = (net.forward (states.unsqueeze 1L)).squeeze 1L
                use sites = (stencil.forward (Lorenz96.stencils reach states)).squeeze -1L
                let expected = ring.data<float>().ToArray()
                let got = sites.data<float>().ToArray()

                for i in 0 .. expected.Length - 1 do
                    Expect.floatClose
                        { absolute = 1e-12; relative = 1e-12 }
                        got[i]
                        expected[i]
                        $"kernel {kernel}, entry {i}"

                // Not trivially local: moving one neighbour changes the site's output.
                use moved = states.clone ()
                use _ = moved[0, 1].add_ (torch.tensor (1.0, dtype = f64))
                use u = (stencil.forward (Lorenz96.stencils reach moved)).squeeze -1L
                Expect.notEqual (u[0, 0].ToDouble()) got[0] $"kernel {kernel}: U_0 depends on X_1"
        }

        // The twin test of training through the solver: an MLP closure whose output layer starts at zero, with no
        // mean added (μ_U = 0), is exactly the truncated model before training; trained only on rollouts of X (no
        // sub-grid data), it must cut the truncated model's forecast error. It fails when gradients do not flow
        // through `Simulate` to the network (the closure stays at zero) or the rollout loss is wrong.
        test "an MLP closure trained only through the solver beats the truncated model it starts from" {
            Engine.init ()

            let s = {
                ci with
                    PosteriorEpochs = 40
                    PosteriorRate = 1e-2
                    Windows = 16
                    MaxHorizon = 4
            }

            CaseTraining.singleThreaded (fun () ->
                let run = Lorenz96.truth s s.Forcing s.Seed 400
                let trainX = run.X[..199]
                let starts = Array.init 10 (fun n -> run.X[220 + 15 * n])
                let lead = 4 // samples: 0.2 MTU

                let all = Array.concat trainX
                let mx = Array.average all

                let z: Lorenz96.Standardisation = {
                    MeanX = mx
                    ScaleX = sqrt (all |> Array.averageBy (fun v -> (v - mx) * (v - mx)))
                    MeanU = 0.0
                    ScaleU = 1.0
                }

                let c = Lorenz96.newNetwork s z "MLP" 5 0.0 true
                let x = Lorenz96.compileX c.Model [ c.Name, c.Module ]

                let truncated =
                    Lorenz96.pathsOf s (Lorenz96.compileX (Lorenz96.truncatedModel s) [])

                let error (paths: Lorenz96.Paths) =
                    let forecasts = paths [| s.Forcing |] starts (lead + 1)

                    Array.init starts.Length (fun n ->
                        let predicted = forecasts[n][lead]
                        let observed = run.X[220 + 15 * n + lead]
                        Array.map2 (fun a b -> (a - b) * (a - b)) predicted observed |> Array.average)
                    |> Array.average
                    |> sqrt

                // The network model runs on the generated kernels (the case used to force the eager back end).
                let backend, why =
                    x.Simulator.BackendFor(Lorenz96.rolloutOptions s s.ModelDt (lead + 1))

                Expect.equal backend Backend.Kernels $"the MLP closure model runs on the kernels ({why})"
                let before = error (Lorenz96.pathsOf s x)
                let reference = error truncated
                Expect.floatClose { absolute = 1e-10; relative = 1e-9 } before reference "untrained = truncated"

                use data =
                    torch.tensor(Array.concat trainX, dtype = f64).reshape (int64 trainX.Length, 1L, int64 s.K)

                Lorenz96.trainThroughSolver s c x data 5 |> ignore
                let after = error (Lorenz96.pathsOf s x)

                Expect.isLessThan
                    after
                    (0.7 * reference)
                    $"0.2-MTU forecast RMSE of X: trained through the solver {after:G3} against truncated {reference:G3}")
        }

        // The control must be the CNN and nothing else: its compiled right-hand side at random states equals
        // μ_T + σ_T C(stencil) from the network called directly (random, non-zero output layer, so the check bites),
        // at every forcing (no F); the CNN hybrid with the same network does move with F, by exactly ΔF.
        test "the no-physics control's right-hand side is the CNN alone on the stencils, with no forcing" {
            Engine.init ()
            use _ = torch.NewDisposeScope()
            torch.random.manual_seed 3L |> ignore

            let z: Lorenz96.Standardisation = {
                MeanX = 2.5
                ScaleX = 3.5
                MeanU = 1.5
                ScaleU = 40.0
            }

            let s = Lorenz96.quick
            let reach = Lorenz96.cnnReach s
            let c = Lorenz96.newControl s z 7
            Expect.isEmpty c.Model.Forcings "no forcing declared"
            let control = Lorenz96.compileX c.Model [ c.Name, c.Module ]
            Expect.isEmpty control.Simulator.Parameters "no scientific parameter"
            let hybrid = Lorenz96.compileX (Lorenz96.cnnModel s z) [ c.Name, c.Module ]
            use _ = torch.no_grad ()
            let states = 8.0 .* torch.randn (5L, int64 s.K, dtype = f64)

            let rhs (x: Lorenz96.XModel) (f: float) =
                x.Forcing.Use [| f |]

                let theta = x.Simulator.Theta()
                let d = Dynamics.total x.Simulator.Dynamics theta 0.0 [| states |]
                d[0].data<float>().ToArray()

            let standard = (states .- z.MeanX) ./ z.ScaleX
            let network = (c.Module.forward (Lorenz96.stencils reach standard)).squeeze -1L
            let onRing = (c.Ring standard).data<float>().ToArray()
            let outputs = network.data<float>().ToArray()
            let expected = (z.MeanU .+ (z.ScaleU .* network)).data<float>().ToArray()
            Expect.isGreaterThan (outputs |> Array.map abs |> Array.max) 1e-3 "the network's output is not zero"

            for i in 0 .. outputs.Length - 1 do
                Expect.floatClose Accuracy.veryHigh outputs[i] onRing[i] $"entry {i}: stencil = ring"

            let atZero = rhs control 0.0

            for f in [ 0.0; 20.0; 24.0 ] do
                let got = rhs control f
                let withPhysics = rhs hybrid f
                let withoutF = rhs hybrid 0.0

                for i in 0 .. expected.Length - 1 do
                    Expect.floatClose Accuracy.veryHigh got[i] expected[i] $"F = {f}, entry {i}"
                    Expect.equal got[i] atZero[i] $"F = {f}, entry {i}: unchanged by F"

                    Expect.floatClose
                        Accuracy.high
                        (withPhysics[i] - withoutF[i])
                        f
                        $"F = {f}, entry {i}: the hybrid with the same network moves by F"
        }

        // Centred differences are exact for polynomials of degree two; a quadratic in time (per site) gives its
        // derivative b + 2 c t at each interior sample, so the alignment of rows with samples is checked too.
        test "the observed tendency is the exact derivative of X quadratic in time, at the interior samples" {
            let interval = 0.05
            let a, b, c = [| 3.0; -1.0; 7.5 |], [| 2.0; -4.0; 0.5 |], [| 0.0; 1.5; -3.0 |]

            let xs =
                Array.init 9 (fun n ->
                    let t = float n * interval
                    Array.init 3 (fun k -> a[k] + b[k] * t + c[k] * t * t))

            let got = Lorenz96.observedTendency interval xs
            Expect.equal got.Length (xs.Length - 2) "the interior samples"

            for row in 0 .. got.Length - 1 do
                let t = float (row + 1) * interval

                for k in 0..2 do
                    Expect.floatClose
                        { absolute = 1e-11; relative = 1e-11 }
                        (got[row][k])
                        (b[k] + 2.0 * c[k] * t)
                        $"sample {row + 1}, site {k}"

            Expect.throwsT<HybridException>
                (fun () -> Lorenz96.observedTendency interval xs[..1] |> ignore)
                "two samples: no centred difference"
        }

        // Noise-free pairs on a known cubic over the range of X give its coefficients back to round-off (the normal
        // equations of the scaled design are well conditioned); pairs off the cubic by ±e alternately at the same x
        // give the same fit (their mean is the cubic). Two calls give the same bits.
        test "the cubic closure's least-squares fit recovers a known cubic, and repeats bit for bit" {
            let a = [| 0.7; -0.9; 0.03; -0.0015 |]

            let cubic x =
                a[0] + a[1] * x + a[2] * x * x + a[3] * x * x * x

            let xs = Array.init 400 (fun i -> -8.0 + 0.07 * float (i / 2))
            let exact = xs |> Array.map cubic
            let noisy = exact |> Array.mapi (fun i u -> if i % 2 = 0 then u + 0.5 else u - 0.5)

            for us, what in [ exact, "exact"; noisy, "symmetric noise" ] do
                let fit = Lorenz96.cubicFit xs us 10.0

                for r in 0..3 do
                    Expect.floatClose { absolute = 1e-11; relative = 1e-9 } fit[r] a[r] $"{what}: a{r}"

            Expect.equal (Lorenz96.cubicFit xs noisy 10.0) (Lorenz96.cubicFit xs noisy 10.0) "the same bits"
        }

        // Row bookkeeping: the control runs over the CNN hybrid's seeds with its epochs and network, and is counted
        // as pure ML; it has no closure.
        test "the no-physics control runs over the CNN hybrid's seeds, epochs and network; no closure" {
            let c = model ModelTable.NoPhysics
            let h = model "hybrid (X + CNN)"
            Expect.isTrue (ModelTable.isPureMl c.Name) "a pure-ML baseline of the claim"
            Expect.equal c.SeedRmse.Length ci.NetworkSeeds.Length "one RMSE set per network seed"
            Expect.equal c.Epochs (ci.Epochs + ci.PosteriorEpochs) "a-priori + through the solver"
            Expect.equal c.Epochs h.Epochs "the CNN hybrid's epochs"
            Expect.equal c.Parameters h.Parameters "the same network"
            Expect.isTrue (Double.IsNaN c.TrainMse) "no closure: no train MSE against U"
            Expect.isTrue (c.Skills |> Array.forall (fun k -> Double.IsNaN k.ClosureMse)) "no closure MSE"
            Expect.isTrue (c.Closure |> Array.forall Double.IsNaN) "no closure curve"
            Expect.notEqual c.SeedRmse h.SeedRmse "another model than the hybrid"
        }

        test "the fitted closures fit the training pairs far better than no closure" {
            let truncated = (model "truncated").TrainMse
            Expect.isLessThan (model "cubic closure").TrainMse (0.2 * truncated) "cubic vs U = 0"
            Expect.isLessThan (model "hybrid (X + MLP)").TrainMse (0.2 * truncated) "MLP vs U = 0"
            Expect.isLessThan (model "hybrid (X + CNN)").TrainMse (0.2 * truncated) "CNN vs U = 0"
        }

        test
            "every network (closures, LSTM, transformer) runs over every network seed; its RMSE is the root of the mean MSE over seeds" {
            let o = outcome.Force()
            let seeds = o.Settings.NetworkSeeds.Length
            Expect.isGreaterThan seeds 1 "CI settings have several seeds"

            for name in hybrids @ [ ModelTable.NoPhysics; "LSTM"; "Transformer" ] do
                let m = model name
                Expect.equal m.SeedRmse.Length seeds $"{name}: one RMSE set per seed"

                for i, k in Array.indexed m.Skills do
                    for l in 0 .. k.Rmse.Length - 1 do
                        let runs = m.SeedRmse |> Array.map (fun r -> r[i][l])
                        let combined = sqrt (runs |> Array.averageBy (fun r -> r * r))
                        Expect.floatClose Accuracy.high k.Rmse[l] combined $"{name}, F = {k.Forcing}, lead {l}"

                // Different seeds give different networks (the seeds are used).
                let first (r: float[][]) = r.[0].[0]
                Expect.notEqual (first m.SeedRmse[0]) (first m.SeedRmse[1]) $"{name}: seeds differ"

            for name in [ "truncated"; "cubic closure" ] do
                Expect.isEmpty (model name).SeedRmse $"{name}: not fitted over seeds"
        }

        // The ablation's a-posteriori rows are the table's hybrids; its a-priori rows are other networks trained
        // with the same number of epochs.
        test "the ablation: a-posteriori rows are the table's hybrids, a-priori rows other networks on the same budget" {
            let o = outcome.Force()
            Expect.equal o.Ablation.Length 4 "MLP and CNN, two trainings each"

            for kind, name in [ "MLP", "hybrid (X + MLP)"; "CNN", "hybrid (X + CNN)" ] do
                let rows = o.Ablation |> Array.filter (fun a -> a.Closure = kind)
                let prior, posterior = rows[0], rows[1]
                Expect.stringStarts prior.Training "a-priori" $"{kind}: a-priori first"
                Expect.stringStarts posterior.Training "a-posteriori" $"{kind}: a-posteriori second"
                Expect.equal prior.Epochs posterior.Epochs $"{kind}: same number of epochs"
                Expect.equal posterior.Epochs (ci.Epochs + ci.PosteriorEpochs) $"{kind}: epochs"
                Expect.equal posterior.SeedRmse (model name).SeedRmse $"{kind}: a-posteriori = the table's hybrid"
                let firstOf (a: Lorenz96.AblationRow) = a.SeedRmse.[0].[0].[0]
                Expect.notEqual (firstOf prior) (firstOf posterior) $"{kind}: a-priori is another network"
        }

        // The report section shows the ablation: its table rows with the RMSE the outcome holds, and the paired
        // ratio sentence per closure; the CSV file has a row per closure, training, forcing and lead.
        test "the report section has the a-priori against a-posteriori table, its sentences and its CSV file" {
            let o = outcome.Force()

            let dir =
                IO.Path.Combine(IO.Path.GetTempPath(), $"hybrid-lorenz96-report-{Guid.NewGuid():N}")

            IO.Directory.CreateDirectory dir |> ignore

            try
                let md = Hybrid.Models.Report.Lorenz96Report.write dir o
                let last = ci.Leads.Length - 1

                for a in o.Ablation do
                    let cells = a.Rmse |> Array.map (fun r -> $" {r[last]:F3} |") |> String.concat ""

                    Expect.stringContains
                        md
                        $"| {a.Closure} | {a.Training} | {a.Epochs} |{cells}"
                        $"{a.Closure}, {a.Training}: table row"

                for kind in [ "MLP"; "CNN" ] do
                    Expect.stringContains md $"- Ablation, {kind} closure: forecast MSE" $"{kind}: ratio sentence"

                // What the physics adds: one line per forcing, the CNN hybrid (the control's network) only.
                let physicsLines =
                    md.Split '\n' |> Array.filter (fun l -> l.StartsWith "- What the physics adds")

                Expect.equal physicsLines.Length o.Truth.Length "one line per forcing"

                for l, t in Array.zip physicsLines o.Truth do
                    Expect.stringContains l $"F = {t.Forcing:G3} forecasts" "its forcing"
                    Expect.stringContains l "hybrid (X + CNN)'s MSE" "the CNN hybrid"
                    Expect.isFalse (l.Contains "MLP") "not the MLP hybrid (another network)"

                let csv = IO.File.ReadAllLines(IO.Path.Combine(dir, "lorenz96-ablation.csv"))

                Expect.equal
                    csv.Length
                    (1 + o.Ablation.Length * o.Truth.Length * ci.Leads.Length)
                    "header + one row each"

                // The claims page's cells of this case: an OOD cell per hybrid and out-of-domain forcing, the
                // closure-only case's not-tested interpretability cell, a calibration cell per uncertainty split.
                let cells = Hybrid.Models.Common.Claims.readAll dir

                let about outcome =
                    cells |> Array.filter (fun c -> c.Outcome = outcome)

                let outcomes = Hybrid.Models.Common.Claims.outcomes

                Expect.equal
                    (about outcomes[0]).Length
                    (2 * (o.Truth.Length - 1))
                    "OOD: two hybrids × forcings out of domain"

                Expect.equal
                    ((about outcomes[2]) |> Array.map (fun c -> c.Verdict))
                    [| Hybrid.Models.Common.Claims.Verdict.NotTested |]
                    "no scientific parameter"

                let splits =
                    o.Uncertainty
                    |> Array.filter (fun r -> r.Model = "hybrid" && r.Split <> CaseUncertainty.Validation)
                    |> Array.map (fun r -> r.Split)
                    |> Array.distinct

                Expect.equal (about outcomes[3]).Length (max 1 splits.Length) "calibration: one cell per split"
            finally
                IO.Directory.Delete(dir, true)
        }

        test
            "the physics residual: round-off for the truncated model, the size of the truth's sub-grid effect for the hybrids" {
            let o = outcome.Force()
            let truth = o.TruthPhysicsResidual
            let truncated = (model "truncated").PhysicsResidual
            Expect.isLessThan truncated (1e-9 * truth) $"truncated: its own flow ({truncated})"

            // A closure that stands in for the fast variables departs from the X equation about as much as the truth.
            for h in hybrids do
                let r = (model h).PhysicsResidual
                Expect.isTrue (r > 0.5 * truth && r < 2.0 * truth) $"{h}: {r} against the truth's {truth}"
        }

        test "both hybrids beat the truncated (fixed-parameter) model on the test forecasts" {
            let truncated = (model "truncated").Skills[0]

            for name in hybrids do
                let hybrid = (model name).Skills[0]

                for i, lead in Array.indexed (outcome.Force().Settings.Leads) do
                    Expect.isLessThan hybrid.Rmse[i] truncated.Rmse[i] $"{name} < truncated at lead {lead} MTU"
        }

        test "the uncertainty of the hybrid and the pure-ML models: every forcing, every start and site scored" {
            let o = outcome.Force()

            Expect.equal
                o.Uncertainty.Length
                (5 * (1 + 2 * (1 + o.Settings.OutOfDomain.Length)))
                "5 methods (4 models' ensembles, the hybrid's MC dropout): validation, each forcing as trained and recalibrated"

            for r in o.Uncertainty do
                if r.Split <> CaseUncertainty.Validation then
                    Expect.equal
                        r.Points
                        (o.Settings.Starts * o.Settings.K)
                        $"{r.Method}, {r.Split}: every start and site"
        }
    ]
