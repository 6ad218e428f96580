/// The climate case's a-priori hybrid (issue #16): the a-posteriori hybrid's CNN closures (the same widths, the same
/// zero output layers at the start) fitted offline, by regression, to the sub-grid tendencies of the coarse physics,
/// then run inside the coarse model exactly like the a-posteriori hybrid. The sub-grid tendency of a saved fine state
/// u_f is what the coarse right-hand side misses of the coarse-grained fine one,
/// coarseGrain(RHS_fine(u_f)) − RHS_coarse(coarseGrain(u_f)), for ω and q (the two closures' outputs); both right-hand
/// sides are the compiled simulators' own (`Dynamics.total`, ψ solved from ω), the fine one kept by the truth
/// (`ClimateTruth.Truth.Tendencies`). The fit minimises the closure's MSE against the targets of the training block's
/// saves, each channel divided by its mean square target, with `Trainer.train` for the same epochs, batch, rate and
/// clipping as the a-posteriori hybrid, and stops early on the same loss over the validation block's saves (the
/// same rule): no forecast enters the fit.
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateAPriori

open System.Collections.Generic
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Numerics
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common
open Hybrid.Models.Cases.Climate

/// The model's name in the report.
let name = "hybrid, a priori (coarse physics + CNN closure fitted offline)"

/// The sub-grid targets at coarse states: `fine`, the coarse-grained tendencies of the fine model at the fine states
/// behind them (ω, q, P, each [S; n; n]), minus the coarse `physics`' own right-hand side at the coarse states
/// `states` (ω, q, P, each [S; n; n]; the equations are autonomous). ω and q stacked as channels, [S; 2; n; n]: what
/// `sgsomega(omega)` and `sgsq(omega, q)` should add.
let subgridTargets (physics: Simulator) (fine: torch.Tensor[]) (states: torch.Tensor[]) : torch.Tensor =
    let coarse = Dynamics.total physics.Dynamics (physics.Theta()) 0.0 states
    torch.stack ([| fine[0] .- coarse[0]; fine[1] .- coarse[1] |], 1L)

/// A fitted a-priori closure.
type Fitted = {
    /// The trained model (its `TrainLosses` are the offline fit's).
    Trained: Trained
    /// The normalised offline loss over all of the training block's saves before the fit (2 for a zero output).
    OfflineBefore: float
    /// The same after the fit (the restored best validation epoch).
    OfflineAfter: float
}

let private cache = Dictionary<Settings, Fitted>()

let private train (s: Settings) (d: Data) : Fitted =
    if d.Truth.Tendencies.Length = 0 then
        raise (
            HybridException
                "Climate a-priori hybrid: its sub-grid targets need the fine model's coarse-grained tendencies, which a truth read from files does not have (TruthSource = Files). Use the generated truth (TruthSource = Generated), or leave the a-priori hybrid out of the models run on files."
        )

    let sim = compile s s.Hidden
    let nets, weights = zeroedClosure sim

    // The closures' outputs stacked as the targets are: sgsomega(ω), sgsq(ω, q).
    let closure name =
        sim.Modules |> Array.find (fun (n, _) -> n = name) |> snd

    let sgsOmega, sgsQ = closure "sgsomega", closure "sgsq"

    let closures (inputs: torch.Tensor) =
        torch.cat ([| sgsOmega.forward (inputs.narrow (1L, 0L, 1L)); sgsQ.forward inputs |], 1L)

    let physics = compile s []
    let main = d.Truth.Main

    // The closure's inputs (ω, q as channels) and targets at the saves `indices` of the in-distribution run.
    let sample (indices: int[]) =
        use _ = torch.no_grad ()
        let index = torch.tensor (indices |> Array.map int64)

        let pick (fields: torch.Tensor[]) =
            fields |> Array.map (fun v -> v.index_select(0L, index).squeeze 1L)

        let states = pick main.Fields
        let inputs = torch.stack ([| states[0]; states[1] |], 1L)
        let targets = subgridTargets physics (pick d.Truth.Tendencies) states
        inputs.detach (), targets.detach ()

    // The training block's saves are the states its forecast windows cover; the validation block's follow them.
    let trainEnd = s.TrainIntervals
    let trainInputs, trainTargets = sample [| 0..trainEnd |]

    let validationInputs, validationTargets =
        sample [| trainEnd + 1 .. trainEnd + s.ValidationIntervals |]

    // Per channel: the mean square target over the training saves.
    let scales = (square trainTargets).mean ([| 0L; 2L; 3L |], keepdim = true)

    let loss (inputs: torch.Tensor) (targets: torch.Tensor) =
        let error = square (closures inputs .- targets) ./ scales
        error.mean([| 0L; 2L; 3L |]).sum ()

    let offline () =
        use _ = torch.no_grad ()
        (loss trainInputs trainTargets).ToDouble()

    let before = offline ()
    let watch = Stopwatch.StartNew()

    let check: EarlyStopping.Check = {
        Rule = s.EarlyStopping
        Score = fun () -> (loss validationInputs validationTargets).ToDouble()
    }

    let options, validation =
        EarlyStopping.apply (Some check) s.Epochs {
            Trainer.defaults with
                Epochs = s.Epochs
                Seed = s.Seed
                Groups = [| Trainer.group "phi" s.Rate weights |]
                ClipNorm = s.ClipNorm
                Modules = nets |> Array.map (fun net -> net :> torch.nn.Module)
        }

    let count = trainInputs.shape[0]

    let result =
        Trainer.train options {
            Loss =
                fun context ->
                    let picks = Array.init s.Batch (fun _ -> int64 (context.Random.Next(int count)))
                    let index = torch.tensor picks

                    let l =
                        loss (trainInputs.index_select (0L, index)) (trainTargets.index_select (0L, index))

                    {
                        Total = l
                        Parts = [| "sub-grid", l |]
                    }
            Validation = validation
        }

    let seconds = watch.Elapsed.TotalSeconds

    {
        Trained = {
            Name = name
            Forecast = forecastWith s sim
            TrainLosses = result.TrainLosses
            ValidationLosses = result.ValidationLosses
            TrainSeconds = seconds
        }
        OfflineBefore = before
        OfflineAfter = offline ()
    }

/// The a-priori closure fitted on the data of `s`: fitted on the first call in a process and cached (keyed by `s`,
/// which determines the data), so that the report and the tests that look at its offline loss share one fit.
let fit (s: Settings) (d: Data) : Fitted = cachedBy cache s (fun () -> train s d)

/// The a-priori hybrid as a model of the case (`fit`).
let apriori: ModelBuilder = {
    Name = name
    Build = fun s d -> (fit s d).Trained
}
