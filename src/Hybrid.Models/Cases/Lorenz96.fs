/// Case study (twin experiment): the two-scale Lorenz-96 system (Lorenz 1996; Wilks 2005; Arnold et al. 2013)
/// with K = 8 slow variables X_k, J = 32 fast variables Y_{j,k} per slow site, h = 1, b = c = 10, F = 20:
///   dX_k/dt = −X_{k−1}(X_{k−2} − X_{k+1}) − X_k + F + U_k,   U_k = −(h c / b) Σ_j Y_{j,k},
///   dY_i/dt = −c b Y_{i+1}(Y_{i+2} − Y_{i−1}) − c Y_i + (h c / b) X_{k(i)},
/// the Y's on one periodic ring of K·J sites (Y_{j,k}, j = 0 … J−1, belongs to slow site k).
///
/// Truth: the coupled system integrated with classical RK4 in plain F# arrays (dt = 0.001 MTU, as in Arnold et
/// al. 2013) after a spin-up, sampled every 0.05 MTU. (Hybrid's DSL compiler handles two-scale lattices, but
/// Hybrid.Models does not reference Hybrid.Dsl; the generator here is the textbook right-hand side above.)
/// The training period comes first; the test period follows it in the same run (held-out initial states).
/// Out of domain: separate truth runs at F = 18 and F = 24, scored with the closures trained at F = 20.
///
/// Models: all but the sequence baselines are the X equation alone (8 variables) integrated with RK4 at
/// dt = 0.005 MTU, each with its own sub-grid closure U = U(X) (the vector of the K tendencies from the vector of
/// the K slow variables), all fitted offline on the same training samples (X, U):
///  - truncated: U = 0 (the scientific model with fixed parameters, no sub-grid term);
///  - cubic closure: U_k = a0 + a1 X_k + a2 X_k² + a3 X_k³ per site, fitted by least squares (Wilks 2005 style);
///  - hybrid (X + MLP): U_k = N(X_k) per site, a small MLP (one input, two tanh hidden layers), a local
///    (pointwise) closure, i.e. a CNN of kernel width 1;
///  - hybrid (X + CNN): U = C(X), a 1-D convolutional network (`Cnn1d`) over the periodic ring of the K sites
///    (circular padding; two tanh hidden convolutions of `CnnChannels` channels and an output convolution, all
///    of width `CnnKernel`, so U_k sees X_{k−3} … X_{k+3} for width 3) — the GCM-plus-CNN set-up at small scale.
///    Both networks are trained with full-batch Adam on the standardised samples (one mean and standard
///    deviation for all X and one for all U) from each of `NetworkSeeds`, and run in the forecasts as plain F#
///    functions copied from the trained weights (checked against the TorchSharp forward pass);
///  - LSTM and Transformer (`Baselines.SequenceModels`), pure data-driven: forecasters of the 8 X's (÷ 10) with
///    the forcing (÷ 20) as exogenous input, trained on the F = 20 training run (one-step increments over
///    `SequenceWindow`-sample windows, teacher forcing; `SequenceIterations` and `TransformerIterations` Adam
///    iterations, the transformer's halved in the report settings for about the same training time) from each of
///    `NetworkSeeds` like the closures, forecasting from the start state alone like the other models. They have no closure (closure MSE and curve NaN) and their train MSE is
///    NaN (the one-step training MSE is listed as a parameter).
/// No PINN baseline: a PINN fits u(t) on one trajectory's time domain, but every test forecast here starts from
/// an unseen state of a chaotic system with only that state known (no data over the forecast window to fit),
/// and the sub-grid term has no known equation for the residual; without data it reduces to the truncated X
/// equation (the truncated row), and learning U in the residual from the training run is the hybrid.
/// Scores: forecast RMSE of X at fixed leads from held-out initial states (truth X, the fast variables unknown
/// to the models), and the long-run statistics of a free run (mean, standard deviation, lag-0.5-MTU
/// autocorrelation of X, pooled over sites) against the truth's over a run of the same length.
module Hybrid.Models.Cases.Lorenz96

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Baselines
open Hybrid.Models.Common

