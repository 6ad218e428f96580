/// Case study: global mean surface temperature anomaly 1880–2018 (NOAA, via dslabs `temp_carbon`) driven by
/// CO₂ forcing F = 5.35·ln(C/C₀) W/m² (Myhre et al. 1998), C₀ = 280 ppm. Train on 1880–2000, test on 2001–2018
/// (the cut-off leaves 121 training years and 18 test years that include the early-2000s slowdown and the
/// 2015–2016 El Niño peak, so the test is not a straight-line extrapolation).
///
/// CO₂: annual means of the seasonally adjusted Mauna Loa record (Scripps) for 1959–2018 (the adjusted column
/// makes a year with a missing month unbiased; 1958 is incomplete and left out). Before 1959 it is
/// reconstructed from cumulative fossil emissions E (GtC, CDIAC, from 1751) as C = C₀ + a·E, with a fitted by
/// least squares on 1959–2014 (the emissions record stops in 2014). Fossil emissions alone leave out land use,
/// so a comes out above the airborne-fraction estimate (≈ 0.45 / 2.12 ≈ 0.21 ppm/GtC): it also carries the
/// land-use CO₂ that grew roughly in proportion.
///
/// Physics: the two-box energy-balance model (Held et al. 2010; Geoffroy et al. 2013) as a DSL model
/// (`physicsModel`, `domain point`, fields T and T_d, the forcing F given to the compiler as a function of time,
/// linear between the annual values), compiled by `Compiler.compile` and integrated by `Simulator.Simulate` with
/// explicit Euler, one step a year (the discrete two-box model of the literature), in one rollout from 1880 saved
/// at every year:
///   C dT/dt = F − λ(T − T₀) − γ(T − T₀ − T_d) + N,   C_d dT_d/dt = γ(T − T₀ − T_d),   T(1880) = T₀, T_d(1880) = 0,
/// T the observed anomaly (relative to a 20th-century mean) and T − T₀, T_d the surface and deep-ocean departures
/// from a pre-industrial equilibrium in 1880 (F(1880) ≈ 0.05 W/m², close to equilibrium); T₀ is a parameter in
/// the `initial` expression. C, C_d, λ, γ are DSL parameters declared `positive` (softplus), each in units that
/// make it of order one (C in 10, C_d in 100 W·yr·m⁻²·K⁻¹). The equilibrium climate sensitivity is
/// ECS = 5.35·ln 2 / λ. CO₂ is the only forcing: the other greenhouse gases, aerosols, volcanoes and the sun are
/// what the fitted parameters and the neural term have to absorb.
/// Models, all on the same split and the same objective (MSE of the annual anomaly over 1880–2000, one
/// rollout from 1880; the forcing is known in every year, so the test years continue the same rollout):
///  - EBM literature: CMIP5 multi-model means of Geoffroy et al. (2013): C 7.3, C_d 106 W·yr·m⁻²·K⁻¹,
///    λ 1.13, γ 0.73 W·m⁻²·K⁻¹; only T₀ is fitted (closed form: the mean training residual of the run from T₀ = 0);
///  - EBM fitted: C, C_d, λ, γ and T₀ fitted by `Trainer.train` (Adam, one group θ, rate 0.1 with a cosine decay
///    to 0.001) from the literature values;
///  - hybrid (EBM + MLP): `hybridModel`, the fitted EBM plus N(T − T₀, F/2), a DSL closure (MLP, tanh) whose
///    output is scaled by `CorrectionScale` W/m², started at zero and trained jointly with the physics by
///    `Trainer.train` (groups θ and φ), with an L2 penalty on N along the training years;
///  - neural ODE (no physics), the "same network, no physics" control (`neuralOdeModel`): dT/dt = N(T − T₀, F/2)
///    scaled like the hybrid's (÷ the literature heat capacity), one rollout from T(1880) = T₀, trained exactly like
///    the hybrid (same network seeds, rates, penalty and epochs) but from the seed with T₀ as its only parameter;
///  - LSTM and transformer (`Baselines.SequenceModels`), pure data-driven forecasters of T with the forcing as an
///    exogenous input (one-step increments, teacher forcing, `SequenceWindow`-year context), trained on
///    1880–2000 and forecasting 2001–2018 from the observed record with the forcing known; their training-years
///    values (and train MSE) are one-step-ahead predictions;
///  - PINN (`Baselines.Pinn`): an MLP (T + T₀, T_d)(t) fitted to the training years (and T_d(1880) = 0) plus the
///    continuous-time two-box residual with the "EBM fitted" parameters and offset, enforced at every year
///    1880–2018 (the forcing is known there).
/// Every model with a network (the hybrid, the control, the sequence models, the PINN) is trained from `Seeds` network seeds:
/// its test MSE is the mean over them (the spread is reported); its curve, parameters and train MSE are those of
/// the first seed. The physics fits have no seed.
/// Ablation (`Settings.Ablation`, the report's settings; `Outcome.Ablation`): over the hybrid's seeds, from the same
/// fitted EBM, data and budget, the hybrid with separate learning rates for θ and φ, with a λ schedule on the physics
/// residual of its record under the fitted EBM, and α-fusion (`trainFused`) of the two-box model with the no-physics
/// neural ODE, with a scalar α and with a per-year gate.
/// Validation (`Settings.EarlyStopping`): the last 20% of the training years (1977–2000 of 1880–2000) are the
/// validation block; every model, the physics fits included, is fitted to 1880–1976, and every network stops early
/// on its MSE over 1977–2000 (the rollouts' years; the sequence models' forecast of them from 1976, the forcing
/// known), patience a quarter of its epochs, the best epoch's weights restored. Learning rates and widths come from
/// `Settings.Tuned` (`hybrid tune`) where tuned.
module Hybrid.Models.Cases.EnergyBalance

open System
open System.Diagnostics
open System.IO
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
    /// Adam iterations (epochs: each is one rollout over the training years) for the fitted EBM.
    PhysicsIterations: int
    /// Adam iterations for the hybrid (after the physics fit it starts from).
    HybridIterations: int
    /// Last training year; the test years run from the next one to 2018.
    CutoffYear: int
    /// Hidden width of the correction network (two hidden layers, tanh).
    Width: int
    /// Output scale of the correction (W/m²).
    CorrectionScale: float
    /// Weight of the L2 penalty on the correction's network output along the training years.
    CorrectionPenalty: float
    /// First seed of the network initialisations (each network has its own seeds from it, see `Seeds`).
    Seed: int
    /// Adam iterations (full-batch epochs) of the LSTM and transformer baselines.
    SequenceIterations: int
    /// Context length of the sequence baselines (years).
    SequenceWindow: int
    /// Adam iterations of the PINN.
    PinnIterations: int
    /// Number of seeds every model with a network is trained from (the hybrid, the LSTM, transformer and PINN);
    /// the mean and spread of the test MSE are reported.
    Seeds: int
    /// Share of the training years whose temperatures every model is fitted to, in (0, 1]: the most recent
    /// ⌈f·n⌉ years up to the cut-off (see `trainingYears`); 1 keeps all. Every rollout still starts in 1880 (the
    /// forcing is known throughout) and the test years never change.
    TrainFraction: float
    /// Which block of years a `TrainFraction` below 1 keeps: 0 the most recent, a seed ≥ 1 a seeded random
    /// contiguous block of as many (`TrainFraction.blockStart`; see `trainingYears`).
    TrainSubset: int
    /// Uncertainty of the hybrid (deep ensemble, MC dropout) and of the pure-ML models (deep ensembles: the control,
    /// the LSTM and the transformer); `Iterations` are the hybrid members' iterations, the others get the same
    /// fraction of their own budget (`CaseUncertainty.budget`).
    Uncertainty: CaseUncertainty.Settings
    /// The validation block and early stopping of every network model: the last `Share` of the covered training
    /// years (the last 24 of 1880–2000 by default: 1977–2000) are held out, every model (the physics fits too) is
    /// fitted to the years before them, and every network stops early on its MSE over them (`Target.Validation`).
    EarlyStopping: EarlyStopping.Rule
    /// Hyper-parameters chosen by `hybrid tune` (`tuning/energy-balance.csv`): per model, "learning rate" and
    /// "width"; a model without them uses the defaults (5e-3 for θ and φ and `Width` for the hybrid and the
    /// control, 1e-2 and 16 for the sequence models, 1e-2 and 32 for the PINN).
    Tuned: Map<string, Map<string, float>>
    /// Whether the run includes the ablation (issue #15, 2 b–d; part "ablation", one per hybrid seed, the same data
    /// and budget): separate learning rates for θ and φ, a λ schedule on the physics residual, and α-fusion of the
    /// fitted two-box model with the no-physics neural ODE (scalar α, per-year gate).
    Ablation: bool
}

