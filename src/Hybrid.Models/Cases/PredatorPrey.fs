/// Case study: the Hudson's Bay Company lynx–hare pelt record (Hewitt 1921), 1900–1920, thousands of pelts.
/// Train on 1900–1915, forecast 1916–1920 from the observed 1915 state. Every differential equation below is a DSL
/// model (`lotkaVolterraModel`, `additiveModel`, `interactionModel`) compiled by `Compiler.compile` (domain point,
/// fields H and L) and integrated by `Simulator.Simulate` (RK4, `Substeps` steps a year); every model is trained by
/// `Trainer.train`. Models:
///  - persistence: the 1915 value held for five years (no training);
///  - Lotka–Volterra with prior parameters (α = γ = 1, β = δ = 0.05; the prior means of Carpenter 2018);
///  - Lotka–Volterra with the literature fit (α 0.55, β 0.028, γ 0.80, δ 0.024; Carpenter 2018, fitted to
///    all of 1900–1920, so these parameters have seen the test years: a reference, not a fair baseline);
///  - Lotka–Volterra fitted here (`fitLotkaVolterra`): the four rates and the first training year's state (H0, L0
///    as parameters of its `initial` lines) by maximum likelihood under log-normal errors (MSE of log counts along
///    one trajectory), Adam with a growing horizon (`TrainOptions.Horizon`) then L-BFGS (`Trainer.lbfgs`);
///  - hybrid (universal differential equation): Lotka–Volterra + an MLP correction N(H, L) on both rates,
///    started from the fitted rates with the correction at zero, trained jointly with an L2 penalty on the windowed
///    objective (every training start, rolled out up to `Horizon` years, MSE on pelts / 10; the windows
///    (`Windows`) grow from one year to `Horizon` over the first third of the epochs);
///  - hybrid with a neural interaction: β and δ multiplied by exp N(H, L) (the H·L form kept), same training;
///  - "same network, no physics" control (`neuralOdeModel`, `ModelTable.NoPhysics`): the additive hybrid's equation
///    without the Lotka–Volterra terms, dH/dt = 10·NH(H, L), dL/dt = 10·NL(H, L), with the additive hybrid's network
///    seeds, Adam rate, penalty, windows and iterations (the network starts at zero: du/dt = 0);
///  - pure data-driven: an autoregressive MLP, x(t + 1) = x(t) + N(x(t)), same windows and trainer;
///  - pure data-driven sequence models (`Baselines.SequenceModels`): an LSTM and a transformer forecaster on the
///    1900–1915 record (one-step increments, teacher forcing, `SequenceWindow`-year context), forecasting
///    1916–1920 from the last years of the record;
///  - PINN (`Baselines.Pinn`): an MLP (H, L)(t) fitted to 1900–1915 plus the residual of the compiled Lotka–Volterra
///    model with the parameters fitted here ("LV fitted"), enforced on 1900–1920 (the equation is known in the
///    forecast years).
/// Every model with a network (both hybrids, the control, the autoregressive MLP, the sequence models and the PINN) is trained
/// from `Seeds` network seeds: its test MSE is the mean over them (the spread is reported); its forecast,
/// parameters and train MSE are those of the first seed. The physics fits start from fixed values (no seed).
/// Validation (`Settings.EarlyStopping`): the last 20% of the kept training years (1913–1915 of 1900–1915) are the
/// validation block; every model, the physics fit included, is fitted to the years before them (1900–1912), and every
/// network stops early on its forecast of them from the observed 1912 state (patience a quarter of its epochs, the
/// best epoch's weights restored). Learning rates and widths come from `Settings.Tuned` (`hybrid tune`) where tuned.
/// Ablation (`Settings.Ablation`; `Outcome.Ablation`), over the additive hybrid's seeds with its data and budget: separate
/// θ/φ rates, a λ schedule on the one-year defect under the fitted LV flow, and α-fusion of the LV model with the
/// no-physics neural ODE (`FusedRollout`; a scalar α and a per-point gate).
module Hybrid.Models.Cases.PredatorPrey

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training
open Hybrid.Models.Baselines
open Hybrid.Models.Common
open Hybrid.Models.Tuning

/// Settings of the case. `defaults` for the report, `quick` for tests and CI.
type Settings = {
    /// Adam iterations for the fitted Lotka–Volterra model (before its L-BFGS polish).
    PhysicsIterations: int
    /// Adam iterations for the hybrid (after the physics fit it starts from).
    HybridIterations: int
    /// Adam iterations for the autoregressive MLP.
    DataIterations: int
    /// Years each training window is rolled out (the forecast horizon is 5).
    Horizon: int
    /// RK4 steps per year.
    Substeps: int
    /// Hidden width of the networks (two hidden layers, tanh).
    Width: int
    /// Weight of the L2 penalty on the hybrid's correction (at the training states, scaled units).
    CorrectionPenalty: float
    /// First seed of the network initialisations (each network has its own seeds from it, see `Seeds`).
    Seed: int
    /// Adam iterations (full-batch epochs) of the LSTM and transformer baselines.
    SequenceIterations: int
    /// Context length of the sequence baselines (years).
    SequenceWindow: int
    /// Adam iterations of the PINN.
    PinnIterations: int
    /// Number of seeds every model with a network is trained from (the hybrids, the autoregressive MLP, the LSTM,
    /// transformer and PINN); the mean and spread of the test MSE are reported.
    Seeds: int
    /// Share of the training years every model sees, in (0, 1]: the most recent ⌈f·16⌉ years up to 1915 (see
    /// `selection`); 1 keeps all. The test years never change.
    TrainFraction: float
    /// Which block of years a `TrainFraction` below 1 keeps: 0 the most recent, a seed ≥ 1 a seeded random
    /// contiguous block of as many (`TrainFraction.blockStart`; see `selection`). Forecasts still start from the
    /// observed 1915 state.
    TrainSubset: int
    /// Uncertainty of the additive hybrid (deep ensemble, MC dropout) and of the pure-ML models (deep ensembles:
    /// the control, the LSTM and the transformer); `Iterations` are the hybrid members' iterations, the others get
    /// the same fraction of their own budget (`CaseUncertainty.budget`).
    Uncertainty: CaseUncertainty.Settings
    /// The validation block and early stopping of every network model: the last `Share` of the kept training years
    /// (`Selection.ValidationYears`) are held out, every model (the physics fit too) trains on the years before them,
    /// and every network stops early on its forecast of them from the last training year's observed state.
    EarlyStopping: EarlyStopping.Rule
    /// Hyper-parameters chosen by `hybrid tune` (`tuning/predator-prey.csv`): per model, "learning rate" and
    /// "width"; a model without them uses the defaults (5e-3 and `Width` for the ODE models and the MLP, 1e-2 and 16
    /// for the sequence models, 1e-2 and 32 for the PINN).
    Tuned: Map<string, Map<string, float>>
    /// Adds the ablation (issue #15, 2 b–d; `Outcome.Ablation`), each variant from the additive hybrid's network seeds,
    /// data, windows and budget: separate rates (θ 0.05, φ 5e-3 against the table's 5e-3 for both), a λ schedule on
    /// the physics residual, and α-fusion of the Lotka–Volterra model with the no-physics neural ODE (scalar α,
    /// per-point gate).
    Ablation: bool
}

