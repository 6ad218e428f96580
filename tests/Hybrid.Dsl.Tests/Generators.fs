/// FsCheck generators of expression trees for the property tests.
module Hybrid.Dsl.Tests.Generators

open FsCheck
open FsCheck.FSharp
open Hybrid

let private names = [ "a"; "b"; "c"; "u"; "v"; "alpha"; "X"; "D2"; "k"; "θ" ]

let private numbers =
    Gen.oneof [
        Gen.elements [ 0.0; 1.0; 2.0; 0.5; 3.25; 10.0; 1e-5; 1.5e20; -1.0; -2.5; -0.0; 7.0 ]
        Gen.choose (-1000, 1000) |> Gen.map (fun i -> float i / 8.0)
        ArbMap.defaults |> ArbMap.generate<NormalFloat> |> Gen.map float
    ]

let private fns = [
    Fn.Exp
    Fn.Log
    Fn.Sqrt
    Fn.Abs
    Fn.Sin
    Fn.Cos
    Fn.Tanh
    Fn.Sigmoid
    Fn.Softplus
]

/// Any expression the text form can express (spatial operators, calls, shifts, fast sums included).
let rec anyExpr (size: int) : Gen<Expr> =
    let leaf =
        Gen.oneof [
            numbers |> Gen.map Num
            Gen.elements names |> Gen.map Sym
            gen {
                let! n = Gen.elements [ "u"; "X"; "Y" ]
                let! ix = Gen.elements [ LatticeIndex.K; LatticeIndex.J ]
                let! m = Gen.choose (-3, 3)
                return Shift(n, ix, m)
            }
        ]

    if size <= 0 then
        leaf
    else
        let sub = anyExpr (size / 2)

        Gen.frequency [
            2, leaf
            1, sub |> Gen.map Neg
            1, Gen.map2 (fun a b -> Add(a, b)) sub sub
            1, Gen.map2 (fun a b -> Sub(a, b)) sub sub
            1, Gen.map2 (fun a b -> Mul(a, b)) sub sub
            1, Gen.map2 (fun a b -> Div(a, b)) sub sub
            1, Gen.map2 (fun a n -> PowInt(a, n)) sub (Gen.choose (-3, 12))
            1, Gen.map2 (fun a b -> PowReal(a, b)) sub sub
            1, Gen.map2 (fun f a -> Apply(f, a)) (Gen.elements fns) sub
            1, Gen.map2 (fun a b -> Min(a, b)) sub sub
            1, Gen.map2 (fun a b -> Max(a, b)) sub sub
            1,
            gen {
                let! n = Gen.elements [ "kill"; "f"; "net2" ]
                let! k = Gen.choose (1, 3)
                let! args = Gen.listOfLength k sub
                return Call(n, args)
            }
            1,
            gen {
                let! n = Gen.elements [ "sgs"; "f" ]
                let! i = Gen.choose (1, 3)
                let! k = Gen.choose (1, 3)
                let! args = Gen.listOfLength k sub
                return CallOutput(n, i, args)
            }
            1, Gen.map2 (fun ax a -> Partial(ax, a)) (Gen.elements [ Axis.X; Axis.Y ]) sub
            1, sub |> Gen.map Grad
            1, sub |> Gen.map Divergence
            1, sub |> Gen.map Laplacian
            1,
            gen {
                let! k = Gen.choose (1, 2)
                let! vs = Gen.listOfLength k sub
                let! u = sub
                return Advect(vs, u)
            }
            1, sub |> Gen.map FastSum
            1, Gen.map2 (fun a b -> Jacobian(a, b)) sub sub
            1,
            gen {
                let! k = Gen.choose (1, 2)
                let! vs = Gen.listOfLength k sub
                let! q = sub
                return FluxAdvect(vs, q)
            }
        ]

