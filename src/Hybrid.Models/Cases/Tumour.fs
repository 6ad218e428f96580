/// Case study (twin experiment): tumour growth under a drug whose effect is unknown. 1-D reaction–diffusion of
/// the tumour cell density u(t, x) (carrying capacity 1) on [0, 10] (32 cells, no-flux ends), days as the unit
/// of time, 0–12 days:
///   ∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u,   u(0, x) = exp(−(x − 5)²)  (`Examples.tumour`).
/// The drug concentration c(t, x) is known (a forcing): every bolus of a dosing schedule decays exponentially in
/// time (time constant `DecayTime`) and falls off away from a vessel at x = 0 (length scale `VesselLength`):
///   c(t, x) = Σₖ doseₖ · exp(−(t − tₖ)/τ) · exp(−x/ℓ)   over the doses given at tₖ ≤ t.
/// The truth kills with a saturating (Emax) effect, kill = k_max c / (EC50 + c), k_max = 1.2 /day, EC50 = 0.6,
/// with D = 0.03, r = 0.5 /day; it is hidden from every model. Observations: u on all 32 cells every 2 days
/// (t = 2, 4, …, 12) with Gaussian noise of standard deviation `Noise` (0.01 = 1 % of the carrying capacity).
/// Training: a control arm (no drug), 0.5 every 2 days and 2.0 every 4 days (c up to 2.15); in-domain test: the
/// same doses at unseen times; out-of-domain test: unseen schedules with larger doses or denser dosing, c up to
/// 4.4, twice the training range, where the Emax curve is flatter than anything in training. Errors are
/// against the noise-free truth. The truth is not the models' own discretisation (no inverse crime): it is the
/// same equation compiled on a grid four times finer (128 cells) and integrated with RK4 at Δt = 0.02
/// (`restrictedTruth`), then restricted to the models' 32 cells by cell averages. Its observations and the
/// errors therefore include the models' discretisation error (32 cells, Heun at Δt = 0.4), as real data would.
/// Models (the prior, fitted and hybrid models are each a `model { }` compiled by `Compiler.compile` with c as a
/// forcing, integrated with Heun, Δt = `Dt`):
///  - prior: the scientific model with the log-kill hypothesis (kill proportional to c; Skipper, Schabel and
///    Wilcox 1964) with fixed prior values D = 0.06, r = 0.35 /day, k = 0.6 /day per unit c (plausible
///    magnitudes set before any fit, not taken from a particular paper), nothing fitted;
///  - fitted: the same model with D, r, k fitted (`Trainer.train`, Adam);
///  - hybrid: `Examples.tumour` with D, r learnable and the closure kill(u, c) = N(u, c) − N(u, 0), N an MLP
///    (tanh, output layer started at zero) so that no drug means no kill (otherwise N could trade off against
///    r); trained jointly with D, r, starting from the fitted model's D, r;
///  - neural ODE (no physics), the "same network, no physics" control (`neuralOdeModel`): ∂u/∂t = N(u, c) per
///    cell, N the hybrid's network (same inputs, width, seed, zero output layer), trained like the hybrid (same
///    rate, epochs and data loss) but from the seed: no diffusion, growth or kill form, so no spatial coupling;
///  - LSTM and transformer (`Baselines.SequenceModels`, 32 hidden units), pure data-driven: autoregressive
///    forecasters of the 32-cell profile u at the observation times (one step = 2 days), with the drug as
///    exogenous input, trained on the noisy training observations (teacher forcing, one-step increments, the
///    whole record as context; the known u(0, x) starts each record) and forecasting every observation time of
///    a schedule from u(0, x) alone, feeding their own predictions back. The drug input of the step t → t + 2 is its mean concentration at the
///    vessel over that step, (A(t + 2) − A(t)) / 2 with A the exposure (`exposure`); c(t, x) = c(t, 0)·exp(−x/ℓ)
///    on every cell, so this loses no spatial information, only the timing within a step. They predict the
///    observation times only, so they have no physics residual (NaN) and no kill curve;
///  - PINN (`Baselines.Pinn`): an MLP (u, κ)(t, x, A(t)) of time, position and the exposure at the vessel (the
///    schedule enters only through A, continuous in t with dA/dt = c(t, 0)), fitted to the noisy training
///    observations of u and the known u(0, x), plus the residual of the known physics only, with the kill left
///    unknown as it is for the hybrid: ∂u/∂t + ∂u/∂A·c(t, 0) − D ∂²u/∂x² − r u (1 − u) + c κ u (the time
///    derivative through A by the chain rule), D and r the hybrid's of the same seed and the kill c·κ learned
///    by the PINN's own network (its second output, unobserved): no kill law is imposed, only that no drug means
///    no kill, as in the hybrid's closure. Enforced at every day and every second cell of all eight schedules (the
///    schedules, hence c, are known for the test schedules too; no boundary condition is imposed). It is scored
///    on its values on the step grid, so its physics residual under the true equation is computed like the
///    simulators'.
/// Every model runs over `Seeds` (each seed draws its own observation noise and network initialisation; the
/// baselines' network seeds are the same numbers); MSEs are the mean over seeds, with the per-seed values kept.
/// Uncertainty (`CaseUncertainty`, settings `Uncertainty`, one task per network): a deep ensemble of hybrids from
/// other network seeds and MC dropout of one hybrid trained with dropout (one mask per pass, kept for the whole
/// rollout: `CaseUncertainty.withOneMask`), trained on the first seed's data from its fitted D, r, and deep ensembles
/// of the control, the LSTM and the transformer on the same data; targets: the held-out validation observations
/// (recalibration by variance scaling is fitted there) and noisy observations (noise of the same `Noise`, a fixed
/// draw) of the in- and out-of-domain schedules at the observation times; noise variance: the member's MSE against
/// its training data.
/// The physics residual of a model is that of its predicted test trajectories under the true equation on the
/// models' grid (`Residual.compute`, consistent Heun form at the step spacing: 0 up to round-off for a run of the
/// true equation on that grid; the restricted fine truth has the discretisation error as its residual).
/// Ablation (issue #15, 2 b–d; `Settings.Ablation`, `Outcome.Ablation`), over the
/// hybrid's seeds (each seed's noise draw and network seed), from its fitted D, r with its width, rate, epochs, early
/// stopping and out-of-domain scoring: the hybrid with separate θ/φ rates (θ = D, r at `PhysicsRate`), the hybrid
/// plus λ × the mean square residual of its training trajectories under the fitted log-kill model (the modeller's
/// scientific model, not the hidden Emax truth; λ from 0 to 1 over the first half of the epochs), and α-fusion
/// ŷ = α·F + (1 − α)·G (`fusedTrajectory`) of the fitted log-kill model F (D, r, k trainable) with the no-physics
/// neural ODE G of the hybrid's network size (a scalar α and a per-point gate), trained end to end.
/// Validation (`Settings.EarlyStopping`, `validationTimes`): the last 20% of the kept observation times (day 12 of
/// days 2–12) of the training schedules are held out; every model, the physics fit included, is fitted to the
/// earlier times, and every network (the hybrid, the control, the sequence models, the PINN) stops early on its MSE
/// against the noisy observations of the held-out times (patience a quarter of its epochs, the best epoch's weights
/// restored). The test schedules take no part. Learning rates and widths come from `Settings.Tuned` (`hybrid tune`,
/// keys `tunedModels`) where tuned.
/// The run is split into parts (`parts`; the report's tasks, `TumourTasks`): the physics at each seed, each network
/// model at each seed, each ablation variant at each of the hybrid's seeds and the uncertainty experiment, each
/// computed alone by `runPart` (in any order or process) and put together by `assemble`; `run` does both in one
/// process.
module Hybrid.Models.Cases.Tumour

open System
open System.Collections.Generic
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
    /// Adam epochs (one rollout of the training schedules each) for the fitted scientific model.
    PhysicsEpochs: int
    /// Adam learning rate of the fitted scientific model (on the raw, softplus-constrained D, r, k).
    PhysicsRate: float
    /// Adam epochs for the hybrid (after the physics fit whose D and r it starts from).
    HybridEpochs: int
    /// Adam learning rate of the hybrid (D, r and the network alike).
    HybridRate: float
    /// Time step (days) of every rollout.
    Dt: float
    /// Time scheme of every rollout (IMEX: diffusion implicit).
    Scheme: Scheme
    /// Hidden width of the kill network (two hidden layers, tanh).
    Width: int
    /// Standard deviation of the observation noise (u is 0–1).
    Noise: float
    /// libtorch intra-op threads during `run`, `runPart` and `assemble` (the previous count is restored afterwards).
    /// The tensors are tiny ([3; 32]), so more threads only add synchronisation; on a busy 2-core machine the default
    /// count made the quick run several times slower.
    Threads: int
    /// Seeds: each one draws the observation noise and the network initialisation; the MSEs are averaged
    /// over them and the parameters reported per seed.
    Seeds: int list
    /// Share of the observation times (of the training schedules) every model is fitted to, in (0, 1]: the first
    /// ⌈f·6⌉ of days 2, 4, …, 12 (see `trainingTimes`); 1 keeps all. The test schedules never change.
    TrainFraction: float
    /// The training data's replicate: 0 the case's own noise draw per seed; a seed ≥ 1 another draw of the
    /// observation noise (`noiseSeed`). The observation times stay the first ones (every model, the sequence
    /// models too, runs from day 0, so a later block of one time would leave them no transition).
    TrainSubset: int
    /// Adam iterations (full-batch epochs) of the LSTM and transformer baselines (run over `Seeds`).
    SequenceIterations: int
    /// Adam iterations of the PINN (run over `Seeds`).
    PinnIterations: int
    /// Uncertainty of the hybrid (deep ensemble, MC dropout) and of the pure-ML models (deep ensembles: the control,
    /// the LSTM and the transformer); `Iterations` are each hybrid member's epochs, the control's too, the sequence
    /// models get the same fraction of their own budget (`CaseUncertainty.budget`).
    Uncertainty: CaseUncertainty.Settings
    /// Adds the ablation (issue #15, 2 b–d; `Outcome.Ablation`), each variant over the hybrid's seeds with its data,
    /// fitted start, width, rate, epochs and early stopping: separate θ/φ rates, a λ schedule on a physics residual
    /// under the fitted log-kill model, and α-fusion of the fitted log-kill model with the no-physics neural ODE
    /// (scalar α, per-point gate): four more parts per seed (`parts`).
    Ablation: bool
    /// The validation split and early-stopping rule (`validationTimes`); `EarlyStopping.off` fits every kept
    /// observation time for the whole budget.
    EarlyStopping: EarlyStopping.Rule
    /// Tuned learning rates and widths by model key (`tunedModels`; `hybrid tune`); a model without one uses the
    /// defaults (the hybrid and the control `HybridRate` and `Width`, the sequence models 1e-2 and 32 units, the
    /// PINN `Pinn.defaults`).
    Tuned: Map<string, Map<string, float>>
}

