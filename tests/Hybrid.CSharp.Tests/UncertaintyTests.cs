using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

public class UncertaintyAndPlotTests
{
    private static readonly double[] Times = Enumerable.Range(0, 11).Select(i => 0.5 * i).ToArray();

    [Fact]
    public async Task BootstrapEnsembleGivesParameterAndPredictiveSpreadAndCalibration()
    {
        var model = HybridModel.FromText(ModelTests.LotkaVolterra);
        var settings = new SimulationSettings { Dt = 0.1, SaveTimes = Times };
        var truth = model.Compile().Simulate(settings);
        // Noisy observations, so that bootstrap members disagree.
        var random = new Random(5);
        var noisy = truth.Fields.ToDictionary(
            f => f,
            f => truth.Values(f).Select(v => v.Select(x => x + random.NextDouble() - 0.5).ToArray()).ToArray());
        var data = new TrainingData(Times, noisy);
        var reports = 0;
        var ensemble = await HybridEnsemble.TrainAsync(
            model, data, new TrainingOptions { Epochs = 20, LearningRate = 0.02, Dt = 0.1 }, 3, bootstrap: true,
            new SyncProgress(() => reports++));
        Assert.Equal(3, ensemble.Members.Count);
        Assert.Equal(60, reports);
        var alpha = ensemble.Parameters["alpha"];
        Assert.True(alpha.StandardDeviation > 0, "bootstrap members should differ");
        Assert.InRange(alpha.Mean, 0.45, 0.65);
        var prediction = ensemble.Predict(settings);
        Assert.Equal(Times, prediction.Mean.Times);
        Assert.True(prediction.StandardDeviation.Series("H").Skip(1).All(s => s > 0));
        var calibration = HybridEnsemble.Calibrate(prediction, data);
        Assert.Equal(9, calibration.Levels.Length);
        Assert.Equal(9, calibration.Coverage.Length);
        Assert.All(calibration.Coverage, c => Assert.InRange(c, 0, 1));
        Assert.InRange(calibration.ExpectedCalibrationError, 0, 1);
        Assert.True(calibration.Crps > 0);
        Assert.True(double.IsFinite(calibration.NegativeLogLikelihood));
        var file = Path.Combine(Path.GetTempPath(), "hybrid-rel-" + Guid.NewGuid().ToString("N") + ".svg");
        HybridEnsemble.WriteReliabilityPlot(file, "LV", calibration);
        Assert.StartsWith("<svg", File.ReadAllText(file));
        File.Delete(file);
        Assert.Throws<ArgumentException>(() =>
            HybridEnsemble.Calibrate(ensemble.Predict(new SimulationSettings { Dt = 0.1, SaveTimes = new[] { 1.0 } }), data));
        var none = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => HybridEnsemble.TrainAsync(model, data, new TrainingOptions(), 0));
        Assert.Equal("members", none.ParamName);
    }

    [Fact]
    public void PlotsWriteSvg()
    {
        var r = HybridModel.FromText(ModelTests.LotkaVolterra).Compile()
            .Simulate(new SimulationSettings { Dt = 0.1, SaveTimes = Times });
        var dir = Path.Combine(Path.GetTempPath(), "hybrid-plots-" + Guid.NewGuid().ToString("N"));
        try
        {
            var svg = Plots.WriteSimulation(Path.Combine(dir, "lv.svg"), "Lotka–Volterra", r);
            Assert.Contains("<polyline", svg);
            Assert.Equal(svg, File.ReadAllText(Path.Combine(dir, "lv.svg")));
            var gaps = Plots.WriteLines(Path.Combine(dir, "gaps.svg"), "a < b", new[] { 0.0, 1, 2, 3 },
                new Dictionary<string, double[]> { ["y"] = new[] { 1.0, double.NaN, 2, 3 } });
            Assert.Contains("a &lt; b", gaps);
            var length = Assert.Throws<ArgumentException>(() => Plots.WriteLines(Path.Combine(dir, "x.svg"), "t", new[] { 0.0 },
                new Dictionary<string, double[]> { ["y"] = new[] { 1.0, 2.0 } }));
            Assert.Equal("series", length.ParamName);
            Assert.Contains("series 'y' has 2 values but x has 1.", length.Message);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    private sealed class SyncProgress(Action report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report();
    }
}
