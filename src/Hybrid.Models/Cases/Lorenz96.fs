/// Case study (twin experiment): the two-scale Lorenz-96 system (Lorenz 1996; Wilks 2005; Arnold et al. 2013)
/// with K = 8 slow variables X_k, J = 32 fast variables Y_{j,k} per slow site, h = 1, b = c = 10, F = 20:
///   dX_k/dt = −X_{k−1}(X_{k−2} − X_{k+1}) − X_k + F + U_k,   U_k = −(h c / b) Σ_j Y_{j,k},
///   dY_i/dt = −c b Y_{i+1}(Y_{i+2} − Y_{i−1}) − c Y_i + (h c / b) X_{k(i)},
/// the Y's on one periodic ring of K·J sites (Y_{j,k}, j = 0 … J−1, belongs to slow site k).
///
/// Every model is a DSL model (`model { }`) compiled by `Compiler.compile` and integrated by `Simulator.Simulate`
/// (classical RK4, `Backend.Auto`: the generated kernels where they apply); every network is trained by
/// `Trainer.train`. The case holds no integrator, right-hand side or optimiser loop of its own.
///
/// Truth: `truthModel`, the coupled system on the compiler's two-scale lattice (`twoScaleLattice K J`, F a
/// forcing), RK4 at `TruthDt` (0.001 MTU, as in Arnold et al. 2013) from a random state after a spin-up, sampled
/// every `SampleInterval` (0.05 MTU); the sub-grid term U_k = −(h c / b) Σ_j Y_{j,k} is read off the sampled Y's.
/// The training period comes first; the test period follows it in the same run (held-out initial states).
/// Out of domain: separate truth runs at F = 18 and F = 24, scored with the closures trained at F = 20.
///
/// Models: all but the sequence baselines and the no-physics control are the X equation alone on the one-scale
/// lattice (`lattice K`, F a forcing), RK4 at `ModelDt`, each with its own sub-grid term U:
///  - truncated: U = 0 (the scientific model with fixed parameters, no sub-grid term);
///  - cubic closure: U_k = a0 + a1 X_k + a2 X_k² + a3 X_k³ per site (fixed parameters of the model), fitted by
///    least squares on the training pairs (X_k, U_k) (Wilks 2005 style);
///  - hybrid (X + MLP): U_k = μ_U + σ_U N((X_k − μ_X)/σ_X), a `neural` closure N of one argument (an MLP, two
///    tanh hidden layers): a local (pointwise) closure;
///  - hybrid (X + CNN): U_k = μ_U + σ_U C(stencil), a `named` closure of the 2r + 1 standardised values
///    X_{k−r} … X_{k+r} (r = `cnnReach`): a 1-D CNN (`Cnn1d`, two tanh hidden convolutions of `CnnChannels`
///    channels and an output convolution, all of width `CnnKernel`) whose output at the centre is exactly the
///    CNN over the periodic ring of sites at site k (`StencilCnn`) — the GCM-plus-CNN set-up at small scale.
///    Both networks are trained in two stages from each of `NetworkSeeds`: a-priori, `Epochs` full-batch Adam
///    epochs of regression onto the true U on the standardised training pairs (`Trainer.train`); then
///    a-posteriori, through the solver, `PosteriorEpochs` Adam epochs on the rollout loss of X alone (multiple
///    shooting: `Windows` random windows of the training run's X per epoch, the horizon growing from one
///    sample to `MaxHorizon` samples; `Trainer.train` with `TrainOptions.Horizon`). The ablation (`Ablation`)
///    trains the same networks a-priori only for `Epochs + PosteriorEpochs` epochs (same data, same number of
///    Adam steps) and scores them the same way;
///  - neural ODE (no physics), the "same network, no physics" control (`noPhysicsModel`, `ModelTable.NoPhysics`):
///    dX_k/dt = μ_T + σ_T C(stencil), the CNN hybrid's `named` closure (same network, width, channels, kernel,
///    input standardisation and seeds) with the resolved terms (advection, −X_k, F) removed, so it sees neither F
///    nor any Lorenz-96 term. Trained in the CNN hybrid's two stages from each of `NetworkSeeds`: a-priori, `Epochs`
///    epochs of regression onto the observed tendency of X (`observedTendency`: centred differences of the training
///    samples, data every model may use; μ_T, σ_T its mean and standard deviation, as μ_U, σ_U are U's for the
///    hybrid), not onto U (which needs the fast variables); then `PosteriorEpochs` epochs through the solver with
///    the hybrid's windows, horizon and rate (`trainThroughSolver`). No closure (closure MSE and curve NaN);
///  - LSTM and Transformer (`Baselines.SequenceModels`), pure data-driven: forecasters of the 8 X's (÷ 10) with
///    the forcing (÷ 20) as exogenous input, trained on the F = 20 training run, forecasting from the start
///    state alone like the other models. They have no closure (closure MSE and curve NaN) and their train MSE is
///    NaN (the one-step training MSE is listed as a parameter).
/// No PINN baseline: a PINN fits u(t) on one trajectory's time domain, but every test forecast here starts from
/// an unseen state of a chaotic system with only that state known (no data over the forecast window to fit),
/// and the sub-grid term has no known equation for the residual; without data it reduces to the truncated X
/// equation (the truncated row), and learning U in the residual from the training run is the hybrid.
/// Scores: forecast RMSE of X at fixed leads from held-out initial states (truth X, the fast variables unknown
/// to the models), and the long-run statistics of a free run (mean, standard deviation, lag-0.5-MTU
/// autocorrelation of X, pooled over sites) against the truth's over a run of the same length.
/// Validation (`Settings.EarlyStopping`, `validationBlock`): the last 20% of the training block's samples are held
/// out; every model, the cubic fit and the standardisation included, is fitted to the samples before them, and the
/// closures' a-posteriori stage, the control's and the LSTM and transformer stop early on forecasts of up to
/// `MaxHorizon` samples from at most 20 start states of the held-out block (patience a quarter of their epochs, the
/// best epoch's weights restored); the a-priori regression runs its whole budget. Widths and learning rates come from
/// `Settings.Tuned` (`hybrid tune`, `tunedFor`) where tuned.
module Hybrid.Models.Cases.Lorenz96

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Baselines
open Hybrid.Models.Common
open Hybrid.Models.Tuning

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
    /// RK4 step of the X-only models (MTU); `SampleInterval` must be a whole number of steps.
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
    /// Adam epochs (full batch) of the closure networks' a-priori stage (regression onto the true U).
    Epochs: int
    /// Adam learning rate of the a-priori stage.
    LearningRate: float
    /// Adam epochs of the closure networks' a-posteriori stage (rollouts of X through the solver), after the
    /// a-priori stage.
    PosteriorEpochs: int
    /// Adam learning rate of the a-posteriori stage.
    PosteriorRate: float
    /// Rollout windows of the training run's X per a-posteriori epoch (drawn at random).
    Windows: int
    /// Longest rollout window of the a-posteriori stage (samples of `SampleInterval`); the horizon grows from 1
    /// to it over the first half of the epochs.
    MaxHorizon: int
    /// Seed of the truth's initial state (the out-of-domain runs use `Seed + 1`, `Seed + 2`, …).
    Seed: int
    /// Seeds of the network models (the MLP and CNN closures, the no-physics control, the LSTM and the transformer,
    /// each trained once per seed, one part each; forecast errors are the mean over seeds, the long-run statistics
    /// and closure curves the first seed's).
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
    /// Which block of samples a `TrainFraction` below 1 keeps: 0 the first, a seed ≥ 1 a seeded random contiguous
    /// block of as many (`TrainFraction.blockStart`; see `trainingBlock`).
    TrainSubset: int
    /// Uncertainty of the MLP hybrid's X forecasts (deep ensemble of closures, MC dropout) and of the pure-ML models'
    /// (deep ensembles of the control and the LSTM and transformer forecasters); `Iterations` are the closure's a-priori
    /// Adam epochs (the members are not trained through the solver, nor is the control's), the sequence models get the
    /// same fraction of their own budget (`CaseUncertainty.budget` of `Epochs`).
    Uncertainty: CaseUncertainty.Settings
    /// Lead (MTU) of the forecasts whose uncertainty is scored.
    UncertaintyLead: float
    /// The validation split and early-stopping rule (`validationBlock`); `EarlyStopping.off` trains on the whole
    /// training block for the whole budget.
    EarlyStopping: EarlyStopping.Rule
    /// Tuned learning rates and widths by part ("MLP", "CNN", the control, "LSTM", "Transformer"; `hybrid tune`,
    /// applied by `tunedFor`); a part without one uses the settings above (the LSTM 32 units, the sequence models'
    /// rate 1e-2).
    Tuned: Map<string, Map<string, float>>
}

