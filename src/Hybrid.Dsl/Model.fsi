namespace Hybrid

/// Where the fields live.
[<RequireQualifiedAccess>]
type Domain =

    /// No space: a 0-D system of ODEs (compartments, reaction networks, Lotka–Volterra).
    | Point

    /// The interval [x0, x1] split into `cells` uniform cells (cell-centred unknowns).
    | Interval of x0: float * x1: float * cells: int

    /// The rectangle [x0, x1] × [y0, y1] split into nx × ny uniform cells.
    | Rectangle of x0: float * x1: float * y0: float * y1: float * nx: int * ny: int

    /// A periodic 1-D lattice of `sites` slow sites (index k), with `fast` fast sites per slow site (index j;
    /// 0 when there is no fast sub-lattice). See `LatticeIndex` for how fast sites are numbered.
    | Lattice of sites: int * fast: int

/// The admissible values of a parameter. A learnable parameter is kept inside during training.
[<RequireQualifiedAccess>]
type Constraint =

    /// Any real value.
    | Free

    /// Strictly positive (trained through a softplus or log reparameterisation).
    | Positive

    /// Inside the closed interval [lo, hi].
    | Bounded of lo: float * hi: float

/// Whether a parameter is one number or one number per grid cell.
[<RequireQualifiedAccess>]
type ParamShape =

    /// One value for the whole domain.
    | Scalar

    /// One value per cell (a spatial field), initialised to the declared value everywhere.
    | Spatial

/// Activation functions of neural closures.
[<RequireQualifiedAccess>]
type Activation =

    /// tanh
    | Tanh

    /// max(0, x)
    | Relu

    /// Gaussian error linear unit.
    | Gelu

    /// x·sigmoid(x)
    | Silu

    /// 1 / (1 + e⁻ˣ)
    | Sigmoid

    /// log(1 + eˣ)
    | Softplus

/// The network behind a neural closure.
[<RequireQualifiedAccess>]
type Architecture =

    /// A multilayer perceptron applied pointwise: layer widths from inputs to output (first = arity,
    /// last = 1), with the activation between hidden layers.
    | Mlp of layers: int list * activation: Activation

    /// A module the compiler looks up by this name, applied pointwise: [..., arity] → [..., 1].
    | Named of string

    /// A convolutional network over whole fields (sub-grid closures), built by the compiler: channel widths
    /// from inputs (first = arity, the arguments stacked as channels) through the hidden layers to outputs (last =
    /// the closure's number of outputs), convolutions of odd size `kernel` along every axis, `activation` between
    /// them. Padding follows the arguments' boundary conditions: circular on periodic sides (and lattices),
    /// replicate (the edge cell repeated) elsewhere. Evaluated once per right-hand-side evaluation; with several
    /// outputs, equations pick one with `CallOutput`. Intervals, rectangles and slow lattice fields only.
    | Cnn of channels: int list * kernel: int * activation: Activation

    /// A module the compiler looks up under `key`, applied to whole fields: the arguments stacked as channels
    /// [B; arity; spatial…] → [B; outputs; spatial…] (a user's own CNN). Evaluated once per right-hand-side
    /// evaluation; with several outputs, equations pick one with `CallOutput`.
    | NamedField of key: string * outputs: int

/// A state variable: one equation ∂u/∂t = … per field.
type FieldDecl = {

    /// Symbol name.
    Name: string

    /// Units of the field's values, when declared.
    Units: Units option

    /// True for a fast variable on a lattice's fast sub-lattice (two-scale systems).
    Fast: bool
}

/// A scientific parameter: fixed or learnable, scalar or spatial, with a constraint.
type ParamDecl = {

    /// Symbol name.
    Name: string

    /// Initial (or fixed) value; must satisfy `Constraint`.
    Value: float

    /// True when training may change it.
    Learnable: bool

    /// Admissible values.
    Constraint: Constraint

    /// Scalar or one value per cell.
    Shape: ParamShape

    /// Units, when declared.
    Units: Units option
}

/// A diagnostic field: not a state variable but defined at every instant by a linear elliptic equation
/// (`EllipticEquation`), e.g. the streamfunction ψ of the vorticity ω by Δψ = ω. It has no ∂/∂t equation and no
/// initial condition; it needs boundary conditions like a field, and equations may use it like a field.
type DiagnosticDecl = {

    /// Symbol name.
    Name: string

    /// Units of the field's values, when declared.
    Units: Units option
}

