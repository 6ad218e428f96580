using Hybrid.CSharp;
using Hybrid.Training;
using TorchSharp;
using Xunit;
using static Hybrid.TensorArithmetic;

namespace Hybrid.CSharp.Tests;

/// <summary>
/// The fit a new user makes from C#: Lotka–Volterra against the Hudson Bay lynx–hare record 1900–1920
/// (data/hudson-bay-lynx-hare.csv, thousands of pelts), in log space, with the start state (hare₀, lynx₀) as two
/// parameters used in the initial lines. The reference is the same objective minimised through the F# API
/// directly (Hybrid.Compiler + Loss.mse of the logs + Trainer.lbfgs), with the start state as explicit leaf
/// tensors of log values fed to Simulate instead of initial lines: another parametrisation and another code path
/// to the same minimum.
/// </summary>
public class LynxHareTests
{
    private const string Model = """
        model lynx_hare
        field H
        field L
        param alpha = 0.55 positive
        param beta = 0.028 positive
        param gamma = 0.84 positive
        param delta = 0.026 positive
        param hare0 = 30 positive
        param lynx0 = 4 positive
        dH/dt = alpha*H - beta*H*L
        dL/dt = delta*H*L - gamma*L
        initial H = hare0
        initial L = lynx0
        """;

    private const double Dt = 0.1;

    private static string DataFile()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "data", "hudson-bay-lynx-hare.csv");
            if (File.Exists(path))
                return path;
        }

        throw new FileNotFoundException("data/hudson-bay-lynx-hare.csv was not found above " + AppContext.BaseDirectory);
    }

    // The F# reference: θ from the compiled simulator, (hare₀, lynx₀) as exp of two leaf tensors, log-space MSE.
    private static Dictionary<string, double> Reference(TrainingData data)
    {
        HybridEngine.Initialize();
        var model = Parse.model(Model);
        var sim = Hybrid.Compiler.Compiler.compile(Hybrid.Compiler.Compiler.defaults, model);
        var logStart = torch.nn.Parameter(torch.tensor(new[] { Math.Log(30.0), Math.Log(4.0) }, dtype: torch.ScalarType.Float64));
        var times = data.Times;
        var logData = new[] { "H", "L" }
            .Select(f => torch.tensor(data.Observations[f].Select(v => Math.Log(v[0])).ToArray(), new long[] { times.Length, 1 }, dtype: torch.ScalarType.Float64))
            .ToArray();
        var options = new Hybrid.Numerics.RolloutOptions(
            Hybrid.Numerics.Scheme.Rk4, Dt, times[0], times, Hybrid.Numerics.Checkpointing.Off, 10, Hybrid.Numerics.OnUnstable.Fail,
            Hybrid.Numerics.Rollout.defaults.Tolerance, Hybrid.Numerics.Rollout.defaults.FieldTolerances,
            Hybrid.Numerics.Rollout.defaults.Events, Hybrid.Numerics.Rollout.defaults.StateEvents);
        torch.Tensor Loss()
        {
            var start = logStart.exp();
            var u0 = new[] { start[0].reshape(1), start[1].reshape(1) };
            var trajectory = sim.Simulate(u0, options);
            return SafeOps.Add(
                Hybrid.Training.Loss.mse(trajectory.Values[0].log(), logData[0]),
                Hybrid.Training.Loss.mse(trajectory.Values[1].log(), logData[1]));
        }

        var parameters = sim.Parameters.Where(p => p.Name is "alpha" or "beta" or "gamma" or "delta").Select(p => p.Raw).Append(logStart).ToArray();
        Trainer.lbfgs(parameters, 1.0, 30, 20, Microsoft.FSharp.Core.FuncConvert.FromFunc(Loss));
        var fitted = sim.Parameters.Where(p => p.Name is not "hare0" and not "lynx0").ToDictionary(p => p.Name, p => p.Get());
        fitted["hare0"] = Math.Exp(logStart[0].ToDouble());
        fitted["lynx0"] = Math.Exp(logStart[1].ToDouble());
        return fitted;
    }

    [Fact]
    public void TheFacadeFitsLotkaVolterraInLogSpaceWithAFreeStartState()
    {
        var data = TrainingData.FromCsv(DataFile(), "Year", new Dictionary<string, string> { ["H"] = "Hare", ["L"] = "Lynx" });
        Assert.Equal(21, data.Times.Length);
        Assert.Equal(1900, data.Times[0]);

        using var sim = HybridModel.FromText(Model).Compile();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = sim.Train(data, new TrainingOptions
        {
            Optimizer = TrainingOptimizer.Lbfgs, Epochs = 30, LearningRate = 1, Loss = TrainingLoss.LogMse,
            StartTime = 1900, Dt = Dt,
        });
        var facadeSeconds = watch.Elapsed.TotalSeconds;
        // The reference runs on the facade's torch thread too, so that TorchSharp is used from one thread only.
        var reference = TorchThread.Run(() => Reference(data));

        // Both minimise the same loss: the start state moved off its first guess (to hare₀ ≈ 34.6, lynx₀ ≈ 5.84), and
        // every parameter agrees within 1e-5 relative (seen: ≤ 4e-7).
        Assert.NotEqual(30.0, result.Parameters["hare0"], 3);
        foreach (var (name, value) in reference)
            Assert.True(
                Math.Abs(result.Parameters[name] - value) <= 1e-5 * Math.Abs(value),
                $"{name}: facade {result.Parameters[name]}, F# reference {value} (facade fit {facadeSeconds:F1} s)");
        Assert.True(facadeSeconds < 30, $"the facade's fit took {facadeSeconds:F1} s");
    }
}