/// The report settings: 60 MTU of training data (1,200 samples of 8 sites), 100 start states, free runs of 200 MTU,
/// 1000 a-priori and 200 a-posteriori epochs. (200 MTU made one LSTM seed take 37 min on a loaded 2-core machine
/// and the full report several hours; the full report's budget is ≤ 120 min on 2 cores.)
let defaults = {
    K = 8
    J = 32
    H = 1.0
    B = 10.0
    C = 10.0
    Forcing = 20.0
    OutOfDomain = [| 18.0; 24.0 |]
    TruthDt = 0.001
    ModelDt = 0.01
    SpinUp = 10.0
    TrainSpan = 60.0
    SampleInterval = 0.05
    Starts = 100
    StartSpacing = 1.0
    Leads = [| 0.2; 0.5; 1.0 |]
    FreeRun = 200.0
    Lag = 0.5
    Width = 16
    Epochs = 1000
    LearningRate = 1e-2
    PosteriorEpochs = 200
    PosteriorRate = 2e-3
    Windows = 64
    MaxHorizon = 10
    Seed = 1
    NetworkSeeds = [ 5; 6; 7; 8; 9 ]
    CnnChannels = 16
    CnnKernel = 3
    // The sequence baselines get as many Adam iterations as a closure gets epochs (a-priori + a-posteriori), the
    // equal budget of issue #15 item 3; a transformer iteration costs about twice an LSTM iteration here.
    SequenceIterations = 1200
    TransformerIterations = 1200
    TransformerWidth = 32
    SequenceWindow = 10
    TrainFraction = 1.0
    TrainSubset = 0
    // Closures get the quick budget (300 epochs, not 1000): at 1000 the experiment took 527 s of a 1164 s run on
    // a loaded two-core machine (members and the 30 dropout passes over 3 × 100 forecasts).
    Uncertainty = {
        CaseUncertainty.defaults with
            Iterations = 300
    }
    UncertaintyLead = 0.5
    EarlyStopping = EarlyStopping.defaults
    Tuned = Tuned.none
}

/// Settings for `hybrid report --quick`: 30 MTU of training data, 30 start states, free runs of 50 MTU, 300
/// a-priori and 60 a-posteriori epochs, three network seeds; the sequence baselines get 360 iterations (the
/// closures' 300 + 60).
let quick = {
    defaults with
        NetworkSeeds = [ 5; 6; 7 ]
        SpinUp = 5.0
        TrainSpan = 30.0
        Starts = 30
        FreeRun = 50.0
        Epochs = 300
        PosteriorEpochs = 60
        Windows = 32
        MaxHorizon = 6
        SequenceIterations = 360
        TransformerIterations = 360
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
    /// truth, the sequence baselines and the no-physics control, which have no closure).
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
    /// Mean squared error of the closure on the training pairs (NaN for the sequence baselines and the no-physics
    /// control).
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
    /// Validation MSE of X: forecasts from start states of the validation block (`validationBlock`) over up to
    /// `MaxHorizon` samples against the training run's X there (the first seed's; NaN without a validation block).
    ValidationMse: float
    /// Physics residual of the in-domain test forecasts: their defect under the X equation with no sub-grid term
    /// from each sample to the next, x(t + Δ) − Φ(x(t)) with Φ the truncated model's RK4 flow over one sampling
    /// interval (`Simulate` of the compiled truncated model), RMS over start states, samples up to the largest lead
    /// and sites (0 up to round-off for "truncated" itself; `Outcome.TruthPhysicsResidual` is the truth's, the size of the real sub-grid effect).
    PhysicsResidual: float
    /// X_0 of the first in-domain test forecast, every sample up to the largest lead.
    Example: float[]
    /// The closure U_0 at the uniform state X_k = x (every site) for x on `Outcome.ClosureGrid` (for the per-site
    /// closures the same as U(x) at any site); NaN where the model has no closure.
    Closure: float[]
}

/// One row of the a-priori against a-posteriori ablation (issue #15, 2 e): a closure network trained one way.
type AblationRow = {
    /// "MLP" or "CNN".
    Closure: string
    /// "a-priori (regression onto U)" or "a-posteriori (through the solver)".
    Training: string
    /// Adam epochs in all (the same for both trainings of a closure).
    Epochs: int
    /// Forecast RMSE of X, [forcing][lead] (in-domain first), the root of the mean MSE over network seeds.
    Rmse: float[][]
    /// Forecast RMSE per network seed, [seed][forcing][lead].
    SeedRmse: float[][][]
    /// MSE of the closure against the truth's U on the in-domain test samples, mean over network seeds.
    ClosureMse: float
    /// Training wall time in seconds, mean over network seeds.
    TrainSeconds: float
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
    /// A-priori against a-posteriori training of each closure network (MLP first, then CNN; a-priori first).
    Ablation: AblationRow[]
    /// Calibration of the X forecasts at `Settings.UncertaintyLead` of the hybrid (deep ensemble, MC dropout) and of
    /// the pure-ML models (deep ensembles), on the validation block, in domain and at each out-of-domain forcing, as
    /// trained and recalibrated on the validation block (issue #6 e).
    Uncertainty: CaseUncertainty.MethodResult[]
    /// Every number of the run as long-format rows, what the report's shared table is computed from: every part's
    /// rows in the order of `parts` (per model and network seed: the squared in-domain RMSE at the longest lead as
    /// "test" "mse", train MSE, times, epochs, physics residual, parameters, validation MSE; the uncertainty
    /// experiment's; the truth's residual and time).
    Rows: ResultRow[]
}

/// A truth run sampled every `SampleInterval`.
type internal TruthRun = {
    /// X, [samples][K].
    X: float[][]
    /// The sub-grid tendency U = −(h c / b) Σ_j Y, [samples][K].
    U: float[][]
}

let private f64 = torch.ScalarType.Float64

let private steps (span: float) (dt: float) = int (Math.Round(span / dt))

/// The forcing F of the compiled models: one value for every trajectory of a rollout (0-dim) or one per
/// trajectory ([B; 1]), set before each rollout.
type internal ForcingValues() =
    let mutable current: torch.Tensor = null

    /// Makes `values` the forcing of the next rollouts: one value for all trajectories, or one per trajectory.
    member _.Use(values: float[]) =
        if not (isNull current) then
            current.Dispose()

        let t =
            if values.Length = 1 then
                torch.tensor (values[0], dtype = f64)
            else
                torch.tensor(values, dtype = f64).reshape (int64 values.Length, 1L)

        current <- t.DetachFromDisposeScope()

    /// F at time t (constant in time).
    member _.At(_: float) : torch.Tensor = current

/// The two-scale Lorenz-96 system of `s` as a DSL model on the compiler's two-scale lattice (K slow sites with J
/// fast sites each), F a forcing. The initial conditions are placeholders: every run starts from given states.
let internal truthModel (s: Settings) : Model =
    let X, Y, F, h, c, b = sym "X", sym "Y", sym "F", sym "h", sym "c", sym "b"

    model "lorenz96_two_scale" {
        domain (twoScaleLattice s.K s.J)
        field "X"
        fastField "Y"
        forcing "F"
        constant "h" s.H
        constant "c" s.C
        constant "b" s.B
        equation (dt X == -(shift X -1) * (shift X -2 - shift X 1) - X + F - h * c / b * sumFast Y)

        equation (
            dt Y
            == -c * b * shiftFast Y 1 * (shiftFast Y 2 - shiftFast Y -1) - c * Y
               + h * c / b * X
        )

        initialValue "X" 0.0
        initialValue "Y" 0.0
    }

/// The X equation's resolved part −X_{k−1}(X_{k−2} − X_{k+1}) − X_k + F.
let private resolved =
    let X, F = sym "X", sym "F"
    -(shift X -1) * (shift X -2 - shift X 1) - X + F

/// The truncated model: the X equation on the one-scale lattice of K sites with no sub-grid term (U = 0).
let internal truncatedModel (s: Settings) : Model =
    let X = sym "X"

    model "lorenz96_truncated" {
        domain (lattice s.K)
        field "X"
        forcing "F"
        equation (dt X == resolved)
        initialValue "X" 0.0
    }

/// The X equation with the cubic closure U_k = a0 + a1 X_k + a2 X_k² + a3 X_k³ (coefficients fixed at `a`).
let internal cubicModel (s: Settings) (a: float[]) : Model =
    let X, a0, a1, a2, a3 = sym "X", sym "a0", sym "a1", sym "a2", sym "a3"

    model "lorenz96_cubic" {
        domain (lattice s.K)
        field "X"
        forcing "F"
        param "a0" (fixedAt a[0])
        param "a1" (fixedAt a[1])
        param "a2" (fixedAt a[2])
        param "a3" (fixedAt a[3])
        equation (dt X == resolved + a0 + a1 * X + a2 * X * X + a3 * X * X * X)
        initialValue "X" 0.0
    }

/// Standardisation of the closure networks: U = MeanU + ScaleU · N((X − MeanX) / ScaleX), one (mean, scale) pair
/// for all X and one for all U of the training pairs.
type internal Standardisation = {
    MeanX: float
    ScaleX: float
    MeanU: float
    ScaleU: float
}

/// The X equation with the pointwise neural closure U_k = μ_U + σ_U · U((X_k − μ_X)/σ_X); the network is the
/// module named "U".
let internal mlpModel (s: Settings) (z: Standardisation) : Model =
    let X, mx, sx, mu, su = sym "X", sym "mx", sym "sx", sym "mu", sym "su"
    let closure = call "U"

    model "lorenz96_mlp" {
        domain (lattice s.K)
        field "X"
        forcing "F"
        constant "mx" z.MeanX
        constant "sx" z.ScaleX
        constant "mu" z.MeanU
        constant "su" z.ScaleU
        neural "U" (named "U" 1)
        equation (dt X == resolved + mu + su * closure [ (X - mx) / sx ])
        initialValue "X" 0.0
    }

/// Hidden convolutions of the CNN closure (each followed by tanh; then one output convolution).
[<Literal>]
let internal CnnHiddenLayers = 2

/// How many sites to each side the CNN closure's U_k sees: every convolution of width w adds ⌊w/2⌋.
let internal cnnReach (s: Settings) =
    (CnnHiddenLayers + 1) * (s.CnnKernel / 2)

