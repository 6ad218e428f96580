using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>The builder makes the model value directly: each string is parsed alone, as one expression or equation.</summary>
public class BuilderTests
{
    private static ModelBuilder Decay() => HybridModel.Builder("decay").Field("u").Parameter("k", positive: 0.5);

    [Fact]
    public void AnEquationCannotInjectStatements()
    {
        var b = Decay();
        var e = Assert.Throws<ArgumentException>(() => b.Equation("du/dt = -k*u\nfield w"));
        Assert.Equal("text", e.ParamName);
        Assert.StartsWith("text holds a line break at position 12: each call takes one statement on one line, e.g. .Equation(\"du/dt = -k*u\"). Make one call per statement.", e.Message);
        Assert.Equal("expression", Assert.Throws<ArgumentException>(() => b.Initial("u", "1\r\nfield w")).ParamName);
        Assert.Equal("condition", Assert.Throws<ArgumentException>(() => b.Boundary("u", "noflux\u2028field w")).ParamName);
        // On one line the words are no statement either: parsed as one expression, 'field' is just a symbol the model lacks.
        b.Equation("du/dt = -k*u field w");
        var symbol = Assert.Throws<ModelException>(() => b.Initial("u", 1).Build());
        Assert.Contains("'field'", symbol.Message);
        b = Decay();
        Assert.Throws<ParseException>(() => b.Equation("du/dt = -k*u; field w"));
        var name = Assert.Throws<ArgumentException>(() => b.Field("w\nfield z"));
        Assert.Equal("name", name.ParamName);
        Assert.Contains("'w\nfield z' is not an identifier", name.Message);
        // The refused calls left nothing behind.
        var m = b.Equation("du/dt = -k*u").Initial("u", 1).Build();
        Assert.Equal(new[] { "u" }, m.FieldNames);
        Assert.Equal(HybridModel.FromText("model decay\nfield u\nparam k = 0.5 positive\ndu/dt = -k*u\ninitial u = 1").Definition, m.Definition);
    }

    [Fact]
    public void NullStringsAreArgumentNullExceptionsNamingTheArgument()
    {
        var b = Decay();
        Assert.Equal("text", Assert.Throws<ArgumentNullException>(() => b.Equation(null!)).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentNullException>(() => b.Field(null!)).ParamName);
        Assert.Equal("expression", Assert.Throws<ArgumentNullException>(() => b.Initial("u", (string)null!)).ParamName);
        Assert.Equal("condition", Assert.Throws<ArgumentNullException>(() => b.Boundary("u", null!)).ParamName);
        Assert.Equal("field", Assert.Throws<ArgumentNullException>(() => b.Boundary(null!, "noflux")).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentNullException>(() => HybridModel.Builder(null!)).ParamName);
        Assert.Equal("text", Assert.Throws<ArgumentNullException>(() => HybridModel.BuilderFromText(null!)).ParamName);
        Assert.Equal("hidden", Assert.Throws<ArgumentNullException>(() => b.Closure("R", 1, null!)).ParamName);
    }

    [Fact]
    public void NaNNumbersAreArgumentOutOfRangeNamingTheArgumentWithTheFix()
    {
        var value = Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Parameter("k", double.NaN));
        Assert.Equal("value", value.ParamName);
        Assert.Contains("value must be a finite number, got NaN. Give a finite value, e.g. .Parameter(\"k\", 0.5).", value.Message);
        Assert.Equal("positive", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Parameter("k", positive: double.NaN)).ParamName);
        Assert.Equal("upper", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Parameter("k", 0.5, lower: 0, upper: double.PositiveInfinity)).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Constant("c", double.NaN)).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Field("u").Initial("u", double.NaN)).ParamName);
        var x1 = Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Interval(0, double.NaN, 4));
        Assert.Equal("x1", x1.ParamName);
        var empty = Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Interval(1, 0, 4));
        Assert.Contains("x1 must be greater than x0 = 1, got 0. Give the range lower end first, e.g. (0, 1).", empty.Message);
        Assert.Equal("cells", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Interval(0, 1, 0)).ParamName);
        Assert.Equal("y0", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Rectangle(0, 1, double.NaN, 1, 2, 2)).ParamName);
        Assert.Equal("arity", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Closure("R", 0, new[] { 4 })).ParamName);
        Assert.Equal("hidden[1]", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").Closure("R", 1, new[] { 4, 0 })).ParamName);
    }

    [Fact]
    public void ParameterArgumentsThatDoNotGoTogetherAreArgumentExceptions()
    {
        Assert.Equal("value", Assert.Throws<ArgumentException>(() => HybridModel.Builder("m").Parameter("a")).ParamName);
        var both = Assert.Throws<ArgumentException>(() => HybridModel.Builder("m").Parameter("a", 1, positive: 2));
        Assert.Contains("give exactly one of value", both.Message);
        Assert.Equal("upper", Assert.Throws<ArgumentException>(() => HybridModel.Builder("m").Parameter("a", 1, lower: 0)).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => HybridModel.Builder("m").Field("not a name")).ParamName);
    }

    [Fact]
    public void BoundariesAndInitialConditionsFollowTheTextForm()
    {
        const string text = """
            model heat
            domain interval [0, 1] cells 4
            field u
            field v
            param D = 0.1 positive
            du/dt = D*lap(u)
            dv/dt = D*lap(v)
            boundary u noflux
            boundary u left dirichlet 1 - t
            boundary v right neumann 2
            boundary v left noflux
            initial u = x
            initial v = data "v0"
            """;
        var built = HybridModel.Builder("heat")
            .Interval(0, 1, 4).Field("u").Field("v").Parameter("D", positive: 0.1)
            .Equation("du/dt = D*lap(u)").Equation("dv/dt = D*lap(v)")
            .Boundary("u", "noflux").Boundary("u", "left dirichlet 1 - t")
            .Boundary("v", "right neumann 2").Boundary("v", "left noflux")
            .Initial("u", "x").InitialFromData("v", "v0");
        Assert.Equal(HybridModel.BuilderFromText(text).Build().Definition, built.Build().Definition);
        var twice = Assert.Throws<ArgumentException>(() => built.Initial("u", 2));
        Assert.Equal("A second initial condition for 'u'. Keep one. (Parameter 'field')", twice.Message);
        var side = Assert.Throws<ArgumentException>(() => built.Boundary("u", "left noflux"));
        Assert.Contains("A second boundary condition for 'u' on the left side. Keep one.", side.Message);
        var every = Assert.Throws<ArgumentException>(() => built.Boundary("v", "noflux"));
        Assert.Contains("an earlier one already set its right side", every.Message);
        Assert.Throws<ArgumentException>(() => built.Boundary("v", "bottom top noflux"));
        var bad = Assert.Throws<ArgumentException>(() => built.Boundary("u", "sticky"));
        Assert.Contains("noflux, periodic, dirichlet <expr> or neumann <expr>", bad.Message);
    }
}
