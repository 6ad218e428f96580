using Hybrid.Numerics;
using Hybrid.Training;
using Microsoft.FSharp.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Hybrid.TensorArithmetic;

namespace Hybrid.CSharp;

public sealed partial class HybridSimulator
{
    private ParamGroup[] Groups(double thetaRate, double phiRate)
    {
        var theta = _inner.Parameters.Where(p => p.Learnable).Select(p => p.Raw).ToArray();
        var phi = _inner.Modules.SelectMany(m => m.Item2.parameters()).ToArray();
        return new[]
        {
            new ParamGroup("theta", theta, thetaRate, LrSchedule.Constant),
            new ParamGroup("phi", phi, phiRate, LrSchedule.Constant),
        };
    }

    /// <summary>
    /// Fits the learnable parameters (those used in initial conditions included) and closure networks to
    /// <paramref name="data"/>, differentiating through the simulation, and waits for the result. The work runs
    /// on the facade's torch thread, after any work queued there before it. The parameters stay in the simulator.
    /// </summary>
    /// <param name="data">Observations; every observed field must be a field of the model.</param>
    /// <param name="options">Training settings.</param>
    /// <param name="progress">Receives a report after every epoch (with L-BFGS, one per epoch when the fit ends); may be null.</param>
    /// <param name="cancellationToken">Checked before every step; on cancellation a checkpoint is saved (when
    /// <see cref="TrainingOptions.CheckpointDirectory"/> is set and a step was done) and
    /// <see cref="OperationCanceledException"/> is raised.</param>
    /// <exception cref="ArgumentException">An option out of range, or data that do not fit the model (unknown
    /// field, wrong number of cells, a non-positive value with <see cref="TrainingLoss.LogMse"/>); the message
    /// names the option or field, the value and the fix.</exception>
    /// <exception cref="Hybrid.HybridException">Nothing to train, a non-finite loss, or an unstable step.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The simulator was disposed.</exception>
    public TrainingResult Train(
        TrainingData data,
        TrainingOptions options,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Check(data, options, cancellationToken);
        return OnTorch(() => TrainOnTorch(data, options, progress, cancellationToken));
    }

    /// <summary>
    /// As <see cref="Train"/>, but queues the work on the facade's torch thread and returns at once. Runs queued
    /// from several threads (on one simulator or several) run one after another in the order queued, each as if
    /// alone, so seeded runs repeat exactly.
    /// </summary>
    /// <exception cref="ArgumentException">Raised at once for an option out of range (see <see cref="Train"/>).</exception>
    public Task<TrainingResult> TrainAsync(
        TrainingData data,
        TrainingOptions options,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Check(data, options, cancellationToken);
        return TorchThread.RunAsync(() =>
        {
            ThrowIfDisposed();
            return TrainOnTorch(data, options, progress, cancellationToken);
        });
    }

    private void Check(TrainingData data, TrainingOptions options, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        ThrowIfDisposed();
        options.Validate();
        token.ThrowIfCancellationRequested();
    }

    // One observed field: its index in the state, the values [S; 1; cells…] and what the prediction is compared with
    // (the values, or their logarithms).
    private sealed record Target(int Index, Tensor Values, Tensor Compare) : IDisposable
    {
        public void Dispose()
        {
            if (!ReferenceEquals(Compare, Values)) Compare.Dispose();
            Values.Dispose();
        }
    }

    // The observed fields of a data set as tensors, checked against the model and the grid.
    private List<Target> Targets(TrainingData data, TrainingOptions options, string argument)
    {
        var fields = _inner.Fields;
        var shape = new long[] { data.Times.Length, 1 }.Concat(Shape.Select(s => (long)s)).ToArray();
        var targets = new List<Target>();
        try
        {
            foreach (var (field, values) in data.Observations)
            {
                var index = Array.IndexOf(fields, field);
                if (index < 0)
                    throw new ArgumentException(
                        $"{argument} observes '{field}', which is not a field of model '{Model.Name}'. Fields: {string.Join(", ", fields)}.", argument);
                for (var s = 0; s < values.Length; s++)
                    if (values[s].Length != Cells)
                        throw new ArgumentException(
                            $"{argument}: field '{field}' at time {Argument.Show(data.Times[s])} has {values[s].Length} values but the grid has {Cells}.", argument);
                var flat = values.SelectMany(v => v).ToArray();
                var t = tensor(flat, shape, dtype: _inner.Dtype, device: Engine.torchDevice()).DetachFromDisposeScope();
                var compare = t;
                if (options.Loss == TrainingLoss.LogMse)
                {
                    var k = Array.FindIndex(flat, v => v <= 0);
                    if (k >= 0)
                    {
                        t.Dispose();
                        throw new ArgumentException(
                            $"{argument}: field '{field}' has the value {Argument.Show(flat[k])} at time {Argument.Show(data.Times[k / Cells])}, but TrainingLoss.LogMse compares logarithms and needs every observation > 0. Mark it missing (NaN) or use TrainingLoss.Mse.",
                            argument);
                    }

                    compare = tensor(flat.Select(v => Math.Log(v)).ToArray(), shape, dtype: _inner.Dtype, device: Engine.torchDevice()).DetachFromDisposeScope();
                }

                targets.Add(new Target(index, t, compare));
            }
        }
        catch
        {
            foreach (var t in targets) t.Dispose();
            throw;
        }

        return targets;
    }

