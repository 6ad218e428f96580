using Hybrid.Numerics;
using Hybrid.Training;
using Microsoft.FSharp.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Hybrid.CSharp;

/// <summary>Optimizer of <see cref="HybridSimulator.TrainAsync"/>.</summary>
public enum TrainingOptimizer
{
    /// <summary>Adam, one step per epoch, with separate rates for parameters and networks (the default).</summary>
    Adam,

    /// <summary>L-BFGS with a strong-Wolfe line search on every trainable tensor: per epoch at most 20
    /// line-searched iterations (the loss reported is the one after them); the first step has length
    /// <see cref="TrainingOptions.LearningRate"/> in parameter space. A trial step whose simulation is unstable
    /// or not finite is retreated from. Suited to fitting a few physical parameters to smooth losses; no
    /// checkpoints, validation or gradient clipping.</summary>
    Lbfgs,
}

/// <summary>The misfit between a prediction and the observations (NaN observations are left out).</summary>
public enum TrainingLoss
{
    /// <summary>Mean squared error, summed over the observed fields (the default).</summary>
    Mse,

    /// <summary>Mean squared error of the logarithms, log ŷ against log y, summed over the observed fields: for
    /// positive data spanning orders of magnitude (populations, concentrations). Every observation must be &gt; 0.</summary>
    LogMse,

    /// <summary>Gaussian negative log-likelihood ½[log 2πσ² + (y − ŷ)²/σ²] with the noise standard deviation σ =
    /// <see cref="TrainingOptions.NoiseStandardDeviation"/>, averaged per field and summed over the observed fields.</summary>
    GaussianNll,
}

/// <summary>Settings of <see cref="HybridSimulator.TrainAsync"/>: Adam on the learnable parameters (θ) and
/// the closure networks (φ), from the model's initial conditions, one optimizer step per epoch; optionally a
/// physics-residual term in the loss and validation with early stopping.</summary>
public sealed record TrainingOptions
{
    /// <summary>Number of epochs (= optimizer steps; default 100).</summary>
    public int Epochs { get; init; } = 100;

    /// <summary>Adam learning rate of the scientific parameters, on their unconstrained scale (default 0.01).</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>Adam learning rate of the closure networks (default 1e-3).</summary>
    public double NetworkLearningRate { get; init; } = 1e-3;

    /// <summary>Time integration scheme of the training rollouts (default RK4).</summary>
    public IntegrationScheme Scheme { get; init; } = IntegrationScheme.Rk4;

    /// <summary>Time step of the training rollouts (default 0.01).</summary>
    public double Dt { get; init; } = 0.01;

    /// <summary>Time of the model's initial conditions (default 0).</summary>
    public double StartTime { get; init; }

    /// <summary>Seed of every random choice (default 0).</summary>
    public int Seed { get; init; }

    /// <summary>Clip the global gradient norm to this value (0 = no clipping, the default).</summary>
    public double ClipNorm { get; init; }

    /// <summary>Folder for checkpoints (null = none, the default). A cancelled run saves one before it stops.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Save a checkpoint every this many epochs, and at the end (default 10).</summary>
    public int CheckpointEvery { get; init; } = 10;

    /// <summary>Continue from the latest checkpoint in <see cref="CheckpointDirectory"/> when there is one (default true).</summary>
    public bool Resume { get; init; } = true;

    /// <summary>Print a progress line every this many epochs (0 = silent, the default).</summary>
    public int PrintEvery { get; init; }

    /// <summary>Weight λ ≥ 0 of the physics residual in the loss (default 0: data only). The loss adds λ times
    /// the mean-square residual of the predicted trajectory at the observation times, in the form consistent
    /// with <see cref="Scheme"/> (one step from each observation time to the next).</summary>
    public double PhysicsWeight { get; init; }

