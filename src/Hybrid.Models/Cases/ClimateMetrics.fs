/// The climate case's metrics (issue #16) for one trained model (`Climate.Trained`), and the truth's for reference:
///  - forecast errors on the test block and the out-of-distribution run at each lead: MSE of ω and q, of the regional
///    precipitation (`Climate.regionalPrecipitation` over the lead's window; mean over regions and windows), of the
///    domain-total precipitation, and per region at the longest lead;
///  - a free run from the test block's start for `FreeRunIntervals` saves (≥ 10 × the training horizon): whether
///    and when it blows up, its mean precipitation map, each region's mean and variance over time of the
///    precipitation rate, and the isotropic spectra (`Spectra`) of ω over its last quarter, like the truth's;
///  - the physics residual of its test forecasts: each saved state flowed one save interval by the coarse physics
///    alone, against the model's next saved state (RMS of the ω difference over the interval, a tendency), as the
///    two-scale Lorenz-96 case reports it; 0 up to round-off for the physics itself, and the truth's own value is the
///    size of the real sub-grid effect;
///  - wall time of the free run per simulated time unit (inference), against the truth's generation per simulated
///    time unit;
///  - the regional precipitation at the longest lead on the validation, test and out-of-distribution windows with
///    its training residual variance (`CaseUncertainty.Output`): one ensemble member, the models of several seeds
///    giving the deep ensemble whose calibration the report computes.
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateMetrics

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common

/// A model's errors on one split (the test block or the out-of-distribution run).
type SplitScores = {
    /// The leads, in saved intervals (`Settings.Leads`).
    Leads: int[]
    /// MSE of ω at each lead.
    Omega: float[]
    /// MSE of q at each lead.
    Q: float[]
    /// MSE of the regional precipitation over each lead's window (mean over regions and windows).
    Precipitation: float[]
    /// MSE of the domain-total precipitation over each lead's window (mean over windows).
    TotalPrecipitation: float[]
    /// MSE of each region's precipitation at the longest lead (mean over windows), region (i, j) — the i-th block
    /// along x, the j-th along y — at i · Regions + j.
    PerRegion: float[]
}

/// A free run (or the truth over the same span) and its statistics.
type FreeRun = {
    /// Saved intervals run.
    Intervals: int
    /// Time after the start of the first save where ω is not finite or |ω| exceeds `BlowUpFactor` × the truth's
    /// largest |ω| over the span; NaN for a stable run. The statistics below are NaN for a run that blew up.
    BlowUp: float
    /// Mean precipitation rate per cell over the run, (P(end) − P(start)) / duration, n × n, cell (i, j) — i along
    /// x, j along y — at i · n + j.
    MeanMap: float[]
    /// Each region's precipitation rate (its integral over the region per unit time), mean over the run's intervals
    /// (regions as in `SplitScores.PerRegion`).
    RegionMean: float[]
    /// Each region's precipitation rate, variance over the run's intervals (population variance).
    RegionVariance: float[]
    /// The isotropic spectra of ω averaged over the run's last quarter of saves.
    Spectrum: Spectrum
}

/// Everything measured of one model trained from one seed.
type Evaluation = {
    /// The model's name.
    Name: string
    /// Its seed.
    Seed: int
    /// Errors on the test block.
    Test: SplitScores
    /// Errors on the out-of-distribution run.
    Ood: SplitScores
    /// The free run from the test block's start.
    Free: FreeRun
    /// Physics residual of the test forecasts (see the module's summary), in units of ω per time.
    PhysicsResidual: float
    /// Training wall time in seconds.
    TrainSeconds: float
    /// Training losses per epoch (empty without training).
    TrainLosses: float[]
    /// Wall time of the free run per simulated time unit, in seconds.
    InferenceSecondsPerTime: float
    /// The regional precipitation at the longest lead on the validation, test and out-of-distribution windows, with
    /// the training residual variance: one member of the model's ensemble over seeds.
    Uncertainty: CaseUncertainty.Output
}

/// The truth's reference values over the same spans.
type TruthReference = {
    /// The truth over the free runs' span.
    Free: FreeRun
    /// The physics residual of the truth's own test windows (the real sub-grid effect's size).
    PhysicsResidual: float
    /// Wall time of generating the truth (`ClimateTruth.Truth.Seconds`).
    Seconds: float
    /// That time per simulated time unit of the fine grid (spin-up, the in-distribution run, the out-of-distribution
    /// run's adjustment and run).
    SecondsPerTime: float
}

/// A free run blows up when |ω| exceeds this multiple of the truth's largest |ω| over the same span.
[<Literal>]
let BlowUpFactor = 10.0

