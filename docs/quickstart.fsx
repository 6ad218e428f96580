(**
# Quickstart — the README's examples, run

`./build.sh test` runs this page, so the README's code cannot drift from the library. It builds a model
with the builder and from text, checks that both give the same equations, compiles it to an eager
simulator and to generated kernels, and checks that the two simulators agree.
*)

#I "../src/Hybrid.Cli/bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Hybrid.Dsl.dll"
#r "Hybrid.Core.dll"

open Hybrid

let check (what: string) (ok: bool) =
    if not ok then
        failwithf "docs/quickstart.fsx: %s" what

(** The model of the README's "Writing a model", with the builder … *)
let fisher =
    let u, D, r = sym "u", sym "D", sym "r"

    model "fisher_kpp" {
        domain (interval 0.0 1.0) (cells 200)
        field "u"
        param "D" (positive 1e-4) // learnable, kept > 0
        param "r" (positive 1.0)
        equation (dt u == D * lap u + r * u * (1.0 - u))
        boundary "u" noFlux
        initial "u" (fun x -> exp (-100.0 * (x - 0.5) ** 2))
    }

(** … and as text. *)
let same =
    Parse.model
        """
model fisher_kpp
domain interval [0, 1] cells 200
field u
param D > 0 = 1e-4
param r > 0 = 1
∂u/∂t = D Δu + r u (1 − u)
boundary u noflux
initial u = exp(-100*(x - 0.5)^2)
"""

printfn "%s" (Print.model Notation.Unicode fisher)
check "builder and text give the same equations" (same.Equations = fisher.Equations)
check "builder and text give the same parameters" (same.Params = fisher.Params)
check "builder and text give the same boundaries" (same.Boundaries = fisher.Boundaries)

(** The README's "Simulators" and "Fast path": compile both ways and compare 100 RK4 steps. *)
open TorchSharp
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels

let simulator = Compiler.compile Compiler.defaults fisher
let kernels = Kernels.compile Scheme.Rk4 fisher
let u0 = simulator.Initial 1

let options = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 0.01
        SaveTimes = [| 1.0 |]
}

let eager = simulator.Simulate(u0, options).Values[0][0]

let fastStates = Kernels.rollout kernels u0 (simulator.Theta()) 0.0 0.01 100 100 10
let fast = fastStates[0][0]

let difference = (eager - fast).abs().max().ToDouble()
printfn "eager and kernel agree to %.1e after 100 RK4 steps" difference
check "eager and kernel simulators agree" (difference < 1e-10)
