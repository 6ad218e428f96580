/// Case study (twin experiment, issue #16, first slice): a moist "GCM-lite" whose sub-grid closure is learned
/// through the solver, forecasting fields and regional precipitation. The equations are `ClimateModel`'s: a forced
/// barotropic vorticity equation on a doubly periodic β-plane, ∂ω/∂t = −J(ψ, ω) − β ∂ψ/∂x + F0 cos 4y − μ ω + ν Δω
/// with Δψ = ω, a humidity q advected in limited flux form with evaporation towards q_sat(y) (warm equator, cold
/// poles) and smooth condensation C, and the accumulated precipitation ∂P/∂t = C.
/// Truth (`ClimateTruth`): the same equations on a fine grid (quick 128², full 256²) with SSP-RK3 at a small Δt and a
/// viscosity for that grid, spun up, then block-averaged to the models' grid (32²). Splits, in time
/// along one run: a training block, a validation block (early stopping) and a test block; out of distribution: a
/// run with 1.5× the forcing, branched from the spun-up state. Every model runs on the coarse grid with Heun
/// (SSP-RK2) at its own Δt and the coarse viscosity: no model shares the truth's grid, scheme or step.
/// Models (each a named builder; `ClimateModels.all` lists them in the report's order, their own files define the rest):
///  - physics: the coarse equations with fixed parameters, no closure;
///  - hybrid (a posteriori): the same plus whole-field CNN closures, sgsomega(ω) of the vorticity and sgsq(ω, q) of
///    the humidity, output layers started at zero (so it starts as the physics), trained end to end through unrolled solver
///    steps by `Trainer.train` with a growing horizon, on normalised errors of ω, q and the accumulated P.
/// Metrics: field MSE of ω and q at a few leads, and the MSE of regional precipitation (P(t0 + lead) − P(t0) summed
/// over `Regions` × `Regions` blocks, times the cell area), on the test block and the out-of-distribution run.
module Hybrid.Models.Cases.Climate

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common
open Hybrid.Models.Tuning

/// Settings of the case: `quick` for tests and CI, `full` for the report.
type Settings = {
    /// How the truth is made (fine grid, scheme, spin-up, splits' length, out-of-distribution run).
    Truth: ClimateTruth.Settings
    /// Where the truth comes from: generated from `Truth` (the default), or read from NetCDF files (Hybrid's own or
    /// another code's, `ClimateTruthSource.Files`), checked against `Truth`'s grid, save interval and run lengths.
    TruthSource: ClimateTruthSource.Source
    /// Viscosity ν of the models' coarse grid.
    ModelNu: float
    /// Time step of the models (Heun).
    ModelDt: float
    /// Saved intervals of the in-distribution run in the training block (from its start).
    TrainIntervals: int
    /// Saved intervals in the validation block (after the training block).
    ValidationIntervals: int
    /// Regions per side for regional precipitation (a divisor of the models' cells).
    Regions: int
    /// Forecast leads, in saved intervals, at which the models are scored (the last is also the validation lead).
    Leads: int list
    /// Hidden widths of each of the hybrid's CNN closures, of ω and of q (kernel 3, tanh; `ClimateModel.textWith`).
    Hidden: int list
    /// Adam epochs of the hybrid.
    Epochs: int
    /// Adam learning rate of the hybrid's network.
    Rate: float
    /// Adam learning rate of fitted scientific coefficients (the raw values of the classic closure's positive
    /// Leith coefficients, c = softplus(raw)), trained with everything else as the hybrid is.
    CoefficientRate: float
    /// Clip the global gradient norm of each Adam step to this value (0 = no clipping): long unrolls through an
    /// unbounded closure otherwise take steps that blow the rollout up.
    ClipNorm: float
    /// Training windows per Adam step (drawn at random from the training block).
    Batch: int
    /// The rollout horizon of training, in saved intervals (grows during training).
    Horizon: HorizonSchedule
    /// Early stopping on the validation block (its `Share` is not used: the block is `ValidationIntervals`).
    EarlyStopping: EarlyStopping.Rule
    /// Saved intervals of the free runs, from the test block's start (at least 10 × the largest training horizon; the
    /// in-distribution truth must reach that far: `Truth.Intervals` ≥ training + validation + this).
    FreeRunIntervals: int
    /// Seed of the network's weights and the trainer.
    Seed: int
    /// libtorch intra-op threads during `run` (the previous count is restored afterwards).
    Threads: int
    /// Tuned learning rates by model name (`hybrid tune --case climate`, `tuning/climate.csv`; applied by
    /// `tunedFor`): a network's `Tuned.LearningRate` replaces `Rate`, the classic closure's `CoefficientRateName`
    /// replaces `CoefficientRate`; a model without one uses those.
    Tuned: Map<string, Map<string, float>>
}

