namespace Hybrid

/// Pointwise functions of one argument.
[<RequireQualifiedAccess>]
type Fn =
    /// eˣ
    | Exp
    /// Natural logarithm.
    | Log
    /// Square root.
    | Sqrt
    /// |x|
    | Abs
    /// sin x
    | Sin
    /// cos x
    | Cos
    /// tanh x
    | Tanh
    /// 1 / (1 + e⁻ˣ)
    | Sigmoid
    /// log(1 + eˣ)
    | Softplus

/// A spatial axis of a 1-D interval (x) or 2-D rectangle (x, y).
[<RequireQualifiedAccess>]
type Axis =
    /// The first coordinate, `x`.
    | X
    /// The second coordinate, `y` (2-D rectangles only).
    | Y

/// Which periodic lattice index a shift moves along (Lorenz-96 style lattices).
///
/// A lattice domain has K slow sites, indexed by k = 0..K−1 and periodic (k = K is k = 0). When it has a
/// fast sub-lattice of J sites per slow site, fast fields live on one periodic ring of J·K sites, fast site
/// n = k·J + j (j = 0..J−1), so `Y[j+1]` at the last j of site k is the first fast site of site k+1 (the
/// standard two-scale Lorenz-96 convention). A slow field referenced in a fast equation means its value at
/// the parent slow site k = n / J.
[<RequireQualifiedAccess>]
type LatticeIndex =
    /// The slow index k (on the K-ring); written `u[k+m]`.
    | K
    /// The fast index j (on the J·K ring); written `Y[j+m]`; fast fields only.
    | J