/// The report settings: 600 / 800 / 1500 Adam iterations, 5-year windows, 10 RK4 steps a year.
let defaults = {
    PhysicsIterations = 600
    HybridIterations = 800
    DataIterations = 1500
    Horizon = 5
    Substeps = 10
    Width = 16
    CorrectionPenalty = 1e-2
    Seed = 7
    // As many as the hybrids' network iterations (equal budget, issue #15 item 3).
    SequenceIterations = 800
    SequenceWindow = 5
    PinnIterations = 2000
    Seeds = 5
    TrainFraction = 1.0
    TrainSubset = 0
    // Members get the quick hybrid budget (250 iterations, not 800) to keep the report's run time modest.
    Uncertainty = {
        CaseUncertainty.defaults with
            Iterations = 250
    }
    Ablation = true
    EarlyStopping = EarlyStopping.defaults
    Tuned = Tuned.none
}

/// Quick settings (`hybrid report --quick`, three seeds; tests cut them to one): 250 / 250 / 500 iterations, 2 RK4 steps a year, no ablation row.
let quick = {
    defaults with
        PhysicsIterations = 250
        HybridIterations = 250
        DataIterations = 500
        Substeps = 2
        SequenceIterations = 250
        PinnIterations = 500
        Seeds = 3
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 50
        }
        Ablation = false
}

/// One model's result.
type ModelResult = {
    /// Short name (table row, CSV key).
    Name: string
    /// What the model is.
    Description: string
    /// Mean squared error on 1916–1920 (both species, thousands of pelts squared).
    TestMse: float
    /// Mean squared error of the `Horizon`-year training windows, 1900–1915 (thousands²); NaN if untrained.
    TrainMse: float
    /// Mean squared error of the forecast of the validation years from the last training year's observed state
    /// (thousands²; what early stopping and tuning score); NaN without a validation block.
    ValidationMse: float
    /// Training wall time in seconds (0 for fixed models; for models run over several seeds, the mean per seed).
    TrainSeconds: float
    /// Wall time of the test forecast, 1916–1920 (s; the first seed's).
    InferenceSeconds: float
    /// Training epochs (Adam iterations; a hybrid's include the physics fit's; 0 for fixed models).
    Epochs: int
    /// Test MSE per seed for the models run over several seeds (`TestMse` is their mean); empty otherwise.
    SeedTestMse: float[]
    /// Physics residual of the forecast: its one-year defect under the fitted Lotka–Volterra flow, x(y + 1) −
    /// Φ(x(y)) from the observed 1915 state through 1920, RMS over the five years and both species (thousands of
    /// pelts; 0 up to round-off for "LV fitted" itself).
    PhysicsResidual: float
    /// Named parameters (physical ones; networks report their size).
    Parameters: (string * float)[]
    /// Forecast for the test years, [year; hare, lynx].
    Forecast: float[][]
}

/// Outcome of `run`.
type Outcome = {
    /// 1900 … 1920.
    Years: int[]
    /// Observed [year; hare, lynx] in thousands of pelts.
    Observed: float[][]
    /// Number of training years (16: 1900–1915); the rest are the test years.
    TrainYears: int
    /// Every model, in the order of the table.
    Models: ModelResult[]
    /// Calibration of the additive hybrid's deep ensemble and MC dropout, and of the pure-ML models' deep ensembles,
    /// on the validation years and 1916–1920, as trained and recalibrated on the validation years (issue #6 e).
    Uncertainty: CaseUncertainty.MethodResult[]
    /// The ablation rows (`AblationTable.names`, over the additive hybrid's seeds; empty without `Settings.Ablation`).
    Ablation: ModelResult[]
    /// Every number of the run as long-format rows, what the report's tables are computed from: every part's rows in
    /// the order of `parts` (each model's metrics and parameters per seed, validation MSEs, the uncertainty
    /// experiment's), each model's physics residual at its first seed as `assemble` computes it.
    Rows: ResultRow[]
}

/// The training data a `TrainFraction` keeps out of the `trainYears` training years.
type Selection = {
    /// Index of the first training year kept (0 = 1900).
    FirstYear: int
    /// Training years kept: ⌈TrainFraction · trainYears⌉ contiguous years, at least 2 (one transition).
    /// The most recent for `TrainSubset` 0, a seeded random block otherwise.
    KeptYears: int
    /// The last years of the kept ones held out as validation data (`EarlyStopping.heldOut` of `KeptYears`, leaving
    /// at least 3 years to train on; 0 for none): every model trains on the `KeptYears − ValidationYears` years before.
    ValidationYears: int
    /// Years each training window is rolled out: `Horizon`, shortened to `KeptYears − ValidationYears − 1` when
    /// fewer years are trained on (two years leave one one-year window).
    WindowYears: int
}

/// ⌈f·n⌉ contiguous years of the `trainYears` training years (at least 2; the most recent for subset 0, a seeded
/// random block otherwise), and the window length they allow.
let internal selection (s: Settings) (trainYears: int) : Selection =
    let kept = TrainFraction.count "Predator–prey" s.TrainFraction 2 trainYears
    let validation = EarlyStopping.heldOut s.EarlyStopping kept 3

    {
        FirstYear = TrainFraction.blockStart "Predator–prey" s.TrainSubset (trainYears - kept) kept trainYears
        KeptYears = kept
        ValidationYears = validation
        WindowYears = min s.Horizon (kept - validation - 1)
    }

/// The record as shipped with the library (data/hudson-bay-lynx-hare.csv): years and [hare, lynx] rows.
let load () : int[] * float[][] =
    let assembly = typeof<Settings>.Assembly

    use stream =
        assembly.GetManifestResourceStream "hudson-bay-lynx-hare.csv"
        |> Option.ofObj
        |> Option.defaultWith (fun () ->
            raise (HybridException "The lynx–hare data set is not embedded in Hybrid.Models (build issue)."))

    use reader = new StreamReader(stream)

    let rows =
        reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
        |> Array.skip 1
        |> Array.map (fun line ->
            let f = line.Trim().Split ','
            let c = Globalization.CultureInfo.InvariantCulture
            int f[0], [| Double.Parse(f[2], c); Double.Parse(f[1], c) |])

    Array.map fst rows, Array.map snd rows

let private f64 = torch.ScalarType.Float64
let private scale = 10.0 // loss and network outputs work in tens of thousands of pelts
let private inputScale = 50.0

/// Lotka–Volterra as a DSL model: dH/dt = αH − βHL, dL/dt = δHL − γL (hares H, lynx L, thousands of pelts, t in
/// years), starting from the prior means (α = γ = 1, β = δ = 0.05); the start state (H0, L0) is a pair of parameters,
/// so the physics fit estimates it with the rates.
let internal lotkaVolterraModel: Model =
    let H, L = sym "H", sym "L"
    let alpha, beta, gamma, delta = sym "alpha", sym "beta", sym "gamma", sym "delta"

    model "lynx_hare_lv" {
        domain point
        field "H"
        field "L"
        param "alpha" (positive 1.0)
        param "beta" (positive 0.05)
        param "gamma" (positive 1.0)
        param "delta" (positive 0.05)
        param "H0" (positive 30.0)
        param "L0" (positive 4.0)
        equation (dt H == alpha * H - beta * H * L)
        equation (dt L == delta * H * L - gamma * L)
        initialValue "H" (sym "H0")
        initialValue "L" (sym "L0")
    }