/// The X equation `name` with the CNN closure "C" (a `StencilCnn`) of the standardised stencil
/// z_{k−r}, …, z_{k+r}, z = (X − μ_X)/σ_X and r = `cnnReach`: dX_k/dt = R + μ + σ · C(stencil), R the resolved
/// part with the forcing F where `physics`, nothing (and no forcing declared) otherwise; μ, σ are `z.MeanU`,
/// `z.ScaleU`.
let private stencilClosureModel (s: Settings) (z: Standardisation) (name: string) (physics: bool) : Model =
    let X, mx, sx, mu, su = sym "X", sym "mx", sym "sx", sym "mu", sym "su"
    let r = cnnReach s
    let stencil = [ for m in -r .. r -> ((if m = 0 then X else shift X m) - mx) / sx ]
    let closure = mu + su * call "C" stencil
    let rhs = if physics then resolved + closure else closure

    let declared =
        model name {
            domain (lattice s.K)
            field "X"
            forcing "F"
            constant "mx" z.MeanX
            constant "sx" z.ScaleX
            constant "mu" z.MeanU
            constant "su" z.ScaleU
            neural "C" (named "C" (2 * r + 1))
            equation (dt X == rhs)
            initialValue "X" 0.0
        }

    // Without the resolved terms F appears nowhere: that model declares no forcing.
    if physics then
        declared
    else
        { declared with Forcings = [] }

/// The X equation with the CNN closure U_k = μ_U + σ_U · C(z_{k−r}, …, z_{k+r}), z = (X − μ_X)/σ_X and
/// r = `cnnReach`; the network is the module named "C" (a `StencilCnn`).
let internal cnnModel (s: Settings) (z: Standardisation) : Model =
    stencilClosureModel s z "lorenz96_cnn" true

/// The "same network, no physics" control (`ModelTable.NoPhysics`): the CNN hybrid's equation with the resolved
/// Lorenz-96 terms (advection, −X, F) removed, a neural ODE dX_k/dt = μ_T + σ_T · C(z_{k−r}, …, z_{k+r}) on the
/// same lattice, with the CNN hybrid's closure "C" of the same standardised stencil (`cnnModel`); `z.MeanU` and
/// `z.ScaleU` are here the mean and scale μ_T, σ_T of its target, the observed tendency of X (`observedTendency`).
/// No forcing: F enters the X equation only through the removed terms.
let internal noPhysicsModel (s: Settings) (z: Standardisation) : Model =
    stencilClosureModel s z "lorenz96_neural_ode" false

/// The observed tendency of X at the samples `xs` ([N][K], every `interval` MTU, N ≥ 3): centred differences
/// (X(t + Δ) − X(t − Δ)) / (2Δ) at the interior samples 1 … N − 2, [N − 2][K] (exact for X quadratic in time,
/// second order otherwise). What a model may regress onto without the fast variables (the control's a-priori target).
let internal observedTendency (interval: float) (xs: float[][]) : float[][] =
    if xs.Length < 3 then
        raise (
            HybridException
                $"Lorenz-96: the observed tendency needs at least 3 samples for centred differences, got {xs.Length}; keep more training samples (TrainFraction, TrainSpan)."
        )

    Array.init (xs.Length - 2) (fun t -> Array.map2 (fun (a: float) b -> (a - b) / (2.0 * interval)) xs[t + 2] xs[t])

/// The CNN over the ring of sites as a closure of one site's stencil: [..., 2r + 1] → [..., 1], the layers of
/// `net` (a `Cnn1d` with one input and one output channel whose convolutions reach r sites in all, tanh between
/// them) applied without padding, so that the 2r + 1 values shrink to the one output at the stencil's centre:
/// the network run on the whole periodic ring, at the stencil's site.
type internal StencilCnn(net: Cnn1d, reach: int) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>("stencil_cnn")

    do this.register_module ("net", net)

    let layers =
        Neural.parameters net
        |> Array.chunkBySize 2
        |> Array.map (fun pair -> pair[0], pair[1])

    override _.forward(x: torch.Tensor) : torch.Tensor =
        let width = int64 (2 * reach + 1)

        if x.dim () = 0L || x.shape[x.shape.Length - 1] <> width then
            raise (
                HybridException
                    $"Lorenz-96 CNN closure: expects stencils of {width} values in the last dimension, got shape [{String.Join(',', x.shape)}]."
            )

        let mutable h = x.reshape (-1L, 1L, width)

        for i, (w, b) in Array.indexed layers do
            h <- torch.nn.functional.conv1d (h, w, b)

            if i < layers.Length - 1 then
                h <- torch.tanh h

        h.reshape (Array.append x.shape[.. x.shape.Length - 2] [| 1L |])

/// The standardised stencils of a batch of states [N; K]: [N; K; 2r + 1], entry m + r the value at site k + m.
let internal stencils (reach: int) (x: torch.Tensor) : torch.Tensor =
    torch.stack ([| for m in -reach .. reach -> torch.roll (x, int64 -m, 1L) |], -1L)

/// Rollout options of `samples` samples every `SampleInterval` (the first at t = 0) with RK4 at `dt`.
let internal rolloutOptions (s: Settings) (dt: float) (samples: int) = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = dt
        SaveTimes = Array.init samples (fun i -> float i * s.SampleInterval)
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// Integrates the coupled system (`truthModel`, RK4 at `TruthDt`, `Simulate`) from a random state drawn with
/// `seed`: `SpinUp` MTU, then `samples` samples every `SampleInterval` (the first right after the spin-up).
let internal truth (s: Settings) (forcing: float) (seed: int) (samples: int) : TruthRun =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    use _ = torch.no_grad ()
    let k, j = s.K, s.J
    let rng = Random seed
    let x0 = Array.init k (fun _ -> forcing * (0.5 + rng.NextDouble()) * 0.5)
    let y0 = Array.init (k * j) (fun _ -> 0.1 * (rng.NextDouble() - 0.5))
    let f = ForcingValues()
    f.Use [| forcing |]

    let sim =
        Compiler.compile
            {
                Compiler.defaults with
                    Forcings = Map [ "F", f.At ]
            }
            (truthModel s)

    let options = {
        rolloutOptions s s.TruthDt samples with
            SaveTimes = Array.init samples (fun i -> s.SpinUp + float i * s.SampleInterval)
    }

    let u0 = [|
        torch.tensor(x0, dtype = f64).reshape (1L, int64 k)
        torch.tensor(y0, dtype = f64).reshape (1L, int64 (k * j))
    |]

    let trajectory = sim.Simulate(u0, options)

    let xs =
        trajectory.Values[0].reshape(int64 samples, int64 k).data<float>().ToArray()

    let us =
        (trajectory.Values[1].reshape (int64 samples, int64 k, int64 j)).sum(2L).data<float>().ToArray()

    if not (Array.forall Double.IsFinite xs && Array.forall Double.IsFinite us) then
        raise (HybridException $"Lorenz-96 truth (F = {forcing}) blew up; lower TruthDt (now {s.TruthDt}).")

    let coupling = s.H * s.C / s.B

    {
        X = Array.chunkBySize k xs
        U = Array.chunkBySize k us |> Array.map (Array.map (fun v -> -coupling * v))
    }

/// A compiled X-only model with its forcing: `Paths` runs it.
type internal XModel = {
    Simulator: Simulator
    Forcing: ForcingValues
}

/// Forecasts of a model: the forcing of each start state, the start states (each K values) and the number of
/// samples → the paths [start][sample][K], the start included.
type internal Paths = float[] -> float[][] -> int -> float[][][]

/// Compiles an X-only model with the closures' networks `modules` (by closure name) on the generated kernels where
/// they apply (`Backend.Auto`), networks included.
let internal compileX (m: Model) (modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>) list) : XModel =
    let f = ForcingValues()
    f.Use [| 0.0 |]

    let sim =
        Compiler.compile
            {
                Compiler.defaults with
                    Forcings = Map [ "F", f.At ]
                    Modules = Map modules
                    Backend = Backend.Auto
            }
            m

    { Simulator = sim; Forcing = f }

/// The rollouts of `x` from the start states `x0` ([B; K] tensor) at the forcings `forcings` (one, or one per start):
/// [samples; B; K].
let private simulateX (s: Settings) (x: XModel) (forcings: float[]) (x0: torch.Tensor) (samples: int) =
    x.Forcing.Use forcings
    x.Simulator.Simulate([| x0 |], rolloutOptions s s.ModelDt samples).Values[0]

/// The paths of `x` (no gradients), batched over the start states.
let internal pathsOf (s: Settings) (x: XModel) : Paths =
    fun forcings starts samples ->
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let b = starts.Length
        let x0 = torch.tensor(Array.concat starts, dtype = f64).reshape (int64 b, int64 s.K)
        let values = (simulateX s x forcings x0 samples).data<float>().ToArray()
        Array.init b (fun n -> Array.init samples (fun t -> Array.sub values ((t * b + n) * s.K) s.K))