/// Settings of the case. `defaults` for the report, `quick` for tests and CI.
type Settings = {
    /// Number of slow variables K.
    K: int
    /// Fast variables per slow site J.
    J: int
    /// Coupling h.
    H: float
    /// Amplitude ratio b.
    B: float
    /// Time-scale ratio c.
    C: float
    /// Forcing of the training (in-domain) truth.
    Forcing: float
    /// Forcings of the out-of-domain truths (closures trained at `Forcing`).
    OutOfDomain: float[]
    /// RK4 step of the truth (MTU).
    TruthDt: float
    /// RK4 step of the X-only models (MTU).
    ModelDt: float
    /// Spin-up of every truth run, discarded (MTU).
    SpinUp: float
    /// Length of the training period (MTU); pairs (X_k, U_k) every `SampleInterval`.
    TrainSpan: float
    /// Sampling interval of the truth (MTU); leads and the autocorrelation lag are multiples of it.
    SampleInterval: float
    /// Number of held-out forecast start states (per forcing).
    Starts: int
    /// Time between consecutive start states (MTU).
    StartSpacing: float
    /// Forecast leads at which the RMSE is reported (MTU).
    Leads: float[]
    /// Length of the free runs and of the truth run their statistics are compared with (MTU).
    FreeRun: float
    /// Lag of the reported autocorrelation (MTU).
    Lag: float
    /// Hidden width of the closure network (two hidden layers, tanh).
    Width: int
    /// Adam epochs (full batch) of the closure network.
    Epochs: int
    /// Adam learning rate.
    LearningRate: float
    /// Seed of the truth's initial state (the out-of-domain runs use `Seed + 1`, `Seed + 2`, …).
    Seed: int
    /// Seeds of the closure networks (MLP and CNN, each trained once per seed; forecast errors are the mean over
    /// seeds, the long-run statistics and closure curves the first seed's); the sequence baselines use the first.
    NetworkSeeds: int list
    /// Channels of the CNN closure's two hidden convolutions.
    CnnChannels: int
    /// Kernel width of every convolution of the CNN closure (odd).
    CnnKernel: int
    /// Adam iterations (full-batch epochs) of the LSTM baseline.
    SequenceIterations: int
    /// Adam iterations of the transformer baseline.
    TransformerIterations: int
    /// Model width of the transformer baseline (the LSTM has 32 hidden units).
    TransformerWidth: int
    /// Context length of the LSTM and transformer baselines (samples).
    SequenceWindow: int
    /// Share of the training period every closure and the LSTM see, in (0, 1]: the first ⌈f·N⌉ of the N samples
    /// (each K pairs (X_k, U_k)) in time (see `trainingSamples`); 1 keeps all. The test runs never change.
    TrainFraction: float
    /// Uncertainty of the hybrid's X forecasts (deep ensemble of closures, MC dropout); `Iterations` are the
    /// closure's Adam epochs.
    Uncertainty: CaseUncertainty.Settings
    /// Lead (MTU) of the forecasts whose uncertainty is scored.
    UncertaintyLead: float
}

/// The report settings: 200 MTU of training data, 100 start states, free runs of 200 MTU, 1000 epochs.
let defaults = {
    K = 8
    J = 32
    H = 1.0
    B = 10.0
    C = 10.0
    Forcing = 20.0
    OutOfDomain = [| 18.0; 24.0 |]
    TruthDt = 0.001
    ModelDt = 0.005
    SpinUp = 10.0
    TrainSpan = 200.0
    SampleInterval = 0.05
    Starts = 100
    StartSpacing = 1.0
    Leads = [| 0.2; 0.5; 1.0 |]
    FreeRun = 200.0
    Lag = 0.5
    Width = 16
    Epochs = 1000
    LearningRate = 1e-2
    Seed = 1
    NetworkSeeds = [ 5; 6; 7 ]
    CnnChannels = 16
    CnnKernel = 3
    SequenceIterations = 600
    // Half the LSTM's: a transformer iteration (width 32) costs about twice an LSTM iteration here (full mode, 30
    // iterations: 16.5 s against 8.0 s on a loaded two-core machine), so both get about the same training time.
    TransformerIterations = 300
    TransformerWidth = 32
    SequenceWindow = 10
    TrainFraction = 1.0
    // Closures get the quick budget (300 epochs, not 1000): at 1000 the experiment took 527 s of a 1164 s run on
    // a loaded two-core machine (members and the 30 dropout passes over 3 × 100 forecasts).
    Uncertainty = {
        CaseUncertainty.defaults with
            Iterations = 300
    }
    UncertaintyLead = 0.5
}

/// Settings for tests and CI: 30 MTU of training data, 30 start states, free runs of 50 MTU, 300 epochs, two
/// network seeds.
let quick = {
    defaults with
        NetworkSeeds = [ 5; 6 ]
        SpinUp = 5.0
        TrainSpan = 30.0
        Starts = 30
        FreeRun = 50.0
        Epochs = 300
        SequenceIterations = 60
        TransformerIterations = 60
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 100
        }
}

/// Skill of one model (or the truth's statistics) at one forcing.
type Skill = {
    /// The forcing F of the truth.
    Forcing: float
    /// Forecast RMSE of X at `Settings.Leads` (averaged over start states and sites; empty for the truth). For a
    /// model fitted over several network seeds, the root of the mean over seeds of the squared RMSE (the MSE).
    Rmse: float[]
    /// Mean squared error of the closure U(X) against the truth's U over the test samples and sites (NaN for the
    /// truth and the sequence baselines).
    ClosureMse: float
    /// Long-run mean of X (free run of `Settings.FreeRun` MTU).
    Mean: float
    /// Long-run standard deviation of X.
    Std: float
    /// Autocorrelation of X at `Settings.Lag`.
    Autocorrelation: float
}

