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

/// The state of a `model { }` block: the model so far, and the boundary conditions given for all sides
/// (expanded when the block ends, once the domain is known).
type ModelState = {
    /// The model so far.
    Model: Model
    /// Boundary conditions in order: (field, side or None for every side, condition).
    PendingBoundaries: (string * Side option * BoundaryCondition) list
    /// Units given with `units`, applied when the block ends: (symbol, units text).
    PendingUnits: (string * string) list
}

/// The `model "name" { … }` computation expression. Each keyword is a record update; the block returns the
/// same `Model` value the programmatic API builds, checked by `Checks.validate`.
type ModelBuilder(name: string) =

    let update (s: ModelState) (f: Model -> Model) = { s with Model = f s.Model }

    /// The empty model.
    member _.Yield(_: unit) : ModelState = {
        Model = Model.empty name
        PendingBoundaries = []
        PendingUnits = []
    }

    /// Expands boundary conditions, applies units, checks the model and returns it.
    member _.Run(s: ModelState) : Model =
        let m0 = s.Model

        let withUnits =
            s.PendingUnits
            |> List.fold
                (fun (m: Model) (sym, text) ->
                    let u = Some(Units.parse text)
                    let mutable found = false

                    let fields =
                        m.Fields
                        |> List.map (fun f ->
                            if f.Name = sym then
                                found <- true
                                { f with Units = u }
                            else
                                f)

                    let pars =
                        m.Params
                        |> List.map (fun p ->
                            if p.Name = sym then
                                found <- true
                                { p with Units = u }
                            else
                                p)

                    let forcings =
                        m.Forcings
                        |> List.map (fun p ->
                            if p.Name = sym then
                                found <- true
                                { p with Units = u }
                            else
                                p)

                    let consts =
                        m.Constants
                        |> List.map (fun p ->
                            if p.Name = sym then
                                found <- true
                                { p with Units = u }
                            else
                                p)

                    let closures =
                        m.Closures
                        |> List.map (fun p ->
                            if p.Name = sym then
                                found <- true
                                { p with Units = u }
                            else
                                p)

                    if not found then
                        raise (
                            ModelException(
                                sprintf
                                    "Model '%s': units \"%s\" are given for '%s', which is not declared. Declare it first or fix the spelling."
                                    m.Name
                                    text
                                    sym
                            )
                        )

                    {
                        m with
                            Fields = fields
                            Params = pars
                            Forcings = forcings
                            Constants = consts
                            Closures = closures
                    })
                m0

        let sides = Model.sides m0.Domain

        let bcs =
            s.PendingBoundaries
            |> List.collect (fun (f, side, c) ->
                match side with
                | Some sd -> [ { Field = f; Side = sd; Condition = c } ]
                | None ->
                    if sides.IsEmpty then
                        raise (
                            ModelException(
                                sprintf
                                    "Model '%s': field '%s' has a boundary condition but the domain has no sides (0-D or lattice). Remove it, or declare e.g. domain (interval 0.0 1.0) (cells 100)."
                                    m0.Name
                                    f
                            )
                        )

                    sides |> List.map (fun sd -> { Field = f; Side = sd; Condition = c }))

        let m =
            bcs
            |> List.fold (fun m b -> Model.setBoundary b.Field b.Side b.Condition m) { withUnits with Boundaries = [] }

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

        update s (Model.withDomain d)

    /// domain point (0-D), domain (lattice 40), domain (twoScaleLattice 36 10), or any `Domain` value.
    [<CustomOperation("domain")>]
    member _.Domain(s: ModelState, domain: Domain) : ModelState = update s (Model.withDomain domain)

    /// field "u": declares a state variable (one equation ∂u/∂t = … each).
    [<CustomOperation("field")>]
    member _.Field(s: ModelState, fieldName: string) : ModelState =
        update s (Model.addField (Model.field fieldName))

    /// fastField "Y": declares a fast variable on a two-scale lattice's fast sub-lattice.
    [<CustomOperation("fastField")>]
    member _.FastField(s: ModelState, fieldName: string) : ModelState =
        update
            s
            (Model.addField {
                Model.field fieldName with
                    Fast = true
            })

    /// param "D" (positive 0.05): declares a parameter from a spec (positive, bounded, free, fixed, spatial).
    [<CustomOperation("param")>]
    member _.Param(s: ModelState, paramName: string, spec: ParamSpec) : ModelState =
        update
            s
            (Model.addParam {
                Name = paramName
                Value = spec.Value
                Learnable = spec.Learnable
                Constraint = spec.Constraint
                Shape = spec.Shape
                Units = None
            })

    /// param "a" 0.5: declares a learnable, unconstrained scalar parameter.
    [<CustomOperation("param")>]
    member _.Param(s: ModelState, paramName: string, value: float) : ModelState =
        update s (Model.addParam (Model.param paramName value))

    /// forcing "c": declares an input given as data under this name.
    [<CustomOperation("forcing")>]
    member _.Forcing(s: ModelState, forcingName: string) : ModelState =
        update s (Model.addForcing { Name = forcingName; Units = None })

    /// constant "F" 8.0: declares a named fixed number.
    [<CustomOperation("constant")>]
    member _.Constant(s: ModelState, constName: string, value: float) : ModelState =
        update
            s
            (Model.addConstant {
                Name = constName
                Value = value
                Units = None
            })

    /// neural "kill" (mlp [2; 32; 32; 1]): declares a neural closure, called in equations as kill(u, c).
    [<CustomOperation("neural")>]
    member _.Neural(s: ModelState, closureName: string, spec: ClosureSpec) : ModelState =
        update
            s
            (Model.addClosure {
                Name = closureName
                Arity = spec.Arity
                Architecture = spec.Architecture
                Units = None
            })

    /// units "D" "m^2/s": gives units to a declared symbol (checked by dimensional analysis).
    [<CustomOperation("units")>]
    member _.Units(s: ModelState, symbol: string, units: string) : ModelState = {
        s with
            PendingUnits = s.PendingUnits @ [ symbol, units ]
    }

    /// equation (dt u == rhs): adds the equation of a field.
    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, eq: Equation) : ModelState =
        update s (Model.addEquation eq.Field eq.Rhs)

    /// equation "du/dt = r*u": adds equations written as text (several separated by ';' or newlines).
    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, text: string) : ModelState =
        let eqs =
            text.Split([| ';'; '\n' |])
            |> Array.filter (fun l -> l.Trim() <> "")
            |> Array.map Parse.equation

        update s (fun m -> eqs |> Array.fold (fun m e -> Model.addEquation e.Field e.Rhs m) m)

    /// boundary "u" noFlux: the same condition on every side of the domain.
    [<CustomOperation("boundary")>]
    member _.Boundary(s: ModelState, fieldName: string, condition: BoundaryCondition) : ModelState = {
        s with
            PendingBoundaries = s.PendingBoundaries @ [ fieldName, None, condition ]
    }

    /// boundary "u" left (dirichlet 1.0): a condition on one side.
    [<CustomOperation("boundary")>]
    member _.Boundary(s: ModelState, fieldName: string, side: Side, condition: BoundaryCondition) : ModelState = {
        s with
            PendingBoundaries = s.PendingBoundaries @ [ fieldName, Some side, condition ]
    }

    /// initial "u" (fun x -> exp (-(x - 5.0) ** 2)): the initial condition as a function of x (on lattices,
    /// x is the site index).
    [<CustomOperation("initial")>]
    member _.Initial(s: ModelState, fieldName: string, f: Expr -> Expr) : ModelState =
        update s (Model.setInitial fieldName (InitialCondition.Expr(f (Sym "x"))))

    /// initial2 "u" (fun x y -> …): the initial condition as a function of x and y (2-D).
    [<CustomOperation("initial2")>]
    member _.Initial2(s: ModelState, fieldName: string, f: Expr -> Expr -> Expr) : ModelState =
        update s (Model.setInitial fieldName (InitialCondition.Expr(f (Sym "x") (Sym "y"))))

    /// initialValue "u" 0.5 (or an expression): a constant or closed-form initial condition.
    [<CustomOperation("initialValue")>]
    member _.InitialValue(s: ModelState, fieldName: string, value: float) : ModelState =
        update s (Model.setInitial fieldName (InitialCondition.Expr(Num value)))

    /// initialValue "u" expr: an initial condition given as an expression of the coordinates.
    [<CustomOperation("initialValue")>]
    member _.InitialValue(s: ModelState, fieldName: string, value: Expr) : ModelState =
        update s (Model.setInitial fieldName (InitialCondition.Expr value))

    /// initialData "u" "u0": the initial values come from data under this key.
    [<CustomOperation("initialData")>]
    member _.InitialData(s: ModelState, fieldName: string, key: string) : ModelState =
        update s (Model.setInitial fieldName (InitialCondition.FromData key))

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
