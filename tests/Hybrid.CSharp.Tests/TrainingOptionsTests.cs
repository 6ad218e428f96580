using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>The physics-residual term and validation with early stopping of <see cref="HybridSimulator.TrainAsync"/>.</summary>
public class TrainingOptionsTests
{
    private static readonly double[] Times = Enumerable.Range(0, 11).Select(i => 0.5 * i).ToArray();

    private static HybridModel LotkaVolterra(double alpha) =>
        HybridModel.Builder("lotka_volterra")
            .Field("H").Field("L")
            .Parameter("alpha", positive: alpha)
            .Parameter("beta", positive: 0.028)
            .Parameter("gamma", positive: 0.84)
            .Parameter("delta", positive: 0.026)
            .Equation("dH/dt = alpha*H - beta*H*L")
            .Equation("dL/dt = delta*H*L - gamma*L")
            .Initial("H", 30).Initial("L", 4)
            .Build();

    private static TrainingData Data(double alpha) =>
        TrainingData.FromSimulation(LotkaVolterra(alpha).Compile()
            .Simulate(new SimulationSettings { Dt = 0.05, SaveTimes = Times }));

    [Fact]
    public async Task PhysicsWeightAddsTheResidualAndStillRecoversTheParameters()
    {
        var data = Data(0.55);

        async Task<TrainingResult> Fit(double weight, int epochs)
        {
            var sim = LotkaVolterra(0.45).Compile();
            return await sim.TrainAsync(data, new TrainingOptions { Epochs = epochs, LearningRate = 0.05, Dt = 0.1, PhysicsWeight = weight });
        }

        // Same start, same data: the first loss with λ = 1 is the data misfit plus a positive residual.
        var dataOnly = await Fit(0, 1);
        var withPhysics = await Fit(1, 60);
        Assert.True(withPhysics.Losses[0] > dataOnly.Losses[0] * (1 + 1e-9),
            $"λ = 1: first loss {withPhysics.Losses[0]}, data only {dataOnly.Losses[0]}");
        Assert.True(withPhysics.Losses[^1] < 0.1 * withPhysics.Losses[0], $"loss {withPhysics.Losses[0]} → {withPhysics.Losses[^1]}");
        Assert.True(Math.Abs(withPhysics.Parameters["alpha"] - 0.55) < 0.03, $"alpha = {withPhysics.Parameters["alpha"]}");
        Assert.Empty(withPhysics.ValidationLosses);
        Assert.Equal(0, withPhysics.BestEpoch);
    }

    [Fact]
    public async Task ValidationStopsEarlyAndPutsBackTheBestEpoch()
    {
        // Training data come from alpha = 0.55, validation data from alpha = 0.65, and the fit starts at 0.75:
        // on its way down, alpha passes 0.65, where the validation loss is lowest, and then rises again.
        var sim = LotkaVolterra(0.75).Compile();
        var result = await sim.TrainAsync(
            Data(0.55),
            new TrainingOptions { Epochs = 300, LearningRate = 0.05, Dt = 0.1, Validation = Data(0.65), Patience = 5 });

        Assert.True(result.StoppedEarly, $"ran all {result.Epochs} epochs");
        Assert.True(result.Epochs < 300 && result.BestEpoch < result.Epochs, $"best {result.BestEpoch} of {result.Epochs}");
        Assert.Equal(result.Epochs, result.ValidationLosses.Length);
        Assert.Equal(result.ValidationLosses.Min(), result.ValidationLosses[result.BestEpoch - 1]);
        // The best epoch's parameters are back in the simulator: nearer the validation truth than the training one.
        var alpha = sim.GetParameter("alpha");
        Assert.Equal(alpha, result.Parameters["alpha"], 12);
        Assert.True(alpha > 0.6, $"alpha = {alpha} (training truth 0.55, validation truth 0.65)");
    }

    [Fact]
    public async Task LbfgsFitsTheRatesInAFewEpochsAndReportsEachOne()
    {
        var sim = LotkaVolterra(0.45).Compile();
        sim.SetParameter("gamma", 0.95);
        var reports = new List<TrainingProgress>();
        var result = await sim.TrainAsync(
            Data(0.55),
            new TrainingOptions { Optimizer = TrainingOptimizer.Lbfgs, Epochs = 10, LearningRate = 1, Dt = 0.1 },
            new SyncProgress(reports.Add));
        Assert.Equal(10, result.Epochs);
        Assert.Equal(10, reports.Count);
        // Each entry is the loss after the epoch's line-searched steps: it never rises.
        for (var i = 1; i < result.Losses.Length; i++)
            Assert.True(result.Losses[i] <= result.Losses[i - 1], $"epoch {i + 1}: loss {result.Losses[i - 1]} → {result.Losses[i]}");
        // The data come from RK4 at Δt = 0.05, the fit runs at Δt = 0.1: the rates agree to about 1%.
        Assert.True(Math.Abs(result.Parameters["alpha"] - 0.55) < 0.01, $"alpha = {result.Parameters["alpha"]}");
        Assert.True(Math.Abs(result.Parameters["gamma"] - 0.84) < 0.015, $"gamma = {result.Parameters["gamma"]}");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => sim.TrainAsync(
            Data(0.55), new TrainingOptions { Optimizer = TrainingOptimizer.Lbfgs, Epochs = 1, Validation = Data(0.65) }));
        Assert.Contains("Lbfgs", e.Message);
        Assert.Equal("options", e.ParamName);
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public async Task BadOptionsAreTypedExceptionsNamingTheOption()
    {
        var sim = LotkaVolterra(0.5).Compile();
        var data = Data(0.55);
        var negative = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            sim.TrainAsync(data, new TrainingOptions { Epochs = 1, PhysicsWeight = -1 }));
        Assert.Equal("options.PhysicsWeight", negative.ParamName);
        Assert.Contains("got -1", negative.Message);
        var patience = await Assert.ThrowsAsync<ArgumentException>(() =>
            sim.TrainAsync(data, new TrainingOptions { Epochs = 1, Patience = 3 }));
        Assert.Contains("options.Patience needs options.Validation", patience.Message);
        var unknown = new TrainingData(Times, new Dictionary<string, double[][]> { ["X"] = Times.Select(_ => new[] { 1.0 }).ToArray() });
        var field = await Assert.ThrowsAsync<ArgumentException>(() =>
            sim.TrainAsync(data, new TrainingOptions { Epochs = 1, Validation = unknown }));
        Assert.Equal("options.Validation", field.ParamName);
        Assert.Contains("observes 'X', which is not a field of model 'lotka_volterra'. Fields: H, L.", field.Message);
        var improvement = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            sim.TrainAsync(data, new TrainingOptions { Epochs = 1, Optimizer = TrainingOptimizer.Adam, MinImprovement = -1 }));
        Assert.Equal("options.MinImprovement", improvement.ParamName);
    }
}