/// A hybrid of the case: Lotka–Volterra with the closures "NH" and "NL" (the two outputs of one MLP of
/// (H, L) / 50) placed by `hare` and `lynx`, which get (H, L, α, β, γ, δ, NH, NL) and give each species' rate. Its
/// windows start from observed states, so its initial values are unused placeholders.
let private hybridOf (name: string) (hare: Expr list -> Expr) (lynx: Expr list -> Expr) : Model =
    let H, L = sym "H", sym "L"
    let inputs = [ H / inputScale; L / inputScale ]

    let terms = [
        H
        L
        sym "alpha"
        sym "beta"
        sym "gamma"
        sym "delta"
        call "NH" inputs
        call "NL" inputs
    ]

    model name {
        domain point
        field "H"
        field "L"
        param "alpha" (positive 1.0)
        param "beta" (positive 0.05)
        param "gamma" (positive 1.0)
        param "delta" (positive 0.05)
        neural "NH" (named "NH" 2)
        neural "NL" (named "NL" 2)
        equation (dt H == hare terms)
        equation (dt L == lynx terms)
        initialValue "H" 30.0
        initialValue "L" 4.0
    }

/// The additive hybrid: dH/dt = αH − βHL + 10·NH(H, L), dL/dt = δHL − γL + 10·NL(H, L).
let internal additiveModel: Model =
    hybridOf "lynx_hare_additive" (fun x -> x[2] * x[0] - x[3] * x[0] * x[1] + scale * x[6]) (fun x ->
        x[5] * x[0] * x[1] - x[4] * x[1] + scale * x[7])

/// The neural-interaction hybrid: dH/dt = αH − β e^NH HL, dL/dt = δ e^NL HL − γL (the interaction keeps the H·L
/// form: it vanishes with either species and stays positive).
let internal interactionModel: Model =
    hybridOf "lynx_hare_interaction" (fun x -> x[2] * x[0] - x[3] * exp x[6] * x[0] * x[1]) (fun x ->
        x[5] * exp x[7] * x[0] * x[1] - x[4] * x[1])

/// The "same network, no physics" control (`ModelTable.NoPhysics`): the additive hybrid with the Lotka–Volterra
/// terms removed, a neural ODE dH/dt = 10·NH(H, L), dL/dt = 10·NL(H, L) (the same closures of (H, L) / 50).
let internal neuralOdeModel: Model =
    let H, L = sym "H", sym "L"
    let inputs = [ H / inputScale; L / inputScale ]

    model "lynx_hare_neural_ode" {
        domain point
        field "H"
        field "L"
        neural "NH" (named "NH" 2)
        neural "NL" (named "NL" 2)
        equation (dt H == scale * call "NH" inputs)
        equation (dt L == scale * call "NL" inputs)
        initialValue "H" 30.0
        initialValue "L" 4.0
    }

/// One output of a two-output network, as a closure module [..., 2] → [..., 1].
type private Output(net: Mlp, index: int64) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>($"output{index}")
    do this.register_module ("net", net)

    override _.forward(x: torch.Tensor) = (net.forward x).narrow (-1L, index, 1L)

/// `m` compiled with the outputs of `net` (if any) as its closures NH and NL.
let internal compileWith (m: Model) (net: Mlp option) =
    let modules =
        match net with
        | Some n -> Map [ "NH", new Output(n, 0L) :> torch.nn.Module<_, _>; "NL", new Output(n, 1L) ]
        | None -> Map.empty

    Compiler.compile
        {
            Compiler.defaults with
                Modules = modules
        }
        m

/// The Lotka–Volterra rates, in the order of the parameter values the case passes around.
let private rates = [ "alpha"; "beta"; "gamma"; "delta" ]

/// Carpenter's (2018) posterior means of α, β, γ, δ (fitted to 1900–1920), in `rates` order.
let internal literature = [| 0.55; 0.028; 0.80; 0.024 |]

/// Discrete rollout of a one-year map (the autoregressive MLP); returns [years + 1; B; 2].
let private iterate (step: torch.Tensor -> torch.Tensor) (x0: torch.Tensor) (years: int) =
    let states = ResizeArray [ x0 ]
    let mutable x = x0

    for _ in 1..years do
        x <- step x
        states.Add x

    torch.stack (states, 0L)

/// RK4 with `substeps` steps a year, saving every year for `years` years.
let private yearly (substeps: int) (years: int) = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 1.0 / float substeps
        SaveTimes = Array.init (years + 1) float
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// `sim` from states x0 [B; 2] (hare, lynx) over `years` years: [years + 1; B; 2] (the start included).
let private simulateFrom (sim: Simulator) (substeps: int) (x0: torch.Tensor) (years: int) =
    let u0 = [| x0.select (1L, 0L); x0.select (1L, 1L) |]
    torch.stack (sim.Simulate(u0, yearly substeps years).Values, 2L)

/// The tendency (dH/dt, dL/dt) of `sim` at states x [N; 2] with its current parameters held fixed (for the PINN's
/// residual): [N; 2].
let private tendency (sim: Simulator) (x: torch.Tensor) =
    let theta = sim.Theta() |> Array.map (fun t -> t.detach ())

    torch.stack (Dynamics.total sim.Dynamics theta 0.0 [| x.select (1L, 0L); x.select (1L, 1L) |], 1L)

/// The parameters of the physics fit's L-BFGS polish: outer steps of at most 20 iterations each.
let private polishSteps = 10

/// Fits α, β, γ, δ and the start state (H0, L0) of `lotkaVolterraModel` to yearly counts `observed`
/// [year; hare, lynx] (year 0 at t = 0) by maximum likelihood under independent log-normal errors of one variance:
/// the mean squared difference of log counts along one trajectory from (H0, L0). Adam (`Trainer.train`, rate 0.05,
/// `iterations` epochs) with the fitted stretch of the record growing from `startYears` years to all of it by the
/// first third of the epochs, then L-BFGS (`Trainer.lbfgs`) on the whole record. Starts from the prior means and
/// the first observation. Returns the simulator (at the estimate), its log-residuals function (simulated − observed
/// log counts over the whole record, for standard errors) and the wall time in seconds.
let internal fitLotkaVolterra (iterations: int) (substeps: int) (startYears: int) (observed: float[][]) =
    let years = observed.Length - 1
    let sim = compileWith lotkaVolterraModel None
    (sim.Param "H0").Set(observed[0][0])
    (sim.Param "L0").Set(observed[0][1])

    let logObserved =
        torch.tensor(Array.concat observed, dtype = f64).reshape(int64 observed.Length, 2L).log ()

    let residuals (span: int) () =
        let path =
            torch.stack(sim.Simulate(sim.Initial 1, yearly substeps span).Values, 2L).squeeze 1L

        let positive = withScalar 1e-9 (fun floor -> path.clamp_min floor)
        positive.log () .- logObserved.narrow (0L, 0L, int64 (span + 1))

    let start = max 1 (min startYears years)
    let watch = Stopwatch.StartNew()

    Trainer.train
        {
            Trainer.defaults with
                Epochs = iterations
                Groups = [| Trainer.group "theta" 0.05 (sim.Trainable()) |]
                Horizon = {
                    Start = start
                    Max = years
                    GrowEvery = max 1 (iterations / 3 / max 1 (years - start))
                }
        }
        {
            Loss =
                fun ctx ->
                    let l = (square (residuals ctx.Horizon ())).mean ()

                    {
                        Total = l
                        Parts = [| "log MSE", l |]
                    }
            Validation = None
        }
    |> ignore

    Trainer.lbfgs (sim.Trainable()) 1.0 polishSteps 20 (fun () -> (square (residuals years ())).mean ())
    |> ignore

    sim, (fun () -> (residuals years ()).reshape -1L), watch.Elapsed.TotalSeconds

