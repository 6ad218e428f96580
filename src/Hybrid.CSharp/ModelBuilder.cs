using System.Text.RegularExpressions;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FsBoundary = Hybrid.Boundary;
using FsDomain = Hybrid.Domain;
using FsEquation = Hybrid.Equation;
using FsInitial = Hybrid.Initial;

namespace Hybrid.CSharp;

/// <summary>
/// Fluent construction of a model: each call adds one declaration, equation or condition to the model value
/// (the same value <see cref="HybridModel.FromText"/> gives for the same statements), and <see cref="Build"/>
/// checks the whole. Expressions and equations are parsed one at a time, each as exactly one expression or
/// equation, so no argument can add statements of its own. The builder is mutable; <see cref="Build"/> may be
/// called more than once.
/// </summary>
public sealed class ModelBuilder
{
    private static readonly Regex Identifier = new(@"^[A-Za-z_][A-Za-z0-9_]*$");
    private readonly Model? _start;
    private readonly string? _name;
    private FsDomain? _domain;
    private readonly List<FieldDecl> _fields = new();
    private readonly List<ParamDecl> _params = new();
    private readonly List<ForcingDecl> _forcings = new();
    private readonly List<ClosureDecl> _closures = new();
    private readonly List<ConstantDecl> _constants = new();
    private readonly List<FsEquation> _equations = new();
    private readonly List<FsInitial> _initials = new();
    private readonly List<(string Field, Side? Side, BoundaryCondition Condition)> _boundaries = new();
    private readonly List<DiagnosticDecl> _diagnostics = new();
    private readonly List<EllipticEquation> _elliptic = new();

    internal ModelBuilder(string? name, Model? start)
    {
        _name = name;
        _start = start;
    }

    private static string Name(string name, string argument, string what)
    {
        ArgumentNullException.ThrowIfNull(name, argument);
        if (!Identifier.IsMatch(name))
            throw new ArgumentException(
                $"The {what} name '{name}' is not an identifier. Use ASCII letters, digits and '_', starting with a letter, e.g. \"{what}1\".",
                argument);
        return name;
    }

    // Each string argument holds one statement's part on one line: a line break would read as a second statement.
    private static string OneLine(string text, string argument, string example)
    {
        ArgumentNullException.ThrowIfNull(text, argument);
        var k = text.IndexOfAny(new[] { '\n', '\r', '\u0085', '\u2028', '\u2029' });
        if (k >= 0)
            throw new ArgumentException(
                $"{argument} holds a line break at position {k}: each call takes one statement on one line, e.g. {example}. Make one call per statement.",
                argument);
        return text;
    }

    private ModelBuilder Domain(FsDomain domain)
    {
        _domain = domain;
        return this;
    }

    /// <summary>A 0-D model: a system of ODEs (the default).</summary>
    public ModelBuilder Point() => Domain(FsDomain.Point);

    /// <summary>The interval [x0, x1] split into <paramref name="cells"/> uniform cells.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is not finite, x1 ≤ x0, or cells &lt; 1.</exception>
    public ModelBuilder Interval(double x0, double x1, int cells)
    {
        Range(x0, x1, nameof(x0), nameof(x1));
        Argument.AtLeast(cells, 1, nameof(cells), "the interval needs at least one cell");
        return Domain(FsDomain.NewInterval(x0, x1, cells));
    }

    /// <summary>The rectangle [x0, x1] × [y0, y1] split into nx × ny uniform cells.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is not finite, a range is empty, or a cell count is &lt; 1.</exception>
    public ModelBuilder Rectangle(double x0, double x1, double y0, double y1, int nx, int ny)
    {
        Range(x0, x1, nameof(x0), nameof(x1));
        Range(y0, y1, nameof(y0), nameof(y1));
        Argument.AtLeast(nx, 1, nameof(nx), "the rectangle needs at least one cell along x");
        Argument.AtLeast(ny, 1, nameof(ny), "the rectangle needs at least one cell along y");
        return Domain(FsDomain.NewRectangle(x0, x1, y0, y1, nx, ny));
    }

    private static void Range(double lo, double hi, string loName, string hiName)
    {
        Argument.Finite(lo, loName, "0");
        Argument.Finite(hi, hiName, "1");
        if (!(hi > lo))
            throw new ArgumentOutOfRangeException(
                hiName, hi, $"{hiName} must be greater than {loName} = {Argument.Show(lo)}, got {Argument.Show(hi)}. Give the range lower end first, e.g. ({Argument.Show(Math.Min(lo, hi))}, {Argument.Show(Math.Max(lo, hi))}).");
    }

