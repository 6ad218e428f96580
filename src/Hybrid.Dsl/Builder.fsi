namespace Hybrid

/// The extent of a spatial domain, before its resolution is given (see `Dsl.interval`, `Dsl.rectangle`).
type DomainShape =

    /// [x0, x1]
    | IntervalShape of x0: float * x1: float

    /// [x0, x1] × [y0, y1]
    | RectangleShape of x0: float * x1: float * y0: float * y1: float

/// The number of cells of a spatial domain (see `Dsl.cells`, `Dsl.cells2`).
type Resolution =

    /// Cells along each axis, x first.
    | Cells of int list

/// A parameter's value, constraint, shape and learnability, before it has a name (see `Dsl.positive`).
type ParamSpec = {

    /// Initial (or fixed) value.
    Value: float

    /// Admissible values.
    Constraint: Constraint

    /// True when training may change it.
    Learnable: bool

    /// Scalar or spatial.
    Shape: ParamShape
}

/// A closure's arity and network, before it has a name (see `Dsl.mlp`, `Dsl.named`).
type ClosureSpec = {

    /// Number of arguments.
    Arity: int

    /// The network.
    Architecture: Architecture
}

/// The left-hand side ∂u/∂t of an equation; `dt u == rhs` makes the equation.
type TimeDerivative = {

    /// The field differentiated.
    Field: string
} with

    /// ∂u/∂t = constant
    static member (==): lhs: TimeDerivative * rhs: float -> Equation

    /// ∂u/∂t = rhs
    static member (==): lhs: TimeDerivative * rhs: Expr -> Equation

/// The left-hand side (Δ − κ²)ψ of a diagnostic field's elliptic equation; `poisson psi == rhs` (κ² = 0) or
/// `screenedPoisson psi k2 == rhs` makes the equation.
type EllipticOperator = {

    /// The diagnostic field solved for.
    Field: string

    /// κ² ≥ 0.
    Screening: float
} with

    /// (Δ − κ²)ψ = constant
    static member (==): lhs: EllipticOperator * rhs: float -> EllipticEquation

    /// (Δ − κ²)ψ = rhs
    static member (==): lhs: EllipticOperator * rhs: Expr -> EllipticEquation

/// The state of a `model { }` block while it is built. Each keyword prepends to a list (newest first), so a
/// block of n declarations takes linear time; `Run` restores declaration order and builds the `Model` once.
type ModelState = private {

    /// The model's name, as given to `model "name"`.
    Name: string

    /// The spatial domain and its grid (a point for ODE models).
    Domain: Domain

    /// Declared fields (the state variables), newest first.
    Fields: FieldDecl list

    /// Declared parameters with their constraints and starting values, newest first.
    Params: ParamDecl list

    /// Declared forcings (known inputs over time), newest first.
    Forcings: ForcingDecl list

    /// Declared closures (neural networks or named functions standing in for unknown terms), newest first.
    Closures: ClosureDecl list

    /// Declared constants, newest first.
    Constants: ConstantDecl list

    /// The equations, one per field, newest first.
    Equations: Equation list

    /// (field, side or None for every side, condition).
    Boundaries: (string * Side option * BoundaryCondition) list

    /// The initial conditions, one per field, newest first.
    Initials: Initial list

    /// Units given with `units`: (symbol, units text).
    Units: (string * string) list

    /// Declared diagnostic fields, newest first.
    Diagnostics: DiagnosticDecl list

    /// The elliptic equations of the diagnostic fields, newest first.
    EllipticEquations: EllipticEquation list
}