/// A symbolic expression: the right-hand side of an equation, an initial condition, a boundary value.
/// Immutable with structural equality. Names (`Sym`) are resolved by the model's declarations: a field,
/// parameter, forcing, constant, or a coordinate (`x`, `y`, `t`). Vector-valued subexpressions (`Grad`) are
/// only meaningful as the argument of `Divergence`, or multiplied by a scalar inside one. Equality, hashing
/// and ordering walk the tree with an explicit stack, so very long sums (10⁵ terms) compare without
/// exhausting the thread's stack; `Num nan` equals `Num nan`.
[<CustomEquality; CustomComparison>]
type Expr =
    /// A numeric constant.
    | Num of float
    /// A reference to a declared symbol or a coordinate (`x`, `y`, `t`) by name.
    | Sym of string
    /// −e
    | Neg of Expr
    /// a + b
    | Add of Expr * Expr
    /// a − b
    | Sub of Expr * Expr
    /// a × b
    | Mul of Expr * Expr
    /// a ÷ b
    | Div of Expr * Expr
    /// aⁿ with an integer exponent (may be negative).
    | PowInt of Expr * int
    /// aᵇ with a real exponent (an expression; `a` should be positive).
    | PowReal of Expr * Expr
    /// A pointwise function of one argument.
    | Apply of Fn * Expr
    /// min(a, b)
    | Min of Expr * Expr
    /// max(a, b)
    | Max of Expr * Expr
    /// A call of a declared neural closure, by name, with its arguments (pointwise).
    | Call of string * Expr list
    /// ∂e/∂x or ∂e/∂y (central differences on a grid).
    | Partial of Axis * Expr
    /// ∇e, the gradient (vector-valued; use inside `Divergence`).
    | Grad of Expr
    /// ∇·e, the divergence of a vector-valued expression (e.g. `Divergence (Mul (Sym "D", Grad (Sym "u")))`
    /// is ∇·(D∇u), compiled in conservative flux form).
    | Divergence of Expr
    /// Δe = ∇²e, the Laplacian.
    | Laplacian of Expr
    /// Advection (v·∇)u: velocity components (one per spatial axis, x first) and the advected field.
    | Advect of Expr list * Expr
    /// u[k+m] (or Y[j+m]): the field named, shifted by an integer offset along a periodic lattice index.
    | Shift of string * LatticeIndex * int
    /// Σⱼ e: the sum over the J fast sites of the current slow site k of a fast expression.
    | FastSum of Expr
    /// J(a, b) = ∂a/∂x ∂b/∂y − ∂a/∂y ∂b/∂x on a 2-D rectangle, in Arakawa's (1966) form (the mean of J⁺⁺, J⁺ˣ and
    /// Jˣ⁺ on the 9-point stencil), which conserves Σ J, Σ a·J and Σ b·J to round-off on a doubly periodic grid.
    /// ∂q/∂t = −J(ψ, q) advects q by the velocity (−∂ψ/∂y, ∂ψ/∂x) of the streamfunction ψ.
    | Jacobian of Expr * Expr
    /// ∇·(v q) in finite-volume flux form with upwind fluxes of a van Leer-limited (MUSCL) reconstruction of q:
    /// velocity components (one per spatial axis, x first, averaged to the faces) and the advected tracer q.
    /// Conserves Σq on periodic grids and keeps q ≥ 0 under a Courant limit (see `Operators.fluxAdvection`);
    /// ∂q/∂t = −∇·(v q) is the conservative counterpart of `Advect`.
    | FluxAdvect of Expr list * Expr
    /// Output `index` (1-based, as written) of a declared closure with several outputs, called with these
    /// arguments: `sgs(ω, q)[2]` is the second output of the closure `sgs` at (ω, q).
    | CallOutput of string * int * Expr list

    /// a + b
    static member (+)(a: Expr, b: Expr) = Add(a, b)
    /// a + b
    static member (+)(a: Expr, b: float) = Add(a, Num b)
    /// a + b
    static member (+)(a: float, b: Expr) = Add(Num a, b)
    /// a − b
    static member (-)(a: Expr, b: Expr) = Sub(a, b)
    /// a − b
    static member (-)(a: Expr, b: float) = Sub(a, Num b)
    /// a − b
    static member (-)(a: float, b: Expr) = Sub(Num a, b)
    /// a × b
    static member (*)(a: Expr, b: Expr) = Mul(a, b)
    /// a × b
    static member (*)(a: Expr, b: float) = Mul(a, Num b)
    /// a × b
    static member (*)(a: float, b: Expr) = Mul(Num a, b)
    /// a ÷ b
    static member (/)(a: Expr, b: Expr) = Div(a, b)
    /// a ÷ b
    static member (/)(a: Expr, b: float) = Div(a, Num b)
    /// a ÷ b
    static member (/)(a: float, b: Expr) = Div(Num a, b)
    /// −a
    static member (~-)(a: Expr) = Neg a
    /// aⁿ (`a ** 2` is an integer power).
    static member Pow(a: Expr, n: int) = PowInt(a, n)

    /// aᵇ: `a ** 0.5` is a real power; an integral exponent (`a ** 2.0`) becomes the integer power `PowInt`.
    static member Pow(a: Expr, b: float) =
        if b = System.Math.Round b && abs b <= 64.0 then
            PowInt(a, int b)
        else
            PowReal(a, Num b)

    /// aᵇ
    static member Pow(a: Expr, b: Expr) = PowReal(a, b)

    /// The direct children, left to right (as `Expr.children`).
    static member internal Kids(e: Expr) : Expr list =
        match e with
        | Num _
        | Sym _
        | Shift _ -> []
        | Neg a
        | PowInt(a, _)
        | Apply(_, a)
        | Partial(_, a)
        | Grad a
        | Divergence a
        | Laplacian a
        | FastSum a -> [ a ]
        | Add(a, b)
        | Sub(a, b)
        | Mul(a, b)
        | Div(a, b)
        | PowReal(a, b)
        | Min(a, b)
        | Max(a, b) -> [ a; b ]
        | Call(_, args) -> args
        | Advect(vs, u) -> vs @ [ u ]
        | Jacobian(a, b) -> [ a; b ]
        | FluxAdvect(vs, u) -> vs @ [ u ]
        | CallOutput(_, _, args) -> args

    /// A number per union case, for ordering and hashing.
    static member private CaseNumber(e: Expr) : int =
        match e with
        | Num _ -> 0
        | Sym _ -> 1
        | Neg _ -> 2
        | Add _ -> 3
        | Sub _ -> 4
        | Mul _ -> 5
        | Div _ -> 6
        | PowInt _ -> 7
        | PowReal _ -> 8
        | Apply _ -> 9
        | Min _ -> 10
        | Max _ -> 11
        | Call _ -> 12
        | Partial _ -> 13
        | Grad _ -> 14
        | Divergence _ -> 15
        | Laplacian _ -> 16
        | Advect _ -> 17
        | Shift _ -> 18
        | FastSum _ -> 19
        | Jacobian _ -> 20
        | FluxAdvect _ -> 21
        | CallOutput _ -> 22

    /// Compares the data a node carries besides its children (same tag assumed).
    static member private ComparePayload(a: Expr, b: Expr) : int =
        match a, b with
        | Num v, Num w -> v.CompareTo w
        | Sym m, Sym n -> System.String.CompareOrdinal(m, n)
        | Shift(m, i, k), Shift(n, j, l) ->
            let c = System.String.CompareOrdinal(m, n)

            if c <> 0 then c
            elif i <> j then compare i j
            else compare k l
        | PowInt(_, m), PowInt(_, n) -> compare m n
        | Apply(f, _), Apply(g, _) -> compare f g
        | Partial(x, _), Partial(y, _) -> compare x y
        | Call(m, xs), Call(n, ys) ->
            let c = System.String.CompareOrdinal(m, n)
            if c <> 0 then c else compare xs.Length ys.Length
        | CallOutput(m, i, xs), CallOutput(n, j, ys) ->
            let c = System.String.CompareOrdinal(m, n)

            if c <> 0 then c
            elif i <> j then compare i j
            else compare xs.Length ys.Length
        | Advect(vs, _), Advect(ws, _) -> compare vs.Length ws.Length
        | FluxAdvect(vs, _), FluxAdvect(ws, _) -> compare vs.Length ws.Length
        | _ -> 0

    /// Pre-order comparison of two trees with an explicit stack: tags, then payloads, then children.
    static member private CompareTrees(a: Expr, b: Expr) : int =
        let work = System.Collections.Generic.Stack<struct (Expr * Expr)>()
        work.Push(struct (a, b))
        let mutable result = 0

        while result = 0 && work.Count > 0 do
            let struct (x, y) = work.Pop()

            if not (obj.ReferenceEquals(x, y)) then
                result <- compare (Expr.CaseNumber x) (Expr.CaseNumber y)

                if result = 0 then
                    result <- Expr.ComparePayload(x, y)

                if result = 0 then
                    let xs = Expr.Kids x
                    let ys = Expr.Kids y

                    for c in List.rev (List.zip xs ys) do
                        work.Push(struct (fst c, snd c))

        result

    /// Structural equality (explicit stack).
    override this.Equals(other: obj) =
        match other with
        | :? Expr as o -> Expr.CompareTrees(this, o) = 0
        | _ -> false

    /// Structural hash over the whole tree (explicit stack).
    override this.GetHashCode() =
        let work = System.Collections.Generic.Stack<Expr>()
        work.Push this
        let mutable h = 17

        while work.Count > 0 do
            let e = work.Pop()

            let payload =
                match e with
                | Num v -> v.GetHashCode()
                | Sym n -> n.GetHashCode()
                | Shift(n, i, k) -> n.GetHashCode() + 7 * hash i + 31 * k
                | PowInt(_, n) -> n
                | Apply(f, _) -> hash f
                | Partial(x, _) -> hash x
                | Call(n, xs) -> n.GetHashCode() + xs.Length
                | CallOutput(n, i, xs) -> n.GetHashCode() + 13 * i + xs.Length
                | _ -> 0

            h <- (h * 31 + Expr.CaseNumber e) * 31 + payload

            for c in Expr.Kids e do
                work.Push c

        h

    interface System.IComparable with
        member this.CompareTo(other: obj) =
            match other with
            | :? Expr as o -> Expr.CompareTrees(this, o)
            | _ -> invalidArg "other" "An Expr can only be compared with another Expr."

    /// eᵃ, so that F#'s `exp` works on expressions.
    static member Exp(a: Expr) = Apply(Fn.Exp, a)
    /// log a, so that F#'s `log` works on expressions.
    static member Log(a: Expr) = Apply(Fn.Log, a)
    /// √a, so that F#'s `sqrt` works on expressions.
    static member Sqrt(a: Expr) = Apply(Fn.Sqrt, a)
    /// |a|, so that F#'s `abs` works on expressions.
    static member Abs(a: Expr) = Apply(Fn.Abs, a)
    /// sin a, so that F#'s `sin` works on expressions.
    static member Sin(a: Expr) = Apply(Fn.Sin, a)
    /// cos a, so that F#'s `cos` works on expressions.
    static member Cos(a: Expr) = Apply(Fn.Cos, a)
    /// tanh a, so that F#'s `tanh` works on expressions.
    static member Tanh(a: Expr) = Apply(Fn.Tanh, a)