    /// <summary>A state variable; it needs one equation and one initial condition.</summary>
    /// <exception cref="ArgumentException">The name is null or not an identifier.</exception>
    public ModelBuilder Field(string name)
    {
        _fields.Add(new FieldDecl(Name(name, nameof(name), "field"), FSharpOption<Units>.None, false));
        return this;
    }

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
    /// <exception cref="ArgumentException">Not exactly one of value and positive, only one bound, a bound with
    /// positive, or a bad name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A number is not finite.</exception>
    public ModelBuilder Parameter(
        string name,
        double? value = null,
        double? positive = null,
        double? lower = null,
        double? upper = null,
        bool learnable = true,
        bool spatial = false)
    {
        Name(name, nameof(name), "parameter");
        if (value.HasValue == positive.HasValue)
            throw new ArgumentException(
                $"Parameter '{name}': give exactly one of value (e.g. .Parameter(\"{name}\", 0.5)) and positive (e.g. .Parameter(\"{name}\", positive: 0.5)).",
                value.HasValue ? nameof(positive) : nameof(value));
        if (lower.HasValue != upper.HasValue || (lower.HasValue && positive.HasValue))
            throw new ArgumentException(
                $"Parameter '{name}': bounds need both lower and upper and a plain value, e.g. .Parameter(\"{name}\", 0.5, lower: 0, upper: 1).",
                lower.HasValue ? nameof(upper) : nameof(lower));
        if (value.HasValue) Argument.Finite(value.Value, nameof(value), $".Parameter(\"{name}\", 0.5)");
        if (positive.HasValue) Argument.Finite(positive.Value, nameof(positive), $".Parameter(\"{name}\", positive: 0.5)");
        if (lower.HasValue) Argument.Finite(lower.Value, nameof(lower), $".Parameter(\"{name}\", 0.5, lower: 0, upper: 1)");
        if (upper.HasValue) Argument.Finite(upper.Value, nameof(upper), $".Parameter(\"{name}\", 0.5, lower: 0, upper: 1)");
        var constraint = positive.HasValue ? Constraint.Positive
            : lower.HasValue ? Constraint.NewBounded(lower.Value, upper!.Value)
            : Constraint.Free;
        _params.Add(new ParamDecl(
            name, value ?? positive!.Value, learnable, constraint,
            spatial ? ParamShape.Spatial : ParamShape.Scalar, FSharpOption<Units>.None));
        return this;
    }

    /// <summary>A named constant.</summary>
    /// <exception cref="ArgumentException">A bad name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The value is not finite.</exception>
    public ModelBuilder Constant(string name, double value)
    {
        Name(name, nameof(name), "constant");
        Argument.Finite(value, nameof(value), $".Constant(\"{name}\", 2)");
        _constants.Add(new ConstantDecl(name, value, FSharpOption<Units>.None));
        return this;
    }

    /// <summary>An input given as data under this name at compile time (<see cref="CompileSettings.Forcings"/>).</summary>
    /// <exception cref="ArgumentException">A bad name.</exception>
    public ModelBuilder Forcing(string name)
    {
        _forcings.Add(new ForcingDecl(Name(name, nameof(name), "forcing"), FSharpOption<Units>.None));
        return this;
    }

    /// <summary>
    /// A diagnostic field: not integrated in time but solved at every instant from its elliptic equation
    /// (<see cref="Elliptic"/>), e.g. the streamfunction of the vorticity; it needs boundary conditions on every side and
    /// no initial condition (the text form's <c>field psi diagnostic</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The name is null or not an identifier.</exception>
    public ModelBuilder Diagnostic(string name)
    {
        _diagnostics.Add(new DiagnosticDecl(Name(name, nameof(name), "field"), FSharpOption<Units>.None));
        return this;
    }

