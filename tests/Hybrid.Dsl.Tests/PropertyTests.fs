/// FsCheck properties: print/parse round trip, symbolic derivatives against finite differences,
/// simplification preserves values.
module Hybrid.Dsl.Tests.PropertyTests

open Expecto
open FsCheck
open FsCheck.FSharp
open Hybrid
open Hybrid.Dsl.Tests.Generators

let private config = {
    FsCheckConfig.defaultConfig with
        maxTest = 300
}

let private finite (v: float) =
    not (System.Double.IsNaN v || System.Double.IsInfinity v)

let private tryEval (env: Map<string, float>) (e: Expr) =
    try
        let v = Symbolic.eval env e
        if finite v then Some v else None
    with :? ModelException ->
        None

let tests =
    testList "Properties" [
        testPropertyWithConfig config "Unicode print then parse gives the same tree"
        <| Prop.forAll (sized anyExpr) (fun e ->
            let s = Print.expr Notation.Unicode e
            Prop.label s (Parse.expr s = e))

        testPropertyWithConfig config "ASCII print then parse gives the same tree"
        <| Prop.forAll (sized anyExpr) (fun e ->
            let s = Print.expr Notation.Ascii e
            Prop.label s (Parse.expr s = e))

        testPropertyWithConfig config "equations round-trip in both notations"
        <| Prop.forAll (sized anyExpr) (fun e ->
            let eq = { Field = "u"; Rhs = e }

            Parse.equation (Print.equation Notation.Unicode eq) = eq
            && Parse.equation (Print.equation Notation.Ascii eq) = eq)

        testPropertyWithConfig { config with maxTest = 150 } "whole models round-trip through both text forms"
        <| Prop.forAll (Arb.fromGen anyModel) (fun m ->
            let u = Print.model Notation.Unicode m
            let a = Print.model Notation.Ascii m
            Prop.label (u + "\n" + a) (Parse.modelUnchecked u = m && Parse.modelUnchecked a = m))

        testPropertyWithConfig config "symbolic derivative agrees with central finite differences"
        <| Prop.forAll (Arb.fromGen (Gen.zip (Gen.sized (fun s -> smoothExpr (min s 12))) point)) (fun (e, env) ->
            [ "a"; "b"; "c" ]
            |> List.forall (fun v ->
                let x = env[v]
                let h = 1e-5 * (1.0 + abs x)
                let at d = tryEval (env.Add(v, x + d)) e

                let central h =
                    match at h, at -h with
                    | Some p, Some m -> Some((p - m) / (2.0 * h))
                    | _ -> None

                match central h, central (h / 2.0), tryEval env (Symbolic.derivative v e) with
                | Some fd1, Some fd2, Some d ->
                    // Only where the finite difference has converged (halving h changes it by < 1e-6, relative):
                    // steep, rapidly oscillating points say nothing about the symbolic derivative.
                    abs (fd1 - fd2) > 1e-6 * (1.0 + abs fd2)
                    || abs (d - fd2) <= 1e-5 * (1.0 + abs fd2)
                | _ -> true))

        testPropertyWithConfig config "simplification preserves the value"
        <| Prop.forAll (Arb.fromGen (Gen.zip (Gen.sized (fun s -> pointwiseExpr (min s 16))) point)) (fun (e, env) ->
            let ok, label =
                match tryEval env e with
                | Some _ when Expr.subterms e |> List.exists (fun t -> (tryEval env t).IsNone) -> true, "" // e.g. x/0 inside min
                | None -> true, ""
                | Some v ->
                    let scale =
                        Expr.subterms e
                        |> List.choose (tryEval env)
                        |> List.map abs
                        |> List.fold max 1.0

                    match tryEval env (Symbolic.simplify e) with
                    | Some s ->
                        abs (s - v) <= 1e-9 * scale, sprintf "%g vs %g for %s" v s (Print.expr Notation.Ascii e)
                    | None -> false, sprintf "simplified value not finite for %s" (Print.expr Notation.Ascii e)

            Prop.label label ok)

        testPropertyWithConfig config "simplification never grows the tree much and is idempotent in value"
        <| Prop.forAll (sized anyExpr) (fun e ->
            let s = Symbolic.simplify e
            Expr.size s <= 2 * Expr.size e + 2)
    ]
