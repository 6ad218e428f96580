/// Case study: theophylline after one oral dose (Boeckmann, Sheiner and Beal 1994; R `Theoph`), 12 subjects,
/// concentration (mg/L) over 0–25 h, dose in mg/kg. One-compartment model with first-order absorption, declared in
/// the DSL (`oneCompartmentModel`) and compiled by `Compiler.compile`: dA/dt = −ka A (gut, mg/kg), dC/dt = ka A / V
/// − ke C (plasma, mg/L); the single oral dose at t = 0 is the start state A(0) = dose, C(0) = 0 of each subject's
/// trajectory. A batch of subjects is one `Simulate` call (RK4 with step `Dt`, saving at the union of their sampling
/// times; each subject's samples are picked out of it).
/// Split (out of distribution: extrapolation in time after the dose, and in subjects): folds of four subjects
/// (1–4, 5–8, 9–12); each model is trained on the other eight subjects' samples up to `Cutoff` hours after the dose
/// (absorption and early elimination) and predicts the held-out subjects from their dose alone (population
/// predictions, no individual effects). Test MSE: the held-out subjects' samples after `Cutoff` (9, 12 and 24 h:
/// the late elimination no training sample shows). In-distribution MSE: the held-out subjects' samples up to
/// `Cutoff` (i.i.d. held-out subjects over the training time range).
/// Models: the one-compartment model with textbook parameters (ka 1.5 /h, ke 0.087 /h i.e. t½ 8 h, V 0.5 L/kg), the
/// same with ka, ke, V fitted (`fitOneCompartment`: least squares, `Trainer.train` then `Trainer.lbfgs`), a hybrid
/// whose elimination gets an MLP term dC/dt = ka A / V − ke C − N(C) (`hybridModel`; N starts at zero, trained
/// jointly with ka, ke, V by `Trainer.train`), and an MLP C(t, dose) with no physics (`Trainer.train`).
/// Baselines (`Hybrid.Models.Baselines`), on the same folds and samples: an LSTM and a transformer mapping each
/// subject's sampling sequence (t, dose, time since the previous sample) to its concentrations (no physics, no
/// observed concentration as input), and a PINN: an MLP (A, C)(t, dose) fitted to the training concentrations and
/// A(0) = dose, plus the residual of the compiled one-compartment model with the fold's fitted ka, ke, V, enforced
/// on a (t, dose) grid over 0–25 h and every subject's dose (the equation is known after the cutoff too). Every
/// model with a network (the hybrid, the MLP, the sequence models, the PINN) is trained from `Seeds` network seeds:
/// its test MSE is the mean over them (the spread is reported); its curve, parameters and train MSE are those of the
/// first seed. The physics fits have no seed.
/// No "same network, no physics" control (`ModelTable.NoPhysics`): without the absorption physics the hybrid's
/// network N(C / 10) never sees the dose, and dC/dt = −N(C / 10) from C(0) = 0 is monotone (one autonomous
/// dimension), so it cannot rise and fall; the report's section says so.
/// Ablation (`Settings.Ablation`; `Outcome.Ablation`), over the hybrid's seeds with its folds, samples and budget:
/// separate θ/φ rates, a λ schedule on the hybrid's residual under the fitted model over 0–25 h, and α-fusion of the
/// one-compartment model with an MLP C(t, dose) (`FusedRollout.fuse`; a scalar α and a per-point gate).
/// Validation (`Settings.EarlyStopping`, `validationSplit`): the last 20% of each fold's training subjects (two of
/// eight) are held out with their samples up to `Cutoff`; every model, the physics fit included, is fitted to the
/// other training subjects' samples up to `Cutoff`, and every network (the hybrid, the ablation variants and fused
/// models, the MLP, the sequence models and the PINN) stops early on its MSE on the validation subjects (patience a
/// quarter of its epochs, the best epoch's weights restored). Held-out subjects, not the last sampling times, so that
/// no sample after `Cutoff` is used for training or for choosing a model (the out-of-distribution test stays a
/// test of extrapolation in time) and the fit keeps the whole 0–`Cutoff` range, its early elimination included.
/// Learning rates and widths come from `Settings.Tuned` (`hybrid tune`, keys `tunedModels`) where tuned.
/// The run is split into parts (`parts`; the report's tasks, `PharmacokineticsTasks`): the physics, each network model
/// at each of its seeds, each ablation variant at each of the hybrid's seeds and the uncertainty experiment, each
/// computed alone by `runPart` (in any order or process) and put together by `assemble`; `run` does both in one
/// process.
module Hybrid.Models.Cases.Pharmacokinetics

open System
open System.Collections.Generic
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

/// Settings of the case.
type Settings = {
    /// Adam iterations for the fitted one-compartment model (before its L-BFGS polish).
    PhysicsIterations: int
    /// Adam iterations for the hybrid (after the physics fit it starts from).
    HybridIterations: int
    /// Adam iterations for the pure MLP.
    DataIterations: int
    /// RK4 step (hours; shortened before each sampling time).
    Dt: float
    /// Hidden width of the networks (two hidden layers, tanh).
    Width: int
    /// Weight of the L2 penalty on the hybrid's elimination term.
    CorrectionPenalty: float
    /// Folds evaluated (1–3; fold k holds out subjects 4k − 3 … 4k).
    Folds: int list
    /// First seed of the network initialisations (each network has its own seeds from it, see `Seeds`).
    Seed: int
    /// Adam iterations (full-batch epochs) of the LSTM and transformer baselines.
    SequenceIterations: int
    /// Adam iterations of the PINN.
    PinnIterations: int
    /// Number of seeds every model with a network is trained from (the hybrid, the MLP, the LSTM, transformer and
    /// PINN); the mean and spread of the test MSE are reported.
    Seeds: int
    /// Share of each fold's training subjects every model sees, in (0, 1]: the first ⌈f·n⌉ of them by id, at
    /// least one (see `trainingSubjects`); 1 keeps all. The held-out subjects never change.
    TrainFraction: float
    /// Which subjects a `TrainFraction` below 1 keeps: 0 the first by id, a seed ≥ 1 a seeded random choice of
    /// as many (`TrainFraction.indices`; see `trainingSubjects`). All of them at `TrainFraction` = 1.
    TrainSubset: int
    /// Hours after the dose up to which samples are trained on (and scored as in-distribution); later samples of
    /// the held-out subjects are the out-of-distribution test.
    Cutoff: float
    /// Uncertainty of the hybrid (deep ensemble, MC dropout) and of the pure-ML models (deep ensembles: the MLP,
    /// the LSTM and the transformer) on every fold's held-out subjects after `Cutoff`, recalibrated on the validation
    /// subjects' samples after `Cutoff`; `Iterations` are the hybrid members' iterations, the others get the same
    /// fraction of their own budget (`CaseUncertainty.budget`).
    Uncertainty: CaseUncertainty.Settings
    /// Adds the ablation (issue #15, 2 b–d; `Outcome.Ablation`), each variant from the hybrid's network seeds, folds,
    /// samples and budget: separate rates (θ 0.05, φ 5e-3 against the table's 5e-3 for both), a λ schedule on the
    /// physics residual, and α-fusion of the one-compartment model with an MLP C(t, dose) (scalar α, per-point gate).
    Ablation: bool
    /// The validation split and early-stopping rule (`validationSplit`); `EarlyStopping.off` trains on every kept
    /// training subject for the whole budget.
    EarlyStopping: EarlyStopping.Rule
    /// Tuned learning rates and widths by model key ("hybrid", "MLP", "LSTM", "Transformer", "PINN"; `hybrid tune`);
    /// a model without one uses the defaults (hybrid 5e-3 and `Width`, MLP 1e-2 and 16, sequence models 1e-2 and
    /// 16, PINN `Pinn.defaults`). The ablation variants and fused models use the hybrid's.
    Tuned: Map<string, Map<string, float>>
}