/// The split names of `Evaluation.Uncertainty`, in order: the validation block (recalibration), the test block and
/// the out-of-distribution run.
let uncertaintySplits = [| CaseUncertainty.Validation; "test"; "out of distribution (1.5 F0)" |]

let private values (t: torch.Tensor) : float[] =
    t.detach().to_type(torch.ScalarType.Float64).contiguous().reshape(-1L).data<float>().ToArray()

let private mse (a: torch.Tensor) (b: torch.Tensor) = (Loss.mse a b).ToDouble()

/// The regional precipitation ([B; R; R]) of states [L + 1; B; n; n] (ω, q, P) over the first `lead` intervals.
let private regionalAt (s: Climate.Settings) (states: torch.Tensor[]) (lead: int) =
    Climate.regionalPrecipitation s.Regions (states[2][0L]) (states[2][int64 lead])

/// The errors of `forecast` against `target` (each field [L + 1; B; n; n], L the longest lead).
let scores (s: Climate.Settings) (forecast: torch.Tensor[]) (target: torch.Tensor[]) : SplitScores =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let leads = Array.ofList s.Leads
    let at (v: torch.Tensor) (lead: int) = v[int64 lead]

    let total (r: torch.Tensor) = r.sum ([| 1L; 2L |])

    let longest = Array.max leads
    let rf, rt = regionalAt s forecast longest, regionalAt s target longest

    {
        Leads = leads
        Omega = leads |> Array.map (fun l -> mse (at (forecast[0]) l) (at (target[0]) l))
        Q = leads |> Array.map (fun l -> mse (at (forecast[1]) l) (at (target[1]) l))
        Precipitation =
            leads
            |> Array.map (fun l -> mse (regionalAt s forecast l) (regionalAt s target l))
        TotalPrecipitation =
            leads
            |> Array.map (fun l -> mse (total (regionalAt s forecast l)) (total (regionalAt s target l)))
        PerRegion = values ((square (rf .- rt)).mean ([| 0L |]))
    }

/// The spectrum with every value NaN on the shells of an n × n grid (a run that blew up).
let private nanSpectrum (n: int) : Spectrum =
    let shells = Spectra.ofArrays [| Array2D.zeroCreate n n |]

    {
        shells with
            Enstrophy = Array.create shells.Wavenumbers.Length nan
            Energy = Array.create shells.Wavenumbers.Length nan
    }

/// The statistics of a run `states` (each field [T + 1; 1; n; n]: ω, q, P at T + 1 saves), unstable once |ω|
/// exceeds `limit`.
let freeRun (s: Climate.Settings) (limit: float) (states: torch.Tensor[]) : FreeRun =
    use _ = torch.no_grad ()
    let saves = int (states[0].shape[0])
    let t = saves - 1
    let n = int (states[0].shape[3])
    let cells = n * n
    let omega = values (states[0])
    let p = values (states[2])
    let dt = s.Truth.SaveEvery

    let blowUp =
        seq { 0..t }
        |> Seq.tryFind (fun k ->
            let mutable bad = false

            for c in k * cells .. (k + 1) * cells - 1 do
                let v = omega[c]

                if not (Double.IsFinite v) || abs v > limit then
                    bad <- true

            bad)
        |> Option.map (fun k -> float k * dt)
        |> Option.defaultValue nan

    let r = s.Regions
    let f = n / r

    if not (Double.IsNaN blowUp) then
        {
            Intervals = t
            BlowUp = blowUp
            MeanMap = Array.create cells nan
            RegionMean = Array.create (r * r) nan
            RegionVariance = Array.create (r * r) nan
            Spectrum = nanSpectrum n
        }
    else
        let area = (2.0 * Math.PI / float n) ** 2.0

        let rates =
            Array.init t (fun k ->
                Array.init (r * r) (fun region ->
                    let a, b = region / r, region % r
                    let mutable sum = 0.0

                    for i in a * f .. (a + 1) * f - 1 do
                        for j in b * f .. (b + 1) * f - 1 do
                            sum <- sum + p[(k + 1) * cells + i * n + j] - p[k * cells + i * n + j]

                    sum * area / dt))

        let mean =
            Array.init (r * r) (fun region -> rates |> Array.averageBy (fun x -> x[region]))

        let variance =
            Array.init (r * r) (fun region -> rates |> Array.averageBy (fun x -> (x[region] - mean[region]) ** 2.0))

        let quarter = max 1 (saves / 4)

        {
            Intervals = t
            BlowUp = blowUp
            MeanMap = Array.init cells (fun c -> (p[t * cells + c] - p[c]) / (float t * dt))
            RegionMean = mean
            RegionVariance = variance
            Spectrum = Spectra.ofTensor (states[0].narrow (0L, int64 (saves - quarter), int64 quarter))
        }

