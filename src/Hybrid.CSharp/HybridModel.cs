using System.Text;
using System.Text.RegularExpressions;

namespace Hybrid.CSharp;

/// <summary>Activation functions of a neural closure (an MLP applied pointwise).</summary>
public enum ClosureActivation
{
    /// <summary>tanh (the default).</summary>
    Tanh,
    /// <summary>max(0, x).</summary>
    Relu,
    /// <summary>Gaussian error linear unit.</summary>
    Gelu,
    /// <summary>x·sigmoid(x).</summary>
    Silu,
    /// <summary>1 / (1 + e⁻ˣ).</summary>
    Sigmoid,
    /// <summary>log(1 + eˣ).</summary>
    Softplus,
}

/// <summary>
/// A checked, immutable model: fields, parameters, closures, equations, boundary and initial conditions.
/// Wraps the F# <see cref="Hybrid.Model"/> value that the rest of the library works on; build one from
/// text (<see cref="FromText"/>), with the fluent <see cref="Builder(string)"/>, from the catalogue
/// (<see cref="Example"/>), or from an F# value (<see cref="FromModel"/>).
/// </summary>
public sealed class HybridModel
{
    private HybridModel(Model model) => Definition = model;

    /// <summary>The F# model value (Hybrid.Dsl IR) this wraps, for code that mixes C# and F#.</summary>
    public Model Definition { get; }

    /// <summary>The model's name.</summary>
    public string Name => Definition.Name;

    /// <summary>Field (state variable) names in declaration order.</summary>
    public IReadOnlyList<string> FieldNames => Definition.Fields.Select(f => f.Name).ToArray();

    /// <summary>Parameter names in declaration order.</summary>
    public IReadOnlyList<string> ParameterNames => Definition.Params.Select(p => p.Name).ToArray();

    /// <summary>Neural closure names in declaration order.</summary>
    public IReadOnlyList<string> ClosureNames => Definition.Closures.Select(c => c.Name).ToArray();

    /// <summary>
    /// Parses a model from its text form (Unicode or ASCII; the grammar is in docs/dsl.fsx) and checks it.
    /// </summary>
    /// <param name="text">The model text, one statement per line.</param>
    /// <exception cref="Hybrid.ParseException">The text does not follow the grammar (with 1-based
    /// <c>Line</c> and <c>Column</c>).</exception>
    /// <exception cref="Hybrid.ModelException">The model fails its checks (undefined symbol, missing
    /// equation, boundary or initial condition, …); the message names the symbol and the fix.</exception>
    public static HybridModel FromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new HybridModel(Parse.model(text));
    }

    /// <summary>Wraps a model built in F# (builder, parser or programmatic API) after checking it.</summary>
    /// <exception cref="Hybrid.ModelException">The model fails its checks.</exception>
    public static HybridModel FromModel(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Checks.validate(model);
        return new HybridModel(model);
    }

    /// <summary>Names of the catalogue models (<c>tumour</c>, <c>fisher_kpp</c>, <c>lotka_volterra</c>, …).</summary>
    public static IReadOnlyList<string> ExampleNames => Examples.all.Select(m => m.Name).ToArray();

    /// <summary>A catalogue model by name (see <see cref="ExampleNames"/>).</summary>
    /// <exception cref="Hybrid.ModelException">No catalogue model has that name; the message lists them.</exception>
    public static HybridModel Example(string name)
    {
        var found = Examples.all.FirstOrDefault(m => m.Name == name);
        if (found is null)
            throw new ModelException(
                $"There is no example model '{name}'. Known: {string.Join(", ", ExampleNames)}.");
        return new HybridModel(found);
    }

    /// <summary>Starts a fluent builder for a model with this name (0-D until a domain is given).</summary>
    public static ModelBuilder Builder(string name) => new(name, null);

    /// <summary>
    /// Starts a fluent builder from model text: further declarations, equations and conditions are added
    /// to it (declarations may come in any order).
    /// </summary>
    public static ModelBuilder BuilderFromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new ModelBuilder(null, text);
    }

    /// <summary>The model in Unicode notation (<c>∂u/∂t = ∇·(D ∇u) + …</c>); parses back to the same model.</summary>
    public string ToUnicode() => Print.model(Notation.Unicode, Definition);

    /// <summary>The model in ASCII notation (<c>du/dt = div(D*grad(u)) + …</c>); parses back to the same model.</summary>
    public string ToAscii() => Print.model(Notation.Ascii, Definition);

    /// <summary>The equations as a LaTeX <c>aligned</c> block (print only).</summary>
    public string ToLatex() => Print.model(Notation.Latex, Definition);

    /// <summary>The model in Unicode notation.</summary>
    public override string ToString() => ToUnicode();

    /// <summary>Compiles the model into a differentiable simulator (Float64, MLP closure weights from seed 0).</summary>
    /// <exception cref="Hybrid.ModelException">A construct the compiler cannot handle, or a missing forcing
    /// or module; the message names it.</exception>
    public HybridSimulator Compile() => HybridSimulator.Create(this, new CompileSettings());

    /// <summary>Compiles the model into a differentiable simulator with these settings.</summary>
    /// <exception cref="Hybrid.ModelException">A construct the compiler cannot handle, or a missing forcing
    /// or module; the message names it.</exception>
    public HybridSimulator Compile(CompileSettings settings) => HybridSimulator.Create(this, settings);
}