/// Report settings: five seeds.
let defaults = {
    PhysicsEpochs = 150
    PhysicsRate = 0.08
    HybridEpochs = 300
    HybridRate = 0.03
    Dt = 0.4
    Scheme = Scheme.Heun
    Width = 16
    Noise = 0.01
    Threads = 1
    Seeds = [ 1; 2; 3; 4; 5 ]
    TrainFraction = 1.0
    TrainSubset = 0
    SequenceIterations = 600
    PinnIterations = 1000
    // Members get 100 hybrid epochs (not 300; the quick hybrid budget) to keep the report's run time modest.
    Uncertainty = {
        CaseUncertainty.defaults with
            Iterations = 100
    }
    Ablation = true
    EarlyStopping = EarlyStopping.defaults
    Tuned = Tuned.none
}

/// Quick settings (`hybrid report --quick`): three seeds, a third of the epochs, no ablation rows (as in the other
/// cases' quick settings; tests cut the seeds to one).
let quick = {
    defaults with
        PhysicsEpochs = 40
        HybridEpochs = 100
        Seeds = [ 1; 2; 3 ]
        SequenceIterations = 300
        PinnIterations = 300
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 30
        }
        Ablation = false
}

/// A dosing schedule: bolus doses (day, dose in units of c at the vessel).
type Schedule = {
    /// The schedule's name, as in the report.
    Name: string
    /// The bolus doses: (day, dose in units of c at the vessel), in time order.
    Doses: (float * float)[]
}

/// Training schedules: a control arm and two low-dose schedules.
let training = [|
    { Name = "control"; Doses = [||] }
    {
        Name = "0.5 every 2 days"
        Doses = Array.init 6 (fun i -> 2.0 * float i, 0.5)
    }
    {
        Name = "2.0 every 4 days"
        Doses = [| 0.0, 2.0; 4.0, 2.0; 8.0, 2.0 |]
    }
|]

/// In-domain test: the training doses at unseen times.
let inDomain = [|
    {
        Name = "0.5 on odd days"
        Doses = Array.init 6 (fun i -> 1.0 + 2.0 * float i, 0.5)
    }
    {
        Name = "2.0 on days 2, 6, 10"
        Doses = [| 2.0, 2.0; 6.0, 2.0; 10.0, 2.0 |]
    }
|]

/// Out-of-domain test: unseen schedules at two to three times the doses.
let outOfDomain = [|
    {
        Name = "5.0 on day 1"
        Doses = [| 1.0, 5.0 |]
    }
    {
        Name = "1.5 daily"
        Doses = Array.init 12 (fun i -> float i, 1.5)
    }
    {
        Name = "3.5 every 3 days"
        Doses = Array.init 4 (fun i -> 3.0 * float i, 3.5)
    }
|]

/// The hidden truth and the scientific model's prior values.
module Truth =
    /// Diffusion coefficient (length²/day).
    let D = 0.03
    /// Growth rate (1/day).
    let r = 0.5
    /// Largest kill rate (1/day).
    let KMax = 1.2
    /// Concentration of half the largest kill.
    let EC50 = 0.6
    /// Time constant of the drug's decay (days).
    let DecayTime = 1.5
    /// Length scale of the drug's fall-off from the vessel at x = 0.
    let VesselLength = 6.0
    /// Simulated days.
    let Horizon = 12.0
    /// Observation times (days).
    let ObservationTimes = Array.init 6 (fun i -> 2.0 * float (i + 1))
    /// Grid cells of the models.
    let Cells = 32
    /// Grid cells of the truth: four times the models', so that each model cell holds four of the truth's.
    let FineCells = 128
    /// Time scheme of the truth (the models use Heun).
    let Scheme = Scheme.Rk4
    /// Time step of the truth (days): stable for RK4 on 128 cells (D Δt/Δx² ≈ 0.1) and on 256 cells (≈ 0.4).
    let FineDt = 0.02

/// How many observation times (the first, in time, of `Truth.ObservationTimes`) the training data keeps under
/// `s.TrainFraction`: ⌈f·6⌉, at least one.
let internal trainingTimes (s: Settings) : int =
    TrainFraction.count "Tumour" s.TrainFraction 1 Truth.ObservationTimes.Length

/// The kept observation times (`trainingTimes`) split into the number every model is fitted to (the first) and the
/// number held out as validation data (the last `EarlyStopping.heldOut` of them: one of six by default, day 12;
/// none when fewer than one would be left to fit).
let internal validationTimes (s: Settings) : int * int =
    let kept = trainingTimes s
    let held = EarlyStopping.heldOut s.EarlyStopping kept 1
    kept - held, held

/// The keys of the network models (`Settings.Tuned`) and of their parts (`parts`), in table order.
let tunedModels = [ "hybrid"; ModelTable.NoPhysics; "LSTM"; "Transformer"; "PINN" ]

/// The seed of the observation noise of network seed `seed` under `s.TrainSubset`: 1000 + seed for subset 0 (the
/// case's own draw), 1000 + seed + 100000 · subset otherwise (another draw, the same at every `TrainFraction`).
let internal noiseSeed (s: Settings) (seed: int) : int =
    if s.TrainSubset < 0 then
        raise (HybridException $"Tumour: TrainSubset = {s.TrainSubset} is negative; give 0 or a subset seed ≥ 1.")

    1000 + seed + 100000 * s.TrainSubset

/// Fixed prior values of the scientific model: D, r, k.
let internal prior = [| "D", 0.06; "r", 0.35; "k", 0.6 |]

/// One model's result, over all seeds.
type ModelResult = {
    /// Short name (table row, CSV key).
    Name: string
    /// What the model is.
    Description: string
    /// MSE of u against the noise-free truth on the in-domain test schedules at the observation times, mean
    /// over seeds.
    InDomainMse: float
    /// In-domain MSE of each seed (`InDomainMse` is their mean).
    SeedInDomainMse: float[]
    /// The same on the out-of-domain schedules.
    OutOfDomainMse: float
    /// The same on the training schedules (noise-free truth), mean over seeds.
    TrainMse: float
    /// MSE against the noisy observations of the training schedules at the validation times (`validationTimes`),
    /// mean over seeds; NaN without validation times.
    ValidationMse: float
    /// RMS physics residual of the predicted test trajectories (in- and out-of-domain) under the true
    /// equation, mean over seeds; NaN for the sequence models (they predict the observation times only).
    ResidualNorm: float
    /// Training wall time per seed, mean (s); a hybrid's includes the physics fit it starts from.
    TrainSeconds: float
    /// Wall time of one prediction of all five test schedules (s), mean over seeds.
    InferenceSeconds: float
    /// Adam iterations (a hybrid's include the physics fit it starts from; 0 for fixed models; the baselines'
    /// full-batch epochs).
    Epochs: int
    /// Out-of-domain MSE of each seed (`OutOfDomainMse` is their mean).
    SeedOutOfDomainMse: float[]
    /// Learned (or fixed) parameters per seed: (name, value for each seed).
    Parameters: (string * float[])[]
    /// Kill rate at u = 0.5 on `Outcome.KillConcentrations` (first seed); empty for the baselines (no kill term).
    Kill: float[]
    /// Tumour burden (mean u over the domain) for each out-of-domain schedule (first seed), as (day, mean u): at
    /// `Outcome.BurdenTimes` (every step), or day 0 and the observation times for the sequence models.
    Burden: (float * float)[][]
}

/// Outcome of `run`.
type Outcome = {
    /// The settings the case ran with.
    Settings: Settings
    /// True parameter values (D, r).
    TrueParameters: (string * float)[]
    /// Concentrations at which the kill curves are tabulated (0 to the largest out-of-domain c).
    KillConcentrations: float[]
    /// The true kill rate k_max c / (EC50 + c) there.
    TrueKill: float[]
    /// Largest concentration in the training schedules.
    TrainingMaxConcentration: float
    /// Times of the burden curves (days).
    BurdenTimes: float[]
    /// True burden per out-of-domain schedule.
    TrueBurden: float[][]
    /// RMS residual of the (restricted, fine-grid) truth's trajectory under the true equation on the models' grid
    /// and scheme: the discretisation error the models' grid and scheme cannot represent (not round-off).
    TruthResidualNorm: float
    /// Every model, in the order of the table.
    Models: ModelResult[]
    /// Calibration of the hybrid's deep ensemble and MC dropout and of the pure-ML models' deep ensembles, on the
    /// validation times, in and out of domain, as trained and recalibrated on the validation times (issue #6 e);
    /// empty with `CaseUncertainty.off`.
    Uncertainty: CaseUncertainty.MethodResult[]
    /// The ablation rows (`AblationTable.names`, in that order, over the hybrid's seeds; empty without
    /// `Settings.Ablation`).
    Ablation: ModelResult[]
    /// Every number of the run as long-format rows, what the report's tables are computed from: every part's rows in
    /// the order of `parts` (per model and seed: the out-of-domain MSE as "test" "mse", the in-domain and validation
    /// MSEs, train MSE, times, epochs, residual norm as "physics_residual", parameters; the uncertainty experiment's).
    Rows: ResultRow[]
}