    /// <summary>Held-out observations (null = none, the default). After every epoch the same misfit is computed
    /// on them without gradients; at the end the parameters and networks of the best validation epoch are
    /// put back.</summary>
    public TrainingData? Validation { get; init; }

    /// <summary>With <see cref="Validation"/>: stop when the validation loss has not improved by more than
    /// <see cref="MinImprovement"/> for this many epochs (0 = never stop early, the default).</summary>
    public int Patience { get; init; }

    /// <summary>Smallest decrease of the validation loss that counts as an improvement (default 0).</summary>
    public double MinImprovement { get; init; }

    /// <summary>The optimizer (default Adam). With <see cref="TrainingOptimizer.Lbfgs"/> use a learning rate
    /// near 1 and a few tens of epochs.</summary>
    public TrainingOptimizer Optimizer { get; init; } = TrainingOptimizer.Adam;

    /// <summary>The misfit to the data (default <see cref="TrainingLoss.Mse"/>).</summary>
    public TrainingLoss Loss { get; init; } = TrainingLoss.Mse;

    /// <summary>Noise standard deviation σ &gt; 0 of <see cref="TrainingLoss.GaussianNll"/>, in the units of the data (default 1).</summary>
    public double NoiseStandardDeviation { get; init; } = 1.0;

    /// <summary>Multiple shooting: 0 (the default) fits the whole trajectory from the model's initial conditions
    /// (parameters used in them are fitted too); a horizon h ≥ 1 instead starts a window at each observation time
    /// from the observed state and rolls it out h observation intervals (every field must be observed, and a
    /// window starting at a missing value is left out). The horizon grows from <see cref="HorizonStart"/> to h.</summary>
    public int Horizon { get; init; }

    /// <summary>Horizon of the first epoch (0 = start at <see cref="Horizon"/>, the default).</summary>
    public int HorizonStart { get; init; }

    /// <summary>Epochs between increments of the horizon by one (0 = never grow, the default).</summary>
    public int HorizonGrowEvery { get; init; }

    /// <summary>With a <see cref="Horizon"/>: windows drawn at random (seeded) for each step (0 = all of them, the default).</summary>
    public int WindowsPerStep { get; init; }

