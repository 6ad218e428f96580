/// What the case studies share when they train networks and parameters: a seeded, deterministic network
/// initialisation and the pure-ML baselines' entry to `Trainer.train`.
module internal Hybrid.Models.Common.CaseTraining

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Compiler
open Hybrid.Training

/// Deterministic initialisation of a network from `seed` (independent of TorchSharp's global RNG): weight
/// matrices uniform in ±1/√fan-in, biases (every one-dimensional parameter) zero except layer-norm gains,
/// which are one, and with `zeroOutput` the output layer (parameters named "out.…") zero too (so a
/// correction starts at exactly zero). Works for any module (MLPs, LSTMs, transformer encoders).
let initialise (net: torch.nn.Module) (seed: int) (zeroOutput: bool) =
    use _ = torch.no_grad ()
    use generator = new torch.Generator(uint64 seed)

    for struct (name, p) in net.named_parameters () do
        if p.dim () = 1L && name.Contains "norm" && name.EndsWith "weight" then
            withScalar 1.0 p.fill_ |> ignore
        elif p.dim () = 1L || (zeroOutput && name.Contains "out.") then
            p.zero_ () |> ignore
        else
            let k = 1.0 / sqrt (float p.shape[1])

            use values =
                (torch.rand (p.shape, dtype = p.dtype, generator = generator) .* 2.0 .- 1.0)
                .* k

            p.copy_ values |> ignore

/// Trains the parameters of `net` alone (one group "phi" at `rate`) with `Trainer.train` for `epochs` full-batch
/// epochs from `seed` (the trainer's epoch seeds; the weights themselves are set by `initialise`), `net` in
/// training mode, with early stopping on `check` where given (`EarlyStopping.apply`: validated every `Every` epochs,
/// the best epoch restored). `loss` sees the trainer's context (its epoch, for objectives that change during
/// training). The pure-ML baselines' one entry to the trainer.
let networkWith
    (check: EarlyStopping.Check option)
    (net: torch.nn.Module)
    (rate: float)
    (epochs: int)
    (seed: int)
    (loss: TrainContext -> torch.Tensor)
    =
    let options, validation =
        EarlyStopping.apply check epochs {
            Trainer.defaults with
                Epochs = epochs
                Seed = seed
                Groups = [| Trainer.group "phi" rate (Neural.parameters net) |]
                Modules = [| net |]
        }

    Trainer.train options {
        Loss =
            fun context ->
                let l = loss context
                { Total = l; Parts = [| "data", l |] }
        Validation = validation
    }

/// `networkWith` without validation: every epoch runs, the last parameters are kept.
let network (net: torch.nn.Module) (rate: float) (epochs: int) (seed: int) (loss: TrainContext -> torch.Tensor) =
    networkWith None net rate epochs seed loss

/// How a case trains a hybrid jointly (`joint`): θ and φ as two Adam groups, optionally a fusion layer's α or gate
/// as a third, with the case's budget, windows and λ schedule.
type Joint = {
    /// θ: the scientific parameters' raw values (none for a model without them: no θ group).
    Theta: Modules.Parameter list
    /// θ's learning rate.
    ThetaRate: float
    /// φ: the networks, trained at `PhiRate` and switched to training mode for the steps.
    Networks: torch.nn.Module list
    /// φ's learning rate.
    PhiRate: float
    /// A fusion layer (α-fusion, `Fusion`) trained as its own group "alpha" at `FusionRate`; None for a hybrid.
    Fusion: Fusion option
    /// The fusion layer's learning rate.
    FusionRate: float
    /// Adam iterations (full-batch epochs).
    Epochs: int
    /// The trainer's seed.
    Seed: int
    /// The rollout horizon's growth (`Trainer.defaults`' fixed horizon where the case has no windows).
    Horizon: HorizonSchedule
    /// The weight λ of a physics-residual term per epoch (the loss reads it from the context).
    Lambda: LambdaSchedule
    /// Early stopping on the case's validation block (`EarlyStopping.Check`); None trains every epoch.
    Stopping: EarlyStopping.Check option
}

/// The case studies' hybrid set-up: θ and φ at one rate, 5e-3, no fusion layer, λ = 0, `Trainer.defaults`' horizon,
/// no early stopping.
let hybridDefaults (theta: Modules.Parameter list) (net: torch.nn.Module) (epochs: int) (seed: int) : Joint = {
    Theta = theta
    ThetaRate = 5e-3
    Networks = [ net ]
    PhiRate = 5e-3
    Fusion = None
    FusionRate = 5e-3
    Epochs = epochs
    Seed = seed
    Horizon = Trainer.defaults.Horizon
    Lambda = LambdaSchedule.Constant 0.0
    Stopping = None
}

/// The fusion layer's learning rate in the cases' α-fusion ablation: 0.05 for a scalar α (one number, the physics
/// fits' rate), φ's 5e-3 for a gate (a network).
let fusionRate (mode: FusionMode) : float =
    match mode with
    | FusionMode.Gate _ -> 5e-3
    | _ -> 0.05