/// The sub-grid term U(X) of the compiled X-only model `x` at the states `xs` ([N][K]): its tendency minus that
/// of the compiled truncated model `truncated` (both `Dynamics.total` at F = 0), [N][K].
let internal closureAt (s: Settings) (truncated: XModel) (x: XModel) (xs: float[][]) : float[][] =
    use _ = torch.NewDisposeScope()
    use _ = torch.no_grad ()
    let n = xs.Length
    let state = torch.tensor(Array.concat xs, dtype = f64).reshape (int64 n, int64 s.K)

    let tendency (m: XModel) =
        m.Forcing.Use [| 0.0 |]
        (Dynamics.total m.Simulator.Dynamics (m.Simulator.Theta()) 0.0 [| state |])[0]

    (tendency x .- tendency truncated).data<float>().ToArray()
    |> Array.chunkBySize s.K

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

/// Least-squares cubic a0 + a1 x + a2 x² + a3 x³ through the pairs: the normal equations of the design
/// (1, z, z², z³), z = x / `scale`, summed in the pairs' order and solved by Gaussian elimination with partial
/// pivoting, in plain double arithmetic, so that every run gives the same bits (`torch.linalg.lstsq` gave results
/// that moved in the last digits from call to call, which the free runs of a chaotic system then amplify); returns
/// (a0, a1, a2, a3) in the original units.
let internal cubicFit (xs: float[]) (us: float[]) (scale: float) : float[] =
    let gram = Array2D.zeroCreate 4 5

    for i in 0 .. xs.Length - 1 do
        let z = xs[i] / scale
        let powers = [| 1.0; z; z * z; z * z * z |]

        for r in 0..3 do
            for c in 0..3 do
                gram[r, c] <- gram[r, c] + powers[r] * powers[c]

            gram[r, 4] <- gram[r, 4] + powers[r] * us[i]

    for col in 0..3 do
        let pivot = seq { col..3 } |> Seq.maxBy (fun r -> abs gram[r, col])

        for c in 0..4 do
            let t = gram[col, c]
            gram[col, c] <- gram[pivot, c]
            gram[pivot, c] <- t

        if gram[col, col] = 0.0 then
            raise (
                HybridException
                    $"Lorenz-96: the cubic closure's least-squares fit is singular ({xs.Length} pairs); keep more training samples."
            )

        for r in col + 1 .. 3 do
            let f = gram[r, col] / gram[col, col]

            for c in col..4 do
                gram[r, c] <- gram[r, c] - f * gram[col, c]

    let solution = Array.zeroCreate 4

    for r in 3..-1..0 do
        let rest = Seq.sum (seq { for c in r + 1 .. 3 -> gram[r, c] * solution[c] })
        solution[r] <- (gram[r, 4] - rest) / gram[r, r]

    Array.init 4 (fun r -> solution[r] / Math.Pow(scale, float r))

/// Training samples (in time, from the first) that `s.TrainFraction` keeps of the `samples` of the training period:
/// ⌈f·samples⌉, at least `SequenceWindow + 1` (one LSTM window) and `MaxHorizon + 1` (one rollout window).
let internal trainingSamples (s: Settings) (samples: int) : int =
    TrainFraction.count "Lorenz-96" s.TrainFraction (max (s.SequenceWindow + 1) (s.MaxHorizon + 1)) samples

/// The contiguous block of training samples under `s.TrainFraction` and `s.TrainSubset`: (index of the first,
/// count `trainingSamples`), the first samples for subset 0, a seeded random block otherwise.
let internal trainingBlock (s: Settings) (samples: int) : int * int =
    let count = trainingSamples s samples
    TrainFraction.blockStart "Lorenz-96" s.TrainSubset 0 count samples, count

/// The training block (`trainingBlock`: first index, count) split into the samples every model is fitted to (the
/// first `count − held`) and the validation block after them (the last `held`: `EarlyStopping.heldOut` of the
/// count, leaving at least `SequenceWindow + 1` and `MaxHorizon + 1` samples to fit; 0 for none). Returns (first,
/// fit count, held). The test runs start after the whole training period, so the validation block is disjoint from
/// both.
let internal validationBlock (s: Settings) (samples: int) : int * int * int =
    let first, count = trainingBlock s samples

    let held =
        EarlyStopping.heldOut s.EarlyStopping count (max (s.SequenceWindow + 1) (s.MaxHorizon + 1))

    first, count - held, held

/// `s` with the tuned width and learning rate of `part` (`Settings.Tuned`): the MLP closure's `Width`, the CNN
/// closure's and the control's `CnnChannels`, the a-priori `LearningRate` of all three (the uncertainty part uses
/// the MLP's), the transformer's `TransformerWidth`. The LSTM's width and the sequence models' rates are read where
/// they are trained.
let internal tunedFor (part: string) (s: Settings) : Settings =
    let key =
        match part with
        | CasePart.UncertaintyOf("hybrid", _) -> "MLP"
        | CasePart.UncertaintyOf(candidate, _) -> candidate
        | _ -> part

    let width fallback = Tuned.width s.Tuned key fallback

    let rate fallback =
        Tuned.value s.Tuned key Tuned.LearningRate fallback

    match key with
    | "MLP" -> {
        s with
            Width = width s.Width
            LearningRate = rate s.LearningRate
      }
    | "CNN"
    | ModelTable.NoPhysics -> {
        s with
            CnnChannels = width s.CnnChannels
            LearningRate = rate s.LearningRate
      }
    | "Transformer" -> {
        s with
            TransformerWidth = width s.TransformerWidth
      }
    | _ -> s

/// A closure network of the case: its module as the compiled model calls it, the network (for initialisation,
/// dropout and parameters), and the model that calls it.
type internal ClosureNetwork = {
    /// "MLP" or "CNN".
    Kind: string
    /// The closure's name in the model.
    Name: string
    /// What the compiled model calls.
    Module: torch.nn.Module<torch.Tensor, torch.Tensor>
    /// The network whose weights are trained.
    Net: torch.nn.Module
    /// The closure at every site of standardised states [N; K]: [N; K] (what the regression fits).
    Ring: torch.Tensor -> torch.Tensor
    /// The X equation calling it.
    Model: Model
}

/// A new closure network of `kind` from `seed` (dropout only for the MLP). `CaseTraining.initialise` scales
/// weights by 1/√(shape[1]), the input channels of a convolution kernel [out; in; width], whose fan-in is
/// in · width: kernels are scaled by a further 1/√width.
/// `zeroOutput` starts the network's output layer at zero (the closure then starts at U = μ_U).
let internal newNetwork
    (s: Settings)
    (z: Standardisation)
    (kind: string)
    (seed: int)
    (dropout: float)
    (zeroOutput: bool)
    =
    match kind with
    | "MLP" ->
        let net = new Mlp("U", 1, 1, s.Width, 2, dropout = dropout, dtype = f64)
        CaseTraining.initialise net seed zeroOutput

        {
            Kind = kind
            Name = "U"
            Module = net :> torch.nn.Module<torch.Tensor, torch.Tensor>
            Net = net :> torch.nn.Module
            Ring = fun x -> (net.forward (x.unsqueeze -1L)).squeeze -1L
            Model = mlpModel s z
        }
    | _ ->
        let reach = cnnReach s

        let net =
            new Cnn1d("C", 1, 1, s.CnnChannels, CnnHiddenLayers, s.CnnKernel, padding = Padding.Periodic, dtype = f64)

        CaseTraining.initialise net seed zeroOutput

        using (torch.no_grad ()) (fun _ ->
            for p in Neural.parameters net do
                if p.dim () = 3L then
                    withScalar (1.0 / sqrt (float p.shape[2])) p.mul_ |> ignore)

        {
            Kind = kind
            Name = "C"
            Module = new StencilCnn(net, reach) :> torch.nn.Module<torch.Tensor, torch.Tensor>
            Net = net :> torch.nn.Module
            Ring = fun x -> (net.forward (x.unsqueeze 1L)).squeeze 1L
            Model = cnnModel s z
        }

/// The "same network, no physics" control from `seed`: the CNN hybrid's network as `newNetwork s z "CNN" seed 0.0
/// false` makes it (same architecture and initial weights), called by `noPhysicsModel s z` instead of `cnnModel`;
/// `z.MeanU`, `z.ScaleU` standardise the observed tendency of X.
let internal newControl (s: Settings) (z: Standardisation) (seed: int) : ClosureNetwork = {
    newNetwork s z "CNN" seed 0.0 false with
        Model = noPhysicsModel s z
}

/// A-priori training of `c`: `epochs` full-batch Adam epochs (`Trainer.train`, rate `LearningRate`) of regression
/// of the closure at every site of the standardised states `x` [N; K] onto the standardised sub-grid terms `u`
/// [N; K]. Returns the wall time in seconds; leaves the network in eval mode.
let internal trainAPriori (s: Settings) (c: ClosureNetwork) (x: torch.Tensor) (u: torch.Tensor) seed epochs =
    let fit =
        Trainer.train
            {
                Trainer.defaults with
                    Epochs = epochs
                    Seed = seed
                    Groups = [| Trainer.group "phi" s.LearningRate (Neural.parameters c.Net) |]
                    Modules = [| c.Net |]
            }
            {
                Loss =
                    fun _ ->
                        let l = (square (c.Ring x .- u)).mean ()

                        {
                            Total = l
                            Parts = [| "regression", l |]
                        }
                Validation = None
            }

    c.Net.eval () |> ignore
    fit.WallTime.TotalSeconds