/// Pointwise expressions in the symbols a, b, c that are smooth where finite (for derivative checks).
let rec smoothExpr (size: int) : Gen<Expr> =
    let leaf =
        Gen.oneof [
            Gen.choose (-20, 20) |> Gen.map (fun i -> Num(float i / 4.0))
            Gen.elements [ "a"; "b"; "c" ] |> Gen.map Sym
        ]

    if size <= 0 then
        leaf
    else
        let sub = smoothExpr (size / 2)
        let positive = sub |> Gen.map (fun e -> Add(Num 1.0, PowInt(e, 2)))

        Gen.frequency [
            2, leaf
            1, sub |> Gen.map Neg
            2, Gen.map2 (fun a b -> Add(a, b)) sub sub
            2, Gen.map2 (fun a b -> Sub(a, b)) sub sub
            2, Gen.map2 (fun a b -> Mul(a, b)) sub sub
            1, Gen.map2 (fun a b -> Div(a, b)) sub positive
            1, Gen.map2 (fun a n -> PowInt(a, n)) sub (Gen.choose (0, 3))
            1, Gen.map2 (fun a b -> PowReal(a, b)) positive (sub |> Gen.map (fun e -> Apply(Fn.Tanh, e)))
            1, Gen.map2 (fun f a -> Apply(f, a)) (Gen.elements [ Fn.Sin; Fn.Cos; Fn.Tanh; Fn.Sigmoid; Fn.Softplus ]) sub
            1, positive |> Gen.map (fun e -> Apply(Fn.Log, e))
            1, positive |> Gen.map (fun e -> Apply(Fn.Sqrt, e))
            1, sub |> Gen.map (fun e -> Apply(Fn.Exp, Apply(Fn.Tanh, e)))
        ]

/// Pointwise expressions including the non-smooth ones (abs, min, max) and arbitrary division.
let rec pointwiseExpr (size: int) : Gen<Expr> =
    if size <= 0 then
        smoothExpr 0
    else
        let sub = pointwiseExpr (size / 2)

        Gen.frequency [
            4, smoothExpr size
            1, Gen.map2 (fun a b -> Min(a, b)) sub sub
            1, Gen.map2 (fun a b -> Max(a, b)) sub sub
            1, sub |> Gen.map (fun e -> Apply(Fn.Abs, e))
            1, Gen.map2 (fun a b -> Div(a, b)) sub sub
            1, Gen.map2 (fun a b -> Add(a, Mul(Num 2.0, b))) sub sub
        ]

/// Values for a, b, c in [-2, 2].
let point: Gen<Map<string, float>> =
    Gen.listOfLength 3 (Gen.choose (-2000, 2000) |> Gen.map (fun i -> float i / 1000.0))
    |> Gen.map (fun vs -> List.zip [ "a"; "b"; "c" ] vs |> Map.ofList)

let sized (f: int -> Gen<Expr>) : Arbitrary<Expr> =
    Gen.sized (fun s -> f (min s 24)) |> Arb.fromGen

let private unitTexts = [
    "m^2/s"
    "mol/m^3"
    "1/h"
    "mg/L"
    "kg*m/s^2"
    "mol/(m^3*s)"
    "1"
    "K"
    "s^-1*m"
]

let private maybeUnits: Gen<Units option> =
    Gen.oneof [ Gen.constant None; Gen.elements unitTexts |> Gen.map (Units.parse >> Some) ]

let private finiteNumber =
    numbers
    |> Gen.filter (fun v -> not (System.Double.IsNaN v || System.Double.IsInfinity v))