/// The name of the classic closure's tuned coefficient rate (`Settings.Tuned`).
[<Literal>]
let CoefficientRateName = "coefficient rate"

/// Quick settings: truth on 128² (SSP-RK3, Δt = 0.01, ν = 5e-4), spun up for 20 time units, models on 32² (Heun,
/// Δt = 0.05, ν = 2e-3, four times the truth's: the grid is four times coarser and ν scales like a grid Reynolds
/// number), saves every 0.5; train 12 time units, validation 3, test 20 (long enough for the free runs of 40 saves,
/// 10 × the largest training horizon); out of distribution 1.5 F0, 4 units of adjustment, 6 of test; 4 × 4 regions; 60
/// epochs of 4 windows at rate 1e-3 (3e-3 with the gradient norm clipped at 1 blew the rollout up), gradient norm
/// clipped at 0.1, horizon growing from 1 to 4 saves.
let quick = {
    Truth = {
        Physics = ClimateModel.reference
        Cells = 128
        Nu = 5e-4
        Scheme = Scheme.SspRk3
        Dt = 0.01
        ModelCells = 32
        SpinUp = 20.0
        SaveEvery = 0.5
        Intervals = 70
        OodForcingFactor = 1.5
        OodAdjust = 4.0
        OodIntervals = 12
        Dtype = torch.ScalarType.Float32
    }
    TruthSource = ClimateTruthSource.Generated
    ModelNu = 2e-3
    ModelDt = 0.05
    TrainIntervals = 24
    ValidationIntervals = 6
    Regions = 4
    Leads = [ 1; 2; 4 ]
    Hidden = [ 16; 16 ]
    Epochs = 60
    Rate = 1e-3
    CoefficientRate = 0.05
    ClipNorm = 0.1
    Batch = 4
    Horizon = { Start = 1; Max = 4; GrowEvery = 15 }
    EarlyStopping = EarlyStopping.defaults
    FreeRunIntervals = 40
    Seed = 1
    Threads = 1
    Tuned = Tuned.none
}

/// Full settings: truth on 256² (Δt = 0.005, ν = 1.5e-4) coarse-grained by 8 to the models' 32² grid (the models'
/// Δt and ν as in `quick`; Kochkov et al. 2021 coarsen 8–10×), 8 × 8 regions of 4² cells, leads up to 8 saves, 100
/// epochs of 4 windows with the horizon growing from 1 to 8 saves (every 12 epochs); a validation block of 12 saves
/// (5 windows of the longest lead 8); free runs of 80 saves (10 × the horizon of 8) after it, so an in-distribution
/// run of 120 saves. Models on 64² would cost about 30 × as much per epoch (4 × the cells, half the step, twice the
/// batch and horizon): hours per model and seed on two cores, far beyond the report's budget; the truth keeps the
/// issue's ≥ 256². Generating the 256² truth takes about 5 minutes on one core (once per worker process).
let full = {
    quick with
        Truth = {
            quick.Truth with
                Cells = 256
                Nu = 1.5e-4
                Dt = 0.005
                Intervals = 120
        }
        ValidationIntervals = 12
        FreeRunIntervals = 80
        Regions = 8
        Epochs = 100
        Horizon = { Start = 1; Max = 8; GrowEvery = 12 }
        Leads = [ 1; 2; 4; 8 ]
}

/// The truth's coarse-grained runs split for training and scoring.
type Data = {
    /// The truth.
    Truth: ClimateTruth.Truth
    /// Start indices (into `Truth.Main`) of the training windows: every save of the training block that leaves
    /// room for the largest horizon inside the block.
    TrainStarts: int[]
    /// Start indices of the validation windows (the largest lead inside the validation block).
    ValidationStarts: int[]
    /// Start indices of the test windows (the largest lead inside the test block, after validation).
    TestStarts: int[]
    /// Start indices into `Truth.Ood` (the largest lead inside the run).
    OodStarts: int[]
    /// Mean square change of ω, q and P over one saved interval in the training block: the loss's scales.
    Scales: float[]
}