/// The fusion layer of the cases' α-fusion ablation in float64: a scalar α starts at 0.5; a gate's network is set by
/// `initialise` from `seed` with its output layer zero, so it too starts at 0.5 at every point.
let fusionLayer (mode: FusionMode) (seed: int) : Fusion =
    let fusion = new Fusion(mode, dtype = torch.ScalarType.Float64)

    match mode with
    | FusionMode.Gate _ -> initialise fusion seed true
    | _ -> ()

    fusion

/// A fused model's parameter-list entry for its fusion weight `alpha` (`Fusion.Alpha`): ("α", the learned scalar) or
/// ("mean gate α", the gate's mean over the points the case last fused).
let fusionParameter (mode: FusionMode) (alpha: float) : string * float =
    match mode with
    | FusionMode.Gate _ -> "mean gate α", alpha
    | _ -> "α", alpha

/// Trains `j`'s groups with `Trainer.train` on `loss`, which returns the named terms of the objective (their sum is
/// minimised; each is reported), stopping early where `j.Stopping` says. The case studies' one entry to the trainer
/// for hybrids and fused models.
let joint (j: Joint) (loss: TrainContext -> (string * torch.Tensor) list) : TrainResult =
    let options, validation =
        EarlyStopping.apply j.Stopping j.Epochs {
            Trainer.defaults with
                Epochs = j.Epochs
                Seed = j.Seed
                Groups = [|
                    if not j.Theta.IsEmpty then
                        Trainer.group "theta" j.ThetaRate j.Theta
                    Trainer.group "phi" j.PhiRate (j.Networks |> Seq.collect Neural.parameters)
                    match j.Fusion with
                    | Some f -> Trainer.group "alpha" j.FusionRate (Neural.parameters f)
                    | None -> ()
                |]
                Horizon = j.Horizon
                Lambda = j.Lambda
                Modules = [|
                    yield! j.Networks
                    match j.Fusion with
                    | Some f -> f :> torch.nn.Module
                    | None -> ()
                |]
        }

    Trainer.train options {
        Loss =
            fun context ->
                let parts = loss context |> Array.ofList

                {
                    Total = parts |> Array.map snd |> Array.reduce (.+)
                    Parts = parts
                }
        Validation = validation
    }

/// Runs `f` with libtorch limited to one intra-op thread and restores the previous count afterwards. For tiny
/// networks (tens of units, batches of tens) extra threads cost more than they save, and when the machine's
/// cores are busy their spin-waiting makes training many times slower (measured here: a 1-D PINN fit took
/// ≈ 1 s on one thread and ≈ 60 s on two under a load of 8). Do not call from several threads at once.
let singleThreaded (f: unit -> 'T) : 'T =
    let previous = torch.get_num_threads ()
    torch.set_num_threads 1

    try
        f ()
    finally
        torch.set_num_threads previous

/// `f ()` and its wall time in seconds (the inference times of the case studies' tables).
let timed (f: unit -> 'T) : 'T * float =
    let watch = Stopwatch.StartNew()
    let result = f ()
    result, watch.Elapsed.TotalSeconds

/// Suffix of a standard error's entry in a model's parameter list: "alpha" has its standard error as "alpha SE".
[<Literal>]
let StandardErrorSuffix = " SE"

/// Gauss–Newton standard errors (`Covariance.gaussNewton`) of `parameters` (name, parameter) at their current values
/// from the residual vector `residuals ()`, as parameter-list entries (name + `StandardErrorSuffix`, value). Where
/// the covariance cannot be formed — a parameter the residuals do not determine (JᵀJ singular) or no more residuals
/// than parameters, which `Covariance.gaussNewton` refuses — every standard error is +∞ (the data do not bound
/// them; a trained model is still reported) and the reason goes to standard error. J comes from checked central differences (`JacobianMethod.Differences`).
let standardErrorsOf
    (residuals: unit -> torch.Tensor)
    (parameters: (string * Hybrid.Numerics.Param)[])
    : (string * float)[] =
    let errors =
        try
            (Covariance.gaussNewtonBy JacobianMethod.Differences residuals (Array.map snd parameters)).StandardErrors
        with :? HybridException as e ->
            eprintfn $"standard errors: {e.Message} They are reported as infinite."
            Array.create parameters.Length infinity

    Array.map2 (fun (n, _) se -> n + StandardErrorSuffix, se) parameters errors

/// `standardErrorsOf` the parameters `names` of `sim` from the residual vector `residuals ()` (the training data's,
/// the loss it was fitted by being their mean square). For a hybrid, the network stays at its trained weights: the
/// errors are conditional on it (smaller than if φ's uncertainty were propagated).
let standardErrors (residuals: unit -> torch.Tensor) (sim: Simulator) (names: string list) : (string * float)[] =
    standardErrorsOf residuals [| for n in names -> n, sim.Param n |]