/// The report settings: 1500 physics and 600 hybrid Adam iterations, cut-off 2000.
let defaults = {
    PhysicsIterations = 1500
    HybridIterations = 600
    CutoffYear = 2000
    Width = 16
    CorrectionScale = 0.5
    CorrectionPenalty = 1e-2
    Seed = 3
    SequenceIterations = 600
    SequenceWindow = 10
    PinnIterations = 2000
    Seeds = 5
    TrainFraction = 1.0
    TrainSubset = 0
    Ablation = true
    EarlyStopping = EarlyStopping.defaults
    Tuned = Tuned.none
    // Members get the quick hybrid budget (150 iterations, not 600): six hybrids at 600 took ≈ 5 min on a loaded
    // two-core machine.
    Uncertainty = {
        CaseUncertainty.defaults with
            Iterations = 150
    }
}

/// Quick settings (`hybrid report --quick`, three seeds; tests cut them to one): 500 physics and 150 hybrid iterations (the physics fit has converged
/// by 500: its training MSE matches the report's to four digits).
let quick = {
    defaults with
        PhysicsIterations = 500
        HybridIterations = 150
        SequenceIterations = 150
        PinnIterations = 500
        Seeds = 3
        Ablation = false
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 15
        }
}

/// The data of the case, one entry per year 1880–2018.
type Data = {
    /// 1880 … 2018.
    Years: int[]
    /// Global temperature anomaly (°C, relative to the 20th-century mean).
    Temperature: float[]
    /// Atmospheric CO₂ (ppm): Mauna Loa annual means from 1959, reconstructed before.
    Co2: float[]
    /// True where `Co2` is reconstructed from cumulative emissions.
    Reconstructed: bool[]
    /// CO₂ forcing 5.35·ln(C / 280) (W/m²).
    Forcing: float[]
    /// Fitted a of C = 280 + a·E (ppm per GtC of cumulative fossil emissions).
    Co2Slope: float
    /// Root-mean-square error of that fit on its years (ppm).
    Co2FitRmse: float
    /// Largest absolute error of that fit on its years (ppm).
    Co2FitMaxError: float
    /// First and last year of the fit (1959, 2014).
    Co2FitYears: int * int
}

/// One model's result.
type ModelResult = {
    /// Short name (table row, CSV key).
    Name: string
    /// What the model is.
    Description: string
    /// Mean squared error on the test years (°C²).
    TestMse: float
    /// Mean squared error on the training years (°C²).
    TrainMse: float
    /// Mean squared error on the validation years (°C²; the sequence models': their forecast of them from the
    /// years before, what early stopping and tuning score); NaN without a validation block.
    ValidationMse: float
    /// Training wall time in seconds (a hybrid's includes the physics fit it starts from; for models run over
    /// several seeds, the mean per seed).
    TrainSeconds: float
    /// Wall time of simulating 1880–2018 (the sequence models: one-step predictions, then the forecast; s; the first
    /// seed's).
    InferenceSeconds: float
    /// Test MSE per seed for the models run over several seeds (`TestMse` is their mean); empty otherwise.
    SeedTestMse: float[]
    /// Physics residual of `Simulated`: its one-year defect under one Euler step of the compiled two-box model with
    /// the "EBM fitted" C, C_d, λ, γ, T₀ (`Simulator.Residual`, consistent form), T(k + 1) − Φ(T(k), T_d(k)), with
    /// T_d the fitted model's own deep box, RMS over 1880–2018 (°C; 0 up to round-off for "EBM fitted" itself).
    PhysicsResidual: float
    /// Training epochs (Adam iterations, each a rollout over the training years; a hybrid's include the
    /// physics fit's; 0 for the literature model, whose offset is computed in closed form).
    Epochs: int
    /// Named parameters (physical ones, ECS; networks report their size).
    Parameters: (string * float)[]
    /// Predicted anomaly (°C, with the offset) for every year 1880–2018.
    Simulated: float[]
}

/// Outcome of `run`.
type Outcome = {
    /// The data the models saw.
    Data: Data
    /// Number of training years (121: 1880–2000 with the default cut-off); the rest are the test years.
    TrainYears: int
    /// MSE of the least-squares straight line through the observed test years (°C²): an oracle that has seen
    /// the test data, a yardstick for how much of the test error is year-to-year variability (El Niño,
    /// volcanoes) that no smooth forced response can follow.
    TestTrendMse: float
    /// Every model, in the order of the table.
    Models: ModelResult[]
    /// Calibration of the hybrid's deep ensemble and MC dropout, and of the pure-ML models' deep ensembles, on the
    /// validation and test years, as trained and recalibrated on the validation years (issue #6 e).
    Uncertainty: CaseUncertainty.MethodResult[]
    /// The ablation rows (`AblationTable.names`; empty without `Settings.Ablation`): each variant trained from the same
    /// fitted EBM, network seeds, data and budget as the hybrid, over its seeds (mean test MSE, per-seed MSEs; the
    /// rest from the first seed).
    Ablation: ModelResult[]
    /// Every number of the run as long-format rows, what the report's tables are computed from: every part's rows in
    /// the order of `parts` (each model's metrics and parameters per seed, validation MSEs, the uncertainty
    /// experiment's), each model's physics residual at its first seed as `assemble` computes it.
    Rows: ResultRow[]
}

/// Pre-industrial CO₂ (ppm).
[<Literal>]
let internal PreindustrialCo2 = 280.0

/// Forcing of a CO₂ doubling, 5.35·ln 2 (W/m²).
let internal doublingForcing = 5.35 * log 2.0

let private invariant = Globalization.CultureInfo.InvariantCulture

let private resourceLines (name: string) =
    use stream =
        typeof<Settings>.Assembly.GetManifestResourceStream name
        |> Option.ofObj
        |> Option.defaultWith (fun () ->
            raise (HybridException $"The data set {name} is not embedded in Hybrid.Models (build issue)."))

    use reader = new StreamReader(stream)

    reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
    |> Array.skip 1
    |> Array.map (fun line -> line.Trim().Split ',')

let private number (field: string) =
    match Double.TryParse(field, Globalization.NumberStyles.Float, invariant) with
    | true, v -> Some v
    | _ -> None

/// The data as shipped with the library (data/temperature-carbon-annual.csv, data/mauna-loa-co2-monthly.csv),
/// with CO₂ reconstructed before 1959 and the forcing computed.
let load () : Data =
    let rows =
        resourceLines "temperature-carbon-annual.csv"
        |> Array.map (fun f -> int f[0], number f[1], number f[4])
        |> Array.sortBy (fun (y, _, _) -> y)

    // Cumulative fossil emissions (GtC) at the end of each year with a record (1751–2014).
    let cumulative =
        rows
        |> Array.choose (fun (y, _, e) -> e |> Option.map (fun e -> y, e / 1000.0))
        |> Array.scan (fun (_, total) (y, e) -> y, total + e) (0, 0.0)
        |> Array.skip 1
        |> dict

    // Annual means of the seasonally adjusted Mauna Loa record, years with all twelve months' worth or fewer.
    let maunaLoa =
        resourceLines "mauna-loa-co2-monthly.csv"
        |> Array.choose (fun f ->
            match number f[2] with
            | Some c -> Some(int (f[0].Substring(0, 4)), c)
            | None -> None)
        |> Array.groupBy fst
        |> Array.filter (fun (y, _) -> y >= 1959)
        |> Array.map (fun (y, cs) -> y, Array.averageBy snd cs)
        |> dict

    let fitYears =
        [| 1959..2014 |]
        |> Array.filter (fun y -> maunaLoa.ContainsKey y && cumulative.ContainsKey y)

    // Least squares through C₀: a = Σ E (C − C₀) / Σ E².
    let a =
        (fitYears
         |> Array.sumBy (fun y -> cumulative[y] * (maunaLoa[y] - PreindustrialCo2)))
        / (fitYears |> Array.sumBy (fun y -> cumulative[y] * cumulative[y]))

    let errors =
        fitYears
        |> Array.map (fun y -> PreindustrialCo2 + a * cumulative[y] - maunaLoa[y])

    let observed =
        rows
        |> Array.choose (fun (y, t, _) -> t |> Option.map (fun t -> y, t))
        |> Array.filter (fun (y, _) -> y <= 2018)

    let years = Array.map fst observed

    let co2 =
        years
        |> Array.map (fun y ->
            if y >= 1959 then
                maunaLoa[y]
            else
                PreindustrialCo2 + a * cumulative[y])

    {
        Years = years
        Temperature = Array.map snd observed
        Co2 = co2
        Reconstructed = years |> Array.map (fun y -> y < 1959)
        Forcing = co2 |> Array.map (fun c -> 5.35 * log (c / PreindustrialCo2))
        Co2Slope = a
        Co2FitRmse = sqrt (errors |> Array.averageBy (fun e -> e * e))
        Co2FitMaxError = errors |> Array.map abs |> Array.max
        Co2FitYears = fitYears[0], fitYears[fitYears.Length - 1]
    }