/// Refuses settings whose splits leave a block without a window: training shorter than the largest horizon,
/// validation or the out-of-distribution run shorter than the longest lead, no test window or free run after
/// validation. Needs no truth, so a bad setting fails before the truth is generated.
let checkSplits (s: Settings) : unit =
    let maxLead = List.max s.Leads
    let horizon = s.Horizon.Max
    let trainEnd = s.TrainIntervals
    let validationEnd = trainEnd + s.ValidationIntervals
    let total = s.Truth.Intervals

    if validationEnd + maxLead > total then
        raise (
            HybridException
                $"Climate: {total} saved intervals leave no test block after {trainEnd} training and {s.ValidationIntervals} validation intervals at lead {maxLead}."
        )

    if s.TrainIntervals < horizon then
        raise (
            HybridException
                $"Climate: the training block of {trainEnd} saved intervals holds no window of the largest training horizon {horizon}; set TrainIntervals to at least {horizon}."
        )

    if s.ValidationIntervals < maxLead then
        raise (
            HybridException
                $"Climate: the validation block of {s.ValidationIntervals} saved intervals holds no window of the longest lead {maxLead} (Leads = {s.Leads}), so early stopping would have nothing to score; set ValidationIntervals to at least {maxLead}."
        )

    if s.Truth.OodIntervals < maxLead then
        raise (
            HybridException
                $"Climate: the out-of-distribution run of {s.Truth.OodIntervals} saved intervals holds no window of the longest lead {maxLead}; set Truth.OodIntervals to at least {maxLead}."
        )

    if validationEnd + s.FreeRunIntervals > total then
        raise (
            HybridException
                $"Climate: {total} saved intervals hold no free run of {s.FreeRunIntervals} after {trainEnd} training and {s.ValidationIntervals} validation intervals; set Truth.Intervals to at least {validationEnd + s.FreeRunIntervals}."
        )

/// Splits the truth of `s` (generated or taken from the cache, or read from files: `s.TruthSource`) after
/// `checkSplits`.
let data (s: Settings) : Data =
    checkSplits s
    let truth = ClimateTruthSource.load s.TruthSource s.Truth
    let maxLead = List.max s.Leads
    let horizon = s.Horizon.Max
    let trainEnd = s.TrainIntervals
    let validationEnd = trainEnd + s.ValidationIntervals
    let total = s.Truth.Intervals

    let scales =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()

        truth.Main.Fields
        |> Array.map (fun v ->
            let change = v.narrow (0L, 1L, int64 trainEnd) .- v.narrow (0L, 0L, int64 trainEnd)
            (square change).mean().ToDouble())

    {
        Truth = truth
        TrainStarts = [| 0 .. trainEnd - horizon |]
        ValidationStarts = [| trainEnd .. validationEnd - maxLead |]
        TestStarts = [| validationEnd .. total - maxLead |]
        OodStarts = [| 0 .. s.Truth.OodIntervals - maxLead |]
        Scales = scales
    }

