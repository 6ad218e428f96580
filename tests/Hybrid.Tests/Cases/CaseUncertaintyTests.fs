/// The shared uncertainty experiment of the case studies (`CaseUncertainty`) on synthetic "hybrids" whose
/// right answer is known: members that predict the truth plus Gaussian noise of the stated spread.
module Hybrid.Tests.Cases.CaseUncertaintyTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks
open Hybrid.Models.Report

let private f64 = torch.ScalarType.Float64

/// 4000 targets y = μ + ε, ε ~ N(0, 1), and a fake trainer: each "member" predicts μ exactly and reports a
/// noise variance of `spread`² (no network, so MC dropout's passes agree and only the noise is left).
let private experiment (spread: float) =
    Engine.seed 11
    let mu = torch.linspace (-2.0, 2.0, 4000L, dtype = f64)
    let y = mu .+ torch.randn (4000L, dtype = f64)

    CaseUncertainty.run CaseUncertainty.quick [| "synthetic", y |] (fun _ _ -> {
        Modules = [||]
        Predict = fun () -> [| mu.clone () |]
        NoiseVariance = spread * spread
    })

/// Checks that hold for any result: ECE in [0, 1], coverage in [0, 1] and monotone in the level.
let checkResult (r: CaseUncertainty.MethodResult) =
    let what = $"{r.Method}, {r.Split}"
    Expect.isTrue (r.Calibration.Ece >= 0.0 && r.Calibration.Ece <= 1.0) $"{what}: ECE {r.Calibration.Ece} in [0, 1]"

    for c in r.Calibration.Coverage do
        Expect.isTrue (c >= 0.0 && c <= 1.0) $"{what}: coverage {c} in [0, 1]"

    for a, b in Array.pairwise r.Calibration.Coverage do
        Expect.isLessThanOrEqual a b $"{what}: coverage monotone in the level"

    for name, v in [ "NLL", r.Nll; "CRPS", r.Crps; "RMSE", r.Rmse; "σ", r.MeanStd ] do
        Expect.isTrue (System.Double.IsFinite v) $"{what}: {name} = {v} finite"

    Expect.isGreaterThan r.Points 0 $"{what}: values"

/// A fake candidate: members predict μ exactly and report a noise variance of `spread`² (as in `experiment`).
let private candidate (name: string) (mu: torch.Tensor) (spread: float) : CaseUncertainty.Candidate = {
    Name = name
    Train =
        fun _ _ -> {
            Modules = [||]
            Predict = fun () -> [| mu.clone (); mu.clone () |]
            NoiseVariance = spread * spread
        }
    Dropout = false
}

/// A synthetic case of 1000 validation and 1000 test targets y = μ + ε, ε ~ N(0, 1), and three candidates whose
/// members predict μ ± 0.3 (the sign by the seed's parity, so an ensemble of two has a model spread of 0.3) with a
/// noise variance `noise`: "hybrid" (noise 0.25, MC dropout on; no network, so its passes agree), "narrow" (noise
/// 0.01) and "right" (noise 1 − 0.09, calibrated as trained).
let private twin () =
    Engine.seed 21
    let mu = torch.linspace (-2.0, 2.0, 1000L, dtype = f64)

    let splits = [|
        CaseUncertainty.Validation, mu .+ torch.randn (1000L, dtype = f64)
        "test", mu .+ torch.randn (1000L, dtype = f64)
    |]

    let trainer (noise: float) : int -> float -> CaseUncertainty.Trained =
        fun seed _ ->
            let shift = if seed % 2 = 0 then 0.3 else -0.3

            {
                Modules = [||]
                Predict = fun () -> [| mu .+ shift; mu .+ shift |]
                NoiseVariance = noise
            }

    let candidates: CaseUncertainty.Candidate[] = [|
        {
            Name = "hybrid"
            Train = trainer 0.25
            Dropout = true
        }
        {
            Name = "narrow"
            Train = trainer 0.01
            Dropout = false
        }
        {
            Name = "right"
            Train = trainer 0.91
            Dropout = false
        }
    |]

    mu, splits, candidates

