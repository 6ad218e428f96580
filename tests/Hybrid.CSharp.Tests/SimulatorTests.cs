using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

public class SimulatorTests
{
    private static readonly double[] Times = Enumerable.Range(0, 11).Select(i => 0.5 * i).ToArray();

    private static SimulationSettings Settings(IntegrationScheme scheme = IntegrationScheme.Rk4) =>
        new() { Scheme = scheme, Dt = 0.05, SaveTimes = Times };

    [Fact]
    public void SimulatesLotkaVolterraToArrays()
    {
        var sim = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
        Assert.Equal(new[] { "H", "L" }, sim.FieldNames);
        Assert.Empty(sim.Shape);
        Assert.Equal(1, sim.Cells);
        var r = sim.Simulate(Settings());
        Assert.Equal(Times, r.Times);
        Assert.Equal(1, r.Trajectories);
        Assert.Equal(1, r.Cells);
        Assert.Equal(30.0, r.Series("H")[0], 12);
        Assert.Equal(4.0, r.Series("L")[0], 12);
        Assert.Equal(11, r.Values("H").Length);
        // dH/dt at t = 0 is 0.55·30 − 0.028·30·4 = 13.14 > 0: prey grow first.
        Assert.True(r.At("H", 1)[0] > 30.0);
        // Same start given explicitly, and a batch of two.
        var same = sim.Simulate(new[] { new[] { 30.0 }, new[] { 4.0 } }, Settings());
        Assert.Equal(r.Series("L"), same.Series("L"));
        var batch = sim.Simulate(new[] { new[] { new[] { 30.0 }, new[] { 4.0 } }, new[] { new[] { 10.0 }, new[] { 2.0 } } }, Settings());
        Assert.Equal(2, batch.Trajectories);
        Assert.Equal(r.Series("H"), batch.Series("H", 0, 0));
        Assert.Equal(10.0, batch.Series("H", trajectory: 1)[0], 12);
        // Schemes agree to their order at this step.
        var euler = sim.Simulate(Settings(IntegrationScheme.Heun));
        Assert.Equal(r.Series("H")[^1], euler.Series("H")[^1], 1);
    }

    [Fact]
    public void Rodas4SolvesAStiffDecayWithinItsTolerance()
    {
        // du/dt = -1000 (u - 1) from u = 0: u(t) = 1 - exp(-1000 t), stiff for an explicit scheme.
        var sim = HybridModel.FromText("model stiff\ndomain point\nfield u\ndu/dt = -1000*(u - 1)\ninitial u = 0").Compile();
        var r = sim.Simulate(new SimulationSettings
        {
            Scheme = IntegrationScheme.Rodas4,
            Dt = 1e-4,
            SaveTimes = new[] { 0.001, 1.0 },
            RelativeTolerance = 1e-8,
            AbsoluteTolerance = 1e-10,
        });
        Assert.Equal(1.0 - Math.Exp(-1.0), r.Series("u")[0], 7);
        Assert.Equal(1.0, r.Series("u")[1], 9);
    }

