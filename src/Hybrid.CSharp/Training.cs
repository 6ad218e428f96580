using Hybrid.Numerics;
using Hybrid.Training;
using Microsoft.FSharp.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Hybrid.CSharp;

/// <summary>
/// Observed trajectory for training: save times and, for each observed field, its values at those times
/// ([time][cell], one cell for a 0-D model). NaN marks a missing value. Fields left out are not observed.
/// </summary>
public sealed class TrainingData
{
    /// <summary>Creates the data set; the arrays are copied.</summary>
    /// <param name="times">Observation times, sorted, ≥ the start time of the simulation.</param>
    /// <param name="observations">Per observed field: one array of cell values per time.</param>
    /// <exception cref="Hybrid.HybridException">No times or no fields, or a field with the wrong number of times.</exception>
    public TrainingData(double[] times, IReadOnlyDictionary<string, double[][]> observations)
    {
        ArgumentNullException.ThrowIfNull(times);
        ArgumentNullException.ThrowIfNull(observations);
        if (times.Length == 0 || observations.Count == 0)
            throw new HybridException("TrainingData: give at least one time and one observed field.");
        foreach (var (field, values) in observations)
            if (values is null || values.Length != times.Length)
                throw new HybridException(
                    $"TrainingData: field '{field}' has {values?.Length ?? 0} snapshots but there are {times.Length} times.");
        Times = (double[])times.Clone();
        Observations = observations.ToDictionary(kv => kv.Key, kv => kv.Value.Select(v => (double[])v.Clone()).ToArray());
    }

    /// <summary>Observation times.</summary>
    public double[] Times { get; }

    /// <summary>Observed values per field: [time][cell].</summary>
    public IReadOnlyDictionary<string, double[][]> Observations { get; }

    /// <summary>Every field of a simulation result (trajectory 0) as training data, e.g. for synthetic experiments.</summary>
    public static TrainingData FromSimulation(SimulationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new TrainingData(result.Times, result.Fields.ToDictionary(f => f, f => result.Values(f)));
    }
}

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

/// <summary>Settings of <see cref="HybridSimulator.TrainAsync"/>: Adam on the learnable parameters (θ) and
/// the closure networks (φ), from the model's initial conditions, one optimizer step per epoch; optionally a
/// physics-residual term in the loss and validation with early stopping.</summary>
public sealed class TrainingOptions
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
}

/// <summary>One progress report, sent after every epoch.</summary>
/// <param name="Epoch">Epoch just finished (1-based).</param>
/// <param name="Epochs">Total epochs planned.</param>
/// <param name="Loss">Training loss of the epoch (sum over observed fields of the mean squared misfit).</param>
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

public sealed partial class HybridSimulator
{
    private ParamGroup[] Groups(double thetaRate, double phiRate)
    {
        var theta = Inner.Parameters.Where(p => p.Learnable).Select(p => p.Raw).ToArray();
        var phi = Inner.Modules.SelectMany(m => m.Item2.parameters()).ToArray();
        return new[]
        {
            new ParamGroup("theta", theta, thetaRate, LrSchedule.Constant),
            new ParamGroup("phi", phi, phiRate, LrSchedule.Constant),
        };
    }

