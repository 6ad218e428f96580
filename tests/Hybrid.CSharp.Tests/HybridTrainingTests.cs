using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>Training a hybrid (a neural closure inside the equation) through the facade.</summary>
public class HybridTrainingTests
{
    [Fact]
    public async Task TrainAsyncUpdatesClosureWeightsAndUsesEveryOption()
    {
        var model = HybridModel.Builder("ude")
            .Interval(0, 1, 8).Field("u").Parameter("D", positive: 0.01)
            .Closure("R", 1, new[] { 4 })
            .Equation("du/dt = D*lap(u) + R(u)").Boundary("u", "periodic").Initial("u", "0.5 + 0.3*sin(6.283185307179586*x)")
            .Build();
        var truth = HybridModel.Builder("logistic")
            .Interval(0, 1, 8).Field("u").Parameter("D", positive: 0.01).Parameter("r", positive: 1)
            .Equation("du/dt = D*lap(u) + r*u*(1 - u)").Boundary("u", "periodic").Initial("u", "0.5 + 0.3*sin(6.283185307179586*x)")
            .Build().Compile();
        var settings = new SimulationSettings { Scheme = IntegrationScheme.Heun, Dt = 0.01, StartTime = 0, SaveTimes = new[] { 0.1, 0.2, 0.3 } };
        var data = TrainingData.FromSimulation(truth.Simulate(settings));
        var sim = model.Compile(new CompileSettings { Seed = 3 });
        Assert.Same(model, sim.Model);
        Assert.Equal(model.Definition, sim.Inner.Model);
        var weights = Path.Combine(Path.GetTempPath(), "hybrid-ude-" + Guid.NewGuid().ToString("N") + ".bin");
        sim.Save(weights);
        var before = sim.Simulate(settings).At("u", 2);
        var reports = new List<TrainingProgress>();
        var result = await sim.TrainAsync(
            data,
            new TrainingOptions
            {
                Epochs = 30, LearningRate = 0.01, NetworkLearningRate = 0.02, Scheme = IntegrationScheme.Heun, Dt = 0.01,
                StartTime = 0, Seed = 4, ClipNorm = 10, Resume = false, PrintEvery = 10,
            },
            new SyncProgress(reports.Add));
        Assert.Equal(30, result.Epochs);
        Assert.True(result.WallTime > TimeSpan.Zero);
        Assert.True(result.Losses[^1] < result.Losses[0], $"loss {result.Losses[0]} → {result.Losses[^1]}");
        var last = reports[^1];
        Assert.Equal(30, last.Epochs);
        Assert.True(last.Elapsed > TimeSpan.Zero && last.Remaining >= TimeSpan.Zero);
        Assert.Contains("D", last.Parameters.Keys);
        // The network moved (D alone cannot explain the change), and Load puts the saved weights back.
        var after = sim.Simulate(settings).At("u", 2);
        Assert.NotEqual(before, after);
        sim.Load(weights);
        Assert.Equal(before, sim.Simulate(settings).At("u", 2));
        File.Delete(weights);
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