    private static RolloutOptions Rollout(TrainingOptions options, double start, double[] times) =>
        new SimulationSettings { Scheme = options.Scheme, Dt = options.Dt, StartTime = start, SaveTimes = times }.ToFSharp();

    // The misfit of a predicted field [S; B; cells…] to its target (same shape) under the chosen loss.
    private static Tensor Misfit(TrainingOptions options, Tensor predicted, Tensor compare)
    {
        switch (options.Loss)
        {
            case TrainingLoss.LogMse:
                return Loss.mse(predicted.log(), compare);
            case TrainingLoss.GaussianNll:
                var sigma = tensor(
                    Enumerable.Repeat(options.NoiseStandardDeviation, (int)predicted.numel()).ToArray(),
                    predicted.shape, dtype: predicted.dtype, device: predicted.device);
                return Loss.gaussianNll(predicted, sigma, compare);
            default:
                return Loss.mse(predicted, compare);
        }
    }

    private static Tensor Sum(IEnumerable<Tensor> terms) => terms.Aggregate((a, b) => SafeOps.Add(a, b));

    // The loss of the whole trajectory from the model's initial conditions (gradients reach the parameters used in them).
    private LossParts WholeLoss(TrainingOptions options, TrainingData data, List<Target> targets, double lambda)
    {
        var rollout = Rollout(options, options.StartTime, data.Times);
        var trajectory = _inner.Simulate(_inner.Initial(1), rollout);
        var parts = targets.Select(t => Tuple.Create(_inner.Fields[t.Index], Misfit(options, trajectory.Values[t.Index], t.Compare))).ToArray();
        var total = Sum(parts.Select(p => p.Item2));
        if (lambda > 0)
        {
            var residual = Loss.residual(_inner.Dynamics, _inner.Theta(), ResidualForm.NewConsistent(rollout.Scheme), trajectory.Times, trajectory.Values);
            parts = parts.Append(Tuple.Create("physics", residual)).ToArray();
            total = SafeOps.Add(total, SafeOps.Mul(lambda, residual));
        }

        return new LossParts(total, parts);
    }

    // Multiple shooting: windows start at observation times from the observed state and run `horizon` intervals.
    private (int Batch, int Start)[] Windows(TrainingData data, int horizon, int shortest)
    {
        var fields = _inner.Fields;
        var missing = fields.Where(f => !data.Observations.ContainsKey(f)).ToArray();
        if (missing.Length > 0)
            throw new ArgumentException(
                $"TrainingOptions.Horizon = {horizon} starts each window from the observed state, but field(s) {string.Join(", ", missing.Select(f => $"'{f}'"))} are not observed. Observe every field, or set Horizon = 0 to fit from the model's initial conditions.",
                "options");
        if (data.Times.Length <= horizon)
            throw new ArgumentException(
                $"TrainingOptions.Horizon = {horizon} needs more than {horizon} observation times, but the data has {data.Times.Length}. Lower the horizon.",
                "options");
        // Every start of the shortest horizon; each epoch keeps those its own horizon fits.
        var pairs = Hybrid.Training.Windows.starts(data.Times.Length, 1, shortest)
            .Select(p => (p.Item1, p.Item2))
            .Where(p => fields.All(f => data.Observations[f][p.Item2].All(double.IsFinite)))
            .ToArray();
        if (pairs.Length == 0)
            throw new ArgumentException(
                $"TrainingOptions.Horizon = {horizon}: no window can start, since every start time has a missing (NaN) value. Fill in a full state, or set Horizon = 0.",
                "data");
        return pairs;
    }

