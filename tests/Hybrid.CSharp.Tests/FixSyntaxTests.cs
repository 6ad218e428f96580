using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>A model built with the C# builder is told its fixes as C# builder calls, and the call it is told
/// fixes the model.</summary>
public class FixSyntaxTests
{
    private static ModelBuilder Heat() =>
        HybridModel.Builder("heat").Interval(0, 1, 8).Field("u").Parameter("D", positive: 0.1)
            .Equation("du/dt = D*lap(u)").Initial("u", "sin(3.14159*x)");

    [Fact]
    public void AMissingBoundaryIsFixedWithTheBoundaryCallTheMessageShows()
    {
        var e = Assert.Throws<ModelException>(() => Heat().Build());
        Assert.Contains("Add one, e.g. .Boundary(\"u\", \"noflux\").", e.Message);
        Assert.DoesNotContain("boundary \"u\" noFlux", e.Message);
        var fixedModel = Heat().Boundary("u", "noflux").Build();
        Assert.Equal("heat", fixedModel.Name);
    }

    [Fact]
    public void AMissingEquationAndInitialConditionAreToldAsBuilderCalls()
    {
        var b = HybridModel.Builder("decay").Field("u").Parameter("k", positive: 0.5);
        var e = Assert.Throws<ModelException>(() => b.Build());
        Assert.Contains(".Equation(\"du/dt = ...\")", e.Message);
        Assert.Contains(".Initial(\"u\", 0)", e.Message);
        Assert.DoesNotContain("equation (dt u == ...)", e.Message);
    }
}