/// Report settings: all three folds, RK4 step 0.25 h, training samples up to 8 h.
let defaults = {
    PhysicsIterations = 300
    HybridIterations = 200
    DataIterations = 2000
    Dt = 0.25
    Width = 8
    CorrectionPenalty = 1e-2
    Folds = [ 1; 2; 3 ]
    Seed = 11
    SequenceIterations = 800
    PinnIterations = 2000
    Seeds = 5
    TrainFraction = 1.0
    TrainSubset = 0
    Cutoff = 8.0
    // Three members on the quick hybrid budget (80 iterations, not 200): every member is one hybrid per fold.
    Uncertainty = {
        CaseUncertainty.defaults with
            Members = 3
            Iterations = 80
    }
    Ablation = true
    EarlyStopping = EarlyStopping.defaults
    Tuned = Tuned.none
}

/// Tests and CI: the third fold only (train on subjects 1–8, test on 9–12), RK4 step 0.5 h, no ablation row, fewer
/// iterations (the
/// physics fit's L-BFGS polish finishes what 60 Adam steps leave).
let quick = {
    defaults with
        Folds = [ 3 ]
        Dt = 0.5
        PhysicsIterations = 60
        HybridIterations = 80
        DataIterations = 400
        SequenceIterations = 200
        PinnIterations = 500
        Seeds = 3
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 10
        }
        Ablation = false
}

/// One subject's record.
type Subject = {
    /// The subject's number in the data set.
    Id: int
    /// Body weight (kg).
    Weight: float
    /// Dose (mg/kg).
    Dose: float
    /// Sampling times (h).
    Times: float[]
    /// Concentrations (mg/L).
    Concentrations: float[]
}

/// One model's result, pooled over the evaluated folds.
type ModelResult = {
    /// The model's short name, as in the report's tables.
    Name: string
    /// What the model is, in one sentence, as in the report's tables.
    Description: string
    /// Mean squared error on the held-out subjects' samples after `Cutoff` (out of distribution), all folds
    /// pooled ((mg/L)²).
    TestMse: float
    /// Mean squared error on the held-out subjects' samples up to `Cutoff` (in distribution), all folds pooled.
    InDistributionMse: float
    /// Mean squared error on the training samples, averaged over folds; NaN if untrained.
    TrainMse: float
    /// Mean squared error on the validation subjects' samples up to `Cutoff`, all folds pooled (the first seed's;
    /// NaN without validation subjects).
    ValidationMse: float
    /// Training wall time summed over folds (s; for models run over several seeds, the mean per seed).
    TrainSeconds: float
    /// Wall time of predicting the held-out subjects, summed over folds (s; the first seed's).
    InferenceSeconds: float
    /// Training epochs (Adam iterations) per fold; a hybrid's include the physics fit's; 0 for fixed models.
    Epochs: int
    /// Test MSE per seed for the models run over several seeds (`TestMse` is their mean); empty otherwise.
    SeedTestMse: float[]
    /// Physics residual of `Curve`: its defect under the one-compartment flow with the last fold's fitted ka, ke, V
    /// from each curve time to the next (0.25 h), C(t + Δ) − Φ(C(t), A(t)), with the gut amount A(t) of the fitted
    /// model's own trajectory, RMS over the curve (mg/L; 0 up to round-off for "1-cpt fitted" itself).
    PhysicsResidual: float
    /// Parameters of the last fold evaluated (physical ones; networks report their size).
    Parameters: (string * float)[]
    /// Predicted curve for `Outcome.Shown` on `Outcome.CurveTimes` (from its held-out fold).
    Curve: float[]
}

/// Outcome of `run`.
type Outcome = {
    /// Every subject of the data set.
    Subjects: Subject[]
    /// Folds evaluated.
    Folds: int list
    /// Hours after the dose that split training (and in-distribution) samples from the out-of-distribution test.
    Cutoff: float
    /// Subject whose predicted curves are kept (the first held-out subject of the last fold).
    Shown: Subject
    /// Times of the kept curves (h).
    CurveTimes: float[]
    /// Each model's result, in the order of the report's tables.
    Models: ModelResult[]
    /// Calibration of the hybrid's deep ensemble and MC dropout, and of the pure-ML models' deep ensembles, on the
    /// validation subjects and the held-out subjects after `Cutoff`, folds pooled, as trained and recalibrated on the
    /// validation subjects (issue #6 e).
    Uncertainty: CaseUncertainty.MethodResult[]
    /// The ablation rows (`AblationTable.names`, over the hybrid's seeds; empty without `Settings.Ablation`).
    Ablation: ModelResult[]
    /// Every number of the run as long-format rows, what the report's tables are computed from: every part's rows in
    /// the order of `parts` (each model's metrics and parameters per seed, in-distribution and validation MSEs, the
    /// uncertainty experiment's), each model's physics residual at its first seed as `assemble` computes it.
    Rows: ResultRow[]
}

/// The data set as shipped with the library (data/theophylline-pk.csv).
let load () : Subject[] =
    use stream =
        typeof<Settings>.Assembly.GetManifestResourceStream "theophylline-pk.csv"
        |> Option.ofObj
        |> Option.defaultWith (fun () ->
            raise (HybridException "The theophylline data set is not embedded in Hybrid.Models (build issue)."))

    use reader = new StreamReader(stream)
    let c = Globalization.CultureInfo.InvariantCulture

    reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
    |> Array.skip 1
    |> Array.map (fun line -> line.Trim().Split ',' |> Array.map (fun f -> Double.Parse(f, c)))
    |> Array.groupBy (fun f -> int f[0])
    |> Array.sortBy fst
    |> Array.map (fun (id, rows) -> {
        Id = id
        Weight = rows[0][1]
        Dose = rows[0][2]
        Times = rows |> Array.map (fun r -> r[3])
        Concentrations = rows |> Array.map (fun r -> r[4])
    })

let private f64 = torch.ScalarType.Float64
let private horizon = 25.0

