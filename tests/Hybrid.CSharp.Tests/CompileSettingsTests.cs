using Hybrid.CSharp;
using TorchSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>Forcings, initial-condition data and closure modules supplied through <see cref="CompileSettings"/>.</summary>
public class CompileSettingsTests
{
    private static readonly SimulationSettings Settings = new() { Dt = 0.01, SaveTimes = new[] { 0.5, 1.0 } };

    [Fact]
    public void ForcingsGiveOneValueForAllCellsOrOnePerCell()
    {
        // du/dt = f(t): with f = cos t (one value) u(t) = sin t; with f = (1, 2, 3, 4) per cell u(t) = k t.
        var model = HybridModel.FromText("""
            model forced
            domain interval [0, 1] cells 4
            field u
            forcing f
            du/dt = f
            boundary u periodic
            initial u = 0
            """);
        var shared = model.Compile(new CompileSettings { Forcings = new Dictionary<string, Func<double, double[]>> { ["f"] = t => new[] { Math.Cos(t) } } })
            .Simulate(Settings);
        foreach (var value in shared.At("u", 1))
            Assert.Equal(Math.Sin(1.0), value, 9);

        var perCell = model.Compile(new CompileSettings { Forcings = new Dictionary<string, Func<double, double[]>> { ["f"] = _ => new[] { 1.0, 2.0, 3.0, 4.0 } } })
            .Simulate(Settings);
        Assert.Equal(new[] { 0.5, 1.0, 1.5, 2.0 }, perCell.At("u", 0).Select(v => Math.Round(v, 12)).ToArray());

        var wrong = model.Compile(new CompileSettings { Forcings = new Dictionary<string, Func<double, double[]>> { ["f"] = _ => new[] { 1.0, 2.0 } } });
        var e = Assert.Throws<HybridException>(() => wrong.Simulate(Settings));
        Assert.Contains("'f'", e.Message);
        Assert.Contains("4 cells", e.Message);
        var missing = Assert.ThrowsAny<HybridException>(() => model.Compile());
        Assert.Contains("'f'", missing.Message);
    }

    [Fact]
    public void InitialDataStartsTheFieldAndIsChecked()
    {
        var model = HybridModel.FromText("""
            model decay
            domain interval [0, 1] cells 3
            field u
            param k = 1
            du/dt = -k*u
            boundary u periodic
            initial u = data "u0"
            """);
        var sim = model.Compile(new CompileSettings { InitialData = new Dictionary<string, double[][]> { ["u0"] = new[] { new[] { 1.0, 2.0, 4.0 } } } });
        var r = sim.Simulate(Settings);
        var expected = new[] { 1.0, 2.0, 4.0 }.Select(v => v * Math.Exp(-1.0)).ToArray();
        var actual = r.At("u", 1);
        for (var i = 0; i < 3; i++)
            Assert.Equal(expected[i], actual[i], 9);
        var bad = Assert.Throws<HybridException>(() =>
            model.Compile(new CompileSettings { InitialData = new Dictionary<string, double[][]> { ["u0"] = new[] { new[] { 1.0 } } } }));
        Assert.Contains("'u0'", bad.Message);
        Assert.Contains("3 values", bad.Message);
    }

    [Fact]
    public void AModuleReplacesAClosureAndIsTrained()
    {
        // du/dt = R(u) with R a linear layer set to 2u: u(t) = u0 e^(2t).
        var model = HybridModel.Builder("growth")
            .Field("u").Closure("R", 1, new[] { 4 })
            .Equation("du/dt = R(u)").Initial("u", 1)
            .Build();
        HybridEngine.Initialize(); // before anything touches torch
        var layer = Doubling();
        var sim = model.Compile(new CompileSettings { Modules = new Dictionary<string, torch.nn.Module<torch.Tensor, torch.Tensor>> { ["R"] = layer } });
        Assert.Equal(Math.Exp(1.0), sim.Simulate(Settings).Series("u")[0], 6); // RK4, Δt = 0.01: error ≈ 4e-9
        Assert.Equal(new[] { "R" }, sim.ClosureNames);
        var trainable = sim.Inner.Trainable();
        Assert.Contains(trainable, p => ReferenceEquals(p, layer.weight));
    }

    // R(u) = 2u as a linear layer. A separate method, so that TorchSharp is first touched after HybridEngine.Initialize.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static TorchSharp.Modules.Linear Doubling()
    {
        var layer = torch.nn.Linear(1, 1, dtype: torch.ScalarType.Float64);
        using (torch.no_grad())
        {
            layer.weight!.fill_(2.0);
            layer.bias!.fill_(0.0);
        }
        return layer;
    }
}