/// One model's scores for one seed (`ModelResult` holds their means over seeds).
type private Scores = {
    InDomain: float
    OutOfDomain: float
    Train: float
    Validation: float
    Residual: float
    TrainSeconds: float
    InferenceSeconds: float
    Parameters: (string * float)[]
    Kill: float[]
    Burden: (float * float)[][]
}

let private f64 = torch.ScalarType.Float64

/// Drug concentration c(t, x) of a schedule.
let internal concentration (s: Schedule) (t: float) (x: float) =
    let temporal =
        s.Doses
        |> Array.sumBy (fun (tk, dose) ->
            if tk <= t + 1e-12 then
                dose * exp (-(t - tk) / Truth.DecayTime)
            else
                0.0)

    temporal * exp (-x / Truth.VesselLength)

/// Cumulative exposure at the vessel, A(t) = ∫₀ᵗ c(s, 0) ds = Σₖ doseₖ τ (1 − exp(−(t − tₖ)/τ)) over the doses
/// given at tₖ ≤ t (so dA/dt = c(t, 0), and A is continuous at a bolus).
let internal exposure (s: Schedule) (t: float) =
    s.Doses
    |> Array.sumBy (fun (tk, dose) ->
        if tk <= t + 1e-12 then
            dose * Truth.DecayTime * (1.0 - exp (-(t - tk) / Truth.DecayTime))
        else
            0.0)

/// The forcing shared by every compiled model: c for the active batch of schedules, [B; cells], cached by time.
type private Drug(grid: Grid) =
    let centres =
        use _ = torch.no_grad ()
        (Grid.coordinate grid 0 f64).reshape(-1L).data<float>().ToArray()

    let cache = Dictionary<float, torch.Tensor>()
    let mutable active: Schedule[] = [||]

    member _.Centres = centres

    /// Frees the cached tensors.
    member _.Clear() =
        for t in cache.Values do
            t.Dispose()

        cache.Clear()
        active <- [||]

    /// Makes `schedules` the batch the forcing describes.
    member d.Use(schedules: Schedule[]) =
        if not (obj.ReferenceEquals(schedules, active)) then
            d.Clear()
            active <- schedules

    /// c at time t, [B; cells].
    member _.At(t: float) : torch.Tensor =
        match cache.TryGetValue t with
        | true, c -> c
        | _ ->
            let values =
                active |> Array.collect (fun s -> centres |> Array.map (concentration s t))

            let c =
                torch
                    .tensor(values, dtype = f64)
                    .reshape(int64 active.Length, int64 centres.Length)
                    .DetachFromDisposeScope()

            cache[t] <- c
            c

/// The kill closure of the hybrid: N(u, c) − N(u, 0), so that no drug means no kill.
type private KillNetwork(net: Mlp) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>("kill")
    do this.register_module ("net", net)

    override _.forward(x: torch.Tensor) =
        let noDrug =
            torch.cat ([| x.narrow (-1L, 0L, 1L); torch.zeros_like (x.narrow (-1L, 1L, 1L)) |], -1L)

        let both = net.forward (torch.stack ([| x; noDrug |], 0L))
        both[0L] - both[1L]

/// [0, 10] in `cells` uniform cells.
let private gridOf (cells: int) = Domain.Interval(0.0, 10.0, cells)

let private grid = gridOf Truth.Cells

/// The truth's equation: the catalogue's tumour model on a grid of `cells` cells with the Emax kill written out and
/// D, r fixed.
let internal truthModelOn (cells: int) : Model =
    let u, D, r, c = sym "u", sym "D", sym "r", sym "c"
    let kmax, ec50 = sym "kmax", sym "EC50"

    model "tumour_truth" {
        domain (gridOf cells)
        field "u"
        param "D" (fixedAt Truth.D)
        param "r" (fixedAt Truth.r)
        constant "kmax" Truth.KMax
        constant "EC50" Truth.EC50
        forcing "c"
        equation (dt u == div (D * grad u) + r * u * (1.0 - u) - kmax * c / (ec50 + c) * u)
        boundary "u" noFlux
        initial "u" (fun x -> exp (-((x - 5.0) ** 2)))
    }

/// The truth's equation on the models' 32-cell grid (their physics residual is taken under it).
let internal truthModel: Model = truthModelOn Truth.Cells

