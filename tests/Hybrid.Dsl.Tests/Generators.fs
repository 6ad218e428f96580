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