    private LossParts WindowLoss(
        TrainingOptions options, TrainingData data, List<Target> targets, (int Batch, int Start)[] all, TrainContext context)
    {
        var horizon = context.Horizon;
        var pairs = all.Where(p => p.Start + horizon < data.Times.Length).ToArray();
        if (options.WindowsPerStep > 0)
            pairs = Hybrid.Training.Windows.sample(context.Random, options.WindowsPerStep, pairs.Select(p => Tuple.Create(p.Batch, p.Start)).ToArray())
                .Select(p => (p.Item1, p.Item2)).ToArray();
        var fields = _inner.Fields;
        var byField = fields.Select(f => targets.First(t => fields[t.Index] == f)).ToArray();
        var sums = new Tensor?[targets.Count];
        var counts = new int[targets.Count];
        Tensor? physics = null;
        foreach (var (_, s) in pairs)
        {
            var u0 = byField.Select(t => t.Values[s]).ToArray();
            var rollout = Rollout(options, data.Times[s], data.Times[(s + 1)..(s + horizon + 1)]);
            var trajectory = _inner.Simulate(u0, rollout);
            for (var k = 0; k < targets.Count; k++)
            {
                // A field with no observation inside this window adds nothing to its mean.
                var observed = data.Observations[fields[targets[k].Index]];
                if (!Enumerable.Range(s + 1, horizon).Any(j => observed[j].Any(double.IsFinite)))
                    continue;
                var misfit = Misfit(options, trajectory.Values[targets[k].Index], targets[k].Compare.narrow(0, s + 1, horizon));
                sums[k] = sums[k] is null ? misfit : SafeOps.Add(sums[k]!, misfit);
                counts[k]++;
            }

            if (context.Lambda > 0)
            {
                var residual = Loss.residual(
                    _inner.Dynamics, _inner.Theta(), ResidualForm.NewConsistent(rollout.Scheme),
                    data.Times[s..(s + horizon + 1)], u0.Zip(trajectory.Values, (a, b) => cat(new[] { a.unsqueeze(0), b }, 0)).ToArray());
                physics = physics is null ? residual : SafeOps.Add(physics, residual);
            }
        }

        var parts = Enumerable.Range(0, targets.Count)
            .Where(k => counts[k] > 0)
            .Select(k => Tuple.Create(fields[targets[k].Index], SafeOps.Div(sums[k]!, (double)counts[k])))
            .ToArray();
        if (parts.Length == 0)
            throw new HybridException(
                $"Multiple shooting with a horizon of {horizon}: no window has an observation to fit. Give data with observations after the window starts, or set Horizon = 0.");
        var total = Sum(parts.Select(p => p.Item2));
        if (physics is not null)
        {
            var mean = SafeOps.Div(physics, (double)pairs.Length);
            parts = parts.Append(Tuple.Create("physics", mean)).ToArray();
            total = SafeOps.Add(total, SafeOps.Mul(context.Lambda, mean));
        }

        return new LossParts(total, parts);
    }