/// The truth of `schedules` saved at `times`, computed through the compiler on a grid of `cells` cells (a multiple of
/// `Truth.Cells`) with `scheme` and time step `dt`, then restricted to the models' 32 cells by cell averages (each
/// model cell is the mean of the fine cells it holds): [times; schedules; 32]. Without gradients.
let internal restrictedTruth (cells: int) (scheme: Scheme) (dt: float) (schedules: Schedule[]) (times: float[]) =
    if cells < Truth.Cells || cells % Truth.Cells <> 0 then
        raise (
            HybridException
                $"Tumour: the truth's grid has {cells} cells; it must be a multiple of the models' {Truth.Cells} so that each model cell is a whole number of its cells. Use e.g. {4 * Truth.Cells}."
        )

    Engine.init ()
    use _ = torch.no_grad ()
    let drug = Drug(Grid.ofDomain (gridOf cells))

    let sim =
        Compiler.compile
            {
                Compiler.defaults with
                    Forcings = Map [ "c", drug.At ]
            }
            (truthModelOn cells)

    let options = {
        Rollout.defaults with
            Scheme = scheme
            Dt = dt
            SaveTimes = times
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    drug.Use schedules
    let u = sim.Simulate(sim.Initial schedules.Length, options).Values[0]
    drug.Clear()

    u
        .reshape(int64 times.Length, int64 schedules.Length, int64 Truth.Cells, int64 (cells / Truth.Cells))
        .mean ([| 3L |])

/// The scientific model: log-kill hypothesis, kill = k c, starting from the prior values.
let internal scientificModel: Model =
    let u, D, r, k, c = sym "u", sym "D", sym "r", sym "k", sym "c"

    let value name =
        prior |> Array.find (fun (n, _) -> n = name) |> snd

    model "tumour_log_kill" {
        domain grid
        field "u"
        param "D" (positive (value "D"))
        param "r" (positive (value "r"))
        param "k" (positive (value "k"))
        forcing "c"
        equation (dt u == div (D * grad u) + r * u * (1.0 - u) - k * c * u)
        boundary "u" noFlux
        initial "u" (fun x -> exp (-((x - 5.0) ** 2)))
    }

/// The hybrid: `Examples.tumour` (neural kill(u, c)) on the case's 32-cell grid.
let internal hybridModel: Model = Examples.tumour |> Model.withDomain grid

/// The "same network, no physics" control (`ModelTable.NoPhysics`): the hybrid's equation with its scientific terms
/// (diffusion, logistic growth and the kill's form −kill·u with no drug, no kill) removed, a neural ODE
/// ∂u/∂t = N(u, c) in every cell, N the closure "N" of the same inputs (u, c) as the hybrid's kill network; the same
/// grid, forcing, boundary and initial state.
let internal neuralOdeModel: Model =
    let u, c = sym "u", sym "c"

    model "tumour_neural_ode" {
        domain grid
        field "u"
        neural "N" (named "N" 2)
        forcing "c"
        equation (dt u == call "N" [ u; c ])
        boundary "u" noFlux
        initial "u" (fun x -> exp (-((x - 5.0) ** 2)))
    }

/// The α-fused prediction of the ablation (`Settings.Ablation`): ŷ = α·F + (1 − α)·G over the whole trajectory
/// ([S; batch; cells], S the save times of `options`), F the rollout of `physics` (the log-kill model) and G that of
/// `neural` (the no-physics neural ODE, `neuralOdeModel`), both from `physics`' initial state u(0, x) for `batch`
/// schedules (the forcing c must already describe them), fused by `FusedRollout.run` with scale 1 (u is 0–1); a
/// gate sees the time over the last save time and F.
let internal fusedTrajectory
    (fusion: Fusion)
    (physics: Simulator)
    (neural: Simulator)
    (batch: int)
    (options: RolloutOptions)
    : torch.Tensor =
    let u0 = physics.Initial batch
    let g = neural.Simulate(u0, options).Values
    (FusedRollout.run fusion [| 1.0 |] physics u0 options g).Fused[0]

/// The truth's trajectory of one schedule with time step `dt` (Heun): u [step][cell] at t = 0, dt, …, 12, and
/// the cell centres (for checks of the truth against its equation).
let internal truthTrajectory (dt: float) (schedule: Schedule) : float[][] * float[] =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    use _ = torch.no_grad ()
    let drug = Drug(Grid.ofDomain grid)

    let sim =
        Compiler.compile
            {
                Compiler.defaults with
                    Forcings = Map [ "c", drug.At ]
            }
            truthModel

    let steps = int (round (Truth.Horizon / dt))

    let options = {
        Rollout.defaults with
            Scheme = Scheme.Heun
            Dt = dt
            SaveTimes = Array.init (steps + 1) (fun i -> float i * dt)
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    drug.Use [| schedule |]
    let u = sim.Simulate(sim.Initial 1, options).Values[0]

    let values =
        Array.init (steps + 1) (fun i -> u[int64 i, 0L].data<float>().ToArray())

    drug.Clear()
    values, drug.Centres

/// One independent part of the case's work (a task of the report's sweep) and its seed: "physics" the prior and the
/// fitted log-kill models on that seed's noise draw; "hybrid", `ModelTable.NoPhysics`, "LSTM", "Transformer" and
/// "PINN" one seed of that model (its noise draw and network seed); with `Settings.Ablation`, "separate rates",
/// "lambda schedule", "fused scalar" and "fused gate" one of the hybrid's seeds of an ablation variant;
/// "uncertainty:<model>" one ensemble member (seed `Uncertainty.Seed` + k) of the hybrid, the control, the LSTM or the
/// transformer, and "uncertainty:hybrid:MC dropout" the hybrid's MC-dropout network, all on the first seed's data
/// (`CasePart.uncertaintyParts`). A part that starts from the same seed's physics fit (the hybrid, the ablation,
/// the uncertainty members) or uses the same seed's hybrid's D, r (the PINN) computes them itself, or takes them from
/// this process's earlier computation with the same inputs (`runPart`).
type Part = CasePart.Part

/// What one part computed: its models, each over its one seed (`SeedInDomainMse`, `SeedOutOfDomainMse` and every
/// parameter's values of length 1), or the uncertainty experiment's methods.
type PartResult = CasePart.PartResult<ModelResult>

/// The parts of the ablation (`Settings.Ablation`), in the table's order (`AblationTable.names`): separate rates,
/// a λ schedule, α-fusion with a scalar α and with a per-point gate.
let private ablationParts = [ "separate rates"; "lambda schedule"; "fused scalar"; "fused gate" ]

/// The models whose uncertainty is compared (name, whether MC dropout applies): the hybrid, and the pure-ML models
/// that predict the same observations: the control, the LSTM and the transformer (ensembles only).
let uncertaintyCandidates = [
    "hybrid", true
    ModelTable.NoPhysics, false
    "LSTM", false
    "Transformer", false
]

/// The network parts of a run: the models of `tunedModels`, then the ablation variants with `Settings.Ablation`.
let private networks (s: Settings) =
    tunedModels @ (if s.Ablation then ablationParts else [])

/// The parts of a run under `s`, in the order `run` takes them: the physics at every seed, each network at every
/// seed (the ablation's after the table's models), then the uncertainty parts (`CasePart.uncertaintyParts`; none with
/// `CaseUncertainty.off`).
let parts (s: Settings) : Part list =
    CasePart.perSeed ("physics" :: networks s) s.Seeds (CasePart.uncertaintyParts s.Uncertainty uncertaintyCandidates)

/// Runs `f` with `s.Threads` libtorch intra-op threads (the previous count restored afterwards).
let private withThreads (s: Settings) (f: unit -> 'T) : 'T =
    Engine.init ()
    let threads = torch.get_num_threads ()

    if threads = s.Threads then
        f ()
    else
        Engine.useThreads s.Threads

        try
            f ()
        finally
            Engine.useThreads threads

/// The save times of every rollout: 0, `Dt`, …, 12 days (`Dt` must divide the horizon).
let private stepTimesOf (s: Settings) : float[] =
    let steps = int (round (Truth.Horizon / s.Dt))

    if abs (float steps * s.Dt - Truth.Horizon) > 1e-9 then
        raise (HybridException $"Tumour: Dt = {s.Dt} must divide the horizon {Truth.Horizon} days.")

    Array.init (steps + 1) (fun i -> float i * s.Dt)

/// The truths this process computed, by (Dt, libtorch threads).
let private truthCache =
    Collections.Concurrent.ConcurrentDictionary<float * int, torch.Tensor * torch.Tensor * torch.Tensor * torch.Tensor>()

/// The truth (128 cells and RK4 at Δt = 0.02, restricted to the models' cells: no inverse crime) of the training,
/// in-domain, out-of-domain and all test schedules at `stepTimes`, [steps + 1; B; cells] each; computed once per
/// process and time step (deterministic), outside any dispose scope.
let private truths (s: Settings) (stepTimes: float[]) =
    truthCache.GetOrAdd(
        (s.Dt, s.Threads),
        fun _ ->
            use _ = torch.NewDisposeScope()

            let truthOf schedules =
                (restrictedTruth Truth.FineCells Truth.Scheme Truth.FineDt schedules stepTimes).DetachFromDisposeScope()

            truthOf training, truthOf inDomain, truthOf outOfDomain, truthOf (Array.append inDomain outOfDomain)
    )

/// The largest concentration at the vessel of `schedules` on the step grid.
let private maxConcentration (stepTimes: float[]) (schedules: Schedule[]) =
    schedules
    |> Array.map (fun sch -> stepTimes |> Array.map (fun t -> concentration sch t 0.0) |> Array.max)
    |> Array.max

/// Concentrations of the kill curves: 41 from 0 to the largest out-of-domain c.
let private killConcentrationsOf (stepTimes: float[]) =
    let oodMaxConcentration = maxConcentration stepTimes outOfDomain
    Array.init 41 (fun i -> oodMaxConcentration * float i / 40.0)

/// Mean u over the domain of a trajectory [times; B; cells] at `times`: (day, mean u) per schedule.
let private burden (times: float[]) (trajectory: torch.Tensor) =
    use _ = torch.no_grad ()
    let mean = trajectory.mean ([| 2L |]) // [times; B]
    Array.init (int mean.shape[1]) (fun b -> Array.zip times (mean.select(1L, int64 b).data<float>().ToArray()))

/// A model's result from its one-seed runs (a part's each, in seed order): the means over the seeds, the per-seed
/// values and parameters in seed order, the first seed's name, description, epochs, kill and burden curves.
let private overRuns (runs: ModelResult[]) : ModelResult =
    let seeds (f: ModelResult -> float[]) = runs |> Array.collect f
    let mean f = Array.average (seeds f)

    {
        runs[0] with
            InDomainMse = mean (fun r -> r.SeedInDomainMse)
            SeedInDomainMse = seeds (fun r -> r.SeedInDomainMse)
            OutOfDomainMse = mean (fun r -> r.SeedOutOfDomainMse)
            TrainMse = mean (fun r -> [| r.TrainMse |])
            ValidationMse = mean (fun r -> [| r.ValidationMse |])
            ResidualNorm = mean (fun r -> [| r.ResidualNorm |])
            TrainSeconds = mean (fun r -> [| r.TrainSeconds |])
            InferenceSeconds = mean (fun r -> [| r.InferenceSeconds |])
            SeedOutOfDomainMse = seeds (fun r -> r.SeedOutOfDomainMse)
            Parameters =
                runs[0].Parameters
                |> Array.mapi (fun j (n, _) -> n, runs |> Array.collect (fun r -> snd r.Parameters[j]))
    }

/// The inputs of the physics fit of a seed: the settings with every field the fit does not read reset, and the seed.
let private fitKey (s: Settings) (seed: int) =
    {
        s with
            HybridEpochs = 0
            HybridRate = 0.0
            Width = 0
            Seeds = []
            SequenceIterations = 0
            PinnIterations = 0
            Uncertainty = CaseUncertainty.off
            Ablation = false
            Tuned = Tuned.none
    },
    seed

/// The physics fits this process made: the fitted D, r, k and the fit's wall time (s) by `fitKey`.
let private physicsFits =
    Collections.Concurrent.ConcurrentDictionary<Settings * int, float * float * float * float>()

/// The inputs of the hybrid of a seed (as the PINN uses its D, r): the settings with every field the hybrid does
/// not read reset (its own tuned values kept), and the seed.
let private hybridKey (s: Settings) (seed: int) =
    {
        s with
            Seeds = []
            SequenceIterations = 0
            PinnIterations = 0
            Uncertainty = CaseUncertainty.off
            Ablation = false
            Tuned = s.Tuned |> Map.filter (fun key _ -> key = "hybrid")
    },
    seed

/// The hybrids this process trained: their learned D, r by `hybridKey`.
let private hybridFits =
    Collections.Concurrent.ConcurrentDictionary<Settings * int, float * float>()

/// The case's name in rows.
[<Literal>]
let private Case = "tumour"

/// A part's result with its numbers as rows at the part's seed: each model's (`PartRows.modelRows`: the out-of-domain MSE as
/// the "test" "mse", the residual norm as the physics residual, each parameter's one value), the uncertainty
/// experiment's (`UncertaintyRows`), each model's "in-domain" "mse", then its "validation" "mse".
let private withRows (part: Part) (r: PartResult) : PartResult =
    let numbers (m: ModelResult) : Hybrid.Models.Tasks.PartRows.ModelNumbers = {
        Name = m.Name
        TestMse = m.OutOfDomainMse
        TrainMse = m.TrainMse
        TrainSeconds = m.TrainSeconds
        InferenceSeconds = m.InferenceSeconds
        Epochs = m.Epochs
        PhysicsResidual = m.ResidualNorm
        Parameters = m.Parameters |> Array.map (fun (n, vs) -> n, Array.exactlyOne vs)
        SplitMse = [| "in-domain", m.InDomainMse; "validation", m.ValidationMse |]
    }

    Hybrid.Models.Tasks.PartRows.withRows Case part numbers r

/// Runs one part of the case (any part, in any order or process; see `Part`) with `s.Threads` libtorch threads,
/// from TorchSharp's global generator seeded with the part's seed; its numbers leave it as rows (`withRows`). An
/// unknown part raises a `HybridException` that names the parts.
let rec runPart (s: Settings) (part: Part) : PartResult =
    CasePart.checkKnown "Tumour" ("physics" :: networks s @ CasePart.uncertaintyModels uncertaintyCandidates) part

    withThreads s (fun () ->
        Engine.seed part.Seed
        partWith s part)
    |> withRows part

and private partWith (s: Settings) (part: Part) : PartResult =
    use outer = torch.NewDisposeScope()
    let stepTimes = stepTimesOf s

    let observed =
        Truth.ObservationTimes
        |> Array.map (fun t -> int64 (round (t / s.Dt)))
        |> fun i -> torch.tensor i

    let options = {
        Rollout.defaults with
            Scheme = s.Scheme
            Dt = s.Dt
            SaveTimes = stepTimes
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    let drug = Drug(Grid.ofDomain grid)
    let forcings = Map [ "c", drug.At ]

    let compile (m: Model) (modules: Map<string, torch.nn.Module<torch.Tensor, torch.Tensor>>) =
        Compiler.compile
            {
                Compiler.defaults with
                    Forcings = forcings
                    Modules = modules
            }
            m

    /// The whole trajectory [steps + 1; B; cells] of `sim` on `schedules`.
    let simulate (sim: Simulator) (schedules: Schedule[]) =
        drug.Use schedules
        sim.Simulate(sim.Initial schedules.Length, options).Values[0]

    let atObservations (trajectory: torch.Tensor) = trajectory.index_select (0L, observed)

    let truthSim = compile truthModel Map.empty
    let testSchedules = Array.append inDomain outOfDomain

    let truthTrain, truthIn, truthOut, _ = truths s stepTimes

    /// RMS residual under the true equation of a trajectory of the test schedules.
    let residualNorm (trajectory: torch.Tensor) =
        use _ = torch.no_grad ()
        drug.Use testSchedules

        let result =
            truthSim.Residual(ResidualForm.Consistent s.Scheme, stepTimes, [| trajectory |])

        result.Norms[0].ToDouble()

    let killConcentrations = killConcentrationsOf stepTimes

    let burdenTimes = Array.append [| 0.0 |] Truth.ObservationTimes

    /// MSE of predictions at the observation times [times; B; cells] against a whole truth trajectory.
    let error (predicted: torch.Tensor) (truth: torch.Tensor) =
        use _ = torch.no_grad ()
        (square (predicted - atObservations truth)).mean().ToDouble()

    /// Mean squared misfit of `sim` on the training schedules against `data` (the kept observation times).
    let dataLoss (data: torch.Tensor) (sim: Simulator) =
        Loss.mse ((atObservations (simulate sim training)).narrow (0L, 0L, data.shape[0])) data

    let centres = drug.Centres
    let cells = int64 centres.Length
    let fitTimes, heldTimes = validationTimes s

    // The MSE of predictions at every observation time of the training schedules [6; 3; cells] against the held-out
    // noisy observations [heldTimes; 3; cells] of the validation times (NaN without them).
    let validationOf (trainAtObservations: torch.Tensor) (held: torch.Tensor option) =
        match held with
        | Some h ->
            use _ = torch.no_grad ()
            (square (trainAtObservations.narrow (0L, int64 fitTimes, int64 heldTimes) .- h)).mean().ToDouble()
        | None -> nan

    // Early stopping on `score` (the case's rule; none without validation times).
    let checkOf (held: torch.Tensor option) (score: unit -> float) : EarlyStopping.Check option =
        held
        |> Option.map (fun _ -> {
            Score = score
            Rule = s.EarlyStopping
        })

    // The validation MSE of a simulator (its rollout of the training schedules).
    let simulatorValidation (sim: Simulator) (held: torch.Tensor option) () =
        use _ = torch.no_grad ()
        validationOf (atObservations (simulate sim training)) held

    // The tuned (or default) width and learning rate of a network model.
    let widthOf key fallback = Tuned.width s.Tuned key fallback

    let rateOf key fallback =
        Tuned.value s.Tuned key Tuned.LearningRate fallback

    /// Scores predictions: test [times; 5; cells] and train [times; 3; cells] at the observation times (the train
    /// ones' validation times against `held`).
    let scored
        (held: torch.Tensor option)
        (testAtObservations: torch.Tensor)
        (trainAtObservations: torch.Tensor)
        (residual: float)
        (trainSeconds: float)
        (inferenceSeconds: float)
        (parameters: (string * float)[])
        (kill: float[])
        (burden: (float * float)[][])
        =
        let nIn = int64 inDomain.Length

        {
            InDomain = error (testAtObservations.narrow (1L, 0L, nIn)) truthIn
            OutOfDomain = error (testAtObservations.narrow (1L, nIn, int64 outOfDomain.Length)) truthOut
            Train = error trainAtObservations truthTrain
            Validation = validationOf trainAtObservations held
            Residual = residual
            TrainSeconds = trainSeconds
            InferenceSeconds = inferenceSeconds
            Parameters = parameters
            Kill = kill
            Burden = burden
        }

    /// Scores whole trajectories on the step grid (test [steps + 1; 5; cells], train [steps + 1; 3; cells]).
    let scoreTrajectories
        held
        (test: torch.Tensor)
        (train: torch.Tensor)
        trainSeconds
        inferenceSeconds
        parameters
        kill
        =
        use _ = torch.no_grad ()
        let nIn = int64 inDomain.Length

        scored
            held
            (atObservations test)
            (atObservations train)
            (residualNorm test)
            trainSeconds
            inferenceSeconds
            parameters
            kill
            (burden stepTimes (test.narrow (1L, nIn, int64 outOfDomain.Length)))

    let score held (sim: Simulator) (kill: float[]) (trainSeconds: float) =
        use _ = torch.no_grad ()
        let watch = Stopwatch.StartNew()
        let test = simulate sim testSchedules
        let inferenceSeconds = watch.Elapsed.TotalSeconds
        let parameters = sim.Parameters |> Array.map (fun p -> p.Name, p.Get())
        scoreTrajectories held test (simulate sim training) trainSeconds inferenceSeconds parameters kill

    /// Mean square residual of a trajectory of the training schedules [steps + 1; 3; cells] under `physics` (the
    /// consistent form of the case's scheme on the step grid), differentiable in the trajectory.
    let trainingResidual (physics: Simulator) (trajectory: torch.Tensor) =
        drug.Use training

        let result =
            physics.Residual(ResidualForm.Consistent s.Scheme, stepTimes, [| trajectory |])

        (square result.Values[0]).mean ()

    /// Trains `sim` on `data` with `CaseTraining.joint` for `epochs` epochs from `seed`: Adam on the data loss with
    /// the groups θ (`theta`, omitted when empty) at `thetaRate` and φ (the parameters of `closure`) at `phiRate`,
    /// plus λ (`lambda`) × `trainingResidual physics` of the rollout where `physics` is given and λ > 0, stopping
    /// early on the validation times (`held`; none: every epoch). The training wall time (s).
    let trainOnWith
        (data: torch.Tensor)
        held
        thetaRate
        phiRate
        lambda
        (physics: Simulator option)
        (sim: Simulator)
        theta
        (closure: torch.nn.Module)
        seed
        epochs
        =
        let fit =
            CaseTraining.joint
                {
                    CaseTraining.hybridDefaults theta closure epochs seed with
                        ThetaRate = thetaRate
                        PhiRate = phiRate
                        Lambda = lambda
                        Stopping = checkOf held (simulatorValidation sim held)
                }
                (fun ctx ->
                    match physics with
                    | Some p when ctx.Lambda > 0.0 ->
                        let path = simulate sim training

                        [
                            "data", Loss.mse ((atObservations path).narrow (0L, 0L, data.shape[0])) data
                            "physics residual", ctx.Lambda .* trainingResidual p path
                        ]
                    | _ -> [ "data", dataLoss data sim ])

        fit.WallTime.TotalSeconds

    /// `trainOnWith` with θ and φ at one rate and no physics-residual term (the table's models).
    let trainOn (data: torch.Tensor) held rate (sim: Simulator) theta (closure: torch.nn.Module) seed epochs =
        trainOnWith data held rate rate (LambdaSchedule.Constant 0.0) None sim theta closure seed epochs

    let hybridWidth, hybridRate = widthOf "hybrid" s.Width, rateOf "hybrid" s.HybridRate

    let controlWidth, controlRate =
        widthOf ModelTable.NoPhysics s.Width, rateOf ModelTable.NoPhysics s.HybridRate

    /// The hybrid (`Examples.tumour`, kill = N(u, c) − N(u, 0)) trained on `data` from D = d, r = r at the hybrid's
    /// width, θ (D, r) at `thetaRate` and φ at `phiRate`, plus λ × its residual under `physics` (`trainOnWith`),
    /// stopping early on `held`: the simulator, its kill module, the network and the training wall time (s).
    let trainHybridWith
        thetaRate
        phiRate
        lambda
        physics
        (data: torch.Tensor)
        held
        (d: float)
        (r: float)
        (seed: int)
        (dropout: float)
        (epochs: int)
        =
        let net = new Mlp("kill", 2, 1, hybridWidth, 2, dropout = dropout, dtype = f64)
        CaseTraining.initialise net seed true
        let kill = new KillNetwork(net)

        let sim =
            compile hybridModel (Map [ "kill", (kill :> torch.nn.Module<torch.Tensor, torch.Tensor>) ])

        (sim.Param "D").Set d
        (sim.Param "r").Set r

        let seconds =
            trainOnWith
                data
                held
                thetaRate
                phiRate
                lambda
                physics
                sim
                [ (sim.Param "D").Raw; (sim.Param "r").Raw ]
                (kill :> torch.nn.Module)
                seed
                epochs

        sim, kill, net, seconds

    /// The table's hybrid: `trainHybridWith` at the hybrid's rate for θ and φ, λ = 0.
    let trainHybrid data held d r seed dropout epochs =
        trainHybridWith hybridRate hybridRate (LambdaSchedule.Constant 0.0) None data held d r seed dropout epochs

    /// The "same network, no physics" control (`neuralOdeModel`): the hybrid's network N (same seed and zero output
    /// layer; its own tuned width and rate where tuned, else the hybrid's defaults) as the whole right-hand side,
    /// trained like the hybrid (`trainOn`, φ alone): the simulator, the network and the training wall time (s).
    let trainNoPhysics (data: torch.Tensor) held (seed: int) (epochs: int) =
        let net = new Mlp("kill", 2, 1, controlWidth, 2, dtype = f64)
        CaseTraining.initialise net seed true

        let sim =
            compile neuralOdeModel (Map [ "N", (net :> torch.nn.Module<torch.Tensor, torch.Tensor>) ])

        let seconds =
            trainOn data held controlRate sim [] (net :> torch.nn.Module) seed epochs

        net.eval () |> ignore
        sim, net, seconds

    // The sequence models' view of a schedule: the known u(0, x) and, per observation step, the mean concentration
    // at the vessel over the step (÷ 2 to order one); row 0 (before the first step) is unused by the forecaster.
    let initial =
        use _ = torch.no_grad ()
        truthTrain[0L, 0L].data<float>().ToArray()

    let drugSteps (schedule: Schedule) =
        burdenTimes
        |> Array.mapi (fun k t ->
            if k = 0 then
                [| 0.0 |]
            else
                let t0 = burdenTimes[k - 1]
                [| (exposure schedule t - exposure schedule t0) / (t - t0) / 2.0 |])

    let observationCount = Truth.ObservationTimes.Length

    /// Free forecasts of every observation time of `schedules` from u(0, x): [times; B; cells].
    let forecastAll (m: SequenceModels.Trained) (schedules: Schedule[]) =
        let paths =
            schedules
            |> Array.map (fun schedule -> SequenceModels.forecast m [| initial |] (drugSteps schedule) observationCount)

        let values =
            Array.init observationCount (fun i -> paths |> Array.collect (fun p -> p[i]))
            |> Array.concat

        torch.tensor(values, dtype = f64).reshape (int64 observationCount, int64 schedules.Length, cells)

    let sequenceTrained (data: torch.Tensor) held seed architecture iterations =
        let kept = int data.shape[0]
        let key = SequenceModels.name architecture

        let records =
            training
            |> Array.mapi (fun b _ ->
                Array.append [| initial |] (Array.init kept (fun i -> data[int64 i, int64 b].data<float>().ToArray())))

        let exogenous =
            training |> Array.map (fun schedule -> (drugSteps schedule)[0..kept])

        SequenceModels.fitForecasterWith
            (held
             |> Option.map (fun _ -> {
                 SequenceModels.Validation.Score = fun m -> validationOf (forecastAll m training) held
                 SequenceModels.Validation.Rule = s.EarlyStopping
             }))
            {
                SequenceModels.defaults architecture with
                    Hidden = widthOf key 32
                    LearningRate = rateOf key 1e-2
                    Window = observationCount
                    Iterations = iterations
                    Seed = seed
            }
            records
            exogenous

    let sequenceModel (data: torch.Tensor) held seed architecture =
        let m = sequenceTrained data held seed architecture s.SequenceIterations

        let watch = Stopwatch.StartNew()
        let test = forecastAll m testSchedules
        let inferenceSeconds = watch.Elapsed.TotalSeconds

        let withInitial (t: torch.Tensor) =
            torch.cat ([| (torch.tensor (initial, dtype = f64)).expand (1L, t.shape[1], cells); t |], 0L)

        scored
            held
            test
            (forecastAll m training)
            nan
            m.Seconds
            inferenceSeconds
            [| "network weights", float (Neural.parameterCount m.Net) |]
            [||]
            (burden burdenTimes (withInitial (test.narrow (1L, int64 inDomain.Length, int64 outOfDomain.Length))))

    // The PINN's inputs: (t, x, A(t)) with A the exposure at the vessel.
    let point (schedule: Schedule) (t: float) (x: float) = [| t; x; exposure schedule t |]

    // Collocation: every day, every second cell, all eight schedules (1,664 points; denser grids cost more than
    // the rest of the case together).
    let collocation = [|
        for schedule in Array.append training testSchedules do
            for day in 0..12 do
                for j in 0..2 .. centres.Length - 1 -> schedule, float day, centres[j]
    |]

    let collocationTensor (f: Schedule * float * float -> float) =
        torch.tensor(collocation |> Array.map f, dtype = f64).reshape (-1L, 1L)

    let vessel =
        collocationTensor (fun (schedule, t, _) -> concentration schedule t 0.0)

    let local = collocationTensor (fun (schedule, t, x) -> concentration schedule t x)

    /// The PINN's values on the step grid for `schedules`: [steps + 1; B; cells].
    let pinnTrajectory (m: Pinn.Trained) (schedules: Schedule[]) =
        let points = [|
            for t in stepTimes do
                for schedule in schedules do
                    for x in centres -> point schedule t x
        |]

        let values = m.Predict points |> Array.map (fun row -> row[0])
        torch.tensor(values, dtype = f64).reshape (int64 stepTimes.Length, int64 schedules.Length, cells)

    // The PINN's physics is the known part only: diffusion and logistic growth with D, r (the hybrid's of the same
    // seed, learned jointly with its kill), plus a kill c·κ(t, x, A) with κ the network's second output, learned
    // like u: no kill law is imposed, only "no drug, no kill" (the kill vanishes with c).
    let pinnModel (data: torch.Tensor) held seed (d: float) (r: float) =
        let kept = int data.shape[0]

        let observations = [|
            for b, schedule in Array.indexed training do
                for i in 0 .. kept - 1 do
                    let row = data[int64 i, int64 b].data<float>().ToArray()

                    for j, x in Array.indexed centres -> point schedule Truth.ObservationTimes[i] x, [| row[j]; nan |]

            for j, x in Array.indexed centres -> [| 0.0; x; 0.0 |], [| initial[j]; nan |]
        |]

        let problem = {
            Pinn.Inputs = Array.map fst observations
            Pinn.Targets = Array.map snd observations
            Pinn.Collocation = collocation |> Array.map (fun (schedule, t, x) -> point schedule t x)
            Pinn.InputShift = [| 6.0; 5.0; 5.0 |]
            Pinn.InputScale = [| 6.0; 5.0; 5.0 |]
            Pinn.OutputShift = [| 0.5; 0.0 |]
            Pinn.OutputScale = [| 0.5; 1.0 |]
            Pinn.Residual =
                fun f ->
                    let u = f.U.narrow (1L, 0L, 1L)
                    let kappa = f.U.narrow (1L, 1L, 1L)
                    let dudt = f.D u 0 .+ f.D u 2 .* vessel
                    let uxx = f.D (f.D u 1) 1
                    dudt .- d .* uxx .- r .* u .* (1.0 .- u) .+ kappa .* local .* u
        }

        // The validation times of the training schedules, [heldTimes; 3; cells] as the held-out observations.
        let validationPoints = [|
            for i in fitTimes .. fitTimes + heldTimes - 1 do
                for schedule in training do
                    for x in centres -> point schedule Truth.ObservationTimes[i] x
        |]

        let validate (h: torch.Tensor) (predict: float[][] -> float[][]) =
            let values = predict validationPoints |> Array.map (fun row -> row[0])
            use _ = torch.no_grad ()

            let predicted =
                torch.tensor(values, dtype = f64).reshape (int64 heldTimes, int64 training.Length, cells)

            (square (predicted .- h)).mean().ToDouble()

        let m =
            Pinn.fitValidated
                (held |> Option.map validate)
                s.EarlyStopping
                {
                    Pinn.defaults with
                        Iterations = s.PinnIterations
                        Seed = seed
                        Width = widthOf "PINN" Pinn.defaults.Width
                        LearningRate = rateOf "PINN" Pinn.defaults.LearningRate
                }
                problem

        let watch = Stopwatch.StartNew()
        let test = pinnTrajectory m testSchedules
        let inferenceSeconds = watch.Elapsed.TotalSeconds

        scoreTrajectories held test (pinnTrajectory m training) m.Seconds inferenceSeconds [|
            "network weights", float (Neural.parameterCount m.Net)
        |] [||]

    // The seed's training data (the kept observation times, the noise of `noiseSeed`) and its validation data.
    let dataOf (seed: int) =
        use _ = torch.no_grad ()
        use generator = new torch.Generator(uint64 (noiseSeed s seed))

        let noise =
            torch.randn (truthTrain.shape, dtype = f64, generator = generator) .* s.Noise

        // The one place the training data is selected: the first observation times only (the noise is drawn for all
        // six, so a smaller fraction keeps the same values at the times it keeps), the last of them held out as
        // validation data.
        let observations = atObservations (truthTrain .+ noise)

        observations.narrow(0L, 0L, int64 fitTimes).DetachFromDisposeScope(),
        (if heldTimes = 0 then
             None
         else
             Some(observations.narrow(0L, int64 fitTimes, int64 heldTimes).DetachFromDisposeScope()))

    let linearKill (sim: Simulator) =
        let k = (sim.Param "k").Get()
        killConcentrations |> Array.map (fun c -> k * c)

    // Fitted: D, r, k by Adam from the prior values on the seed's fit times: the simulator and the fit's wall time
    // (s), recorded in `physicsFits` for the later parts of this process that start from it.
    let fitPhysics (seed: int) (data: torch.Tensor) =
        let fittedSim = compile scientificModel Map.empty

        let fit =
            Trainer.train
                {
                    Trainer.defaults with
                        Epochs = s.PhysicsEpochs
                        Seed = seed
                        Groups = [| Trainer.group "theta" s.PhysicsRate (fittedSim.Trainable()) |]
                }
                {
                    Loss =
                        fun _ ->
                            let l = dataLoss data fittedSim
                            { Total = l; Parts = [| "data", l |] }
                    Validation = None
                }

        let value (n: string) = (fittedSim.Param n).Get()
        physicsFits[fitKey s seed] <- (value "D", value "r", value "k", fit.WallTime.TotalSeconds)
        fittedSim, fit.WallTime.TotalSeconds

    // The seed's fitted D, r, k and the fit's wall time: this process's fit with the same inputs, or a new one.
    let fittedOf (seed: int) (data: torch.Tensor) =
        match physicsFits.TryGetValue(fitKey s seed) with
        | true, fit -> fit
        | _ ->
            fitPhysics seed data |> ignore
            physicsFits[fitKey s seed]

    // Hybrid: Examples.tumour with kill = N(u, c) − N(u, 0), from the seed's fitted D and r: the simulator, its kill
    // module and the training wall time with the fit's; its D, r recorded in `hybridFits` (the PINN uses them).
    let hybridOf (seed: int) (data: torch.Tensor) held =
        let fittedD, fittedR, _, fitSeconds = fittedOf seed data

        let hybridSim, kill, _, hybridSeconds =
            trainHybrid data held fittedD fittedR seed 0.0 s.HybridEpochs

        hybridFits[hybridKey s seed] <- ((hybridSim.Param "D").Get(), (hybridSim.Param "r").Get())
        hybridSim, kill, fitSeconds + hybridSeconds

    let lstmWidth, lstmRate = widthOf "LSTM" 32, rateOf "LSTM" 1e-2

    let transformerWidth, transformerRate =
        widthOf "Transformer" 32, rateOf "Transformer" 1e-2

    let pinnWidth, pinnRate =
        widthOf "PINN" Pinn.defaults.Width, rateOf "PINN" Pinn.defaults.LearningRate

    // Key, name, description and epochs (the budget; early stopping may end sooner) of every row, in table order.
    let rows = [|
        "prior",
        "prior (log-kill, fixed prior values)",
        "scientific model, kill = k c (log-kill hypothesis) with prior values D 0.06, r 0.35 /day, k 0.6 /day; nothing fitted",
        0
        "fitted",
        "fitted (log-kill, D r k fitted)",
        "scientific model, kill = k c, D, r and k fitted to the training schedules (Adam)",
        s.PhysicsEpochs
        "hybrid",
        "hybrid (D r + MLP kill)",
        $"Examples.tumour: D, r learnable, kill(u, c) = N(u, c) - N(u, 0) with N an MLP ({hybridWidth} units; no drug, no kill), trained jointly from the fitted D, r (Adam {hybridRate:G3})",
        s.PhysicsEpochs + s.HybridEpochs
        ModelTable.NoPhysics,
        ModelTable.NoPhysics,
        $"du/dt = N(u, c) in every cell: the hybrid's network form ({controlWidth} units, same inputs, seeds, zero output layer, epochs; Adam {controlRate:G3}) with no diffusion, growth or kill form; no physics",
        s.HybridEpochs
        "LSTM",
        "LSTM",
        $"pure data-driven: LSTM forecaster ({lstmWidth} units, Adam {lstmRate:G3}) of the 32-cell profile at the observation times, mean vessel concentration per 2-day step as exogenous input, free forecast from u(0, x); no physics",
        s.SequenceIterations
        "Transformer",
        "Transformer",
        $"pure data-driven: transformer forecaster ({transformerWidth} units, Adam {transformerRate:G3}) of the 32-cell profile at the observation times, mean vessel concentration per 2-day step as exogenous input, free forecast from u(0, x); no physics",
        s.SequenceIterations
        "PINN",
        "PINN",
        $"MLP (u, kappa)(t, x, A) ({pinnWidth} units, Adam {pinnRate:G3}; A: drug exposure at the vessel) on the training observations and u(0, x) + residual of the known physics (diffusion, logistic growth with the hybrid's D, r) with a learned kill c kappa, on all eight schedules",
        s.PinnIterations
    |]

    /// A model's result from its scores per seed.
    let summarise name description epochs (runs: Scores[]) : ModelResult =
        let mean f = runs |> Array.averageBy f

        {
            Name = name
            Description = description
            InDomainMse = mean (fun r -> r.InDomain)
            SeedInDomainMse = runs |> Array.map (fun r -> r.InDomain)
            OutOfDomainMse = mean (fun r -> r.OutOfDomain)
            TrainMse = mean (fun r -> r.Train)
            ValidationMse = mean (fun r -> r.Validation)
            ResidualNorm = mean (fun r -> r.Residual)
            TrainSeconds = mean (fun r -> r.TrainSeconds)
            InferenceSeconds = mean (fun r -> r.InferenceSeconds)
            Epochs = epochs
            SeedOutOfDomainMse = runs |> Array.map (fun r -> r.OutOfDomain)
            Parameters =
                runs[0].Parameters
                |> Array.mapi (fun j (n, _) -> n, runs |> Array.map (fun r -> snd r.Parameters[j]))
            Kill = runs[0].Kill
            Burden = runs[0].Burden
        }

    // A part's one model: its scores under the row of `key` (`rows`).
    let resultOf (key: string) (scores: Scores) : ModelResult =
        let _, name, description, epochs = rows |> Array.find (fun (k, _, _, _) -> k = key)
        summarise name description epochs [| scores |]

    // The ablation (issue #15, 2 b–d): one variant at one of the hybrid's seeds, from the seed's data, validation
    // times and fitted start, with the hybrid's width, rate, epochs and early stopping, scored like the table's rows
    // (out of domain in the report's table).
    let ablationOf (variant: string) (seed: int) (data: torch.Tensor) held =
        let d, r, k, physicsSeconds = fittedOf seed data

        // The fitted log-kill model of this seed (fixed): the λ schedule's physics.
        let fitted () =
            let sim = compile scientificModel Map.empty
            (sim.Param "D").Set d
            (sim.Param "r").Set r
            (sim.Param "k").Set k
            sim

        let hybridVariant thetaRate lambda physics =
            let sim, _, _, seconds =
                trainHybridWith thetaRate hybridRate lambda physics data held d r seed 0.0 s.HybridEpochs

            score held sim [||] (physicsSeconds + seconds)

        // α-fusion: F the fitted log-kill model (D, r, k trainable at the hybrid's rate), G the no-physics
        // neural ODE with the hybrid's network size (seed, zero output layer), both rolled out by the
        // compiled simulators from u(0, x); trained end to end on the hybrid's data loss and budget.
        let fused mode =
            let physics = fitted ()
            let net = new Mlp("kill", 2, 1, hybridWidth, 2, dtype = f64)
            CaseTraining.initialise net seed true

            let neural =
                compile neuralOdeModel (Map [ "N", (net :> torch.nn.Module<torch.Tensor, torch.Tensor>) ])

            let fusion = CaseTraining.fusionLayer mode seed

            let predict (schedules: Schedule[]) =
                drug.Use schedules
                fusedTrajectory fusion physics neural schedules.Length options

            let validate () =
                use _ = torch.no_grad ()
                validationOf (atObservations (predict training)) held

            let fit =
                CaseTraining.joint
                    {
                        CaseTraining.hybridDefaults
                            [ for n in [ "D"; "r"; "k" ] -> (physics.Param n).Raw ]
                            net
                            s.HybridEpochs
                            seed with
                            ThetaRate = hybridRate
                            PhiRate = hybridRate
                            Fusion = Some fusion
                            FusionRate = CaseTraining.fusionRate mode
                            Stopping = checkOf held validate
                    }
                    (fun _ ->
                        let path = atObservations (predict training)
                        [ "data", Loss.mse (path.narrow (0L, 0L, data.shape[0])) data ])

            net.eval () |> ignore
            fusion.eval () |> ignore
            use _ = torch.no_grad ()
            let watch = Stopwatch.StartNew()
            let test = predict testSchedules
            let inferenceSeconds = watch.Elapsed.TotalSeconds
            // The learned α, or the gate's mean over the training schedules' trajectories.
            let train = predict training
            let alpha = fusion.Alpha

            scoreTrajectories
                held
                test
                train
                (physicsSeconds + fit.WallTime.TotalSeconds)
                inferenceSeconds
                (Array.append (physics.Parameters |> Array.map (fun p -> p.Name, p.Get())) [|
                    CaseTraining.fusionParameter mode alpha
                    "network weights", float (Neural.parameterCount net + Neural.parameterCount fusion)
                |])
                [||]

        let descriptions = [|
            $"the hybrid with separate Adam rates: θ (D, r) {s.PhysicsRate:G3} (the physics fit's), φ {hybridRate:G3} (the table's hybrid: {hybridRate:G3} for both)"
            $"the hybrid plus λ × the mean square residual of its training trajectories (every step, every cell; 1/day²) under the fitted log-kill model (kill = k c with the seed's fitted D, r, k: the modeller's scientific model, not the hidden Emax truth), λ from 0 to 1 over the first half of the epochs (the table's hybrid: λ = 0)"
            $"ŷ = α F + (1 − α) G: F the fitted log-kill model (D, r, k trainable, Adam {hybridRate:G3}), G the no-physics neural ODE du/dt = N(u, c) with the hybrid's network ({hybridWidth} units, seed, zero output layer; Adam {hybridRate:G3}), one learned α from 0.5 (Adam {CaseTraining.fusionRate (FusionMode.Scalar 0.5):G3}), end to end on the hybrid's data loss, epochs and early stopping"
            $"ŷ = α(t, F) F + (1 − α) G: as the scalar fusion, α a per-point gate (MLP of t / 12 days and F, {hybridWidth} units, started at 0.5, Adam {CaseTraining.fusionRate (FusionMode.Gate(1, hybridWidth)):G3}); mean gate over the training trajectories"
        |]

        let j = List.findIndex ((=) variant) ablationParts

        let scores =
            match variant with
            | "separate rates" -> hybridVariant s.PhysicsRate (LambdaSchedule.Constant 0.0) None
            | "lambda schedule" ->
                hybridVariant hybridRate (LambdaSchedule.Linear(0.0, 1.0, s.HybridEpochs / 2)) (Some(fitted ()))
            | "fused scalar" -> fused (FusionMode.Scalar 0.5)
            | _ -> fused (FusionMode.Gate(1, hybridWidth))

        summarise AblationTable.names[j] descriptions[j] (s.PhysicsEpochs + s.HybridEpochs) [| scores |]

    // The uncertainty experiment: every network on the first seed's fit times (no early stopping), the hybrid's from
    // its fitted D, r; targets are the held-out noisy observations of the validation times (the first seed's) and a
    // fixed draw of noisy observations of the test schedules; the noise variance is the network's MSE against its
    // training data.
    let uncertaintySplits () =
        let observedAt (truth: torch.Tensor) (seed: int) =
            use _ = torch.no_grad ()
            use generator = new torch.Generator(uint64 seed)
            let target = atObservations truth

            (target
             .+ torch.randn (target.shape, dtype = f64, generator = generator) .* s.Noise)
                .reshape
                -1L

        let _, held = dataOf (List.head s.Seeds)

        [|
            match held with
            | Some h -> CaseUncertainty.Validation, h.reshape -1L
            | None -> ()
            "in domain (unseen timings)", observedAt truthIn 2001
            "out of domain (unseen schedules)", observedAt truthOut 2002
        |]

    // A network's predictions [times; B; cells] of the training and the test schedules at the observation times →
    // the uncertainty splits' predictions and its training MSE.
    let fromPredictions
        (modules: torch.nn.Module[])
        (data: torch.Tensor)
        (predict: Schedule[] -> torch.Tensor)
        : CaseUncertainty.Trained =
        let hasValidation = heldTimes > 0 && (snd (dataOf (List.head s.Seeds))).IsSome

        {
            Modules = modules
            Predict =
                fun () ->
                    use _ = torch.no_grad ()

                    [|
                        if hasValidation then
                            (predict training).narrow(0L, int64 fitTimes, int64 heldTimes).reshape -1L
                        (predict inDomain).reshape -1L
                        (predict outOfDomain).reshape -1L
                    |]
            NoiseVariance =
                use _ = torch.no_grad ()

                for m in modules do
                    m.eval () |> ignore

                (square ((predict training).narrow (0L, 0L, data.shape[0]) .- data)).mean().ToDouble()
        }

    // The hybrid members and MC-dropout network and the control at `Uncertainty.Iterations` (both have
    // `HybridEpochs`), the sequence models at the same fraction of `SequenceIterations`.
    let uncertaintyTrainer (candidate: string) (seed: int) (dropout: float) : CaseUncertainty.Trained =
        let first = List.head s.Seeds
        let data, _ = dataOf first

        let rollout (sim: Simulator) (net: Mlp) =
            fromPredictions [| net |] data (fun schedules ->
                CaseUncertainty.withOneMask net (fun () -> atObservations (simulate sim schedules)))

        match candidate with
        | "hybrid" ->
            let d, r, _, _ = fittedOf first data
            let sim, _, net, _ = trainHybrid data None d r seed dropout s.Uncertainty.Iterations
            rollout sim net
        | "LSTM"
        | "Transformer" ->
            let architecture =
                if candidate = "LSTM" then
                    SequenceModels.Architecture.Lstm
                else
                    SequenceModels.Architecture.Transformer

            let m =
                sequenceTrained
                    data
                    None
                    seed
                    architecture
                    (CaseUncertainty.budget s.Uncertainty s.HybridEpochs s.SequenceIterations)

            fromPredictions [| m.Net |] data (forecastAll m)
        | _ ->
            let sim, net, _ = trainNoPhysics data None seed s.Uncertainty.Iterations
            rollout sim net

    let one (m: ModelResult) : PartResult = {
        CasePart.PartResult.Models = [| m |]
        CasePart.PartResult.Rows = [||]
        CasePart.PartResult.Uncertainty = [||]
    }

    let result =
        match part.Model with
        | CasePart.UncertaintyOf(candidate, dropout) ->
            CasePart.uncertaintyResult
                s.Uncertainty
                (uncertaintySplits ())
                dropout
                part.Seed
                (uncertaintyTrainer candidate)
        | model ->
            let seed = part.Seed
            let data, held = dataOf seed

            match model with
            | "physics" ->
                // Prior: nothing fitted.
                let priorSim = compile scientificModel Map.empty
                let priorResult = score held priorSim (linearKill priorSim) 0.0
                let fittedSim, fitSeconds = fitPhysics seed data

                {
                    CasePart.PartResult.Models = [|
                        resultOf "prior" priorResult
                        resultOf "fitted" (score held fittedSim (linearKill fittedSim) fitSeconds)
                    |]
                    CasePart.PartResult.Rows = [||]
                    CasePart.PartResult.Uncertainty = [||]
                }
            | "hybrid" ->
                let hybridSim, kill, seconds = hybridOf seed data held

                let hybridKill =
                    use _ = torch.no_grad ()
                    let c = torch.tensor (killConcentrations, dtype = f64)
                    let input = torch.stack ([| torch.ones_like c .* 0.5; c |], -1L)
                    (kill.forward input).squeeze(-1L).data<float>().ToArray()

                one (resultOf "hybrid" (score held hybridSim hybridKill seconds))
            | ModelTable.NoPhysics ->
                // The no-physics control: the hybrid's network, seed and epochs on ∂u/∂t = N(u, c) alone.
                let controlSim, _, controlSeconds = trainNoPhysics data held seed s.HybridEpochs
                one (resultOf ModelTable.NoPhysics (score held controlSim [||] controlSeconds))
            // Pure-ML baselines and the PINN, with the seed's data; network seeds = the seed.
            | "LSTM" -> one (resultOf "LSTM" (sequenceModel data held seed SequenceModels.Architecture.Lstm))
            | "Transformer" ->
                one (resultOf "Transformer" (sequenceModel data held seed SequenceModels.Architecture.Transformer))
            | "PINN" ->
                // The same seed's hybrid's D, r: this process's hybrid with the same inputs, or a new one.
                let d, r =
                    match hybridFits.TryGetValue(hybridKey s seed) with
                    | true, dr -> dr
                    | _ ->
                        let hybridSim, _, _ = hybridOf seed data held
                        (hybridSim.Param "D").Get(), (hybridSim.Param "r").Get()

                one (resultOf "PINN" (pinnModel data held seed d r))
            | variant -> one (ablationOf variant seed data held)

    drug.Clear()
    result

/// Builds the outcome from the results of every part of `parts s` (in any order): each model's row over the seeds
/// (`Settings.Seeds`, in that order) from its parts' one-seed rows (means over the seeds, per-seed MSEs and
/// parameters, the first seed's kill and burden curves), and the truth's burden and residual, recomputed. A missing
/// part raises a `HybridException` that names it.
let assemble (s: Settings) (results: (Part * PartResult) list) : Outcome =
    withThreads s (fun () ->
        use _ = torch.NewDisposeScope()

        let resultOf (part: Part) =
            results
            |> List.tryFind (fun (p, _) -> p = part)
            |> Option.map snd
            |> Option.defaultWith (fun () ->
                raise (
                    HybridException
                        $"Tumour: the part {part.Model} (seed {part.Seed}) has no result; run it before assembling the outcome."
                ))

        // The model at `index` of every seed's part `model`, over the seeds.
        let overSeeds (model: string) (index: int) =
            s.Seeds
            |> List.map (fun seed -> (resultOf { Model = model; Seed = seed }).Models[index])
            |> Array.ofList
            |> overRuns

        let stepTimes = stepTimesOf s
        let _, _, truthOut, truthTest = truths s stepTimes

        // The truth's RMS residual under the true equation on the models' grid and scheme.
        let truthResidual =
            use _ = torch.no_grad ()
            let drug = Drug(Grid.ofDomain grid)

            let truthSim =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Forcings = Map [ "c", drug.At ]
                    }
                    truthModel

            drug.Use(Array.append inDomain outOfDomain)

            let norm =
                truthSim.Residual(ResidualForm.Consistent s.Scheme, stepTimes, [| truthTest |]).Norms[0].ToDouble()

            drug.Clear()
            norm

        let killConcentrations = killConcentrationsOf stepTimes

        {
            Settings = s
            TrueParameters = [| "D", Truth.D; "r", Truth.r |]
            KillConcentrations = killConcentrations
            TrueKill = killConcentrations |> Array.map (fun c -> Truth.KMax * c / (Truth.EC50 + c))
            TrainingMaxConcentration = maxConcentration stepTimes training
            BurdenTimes = stepTimes
            TrueBurden = burden stepTimes truthOut |> Array.map (Array.map snd)
            TruthResidualNorm = truthResidual
            Models = [|
                yield overSeeds "physics" 0
                yield overSeeds "physics" 1
                for model in tunedModels -> overSeeds model 0
            |]
            Uncertainty = CasePart.uncertainty s.Uncertainty uncertaintyCandidates resultOf
            Ablation =
                if s.Ablation then
                    ablationParts |> List.map (fun p -> overSeeds p 0) |> Array.ofList
                else
                    [||]
            Rows = CasePart.rowsOf (parts s) resultOf
        })

/// Runs the truth, fits the models for every seed and scores them (with `s.Threads` libtorch threads; see the
/// module's summary): every part of `parts s` in this process, one after another, then `assemble`.
let run (s: Settings) : Outcome =
    parts s |> List.map (fun p -> p, runPart s p) |> assemble s
