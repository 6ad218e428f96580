namespace Hybrid

/// Symbolic tools on expressions: free symbols, substitution, evaluation, simplification and derivatives.
[<RequireQualifiedAccess>]
module Symbolic =

    /// The names referenced by `Sym` and `Shift` nodes (fields, parameters, forcings, constants, coordinates),
    /// distinct, in order of first appearance. Closure names are not included (see `closures`).
    let freeSymbols (e: Expr) : string list =
        Expr.subterms e
        |> List.choose (fun s ->
            match s with
            | Sym n -> Some n
            | Shift(n, _, _) -> Some n
            | _ -> None)
        |> List.distinct

    /// The closure calls in an expression: (name, number of arguments), in order of appearance.
    let closures (e: Expr) : (string * int) list =
        Expr.subterms e
        |> List.choose (fun s ->
            match s with
            | Call(n, args) -> Some(n, args.Length)
            | _ -> None)

    /// True when `name` occurs in `e` (as a symbol or shifted field).
    let dependsOn (name: string) (e: Expr) : bool = freeSymbols e |> List.contains name

    /// Replaces symbols by expressions. A shifted field `u[k+m]` is renamed when `u` maps to a symbol and
    /// left alone otherwise.
    let rec substitute (bindings: Map<string, Expr>) (e: Expr) : Expr =
        match e with
        | Sym n ->
            match bindings.TryFind n with
            | Some r -> r
            | None -> e
        | Shift(n, ix, m) ->
            match bindings.TryFind n with
            | Some(Sym n') -> Shift(n', ix, m)
            | _ -> e
        | _ -> Expr.mapChildren (substitute bindings) e

    let private sigmoid (v: float) = 1.0 / (1.0 + exp (-v))

    let private softplus (v: float) =
        if v > 30.0 then v else log (1.0 + exp v)

    /// Applies a pointwise function to a number.
    let applyFn (fn: Fn) (v: float) : float =
        match fn with
        | Fn.Exp -> exp v
        | Fn.Log -> log v
        | Fn.Sqrt -> sqrt v
        | Fn.Abs -> abs v
        | Fn.Sin -> sin v
        | Fn.Cos -> cos v
        | Fn.Tanh -> tanh v
        | Fn.Sigmoid -> sigmoid v
        | Fn.Softplus -> softplus v

    /// Evaluates a pointwise expression at the given symbol values, calling `closures` for closure calls.
    /// A shifted field `u[k+m]` is looked up under the key `u[k+m]` (as printed in ASCII, e.g. `X[k-1]`,
    /// `Y[j+2]`) and, failing that, under `u`. Spatial operators and fast sums are not pointwise; they and
    /// unbound symbols raise `ModelException`.
    let rec evalWith (closures: string -> float list -> float) (values: Map<string, float>) (e: Expr) : float =
        let ev = evalWith closures values

        match e with
        | Num v -> v
        | Sym n ->
            match values.TryFind n with
            | Some v -> v
            | None ->
                raise (ModelException(sprintf "Cannot evaluate: symbol '%s' has no value. Bind it in the value map." n))
        | Shift(n, ix, m) ->
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
                    raise (ModelException(sprintf "Cannot evaluate: '%s' has no value. Bind '%s' or '%s'." key key n))
        | Neg a -> -(ev a)
        | Add(a, b) -> ev a + ev b
        | Sub(a, b) -> ev a - ev b
        | Mul(a, b) -> ev a * ev b
        | Div(a, b) -> ev a / ev b
        | PowInt(a, n) -> pown (ev a) n
        | PowReal(a, b) -> ev a ** ev b
        | Apply(fn, a) -> applyFn fn (ev a)
        | Min(a, b) -> min (ev a) (ev b)
        | Max(a, b) -> max (ev a) (ev b)
        | Call(n, args) -> closures n (List.map ev args)
        | Partial _
        | Grad _
        | Divergence _
        | Laplacian _
        | Advect _
        | FastSum _ ->
            raise (
                ModelException(
                    "Cannot evaluate a spatial operator or fast sum at a point; compile the model to evaluate it on a grid."
                )
            )

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

    /// Splits a sum into (coefficient, term) pairs; the constant part has term `Num 1.0`.
    let rec private linearTerms (sign: float) (e: Expr) : (float * Expr) list =
        match e with
        | Add(a, b) -> linearTerms sign a @ linearTerms sign b
        | Sub(a, b) -> linearTerms sign a @ linearTerms (-sign) b
        | Neg a -> linearTerms (-sign) a
        | Num v -> [ sign * v, Num 1.0 ]
        | Mul(Num c, t) -> [ sign * c, t ]
        | t -> [ sign, t ]

    let private rebuildSum (terms: (float * Expr) list) : Expr =
        let order = terms |> List.map snd |> List.distinct

        let merged =
            order
            |> List.map (fun t -> terms |> List.filter (fun (_, t') -> t' = t) |> List.sumBy fst, t)
            |> List.filter (fun (c, _) -> c <> 0.0)

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

    /// Splits a product into a numeric coefficient and (base, integer exponent) factors.
    let rec private factors (e: Expr) : float * (Expr * int) list =
        match e with
        | Mul(a, b) ->
            let ca, fa = factors a
            let cb, fb = factors b
            ca * cb, fa @ fb
        | Neg a ->
            let c, f = factors a
            -c, f
        | Num v -> v, []
        | PowInt(b, n) when n > 0 -> 1.0, [ b, n ]
        | t -> 1.0, [ t, 1 ]

    let private rebuildProduct (c: float) (fs: (Expr * int) list) : Expr =
        let order = fs |> List.map fst |> List.distinct

        let merged =
            order
            |> List.map (fun b -> b, fs |> List.filter (fun (b', _) -> b' = b) |> List.sumBy snd)
            |> List.filter (fun (_, n) -> n <> 0)

        let body =
            merged
            |> List.map (fun (b, n) -> if n = 1 then b else PowInt(b, n))
            |> Expr.product

        if c = 0.0 then Num 0.0
        elif merged.IsEmpty then Num c
        elif c = 1.0 then body
        elif c = -1.0 then Neg body
        else Mul(Num c, body)

    let private step (e: Expr) : Expr =
        let fold1 f a =
            let v = f a
            if isFinite v then Some(Num v) else None

        match e with
        | Neg(Num v) -> Num(-v)
        | Neg(Neg a) -> a
        | Add(Num a, Num b) -> Num(a + b)
        | Sub(Num a, Num b) -> Num(a - b)
        | Mul(Num a, Num b) -> Num(a * b)
        | Div(Num a, Num b) when b <> 0.0 && isFinite (a / b) -> Num(a / b)
        | Add _
        | Sub _ -> rebuildSum (linearTerms 1.0 e)
        | Mul _ ->
            let c, fs = factors e
            rebuildProduct c fs
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
            match fold1 (applyFn fn) a with
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
        | FastSum(Num 0.0) -> Num 0.0
        | _ -> e

    let rec private simplifyOnce (e: Expr) : Expr =
        e |> Expr.mapChildren simplifyOnce |> step

    /// Simplifies an expression: constant folding (only where the result is finite), neutral elements
    /// (x + 0, x·1, x·0, x¹, x⁰), double negation, like terms in sums (2u + 3u → 5u) and equal factors in
    /// products (u·u → u²). Preserves the value wherever the original is defined.
    let simplify (e: Expr) : Expr =
        let rec loop n e =
            let e' = simplifyOnce e
            if e' = e || n = 0 then e' else loop (n - 1) e'

        loop 8 e

    // ---------------------------------------------------------------- derivatives

    /// The derivative of `e` with respect to the symbol `name` (a field, parameter, forcing or coordinate),
    /// simplified. Spatial operators are linear and are differentiated through; a shifted field `u[k+m]`
    /// counts as `u`, so for a field the result is the derivative with respect to a spatially uniform
    /// perturbation (exact for scalar parameters). min/max use min(a,b) = (a+b)/2 − |a−b|/2. Raises
    /// `ModelException` when `name` occurs inside a closure call (closures are differentiated by autograd).
    let derivative (name: string) (e: Expr) : Expr =
        let rec d (e: Expr) : Expr =
            if not (dependsOn name e) then
                Num 0.0
            else
                match e with
                | Num _ -> Num 0.0
                | Sym n -> if n = name then Num 1.0 else Num 0.0
                | Shift(n, _, _) -> if n = name then Num 1.0 else Num 0.0
                | Neg a -> Neg(d a)
                | Add(a, b) -> Add(d a, d b)
                | Sub(a, b) -> Sub(d a, d b)
                | Mul(a, b) -> Add(Mul(d a, b), Mul(a, d b))
                | Div(a, b) -> Div(Sub(Mul(d a, b), Mul(a, d b)), PowInt(b, 2))
                | PowInt(a, n) -> Mul(Mul(Num(float n), PowInt(a, n - 1)), d a)
                | PowReal(a, b) ->
                    // a^b (b' ln a + b a'/a)
                    Mul(PowReal(a, b), Add(Mul(d b, Apply(Fn.Log, a)), Div(Mul(b, d a), a)))
                | Apply(fn, a) ->
                    let outer =
                        match fn with
                        | Fn.Exp -> Apply(Fn.Exp, a)
                        | Fn.Log -> Div(Num 1.0, a)
                        | Fn.Sqrt -> Div(Num 0.5, Apply(Fn.Sqrt, a))
                        | Fn.Abs -> Div(a, Apply(Fn.Abs, a))
                        | Fn.Sin -> Apply(Fn.Cos, a)
                        | Fn.Cos -> Neg(Apply(Fn.Sin, a))
                        | Fn.Tanh -> Sub(Num 1.0, PowInt(Apply(Fn.Tanh, a), 2))
                        | Fn.Sigmoid -> Mul(Apply(Fn.Sigmoid, a), Sub(Num 1.0, Apply(Fn.Sigmoid, a)))
                        | Fn.Softplus -> Apply(Fn.Sigmoid, a)

                    Mul(outer, d a)
                | Min(a, b)
                | Max(a, b) ->
                    let sign =
                        match e with
                        | Min _ -> -1.0
                        | _ -> 1.0

                    let half = Mul(Num 0.5, Add(d a, d b))
                    let w = Sub(a, b)
                    let dAbs = Div(Mul(w, Sub(d a, d b)), Apply(Fn.Abs, w))
                    Add(half, Mul(Num(0.5 * sign), dAbs))
                | Call(n, _) ->
                    raise (
                        ModelException(
                            sprintf
                                "Cannot differentiate closure '%s' symbolically with respect to '%s'; closures are differentiated by autograd in the compiled model."
                                n
                                name
                        )
                    )
                | Partial(ax, a) -> Partial(ax, d a)
                | Grad a -> Grad(d a)
                | Divergence a -> Divergence(d a)
                | Laplacian a -> Laplacian(d a)
                | Advect(vs, u) ->
                    let dvs = List.map d vs
                    let du = d u

                    let part1 =
                        if dvs |> List.forall ((=) (Num 0.0)) then
                            Num 0.0
                        else
                            Advect(dvs, u)

                    Add(part1, Advect(vs, du))
                | FastSum a -> FastSum(d a)

        simplify (d e)
