namespace Hybrid

/// Checks of the declarations: names, parameter values and constraints, constants, closures, fast fields.
[<RequireQualifiedAccess>]
module internal DeclarationRules =

    let private builtIns = set ReservedWords.all

    /// Each name is declared once.
    let duplicates (s: CheckScope) : string list = [
        for n, kinds in s.Declarations |> List.groupBy fst do
            if kinds.Length > 1 then
                sprintf
                    "Symbol '%s' is declared %d times (as %s). Keep one declaration or rename the others."
                    n
                    kinds.Length
                    (kinds |> List.map snd |> String.concat ", ")
    ]

    /// Each name is an identifier that is neither a coordinate nor a built-in function.
    let names (s: CheckScope) : string list = [
        for n, kind in s.Declarations do
            if List.contains n Expr.coordinates then
                sprintf "The %s '%s' uses the name of a coordinate (x, y, t). Choose another name." kind n
            elif String.length n = 0 then
                sprintf "A %s has an empty name. Give it a name." kind
            elif
                not (System.Char.IsLetter n[0] || n[0] = '_')
                || not (n |> Seq.forall (fun c -> System.Char.IsLetterOrDigit c || c = '_'))
                || n.Contains 'Δ'
                || n.Contains 'Σ'
            then
                sprintf
                    "The %s name '%s' is not an identifier. Use letters, digits and '_', starting with a letter."
                    kind
                    n
            elif builtIns.Contains n then
                sprintf "The %s '%s' uses a built-in function name. Choose another name." kind n
    ]

    let private parameterValue (syntax: ModelSyntax) (p: ParamDecl) : string list = [
        let bad = System.Double.IsNaN p.Value || System.Double.IsInfinity p.Value

        match p.Constraint with
        | _ when bad -> sprintf "Parameter '%s' has the value %g. Give a finite number." p.Name p.Value
        | Constraint.Free -> ()
        | Constraint.Positive ->
            if p.Value <= 0.0 then
                sprintf
                    "Parameter '%s' is declared positive but its initial value is %g. Give a value > 0, e.g. %s."
                    p.Name
                    p.Value
                    (CheckFixes.positiveParam syntax p.Name)
        | Constraint.Bounded(lo, hi) ->
            if not (lo < hi) then
                sprintf "Parameter '%s' has bounds [%g, %g] with lo ≥ hi. Give lo < hi." p.Name lo hi
            elif p.Value < lo || p.Value > hi then
                sprintf
                    "Parameter '%s' is bounded to [%g, %g] but its initial value is %g. Give a value inside the bounds."
                    p.Name
                    lo
                    hi
                    p.Value
    ]

    /// Each parameter's value is finite and satisfies its constraint; spatial parameters need a spatial
    /// domain.
    let parameters (s: CheckScope) : string list = [
        for p in s.Model.Params do
            yield! parameterValue s.Syntax p

            if p.Shape = ParamShape.Spatial && s.Dims = 0 then
                sprintf
                    "Parameter '%s' is spatial but the domain is a %s. Make it scalar or declare an interval or rectangle domain, e.g. %s."
                    p.Name
                    (CheckWording.domainName s.Model.Domain)
                    (CheckFixes.interval s.Syntax)
    ]

    /// Each constant is finite.
    let constants (s: CheckScope) : string list = [
        for c in s.Model.Constants do
            if System.Double.IsNaN c.Value || System.Double.IsInfinity c.Value then
                sprintf "Constant '%s' has the value %g. Give a finite number." c.Name c.Value
    ]

    /// Each closure takes at least one argument and its network fits its arity.
    let closures (s: CheckScope) : string list = [
        for c in s.Model.Closures do
            if c.Arity < 1 then
                sprintf "Closure '%s' has arity %d. Give at least 1 argument." c.Name c.Arity

            match c.Architecture with
            | Architecture.Mlp(layers, _) ->
                if layers.Length < 2 then
                    sprintf
                        "Closure '%s' has an MLP with %d layer widths. Give inputs and output, e.g. %s."
                        c.Name
                        layers.Length
                        (CheckFixes.mlp s.Syntax c.Arity)
                elif layers.Head <> c.Arity || List.last layers <> 1 then
                    sprintf
                        "Closure '%s' takes %d arguments but its MLP is [%s]. The first width must be %d and the last 1, e.g. %s."
                        c.Name
                        c.Arity
                        (layers
                         |> List.map string
                         |> String.concat (if s.Syntax = ModelSyntax.Builder then "; " else ", "))
                        c.Arity
                        (CheckFixes.mlp s.Syntax c.Arity)
                elif layers |> List.exists (fun w -> w < 1) then
                    sprintf "Closure '%s' has a layer of width < 1. Give positive widths." c.Name
            | Architecture.Named name ->
                if System.String.IsNullOrWhiteSpace name then
                    sprintf "Closure '%s' names an empty module. Give the module's name." c.Name
            | Architecture.Cnn(channels, kernel, _) ->
                let sep = if s.Syntax = ModelSyntax.Builder then "; " else ", "

                let example =
                    if s.Syntax = ModelSyntax.Builder then
                        "cnn [2; 16; 2]"
                    else
                        "cnn [2, 16, 2]"

                if channels.Length < 2 then
                    sprintf
                        "Closure '%s' has a CNN with %d channel widths. Give the inputs (= arity) and outputs, e.g. %s."
                        c.Name
                        channels.Length
                        example
                elif channels.Head <> c.Arity then
                    sprintf
                        "Closure '%s' takes %d arguments but its CNN is [%s]. The first channel width is the number of arguments: make it %d."
                        c.Name
                        c.Arity
                        (channels |> List.map string |> String.concat sep)
                        c.Arity
                elif channels |> List.exists (fun w -> w < 1) then
                    sprintf "Closure '%s' has a CNN layer of width < 1. Give positive channel widths." c.Name

                if kernel < 1 || kernel % 2 = 0 then
                    sprintf
                        "Closure '%s' has a CNN kernel of size %d. Give an odd positive size (e.g. 3 or 5) so that the output stays centred on its cell."
                        c.Name
                        kernel
            | Architecture.NamedField(name, outputs) ->
                if System.String.IsNullOrWhiteSpace name then
                    sprintf "Closure '%s' names an empty module. Give the module's name." c.Name

                if outputs < 1 then
                    sprintf "Closure '%s' has %d outputs. Give at least 1." c.Name outputs

            if Model.isFieldwise c then
                match s.Model.Domain with
                | Domain.Interval _
                | Domain.Rectangle _
                | Domain.Lattice(_, 0) -> ()
                | _ ->
                    sprintf
                        "Closure '%s' runs on whole fields (a CNN) but the domain is a %s. Use an interval, a rectangle or a lattice without fast sites, or a pointwise closure (e.g. %s)."
                        c.Name
                        (CheckWording.domainName s.Model.Domain)
                        (CheckFixes.mlp s.Syntax c.Arity)
    ]

    /// Fast fields need a lattice with a fast sub-lattice.
    let fastFields (s: CheckScope) : string list = [
        for f in s.Model.Fields do
            if f.Fast && not s.FastLattice then
                sprintf
                    "Field '%s' is fast but the domain has no fast sub-lattice. Declare %s with J > 0, or make it a normal field (%s)."
                    f.Name
                    (CheckFixes.twoScaleLattice s.Syntax)
                    (CheckFixes.field s.Syntax f.Name)
    ]