/// The one-compartment model with first-order oral absorption, textbook theophylline values as its start:
/// dA/dt = −ka A (gut, mg/kg), dC/dt = ka A / V − ke C (plasma, mg/L). The dose is the start state A(0) given to
/// `Simulate` (the declared initial values are placeholders).
let internal oneCompartmentModel: Model =
    let A, C, ka, ke, V = sym "A", sym "C", sym "ka", sym "ke", sym "V"

    model "theophylline_1cpt" {
        domain point
        field "A"
        field "C"
        param "ka" (positive 1.5)
        param "ke" (positive 0.087)
        param "V" (positive 0.5)
        equation (dt A == -ka * A)
        equation (dt C == ka * A / V - ke * C)
        initialValue "A" 0.0
        initialValue "C" 0.0
    }

/// The hybrid: the one-compartment model with an elimination closure N(C / 10) (a module supplied under "N"):
/// dC/dt = ka A / V − ke C − N(C / 10).
let internal hybridModel: Model =
    let A, C, ka, ke, V = sym "A", sym "C", sym "ka", sym "ke", sym "V"

    model "theophylline_1cpt_neural_elimination" {
        domain point
        field "A"
        field "C"
        param "ka" (positive 1.5)
        param "ke" (positive 0.087)
        param "V" (positive 0.5)
        neural "N" (named "N" 1)
        equation (dt A == -ka * A)
        equation (dt C == ka * A / V - ke * C - call "N" [ C / 10.0 ])
        initialValue "A" 0.0
        initialValue "C" 0.0
    }

/// The names of the physical parameters, in the order of the value arrays the case passes around.
let private physical = [ "ka"; "ke"; "V" ]

/// Textbook theophylline values of ka (1/h), ke (1/h, t½ 8 h) and V (L/kg), in `physical` order.
let internal textbook = [| 1.5; 0.087; 0.5 |]

/// `m` compiled with `net` (if any) as its closure N.
let private compileWith (m: Model) (net: Mlp option) =
    let modules =
        match net with
        | Some n -> Map [ "N", n :> torch.nn.Module<torch.Tensor, torch.Tensor> ]
        | None -> Map.empty

    Compiler.compile
        {
            Compiler.defaults with
                Modules = modules
        }
        m