    /// <summary>
    /// The elliptic equation of a diagnostic field in text form: <c>"lap(psi) = omega"</c> or <c>"Δpsi = omega"</c>
    /// for Δψ = ω, <c>"lap(psi) - 4*psi = omega"</c> for (Δ − 4)ψ = ω (a number c ≥ 0 times ψ).
    /// </summary>
    /// <exception cref="ArgumentNullException">The text is null.</exception>
    /// <exception cref="ArgumentException">The text holds a line break (one call per equation).</exception>
    /// <exception cref="Hybrid.ParseException">The text is not exactly one elliptic equation (with the column within it).</exception>
    public ModelBuilder Elliptic(string text)
    {
        _elliptic.Add(Parse.ellipticEquation(OneLine(text, nameof(text), ".Elliptic(\"lap(psi) = omega\")")));
        return this;
    }

    /// <summary>
    /// A closure over whole fields <c>name(a, b, …)</c> with <paramref name="outputs"/> outputs: a CNN whose input channels
    /// are the <paramref name="arity"/> arguments, through <paramref name="hidden"/> channels to one channel per output,
    /// convolutions of odd size <paramref name="kernel"/> along every axis (the text form's
    /// <c>closure sgs/2 = cnn [2, 16, 2] kernel 3 tanh</c>). It runs once per right-hand-side evaluation on the whole
    /// fields; equations pick an output with <c>sgs(w, q)[1]</c>, <c>sgs(w, q)[2]</c> (1-based). Intervals and rectangles.
    /// </summary>
    /// <param name="name">Function name used in equations.</param>
    /// <param name="arity">Number of arguments (≥ 1), the input channels.</param>
    /// <param name="hidden">Channels of the hidden layers (each ≥ 1), e.g. <c>new[] { 16 }</c>.</param>
    /// <param name="outputs">Number of outputs (≥ 1), the last layer's channels.</param>
    /// <param name="kernel">Convolution size along each axis, odd and ≥ 1 (default 3).</param>
    /// <param name="activation">Activation between layers (default tanh).</param>
    /// <exception cref="ArgumentException">A bad name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bad arity, width, output count or kernel size.</exception>
    public ModelBuilder CnnClosure(
        string name, int arity, int[] hidden, int outputs = 1, int kernel = 3, ClosureActivation activation = ClosureActivation.Tanh)
    {
        Name(name, nameof(name), "closure");
        ArgumentNullException.ThrowIfNull(hidden);
        Argument.AtLeast(arity, 1, nameof(arity), "a closure takes at least one argument");
        for (var i = 0; i < hidden.Length; i++)
            Argument.AtLeast(hidden[i], 1, $"{nameof(hidden)}[{i}]", "every hidden layer needs at least one channel");
        Argument.AtLeast(outputs, 1, nameof(outputs), "a closure returns at least one output");
        Argument.AtLeast(kernel, 1, nameof(kernel), "a convolution covers at least one cell");
        if (kernel % 2 == 0)
            throw new ArgumentOutOfRangeException(
                nameof(kernel), kernel, $"kernel must be odd (centred on the cell), got {kernel}. Use e.g. kernel: {kernel + 1}.");
        var channels = ListModule.OfSeq(new[] { arity }.Concat(hidden).Append(outputs));
        _closures.Add(new ClosureDecl(name, arity, Architecture.NewCnn(channels, kernel, ToActivation(activation)), FSharpOption<Units>.None));
        return this;
    }

    private static Activation ToActivation(ClosureActivation activation) => activation switch
    {
        ClosureActivation.Tanh => Activation.Tanh,
        ClosureActivation.Relu => Activation.Relu,
        ClosureActivation.Gelu => Activation.Gelu,
        ClosureActivation.Silu => Activation.Silu,
        ClosureActivation.Sigmoid => Activation.Sigmoid,
        ClosureActivation.Softplus => Activation.Softplus,
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation; use a ClosureActivation member, e.g. ClosureActivation.Tanh."),
    };

    /// <summary>
    /// A neural closure <c>name(a, b, …)</c>: an MLP applied pointwise with layer widths from the
    /// <paramref name="arity"/> inputs through <paramref name="hidden"/> to one output.
    /// </summary>
    /// <param name="name">Function name used in equations.</param>
    /// <param name="arity">Number of arguments (≥ 1).</param>
    /// <param name="hidden">Widths of the hidden layers (each ≥ 1), e.g. <c>new[] { 32, 32 }</c>.</param>
    /// <param name="activation">Activation between hidden layers.</param>
    /// <exception cref="ArgumentException">A bad name, arity or width.</exception>
    public ModelBuilder Closure(string name, int arity, int[] hidden, ClosureActivation activation = ClosureActivation.Tanh)
    {
        Name(name, nameof(name), "closure");
        ArgumentNullException.ThrowIfNull(hidden);
        Argument.AtLeast(arity, 1, nameof(arity), "a closure takes at least one argument");
        for (var i = 0; i < hidden.Length; i++)
            Argument.AtLeast(hidden[i], 1, $"{nameof(hidden)}[{i}]", "every hidden layer needs at least one unit");
        var layers = ListModule.OfSeq(new[] { arity }.Concat(hidden).Append(1));
        _closures.Add(new ClosureDecl(name, arity, Architecture.NewMlp(layers, ToActivation(activation)), FSharpOption<Units>.None));
        return this;
    }

