using Hybrid.Training;
using static TorchSharp.torch;

namespace Hybrid.CSharp;

/// <summary>A parameter's estimate across ensemble members.</summary>
/// <param name="Mean">Mean over members.</param>
/// <param name="StandardDeviation">Standard deviation over members (0 for one member).</param>
public sealed record ParameterEstimate(double Mean, double StandardDeviation);

/// <summary>Coverage of central Gaussian prediction intervals against observations.</summary>
/// <param name="Levels">Nominal levels (0.1 … 0.9).</param>
/// <param name="Coverage">Observed fraction inside the central interval at each level.</param>
/// <param name="ExpectedCalibrationError">Mean |coverage − level| (0 is perfect).</param>
/// <param name="Crps">Mean continuous ranked probability score, in the units of the data (lower is better).</param>
/// <param name="NegativeLogLikelihood">Mean Gaussian negative log-likelihood of the observations.</param>
public sealed record CalibrationResult(
    double[] Levels,
    double[] Coverage,
    double ExpectedCalibrationError,
    double Crps,
    double NegativeLogLikelihood);

/// <summary>Predictive mean and standard deviation of an ensemble at the save times.</summary>
public sealed class EnsemblePrediction
{
    internal EnsemblePrediction(SimulationResult mean, SimulationResult std)
    {
        Mean = mean;
        StandardDeviation = std;
    }

    /// <summary>Mean over members (same layout as a simulation).</summary>
    public SimulationResult Mean { get; }

    /// <summary>Spread over members (same layout as a simulation).</summary>
    public SimulationResult StandardDeviation { get; }
}

/// <summary>
/// A deep ensemble: several simulators of one model trained on the same data from different closure
/// weight seeds (and, with bootstrap, on different random subsets of the observation times), giving a
/// spread of parameters and predictions. It owns its members: dispose it when done.
/// </summary>
public sealed class HybridEnsemble : IDisposable
{
    private readonly HybridSimulator[] _members;
    private bool _disposed;

    private HybridEnsemble(HybridSimulator[] members) => _members = members;

