using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>What the F# side offers, from C#: a choice of loss, windows with a growing horizon, CSV data, the device.</summary>
public class ParityTests
{
    // du/dt = −k u, u(0) = 1, started at k = 2; the data are the exact solution for k = 1.
    private static HybridSimulator Decay() =>
        HybridModel.FromText("model decay\nfield u\nparam k = 2 positive\ndu/dt = -k*u\ninitial u = 1").Compile();

    private static TrainingData Exact(double[] times) =>
        new(times, new Dictionary<string, double[][]> { ["u"] = times.Select(t => new[] { Math.Exp(-t) }).ToArray() });

    private static readonly double[] Times = { 0.5, 1.0, 1.5, 2.0 };

    // The loss of the first epoch is the loss at the starting parameters (RK4 at Δt = 0.01: relative error below 1e-8).
    private static double FirstLoss(TrainingOptions options, TrainingData data)
    {
        using var sim = Decay();
        return sim.Train(data, options with { Epochs = 1, Dt = 0.01, LearningRate = 1e-12 }).Losses[0];
    }

    [Fact]
    public void EachLossIsItsFormulaAtTheStartingParameters()
    {
        var data = Exact(Times);
        var mse = Times.Average(t => Math.Pow(Math.Exp(-2 * t) - Math.Exp(-t), 2));
        var logMse = Times.Average(t => t * t); // (log e^{−2t} − log e^{−t})² = t²
        const double sigma = 0.1;
        var nll = Times.Average(t => 0.5 * (Math.Log(2 * Math.PI * sigma * sigma) + Math.Pow(Math.Exp(-2 * t) - Math.Exp(-t), 2) / (sigma * sigma)));
        Assert.Equal(mse, FirstLoss(new TrainingOptions(), data), mse * 1e-7);
        Assert.Equal(logMse, FirstLoss(new TrainingOptions { Loss = TrainingLoss.LogMse }, data), logMse * 1e-7);
        Assert.Equal(nll, FirstLoss(new TrainingOptions { Loss = TrainingLoss.GaussianNll, NoiseStandardDeviation = sigma }, data), Math.Abs(nll) * 1e-7);
    }

    [Fact]
    public void LogMseRefusesNonPositiveObservations()
    {
        using var sim = Decay();
        var data = new TrainingData(Times, new Dictionary<string, double[][]> { ["u"] = new[] { new[] { 0.5 }, new[] { 0.0 }, new[] { 0.2 }, new[] { 0.1 } } });
        var e = Assert.Throws<ArgumentException>(() => sim.Train(data, new TrainingOptions { Loss = TrainingLoss.LogMse }));
        Assert.Equal("data", e.ParamName);
        Assert.Contains("field 'u' has the value 0 at time 1, but TrainingLoss.LogMse compares logarithms", e.Message);
    }

    [Fact]
    public void WindowsStartFromTheDataAndTheHorizonGrows()
    {
        // Observations at t = 0, 0.5, …, 2 of e^{−t}; a window from y_s over j intervals of 0.5 predicts y_s e^{−2·0.5 j}.
        var times = new[] { 0.0, 0.5, 1.0, 1.5, 2.0 };
        var y = times.Select(t => Math.Exp(-t)).ToArray();
        double Window(int s, int h) => Enumerable.Range(1, h).Average(j => Math.Pow(y[s] * Math.Exp(-j) - y[s + j], 2));
        double Mean(int h) => Enumerable.Range(0, times.Length - h).Average(s => Window(s, h));

        Assert.Equal(Mean(1), FirstLoss(new TrainingOptions { Horizon = 1 }, Exact(times)), Mean(1) * 1e-7);
        Assert.Equal(Mean(2), FirstLoss(new TrainingOptions { Horizon = 2 }, Exact(times)), Mean(2) * 1e-7);

        // Horizon 1 in the first epoch, 2 in the second (the step between them moves k by about 1e-12).
        using var sim = Decay();
        var grown = sim.Train(Exact(times), new TrainingOptions { Epochs = 2, Dt = 0.01, LearningRate = 1e-12, Horizon = 2, HorizonStart = 1, HorizonGrowEvery = 1 });
        Assert.Equal(Mean(1), grown.Losses[0], Mean(1) * 1e-7);
        Assert.Equal(Mean(2), grown.Losses[1], Mean(2) * 1e-7);
    }

