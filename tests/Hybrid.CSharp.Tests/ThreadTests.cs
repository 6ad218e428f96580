using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>All torch work of the facade runs on one dedicated thread: runs started concurrently give, bit for bit,
/// what they give one after another.</summary>
public class ThreadTests
{
    private static readonly double[] Times = { 0.1, 0.2, 0.3 };

    // A hybrid with a neural closure: the closure's initial weights and every Adam step depend on the seeds.
    private static HybridSimulator Ude(int seed) =>
        HybridModel.Builder("ude")
            .Interval(0, 1, 8).Field("u").Parameter("D", positive: 0.01)
            .Closure("R", 1, new[] { 4 })
            .Equation("du/dt = D*lap(u) + R(u)").Boundary("u", "periodic").Initial("u", "0.5 + 0.3*sin(6.283185307179586*x)")
            .Build().Compile(new CompileSettings { Seed = seed });

    private static readonly Lazy<TrainingData> Data = new(() =>
    {
        using var truth = HybridModel.Builder("logistic")
            .Interval(0, 1, 8).Field("u").Parameter("D", positive: 0.01).Parameter("r", positive: 1)
            .Equation("du/dt = D*lap(u) + r*u*(1 - u)").Boundary("u", "periodic").Initial("u", "0.5 + 0.3*sin(6.283185307179586*x)")
            .Build().Compile();
        return TrainingData.FromSimulation(truth.Simulate(new SimulationSettings { Scheme = IntegrationScheme.Heun, Dt = 0.01, SaveTimes = Times }));
    });

    private static TrainingOptions Options(int seed) =>
        new() { Epochs = 8, LearningRate = 0.01, NetworkLearningRate = 0.02, Scheme = IntegrationScheme.Heun, Dt = 0.01, Seed = seed };

    private sealed class Threads : IProgress<TrainingProgress>
    {
        public HashSet<int> Ids { get; } = new();
        public void Report(TrainingProgress value)
        {
            lock (Ids) Ids.Add(Environment.CurrentManagedThreadId);
        }
    }

    [Fact]
    public async Task ConcurrentRunsOnDifferentSimulatorsEqualSequentialOnes()
    {
        TrainingResult Alone(int seed)
        {
            using var sim = Ude(seed);
            return sim.Train(Data.Value, Options(seed));
        }

        var first = Alone(1);
        var second = Alone(2);
        Assert.NotEqual(first.Losses, second.Losses); // the seeds matter, so equality below means something

        var threads = new Threads();
        using var a = Ude(1);
        using var b = Ude(2);
        using var go = new Barrier(2);
        var runs = new[] { (Sim: a, Seed: 1), (Sim: b, Seed: 2) }
            .Select(r => Task.Run(() =>
            {
                go.SignalAndWait();
                return r.Sim.TrainAsync(Data.Value, Options(r.Seed), threads);
            }))
            .ToArray();
        var results = await Task.WhenAll(runs);
        Assert.Equal(first.Losses, results[0].Losses);
        Assert.Equal(second.Losses, results[1].Losses);
        Assert.Equal(first.Parameters["D"], results[0].Parameters["D"]);
        Assert.Equal(second.Parameters["D"], results[1].Parameters["D"]);
        // Every report came from the one torch thread, not from the callers' threads.
        Assert.Single(threads.Ids);
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, threads.Ids);
    }

    [Fact]
    public async Task RunsQueuedOnOneSimulatorEqualTheSameRunsOneAfterAnother()
    {
        TrainingResult[] Sequential()
        {
            using var sim = Ude(3);
            return new[] { sim.Train(Data.Value, Options(5)), sim.Train(Data.Value, Options(6)) };
        }

        var expected = Sequential();
        using var shared = Ude(3);
        var firstRun = shared.TrainAsync(Data.Value, Options(5));
        var secondRun = shared.TrainAsync(Data.Value, Options(6));
        var results = await Task.WhenAll(firstRun, secondRun);
        Assert.Equal(expected[0].Losses, results[0].Losses);
        Assert.Equal(expected[1].Losses, results[1].Losses);
        // The second run continued from the first one's parameters.
        Assert.NotEqual(results[0].Losses[0], results[1].Losses[0]);
    }

    [Fact]
    public async Task TrainWaitsAndTrainAsyncReturnsATask()
    {
        using var sim = Ude(1);
        var result = sim.Train(Data.Value, Options(1));
        Assert.Equal(8, result.Epochs);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sim.TrainAsync(Data.Value, Options(1), null, cancel.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => sim.Train(Data.Value, Options(1), null, cancel.Token));
    }
}