/// The physics residual of states [L + 1; B; n; n] (ω, q, P) under `physics` (the coarse physics alone): every
/// state but the last flowed one save interval, against the next state; the RMS of the ω difference divided by the
/// interval.
let residual (s: Climate.Settings) (physics: Climate.Trained) (states: torch.Tensor[]) : float =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let l = states[0].shape[0] - 1L
    let b, n, m = states[0].shape[1], states[0].shape[2], states[0].shape[3]
    let flat (v: torch.Tensor) = v.reshape (l * b, n, m)
    let u = states |> Array.map (fun v -> flat (v.narrow (0L, 0L, l)))
    let next = flat (states[0].narrow (0L, 1L, l))
    let flowed = physics.Forecast u 1
    sqrt (mse (flowed[0][1L]) next) / s.Truth.SaveEvery

/// The truth's states over the free runs' span: from the test block's start, `FreeRunIntervals` saves, each field
/// [T + 1; 1; n; n].
let truthSpan (s: Climate.Settings) (d: Climate.Data) : torch.Tensor[] =
    d.Truth.Main.Fields
    |> Array.map (fun v -> v.narrow (0L, int64 (d.TestStarts[0]), int64 (s.FreeRunIntervals + 1)))

/// The blow-up threshold of the free runs: `BlowUpFactor` × the truth's largest |ω| over their span.
let blowUpLimit (s: Climate.Settings) (d: Climate.Data) : float =
    use _ = torch.no_grad ()
    let omega = (truthSpan s d)[0]
    BlowUpFactor * omega.abs().max().ToDouble()

/// The truth's reference values: its statistics over the free runs' span, the physics residual of its test windows
/// under `physics` (the coarse physics), and its generation time.
let truth (s: Climate.Settings) (d: Climate.Data) (physics: Climate.Trained) : TruthReference =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let t = s.Truth

    let simulated =
        t.SpinUp
        + float t.Intervals * t.SaveEvery
        + t.OodAdjust
        + float t.OodIntervals * t.SaveEvery

    {
        TruthReference.Free = freeRun s (blowUpLimit s d) (truthSpan s d)
        PhysicsResidual = residual s physics (Climate.truthWindows d.Truth.Main d.TestStarts (List.max s.Leads))
        Seconds = d.Truth.Seconds
        SecondsPerTime = d.Truth.Seconds / simulated
    }

/// Everything measured of `m` (trained from `seed`) on the data `d`; `physics` is the coarse physics for the
/// residual.
let evaluate
    (s: Climate.Settings)
    (d: Climate.Data)
    (physics: Climate.Trained)
    (m: Climate.Trained)
    (seed: int)
    : Evaluation =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let lead = List.max s.Leads
    let main, ood = d.Truth.Main, d.Truth.Ood

    let windows (run: ClimateTruth.Run) (starts: int[]) =
        m.Forecast (Climate.startStates run starts) lead, Climate.truthWindows run starts lead

    let testForecast, testTarget = windows main d.TestStarts
    let oodForecast, oodTarget = windows ood d.OodStarts
    let validationForecast, validationTarget = windows main d.ValidationStarts

    let trainStarts =
        d.TrainStarts |> Array.filter (fun i -> i + lead <= s.TrainIntervals)

    if trainStarts.Length = 0 then
        raise (
            HybridException
                $"ClimateMetrics: no training window holds the longest lead {lead} in {s.TrainIntervals} training intervals; the noise variance needs one."
        )

    let trainForecast, trainTarget = windows main trainStarts
    let watch = Stopwatch.StartNew()

    let free =
        m.Forecast (Climate.startStates main [| d.TestStarts[0] |]) s.FreeRunIntervals

    let freeSeconds = watch.Elapsed.TotalSeconds
    let regional states = values (regionalAt s states lead)

    let predicted = [| regional validationForecast; regional testForecast; regional oodForecast |]

    {
        Evaluation.Name = m.Name
        Seed = seed
        Test = scores s testForecast testTarget
        Ood = scores s oodForecast oodTarget
        Free = freeRun s (blowUpLimit s d) free
        PhysicsResidual = residual s physics testForecast
        TrainSeconds = m.TrainSeconds
        TrainLosses = m.TrainLosses
        InferenceSecondsPerTime = freeSeconds / (float s.FreeRunIntervals * s.Truth.SaveEvery)
        Uncertainty = {
            CaseUncertainty.Output.Splits = uncertaintySplits
            Targets = [| regional validationTarget; regional testTarget; regional oodTarget |]
            Mean = predicted
            Std = predicted |> Array.map (fun v -> Array.zeroCreate v.Length)
            NoiseVariance = mse (regionalAt s trainForecast lead) (regionalAt s trainTarget lead)
            Seconds = freeSeconds
        }
    }
