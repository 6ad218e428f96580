namespace Hybrid

open System.Collections.Generic

/// Checks of the symbols and operators inside expressions: every name resolves, closures are called with
/// their arity, lattice shifts and fast sums fit the domain, spatial operators have a spatial domain.
[<RequireQualifiedAccess>]
module internal ExpressionRules =

    let private symbol (s: CheckScope) (where: string) (allowed: string -> bool) (allowedWhy: string) (n: string) = [
        if s.IsClosure n then
            sprintf
                "Closure '%s' is used without arguments in %s. Call it, e.g. %s."
                n
                where
                (CheckFixes.call s.Syntax n)
        elif List.contains n Expr.coordinates then
            ()
        elif not (s.IsDeclared n) then
            sprintf
                "Undefined symbol '%s' in %s. Declare it (%s) or fix the spelling.%s"
                n
                where
                (CheckFixes.declarationKinds s.Syntax)
                (CheckWording.suggest n s.Names)
        elif not (allowed n) then
            sprintf "'%s' cannot be used in %s: %s." n where allowedWhy
    ]

    let private call (s: CheckScope) (where: string) (n: string) (args: Expr list) = [
        match s.Closure n with
        | Some c when c.Arity <> args.Length ->
            sprintf
                "Closure '%s' takes %d argument%s but is called with %d in %s. Call it with %d, or declare it with arity %d."
                n
                c.Arity
                (if c.Arity = 1 then "" else "s")
                args.Length
                where
                c.Arity
                args.Length
        | Some _ -> ()
        | None ->
            match s.KindOf n with
            | Some k ->
                sprintf
                    "'%s' is a %s, not a closure, but %s calls it as '%s(...)'. For a product write %s*(...) or put a space before '('."
                    n
                    k
                    where
                    n
                    n
            | None ->
                sprintf
                    "Closure '%s' is called in %s but not declared. Declare it, e.g. %s.%s"
                    n
                    where
                    (CheckFixes.closure s.Syntax n args.Length)
                    (CheckWording.suggest n s.ClosureNames)
    ]

    /// A bare call `f(...)` of a closure with several outputs: it must pick one.
    let private unpicked (s: CheckScope) (where: string) (n: string) (args: Expr list) = [
        match s.Closure n with
        | Some c when Model.outputs c > 1 ->
            sprintf
                "Closure '%s' returns %d outputs but %s calls it as '%s' without picking one. Pick an output (numbered 1 to %d), e.g. %s."
                n
                (Model.outputs c)
                where
                (CheckWording.term (Call(n, args)))
                (Model.outputs c)
                (CheckFixes.callOutput s.Syntax n 1 args)
        | _ -> ()
    ]

    /// `f(...)[i]`: the output number lies between 1 and the closure's number of outputs.
    let private picked (s: CheckScope) (where: string) (n: string) (i: int) (args: Expr list) = [
        match s.Closure n with
        | Some c when i < 1 || i > Model.outputs c ->
            let k = Model.outputs c

            sprintf
                "'%s' in %s picks output %d of closure '%s', which returns %d output%s (numbered 1 to %d). Use %s, or declare the closure with %d outputs."
                (CheckWording.term (CallOutput(n, i, args)))
                where
                i
                n
                k
                (if k = 1 then "" else "s")
                k
                (CheckFixes.callOutput s.Syntax n (max 1 (min i k)) args)
                i
        | _ -> ()
    ]

    let private shift (s: CheckScope) (where: string) (e: Expr) (n: string) (ix: LatticeIndex) = [
        if not (s.IsField n) then
            sprintf "'%s[...]' in %s shifts '%s', which is not a field. Only fields can be shifted." n where n

        match s.Model.Domain with
        | Domain.Lattice _ ->
            if ix = LatticeIndex.J && not (s.IsFast n) && s.IsField n then
                sprintf
                    "'%s' is a slow field but is shifted along the fast index j in %s. Use %s[k+m], or declare it fast (%s)."
                    n
                    where
                    n
                    (CheckFixes.fastField s.Syntax n)
        | _ ->
            sprintf
                "Lattice shift '%s' in %s needs a periodic lattice domain, but the domain is a %s. Declare %s or use spatial operators."
                (CheckWording.term e)
                where
                (CheckWording.domainName s.Model.Domain)
                (CheckFixes.lattice s.Syntax "K")
    ]

    let private operator (s: CheckScope) (where: string) (e: Expr) = [
        let dims = s.Dims
        let domain = CheckWording.domainName s.Model.Domain

        match e with
        | Num v when System.Double.IsNaN v || System.Double.IsInfinity v ->
            sprintf "%s contains the number %g. Use finite numbers." (CheckWording.sentence where) v
        | FastSum _ ->
            if not s.FastLattice then
                sprintf
                    "The fast sum Σ_j in %s needs a lattice with fast sites (%s). Declare one or remove the sum."
                    where
                    (CheckFixes.twoScaleLattice s.Syntax)
        | Partial(Axis.Y, _) when dims < 2 ->
            sprintf
                "%s uses ∂/∂y but the domain is a %s. Use a 2-D rectangle domain, e.g. %s, or remove the operator."
                (CheckWording.sentence where)
                domain
                (CheckFixes.rectangle s.Syntax)
        | Partial _
        | Grad _
        | Divergence _
        | Laplacian _
        | Advect _
        | FluxAdvect _ when dims = 0 ->
            sprintf
                "%s uses the spatial operator '%s' but the domain is a %s. Declare a spatial domain, e.g. %s, or remove the operator."
                (CheckWording.sentence where)
                (CheckWording.term e)
                domain
                (CheckFixes.interval s.Syntax)
        | Advect(vs, _) when vs.Length <> dims ->
            sprintf
                "Advection '%s' in %s has %d velocity component%s but the domain has %d dimension%s. Give one component per axis."
                (CheckWording.term e)
                where
                vs.Length
                (if vs.Length = 1 then "" else "s")
                dims
                (if dims = 1 then "" else "s")
        | Jacobian _ when dims <> 2 ->
            sprintf
                "%s uses the Jacobian '%s' but the domain is a %s. The Arakawa Jacobian J(a, b) needs a 2-D rectangle domain, e.g. %s; in 1-D use the flux advection advectFlux(v, q) or advect(v, q)."
                (CheckWording.sentence where)
                (CheckWording.term e)
                domain
                (CheckFixes.rectangle s.Syntax)
        | FluxAdvect(vs, _) when vs.Length <> dims ->
            sprintf
                "Flux advection '%s' in %s has %d velocity component%s but the domain has %d dimension%s. Give one component per axis, e.g. advectFlux(u, v, q) on a rectangle."
                (CheckWording.term e)
                where
                vs.Length
                (if vs.Length = 1 then "" else "s")
                dims
                (if dims = 1 then "" else "s")
        | _ -> ()
    ]

    /// The problems inside one expression, in pre-order: undefined or disallowed symbols (`allowed` says
    /// which declared names may appear, `allowedWhy` why others may not), closure calls, lattice shifts,
    /// non-finite numbers, fast sums and spatial operators that the domain lacks. Explicit stack.
    let inExpression (s: CheckScope) (where: string) (allowed: string -> bool) (allowedWhy: string) (e: Expr) =
        let out = ResizeArray<string>()

        e
        |> Expr.iter (fun node ->
            match node with
            | Sym n -> out.AddRange(symbol s where allowed allowedWhy n)
            | Call(n, args) ->
                out.AddRange(call s where n args)
                out.AddRange(unpicked s where n args)
            | CallOutput(n, i, args) ->
                out.AddRange(call s where n args)
                out.AddRange(picked s where n i args)
            | Shift(n, ix, _) -> out.AddRange(shift s where node n ix)
            | _ -> out.AddRange(operator s where node))

        List.ofSeq out

    /// The fast fields referenced outside every fast sum Σ_j, in pre-order, each once. Explicit stack.
    let private fastOutsideSums (s: CheckScope) (e: Expr) : string list =
        let found = ResizeArray<string>()
        let work = Stack<Expr>()
        work.Push e

        while work.Count > 0 do
            match work.Pop() with
            | FastSum _ -> ()
            | Sym n when s.IsFast n -> found.Add n
            | Shift(n, _, _) when s.IsFast n -> found.Add n
            | node ->
                for c in List.rev (Expr.children node) do
                    work.Push c

        found |> Seq.distinct |> List.ofSeq

    /// The fast-sum rules of one equation: a slow field's equation uses fast fields only inside Σ_j; a fast
    /// field's equation has no Σ_j.
    let private fastSums (s: CheckScope) (eq: Equation) = [
        if not (s.IsFast eq.Field) && s.FastLattice then
            // A fast field in a slow equation must sit inside Σ_j (there is no single fast value per slow site).
            for n in fastOutsideSums s eq.Rhs do
                sprintf
                    "The fast field '%s' appears in the equation of the slow field '%s' outside a fast sum. Wrap it in %s."
                    n
                    eq.Field
                    (CheckFixes.fastSum s.Syntax)

        if s.IsFast eq.Field then
            for node in Expr.subterms eq.Rhs do
                match node with
                | FastSum _ ->
                    sprintf
                        "The fast sum Σ_j appears in the equation of the fast field '%s'. Use it in slow equations only."
                        eq.Field
                | _ -> ()
    ]

    /// A closure over whole fields (`Model.isFieldwise`) is evaluated once per right-hand-side evaluation, so every
    /// call of it in the equations passes the same arguments.
    let fieldwiseArguments (s: CheckScope) : string list = [
        for c in s.Model.Closures |> List.filter Model.isFieldwise do
            let calls =
                s.Model.Equations
                |> List.collect (fun eq -> Expr.subterms eq.Rhs)
                |> List.choose (fun node ->
                    match node with
                    | Call(n, args)
                    | CallOutput(n, _, args) when n = c.Name -> Some args
                    | _ -> None)
                |> List.distinct

            match calls with
            | first :: second :: _ ->
                let text (args: Expr list) = CheckWording.term (Call(c.Name, args))

                sprintf
                    "Closure '%s' runs once per step on whole fields, so every call must pass the same arguments, but it is called as %s and as %s. Call it with the same arguments everywhere, e.g. %s and %s."
                    c.Name
                    (text first)
                    (text second)
                    (CheckFixes.callOutput s.Syntax c.Name 1 first)
                    (CheckFixes.callOutput s.Syntax c.Name (min 2 (Model.outputs c)) first)
            | _ -> ()
    ]

    /// A closure over whole fields runs on the cell-centred fields, but the flux coefficient κ of ∇·(κ ∇u) is
    /// evaluated on the cell faces, so such a closure may not stand in κ (in an equation or an elliptic equation).
    let fieldwiseInFluxCoefficients (s: CheckScope) : string list =
        let fieldwise =
            s.Model.Closures
            |> List.filter Model.isFieldwise
            |> List.map (fun c -> c.Name, c)
            |> Map.ofList

        if fieldwise.IsEmpty then
            []
        else
            let isGrad (e: Expr) =
                match e with
                | Grad _ -> true
                | _ -> false

            let sources =
                [ for eq in s.Model.Equations -> eq.Field, eq.Rhs ]
                @ [ for eq in s.Model.EllipticEquations -> eq.Field, eq.Rhs ]

            [
                for field, rhs in sources do
                    for node in Expr.subterms rhs do
                        match node with
                        | Divergence inner ->
                            let factors = Expr.factors inner

                            match List.partition isGrad factors with
                            | [ Grad _ ], kappaFactors when not kappaFactors.IsEmpty ->
                                let kappa = Expr.product kappaFactors

                                for call in Expr.subterms kappa do
                                    match call with
                                    | Call(n, args)
                                    | CallOutput(n, _, args) when fieldwise.ContainsKey n ->
                                        let c = fieldwise[n]

                                        let ownTerm =
                                            match call, s.Syntax with
                                            | CallOutput(_, i, _), _ -> CheckFixes.callOutput s.Syntax n i args
                                            | _, ModelSyntax.Builder ->
                                                sprintf
                                                    "call \"%s\" [ %s ]"
                                                    n
                                                    (args |> List.map (Print.expr Notation.Ascii) |> String.concat "; ")
                                            | _ -> CheckWording.term call

                                        sprintf
                                            "%s calls the closure '%s' (as %s) inside the flux coefficient κ of %s. '%s' runs on whole fields at the cell centres, but κ is evaluated on the cell faces. Compute the closure as a term of its own (e.g. + %s), or use a pointwise MLP closure in κ (e.g. %s)."
                                            (CheckWording.sentence (CheckWording.inEquation field))
                                            n
                                            (CheckWording.term call)
                                            (CheckWording.term node)
                                            n
                                            ownTerm
                                            (CheckFixes.closure s.Syntax "kappa" c.Arity)
                                    | _ -> ()
                            | _ -> ()
                        | _ -> ()
            ]
            |> List.distinct

    /// Every equation's right-hand side: its symbols and operators (`inExpression`), then its fast sums.
    let equations (s: CheckScope) : string list = [
        for eq in s.Model.Equations do
            yield! inExpression s (CheckWording.inEquation eq.Field) (fun _ -> true) "" eq.Rhs
            yield! fastSums s eq
    ]