/// A-posteriori training of `c` through the solver: `PosteriorEpochs` Adam epochs (`Trainer.train`, rate
/// `PosteriorRate`, gradient norm clipped at 1) on the MSE of X of the compiled model `x` (which calls `c`) over
/// `Windows` random windows of the trajectory `data` [samples; 1; K] per epoch, from the window's first state
/// (multiple shooting), the horizon growing from 1 sample to `MaxHorizon` over the first half of the epochs.
/// Stops early on `check` where given (`EarlyStopping.apply`; the best epoch's weights restored). Returns the wall
/// time in seconds; leaves the network in eval mode.
let internal trainThroughSolverWith
    (check: EarlyStopping.Check option)
    (s: Settings)
    (c: ClosureNetwork)
    (x: XModel)
    (data: torch.Tensor)
    seed
    =
    let snapshots = int data.shape[0]

    let options, validation =
        EarlyStopping.apply check s.PosteriorEpochs {
            Trainer.defaults with
                Epochs = s.PosteriorEpochs
                Seed = seed
                Groups = [| Trainer.group "phi" s.PosteriorRate (Neural.parameters c.Net) |]
                ClipNorm = 1.0
                Horizon = {
                    Start = 1
                    Max = s.MaxHorizon
                    GrowEvery = max 1 (s.PosteriorEpochs / (2 * s.MaxHorizon))
                }
                Modules = [| c.Net |]
        }

    let fit =
        Trainer.train options {
            Loss =
                fun ctx ->
                    let pairs =
                        Windows.starts snapshots 1 ctx.Horizon |> Windows.sample ctx.Random s.Windows

                    let windows = Windows.take data pairs ctx.Horizon

                    let predicted =
                        simulateX s x [| s.Forcing |] (windows.select (0L, 0L)) (ctx.Horizon + 1)

                    let l =
                        (square (
                            predicted.narrow (0L, 1L, int64 ctx.Horizon)
                            .- windows.narrow (0L, 1L, int64 ctx.Horizon)
                        ))
                            .mean ()

                    {
                        Total = l
                        Parts = [| "rollout", l |]
                    }
            Validation = validation
        }

    c.Net.eval () |> ignore
    fit.WallTime.TotalSeconds

/// `trainThroughSolverWith` without validation: every epoch runs.
let internal trainThroughSolver (s: Settings) (c: ClosureNetwork) (x: XModel) (data: torch.Tensor) seed =
    trainThroughSolverWith None s c x data seed

/// One part of the case's work (a task of the report's sweep): "physics" (the truncated model and the cubic
/// closure; seed 0); "MLP" and "CNN" (that closure network from one of `NetworkSeeds`, trained both ways: its
/// hybrid and the ablation's a-priori-only network); `ModelTable.NoPhysics` (the control), "LSTM" and
/// "Transformer" (one network seed each); "uncertainty:<model>" (one ensemble member, seed `Uncertainty.Seed` + k, of
/// the MLP hybrid "hybrid", the control, the LSTM or the transformer) and "uncertainty:hybrid:MC dropout" (the MLP
/// hybrid's MC-dropout closure; `CasePart.uncertaintyParts`). Each part integrates the truth it needs itself
/// (`truthRun`: once per process and settings).
type Part = CasePart.Part

/// The truth's scores, from the "physics" part.
type TruthResult = {
    /// `Outcome.Truth`: the truth's long-run statistics per forcing, in-domain first (Rmse empty).
    Skills: Skill[]
    /// `Outcome.TruthPhysicsResidual`.
    PhysicsResidual: float
    /// `Outcome.TruthSeconds`: the wall time of the truth integrations (as measured when this process made them).
    Seconds: float
    /// `Outcome.TruthExample`.
    Example: float[]
    /// `Outcome.BinnedTruth`.
    Binned: (float * float)[]
}

/// What one part computed.
type PartResult = {
    /// The models it scored. "physics": truncated and cubic closure, in full. A network part: its model at its seed,
    /// in full at the first of `NetworkSeeds`; at any other seed only what `assemble` combines over seeds (each
    /// `Skills[i].Rmse`, the in-domain `Skills[0].ClosureMse` where it has a closure, `TrainSeconds`; the other
    /// scores NaN or empty). "MLP" and "CNN" then the a-priori-only network (`priorName`), scored like another seed.
    Models: ModelResult[]
    /// The truth's scores (the "physics" part's; None for the others).
    Truth: TruthResult option
    /// The output of an uncertainty part (one; empty for the others).
    Uncertainty: CaseUncertainty.Output[]
    /// Every number the part computed as long-format rows (its task result's rows; `runPart`).
    Rows: ResultRow[]
}

/// The network parts of a run, each over `NetworkSeeds`, in the order of the table.
let private networkParts = [ "MLP"; "CNN"; ModelTable.NoPhysics; "LSTM"; "Transformer" ]

/// The models whose uncertainty is compared (name, whether MC dropout applies): the MLP hybrid ("hybrid"), and the
/// pure-ML models that forecast the same X's: the control, the LSTM and the transformer (ensembles only).
let uncertaintyCandidates = [
    "hybrid", true
    ModelTable.NoPhysics, false
    "LSTM", false
    "Transformer", false
]

/// The table name of a network part's model.
let private rowName (part: string) =
    match part with
    | "MLP" -> "hybrid (X + MLP)"
    | "CNN" -> "hybrid (X + CNN)"
    | "LSTM" -> SequenceModels.name SequenceModels.Architecture.Lstm
    | "Transformer" -> SequenceModels.name SequenceModels.Architecture.Transformer
    | other -> other

/// The name, in an "MLP" or "CNN" part's result, of the closure network trained a-priori only (the ablation).
let priorName (kind: string) = $"{kind} closure, a-priori only"

/// Values of X at which `ModelResult.Closure` is given (`Outcome.ClosureGrid`).
let private closureGrid = Array.init 121 (fun i -> -20.0 + 0.5 * float i)

/// Refuses settings the case cannot run.
let private check (s: Settings) =
    if List.isEmpty s.NetworkSeeds then
        raise (HybridException "Lorenz-96: NetworkSeeds is empty; give at least one seed, e.g. [ 5 ].")

    let perSample = steps s.SampleInterval s.ModelDt

    if abs (float perSample * s.ModelDt - s.SampleInterval) > 1e-9 then
        raise (
            HybridException
                $"Lorenz-96: SampleInterval {s.SampleInterval} is not a whole number of model steps ModelDt = {s.ModelDt}; choose ModelDt = SampleInterval / n."
        )

/// The parts of a run under `s`, in the order `run` takes them: the physics, then each network model (MLP, CNN,
/// the no-physics control, LSTM, transformer) at each of `NetworkSeeds`, then the uncertainty parts
/// (`CasePart.uncertaintyParts`; none with `CaseUncertainty.off`).
let parts (s: Settings) : Part list =
    check s

    CasePart.partsOver
        [ for model in networkParts -> model, s.NetworkSeeds ]
        (CasePart.uncertaintyParts s.Uncertainty uncertaintyCandidates)

/// What a truth run depends on (`truth`'s arguments).
type private TruthKey = {
    K: int
    J: int
    H: float
    B: float
    C: float
    TruthDt: float
    SpinUp: float
    SampleInterval: float
    Forcing: float
    Seed: int
    Samples: int
}

/// The truth runs this process made, with the wall time each took.
let private truthRuns =
    Collections.Concurrent.ConcurrentDictionary<TruthKey, Lazy<TruthRun * float>>()

/// `truth s forcing seed samples` and the seconds it took. The truth is deterministic: a process integrates it
/// once per key and hands the same run to the next part that needs it (the in-process report's parts, the
/// data-efficiency runs); a fresh process integrates it again.
let private truthRun (s: Settings) (forcing: float) (seed: int) (samples: int) : TruthRun * float =
    let key = {
        K = s.K
        J = s.J
        H = s.H
        B = s.B
        C = s.C
        TruthDt = s.TruthDt
        SpinUp = s.SpinUp
        SampleInterval = s.SampleInterval
        Forcing = forcing
        Seed = seed
        Samples = samples
    }

    truthRuns.GetOrAdd(key, fun _ -> lazy (CaseTraining.timed (fun () -> truth s forcing seed samples))).Value

/// The forecast RMSE [forcing][lead] of several network seeds ([seed][forcing][lead]) combined: the root of the mean
/// over seeds of the squared RMSE.
let private combine (seedRmse: float[][][]) =
    seedRmse[0]
    |> Array.mapi (fun i leads ->
        leads
        |> Array.mapi (fun l _ -> sqrt (seedRmse |> Array.averageBy (fun r -> r[i][l] * r[i][l]))))

/// The case's name in rows.
[<Literal>]
let private Case = "lorenz96"

/// The model name of the truth's rows.
[<Literal>]
let private TruthName = "truth"

/// A part's result with its numbers as rows at the part's seed: each model's (`PartRows.modelRows`; test MSE: the squared
/// forecast RMSE of X in domain at the longest lead), the uncertainty experiment's (`UncertaintyRows`), each model's
/// "validation" "mse", then the truth's "physics_residual" and "seconds" (model "truth") where the part has them.
let private withRows (part: Part) (r: PartResult) : PartResult =
    let truth =
        match r.Truth with
        | None -> [||]
        | Some t -> [|
            CasePart.row Case part.Seed TruthName "" "physics_residual" t.PhysicsResidual
            CasePart.row Case part.Seed TruthName "" "seconds" t.Seconds
          |]

    let numbers (m: ModelResult) : Hybrid.Models.Tasks.PartRows.ModelNumbers =
        let last = m.Skills[0].Rmse.Length - 1

        {
            Name = m.Name
            TestMse = m.Skills[0].Rmse[last] * m.Skills[0].Rmse[last]
            TrainMse = m.TrainMse
            TrainSeconds = m.TrainSeconds
            InferenceSeconds = m.InferenceSeconds
            Epochs = m.Epochs
            PhysicsResidual = m.PhysicsResidual
            Parameters = m.Parameters
            SplitMse = [| "validation", m.ValidationMse |]
        }

    {
        r with
            Rows = Hybrid.Models.Tasks.PartRows.rows Case part numbers r.Models r.Uncertainty truth
    }