/// One model's result.
type ModelResult = {
    /// Short name (table row, CSV key).
    Name: string
    /// What the model is.
    Description: string
    /// Mean squared error of the closure on the training pairs (NaN for the sequence baselines).
    TrainMse: float
    /// Training wall time in seconds.
    TrainSeconds: float
    /// Wall time of the test forecasts: every start state at every forcing, to the largest lead (s; the first
    /// seed's).
    InferenceSeconds: float
    /// Training epochs (Adam, full batch; 0 for closed-form or no fit).
    Epochs: int
    /// Named parameters (polynomial coefficients; networks report their size).
    Parameters: (string * float)[]
    /// In-domain skill first, then one per out-of-domain forcing. For the closure networks (several seeds) the
    /// forecast RMSE combines the seeds (see `Skill.Rmse`); every other field, here and below, is the first seed's.
    Skills: Skill[]
    /// Forecast RMSE per network seed, [seed][forcing][lead] (in `Settings.NetworkSeeds` order) for the models fitted
    /// over `NetworkSeeds`; empty for the others.
    SeedRmse: float[][][]
    /// Physics residual of the in-domain test forecasts: their defect under the X equation with no sub-grid term
    /// from each sample to the next, x(t + Δ) − Φ(x(t)) with Φ the truncated model's RK4 flow over one sampling
    /// interval, RMS over start states, samples up to the largest lead and sites (0 up to round-off for
    /// "truncated" itself; `Outcome.TruthPhysicsResidual` is the truth's, the size of the real sub-grid effect).
    PhysicsResidual: float
    /// X_0 of the first in-domain test forecast, every sample up to the largest lead.
    Example: float[]
    /// The closure U_0 at the uniform state X_k = x (every site) for x on `Outcome.ClosureGrid` (for the per-site
    /// closures the same as U(x) at any site); NaN where the model has no closure.
    Closure: float[]
}

/// Outcome of `run`.
type Outcome = {
    /// The settings it ran with.
    Settings: Settings
    /// The truth's statistics, in-domain first (Rmse empty).
    Truth: Skill[]
    /// Number of training pairs (X_k, U_k).
    TrainPairs: int
    /// The physics residual (see `ModelResult.PhysicsResidual`) of the truth's own X over the same windows.
    TruthPhysicsResidual: float
    /// Wall time of all truth integrations (s).
    TruthSeconds: float
    /// Truth X_0 of the first in-domain test forecast, every sample up to the largest lead.
    TruthExample: float[]
    /// Conditional mean of the training U_k in unit-wide bins of X_k (bins with at least 10 pairs): (bin centre, mean U).
    BinnedTruth: (float * float)[]
    /// Values of X at which `ModelResult.Closure` is given.
    ClosureGrid: float[]
    /// Every model, in the order of the table.
    Models: ModelResult[]
    /// Calibration of the hybrid's X forecasts at `Settings.UncertaintyLead` (deep ensemble, MC dropout), in
    /// domain and at each out-of-domain forcing (issue #6 e).
    Uncertainty: CaseUncertainty.MethodResult[]
}

/// A truth run sampled every `SampleInterval`.
type internal TruthRun = {
    /// X, [samples][K].
    X: float[][]
    /// The sub-grid tendency U = −(h c / b) Σ_j Y, [samples][K].
    U: float[][]
}

let private steps (span: float) (dt: float) = int (Math.Round(span / dt))

/// One classical RK4 step of size `dt` on `state` (length `m`) in place, for the right-hand side `rhs z d`
/// that writes dz/dt into `d`; the stage buffers are allocated once.
let private rk4Step (m: int) (dt: float) (rhs: float[] -> float[] -> unit) (state: float[]) : unit -> unit =
    let k1, k2, k3, k4, tmp =
        Array.zeroCreate m, Array.zeroCreate m, Array.zeroCreate m, Array.zeroCreate m, Array.zeroCreate m

    let stage (h: float) (k: float[]) =
        for i in 0 .. m - 1 do
            tmp[i] <- state[i] + h * k[i]

    fun () ->
        rhs state k1
        stage (0.5 * dt) k1
        rhs tmp k2
        stage (0.5 * dt) k2
        rhs tmp k3
        stage dt k3
        rhs tmp k4

        for i in 0 .. m - 1 do
            state[i] <- state[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])

/// Integrates the coupled system (RK4, `TruthDt`) from a random state drawn with `seed`: `SpinUp` MTU,
/// then `samples` samples every `SampleInterval` (the first right after the spin-up).
let internal truth (s: Settings) (forcing: float) (seed: int) (samples: int) : TruthRun =
    let k, j = s.K, s.J
    let n = k * j
    let coupling = s.H * s.C / s.B
    let cb = s.C * s.B
    let rng = Random seed
    let x0 = Array.init k (fun _ -> forcing * (0.5 + rng.NextDouble()) * 0.5)
    let y0 = Array.init n (fun _ -> 0.1 * (rng.NextDouble() - 0.5))
    let state = Array.append x0 y0
    let m = k + n

    let rhs (z: float[]) (d: float[]) =
        for i in 0 .. k - 1 do
            let xm1 = z[(i + k - 1) % k]
            let xm2 = z[(i + k - 2) % k]
            let xp1 = z[(i + 1) % k]
            let mutable sum = 0.0

            for jj in 0 .. j - 1 do
                sum <- sum + z[k + i * j + jj]

            d[i] <- -xm1 * (xm2 - xp1) - z[i] + forcing - coupling * sum

        for i in 0 .. n - 1 do
            let yp1 = z[k + (i + 1) % n]
            let yp2 = z[k + (i + 2) % n]
            let ym1 = z[k + (i + n - 1) % n]
            d[k + i] <- -cb * yp1 * (yp2 - ym1) - s.C * z[k + i] + coupling * z[i / j]

    let dt = s.TruthDt
    let step = rk4Step m dt rhs state

    for _ in 1 .. steps s.SpinUp dt do
        step ()

    let per = steps s.SampleInterval dt
    let xs = Array.zeroCreate samples
    let us = Array.zeroCreate samples

    for t in 0 .. samples - 1 do
        if t > 0 then
            for _ in 1..per do
                step ()

        if not (Array.forall Double.IsFinite state) then
            raise (HybridException $"Lorenz-96 truth (F = {forcing}) blew up; lower TruthDt.")

        xs[t] <- Array.sub state 0 k

        us[t] <- Array.init k (fun i -> -coupling * Array.sum (Array.sub state (k + i * j) j))

    { X = xs; U = us }