/// The `model "name" { … }` computation expression. Each keyword is a record update; the block returns the
/// same `Model` value the programmatic API builds, checked by `Checks.validate`. A second initial condition for
/// a field, or a second boundary condition for a field and side, is refused by the checks like a second
/// equation; a boundary for one side after one for every side of the same field replaces it on that side.
type ModelBuilder =

    /// Creates the builder of the model called `name` (what `model "name"` does).
    new: name: string -> ModelBuilder

    /// boundary "u" noFlux: the same condition on every side of the domain.
    [<CustomOperation("boundary")>]
    member Boundary: s: ModelState * fieldName: string * condition: BoundaryCondition -> ModelState

    /// boundary "u" left (dirichlet 1.0): a condition on one side (after `boundary "u" noFlux` it replaces
    /// that condition on this side).
    [<CustomOperation("boundary")>]
    member Boundary: s: ModelState * fieldName: string * side: Side * condition: BoundaryCondition -> ModelState

    /// constant "F" 8.0: declares a named fixed number.
    [<CustomOperation("constant")>]
    member Constant: s: ModelState * constName: string * value: float -> ModelState

    /// domain point (0-D), domain (lattice 40), domain (twoScaleLattice 36 10), or any `Domain` value.
    [<CustomOperation("domain")>]
    member Domain: s: ModelState * domain: Domain -> ModelState

    /// domain (interval 0.0 1.0) (cells 100), or domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 64 64).
    [<CustomOperation("domain")>]
    member Domain: s: ModelState * shape: DomainShape * resolution: Resolution -> ModelState

    /// equation "du/dt = r*u": adds equations written as text (several separated by ';' or newlines); a line that
    /// starts with Δ, ∇² or `lap` is a diagnostic field's elliptic equation (`equation "lap(psi) = omega"`).
    [<CustomOperation("equation")>]
    member Equation: s: ModelState * text: string -> ModelState

    /// equation (dt u == rhs): adds the equation of a field.
    [<CustomOperation("equation")>]
    member Equation: s: ModelState * eq: Equation -> ModelState

    /// equation (poisson psi == omega): adds the elliptic equation Δψ = ω of a diagnostic field (declared with
    /// `diagnostic "psi"`), solved at every evaluation of the right-hand side.
    [<CustomOperation("equation")>]
    member Equation: s: ModelState * eq: EllipticEquation -> ModelState

    /// diagnostic "psi": declares a diagnostic field, defined at every instant by its elliptic equation
    /// (`equation (poisson psi == omega)`) instead of a time derivative; it needs boundary conditions but no initial
    /// condition.
    [<CustomOperation("diagnostic")>]
    member Diagnostic: s: ModelState * fieldName: string -> ModelState

    /// fastField "Y": declares a fast variable on a two-scale lattice's fast sub-lattice.
    [<CustomOperation("fastField")>]
    member FastField: s: ModelState * fieldName: string -> ModelState

    /// field "u": declares a state variable (one equation ∂u/∂t = … each).
    [<CustomOperation("field")>]
    member Field: s: ModelState * fieldName: string -> ModelState

    /// forcing "c": declares an input given as data under this name.
    [<CustomOperation("forcing")>]
    member Forcing: s: ModelState * forcingName: string -> ModelState

    /// initial "u" (fun x -> exp (-(x - 5.0) ** 2)): the initial condition as a function of x (on lattices,
    /// x is the site index).
    [<CustomOperation("initial")>]
    member Initial: s: ModelState * fieldName: string * f: (Expr -> Expr) -> ModelState

    /// initial2 "u" (fun x y -> …): the initial condition as a function of x and y (2-D).
    [<CustomOperation("initial2")>]
    member Initial2: s: ModelState * fieldName: string * f: (Expr -> Expr -> Expr) -> ModelState

    /// initialData "u" "u0": the initial values come from data under this key.
    [<CustomOperation("initialData")>]
    member InitialData: s: ModelState * fieldName: string * key: string -> ModelState

    /// initialValue "u" expr: an initial condition given as an expression of the coordinates.
    [<CustomOperation("initialValue")>]
    member InitialValue: s: ModelState * fieldName: string * value: Expr -> ModelState

    /// initialValue "u" 0.5 (or an expression): a constant or closed-form initial condition.
    [<CustomOperation("initialValue")>]
    member InitialValue: s: ModelState * fieldName: string * value: float -> ModelState

    /// neural "kill" (mlp [2; 32; 32; 1]): declares a neural closure, called in equations as kill(u, c).
    [<CustomOperation("neural")>]
    member Neural: s: ModelState * closureName: string * spec: ClosureSpec -> ModelState

    /// param "a" 0.5: declares a learnable, unconstrained scalar parameter.
    [<CustomOperation("param")>]
    member Param: s: ModelState * paramName: string * value: float -> ModelState

    /// param "D" (positive 0.05): declares a parameter from a spec (positive, bounded, free, fixed, spatial).
    [<CustomOperation("param")>]
    member Param: s: ModelState * paramName: string * spec: ParamSpec -> ModelState

    /// Expands boundary conditions, applies units, checks the model and returns it.
    member Run: s: ModelState -> Model

    /// units "D" "m^2/s": gives units to a declared symbol (checked by dimensional analysis).
    [<CustomOperation("units")>]
    member Units: s: ModelState * symbol: string * units: string -> ModelState

    /// The empty model.
    member Yield: unit: 'T -> ModelState