/// The concentrations `sim` predicts at (subject index into `doses`, time) pairs: one batch from A(0) = dose,
/// C(0) = 0, RK4 with step `dt`, saved at the union of the pairs' times; [pairs].
let internal predictAt (sim: Simulator) (dt: float) (doses: float[]) (pairs: (int * float)[]) : torch.Tensor =
    let times =
        Array.append [| 0.0 |] (pairs |> Array.map snd) |> Array.distinct |> Array.sort

    let index = Dictionary<float, int>()
    times |> Array.iteri (fun i t -> index[t] <- i)
    let d = torch.tensor (doses, dtype = f64)

    let options = {
        Rollout.defaults with
            Scheme = Scheme.Rk4
            Dt = dt
            SaveTimes = times
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    let c = sim.Simulate([| d; torch.zeros_like d |], options).Values[1] // [times; B]

    let flat = pairs |> Array.map (fun (b, t) -> int64 (index[t] * doses.Length + b))

    c.reshape(-1L).index_select (0L, torch.tensor flat)

/// The tendency (dA/dt, dC/dt) of `sim` at states x [N; 2] with its current parameters held fixed (for the PINN's
/// residual): [N; 2].
let private tendency (sim: Simulator) (x: torch.Tensor) =
    let theta = sim.Theta() |> Array.map (fun t -> t.detach ())
    torch.stack (Dynamics.total sim.Dynamics theta 0.0 [| x.select (1L, 0L); x.select (1L, 1L) |], 1L)

/// Outer steps (of at most 20 iterations) of the physics fit's L-BFGS polish.
let private polishSteps = 10

/// (subject index, time) pairs of `group`'s samples that `keep` accepts, and their concentrations.
let internal samples (keep: float -> bool) (group: Subject[]) : (int * float)[] * float[] =
    group
    |> Array.mapi (fun b sub ->
        Array.zip sub.Times sub.Concentrations
        |> Array.filter (fst >> keep)
        |> Array.map (fun (t, c) -> (b, t), c))
    |> Array.concat
    |> Array.unzip

/// Fits ka, ke, V of `oneCompartmentModel` to the samples of `group` that `keep` accepts by least squares
/// (independent errors of one variance): Adam (`Trainer.train`, rate 0.05, `iterations` epochs) from the textbook
/// values, then L-BFGS (`Trainer.lbfgs`). Returns the simulator at the estimate, its residual function (predicted −
/// observed concentrations, for standard errors) and the wall time in seconds.
let internal fitOneCompartment (iterations: int) (dt: float) (keep: float -> bool) (group: Subject[]) =
    let sim = compileWith oneCompartmentModel None
    let pairs, observed = samples keep group
    let target = torch.tensor (observed, dtype = f64)
    let doses = group |> Array.map (fun x -> x.Dose)
    let residuals () = predictAt sim dt doses pairs .- target
    let watch = Diagnostics.Stopwatch.StartNew()

    Trainer.train
        {
            Trainer.defaults with
                Epochs = iterations
                Groups = [| Trainer.group "theta" 0.05 (sim.Trainable()) |]
        }
        {
            Loss =
                fun _ ->
                    let l = (square (residuals ())).mean ()
                    { Total = l; Parts = [| "data", l |] }
            Validation = None
        }
    |> ignore

    Trainer.lbfgs (sim.Trainable()) 1.0 polishSteps 20 (fun () -> (square (residuals ())).mean ())
    |> ignore

    sim, residuals, watch.Elapsed.TotalSeconds

/// A model's predictor for a fold: (subjects, (subject index, time) pairs) → concentrations.
type private Predictor = Subject[] -> (int * float)[] -> torch.Tensor

/// The training subjects of fold `fold` (1–3) under `s.TrainFraction` and `s.TrainSubset`: of the n subjects
/// outside the fold, in id order, ⌈f·n⌉ (at least one): the first for subset 0, a seeded random choice otherwise.
let internal trainingSubjects (s: Settings) (subjects: Subject[]) (fold: int) : Subject[] =
    let candidates = subjects |> Array.filter (fun x -> (x.Id - 1) / 4 + 1 <> fold)

    let kept =
        TrainFraction.count "Pharmacokinetics" s.TrainFraction 1 candidates.Length

    TrainFraction.indices "Pharmacokinetics" s.TrainSubset kept candidates.Length
    |> Array.map (fun i -> candidates[i])

/// The kept training subjects of fold `fold` (`trainingSubjects`) split into the subjects every model is fitted to
/// and the validation subjects: the last `EarlyStopping.heldOut` of them (20% by default, leaving at least two to
/// fit; none when fewer would remain), with their samples up to `Cutoff` only (see the module's doc).
let internal validationSplit (s: Settings) (subjects: Subject[]) (fold: int) : Subject[] * Subject[] =
    let kept = trainingSubjects s subjects fold
    let held = EarlyStopping.heldOut s.EarlyStopping kept.Length 2
    kept[.. kept.Length - held - 1], kept[kept.Length - held ..]

/// The keys of the network models (`Settings.Tuned`) and their first network seed's offset from `Settings.Seed`, in
/// the table's order.
let tunedModels = [ "hybrid", 0; "MLP", 1; "LSTM", 100; "Transformer", 100; "PINN", 100 ]

/// One independent part of the case's work (a task of the report's sweep): the models it trains and the network
/// seed they start from. "physics" gives the textbook and the fitted one-compartment models (no seed: 0); "hybrid",
/// "MLP", "LSTM", "Transformer" and "PINN" train one seed of that model on every evaluated fold (the hybrid and the
/// PINN refit the physics they start from, which is deterministic); with `Settings.Ablation`, "separate rates",
/// "lambda schedule", "fused scalar" and "fused gate" train one of the hybrid's seeds of an ablation variant;
/// "uncertainty:<model>" trains one ensemble member (seed `Uncertainty.Seed` + k) of the hybrid, the MLP, the LSTM or
/// the transformer on every fold, and "uncertainty:hybrid:MC dropout" the hybrid's MC-dropout networks
/// (`CasePart.uncertaintyParts`).
type Part = CasePart.Part

/// What one part computed.
type PartResult = CasePart.PartResult<ModelResult>

/// The parts of the ablation (`Settings.Ablation`), in the table's order (`AblationTable.names`): separate rates,
/// a λ schedule, α-fusion with a scalar α and with a per-point gate.
let private ablationParts = [ "separate rates"; "lambda schedule"; "fused scalar"; "fused gate" ]

/// The networks of the case and the first seed of each (its seeds are `Comparison.seeds first Seeds`): the models
/// of `tunedModels`, then the ablation variants with the hybrid's seeds (paired with its runs).
let private networks (s: Settings) = [
    for key, offset in tunedModels -> key, s.Seed + offset
    if s.Ablation then
        yield! ablationParts |> List.map (fun p -> p, s.Seed)
]

/// The parts of a run under `s`, in the order `run` takes them: the physics, each network over its `Seeds` seeds
/// The models whose uncertainty is compared (name, whether MC dropout applies): the hybrid, and the pure-ML models
/// that predict the same concentrations: the MLP C(t, dose), the LSTM and the transformer (ensembles only; the case
/// has no "same network, no physics" control).
let uncertaintyCandidates = [ "hybrid", true; "MLP", false; "LSTM", false; "Transformer", false ]

/// The parts of a run under `s`, in the order `run` takes them: the physics, each network over its `Seeds` seeds
/// (the ablation's after the table's models), then the uncertainty parts (`CasePart.uncertaintyParts`; none with
/// `CaseUncertainty.off`).
let parts (s: Settings) : Part list =
    CasePart.parts (networks s) s.Seeds (CasePart.uncertaintyParts s.Uncertainty uncertaintyCandidates)

/// The fitted physics' name in the table.
[<Literal>]
let private Fitted = "1-cpt fitted"

/// The names of ka, ke and V among a model's parameters, in `physical` order.
let private labels = [| "ka (1/h)"; "ke (1/h)"; "V (L/kg)" |]

/// Values of ka, ke, V (in `physical` order) with their names among a model's parameters.
let private named (v: float[]) = Array.zip labels v

/// Times of the kept curves: 0–25 h every 0.25 h.
let private curveTimes () =
    Array.init 101 (fun i -> 0.25 * float i)

/// `oneCompartmentModel` compiled with ka, ke, V set to `v` (in `physical` order).
let private physicsWith (v: float[]) =
    let sim = compileWith oneCompartmentModel None
    List.iteri (fun i n -> (sim.Param n).Set v[i]) physical
    sim

/// The physics fits this process made: ka, ke, V and the fit's wall time per (Adam iterations, RK4 step, cutoff,
/// training subjects' ids).
let private physicsFits =
    Collections.Concurrent.ConcurrentDictionary<int * float * float * int list, float[] * float>()

/// The models of one part of the case and its uncertainty experiment (`runPart` adds their rows).
let private runModels (s: Settings) (part: Part) : PartResult =
    CasePart.checkKnown
        "Pharmacokinetics"
        ("physics" :: (networks s |> List.map fst)
         @ CasePart.uncertaintyModels uncertaintyCandidates)
        part

    Engine.init ()
    use outer = torch.NewDisposeScope()
    let subjects = load ()
    let early t = t <= s.Cutoff
    let late t = t > s.Cutoff

    let dosesOf (group: Subject[]) = group |> Array.map (fun x -> x.Dose)

    let mseOn (predict: Predictor) (keep: float -> bool) (group: Subject[]) =
        let pairs, observed = samples keep group
        (square (predict group pairs .- torch.tensor (observed, dtype = f64))).mean ()

    let odePredictor (sim: Simulator) : Predictor =
        fun group pairs -> predictAt sim s.Dt (dosesOf group) pairs

    let values (sim: Simulator) =
        physical |> List.map (fun n -> (sim.Param n).Get()) |> Array.ofList

    let curveTimes = curveTimes ()
    let lastFold = List.last s.Folds
    let shown = subjects[4 * lastFold - 4]

    // Early stopping of a model predicting with `predict` on the validation subjects' samples up to the cutoff (none
    // without validation subjects).
    let checkOf (predict: Predictor) (validation: Subject[]) : EarlyStopping.Check option =
        if validation.Length = 0 then
            None
        else
            Some {
                Score = fun () -> (mseOn predict early validation).ToDouble()
                Rule = s.EarlyStopping
            }

    // The tuned (or default) width and learning rate of the hybrid, shared by the ablation variants and fused models.
    let hybridWidth = Tuned.width s.Tuned "hybrid" s.Width
    let hybridRate = Tuned.value s.Tuned "hybrid" Tuned.LearningRate 5e-3

    // The fit is deterministic: a process fits once per training set and settings of the fit (`physicsFits`) and
    // hands the same values to every later part that starts from it (the fitted model, the hybrid, the PINN, the
    // ablation and the uncertainty members); a fresh process fits again. The seconds are those of that one fit.
    let fitPhysics (train: Subject[]) =
        let key =
            s.PhysicsIterations, s.Dt, s.Cutoff, (train |> Array.map (fun x -> x.Id) |> List.ofArray)

        physicsFits.GetOrAdd(
            key,
            fun _ ->
                let sim, _, seconds = fitOneCompartment s.PhysicsIterations s.Dt early train
                values sim, seconds
        )

    // The hybrid on a fold's training subjects, stopping early on its validation subjects (none: every iteration):
    // θ and φ rates, λ schedule, network seed, dropout, hybrid iterations → predictor, seconds, parameters and the
    // network.
    let fitHybrid thetaRate phiRate lambda seed dropout iterations (train: Subject[]) (validation: Subject[]) =
        let p0, physicsSeconds = fitPhysics train

        let net =
            new Mlp("elimination", 1, 1, hybridWidth, 2, dropout = dropout, dtype = f64)

        CaseTraining.initialise net seed true
        let sim = compileWith hybridModel (Some net)
        List.iteri (fun i n -> (sim.Param n).Set p0[i]) physical
        let grid = torch.linspace(0.0, 1.2, 25L, dtype = f64).unsqueeze 1L
        let predict = odePredictor sim

        // The physics residual (λ > 0 only): the hybrid's (A, C) for the training subjects' doses every `Dt` over
        // 0–25 h against one RK4 step of the fitted one-compartment model (fixed), mean square over both fields.
        let physics =
            match lambda with
            | LambdaSchedule.Constant 0.0 -> None
            | _ -> Some(physicsWith p0)

        let residualTimes =
            Array.init (int (round (horizon / s.Dt)) + 1) (fun i -> float i * s.Dt)

        let residual (p: Simulator) =
            let d = torch.tensor (dosesOf train, dtype = f64)

            let path =
                sim.Simulate(
                    [| d; torch.zeros_like d |],
                    {
                        Rollout.defaults with
                            Scheme = Scheme.Rk4
                            Dt = s.Dt
                            SaveTimes = residualTimes
                            FiniteCheckEvery = 0
                            OnUnstable = OnUnstable.Ignore
                    }
                )

            let r = p.Residual(ResidualForm.Consistent Scheme.Rk4, residualTimes, path.Values)
            r.Values |> Array.map (fun v -> (square v).mean ()) |> Array.reduce (.+)

        let fit =
            CaseTraining.joint
                {
                    CaseTraining.hybridDefaults [ for n in physical -> (sim.Param n).Raw ] net iterations seed with
                        ThetaRate = thetaRate
                        PhiRate = phiRate
                        Lambda = lambda
                        Stopping = checkOf predict validation
                }
                (fun ctx -> [
                    "data", mseOn predict early train
                    "penalty", s.CorrectionPenalty .* (square (net.forward grid)).mean ()
                    match physics with
                    | Some p when ctx.Lambda > 0.0 -> "physics residual", ctx.Lambda .* residual p
                    | _ -> ()
                ])

        net.eval () |> ignore

        // Standard errors of ka, ke, V on the training samples, the network at its trained weights.
        let errors =
            let pairs, observed = samples early train
            let target = torch.tensor (observed, dtype = f64)

            CaseTraining.standardErrors (fun () -> predict train pairs .- target) sim physical
            |> Array.mapi (fun i (_, se) -> fst ((named (values sim))[i]) + CaseTraining.StandardErrorSuffix, se)

        predict,
        physicsSeconds + fit.WallTime.TotalSeconds,
        Array.concat [
            named (values sim)
            errors
            [| "network weights", float (Neural.parameterCount net) |]
        ],
        net

    let models: (string * string * (Subject[] -> Subject[] -> Predictor * float * (string * float)[]) * bool * int)[] = [|
        "1-cpt textbook",
        "one compartment, textbook theophylline values (ka 1.5 /h, t½ 8 h, V 0.5 L/kg), no fitting",
        (fun _ _ -> odePredictor (physicsWith textbook), 0.0, named textbook),
        false,
        0

        Fitted,
        "one compartment, ka, ke, V fitted to the training samples (least squares)",
        (fun train _ ->
            let p, seconds = fitPhysics train
            odePredictor (physicsWith p), seconds, named p),
        true,
        s.PhysicsIterations
    |]

    // The models with a network, as functions of the seed (each is run over `Seeds` seeds).
    let hybridRow seed =
        "hybrid (1-cpt + MLP elimination)",
        $"dC/dt = ka A / V − ke C − N(C); N an MLP ({hybridWidth} units) started at zero, trained jointly from the fitted model (Adam {hybridRate:G3})",
        (fun train validation ->
            let predictor, seconds, parameters, _ =
                fitHybrid
                    hybridRate
                    hybridRate
                    (LambdaSchedule.Constant 0.0)
                    seed
                    0.0
                    s.HybridIterations
                    train
                    validation

            predictor, seconds, parameters),
        true,
        s.PhysicsIterations + s.HybridIterations

    // The ablation (issue #15, 2 b–d), each from the hybrid's network seeds, folds, samples, budget, width and rate.
    // Learning rates: θ at 0.05 (the physics fit's rate) and φ at the hybrid's.
    let separateRow seed =
        AblationTable.SeparateRates,
        $"the hybrid with separate Adam rates: θ (ka, ke, V) 0.05, φ {hybridRate:G3} (the table's hybrid: {hybridRate:G3} for both)",
        (fun train validation ->
            let predictor, seconds, parameters, _ =
                fitHybrid 0.05 hybridRate (LambdaSchedule.Constant 0.0) seed 0.0 s.HybridIterations train validation

            predictor, seconds, parameters),
        true,
        s.PhysicsIterations + s.HybridIterations

    // λ schedule: the hybrid plus λ times its physics residual under the fitted model over 0–25 h (beyond the
    // cutoff too: the equation is known there), λ from 0 to 1 over the first half of the epochs.
    let lambdaRow seed =
        AblationTable.LambdaSchedule,
        "the hybrid plus λ × the mean square residual of its (A, C) for the training doses, every Dt over 0–25 h, under the fitted one-compartment model (mg/L/h), λ from 0 to 1 over the first half of the epochs (the table's hybrid: λ = 0)",
        (fun train validation ->
            let predictor, seconds, parameters, _ =
                fitHybrid
                    hybridRate
                    hybridRate
                    (LambdaSchedule.Linear(0.0, 1.0, s.HybridIterations / 2))
                    seed
                    0.0
                    s.HybridIterations
                    train
                    validation

            predictor, seconds, parameters),
        true,
        s.PhysicsIterations + s.HybridIterations

    // α-fusion: ŷ = α·F_θ + (1 − α)·G_φ at every sample, F_θ the one-compartment model from the fold's fitted ka, ke, V
    // (θ trainable, the compiled simulator) and G_φ an MLP C(t, dose) of the hybrid's network size (two hidden layers
    // of `Width`, seeds, zero start), trained end to end on the hybrid's objective and budget.
    let fusedRow (mode: FusionMode) name description seed =
        name,
        description,
        (fun (train: Subject[]) (validation: Subject[]) ->
            let p0, physicsSeconds = fitPhysics train
            let physics = physicsWith p0
            let net = new Mlp("branch", 2, 1, hybridWidth, 2, dtype = f64)
            CaseTraining.initialise net seed true
            let fusion = CaseTraining.fusionLayer mode seed

            let predictor: Predictor =
                fun group pairs ->
                    let inputs =
                        pairs |> Array.collect (fun (b, t) -> [| t / horizon; group[b].Dose / 5.0 |])

                    let x = torch.tensor(inputs, dtype = f64).reshape (int64 pairs.Length, 2L)
                    let neural = 10.0 .* (net.forward x).squeeze 1L
                    let time = x.select (1L, 0L)

                    (FusedRollout.fuse fusion [| 10.0 |] time [| predictAt physics s.Dt (dosesOf group) pairs |] [|
                        neural
                    |])
                        .Fused[0]

            let fit =
                CaseTraining.joint
                    {
                        CaseTraining.hybridDefaults
                            [ for n in physical -> (physics.Param n).Raw ]
                            net
                            s.HybridIterations
                            seed with
                            ThetaRate = hybridRate
                            PhiRate = hybridRate
                            Fusion = Some fusion
                            FusionRate = CaseTraining.fusionRate mode
                            Stopping = checkOf predictor validation
                    }
                    (fun _ -> [ "data", mseOn predictor early train ])

            net.eval () |> ignore
            fusion.eval () |> ignore

            // The learned α, or the gate's mean over the training samples.
            let alpha =
                use _ = torch.no_grad ()
                let pairs, _ = samples early train
                predictor train pairs |> ignore
                fusion.Alpha

            predictor,
            physicsSeconds + fit.WallTime.TotalSeconds,
            Array.append (named (values physics)) [|
                CaseTraining.fusionParameter mode alpha
                "network weights", float (Neural.parameterCount net + Neural.parameterCount fusion)
            |]),
        true,
        s.PhysicsIterations + s.HybridIterations

    let fusedScalar =
        fusedRow
            (FusionMode.Scalar 0.5)
            AblationTable.FusedScalar
            "ŷ = α 1-cpt + (1 − α) G: the one-compartment model from the fitted ka, ke, V (θ trainable) fused with an MLP G(t, dose) of the hybrid's network size (no physics), one learned α from 0.5 (Adam 0.05), end to end on the hybrid's samples and budget (no penalty: G predicts C itself, not a correction)"

    let fusedGate =
        fusedRow
            (FusionMode.Gate(1, hybridWidth))
            AblationTable.FusedGate
            $"ŷ = α(t, C) 1-cpt + (1 − α) G: as the scalar fusion, α a per-point gate (MLP of t / 25 and the one-compartment C / 10, {hybridWidth} units, started at 0.5, φ's rate 5e-3)"

    let mlpWidth = Tuned.width s.Tuned "MLP" 16
    let mlpRate = Tuned.value s.Tuned "MLP" Tuned.LearningRate 1e-2

    let mlpRowFor iterations seed =
        "MLP C(t, dose)",
        $"MLP from (time, dose) to concentration ({mlpWidth} units, Adam {mlpRate:G3}), no physics",
        (fun train validation ->
            let net = new Mlp("concentration", 2, 1, mlpWidth, 2, dtype = f64)
            CaseTraining.initialise net seed false

            let predictor: Predictor =
                fun group pairs ->
                    let inputs =
                        pairs |> Array.collect (fun (b, t) -> [| t / horizon; group[b].Dose / 5.0 |])

                    let x = torch.tensor(inputs, dtype = f64).reshape (int64 pairs.Length, 2L)
                    10.0 .* (net.forward x).squeeze 1L

            let fit =
                CaseTraining.networkWith (checkOf predictor validation) net mlpRate iterations seed (fun _ ->
                    mseOn predictor early train)

            predictor, fit.WallTime.TotalSeconds, [| "network weights", float (Neural.parameterCount net) |]),
        true,
        iterations

    let mlpRow seed = mlpRowFor s.DataIterations seed

    // Pure data-driven sequence models: (t / 25, dose / 5, time since the previous sample / 25) per sample to
    // C / 10, one sequence per subject (the given pairs of each subject, in order).
    let sequenceInputs (group: Subject[]) (pairs: (int * float)[]) =
        pairs
        |> Array.groupBy fst
        |> Array.map (fun (b, ps) ->
            ps
            |> Array.mapi (fun i (_, t) ->
                let previous = if i = 0 then 0.0 else snd ps[i - 1]
                [| t / horizon; group[b].Dose / 5.0; (t - previous) / horizon |]))

    let sequenceRowFor iterations architecture seed =
        let key = SequenceModels.name architecture
        let width = Tuned.width s.Tuned key 16
        let rate = Tuned.value s.Tuned key Tuned.LearningRate 1e-2

        key,
        $"{key}: (t, dose, time since last sample) sequence to concentration ({width} units, Adam {rate:G3}), no physics",
        (fun (train: Subject[]) (validation: Subject[]) ->
            let trainPairs, trainObserved = samples early train

            let targets =
                Array.zip trainPairs trainObserved
                |> Array.groupBy (fst >> fst)
                |> Array.map (fun (_, rows) -> rows |> Array.map (fun (_, c) -> [| c / 10.0 |]))

            let predictorOf (m: SequenceModels.Trained) : Predictor =
                fun group pairs ->
                    let values =
                        SequenceModels.regress m (sequenceInputs group pairs)
                        |> Array.concat
                        |> Array.map (fun row -> 10.0 * row[0])

                    torch.tensor (values, dtype = f64)

            let m =
                SequenceModels.fitRegressionWith
                    (if validation.Length = 0 then
                         None
                     else
                         Some {
                             Score = fun m -> (mseOn (predictorOf m) early validation).ToDouble()
                             Rule = s.EarlyStopping
                         })
                    {
                        SequenceModels.defaults architecture with
                            Iterations = iterations
                            Seed = seed
                            Hidden = width
                            LearningRate = rate
                    }
                    (sequenceInputs train trainPairs)
                    targets

            let predictor = predictorOf m

            predictor, m.Seconds, [| "network weights", float (Neural.parameterCount m.Net) |]),
        true,
        iterations

    let sequenceRow architecture seed =
        sequenceRowFor s.SequenceIterations architecture seed

    // PINN: (A, C)(t, dose) with the residual of the compiled one-compartment model (the fold's fitted ka, ke, V)
    // on a (t, dose) grid over 0–25 h.
    let doses = subjects |> Array.map (fun sub -> sub.Dose)

    let pinnWidth = Tuned.width s.Tuned "PINN" Pinn.defaults.Width

    let pinnRate =
        Tuned.value s.Tuned "PINN" Tuned.LearningRate Pinn.defaults.LearningRate

    let pinnRow seed =
        "PINN",
        $"MLP (A, C)(t, dose) ({pinnWidth} units, Adam {pinnRate:G3}) on the training concentrations and A(0) = dose + one-compartment residual (fold's fitted ka, ke, V)",
        (fun (train: Subject[]) (validation: Subject[]) ->
            let p, physicsSeconds = fitPhysics train
            let physicsSim = physicsWith p
            let lowest, highest = Array.min doses, Array.max doses

            let grid = [|
                for d in 0..4 do
                    for k in 0..50 -> [| 0.5 * float k; lowest + (highest - lowest) * float d / 4.0 |]
            |]

            let trainPairs, trainObserved = samples early train

            let problem = {
                Pinn.Inputs =
                    Array.append
                        (trainPairs |> Array.map (fun (b, t) -> [| t; train[b].Dose |]))
                        (train |> Array.map (fun sub -> [| 0.0; sub.Dose |]))
                Pinn.Targets =
                    Array.append
                        (trainObserved |> Array.map (fun c -> [| nan; c |]))
                        (train |> Array.map (fun sub -> [| sub.Dose; nan |]))
                Pinn.Collocation = grid
                Pinn.InputShift = [| 12.5; 4.5 |]
                Pinn.InputScale = [| 12.5; 1.5 |]
                Pinn.OutputShift = [| 2.5; 5.0 |]
                Pinn.OutputScale = [| 2.5; 5.0 |]
                Pinn.Residual = fun f -> (f.D f.U 0 .- tendency physicsSim f.U) ./ 5.0
            }

            let predictorOf (predict: float[][] -> float[][]) : Predictor =
                fun group pairs ->
                    let values =
                        predict (pairs |> Array.map (fun (b, t) -> [| t; group[b].Dose |]))
                        |> Array.map (fun row -> row[1])

                    torch.tensor (values, dtype = f64)

            let m =
                Pinn.fitValidated
                    (if validation.Length = 0 then
                         None
                     else
                         Some(fun predict -> (mseOn (predictorOf predict) early validation).ToDouble()))
                    s.EarlyStopping
                    {
                        Pinn.defaults with
                            Iterations = s.PinnIterations
                            Seed = seed
                            Width = pinnWidth
                            LearningRate = pinnRate
                    }
                    problem

            let predictor = predictorOf m.Predict

            predictor,
            physicsSeconds + m.Seconds,
            Array.append (named p) [| "network weights", float (Neural.parameterCount m.Net) |]),
        true,
        s.PhysicsIterations + s.PinnIterations

    let evaluateModel
        (name, description, fit: Subject[] -> Subject[] -> Predictor * float * (string * float)[], trained, epochs)
        =
        let mutable lateSquared, lateCount = 0.0, 0
        let mutable earlySquared, earlyCount = 0.0, 0
        let mutable validationSquared, validationCount = 0.0, 0
        let mutable trainSum = 0.0
        let mutable seconds = 0.0
        let mutable inference = 0.0
        let mutable parameters = [||]
        let mutable curve = [||]

        for fold in s.Folds do
            let test = subjects |> Array.filter (fun x -> (x.Id - 1) / 4 + 1 = fold)
            // The one place the training data is selected: every model is fitted to these subjects' samples up to
            // the cutoff only, and networks stop early on the validation subjects' samples up to the cutoff.
            let train, validation = validationSplit s subjects fold
            let predict, trainSeconds, ps = fit train validation
            use _ = torch.no_grad ()

            if validation.Length > 0 then
                let validationPairs, validationObserved = samples early validation

                let squared =
                    (square (
                        predict validation validationPairs
                        .- torch.tensor (validationObserved, dtype = f64)
                    ))
                        .sum()
                        .ToDouble()

                validationSquared <- validationSquared + squared
                validationCount <- validationCount + validationPairs.Length

            let pairs, observed = samples (fun _ -> true) test
            let predicted, t = CaseTraining.timed (fun () -> predict test pairs)

            let errors =
                (predicted .- torch.tensor (observed, dtype = f64)).data<float>().ToArray()

            inference <- inference + t

            for (_, time), e in Array.zip pairs errors do
                if late time then
                    lateSquared <- lateSquared + e * e
                    lateCount <- lateCount + 1
                else
                    earlySquared <- earlySquared + e * e
                    earlyCount <- earlyCount + 1

            trainSum <- trainSum + (mseOn predict early train).ToDouble()
            seconds <- seconds + trainSeconds
            parameters <- ps

            if fold = lastFold then
                curve <- (predict [| shown |] (curveTimes |> Array.map (fun t -> 0, t))).data<float>().ToArray()

        {
            Name = name
            Description = description
            TestMse = lateSquared / float lateCount
            InDistributionMse = earlySquared / float earlyCount
            TrainMse = if trained then trainSum / float s.Folds.Length else nan
            ValidationMse =
                if validationCount = 0 then
                    nan
                else
                    validationSquared / float validationCount
            TrainSeconds = seconds
            InferenceSeconds = inference
            Epochs = epochs
            SeedTestMse = [||]
            PhysicsResidual = nan
            Parameters = parameters
            Curve = curve
        }

    // The uncertainty experiment: a network of a candidate is that model trained on every evaluated fold (one
    // network per fold, same seed, the fit subjects, no early stopping), predicting each fold's validation subjects
    // and held-out subjects after the cutoff (samples no model trains on); its noise variance is the mean training MSE
    // over the folds.
    let foldOf (x: Subject) = (x.Id - 1) / 4 + 1

    let heldOutOf fold =
        subjects |> Array.filter (fun x -> foldOf x = fold)

    let validationOf fold = snd (validationSplit s subjects fold)

    let hasValidation =
        s.Folds |> List.exists (fun fold -> (validationOf fold).Length > 0)

    let lateTargets (groupOf: int -> Subject[]) =
        torch.cat (
            s.Folds
            |> List.map (fun fold -> torch.tensor (snd (samples late (groupOf fold)), dtype = f64))
            |> Array.ofList,
            0L
        )

    let uncertaintySplits =
        let name =
            s.Folds
            |> List.map (fun fold -> $"{4 * fold - 3}–{4 * fold}")
            |> String.concat ", "

        [|
            if hasValidation then
                CaseUncertainty.Validation, lateTargets validationOf
            $"held-out subjects {name}, t > {s.Cutoff} h", lateTargets heldOutOf
        |]

    // One network per fold of `fit` (a model's fit: training and validation subjects → predictor), its modules.
    let perFold (fit: Subject[] -> Predictor * torch.nn.Module[]) : CaseUncertainty.Trained =
        let fits =
            s.Folds
            |> List.map (fun fold ->
                let train = fst (validationSplit s subjects fold)
                let predict, modules = fit train
                let trainMse = (use _ = torch.no_grad () in (mseOn predict early train).ToDouble())
                fold, predict, modules, trainMse)
            |> Array.ofList

        let predictOn (groupOf: int -> Subject[]) =
            torch.cat (
                fits
                |> Array.map (fun (fold, predict, _, _) ->
                    let group = groupOf fold
                    predict group (fst (samples late group))),
                0L
            )

        {
            Modules = fits |> Array.collect (fun (_, _, modules, _) -> modules)
            Predict =
                fun () -> [|
                    if hasValidation then
                        predictOn validationOf
                    predictOn heldOutOf
                |]
            NoiseVariance = fits |> Array.averageBy (fun (_, _, _, m) -> m)
        }

    // A table model's row (`mlpRowFor`, `sequenceRowFor`) as a fit without early stopping (its networks are not
    // needed: these candidates have no MC dropout).
    let rowFit (_, _, fit: Subject[] -> Subject[] -> Predictor * float * (string * float)[], _, _) (train: Subject[]) =
        let predict, _, _ = fit train [||]
        predict, [||]

    // The hybrid members and MC-dropout networks at `Uncertainty.Iterations`, the pure-ML models at the same fraction
    // of their own budget.
    let uncertaintyTrainer (candidate: string) (seed: int) (dropout: float) : CaseUncertainty.Trained =
        let budget = CaseUncertainty.budget s.Uncertainty s.HybridIterations

        match candidate with
        | "hybrid" ->
            perFold (fun train ->
                let predict, _, _, net =
                    fitHybrid
                        hybridRate
                        hybridRate
                        (LambdaSchedule.Constant 0.0)
                        seed
                        dropout
                        s.Uncertainty.Iterations
                        train
                        [||]

                predict, [| net :> torch.nn.Module |])
        | "MLP" -> perFold (rowFit (mlpRowFor (budget s.DataIterations) seed))
        | "LSTM" ->
            perFold (rowFit (sequenceRowFor (budget s.SequenceIterations) SequenceModels.Architecture.Lstm seed))
        | _ ->
            perFold (rowFit (sequenceRowFor (budget s.SequenceIterations) SequenceModels.Architecture.Transformer seed))

    let one row : PartResult = {
        Models = [| evaluateModel row |]
        Rows = [||]
        Uncertainty = [||]
    }

    match part.Model with
    | "physics" -> {
        CasePart.PartResult.Models = Array.map evaluateModel models
        Rows = [||]
        Uncertainty = [||]
      }
    | "hybrid" -> one (hybridRow part.Seed)
    | "MLP" -> one (mlpRow part.Seed)
    | "LSTM" -> one (sequenceRow SequenceModels.Architecture.Lstm part.Seed)
    | "Transformer" -> one (sequenceRow SequenceModels.Architecture.Transformer part.Seed)
    | "PINN" -> one (pinnRow part.Seed)
    | "separate rates" -> one (separateRow part.Seed)
    | "lambda schedule" -> one (lambdaRow part.Seed)
    | "fused scalar" -> one (fusedScalar part.Seed)
    | "fused gate" -> one (fusedGate part.Seed)
    | CasePart.UncertaintyOf(candidate, dropout) ->
        CasePart.uncertaintyResult s.Uncertainty uncertaintySplits dropout part.Seed (uncertaintyTrainer candidate)
    | other -> raise (HybridException $"Pharmacokinetics: there is no part '{other}'.")

/// The case's name in rows.
[<Literal>]
let private Case = "pharmacokinetics"

/// Runs one part of the case (any part, in any order or process: each loads the data and fits the physics it
/// starts from itself) on every evaluated fold. An unknown part raises a `HybridException` that names the parts.
/// Its numbers leave it as rows: each model's (`PartRows.modelRows`; the physics residual NaN, which `assemble`
/// computes), the uncertainty experiment's (`UncertaintyRows`), each model's "in-distribution" "mse", then its
/// "validation" "mse".
let runPart (s: Settings) (part: Part) : PartResult =
    runModels s part
    |> Hybrid.Models.Tasks.PartRows.withRows Case part (fun m ->
        Hybrid.Models.Tasks.PartRows.ofFields
            [| "in-distribution", m.InDistributionMse; "validation", m.ValidationMse |]
            m)

/// Builds the outcome from the results of every part of `parts s` (in any order): each network model's row is its
/// first seed's run with the mean test MSE and training time over its seeds and the per-seed test MSEs; every
/// model's physics residual is computed from its curve and the last fold's fitted ka, ke, V (the "1-cpt fitted"
/// row's parameters). A missing part raises a `HybridException` that names it.
let assemble (s: Settings) (results: (Part * PartResult) list) : Outcome =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let subjects = load ()
    let curveTimes = curveTimes ()
    let shown = subjects[4 * List.last s.Folds - 4]

    let resultOf (part: Part) =
        results
        |> List.tryFind (fun (p, _) -> p = part)
        |> Option.map snd
        |> Option.defaultWith (fun () ->
            raise (
                HybridException
                    $"Pharmacokinetics: the part {part.Model} (seed {part.Seed}) has no result; run it before assembling the outcome."
            ))

    let physics = (resultOf { Model = "physics"; Seed = 0 }).Models

    // The fitted one-compartment model of the last fold, from the "1-cpt fitted" row's ka, ke, V.
    let fittedSim =
        let fitted = physics |> Array.find (fun m -> m.Name = Fitted)

        physicsWith (
            labels
            |> Array.map (fun l -> fitted.Parameters |> Array.find (fun (n, _) -> n = l) |> snd)
        )

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

    // The physics residual of a curve of the shown subject (see `ModelResult.PhysicsResidual`): each step of 0.25 h
    // from (A(t), C(t)) under the fitted simulator, A(t) from its own trajectory of the shown subject.
    let physicsResidual (curve: float[]) =
        use _ = torch.no_grad ()
        let d = torch.tensor ([| shown.Dose |], dtype = f64)

        let along times = {
            Rollout.defaults with
                Scheme = Scheme.Rk4
                Dt = s.Dt
                SaveTimes = times
                FiniteCheckEvery = 0
                OnUnstable = OnUnstable.Ignore
        }

        let gut =
            fittedSim.Simulate([| d; torch.zeros_like d |], along curveTimes).Values[0].reshape -1L

        let n = int64 (curveTimes.Length - 1)
        let c = torch.tensor (curve, dtype = f64)
        let step = curveTimes[1] - curveTimes[0]

        let flowed =
            fittedSim.Simulate([| gut.narrow (0L, 0L, n); c.narrow (0L, 0L, n) |], along [| 0.0; step |]).Values[1][1L]

        (square (c.narrow (0L, 1L, n) .- flowed)).mean().sqrt().ToDouble()

    let withResidual (m: ModelResult) = {
        m with
            PhysicsResidual = physicsResidual m.Curve
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
        Subjects = subjects
        Folds = s.Folds
        Cutoff = s.Cutoff
        Shown = shown
        CurveTimes = curveTimes
        Models = models
        Uncertainty = CasePart.uncertainty s.Uncertainty uncertaintyCandidates resultOf
        Ablation = ablation
        Rows =
            Array.append models ablation
            |> Array.fold
                (fun rows m -> CasePart.withResidual m.Name m.PhysicsResidual rows)
                (CasePart.rowsOf (parts s) resultOf)
    }

/// Runs every model on the evaluated folds (see the module's summary): every part of `parts s` in this process, one
/// after another, then `assemble`.
let run (s: Settings) : Outcome =
    parts s |> List.map (fun p -> p, runPart s p) |> assemble s
