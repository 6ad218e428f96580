/// The report's statistics: Student-t quantiles against tabulated values, intervals against hand-computed ones,
/// the pairing by seed, the verdict rule at and around its bar, and the bootstrap against the normal theory.
module Hybrid.Tests.Report.StatisticsTests

open System
open Expecto
open Hybrid.Models.Common

let private close (expected: float) (actual: float) (what: string) =
    Expect.floatClose Accuracy.veryHigh actual expected what

let private interval lower upper : Statistics.Interval = {
    Estimate = (lower + upper) / 2.0
    Lower = lower
    Upper = upper
    Level = 0.95
    Count = 5
}

let private throwsWith (text: string) (f: unit -> unit) =
    let e = Expect.throwsC f id
    Expect.stringContains e.Message text "the message"

let tests =
    testList "Statistics" [
        test "two-sided Student-t quantiles equal the tabulated ones" {
            // t(0.975) for 1, 2, 4 and 9 degrees of freedom, and t(0.95) for 4 (any table of Student's t).
            close 12.706204736174694 (Statistics.tQuantile 0.95 1) "df 1"
            close 4.302652729911275 (Statistics.tQuantile 0.95 2) "df 2"
            close 2.7764451051977987 (Statistics.tQuantile 0.95 4) "df 4"
            close 2.2621571627409915 (Statistics.tQuantile 0.95 9) "df 9"
            close 2.1318467863266499 (Statistics.tQuantile 0.90 4) "90%, df 4"
        }

        test "meanInterval is mean ± t·s/√n" {
            let i = Statistics.meanInterval 0.95 [| 1.0; 2.0; 3.0; 4.0; 5.0 |]
            // s = √2.5, n = 5: half width = t(0.975, 4)·√(2.5/5).
            let half = 2.7764451051977987 * sqrt 0.5
            close 3.0 i.Estimate "mean"
            close (3.0 - half) i.Lower "lower"
            close (3.0 + half) i.Upper "upper"
            Expect.equal i.Count 5 "count"
        }

        test "errorRatio pairs by seed: a constant ratio gives a point interval however much the MSEs vary" {
            let baseline = [| 0.01; 3.0; 250.0; 0.4 |]
            let candidate = baseline |> Array.map (fun b -> 0.7 * b)
            let r = Statistics.errorRatio 0.95 candidate baseline
            close 0.7 r.Estimate "ratio"
            close 0.7 r.Lower "lower"
            close 0.7 r.Upper "upper"
        }

        test "errorRatio is the t-interval of the log-MSE differences, on the ratio scale" {
            let baseline = [| 1.0; 2.0; 4.0 |]
            let ratios = [| 0.5; 0.7; 0.6 |]
            let candidate = Array.map2 (*) baseline ratios
            let r = Statistics.errorRatio 0.95 candidate baseline
            let d = ratios |> Array.map log
            let mean = Array.average d
            let sd = sqrt ((d |> Array.sumBy (fun x -> (x - mean) ** 2.0)) / 2.0)
            let half = 4.302652729911275 * sd / sqrt 3.0
            close ((0.5 * 0.7 * 0.6) ** (1.0 / 3.0)) r.Estimate "geometric mean ratio"
            close (exp (mean - half)) r.Lower "lower"
            close (exp (mean + half)) r.Upper "upper"
        }

        test "the verdict on 20% lower error: holds, fails or inconclusive by the whole interval" {
            Expect.equal (Statistics.verdict 20.0 (interval 0.6 0.75)) Statistics.Verdict.Holds "all ≥ 20% lower"

            Expect.equal
                (Statistics.verdict 20.0 (interval 0.6 0.8))
                Statistics.Verdict.Holds
                "upper end exactly at 0.8"

            Expect.equal (Statistics.verdict 20.0 (interval 0.85 0.95)) Statistics.Verdict.Fails "all < 20% lower"
            Expect.equal (Statistics.verdict 20.0 (interval 0.9 1.3)) Statistics.Verdict.Fails "no better at all"
            Expect.equal (Statistics.verdict 20.0 (interval 0.7 0.9)) Statistics.Verdict.Inconclusive "straddles 0.8"
            Expect.equal (Statistics.verdict 0.0 (interval 0.7 0.9)) Statistics.Verdict.Holds "any reduction: holds"
        }

        test
            "the verdict at a bar above 1 (at most 10% higher error): holds, fails or inconclusive by the whole interval" {
            Expect.equal (Statistics.verdictAt 1.1 (interval 0.6 1.05)) Statistics.Verdict.Holds "all ≤ 1.1"
            Expect.equal (Statistics.verdictAt 1.1 (interval 0.9 1.1)) Statistics.Verdict.Holds "upper end exactly 1.1"
            Expect.equal (Statistics.verdictAt 1.1 (interval 1.15 2.0)) Statistics.Verdict.Fails "all above 1.1"
            Expect.equal (Statistics.verdictAt 1.1 (interval 1.0 1.2)) Statistics.Verdict.Inconclusive "straddles 1.1"

            Expect.equal
                (Statistics.verdictAt 0.8 (interval 0.7 0.9))
                (Statistics.verdict 20.0 (interval 0.7 0.9))
                "verdict 20% is verdictAt 0.8"

            throwsWith "bar = 0" (fun () -> Statistics.verdictAt 0.0 (interval 0.7 0.9) |> ignore)
        }

        test "the percentile bootstrap of a mean matches the normal interval, repeats by seed" {
            let random = Random 5
            // 400 standard normal draws (Box–Muller).
            let xs =
                Array.init 400 (fun _ ->
                    sqrt (-2.0 * log (1.0 - random.NextDouble()))
                    * cos (2.0 * Math.PI * random.NextDouble()))

            let mean (idx: int[]) = idx |> Array.averageBy (fun i -> xs[i])
            let b = Statistics.bootstrap 0.95 4000 11 xs.Length mean
            let m = Array.average xs
            let sd = sqrt ((xs |> Array.sumBy (fun x -> (x - m) ** 2.0)) / 399.0)
            let normalWidth = 2.0 * 1.959963984540054 * sd / sqrt 400.0
            close m b.Estimate "estimate from all items"
            // The bootstrap's width scatters by about 1/√(2·4000·0.05) ≈ 5% around the normal width.
            Expect.isLessThan (abs ((b.Upper - b.Lower) / normalWidth - 1.0)) 0.1 "width as normal theory"
            Expect.isLessThan (abs ((b.Upper + b.Lower) / 2.0 - m)) (0.1 * normalWidth) "centred on the mean"
            Expect.equal (Statistics.bootstrap 0.95 4000 11 xs.Length mean) b "the same seed, the same interval"
            Expect.notEqual (Statistics.bootstrap 0.95 4000 12 xs.Length mean) b "another seed, another interval"
        }

        // The plug-in variance (divisor n) is biased by −σ²/n, and its resamples' mean is (n − 1)/n of it, so the
        // basic bootstrap's estimate 2θ̂ − mean(θ*) is θ̂ (n + 1)/n up to Monte-Carlo error sd(θ*)/√resamples; the
        // percentile estimate stays θ̂. |mean| of centred values is biased upward like the ECE: clipped at 0.
        test "the basic bootstrap removes the bias of the plug-in variance and clips at the statistic's bound" {
            let random = Random 7

            let xs =
                Array.init 30 (fun _ ->
                    sqrt (-2.0 * log (1.0 - random.NextDouble()))
                    * cos (2.0 * Math.PI * random.NextDouble()))

            let variance (idx: int[]) =
                let m = idx |> Array.averageBy (fun i -> xs[i])
                idx |> Array.averageBy (fun i -> (xs[i] - m) ** 2.0)

            let plugIn = variance (Array.init 30 id)
            let b = Statistics.basicBootstrap 0.95 4000 3 30 0.0 variance
            let sdDraws = plugIn * sqrt (2.0 / 29.0)

            Expect.isLessThan
                (abs (b.Estimate - plugIn * 31.0 / 30.0))
                (4.0 * sdDraws / sqrt 4000.0)
                $"estimate {b.Estimate} against θ̂ (n + 1)/n = {plugIn * 31.0 / 30.0}"

            Expect.isTrue (b.Lower < b.Estimate && b.Estimate < b.Upper) "the interval holds the estimate"

            let absMean (idx: int[]) =
                abs (idx |> Array.averageBy (fun i -> xs[i] - Array.average xs))

            let clipped = Statistics.basicBootstrap 0.95 1000 3 30 0.0 absMean
            Expect.equal clipped.Lower 0.0 "|mean| of centred values: the reflected lower end is clipped at 0"
            Expect.equal clipped.Estimate 0.0 "and so is the bias-corrected estimate"
        }

        test "bad input is refused with the values and the fix" {
            throwsWith "3 candidate MSEs but 2 baseline MSEs; pair them by seed" (fun () ->
                Statistics.errorRatio 0.95 [| 1.0; 2.0; 3.0 |] [| 1.0; 2.0 |] |> ignore)

            throwsWith "baseline MSEs [1] = 0; an MSE must be positive" (fun () ->
                Statistics.errorRatio 0.95 [| 1.0; 2.0 |] [| 1.0; 0.0 |] |> ignore)

            throwsWith "1 values; an interval needs at least 2" (fun () ->
                Statistics.meanInterval 0.95 [| 1.0 |] |> ignore)

            throwsWith "level = 95; a confidence level lies strictly between 0 and 1" (fun () ->
                Statistics.meanInterval 95.0 [| 1.0; 2.0 |] |> ignore)

            throwsWith "values [1] = NaN is not finite" (fun () ->
                Statistics.meanInterval 0.95 [| 1.0; nan |] |> ignore)
        }
    ]
