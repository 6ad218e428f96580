namespace Hybrid.Training

open System
open System.Diagnostics
open TorchSharp
open TorchSharp.Modules
open Hybrid

/// Learning-rate schedule of one parameter group (factor applied to its base rate at each epoch).
[<RequireQualifiedAccess>]
type LrSchedule =
    /// The base rate throughout.
    | Constant
    /// Multiply by `factor` every `every` epochs.
    | Step of every: int * factor: float
    /// Multiply by `gamma` every epoch.
    | Exponential of gamma: float
    /// Cosine decay from the base rate to `minFactor`·base over all epochs.
    | Cosine of minFactor: float

/// A group of parameters with its own learning rate and schedule (e.g. θ scientific, φ neural).
type ParamGroup = {
    /// Group name, for messages.
    Name: string
    /// The leaf tensors it updates (e.g. `Param.Raw`, `Neural.parameters net`).
    Parameters: Parameter[]
    /// Base learning rate.
    LearningRate: float
    /// Schedule of the rate.
    Schedule: LrSchedule
}

/// The rollout horizon (save intervals per window) grows from `Start` by one every `GrowEvery` epochs up
/// to `Max` (multiple shooting with a growing horizon).
type HorizonSchedule = {
    /// Horizon in the first epoch (≥ 1).
    Start: int
    /// Largest horizon.
    Max: int
    /// Epochs between increments (0 = never grow).
    GrowEvery: int
}

/// What the loss function sees at each optimizer step.
type TrainContext = {
    /// Epoch (0-based).
    Epoch: int
    /// Step within the epoch (0-based).
    Step: int
    /// Rollout horizon of this epoch.
    Horizon: int
    /// Physics-residual weight λ of this epoch.
    Lambda: float
    /// Random numbers for mini-batch sampling, seeded from (seed, epoch), so runs and resumes repeat.
    Random: Random
}

/// A loss value and its named components (for the progress display).
type LossParts = {
    /// The scalar to minimise (0-dim, differentiable).
    Total: torch.Tensor
    /// Components, e.g. ("data", mse); their values are reported, not differentiated.
    Parts: (string * torch.Tensor)[]
}

/// What to minimise: a mini-batch loss and optionally a validation loss (evaluated without gradients,
/// modules in eval mode).
type Objective = {
    /// Loss of one mini-batch.
    Loss: TrainContext -> LossParts
    /// Validation loss (e.g. on held-out trajectories); None for no validation/early stopping.
    Validation: (TrainContext -> float) option
}

/// Settings of a training run.
type TrainOptions = {
    /// Number of epochs.
    Epochs: int
    /// Optimizer steps (mini-batches) per epoch.
    StepsPerEpoch: int
    /// Seed of every random choice (weights should be created after `Engine.seed`).
    Seed: int
    /// Parameter groups, each with its own rate and schedule (Adam).
    Groups: ParamGroup[]
    /// Clip the global gradient norm to this value (0 = no clipping).
    ClipNorm: float
    /// Horizon growth.
    Horizon: HorizonSchedule
    /// λ schedule for the physics residual.
    Lambda: LambdaSchedule
    /// Validate every this many epochs.
    ValidateEvery: int
    /// Stop when validation has not improved for this many epochs (0 = never stop early).
    Patience: int
    /// Minimum improvement that counts.
    MinDelta: float
    /// At the end, put back the parameters of the best validation epoch.
    RestoreBest: bool
    /// Folder for checkpoints (None = no checkpoints).
    CheckpointDir: string option
    /// Save a checkpoint every this many epochs (and at the end).
    CheckpointEvery: int
    /// Continue from the latest checkpoint in `CheckpointDir` if there is one.
    Resume: bool
    /// Progress display and hook.
    Progress: ProgressOptions
    /// Scientific parameters to report, by name.
    Theta: (string * (unit -> float))[]
    /// Modules switched to training mode for steps and eval mode for validation (e.g. for dropout).
    Modules: torch.nn.Module[]
    /// Checked before every epoch; cancelling stops after the current epoch (result `Cancelled`).
    Cancel: Threading.CancellationToken
}