let private f64 = torch.ScalarType.Float64

/// Geoffroy et al. (2013), CMIP5 multi-model means: C, C_d, λ, γ (W·yr·m⁻²·K⁻¹ and W·m⁻²·K⁻¹).
let internal literature = [| 7.3; 106.0; 1.13; 0.73 |]

/// The models' parameters C, C_d, λ, γ are these physical values divided by `scales` (units that make each of order one).
let internal scales = [| 10.0; 100.0; 1.0; 1.0 |]

/// The DSL names of C, C_d, λ, γ (in `scales`).
let internal parameterNames = [| "C"; "C_d"; "lambda"; "gamma" |]

/// The time scheme of every rollout of the case: explicit Euler, one step a year (so the forcing enters at the
/// years themselves). Each evaluation of the hybrid's network costs about as much as the rest of a step, so
/// RK4's four stages would make training four times slower for a difference far below the year-to-year noise.
let internal scheme = Scheme.Euler

/// The two-box model's equations with an optional extra term on the surface budget (W/m²). T is the observed
/// anomaly (T + T₀ of the class description), so the state's departure from pre-industrial equilibrium is T − T₀.
let private twoBox (extra: Expr option) =
    let T, Td, F = sym "T", sym "T_d", sym "F"

    let C, Cd, lambda, gamma, t0 =
        sym "C", sym "C_d", sym "lambda", sym "gamma", sym "T0"

    let exchange = gamma * (T - t0 - Td)
    let budget = F - lambda * (T - t0) - exchange

    let budget =
        match extra with
        | Some e -> budget + e
        | None -> budget

    dt T == budget / (scales[0] * C), dt Td == exchange / (scales[1] * Cd)

/// The two-box energy-balance model (literature values; T₀ = 0):
///   10 C dT/dt = F − λ (T − T₀) − γ (T − T₀ − T_d),   100 C_d dT_d/dt = γ (T − T₀ − T_d),
///   T(1880) = T₀, T_d(1880) = 0,
/// time in years since 1880, C and C_d in 10 and 100 W·yr·m⁻²·K⁻¹, λ and γ in W·m⁻²·K⁻¹ (all positive), T₀ the
/// 1880 anomaly (°C, free), F the forcing (W/m²) given as `CompileOptions.Forcings["F"]`.
let internal physicsModel: Model =
    let surface, deep = twoBox None

    model "two_box_ebm" {
        domain point
        field "T"
        field "T_d"
        param "C" (positive (literature[0] / scales[0]))
        param "C_d" (positive (literature[1] / scales[1]))
        param "lambda" (positive literature[2])
        param "gamma" (positive literature[3])
        param "T0" (free 0.0)
        forcing "F"
        equation surface
        equation deep
        initialValue "T" (sym "T0")
        initialValue "T_d" 0.0
    }

/// The hybrid: `physicsModel` plus `scale`·N(T − T₀, F/2) W/m² on the surface budget, N the closure "N" (an MLP
/// 2 → width → width → 1, tanh; the case supplies its own seeded module under that name).
let internal hybridModel (width: int) (scale: float) : Model =
    let T, F, t0 = sym "T", sym "F", sym "T0"
    let surface, deep = twoBox (Some(scale * call "N" [ T - t0; F / 2.0 ]))

    model "two_box_ebm_hybrid" {
        domain point
        field "T"
        field "T_d"
        param "C" (positive (literature[0] / scales[0]))
        param "C_d" (positive (literature[1] / scales[1]))
        param "lambda" (positive literature[2])
        param "gamma" (positive literature[3])
        param "T0" (free 0.0)
        forcing "F"
        neural "N" (mlp [ 2; width; width; 1 ])
        equation surface
        equation deep
        initialValue "T" (sym "T0")
        initialValue "T_d" 0.0
    }

/// The "same network, no physics" control (`ModelTable.NoPhysics`): the hybrid's surface equation with the two-box
/// terms removed, one field T and no deep ocean:
///   dT/dt = `scale`·N(T − T₀, F/2) / C_lit,   T(1880) = T₀,
/// N the same closure "N" as the hybrid's, C_lit = 7.3 W·yr·m⁻²·K⁻¹ (`literature`'s heat capacity) a fixed
/// conversion of the network's W/m² to K/yr (not fitted), T₀ the parameter of the initial state.
let internal neuralOdeModel (width: int) (scale: float) : Model =
    let T, F, t0 = sym "T", sym "F", sym "T0"

    model "neural_ode_temperature" {
        domain point
        field "T"
        param "T0" (free 0.0)
        forcing "F"
        neural "N" (mlp [ 2; width; width; 1 ])
        equation (dt T == scale * call "N" [ T - t0; F / 2.0 ] / literature[0])
        initialValue "T" (sym "T0")
    }

/// An annual series as a forcing of time in years since its first year: linear between years, constant beyond
/// the ends; a 0-dim tensor.
let internal interpolated (values: float[]) (t: float) : torch.Tensor =
    let last = values.Length - 1
    let k = max 0 (min (last - 1) (int (floor t)))
    let w = max 0.0 (min 1.0 (t - float k))
    torch.tensor ((1.0 - w) * values[k] + w * values[k + 1], dtype = f64)

/// Compiles `m` with the annual forcing `forcing` and the closures `modules`.
let internal compileWith (forcing: float[]) (modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>) list) m =
    Compiler.compile
        {
            Compiler.defaults with
                Forcings = Map [ "F", interpolated forcing ]
                Modules = Map modules
        }
        m

