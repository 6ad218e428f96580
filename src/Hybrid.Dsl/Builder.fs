// The public surface and its documentation: Builder.fsi.
namespace Hybrid

type DomainShape =
    | IntervalShape of x0: float * x1: float
    | RectangleShape of x0: float * x1: float * y0: float * y1: float

type Resolution = Cells of int list

type ParamSpec = {
    Value: float
    Constraint: Constraint
    Learnable: bool
    Shape: ParamShape
}

type ClosureSpec = {
    Arity: int
    Architecture: Architecture
}

type TimeDerivative = {
    Field: string
} with

    static member (==)(lhs: TimeDerivative, rhs: Expr) : Equation = { Field = lhs.Field; Rhs = rhs }

    static member (==)(lhs: TimeDerivative, rhs: float) : Equation = { Field = lhs.Field; Rhs = Num rhs }

type EllipticOperator = {
    Field: string
    Screening: float
} with

    static member (==)(lhs: EllipticOperator, rhs: Expr) : EllipticEquation = {
        Field = lhs.Field
        Screening = lhs.Screening
        Rhs = rhs
    }

    static member (==)(lhs: EllipticOperator, rhs: float) : EllipticEquation = {
        Field = lhs.Field
        Screening = lhs.Screening
        Rhs = Num rhs
    }

type ModelState = private {
    Name: string
    Domain: Domain
    Fields: FieldDecl list
    Params: ParamDecl list
    Forcings: ForcingDecl list
    Closures: ClosureDecl list
    Constants: ConstantDecl list
    Equations: Equation list
    Boundaries: (string * Side option * BoundaryCondition) list
    Initials: Initial list
    Units: (string * string) list
    Diagnostics: DiagnosticDecl list
    EllipticEquations: EllipticEquation list
}

type ModelBuilder(name: string) =

    member _.Yield(_: 'T) : ModelState = {
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
        Diagnostics = []
        EllipticEquations = []
    }

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

        let diagnostics =
            s.Diagnostics
            |> List.rev
            |> List.map (fun d -> {
                d with
                    Units = unitsOf d.Name d.Units
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
            Diagnostics = diagnostics
            EllipticEquations = List.rev s.EllipticEquations
        }

        Checks.validate m
        m

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

    [<CustomOperation("domain")>]
    member _.Domain(s: ModelState, domain: Domain) : ModelState = { s with Domain = domain }

    [<CustomOperation("field")>]
    member _.Field(s: ModelState, fieldName: string) : ModelState = {
        s with
            Fields = Model.field fieldName :: s.Fields
    }

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

    [<CustomOperation("param")>]
    member _.Param(s: ModelState, paramName: string, value: float) : ModelState = {
        s with
            Params = Model.param paramName value :: s.Params
    }

    [<CustomOperation("forcing")>]
    member _.Forcing(s: ModelState, forcingName: string) : ModelState = {
        s with
            Forcings = { Name = forcingName; Units = None } :: s.Forcings
    }

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

    [<CustomOperation("units")>]
    member _.Units(s: ModelState, symbol: string, units: string) : ModelState = {
        s with
            Units = (symbol, units) :: s.Units
    }

    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, eq: Equation) : ModelState = { s with Equations = eq :: s.Equations }

    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, text: string) : ModelState =
        if isNull text then
            nullArg "text"

        let lines = text.Split([| ';'; '\n' |]) |> Array.filter (fun l -> l.Trim() <> "")

        // Δψ = … (lap(psi) = …) is a diagnostic field's elliptic equation; anything else a time equation.
        let elliptic, timed = lines |> Array.partition EllipticStatement.startsElliptic
        let eqs = timed |> Array.map Parse.equation

        {
            s with
                Equations = Array.fold (fun acc e -> e :: acc) s.Equations eqs
                EllipticEquations =
                    elliptic
                    |> Array.map Parse.ellipticEquation
                    |> Array.fold (fun acc e -> e :: acc) s.EllipticEquations
        }

    [<CustomOperation("equation")>]
    member _.Equation(s: ModelState, eq: EllipticEquation) : ModelState = {
        s with
            EllipticEquations = eq :: s.EllipticEquations
    }

    [<CustomOperation("diagnostic")>]
    member _.Diagnostic(s: ModelState, fieldName: string) : ModelState = {
        s with
            Diagnostics = ({ Name = fieldName; Units = None }: DiagnosticDecl) :: s.Diagnostics
    }

    [<CustomOperation("boundary")>]
    member _.Boundary(s: ModelState, fieldName: string, condition: BoundaryCondition) : ModelState = {
        s with
            Boundaries = (fieldName, None, condition) :: s.Boundaries
    }

    [<CustomOperation("boundary")>]
    member _.Boundary(s: ModelState, fieldName: string, side: Side, condition: BoundaryCondition) : ModelState = {
        s with
            Boundaries = (fieldName, Some side, condition) :: s.Boundaries
    }

    member private _.AddInitial(s: ModelState, fieldName: string, ic: InitialCondition) : ModelState = {
        s with
            Initials = { Field = fieldName; Value = ic } :: s.Initials
    }

    [<CustomOperation("initial")>]
    member b.Initial(s: ModelState, fieldName: string, f: Expr -> Expr) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr(f (Sym "x")))

    [<CustomOperation("initial2")>]
    member b.Initial2(s: ModelState, fieldName: string, f: Expr -> Expr -> Expr) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr(f (Sym "x") (Sym "y")))

    [<CustomOperation("initialValue")>]
    member b.InitialValue(s: ModelState, fieldName: string, value: float) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr(Num value))

    [<CustomOperation("initialValue")>]
    member b.InitialValue(s: ModelState, fieldName: string, value: Expr) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.Expr value)

    [<CustomOperation("initialData")>]
    member b.InitialData(s: ModelState, fieldName: string, key: string) : ModelState =
        b.AddInitial(s, fieldName, InitialCondition.FromData key)