/// Every number of a calibration row, as bits (equal rows give equal arrays).
let private rowBits (r: CaseUncertainty.MethodResult) =
    Array.map
        System.BitConverter.DoubleToInt64Bits
        (Array.concat [
            [|
                r.VarianceScale
                r.Calibration.Ece
                r.EceInterval.Lower
                r.EceInterval.Upper
                r.Coverage50
                r.Coverage90
                r.Nll
                r.Crps
                r.Rmse
                r.MeanStd
                r.NoiseStd
                r.ModelStd
                r.ModelCoverage90
                float r.Points
            |]
            r.Calibration.Coverage
        ])

let tests =
    testSequenced
    <| testList "Cases.CaseUncertainty" [
        // The task path: one output per (candidate, member) and per MC-dropout network, each written as a task result,
        // read back from JSON and combined by `CasePart.uncertainty`, must give the rows of the same outputs combined
        // in memory bit for bit (wall times included: they travel with the outputs), and the rows of the one-process
        // `runModels` bit for bit but for the wall times.
        test "member tasks read back from JSON and assembled = the same outputs in memory = runModels" {
            let _, splits, candidates = twin ()

            let s = {
                CaseUncertainty.quick with
                    Passes = 3
            }

            let names = candidates |> Array.map (fun c -> c.Name, c.Dropout) |> List.ofArray

            let parts = CasePart.uncertaintyParts s names
            Expect.equal parts.Length (3 * s.Members + 1) "a part per member and the hybrid's MC dropout"

            let trainerOf name =
                (candidates |> Array.find (fun c -> c.Name = name)).Train

            let results =
                parts
                |> List.map (fun part ->
                    match part.Model with
                    | CasePart.UncertaintyOf(name, dropout) ->
                        let r: CasePart.PartResult<string> =
                            CasePart.uncertaintyResult s splits dropout part.Seed (trainerOf name)

                        // As a case's `runPart` does: the output's rows (noise variance, seconds).
                        part,
                        {
                            r with
                                Rows =
                                    r.Uncertainty
                                    |> Array.collect (UncertaintyRows.rows "synthetic" part.Model part.Seed)
                        }
                    | other -> failtest $"not an uncertainty part: {other}")

            let readBack =
                results
                |> List.map (fun (part, r) ->
                    let task = TaskSpec.create "synthetic" "tiny" part.Model part.Seed

                    CasePartTasks.toResult id id (fun _ -> [||]) task r
                    |> TaskResult.toJson
                    |> TaskResult.ofJson "memory"
                    |> CasePartTasks.ofResult (fun name _ _ _ -> name))

            let assemble (rs: (CasePart.Part * CasePart.PartResult<string>) list) =
                CasePart.uncertainty s names (fun p -> rs |> List.find (fun (q, _) -> q = p) |> snd)

            let inMemory = assemble results
            let fromJson = assemble readBack

            let direct =
                CaseUncertainty.runModels s (Some CaseUncertainty.Validation) splits candidates

            let keys (rs: CaseUncertainty.MethodResult[]) =
                rs |> Array.map (fun r -> r.Model, r.Method, r.Split)

            Expect.equal (keys fromJson) (keys inMemory) "the same rows in the same order"
            Expect.equal (keys inMemory) (keys direct) "the same rows as runModels"

            Expect.equal
                (fromJson |> Array.map (fun r -> rowBits r, r.Seconds))
                (inMemory |> Array.map (fun r -> rowBits r, r.Seconds))
                "from JSON = in memory, bit for bit"

            Expect.equal (Array.map rowBits inMemory) (Array.map rowBits direct) "= runModels, bit for bit"

            Expect.equal fromJson.Length ((3 + 1) * 3) "4 methods: validation and test as trained, test recalibrated"
        }

        // The recalibrated rows' σ scale must be √(mean z²) of the full predictive on the validation split, z the
        // standardised error: computed here from the twin's known predictive (see `twin`), not by the
        // library. The validation split's own rows stay as trained, and the twin's calibrated candidate ("right",
        // σ = 1 exactly) keeps a scale within 3 standard errors (≈ 1/√2000 each) of 1 and a test ECE below 0.04.
        test "the recalibrated rows' σ scale is √(mean z²) on the validation split; the validation rows are unscaled" {
            let mu, splits, candidates = twin ()
            let s = CaseUncertainty.quick

            let results =
                CaseUncertainty.runModels s (Some CaseUncertainty.Validation) splits candidates

            let validation = (snd splits[0]).data<float>().ToArray()
            let means = mu.data<float>().ToArray()

            for c in candidates do
                let noise = (c.Train 0 0.0).NoiseVariance

                // The ensemble: mean μ, σ² = 0.3² + noise. MC dropout: one network from seed `s.Seed` (even: μ + 0.3),
                // its passes agree, σ² = noise.
                let expected (r: CaseUncertainty.MethodResult) =
                    let shift, sigma =
                        if r.Method.StartsWith "MC dropout" then
                            0.3, sqrt noise
                        else
                            0.0, sqrt (0.09 + noise)

                    Array.map2 (fun (y: float) m -> ((y - m - shift) / sigma) ** 2.0) validation means
                    |> Array.average
                    |> sqrt

                let rows = results |> Array.filter (fun r -> r.Model = c.Name)

                for r in rows do
                    if r.Split = CaseUncertainty.Validation then
                        Expect.equal r.VarianceScale 1.0 $"{c.Name}, {r.Method}: the validation row is as trained"

                let recalibrated =
                    rows |> Array.filter (fun r -> r.Split = "test" && r.VarianceScale <> 1.0)

                Expect.isGreaterThan recalibrated.Length 0 $"{c.Name}: recalibrated rows"

                for r in recalibrated do
                    Expect.floatClose Accuracy.high r.VarianceScale (expected r) $"{c.Name}, {r.Method}: σ scale"

            let right =
                results
                |> Array.find (fun r -> r.Model = "right" && r.Split = "test" && r.VarianceScale <> 1.0)

            Expect.floatClose
                {
                    absolute = 3.0 / sqrt 2000.0
                    relative = 0.0
                }
                right.VarianceScale
                1.0
                "right: s ≈ 1"

            Expect.isLessThan right.Calibration.Ece 0.04 "right, recalibrated: ECE"

            let narrow =
                results
                |> Array.find (fun r -> r.Model = "narrow" && r.Split = "test" && r.VarianceScale <> 1.0)

            // σ = √(0.09 + 0.01) ≈ 0.32 against errors of σ 1: s ≈ 3.2, and the recalibrated test split is calibrated.
            Expect.floatClose
                {
                    absolute = 3.0 * 3.16 / sqrt 2000.0
                    relative = 0.0
                }
                narrow.VarianceScale
                (1.0 / sqrt 0.1)
                "narrow: s ≈ 1/√0.1"

            Expect.isLessThan narrow.Calibration.Ece 0.04 "narrow, recalibrated: ECE"
        }

        test "the right Gaussian spread is calibrated: ECE below 0.02, both methods" {
            for r in experiment 1.0 do
                checkResult r
                Expect.isLessThan r.Calibration.Ece 0.02 $"{r.Method}: ECE"
                Expect.floatClose { absolute = 0.02; relative = 0.0 } r.Coverage90 0.9 $"{r.Method}: 90%% coverage"
                Expect.equal (CaseUncertainty.confidence 0.05 r.Calibration) "about right" r.Method
        }

        test "a spread scaled by 0.2 under-covers clearly and is called over-confident" {
            for r in experiment 0.2 do
                checkResult r
                // P(|z| ≤ 0.2 · 1.645) ≈ 0.26 for the 90% interval.
                Expect.isLessThan r.Coverage90 0.35 $"{r.Method}: 90%% coverage"
                Expect.isGreaterThan r.Calibration.Ece 0.25 $"{r.Method}: ECE"
                Expect.equal (CaseUncertainty.confidence 0.05 r.Calibration) "over-confident" r.Method
        }

        test "the ensemble spread of the members adds to the noise" {
            let y = torch.zeros (100L, dtype = f64)

            let results =
                CaseUncertainty.run CaseUncertainty.quick [| "spread", y |] (fun seed _ -> {
                    Modules = [||]
                    Predict = fun () -> [| torch.full (100L, (if seed % 2 = 0 then 1.0 else -1.0), dtype = f64) |]
                    NoiseVariance = 0.75
                })

            // Members at ±1 with noise 0.75: mixture variance 0.75 + 1 = 1.75.
            Expect.floatClose Accuracy.high results[0].MeanStd (sqrt 1.75) "ensemble σ"
        }

        test "withOneMask: one dropout mask for every call inside, a new one per pass, weights and mode restored" {
            Engine.seed 5
            let net = new Hybrid.Training.Mlp("masked", 2, 1, 16, 2, dropout = 0.5, dtype = f64)
            let x = torch.randn (50L, 2L, dtype = f64)
            let values () = (net.forward x).data<float>().ToArray()
            net.eval () |> ignore
            let plain = values ()
            net.train () |> ignore

            let pass () =
                CaseUncertainty.withOneMask net (fun () -> values (), values ())

            let first, again = pass ()
            let second, _ = pass ()
            Expect.sequenceEqual first again "the same mask for both calls of one pass"
            Expect.isFalse (first = second) "another mask in the next pass"
            Expect.isFalse (first = plain) "a mask was applied"
            Expect.isTrue net.training "training mode restored"
            net.eval () |> ignore
            Expect.sequenceEqual (values ()) plain "weights restored"
            Expect.sequenceEqual (CaseUncertainty.withOneMask net values) plain "eval mode: no mask"
        }

        // Targets y = μ + ε with ε ~ N(0, 1) on a validation and a test split of 2000 values each. A model reporting
        // σ = 0.5 is over-confident by a factor 2; variance scaling fitted on the validation split must find s ≈ 2
        // (the standard error of √(mean z²) over 2000 values is ≈ 2 · 1/√4000 ≈ 0.03) and make the test split
        // calibrated. A model reporting σ = 1 is calibrated already and must keep s ≈ 1.
        test "variance scaling on a validation split recalibrates an over-confident model, and leaves a calibrated one" {
            Engine.seed 12
            let mu = torch.linspace (-2.0, 2.0, 2000L, dtype = f64)
            let validation = mu .+ torch.randn (2000L, dtype = f64)
            let test = mu .+ torch.randn (2000L, dtype = f64)

            let results =
                CaseUncertainty.runModels CaseUncertainty.quick (Some "validation") [|
                    "validation", validation
                    "test", test
                |] [| candidate "narrow" mu 0.5; candidate "right" mu 1.0 |]

            let row model scaled =
                results
                |> Array.find (fun r -> r.Model = model && r.Split = "test" && (r.VarianceScale <> 1.0) = scaled)

            Expect.equal results.Length 6 "per model: validation and test as trained, test recalibrated"

            Expect.equal
                (CaseUncertainty.confidence 0.05 (row "narrow" false).Calibration)
                "over-confident"
                "narrow, as trained"

            Expect.floatClose { absolute = 0.1; relative = 0.0 } (row "narrow" true).VarianceScale 2.0 "narrow: s ≈ 2"
            Expect.isLessThan (row "narrow" true).Calibration.Ece 0.03 "narrow, recalibrated: ECE"

            Expect.floatClose
                { absolute = 0.03; relative = 0.0 }
                (row "narrow" true).Coverage90
                0.9
                "narrow, recalibrated: 90%% coverage"

            Expect.floatClose { absolute = 0.05; relative = 0.0 } (row "right" true).VarianceScale 1.0 "right: s ≈ 1"

            Expect.isFalse
                (results
                 |> Array.exists (fun r -> r.Split = "validation" && r.VarianceScale <> 1.0))
                "the validation split is not scored after its own recalibration"
        }

        // The ECE of 2000 values has a bootstrap interval of a few hundredths: it must hold the (bias-corrected) estimate, and the
        // intervals of a calibrated model (ECE ≈ 0) and of one reporting σ × 0.2 (ECE ≈ 0.3) must not overlap.
        // Small splits (60 values, as in the energy balance's test years): a model reporting σ × c of the true σ has
        // the true ECE mean over levels p of |2Φ(c·z_p) − 1 − p|, z_p = Φ⁻¹((1 + p)/2). The plug-in ECE is biased
        // upward, so its percentile interval lies above the truth in most draws; the basic bootstrap removes the
        // bias. Over 40 independent splits: the basic interval holds the true ECE in ≥ 80% (binomial sd at 95%
        // ≈ 3.4%: a sound interval fails this with probability < 1e-4), the percentile interval in ≤ 60% for the
        // calibrated model (its lower end is above 0 in every draw, so it never holds ECE = 0).
        test "the ECE's basic-bootstrap interval covers the true ECE of small splits, the percentile one does not" {
            let normal = MathNet.Numerics.Distributions.Normal(0.0, 1.0)

            let trueEce (c: float) =
                Uncertainty.defaultLevels
                |> Array.averageBy (fun p ->
                    abs (
                        2.0
                        * normal.CumulativeDistribution(c * normal.InverseCumulativeDistribution((1.0 + p) / 2.0))
                        - 1.0
                        - p
                    ))

            for c in [ 1.0; 0.6 ] do
                let truth = trueEce c
                let mutable basic = 0
                let mutable percentile = 0
                let splits = 40

                for k in 0 .. splits - 1 do
                    use _ = torch.NewDisposeScope()
                    Engine.seed (100 + k)
                    let mu = torch.zeros (60L, dtype = f64)
                    let y = torch.randn (60L, dtype = f64)

                    let p = {
                        Predictive.Mean = mu
                        Std = torch.full (60L, c, dtype = f64)
                    }

                    let e = CaseUncertainty.eceInterval p y

                    if e.Lower <= truth && truth <= e.Upper then
                        basic <- basic + 1

                    let q =
                        Statistics.bootstrap 0.95 200 0 60 (fun i ->
                            use _ = torch.NewDisposeScope()
                            let index = torch.tensor (i |> Array.map int64)

                            (Uncertainty.calibration
                                Uncertainty.defaultLevels
                                {
                                    Mean = mu.index_select (0L, index)
                                    Std = p.Std.index_select (0L, index)
                                }
                                (y.index_select (0L, index)))
                                .Ece)

                    if q.Lower <= truth && truth <= q.Upper then
                        percentile <- percentile + 1

                Expect.isGreaterThanOrEqual
                    (float basic / float splits)
                    0.8
                    $"σ × {c} (true ECE {truth:F3}): the basic interval holds it in {basic}/{splits} splits"

                if c = 1.0 then
                    Expect.isLessThanOrEqual
                        (float percentile / float splits)
                        0.6
                        $"σ × 1 (true ECE 0): the percentile interval holds it in {percentile}/{splits} splits"
        }

        test "the ECE's bootstrap interval holds the estimate and separates a calibrated from a miscalibrated model" {
            Engine.seed 13
            let mu = torch.linspace (-2.0, 2.0, 2000L, dtype = f64)
            let y = mu .+ torch.randn (2000L, dtype = f64)

            let results =
                CaseUncertainty.runModels CaseUncertainty.quick None [| "a", y; "b", y |] [|
                    candidate "right" mu 1.0
                    candidate "narrow" mu 0.2
                |]

            for r in results do
                let e = r.EceInterval

                Expect.isLessThanOrEqual
                    e.Estimate
                    r.Calibration.Ece
                    $"{r.Model}: the bias-corrected estimate lies below the plug-in ECE"

                Expect.isTrue
                    (e.Lower <= e.Estimate && e.Estimate <= e.Upper)
                    $"{r.Model}: {e.Lower} ≤ {e.Estimate} ≤ {e.Upper}"

                Expect.isLessThan (e.Upper - e.Lower) 0.05 $"{r.Model}: width with 2000 values"

            let right = results |> Array.find (fun r -> r.Model = "right")
            let narrow = results |> Array.find (fun r -> r.Model = "narrow")
            Expect.isLessThan right.EceInterval.Upper narrow.EceInterval.Lower "the intervals do not overlap"
        }

        test "a validation split that is not one of the splits is refused, naming the splits" {
            let y = torch.zeros (10L, dtype = f64)

            let e =
                Expect.throwsC
                    (fun () ->
                        CaseUncertainty.runModels CaseUncertainty.quick (Some "valid") [| "validation", y; "test", y |] [|
                            candidate "m" y 1.0
                        |]
                        |> ignore)
                    id

            Expect.stringContains e.Message "'valid' is not one of the splits (validation, test)" "names both"
        }
    ]
