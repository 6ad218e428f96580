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
/// Build one from text (<see cref="FromText"/>), with the fluent <see cref="Builder(string)"/> or from the
/// catalogue (<see cref="Example"/>).
/// </summary>
public sealed class HybridModel
{
    private HybridModel(Model model) => Definition = model;

    // The F# model value (Hybrid.Dsl IR) this wraps.
    internal Model Definition { get; }

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

    // Wraps a model value after checking it.
    internal static HybridModel Checked(Model model)
    {
        Checks.validateIn(ModelSyntax.CSharp, model);
        return new HybridModel(model);
    }

    /// <summary>Names of the catalogue models (<c>tumour</c>, <c>fisher_kpp</c>, <c>lotka_volterra</c>, …).</summary>
    public static IReadOnlyList<string> ExampleNames => Examples.all.Select(m => m.Name).ToArray();

    /// <summary>A catalogue model by name (see <see cref="ExampleNames"/>).</summary>
    /// <exception cref="ArgumentException">No catalogue model has that name; the message lists them.</exception>
    public static HybridModel Example(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var found = Examples.all.FirstOrDefault(m => m.Name == name);
        if (found is null)
            throw new ArgumentException(
                $"There is no example model '{name}'. Known: {string.Join(", ", ExampleNames)}.", nameof(name));
        return new HybridModel(found);
    }

    /// <summary>Starts a fluent builder for a model with this name (0-D until a domain is given).</summary>
    /// <exception cref="ArgumentNullException">The name is null.</exception>
    public static ModelBuilder Builder(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return new ModelBuilder(name, null);
    }

    /// <summary>
    /// Starts a fluent builder from model text: further declarations, equations and conditions are added
    /// to it (declarations may come in any order).
    /// </summary>
    /// <exception cref="ArgumentNullException">The text is null.</exception>
    /// <exception cref="Hybrid.ParseException">The text does not follow the grammar.</exception>
    public static ModelBuilder BuilderFromText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new ModelBuilder(null, Parse.modelUnchecked(text));
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