[<AutoOpen>]
module Dsl =

    let model (name: string) = ModelBuilder(name)

    let sym (name: string) : Expr = Sym name

    let num (v: float) : Expr = Num v

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

    let private ellipticOperator (what: string) (psi: Expr) (kappa2: float) : EllipticOperator =
        match psi with
        | Sym n -> { Field = n; Screening = kappa2 }
        | other ->
            raise (
                ModelException(
                    sprintf
                        "%s needs a diagnostic field symbol, as in %s psi == …, but was given '%s'."
                        what
                        what
                        (Print.expr Notation.Unicode other)
                )
            )

    let poisson (psi: Expr) : EllipticOperator = ellipticOperator "poisson" psi 0.0

    let screenedPoisson (psi: Expr) (kappa2: float) : EllipticOperator =
        ellipticOperator "screenedPoisson" psi kappa2

    let div (e: Expr) : Expr = Divergence e
    let grad (e: Expr) : Expr = Grad e
    let lap (e: Expr) : Expr = Laplacian e
    let dx (e: Expr) : Expr = Partial(Axis.X, e)
    let dy (e: Expr) : Expr = Partial(Axis.Y, e)
    let advect (v: Expr) (u: Expr) : Expr = Advect([ v ], u)
    let advect2 (vx: Expr) (vy: Expr) (u: Expr) : Expr = Advect([ vx; vy ], u)
    let sigmoid (e: Expr) : Expr = Apply(Fn.Sigmoid, e)
    let softplus (e: Expr) : Expr = Apply(Fn.Softplus, e)
    let emin (a: Expr) (b: Expr) : Expr = Min(a, b)
    let emax (a: Expr) (b: Expr) : Expr = Max(a, b)
    let call (name: string) (args: Expr list) : Expr = Call(name, args)
    let jacobian (a: Expr) (b: Expr) : Expr = Jacobian(a, b)
    let advectFlux (v: Expr) (q: Expr) : Expr = FluxAdvect([ v ], q)
    let advectFlux2 (vx: Expr) (vy: Expr) (q: Expr) : Expr = FluxAdvect([ vx; vy ], q)
    let callOutput (name: string) (index: int) (args: Expr list) : Expr = CallOutput(name, index, args)

    let shift (u: Expr) (m: int) : Expr =
        match u with
        | Sym n -> Shift(n, LatticeIndex.K, m)
        | _ -> raise (ModelException "shift needs a field symbol, as in shift X 1 for X[k+1].")

    let shiftFast (y: Expr) (m: int) : Expr =
        match y with
        | Sym n -> Shift(n, LatticeIndex.J, m)
        | _ -> raise (ModelException "shiftFast needs a fast field symbol, as in shiftFast Y 1 for Y[j+1].")

    let sumFast (e: Expr) : Expr = FastSum e

    let point: Domain = Domain.Point
    let interval (x0: float) (x1: float) : DomainShape = IntervalShape(x0, x1)
    let rectangle (x0: float, x1: float) (y0: float, y1: float) : DomainShape = RectangleShape(x0, x1, y0, y1)
    let cells (n: int) : Resolution = Cells [ n ]
    let cells2 (nx: int) (ny: int) : Resolution = Cells [ nx; ny ]
    let lattice (k: int) : Domain = Domain.Lattice(k, 0)
    let twoScaleLattice (k: int) (j: int) : Domain = Domain.Lattice(k, j)

    let positive (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Positive
        Learnable = true
        Shape = ParamShape.Scalar
    }

    let bounded (lo: float) (hi: float) (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Bounded(lo, hi)
        Learnable = true
        Shape = ParamShape.Scalar
    }

    let free (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Free
        Learnable = true
        Shape = ParamShape.Scalar
    }

    let fixedAt (value: float) : ParamSpec = {
        Value = value
        Constraint = Constraint.Free
        Learnable = false
        Shape = ParamShape.Scalar
    }

    let fixedParam (spec: ParamSpec) : ParamSpec = { spec with Learnable = false }

    let spatial (spec: ParamSpec) : ParamSpec = { spec with Shape = ParamShape.Spatial }

    let mlp (layers: int list) : ClosureSpec = {
        Arity =
            (match layers with
             | first :: _ -> first
             | [] -> 0)
        Architecture = Architecture.Mlp(layers, Activation.Tanh)
    }

    let mlpWith (activation: Activation) (layers: int list) : ClosureSpec = {
        mlp layers with
            Architecture = Architecture.Mlp(layers, activation)
    }

    let named (key: string) (arity: int) : ClosureSpec = {
        Arity = arity
        Architecture = Architecture.Named key
    }

    let cnnWith (activation: Activation) (kernel: int) (channels: int list) : ClosureSpec = {
        Arity =
            (match channels with
             | first :: _ -> first
             | [] -> 0)
        Architecture = Architecture.Cnn(channels, kernel, activation)
    }

    let cnn (channels: int list) : ClosureSpec = cnnWith Activation.Tanh 3 channels

    let namedField (key: string) (arity: int) (outputs: int) : ClosureSpec = {
        Arity = arity
        Architecture = Architecture.NamedField(key, outputs)
    }

    let noFlux: BoundaryCondition = BoundaryCondition.NoFlux
    let periodic: BoundaryCondition = BoundaryCondition.Periodic
    let dirichlet (value: float) : BoundaryCondition = BoundaryCondition.Dirichlet(Num value)
    let dirichletExpr (value: Expr) : BoundaryCondition = BoundaryCondition.Dirichlet value
    let neumann (flux: float) : BoundaryCondition = BoundaryCondition.Neumann(Num flux)
    let neumannExpr (flux: Expr) : BoundaryCondition = BoundaryCondition.Neumann flux

    let left: Side = Side.Left
    let right: Side = Side.Right
    let bottom: Side = Side.Bottom
    let top: Side = Side.Top