/// Hidden convolutions of the CNN closure (each followed by tanh; then one output convolution).
[<Literal>]
let internal CnnHiddenLayers = 2

/// How many sites to each side the CNN closure's U_k sees: every convolution of width w adds ⌊w/2⌋.
let internal cnnReach (s: Settings) =
    (CnnHiddenLayers + 1) * (s.CnnKernel / 2)

/// A sub-grid closure: the K tendencies U from the K slow variables X.
type internal Closure = float[] -> float[]

/// Forecasts of a model: forcing F, start state X (K) and number of samples → the path [samples][K], the start
/// included.
type internal Path = float -> float[] -> int -> float[][]

/// The closure that applies `u` at every site: U_k = u(X_k).
let internal perSite (u: float -> float) : Closure = Array.map u

/// Integrates the X equation with closure `u` from `x0` with RK4 at `ModelDt`; returns `samples` samples (the
/// first is `x0`) every `SampleInterval`.
let private forecast (s: Settings) (forcing: float) (u: Closure) (x0: float[]) (samples: int) =
    let k = s.K
    let dt = s.ModelDt

    let rhs (z: float[]) (d: float[]) =
        let uz = u z

        for i in 0 .. k - 1 do
            d[i] <-
                -z[(i + k - 1) % k] * (z[(i + k - 2) % k] - z[(i + 1) % k]) - z[i]
                + forcing
                + uz[i]

    let state = Array.copy x0

    let step = rk4Step k dt rhs state

    let per = steps s.SampleInterval dt
    let out = Array.zeroCreate samples

    for t in 0 .. samples - 1 do
        if t > 0 then
            for _ in 1..per do
                step ()

        out[t] <- Array.copy state

    out

/// Mean, standard deviation and autocorrelation at `lagSamples` of X pooled over sites.
let private statistics (xs: float[][]) (lagSamples: int) =
    let all = Array.concat xs
    let mean = Array.average all
    let var = all |> Array.averageBy (fun v -> (v - mean) * (v - mean))
    let n = xs.Length - lagSamples

    let cov =
        Array.init n (fun t -> Array.map2 (fun a b -> (a - mean) * (b - mean)) xs[t] xs[t + lagSamples])
        |> Array.concat
        |> Array.average

    mean, sqrt var, (if var > 0.0 then cov / var else nan)

/// Least-squares cubic a0 + a1 x + a2 x² + a3 x³ through the pairs (normal equations, Gaussian elimination
/// with partial pivoting on x scaled by `scale`); returns (a0, a1, a2, a3) in the original units.
let private cubicFit (xs: float[]) (us: float[]) (scale: float) =
    let p = 4
    let a = Array2D.zeroCreate (p) (p + 1)

    for n in 0 .. xs.Length - 1 do
        let z = xs[n] / scale
        let basis = [| 1.0; z; z * z; z * z * z |]

        for r in 0 .. p - 1 do
            for c in 0 .. p - 1 do
                a[r, c] <- a[r, c] + basis[r] * basis[c]

            a[r, p] <- a[r, p] + basis[r] * us[n]

    for col in 0 .. p - 1 do
        let pivot = [ col .. p - 1 ] |> List.maxBy (fun r -> abs a[r, col])

        for c in 0..p do
            let t = a[col, c]
            a[col, c] <- a[pivot, c]
            a[pivot, c] <- t

        for r in 0 .. p - 1 do
            if r <> col then
                let f = a[r, col] / a[col, col]

                for c in col..p do
                    a[r, c] <- a[r, c] - f * a[col, c]

    Array.init p (fun r -> a[r, p] / a[r, r] / Math.Pow(scale, float r))

let private f64 = torch.ScalarType.Float64

/// Weights and biases of a network's layers in order: (weight shape, weight values, bias values).
let private layersOf (net: torch.nn.Module) =
    net.named_parameters ()
    |> Seq.map (fun struct (_, p) -> p.shape, p.data<float>().ToArray())
    |> Array.ofSeq
    |> Array.chunkBySize 2
    |> Array.map (fun pair -> fst pair[0], snd pair[0], snd pair[1])