    // Every option checked, each failure an ArgumentException-family error naming the option, the value and the fix.
    internal void Validate()
    {
        Argument.AtLeast(Epochs, 1, "options.Epochs", "the number of optimizer epochs, e.g. Epochs = 100");
        Argument.Positive(LearningRate, "options.LearningRate", "the step size of the parameters, e.g. LearningRate = 0.01");
        Argument.Positive(NetworkLearningRate, "options.NetworkLearningRate", "the step size of the networks, e.g. NetworkLearningRate = 1e-3");
        Argument.Positive(Dt, "options.Dt", "the time step of the rollouts, e.g. Dt = 0.01");
        Argument.Finite(StartTime, "options.StartTime", "StartTime = 0");
        Argument.AtLeast(ClipNorm, 0.0, "options.ClipNorm", "0 turns clipping off; e.g. ClipNorm = 1");
        Argument.AtLeast(CheckpointEvery, 1, "options.CheckpointEvery", "epochs between checkpoints, e.g. CheckpointEvery = 10");
        Argument.AtLeast(PrintEvery, 0, "options.PrintEvery", "0 prints nothing");
        Argument.AtLeast(PhysicsWeight, 0.0, "options.PhysicsWeight", "the weight λ of the physics residual; 0 = data only");
        Argument.AtLeast(Patience, 0, "options.Patience", "0 never stops early");
        Argument.AtLeast(MinImprovement, 0.0, "options.MinImprovement", "the smallest decrease that counts, e.g. 0");
        Argument.Positive(NoiseStandardDeviation, "options.NoiseStandardDeviation", "the noise σ of the Gaussian likelihood, e.g. 0.1");
        Argument.AtLeast(Horizon, 0, "options.Horizon", "0 fits the whole trajectory");
        Argument.AtLeast(HorizonStart, 0, "options.HorizonStart", "0 starts at Horizon");
        Argument.AtLeast(HorizonGrowEvery, 0, "options.HorizonGrowEvery", "0 never grows");
        Argument.AtLeast(WindowsPerStep, 0, "options.WindowsPerStep", "0 uses every window");
        if (!Enum.IsDefined(Optimizer))
            throw new ArgumentOutOfRangeException("options.Optimizer", Optimizer, "Use TrainingOptimizer.Adam or TrainingOptimizer.Lbfgs.");
        if (!Enum.IsDefined(Loss))
            throw new ArgumentOutOfRangeException("options.Loss", Loss, "Use TrainingLoss.Mse, LogMse or GaussianNll.");
        if (!Enum.IsDefined(Scheme))
            throw new ArgumentOutOfRangeException("options.Scheme", Scheme, "Use an IntegrationScheme member, e.g. IntegrationScheme.Rk4.");
        if (HorizonStart > Horizon)
            throw new ArgumentOutOfRangeException(
                "options.HorizonStart", HorizonStart, $"options.HorizonStart must be ≤ Horizon = {Horizon}, got {HorizonStart}. Raise Horizon, or lower HorizonStart.");
        if ((HorizonStart > 0 || HorizonGrowEvery > 0 || WindowsPerStep > 0) && Horizon == 0)
            throw new ArgumentException(
                "HorizonStart, HorizonGrowEvery and WindowsPerStep shape the windows of multiple shooting, which Horizon = 0 turns off. Set Horizon (e.g. Horizon = 5) or leave them at 0.",
                "options");
        if (Patience > 0 && Validation is null)
            throw new ArgumentException(
                "options.Patience needs options.Validation: early stopping watches the validation loss. Give Validation, or set Patience = 0.",
                "options");
        if (Optimizer == TrainingOptimizer.Lbfgs && (Validation is not null || CheckpointDirectory is not null || ClipNorm > 0))
            throw new ArgumentException(
                "TrainingOptimizer.Lbfgs runs without validation, checkpoints or gradient clipping; leave Validation, CheckpointDirectory and ClipNorm unset, or use Adam.",
                "options");
    }
}

/// <summary>One progress report, sent after every epoch.</summary>
/// <param name="Epoch">Epoch just finished (1-based).</param>
/// <param name="Epochs">Total epochs planned.</param>
/// <param name="Loss">Training loss of the epoch (<see cref="TrainingOptions.Loss"/> summed over the observed fields, plus the physics term when weighted).</param>
/// <param name="Parameters">Current parameter values by name.</param>
/// <param name="Elapsed">Time since training (re)started.</param>
/// <param name="Remaining">Estimated time to finish.</param>
public sealed record TrainingProgress(
    int Epoch,
    int Epochs,
    double Loss,
    IReadOnlyDictionary<string, double> Parameters,
    TimeSpan Elapsed,
    TimeSpan Remaining);

/// <summary>Outcome of <see cref="HybridSimulator.TrainAsync"/>.</summary>
/// <param name="Losses">Training loss per epoch (including epochs before a resume).</param>
/// <param name="Epochs">Epochs completed.</param>
/// <param name="Parameters">Fitted parameter values by name (also left in the simulator; with validation, those
/// of the best validation epoch).</param>
/// <param name="WallTime">Wall time of the call.</param>
/// <param name="ValidationLosses">Validation loss per epoch (empty without <see cref="TrainingOptions.Validation"/>).</param>
/// <param name="BestEpoch">Epoch with the lowest validation loss (1-based; 0 without validation).</param>
/// <param name="StoppedEarly">True when early stopping ended the run.</param>
public sealed record TrainingResult(
    double[] Losses,
    int Epochs,
    IReadOnlyDictionary<string, double> Parameters,
    TimeSpan WallTime,
    double[] ValidationLosses,
    int BestEpoch,
    bool StoppedEarly);