let private rows (t: torch.Tensor) : float[][] =
    let a = t.contiguous().data<float>().ToArray()
    let n = int t.shape[0]
    Array.init n (fun i -> [| a[2 * i]; a[2 * i + 1] |])

/// Runs every model on the 1900–1915 / 1916–1920 split.
/// One independent part of the case's work (a task of the report's sweep): the models it trains and the network
/// seed they start from. "physics" gives persistence and the three Lotka–Volterra models (no seed: 0); "hybrid",
/// "interaction", "MLP", "LSTM", "Transformer" and "PINN" train one seed of that model (the hybrids and the PINN
/// refit the physics they start from, which is deterministic); "uncertainty:<model>" trains one ensemble member
/// (seed `Uncertainty.Seed` + k) of the additive hybrid, the control, the LSTM or the transformer, and
/// "uncertainty:hybrid:MC dropout" the hybrid's MC-dropout network (`CasePart.uncertaintyParts`).
/// Its Model is "physics", "hybrid", "interaction", `ModelTable.NoPhysics` (the control, trained like "hybrid" without
/// the physics fit), "MLP", "LSTM", "Transformer", "PINN", the ablation's "separate rates", "lambda schedule",
/// "fused scalar" and "fused gate" (with `Settings.Ablation`) or an uncertainty part.
type Part = CasePart.Part

/// What one part computed.
type PartResult = CasePart.PartResult<ModelResult>

/// The parts of the ablation (`Settings.Ablation`), in the table's order: separate rates, a λ schedule, α-fusion with
/// a scalar α and with a per-point gate (`AblationTable.names`).
let private ablationParts = [ "separate rates"; "lambda schedule"; "fused scalar"; "fused gate" ]

/// The networks of the case and the first seed of each (its seeds are `Comparison.seeds first Seeds`).
let private networks (s: Settings) = [
    "hybrid", s.Seed
    "interaction", s.Seed + 2
    // The control has the additive hybrid's seeds: the same network initialisations.
    ModelTable.NoPhysics, s.Seed
    "MLP", s.Seed + 1
    "LSTM", s.Seed + 100
    "Transformer", s.Seed + 100
    "PINN", s.Seed + 100
    // The ablation (`Settings.Ablation`) has the additive hybrid's seeds: paired with its runs.
    if s.Ablation then
        yield! ablationParts |> List.map (fun p -> p, s.Seed)
]

/// The models whose uncertainty is compared (name, whether MC dropout applies): the additive hybrid, and the pure-ML
/// models that forecast the same years: the control, the LSTM and the transformer (ensembles only).
let uncertaintyCandidates = [
    "hybrid", true
    ModelTable.NoPhysics, false
    "LSTM", false
    "Transformer", false
]

/// The parts of a run under `s`, in the order `run` takes them: the physics, each network over its `Seeds` seeds,
/// then the uncertainty parts (`CasePart.uncertaintyParts`; none with `CaseUncertainty.off`).
let parts (s: Settings) : Part list =
    CasePart.parts (networks s) s.Seeds (CasePart.uncertaintyParts s.Uncertainty uncertaintyCandidates)

/// The physics fits this process made: log-parameters (α, β, γ, δ) and the fit's wall time per settings.
let private physicsFits =
    Collections.Concurrent.ConcurrentDictionary<Settings, float[] * float>()