    private TrainingResult TrainOnTorch(TrainingData data, TrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken token)
    {
        var targets = Targets(data, options, "data");
        var validationTargets = new List<Target>();
        try
        {
            if (options.Validation is { } held)
                validationTargets = Targets(held, options, "options.Validation");
            var windows = options.Horizon > 0
                ? Windows(data, options.Horizon, options.HorizonStart == 0 ? options.Horizon : options.HorizonStart)
                : null;

            LossParts Loss(TrainContext context) =>
                windows is null
                    ? WholeLoss(options, data, targets, context.Lambda)
                    : WindowLoss(options, data, targets, windows, context);

            if (options.Optimizer == TrainingOptimizer.Lbfgs)
                return TrainLbfgs(options, progress, token, Loss);

            var validation = FSharpOption<FSharpFunc<TrainContext, double>>.None;
            if (options.Validation is { } heldOut)
                validation = FSharpOption<FSharpFunc<TrainContext, double>>.Some(FuncConvert.FromFunc<TrainContext, double>(_ =>
                {
                    using var scope = NewDisposeScope();
                    using var noGrad = no_grad();
                    return WholeLoss(options, heldOut, validationTargets, 0).Total.ToDouble();
                }));

            var objective = new Objective(FuncConvert.FromFunc<TrainContext, LossParts>(Loss), validation);
            IProgress<ProgressReport>? hook = progress is null
                ? null
                : new ProgressAdapter(r => progress.Report(new TrainingProgress(
                    r.Epoch, r.Epochs, r.TrainLoss,
                    r.Theta.ToDictionary(p => p.Item1, p => p.Item2),
                    r.Elapsed, r.Eta)));
            var horizon = options.Horizon == 0
                ? Trainer.defaults.Horizon
                : new HorizonSchedule(options.HorizonStart == 0 ? options.Horizon : options.HorizonStart, options.Horizon, options.HorizonGrowEvery);
            var trainOptions = new TrainOptions(
                options.Epochs,
                1,
                options.Seed,
                Groups(options.LearningRate, options.NetworkLearningRate),
                options.ClipNorm,
                horizon,
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
                _inner.Parameters.Select(p => Tuple.Create(p.Name, FuncConvert.FromFunc(() => p.Get()))).ToArray(),
                _inner.Modules.Select(m => (nn.Module)m.Item2).ToArray(),
                token,
                Trainer.defaults.Recoveries);

            var result = Trainer.train(trainOptions, objective);
            if (result.Cancelled)
                throw new OperationCanceledException(
                    $"Training was cancelled after epoch {result.Epochs}" +
                    (options.CheckpointDirectory is null ? "." : $"; the checkpoint is in '{options.CheckpointDirectory}'."),
                    token);
            return new TrainingResult(
                result.TrainLosses,
                result.Epochs,
                ParameterValues(),
                result.WallTime,
                options.Validation is null ? [] : result.ValidationLosses,
                result.BestEpoch,
                result.StoppedEarly);
        }
        finally
        {
            foreach (var t in targets.Concat(validationTargets))
                t.Dispose();
        }
    }

    // The library's L-BFGS (Trainer.lbfgs: strong-Wolfe line search, history kept across epochs, the learning rate
    // is the first step's length); one epoch is one outer step of at most 20 iterations.
    private TrainingResult TrainLbfgs(
        TrainingOptions options,
        IProgress<TrainingProgress>? progress,
        CancellationToken token,
        Func<TrainContext, LossParts> loss)
    {
        var parameters = Groups(0, 0).SelectMany(g => g.Parameters).ToArray();
        if (parameters.Length == 0)
            throw new HybridException($"Model '{Model.Name}' has nothing to train: no learnable parameter and no closure network.");
        Engine.seed(options.Seed);
        var context = new TrainContext(0, 0, options.Horizon == 0 ? 1 : options.Horizon, options.PhysicsWeight, new Random(options.Seed));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var losses = Trainer.lbfgs(parameters, options.LearningRate, options.Epochs, 20, FuncConvert.FromFunc(() =>
        {
            if (token.IsCancellationRequested)
                throw new OperationCanceledException("Training was cancelled during the L-BFGS fit.", token);
            return loss(context).Total;
        }));
        var elapsed = watch.Elapsed;
        var fitted = ParameterValues();
        for (var epoch = 1; epoch <= losses.Length; epoch++)
        {
            progress?.Report(new TrainingProgress(epoch, options.Epochs, losses[epoch - 1], fitted, elapsed, TimeSpan.Zero));
            if (options.PrintEvery > 0 && epoch % options.PrintEvery == 0)
                Console.WriteLine($"epoch {epoch}/{options.Epochs}  loss {losses[epoch - 1]:E3}");
        }

        return new TrainingResult(losses, options.Epochs, fitted, elapsed, [], 0, false);
    }

    /// <summary>
    /// Loads the latest checkpoint that training wrote to <paramref name="directory"/> into this simulator's
    /// parameters and closure networks; returns the number of epochs it had completed.
    /// </summary>
    /// <exception cref="Hybrid.HybridException">No checkpoint in the folder, or one made for another model.</exception>
    public int LoadCheckpoint(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        return OnTorch(() =>
        {
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
            using var optimizer = new Adam(groups.Select(g => Tuple.Create(g.Parameters.Select(p => (Tensor)p).ToArray(), g.LearningRate)).ToArray());
            var meta = Checkpoint.load(latest.Value, tensors, best, optimizer);
            foreach (var b in best)
                b.Dispose();
            return meta.Epoch;
        });
    }

    private sealed class ProgressAdapter(Action<ProgressReport> report) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) => report(value);
    }
}
