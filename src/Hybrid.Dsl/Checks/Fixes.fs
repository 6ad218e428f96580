namespace Hybrid

/// The code that the checks' messages suggest, written in the syntax the model came from (`ModelSyntax`):
/// builder code for the `model { }` builder, statements of the text form for `Parse.model`, calls of the C#
/// facade's `ModelBuilder` for models it builds. A text-form
/// statement with concrete values (`boundary u noflux`, `initial u = 0`, `param k = 0.1 positive`,
/// `closure f/1 = mlp [1, 32, 1]`, `domain interval [0, 1] cells 100`) parses as it stands; "...", K and J are
/// placeholders for the user to fill in.
[<RequireQualifiedAccess>]
module internal CheckFixes =

    /// A boundary condition on every side: `boundary "u" noFlux` / `boundary u noflux`.
    let boundary (syntax: ModelSyntax) (field: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "boundary \"%s\" noFlux" field
        | ModelSyntax.Text -> sprintf "boundary %s noflux" field
        | ModelSyntax.CSharp -> sprintf ".Boundary(\"%s\", \"noflux\")" field

    /// The ways to give an initial condition, as the end of "Add one, e.g. …".
    let initial (syntax: ModelSyntax) (field: string) =
        match syntax with
        | ModelSyntax.Builder ->
            sprintf
                "initialValue \"%s\" 0.0 or initial \"%s\" (fun x -> ...), or initialData \"%s\" \"%s0\" for values given as data"
                field
                field
                field
                field
        | ModelSyntax.Text ->
            sprintf
                "initial %s = 0 (any expression of x, y and the parameters), or initial %s = data \"%s0\" for values given as data"
                field
                field
                field
        | ModelSyntax.CSharp ->
            sprintf
                ".Initial(\"%s\", 0) or .Initial(\"%s\", \"...\") (any expression of x, y and the parameters), or .InitialFromData(\"%s\", \"%s0\") for values given as data"
                field
                field
                field
                field

    /// An equation with a placeholder right-hand side: `equation (dt u == ...)` / `du/dt = ...`.
    let equation (syntax: ModelSyntax) (field: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "equation (dt %s == ...)" field
        | ModelSyntax.Text -> sprintf "d%s/dt = ..." field
        | ModelSyntax.CSharp -> sprintf ".Equation(\"d%s/dt = ...\")" field

    /// A field declaration: `field "u"` / `field u`.
    let field (syntax: ModelSyntax) (name: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "field \"%s\"" name
        | ModelSyntax.Text -> sprintf "field %s" name
        | ModelSyntax.CSharp -> sprintf ".Field(\"%s\")" name

    /// A fast field declaration: `fastField "Y"` / `field Y fast`.
    let fastField (syntax: ModelSyntax) (name: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "fastField \"%s\"" name
        | ModelSyntax.Text -> sprintf "field %s fast" name
        | ModelSyntax.CSharp ->
            sprintf
                "field %s fast (in model text: the C# builder has no fast fields; use HybridModel.BuilderFromText)"
                name

    /// A positive parameter: `param "D" (positive 0.1)` / `param D = 0.1 positive`.
    let positiveParam (syntax: ModelSyntax) (name: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "param \"%s\" (positive 0.1)" name
        | ModelSyntax.Text -> sprintf "param %s = 0.1 positive" name
        | ModelSyntax.CSharp -> sprintf ".Parameter(\"%s\", positive: 0.1)" name

    /// The declaration keywords of symbols used in expressions.
    let declarationKinds (syntax: ModelSyntax) =
        match syntax with
        | ModelSyntax.Builder -> "field, param, forcing or constant"
        | ModelSyntax.Text -> "field, param, forcing or const"
        | ModelSyntax.CSharp -> ".Field, .Parameter, .Forcing or .Constant"

    /// An MLP with `arity` inputs, 32 hidden units and one output: `mlp [2; 32; 1]` / `mlp [2, 32, 1]`.
    let mlp (syntax: ModelSyntax) (arity: int) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "mlp [%d; 32; 1]" arity
        | ModelSyntax.Text -> sprintf "mlp [%d, 32, 1]" arity
        | ModelSyntax.CSharp -> sprintf "%d inputs, hidden: new[] { 32 }" arity

    /// A closure declaration: `neural "f" (mlp [2; 32; 1])` / `closure f/2 = mlp [2, 32, 1]`.
    let closure (syntax: ModelSyntax) (name: string) (arity: int) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "neural \"%s\" (%s)" name (mlp syntax arity)
        | ModelSyntax.Text -> sprintf "closure %s/%d = %s" name arity (mlp syntax arity)
        | ModelSyntax.CSharp -> sprintf ".Closure(\"%s\", %d, new[] { 32 })" name arity

    /// Output `index` of a closure with several outputs, called with `args`: `callOutput "f" 1 [u; v]` /
    /// `f(u, v)[1]` (the C# facade declares models as text).
    let callOutput (syntax: ModelSyntax) (name: string) (index: int) (args: Expr list) =
        match syntax with
        | ModelSyntax.Builder ->
            sprintf
                "callOutput \"%s\" %d [ %s ]"
                name
                index
                (args |> List.map (Print.expr Notation.Ascii) |> String.concat "; ")
        | ModelSyntax.Text
        | ModelSyntax.CSharp -> Print.expr Notation.Unicode (CallOutput(name, index, args))

    /// A call of a closure with one argument: `call "f" [u]` / `f(u)`.
    let call (syntax: ModelSyntax) (name: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "call \"%s\" [ u ]" name
        | ModelSyntax.Text -> sprintf "%s(u)" name
        | ModelSyntax.CSharp -> sprintf "%s(u)" name

    /// A 1-D interval domain: `domain (interval 0.0 1.0) (cells 100)` / `domain interval [0, 1] cells 100`.
    let interval (syntax: ModelSyntax) =
        match syntax with
        | ModelSyntax.Builder -> "domain (interval 0.0 1.0) (cells 100)"
        | ModelSyntax.Text -> "domain interval [0, 1] cells 100"
        | ModelSyntax.CSharp -> ".Interval(0, 1, 100)"

    /// A 2-D rectangle domain.
    let rectangle (syntax: ModelSyntax) =
        match syntax with
        | ModelSyntax.Builder -> "domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 64 64)"
        | ModelSyntax.Text -> "domain rectangle [0, 1] x [0, 1] cells 64 x 64"
        | ModelSyntax.CSharp -> ".Rectangle(0, 1, 0, 1, 64, 64)"

    /// A periodic lattice of `sites` sites (a number, or a letter standing for one).
    let lattice (syntax: ModelSyntax) (sites: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "domain (lattice %s)" sites
        | ModelSyntax.Text -> sprintf "domain lattice %s" sites
        | ModelSyntax.CSharp -> sprintf "domain lattice %s (in model text: use HybridModel.BuilderFromText)" sites

    /// A lattice with fast sites: `domain (twoScaleLattice K J)` / `domain lattice K x J`.
    let twoScaleLattice (syntax: ModelSyntax) =
        match syntax with
        | ModelSyntax.Builder -> "domain (twoScaleLattice K J)"
        | ModelSyntax.Text -> "domain lattice K x J"
        | ModelSyntax.CSharp -> "domain lattice K x J (in model text: use HybridModel.BuilderFromText)"

    /// The fast sum around an expression: `sumFast (...)` / `Σ_j(...)`.
    let fastSum (syntax: ModelSyntax) =
        match syntax with
        | ModelSyntax.Builder -> "sumFast (...)"
        | ModelSyntax.Text -> "Σ_j(...) (sum_j(...) in ASCII)"
        | ModelSyntax.CSharp -> "Σ_j(...) (sum_j(...) in ASCII)"

    /// A diagnostic field declaration: `diagnostic "psi"` / `field psi diagnostic`.
    let diagnostic (syntax: ModelSyntax) (name: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "diagnostic \"%s\"" name
        | ModelSyntax.Text -> sprintf "field %s diagnostic" name
        | ModelSyntax.CSharp -> sprintf ".Diagnostic(\"%s\")" name

    /// A diagnostic field's elliptic equation: `equation (poisson psi == ...)` / `Δpsi = ...`.
    let ellipticEquation (syntax: ModelSyntax) (name: string) =
        match syntax with
        | ModelSyntax.Builder -> sprintf "equation (poisson %s == ...)" name
        | ModelSyntax.Text -> sprintf "Δ%s = ... (lap(%s) = ... in ASCII)" name name
        | ModelSyntax.CSharp -> sprintf ".Elliptic(\"lap(%s) = ...\")" name