    /// <summary>
    /// Fits the learnable parameters and closure networks to <paramref name="data"/> by Adam, differentiating
    /// through the simulation, on a worker thread. The parameters stay in the simulator.
    /// </summary>
    /// <param name="data">Observations; every observed field must be a field of the model.</param>
    /// <param name="options">Training settings.</param>
    /// <param name="progress">Receives a report after every epoch; may be null.</param>
    /// <param name="cancellationToken">Checked before every step; on cancellation a checkpoint is saved (when
    /// <see cref="TrainingOptions.CheckpointDirectory"/> is set and a step was done) and the task ends with
    /// <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="Hybrid.HybridException">Unknown field, wrong number of cells, nothing to train, a
    /// non-finite loss, or an unstable step; the message names the problem and the fix.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<TrainingResult> TrainAsync(
        TrainingData data,
        TrainingOptions options,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.Run(() => Train(data, options, progress, cancellationToken), cancellationToken);
    }

    // The observed fields of a data set as tensors [time; 1; cells…], checked against the model and the grid.
    private List<(int Index, Tensor Values)> Targets(TrainingData data, string what)
    {
        var fields = Inner.Fields;
        var shape = new long[] { data.Times.Length, 1 }.Concat(Shape.Select(s => (long)s)).ToArray();
        var targets = new List<(int Index, Tensor Values)>();
        foreach (var (field, values) in data.Observations)
        {
            var index = Array.IndexOf(fields, field);
            if (index < 0)
                throw new HybridException(
                    $"{what} observes '{field}', which is not a field of model '{Model.Name}'. Fields: {string.Join(", ", fields)}.");
            for (var s = 0; s < values.Length; s++)
                if (values[s] is null || values[s].Length != Cells)
                    throw new HybridException(
                        $"{what}: field '{field}' at time {data.Times[s]} has {values[s]?.Length ?? 0} values but the grid has {Cells}.");
            var t = tensor(values.SelectMany(v => v).ToArray(), shape, dtype: Inner.Dtype, device: Engine.torchDevice());
            targets.Add((index, t.DetachFromDisposeScope()));
        }
        return targets;
    }

    private RolloutOptions RolloutTo(TrainingOptions options, double[] times) =>
        new SimulationSettings
        {
            Scheme = options.Scheme,
            Dt = options.Dt,
            StartTime = options.StartTime,
            SaveTimes = times,
        }.ToFSharp();

    // Sum over observed fields of the masked mean squared misfit, with the parts by field name.
    private Tuple<string, Tensor>[] Misfits(Trajectory trajectory, List<(int Index, Tensor Values)> targets) =>
        targets
            .Select(t => Tuple.Create(Inner.Fields[t.Index], Hybrid.Training.Loss.mse(trajectory.Values[t.Index], t.Values)))
            .ToArray();

    private static Tensor Sum(IEnumerable<Tensor> terms) => terms.Aggregate((a, b) => Hybrid.TensorArithmetic.SafeOps.Add(a, b));

    private TrainingResult Train(TrainingData data, TrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken token)
    {
        if (!(options.PhysicsWeight >= 0) || double.IsInfinity(options.PhysicsWeight))
            throw new HybridException($"TrainingOptions.PhysicsWeight must be a finite number ≥ 0, got {options.PhysicsWeight}.");
        if (options.Patience < 0)
            throw new HybridException($"TrainingOptions.Patience must be ≥ 0 (0 = never stop early), got {options.Patience}.");
        if (options.Patience > 0 && options.Validation is null)
            throw new HybridException("TrainingOptions.Patience needs TrainingOptions.Validation: early stopping watches the validation loss.");
        if (!(options.MinImprovement >= 0))
            throw new HybridException($"TrainingOptions.MinImprovement must be ≥ 0, got {options.MinImprovement}.");

        var targets = Targets(data, "TrainingData");
        var validationTargets = options.Validation is null ? null : Targets(options.Validation, "TrainingOptions.Validation");
        var rollout = RolloutTo(options, data.Times);
        var residualForm = ResidualForm.NewConsistent(rollout.Scheme);

        LossParts Loss(TrainContext context)
        {
            var trajectory = Inner.Simulate(Inner.Initial(1), rollout);
            var parts = Misfits(trajectory, targets);
            var total = Sum(parts.Select(p => p.Item2));
            if (context.Lambda > 0)
            {
                var residual = Hybrid.Training.Loss.residual(Inner.Dynamics, Inner.Theta(), residualForm, trajectory.Times, trajectory.Values);
                parts = parts.Append(Tuple.Create("physics", residual)).ToArray();
                total = Hybrid.TensorArithmetic.SafeOps.Add(total, Hybrid.TensorArithmetic.SafeOps.Mul(context.Lambda, residual));
            }
            return new LossParts(total, parts);
        }

        FSharpOption<FSharpFunc<TrainContext, double>> validation = FSharpOption<FSharpFunc<TrainContext, double>>.None;
        if (options.Validation is { } held && validationTargets is not null)
        {
            var validationRollout = RolloutTo(options, held.Times);
            double Validate(TrainContext _)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var trajectory = Inner.Simulate(Inner.Initial(1), validationRollout);
                return Sum(Misfits(trajectory, validationTargets).Select(p => p.Item2)).ToDouble();
            }
            validation = FSharpOption<FSharpFunc<TrainContext, double>>.Some(FuncConvert.FromFunc<TrainContext, double>(Validate));
        }

        if (options.Optimizer == TrainingOptimizer.Lbfgs)
            return TrainLbfgs(options, progress, token, Loss, targets);

        var objective = new Objective(FuncConvert.FromFunc<TrainContext, LossParts>(Loss), validation);

        IProgress<ProgressReport>? hook = progress is null
            ? null
            : new ProgressAdapter(r => progress.Report(new TrainingProgress(
                r.Epoch, r.Epochs, r.TrainLoss,
                r.Theta.ToDictionary(p => p.Item1, p => p.Item2),
                r.Elapsed, r.Eta)));

        var d = Trainer.defaults;
        var trainOptions = new TrainOptions(
            options.Epochs,
            1,
            options.Seed,
            Groups(options.LearningRate, options.NetworkLearningRate),
            options.ClipNorm,
            d.Horizon,
            LambdaSchedule.NewConstant(options.PhysicsWeight),
            1,
            options.Patience,
            options.MinImprovement,
            options.Validation is not null,
            options.CheckpointDirectory is null ? FSharpOption<string>.None : FSharpOption<string>.Some(options.CheckpointDirectory),
            options.CheckpointEvery,
            options.Resume,
            new ProgressOptions(
                options.PrintEvery > 0,
                Math.Max(1, options.PrintEvery),
                hook is null ? FSharpOption<IProgress<ProgressReport>>.None : FSharpOption<IProgress<ProgressReport>>.Some(hook)),
            Inner.Parameters.Select(p => Tuple.Create(p.Name, FuncConvert.FromFunc(() => p.Get()))).ToArray(),
            Inner.Modules.Select(m => (nn.Module)m.Item2).ToArray(),
            token);

        var result = Trainer.train(trainOptions, objective);
        foreach (var t in validationTargets is null ? targets : targets.Concat(validationTargets))
            t.Values.Dispose();
        if (result.Cancelled)
            throw new OperationCanceledException(
                $"Training was cancelled after epoch {result.Epochs}" +
                (options.CheckpointDirectory is null ? "." : $"; the checkpoint is in '{options.CheckpointDirectory}'."),
                token);
        return new TrainingResult(
            result.TrainLosses,
            result.Epochs,
            Inner.Parameters.ToDictionary(p => p.Name, p => p.Get()),
            result.WallTime,
            options.Validation is null ? [] : result.ValidationLosses,
            result.BestEpoch,
            result.StoppedEarly);
    }

    private TrainingResult TrainLbfgs(
        TrainingOptions options,
        IProgress<TrainingProgress>? progress,
        CancellationToken token,
        Func<TrainContext, LossParts> loss,
        List<(int Index, Tensor Values)> targets)
    {
        try
        {
            if (options.Validation is not null || options.CheckpointDirectory is not null || options.ClipNorm > 0)
                throw new HybridException(
                    "TrainingOptimizer.Lbfgs runs without validation, checkpoints or gradient clipping; leave Validation, CheckpointDirectory and ClipNorm unset, or use Adam.");
            if (options.Epochs < 1)
                throw new HybridException($"TrainingOptions.Epochs must be ≥ 1, got {options.Epochs}.");
            if (!(options.LearningRate > 0))
                throw new HybridException($"TrainingOptions.LearningRate must be > 0, got {options.LearningRate}.");
            var parameters = Groups(0, 0).SelectMany(g => g.Parameters).ToArray();
            if (parameters.Length == 0)
                throw new HybridException($"Model '{Model.Name}' has nothing to train: no learnable parameter and no closure network.");

            Engine.seed(options.Seed);
            var context = new TrainContext(0, 0, 1, options.PhysicsWeight, new Random(options.Seed));
            // The library's L-BFGS (strong-Wolfe line search; failed trial steps are retreated from), its
            // history kept across epochs; the learning rate is the length of the first step.
            var d = Lbfgs.defaults;
            var settings = new LbfgsOptions(
                d.MaxIterations, d.History, options.LearningRate, d.GradientTolerance, d.LossTolerance,
                d.MaxEvaluations, d.SufficientDecrease, d.Curvature);
            var optimizer = new LbfgsOptimizer(settings, parameters, FuncConvert.FromFunc(() => loss(context).Total));
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var losses = new List<double>();
            for (var epoch = 1; epoch <= options.Epochs; epoch++)
            {
                if (token.IsCancellationRequested)
                    throw new OperationCanceledException($"Training was cancelled after epoch {epoch - 1}.", token);
                var value = optimizer.Run(20).Loss;
                losses.Add(value);
                var elapsed = watch.Elapsed;
                progress?.Report(new TrainingProgress(
                    epoch, options.Epochs, value, Inner.Parameters.ToDictionary(p => p.Name, p => p.Get()),
                    elapsed, elapsed / epoch * (options.Epochs - epoch)));
                if (options.PrintEvery > 0 && epoch % options.PrintEvery == 0)
                    Console.WriteLine($"epoch {epoch}/{options.Epochs}  loss {value:E3}");
            }

            return new TrainingResult(
                losses.ToArray(),
                options.Epochs,
                Inner.Parameters.ToDictionary(p => p.Name, p => p.Get()),
                watch.Elapsed,
                [],
                0,
                false);
        }
        finally
        {
            foreach (var t in targets)
                t.Values.Dispose();
        }
    }

    /// <summary>
    /// Loads the latest checkpoint that training wrote to <paramref name="directory"/> into this simulator's
    /// parameters and closure networks; returns the number of epochs it had completed.
    /// </summary>
    /// <exception cref="Hybrid.HybridException">No checkpoint in the folder, or one made for another model.</exception>
    public int LoadCheckpoint(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var latest = Checkpoint.latest(directory);
        if (FSharpOption<string>.get_IsNone(latest))
            throw new HybridException(
                $"'{directory}' holds no checkpoint (no 'latest' file pointing at a complete epoch folder). Train with CheckpointDirectory set first.");
        var groups = Groups(0.01, 0.01).Where(g => g.Parameters.Length > 0).ToArray();
        var all = groups.SelectMany(g => g.Parameters).ToArray();
        var tensors = all.Select(p => (Tensor)p).ToArray();
        Tensor[] best;
        using (no_grad())
            best = all.Select(p => p.detach().clone()).ToArray();
        using var optimizer = optim.Adam(groups.Select(g => new TorchSharp.Modules.Adam.ParamGroup(g.Parameters, lr: g.LearningRate)), lr: 0.01);
        var meta = Checkpoint.load(latest.Value, tensors, best, optimizer);
        foreach (var b in best)
            b.Dispose();
        return meta.Epoch;
    }

    private sealed class ProgressAdapter(Action<ProgressReport> report) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) => report(value);
    }
}