/// <summary>
/// Fluent construction of a model: each call adds one statement of the text form, and
/// <see cref="Build"/> parses and checks the whole (so the builder and <see cref="HybridModel.FromText"/>
/// give the same value). The builder is mutable; <see cref="Build"/> may be called more than once.
/// </summary>
public sealed class ModelBuilder
{
    private static readonly Regex Identifier = new(@"^[A-Za-z_][A-Za-z0-9_]*$");
    private readonly List<string> _lines = new();

    internal ModelBuilder(string? name, string? text)
    {
        if (name is not null)
            _lines.Add("model " + (Identifier.IsMatch(name) ? name : "\"" + name + "\""));
        if (text is not null)
            _lines.Add(text);
    }

    private static string N(double v) => Print.number(v);

    private static string Name(string name, string what)
    {
        if (name is null || !Identifier.IsMatch(name))
            throw new ModelException(
                $"The {what} name '{name}' is not an identifier. Use letters, digits and '_', starting with a letter.");
        return name;
    }

    private ModelBuilder Add(string line)
    {
        _lines.Add(line);
        return this;
    }

    /// <summary>A 0-D model: a system of ODEs (the default).</summary>
    public ModelBuilder Point() => Add("domain point");

    /// <summary>The interval [x0, x1] split into <paramref name="cells"/> uniform cells.</summary>
    public ModelBuilder Interval(double x0, double x1, int cells) =>
        Add($"domain interval [{N(x0)}, {N(x1)}] cells {cells}");

    /// <summary>The rectangle [x0, x1] × [y0, y1] split into nx × ny uniform cells.</summary>
    public ModelBuilder Rectangle(double x0, double x1, double y0, double y1, int nx, int ny) =>
        Add($"domain rectangle [{N(x0)}, {N(x1)}] x [{N(y0)}, {N(y1)}] cells {nx} x {ny}");

    /// <summary>A state variable; it needs one equation and one initial condition.</summary>
    public ModelBuilder Field(string name) => Add("field " + Name(name, "field"));