/// An MLP [B; K] → [B; K] on standardised values, the same network at every site.
let private applyMlp (net: Mlp) (x: torch.Tensor) =
    (net.forward (x.unsqueeze -1L)).squeeze -1L

/// A CNN [B; K] → [B; K] on standardised values, over the ring of sites.
let private applyCnn (net: Cnn1d) (x: torch.Tensor) =
    (net.forward (x.unsqueeze 1L)).squeeze 1L

/// Raises unless `f`, a network copied into plain F#, agrees with `apply` (the network on [B; K]) on a few
/// deterministic probe states of `k` sites.
let private verify (what: string) (k: int) (apply: torch.Tensor -> torch.Tensor) (f: float[] -> float[]) =
    use _ = torch.no_grad ()

    let probes =
        Array.init 4 (fun p -> Array.init k (fun i -> 2.5 * sin (1.7 * float (p * k + i) + 0.3)))

    use input =
        torch.tensor(Array.concat probes, dtype = f64).reshape (int64 probes.Length, int64 k)

    use output = apply input
    let expected = output.data<float>().ToArray() |> Array.chunkBySize k

    for x, e in Array.zip probes expected do
        let got = f x

        for i in 0 .. k - 1 do
            if abs (got[i] - e[i]) > 1e-9 * (1.0 + abs e[i]) then
                raise (HybridException $"Lorenz-96: the copied {what} disagrees with its forward pass at site {i}.")

/// The trained MLP as a plain function of one standardised value (weights copied out; tanh between the linear
/// layers), checked against the network's own forward pass.
let private asFunction (net: Mlp) (k: int) : float -> float =
    let layers = layersOf net
    let last = layers.Length - 1

    let f (x: float) =
        let mutable h = [| x |]

        for l, (shape, w, b) in Array.indexed layers do
            let rows, cols = int shape[0], int shape[1]

            let next =
                Array.init rows (fun r ->
                    let mutable acc = b[r]

                    for c in 0 .. cols - 1 do
                        acc <- acc + w[r * cols + c] * h[c]

                    acc)

            h <- if l < last then Array.map tanh next else next

        h[0]

    verify "network" k (applyMlp net) (perSite f)
    f

/// A 1-D CNN (`Cnn1d` with periodic padding, tanh between the convolutions, one input and one output channel)
/// as a plain function on the ring of sites: the weights are copied out once; each convolution is the
/// cross-correlation output[o][k] = b[o] + Σ_i Σ_j w[o, i, j] · input[i][(k + j − ⌊width/2⌋) mod K], as in
/// TorchSharp. `run` checks it against the network's forward pass.
let internal convFunction (net: Cnn1d) : float[] -> float[] =
    let layers = layersOf net
    let last = layers.Length - 1

    fun (x: float[]) ->
        let k = x.Length
        let mutable h = [| x |]

        for l, (shape, w, b) in Array.indexed layers do
            let outs, ins, width = int shape[0], int shape[1], int shape[2]
            let half = width / 2

            let next =
                Array.init outs (fun o ->
                    Array.init k (fun site ->
                        let mutable acc = b[o]

                        for i in 0 .. ins - 1 do
                            let row = h[i]
                            let offset = (o * ins + i) * width

                            for j in 0 .. width - 1 do
                                acc <- acc + w[offset + j] * row[((site + j - half) % k + k) % k]

                        acc))

            h <- if l < last then Array.map (Array.map tanh) next else next

        h[0]

/// Training samples (in time, from the first) that `s.TrainFraction` keeps of the `samples` of the training period:
/// ⌈f·samples⌉, at least `SequenceWindow + 1` (one LSTM window).
let internal trainingSamples (s: Settings) (samples: int) : int =
    TrainFraction.count "Lorenz-96" s.TrainFraction (s.SequenceWindow + 1) samples