    /// <summary>One equation in text form, e.g. <c>"dH/dt = alpha*H - beta*H*L"</c> or <c>"∂u/∂t = D Δu"</c>.</summary>
    /// <exception cref="ArgumentNullException">The text is null.</exception>
    /// <exception cref="ArgumentException">The text holds a line break (one call per equation), or is the elliptic
    /// equation of a diagnostic field (give that to <see cref="Elliptic"/>).</exception>
    /// <exception cref="Hybrid.ParseException">The text is not exactly one equation (with the column within it).</exception>
    public ModelBuilder Equation(string text)
    {
        var line = OneLine(text, nameof(text), ".Equation(\"du/dt = -k*u\")");
        var t = line.TrimStart();
        if (t.StartsWith("Δ", StringComparison.Ordinal) || t.StartsWith("∇²", StringComparison.Ordinal) || Starts(t.Replace("(", " "), "lap"))
            throw new ArgumentException(
                $"\"{line}\" is the elliptic equation of a diagnostic field, not a time equation. Declare the field with .Diagnostic(...) and give its equation with .Elliptic(\"{line}\").",
                nameof(text));
        _equations.Add(Parse.equation(line));
        return this;
    }

    /// <summary>
    /// A boundary condition on every side (<c>"noflux"</c>, <c>"periodic"</c>, <c>"dirichlet 0"</c>,
    /// <c>"neumann 1"</c>) or on one (<c>"left dirichlet 1 - t"</c>). A condition for one side after one for every
    /// side replaces it there.
    /// </summary>
    /// <exception cref="ArgumentException">A bad field name, a line break, an unknown condition, or a second condition
    /// for the same field and side.</exception>
    /// <exception cref="Hybrid.ParseException">The value expression does not parse.</exception>
    public ModelBuilder Boundary(string field, string condition)
    {
        Name(field, nameof(field), "field");
        var words = OneLine(condition, nameof(condition), $".Boundary(\"{field}\", \"noflux\")").Trim();
        Side? side = null;
        foreach (var (word, s) in new[] { ("left", Side.Left), ("right", Side.Right), ("bottom", Side.Bottom), ("top", Side.Top) })
            if (Starts(words, word))
            {
                side = s;
                words = words[word.Length..].TrimStart();
                break;
            }

        BoundaryCondition bc;
        if (words == "noflux") bc = BoundaryCondition.NoFlux;
        else if (words == "periodic") bc = BoundaryCondition.Periodic;
        else if (Starts(words, "dirichlet")) bc = BoundaryCondition.NewDirichlet(Parse.expr(words["dirichlet".Length..]));
        else if (Starts(words, "neumann")) bc = BoundaryCondition.NewNeumann(Parse.expr(words["neumann".Length..]));
        else
            throw new ArgumentException(
                $"Boundary(\"{field}\", \"{condition}\"): expected an optional side (left, right, bottom, top) and a condition (noflux, periodic, dirichlet <expr> or neumann <expr>), e.g. .Boundary(\"{field}\", \"noflux\") or .Boundary(\"{field}\", \"left dirichlet 1\").",
                nameof(condition));

        foreach (var earlier in _boundaries.Where(b => b.Field == field))
        {
            if (side is null && earlier.Side is null)
                throw new ArgumentException(
                    $"A second boundary condition for every side of '{field}'. Keep one, or name a side to change it there, e.g. .Boundary(\"{field}\", \"left noflux\").",
                    nameof(condition));
            if (side is null)
                throw new ArgumentException(
                    $"This call sets every side of '{field}', but an earlier one already set its {earlier.Side!.ToString()!.ToLowerInvariant()} side. Call .Boundary(\"{field}\", …) for every side first: a later call for one side then replaces it there.",
                    nameof(condition));
            if (earlier.Side is { } s && s.Equals(side))
                throw new ArgumentException(
                    $"A second boundary condition for '{field}' on the {s.ToString().ToLowerInvariant()} side. Keep one.",
                    nameof(condition));
        }

        _boundaries.Add((field, side, bc));
        return this;
    }