    [Fact]
    public void AWindowStartingAtAMissingValueIsLeftOut()
    {
        var times = new[] { 0.0, 0.5, 1.0, 1.5 };
        var y = times.Select(t => Math.Exp(-t)).ToArray();
        y[1] = double.NaN;
        var data = new TrainingData(times, new Dictionary<string, double[][]> { ["u"] = y.Select(v => new[] { v }).ToArray() });
        // Windows of one interval: from t = 0 the target is missing (nothing to fit), from 0.5 the start is missing;
        // only the window from t = 1 counts.
        var expected = Math.Pow(y[2] * Math.Exp(-1) - y[3], 2);
        Assert.Equal(expected, FirstLoss(new TrainingOptions { Horizon = 1 }, data), expected * 1e-7);
        using var sim = Decay();
        var e = Assert.Throws<ArgumentException>(() => sim.Train(Exact(Times), new TrainingOptions { Horizon = 4 }));
        Assert.Contains("TrainingOptions.Horizon = 4 needs more than 4 observation times, but the data has 4.", e.Message);
    }

    [Fact]
    public void WindowsFitTheRateFromAPoorStart()
    {
        using var sim = Decay();
        var times = Enumerable.Range(0, 9).Select(i => 0.25 * i).ToArray();
        var result = sim.Train(Exact(times), new TrainingOptions { Optimizer = TrainingOptimizer.Lbfgs, Epochs = 3, LearningRate = 1, Dt = 0.01, Horizon = 2 });
        Assert.Equal(1.0, result.Parameters["k"], 6);
    }

    [Fact]
    public void CsvColumnsBecomeObservedFields()
    {
        var path = Path.Combine(Path.GetTempPath(), "hybrid-csv-" + Guid.NewGuid().ToString("N") + ".csv");
        File.WriteAllText(path, "# two series\nt,a,b\n0,1.5,2\n0.5,NA,3\n1,2.5,4\n");
        try
        {
            var data = TrainingData.FromCsv(path, "t", new Dictionary<string, string> { ["U"] = "a", ["V"] = "b" });
            Assert.Equal(new[] { 0.0, 0.5, 1.0 }, data.Times);
            Assert.Equal(new[] { 1.5, double.NaN, 2.5 }, data.Observations["U"].Select(v => v.Single()).ToArray());
            Assert.Equal(new[] { 2.0, 3.0, 4.0 }, data.Observations["V"].Select(v => v.Single()).ToArray());
            var same = TrainingData.FromCsv(path, "t", "a");
            Assert.Equal(new[] { 1.5, double.NaN, 2.5 }, same.Observations["a"].Select(v => v.Single()).ToArray());
            var e = Assert.Throws<HybridException>(() => TrainingData.FromCsv(path, "t", "c"));
            Assert.Contains("has no column 'c'. Columns are: t, a, b.", e.Message);
            Assert.Equal("fieldColumns", Assert.Throws<ArgumentException>(() => TrainingData.FromCsv(path, "t", new Dictionary<string, string>())).ParamName);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheDeviceIsTheCpuUnlessCudaIsChosen()
    {
        Assert.Equal("cpu", HybridEngine.Device);
        if (HybridEngine.CudaAvailable)
            return; // the refusal below is for machines without TorchSharp's CUDA runtime
        var e = Assert.Throws<EngineException>(() => HybridEngine.UseCuda());
        Assert.Contains("CUDA device 0 was requested, but TorchSharp's CUDA runtime is not available", e.Message);
        Assert.Equal("cpu", HybridEngine.Device);
        HybridEngine.UseCpu();
        Assert.Equal("cpu", HybridEngine.Device);
    }
}