/// Smart constructors for expressions, for building models by hand.
[<RequireQualifiedAccess>]
module Expr =

    /// The coordinate names always in scope: `x`, `y` (space) and `t` (time).
    let coordinates: string list = [ "x"; "y"; "t" ]

    /// A numeric constant.
    let num (v: float) : Expr = Num v

    /// A symbol reference by name.
    let sym (name: string) : Expr = Sym name

    /// a + b
    let add a b : Expr = Add(a, b)

    /// a − b
    let sub a b : Expr = Sub(a, b)

    /// a × b
    let mul a b : Expr = Mul(a, b)

    /// a ÷ b
    let div a b : Expr = Div(a, b)

    /// −a
    let neg a : Expr = Neg a

    /// aⁿ, integer n.
    let powi a (n: int) : Expr = PowInt(a, n)

    /// aᵇ, real exponent.
    let pow a b : Expr = PowReal(a, b)

    /// Sum of a list (0 for the empty list).
    let sum (terms: Expr list) : Expr =
        match terms with
        | [] -> Num 0.0
        | t :: rest -> List.fold add t rest

    /// Product of a list (1 for the empty list).
    let product (factors: Expr list) : Expr =
        match factors with
        | [] -> Num 1.0
        | f :: rest -> List.fold mul f rest

    /// A closure call `name(args)`.
    let call (name: string) (args: Expr list) : Expr = Call(name, args)

    /// Output `index` (1-based) of a closure with several outputs: `callOutput "sgs" 2 [w; q]` is sgs(w, q)[2].
    let callOutput (name: string) (index: int) (args: Expr list) : Expr = CallOutput(name, index, args)

    /// ∇·(e)
    let divergence e : Expr = Divergence e

    /// ∇e
    let grad e : Expr = Grad e

    /// Δe
    let laplacian e : Expr = Laplacian e

    /// ∂e/∂x
    let dx e : Expr = Partial(Axis.X, e)

    /// ∂e/∂y
    let dy e : Expr = Partial(Axis.Y, e)

    /// u[k+m] on the slow lattice index.
    let shiftK (field: string) (m: int) : Expr = Shift(field, LatticeIndex.K, m)

    /// Y[j+m] on the fast lattice index.
    let shiftJ (field: string) (m: int) : Expr = Shift(field, LatticeIndex.J, m)

    /// Σⱼ e over the fast sites of the current slow site.
    let fastSum e : Expr = FastSum e

    /// J(a, b), the Arakawa Jacobian ∂a/∂x ∂b/∂y − ∂a/∂y ∂b/∂x (2-D rectangles).
    let jacobian a b : Expr = Jacobian(a, b)

    /// ∇·(v q), the limited flux-form advection of the tracer `q` by the velocity components `velocity` (one
    /// per spatial axis, x first).
    let fluxAdvect (velocity: Expr list) (q: Expr) : Expr = FluxAdvect(velocity, q)

    /// The direct children of an expression, left to right.
    let children (e: Expr) : Expr list = Expr.Kids e

    /// Rebuilds an expression with its children mapped by `f` (one level, not recursive).
    let mapChildren (f: Expr -> Expr) (e: Expr) : Expr =
        match e with
        | Num _
        | Sym _
        | Shift _ -> e
        | Neg a -> Neg(f a)
        | PowInt(a, n) -> PowInt(f a, n)
        | Apply(fn, a) -> Apply(fn, f a)
        | Partial(ax, a) -> Partial(ax, f a)
        | Grad a -> Grad(f a)
        | Divergence a -> Divergence(f a)
        | Laplacian a -> Laplacian(f a)
        | FastSum a -> FastSum(f a)
        | Add(a, b) -> Add(f a, f b)
        | Sub(a, b) -> Sub(f a, f b)
        | Mul(a, b) -> Mul(f a, f b)
        | Div(a, b) -> Div(f a, f b)
        | PowReal(a, b) -> PowReal(f a, f b)
        | Min(a, b) -> Min(f a, f b)
        | Max(a, b) -> Max(f a, f b)
        | Call(n, args) -> Call(n, List.map f args)
        | Advect(vs, u) -> Advect(List.map f vs, f u)
        | Jacobian(a, b) -> Jacobian(f a, f b)
        | FluxAdvect(vs, u) -> FluxAdvect(List.map f vs, f u)
        | CallOutput(n, i, args) -> CallOutput(n, i, List.map f args)

    /// Rebuilds a node with the given children (as many, in the order `children` lists them); leaves are
    /// returned as they are.
    let withChildren (e: Expr) (cs: Expr list) : Expr =
        match e, cs with
        | (Num _ | Sym _ | Shift _), _ -> e
        | Neg _, [ a ] -> Neg a
        | PowInt(_, n), [ a ] -> PowInt(a, n)
        | Apply(fn, _), [ a ] -> Apply(fn, a)
        | Partial(ax, _), [ a ] -> Partial(ax, a)
        | Grad _, [ a ] -> Grad a
        | Divergence _, [ a ] -> Divergence a
        | Laplacian _, [ a ] -> Laplacian a
        | FastSum _, [ a ] -> FastSum a
        | Add _, [ a; b ] -> Add(a, b)
        | Sub _, [ a; b ] -> Sub(a, b)
        | Mul _, [ a; b ] -> Mul(a, b)
        | Div _, [ a; b ] -> Div(a, b)
        | PowReal _, [ a; b ] -> PowReal(a, b)
        | Min _, [ a; b ] -> Min(a, b)
        | Max _, [ a; b ] -> Max(a, b)
        | Call(n, _), args -> Call(n, args)
        | Advect(vs, _), xs when xs.Length = vs.Length + 1 -> Advect(List.take vs.Length xs, List.last xs)
        | Jacobian _, [ a; b ] -> Jacobian(a, b)
        | FluxAdvect(vs, _), xs when xs.Length = vs.Length + 1 -> FluxAdvect(List.take vs.Length xs, List.last xs)
        | CallOutput(n, i, _), args -> CallOutput(n, i, args)
        | _ -> invalidArg "cs" $"Expr.withChildren: {cs.Length} children do not fit this node."

    /// Folds an expression bottom-up: `f node results` gets each node with the results of its children (in
    /// `children` order). The walk uses an explicit stack, so its depth is not limited by the thread's stack:
    /// a flat sum of 10⁵ terms (a left-nested chain of 10⁵ `Add` nodes) folds like a short one.
    let fold (f: Expr -> 'r list -> 'r) (e: Expr) : 'r =
        // Frames: a node whose children are not yet done (false) or done (true). Results are pushed in
        // post-order, so a node's children are the top `children.Length` results, last child on top.
        let work = System.Collections.Generic.Stack<struct (Expr * bool)>()
        let results = System.Collections.Generic.Stack<'r>()
        work.Push(struct (e, false))

        while work.Count > 0 do
            let struct (node, expanded) = work.Pop()
            let cs = children node

            if expanded || cs.IsEmpty then
                let mutable rs = []

                for _ in 1 .. cs.Length do
                    rs <- results.Pop() :: rs

                results.Push(f node rs)
            else
                work.Push(struct (node, true))

                for c in List.rev cs do
                    work.Push(struct (c, false))

        results.Pop()

    /// Rewrites an expression bottom-up: `f` gets each node rebuilt from its rewritten children (explicit
    /// stack, as `fold`).
    let rewrite (f: Expr -> Expr) (e: Expr) : Expr =
        fold (fun node rs -> f (if rs.IsEmpty then node else withChildren node rs)) e

    /// Visits every subexpression in pre-order (the expression itself first) with an explicit stack.
    let iter (f: Expr -> unit) (e: Expr) : unit =
        let work = System.Collections.Generic.Stack<Expr>()
        work.Push e

        while work.Count > 0 do
            let node = work.Pop()
            f node

            for c in List.rev (children node) do
                work.Push c

    /// True when some subexpression satisfies `p` (pre-order, stops at the first; explicit stack).
    let exists (p: Expr -> bool) (e: Expr) : bool =
        let work = System.Collections.Generic.Stack<Expr>()
        work.Push e
        let mutable found = false

        while not found && work.Count > 0 do
            let node = work.Pop()

            if p node then
                found <- true
            else
                for c in List.rev (children node) do
                    work.Push c

        found

    /// All subexpressions, the expression itself first (pre-order; explicit stack).
    let subterms (e: Expr) : Expr list =
        let acc = ResizeArray<Expr>()
        iter acc.Add e
        List.ofSeq acc

    /// The terms of a chain of sums and differences with their signs, left to right: a − (b + c) ↦
    /// [+1, a; −1, b; −1, c]; −a counts as a term −1·a. Anything else is one term. Iterative.
    let signedTerms (e: Expr) : (float * Expr) list =
        let acc = ResizeArray<float * Expr>()
        let work = System.Collections.Generic.Stack<float * Expr>()
        work.Push((1.0, e))

        while work.Count > 0 do
            let sign, node = work.Pop()

            match node with
            | Add(a, b) ->
                work.Push((sign, b))
                work.Push((sign, a))
            | Sub(a, b) ->
                work.Push((-sign, b))
                work.Push((sign, a))
            | Neg a -> work.Push((-sign, a))
            | t -> acc.Add((sign, t))

        List.ofSeq acc

    /// The factors of a chain of products, left to right: (a·b)·c ↦ [a; b; c]. Iterative.
    let factors (e: Expr) : Expr list =
        let acc = ResizeArray<Expr>()
        let work = System.Collections.Generic.Stack<Expr>()
        work.Push e

        while work.Count > 0 do
            match work.Pop() with
            | Mul(a, b) ->
                work.Push b
                work.Push a
            | t -> acc.Add t

        List.ofSeq acc

    /// The deepest nesting of the expression tree (a leaf has depth 1), with an explicit stack.
    let depth (e: Expr) : int =
        fold (fun _ rs -> 1 + (if rs.IsEmpty then 0 else List.max rs)) e

    /// True when the expression contains a spatial operator (∂, ∇, ∇·, Δ, advection, the Jacobian).
    let hasSpatialOperator (e: Expr) : bool =
        e
        |> exists (fun s ->
            match s with
            | Partial _
            | Grad _
            | Divergence _
            | Laplacian _
            | Advect _
            | Jacobian _
            | FluxAdvect _ -> true
            | _ -> false)

    /// Number of nodes in the expression tree.
    let size (e: Expr) : int =
        let mutable n = 0
        iter (fun _ -> n <- n + 1) e
        n