/// The models of one part of the case and its uncertainty experiment (`runPart` adds their rows).
let private runModels (s: Settings) (part: Part) : PartResult =
    CasePart.checkKnown
        "Predator–prey"
        ("physics" :: (networks s |> List.map fst)
         @ CasePart.uncertaintyModels uncertaintyCandidates)
        part

    let needsPhysics =
        match part.Model with
        | CasePart.UncertaintyOf(candidate, _) -> candidate = "hybrid"
        | model -> not (List.contains model [ "MLP"; "LSTM"; "Transformer"; ModelTable.NoPhysics ])

    Engine.init ()
    use outer = torch.NewDisposeScope()
    let years, observed = load ()
    let trainYears = years |> Array.filter (fun y -> y <= 1915) |> Array.length
    let testYears = years.Length - trainYears
    // The one place the training data is selected: every model below sees years first … lastKept only.
    let kept = selection s trainYears
    let first = kept.FirstYear
    let lastKept = first + kept.KeptYears - 1
    // Models train on years first … lastFit; lastFit + 1 … lastKept are the validation years.
    let fitYears = kept.KeptYears - kept.ValidationYears
    let lastFit = first + fitYears - 1

    let obs =
        torch.tensor(Array.concat observed, dtype = f64).reshape (int64 years.Length, 2L)

    let truthTest = obs.narrow (0L, int64 trainYears, int64 testYears)
    let last = obs.narrow (0L, int64 (trainYears - 1), 1L) // observed 1915, [1; 2]
    let keptObs = (obs.narrow (0L, int64 first, int64 fitYears)).unsqueeze 1L // [fit years; 1; 2]
    let fitEnd = obs.narrow (0L, int64 lastFit, 1L) // the last training year's observed state, [1; 2]

    let validationTruth =
        obs.narrow (0L, int64 (lastFit + 1), int64 kept.ValidationYears)

    // The validation MSE of a forecast of the validation years [years; 2] (NaN without them).
    let validationOf (forecast: torch.Tensor) =
        if kept.ValidationYears = 0 then
            nan
        else
            (square (forecast .- validationTruth)).mean().ToDouble()

    // A rollout model's validation MSE: its forecast from the last training year's observed state.
    let validationMse (simulate: torch.Tensor -> int -> torch.Tensor) =
        if kept.ValidationYears = 0 then
            nan
        else
            use _ = torch.no_grad ()
            validationOf ((simulate fitEnd kept.ValidationYears).narrow(0L, 1L, int64 kept.ValidationYears).squeeze 1L)

    // Early stopping on `score` (the case's rule; none without validation years).
    let checkOf (score: unit -> float) : EarlyStopping.Check option =
        if kept.ValidationYears = 0 then
            None
        else
            Some {
                Score = score
                Rule = s.EarlyStopping
            }

    // Trainer options and validation of a model trained for `epochs` with early stopping on `score`.
    let stopping (score: unit -> float) (epochs: int) (o: TrainOptions) =
        EarlyStopping.apply (checkOf score) epochs o


    // Window loss on scaled values for a rollout function (x0 [B; 2], years) → [years + 1; B; 2]: every window of
    // h years in the kept training years (`Windows`), started from its observed first state.
    let windowResiduals (simulate: torch.Tensor -> int -> torch.Tensor) (h: int) =
        let target = Windows.take keptObs (Windows.starts fitYears 1 h) h
        (simulate target[0L] h .- target) ./ scale

    let windowLoss simulate (h: int) =
        (square (windowResiduals simulate h)).mean ()

    // A rollout of every window of h years and its observations, both [h + 1; B; 2].
    let windowPath (simulate: torch.Tensor -> int -> torch.Tensor) (h: int) =
        let target = Windows.take keptObs (Windows.starts fitYears 1 h) h
        simulate target[0L] h, target

    // The physics residual of window paths [h + 1; B; 2] under `physics` (the fitted Lotka–Volterra flow, fixed):
    // each year's state minus the flow of the previous one over a year, in tens of thousands of pelts, [h; B; 2].
    let defect (physics: Simulator) (path: torch.Tensor) =
        let h, b = path.shape[0] - 1L, path.shape[1]

        let flowed =
            (simulateFrom physics s.Substeps (path.narrow(0L, 0L, h).reshape (-1L, 2L)) 1)[1L]

        (path.narrow (0L, 1L, h) .- flowed.reshape (h, b, 2L)) ./ scale

    // The windows grow from one year to `WindowYears` over the first third of the epochs (`TrainOptions.Horizon`).
    let growing (epochs: int) = {
        Start = 1
        Max = kept.WindowYears
        GrowEvery = max 1 (epochs / 3 / kept.WindowYears)
    }

    let evaluate name description (simulate: torch.Tensor -> int -> torch.Tensor) trained seconds parameters =
        use _ = torch.no_grad ()

        let forecast, inference =
            CaseTraining.timed (fun () -> (simulate last testYears).narrow(0L, 1L, int64 testYears).squeeze 1L)

        let trainMse =
            if trained then
                (windowLoss simulate kept.WindowYears).ToDouble() * scale * scale
            else
                nan

        {
            Name = name
            Description = description
            TestMse = (square (forecast .- truthTest)).mean().ToDouble()
            TrainMse = trainMse
            ValidationMse = validationMse simulate
            TrainSeconds = seconds
            InferenceSeconds = inference
            Epochs = 0
            SeedTestMse = [||]
            PhysicsResidual = nan
            Parameters = parameters
            Forecast = rows forecast
        }

    let named (sim: Simulator) (names: string list) =
        names |> List.map (fun n -> n, (sim.Param n).Get()) |> Array.ofList

    let lvWith (values: float[]) =
        let sim = compileWith lotkaVolterraModel None
        List.iteri (fun i n -> (sim.Param n).Set values[i]) rates
        sim

    let fixedModel name description (values: float[]) =
        let sim = lvWith values
        evaluate name description (simulateFrom sim s.Substeps) false 0.0 (named sim rates)

    let persistence =
        evaluate
            "persistence"
            "1915 value held for five years"
            (fun x0 years -> x0.unsqueeze(0L).expand (int64 (years + 1), -1L, -1L))
            false
            0.0
            [||]

    let prior =
        fixedModel "LV prior" "Lotka–Volterra, prior-mean parameters (no data)" [| 1.0; 0.05; 1.0; 0.05 |]

    let literature =
        fixedModel
            "LV literature"
            "Lotka–Volterra, Carpenter (2018) posterior means (fitted to 1900–1920: has seen the test years)"
            literature

    // Fitted physics (see `fitLotkaVolterra`). The fit is deterministic: a process fits once per settings and puts
    // the same values back for the next part that needs them (the in-process report's parts); a fresh process fits
    // again.
    let fittedValues, physicsSeconds =
        if not needsPhysics then
            [||], 0.0
        else
            match physicsFits.TryGetValue s with
            | true, fit -> fit
            | _ ->
                let sim, _, seconds =
                    fitLotkaVolterra s.PhysicsIterations s.Substeps kept.WindowYears observed[first..lastFit]

                let fit =
                    (rates @ [ "H0"; "L0" ]
                     |> List.map (fun n -> (sim.Param n).Get())
                     |> Array.ofList),
                    seconds

                physicsFits[s] <- fit
                fit

    let fittedSim () = lvWith fittedValues

    let fitted () =
        let sim = fittedSim ()

        evaluate
            "LV fitted"
            "Lotka–Volterra, four rates and the first training year's state fitted on 1900–1915 (log-normal likelihood)"
            (simulateFrom sim s.Substeps)
            true
            physicsSeconds
            (Array.append (named sim rates) [|
                $"H({years[first]})", fittedValues[4]
                $"L({years[first]})", fittedValues[5]
            |])

    let trainingStates = keptObs.squeeze 1L ./ inputScale

    // A hybrid `m`: the network (NH, NL) starts at zero (so the hybrid starts as the fitted LV) and is trained
    // jointly with the LV rates, with an L2 penalty on its outputs at the training states. Returns the result, the
    // network and the trained rollout. For the no-physics control (a model without the rates) the same code trains
    // the network alone.
    let hybridTrained key thetaRate phiRate lambda dropout iterations name description seed (m: Model) =
        let net =
            new Mlp("correction", 2, 2, Tuned.width s.Tuned key s.Width, 2, dropout = dropout, dtype = f64)

        CaseTraining.initialise net seed true
        let sim = compileWith m (Some net)

        let present =
            rates
            |> List.filter (fun n -> sim.Parameters |> Array.exists (fun p -> p.Name = n))

        List.iteri
            (fun i n ->
                if List.contains n present then
                    (sim.Param n).Set fittedValues[i])
            rates

        let simulate = simulateFrom sim s.Substeps

        let physics =
            match lambda with
            | LambdaSchedule.Constant 0.0 -> None
            | _ -> Some(fittedSim ())

        let fit =
            CaseTraining.joint
                {
                    CaseTraining.hybridDefaults [ for n in present -> (sim.Param n).Raw ] net iterations seed with
                        ThetaRate = thetaRate
                        PhiRate = phiRate
                        Horizon = growing iterations
                        Lambda = lambda
                        Stopping = checkOf (fun () -> validationMse simulate)
                }
                (fun ctx ->
                    let path, target = windowPath simulate ctx.Horizon
                    let data = (square ((path .- target) ./ scale)).mean ()
                    let penalty = s.CorrectionPenalty .* (square (net.forward trainingStates)).mean ()

                    [
                        "data", data
                        "penalty", penalty
                        match physics with
                        | Some p when ctx.Lambda > 0.0 ->
                            "physics residual", ctx.Lambda .* (square (defect p path)).mean ()
                        | _ -> ()
                    ])

        net.eval () |> ignore

        // Standard errors of the rates on the full training windows, the network held at its trained weights.
        let errors =
            if present.IsEmpty then
                [||]
            else
                CaseTraining.standardErrors
                    (fun () -> (windowResiduals simulate kept.WindowYears).reshape -1L)
                    sim
                    present

        let result =
            evaluate
                name
                description
                simulate
                true
                (physicsSeconds + fit.WallTime.TotalSeconds)
                (Array.concat [
                    named sim present
                    errors
                    [| "network weights", float (Neural.parameterCount net) |]
                ])

        result, net, simulate

    // The table's hybrids and the control: θ and φ at one rate (5e-3, or the model's tuned rate).
    let hybridModel key name description m seed =
        let rate = Tuned.value s.Tuned key Tuned.LearningRate 5e-3

        let result, _, _ =
            hybridTrained key rate rate (LambdaSchedule.Constant 0.0) 0.0 s.HybridIterations name description seed m

        result

    // The ablation (issue #15, 2 b–d), each from the additive hybrid's network seeds, data, windows, budget, width
    // and rate (5e-3 or its tuned rate). Learning rates: θ at 0.05 (the physics fit's rate), φ at the hybrid's.
    let hybridRate = Tuned.value s.Tuned "hybrid" Tuned.LearningRate 5e-3

    let separateRates seed =
        let result, _, _ =
            hybridTrained
                "hybrid"
                0.05
                hybridRate
                (LambdaSchedule.Constant 0.0)
                0.0
                s.HybridIterations
                AblationTable.SeparateRates
                $"the additive hybrid with separate Adam rates: θ (α, β, γ, δ) 0.05, φ {hybridRate} (the table's hybrid: {hybridRate} for both)"
                seed
                additiveModel

        result

    // λ schedule: the additive hybrid plus λ times the mean square of its windows' one-year defect under the fitted
    // Lotka–Volterra flow (the physics residual of the table, in tens of thousands of pelts), λ from 0 to 1 over the
    // first half of the epochs.
    let lambdaSchedule seed =
        let result, _, _ =
            hybridTrained
                "hybrid"
                hybridRate
                hybridRate
                (LambdaSchedule.Linear(0.0, 1.0, s.HybridIterations / 2))
                0.0
                s.HybridIterations
                AblationTable.LambdaSchedule
                "the additive hybrid plus λ × the mean square one-year defect of its training windows under the fitted LV flow (÷ 10), λ from 0 to 1 over the first half of the epochs (the table's hybrid: λ = 0)"
                seed
                additiveModel

        result

    // α-fusion: ŷ = α·F_θ + (1 − α)·G_φ, F_θ the Lotka–Volterra model from the fitted rates (θ trainable) and G_φ the
    // no-physics control's neural ODE with the additive hybrid's network (seeds, width, zero start), both rolled out
    // by the compiled simulator from each window's observed start; trained end to end on the hybrid's objective.
    let fused (mode: FusionMode) name description seed =
        let net =
            new Mlp("correction", 2, 2, Tuned.width s.Tuned "hybrid" s.Width, 2, dtype = f64)

        CaseTraining.initialise net seed true
        let neural = compileWith neuralOdeModel (Some net)
        let physics = fittedSim ()
        let fusion = CaseTraining.fusionLayer mode seed

        let simulate (x0: torch.Tensor) (years: int) =
            let u0 = [| x0.select (1L, 0L); x0.select (1L, 1L) |]
            let options = yearly s.Substeps years

            let y =
                FusedRollout.run
                    fusion
                    [| inputScale; inputScale |]
                    physics
                    u0
                    options
                    (neural.Simulate(u0, options).Values)

            torch.stack (y.Fused, 2L)

        let fit =
            CaseTraining.joint
                {
                    CaseTraining.hybridDefaults [ for n in rates -> (physics.Param n).Raw ] net s.HybridIterations seed with
                        PhiRate = hybridRate
                        Fusion = Some fusion
                        FusionRate = CaseTraining.fusionRate mode
                        Horizon = growing s.HybridIterations
                        Stopping = checkOf (fun () -> validationMse simulate)
                }
                (fun ctx -> [
                    "data", windowLoss simulate ctx.Horizon
                    "penalty", s.CorrectionPenalty .* (square (net.forward trainingStates)).mean ()
                ])

        net.eval () |> ignore
        fusion.eval () |> ignore

        // The learned α, or the gate's mean over the test forecast (both species, 1916–1920).
        let alpha =
            use _ = torch.no_grad ()
            simulate last testYears |> ignore
            fusion.Alpha

        evaluate
            name
            description
            simulate
            true
            (physicsSeconds + fit.WallTime.TotalSeconds)
            (Array.concat [
                named physics rates
                [|
                    CaseTraining.fusionParameter mode alpha
                    "network weights", float (Neural.parameterCount net + Neural.parameterCount fusion)
                |]
            ])

    let fusedScalar =
        fused
            (FusionMode.Scalar 0.5)
            AblationTable.FusedScalar
            "ŷ = α LV + (1 − α) G: LV from the fitted rates (θ trainable) fused with the neural ODE dx/dt = 10 N(x / 50) of the hybrid's network (G, no physics), one learned α from 0.5 (Adam 0.05), end to end on the hybrid's windows, penalty and budget"

    let fusedGate =
        fused
            (FusionMode.Gate(1, s.Width))
            AblationTable.FusedGate
            $"ŷ = α(t, LV) LV + (1 − α) G: as the scalar fusion, α a per-point gate (MLP of the window time and LV / 50, {s.Width} units, started at 0.5, φ's rate 5e-3)"

    // The width and rate a model trains with: its tuned ones, else the case's (`Width`, 5e-3), as its description
    // states them.
    let widthOf key = Tuned.width s.Tuned key s.Width

    let rateOf key =
        Tuned.value s.Tuned key Tuned.LearningRate 5e-3

    let hybrid =
        let width, rate = widthOf "hybrid", rateOf "hybrid"

        hybridModel
            "hybrid"
            "hybrid (LV + MLP)"
            $"Lotka–Volterra + additive MLP correction ({width} units) on both rates, trained jointly from the fitted LV (Adam {rate:G3} for θ and φ)"
            additiveModel

    let interaction =
        let width, rate = widthOf "interaction", rateOf "interaction"

        hybridModel
            "interaction"
            "hybrid (neural interaction)"
            $"dH/dt = αH − β e^N₁ HL, dL/dt = δ e^N₂ HL − γL; N(H, L) an MLP ({width} units), trained jointly from the fitted LV (Adam {rate:G3} for θ and φ)"
            interactionModel

    // The "same network, no physics" control: the additive hybrid's network form, seeds, penalty and windows, at its
    // own width and rate where tuned.
    let noPhysics =
        let width, rate = widthOf ModelTable.NoPhysics, rateOf ModelTable.NoPhysics

        hybridModel
            ModelTable.NoPhysics
            ModelTable.NoPhysics
            $"dH/dt = 10 NH(H, L), dL/dt = 10 NL(H, L): the additive hybrid without its Lotka–Volterra terms (its MLP form, {width} units, Adam {rate:G3}; same seeds, penalty and windows), starting at zero"
            neuralOdeModel

    // Pure data-driven: autoregressive residual MLP, one year a step, on the same windows.
    let data seed =
        let ar =
            new Mlp("autoregressive", 2, 2, Tuned.width s.Tuned "MLP" s.Width, 2, dtype = f64)

        CaseTraining.initialise ar seed false

        let arStep (x: torch.Tensor) =
            x .+ scale .* ar.forward (x ./ inputScale)

        let options, validation =
            stopping (fun () -> validationMse (iterate arStep)) s.DataIterations {
                Trainer.defaults with
                    Epochs = s.DataIterations
                    Seed = seed
                    Groups = [|
                        Trainer.group "phi" (Tuned.value s.Tuned "MLP" Tuned.LearningRate 5e-3) (Neural.parameters ar)
                    |]
                    Horizon = growing s.DataIterations
                    Modules = [| ar |]
            }

        let fit =
            Trainer.train options {
                Loss =
                    fun ctx ->
                        let l = windowLoss (iterate arStep) ctx.Horizon
                        { Total = l; Parts = [| "data", l |] }
                Validation = validation
            }

        evaluate
            "MLP autoregressive"
            "x(t+1) = x(t) + MLP(x(t)), no physics"
            (iterate arStep)
            true
            fit.WallTime.TotalSeconds
            [| "network weights", float (Neural.parameterCount ar) |]

    // Pure data-driven sequence baselines and the PINN, each over `Seeds` seeds: `fit` gives one seed's forecast of
    // the test years with its wall time, train MSE, training seconds and network size.
    let truth = observed |> Array.skip trainYears

    let testMse (forecast: float[][]) =
        Array.map2 (Array.map2 (fun (a: float) b -> (a - b) * (a - b))) forecast truth
        |> Array.concat
        |> Array.average

    let baseline name description epochs (fit: int -> (float[][] * float) * float * float * float * int64) seed =
        let (forecast, inference), trainMse, validation, seconds, weights = fit seed

        {
            Name = name
            Description = description
            TestMse = testMse forecast
            TrainMse = trainMse
            ValidationMse = validation
            TrainSeconds = seconds
            InferenceSeconds = inference
            Epochs = epochs
            SeedTestMse = [||]
            PhysicsResidual = nan
            Parameters = [| "network weights", float weights |]
            Forecast = forecast
        }

    let history =
        observed[first..lastFit] |> Array.map (Array.map (fun v -> v / inputScale))

    let validationRows (forecast: float[][]) =
        validationOf (torch.tensor(Array.concat forecast, dtype = f64).reshape (int64 forecast.Length, 2L))

    // Forecasts start from as many years as were kept, up to 1915 (the kept years themselves for subset 0).
    let context =
        observed[trainYears - kept.KeptYears .. trainYears - 1]
        |> Array.map (Array.map (fun v -> v / inputScale))

    // The validation years forecast from the training years, as the test years are from 1915.
    let sequenceValidation (m: SequenceModels.Trained) =
        SequenceModels.forecast m history [||] kept.ValidationYears
        |> Array.map (Array.map (fun v -> v * inputScale))

    // The test years forecast from 1915.
    let sequenceTest (m: SequenceModels.Trained) =
        SequenceModels.forecast m context [||] testYears
        |> Array.map (Array.map (fun v -> v * inputScale))

    // A sequence model trained for `iterations` from `seed`, stopping early on its validation forecast.
    let sequenceTrained architecture iterations seed =
        let key = SequenceModels.name architecture
        let validate = sequenceValidation >> validationRows

        SequenceModels.fitForecasterWith
            (if kept.ValidationYears = 0 then
                 None
             else
                 Some {
                     Score = validate
                     Rule = s.EarlyStopping
                 })
            {
                SequenceModels.defaults architecture with
                    Window = s.SequenceWindow
                    Iterations = iterations
                    Seed = seed
                    Hidden = Tuned.width s.Tuned key 16
                    LearningRate = Tuned.value s.Tuned key Tuned.LearningRate 1e-2
            } [| history |] [||]

    let sequence architecture =
        baseline
            (SequenceModels.name architecture)
            $"{SequenceModels.name architecture} forecaster of the record (÷ {inputScale}), {s.SequenceWindow}-year context, no physics; train MSE one-step"
            s.SequenceIterations
            (fun seed ->
                let m = sequenceTrained architecture s.SequenceIterations seed
                let forecast = CaseTraining.timed (fun () -> sequenceTest m)

                let validation =
                    if kept.ValidationYears = 0 then
                        nan
                    else
                        validationRows (sequenceValidation m)

                forecast, m.TrainLoss * inputScale * inputScale, validation, m.Seconds, Neural.parameterCount m.Net)

    let pinn seed =
        let physicsSim = fittedSim ()

        baseline
            "PINN"
            "MLP (H, L)(t) on 1900–1915 data + Lotka–Volterra residual (LV fitted parameters) on 1900–1920"
            s.PinnIterations
            (fun seed ->
                let problem = {
                    Pinn.Inputs = years[first..lastFit] |> Array.map (fun y -> [| float y |])
                    Pinn.Targets = observed[first..lastFit]
                    Pinn.Collocation =
                        Array.init (4 * (years.Length - 1) + 1) (fun i -> [| float years[0] + 0.25 * float i |])
                    Pinn.InputShift = [| float years[0] + 10.0 |]
                    Pinn.InputScale = [| 10.0 |]
                    Pinn.OutputShift = [| 30.0; 30.0 |]
                    Pinn.OutputScale = [| 30.0; 30.0 |]
                    Pinn.Residual = fun f -> (f.D f.U 0 .- tendency physicsSim f.U) ./ scale
                }

                let validationYears =
                    years[lastFit + 1 .. lastKept] |> Array.map (fun y -> [| float y |])

                let validate (predict: float[][] -> float[][]) =
                    validationRows (predict validationYears)

                let m =
                    Pinn.fitValidated
                        (if kept.ValidationYears = 0 then None else Some validate)
                        s.EarlyStopping
                        {
                            Pinn.defaults with
                                Iterations = s.PinnIterations
                                Seed = seed
                                Width = Tuned.width s.Tuned "PINN" Pinn.defaults.Width
                                LearningRate = Tuned.value s.Tuned "PINN" Tuned.LearningRate Pinn.defaults.LearningRate
                        }
                        problem

                let predicted, inference =
                    CaseTraining.timed (fun () -> m.Predict(years |> Array.map (fun y -> [| float y |])))

                let trainMse =
                    Array.map2
                        (Array.map2 (fun (a: float) b -> (a - b) * (a - b)))
                        predicted[first..lastFit]
                        problem.Targets
                    |> Array.concat
                    |> Array.average

                let validation = if kept.ValidationYears = 0 then nan else validate m.Predict

                (Array.skip trainYears predicted, inference),
                trainMse,
                validation,
                m.Seconds,
                Neural.parameterCount m.Net)
            seed

    let trainedFor epochs (m: ModelResult) = { m with Epochs = epochs }

    // The uncertainty experiment's splits: the validation years (where there are any; forecast from the last
    // training year's observed state) and the test years (from 1915), flattened [year; hare, lynx].
    let uncertaintySplits = [|
        if kept.ValidationYears > 0 then
            CaseUncertainty.Validation, validationTruth.reshape -1L
        $"{years[trainYears]}–{years[years.Length - 1]}", truthTest.reshape -1L
    |]

    let flat (forecast: float[][]) =
        torch.tensor (Array.concat forecast, dtype = f64)

    // A rollout model's predictions on the uncertainty splits.
    let rolloutPredictions (simulate: torch.Tensor -> int -> torch.Tensor) () = [|
        if kept.ValidationYears > 0 then
            (simulate fitEnd kept.ValidationYears).narrow(0L, 1L, int64 kept.ValidationYears).reshape -1L
        (simulate last testYears).narrow(0L, 1L, int64 testYears).reshape -1L
    |]

    // One network of the uncertainty experiment per candidate: the additive hybrid (members and the MC-dropout
    // network) at `Uncertainty.Iterations` and the control at the same (both have `HybridIterations`), the sequence
    // models at the same fraction of `SequenceIterations`; the noise variance is the network's training MSE (the
    // rollouts' over the training windows, the sequence models' one-step).
    let uncertaintyTrainer (candidate: string) (seed: int) (dropout: float) : CaseUncertainty.Trained =
        let rollout key model : CaseUncertainty.Trained =
            let result, net, simulate =
                let rate = Tuned.value s.Tuned key Tuned.LearningRate 5e-3

                hybridTrained
                    key
                    rate
                    rate
                    (LambdaSchedule.Constant 0.0)
                    dropout
                    s.Uncertainty.Iterations
                    "member"
                    ""
                    seed
                    model

            {
                Modules = [| net |]
                Predict = rolloutPredictions simulate
                NoiseVariance = result.TrainMse
            }

        let sequenceMember architecture : CaseUncertainty.Trained =
            let m =
                sequenceTrained
                    architecture
                    (CaseUncertainty.budget s.Uncertainty s.HybridIterations s.SequenceIterations)
                    seed

            {
                Modules = [| m.Net |]
                Predict =
                    fun () -> [|
                        if kept.ValidationYears > 0 then
                            flat (sequenceValidation m)
                        flat (sequenceTest m)
                    |]
                NoiseVariance = m.TrainLoss * inputScale * inputScale
            }

        match candidate with
        | "hybrid" -> rollout "hybrid" additiveModel
        | "LSTM" -> sequenceMember SequenceModels.Architecture.Lstm
        | "Transformer" -> sequenceMember SequenceModels.Architecture.Transformer
        | _ -> rollout ModelTable.NoPhysics neuralOdeModel

    let one (m: ModelResult) : PartResult = {
        Models = [| m |]
        Rows = [||]
        Uncertainty = [||]
    }

    match part.Model with
    | "physics" -> {
        CasePart.PartResult.Models = [| persistence; prior; literature; trainedFor s.PhysicsIterations (fitted ()) |]
        Rows = [||]
        Uncertainty = [||]
      }
    | "hybrid" -> one (trainedFor (s.PhysicsIterations + s.HybridIterations) (hybrid part.Seed))
    | "interaction" -> one (trainedFor (s.PhysicsIterations + s.HybridIterations) (interaction part.Seed))
    | ModelTable.NoPhysics -> one (trainedFor s.HybridIterations (noPhysics part.Seed))
    | "separate rates" -> one (trainedFor (s.PhysicsIterations + s.HybridIterations) (separateRates part.Seed))
    | "lambda schedule" -> one (trainedFor (s.PhysicsIterations + s.HybridIterations) (lambdaSchedule part.Seed))
    | "fused scalar" -> one (trainedFor (s.PhysicsIterations + s.HybridIterations) (fusedScalar part.Seed))
    | "fused gate" -> one (trainedFor (s.PhysicsIterations + s.HybridIterations) (fusedGate part.Seed))
    | "MLP" -> one (trainedFor s.DataIterations (data part.Seed))
    | "LSTM" -> one (sequence SequenceModels.Architecture.Lstm part.Seed)
    | "Transformer" -> one (sequence SequenceModels.Architecture.Transformer part.Seed)
    | "PINN" -> one (pinn part.Seed)
    | CasePart.UncertaintyOf(candidate, dropout) ->
        CasePart.uncertaintyResult s.Uncertainty uncertaintySplits dropout part.Seed (uncertaintyTrainer candidate)
    | other -> raise (HybridException $"Predator–prey: there is no part '{other}'.")

