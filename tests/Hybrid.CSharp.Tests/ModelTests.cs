using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

public class ModelTests
{
    internal const string LotkaVolterra = """
        model lotka_volterra
        field H
        field L
        param alpha = 0.55 positive
        param beta = 0.028 positive
        param gamma = 0.84 positive
        param delta = 0.026 positive
        dH/dt = alpha*H - beta*H*L
        dL/dt = delta*H*L - gamma*L
        initial H = 30
        initial L = 4
        """;

    [Fact]
    public void TextBuilderAndCatalogueGiveTheSameModel()
    {
        var text = HybridModel.FromText(LotkaVolterra);
        var built = HybridModel.Builder("lotka_volterra")
            .Point()
            .Field("H").Field("L")
            .Parameter("alpha", positive: 0.55)
            .Parameter("beta", positive: 0.028)
            .Parameter("gamma", positive: 0.84)
            .Parameter("delta", positive: 0.026)
            .Equation("dH/dt = alpha*H - beta*H*L")
            .Equation("∂L/∂t = delta H L − gamma L")
            .Initial("H", 30).Initial("L", "4")
            .Build();
        var example = HybridModel.Example("lotka_volterra");
        Assert.Equal(text.Definition, built.Definition);
        Assert.Equal(example.Definition, text.Definition);
        Assert.Equal(example.Definition, HybridModel.Checked(example.Definition).Definition);
        Assert.Equal(new[] { "H", "L" }, text.FieldNames);
        Assert.Equal(new[] { "alpha", "beta", "gamma", "delta" }, text.ParameterNames);
        Assert.Empty(text.ClosureNames);
        Assert.Equal("lotka_volterra", text.Name);
        Assert.Contains("lotka_volterra", HybridModel.ExampleNames);
    }

    [Fact]
    public void PrintsInThreeNotationsAndUnicodeAndAsciiParseBack()
    {
        var m = HybridModel.Example("fisher_kpp");
        Assert.Contains("∂u/∂t", m.ToUnicode());
        Assert.Contains("du/dt", m.ToAscii());
        Assert.Contains("\\begin{aligned}", m.ToLatex());
        Assert.Equal(m.ToUnicode(), m.ToString());
        Assert.Equal(m.Definition, HybridModel.FromText(m.ToUnicode()).Definition);
        Assert.Equal(m.Definition, HybridModel.FromText(m.ToAscii()).Definition);
    }

    [Fact]
    public void BuilderCoversDomainsClosuresConstantsForcingsAndBounds()
    {
        var b = HybridModel.Builder("tumour")
            .Interval(0, 10, 32)
            .Field("u")
            .Parameter("D", positive: 0.05)
            .Parameter("r", 1.0, lower: 0.0, upper: 5.0)
            .Parameter("k", 0.5, learnable: false)
            .Constant("c0", 2)
            .Forcing("c")
            .Closure("kill", 2, new[] { 8 }, ClosureActivation.Relu)
            .Equation("du/dt = div(D*grad(u)) + r*u*(1 - u) - kill(u, c)*u - k*u + c0*0")
            .Boundary("u", "noflux")
            .Initial("u", "exp(-(x - 5)^2)");
        Assert.Contains("closure kill/2 = mlp [2, 8, 1] relu", b.ToText());
        var m = b.Build();
        Assert.Equal(new[] { "kill" }, m.ClosureNames);
        Assert.Equal(new[] { "D", "r", "k" }, m.ParameterNames);
        var rect = HybridModel.Builder("heat2d")
            .Rectangle(0, 1, 0, 1, 4, 4)
            .Field("u").Parameter("D", positive: 0.1)
            .Equation("du/dt = D*lap(u)").Boundary("u", "dirichlet 0").Initial("u", "x*y")
            .Build();
        Assert.Equal(16, rect.Compile().Cells);
        var extended = HybridModel.BuilderFromText("model decay\nfield u\ninitial u = 1")
            .Parameter("k", positive: 0.5)
            .Equation("du/dt = -k*u")
            .Build();
        Assert.Equal(new[] { "k" }, extended.ParameterNames);
    }

    [Fact]
    public void BadTextIsAParseExceptionWithLineAndColumn()
    {
        var e = Assert.Throws<ParseException>(() => HybridModel.FromText("field u\ndu/dt = (u +\ninitial u = 1"));
        Assert.True(e.Line >= 2, $"line {e.Line}: {e.Message}");
        Assert.True(e.Column >= 1);
        Assert.IsAssignableFrom<HybridException>(e);
    }

    [Fact]
    public void AnIllFormedModelIsAModelExceptionNamingTheSymbol()
    {
        var e = Assert.Throws<ModelException>(() =>
            HybridModel.Builder("m").Field("u").Equation("du/dt = -q*u").Initial("u", 1).Build());
        Assert.Contains("q", e.Message);
        var example = Assert.Throws<ArgumentException>(() => HybridModel.Example("nope"));
        Assert.Equal("name", example.ParamName);
        Assert.StartsWith("There is no example model 'nope'. Known: tumour, fisher_kpp,", example.Message);
    }
}
