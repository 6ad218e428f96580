/// What every case study's uncertainty experiment shares (issue #6, experiment e; issue #15, item 6): a deep
/// ensemble of each compared model — the case's hybrid and its pure-ML baselines alike (members trained from
/// different network seeds) — and MC dropout where the model has a dropout network (many stochastic passes),
/// each turned into a Gaussian predictive distribution per test value, with the aleatoric noise variance
/// estimated from the training residuals added; then coverage of central intervals, ECE with a basic bootstrap
/// interval, NLL and CRPS on every split the case evaluates (test, out of domain), before and after
/// recalibration by variance scaling fitted on a validation split.
module Hybrid.Models.Common.CaseUncertainty

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training

/// Settings of the experiment (one field of each case's `Settings`).
type Settings = {
    /// Ensemble members (each a hybrid trained from its own network seed).
    Members: int
    /// Dropout probability of the MC-dropout hybrid's network (after every hidden layer).
    Dropout: float
    /// Stochastic forward passes of MC dropout.
    Passes: int
    /// Training iterations of each member and of the MC-dropout hybrid (the case says which iterations).
    Iterations: int
    /// Seed of the first member (member k uses Seed + k; the MC-dropout hybrid uses Seed).
    Seed: int
}

/// The report settings: five members, dropout 0.1, 30 passes (cases set `Iterations`).
let defaults = {
    Members = 5
    Dropout = 0.1
    Passes = 30
    Iterations = 0
    Seed = 1000
}

/// Settings for tests and CI: two members, 20 passes (cases set `Iterations`, a small fraction of their hybrid
/// budget: the quick experiment checks the plumbing, the report settings give the numbers).
let quick = {
    defaults with
        Members = 2
        Passes = 20
}

/// No uncertainty experiment (Members = 0): `run` returns no results. For runs that only need the case's
/// models, such as the data-efficiency experiment.
let off = { quick with Members = 0 }

/// One trained hybrid, as the experiment sees it.
type Trained = {
    /// The networks whose dropout MC dropout switches on (they are put in eval mode for `Predict`).
    Modules: torch.nn.Module[]
    /// Predictions on each split (same order as the case's targets), flattened to one dimension.
    Predict: unit -> torch.Tensor[]
    /// Mean squared training residual (the aleatoric noise variance estimate), in the units of the targets².
    NoiseVariance: float
}

/// A model whose uncertainty is compared.
type Candidate = {
    /// Its name in the tables ("hybrid", "LSTM").
    Name: string
    /// Trains it from a network seed with a dropout probability (0 for ensemble members).
    Train: int -> float -> Trained
    /// Whether MC dropout applies (its network takes a dropout probability).
    Dropout: bool
}

/// One model's and method's calibration on one split.
type MethodResult = {
    /// The model (`Candidate.Name`; "hybrid" for `run`).
    Model: string
    /// "deep ensemble (M = …)" or "MC dropout (p = …, T = …)".
    Method: string
    /// Split name (e.g. "test", "F = 24 (out of domain)").
    Split: string
    /// The factor its predictive standard deviations were multiplied by: 1 as trained, the validation split's
    /// `Uncertainty.varianceScale` after recalibration.
    VarianceScale: float
    /// Coverage at `Uncertainty.defaultLevels` (0.1 … 0.9) and the ECE.
    Calibration: Calibration
    /// The ECE's bias-corrected estimate with its 95% basic-bootstrap interval over the values
    /// (`Statistics.basicBootstrap`, 200 resamples, seeded, clipped at 0); `Calibration.Ece` is the plug-in value.
    EceInterval: Statistics.Interval
    /// Observed coverage of the central 50% interval.
    Coverage50: float
    /// Observed coverage of the central 90% interval.
    Coverage90: float
    /// Mean Gaussian negative log-likelihood.
    Nll: float
    /// Mean CRPS (units of the target).
    Crps: float
    /// RMSE of the predictive mean.
    Rmse: float
    /// Root mean predictive variance (model spread and noise together).
    MeanStd: float
    /// Standard deviation of the added aleatoric noise (√ of the training-residual variance).
    NoiseStd: float
    /// Root mean model spread alone (members' or passes' standard deviation, no noise added).
    ModelStd: float
    /// Observed coverage of the central 90% interval of the model spread alone (no noise added).
    ModelCoverage90: float
    /// Number of (finite) target values.
    Points: int
    /// Wall time of the method in seconds (training its hybrids and sampling them; shared by its splits).
    Seconds: float
}