/// An input given as data (a drug concentration, CO₂, a dosing rate), looked up by name at run time.
type ForcingDecl = {

    /// Symbol name (and the data key).
    Name: string

    /// Units, when declared.
    Units: Units option
}

/// A neural network used as a function inside equations (universal differential equations).
type ClosureDecl = {

    /// Function name, called as `name(a, b, …)`.
    Name: string

    /// Number of arguments.
    Arity: int

    /// The network.
    Architecture: Architecture

    /// Units of the output, when declared (arguments are unconstrained).
    Units: Units option
}

/// A named fixed number.
type ConstantDecl = {

    /// Symbol name.
    Name: string

    /// Its value.
    Value: float

    /// Units, when declared.
    Units: Units option
}

/// ∂field/∂t = rhs.
type Equation = {

    /// The field whose time derivative is the left-hand side.
    Field: string

    /// The right-hand side.
    Rhs: Expr
}

/// One side of the domain.
[<RequireQualifiedAccess>]
type Side =

    /// x = x0
    | Left

    /// x = x1
    | Right

    /// y = y0 (rectangles)
    | Bottom

    /// y = y1 (rectangles)
    | Top

/// A boundary condition on one side.
[<RequireQualifiedAccess>]
type BoundaryCondition =

    /// The field wraps around to the opposite side (must be set on both opposite sides).
    | Periodic

    /// The field takes this value on the side (an expression of coordinates, t, parameters).
    | Dirichlet of Expr

    /// The outward normal derivative ∂u/∂n takes this value.
    | Neumann of Expr

    /// Zero flux: ∂u/∂n = 0.
    | NoFlux

/// A boundary condition of one field on one side.
type Boundary = {

    /// The field.
    Field: string

    /// The side.
    Side: Side

    /// The condition.
    Condition: BoundaryCondition
}

/// How a field starts.
[<RequireQualifiedAccess>]
type InitialCondition =

    /// An expression of the coordinates and parameters/constants: `x`, `y` at cell centres; on lattices `x` is
    /// the 0-based site index (k for slow fields, the fast-ring index n = k·J + j for fast fields).
    | Expr of Expr

    /// Values supplied as data under this key at run time.
    | FromData of string

/// The initial condition of one field.
type Initial = {

    /// The field.
    Field: string

    /// Its initial values.
    Value: InitialCondition
}

/// (Δ − κ²) field = rhs: the linear elliptic equation that defines a diagnostic field at every instant, with the
/// same discrete Laplacian the equations' Δ uses. On a domain periodic on every axis with κ² = 0 (and with only
/// Neumann or no-flux walls), Δ has the constants as null space: the solve removes the mean of the right-hand side
/// and returns the solution of zero mean.
type EllipticEquation = {

    /// The diagnostic field solved for.
    Field: string

    /// κ² ≥ 0, the screening constant (0 for the Poisson equation Δψ = rhs).
    Screening: float

    /// The right-hand side: state fields, parameters, forcings, constants, coordinates, and diagnostic fields
    /// defined without a cycle.
    Rhs: Expr
}

/// A complete model: the value that the `model { }` builder, the text parser and the programmatic API all
/// produce, and that the compiler, printer and checks consume. All lists keep declaration order.
type Model = {

    /// A short name.
    Name: string

    /// Where fields live.
    Domain: Domain

    /// State variables.
    Fields: FieldDecl list

    /// Scientific parameters.
    Params: ParamDecl list

    /// Inputs given as data.
    Forcings: ForcingDecl list

    /// Neural closures.
    Closures: ClosureDecl list

    /// Named constants.
    Constants: ConstantDecl list

    /// One equation per field.
    Equations: Equation list

    /// Boundary conditions, one per field and side on interval and rectangle domains.
    Boundaries: Boundary list

    /// One initial condition per field.
    Initials: Initial list

    /// Diagnostic fields (solved, not integrated).
    Diagnostics: DiagnosticDecl list

    /// One elliptic equation per diagnostic field.
    EllipticEquations: EllipticEquation list
}

