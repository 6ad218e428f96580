using Hybrid.CSharp;
using Microsoft.FSharp.Collections;
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

    [Fact]
    public void TheVorticityModelOfTheDocsWithADiagnosticStreamfunction()
    {
        // docs/dsl.fsx, "Diagnostic (elliptic) fields": the same model as its text.
        const string text = """
            model vorticity
            domain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells 32 x 32
            field omega
            field psi diagnostic
            param nu = 0.01
            ∂omega/∂t = ∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega) + nu Δomega
            Δpsi = omega
            boundary omega periodic
            boundary psi periodic
            initial omega = sin(x) sin(y)
            """;
        var built = HybridModel.Builder("vorticity")
            .Rectangle(0, 6.283185307179586, 0, 6.283185307179586, 32, 32)
            .Field("omega").Diagnostic("psi").Parameter("nu", 0.01)
            .Equation("∂omega/∂t = ∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega) + nu Δomega")
            .Elliptic("lap(psi) = omega")
            .Boundary("omega", "periodic").Boundary("psi", "periodic")
            .Initial("omega", "sin(x) sin(y)");
        Assert.Equal(HybridModel.FromText(text).Definition, built.Build().Definition);
        // (Δ − 4)ψ = ω in ASCII.
        var screened = HybridModel.Builder("m").Elliptic("lap(psi) - 4*psi = omega").Unchecked().EllipticEquations.Head;
        Assert.Equal(("psi", 4.0), (screened.Field, screened.Screening));
        var misplaced = Assert.Throws<ArgumentException>(() => HybridModel.Builder("m").Equation("lap(psi) = omega"));
        Assert.Contains("is the elliptic equation of a diagnostic field, not a time equation. Declare the field with .Diagnostic(...) and give its equation with .Elliptic(\"lap(psi) = omega\").", misplaced.Message);
        // Without its elliptic equation, the check's fix is written as a builder call.
        var missing = Assert.Throws<ModelException>(() => HybridModel.Builder("vorticity")
            .Rectangle(0, 1, 0, 1, 8, 8).Field("omega").Diagnostic("psi")
            .Equation("domega/dt = dx(psi)").Boundary("omega", "periodic").Boundary("psi", "periodic")
            .Initial("omega", 0).Build());
        Assert.Contains("Diagnostic field 'psi' has no elliptic equation. Add one, e.g. .Elliptic(\"lap(psi) = ...\").", missing.Message);
    }

    [Fact]
    public void ACnnClosureWithTwoOutputsIsTheTextFormsClosure()
    {
        // docs/dsl.fsx, "Closures over whole fields with several outputs".
        const string text = """
            model subgrid
            domain rectangle [0, 1] x [0, 1] cells 16 x 16
            field w
            field q
            param nu = 0.01 fixed
            closure sgs/2 = cnn [2, 8, 2] kernel 3 tanh
            ∂w/∂t = nu Δw + sgs(w, q)[1]
            ∂q/∂t = nu Δq + sgs(w, q)[2]
            boundary w periodic
            boundary q periodic
            initial w = sin(6.283185307179586 x)
            initial q = cos(6.283185307179586 y)
            """;
        var built = HybridModel.Builder("subgrid")
            .Rectangle(0, 1, 0, 1, 16, 16).Field("w").Field("q").Parameter("nu", 0.01, learnable: false)
            .CnnClosure("sgs", 2, new[] { 8 }, outputs: 2)
            .Equation("∂w/∂t = nu Δw + sgs(w, q)[1]").Equation("∂q/∂t = nu Δq + sgs(w, q)[2]")
            .Boundary("w", "periodic").Boundary("q", "periodic")
            .Initial("w", "sin(6.283185307179586 x)").Initial("q", "cos(6.283185307179586 y)");
        Assert.Equal(HybridModel.FromText(text).Definition, built.Build().Definition);
        var relu = HybridModel.Builder("m").CnnClosure("g", 1, new[] { 4, 4 }, outputs: 3, kernel: 5, activation: ClosureActivation.Relu).Unchecked();
        Assert.Equal(Architecture.NewCnn(ListModule.OfSeq(new[] { 1, 4, 4, 3 }), 5, Activation.Relu), relu.Closures.Head.Architecture);
        Assert.Equal("kernel", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").CnnClosure("g", 1, new[] { 4 }, kernel: 4)).ParamName);
        Assert.Equal("outputs", Assert.Throws<ArgumentOutOfRangeException>(() => HybridModel.Builder("m").CnnClosure("g", 1, new[] { 4 }, outputs: 0)).ParamName);
    }
}
