using System.Globalization;
using System.Text.RegularExpressions;
using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

public class PlotsTests
{
    private const int Nx = 6, Ny = 4;

    private static double Initial(double x, double y) =>
        Math.Exp(-((x - 0.3) * (x - 0.3) + (y - 0.5) * (y - 0.5)) / 0.05);

    [Fact]
    public void WriteSimulationOfARectangleDrawsEveryCellAtTheFirstMiddleAndLastTimes()
    {
        var model = HybridModel.Builder("heat2d")
            .Rectangle(0, 1, 0, 1, Nx, Ny)
            .Field("u")
            .Parameter("D", positive: 0.01)
            .Equation("du/dt = D lap(u)")
            .Boundary("u", "noflux")
            .Initial("u", "exp(-((x - 0.3)^2 + (y - 0.5)^2) / 0.05)")
            .Build();
        var r = model.Compile().Simulate(new SimulationSettings { Dt = 0.01, SaveTimes = new[] { 0.0, 0.1, 0.2, 0.3, 0.4 } });
        Assert.Equal(new[] { Nx, Ny }, r.Shape);
        var file = Path.Combine(Path.GetTempPath(), "hybrid-heat2d-" + Guid.NewGuid().ToString("N") + ".svg");
        try
        {
            var svg = Plots.WriteSimulation(file, "heat", r);
            Assert.Equal(svg, File.ReadAllText(file));
            var cells = Regex.Matches(svg,
                    "<rect class=\"cell\" data-field=\"u\" data-save=\"(\\d+)\" data-i=\"(\\d+)\" data-j=\"(\\d+)\" data-value=\"([^\"]+)\"")
                .Select(m => (Save: int.Parse(m.Groups[1].Value), I: int.Parse(m.Groups[2].Value), J: int.Parse(m.Groups[3].Value),
                    Value: double.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture)))
                .ToList();
            // nx·ny values per panel, three panels: the first, middle and last of five save times.
            Assert.Equal(Nx * Ny * 3, cells.Count);
            Assert.Equal(new[] { 0, 2, 4 }, cells.Select(c => c.Save).Distinct().OrderBy(s => s).ToArray());
            foreach (var save in new[] { 0, 2, 4 })
                Assert.Equal(Nx * Ny, cells.Where(c => c.Save == save).Select(c => (c.I, c.J)).Distinct().Count());
            // Each value is the trajectory's value of that cell, exactly.
            foreach (var c in cells)
                Assert.Equal(r.At("u", c.Save)[c.I * Ny + c.J], c.Value);
            // At t = 0 the cells hold the initial condition at the cell centres (i along x, j along y).
            foreach (var c in cells.Where(c => c.Save == 0))
                Assert.Equal(Initial((c.I + 0.5) / Nx, (c.J + 0.5) / Ny), c.Value, 12);
            Assert.Contains("u, t = 0.4", svg);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