/// Runs one part of the case (any part, in any order or process: each integrates the truth and sets up the data it
/// needs itself).
let rec runPart (s: Settings) (part: Part) : PartResult =
    CasePart.checkKnown "Lorenz-96" ("physics" :: networkParts @ CasePart.uncertaintyModels uncertaintyCandidates) part
    check s
    Engine.init ()
    CaseTraining.singleThreaded (fun () -> runPartWith s part) |> withRows part

and private runPartWith (settings: Settings) (part: Part) : PartResult =
    use outer = torch.NewDisposeScope()
    let s = tunedFor part.Model settings
    let lagSamples = steps s.Lag s.SampleInterval
    let leadSamples = s.Leads |> Array.map (fun l -> steps l s.SampleInterval)
    let maxLead = Array.max leadSamples
    let spacing = steps s.StartSpacing s.SampleInterval
    let freeSamples = steps s.FreeRun s.SampleInterval + 1
    let trainSamples = steps s.TrainSpan s.SampleInterval
    let testSamples = max ((s.Starts - 1) * spacing + maxLead + 1) freeSamples

    let inDomain, inDomainSeconds =
        truthRun s s.Forcing s.Seed (trainSamples + testSamples)

    let split (r: TruthRun) from count = {
        X = Array.sub r.X from count
        U = Array.sub r.U from count
    }

    // The one place the training data is selected: every closure and the LSTM see one block of samples only, fitted
    // to its first samples (`train`) and validated on its last (`validation`); the test run still starts after the
    // whole training period.
    let first, fitCount, heldCount = validationBlock s trainSamples
    let train = split inDomain first fitCount
    let validation = split inDomain (first + fitCount) heldCount
    let forcings = Array.append [| s.Forcing |] s.OutOfDomain

    let outOfDomain =
        s.OutOfDomain
        |> Array.mapi (fun i f -> truthRun s f (s.Seed + i + 1) testSamples)

    let tests =
        Array.append [| split inDomain trainSamples testSamples |] (Array.map fst outOfDomain)

    let truthSeconds = inDomainSeconds + Array.sumBy snd outOfDomain
    let trainX = Array.concat train.X
    let trainU = Array.concat train.U

    let mseOf (a: float[][]) (b: float[][]) =
        Array.map2 (Array.map2 (fun (p: float) q -> (p - q) * (p - q))) a b
        |> Array.concat
        |> Array.average

    let startsOf (r: TruthRun) =
        Array.init s.Starts (fun n -> r.X[n * spacing])

    // Forecast RMSE at every lead, [forcing][lead], of the forecasts `paths` from the test start states.
    let rmsesOf (paths: Paths) =
        tests
        |> Array.mapi (fun i r ->
            let forecasts = paths [| forcings[i] |] (startsOf r) (maxLead + 1)

            leadSamples
            |> Array.map (fun l ->
                Array.init s.Starts (fun n -> mseOf [| forecasts[n][l] |] [| r.X[n * spacing + l] |])
                |> Array.average
                |> sqrt))

    let truncatedX = compileX (truncatedModel s) []
    let truncatedPaths = pathsOf s truncatedX

    // Validation: forecasts of `validationHorizon` samples from at most 20 evenly spaced start states of the
    // validation block, scored against the truth's X there (the targets all lie in the block).
    let validationHorizon = min s.MaxHorizon (heldCount - 1)

    let validationStarts =
        if heldCount < 2 then
            [||]
        else
            let last = heldCount - 1 - validationHorizon
            let step = max 1 ((last + 1) / 20)
            [| 0..step..last |]

    let validationOf (paths: Paths) =
        if validationStarts.Length = 0 then
            nan
        else
            let forecasts =
                paths [| s.Forcing |] (validationStarts |> Array.map (fun i -> validation.X[i])) (validationHorizon + 1)

            validationStarts
            |> Array.mapi (fun n i ->
                mseOf (forecasts[n][1..validationHorizon]) (validation.X[i + 1 .. i + validationHorizon]))
            |> Array.average

    // Early stopping on the validation forecasts of `paths` (the case's rule; none without a validation block).
    let checkOf (paths: Paths) : EarlyStopping.Check option =
        if validationStarts.Length = 0 then
            None
        else
            Some {
                Score = fun () -> validationOf paths
                Rule = s.EarlyStopping
            }

    // The physics residual of paths [start][sample][K] (see `ModelResult.PhysicsResidual`): every sample but the
    // last flowed over one interval by the truncated model, all in one batch.
    let physicsResidualOf (paths: float[][][]) =
        let pairs =
            paths
            |> Array.collect (fun xs -> Array.init (xs.Length - 1) (fun t -> xs[t], xs[t + 1]))

        if
            pairs
            |> Array.exists (fun (a, b) -> not (Array.forall Double.IsFinite a && Array.forall Double.IsFinite b))
        then
            nan
        else
            let flowed = truncatedPaths [| s.Forcing |] (Array.map fst pairs) 2
            mseOf (Array.map snd pairs) (flowed |> Array.map (fun p -> p[1])) |> sqrt

    let closureCurve (x: XModel) =
        closureAt s truncatedX x (closureGrid |> Array.map (fun v -> Array.create s.K v))
        |> Array.map (fun u -> u[0])

    // The closure's MSE against the truth's U on the test samples of forcing i.
    let closureMse (x: XModel) i =
        mseOf (closureAt s truncatedX x tests[i].X) tests[i].U

    // A model's scores from its forecasts `paths` and its compiled model (None where it has no closure).
    let evaluatePaths name description (paths: Paths) (x: XModel option) seconds epochs parameters =
        let rmses, inference = CaseTraining.timed (fun () -> rmsesOf paths)
        let free = paths forcings (tests |> Array.map (fun r -> r.X[0])) freeSamples

        let skills =
            tests
            |> Array.mapi (fun i _ ->
                let mean, std, ac =
                    if Array.forall (Array.forall Double.IsFinite) free[i] then
                        statistics free[i] lagSamples
                    else
                        nan, nan, nan

                {
                    Forcing = forcings[i]
                    Rmse = rmses[i]
                    ClosureMse = x |> Option.map (fun x -> closureMse x i) |> Option.defaultValue nan
                    Mean = mean
                    Std = std
                    Autocorrelation = ac
                })

        let inDomainPaths = paths [| s.Forcing |] (startsOf tests[0]) (maxLead + 1)

        {
            Name = name
            Description = description
            TrainMse =
                x
                |> Option.map (fun x -> mseOf (closureAt s truncatedX x train.X) train.U)
                |> Option.defaultValue nan
            TrainSeconds = seconds
            InferenceSeconds = inference
            Epochs = epochs
            Parameters = parameters
            Skills = skills
            SeedRmse = [||]
            ValidationMse = validationOf paths
            PhysicsResidual = physicsResidualOf inDomainPaths
            Example = inDomainPaths[0] |> Array.map (fun x -> x[0])
            Closure =
                match x with
                | Some x -> closureCurve x
                | None -> Array.create closureGrid.Length nan
        }

    // What `assemble` combines over seeds: the forecast RMSEs and, with a closure, its in-domain MSE (see
    // `PartResult.Models`).
    let seedScores name description (paths: Paths) (x: XModel option) seconds epochs parameters = {
        Name = name
        Description = description
        TrainMse = nan
        TrainSeconds = seconds
        InferenceSeconds = nan
        Epochs = epochs
        Parameters = parameters
        Skills =
            rmsesOf paths
            |> Array.mapi (fun i rmse -> {
                Forcing = forcings[i]
                Rmse = rmse
                ClosureMse =
                    match x with
                    | Some x when i = 0 -> closureMse x 0
                    | _ -> nan
                Mean = nan
                Std = nan
                Autocorrelation = nan
            })
        SeedRmse = [||]
        ValidationMse = validationOf paths
        PhysicsResidual = nan
        Example = [||]
        Closure = [||]
    }

    // A network model at the part's seed: in full at the first network seed, its seed scores at the others.
    let atSeed name description paths x seconds epochs parameters =
        if part.Seed = List.head s.NetworkSeeds then
            evaluatePaths name description paths x seconds epochs parameters
        else
            seedScores name description paths x seconds epochs parameters

    let z =
        let mx = Array.average trainX
        let mu = Array.average trainU

        {
            MeanX = mx
            ScaleX = sqrt (trainX |> Array.averageBy (fun v -> (v - mx) * (v - mx)))
            MeanU = mu
            ScaleU = sqrt (trainU |> Array.averageBy (fun v -> (v - mu) * (v - mu)))
        }

    let samplesTensor (values: float[]) =
        torch.tensor(values, dtype = f64).reshape(int64 train.X.Length, int64 s.K).DetachFromDisposeScope()

    let standardX () =
        samplesTensor (trainX |> Array.map (fun x -> (x - z.MeanX) / z.ScaleX))

    let standardU () =
        samplesTensor (trainU |> Array.map (fun u -> (u - z.MeanU) / z.ScaleU))

    // The training run's X as trajectory data [samples; 1; K] for the rollout windows.
    let trainTrajectory () =
        torch.tensor(trainX, dtype = f64).reshape(int64 train.X.Length, 1L, int64 s.K).DetachFromDisposeScope()

    let networkWeights (net: torch.nn.Module) = [| "network weights", float (Neural.parameterCount net) |]

    let physics () =
        let truncated =
            evaluatePaths
                "truncated"
                "X equation with no sub-grid term (U = 0): the scientific model with fixed parameters"
                truncatedPaths
                (Some truncatedX)
                0.0
                0
                [||]

        let cubicWatch = Stopwatch.StartNew()
        let a = cubicFit trainX trainU 10.0
        let cubicSeconds = cubicWatch.Elapsed.TotalSeconds
        let cubicX = compileX (cubicModel s a) []

        let cubic =
            evaluatePaths
                "cubic closure"
                "X equation + U = a0 + a1 X + a2 X^2 + a3 X^3 per site, least squares on the training pairs (Wilks 2005 style)"
                (pathsOf s cubicX)
                (Some cubicX)
                cubicSeconds
                0
                [| "a0", a[0]; "a1", a[1]; "a2", a[2]; "a3", a[3] |]

        let truth = {
            Skills =
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
            PhysicsResidual =
                physicsResidualOf (Array.init s.Starts (fun n -> tests[0].X[n * spacing .. n * spacing + maxLead]))
            Seconds = truthSeconds
            Example = Array.init (maxLead + 1) (fun t -> tests[0].X[t][0])
            Binned =
                Array.zip trainX trainU
                |> Array.groupBy (fun (x, _) -> floor x)
                |> Array.filter (fun (_, pairs) -> pairs.Length >= 10)
                |> Array.map (fun (bin, pairs) -> bin + 0.5, Array.averageBy snd pairs)
                |> Array.sortBy fst
        }

        {
            Models = [| truncated; cubic |]
            Truth = Some truth
            Uncertainty = [||]
            Rows = [||]
        }

    // Copies the weights of `source` into `target` (same architecture).
    let copyWeights (source: ClosureNetwork) (target: ClosureNetwork) =
        use _ = torch.no_grad ()

        Array.iter2
            (fun (t: Modules.Parameter) (v: Modules.Parameter) -> t.copy_ v |> ignore)
            (Neural.parameters target.Net)
            (Neural.parameters source.Net)

    let trainingText =
        $"a-priori {s.Epochs} full-batch Adam epochs of regression onto U (lr {s.LearningRate}), then a-posteriori {s.PosteriorEpochs} Adam epochs on {s.Windows} rollout windows of X (horizon 1 to {s.MaxHorizon} samples, lr {s.PosteriorRate}) through the solver"

    // Both trainings of the closure network of `kind` from the part's seed: the hybrid (a-priori `Epochs`, then
    // through the solver) and the ablation's a-priori-only network (the same start, then `PosteriorEpochs` more
    // regression epochs), scored on the same budget.
    let closurePart kind =
        let seed = part.Seed
        let standardX, standardU = standardX (), standardU ()
        let posterior = newNetwork s z kind seed 0.0 false
        let warm = trainAPriori s posterior standardX standardU seed s.Epochs
        let prior = newNetwork s z kind seed 0.0 false
        copyWeights posterior prior
        let priorMore = trainAPriori s prior standardX standardU seed s.PosteriorEpochs
        let posteriorX = compileX posterior.Model [ posterior.Name, posterior.Module ]

        let solver =
            trainThroughSolverWith (checkOf (pathsOf s posteriorX)) s posterior posteriorX (trainTrajectory ()) seed

        let priorX = compileX prior.Model [ prior.Name, prior.Module ]
        let epochs = s.Epochs + s.PosteriorEpochs

        let description =
            match kind with
            | "MLP" ->
                $"X equation + U_k = N(X_k) per site (a local closure), MLP 1-{s.Width}-{s.Width}-1 (tanh) on standardised values; {trainingText}"
            | _ ->
                $"X equation + U = C(X), 1-D CNN over the periodic ring of the {s.K} sites (the stencil of {2 * cnnReach s + 1} sites), {s.CnnChannels}-{s.CnnChannels} channels (tanh), kernel width {s.CnnKernel}, on standardised values; {trainingText}"

        [|
            atSeed
                (rowName kind)
                description
                (pathsOf s posteriorX)
                (Some posteriorX)
                (warm + solver)
                epochs
                (networkWeights posterior.Net)
            seedScores
                (priorName kind)
                "a-priori (regression onto U)"
                (pathsOf s priorX)
                (Some priorX)
                (warm + priorMore)
                epochs
                (networkWeights prior.Net)
        |]

    // The "same network, no physics" control at the part's seed: the CNN hybrid's network and two-stage training,
    // with the observed tendency of X (centred differences of the training samples) as the a-priori target in place
    // of U.
    let controlAPriori seed epochs =
        let tendency = observedTendency s.SampleInterval train.X
        let allT = Array.concat tendency
        let mt = Array.average allT

        let zt = {
            z with
                MeanU = mt
                ScaleU = sqrt (allT |> Array.averageBy (fun v -> (v - mt) * (v - mt)))
        }

        let interior (values: float[][]) =
            torch
                .tensor(Array.concat values, dtype = f64)
                .reshape(int64 values.Length, int64 s.K)
                .DetachFromDisposeScope()

        let inputs =
            interior (
                train.X[1 .. train.X.Length - 2]
                |> Array.map (Array.map (fun x -> (x - z.MeanX) / z.ScaleX))
            )

        let target =
            interior (tendency |> Array.map (Array.map (fun t -> (t - zt.MeanU) / zt.ScaleU)))

        let c = newControl s zt seed
        c, trainAPriori s c inputs target seed epochs

    let controlPart () =
        let seed = part.Seed
        let c, warm = controlAPriori seed s.Epochs
        let x = compileX c.Model [ c.Name, c.Module ]

        let solver =
            trainThroughSolverWith (checkOf (pathsOf s x)) s c x (trainTrajectory ()) seed

        atSeed
            ModelTable.NoPhysics
            $"dX_k/dt = C(X) alone: the CNN hybrid's network form ({s.CnnChannels}-{s.CnnChannels} channels, kernel width {s.CnnKernel}, stencil of {2 * cnnReach s + 1} sites, seeds) with no advection, -X or F; a-priori {s.Epochs} epochs of regression onto the observed tendency of X (centred differences of the training samples, not U), then the hybrid's {s.PosteriorEpochs} epochs through the solver; no physics"
            (pathsOf s x)
            None
            (warm + solver)
            (s.Epochs + s.PosteriorEpochs)
            (networkWeights c.Net)

    // Pure data-driven: LSTM and transformer forecasters of X (÷ 10) with the forcing (÷ 20) as exogenous input.
    let forcingInput (f: float) samples = Array.create samples [| f / 20.0 |]
    let scaled = Array.map (Array.map (fun (x: float) -> x / 10.0))

    let sequencePaths (model: SequenceModels.Trained) : Paths =
        fun fs starts samples ->
            starts
            |> Array.mapi (fun n x0 ->
                let f = if fs.Length = 1 then fs[0] else fs[n]

                let path =
                    SequenceModels.forecast model (scaled [| x0 |]) (forcingInput f samples) (samples - 1)

                Array.append [| x0 |] (path |> Array.map (Array.map (fun x -> 10.0 * x))))

    let sequenceTrained architecture hidden iterations seed =
        let pathsOf = sequencePaths

        SequenceModels.fitForecasterWith
            (if validationStarts.Length = 0 then
                 None
             else
                 Some {
                     Score = fun m -> validationOf (pathsOf m)
                     Rule = s.EarlyStopping
                 })
            {
                SequenceModels.defaults architecture with
                    Hidden = hidden
                    Heads = 4
                    Window = s.SequenceWindow
                    Iterations = iterations
                    Seed = seed
                    LearningRate = Tuned.value s.Tuned (SequenceModels.name architecture) Tuned.LearningRate 1e-2
            } [| scaled train.X |] [| forcingInput s.Forcing train.X.Length |]

    let sequencePart architecture hidden iterations what =
        let model = sequenceTrained architecture hidden iterations part.Seed
        let paths = sequencePaths model

        atSeed
            (SequenceModels.name architecture)
            $"pure data-driven: {what} forecaster of the {s.K} X's with F as exogenous input, {s.SequenceWindow}-sample context, trained on the F = {s.Forcing} run; no closure"
            paths
            None
            model.Seconds
            iterations
            [|
                "network weights", float (Neural.parameterCount model.Net)
                "one-step train MSE", model.TrainLoss * 100.0
            |]

    // Uncertainty of the X forecasts at `UncertaintyLead` from every test start state and from the validation
    // block's. A member of the MLP hybrid is the closure from another network seed (a-priori, `Uncertainty.Iterations`
    // epochs), one of the control its network regressed a-priori onto the observed tendency for as many epochs, one
    // of a sequence model that forecaster at the same fraction of its own iterations; the noise variance is the
    // member's forecast MSE at that lead from start states of the training run. MC dropout (the hybrid): in training
    // mode each pass draws one dropout mask (kept units scaled by 1/(1 − p)) and uses it at every site and step of
    // every forecast.
    let lead = steps s.UncertaintyLead s.SampleInterval

    // Start states: every `spacing` samples whose lead lies in the run, at most `limit` (the test runs use the first
    // `Starts`).
    let uncertaintyStarts (r: TruthRun) limit =
        if r.X.Length - 1 - lead < 0 then
            [||]
        else
            Array.init ((r.X.Length - 1 - lead) / spacing + 1) (fun n -> n * spacing)
            |> Array.truncate limit

    let at (r: TruthRun) limit =
        uncertaintyStarts r limit |> Array.collect (fun n -> r.X[n + lead])

    let forecastsAt (paths: Paths) f (r: TruthRun) limit =
        paths [| f |] (uncertaintyStarts r limit |> Array.map (fun n -> r.X[n])) (lead + 1)
        |> Array.collect (fun p -> p[lead])

    let hasValidation = (uncertaintyStarts validation Int32.MaxValue).Length > 0

    let uncertaintySplits = [|
        if hasValidation then
            CaseUncertainty.Validation, torch.tensor (at validation Int32.MaxValue, dtype = f64)
        yield!
            tests
            |> Array.mapi (fun i r ->
                let name =
                    if i = 0 then
                        $"F = {forcings[i]}"
                    else
                        $"F = {forcings[i]} (out of domain)"

                name, torch.tensor (at r s.Starts, dtype = f64))
    |]

    // The forecasts of `paths` on the uncertainty splits, and their noise variance.
    let fromPaths
        (modules: torch.nn.Module[])
        (mask: (unit -> torch.Tensor[]) -> torch.Tensor[])
        (paths: Paths)
        : CaseUncertainty.Trained =
        let trainError =
            Array.map2
                (fun a b -> (a - b) * (a - b))
                (forecastsAt paths s.Forcing train Int32.MaxValue)
                (at train Int32.MaxValue)

        {
            Modules = modules
            Predict =
                fun () ->
                    mask (fun () -> [|
                        if hasValidation then
                            torch.tensor (forecastsAt paths s.Forcing validation Int32.MaxValue, dtype = f64)
                        yield!
                            tests
                            |> Array.mapi (fun i r ->
                                torch.tensor (forecastsAt paths forcings[i] r s.Starts, dtype = f64))
                    |])
            NoiseVariance = Array.average trainError
        }

    let uncertaintyTrainer (candidate: string) (seed: int) (dropout: float) : CaseUncertainty.Trained =
        let budget = CaseUncertainty.budget s.Uncertainty s.Epochs

        match candidate with
        | "hybrid" ->
            let c = newNetwork s z "MLP" seed dropout false

            trainAPriori s c (standardX ()) (standardU ()) seed s.Uncertainty.Iterations
            |> ignore

            let x = compileX c.Model [ c.Name, c.Module ]
            fromPaths [| c.Net |] (CaseUncertainty.withOneMask (c.Net :?> Mlp)) (pathsOf s x)
        | "LSTM" ->
            let m =
                sequenceTrained
                    SequenceModels.Architecture.Lstm
                    (Tuned.width s.Tuned "LSTM" 32)
                    (budget s.SequenceIterations)
                    seed

            fromPaths [| m.Net |] (fun f -> f ()) (sequencePaths m)
        | "Transformer" ->
            let m =
                sequenceTrained
                    SequenceModels.Architecture.Transformer
                    s.TransformerWidth
                    (budget s.TransformerIterations)
                    seed

            fromPaths [| m.Net |] (fun f -> f ()) (sequencePaths m)
        | _ ->
            let c, _ = controlAPriori seed s.Uncertainty.Iterations
            let x = compileX c.Model [ c.Name, c.Module ]
            fromPaths [| c.Net |] (fun f -> f ()) (pathsOf s x)

    let models (m: ModelResult[]) = {
        Models = m
        Truth = None
        Uncertainty = [||]
        Rows = [||]
    }

    match part.Model with
    | "physics" -> physics ()
    | "MLP"
    | "CNN" -> models (closurePart part.Model)
    | ModelTable.NoPhysics -> models [| controlPart () |]
    | "LSTM" ->
        models [|
            let hidden = Tuned.width s.Tuned "LSTM" 32
            let rate = Tuned.value s.Tuned "LSTM" Tuned.LearningRate 1e-2

            sequencePart
                SequenceModels.Architecture.Lstm
                hidden
                s.SequenceIterations
                $"LSTM ({hidden} hidden units, Adam {rate:G3})"
        |]
    | "Transformer" ->
        let rate = Tuned.value s.Tuned "Transformer" Tuned.LearningRate 1e-2

        models [|
            sequencePart
                SequenceModels.Architecture.Transformer
                s.TransformerWidth
                s.TransformerIterations
                $"transformer (width {s.TransformerWidth}, 4 heads, one causal encoder layer, Adam {rate:G3})"
        |]
    | CasePart.UncertaintyOf(candidate, dropout) -> {
        Models = [||]
        Truth = None
        Uncertainty = [|
            CaseUncertainty.output s.Uncertainty uncertaintySplits dropout part.Seed (uncertaintyTrainer candidate)
        |]
        Rows = [||]
      }
    | other -> raise (HybridException $"Lorenz-96: there is no part '{other}'.")

