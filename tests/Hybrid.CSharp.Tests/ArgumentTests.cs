using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>Invalid arguments are ArgumentException-family errors that name the argument, the value and the fix.</summary>
public class ArgumentTests
{
    private static readonly double[] Times = { 0.5, 1.0, 1.5 };

    private static HybridSimulator Decay() =>
        HybridModel.FromText("model decay\nfield u\nparam k = 0.5 positive\ndu/dt = -k*u\ninitial u = 1").Compile();

    private static TrainingData Data() =>
        new(Times, new Dictionary<string, double[][]> { ["u"] = Times.Select(t => new[] { Math.Exp(-t) }).ToArray() });

    [Theory]
    [InlineData("Epochs")]
    [InlineData("LearningRate")]
    [InlineData("ClipNorm")]
    [InlineData("CheckpointEvery")]
    [InlineData("NetworkLearningRate")]
    [InlineData("Dt")]
    [InlineData("NoiseStandardDeviation")]
    [InlineData("Horizon")]
    public async Task AnOptionOutOfRangeIsArgumentOutOfRangeNamingIt(string option)
    {
        var options = option switch
        {
            "Epochs" => new TrainingOptions { Epochs = -1 },
            "LearningRate" => new TrainingOptions { LearningRate = double.NaN },
            "ClipNorm" => new TrainingOptions { ClipNorm = double.NaN },
            "CheckpointEvery" => new TrainingOptions { CheckpointEvery = -1 },
            "NetworkLearningRate" => new TrainingOptions { NetworkLearningRate = 0 },
            "Dt" => new TrainingOptions { Dt = double.PositiveInfinity },
            "NoiseStandardDeviation" => new TrainingOptions { NoiseStandardDeviation = -0.1 },
            _ => new TrainingOptions { Horizon = -2 },
        };
        using var sim = Decay();
        var sync = Assert.Throws<ArgumentOutOfRangeException>(() => sim.Train(Data(), options));
        var queued = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => sim.TrainAsync(Data(), options));
        Assert.Equal("options." + option, sync.ParamName);
        Assert.Equal(sync.Message, queued.Message);
        Assert.StartsWith($"options.{option} must be ", sync.Message);
        // Nothing ran: the parameter is where it was.
        Assert.Equal(0.5, sim.GetParameter("k"), 12);
    }

    [Fact]
    public void TheMessagesGiveTheValueAndTheFix()
    {
        using var sim = Decay();
        var epochs = Assert.Throws<ArgumentOutOfRangeException>(() => sim.Train(Data(), new TrainingOptions { Epochs = -1 }));
        Assert.StartsWith("options.Epochs must be ≥ 1 (the number of optimizer epochs, e.g. Epochs = 100), got -1.", epochs.Message);
        var rate = Assert.Throws<ArgumentOutOfRangeException>(() => sim.Train(Data(), new TrainingOptions { LearningRate = double.NaN }));
        Assert.StartsWith("options.LearningRate must be a finite number > 0 (the step size of the parameters, e.g. LearningRate = 0.01), got NaN.", rate.Message);
        var clip = Assert.Throws<ArgumentOutOfRangeException>(() => sim.Train(Data(), new TrainingOptions { ClipNorm = double.NaN }));
        Assert.StartsWith("options.ClipNorm must be a finite number ≥ 0 (0 turns clipping off; e.g. ClipNorm = 1), got NaN.", clip.Message);
        var every = Assert.Throws<ArgumentOutOfRangeException>(() => sim.Train(Data(), new TrainingOptions { CheckpointEvery = -1 }));
        Assert.StartsWith("options.CheckpointEvery must be ≥ 1 (epochs between checkpoints, e.g. CheckpointEvery = 10), got -1.", every.Message);
        var set = Assert.Throws<ArgumentOutOfRangeException>(() => sim.SetParameter("k", double.NaN));
        Assert.Equal("value", set.ParamName);
        Assert.Contains("e.g. SetParameter(\"k\", 0.5)", set.Message);
        Assert.Equal("data", Assert.Throws<ArgumentNullException>(() => sim.Train(null!, new TrainingOptions())).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentNullException>(() => sim.Train(Data(), null!)).ParamName);
    }

    [Fact]
    public void TrainingDataRefusesBadTimesAndNullSnapshots()
    {
        double[][] Snapshots(int n) => Enumerable.Range(0, n).Select(_ => new[] { 1.0 }).ToArray();

        var nan = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new TrainingData(new[] { 0.0, double.NaN, 1.0 }, new Dictionary<string, double[][]> { ["u"] = Snapshots(3) }));
        Assert.Equal("times", nan.ParamName);
        Assert.StartsWith("TrainingData: times[1] is NaN; every time must be a finite number.", nan.Message);
        var decreasing = Assert.Throws<ArgumentException>(() =>
            new TrainingData(new[] { 0.0, 2.0, 1.0 }, new Dictionary<string, double[][]> { ["u"] = Snapshots(3) }));
        Assert.Equal("times", decreasing.ParamName);
        Assert.StartsWith("TrainingData: times must increase, but times[2] = 1 follows times[1] = 2. Sort the observations by time", decreasing.Message);
        var repeated = Assert.Throws<ArgumentException>(() =>
            new TrainingData(new[] { 0.0, 1.0, 1.0 }, new Dictionary<string, double[][]> { ["u"] = Snapshots(3) }));
        Assert.Contains("times[2] = 1 follows times[1] = 1", repeated.Message);
        var snapshot = Assert.Throws<ArgumentNullException>(() =>
            new TrainingData(new[] { 0.0, 1.0 }, new Dictionary<string, double[][]> { ["u"] = new[] { new[] { 1.0 }, null! } }));
        Assert.Equal("observations", snapshot.ParamName);
        Assert.StartsWith("TrainingData: the snapshot of field 'u' at time 1 (index 1) is null.", snapshot.Message);
        var infinite = Assert.Throws<ArgumentException>(() =>
            new TrainingData(new[] { 0.0 }, new Dictionary<string, double[][]> { ["u"] = new[] { new[] { double.PositiveInfinity } } }));
        Assert.Contains("Infinity is not a measurement", infinite.Message);
        Assert.Equal("times", Assert.Throws<ArgumentNullException>(() => new TrainingData(null!, new Dictionary<string, double[][]>())).ParamName);
        // NaN values (not times) are missing observations and stay allowed.
        var missing = new TrainingData(new[] { 0.0 }, new Dictionary<string, double[][]> { ["u"] = new[] { new[] { double.NaN } } });
        Assert.True(double.IsNaN(missing.Observations["u"][0][0]));
    }

    [Fact]
    public void TheGpuIndexIsChecked()
    {
        Assert.Equal("index", Assert.Throws<ArgumentOutOfRangeException>(() => HybridEngine.UseCuda(-1)).ParamName);
    }

    [Fact]
    public void NullSaveTimesAreArgumentNullNamingTheSetting()
    {
        using var sim = Decay();
        var e = Assert.Throws<ArgumentNullException>(() => sim.Simulate(new SimulationSettings { SaveTimes = null! }));
        Assert.Equal("settings", e.ParamName);
        Assert.StartsWith("SimulationSettings.SaveTimes is null. Give the times to return the state at, e.g. SaveTimes = new[] { 0.5, 1.0 }.", e.Message);
    }
}
