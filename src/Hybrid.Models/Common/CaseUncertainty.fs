/// What every case study's uncertainty experiment shares (issue #6, experiment e): a deep ensemble of the
/// case's hybrid (members trained from different network seeds) and MC dropout (the hybrid's network with
/// dropout, many stochastic passes), each turned into a Gaussian predictive distribution per test value, with
/// the aleatoric noise variance estimated from the training residuals added; then coverage of central
/// intervals, ECE, NLL and CRPS on every split the case evaluates (test, out of domain).
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

/// One method's calibration on one split.
type MethodResult = {
    /// "deep ensemble (M = …)" or "MC dropout (p = …, T = …)".
    Method: string
    /// Split name (e.g. "test", "F = 24 (out of domain)").
    Split: string
    /// Coverage at `Uncertainty.defaultLevels` (0.1 … 0.9) and the ECE.
    Calibration: Calibration
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

/// Calibration summary against finite targets of the predictive distribution `model` (the model spread alone)
/// with `noiseVariance` added.
let internal summarise
    (method: string)
    (split: string)
    (noiseVariance: float)
    (model: Predictive)
    (target: torch.Tensor)
    =
    use _ = torch.no_grad ()
    let p = withNoise noiseVariance model
    let calibration = Uncertainty.calibration Uncertainty.defaultLevels p target

    let at level =
        Uncertainty.calibration [| level |] p target |> fun c -> c.Coverage[0]

    let ok = torch.isfinite target

    {
        Method = method
        Split = split
        Calibration = calibration
        Coverage50 = at 0.5
        Coverage90 = at 0.9
        Nll = Uncertainty.nll p target
        Crps = Uncertainty.crps p target
        Rmse = (square (p.Mean - target)).masked_select(ok).mean().sqrt().ToDouble()
        MeanStd = (square p.Std).masked_select(ok).mean().sqrt().ToDouble()
        NoiseStd = sqrt noiseVariance
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

/// The ensemble and MC-dropout experiment proper (`run` without the switch).
let private runMethods
    (s: Settings)
    (splits: (string * torch.Tensor)[])
    (train: int -> float -> Trained)
    : MethodResult[] =
    if s.Members < 2 then
        raise (HybridException $"CaseUncertainty: Members = {s.Members}; an ensemble spread needs at least 2.")

    let watch = Diagnostics.Stopwatch.StartNew()

    let members =
        Array.init s.Members (fun k ->
            let t = train (s.Seed + k) 0.0
            predictEval t, t.NoiseVariance)

    let ensemble =
        splits
        |> Array.mapi (fun i (name, target) ->
            // Each member N(prediction, its noise variance); the mixture's variance is the mean noise variance
            // plus the members' spread, so the model spread alone is the combination without noise.
            let model =
                members
                |> Array.map (fun (predictions, _) -> {
                    Mean = predictions[i]
                    Std = torch.zeros_like predictions[i]
                })
                |> Uncertainty.combine

            let noise = members |> Array.averageBy snd
            summarise $"deep ensemble (M = {s.Members})" name noise model (target.to_type f64))

    let ensembleSeconds = watch.Elapsed.TotalSeconds
    watch.Restart()
    let dropout = train s.Seed s.Dropout

    // One set of passes for all splits: each pass predicts every split, concatenated.
    let lengths = splits |> Array.map (fun (_, t) -> t.shape[0])

    let all =
        Uncertainty.mcDropoutSeeded dropout.Modules s.Passes s.Seed (fun () ->
            torch.cat (dropout.Predict() |> Array.map (fun p -> p.detach().to_type f64), 0L))

    let mc =
        splits
        |> Array.mapi (fun i (name, target) ->
            let offset = Array.sum lengths[.. i - 1]

            let model = {
                Mean = all.Mean.narrow (0L, offset, lengths[i])
                Std = all.Std.narrow (0L, offset, lengths[i])
            }

            summarise
                $"MC dropout (p = {s.Dropout}, T = {s.Passes})"
                name
                dropout.NoiseVariance
                model
                (target.to_type f64))

    let dropoutSeconds = watch.Elapsed.TotalSeconds

    Array.append
        (ensemble |> Array.map (fun r -> { r with Seconds = ensembleSeconds }))
        (mc |> Array.map (fun r -> { r with Seconds = dropoutSeconds }))


/// Runs the experiment: `s.Members` hybrids from `train seed 0.0` (seeds s.Seed + k) combined as a Gaussian
/// mixture (each member N(prediction, its noise variance); `Uncertainty.combine`), and one hybrid from
/// `train s.Seed s.Dropout` sampled `s.Passes` times with dropout on (`Uncertainty.mcDropoutSeeded` with `s.Seed`, so repeated runs draw the same masks) plus its noise
/// variance. `splits` names each split and gives its targets (flattened like `Predict`'s tensors; NaN =
/// missing). Returns one result per method and split (ensemble first); none with `off` (Members = 0).
let internal run (s: Settings) (splits: (string * torch.Tensor)[]) (train: int -> float -> Trained) : MethodResult[] =
    if s.Members = 0 then [||] else runMethods s splits train

/// "over-confident" when the observed coverage falls short of the nominal levels on average, "under-confident"
/// when it exceeds them, "about right" within `tolerance` (mean signed gap).
let internal confidence (tolerance: float) (c: Calibration) : string =
    let gap = Array.map2 (fun cv l -> cv - l) c.Coverage c.Levels |> Array.average

    if gap < -tolerance then "over-confident"
    elif gap > tolerance then "under-confident"
    else "about right"