let private f64 = torch.ScalarType.Float64

/// Adds the aleatoric noise variance to a predictive distribution: σ² = σ_model² + noise.
let internal withNoise (noiseVariance: float) (p: Predictive) : Predictive =
    if not (noiseVariance >= 0.0) then
        raise (HybridException $"CaseUncertainty.withNoise: noise variance {noiseVariance} must be ≥ 0.")

    {
        Mean = p.Mean
        Std = (square p.Std .+ noiseVariance).sqrt ()
    }

/// Resamples of the ECE's bootstrap interval.
let private eceResamples = 200

/// The ECE of `p` against the finite targets, bias-corrected, with its 95% basic-bootstrap interval over those
/// values (resampled with replacement, seed 0: the same predictions give the same interval; clipped at 0). The
/// plug-in ECE is biased upward (sampling noise in the observed coverages only adds to |coverage − level|), so
/// its percentile interval often lies wholly above it; the basic bootstrap removes the estimated bias.
let internal eceInterval (p: Predictive) (target: torch.Tensor) : Statistics.Interval =
    use _ = torch.no_grad ()
    let ok = torch.isfinite target

    let mean, std, y =
        p.Mean.masked_select ok, p.Std.masked_select ok, target.masked_select ok

    let n = int y.shape[0]

    Statistics.basicBootstrap 0.95 eceResamples 0 n 0.0 (fun indices ->
        use _ = torch.NewDisposeScope()
        let i = torch.tensor (indices |> Array.map int64)

        let resampled = {
            Mean = mean.index_select (0L, i)
            Std = std.index_select (0L, i)
        }

        (Uncertainty.calibration Uncertainty.defaultLevels resampled (y.index_select (0L, i))).Ece)

/// Calibration summary against finite targets of the predictive distribution `model` (the model spread alone)
/// with `noiseVariance` added, both standard deviations multiplied by `scale` (1 as trained).
let internal summarise
    (name: string)
    (method: string)
    (split: string)
    (noiseVariance: float)
    (scale: float)
    (spread: Predictive)
    (target: torch.Tensor)
    =
    use _ = torch.no_grad ()
    let model = Uncertainty.rescale scale spread
    let p = Uncertainty.rescale scale (withNoise noiseVariance spread)
    let calibration = Uncertainty.calibration Uncertainty.defaultLevels p target

    let at level =
        Uncertainty.calibration [| level |] p target |> fun c -> c.Coverage[0]

    let ok = torch.isfinite target

    {
        Model = name
        Method = method
        Split = split
        VarianceScale = scale
        Calibration = calibration
        EceInterval = eceInterval p target
        Coverage50 = at 0.5
        Coverage90 = at 0.9
        Nll = Uncertainty.nll p target
        Crps = Uncertainty.crps p target
        Rmse = (square (p.Mean - target)).masked_select(ok).mean().sqrt().ToDouble()
        MeanStd = (square p.Std).masked_select(ok).mean().sqrt().ToDouble()
        NoiseStd = scale * sqrt noiseVariance
        ModelStd = (square model.Std).masked_select(ok).mean().sqrt().ToDouble()
        ModelCoverage90 = (Uncertainty.calibration [| 0.9 |] model target).Coverage[0]
        Points = int (ok.sum().ToInt64())
        Seconds = 0.0
    }

let private predictEval (t: Trained) =
    use _ = torch.no_grad ()

    for m in t.Modules do
        m.eval ()

    t.Predict() |> Array.map (fun p -> p.detach().to_type f64)