/// What a name in an expression refers to, by the model's declarations.
[<RequireQualifiedAccess>]
type SymbolKind =

    /// A state variable (slow, or the only kind off lattices).
    | Field

    /// A state variable on a lattice's fast sub-lattice.
    | FastField

    /// A scientific parameter.
    | Parameter

    /// An input given as data.
    | Forcing

    /// A neural closure (only valid as a call).
    | Closure

    /// A named constant.
    | Constant

    /// A coordinate: `x`, `y` or time `t`.
    | Coordinate

    /// A diagnostic field (defined by an elliptic equation).
    | Diagnostic

/// Smart constructors for building models by hand (the programmatic API). None of them checks; call
/// `Checks.validate` (the builder and parser do).
[<RequireQualifiedAccess>]
module Model =

    /// An empty 0-D model with this name.
    val empty: name: string -> Model

    /// A field declaration without units.
    val field: name: string -> FieldDecl

    /// A learnable scalar parameter with no constraint.
    val param: name: string -> value: float -> ParamDecl

    /// The sides of a domain: none for points and lattices (lattices are periodic by construction),
    /// left/right for intervals, all four for rectangles.
    val sides: domain: Domain -> Side list

    /// The number of spatial dimensions: 0 for points and lattices, 1 for intervals, 2 for rectangles.
    val spatialDims: domain: Domain -> int

    /// Sets the domain.
    val withDomain: domain: Domain -> m: Model -> Model

    /// Adds a field.
    val addField: f: FieldDecl -> m: Model -> Model

    /// Adds a parameter.
    val addParam: p: ParamDecl -> m: Model -> Model

    /// Adds a forcing.
    val addForcing: f: ForcingDecl -> m: Model -> Model

    /// Adds a closure.
    val addClosure: c: ClosureDecl -> m: Model -> Model

    /// Adds a constant.
    val addConstant: c: ConstantDecl -> m: Model -> Model

    /// Adds the equation ∂field/∂t = rhs.
    val addEquation: field: string -> rhs: Expr -> m: Model -> Model

    /// Adds a diagnostic field.
    val addDiagnostic: d: DiagnosticDecl -> m: Model -> Model

    /// Adds the elliptic equation (Δ − κ²) field = rhs of a diagnostic field (`screening` = κ²).
    val addElliptic: field: string -> screening: float -> rhs: Expr -> m: Model -> Model

    /// Sets the boundary condition of a field on one side: replaces an earlier one on that side in place,
    /// or appends.
    val setBoundary: field: string -> side: Side -> bc: BoundaryCondition -> m: Model -> Model

    /// Expands boundary statements, in order, into one condition per field and side: a statement with `None`
    /// stands for every side in `sides`. A statement for one side replaces, in place, what an earlier every-side
    /// statement of the same field set on that side (a default, then exceptions). Every other repetition is kept,
    /// so that `Checks` reports it as a duplicate. Linear in the number of statements.
    val internal expandBoundaries:
        sides: Side list -> statements: (string * Side option * BoundaryCondition) seq -> Boundary list

    /// Sets the same boundary condition of a field on every side of the current domain.
    val setBoundaryAll: field: string -> bc: BoundaryCondition -> m: Model -> Model

    /// Sets the initial condition of a field (replacing an earlier one).
    val setInitial: field: string -> ic: InitialCondition -> m: Model -> Model

    /// The equation of a field, if any.
    val tryEquation: field: string -> m: Model -> Equation option

    /// All declared names with their kind ("field", "parameter", "forcing", "closure", "constant",
    /// "diagnostic field"),
    /// in declaration order (duplicates kept).
    val declarations: m: Model -> (string * string) list

    /// What `name` refers to in model `m` (the first declaration when there are duplicates), or None when it
    /// is not declared.
    val kindOf: name: string -> m: Model -> SymbolKind option

    /// How many outputs a closure returns: the last channel width of a `Cnn`, the count of a `NamedField`, 1
    /// for MLPs and pointwise named modules.
    val outputs: c: ClosureDecl -> int

    /// True for closures evaluated on whole fields (`Cnn`, `NamedField`), false for pointwise ones.
    val isFieldwise: c: ClosureDecl -> bool