    private static bool Starts(string text, string word) =>
        text.StartsWith(word, StringComparison.Ordinal) && (text.Length == word.Length || char.IsWhiteSpace(text[word.Length]));

    private ModelBuilder Initial(string field, InitialCondition condition)
    {
        if (_initials.Any(i => i.Field == field) || (_start?.Initials.Any(i => i.Field == field) ?? false))
            throw new ArgumentException($"A second initial condition for '{field}'. Keep one.", nameof(field));
        _initials.Add(new FsInitial(field, condition));
        return this;
    }

    /// <summary>The initial condition of a field as one expression of x, y and parameters, e.g. <c>"exp(-(x - 5)^2)"</c>
    /// or <c>"hare0"</c> (a parameter used here is trained like any other).</summary>
    /// <exception cref="ArgumentException">A bad field name, a line break, or a second initial condition for it.</exception>
    /// <exception cref="Hybrid.ParseException">The text is not exactly one expression.</exception>
    public ModelBuilder Initial(string field, string expression)
    {
        Name(field, nameof(field), "field");
        OneLine(expression, nameof(expression), $".Initial(\"{field}\", \"exp(-x^2)\")");
        return Initial(field, InitialCondition.NewExpr(Parse.expr(expression)));
    }

    /// <summary>The initial condition of a field as a constant.</summary>
    /// <exception cref="ArgumentException">A bad field name, or a second initial condition for it.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The value is not finite.</exception>
    public ModelBuilder Initial(string field, double value)
    {
        Name(field, nameof(field), "field");
        Argument.Finite(value, nameof(value), $".Initial(\"{field}\", 1)");
        return Initial(field, InitialCondition.NewExpr(Expr.NewNum(value)));
    }

    /// <summary>The initial condition of a field as data given at compile time under <paramref name="key"/>
    /// (<see cref="CompileSettings.InitialData"/>; the text form's <c>initial u = data "key"</c>).</summary>
    /// <exception cref="ArgumentException">A bad field name or an empty key, or a second initial condition.</exception>
    public ModelBuilder InitialFromData(string field, string key)
    {
        Name(field, nameof(field), "field");
        ArgumentException.ThrowIfNullOrEmpty(key);
        return Initial(field, InitialCondition.NewFromData(key));
    }

    private static FSharpList<T> Join<T>(FSharpList<T>? start, List<T> added) =>
        ListModule.OfSeq(start is null ? added : start.Concat(added));

    internal Model Unchecked()
    {
        var domain = _domain ?? _start?.Domain ?? FsDomain.Point;
        var sides = Hybrid.ModelModule.sides(domain).ToArray();
        var boundaries = new List<FsBoundary>();
        foreach (var (field, side, bc) in _boundaries)
        {
            if (side is { } one)
            {
                // One side after an every-side call of the same field replaces it there.
                var k = boundaries.FindIndex(b => b.Field == field && b.Side.Equals(one));
                if (k >= 0) boundaries[k] = new FsBoundary(field, one, bc);
                else boundaries.Add(new FsBoundary(field, one, bc));
            }
            else
                boundaries.AddRange(sides.Select(s => new FsBoundary(field, s, bc)));
        }

        return new Model(
            _name ?? _start?.Name ?? "model",
            domain,
            Join(_start?.Fields, _fields),
            Join(_start?.Params, _params),
            Join(_start?.Forcings, _forcings),
            Join(_start?.Closures, _closures),
            Join(_start?.Constants, _constants),
            Join(_start?.Equations, _equations),
            Join(_start?.Boundaries, boundaries),
            Join(_start?.Initials, _initials),
            Join(_start?.Diagnostics, _diagnostics),
            Join(_start?.EllipticEquations, _elliptic));
    }

    /// <summary>The model built so far in the ASCII text form (unchecked).</summary>
    public string ToText() => Print.model(Notation.Ascii, Unchecked());

    /// <summary>Checks the model and returns it.</summary>
    /// <exception cref="Hybrid.ModelException">The model fails its checks; the message names the symbol and the fix.</exception>
    public HybridModel Build() => HybridModel.Checked(Unchecked());
}
