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
/// only meaningful as the argument of `Divergence`, or multiplied by a scalar inside one.
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

    /// The direct children of an expression, left to right.
    let children (e: Expr) : Expr list =
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

    /// All subexpressions, the expression itself first (pre-order).
    let subterms (e: Expr) : Expr list =
        let acc = ResizeArray<Expr>()

        let rec go (e: Expr) =
            acc.Add e

            for c in children e do
                go c

        go e
        List.ofSeq acc

    /// True when the expression contains a spatial operator (∂, ∇, ∇·, Δ, advection).
    let hasSpatialOperator (e: Expr) : bool =
        subterms e
        |> List.exists (fun s ->
            match s with
            | Partial _
            | Grad _
            | Divergence _
            | Laplacian _
            | Advect _ -> true
            | _ -> false)

    /// Number of nodes in the expression tree.
    let size (e: Expr) : int = subterms e |> List.length
