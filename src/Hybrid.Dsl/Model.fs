// The public surface and its documentation: Model.fsi.
namespace Hybrid

[<RequireQualifiedAccess>]
type Domain =
    | Point
    | Interval of x0: float * x1: float * cells: int
    | Rectangle of x0: float * x1: float * y0: float * y1: float * nx: int * ny: int
    | Lattice of sites: int * fast: int

[<RequireQualifiedAccess>]
type Constraint =
    | Free
    | Positive
    | Bounded of lo: float * hi: float

[<RequireQualifiedAccess>]
type ParamShape =
    | Scalar
    | Spatial

[<RequireQualifiedAccess>]
type Activation =
    | Tanh
    | Relu
    | Gelu
    | Silu
    | Sigmoid
    | Softplus

[<RequireQualifiedAccess>]
type Architecture =
    | Mlp of layers: int list * activation: Activation
    | Named of string
    | Cnn of channels: int list * kernel: int * activation: Activation
    | NamedField of key: string * outputs: int

type FieldDecl = {
    Name: string
    Units: Units option
    Fast: bool
}

type ParamDecl = {
    Name: string
    Value: float
    Learnable: bool
    Constraint: Constraint
    Shape: ParamShape
    Units: Units option
}

// Declared before ForcingDecl, so that a record literal { Name = …; Units = … } still means a forcing.
type DiagnosticDecl = { Name: string; Units: Units option }

type ForcingDecl = { Name: string; Units: Units option }

type ClosureDecl = {
    Name: string
    Arity: int
    Architecture: Architecture
    Units: Units option
}

type ConstantDecl = {
    Name: string
    Value: float
    Units: Units option
}

type Equation = { Field: string; Rhs: Expr }

[<RequireQualifiedAccess>]
type Side =
    | Left
    | Right
    | Bottom
    | Top

[<RequireQualifiedAccess>]
type BoundaryCondition =
    | Periodic
    | Dirichlet of Expr
    | Neumann of Expr
    | NoFlux

type Boundary = {
    Field: string
    Side: Side
    Condition: BoundaryCondition
}

[<RequireQualifiedAccess>]
type InitialCondition =
    | Expr of Expr
    | FromData of string

type Initial = {
    Field: string
    Value: InitialCondition
}

type EllipticEquation = {
    Field: string
    Screening: float
    Rhs: Expr
}

type Model = {
    Name: string
    Domain: Domain
    Fields: FieldDecl list
    Params: ParamDecl list
    Forcings: ForcingDecl list
    Closures: ClosureDecl list
    Constants: ConstantDecl list
    Equations: Equation list
    Boundaries: Boundary list
    Initials: Initial list
    Diagnostics: DiagnosticDecl list
    EllipticEquations: EllipticEquation list
}

[<RequireQualifiedAccess>]
type SymbolKind =
    | Field
    | FastField
    | Parameter
    | Forcing
    | Closure
    | Constant
    | Coordinate
    | Diagnostic