    /// <summary>The trained members.</summary>
    /// <exception cref="ObjectDisposedException">The ensemble was disposed.</exception>
    public IReadOnlyList<HybridSimulator> Members
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _members;
        }
    }

    /// <summary>Disposes every member; later calls raise <see cref="ObjectDisposedException"/>. A second call does nothing.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var m in _members)
            m.Dispose();
    }

    /// <summary>
    /// Trains <paramref name="members"/> simulators of <paramref name="model"/> one after another: member k is
    /// compiled with closure weight seed <c>options.Seed + k</c>; with <paramref name="bootstrap"/> it sees only
    /// the observation times drawn in a bootstrap resample (the others count as missing).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than one member, or an option out of range.</exception>
    /// <exception cref="Hybrid.HybridException">Any training error.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static Task<HybridEnsemble> TrainAsync(
        HybridModel model,
        TrainingData data,
        TrainingOptions options,
        int members,
        bool bootstrap = false,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        TrainMembersAsync(model, data, options, members, bootstrap, progress, cancellationToken);

    // The body of TrainAsync (a plain method, so that the API reference, which skips async methods, lists it).
    private static async Task<HybridEnsemble> TrainMembersAsync(
        HybridModel model,
        TrainingData data,
        TrainingOptions options,
        int members,
        bool bootstrap,
        IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        Argument.AtLeast(members, 1, nameof(members), "an ensemble needs at least one member, e.g. members: 5");
        options.Validate();
        var trained = new List<HybridSimulator>();
        try
        {
            for (var k = 0; k < members; k++)
            {
                var simulator = model.Compile(new CompileSettings { Seed = options.Seed + k });
                trained.Add(simulator);
                var memberData = bootstrap ? Resample(data, new Random(options.Seed * 7919 + k)) : data;
                var memberOptions = options with
                {
                    Seed = options.Seed + k,
                    CheckpointDirectory = options.CheckpointDirectory is null ? null : Path.Combine(options.CheckpointDirectory, $"member-{k}"),
                };
                await simulator.TrainAsync(memberData, memberOptions, progress, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            foreach (var s in trained)
                s.Dispose();
            throw;
        }

        return new HybridEnsemble(trained.ToArray());
    }

    private static TrainingData Resample(TrainingData data, Random random)
    {
        var n = data.Times.Length;
        var keep = new bool[n];
        for (var i = 0; i < n; i++)
            keep[random.Next(n)] = true;
        return new TrainingData(
            data.Times,
            data.Observations.ToDictionary(
                kv => kv.Key,
                kv => kv.Value.Select((v, i) => keep[i] ? v : v.Select(_ => double.NaN).ToArray()).ToArray()));
    }

    /// <summary>Mean and standard deviation of each parameter over the members.</summary>
    public IReadOnlyDictionary<string, ParameterEstimate> Parameters =>
        Members[0].ParameterNames.ToDictionary(
            name => name,
            name =>
            {
                var values = Members.Select(m => m.GetParameter(name)).ToArray();
                var mean = values.Average();
                return new ParameterEstimate(mean, Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average()));
            });

    /// <summary>Simulates every member from the model's initial conditions; mean and spread per value.</summary>
    public EnsemblePrediction Predict(SimulationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var runs = Members.Select(m => m.Simulate(settings)).ToArray();
        var first = runs[0];
        var mean = new Dictionary<string, double[]>();
        var std = new Dictionary<string, double[]>();
        foreach (var field in first.Fields)
        {
            var all = runs.Select(r => r.Flat(field)).ToArray();
            var m = new double[all[0].Length];
            var s = new double[all[0].Length];
            for (var i = 0; i < m.Length; i++)
            {
                m[i] = all.Average(a => a[i]);
                s[i] = Math.Sqrt(all.Average(a => (a[i] - m[i]) * (a[i] - m[i])));
            }

            mean[field] = m;
            std[field] = s;
        }

        return new EnsemblePrediction(first.WithValues(mean), first.WithValues(std));
    }

    /// <summary>
    /// Calibration of the prediction's Gaussian intervals against observations (fields and times of
    /// <paramref name="data"/>, which must be the prediction's save times); NaN observations are ignored.
    /// </summary>
    /// <exception cref="ArgumentException">The prediction's times differ from the data's.</exception>
    /// <exception cref="Hybrid.HybridException">No finite observation.</exception>
    public static CalibrationResult Calibrate(EnsemblePrediction prediction, TrainingData data)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(data);
        if (!prediction.Mean.Times.SequenceEqual(data.Times))
            throw new ArgumentException(
                $"Calibrate: the prediction's save times ({string.Join(", ", prediction.Mean.Times)}) differ from the data's ({string.Join(", ", data.Times)}). Predict at the data's times.",
                nameof(data));
        var mu = new List<double>();
        var sd = new List<double>();
        var y = new List<double>();
        foreach (var (field, values) in data.Observations)
            for (var s = 0; s < values.Length; s++)
            {
                mu.AddRange(prediction.Mean.At(field, s));
                sd.AddRange(prediction.StandardDeviation.At(field, s));
                y.AddRange(values[s]);
            }

        return TorchThread.Run(() =>
        {
            using var scope = NewDisposeScope();
            var p = new Predictive(tensor(mu.ToArray()), tensor(sd.ToArray()));
            var target = tensor(y.ToArray());
            var c = Uncertainty.calibration(Uncertainty.defaultLevels, p, target);
            return new CalibrationResult(c.Levels, c.Coverage, c.Ece, Uncertainty.crps(p, target), Uncertainty.nll(p, target));
        });
    }

    /// <summary>Writes a self-contained SVG reliability diagram (coverage against level) to <paramref name="path"/>.</summary>
    public static void WriteReliabilityPlot(string path, string title, CalibrationResult calibration)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        Uncertainty.reliabilitySvg(path, title, new Calibration(calibration.Levels, calibration.Coverage, calibration.ExpectedCalibrationError));
    }
}