/// The case's name in rows.
[<Literal>]
let private Case = "predator-prey"

/// Runs one part of the case (any part, in any order or process: each sets up the data and the physics it
/// needs itself); its numbers leave it as rows: each model's (`PartRows.modelRows`; the physics residual NaN, which
/// `assemble` computes), the uncertainty experiment's (`UncertaintyRows`), then each model's "validation" "mse".
let runPart (s: Settings) (part: Part) : PartResult =
    runModels s part
    |> Hybrid.Models.Tasks.PartRows.withRows Case part (fun m ->
        Hybrid.Models.Tasks.PartRows.ofFields [| "validation", m.ValidationMse |] m)

/// Builds the outcome from the results of every part of `parts s` (in any order): each network model's row is its
/// first seed's run with the mean test MSE and training time over its seeds and the per-seed test MSEs; every
/// model's physics residual is computed from its forecast and the fitted physics. A missing part raises a
/// `HybridException` that names it.
let assemble (s: Settings) (results: (Part * PartResult) list) : Outcome =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let years, observed = load ()
    let trainYears = years |> Array.filter (fun y -> y <= 1915) |> Array.length

    let obs =
        torch.tensor(Array.concat observed, dtype = f64).reshape (int64 years.Length, 2L)

    let last = obs.narrow (0L, int64 (trainYears - 1), 1L)

    let resultOf (part: Part) =
        results
        |> List.tryFind (fun (p, _) -> p = part)
        |> Option.map snd
        |> Option.defaultWith (fun () ->
            raise (
                HybridException
                    $"Predator–prey: the part {part.Model} (seed {part.Seed}) has no result; run it before assembling the outcome."
            ))

    let physics = (resultOf { Model = "physics"; Seed = 0 }).Models

    // The fitted Lotka–Volterra model, from its rates in the physics part's "LV fitted" row.
    let fittedSim =
        let named = physics[3].Parameters
        let sim = compileWith lotkaVolterraModel None

        for n in rates do
            (sim.Param n).Set(named |> Array.find (fun (k, _) -> k = n) |> snd)

        sim

    // A network model over its seeds: the first seed's run with the mean test MSE and time over all of them.
    let overSeeds model first =
        let runs =
            Comparison.seeds first s.Seeds
            |> Array.map (fun seed -> (resultOf { Model = model; Seed = seed }).Models[0])

        let mses = Comparison.summarise (runs |> Array.map (fun r -> r.TestMse))

        {
            runs[0] with
                TestMse = mses.Mean
                TrainSeconds = runs |> Array.averageBy (fun r -> r.TrainSeconds)
                SeedTestMse = mses.Runs
        }

    // The physics residual of a forecast (see `ModelResult.PhysicsResidual`).
    let physicsResidual (forecast: float[][]) =
        use _ = torch.no_grad ()

        let path =
            torch.cat (
                [|
                    last
                    torch.tensor(Array.concat forecast, dtype = f64).reshape (int64 forecast.Length, 2L)
                |],
                0L
            )

        let n = path.shape[0] - 1L
        let flowed = (simulateFrom fittedSim s.Substeps (path.narrow (0L, 0L, n)) 1)[1L]
        (square (path.narrow (0L, 1L, n) .- flowed)).mean().sqrt().ToDouble()

    let withResidual (m: ModelResult) = {
        m with
            PhysicsResidual = physicsResidual m.Forecast
    }

    let models =
        Array.map withResidual [|
            yield! physics
            for model, first in networks s do
                if not (List.contains model ablationParts) then
                    overSeeds model first
        |]

    let ablation =
        [|
            for model, first in networks s do
                if List.contains model ablationParts then
                    overSeeds model first
        |]
        |> Array.map withResidual

    {
        Years = years
        Observed = observed
        TrainYears = trainYears
        Models = models
        Uncertainty = CasePart.uncertainty s.Uncertainty uncertaintyCandidates resultOf
        Ablation = ablation
        Rows =
            Array.append models ablation
            |> Array.fold
                (fun rows m -> CasePart.withResidual m.Name m.PhysicsResidual rows)
                (CasePart.rowsOf (parts s) resultOf)
    }

/// Runs every model (see the module's summary): every part of `parts s` in this process, one after another, then
/// `assemble`.
let run (s: Settings) : Outcome =
    parts s |> List.map (fun p -> p, runPart s p) |> assemble s