/// Builds the outcome from the results of every part of `parts s` (in any order): each network model's row is its
/// first seed's run with the forecast RMSE combined over seeds (`Skill.Rmse`), the per-seed RMSEs and the mean
/// training time; the ablation's rows from the MLP and CNN parts' two networks. A missing part raises a
/// `HybridException` that names it.
let assemble (s: Settings) (results: (Part * PartResult) list) : Outcome =
    check s

    let resultOf (part: Part) =
        results
        |> List.tryFind (fun (p, _) -> p = part)
        |> Option.map snd
        |> Option.defaultWith (fun () ->
            raise (
                HybridException
                    $"Lorenz-96: the part {part.Model} (seed {part.Seed}) has no result; run it before assembling the outcome."
            ))

    let physics = resultOf { Model = "physics"; Seed = 0 }

    let truth =
        physics.Truth
        |> Option.defaultWith (fun () ->
            raise (HybridException "Lorenz-96: the result of the physics part has no truth scores; run it again."))

    // The model `name` of the network part `model` at every network seed, in `NetworkSeeds` order.
    let runsOf model name =
        s.NetworkSeeds
        |> List.map (fun seed ->
            (resultOf { Model = model; Seed = seed }).Models
            |> Array.tryFind (fun m -> m.Name = name)
            |> Option.defaultWith (fun () ->
                raise (
                    HybridException
                        $"Lorenz-96: the result of the part {model} (seed {seed}) has no model '{name}'; run it again."
                )))
        |> Array.ofList

    let rmses (runs: ModelResult[]) =
        runs |> Array.map (fun m -> m.Skills |> Array.map (fun k -> k.Rmse))

    // A network model over the seeds: the first seed's run with the combined RMSEs, the per-seed ones, mean time.
    let overSeeds (runs: ModelResult[]) =
        let seedRmse = rmses runs
        let combined = combine seedRmse

        {
            runs[0] with
                TrainSeconds = runs |> Array.averageBy (fun r -> r.TrainSeconds)
                SeedRmse = seedRmse
                Skills = runs[0].Skills |> Array.mapi (fun i k -> { k with Rmse = combined[i] })
        }

    let network part = overSeeds (runsOf part (rowName part))

    // A closure network's table row and its two ablation rows (a-priori only, then a-posteriori).
    let closureRows kind =
        let posterior = runsOf kind (rowName kind)
        let row = overSeeds posterior
        let prior = runsOf kind (priorName kind)
        let priorSeeds = rmses prior

        row,
        [|
            {
                Closure = kind
                Training = "a-priori (regression onto U)"
                Epochs = s.Epochs + s.PosteriorEpochs
                Rmse = combine priorSeeds
                SeedRmse = priorSeeds
                ClosureMse = prior |> Array.averageBy (fun m -> m.Skills[0].ClosureMse)
                TrainSeconds = prior |> Array.averageBy (fun m -> m.TrainSeconds)
            }
            {
                Closure = kind
                Training = "a-posteriori (through the solver)"
                Epochs = s.Epochs + s.PosteriorEpochs
                Rmse = row.Skills |> Array.map (fun k -> k.Rmse)
                SeedRmse = row.SeedRmse
                ClosureMse = posterior |> Array.averageBy (fun m -> m.Skills[0].ClosureMse)
                TrainSeconds = row.TrainSeconds
            }
        |]

    let mlp, mlpAblation = closureRows "MLP"
    let cnn, cnnAblation = closureRows "CNN"
    let trainSamples = steps s.TrainSpan s.SampleInterval

    {
        Settings = s
        Truth = truth.Skills
        TrainPairs = snd (trainingBlock s trainSamples) * s.K
        TruthPhysicsResidual = truth.PhysicsResidual
        TruthSeconds = truth.Seconds
        TruthExample = truth.Example
        BinnedTruth = truth.Binned
        ClosureGrid = closureGrid
        Models = [|
            physics.Models[0]
            physics.Models[1]
            mlp
            cnn
            network ModelTable.NoPhysics
            network "LSTM"
            network "Transformer"
        |]
        Ablation = Array.append mlpAblation cnnAblation
        Uncertainty = CasePart.uncertaintyOf s.Uncertainty uncertaintyCandidates (fun p -> (resultOf p).Uncertainty)
        Rows = parts s |> List.toArray |> Array.collect (fun p -> (resultOf p).Rows)
    }

/// Runs the truths, fits the closures and scores every model: every part of `parts s` in this process, one after
/// another, then `assemble`.
let run (s: Settings) : Outcome =
    parts s |> List.map (fun p -> p, runPart s p) |> assemble s