/// Random models (not necessarily valid) whose every part the text form can express: for the
/// `Parse.modelUnchecked (Print.model n m) = m` round trip.
let anyModel: Gen<Model> =
    gen {
        let! domain =
            Gen.oneof [
                Gen.constant Domain.Point
                Gen.map3
                    (fun a w n -> Domain.Interval(a, a + w, n))
                    finiteNumber
                    (Gen.choose (1, 100) |> Gen.map float)
                    (Gen.choose (1, 500))
                gen {
                    let! a = finiteNumber
                    let! c = finiteNumber
                    let! nx = Gen.choose (1, 64)
                    let! ny = Gen.choose (1, 64)
                    return Domain.Rectangle(a, a + 1.0, c, c + 2.5, nx, ny)
                }
                Gen.map2 (fun k j -> Domain.Lattice(k, j)) (Gen.choose (1, 40)) (Gen.choose (0, 12))
            ]

        let! pool = Gen.shuffle [| "u"; "v"; "w"; "D"; "r"; "K2"; "alpha"; "c_in"; "Y"; "theta"; "μ" |]
        let names = List.ofArray pool
        let! nf = Gen.choose (1, 3)
        let! np = Gen.choose (0, 3)
        let! nc = Gen.choose (0, 2)
        let fieldNames = names |> List.take nf
        let paramNames = names |> List.skip nf |> List.take np
        let constNames = names |> List.skip (nf + np) |> List.take nc
        let forcingNames = names |> List.skip (nf + np + nc) |> List.truncate 1
        let expr = Gen.sized (fun s -> anyExpr (min s 10))

        let! fields =
            fieldNames
            |> List.map (fun n ->
                Gen.map2 (fun u f -> { Name = n; Units = u; Fast = f }) maybeUnits (Gen.elements [ false; true ]))
            |> Gen.sequenceToList

        let! pars =
            paramNames
            |> List.map (fun n ->
                gen {
                    let! v = finiteNumber
                    let! l = Gen.elements [ true; false ]
                    let! c = Gen.elements [ Constraint.Free; Constraint.Positive; Constraint.Bounded(-1.5, 2e3) ]
                    let! sh = Gen.elements [ ParamShape.Scalar; ParamShape.Spatial ]
                    let! u = maybeUnits

                    return {
                        Name = n
                        Value = v
                        Learnable = l
                        Constraint = c
                        Shape = sh
                        Units = u
                    }
                })
            |> Gen.sequenceToList

        let! consts =
            constNames
            |> List.map (fun n -> Gen.map2 (fun v u -> { Name = n; Value = v; Units = u }) finiteNumber maybeUnits)
            |> Gen.sequenceToList

        let! forcings =
            forcingNames
            |> List.map (fun n -> maybeUnits |> Gen.map (fun u -> ({ Name = n; Units = u }: ForcingDecl)))
            |> Gen.sequenceToList

        let! closureArch =
            Gen.oneof [
                Gen.map2
                    (fun ls a -> Architecture.Mlp(ls, a))
                    (Gen.listOfLength 3 (Gen.choose (1, 64)))
                    (Gen.elements [
                        Activation.Tanh
                        Activation.Relu
                        Activation.Gelu
                        Activation.Silu
                        Activation.Sigmoid
                        Activation.Softplus
                    ])
                Gen.elements [ "cnn"; "sub grid"; "a-b" ] |> Gen.map Architecture.Named
                Gen.map3
                    (fun ls k a -> Architecture.Cnn(ls, k, a))
                    (Gen.listOfLength 3 (Gen.choose (1, 64)))
                    (Gen.elements [ 1; 3; 5 ])
                    (Gen.elements [ Activation.Tanh; Activation.Relu ])
                Gen.map2
                    (fun key n -> Architecture.NamedField(key, n))
                    (Gen.elements [ "cnn"; "sub grid" ])
                    (Gen.choose (1, 4))
            ]

        let! hasClosure = Gen.elements [ true; false ]
        let! closureUnits = maybeUnits

        let closures =
            if hasClosure then
                [
                    {
                        Name = "net"
                        Arity = 2
                        Architecture = closureArch
                        Units = closureUnits
                    }
                ]
            else
                []

        let! rhss = Gen.listOfLength nf expr

        let equations =
            List.zip fieldNames rhss |> List.map (fun (f, e) -> { Field = f; Rhs = e })

        let condition =
            Gen.oneof [
                Gen.constant BoundaryCondition.Periodic
                Gen.constant BoundaryCondition.NoFlux
                expr |> Gen.map BoundaryCondition.Dirichlet
                expr |> Gen.map BoundaryCondition.Neumann
            ]

        let sides = Model.sides domain

        let! boundaries =
            fieldNames
            |> List.map (fun f ->
                Gen.oneof [
                    condition
                    |> Gen.map (fun c -> sides |> List.map (fun s -> { Field = f; Side = s; Condition = c }))
                    sides
                    |> List.map (fun s -> condition |> Gen.map (fun c -> { Field = f; Side = s; Condition = c }))
                    |> Gen.sequenceToList
                ])
            |> Gen.sequenceToList

        let! initials =
            fieldNames
            |> List.map (fun f ->
                Gen.oneof [
                    expr
                    |> Gen.map (fun e -> {
                        Field = f
                        Value = InitialCondition.Expr e
                    })
                    Gen.constant {
                        Field = f
                        Value = InitialCondition.FromData(f + "0")
                    }
                ])
            |> Gen.sequenceToList

        return {
            Name = "m1"
            Domain = domain
            Fields = fields
            Params = pars
            Forcings = forcings
            Closures = closures
            Constants = consts
            Equations = equations
            Boundaries = List.concat boundaries
            Initials = initials
            Diagnostics = []
            EllipticEquations = []
        }
    }