/// Outcome of a training run.
type TrainResult = {
    /// Mean training loss per epoch (including epochs before a resume).
    TrainLosses: float[]
    /// Validation loss per epoch (NaN where not validated).
    ValidationLosses: float[]
    /// Epochs completed.
    Epochs: int
    /// Best validation epoch (1-based; 0 without validation).
    BestEpoch: int
    /// True when early stopping ended the run.
    StoppedEarly: bool
    /// True when the cancellation token ended the run.
    Cancelled: bool
    /// Wall time of this call.
    WallTime: TimeSpan
    /// Final θ values (from `TrainOptions.Theta`).
    Theta: (string * float)[]
}

/// Joint optimisation of θ and φ: Adam with parameter groups and schedules, gradient clipping, growing
/// horizons, λ schedules, validation with early stopping, checkpoints and resume, progress; and LBFGS for
/// θ-only fits. Runs repeat exactly for one seed (on one device and thread count).
[<RequireQualifiedAccess>]
module Trainer =

    /// 100 epochs of 1 step, seed 0, no groups (set them), no clipping, horizon 1, λ = 0, validate every
    /// epoch, no early stopping, no checkpoints, silent.
    let defaults: TrainOptions = {
        Epochs = 100
        StepsPerEpoch = 1
        Seed = 0
        Groups = [||]
        ClipNorm = 0.0
        Horizon = { Start = 1; Max = 1; GrowEvery = 0 }
        Lambda = LambdaSchedule.Constant 0.0
        ValidateEvery = 1
        Patience = 0
        MinDelta = 0.0
        RestoreBest = false
        CheckpointDir = None
        CheckpointEvery = 10
        Resume = true
        Progress = Progress.silent
        Theta = [||]
        Modules = [||]
        Cancel = Threading.CancellationToken.None
    }

    /// A parameter group with a constant rate.
    let group (name: string) (rate: float) (parameters: Parameter seq) : ParamGroup = {
        Name = name
        Parameters = Array.ofSeq parameters
        LearningRate = rate
        Schedule = LrSchedule.Constant
    }

    /// The horizon of an epoch.
    let horizonAt (h: HorizonSchedule) (epoch: int) : int =
        let grown =
            if h.GrowEvery > 0 then
                h.Start + epoch / h.GrowEvery
            else
                h.Start

        max 1 (min (max h.Start h.Max) grown)

    /// The learning-rate factor of a schedule at an epoch.
    let rateFactor (s: LrSchedule) (epoch: int) (epochs: int) : float =
        match s with
        | LrSchedule.Constant -> 1.0
        | LrSchedule.Step(every, f) -> Math.Pow(f, float (epoch / max 1 every))
        | LrSchedule.Exponential g -> Math.Pow(g, float epoch)
        | LrSchedule.Cosine m ->
            let p = float epoch / float (max 1 (epochs - 1))
            m + (1.0 - m) * 0.5 * (1.0 + cos (Math.PI * p))

    let internal epochSeed (seed: int) (epoch: int) = seed * 1_000_003 + epoch * 7_919 + 17

    let private validate (o: TrainOptions) =
        if
            o.Groups.Length = 0
            || o.Groups |> Array.forall (fun g -> g.Parameters.Length = 0)
        then
            raise (
                HybridException(
                    "Trainer: no parameters to train. Give at least one ParamGroup with parameters (e.g. Trainer.group \"phi\" 1e-3 (Neural.parameters net))."
                )
            )

        for g in o.Groups do
            if not (g.LearningRate > 0.0) then
                raise (
                    HybridException(
                        $"Trainer: group '{g.Name}' has learning rate {g.LearningRate}; it must be positive."
                    )
                )

        if o.Epochs < 0 || o.StepsPerEpoch < 1 then
            raise (
                HybridException(
                    $"Trainer: Epochs = {o.Epochs} and StepsPerEpoch = {o.StepsPerEpoch}; need Epochs ≥ 0 and StepsPerEpoch ≥ 1."
                )
            )

    let private run (o: TrainOptions) (objective: Objective) : TrainResult =
        Engine.init ()
        validate o
        let watch = Stopwatch.StartNew()

        let groups =
            o.Groups
            |> Array.filter (fun g -> g.Parameters.Length > 0)
            |> Array.map (fun g -> Adam.ParamGroup(g.Parameters, lr = g.LearningRate))

        let used = o.Groups |> Array.filter (fun g -> g.Parameters.Length > 0)
        let optimizer = torch.optim.Adam(groups, lr = used[0].LearningRate)
        let all = used |> Array.collect (fun g -> g.Parameters)
        let allTensors = all |> Array.map (fun p -> p :> torch.Tensor)

        let best =
            use _ = torch.no_grad ()
            all |> Array.map (fun p -> p.detach().clone ())

        let trainLosses = ResizeArray<float>()
        let validationLosses = ResizeArray<float>()
        let mutable bestValidation = infinity
        let mutable bestEpoch = 0
        let mutable start = 0

        match o.CheckpointDir with
        | Some dir when o.Resume ->
            match Checkpoint.resume dir allTensors best optimizer o.Seed o.Epochs with
            | Some meta ->
                start <- meta.Epoch
                bestValidation <- meta.BestValidation
                bestEpoch <- meta.BestEpoch
                trainLosses.AddRange meta.TrainLosses
                validationLosses.AddRange meta.ValidationLosses
            | None -> ()
        | _ -> ()

        let saveCheckpoint (epoch: int) =
            match o.CheckpointDir with
            | Some dir ->
                Checkpoint.save dir allTensors best optimizer {
                    Epoch = epoch
                    Seed = o.Seed
                    BestValidation = bestValidation
                    BestEpoch = bestEpoch
                    TrainLosses = trainLosses.ToArray()
                    ValidationLosses = validationLosses.ToArray()
                }
                |> ignore
            | None -> ()

        let theta () =
            o.Theta |> Array.map (fun (n, f) -> n, f ())

        let mutable stoppedEarly = false
        let mutable cancelled = false
        let mutable epoch = start
        let firstEpoch = start

        while epoch < o.Epochs && not stoppedEarly && not cancelled do
            if o.Cancel.IsCancellationRequested then
                cancelled <- true
            else
                let controllers = optimizer.ParamGroups |> Array.ofSeq

                used
                |> Array.iteri (fun i g ->
                    controllers[i].LearningRate <- g.LearningRate * rateFactor g.Schedule epoch o.Epochs)

                torch.manual_seed (int64 (epochSeed o.Seed epoch)) |> ignore
                let random = Random(epochSeed o.Seed epoch)
                let horizon = horizonAt o.Horizon epoch
                let lambda = Loss.lambdaAt o.Lambda epoch
                let mutable sum = 0.0
                let partSums = Collections.Generic.Dictionary<string, float>()
                let partOrder = ResizeArray<string>()

                for m in o.Modules do
                    m.train ()

                for step in 0 .. o.StepsPerEpoch - 1 do
                    use _ = torch.NewDisposeScope()
                    optimizer.zero_grad ()

                    let ctx = {
                        Epoch = epoch
                        Step = step
                        Horizon = horizon
                        Lambda = lambda
                        Random = random
                    }

                    let parts = objective.Loss ctx

                    if parts.Total.dim () <> 0L then
                        raise (
                            HybridException(
                                $"Trainer: the loss must be a scalar (0-dim) tensor, got shape {parts.Total.shape}. Reduce it with .mean()."
                            )
                        )

                    let value = parts.Total.ToDouble()

                    if Double.IsNaN value || Double.IsInfinity value then
                        raise (
                            HybridException(
                                $"Trainer: the loss became {value} at epoch {epoch + 1}, step {step + 1}. Lower the learning rates, clip gradients (ClipNorm), or shorten the horizon."
                            )
                        )

                    parts.Total.backward ()

                    if o.ClipNorm > 0.0 then
                        torch.nn.utils.clip_grad_norm_ (all, o.ClipNorm) |> ignore

                    optimizer.step () |> ignore
                    sum <- sum + value

                    for (n, t) in parts.Parts do
                        if not (partSums.ContainsKey n) then
                            partSums[n] <- 0.0
                            partOrder.Add n

                        partSums[n] <- partSums[n] + t.ToDouble()

                let trainLoss = sum / float o.StepsPerEpoch
                trainLosses.Add trainLoss

                let ctx = {
                    Epoch = epoch
                    Step = 0
                    Horizon = horizon
                    Lambda = lambda
                    Random = random
                }

                let validation =
                    match objective.Validation with
                    | Some v when (epoch + 1) % max 1 o.ValidateEvery = 0 || epoch + 1 = o.Epochs ->
                        for m in o.Modules do
                            m.eval ()

                        // Back to training mode even when the validation loss throws.
                        try
                            use _ = torch.no_grad ()
                            use _ = torch.NewDisposeScope()
                            v ctx
                        finally
                            for m in o.Modules do
                                m.train ()
                    | _ -> nan

                validationLosses.Add validation

                if not (Double.IsNaN validation) then
                    if validation < bestValidation - o.MinDelta then
                        bestValidation <- validation
                        bestEpoch <- epoch + 1

                        use _ = torch.no_grad ()

                        for i in 0 .. all.Length - 1 do
                            best[i].copy_ all[i] |> ignore
                    elif o.Patience > 0 && epoch + 1 - bestEpoch >= o.Patience then
                        stoppedEarly <- true

                epoch <- epoch + 1

                if o.CheckpointEvery > 0 && epoch % o.CheckpointEvery = 0 then
                    saveCheckpoint epoch

                let done' = epoch - firstEpoch
                let elapsed = watch.Elapsed

                let eta =
                    TimeSpan.FromTicks(int64 (float elapsed.Ticks / float done' * float (o.Epochs - epoch)))

                Progress.report o.Progress {
                    Epoch = epoch
                    Epochs = o.Epochs
                    TrainLoss = trainLoss
                    ValidationLoss = validation
                    Parts = [| for n in partOrder -> n, partSums[n] / float o.StepsPerEpoch |]
                    Theta = theta ()
                    Horizon = horizon
                    Elapsed = elapsed
                    Eta = eta
                }

        if epoch > firstEpoch && (o.CheckpointEvery <= 0 || epoch % o.CheckpointEvery <> 0) then
            saveCheckpoint epoch

        if o.RestoreBest && bestEpoch > 0 then
            use _ = torch.no_grad ()

            for i in 0 .. all.Length - 1 do
                all[i].copy_ best[i] |> ignore

        for m in o.Modules do
            m.eval ()

        {
            TrainLosses = trainLosses.ToArray()
            ValidationLosses = validationLosses.ToArray()
            Epochs = epoch
            BestEpoch = bestEpoch
            StoppedEarly = stoppedEarly
            Cancelled = cancelled
            WallTime = watch.Elapsed
            Theta = theta ()
        }

    /// Trains with Adam (one parameter group per `ParamGroup`). Every step runs in its own dispose scope;
    /// losses are reduced to numbers. At the start of every epoch TorchSharp's global generator is reseeded
    /// from (seed, epoch) and `TrainContext.Random` is created from the same pair, so a resumed run repeats
    /// an uninterrupted one exactly. Raises `HybridException` on empty groups, a non-scalar or non-finite
    /// loss, or a checkpoint made with another seed. Runs inside `TorchGuard`: a call while another thread runs
    /// Hybrid is refused with `InvalidOperationException`, and so is any call from another thread while it runs.
    let train (o: TrainOptions) (objective: Objective) : TrainResult =
        use _ = TorchGuard.enter "Trainer.train"
        let modes = o.Modules |> Array.map (fun m -> m.training)

        try
            run o objective
        with _ ->
            // A failed run leaves the modules in the modes they had before it (a finished one in eval mode).
            Array.iter2 (fun (m: torch.nn.Module) (training: bool) -> m.train training) o.Modules modes
            reraise ()

    /// Fits parameters (typically θ only) with L-BFGS and a strong-Wolfe line search (`LbfgsOptimizer`, default
    /// settings except the first step's length `rate`): `iterations` outer steps of at most `maxIter` iterations
    /// each, keeping the history between them; `loss` is evaluated in a fresh dispose scope per call. Returns
    /// the loss after each outer step (once converged, the remaining entries repeat the final loss). For the
    /// stop reason, evaluation counts and other settings use `Lbfgs.minimize` or `LbfgsOptimizer`. Runs inside
    /// `TorchGuard` (see `train`).
    let lbfgs (parameters: Parameter[]) (rate: float) (iterations: int) (maxIter: int) (loss: unit -> torch.Tensor) =
        use _ = TorchGuard.enter "Trainer.lbfgs"

        let optimizer =
            LbfgsOptimizer(
                {
                    Lbfgs.defaults with
                        InitialStep = rate
                },
                parameters,
                loss
            )

        [| for _ in 1..iterations -> (optimizer.Run maxIter).Loss |]
