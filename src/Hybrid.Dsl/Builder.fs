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

    /// ∂u/∂t = rhs
    static member (==)(lhs: TimeDerivative, rhs: Expr) : Equation = { Field = lhs.Field; Rhs = rhs }

    /// ∂u/∂t = constant
    static member (==)(lhs: TimeDerivative, rhs: float) : Equation = { Field = lhs.Field; Rhs = Num rhs }

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
}

/// The `model "name" { … }` computation expression. Each keyword is a record update; the block returns the
/// same `Model` value the programmatic API builds, checked by `Checks.validate`. A second initial condition for
/// a field, or a second boundary condition for a field and side, is refused by the checks like a second
/// equation; a boundary for one side after one for every side of the same field replaces it on that side.
type ModelBuilder
    /// Creates the builder of the model called `name` (what `model "name"` does).
    (name: string) =

    /// The empty model.
    member _.Yield(_: unit) : ModelState = {
        Name = name
        Domain = Domain.Point
        Fields = []
        Params = []
        Forcings = []
        Closures = []
        Constants = []
        Equations = []
        Boundaries = []
        Initials = []
        Units = []
    }

    /// Expands boundary conditions, applies units, checks the model and returns it.
    member _.Run(s: ModelState) : Model =
        // The units of each symbol (the last `units` line wins), applied in one pass over each list.
        let given = System.Collections.Generic.Dictionary<string, string>()

        for sym, text in List.rev s.Units do
            given[sym] <- text

        let parsed = given |> Seq.map (fun kv -> kv.Key, Some(Units.parse kv.Value)) |> dict

        let found = System.Collections.Generic.HashSet<string>()

        let unitsOf (sym: string) (current: Units option) =
            match parsed.TryGetValue sym with
            | true, u ->
                found.Add sym |> ignore
                u
            | _ -> current

        let fields =
            s.Fields
            |> List.rev
            |> List.map (fun f -> {
                f with
                    Units = unitsOf f.Name f.Units
            })

        let pars =
            s.Params
            |> List.rev
            |> List.map (fun p -> {
                p with
                    Units = unitsOf p.Name p.Units
            })

        let forcings =
            s.Forcings
            |> List.rev
            |> List.map (fun p -> {
                p with
                    Units = unitsOf p.Name p.Units
            })

        let consts =
            s.Constants
            |> List.rev
            |> List.map (fun p -> {
                p with
                    Units = unitsOf p.Name p.Units
            })

        let closures =
            s.Closures
            |> List.rev
            |> List.map (fun p -> {
                p with
                    Units = unitsOf p.Name p.Units
            })

        for sym, text in List.rev s.Units do
            if not (found.Contains sym) then
                raise (
                    ModelException(
                        sprintf
                            "Model '%s': units \"%s\" are given for '%s', which is not declared. Declare it first or fix the spelling."
                            s.Name
                            text
                            sym
                    )
                )

        let sides = Model.sides s.Domain
        let boundaries = List.rev s.Boundaries

        if sides.IsEmpty then
            match boundaries |> List.tryFind (fun (_, side, _) -> side.IsNone) with
            | Some(f, _, _) ->
                raise (
                    ModelException(
                        sprintf
                            "Model '%s': field '%s' has a boundary condition but the domain has no sides (0-D or lattice). Remove it, or declare e.g. domain (interval 0.0 1.0) (cells 100)."
                            s.Name
                            f
                    )
                )
            | None -> ()

        let m = {
            Name = s.Name
            Domain = s.Domain
            Fields = fields
            Params = pars
            Forcings = forcings
            Closures = closures
            Constants = consts
            Equations = List.rev s.Equations
            Boundaries = Model.expandBoundaries sides boundaries
            Initials = List.rev s.Initials
        }

        Checks.validate m
        m

    /// domain (interval 0.0 1.0) (cells 100), or domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 64 64).
    [<CustomOperation("domain")>]
    member _.Domain(s: ModelState, shape: DomainShape, resolution: Resolution) : ModelState =
        let d =
            match shape, resolution with
            | IntervalShape(a, b), Cells [ n ] -> Domain.Interval(a, b, n)
            | RectangleShape(a, b, c, d), Cells [ nx; ny ] -> Domain.Rectangle(a, b, c, d, nx, ny)
            | IntervalShape _, Cells ns ->
                raise (
                    ModelException(
                        sprintf "An interval needs one cell count but was given %d. Use (cells n)." ns.Length
                    )
                )
            | RectangleShape _, Cells ns ->
                raise (
                    ModelException(
                        sprintf "A rectangle needs two cell counts but was given %d. Use (cells2 nx ny)." ns.Length
                    )
                )

        { s with Domain = d }

    /// domain point (0-D), domain (lattice 40), domain (twoScaleLattice 36 10), or any `Domain` value.
    [<CustomOperation("domain")>]
    member _.Domain(s: ModelState, domain: Domain) : ModelState = { s with Domain = domain }

    /// field "u": declares a state variable (one equation ∂u/∂t = … each).
    [<CustomOperation("field")>]
    member _.Field(s: ModelState, fieldName: string) : ModelState = {
        s with
            Fields = Model.field fieldName :: s.Fields
    }

    /// fastField "Y": declares a fast variable on a two-scale lattice's fast sub-lattice.
    [<CustomOperation("fastField")>]
    member _.FastField(s: ModelState, fieldName: string) : ModelState = {
        s with
            Fields =
                {
                    Model.field fieldName with
                        Fast = true
                }
                :: s.Fields
    }

    /// param "D" (positive 0.05): declares a parameter from a spec (positive, bounded, free, fixed, spatial).
    [<CustomOperation("param")>]
    member _.Param(s: ModelState, paramName: string, spec: ParamSpec) : ModelState = {
        s with
            Params =
                {
                    Name = paramName
                    Value = spec.Value
                    Learnable = spec.Learnable
                    Constraint = spec.Constraint
                    Shape = spec.Shape
                    Units = None
                }
                :: s.Params
    }

    /// param "a" 0.5: declares a learnable, unconstrained scalar parameter.
    [<CustomOperation("param")>]
    member _.Param(s: ModelState, paramName: string, value: float) : ModelState = {
        s with
            Params = Model.param paramName value :: s.Params
    }

    /// forcing "c": declares an input given as data under this name.
    [<CustomOperation("forcing")>]
    member _.Forcing(s: ModelState, forcingName: string) : ModelState = {
        s with
            Forcings = { Name = forcingName; Units = None } :: s.Forcings
    }

    /// constant "F" 8.0: declares a named fixed number.
    [<CustomOperation("constant")>]
    member _.Constant(s: ModelState, constName: string, value: float) : ModelState = {
        s with
            Constants =
                {
                    Name = constName
                    Value = value
                    Units = None
                }
                :: s.Constants
    }

    /// neural "kill" (mlp [2; 32; 32; 1]): declares a neural closure, called in equations as kill(u, c).
    [<CustomOperation("neural")>]
    member _.Neural(s: ModelState, closureName: string, spec: ClosureSpec) : ModelState = {
        s with
            Closures =
                {
                    Name = closureName
                    Arity = spec.Arity
                    Architecture = spec.Architecture
                    Units = None
                }
                :: s.Closures
    }

    /// units "D" "m^2/s": gives units to a declared symbol (checked by dimensional analysis).
    [<CustomOperation("units")>]
    member _.Units(s: ModelState, symbol: string, units: string) : ModelState = {
        s with
            Units = (symbol, units) :: s.Units
    }

    /// equation (dt u == rhs): adds the equation of a field.
    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, eq: Equation) : ModelState = { s with Equations = eq :: s.Equations }

    /// equation "du/dt = r*u": adds equations written as text (several separated by ';' or newlines).
    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, text: string) : ModelState =
        if isNull text then
            nullArg "text"

        let eqs =
            text.Split([| ';'; '\n' |])
            |> Array.filter (fun l -> l.Trim() <> "")
            |> Array.map Parse.equation

        {
            s with
                Equations = Array.fold (fun acc e -> e :: acc) s.Equations eqs
        }

    /// boundary "u" noFlux: the same condition on every side of the domain.
    [<CustomOperation("boundary")>]
    member _.Boundary(s: ModelState, fieldName: string, condition: BoundaryCondition) : ModelState = {
        s with
            Boundaries = (fieldName, None, condition) :: s.Boundaries
    }

    /// boundary "u" left (dirichlet 1.0): a condition on one side (after `boundary "u" noFlux` it replaces
    /// that condition on this side).
    [<CustomOperation("boundary")>]
    member _.Boundary(s: ModelState, fieldName: string, side: Side, condition: BoundaryCondition) : ModelState = {
        s with
            Boundaries = (fieldName, Some side, condition) :: s.Boundaries
    }

    member private _.AddInitial(s: ModelState, fieldName: string, ic: InitialCondition) : ModelState = {
        s with
            Initials = { Field = fieldName; Value = ic } :: s.Initials
    }

    /// initial "u" (fun x -> exp (-(x - 5.0) ** 2)): the initial condition as a function of x (on lattices,
    /// x is the site index).
    [<CustomOperation("initial")>]
    member b.Initial(s: ModelState, fieldName: string, f: Expr -> Expr) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr(f (Sym "x")))

    /// initial2 "u" (fun x y -> …): the initial condition as a function of x and y (2-D).
    [<CustomOperation("initial2")>]
    member b.Initial2(s: ModelState, fieldName: string, f: Expr -> Expr -> Expr) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr(f (Sym "x") (Sym "y")))

    /// initialValue "u" 0.5 (or an expression): a constant or closed-form initial condition.
    [<CustomOperation("initialValue")>]
    member b.InitialValue(s: ModelState, fieldName: string, value: float) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr(Num value))

    /// initialValue "u" expr: an initial condition given as an expression of the coordinates.
    [<CustomOperation("initialValue")>]
    member b.InitialValue(s: ModelState, fieldName: string, value: Expr) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr value)

    /// initialData "u" "u0": the initial values come from data under this key.
    [<CustomOperation("initialData")>]
    member b.InitialData(s: ModelState, fieldName: string, key: string) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.FromData key)