[<RequireQualifiedAccess>]
module Model =

    let empty (name: string) : Model = {
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
        Diagnostics = []
        EllipticEquations = []
    }

    let field (name: string) : FieldDecl = {
        Name = name
        Units = None
        Fast = false
    }

    let param (name: string) (value: float) : ParamDecl = {
        Name = name
        Value = value
        Learnable = true
        Constraint = Constraint.Free
        Shape = ParamShape.Scalar
        Units = None
    }

    let sides (domain: Domain) : Side list =
        match domain with
        | Domain.Point
        | Domain.Lattice _ -> []
        | Domain.Interval _ -> [ Side.Left; Side.Right ]
        | Domain.Rectangle _ -> [ Side.Left; Side.Right; Side.Bottom; Side.Top ]

    let spatialDims (domain: Domain) : int =
        match domain with
        | Domain.Point
        | Domain.Lattice _ -> 0
        | Domain.Interval _ -> 1
        | Domain.Rectangle _ -> 2

    let withDomain (domain: Domain) (m: Model) : Model = { m with Domain = domain }

    // The add functions below copy the list they append to (O(n) each). The builder and the parser do not loop
    // over them: they collect declarations and build the record once, in linear time.

    let addField (f: FieldDecl) (m: Model) : Model = { m with Fields = m.Fields @ [ f ] }

    let addParam (p: ParamDecl) (m: Model) : Model = { m with Params = m.Params @ [ p ] }

    let addForcing (f: ForcingDecl) (m: Model) : Model = { m with Forcings = m.Forcings @ [ f ] }

    let addClosure (c: ClosureDecl) (m: Model) : Model = { m with Closures = m.Closures @ [ c ] }

    let addConstant (c: ConstantDecl) (m: Model) : Model = {
        m with
            Constants = m.Constants @ [ c ]
    }

    let addEquation (field: string) (rhs: Expr) (m: Model) : Model = {
        m with
            Equations = m.Equations @ [ { Field = field; Rhs = rhs } ]
    }

    let addDiagnostic (d: DiagnosticDecl) (m: Model) : Model = {
        m with
            Diagnostics = m.Diagnostics @ [ d ]
    }

    let addElliptic (field: string) (screening: float) (rhs: Expr) (m: Model) : Model = {
        m with
            EllipticEquations =
                m.EllipticEquations
                @ [
                    {
                        Field = field
                        Screening = screening
                        Rhs = rhs
                    }
                ]
    }

    let setBoundary (field: string) (side: Side) (bc: BoundaryCondition) (m: Model) : Model =
        let b = {
            Field = field
            Side = side
            Condition = bc
        }

        if m.Boundaries |> List.exists (fun x -> x.Field = field && x.Side = side) then
            {
                m with
                    Boundaries =
                        m.Boundaries
                        |> List.map (fun x -> if x.Field = field && x.Side = side then b else x)
            }
        else
            {
                m with
                    Boundaries = m.Boundaries @ [ b ]
            }

    let internal expandBoundaries
        (sides: Side list)
        (statements: (string * Side option * BoundaryCondition) seq)
        : Boundary list =
        let out = ResizeArray<Boundary>()
        // (field, side) → index in `out` of a condition set by an every-side statement, not yet replaced.
        let fromEverySide =
            System.Collections.Generic.Dictionary<struct (string * Side), int>()

        for field, side, bc in statements do
            match side with
            | Some s ->
                let b = {
                    Field = field
                    Side = s
                    Condition = bc
                }

                match fromEverySide.TryGetValue(struct (field, s)) with
                | true, k ->
                    out[k] <- b
                    fromEverySide.Remove(struct (field, s)) |> ignore
                | _ -> out.Add b
            | None ->
                for s in sides do
                    fromEverySide[struct (field, s)] <- out.Count

                    out.Add {
                        Field = field
                        Side = s
                        Condition = bc
                    }

        List.ofSeq out

    let setBoundaryAll (field: string) (bc: BoundaryCondition) (m: Model) : Model =
        sides m.Domain |> List.fold (fun m s -> setBoundary field s bc m) m

    let setInitial (field: string) (ic: InitialCondition) (m: Model) : Model =
        let others = m.Initials |> List.filter (fun i -> i.Field <> field)

        {
            m with
                Initials = others @ [ { Field = field; Value = ic } ]
        }

    let tryEquation (field: string) (m: Model) : Equation option =
        m.Equations |> List.tryFind (fun e -> e.Field = field)

    let declarations (m: Model) : (string * string) list =
        (m.Fields |> List.map (fun f -> f.Name, "field"))
        @ (m.Params |> List.map (fun p -> p.Name, "parameter"))
        @ (m.Forcings |> List.map (fun f -> f.Name, "forcing"))
        @ (m.Closures |> List.map (fun c -> c.Name, "closure"))
        @ (m.Constants |> List.map (fun c -> c.Name, "constant"))
        @ (m.Diagnostics |> List.map (fun d -> d.Name, "diagnostic field"))

    let outputs (c: ClosureDecl) : int =
        match c.Architecture with
        | Architecture.Mlp _
        | Architecture.Named _ -> 1
        | Architecture.Cnn(channels, _, _) -> (if channels.IsEmpty then 1 else List.last channels)
        | Architecture.NamedField(_, n) -> n

    let isFieldwise (c: ClosureDecl) : bool =
        match c.Architecture with
        | Architecture.Mlp _
        | Architecture.Named _ -> false
        | Architecture.Cnn _
        | Architecture.NamedField _ -> true

    let kindOf (name: string) (m: Model) : SymbolKind option =
        match m.Fields |> List.tryFind (fun f -> f.Name = name) with
        | Some f -> Some(if f.Fast then SymbolKind.FastField else SymbolKind.Field)
        | None ->
            if m.Params |> List.exists (fun p -> p.Name = name) then
                Some SymbolKind.Parameter
            elif m.Forcings |> List.exists (fun p -> p.Name = name) then
                Some SymbolKind.Forcing
            elif m.Closures |> List.exists (fun p -> p.Name = name) then
                Some SymbolKind.Closure
            elif m.Constants |> List.exists (fun p -> p.Name = name) then
                Some SymbolKind.Constant
            elif m.Diagnostics |> List.exists (fun d -> d.Name = name) then
                Some SymbolKind.Diagnostic
            elif List.contains name Expr.coordinates then
                Some SymbolKind.Coordinate
            else
                None
