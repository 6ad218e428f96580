/// Case study: theophylline after one oral dose (Boeckmann, Sheiner and Beal 1994; R `Theoph`), 12 subjects,
/// concentration (mg/L) over 0–25 h, dose in mg/kg. One-compartment model with first-order absorption:
/// dA/dt = −ka A (gut, mg/kg, A(0) = dose), dC/dt = ka A / V − ke C (plasma, mg/L, C(0) = 0).
/// Leave-subjects-out: folds of four subjects (1–4, 5–8, 9–12); each model is trained on the other eight and
/// predicts the held-out subjects from their dose alone (population predictions, no individual effects).
/// Models: the one-compartment model with textbook parameters (ka 1.5 /h, ke 0.087 /h i.e. t½ 8 h,
/// V 0.5 L/kg), the same with ka, ke, V fitted, a hybrid whose elimination gets an MLP term
/// dC/dt = ka A / V − ke C − N(C) (started at zero, trained jointly), and an MLP C(t, dose) with no physics.
/// The physics-only models use the closed-form solution; the hybrid is integrated with RK4 (fixed step on
/// 0–25 h, predictions interpolated linearly to the sampling times).
/// Baselines (`Hybrid.Models.Baselines`), on the same folds: an LSTM and a transformer
/// mapping each subject's sampling sequence (t, dose, time since the previous sample) to its concentrations (no
/// physics, no observed concentration as input), and a PINN: an MLP (A, C)(t, dose) fitted to the training
/// concentrations and A(0) = dose, plus the one-compartment residual with the fold's fitted ka, ke, V, enforced
/// on a (t, dose) grid spanning every subject's dose. Every model with a network (the hybrid, the MLP, the sequence
/// models, the PINN) is trained from `Seeds` network seeds: its test MSE is the mean over them (the spread is
/// reported); its curve, parameters and train MSE are those of the first seed. The physics fits have no seed.
module Hybrid.Models.Cases.Pharmacokinetics

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Baselines
open Hybrid.Models.Common

/// Settings of the case.
type Settings = {
    /// Adam iterations for the fitted one-compartment model.
    PhysicsIterations: int
    /// Adam iterations for the hybrid (after the physics fit it starts from).
    HybridIterations: int
    /// Adam iterations for the pure MLP.
    DataIterations: int
    /// RK4 step (hours).
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
    /// Uncertainty of the hybrid (deep ensemble, MC dropout) on every fold's held-out subjects; `Iterations`
    /// are its hybrid iterations.
    Uncertainty: CaseUncertainty.Settings
}

/// Report settings: all three folds, RK4 step 0.25 h.
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
    Seeds = 3
    TrainFraction = 1.0
    // Three members on the quick hybrid budget (80 iterations, not 200): every member is one hybrid per fold.
    Uncertainty = {
        CaseUncertainty.defaults with
            Members = 3
            Iterations = 80
    }
}