/// The words of the `model { }` language: the builder, domains, parameter specs, closures, boundary
/// conditions and math operators on `Expr`. Open `Hybrid` and these are in scope.
[<AutoOpen>]
module Dsl =

    /// Starts a model: `model "name" { … }`.
    val model: name: string -> ModelBuilder

    /// A symbol by name, e.g. `let u = sym "u"`.
    val sym: name: string -> Expr

    /// A number as an expression.
    val num: v: float -> Expr

    /// The left-hand side ∂u/∂t: `dt u == rhs`. Raises ModelException unless `u` is a symbol.
    val dt: u: Expr -> TimeDerivative

    /// The left-hand side Δψ of a diagnostic field's Poisson equation: `poisson psi == rhs` is Δψ = rhs. Raises
    /// ModelException unless `psi` is a symbol.
    val poisson: psi: Expr -> EllipticOperator

    /// The left-hand side (Δ − κ²)ψ of a screened Poisson equation (κ² = `kappa2` ≥ 0): `screenedPoisson psi 4.0 ==
    /// rhs` is Δψ − 4ψ = rhs. Raises ModelException unless `psi` is a symbol.
    val screenedPoisson: psi: Expr -> kappa2: float -> EllipticOperator

    /// ∇·e
    val div: e: Expr -> Expr

    /// ∇e
    val grad: e: Expr -> Expr

    /// Δe = ∇²e
    val lap: e: Expr -> Expr

    /// ∂e/∂x
    val dx: e: Expr -> Expr

    /// ∂e/∂y
    val dy: e: Expr -> Expr

    /// (v·∇)u in 1-D.
    val advect: v: Expr -> u: Expr -> Expr

    /// ((vx, vy)·∇)u in 2-D.
    val advect2: vx: Expr -> vy: Expr -> u: Expr -> Expr

    /// 1 / (1 + e⁻ᵉ)
    val sigmoid: e: Expr -> Expr

    /// log(1 + eᵉ)
    val softplus: e: Expr -> Expr

    /// min(a, b) of expressions.
    val emin: a: Expr -> b: Expr -> Expr

    /// max(a, b) of expressions.
    val emax: a: Expr -> b: Expr -> Expr

    /// A closure call: `let kill = call "kill"` then `kill [u; c]`.
    val call: name: string -> args: Expr list -> Expr

    /// Output `index` (1-based) of a closure with several outputs: `let sgs = callOutput "sgs"` then
    /// `sgs 1 [w; q]` is sgs(w, q)[1].
    val callOutput: name: string -> index: int -> args: Expr list -> Expr

    /// u[k+m]: a slow field shifted along the periodic lattice.
    val shift: u: Expr -> m: int -> Expr

    /// Y[j+m]: a fast field shifted along the fast ring.
    val shiftFast: y: Expr -> m: int -> Expr

    /// Σⱼ e over the fast sites of each slow site.
    val sumFast: e: Expr -> Expr

    /// J(a, b) = ∂a/∂x ∂b/∂y − ∂a/∂y ∂b/∂x, the Arakawa Jacobian on a 2-D rectangle: `−jacobian psi q` advects q
    /// by the streamfunction ψ's velocity (−∂ψ/∂y, ∂ψ/∂x), conserving Σq, Σq² and Σψq on periodic grids.
    val jacobian: a: Expr -> b: Expr -> Expr

    /// ∇·(v q) in 1-D in limited flux form (upwind fluxes of a van Leer-limited reconstruction of q): `−advectFlux
    /// v q` conserves Σq and keeps q ≥ 0 under the Courant limit |v|·Δt/Δx ≤ ½.
    val advectFlux: v: Expr -> q: Expr -> Expr

    /// ∇·((vx, vy) q) in 2-D in limited flux form: `−advectFlux2 vx vy q` conserves Σq and keeps q ≥ 0 under the
    /// Courant limit (|vx|/Δx + |vy|/Δy)·Δt ≤ ½.
    val advectFlux2: vx: Expr -> vy: Expr -> q: Expr -> Expr

    /// A 0-D model (ODEs).
    val point: Domain

    /// [x0, x1]; combine with `cells`: domain (interval 0.0 1.0) (cells 100).
    val interval: x0: float -> x1: float -> DomainShape

    /// [x0, x1] × [y0, y1]; combine with `cells2`.
    val rectangle: x0: float * x1: float -> y0: float * y1: float -> DomainShape

    /// n cells on an interval.
    val cells: n: int -> Resolution

    /// nx × ny cells on a rectangle.
    val cells2: nx: int -> ny: int -> Resolution

    /// A periodic lattice of k sites.
    val lattice: k: int -> Domain

    /// A periodic lattice of k slow sites with j fast sites each (two-scale Lorenz-96).
    val twoScaleLattice: k: int -> j: int -> Domain

    /// A learnable parameter kept > 0, starting at `value`.
    val positive: value: float -> ParamSpec

    /// A learnable parameter kept in [lo, hi], starting at `value`.
    val bounded: lo: float -> hi: float -> value: float -> ParamSpec

    /// A learnable unconstrained parameter starting at `value`.
    val free: value: float -> ParamSpec

    /// A fixed (not learnable) parameter with this value.
    val fixedAt: value: float -> ParamSpec

    /// Makes a parameter spec not learnable: `positive 0.1 |> fixedParam`.
    val fixedParam: spec: ParamSpec -> ParamSpec

    /// Makes a parameter one value per cell: `positive 0.05 |> spatial`.
    val spatial: spec: ParamSpec -> ParamSpec

    /// A pointwise MLP with tanh between hidden layers; widths from inputs (= arity) to output 1.
    val mlp: layers: int list -> ClosureSpec

    /// A pointwise MLP with the given activation.
    val mlpWith: activation: Activation -> layers: int list -> ClosureSpec

    /// A module supplied to the compiler under `key`, taking `arity` arguments.
    val named: key: string -> arity: int -> ClosureSpec

    /// A CNN over whole fields with tanh between layers and kernel size 3: channel widths from inputs (= arity,
    /// the arguments as channels) to outputs (the closure's number of outputs), e.g. cnn [2; 16; 16; 2]. Padding
    /// follows the boundary conditions (circular on periodic sides, replicate elsewhere).
    val cnn: channels: int list -> ClosureSpec

    /// A CNN over whole fields with the given activation and odd kernel size.
    val cnnWith: activation: Activation -> kernel: int -> channels: int list -> ClosureSpec

    /// A module supplied to the compiler under `key`, applied to whole fields: `arity` arguments as channels
    /// [B; arity; spatial…] → [B; outputs; spatial…].
    val namedField: key: string -> arity: int -> outputs: int -> ClosureSpec

    /// Zero flux through the side.
    val noFlux: BoundaryCondition

    /// The side wraps to the opposite side.
    val periodic: BoundaryCondition

    /// The field takes this value on the side.
    val dirichlet: value: float -> BoundaryCondition

    /// The field takes this expression's value on the side.
    val dirichletExpr: value: Expr -> BoundaryCondition

    /// The outward normal derivative takes this value.
    val neumann: flux: float -> BoundaryCondition

    /// The outward normal derivative takes this expression's value.
    val neumannExpr: flux: Expr -> BoundaryCondition

    /// x = x0
    val left: Side

    /// x = x1
    val right: Side

    /// y = y0
    val bottom: Side

    /// y = y1
    val top: Side