/// `make ()` on the first call with settings `s` in a process, then its cached result (keyed by `s`, which determines
/// the data): how a model fitted once serves both the report and the tests that look inside it.
let internal cachedBy
    (cache: System.Collections.Generic.Dictionary<Settings, 'T>)
    (s: Settings)
    (make: unit -> 'T)
    : 'T =
    lock cache (fun () ->
        match cache.TryGetValue s with
        | true, v -> v
        | _ ->
            let v = make ()
            cache[s] <- v
            v)

/// A trained model: forecasts from coarse start states.
type Trained = {
    /// The model's name.
    Name: string
    /// `forecast u0 intervals`: from states u0 (ω, q, P, each [B; n; n]) the states at 0, 1, …, `intervals` saved
    /// intervals later, each field [intervals + 1; B; n; n].
    Forecast: torch.Tensor[] -> int -> torch.Tensor[]
    /// Training losses per epoch (empty for a model without training).
    TrainLosses: float[]
    /// Validation losses per epoch (`validationLoss`; NaN where not validated, empty for a model without training).
    ValidationLosses: float[]
    /// Wall time of training in seconds.
    TrainSeconds: float
}

/// A named model builder: trains (or sets up) a model on the data.
type ModelBuilder = {
    /// The model's name, as in the report.
    Name: string
    /// Builds and trains it.
    Build: Settings -> Data -> Trained
}

/// `s` with the tuned rates of the model named `name` (`Settings.Tuned`): its `Tuned.LearningRate` as `Rate` and
/// its `CoefficientRateName` as `CoefficientRate`, each kept where not tuned.
let tunedFor (name: string) (s: Settings) : Settings = {
    s with
        Rate = Tuned.value s.Tuned name Tuned.LearningRate s.Rate
        CoefficientRate = Tuned.value s.Tuned name CoefficientRateName s.CoefficientRate
}

/// Builds the model of `b` on `d` under `s` with its tuned rates (`tunedFor`): how the report, the tuning search and
/// `runModels` build every model.
let build (b: ModelBuilder) (s: Settings) (d: Data) : Trained = b.Build (tunedFor b.Name s) d

/// The coarse model's text: `ClimateModel.text` at the models' grid and viscosity, with `closure` hidden widths.
let modelText (s: Settings) (closure: int list) : string =
    ClimateModel.text s.Truth.Physics s.Truth.ModelCells s.ModelNu closure

/// Compiles a coarse model's text in the truth's precision, seeded with `s.Seed`, on `Backend.Auto`: the float32
/// kernels run its rollouts (networks and ψ solve in float32), with and without gradients. Training the CNN closures
/// through them was slower than eager (57–67 s against 53–57 s for the tests' a-posteriori hybrid) until the
/// kernels' backward pass kept a whole segment's stages and glibc's heap kept freed memory (`NativeHeap`): 52.8 s
/// against 53.9–59.6 s eager, idle machine.
let internal compileText (s: Settings) (text: string) : Simulator =
    Compiler.compile
        {
            Compiler.defaults with
                Dtype = s.Truth.Dtype
                Seed = s.Seed
                Backend = Backend.Auto
        }
        (Parse.model text)

/// Compiles the coarse model (`modelText`) with `closure` hidden widths.
let internal compile (s: Settings) (closure: int list) : Simulator = compileText s (modelText s closure)

/// The models' rollout over `intervals` saved intervals: Heun at `ModelDt`, saves every `Truth.SaveEvery` from 0,
/// no finite checks (the trainer's divergence recovery handles blow-ups).
let internal rolloutOptions (s: Settings) (intervals: int) = {
    Rollout.defaults with
        Scheme = Scheme.Heun
        Dt = s.ModelDt
        SaveTimes = Array.init (intervals + 1) (fun i -> float i * s.Truth.SaveEvery)
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// `sim` rolled out from `u0` with the models' scheme and step, saved every interval: the `Trained.Forecast` of a
/// coarse model (differentiable).
let internal forecastWith (s: Settings) (sim: Simulator) (u0: torch.Tensor[]) (intervals: int) =
    sim.Simulate(u0, rolloutOptions s intervals).Values

/// The truth's states at `starts` (indices into `run`), each field [B; n; n].
let startStates (run: ClimateTruth.Run) (starts: int[]) : torch.Tensor[] =
    let index = torch.tensor (starts |> Array.map int64)
    run.Fields |> Array.map (fun v -> v.index_select(0L, index).squeeze 1L)

/// The truth's states 0, 1, …, `intervals` saves after each of `starts`, each field [intervals + 1; B; n; n].
let truthWindows (run: ClimateTruth.Run) (starts: int[]) (intervals: int) : torch.Tensor[] =
    let windows =
        Array.init (intervals + 1) (fun k -> startStates run (starts |> Array.map (fun i -> i + k)))

    Array.init run.Fields.Length (fun f -> torch.stack (windows |> Array.map (fun w -> w[f]), 0L))

/// The normalised error of a forecast against the truth over saves 1 … H: Σ over ω, q, P of MSE / scale.
let private windowLoss (d: Data) (forecast: torch.Tensor[]) (target: torch.Tensor[]) =
    Array.init forecast.Length (fun f ->
        let later (v: torch.Tensor) = v.narrow (0L, 1L, v.shape[0] - 1L)
        Loss.mse (later (forecast[f])) (later (target[f])) ./ d.Scales[f])
    |> Array.reduce (.+)

/// Coarse physics with fixed parameters: the coarse equations, no closure, nothing trained.
let physics: ModelBuilder = {
    Name = "coarse physics (fixed parameters)"
    Build =
        fun s _ ->
            let sim = compile s []

            {
                Name = "coarse physics (fixed parameters)"
                Forecast = forecastWith s sim
                TrainLosses = [||]
                ValidationLosses = [||]
                TrainSeconds = 0.0
            }
}

/// The CNN closures of a coarse model compiled with closures (its modules: `sgsomega`, then `sgsq`) and their
/// weights, each output layer (the last convolution's weight and bias) set to zero: the model starts as the coarse
/// physics.
let internal zeroedClosure (sim: Simulator) : torch.nn.Module<torch.Tensor, torch.Tensor>[] * Modules.Parameter[] =
    let nets = sim.Modules |> Array.map snd

    let weights =
        nets
        |> Array.collect (fun net ->
            let w = Neural.parameters net

            do
                use _ = torch.no_grad ()

                for p in w[w.Length - 2 ..] do
                    p.zero_ () |> ignore

            w)

    nets, weights

/// The validation score of a forecast (as `Trained.Forecast`): the normalised error over saves 1 … L against the
/// truth on every validation window, L the longest lead (Σ over ω, q, P of MSE / `Data.Scales`); what early stopping
/// watches. Without gradients.
let validationLoss (s: Settings) (d: Data) (forecast: torch.Tensor[] -> int -> torch.Tensor[]) : float =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let lead = List.max s.Leads
    let u0 = startStates d.Truth.Main d.ValidationStarts
    let target = truthWindows d.Truth.Main d.ValidationStarts lead
    (windowLoss d (forecast u0 lead) target).ToDouble()

/// Trains `groups` through the solver, the one training set-up every model trained on forecasts shares:
/// `Trainer.train` for `s.Epochs` epochs of one Adam step on `s.Batch` windows drawn at random from the training
/// block, the loss the normalised error of `forecast` over saves 1 … H against the truth (Σ over ω, q, P of MSE /
/// `Data.Scales`) with H from `s.Horizon`, the global gradient norm clipped at `s.ClipNorm`, and early stopping on
/// the same error at the longest lead on the validation block (`s.EarlyStopping`, best epoch restored). `forecast`
/// (as `Trained.Forecast`) must be differentiable in the groups' parameters; `modules` are switched between
/// training and eval mode. Returns the trained model named `name`, forecasting with `forecast`.
let trainThroughSolver
    (s: Settings)
    (d: Data)
    (name: string)
    (forecast: torch.Tensor[] -> int -> torch.Tensor[])
    (groups: ParamGroup[])
    (modules: torch.nn.Module[])
    : Trained =
    let main = d.Truth.Main

    let check: EarlyStopping.Check = {
        Rule = s.EarlyStopping
        Score = fun () -> validationLoss s d forecast
    }

    let watch = Stopwatch.StartNew()

    let options, validation =
        EarlyStopping.apply (Some check) s.Epochs {
            Trainer.defaults with
                Epochs = s.Epochs
                Seed = s.Seed
                Groups = groups
                ClipNorm = s.ClipNorm
                Horizon = s.Horizon
                Modules = modules
        }

    let result =
        Trainer.train options {
            Loss =
                fun context ->
                    let starts =
                        Array.init s.Batch (fun _ -> d.TrainStarts[context.Random.Next d.TrainStarts.Length])

                    let u0 = startStates main starts
                    let target = truthWindows main starts context.Horizon
                    let loss = windowLoss d (forecast u0 context.Horizon) target

                    {
                        Total = loss
                        Parts = [| "data", loss |]
                    }
            Validation = validation
        }

    {
        Name = name
        Forecast = forecast
        TrainLosses = result.TrainLosses
        ValidationLosses = result.ValidationLosses
        TrainSeconds = watch.Elapsed.TotalSeconds
    }

/// The a-posteriori hybrid: the coarse equations plus `sgsomega(omega)` and `sgsq(omega, q)`, CNNs over the whole
/// fields (output layers started at zero), trained through the solver with a growing horizon (`trainThroughSolver`).
let hybrid: ModelBuilder = {
    Name = "hybrid, a posteriori (coarse physics + CNN closure)"
    Build =
        fun s d ->
            let sim = compile s s.Hidden
            let nets, weights = zeroedClosure sim

            trainThroughSolver
                s
                d
                "hybrid, a posteriori (coarse physics + CNN closure)"
                (forecastWith s sim)
                [| Trainer.group "phi" s.Rate weights |]
                (nets |> Array.map (fun net -> net :> torch.nn.Module))
}

/// Regional precipitation between two accumulated-precipitation states p0, p1 ([B; n; n]): (p1 − p0) summed over
/// `regions` × `regions` blocks of cells times the cell area (2π/n)², [B; regions; regions]. The regions' sum is
/// the domain integral of the precipitation.
let regionalPrecipitation (regions: int) (p0: torch.Tensor) (p1: torch.Tensor) : torch.Tensor =
    let n = p0.shape[p0.shape.Length - 1]
    let cell = 2.0 * Math.PI / float n
    let f = n / int64 regions
    let r = int64 regions

    ((p1 .- p0).reshape(p0.shape[0], r, f, r, f).sum ([| 2L; 4L |]))
    .* (cell * cell)

/// Errors of one model on one split at each lead.
type Scores = {
    /// (lead in saved intervals, MSE of ω, MSE of q) against the coarse-grained truth.
    Fields: (int * float * float)[]
    /// (lead, MSE of the regional precipitation over the lead's window).
    Precipitation: (int * float)[]
}

/// Scores `m` on the windows of `run` starting at `starts`.
let score (s: Settings) (m: Trained) (run: ClimateTruth.Run) (starts: int[]) : Scores =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let maxLead = List.max s.Leads
    let forecast = m.Forecast (startStates run starts) maxLead
    let target = truthWindows run starts maxLead

    let mse (a: torch.Tensor) (b: torch.Tensor) = (Loss.mse a b).ToDouble()

    let regional (v: torch.Tensor[]) lead =
        regionalPrecipitation s.Regions (v[2][0]) (v[2][int64 lead])

    {
        Fields = [|
            for lead in s.Leads ->
                lead,
                mse (forecast[0][int64 lead]) (target[0][int64 lead]),
                mse (forecast[1][int64 lead]) (target[1][int64 lead])
        |]
        Precipitation = [|
            for lead in s.Leads -> lead, mse (regional forecast lead) (regional target lead)
        |]
    }

/// One model's results.
type ModelResult = {
    /// The model's name.
    Name: string
    /// Errors on the test block.
    Test: Scores
    /// Errors on the out-of-distribution run.
    Ood: Scores
    /// Training time in seconds.
    TrainSeconds: float
    /// Training losses per epoch.
    TrainLosses: float[]
    /// Validation losses per epoch (`Trained.ValidationLosses`).
    ValidationLosses: float[]
}

/// Outcome of `run`.
type Outcome = {
    /// Every model's results, in the builders' order.
    Models: ModelResult list
    /// Wall time of generating the truth (0 when it came from the cache).
    TruthSeconds: float
}

/// `f ()` with `s.Threads` libtorch intra-op threads (the previous count restored afterwards).
let withThreads (s: Settings) (f: unit -> 'T) : 'T =
    let threads = torch.get_num_threads ()
    Engine.useThreads s.Threads

    try
        f ()
    finally
        Engine.useThreads threads

/// Runs `builders` on the case's data with `s.Threads` libtorch threads and scores them on the test block and the
/// out-of-distribution run.
let runModels (s: Settings) (builders: ModelBuilder list) : Outcome =
    withThreads s (fun () ->
        let watch = Stopwatch.StartNew()
        let d = data s
        let truthSeconds = watch.Elapsed.TotalSeconds

        {
            Models = [
                for b in builders ->
                    let m = build b s d

                    {
                        Name = m.Name
                        Test = score s m d.Truth.Main d.TestStarts
                        Ood = score s m d.Truth.Ood d.OodStarts
                        TrainSeconds = m.TrainSeconds
                        TrainLosses = m.TrainLosses
                        ValidationLosses = m.ValidationLosses
                    }
            ]
            TruthSeconds = truthSeconds
        })