    [Fact]
    public void SimulatesA1DModelWithCellsAndCompileSettings()
    {
        var sim = HybridModel.Example("fisher_kpp").Compile(new CompileSettings { DoublePrecision = true, ImplicitDiffusion = true, Seed = 1 });
        var r = sim.Simulate(new SimulationSettings { Scheme = IntegrationScheme.ImexEuler, Dt = 0.01, SaveTimes = new[] { 0.0, 0.1 } });
        Assert.Equal(sim.Cells, r.At("u", 1).Length);
        Assert.Equal(new[] { sim.Cells }, r.Shape);
        Assert.All(r.At("u", 1), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void KenCarp4AgreesWithDopri5OnA1DReactionDiffusionModel()
    {
        var sim = HybridModel.Example("fisher_kpp").Compile(new CompileSettings { DoublePrecision = true, ImplicitDiffusion = true, Seed = 1 });
        SimulationSettings At(IntegrationScheme scheme, double tolerance) => new()
        {
            Scheme = scheme,
            Dt = 1e-3,
            SaveTimes = new[] { 0.5 },
            RelativeTolerance = tolerance,
            AbsoluteTolerance = tolerance,
        };
        var imex = sim.Simulate(At(IntegrationScheme.KenCarp4, 1e-8)).At("u", 0);
        var explicitReference = sim.Simulate(At(IntegrationScheme.Dopri5, 1e-10)).At("u", 0);
        // Both within their tolerances of the same semi-discrete solution: agreement to ~1e-7 (10× the looser one).
        for (var i = 0; i < imex.Length; i++)
            Assert.Equal(explicitReference[i], imex[i], 1e-7);
    }

    [Fact]
    public void ParametersByName()
    {
        var sim = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
        Assert.Equal(new[] { "alpha", "beta", "gamma", "delta" }, sim.ParameterNames);
        Assert.Equal(0.55, sim.GetParameter("alpha"), 12);
        sim.SetParameter("alpha", 0.6);
        Assert.Equal(0.6, sim.Parameters["alpha"], 12);
        var unknown = Assert.Throws<ModelException>(() => sim.GetParameter("alfa"));
        Assert.Contains("alpha", unknown.Message);
        var negative = Assert.Throws<ModelException>(() => sim.SetParameter("beta", -1));
        Assert.Contains("positive", negative.Message);
    }

    [Fact]
    public void BadInputsAreTypedExceptionsWithTheValues()
    {
        var sim = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
        var e = Assert.Throws<ArgumentException>(() => sim.Simulate(new[] { new[] { 30.0 } }, Settings()));
        Assert.Equal("initial", e.ParamName);
        Assert.Contains("initial state 0 has 1 fields but the model has 2 (H, L)", e.Message);
        var unstable = Assert.Throws<HybridException>(() =>
            HybridModel.Example("fisher_kpp").Compile().Simulate(new SimulationSettings { Scheme = IntegrationScheme.Euler, Dt = 1.0 }));
        Assert.Contains("stable", unstable.Message);
        // With the check off the same step runs (and blows up, which is then the caller's business).
        var unchecked_ = HybridModel.Example("fisher_kpp").Compile().Simulate(
            new SimulationSettings { Scheme = IntegrationScheme.Euler, Dt = 1.0, SaveTimes = new[] { 1.0 }, CheckStability = false });
        Assert.Equal(new[] { 1.0 }, unchecked_.Times);
        var r = sim.Simulate(Settings());
        Assert.Equal("field", Assert.Throws<ArgumentException>(() => r.Series("X")).ParamName);
        var save = Assert.Throws<ArgumentOutOfRangeException>(() => r.At("H", 99));
        Assert.Equal("save", save.ParamName);
        Assert.StartsWith($"save = 99 is out of range: there are {r.Times.Length}, so it must be in 0..{r.Times.Length - 1}.", save.Message);
        Assert.Throws<ArgumentException>(() => new TrainingData(Times, new Dictionary<string, double[][]> { ["H"] = new double[1][] }));
    }

    [Fact]
    public async Task TrainAsyncRecoversParametersAndReportsProgress()
    {
        var truth = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
        var data = TrainingData.FromSimulation(truth.Simulate(Settings()));
        var sim = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
        sim.SetParameter("alpha", 0.45);
        sim.SetParameter("gamma", 0.95);
        var reports = new List<TrainingProgress>();
        var result = await sim.TrainAsync(
            data,
            new TrainingOptions { Epochs = 60, LearningRate = 0.05, Dt = 0.1 },
            new SyncProgress<TrainingProgress>(reports.Add));
        Assert.Equal(60, result.Epochs);
        Assert.Equal(60, reports.Count);
        Assert.Equal(1, reports[0].Epoch);
        Assert.True(result.Losses[^1] < 0.1 * result.Losses[0], $"loss {result.Losses[0]} → {result.Losses[^1]}");
        // Started 0.10 off; the data come from RK4 at Δt = 0.05, the fit runs at Δt = 0.1.
        Assert.True(Math.Abs(result.Parameters["alpha"] - 0.55) < 0.03, $"alpha = {result.Parameters["alpha"]}");
        Assert.Equal(result.Parameters["gamma"], sim.GetParameter("gamma"), 12);
        var bad = await Assert.ThrowsAsync<ArgumentException>(() =>
            sim.TrainAsync(new TrainingData(Times, new Dictionary<string, double[][]> { ["Z"] = data.Observations["H"] }), new TrainingOptions()));
        Assert.Equal("data", bad.ParamName);
        Assert.Contains("'Z'", bad.Message);
    }

    [Fact]
    public async Task CancellationStopsWithinAStepAndLeavesALoadableCheckpoint()
    {
        var dir = Path.Combine(Path.GetTempPath(), "hybrid-cancel-" + Guid.NewGuid().ToString("N"));
        try
        {
            var data = TrainingData.FromSimulation(HybridModel.FromText(ModelTests.LotkaVolterra).Compile().Simulate(Settings()));
            var sim = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
            sim.SetParameter("alpha", 0.45);
            using var source = new CancellationTokenSource();
            var last = 0;
            var progress = new SyncProgress<TrainingProgress>(p =>
            {
                last = p.Epoch;
                if (p.Epoch == 3) source.Cancel();
            });
            var options = new TrainingOptions { Epochs = 1000, LearningRate = 0.05, Dt = 0.05, CheckpointDirectory = dir, CheckpointEvery = 100 };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sim.TrainAsync(data, options, progress, source.Token));
            Assert.Equal(3, last);
            var fresh = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
            Assert.Equal(3, fresh.LoadCheckpoint(dir));
            Assert.Equal(sim.GetParameter("alpha"), fresh.GetParameter("alpha"), 12);
            Assert.NotEqual(0.45, fresh.GetParameter("alpha"));
            // Resuming continues from epoch 3.
            var resumed = await fresh.TrainAsync(data, new TrainingOptions { Epochs = 5, LearningRate = 0.05, Dt = 0.05, CheckpointDirectory = dir });
            Assert.Equal(5, resumed.Epochs);
            Assert.Equal(5, resumed.Losses.Length);
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fresh.TrainAsync(data, options, null, cancelled.Token));
            Assert.Throws<HybridException>(() => fresh.LoadCheckpoint(Path.Combine(dir, "nothing-here")));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void SaveAndLoadParametersAndNetworkWeights()
    {
        var file = Path.Combine(Path.GetTempPath(), "hybrid-params-" + Guid.NewGuid().ToString("N"), "tumour.bin");
        try
        {
            var model = HybridModel.Builder("ude")
                .Interval(0, 1, 8).Field("u").Parameter("D", positive: 0.01)
                .Closure("R", 1, new[] { 4 })
                .Equation("du/dt = D*lap(u) + R(u)").Boundary("u", "periodic").Initial("u", "sin(6.283185307179586*x)")
                .Build();
            var a = model.Compile(new CompileSettings { Seed = 1 });
            Assert.Equal(new[] { "R" }, a.ClosureNames);
            a.SetParameter("D", 0.02);
            a.Save(file);
            var b = model.Compile(new CompileSettings { Seed = 2 });
            var settings = new SimulationSettings { Dt = 0.001, SaveTimes = new[] { 0.01 } };
            Assert.NotEqual(a.Simulate(settings).At("u", 0), b.Simulate(settings).At("u", 0));
            b.Load(file);
            Assert.Equal(0.02, b.GetParameter("D"), 12);
            Assert.Equal(a.Simulate(settings).At("u", 0), b.Simulate(settings).At("u", 0));
            var other = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
            Assert.Throws<HybridException>(() => other.Load(file));
            Assert.Throws<HybridException>(() => other.Load(file + ".missing"));
            File.WriteAllText(file + ".txt", "not a parameter file");
            Assert.Throws<HybridException>(() => other.Load(file + ".txt"));
            // A file of a newer format is not "not a parameter file": the message names its format and what to do.
            using (var newer = new BinaryWriter(File.Create(file + ".v2")))
                newer.Write("hybrid-parameters 2");
            var e = Assert.Throws<HybridException>(() => b.Load(file + ".v2"));
            Assert.Equal(
                $"'{file}.v2' is a Hybrid parameter file in format 2, written by a newer version of Hybrid; this version reads format 1. Load it with the Hybrid that wrote it, or Save the parameters again from a simulator of this version.",
                e.Message);
        }
        finally
        {
            var dir = Path.GetDirectoryName(file)!;
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    /// <summary>Reports synchronously on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
