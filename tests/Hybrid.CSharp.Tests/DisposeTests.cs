using Hybrid.CSharp;
using TorchSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>Simulators and ensembles free what they own; using them afterwards is an ObjectDisposedException.</summary>
public class DisposeTests
{
    private static readonly SimulationSettings Settings = new() { Dt = 0.1, SaveTimes = new[] { 1.0 } };

    [Fact]
    public async Task ADisposedSimulatorRefusesEveryCallAndFreesItsTensors()
    {
        var sim = HybridModel.FromText(ModelTests.LotkaVolterra).Compile();
        Assert.False(sim.IsDisposed);
        var raw = sim.Inner.Parameters[0].Raw;
        sim.Dispose();
        Assert.True(sim.IsDisposed);
        Assert.True(raw.IsInvalid);
        sim.Dispose(); // a second call does nothing
        var data = TrainingData.FromSimulation(HybridModel.FromText(ModelTests.LotkaVolterra).Compile().Simulate(Settings));
        Assert.Throws<ObjectDisposedException>(() => sim.Simulate(Settings));
        Assert.Throws<ObjectDisposedException>(() => sim.GetParameter("alpha"));
        Assert.Throws<ObjectDisposedException>(() => sim.SetParameter("alpha", 1));
        Assert.Throws<ObjectDisposedException>(() => sim.Parameters);
        Assert.Throws<ObjectDisposedException>(() => sim.FieldNames);
        Assert.Throws<ObjectDisposedException>(() => sim.Cells);
        Assert.Throws<ObjectDisposedException>(() => sim.Save(Path.GetTempFileName()));
        Assert.Throws<ObjectDisposedException>(() => sim.Train(data, new TrainingOptions { Epochs = 1 }));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => sim.TrainAsync(data, new TrainingOptions { Epochs = 1 }));
    }

    [Fact]
    public void ModulesTheCallerPassedInStayUsable()
    {
        var model = HybridModel.Builder("growth")
            .Field("u").Closure("R", 1, new[] { 4 })
            .Equation("du/dt = R(u)").Initial("u", 1)
            .Build();
        HybridEngine.Initialize();
        var layer = Layer();
        var sim = model.Compile(new CompileSettings { Modules = new Dictionary<string, torch.nn.Module<torch.Tensor, torch.Tensor>> { ["R"] = layer } });
        var own = HybridModel.Builder("growth2").Field("u").Closure("R", 1, new[] { 4 }).Equation("du/dt = R(u)").Initial("u", 1).Build().Compile();
        var ownWeight = own.Inner.Modules[0].Item2.parameters().First();
        sim.Dispose();
        own.Dispose();
        Assert.False(layer.weight!.IsInvalid);
        Assert.True(ownWeight.IsInvalid);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static TorchSharp.Modules.Linear Layer() => torch.nn.Linear(1, 1, dtype: torch.ScalarType.Float64);

    [Fact]
    public async Task ADisposedEnsembleDisposesItsMembers()
    {
        var model = HybridModel.FromText(ModelTests.LotkaVolterra);
        var data = TrainingData.FromSimulation(model.Compile().Simulate(Settings));
        var ensemble = await HybridEnsemble.TrainAsync(model, data, new TrainingOptions { Epochs = 1, Dt = 0.1 }, 2);
        var members = ensemble.Members.ToArray();
        ensemble.Dispose();
        Assert.All(members, m => Assert.True(m.IsDisposed));
        Assert.Throws<ObjectDisposedException>(() => ensemble.Members);
        Assert.Throws<ObjectDisposedException>(() => ensemble.Predict(Settings));
        ensemble.Dispose();
    }
}
