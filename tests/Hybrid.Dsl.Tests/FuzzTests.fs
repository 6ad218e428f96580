/// Fuzzing the parser: 10,000 random strings and random token sequences. No exception other than Hybrid's
/// own may escape, nothing may hang, and each input must be handled within a time bound.
module Hybrid.Dsl.Tests.FuzzTests

open System
open System.Diagnostics
open Expecto
open Hybrid

let private alphabet =
    "abcuvxyzkjDFtXY0123456789 .,;:=+-*/^()[]{}<>\"'#\n\t∂∇·ΔΣ²³⁻√×÷−_$@!?\\|&%~`\u0001é日\u200B\u202E\uFEFF\u0430\u03BD\uFF11\u0663\uFF0B\uD835"

let private tokens = [|
    "du/dt"
    "∂u/∂t"
    "="
    "+"
    "-"
    "−"
    "*"
    "/"
    "^"
    "("
    ")"
    "["
    "]"
    ","
    ";"
    "\n"
    "u"
    "v"
    "D"
    "2"
    "0.5"
    "1e-3"
    "exp"
    "min"
    "max"
    "grad"
    "div"
    "lap"
    "dx"
    "dy"
    "advect"
    "sum_j"
    "Σ_j"
    "∇"
    "∇·"
    "Δ"
    "∇²"
    "∂x"
    "²"
    "⁻¹"
    "√"
    "kill"
    "k"
    "j"
    "u[k+1]"
    "Y[j-1]"
    "field"
    "param"
    "forcing"
    "closure"
    "const"
    "domain"
    "interval"
    "rectangle"
    "lattice"
    "point"
    "cells"
    "x"
    "boundary"
    "initial"
    "noflux"
    "periodic"
    "dirichlet"
    "neumann"
    "left"
    "right"
    "positive"
    "in"
    "fixed"
    "spatial"
    "mlp"
    "named"
    "\"s\""
    "data"
    "model"
    "[m^2/s]"
    "[mol/(m^3*s)]"
    ">"
    "0"
    "fast"
|]

/// Parses with every entry point; returns the name of an escaping non-Hybrid exception, if any.
let private probe (text: string) : string option =
    let attempt (f: string -> obj) =
        try
            f text |> ignore
            None
        with
        | :? HybridException -> None
        | e -> Some(sprintf "%s: %s" (e.GetType().Name) e.Message)

    [
        attempt (fun s -> box (Parse.model s))
        attempt (fun s -> box (Parse.expr s))
        attempt (fun s -> box (Parse.equation s))
    ]
    |> List.tryPick id

let private randomString (rng: Random) =
    let n = rng.Next(0, 60)
    String(Array.init n (fun _ -> alphabet[rng.Next alphabet.Length]))

let private randomTokens (rng: Random) =
    let n = rng.Next(0, 30)

    Array.init n (fun _ -> tokens[rng.Next tokens.Length] + (if rng.Next 3 = 0 then "" else " "))
    |> String.concat ""

let tests =
    testList "Fuzz" [
        test "10,000 random strings and token sequences: no crash, no hang, bounded time" {
            let rng = Random 20261128
            let perInputLimitMs = 500.0
            let total = Stopwatch.StartNew()
            let mutable slowest = 0.0
            let mutable slowestInput = ""

            for i in 1..10000 do
                let text = if i % 2 = 0 then randomString rng else randomTokens rng
                let sw = Stopwatch.StartNew()

                match probe text with
                | Some e -> failtestf "input %A let %s escape" text e
                | None -> ()

                let ms = sw.Elapsed.TotalMilliseconds

                if ms > slowest && i > 10 then
                    slowest <- ms
                    slowestInput <- text

            Expect.isLessThan slowest perInputLimitMs (sprintf "slowest input %A" slowestInput)
            Expect.isLessThan total.Elapsed.TotalSeconds 20.0 "whole fuzz run"
        }

        test "pathological inputs are rejected quickly" {
            for text in
                [
                    String.replicate 5000 "("
                    String.replicate 5000 "-"
                    String.replicate 5000 "∇"
                    "du/dt = " + String.replicate 3000 "u "
                    "field u [" + String.replicate 1000 "(" + "m"
                    String.replicate 2000 ";"
                    "du/dt = u" + String.replicate 2000 "^2"
                ] do
                let sw = Stopwatch.StartNew()
                Expect.isNone (probe text) "only Hybrid exceptions"
                Expect.isLessThan sw.Elapsed.TotalSeconds 2.0 "fast"
        }
    ]