    /// <summary>
    /// A scientific parameter. Give exactly one of <paramref name="value"/> (unconstrained, or bounded
    /// with <paramref name="lower"/> and <paramref name="upper"/>) and <paramref name="positive"/> (kept
    /// &gt; 0): <c>.Parameter("D", positive: 0.05)</c>, <c>.Parameter("a", 0.3, lower: 0, upper: 1)</c>.
    /// </summary>
    /// <param name="name">Symbol name.</param>
    /// <param name="value">Initial value of an unconstrained or bounded parameter.</param>
    /// <param name="positive">Initial value of a parameter constrained positive.</param>
    /// <param name="lower">Lower bound (with <paramref name="upper"/>).</param>
    /// <param name="upper">Upper bound (with <paramref name="lower"/>).</param>
    /// <param name="learnable">False to keep it fixed during training.</param>
    /// <param name="spatial">True for one value per cell.</param>
    /// <exception cref="Hybrid.ModelException">Not exactly one of value and positive, or only one bound.</exception>
    public ModelBuilder Parameter(
        string name,
        double? value = null,
        double? positive = null,
        double? lower = null,
        double? upper = null,
        bool learnable = true,
        bool spatial = false)
    {
        Name(name, "parameter");
        if (value.HasValue == positive.HasValue)
            throw new ModelException(
                $"Parameter '{name}': give exactly one of value (e.g. .Parameter(\"{name}\", 0.5)) and positive (e.g. .Parameter(\"{name}\", positive: 0.5)).");
        if (lower.HasValue != upper.HasValue || (lower.HasValue && positive.HasValue))
            throw new ModelException(
                $"Parameter '{name}': bounds need both lower and upper and a plain value, e.g. .Parameter(\"{name}\", 0.5, lower: 0, upper: 1).");
        var line = new StringBuilder($"param {name} = {N(value ?? positive!.Value)}");
        if (positive.HasValue) line.Append(" positive");
        if (lower.HasValue) line.Append($" in [{N(lower.Value)}, {N(upper!.Value)}]");
        if (!learnable) line.Append(" fixed");
        if (spatial) line.Append(" spatial");
        return Add(line.ToString());
    }

    /// <summary>A named constant.</summary>
    public ModelBuilder Constant(string name, double value) => Add($"const {Name(name, "constant")} = {N(value)}");

    /// <summary>An input given as data under this name at compile time.</summary>
    public ModelBuilder Forcing(string name) => Add("forcing " + Name(name, "forcing"));

    /// <summary>
    /// A neural closure <c>name(a, b, …)</c>: an MLP applied pointwise with layer widths from the
    /// <paramref name="arity"/> inputs through <paramref name="hidden"/> to one output.
    /// </summary>
    /// <param name="name">Function name used in equations.</param>
    /// <param name="arity">Number of arguments.</param>
    /// <param name="hidden">Widths of the hidden layers, e.g. <c>new[] { 32, 32 }</c>.</param>
    /// <param name="activation">Activation between hidden layers.</param>
    public ModelBuilder Closure(string name, int arity, int[] hidden, ClosureActivation activation = ClosureActivation.Tanh)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        var layers = new[] { arity }.Concat(hidden).Append(1);
        return Add($"closure {Name(name, "closure")}/{arity} = mlp [{string.Join(", ", layers)}] {activation.ToString().ToLowerInvariant()}");
    }

    /// <summary>An equation in text form, e.g. <c>"dH/dt = alpha*H - beta*H*L"</c> or <c>"∂u/∂t = D Δu"</c>.</summary>
    public ModelBuilder Equation(string text) => Add(text);

    /// <summary>
    /// A boundary condition on every side (<c>"noflux"</c>, <c>"periodic"</c>, <c>"dirichlet 0"</c>,
    /// <c>"neumann 1"</c>) or on one (<c>"left dirichlet 1 - t"</c>).
    /// </summary>
    public ModelBuilder Boundary(string field, string condition) => Add($"boundary {Name(field, "field")} {condition}");

    /// <summary>The initial condition of a field as an expression of x, y and parameters, e.g. <c>"exp(-(x - 5)^2)"</c>.</summary>
    public ModelBuilder Initial(string field, string expression) => Add($"initial {Name(field, "field")} = {expression}");

    /// <summary>The initial condition of a field as a constant.</summary>
    public ModelBuilder Initial(string field, double value) => Initial(field, N(value));

    /// <summary>The model text built so far.</summary>
    public string ToText() => string.Join("\n", _lines) + "\n";

    /// <summary>Parses and checks the model.</summary>
    /// <exception cref="Hybrid.ParseException">A statement does not follow the grammar.</exception>
    /// <exception cref="Hybrid.ModelException">The model fails its checks.</exception>
    public HybridModel Build() => HybridModel.FromText(ToText());
}