/// Tests and CI: the third fold only (train on subjects 1–8, test on 9–12), RK4 step 0.5 h, fewer iterations.
let quick = {
    defaults with
        Folds = [ 3 ]
        Dt = 0.5
        PhysicsIterations = 200
        HybridIterations = 80
        DataIterations = 400
        SequenceIterations = 200
        PinnIterations = 500
        Seeds = 1
        Uncertainty = {
            CaseUncertainty.quick with
                Iterations = 10
        }
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
    /// Mean squared error on the held-out subjects, all folds pooled ((mg/L)²).
    TestMse: float
    /// Mean squared error on the training subjects, averaged over folds; NaN if untrained.
    TrainMse: float
    /// Training wall time summed over folds (s; for models run over several seeds, the mean per seed).
    TrainSeconds: float
    /// Wall time of predicting the held-out subjects, summed over folds (s; the first seed's).
    InferenceSeconds: float
    /// Training epochs (Adam iterations) per fold; a hybrid's include the physics fit's; 0 for fixed models.
    Epochs: int
    /// Test MSE per seed for the models run over several seeds (`TestMse` is their mean); empty otherwise.
    SeedTestMse: float[]
    /// Physics residual of `Curve`: its defect under the one-compartment flow with the last fold's fitted ka, ke, V
    /// from each curve time to the next (0.25 h), C(t + Δ) − Φ(C(t), A(t)), the gut amount A(t) = dose e^(−ka t)
    /// from the fitted absorption, RMS over the curve (mg/L; 0 up to round-off for "1-cpt fitted" itself).
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
    /// Subject whose predicted curves are kept (the first held-out subject of the last fold).
    Shown: Subject
    /// Times of the kept curves (h).
    CurveTimes: float[]
    /// Each model's result, in the order of the report's tables.
    Models: ModelResult[]
    /// Calibration of the hybrid's deep ensemble and MC dropout on the held-out subjects, folds pooled (issue #6 e).
    Uncertainty: CaseUncertainty.MethodResult[]
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

/// RK4 of a [B; 2] state (gut, plasma) from (dose, 0) over [0, horizon]; plasma values [steps + 1; B].
let private simulate (rhs: torch.Tensor -> torch.Tensor) (doses: torch.Tensor) (dt: float) =
    let steps = int (ceil (horizon / dt))
    let mutable x = torch.stack ([| doses; torch.zeros_like doses |], 1L)
    let plasma = ResizeArray [ x.select (1L, 1L) ]

    for _ in 1..steps do
        let k1 = rhs x
        let k2 = rhs (x .+ (0.5 * dt) .* k1)
        let k3 = rhs (x .+ (0.5 * dt) .* k2)
        let k4 = rhs (x .+ dt .* k3)
        x <- x .+ (dt / 6.0) .* (k1 .+ 2.0 .* k2 .+ 2.0 .* k3 .+ k4)
        plasma.Add(x.select (1L, 1L))

    torch.stack (plasma, 0L)

/// Linear interpolation of plasma [steps + 1; B] at (subject b, time t) pairs: indices and weights.
let private interpolation (dt: float) (batch: int) (pairs: (int * float)[]) =
    let steps = int (ceil (horizon / dt))

    let lower =
        pairs |> Array.map (fun (_, t) -> min (steps - 1) (int (floor (t / dt))))

    let i0 = Array.map2 (fun (b, _) k -> int64 (k * batch + b)) pairs lower
    let i1 = Array.map2 (fun (b, _) k -> int64 ((k + 1) * batch + b)) pairs lower
    let w = Array.map2 (fun (_, t) k -> t / dt - float k) pairs lower
    torch.tensor i0, torch.tensor i1, torch.tensor (w, dtype = f64)

let private at (plasma: torch.Tensor) (i0: torch.Tensor, i1: torch.Tensor, w: torch.Tensor) =
    let flat = plasma.reshape -1L
    (1.0 .- w) * flat.index_select (0L, i0) .+ w * flat.index_select (0L, i1)

let private oneCompartment (p: torch.Tensor) (x: torch.Tensor) =
    let a = x.select (1L, 0L)
    let c = x.select (1L, 1L)
    let absorbed = p[0L] * a
    torch.stack ([| -absorbed; absorbed / p[2L] - p[1L] * c |], 1L)

/// Adam over parameter groups for `iterations` steps on `loss`; returns the wall time in seconds.
let private adam groups iterations (loss: int -> torch.Tensor) =
    CaseTraining.adam "Pharmacokinetics" "lower the learning rate" groups iterations loss

/// A model's predictor for a fold: (subjects, (subject index, time) pairs) → concentrations.
type private Predictor = Subject[] -> (int * float)[] -> torch.Tensor

/// The training subjects of fold `fold` (1–3) under `s.TrainFraction`: of the n subjects outside the fold, in id
/// order, the first ⌈f·n⌉ (at least one).
let internal trainingSubjects (s: Settings) (subjects: Subject[]) (fold: int) : Subject[] =
    let candidates = subjects |> Array.filter (fun x -> (x.Id - 1) / 4 + 1 <> fold)
    Array.truncate (TrainFraction.count "Pharmacokinetics" s.TrainFraction 1 candidates.Length) candidates

/// Runs every model on the evaluated folds.
let run (s: Settings) : Outcome =
    Engine.init ()
    use outer = torch.NewDisposeScope()
    let subjects = load ()

    let pairsOf (group: Subject[]) =
        group
        |> Array.mapi (fun b sub -> sub.Times |> Array.map (fun t -> b, t))
        |> Array.concat

    let observedOf (group: Subject[]) =
        torch.tensor (group |> Array.collect (fun sub -> sub.Concentrations), dtype = f64)

    let dosesOf (group: Subject[]) =
        torch.tensor (group |> Array.map (fun sub -> sub.Dose), dtype = f64)

    let odePredictor (rhs: torch.Tensor -> torch.Tensor) : Predictor =
        // Note: state [B; 2] = (gut amount per kg, plasma concentration).
        fun group pairs -> at (simulate rhs (dosesOf group) s.Dt) (interpolation s.Dt group.Length pairs)

    // The one-compartment model has a closed form: C(t) = dose ka / (V (ka − ke)) (e^(−ke t) − e^(−ka t)).
    let analytic (p: torch.Tensor) : Predictor =
        fun group pairs ->
            let t = torch.tensor (pairs |> Array.map snd, dtype = f64)

            let dose =
                torch.tensor (pairs |> Array.map (fun (b, _) -> group[b].Dose), dtype = f64)

            let ka, ke, v = p[0L], p[1L], p[2L]
            dose * ka / (v * (ka - ke)) * ((-ke * t).exp () - (-ka * t).exp ())

    let mse (predict: Predictor) (group: Subject[]) =
        (square (predict group (pairsOf group) - observedOf group)).mean ()

    let named (p: torch.Tensor) =
        let v = p.data<float>().ToArray()
        [| "ka (1/h)", v[0]; "ke (1/h)", v[1]; "V (L/kg)", v[2] |]

    let curveTimes = Array.init 101 (fun i -> 0.25 * float i)
    let lastFold = List.last s.Folds
    let shown = subjects[4 * lastFold - 4]

    // Per model: (name, description, fit: train subjects → predictor, trained?, seconds, parameters).
    let textbook = torch.tensor ([| 1.5; 0.087; 0.5 |], dtype = f64)

    // The fit is deterministic, so it is done once per training set (the fitted model, the hybrid, the PINN and
    // the uncertainty members all start from it); the seconds reported are those of that one fit.
    let physicsFits = Collections.Generic.Dictionary<int list, torch.Tensor * float>()

    let fitPhysics (train: Subject[]) =
        let key = train |> Array.map (fun x -> x.Id) |> List.ofArray

        match physicsFits.TryGetValue key with
        | true, fit -> fit
        | _ ->
            let logP = torch.nn.Parameter(textbook.log().clone ())

            let seconds =
                adam [| [| logP :> torch.Tensor |], 0.05 |] s.PhysicsIterations (fun _ ->
                    mse (analytic (logP.exp ())) train)

            let fit = logP.detach().exp (), seconds
            physicsFits[key] <- fit
            fit

    // The hybrid on a fold's training subjects: network seed, dropout, hybrid iterations → predictor, seconds,
    // parameters and the network.
    let fitHybrid seed dropout iterations (train: Subject[]) =
        let p0, physicsSeconds = fitPhysics train
        let net = new Mlp("elimination", 1, 1, s.Width, 2, dropout = dropout, dtype = f64)
        CaseTraining.initialise net seed true
        let logP = torch.nn.Parameter(p0.log().clone ())

        let rhs (p: torch.Tensor) (x: torch.Tensor) =
            let c = x.select(1L, 1L).unsqueeze 1L
            let term = (net.forward (c ./ 10.0)).squeeze 1L
            oneCompartment p x - torch.stack ([| torch.zeros_like term; term |], 1L)

        let grid = torch.linspace(0.0, 1.2, 25L, dtype = f64).unsqueeze 1L

        let seconds =
            adam
                [|
                    Neural.parameters net |> Array.map (fun q -> q :> torch.Tensor), 5e-3
                    [| logP :> torch.Tensor |], 5e-3
                |]
                iterations
                (fun _ ->
                    mse (odePredictor (rhs (logP.exp ()))) train
                    .+ s.CorrectionPenalty .* (square (net.forward grid)).mean ())

        let p = logP.detach().exp ()
        net.eval () |> ignore

        odePredictor (rhs p),
        physicsSeconds + seconds,
        Array.append (named p) [| "network weights", float (Neural.parameterCount net) |],
        net

    let models: (string * string * (Subject[] -> Predictor * float * (string * float)[]) * bool * int)[] = [|
        "1-cpt textbook",
        "one compartment, textbook theophylline values (ka 1.5 /h, t½ 8 h, V 0.5 L/kg), no fitting",
        (fun _ -> analytic textbook, 0.0, named textbook),
        false,
        0

        "1-cpt fitted",
        "one compartment, ka, ke, V fitted to the training subjects",
        (fun train ->
            let p, seconds = fitPhysics train
            analytic p, seconds, named p),
        true,
        s.PhysicsIterations
    |]

    // The models with a network, as functions of the seed (each is run over `Seeds` seeds).
    let hybridModel seed =
        "hybrid (1-cpt + MLP elimination)",
        "dC/dt = ka A / V − ke C − N(C); N an MLP started at zero, trained jointly from the fitted model",
        (fun train ->
            let predictor, seconds, parameters, _ = fitHybrid seed 0.0 s.HybridIterations train
            predictor, seconds, parameters),
        true,
        s.PhysicsIterations + s.HybridIterations

    let mlpModel seed =
        "MLP C(t, dose)",
        "MLP from (time, dose) to concentration, no physics",
        (fun train ->
            let net = new Mlp("concentration", 2, 1, 16, 2, dtype = f64)
            CaseTraining.initialise net seed false

            let predictor: Predictor =
                fun group pairs ->
                    let inputs =
                        pairs |> Array.collect (fun (b, t) -> [| t / horizon; group[b].Dose / 5.0 |])

                    let x = torch.tensor(inputs, dtype = f64).reshape (int64 pairs.Length, 2L)
                    10.0 .* (net.forward x).squeeze 1L

            let seconds =
                adam
                    [| Neural.parameters net |> Array.map (fun q -> q :> torch.Tensor), 1e-2 |]
                    s.DataIterations
                    (fun _ -> mse predictor train)

            predictor, seconds, [| "network weights", float (Neural.parameterCount net) |]),
        true,
        s.DataIterations

    // Pure data-driven sequence models: (t / 25, dose / 5, time since the previous sample / 25) per sample to
    // C / 10, one sequence per subject.
    let sequenceInputs (group: Subject[]) (pairs: (int * float)[]) =
        pairs
        |> Array.groupBy fst
        |> Array.map (fun (b, ps) ->
            ps
            |> Array.mapi (fun i (_, t) ->
                let previous = if i = 0 then 0.0 else snd ps[i - 1]
                [| t / horizon; group[b].Dose / 5.0; (t - previous) / horizon |]))

    let sequenceModel architecture seed =
        SequenceModels.name architecture,
        $"{SequenceModels.name architecture}: (t, dose, time since last sample) sequence to concentration, no physics",
        (fun (train: Subject[]) ->
            let targets =
                train
                |> Array.map (fun sub -> sub.Concentrations |> Array.map (fun c -> [| c / 10.0 |]))

            let m =
                SequenceModels.fitRegression
                    {
                        SequenceModels.defaults architecture with
                            Iterations = s.SequenceIterations
                            Seed = seed
                    }
                    (sequenceInputs train (pairsOf train))
                    targets

            let predictor: Predictor =
                fun group pairs ->
                    let values =
                        SequenceModels.regress m (sequenceInputs group pairs)
                        |> Array.concat
                        |> Array.map (fun row -> 10.0 * row[0])

                    torch.tensor (values, dtype = f64)

            predictor, m.Seconds, [| "network weights", float (Neural.parameterCount m.Net) |]),
        true,
        s.SequenceIterations

    // PINN: (A, C)(t, dose) with the one-compartment residual (the fold's fitted ka, ke, V) on a (t, dose) grid.
    let doses = subjects |> Array.map (fun sub -> sub.Dose)

    let pinnModel seed =
        "PINN",
        "MLP (A, C)(t, dose) on the training concentrations and A(0) = dose + one-compartment residual (fold's fitted ka, ke, V)",
        (fun (train: Subject[]) ->
            let p, physicsSeconds = fitPhysics train
            let lowest, highest = Array.min doses, Array.max doses

            let grid = [|
                for d in 0..4 do
                    for k in 0..50 -> [| 0.5 * float k; lowest + (highest - lowest) * float d / 4.0 |]
            |]

            let problem = {
                Pinn.Inputs =
                    Array.append
                        (train
                         |> Array.collect (fun sub -> sub.Times |> Array.map (fun t -> [| t; sub.Dose |])))
                        (train |> Array.map (fun sub -> [| 0.0; sub.Dose |]))
                Pinn.Targets =
                    Array.append
                        (train
                         |> Array.collect (fun sub -> sub.Concentrations |> Array.map (fun c -> [| nan; c |])))
                        (train |> Array.map (fun sub -> [| sub.Dose; nan |]))
                Pinn.Collocation = grid
                Pinn.InputShift = [| 12.5; 4.5 |]
                Pinn.InputScale = [| 12.5; 1.5 |]
                Pinn.OutputShift = [| 2.5; 5.0 |]
                Pinn.OutputScale = [| 2.5; 5.0 |]
                Pinn.Residual =
                    fun f ->
                        let du = f.D f.U 0
                        let rates = oneCompartment p f.U
                        (du .- rates) ./ 5.0
            }

            let m = Pinn.fitWith s.PinnIterations seed problem

            let predictor: Predictor =
                fun group pairs ->
                    let values =
                        m.Predict(pairs |> Array.map (fun (b, t) -> [| t; group[b].Dose |]))
                        |> Array.map (fun row -> row[1])

                    torch.tensor (values, dtype = f64)

            predictor,
            physicsSeconds + m.Seconds,
            Array.append (named p) [| "network weights", float (Neural.parameterCount m.Net) |]),
        true,
        s.PhysicsIterations + s.PinnIterations

    let evaluateModel (name, description, fit: Subject[] -> Predictor * float * (string * float)[], trained, epochs) =
        let mutable squared = 0.0
        let mutable count = 0
        let mutable trainSum = 0.0
        let mutable seconds = 0.0
        let mutable inference = 0.0
        let mutable parameters = [||]
        let mutable curve = [||]

        for fold in s.Folds do
            let test = subjects |> Array.filter (fun x -> (x.Id - 1) / 4 + 1 = fold)
            // The one place the training data is selected: every model is fitted to these subjects only.
            let train = trainingSubjects s subjects fold
            let predict, trainSeconds, ps = fit train
            use _ = torch.no_grad ()
            let pairs = pairsOf test
            let predicted, t = CaseTraining.timed (fun () -> predict test pairs)
            inference <- inference + t
            squared <- squared + (square (predicted - observedOf test)).sum().ToDouble()
            count <- count + pairs.Length
            trainSum <- trainSum + (mse predict train).ToDouble()
            seconds <- seconds + trainSeconds
            parameters <- ps

            if fold = lastFold then
                curve <- (predict [| shown |] (curveTimes |> Array.map (fun t -> 0, t))).data<float>().ToArray()

        {
            Name = name
            Description = description
            TestMse = squared / float count
            TrainMse = if trained then trainSum / float s.Folds.Length else nan
            TrainSeconds = seconds
            InferenceSeconds = inference
            Epochs = epochs
            SeedTestMse = [||]
            PhysicsResidual = nan
            Parameters = parameters
            Curve = curve
        }

    // A network model over the `Seeds` seeds from `first`: the mean test MSE and time, the rest from the first seed.
    let overSeeds first (model: int -> _) =
        Comparison.overSeeds (Comparison.seeds first s.Seeds) (model >> evaluateModel) (fun r mses seconds -> {
            r with
                TestMse = mses.Mean
                TrainSeconds = seconds
                SeedTestMse = mses.Runs
        })

    // The physics residual of a curve of the shown subject (see `ModelResult.PhysicsResidual`).
    let physicsResidual (curve: float[]) =
        let p =
            (fst (fitPhysics (trainingSubjects s subjects lastFold))).data<float>().ToArray()

        let ka, ke, v = p[0], p[1], p[2]

        Array.init (curve.Length - 1) (fun i ->
            let t, dt = curveTimes[i], curveTimes[i + 1] - curveTimes[i]
            let gut = shown.Dose * exp (-ka * t)

            let flowed =
                curve[i] * exp (-ke * dt)
                + ka * gut / v * (exp (-ka * dt) - exp (-ke * dt)) / (ke - ka)

            let d = curve[i + 1] - flowed
            d * d)
        |> Array.average
        |> sqrt

    let results =
        Array.append (Array.map evaluateModel models) [|
            overSeeds s.Seed hybridModel
            overSeeds (s.Seed + 1) mlpModel
            overSeeds (s.Seed + 100) (sequenceModel SequenceModels.Architecture.Lstm)
            overSeeds (s.Seed + 100) (sequenceModel SequenceModels.Architecture.Transformer)
            overSeeds (s.Seed + 100) pinnModel
        |]

    // Uncertainty of the hybrid: a member is the hybrid trained on every evaluated fold (one network per fold,
    // same seed), predicting each fold's held-out subjects; its noise variance is the mean training MSE.
    let uncertainty =
        let foldOf (x: Subject) = (x.Id - 1) / 4 + 1

        let split fold =
            subjects |> Array.partition (fun x -> foldOf x = fold)

        let heldOut =
            s.Folds |> List.map (fun fold -> observedOf (fst (split fold))) |> Array.ofList

        let name =
            s.Folds
            |> List.map (fun fold -> $"{4 * fold - 3}–{4 * fold}")
            |> String.concat ", "

        CaseUncertainty.run
            s.Uncertainty
            [| $"held-out subjects {name}", torch.cat (heldOut, 0L) |]
            (fun seed dropout ->
                let fits =
                    s.Folds
                    |> List.map (fun fold ->
                        let test, train = split fold
                        let predict, _, _, net = fitHybrid seed dropout s.Uncertainty.Iterations train
                        let trainMse = (use _ = torch.no_grad () in (mse predict train).ToDouble())
                        test, predict, net, trainMse)
                    |> Array.ofList

                {
                    Modules = fits |> Array.map (fun (_, _, net, _) -> net :> torch.nn.Module)
                    Predict =
                        fun () -> [|
                            torch.cat (
                                fits |> Array.map (fun (test, predict, _, _) -> predict test (pairsOf test)),
                                0L
                            )
                        |]
                    NoiseVariance = fits |> Array.averageBy (fun (_, _, _, m) -> m)
                })

    {
        Subjects = subjects
        Folds = s.Folds
        Shown = shown
        CurveTimes = curveTimes
        Models =
            results
            |> Array.map (fun m -> {
                m with
                    PhysicsResidual = physicsResidual m.Curve
            })
        Uncertainty = uncertainty
    }
