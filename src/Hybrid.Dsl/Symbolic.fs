namespace Hybrid

/// Symbolic tools on expressions: free symbols, substitution, evaluation, simplification and derivatives.
[<RequireQualifiedAccess>]
module Symbolic =

    /// The names referenced by `Sym` and `Shift` nodes (fields, parameters, forcings, constants, coordinates),
    /// distinct, in order of first appearance. Closure names are not included (see `closures`).
    let freeSymbols (e: Expr) : string list =
        let seen = System.Collections.Generic.HashSet<string>()
        let acc = ResizeArray<string>()

        e
        |> Expr.iter (fun s ->
            match s with
            | Sym n
            | Shift(n, _, _) ->
                if seen.Add n then
                    acc.Add n
            | _ -> ())

        List.ofSeq acc

    /// The closure calls in an expression: (name, number of arguments), in order of appearance.
    let closures (e: Expr) : (string * int) list =
        let acc = ResizeArray<string * int>()

        e
        |> Expr.iter (fun s ->
            match s with
            | Call(n, args)
            | CallOutput(n, _, args) -> acc.Add((n, args.Length))
            | _ -> ())

        List.ofSeq acc

    /// True when `name` occurs in `e` (as a symbol or shifted field).
    let dependsOn (name: string) (e: Expr) : bool =
        e
        |> Expr.exists (fun s ->
            match s with
            | Sym n
            | Shift(n, _, _) -> n = name
            | _ -> false)

    /// Replaces symbols by expressions. A shifted field `u[k+m]` is renamed when `u` maps to a symbol and
    /// left alone otherwise.
    let substitute (bindings: Map<string, Expr>) (e: Expr) : Expr =
        e
        |> Expr.rewrite (fun node ->
            match node with
            | Sym n ->
                match bindings.TryFind n with
                | Some r -> r
                | None -> node
            | Shift(n, ix, m) ->
                match bindings.TryFind n with
                | Some(Sym n') -> Shift(n', ix, m)
                | _ -> node
            | _ -> node)

    /// Applies a pointwise function to a number (`Pointwise.value`).
    let applyFn (fn: Fn) (v: float) : float = Pointwise.value fn v

    /// Evaluates a pointwise expression at the given symbol values, calling `closures` for closure calls.
    /// A shifted field `u[k+m]` is looked up under the key `u[k+m]` (as printed in ASCII, e.g. `X[k-1]`,
    /// `Y[j+2]`) and, failing that, under `u`. Spatial operators and fast sums are not pointwise; they and
    /// unbound symbols raise `ModelException`.
    let evalWith (closures: string -> float list -> float) (values: Map<string, float>) (e: Expr) : float =
        let node (e: Expr) (rs: float list) : float =
            match e, rs with
            | Num v, _ -> v
            | Sym n, _ ->
                match values.TryFind n with
                | Some v -> v
                | None ->
                    raise (
                        ModelException(sprintf "Cannot evaluate: symbol '%s' has no value. Bind it in the value map." n)
                    )
            | Shift(n, ix, m), _ ->
                let letter =
                    match ix with
                    | LatticeIndex.K -> "k"
                    | LatticeIndex.J -> "j"

                let key =
                    if m = 0 then sprintf "%s[%s]" n letter
                    elif m > 0 then sprintf "%s[%s+%d]" n letter m
                    else sprintf "%s[%s-%d]" n letter (-m)

                match values.TryFind key with
                | Some v -> v
                | None ->
                    match values.TryFind n with
                    | Some v -> v
                    | None ->
                        raise (
                            ModelException(sprintf "Cannot evaluate: '%s' has no value. Bind '%s' or '%s'." key key n)
                        )
            | Neg _, [ a ] -> -a
            | Add _, [ a; b ] -> a + b
            | Sub _, [ a; b ] -> a - b
            | Mul _, [ a; b ] -> a * b
            | Div _, [ a; b ] -> a / b
            | PowInt(_, n), [ a ] -> pown a n
            | PowReal _, [ a; b ] -> a ** b
            | Apply(fn, _), [ a ] -> Pointwise.value fn a
            | Min _, [ a; b ] -> min a b
            | Max _, [ a; b ] -> max a b
            | Call(n, _), args -> closures n args
            | CallOutput(n, i, _), _ ->
                raise (
                    ModelException(
                        sprintf
                            "Cannot evaluate output %d of closure '%s' at a point: it returns several outputs; compile the model to evaluate it on a grid."
                            i
                            n
                    )
                )
            | _ ->
                raise (
                    ModelException(
                        "Cannot evaluate a spatial operator or fast sum at a point; compile the model to evaluate it on a grid."
                    )
                )

        Expr.fold node e

    /// Evaluates a pointwise expression without closures (see `evalWith`).
    let eval (values: Map<string, float>) (e: Expr) : float =
        evalWith
            (fun n _ ->
                raise (
                    ModelException(
                        sprintf "Cannot evaluate closure '%s' symbolically. Use Symbolic.evalWith to supply it." n
                    )
                ))
            values
            e

    // ---------------------------------------------------------------- simplification

    let private isFinite (v: float) =
        not (System.Double.IsNaN v || System.Double.IsInfinity v)

    /// Merges like terms (first-appearance order, coefficients summed in order) and rebuilds the sum.
    let private rebuildSum (terms: (float * Expr) seq) : Expr =
        let order = ResizeArray<Expr>()
        let sums = System.Collections.Generic.Dictionary<Expr, float>()

        for c, t in terms do
            match sums.TryGetValue t with
            | true, s -> sums[t] <- s + c
            | _ ->
                order.Add t
                sums[t] <- 0.0 + c

        let merged =
            order
            |> Seq.map (fun t -> sums[t], t)
            |> Seq.filter (fun (c, _) -> c <> 0.0)
            |> List.ofSeq

        let single (c: float, t: Expr) =
            match t with
            | Num 1.0 -> Num c
            | _ when c = 1.0 -> t
            | _ when c = -1.0 -> Neg t
            | _ -> Mul(Num c, t)

        match merged with
        | [] -> Num 0.0
        | first :: rest ->
            rest
            |> List.fold
                (fun acc (c, t) ->
                    match t with
                    | Num 1.0 when c < 0.0 -> Sub(acc, Num(-c))
                    | Num 1.0 -> Add(acc, Num c)
                    | _ when c < 0.0 -> Sub(acc, single (-c, t))
                    | _ -> Add(acc, single (c, t)))
                (single first)

    /// Merges equal bases (first-appearance order, exponents added) and rebuilds the product.
    let private rebuildProduct (c: float) (fs: (Expr * int) seq) : Expr =
        let order = ResizeArray<Expr>()
        let powers = System.Collections.Generic.Dictionary<Expr, int>()

        for b, n in fs do
            match powers.TryGetValue b with
            | true, k -> powers[b] <- k + n
            | _ ->
                order.Add b
                powers[b] <- n

        let merged =
            order
            |> Seq.map (fun b -> b, powers[b])
            |> Seq.filter (fun (_, n) -> n <> 0)
            |> List.ofSeq

        let body =
            merged
            |> List.map (fun (b, n) -> if n = 1 then b else PowInt(b, n))
            |> Expr.product

        if c = 0.0 then Num 0.0
        elif merged.IsEmpty then Num c
        elif c = 1.0 then body
        elif c = -1.0 then Neg body
        else Mul(Num c, body)

    /// A chunk list that concatenates in O(1), with a lazy sign flip; flattened once by `Chunks.items`.
    type private Chunks<'a> =
        | Item of 'a
        | Cat of Chunks<'a> * Chunks<'a>
        | Flip of Chunks<'a>

    /// A node's simplified form during the bottom-up pass: sums and products stay unmerged chains until the
    /// node that consumes them needs an expression, so each chain is merged once (linear in its length).
    type private Part =
        | Done of Expr
        | SumOf of Chunks<float * Expr>
        | ProductOf of float * Chunks<Expr * int>

    /// The (coefficient, term) items of a sum chain, left to right, signs applied (explicit stack).
    let private sumItems (chunks: Chunks<float * Expr>) : (float * Expr) list =
        let acc = ResizeArray<float * Expr>()
        let work = System.Collections.Generic.Stack<float * Chunks<float * Expr>>()
        work.Push((1.0, chunks))

        while work.Count > 0 do
            match work.Pop() with
            | sign, Item(c, t) -> acc.Add((sign * c, t))
            | sign, Cat(a, b) ->
                work.Push((sign, b))
                work.Push((sign, a))
            | sign, Flip a -> work.Push((-sign, a))

        List.ofSeq acc

    let private productItems (chunks: Chunks<Expr * int>) : (Expr * int) list =
        let acc = ResizeArray<Expr * int>()
        let work = System.Collections.Generic.Stack<Chunks<Expr * int>>()
        work.Push chunks

        while work.Count > 0 do
            match work.Pop() with
            | Item f -> acc.Add f
            | Cat(a, b) ->
                work.Push b
                work.Push a
            | Flip a -> work.Push a

        List.ofSeq acc

    let private toExpr (p: Part) : Expr =
        match p with
        | Done e -> e
        | SumOf chunks -> rebuildSum (sumItems chunks)
        | ProductOf(c, chunks) -> rebuildProduct c (productItems chunks)

    /// A simplified expression as the terms of a sum: a − b, −a and c·t (numeric c) split; a number v is the
    /// term v·1.
    let private asTerms (p: Part) : Chunks<float * Expr> =
        match p with
        | SumOf chunks -> chunks
        | _ ->
            match toExpr p with
            | Num v -> Item(v, Num 1.0)
            | e ->
                Expr.signedTerms e
                |> List.map (fun (sign, t) ->
                    match t with
                    | Num v -> Item(sign * v, Num 1.0)
                    | Mul(Num c, t) -> Item(sign * c, t)
                    | _ -> Item(sign, t))
                |> List.reduce (fun a b -> Cat(a, b))

    /// A simplified expression as a coefficient and the (base, exponent) factors of a product.
    let private asFactors (p: Part) : float * Chunks<Expr * int> option =
        match p with
        | ProductOf(c, chunks) -> c, Some chunks
        | _ ->
            let mutable coefficient = 1.0
            let items = ResizeArray<Expr * int>()
            let work = System.Collections.Generic.Stack<Expr>()
            work.Push(toExpr p)

            while work.Count > 0 do
                match work.Pop() with
                | Mul(a, b) ->
                    work.Push b
                    work.Push a
                | Neg a ->
                    coefficient <- -coefficient
                    work.Push a
                | Num v -> coefficient <- coefficient * v
                | PowInt(b, n) when n > 0 -> items.Add((b, n))
                | t -> items.Add((t, 1))

            let chunks =
                if items.Count = 0 then
                    None
                else
                    Some(items |> Seq.map Item |> Seq.reduce (fun a b -> Cat(a, b)))

            coefficient, chunks

    let private step (e: Expr) : Expr =
        let fold1 f a =
            let v = f a
            if isFinite v then Some(Num v) else None

        match e with
        | Neg(Num v) -> Num(-v)
        | Neg(Neg a) -> a
        | Div(Num a, Num b) when b <> 0.0 && isFinite (a / b) -> Num(a / b)
        | Div(a, Num 1.0) -> a
        | Div(Num 0.0, _) -> Num 0.0
        | Div(a, b) when a = b -> Num 1.0
        | PowInt(_, 0) -> Num 1.0
        | PowInt(a, 1) -> a
        | PowInt(Num a, n) ->
            match fold1 (fun a -> pown a n) a with
            | Some r -> r
            | None -> e
        | PowInt(PowInt(a, m), n) -> PowInt(a, m * n)
        | PowReal(a, Num 1.0) -> a
        | PowReal(_, Num 0.0) -> Num 1.0
        | PowReal(Num a, Num b) ->
            match fold1 (fun a -> a ** b) a with
            | Some r -> r
            | None -> e
        | Apply(fn, Num a) ->
            match fold1 (Pointwise.value fn) a with
            | Some r -> r
            | None -> e
        | Apply(Fn.Log, Apply(Fn.Exp, a)) -> a
        | Min(Num a, Num b) -> Num(min a b)
        | Max(Num a, Num b) -> Num(max a b)
        | Min(a, b) when a = b -> a
        | Max(a, b) when a = b -> a
        | Grad(Num _)
        | Laplacian(Num _)
        | Partial(_, Num _) -> Num 0.0
        | Divergence(Num 0.0) -> Num 0.0
        | Advect(_, Num _) -> Num 0.0
        | Jacobian(Num _, _)
        | Jacobian(_, Num _) -> Num 0.0
        | FluxAdvect(_, Num 0.0) -> Num 0.0
        | FastSum(Num 0.0) -> Num 0.0
        | _ -> e

    /// One bottom-up pass: sums and products merged (like terms, equal factors, constants), every other node
    /// rewritten by `step` once its children are simplified.
    let private simplifyOnce (e: Expr) : Expr =
        let node (e: Expr) (parts: Part list) : Part =
            match e, parts with
            | Add _, [ a; b ] -> SumOf(Cat(asTerms a, asTerms b))
            | Sub _, [ a; b ] -> SumOf(Cat(asTerms a, Flip(asTerms b)))
            | Mul _, [ a; b ] ->
                let ca, fa = asFactors a
                let cb, fb = asFactors b

                let chunks =
                    match fa, fb with
                    | Some x, Some y -> Some(Cat(x, y))
                    | Some x, None
                    | None, Some x -> Some x
                    | None, None -> None

                match chunks with
                | Some f -> ProductOf(ca * cb, f)
                | None -> Done(Num(ca * cb))
            | _, [] -> Done(step e)
            | _ -> Done(step (Expr.withChildren e (parts |> List.map toExpr)))

        toExpr (Expr.fold node e)

    /// Simplifies an expression: constant folding (only where the result is finite), neutral elements
    /// (x + 0, x·1, x·0, x¹, x⁰), double negation, like terms in sums (2u + 3u → 5u) and equal factors in
    /// products (u·u → u²). Preserves the value wherever the original is defined. Linear in the size of the
    /// expression per pass, with explicit stacks (10⁵-term sums simplify).
    let simplify (e: Expr) : Expr =
        let mutable current = e
        let mutable next = simplifyOnce e
        let mutable passes = 0

        while next <> current && passes < 8 do
            current <- next
            next <- simplifyOnce current
            passes <- passes + 1

        next

    // ---------------------------------------------------------------- derivatives

    /// The model's expressions as plain constructors (the result is simplified once, at the end), with the
    /// smooth forms at the kinks of abs, min and max.
    let private algebra: Algebra<Expr> = {
        Num = Num
        Neg = Neg
        Add = fun a b -> Add(a, b)
        Sub = fun a b -> Sub(a, b)
        Mul = fun a b -> Mul(a, b)
        Div = fun a b -> Div(a, b)
        PowInt = fun a n -> PowInt(a, n)
        Apply = fun fn a -> Apply(fn, a)
        Kinks = Kinks.Smooth
    }

    /// The derivative of `e` with respect to the symbol `name` (a field, parameter, forcing or coordinate),
    /// simplified. Spatial operators are linear and are differentiated through; a shifted field `u[k+m]`
    /// counts as `u`, so for a field the result is the derivative with respect to a spatially uniform
    /// perturbation (exact for scalar parameters). min/max use min(a,b) = (a+b)/2 − |a−b|/2. Raises
    /// `ModelException` when `name` occurs inside a closure call (closures are differentiated by autograd).
    /// One bottom-up pass with an explicit stack.
    let derivative (name: string) (e: Expr) : Expr =
        let rule = Differentiation.rule algebra
        // Each node's result: whether it depends on `name`, and its derivative (0 when it does not).
        let node (e: Expr) (rs: (bool * Expr) list) : bool * Expr =
            let depends =
                match e with
                | Sym n
                | Shift(n, _, _) -> n = name
                | _ -> rs |> List.exists fst

            if not depends then
                false, Num 0.0
            else
                let ds = rs |> List.map snd

                let d =
                    match e, ds with
                    | Sym _, _
                    | Shift _, _ -> rule e DiffNode.Variable
                    | Neg a, [ da ] -> rule e (DiffNode.Neg(a, da))
                    | Add(a, b), [ da; db ] -> rule e (DiffNode.Add(a, da, b, db))
                    | Sub(a, b), [ da; db ] -> rule e (DiffNode.Sub(a, da, b, db))
                    | Mul(a, b), [ da; db ] -> rule e (DiffNode.Mul(a, da, b, db))
                    | Div(a, b), [ da; db ] -> rule e (DiffNode.Div(a, da, b, db))
                    | PowInt(a, n), [ da ] -> rule e (DiffNode.PowInt(a, da, n))
                    | PowReal(a, b), [ da; db ] -> rule e (DiffNode.Pow(a, da, b, db))
                    | Apply(fn, a), [ da ] -> rule e (DiffNode.Apply(fn, a, da))
                    | Min(a, b), [ da; db ] -> rule e (DiffNode.Min(a, da, b, db))
                    | Max(a, b), [ da; db ] -> rule e (DiffNode.Max(a, da, b, db))
                    | Call(n, _), _
                    | CallOutput(n, _, _), _ ->
                        raise (
                            ModelException(
                                sprintf
                                    "Cannot differentiate closure '%s' symbolically with respect to '%s'; closures are differentiated by autograd in the compiled model."
                                    n
                                    name
                            )
                        )
                    | Partial(ax, _), [ da ] -> Partial(ax, da)
                    | Grad _, [ da ] -> Grad da
                    | Divergence _, [ da ] -> Divergence da
                    | Laplacian _, [ da ] -> Laplacian da
                    | Advect(vs, u), _ ->
                        let dvs = List.take vs.Length ds
                        let du = List.last ds

                        let part1 =
                            if dvs |> List.forall ((=) (Num 0.0)) then
                                Num 0.0
                            else
                                Advect(dvs, u)

                        Add(part1, Advect(vs, du))
                    | FastSum _, [ da ] -> FastSum da
                    // J is bilinear (its discrete form too): d J(a, b) = J(da, b) + J(a, db).
                    | Jacobian(a, b), [ da; db ] -> Add(Jacobian(da, b), Jacobian(a, db))
                    // As for `Advect`: linear in each of v and q for a fixed upwind direction and limiter state.
                    | FluxAdvect(vs, q), _ ->
                        let dvs = List.take vs.Length ds
                        let dq = List.last ds

                        let part1 =
                            if dvs |> List.forall ((=) (Num 0.0)) then
                                Num 0.0
                            else
                                FluxAdvect(dvs, q)

                        Add(part1, FluxAdvect(vs, dq))
                    | _ -> Num 0.0

                true, d

        simplify (snd (Expr.fold node e))
