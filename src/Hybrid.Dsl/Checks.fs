namespace Hybrid

/// The checks every model passes when it is built (by the builder, the parser, or `validate` by hand). Each
/// problem names the symbol, the problem and the fix.
[<RequireQualifiedAccess>]
module Checks =

    let private suggest (name: string) (candidates: string list) = Suggest.didYouMean name candidates

    let private sideName (s: Side) =
        match s with
        | Side.Left -> "left"
        | Side.Right -> "right"
        | Side.Bottom -> "bottom"
        | Side.Top -> "top"

    let private domainName (d: Domain) =
        match d with
        | Domain.Point -> "0-D model"
        | Domain.Interval _ -> "1-D interval"
        | Domain.Rectangle _ -> "2-D rectangle"
        | Domain.Lattice _ -> "periodic lattice"

    let private term (e: Expr) = Print.expr Notation.Unicode e

    // ---------------------------------------------------------------- units

    let private dimOf (u: Units option) : Dimension option = u |> Option.map Units.dimension

    let private combine (a: Dimension) (b: Dimension) (sign: int) : Dimension =
        let keys = Seq.append a.Keys b.Keys |> Seq.distinct

        keys
        |> Seq.map (fun k -> k, (defaultArg (a.TryFind k) 0) + sign * (defaultArg (b.TryFind k) 0))
        |> Seq.filter (fun (_, v) -> v <> 0)
        |> Map.ofSeq

    let private scale (a: Dimension) (k: int) : Dimension =
        a |> Map.map (fun _ v -> v * k) |> Map.filter (fun _ v -> v <> 0)

    let private length: Dimension = Map.ofList [ "L", 1 ]
    let private time: Dimension = Map.ofList [ "T", 1 ]

    /// Infers the dimension of an expression (None when a symbol without units makes it unknown), adding a
    /// message to `problems` for every inconsistency found inside it.
    let private infer (m: Model) (where: string) (problems: ResizeArray<string>) (e: Expr) : Dimension option =
        let lookup (n: string) : Dimension option =
            let fromField =
                m.Fields
                |> List.tryFind (fun f -> f.Name = n)
                |> Option.bind (fun f -> dimOf f.Units)

            let fromParam =
                m.Params
                |> List.tryFind (fun f -> f.Name = n)
                |> Option.bind (fun f -> dimOf f.Units)

            let fromForcing =
                m.Forcings
                |> List.tryFind (fun f -> f.Name = n)
                |> Option.bind (fun f -> dimOf f.Units)

            let fromConst =
                m.Constants
                |> List.tryFind (fun f -> f.Name = n)
                |> Option.bind (fun f -> dimOf f.Units)

            [ fromField; fromParam; fromForcing; fromConst ] |> List.tryPick id

        let dimensionless (what: string) (e: Expr) (d: Dimension option) =
            match d with
            | Some d when not d.IsEmpty ->
                problems.Add(
                    sprintf
                        "Units: in %s, %s needs a dimensionless argument but '%s' has units %s. Divide it by a reference value with the same units."
                        where
                        what
                        (term e)
                        (Units.formatDimension d)
                )
            | _ -> ()

        let rec go (e: Expr) : Dimension option =
            match e with
            | Num _ -> Some Map.empty
            | Sym n -> lookup n
            | Shift(n, _, _) -> lookup n
            | Neg a -> go a
            | Add(a, b)
            | Sub(a, b)
            | Min(a, b)
            | Max(a, b) ->
                match go a, go b with
                | Some da, Some db when da <> db ->
                    problems.Add(
                        sprintf
                            "Units: in %s, '%s' has units %s but '%s' has units %s; both sides of + − min max must agree. Fix the units of a symbol or add a conversion factor."
                            where
                            (term a)
                            (Units.formatDimension da)
                            (term b)
                            (Units.formatDimension db)
                    )

                    Some da
                | Some da, _ -> Some da
                | None, db -> db
            | Mul(a, b) ->
                match go a, go b with
                | Some da, Some db -> Some(combine da db 1)
                | _ -> None
            | Div(a, b) ->
                match go a, go b with
                | Some da, Some db -> Some(combine da db -1)
                | _ -> None
            | PowInt(a, k) -> go a |> Option.map (fun d -> scale d k)
            | PowReal(a, b) ->
                let da = go a
                let db = go b
                dimensionless "a real exponent" b db
                dimensionless "the base of a real power" a da
                da |> Option.map (fun _ -> Map.empty)
            | Apply(Fn.Abs, a) -> go a
            | Apply(Fn.Sqrt, a) ->
                match go a with
                | Some d when d |> Map.forall (fun _ v -> v % 2 = 0) -> Some(d |> Map.map (fun _ v -> v / 2))
                | Some d ->
                    problems.Add(
                        sprintf
                            "Units: in %s, sqrt of '%s' with units %s has no integer units. Check the units of its symbols."
                            where
                            (term a)
                            (Units.formatDimension d)
                    )

                    None
                | None -> None
            | Apply(fn, a) ->
                dimensionless (Print.fnName fn) a (go a)
                Some Map.empty
            | Call(n, args) ->
                args |> List.iter (go >> ignore)

                m.Closures
                |> List.tryFind (fun c -> c.Name = n)
                |> Option.bind (fun c -> dimOf c.Units)
            | Partial(_, a)
            | Grad a
            | Divergence a -> go a |> Option.map (fun d -> combine d length -1)
            | Laplacian a -> go a |> Option.map (fun d -> combine d (scale length 2) -1)
            | Advect(vs, u) ->
                let dv = vs |> List.map go
                let du = go u

                match dv, du with
                | Some d :: _, Some d' -> Some(combine (combine d d' 1) length -1)
                | _ -> None
            | FastSum a -> go a

        go e

    let rec private additiveTerms (e: Expr) : Expr list =
        match e with
        | Add(a, b)
        | Sub(a, b) -> additiveTerms a @ additiveTerms b
        | Neg a -> additiveTerms a
        | _ -> [ e ]

    let private unitProblems (m: Model) (problems: ResizeArray<string>) =
        for eq in m.Equations do
            match m.Fields |> List.tryFind (fun f -> f.Name = eq.Field) with
            | Some { Units = Some u } ->
                let expected = combine (Units.dimension u) time -1
                let where = sprintf "the equation of '%s'" eq.Field

                for t in additiveTerms eq.Rhs do
                    match infer m where problems t with
                    | Some d when d <> expected ->
                        problems.Add(
                            sprintf
                                "Units: in the equation of '%s', the term '%s' has units %s but ∂%s/∂t has units %s (%s per time). Fix the units of the symbols in that term."
                                eq.Field
                                (term t)
                                (Units.formatDimension d)
                                eq.Field
                                (Units.formatDimension expected)
                                (Units.format u)
                        )
                    | _ -> ()
            | _ -> infer m (sprintf "the equation of '%s'" eq.Field) problems eq.Rhs |> ignore

    // ---------------------------------------------------------------- structure

    /// All problems with a model, each a sentence naming the symbol, the problem and the fix; empty when
    /// the model is well formed.
    let problems (m: Model) : string list =
        let out = ResizeArray<string>()
        let add (s: string) = out.Add s
        let decls = Model.declarations m
        let names = decls |> List.map fst

        let kindOf n =
            decls |> List.tryFind (fun (d, _) -> d = n) |> Option.map snd

        let isField n =
            m.Fields |> List.exists (fun f -> f.Name = n)

        let isClosure n =
            m.Closures |> List.exists (fun c -> c.Name = n)

        let dims = Model.spatialDims m.Domain

        // Domain
        match m.Domain with
        | Domain.Point -> ()
        | Domain.Interval(a, b, c) ->
            if not (a < b) then
                add (sprintf "The interval [%g, %g] is empty. Give x0 < x1, e.g. interval 0.0 1.0." a b)

            if c < 1 then
                add (sprintf "The interval has %d cells. Give at least 1, e.g. cells 100." c)
        | Domain.Rectangle(a, b, c, d, nx, ny) ->
            if not (a < b) || not (c < d) then
                add (sprintf "The rectangle [%g, %g] × [%g, %g] is empty. Give x0 < x1 and y0 < y1." a b c d)

            if nx < 1 || ny < 1 then
                add (sprintf "The rectangle has %d × %d cells. Give at least 1 along each axis." nx ny)
        | Domain.Lattice(k, j) ->
            if k < 1 then
                add (sprintf "The lattice has %d sites. Give at least 1, e.g. lattice 40." k)

            if j < 0 then
                add (sprintf "The lattice has %d fast sites per slow site. Give 0 (none) or more." j)

        if m.Fields.IsEmpty then
            add "The model has no fields. Declare at least one, e.g. field \"u\", with its equation."

        // Declarations
        for n, kinds in decls |> List.groupBy fst do
            if kinds.Length > 1 then
                add (
                    sprintf
                        "Symbol '%s' is declared %d times (as %s). Keep one declaration or rename the others."
                        n
                        kinds.Length
                        (kinds |> List.map snd |> String.concat ", ")
                )

        for n, kind in decls do
            if List.contains n Expr.coordinates then
                add (sprintf "The %s '%s' uses the name of a coordinate (x, y, t). Choose another name." kind n)
            elif String.length n = 0 then
                add (sprintf "A %s has an empty name. Give it a name." kind)
            elif
                not (System.Char.IsLetter n[0] || n[0] = '_')
                || not (n |> Seq.forall (fun c -> System.Char.IsLetterOrDigit c || c = '_'))
                || n.Contains 'Δ'
                || n.Contains 'Σ'
            then
                add (
                    sprintf
                        "The %s name '%s' is not an identifier. Use letters, digits and '_', starting with a letter."
                        kind
                        n
                )
            elif
                List.contains n [
                    "exp"
                    "log"
                    "sqrt"
                    "abs"
                    "sin"
                    "cos"
                    "tanh"
                    "sigmoid"
                    "softplus"
                    "min"
                    "max"
                    "grad"
                    "div"
                    "lap"
                    "dx"
                    "dy"
                    "advect"
                    "sum_j"
                ]
            then
                add (sprintf "The %s '%s' uses a built-in function name. Choose another name." kind n)

        for p in m.Params do
            let bad = System.Double.IsNaN p.Value || System.Double.IsInfinity p.Value

            match p.Constraint with
            | _ when bad -> add (sprintf "Parameter '%s' has the value %g. Give a finite number." p.Name p.Value)
            | Constraint.Free -> ()
            | Constraint.Positive ->
                if p.Value <= 0.0 then
                    add (
                        sprintf
                            "Parameter '%s' is declared positive but its initial value is %g. Give a value > 0, e.g. param \"%s\" (positive 0.1)."
                            p.Name
                            p.Value
                            p.Name
                    )
            | Constraint.Bounded(lo, hi) ->
                if not (lo < hi) then
                    add (sprintf "Parameter '%s' has bounds [%g, %g] with lo ≥ hi. Give lo < hi." p.Name lo hi)
                elif p.Value < lo || p.Value > hi then
                    add (
                        sprintf
                            "Parameter '%s' is bounded to [%g, %g] but its initial value is %g. Give a value inside the bounds."
                            p.Name
                            lo
                            hi
                            p.Value
                    )

            if p.Shape = ParamShape.Spatial && dims = 0 then
                add (
                    sprintf
                        "Parameter '%s' is spatial but the domain is a %s. Make it scalar or declare an interval or rectangle domain."
                        p.Name
                        (domainName m.Domain)
                )

        for c in m.Constants do
            if System.Double.IsNaN c.Value || System.Double.IsInfinity c.Value then
                add (sprintf "Constant '%s' has the value %g. Give a finite number." c.Name c.Value)

        for c in m.Closures do
            if c.Arity < 1 then
                add (sprintf "Closure '%s' has arity %d. Give at least 1 argument." c.Name c.Arity)

            match c.Architecture with
            | Architecture.Mlp(layers, _) ->
                if layers.Length < 2 then
                    add (
                        sprintf
                            "Closure '%s' has an MLP with %d layer widths. Give inputs and output, e.g. mlp [%d; 32; 1]."
                            c.Name
                            layers.Length
                            c.Arity
                    )
                elif layers.Head <> c.Arity || List.last layers <> 1 then
                    add (
                        sprintf
                            "Closure '%s' takes %d arguments but its MLP is [%s]. The first width must be %d and the last 1, e.g. mlp [%d; 32; 1]."
                            c.Name
                            c.Arity
                            (layers |> List.map string |> String.concat "; ")
                            c.Arity
                            c.Arity
                    )
                elif layers |> List.exists (fun w -> w < 1) then
                    add (sprintf "Closure '%s' has a layer of width < 1. Give positive widths." c.Name)
            | Architecture.Named s ->
                if System.String.IsNullOrWhiteSpace s then
                    add (sprintf "Closure '%s' names an empty module. Give the module's name." c.Name)

        let fastLattice =
            match m.Domain with
            | Domain.Lattice(_, j) -> j > 0
            | _ -> false

        for f in m.Fields do
            if f.Fast && not fastLattice then
                add (
                    sprintf
                        "Field '%s' is fast but the domain has no fast sub-lattice. Declare domain (lattice K J) with J > 0, or make it a normal field."
                        f.Name
                )

        let isFast n =
            m.Fields |> List.exists (fun f -> f.Name = n && f.Fast)

        // Equations
        for f in m.Fields do
            match m.Equations |> List.filter (fun e -> e.Field = f.Name) with
            | [] ->
                add (
                    sprintf
                        "Field '%s' has no equation. Add one, e.g. equation (dt %s == ...) or d%s/dt = ...."
                        f.Name
                        f.Name
                        f.Name
                )
            | [ _ ] -> ()
            | many -> add (sprintf "Field '%s' has %d equations. Keep exactly one." f.Name many.Length)

        for eq in m.Equations do
            if not (isField eq.Field) then
                add (
                    sprintf
                        "There is an equation for '%s', which is not a declared field%s. Declare it with field \"%s\".%s"
                        eq.Field
                        (match kindOf eq.Field with
                         | Some k -> sprintf " (it is a %s)" k
                         | None -> "")
                        eq.Field
                        (suggest eq.Field (m.Fields |> List.map (fun f -> f.Name)))
                )

        // Symbols inside expressions
        let checkExpr (where: string) (allowed: string -> bool) (allowedWhy: string) (e: Expr) =
            for s in Expr.subterms e do
                match s with
                | Sym n ->
                    if isClosure n then
                        add (sprintf "Closure '%s' is used without arguments in %s. Call it, e.g. %s(u)." n where n)
                    elif List.contains n Expr.coordinates then
                        ()
                    elif not (List.contains n names) then
                        add (
                            sprintf
                                "Undefined symbol '%s' in %s. Declare it (field, param, forcing or const) or fix the spelling.%s"
                                n
                                where
                                (suggest n names)
                        )
                    elif not (allowed n) then
                        add (sprintf "'%s' cannot be used in %s: %s." n where allowedWhy)
                | Call(n, args) ->
                    match m.Closures |> List.tryFind (fun c -> c.Name = n) with
                    | Some c when c.Arity <> args.Length ->
                        add (
                            sprintf
                                "Closure '%s' takes %d argument%s but is called with %d in %s. Call it with %d, or declare it with arity %d."
                                n
                                c.Arity
                                (if c.Arity = 1 then "" else "s")
                                args.Length
                                where
                                c.Arity
                                args.Length
                        )
                    | Some _ -> ()
                    | None ->
                        match kindOf n with
                        | Some k ->
                            add (
                                sprintf
                                    "'%s' is a %s, not a closure, but %s calls it as '%s(...)'. For a product write %s*(...) or put a space before '('."
                                    n
                                    k
                                    where
                                    n
                                    n
                            )
                        | None ->
                            add (
                                sprintf
                                    "Closure '%s' is called in %s but not declared. Declare it, e.g. neural \"%s\" (mlp [%d; 32; 1]) or closure %s/%d = mlp [%d, 32, 1].%s"
                                    n
                                    where
                                    n
                                    args.Length
                                    n
                                    args.Length
                                    args.Length
                                    (suggest n (m.Closures |> List.map (fun c -> c.Name)))
                            )
                | Shift(n, ix, _) ->
                    if not (isField n) then
                        add (
                            sprintf
                                "'%s[...]' in %s shifts '%s', which is not a field. Only fields can be shifted."
                                n
                                where
                                n
                        )

                    match m.Domain with
                    | Domain.Lattice _ ->
                        if ix = LatticeIndex.J && not (isFast n) && isField n then
                            add (
                                sprintf
                                    "'%s' is a slow field but is shifted along the fast index j in %s. Use %s[k+m], or declare it fast."
                                    n
                                    where
                                    n
                            )
                        elif ix = LatticeIndex.K && isFast n then
                            add (
                                sprintf
                                    "'%s' is a fast field but is shifted along the slow index k in %s. Use %s[j+m]."
                                    n
                                    where
                                    n
                            )
                    | _ ->
                        add (
                            sprintf
                                "Lattice shift '%s' in %s needs a periodic lattice domain, but the domain is a %s. Declare domain (lattice K) or use spatial operators."
                                (term s)
                                where
                                (domainName m.Domain)
                        )
                | Num v when System.Double.IsNaN v || System.Double.IsInfinity v ->
                    add (
                        sprintf
                            "%s contains the number %g. Use finite numbers."
                            (System.Char.ToUpper(where[0]).ToString() + where.Substring 1)
                            v
                    )
                | FastSum _ ->
                    if not fastLattice then
                        add (
                            sprintf
                                "The fast sum Σ_j in %s needs a lattice with fast sites (domain lattice K x J). Declare one or remove the sum."
                                where
                        )
                | Partial(Axis.Y, _) when dims < 2 ->
                    add (
                        sprintf
                            "%s uses ∂/∂y but the domain is a %s. Use a 2-D rectangle domain or remove the operator."
                            (System.Char.ToUpper(where[0]).ToString() + where.Substring 1)
                            (domainName m.Domain)
                    )
                | Partial _
                | Grad _
                | Divergence _
                | Laplacian _
                | Advect _ when dims = 0 ->
                    add (
                        sprintf
                            "%s uses the spatial operator '%s' but the domain is a %s. Declare a spatial domain, e.g. domain (interval 0.0 1.0) (cells 100), or remove the operator."
                            (System.Char.ToUpper(where[0]).ToString() + where.Substring 1)
                            (term s)
                            (domainName m.Domain)
                    )
                | Advect(vs, _) when vs.Length <> dims ->
                    add (
                        sprintf
                            "Advection '%s' in %s has %d velocity component%s but the domain has %d dimension%s. Give one component per axis."
                            (term s)
                            where
                            vs.Length
                            (if vs.Length = 1 then "" else "s")
                            dims
                            (if dims = 1 then "" else "s")
                    )
                | _ -> ()

        for eq in m.Equations do
            let where = sprintf "the equation of '%s'" eq.Field
            checkExpr where (fun _ -> true) "" eq.Rhs

            if not (isFast eq.Field) && fastLattice then
                // A fast field in a slow equation must sit inside Σ_j (there is no single fast value per slow site).
                let rec outsideSum (e: Expr) =
                    match e with
                    | FastSum _ -> []
                    | Sym n when isFast n -> [ n ]
                    | Shift(n, _, _) when isFast n -> [ n ]
                    | _ -> Expr.children e |> List.collect outsideSum

                for n in outsideSum eq.Rhs |> List.distinct do
                    add (
                        sprintf
                            "The fast field '%s' appears in the equation of the slow field '%s' outside a fast sum. Wrap it in Σ_j(...) (sum_j in ASCII)."
                            n
                            eq.Field
                    )

            if isFast eq.Field then
                for s in Expr.subterms eq.Rhs do
                    match s with
                    | FastSum _ ->
                        add (
                            sprintf
                                "The fast sum Σ_j appears in the equation of the fast field '%s'. Use it in slow equations only."
                                eq.Field
                        )
                    | _ -> ()

        let notField n = not (isField n)

        // Initial conditions
        for f in m.Fields do
            if not (m.Initials |> List.exists (fun i -> i.Field = f.Name)) then
                add (
                    sprintf
                        "Field '%s' has no initial condition. Add one, e.g. initial \"%s\" (fun x -> ...) or initial %s = data \"%s0\"."
                        f.Name
                        f.Name
                        f.Name
                        f.Name
                )

        for i in m.Initials do
            if not (isField i.Field) then
                add (
                    sprintf
                        "There is an initial condition for '%s', which is not a declared field. Declare it with field \"%s\" or remove it.%s"
                        i.Field
                        i.Field
                        (suggest i.Field (m.Fields |> List.map (fun f -> f.Name)))
                )

            match i.Value with
            | InitialCondition.Expr e ->
                checkExpr
                    (sprintf "the initial condition of '%s'" i.Field)
                    notField
                    "initial conditions may use coordinates, parameters, constants and forcings, not fields"
                    e
            | InitialCondition.FromData key ->
                if System.String.IsNullOrWhiteSpace key then
                    add (sprintf "The initial condition of '%s' names no data. Give the data key." i.Field)

        match
            m.Initials
            |> List.countBy (fun i -> i.Field)
            |> List.tryFind (fun (_, k) -> k > 1)
        with
        | Some(f, k) -> add (sprintf "Field '%s' has %d initial conditions. Keep one." f k)
        | None -> ()

        // Boundary conditions
        let sides = Model.sides m.Domain

        if sides.IsEmpty then
            for b in m.Boundaries |> List.distinctBy (fun b -> b.Field) do
                add (
                    sprintf
                        "Field '%s' has a boundary condition but the domain is a %s, which has no sides. Remove it, or declare an interval or rectangle domain."
                        b.Field
                        (domainName m.Domain)
                )
        else
            for b in m.Boundaries do
                if not (isField b.Field) then
                    add (
                        sprintf
                            "There is a boundary condition for '%s', which is not a declared field. Declare it or remove the condition.%s"
                            b.Field
                            (suggest b.Field (m.Fields |> List.map (fun f -> f.Name)))
                    )
                elif not (List.contains b.Side sides) then
                    add (
                        sprintf
                            "Field '%s' has a boundary condition on the %s side, which a %s does not have. Remove it."
                            b.Field
                            (sideName b.Side)
                            (domainName m.Domain)
                    )

                match b.Condition with
                | BoundaryCondition.Dirichlet e
                | BoundaryCondition.Neumann e ->
                    checkExpr
                        (sprintf "the %s boundary condition of '%s'" (sideName b.Side) b.Field)
                        notField
                        "boundary values may use coordinates, t, parameters, constants and forcings, not fields"
                        e
                | _ -> ()

            for f in m.Fields do
                let bcs = m.Boundaries |> List.filter (fun b -> b.Field = f.Name)

                for s in sides do
                    match bcs |> List.filter (fun b -> b.Side = s) with
                    | [] ->
                        add (
                            sprintf
                                "Field '%s' has no boundary condition on the %s side of the %s. Add one, e.g. boundary \"%s\" noFlux."
                                f.Name
                                (sideName s)
                                (domainName m.Domain)
                                f.Name
                        )
                    | [ _ ] -> ()
                    | _ ->
                        add (
                            sprintf
                                "Field '%s' has several boundary conditions on the %s side. Keep one."
                                f.Name
                                (sideName s)
                        )

                let periodic s =
                    bcs
                    |> List.exists (fun b -> b.Side = s && b.Condition = BoundaryCondition.Periodic)

                for a, b in [ Side.Left, Side.Right; Side.Bottom, Side.Top ] do
                    if List.contains a sides && periodic a <> periodic b then
                        add (
                            sprintf
                                "Field '%s' is periodic on the %s side but not on the %s side. Periodic conditions come in pairs: set both."
                                f.Name
                                (sideName (if periodic a then a else b))
                                (sideName (if periodic a then b else a))
                        )

        // Units (only meaningful once symbols resolve)
        if out.Count = 0 then
            try
                unitProblems m out
            with :? ModelException as e ->
                out.Add e.Message

        out |> Seq.distinct |> List.ofSeq

    /// Raises `ModelException` listing every problem (one per line) when the model is ill formed.
    let validate (m: Model) : unit =
        match problems m with
        | [] -> ()
        | [ one ] -> raise (ModelException(sprintf "Model '%s': %s" m.Name one))
        | many ->
            raise (
                ModelException(
                    sprintf
                        "Model '%s' has %d problems:\n%s"
                        m.Name
                        many.Length
                        (many |> List.map (fun s -> "  - " + s) |> String.concat "\n")
                )
            )