/// Rollout options of the case: `scheme`, one step a year, saving every year 0 … years − 1 (since the first).
let internal yearly (years: int) : RolloutOptions = {
    Rollout.defaults with
        Scheme = scheme
        Dt = 1.0
        SaveTimes = Array.init years float
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// The simulated record of `sim` from its initial state: (T, T_d), each [years].
let internal simulateRecord (sim: Simulator) (years: int) : torch.Tensor * torch.Tensor =
    let v = sim.Simulate(sim.Initial 1, yearly years).Values
    v[0].reshape -1L, v[1].reshape -1L

/// The simulated surface anomaly T of `sim` from its initial state, [years] (also for the one-field control).
let internal simulateSurface (sim: Simulator) (years: int) : torch.Tensor =
    sim.Simulate(sim.Initial 1, yearly years).Values[0].reshape -1L

/// C, C_d, λ, γ in physical units and T₀ of a compiled two-box model (with or without its network).
let private physicalValues (sim: Simulator) =
    let physical =
        Array.map2 (fun name u -> (sim.Param name).Get() * u) parameterNames scales

    physical, (sim.Param "T0").Get()

/// The training years whose temperatures enter the loss under `s.TrainFraction` and `s.TrainSubset`, out of the
/// `trainYears` up to the cut-off: (index of the first, count), ⌈f·trainYears⌉ contiguous years, at least 2: the
/// most recent for subset 0, a seeded random block otherwise.
let internal trainingYears (s: Settings) (trainYears: int) : int * int =
    let kept = TrainFraction.count "Energy balance" s.TrainFraction 2 trainYears
    TrainFraction.blockStart "Energy balance" s.TrainSubset (trainYears - kept) kept trainYears, kept

/// The years every model is fitted to and the validation block after them, out of the `trainYears` up to the cut-off:
/// (index of the first fitted year, number fitted, number of validation years). The covered block of
/// `trainingYears` ends with `EarlyStopping.heldOut` years (at least 20 left to fit; 0 for none) held out for
/// validation; the test years come after all of it.
let internal split (s: Settings) (trainYears: int) : int * int * int =
    let first, covered = trainingYears s trainYears
    let validation = EarlyStopping.heldOut s.EarlyStopping covered 20
    first, covered - validation, validation

/// One independent part of the case's work (a task of the report's sweep): the models it trains and the network
/// seed they start from. "physics" fits both physics models (no seed: 0); "hybrid", `ModelTable.NoPhysics` (the
/// control), "LSTM", "Transformer" and "PINN" train one seed of that model (the hybrid and the PINN refit the physics they start from, which is
/// deterministic); "uncertainty" runs the hybrid's deep ensemble and MC dropout (seed: the first member's).
/// Its Model is "physics", "hybrid", `ModelTable.NoPhysics`, "LSTM", "Transformer", "PINN", "uncertainty" or
/// "ablation".
type Part = CasePart.Part

/// What one part computed.
type PartResult = CasePart.PartResult<ModelResult>

/// The models whose uncertainty is compared (name, whether MC dropout applies): the hybrid, and the pure-ML models
/// that forecast the same years: the control, the LSTM and the transformer (ensembles only).
let uncertaintyCandidates = [
    "hybrid", true
    ModelTable.NoPhysics, false
    "LSTM", false
    "Transformer", false
]

/// The parts of a run under `s`, in the order `run` takes them: the physics, then each network over its
/// `Seeds` seeds (the hybrid and the control from `Seed`, the sequence models and the PINN from `Seed` + 100), then the
/// uncertainty parts (`CasePart.uncertaintyParts`; none with `CaseUncertainty.off`), then the ablation (with
/// `Ablation`).
let parts (s: Settings) : Part list =
    let networks =
        CasePart.parts
            [
                "hybrid", s.Seed
                // The control has the hybrid's seeds: the same network initialisations.
                ModelTable.NoPhysics, s.Seed
                "LSTM", s.Seed + 100
                "Transformer", s.Seed + 100
                "PINN", s.Seed + 100
            ]
            s.Seeds
            (CasePart.uncertaintyParts s.Uncertainty uncertaintyCandidates)

    if s.Ablation then
        networks
        @ [
            for seed in Comparison.seeds s.Seed s.Seeds -> { Model = "ablation"; Seed = seed }
        ]
    else
        networks

/// The physics fits this process made: raw parameter values (C, C_d, λ, γ, T₀) and the fit's wall time per settings.
let private physicsFits =
    Collections.Concurrent.ConcurrentDictionary<Settings, float[] * float>()

/// The raw values of the two-box parameters of `sim` (C, C_d, λ, γ, T₀; the hybrid's physics too; T₀ alone for
/// the no-physics control, the only one it declares).
let private physicsRaw (sim: Simulator) =
    Array.append parameterNames [| "T0" |]
    |> Array.filter (fun name -> sim.Parameters |> Array.exists (fun p -> p.Name = name))
    |> Array.map (fun name -> (sim.Param name).Raw)

/// The raw values of the two-box parameters of `sim` as numbers (`physicsRaw` order).
let internal physicsValues (sim: Simulator) : float[] =
    physicsRaw sim |> Array.map (fun p -> p.ToDouble())

/// Puts raw values (`physicsValues` order) into `sim`'s two-box parameters.
let internal setPhysics (sim: Simulator) (values: float[]) =
    use _ = torch.no_grad ()

    Array.iter2 (fun (p: Modules.Parameter) (v: float) -> withScalar v p.fill_ |> ignore) (physicsRaw sim) values

/// What a model is fitted to: the annual forcing from the first year (W/m²), the anomalies of those years [years]
/// and the years the loss covers (index of the first, count).
type internal Target = {
    /// Forcing per year (W/m²); its length is the number of years every rollout covers.
    Forcing: float[]
    /// Anomalies per year (°C), [years]; only `First` … `First + Kept − 1` are read.
    Observed: torch.Tensor
    /// Index of the first year the loss covers.
    First: int
    /// Number of years the loss covers.
    Kept: int
    /// Number of validation years right after the covered ones (0 for none): early stopping scores the rollout's
    /// MSE over them.
    Validation: int
}

/// The years of `target` that the loss covers, of a record [years].
let private covered (target: Target) (record: torch.Tensor) =
    record.narrow (0L, int64 target.First, int64 target.Kept)

/// The surface anomaly of `sim`'s rollout (up to the last covered year) minus the covered years of `target`.
let private residuals (target: Target) (sim: Simulator) =
    let surface, _ = simulateRecord sim (target.First + target.Kept)
    covered target surface .- covered target target.Observed

/// MSE of the surface anomaly of `sim`'s rollout (up to the last covered year) against the covered years of `target`.
let private misfit (target: Target) (sim: Simulator) = (square (residuals target sim)).mean ()

/// Fits C, C_d, λ, γ, T₀ of `sim` (`physicsModel` compiled on `target.Forcing`, from its current values) to
/// `target` by `Trainer.train`: Adam, one group θ at rate 0.1 decaying to 0.001 (cosine), `epochs` rollouts.
/// Returns the wall time (s).
let internal fitPhysics (target: Target) (sim: Simulator) (epochs: int) : float =
    let fit =
        Trainer.train
            {
                Trainer.defaults with
                    Epochs = epochs
                    Groups = [|
                        {
                            Trainer.group "theta" 0.1 (sim.Trainable()) with
                                Schedule = LrSchedule.Cosine 0.01
                        }
                    |]
            }
            {
                Loss =
                    fun _ ->
                        let l = misfit target sim
                        { Total = l; Parts = [| "data", l |] }
                Validation = None
            }

    fit.WallTime.TotalSeconds

/// How a hybrid is trained: the learning rates of the groups θ and φ and the λ schedule of the
/// physics-residual term (λ times the mean square of the record's residual under the fitted EBM, `Simulator.Residual`
/// in the consistent form of `scheme`), and whether the two-box terms are removed (the no-physics control).
type internal Variant = {
    /// Learning rate of θ.
    ThetaRate: float
    /// Learning rate of φ.
    PhiRate: float
    /// Weight of the physics residual per epoch.
    Lambda: LambdaSchedule
    /// Trains `neuralOdeModel` (the network alone, θ = T₀ only) instead of `hybridModel`.
    NoPhysics: bool
}

/// The hybrid as the case reports it: θ and φ at one rate (5e-3), no physics-residual term.
let internal reported = {
    ThetaRate = 5e-3
    PhiRate = 5e-3
    Lambda = LambdaSchedule.Constant 0.0
    NoPhysics = false
}

/// The "same network, no physics" control: `reported` on `neuralOdeModel`.
let internal noPhysics = { reported with NoPhysics = true }

/// `variant` with θ and φ at the tuned rate of `model` (both 5e-3 where it has none).
let internal tunedRates (s: Settings) (model: string) (variant: Variant) : Variant =
    let rate = Tuned.value s.Tuned model Tuned.LearningRate 5e-3

    {
        variant with
            ThetaRate = rate
            PhiRate = rate
    }

/// The MSE over the validation years of `target` of the surface anomaly `surface years` gives for the first
/// `years` years (NaN without validation years).
let private validationMisfitOf (target: Target) (surface: int -> torch.Tensor) : float =
    if target.Validation = 0 then
        nan
    else
        use _ = torch.no_grad ()
        let record = surface (target.First + target.Kept + target.Validation)
        let start = int64 (target.First + target.Kept)
        let v = int64 target.Validation
        (square (record.narrow (0L, start, v) .- target.Observed.narrow (0L, start, v))).mean().ToDouble()

/// The surface anomaly's MSE over the validation years of `target` of `sim`'s rollout (NaN without them).
let private validationMisfit (target: Target) (sim: Simulator) : float =
    validationMisfitOf target (simulateSurface sim)

/// Early stopping on `score` under the case's rule (None without validation years).
let private stoppingOn (s: Settings) (target: Target) (score: unit -> float) : EarlyStopping.Check option =
    if target.Validation = 0 then
        None
    else
        Some {
            Score = score
            Rule = s.EarlyStopping
        }

/// A hybrid (`hybridModel`, or `neuralOdeModel` under `variant.NoPhysics`) with its network N from `seed` (output
/// layer zero, dropout `dropout`) and its physics from the raw values `start` (`physicsValues` order; T₀ alone for
/// the control), trained on `target` by `Trainer.train` for `epochs`
/// rollouts: Adam with the groups θ (C, C_d, λ, γ, T₀) and φ (the network), both at rate 5e-3, on the MSE plus
/// `s.CorrectionPenalty` times the mean square of N along the covered years; `variant` may set φ's rate and add a
/// physics-residual term under `physics` (the fitted EBM). Returns the simulator, the network (in eval mode) and
/// the wall time (s).
let internal trainVariant
    (variant: Variant)
    (physics: Simulator option)
    (s: Settings)
    (target: Target)
    (start: float[])
    seed
    dropout
    epochs
    =
    let key = if variant.NoPhysics then ModelTable.NoPhysics else "hybrid"

    let net =
        new Mlp("N", 2, 1, Tuned.width s.Tuned key s.Width, 2, dropout = dropout, dtype = f64)

    CaseTraining.initialise net seed true

    let sim =
        compileWith
            target.Forcing
            [ "N", net ]
            (if variant.NoPhysics then
                 neuralOdeModel (Tuned.width s.Tuned key s.Width) s.CorrectionScale
             else
                 hybridModel (Tuned.width s.Tuned key s.Width) s.CorrectionScale)

    setPhysics sim start
    let halfForcing = torch.tensor (target.Forcing, dtype = f64) ./ 2.0

    // The network's inputs along the covered years, as in the closure call N(T − T₀, F/2).
    let penalty (surface: torch.Tensor) =
        let inputs =
            torch.stack (
                [|
                    covered target surface .- (sim.Param "T0").Value
                    covered target halfForcing
                |],
                1L
            )

        (square (net.forward inputs)).mean ()

    let options, validation =
        EarlyStopping.apply (stoppingOn s target (fun () -> validationMisfit target sim)) epochs {
            Trainer.defaults with
                Epochs = epochs
                Seed = seed
                Groups = [|
                    Trainer.group "theta" variant.ThetaRate (physicsRaw sim)
                    Trainer.group "phi" variant.PhiRate (Neural.parameters net)
                |]
                Modules = [| net |]
                Lambda = variant.Lambda
        }

    let fit =
        Trainer.train options {
            Loss =
                fun context ->
                    let years = target.First + target.Kept
                    let record = sim.Simulate(sim.Initial 1, yearly years).Values
                    let surface = record[0].reshape -1L
                    let data = Loss.mse (covered target surface) (covered target target.Observed)
                    let n = penalty surface
                    let total = data .+ n .* s.CorrectionPenalty

                    match physics with
                    | Some p when context.Lambda > 0.0 ->
                        let r =
                            p.Residual(
                                ResidualForm.Consistent scheme,
                                Array.init years float,
                                [| surface.reshape (-1L, 1L); record[1].reshape (-1L, 1L) |]
                            )

                        let residual = square r.Norms[0]

                        {
                            Total = total .+ residual .* context.Lambda
                            Parts = [| "data", data; "N penalty", n; "physics residual", residual |]
                        }
                    | _ -> {
                        Total = total
                        Parts = [| "data", data; "N penalty", n |]
                      }
            Validation = validation
        }

    net.eval () |> ignore
    sim, net, fit.WallTime.TotalSeconds

/// `trainVariant reported` at the hybrid's tuned rate: the hybrid as the case reports it.
let internal trainHybrid (s: Settings) (target: Target) (start: float[]) seed dropout epochs =
    trainVariant (tunedRates s "hybrid" reported) None s target start seed dropout epochs

/// α-fusion of the fitted two-box model with the no-physics control's neural ODE (issue #15, 2 b): ŷ = α·F_θ +
/// (1 − α)·G_φ on the surface anomaly of every year, F_θ the two-box model (`physicsModel`) from the raw values
/// `start` (θ: C, C_d, λ, γ, T₀, trainable), G_φ `neuralOdeModel` with the hybrid's network N from `seed` (output
/// layer zero) and its own T₀ from `neuralStart`, both rolled out from 1880 by the compiled simulator and fused by
/// `FusedRollout.fuse` (a gate sees the year over the last one and F_θ); trained end to end with the hybrid's groups,
/// rates, penalty (on N along G's covered years) and `epochs`, α in a group of its own (`CaseTraining.fusionRate`).
/// Returns the fused record's function ([years], the surface anomaly), the physics branch's simulator, the learned α
/// or mean gate over the record, the network and fusion layer's weight count and the wall time (s).
let internal trainFused
    (mode: FusionMode)
    (s: Settings)
    (target: Target)
    (start: float[])
    (neuralStart: float)
    seed
    epochs
    =
    let width = Tuned.width s.Tuned "hybrid" s.Width
    let rate = Tuned.value s.Tuned "hybrid" Tuned.LearningRate 5e-3
    let net = new Mlp("N", 2, 1, width, 2, dtype = f64)
    CaseTraining.initialise net seed true
    let physics = compileWith target.Forcing [] physicsModel
    setPhysics physics start

    let neural =
        compileWith target.Forcing [ "N", net ] (neuralOdeModel width s.CorrectionScale)

    setPhysics neural [| neuralStart |]
    let fusion = CaseTraining.fusionLayer mode seed

    let halfForcing = torch.tensor (target.Forcing, dtype = f64) ./ 2.0

    // The fused surface anomaly and G's own, over the first `years` years.
    let record (years: int) =
        let f = simulateSurface physics years
        let g = simulateSurface neural years
        let time = torch.linspace (0.0, 1.0, int64 years, dtype = f64)
        (FusedRollout.fuse fusion [| 1.0 |] time [| f |] [| g |]).Fused[0], g

    let fit =
        CaseTraining.joint
            {
                CaseTraining.hybridDefaults
                    (List.ofArray (Array.append (physicsRaw physics) (physicsRaw neural)))
                    net
                    epochs
                    seed with
                    ThetaRate = rate
                    PhiRate = rate
                    Fusion = Some fusion
                    FusionRate = CaseTraining.fusionRate mode
                    Stopping =
                        stoppingOn s target (fun () -> validationMisfitOf target (fun years -> fst (record years)))
            }
            (fun _ ->
                let y, g = record (target.First + target.Kept)

                let inputs =
                    torch.stack ([| covered target g .- (neural.Param "T0").Value; covered target halfForcing |], 1L)

                [
                    "data", Loss.mse (covered target y) (covered target target.Observed)
                    "N penalty", s.CorrectionPenalty .* (square (net.forward inputs)).mean ()
                ])

    net.eval () |> ignore
    fusion.eval () |> ignore
    let years = target.Forcing.Length

    let alpha =
        use _ = torch.no_grad ()
        record years |> ignore
        fusion.Alpha

    (fun () -> fst (record years)),
    physics,
    alpha,
    float (Neural.parameterCount net + Neural.parameterCount fusion),
    fit.WallTime.TotalSeconds

/// The models of one part of the case and its uncertainty experiment (`runPart` adds their rows).
let private runModels (s: Settings) (part: Part) : PartResult =
    CasePart.checkKnown
        "Energy balance"
        [
            "physics"
            "hybrid"
            ModelTable.NoPhysics
            "LSTM"
            "Transformer"
            "PINN"
            "ablation"
            yield! CasePart.uncertaintyModels uncertaintyCandidates
        ]
        part

    let needsPhysics =
        match part.Model with
        | CasePart.UncertaintyOf(candidate, _) -> candidate = "hybrid"
        | model -> not (List.contains model [ "LSTM"; "Transformer"; ModelTable.NoPhysics ])

    Engine.init ()
    use outer = torch.NewDisposeScope()
    let data = load ()
    let years = data.Years.Length

    let trainYears =
        data.Years |> Array.filter (fun y -> y <= s.CutoffYear) |> Array.length

    let testYears = years - trainYears

    if trainYears < 30 || testYears < 1 then
        raise (HybridException $"Energy balance: cut-off year {s.CutoffYear} leaves too few training or test years.")

    let observed = torch.tensor (data.Temperature, dtype = f64)
    let trainObserved = observed.narrow (0L, 0L, int64 trainYears)
    // The one place the training data is selected: every model is fitted to years first … trainYears − 1 only
    // (rollouts still start in 1880); "train MSE" in the table stays the error over all training years.
    // The last years of the covered ones are the validation block; every model is fitted to the `kept` before them.
    let first, kept, validationYears = split s trainYears
    let fitObserved = observed.narrow (0L, int64 first, int64 kept)

    let validationObserved =
        observed.narrow (0L, int64 (first + kept), int64 validationYears)

    let validationOf (simulated: torch.Tensor) =
        if validationYears = 0 then
            nan
        else
            (square (
                simulated.narrow (0L, int64 (first + kept), int64 validationYears)
                .- validationObserved
            ))
                .mean()
                .ToDouble()

    let testObserved = observed.narrow (0L, int64 trainYears, int64 testYears)

    let fitted (surface: torch.Tensor) =
        surface.narrow (0L, int64 first, int64 kept)

    let named (sim: Simulator) =
        let physical, offset = physicalValues sim

        [|
            "C (W yr/m2/K)", physical[0]
            "C_d (W yr/m2/K)", physical[1]
            "lambda (W/m2/K)", physical[2]
            "gamma (W/m2/K)", physical[3]
            "ECS (K)", doublingForcing / physical[2]
            "T0 (C)", offset
        |]

    let evaluate name description (simulate: unit -> torch.Tensor) seconds epochs parameters =
        use _ = torch.no_grad ()
        let simulated, inference = CaseTraining.timed simulate

        {
            Name = name
            Description = description
            TestMse = square(simulated.narrow (0L, int64 trainYears, int64 testYears) - testObserved).mean().ToDouble()
            TrainMse = square(simulated.narrow (0L, 0L, int64 trainYears) - trainObserved).mean().ToDouble()
            ValidationMse = validationOf simulated
            TrainSeconds = seconds
            InferenceSeconds = inference
            SeedTestMse = [||]
            PhysicsResidual = nan
            Epochs = epochs
            Parameters = parameters
            Simulated = simulated.data<float>().ToArray()
        }

    let record (sim: Simulator) () = simulateSurface sim years

    // Literature parameters; T₀ is the mean training residual of the run from T₀ = 0 (the least-squares T₀:
    // T − T₀ does not depend on T₀).
    let literatureSim = compileWith data.Forcing [] physicsModel

    let literatureModel =
        (literatureSim.Param "T0").Set 0.0

        let offset =
            use _ = torch.no_grad ()
            (fitObserved - fitted (record literatureSim ())).mean().ToDouble()

        (literatureSim.Param "T0").Set offset

        evaluate
            "EBM literature"
            "two-box EBM, Geoffroy et al. (2013) CMIP5 means; only the offset T0 fitted (closed form)"
            (record literatureSim)
            0.0
            0
            (named literatureSim)

    // Fitted physics: Adam on C, C_d, λ, γ, T₀ from the literature values and offset (`Trainer.train`).
    let fittedSim = compileWith data.Forcing [] physicsModel
    (fittedSim.Param "T0").Set((literatureSim.Param "T0").Get())

    let target = {
        Forcing = data.Forcing
        Observed = observed
        First = first
        Kept = kept
        Validation = validationYears
    }

    // The physics fit is deterministic: a process fits once per settings and puts the same values back for the
    // next part that needs them (the in-process report's parts); a fresh process fits again.
    let physicsSeconds =
        if not needsPhysics then
            0.0
        else
            match physicsFits.TryGetValue s with
            | true, (values, seconds) ->
                setPhysics fittedSim values
                seconds
            | _ ->
                let seconds = fitPhysics target fittedSim s.PhysicsIterations
                physicsFits[s] <- (physicsValues fittedSim, seconds)
                seconds

    let fittedModel =
        evaluate
            "EBM fitted"
            "two-box EBM, C, C_d, lambda, gamma and T0 fitted on the training years"
            (record fittedSim)
            physicsSeconds
            s.PhysicsIterations
            (named fittedSim)

    // Hybrid: the fitted physics plus N(T − T₀, F/2), trained jointly from there (θ and φ as two groups).
    let fittedRaw = physicsValues fittedSim

    let hybridResult seed =
        let sim, net, hybridSeconds =
            trainHybrid s target fittedRaw seed 0.0 s.HybridIterations

        // Standard errors of C, C_d, λ, γ (physical units) on the covered years, the network at its trained weights.
        let errors =
            CaseTraining.standardErrors (fun () -> residuals target sim) sim (List.ofArray parameterNames)
            |> Array.mapi (fun i (_, se) -> fst ((named sim)[i]) + CaseTraining.StandardErrorSuffix, se * scales[i])

        let width = Tuned.width s.Tuned "hybrid" s.Width
        let rate = Tuned.value s.Tuned "hybrid" Tuned.LearningRate 5e-3

        evaluate
            "hybrid (EBM + MLP)"
            $"two-box EBM + MLP correction N(T - T0, F/2) ({width} units, output scaled by {s.CorrectionScale} W/m2) on the surface energy budget, compiled from the DSL and trained jointly (Trainer.train, Adam {rate:G3} for θ and φ) from the fitted EBM"
            (record sim)
            (physicsSeconds + hybridSeconds)
            (s.PhysicsIterations + s.HybridIterations)
            (Array.concat [
                named sim
                errors
                [| "network weights", float (Neural.parameterCount net) |]
            ])

    // The "same network, no physics" control: the hybrid's network, seed, rates, penalty and epochs on dT/dt = N
    // alone; T₀ starts at the mean anomaly of the first ten years the loss covers (data, not a physics fit).
    let noPhysicsStart =
        use _ = torch.no_grad ()
        (fitted observed).narrow(0L, 0L, int64 (min 10 kept)).mean().ToDouble()

    let noPhysicsTrained seed iterations =
        trainVariant
            (tunedRates s ModelTable.NoPhysics noPhysics)
            None
            s
            target
            [| noPhysicsStart |]
            seed
            0.0
            iterations

    let noPhysicsResult seed =
        let sim, net, seconds = noPhysicsTrained seed s.HybridIterations

        let width = Tuned.width s.Tuned ModelTable.NoPhysics s.Width
        let rate = Tuned.value s.Tuned ModelTable.NoPhysics Tuned.LearningRate 5e-3

        evaluate
            ModelTable.NoPhysics
            $"dT/dt = N(T - T0, F/2) x {s.CorrectionScale} W/m2 / 7.3 W yr/m2/K: the hybrid's network form ({width} units, Adam {rate:G3} for T0 and N; the hybrid's seeds, penalty and epochs) without the two-box terms (T0 fitted with it)"
            (record sim)
            seconds
            s.HybridIterations
            [|
                "T0 (C)", (sim.Param "T0").Get()
                "network weights", float (Neural.parameterCount net)
            |]

    // All training years (the context of one-step predictions and forecasts) and the years kept (what is fitted).
    let fullHistory =
        data.Temperature |> Array.take trainYears |> Array.map (fun t -> [| t |])

    let history = fullHistory[first .. first + kept - 1]

    let exogenous = data.Forcing |> Array.map (fun f -> [| f / 2.0 |])

    // The validation years forecast from the years before them with the forcing known, as the test years are.
    let sequenceValidation (m: SequenceModels.Trained) =
        SequenceModels.forecast m fullHistory[.. first + kept - 1] exogenous validationYears
        |> Array.map (fun row -> row[0])

    let sequenceTrained architecture iterations seed =
        let key = SequenceModels.name architecture

        let validate (m: SequenceModels.Trained) =
            (Array.map2
                (fun (p: float) (t: float) -> (p - t) * (p - t))
                (sequenceValidation m)
                data.Temperature[first + kept .. first + kept + validationYears - 1])
            |> Array.average

        SequenceModels.fitForecasterWith
            (if validationYears = 0 then
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
            } [| history |] [| exogenous[first .. first + kept - 1] |]

    // A sequence model's record: the training years one step ahead, then the test years' forecast.
    let sequenceRecord (m: SequenceModels.Trained) () =
        let fitted = SequenceModels.oneStep m fullHistory exogenous
        let forecast = SequenceModels.forecast m fullHistory exogenous testYears

        let simulated =
            Array.concat [| fullHistory[0..0]; fitted; forecast |]
            |> Array.map (fun row -> row[0])

        torch.tensor (simulated, dtype = f64)

    let sequenceModel architecture seed =
        let m = sequenceTrained architecture s.SequenceIterations seed
        let simulate = sequenceRecord m

        let validate (m: SequenceModels.Trained) =
            (Array.map2
                (fun (p: float) (t: float) -> (p - t) * (p - t))
                (sequenceValidation m)
                data.Temperature[first + kept .. first + kept + validationYears - 1])
            |> Array.average

        {
            evaluate
                (SequenceModels.name architecture)
                $"{SequenceModels.name architecture} forecaster of T with F as exogenous input, {s.SequenceWindow}-year context, no physics; training years one-step ahead"
                simulate
                m.Seconds
                s.SequenceIterations
                [| "network weights", float (Neural.parameterCount m.Net) |] with
                ValidationMse = if validationYears = 0 then nan else validate m
        }

    let pinnModel seed =
        let value name =
            fittedModel.Parameters |> Array.find (fun (n, _) -> n = name) |> snd

        let heat, deep, lambda, gamma, t0 =
            value "C (W yr/m2/K)",
            value "C_d (W yr/m2/K)",
            value "lambda (W/m2/K)",
            value "gamma (W/m2/K)",
            value "T0 (C)"

        let yearsOf = Array.map (fun (y: int) -> [| float y |])
        let forcingTensor = torch.tensor (data.Forcing, dtype = f64)

        let problem = {
            Pinn.Inputs = Array.append (yearsOf data.Years[first .. first + kept - 1]) (yearsOf data.Years[0..0])
            Pinn.Targets = Array.append (history |> Array.map (fun row -> [| row[0]; nan |])) [| [| nan; 0.0 |] |]
            Pinn.Collocation = yearsOf data.Years
            Pinn.InputShift = [| 1949.0 |]
            Pinn.InputScale = [| 69.0 |]
            Pinn.OutputShift = [| 0.0; 0.0 |]
            Pinn.OutputScale = [| 0.5; 0.5 |]
            Pinn.Residual =
                fun f ->
                    let du = f.D f.U 0
                    let t = f.U.select (1L, 0L) .- t0
                    let td = f.U.select (1L, 1L)
                    let exchange = gamma .* (t .- td)

                    let surface =
                        heat .* du.select (1L, 0L) .- (forcingTensor .- lambda .* t .- exchange)

                    let ocean = deep .* du.select (1L, 1L) .- exchange
                    torch.stack ([| surface; ocean |], 1L)
        }

        let validationInputs =
            yearsOf data.Years[first + kept .. first + kept + validationYears - 1]

        let validate (predict: float[][] -> float[][]) =
            Array.map2
                (fun (p: float[]) (t: float) -> (p[0] - t) * (p[0] - t))
                (predict validationInputs)
                data.Temperature[first + kept .. first + kept + validationYears - 1]
            |> Array.average

        let m =
            Pinn.fitValidated
                (if validationYears = 0 then None else Some validate)
                s.EarlyStopping
                {
                    Pinn.defaults with
                        Iterations = s.PinnIterations
                        Seed = seed
                        Width = Tuned.width s.Tuned "PINN" Pinn.defaults.Width
                        LearningRate = Tuned.value s.Tuned "PINN" Tuned.LearningRate Pinn.defaults.LearningRate
                }
                problem

        evaluate
            "PINN"
            "MLP (T + T0, T_d)(t) on 1880–2000 + two-box ODE residual (EBM fitted parameters) at every year 1880–2018"
            (fun () -> torch.tensor (m.Predict(yearsOf data.Years) |> Array.map (fun row -> row[0]), dtype = f64))
            m.Seconds
            s.PinnIterations
            [| "network weights", float (Neural.parameterCount m.Net) |]

    // The uncertainty experiment's splits: the validation years (where there are any) and the test years.
    let uncertaintySplits = [|
        if validationYears > 0 then
            CaseUncertainty.Validation, validationObserved
        $"{s.CutoffYear + 1}–2018", testObserved
    |]

    // A model's predictions on the uncertainty splits from its simulated record, and its noise variance: the
    // record's MSE over the training years (mostly year-to-year variability the model cannot follow).
    let fromRecord (modules: torch.nn.Module[]) (simulate: unit -> torch.Tensor) : CaseUncertainty.Trained =
        let simulated () =
            use _ = torch.no_grad ()
            simulate ()

        {
            Modules = modules
            Predict =
                fun () ->
                    let record = simulated ()

                    [|
                        if validationYears > 0 then
                            record.narrow (0L, int64 (first + kept), int64 validationYears)
                        record.narrow (0L, int64 trainYears, int64 testYears)
                    |]
            NoiseVariance = (square (simulated().narrow (0L, 0L, int64 trainYears) - trainObserved)).mean().ToDouble()
        }

    // One network of the uncertainty experiment per candidate: the hybrid (members and the MC-dropout network, from
    // the fitted physics) at `Uncertainty.Iterations` and the control at the same (both have `HybridIterations`),
    // the sequence models at the same fraction of `SequenceIterations`.
    let uncertaintyTrainer (candidate: string) (seed: int) (dropout: float) : CaseUncertainty.Trained =
        match candidate with
        | "hybrid" ->
            let sim, net, _ =
                trainHybrid s target fittedRaw seed dropout s.Uncertainty.Iterations

            fromRecord [| net |] (record sim)
        | "LSTM"
        | "Transformer" ->
            let architecture =
                if candidate = "LSTM" then
                    SequenceModels.Architecture.Lstm
                else
                    SequenceModels.Architecture.Transformer

            let m =
                sequenceTrained
                    architecture
                    (CaseUncertainty.budget s.Uncertainty s.HybridIterations s.SequenceIterations)
                    seed

            let trained = fromRecord [| m.Net |] (sequenceRecord m)

            {
                trained with
                    Predict =
                        fun () -> [|
                            if validationYears > 0 then
                                torch.tensor (sequenceValidation m, dtype = f64)
                            (sequenceRecord m ()).narrow (0L, int64 trainYears, int64 testYears)
                        |]
            }
        | _ ->
            let sim, net, _ = noPhysicsTrained seed s.Uncertainty.Iterations
            fromRecord [| net |] (record sim)

    // The ablation (issue #15, 2 b–d): the hybrid's variants from the same fitted EBM, network seed, data and
    // budget, in `AblationTable.names` order.
    let ablation seed =
        let variant name description v =
            let sim, net, seconds =
                trainVariant v (Some fittedSim) s target fittedRaw seed 0.0 s.HybridIterations

            evaluate
                name
                description
                (record sim)
                (physicsSeconds + seconds)
                (s.PhysicsIterations + s.HybridIterations)
                (Array.append (named sim) [| "network weights", float (Neural.parameterCount net) |])

        // The fused models' G starts like the control: T₀ at the mean anomaly of the first ten covered years.
        let neuralStart =
            use _ = torch.no_grad ()
            (fitted observed).narrow(0L, 0L, int64 (min 10 kept)).mean().ToDouble()

        let fused mode name description =
            let simulate, physics, alpha, weights, seconds =
                trainFused mode s target fittedRaw neuralStart seed s.HybridIterations

            evaluate
                name
                description
                simulate
                (physicsSeconds + seconds)
                (s.PhysicsIterations + s.HybridIterations)
                (Array.append (named physics) [| CaseTraining.fusionParameter mode alpha; "network weights", weights |])

        // The table's hybrid: θ and φ at one rate (5e-3, or its tuned rate).
        let hybrid = tunedRates s "hybrid" reported

        [|
            variant
                AblationTable.SeparateRates
                $"the hybrid with its own learning rates: theta {hybrid.ThetaRate}, phi {4.0 * hybrid.PhiRate} (reported: both {hybrid.PhiRate})"
                {
                    hybrid with
                        PhiRate = 4.0 * hybrid.PhiRate
                }
            variant
                AblationTable.LambdaSchedule
                "the hybrid plus lambda times the mean square physics residual of its record under the fitted EBM, lambda from 0 to 1e3 over the first half of the epochs (reported: lambda = 0)"
                {
                    hybrid with
                        Lambda = LambdaSchedule.Linear(0.0, 1e3, s.HybridIterations / 2)
                }
            fused
                (FusionMode.Scalar 0.5)
                AblationTable.FusedScalar
                "alpha EBM + (1 - alpha) G: the two-box model from the fitted values (theta trainable) fused with the no-physics neural ODE dT/dt = N(T - T0, F/2) of the hybrid's network (G), one learned alpha from 0.5 (Adam 0.05), end to end on the hybrid's years, penalty and budget"
            fused
                (FusionMode.Gate(1, s.Width))
                AblationTable.FusedGate
                $"alpha(t, T) EBM + (1 - alpha) G: as the scalar fusion, alpha a per-year gate (MLP of the year over the last and the EBM's T, {s.Width} units, started at 0.5, phi's rate 5e-3)"
        |]

    match part.Model with
    | "ablation" -> {
        CasePart.PartResult.Models = ablation part.Seed
        Rows = [||]
        Uncertainty = [||]
      }
    | "physics" -> {
        CasePart.PartResult.Models = [| literatureModel; fittedModel |]
        Rows = [||]
        Uncertainty = [||]
      }
    | "hybrid" -> {
        Models = [| hybridResult part.Seed |]
        Rows = [||]
        Uncertainty = [||]
      }
    | ModelTable.NoPhysics -> {
        Models = [| noPhysicsResult part.Seed |]
        Rows = [||]
        Uncertainty = [||]
      }
    | "LSTM" -> {
        Models = [| sequenceModel SequenceModels.Architecture.Lstm part.Seed |]
        Rows = [||]
        Uncertainty = [||]
      }
    | "Transformer" -> {
        Models = [| sequenceModel SequenceModels.Architecture.Transformer part.Seed |]
        Rows = [||]
        Uncertainty = [||]
      }
    | "PINN" -> {
        Models = [| pinnModel part.Seed |]
        Rows = [||]
        Uncertainty = [||]
      }
    | CasePart.UncertaintyOf(candidate, dropout) ->
        CasePart.uncertaintyResult s.Uncertainty uncertaintySplits dropout part.Seed (uncertaintyTrainer candidate)
    | other -> raise (HybridException $"Energy balance: there is no part '{other}'.")

/// The case's name in rows.
[<Literal>]
let private Case = "energy-balance"

/// Runs one part of the case on the split at `s.CutoffYear` (any part, in any order or process: each sets up
/// the data and the physics it needs itself); its numbers leave it as rows: each model's (`PartRows.modelRows`; the
/// physics residual NaN, which `assemble` computes), the uncertainty experiment's (`UncertaintyRows`), then each
/// model's "validation" "mse".
let runPart (s: Settings) (part: Part) : PartResult =
    runModels s part
    |> Hybrid.Models.Tasks.PartRows.withRows Case part (fun m ->
        Hybrid.Models.Tasks.PartRows.ofFields [| "validation", m.ValidationMse |] m)

/// Builds the outcome from the results of every part of `parts s` (in any order): each network model's row is its
/// first seed's run with the mean test MSE and training time over its seeds and the per-seed test MSEs; every
/// model's physics residual is computed from its simulated record and the fitted physics. A missing part raises a
/// `HybridException` that names it.
let assemble (s: Settings) (results: (Part * PartResult) list) : Outcome =
    let data = load ()

    let trainYears =
        data.Years |> Array.filter (fun y -> y <= s.CutoffYear) |> Array.length

    let testYears = data.Years.Length - trainYears

    let resultOf (part: Part) =
        results
        |> List.tryFind (fun (p, _) -> p = part)
        |> Option.map snd
        |> Option.defaultWith (fun () ->
            raise (
                HybridException
                    $"Energy balance: the part {part.Model} (seed {part.Seed}) has no result; run it before assembling the outcome."
            ))

    let physics = (resultOf { Model = "physics"; Seed = 0 }).Models
    let fittedModel = physics[1]

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

    let testTrendMse =
        let xs = Array.init testYears float
        let ys = data.Temperature |> Array.skip trainYears
        let mx, my = Array.average xs, Array.average ys

        let slope =
            Array.fold2 (fun acc x y -> acc + (x - mx) * (y - my)) 0.0 xs ys
            / Array.sumBy (fun x -> (x - mx) * (x - mx)) xs

        Array.map2 (fun x y -> let e = my + slope * (x - mx) - y in e * e) xs ys
        |> Array.average

    // The physics residual of a simulated record (see `ModelResult.PhysicsResidual`): the compiled two-box model
    // with the fitted values, its consistent Euler residual of (T, T_d) with T_d the fitted model's deep box.
    let physicsResidual =
        Engine.init ()
        use _ = torch.no_grad ()

        let value name =
            fittedModel.Parameters |> Array.find (fun (n, _) -> n = name) |> snd

        let sim = compileWith data.Forcing [] physicsModel

        Array.iteri (fun i (name: string) -> (sim.Param parameterNames[i]).Set(value name / scales[i])) [|
            "C (W yr/m2/K)"
            "C_d (W yr/m2/K)"
            "lambda (W/m2/K)"
            "gamma (W/m2/K)"
        |]

        (sim.Param "T0").Set(value "T0 (C)")
        let years = data.Years.Length
        let _, deep = simulateRecord sim years
        let deep = deep.reshape(-1L, 1L).detach().clone ()
        let times = Array.init years float

        fun (simulated: float[]) ->
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()
            let surface = torch.tensor(simulated, dtype = f64).reshape (-1L, 1L)
            let r = sim.Residual(ResidualForm.Consistent scheme, times, [| surface; deep |])
            r.Norms[0].ToDouble()

    let models =
        [|
            physics[0]
            fittedModel
            overSeeds "hybrid" s.Seed
            overSeeds ModelTable.NoPhysics s.Seed
            overSeeds "LSTM" (s.Seed + 100)
            overSeeds "Transformer" (s.Seed + 100)
            overSeeds "PINN" (s.Seed + 100)
        |]
        |> Array.map (fun m -> {
            m with
                PhysicsResidual = physicsResidual m.Simulated
        })

    let ablation =
        if s.Ablation then
            let seeds = Comparison.seeds s.Seed s.Seeds

            let parts =
                seeds
                |> Array.map (fun seed -> (resultOf { Model = "ablation"; Seed = seed }).Models)

            [|
                for i in 0 .. parts[0].Length - 1 ->
                    let runs = parts |> Array.map (fun models -> models[i])
                    let mses = Comparison.summarise (runs |> Array.map (fun r -> r.TestMse))

                    {
                        runs[0] with
                            TestMse = mses.Mean
                            TrainSeconds = runs |> Array.averageBy (fun r -> r.TrainSeconds)
                            SeedTestMse = mses.Runs
                            PhysicsResidual = physicsResidual runs[0].Simulated
                    }
            |]
        else
            [||]

    {
        Data = data
        TrainYears = trainYears
        TestTrendMse = testTrendMse
        Models = models
        Uncertainty = CasePart.uncertainty s.Uncertainty uncertaintyCandidates resultOf
        Ablation = ablation
        Rows =
            Array.append models ablation
            |> Array.fold
                (fun rows m -> CasePart.withResidual m.Name m.PhysicsResidual rows)
                (CasePart.rowsOf (parts s) resultOf)
    }

/// Runs every model on the split at `s.CutoffYear`: every part of `parts s` in this process, one after another,
/// then `assemble`.
let run (s: Settings) : Outcome =
    parts s |> List.map (fun p -> p, runPart s p) |> assemble s