/// The words of the `model { }` language: the builder, domains, parameter specs, closures, boundary
/// conditions and math operators on `Expr`. Open `Hybrid` and these are in scope.
[<AutoOpen>]
module Dsl =

    /// Starts a model: `model "name" { … }`.
    let model (name: string) = ModelBuilder(name)

    /// A symbol by name, e.g. `let u = sym "u"`.
    let sym (name: string) : Expr = Sym name

    /// A number as an expression.
    let num (v: float) : Expr = Num v

    /// The left-hand side ∂u/∂t: `dt u == rhs`. Raises ModelException unless `u` is a symbol.
    let dt (u: Expr) : TimeDerivative =
        match u with
        | Sym n -> { Field = n }
        | other ->
            raise (
                ModelException(
                    sprintf
                        "dt needs a field symbol, as in dt u == …, but was given '%s'."
                        (Print.expr Notation.Unicode other)
                )
            )

    /// ∇·e
    let div (e: Expr) : Expr = Divergence e
    /// ∇e
    let grad (e: Expr) : Expr = Grad e
    /// Δe = ∇²e
    let lap (e: Expr) : Expr = Laplacian e
    /// ∂e/∂x
    let dx (e: Expr) : Expr = Partial(Axis.X, e)
    /// ∂e/∂y
    let dy (e: Expr) : Expr = Partial(Axis.Y, e)
    /// (v·∇)u in 1-D.
    let advect (v: Expr) (u: Expr) : Expr = Advect([ v ], u)
    /// ((vx, vy)·∇)u in 2-D.
    let advect2 (vx: Expr) (vy: Expr) (u: Expr) : Expr = Advect([ vx; vy ], u)
    /// 1 / (1 + e⁻ᵉ)
    let sigmoid (e: Expr) : Expr = Apply(Fn.Sigmoid, e)
    /// log(1 + eᵉ)
    let softplus (e: Expr) : Expr = Apply(Fn.Softplus, e)
    /// min(a, b) of expressions.
    let emin (a: Expr) (b: Expr) : Expr = Min(a, b)
    /// max(a, b) of expressions.
    let emax (a: Expr) (b: Expr) : Expr = Max(a, b)
    /// A closure call: `let kill = call "kill"` then `kill [u; c]`.
    let call (name: string) (args: Expr list) : Expr = Call(name, args)

    /// u[k+m]: a slow field shifted along the periodic lattice.
    let shift (u: Expr) (m: int) : Expr =
        match u with
        | Sym n -> Shift(n, LatticeIndex.K, m)
        | _ -> raise (ModelException "shift needs a field symbol, as in shift X 1 for X[k+1].")

    /// Y[j+m]: a fast field shifted along the fast ring.
    let shiftFast (y: Expr) (m: int) : Expr =
        match y with
        | Sym n -> Shift(n, LatticeIndex.J, m)
        | _ -> raise (ModelException "shiftFast needs a fast field symbol, as in shiftFast Y 1 for Y[j+1].")

    /// Σⱼ e over the fast sites of each slow site.
    let sumFast (e: Expr) : Expr = FastSum e

    /// A 0-D model (ODEs).
    let point: Domain = Domain.Point
    /// [x0, x1]; combine with `cells`: domain (interval 0.0 1.0) (cells 100).
    let interval (x0: float) (x1: float) : DomainShape = IntervalShape(x0, x1)
    /// [x0, x1] × [y0, y1]; combine with `cells2`.
    let rectangle (x0: float, x1: float) (y0: float, y1: float) : DomainShape = RectangleShape(x0, x1, y0, y1)
    /// n cells on an interval.
    let cells (n: int) : Resolution = Cells [ n ]
    /// nx × ny cells on a rectangle.
    let cells2 (nx: int) (ny: int) : Resolution = Cells [ nx; ny ]
    /// A periodic lattice of k sites.
    let lattice (k: int) : Domain = Domain.Lattice(k, 0)
    /// A periodic lattice of k slow sites with j fast sites each (two-scale Lorenz-96).
    let twoScaleLattice (k: int) (j: int) : Domain = Domain.Lattice(k, j)

    /// A learnable parameter kept > 0, starting at `value`.
    let positive (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Positive
        Learnable = true
        Shape = ParamShape.Scalar
    }

    /// A learnable parameter kept in [lo, hi], starting at `value`.
    let bounded (lo: float) (hi: float) (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Bounded(lo, hi)
        Learnable = true
        Shape = ParamShape.Scalar
    }

    /// A learnable unconstrained parameter starting at `value`.
    let free (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Free
        Learnable = true
        Shape = ParamShape.Scalar
    }

    /// A fixed (not learnable) parameter with this value.
    let fixedAt (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Free
        Learnable = false
        Shape = ParamShape.Scalar
    }

    /// Makes a parameter spec not learnable: `positive 0.1 |> fixedParam`.
    let fixedParam (spec: ParamSpec) : ParamSpec = { spec with Learnable = false }

    /// Makes a parameter one value per cell: `positive 0.05 |> spatial`.
    let spatial (spec: ParamSpec) : ParamSpec = { spec with Shape = ParamShape.Spatial }

    /// A pointwise MLP with tanh between hidden layers; widths from inputs (= arity) to output 1.
    let mlp (layers: int list) : ClosureSpec = {
        Arity =
            (match layers with
             | first :: _ -> first
             | [] -> 0)
        Architecture = Architecture.Mlp(layers, Activation.Tanh)
    }

    /// A pointwise MLP with the given activation.
    let mlpWith (activation: Activation) (layers: int list) : ClosureSpec = {
        mlp layers with
            Architecture = Architecture.Mlp(layers, activation)
    }

    /// A module supplied to the compiler under `key`, taking `arity` arguments.
    let named (key: string) (arity: int) : ClosureSpec = {
        Arity = arity
        Architecture = Architecture.Named key
    }

    /// Zero flux through the side.
    let noFlux: BoundaryCondition = BoundaryCondition.NoFlux
    /// The side wraps to the opposite side.
    let periodic: BoundaryCondition = BoundaryCondition.Periodic
    /// The field takes this value on the side.
    let dirichlet (value: float) : BoundaryCondition = BoundaryCondition.Dirichlet(Num value)
    /// The field takes this expression's value on the side.
    let dirichletExpr (value: Expr) : BoundaryCondition = BoundaryCondition.Dirichlet value
    /// The outward normal derivative takes this value.
    let neumann (flux: float) : BoundaryCondition = BoundaryCondition.Neumann(Num flux)
    /// The outward normal derivative takes this expression's value.
    let neumannExpr (flux: Expr) : BoundaryCondition = BoundaryCondition.Neumann flux

    /// x = x0
    let left: Side = Side.Left
    /// x = x1
    let right: Side = Side.Right
    /// y = y0
    let bottom: Side = Side.Bottom
    /// y = y1
    let top: Side = Side.Top