/// Runs `f` with one dropout mask of `net` held fixed throughout, e.g. at every step of a rollout (plain dropout
/// draws a new mask at every call of the network). In training mode (an MC-dropout pass) each hidden unit is
/// dropped with probability `net.Dropout` by zeroing its outgoing weights (the kept ones scaled by 1/(1 − p)),
/// `f` runs with the network in eval mode, and the weights and the training mode are restored; in eval mode `f`
/// just runs.
let internal withOneMask (net: Mlp) (f: unit -> 'T) : 'T =
    if not net.training || net.Dropout = 0.0 then
        f ()
    else
        let weights =
            Neural.parameters net |> Array.chunkBySize 2 |> Array.map (fun pair -> pair[0])

        let saved =
            use _ = torch.no_grad ()
            weights |> Array.map (fun w -> w.detach().clone ())

        let drop () =
            use _ = torch.no_grad ()
            let keep = 1.0 - net.Dropout

            for w in Array.tail weights do
                let mask =
                    (withScalar net.Dropout (torch.rand (w.shape[1], dtype = w.dtype)).ge).to_type w.dtype
                    ./ keep

                w.mul_ (mask.unsqueeze 0L) |> ignore

        try
            drop ()
            net.eval () |> ignore
            f ()
        finally
            net.train () |> ignore
            use _ = torch.no_grad ()
            Array.iter2 (fun (w: Modules.Parameter) (v: torch.Tensor) -> w.copy_ v |> ignore) weights saved

/// The name of the split that recalibration is fitted on, where a case gives one: the validation block the case
/// holds out of its training data for early stopping.
[<Literal>]
let Validation = "validation"

/// What one task of the experiment produced: one trained network's predictions (an ensemble member) or the passes
/// of one MC-dropout network, on every split, with the split's targets, as plain numbers so a task result carries
/// them exactly.
type Output = {
    /// Split names, in the case's order.
    Splits: string[]
    /// Targets per split, flattened (NaN = missing).
    Targets: float[][]
    /// Predictions per split (a member), or the mean over the passes (MC dropout).
    Mean: float[][]
    /// Zero per value (a member), or the standard deviation over the passes (MC dropout): the model spread.
    Std: float[][]
    /// Mean squared training residual of the trained network (the aleatoric noise variance estimate).
    NoiseVariance: float
    /// Wall time of training and predicting, in seconds.
    Seconds: float
}

let private values (t: torch.Tensor) : float[] =
    use _ = torch.no_grad ()
    t.detach().to_type(f64).contiguous().data<float>().ToArray()

/// One task of the experiment for a model trained by `train`: with `dropout` false, the ensemble member trained from
/// network seed `seed` (`train seed 0.0`) and its predictions on every split in eval mode; with `dropout` true, the
/// network trained from `train seed s.Dropout`, sampled `s.Passes` times with dropout on
/// (`Uncertainty.mcDropoutSeeded` with `seed`, so repeated runs draw the same masks; each pass predicts every
/// split). `splits` names each split and gives its targets, flattened like `Predict`'s tensors.
let internal output
    (s: Settings)
    (splits: (string * torch.Tensor)[])
    (dropout: bool)
    (seed: int)
    (train: int -> float -> Trained)
    : Output =
    let watch = Diagnostics.Stopwatch.StartNew()
    let targets = splits |> Array.map (snd >> values)
    let lengths = targets |> Array.map (fun t -> int64 t.Length)

    let check (what: string) (predictions: float[][]) =
        if predictions.Length <> splits.Length then
            raise (
                HybridException
                    $"CaseUncertainty: {what} gave {predictions.Length} splits, not {splits.Length}; Predict returns one tensor per split."
            )

        for i in 0 .. splits.Length - 1 do
            if int64 predictions[i].Length <> lengths[i] then
                raise (
                    HybridException
                        $"CaseUncertainty: {what} gave {predictions[i].Length} values on '{fst splits[i]}', which has {lengths[i]} targets."
                )

        predictions

    let mean, std, noise =
        if dropout then
            let trained = train seed s.Dropout

            let all =
                Uncertainty.mcDropoutSeeded trained.Modules s.Passes seed (fun () ->
                    torch.cat (trained.Predict() |> Array.map (fun p -> p.detach().to_type f64), 0L))

            let cut (t: torch.Tensor) =
                lengths
                |> Array.mapi (fun i length -> values (t.narrow (0L, Array.sum lengths[.. i - 1], length)))

            check "MC dropout" (cut all.Mean), cut all.Std, trained.NoiseVariance
        else
            let trained = train seed 0.0
            let predicted = check "a member" (predictEval trained |> Array.map values)
            predicted, predicted |> Array.map (Array.map (fun _ -> 0.0)), trained.NoiseVariance

    {
        Output.Splits = Array.map fst splits
        Targets = targets
        Mean = mean
        Std = std
        NoiseVariance = noise
        Seconds = watch.Elapsed.TotalSeconds
    }

/// A method's predictive distribution (model spread alone) and noise variance on every split, in split order.
type private Method = {
    Name: string
    Spread: Predictive[]
    Noise: float
    Seconds: float
}

let private tensor (v: float[]) = torch.tensor (v, dtype = f64)

/// The deep ensemble of `members` (their outputs as members), combined as a Gaussian mixture (each member
/// N(prediction, its noise variance); `Uncertainty.combine`): the mixture's variance is the mean noise variance plus
/// the members' spread, so the model spread alone is the combination without noise.
let private ensemble (members: Output[]) : Method = {
    Name = $"deep ensemble (M = {members.Length})"
    Spread =
        Array.init members[0].Splits.Length (fun i ->
            members
            |> Array.map (fun m -> {
                Predictive.Mean = tensor m.Mean[i]
                Std = torch.zeros (int64 m.Mean[i].Length, dtype = f64)
            })
            |> Uncertainty.combine)
    Noise = members |> Array.averageBy (fun m -> m.NoiseVariance)
    Seconds = members |> Array.sumBy (fun m -> m.Seconds)
}

/// MC dropout from its one output (the passes' mean and spread per split).
let private dropoutOf (s: Settings) (o: Output) : Method = {
    Name = $"MC dropout (p = {s.Dropout}, T = {s.Passes})"
    Spread =
        Array.init o.Splits.Length (fun i -> {
            Predictive.Mean = tensor o.Mean[i]
            Std = tensor o.Std[i]
        })
    Noise = o.NoiseVariance
    Seconds = o.Seconds
}

/// The outputs of one compared model: its name, its ensemble members' outputs in member order, and its MC-dropout
/// output where it has a dropout network.
type CandidateOutputs = {
    /// The model's name in the tables.
    Name: string
    /// One output per member (member k trained from seed `Settings.Seed` + k).
    Members: Output[]
    /// The MC-dropout output, where the model has a dropout network.
    Dropout: Output option
}

/// The calibration rows of every candidate from its outputs (the one place they are computed, whether the outputs
/// were made in this process or read back from task results): per candidate in order, per method (ensemble first),
/// the rows of every split as trained, then — where the candidate's splits include `validation` — the rows of every
/// other split recalibrated by variance scaling (`Uncertainty.varianceScale` of the full predictive, spread and
/// noise, on the validation split). A candidate without that split is not recalibrated.
let internal combine (s: Settings) (validation: string option) (candidates: CandidateOutputs[]) : MethodResult[] =
    use _ = torch.NewDisposeScope()

    [|
        for c in candidates do
            if c.Members.Length < 2 then
                raise (
                    HybridException
                        $"CaseUncertainty: {c.Name} has {c.Members.Length} members; an ensemble spread needs at least 2."
                )

            let first = c.Members[0]
            let names = first.Splits

            for o in Array.append c.Members (Option.toArray c.Dropout) do
                if o.Splits <> names || o.Targets <> first.Targets then
                    raise (
                        HybridException
                            $"CaseUncertainty: the outputs of {c.Name} do not share their splits and targets; every task of a model predicts the same splits."
                    )

            let targets = first.Targets |> Array.map tensor

            let validationIndex =
                validation |> Option.bind (fun v -> Array.tryFindIndex ((=) v) names)

            let methods = [|
                ensemble c.Members
                match c.Dropout with
                | Some o -> dropoutOf s o
                | None -> ()
            |]

            for m in methods do
                let rows =
                    Array.init names.Length (fun i ->
                        summarise c.Name m.Name names[i] m.Noise 1.0 m.Spread[i] targets[i])

                let recalibrated =
                    match validationIndex with
                    | None -> [||]
                    | Some v ->
                        let scale = Uncertainty.varianceScale (withNoise m.Noise m.Spread[v]) targets[v]

                        Array.init names.Length id
                        |> Array.filter ((<>) v)
                        |> Array.map (fun i -> summarise c.Name m.Name names[i] m.Noise scale m.Spread[i] targets[i])

                yield!
                    Array.append rows recalibrated
                    |> Array.map (fun r -> { r with Seconds = m.Seconds })
    |]

/// Runs the experiment for every candidate in this process: its deep ensemble (`s.Members` outputs from seeds
/// s.Seed + k), and MC dropout (seed s.Seed) where `Dropout` is set, then `combine`. `splits` names each split and
/// gives its targets (flattened like `Predict`'s tensors; NaN = missing). With `validation` naming one of the splits,
/// every method is also recalibrated on it (see `combine`). None with `off` (Members = 0).
let internal runModels
    (s: Settings)
    (validation: string option)
    (splits: (string * torch.Tensor)[])
    (candidates: Candidate[])
    : MethodResult[] =
    if s.Members = 0 then
        [||]
    else
        if s.Members < 2 then
            raise (HybridException $"CaseUncertainty: Members = {s.Members}; an ensemble spread needs at least 2.")

        let names = splits |> Array.map fst

        validation
        |> Option.iter (fun v ->
            if not (Array.contains v names) then
                let known = String.Join(", ", names)

                raise (
                    HybridException
                        $"CaseUncertainty: the validation split '{v}' is not one of the splits ({known}); name one of them or give None."
                ))

        candidates
        |> Array.map (fun c -> {
            CandidateOutputs.Name = c.Name
            Members = Array.init s.Members (fun k -> output s splits false (s.Seed + k) c.Train)
            Dropout =
                if c.Dropout then
                    Some(output s splits true s.Seed c.Train)
                else
                    None
        })
        |> combine s validation

/// The hybrid's experiment alone, without recalibration: `runModels s None splits` with one candidate "hybrid"
/// whose `train` gives ensemble members (`train seed 0.0`, seeds s.Seed + k) and the MC-dropout network
/// (`train s.Seed s.Dropout`).
let internal run (s: Settings) (splits: (string * torch.Tensor)[]) (train: int -> float -> Trained) : MethodResult[] =
    runModels s None splits [|
        {
            Candidate.Name = "hybrid"
            Train = train
            Dropout = true
        }
    |]

/// The iterations of a compared model's member: its own budget `own` scaled by the fraction of the hybrid's budget
/// `hybrid` that the hybrid's members get (`s.Iterations` of `hybrid`), at least 1.
let internal budget (s: Settings) (hybrid: int) (own: int) : int =
    max 1 (int (Math.Round(float own * float s.Iterations / float hybrid)))

/// "over-confident" when the observed coverage falls short of the nominal levels on average, "under-confident"
/// when it exceeds them, "about right" within `tolerance` (mean signed gap).
let internal confidence (tolerance: float) (c: Calibration) : string =
    let gap = Array.map2 (fun cv l -> cv - l) c.Coverage c.Levels |> Array.average

    if gap < -tolerance then "over-confident"
    elif gap > tolerance then "under-confident"
    else "about right"