/// Runs the truths, fits the closures and scores every model.
let run (s: Settings) : Outcome =
    Engine.init ()

    if List.isEmpty s.NetworkSeeds then
        raise (HybridException "Lorenz-96: NetworkSeeds is empty; give at least one seed, e.g. [ 5 ].")

    use outer = torch.NewDisposeScope()
    let lagSamples = steps s.Lag s.SampleInterval
    let leadSamples = s.Leads |> Array.map (fun l -> steps l s.SampleInterval)
    let maxLead = Array.max leadSamples
    let spacing = steps s.StartSpacing s.SampleInterval
    let freeSamples = steps s.FreeRun s.SampleInterval + 1
    let trainSamples = steps s.TrainSpan s.SampleInterval
    let testSamples = max ((s.Starts - 1) * spacing + maxLead + 1) freeSamples

    let truthWatch = Stopwatch.StartNew()
    let inDomain = truth s s.Forcing s.Seed (trainSamples + testSamples)

    let split (r: TruthRun) from count = {
        X = Array.sub r.X from count
        U = Array.sub r.U from count
    }

    // The one place the training data is selected: every closure and the LSTM see the first samples only; the
    // test run still starts after the whole training period.
    let train = split inDomain 0 (trainingSamples s trainSamples)
    let forcings = Array.append [| s.Forcing |] s.OutOfDomain

    let tests =
        Array.append
            [| split inDomain trainSamples testSamples |]
            (s.OutOfDomain |> Array.mapi (fun i f -> truth s f (s.Seed + i + 1) testSamples))

    let truthSeconds = truthWatch.Elapsed.TotalSeconds
    let trainX = Array.concat train.X
    let trainU = Array.concat train.U

    let closureMse (u: Closure) (xs: float[][]) (us: float[][]) =
        Array.map2 (fun x t -> Array.map2 (fun a b -> (a - b) * (a - b)) (u x) t) xs us
        |> Array.concat
        |> Array.average

    let truthSkills =
        tests
        |> Array.mapi (fun i r ->
            let mean, std, ac = statistics (Array.sub r.X 0 freeSamples) lagSamples

            {
                Forcing = forcings[i]
                Rmse = [||]
                ClosureMse = nan
                Mean = mean
                Std = std
                Autocorrelation = ac
            })

    let grid = Array.init 121 (fun i -> -20.0 + 0.5 * float i)

    // Forecast RMSE at every lead, [forcing][lead], of the forecasts `path f x0 samples` ([samples][K], the start
    // included) from the test start states.
    let rmsesOf (path: float -> float[] -> int -> float[][]) =
        tests
        |> Array.mapi (fun i r ->
            let squared =
                Array.init s.Starts (fun n ->
                    let start = n * spacing
                    let path = path forcings[i] r.X[start] (maxLead + 1)

                    leadSamples
                    |> Array.map (fun l ->
                        Array.map2 (fun a b -> (a - b) * (a - b)) path[l] r.X[start + l]
                        |> Array.average))

            Array.init leadSamples.Length (fun l -> sqrt (squared |> Array.averageBy (fun e -> e[l]))))

    // The physics residual of paths [start][sample][K] (see `ModelResult.PhysicsResidual`).
    let physicsResidualOf (paths: float[][][]) =
        let none: Closure = fun x -> Array.zeroCreate x.Length

        paths
        |> Array.collect (fun xs ->
            Array.init (xs.Length - 1) (fun t ->
                let flowed = (forecast s s.Forcing none xs[t] 2)[1]
                Array.map2 (fun a b -> (a - b) * (a - b)) xs[t + 1] flowed |> Array.average))
        |> Array.average
        |> sqrt

    let truthResidual =
        physicsResidualOf (Array.init s.Starts (fun n -> tests[0].X[n * spacing .. n * spacing + maxLead]))

    // A model's scores from its forecasts `path` and its closure (None where it has none).
    let evaluatePaths name description path (u: Closure option) seconds epochs parameters =
        let rmses, inference = CaseTraining.timed (fun () -> rmsesOf path)

        let skills =
            tests
            |> Array.mapi (fun i r ->
                let f = forcings[i]
                let free = path f r.X[0] freeSamples

                let mean, std, ac =
                    if Array.forall (Array.forall Double.IsFinite) free then
                        statistics free lagSamples
                    else
                        nan, nan, nan

                {
                    Forcing = f
                    Rmse = rmses[i]
                    ClosureMse = u |> Option.map (fun u -> closureMse u r.X r.U) |> Option.defaultValue nan
                    Mean = mean
                    Std = std
                    Autocorrelation = ac
                })

        {
            Name = name
            Description = description
            TrainMse =
                u
                |> Option.map (fun u -> closureMse u train.X train.U)
                |> Option.defaultValue nan
            TrainSeconds = seconds
            InferenceSeconds = inference
            Epochs = epochs
            Parameters = parameters
            Skills = skills
            SeedRmse = [||]
            PhysicsResidual =
                physicsResidualOf (Array.init s.Starts (fun n -> path s.Forcing tests[0].X[n * spacing] (maxLead + 1)))
            Example = path s.Forcing tests[0].X[0] (maxLead + 1) |> Array.map (fun x -> x[0])
            Closure =
                match u with
                | Some u -> grid |> Array.map (fun x -> (u (Array.create s.K x))[0])
                | None -> Array.create grid.Length nan
        }

    let evaluate name description (u: Closure) seconds epochs parameters =
        evaluatePaths
            name
            description
            (fun f x0 samples -> forecast s f u x0 samples)
            (Some u)
            seconds
            epochs
            parameters

    let truncated =
        evaluate
            "truncated"
            "X equation with no sub-grid term (U = 0): the scientific model with fixed parameters"
            (fun x -> Array.zeroCreate x.Length)
            0.0
            0
            [||]

    let cubicWatch = Stopwatch.StartNew()
    let a = cubicFit trainX trainU 10.0
    let cubicSeconds = cubicWatch.Elapsed.TotalSeconds

    let cubic =
        evaluate
            "cubic closure"
            "X equation + U = a0 + a1 X + a2 X^2 + a3 X^3 per site, least squares on the training pairs (Wilks 2005 style)"
            (perSite (fun x -> a[0] + x * (a[1] + x * (a[2] + x * a[3]))))
            cubicSeconds
            0
            [| "a0", a[0]; "a1", a[1]; "a2", a[2]; "a3", a[3] |]

    // The closure networks work on standardised values: U = mu + su · N((X − mx) / sx), one (m, s) pair for all X
    // and one for all U; full-batch Adam on the training samples [N; K].
    let mx, sx =
        let m = Array.average trainX
        m, sqrt (trainX |> Array.averageBy (fun v -> (v - m) * (v - m)))

    let mu, su =
        let m = Array.average trainU
        m, sqrt (trainU |> Array.averageBy (fun v -> (v - m) * (v - m)))

    let samplesTensor (values: float[]) =
        torch.tensor(values, dtype = f64).reshape (int64 train.X.Length, int64 s.K)

    let inputs = samplesTensor (trainX |> Array.map (fun x -> (x - mx) / sx))
    let targets = samplesTensor (trainU |> Array.map (fun u -> (u - mu) / su))

    // Trains `net` (`apply`: the network on standardised [N; K]) from `seed` for `epochs`; returns the seconds.
    // `CaseTraining.initialise` scales weights by 1/√(shape[1]), the input channels of a convolution kernel
    // [out; in; width], whose fan-in is in · width: kernels are scaled by a further 1/√width.
    let fitNetwork what (net: torch.nn.Module) (apply: torch.Tensor -> torch.Tensor) seed epochs =
        CaseTraining.initialise net seed false

        using (torch.no_grad ()) (fun _ ->
            for p in Neural.parameters net do
                if p.dim () = 3L then
                    withScalar (1.0 / sqrt (float p.shape[2])) p.mul_ |> ignore)

        let networkParameters =
            Neural.parameters net |> Array.map (fun p -> p :> torch.Tensor)

        let seconds =
            CaseTraining.singleThreaded (fun () ->
                CaseTraining.adam
                    $"Lorenz-96 {what}"
                    "lower the learning rate"
                    [| networkParameters, s.LearningRate |]
                    epochs
                    (fun _ -> (square (apply inputs - targets)).mean ()))

        net.eval () |> ignore
        seconds

    // The MLP closure network from a seed (with dropout probability `dropout`), trained for `epochs`.
    let fitClosure seed dropout epochs =
        let net = new Mlp("closure", 1, 1, s.Width, 2, dropout = dropout, dtype = f64)
        let seconds = fitNetwork "MLP closure" net (applyMlp net) seed epochs
        net, seconds

    // The CNN closure network from a seed, trained for `Epochs`.
    let fitCnn seed =
        let net =
            new Cnn1d(
                "closure",
                1,
                1,
                s.CnnChannels,
                CnnHiddenLayers,
                s.CnnKernel,
                padding = Padding.Periodic,
                dtype = f64
            )

        net, fitNetwork "CNN closure" net (applyCnn net) seed s.Epochs

    let closureOf (n: float[] -> float[]) : Closure =
        fun x -> n (x |> Array.map (fun v -> (v - mx) / sx)) |> Array.map (fun v -> mu + su * v)

    // A closure network over `NetworkSeeds`; `fit seed` gives its closure, training seconds and parameters.
    // Every seed's forecast RMSE is kept; the rest (statistics, closure curve) is the first seed's.
    // A network model over `NetworkSeeds`: `fit seed` gives its forecasts (forcing, start state, samples → path),
    // its closure (None for the sequence models), training seconds and parameters; the first seed's run is scored in
    // full, the others' forecast RMSEs are combined with it.
    let overSeeds name description epochs (fit: int -> Path * Closure option * float * (string * float)[]) =
        let fits = s.NetworkSeeds |> List.map fit |> Array.ofList
        let path0, u0, _, parameters = fits[0]
        let first = evaluatePaths name description path0 u0 0.0 epochs parameters

        let seedRmse =
            Array.append
                [| first.Skills |> Array.map (fun k -> k.Rmse) |]
                (fits[1..] |> Array.map (fun (path, _, _, _) -> rmsesOf path))

        {
            first with
                TrainSeconds = fits |> Array.averageBy (fun (_, _, seconds, _) -> seconds)
                SeedRmse = seedRmse
                Skills =
                    first.Skills
                    |> Array.mapi (fun i k -> {
                        k with
                            Rmse =
                                Array.init k.Rmse.Length (fun l ->
                                    sqrt (seedRmse |> Array.averageBy (fun r -> r[i][l] * r[i][l])))
                    })
        }

    // The forecasts of the X equation with closure `u`.
    let closurePath (u: Closure) : Path =
        fun f x0 samples -> forecast s f u x0 samples

    let hybrid =
        overSeeds
            "hybrid (X + MLP)"
            $"X equation + U_k = N(X_k) per site (a local closure: a CNN of kernel width 1), MLP 1-{s.Width}-{s.Width}-1 (tanh) on standardised pairs, full-batch Adam (lr {s.LearningRate})"
            s.Epochs
            (fun seed ->
                let net, seconds = fitClosure seed 0.0 s.Epochs
                let u = closureOf (perSite (asFunction net s.K))
                closurePath u, Some u, seconds, [| "network weights", float (Neural.parameterCount net) |])

    let cnn =
        overSeeds
            "hybrid (X + CNN)"
            $"X equation + U = C(X), 1-D CNN over the periodic ring of the {s.K} sites, {s.CnnChannels}-{s.CnnChannels} channels (tanh), kernel width {s.CnnKernel} (circular padding) on standardised samples, full-batch Adam (lr {s.LearningRate})"
            s.Epochs
            (fun seed ->
                let net, seconds = fitCnn seed
                let f = convFunction net
                verify "CNN" s.K (applyCnn net) f
                let u = closureOf f
                closurePath u, Some u, seconds, [| "network weights", float (Neural.parameterCount net) |])

    // Pure data-driven: LSTM and transformer forecasters of X (÷ 10) with the forcing (÷ 20) as exogenous input.
    let forcingInput (f: float) samples = Array.create samples [| f / 20.0 |]
    let scaled = Array.map (Array.map (fun (x: float) -> x / 10.0))

    let sequenceRow architecture hidden iterations what =
        overSeeds
            (SequenceModels.name architecture)
            $"pure data-driven: {what} forecaster of the {s.K} X's with F as exogenous input, {s.SequenceWindow}-sample context, trained on the F = {s.Forcing} run; no closure"
            iterations
            (fun seed ->
                let model =
                    SequenceModels.fitForecaster
                        {
                            SequenceModels.defaults architecture with
                                Hidden = hidden
                                Heads = 4
                                Window = s.SequenceWindow
                                Iterations = iterations
                                Seed = seed
                        } [| scaled train.X |] [| forcingInput s.Forcing train.X.Length |]

                let path: Path =
                    fun f x0 samples ->
                        let path =
                            SequenceModels.forecast model (scaled [| x0 |]) (forcingInput f samples) (samples - 1)

                        Array.append [| x0 |] (path |> Array.map (Array.map (fun x -> 10.0 * x)))

                path,
                None,
                model.Seconds,
                [|
                    "network weights", float (Neural.parameterCount model.Net)
                    "one-step train MSE", model.TrainLoss * 100.0
                |])

    let lstmRow =
        sequenceRow SequenceModels.Architecture.Lstm 32 s.SequenceIterations "LSTM (32 hidden units)"

    let transformerRow =
        sequenceRow
            SequenceModels.Architecture.Transformer
            s.TransformerWidth
            s.TransformerIterations
            $"transformer (width {s.TransformerWidth}, 4 heads, one causal encoder layer)"

    let binned =
        Array.zip trainX trainU
        |> Array.groupBy (fun (x, _) -> floor x)
        |> Array.filter (fun (_, pairs) -> pairs.Length >= 10)
        |> Array.map (fun (bin, pairs) -> bin + 0.5, Array.averageBy snd pairs)
        |> Array.sortBy fst

    // Uncertainty of the hybrid's X forecasts at `UncertaintyLead` from every test start state. A member is the
    // closure from another network seed; its noise variance is its forecast MSE at that lead from start states
    // of the training run. MC dropout: in training mode each pass draws one dropout mask (kept units scaled by
    // 1/(1 − p)) and uses it at every site and step of every forecast.
    let uncertainty =
        let lead = steps s.UncertaintyLead s.SampleInterval

        // Start states: every `spacing` samples, at most `limit` (the test runs use the first `Starts`).
        let starts (r: TruthRun) limit =
            Array.init ((r.X.Length - 1 - lead) / spacing + 1) (fun n -> n * spacing)
            |> Array.truncate limit

        let at (r: TruthRun) limit =
            starts r limit |> Array.collect (fun n -> r.X[n + lead])

        let forecasts f (u: Closure) (r: TruthRun) limit =
            starts r limit
            |> Array.collect (fun n -> (forecast s f u r.X[n] (lead + 1))[lead])

        // One MC-dropout draw of the closure: one mask for every site and step of every forecast.
        let sampled (net: Mlp) : float -> float =
            CaseUncertainty.withOneMask net (fun () -> asFunction net s.K)

        let splits =
            tests
            |> Array.mapi (fun i r ->
                let name =
                    if i = 0 then
                        $"F = {forcings[i]}"
                    else
                        $"F = {forcings[i]} (out of domain)"

                name, torch.tensor (at r s.Starts, dtype = f64))

        CaseUncertainty.run s.Uncertainty splits (fun seed dropout ->
            let net, _ = fitClosure seed dropout s.Uncertainty.Iterations
            let deterministic = closureOf (perSite (asFunction net s.K))

            let trainError =
                Array.map2
                    (fun a b -> (a - b) * (a - b))
                    (forecasts s.Forcing deterministic train Int32.MaxValue)
                    (at train Int32.MaxValue)

            {
                Modules = [| net |]
                Predict =
                    fun () ->
                        let u = closureOf (perSite (sampled net))

                        tests
                        |> Array.mapi (fun i r -> torch.tensor (forecasts forcings[i] u r s.Starts, dtype = f64))
                NoiseVariance = Array.average trainError
            })

    {
        Settings = s
        Truth = truthSkills
        TrainPairs = trainX.Length
        TruthPhysicsResidual = truthResidual
        TruthSeconds = truthSeconds
        TruthExample = Array.init (maxLead + 1) (fun t -> tests[0].X[t][0])
        BinnedTruth = binned
        ClosureGrid = grid
        Models = [| truncated; cubic; hybrid; cnn; lstmRow; transformerRow |]
        Uncertainty = uncertainty
    }
