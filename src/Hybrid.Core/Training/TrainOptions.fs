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
    /// How many times an epoch that diverges (a `DivergenceException`: a rollout blowing up, a non-finite loss, or a
    /// non-finite gradient under a finite loss, caught before the optimizer step writes it into the parameters)
    /// is rolled back and retried: the parameters go back to the start of the last epoch whose losses were all
    /// finite (a blow-up usually shows one epoch after the step that caused it), the optimizer's moments are
    /// reset and every learning rate is halved for the rest of the run (each recovery is printed to stderr). 0 fails at once; past the
    /// limit the run fails with the last divergence. Runs that never diverge are unchanged by it. `Trainer.defaults`:
    /// 3.
    Recoveries: int
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
    /// Diverged epochs rolled back and retried at half the learning rates (`TrainOptions.Recoveries`).
    Recoveries: int
}
