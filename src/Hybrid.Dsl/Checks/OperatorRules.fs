namespace Hybrid

open System.Collections.Generic

/// Checks of where vector operators and fast sums may stand, and of the boundary conditions an operator applied
/// to an expression (not to a bare field) takes: those of the fields in it, which must then agree side by side.
[<RequireQualifiedAccess>]
module internal OperatorRules =

    /// Which nodes of ∇·'s operand are vectors: a gradient, a scalar times a vector, or a sum, difference or
    /// negation of vectors (one bottom-up pass, no recursion).
    let private vectorFlags (inner: Expr) : Dictionary<Expr, bool> =
        let flags = Dictionary<Expr, bool>(HashIdentity.Reference)

        inner
        |> Expr.fold (fun node kids ->
            let v =
                match node, kids with
                | Grad _, _ -> true
                | Mul _, [ a; b ] -> a <> b
                | (Add _ | Sub _), [ a; b ] -> a && b
                | Neg _, [ a ] -> a
                | _ -> false

            flags[node] <- v
            v)
        |> ignore

        flags

    /// The nodes of ∇·'s operand in vector position (reached from the operand through vectors only), or None
    /// when the operand is not a vector.
    let private vectorNodes (inner: Expr) : HashSet<Expr> option =
        let flags = vectorFlags inner

        if not flags[inner] then
            None
        else
            let found = HashSet<Expr>(HashIdentity.Reference)
            let work = Stack<Expr>()
            work.Push inner

            while work.Count > 0 do
                let e = work.Pop()
                found.Add e |> ignore

                match e with
                | Mul(a, b) -> work.Push(if flags[a] then a else b)
                | Add(a, b)
                | Sub(a, b) ->
                    work.Push a
                    work.Push b
                | Neg a -> work.Push a
                | _ -> ()

            Some found

    /// ∇ only in a vector position inside ∇·( … ), ∇·'s operand a vector, no Σ_j inside Σ_j.
    let private placement (where: string) (e: Expr) : string list =
        let out = ResizeArray<string>()
        let allowed = HashSet<Expr>(HashIdentity.Reference)
        // (node, inside a fast sum)
        let work = Stack<Expr * bool>()
        work.Push((e, false))

        while work.Count > 0 do
            let node, inSum = work.Pop()

            match node with
            | Divergence inner ->
                match vectorNodes inner with
                | Some nodes ->
                    for v in nodes do
                        allowed.Add v |> ignore
                | None ->
                    out.Add(
                        sprintf
                            "%s takes the divergence of '%s', which is not a vector. Write ∇·( … ) around a gradient, e.g. ∇·(D ∇u) (div(D*grad(u)) in ASCII)."
                            (CheckWording.sentence where)
                            (CheckWording.term inner)
                    )
            | Grad _ when not (allowed.Contains node) ->
                out.Add(
                    sprintf
                        "%s uses the gradient '%s' outside a divergence. A gradient is a vector: use it inside ∇·( … ), e.g. ∇·(D ∇u), or use ∂x(...) for one component."
                        (CheckWording.sentence where)
                        (CheckWording.term node)
                )
            | FastSum _ when inSum ->
                out.Add(
                    sprintf
                        "%s nests a fast sum Σ_j inside another. A fast sum adds the fast sites of one slow site; use one."
                        (CheckWording.sentence where)
                )
            | _ -> ()

            let inner =
                match node with
                | FastSum _ -> true
                | _ -> inSum

            for c in Expr.children node do
                work.Push((c, inner))

        List.ofSeq out

    /// The fields (declared names) an expression reads, in the order first met.
    let private fieldsIn (s: CheckScope) (e: Expr) : string list =
        let found = ResizeArray<string>()

        e
        |> Expr.iter (fun node ->
            match node with
            | Sym n
            | Shift(n, _, _) when (s.IsField n || s.IsDiagnostic n) && not (found.Contains n) -> found.Add n
            | _ -> ())

        List.ofSeq found

    /// An operator applied to an expression of several fields takes their boundary conditions: they must be
    /// the same on every side, or the expression's ghost values are ambiguous.
    let private operands (s: CheckScope) (where: string) (e: Expr) : string list =
        let conditionOf field side =
            s.Model.Boundaries
            |> List.tryFind (fun b -> b.Field = field && b.Side = side)
            |> Option.map (fun b -> b.Condition)

        [
            if not s.Sides.IsEmpty then
                for node in Expr.subterms e do
                    let operand =
                        match node with
                        | Partial(_, Sym _)
                        | Laplacian(Sym _)
                        | Grad(Sym _)
                        | Advect(_, Sym _)
                        | FluxAdvect(_, Sym _) -> None
                        | Partial(_, a)
                        | Laplacian a
                        | Grad a
                        | Advect(_, a)
                        | FluxAdvect(_, a) -> Some a
                        // ∇·(κ ∇u) (one gradient among the factors) is in flux form: each field keeps its own
                        // conditions. Any other vector takes the conditions of its fields.
                        | Divergence inner when
                            (Expr.factors inner
                             |> List.filter (fun f ->
                                 match f with
                                 | Grad _ -> true
                                 | _ -> false)
                             |> List.length) = 1
                            ->
                            None
                        | Divergence inner -> Some inner
                        | _ -> None

                    // The Jacobian's two operands take their own fields' conditions, each checked alike.
                    let jacobianOperands =
                        match node with
                        | Jacobian(a, b) ->
                            [ a; b ]
                            |> List.filter (fun x ->
                                match x with
                                | Sym _ -> false
                                | _ -> true)
                        | _ -> []

                    for a in Option.toList operand @ jacobianOperands do
                        match fieldsIn s a with
                        | first :: others ->
                            for other in others do
                                let differing =
                                    s.Sides
                                    |> List.filter (fun side ->
                                        let c1, c2 = conditionOf first side, conditionOf other side
                                        c1.IsSome && c2.IsSome && c1 <> c2)

                                if not differing.IsEmpty then
                                    sprintf
                                        "%s applies '%s' to an expression of '%s' and '%s', whose boundary conditions differ on the %s side%s, so the expression's values beyond the wall are ambiguous. Apply the operator to each field (e.g. expand the product rule), or give both fields the same boundary conditions."
                                        (CheckWording.sentence where)
                                        (CheckWording.term node)
                                        first
                                        other
                                        (differing |> List.map CheckWording.sideName |> String.concat " and ")
                                        (if differing.Length > 1 then "s" else "")
                        | [] -> ()
        ]
        |> List.distinct

    /// The operator rules of every equation's right-hand side.
    let equations (s: CheckScope) : string list = [
        for eq in s.Model.Equations do
            let where = CheckWording.inEquation eq.Field
            yield! placement where eq.Rhs
            yield! operands s where eq.Rhs
    ]

    /// The operator rules of every diagnostic field's elliptic right-hand side.
    let ellipticEquations (s: CheckScope) : string list = [
        for eq in s.Model.EllipticEquations do
            let where = CheckWording.inEquation eq.Field
            yield! placement where eq.Rhs
            yield! operands s where eq.Rhs
    ]
