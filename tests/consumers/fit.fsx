// A user's script: Hybrid.Core from a package feed (here the local one, see NuGet.config beside this file)
// and the CPU runtime the user chose. It fits the rate k of du/dt = -k u, u(0) = 1, to the exact solution
// u(t) = exp(-0.7 t) at t = 0.25, 0.5, ..., 2, starting from k = 0.3. `./build.sh test` runs it.
//
// Tolerance: the data carry no noise and RK4 with dt = 0.01 misses exp(-k t) by about
// (k dt)^4 / 120 * k t ≈ 3e-11 at t = 2 (double precision), so the least-squares minimum lies within
// about 1e-10 of 0.7; L-BFGS must bring k there to 1e-6, 4e-5 times the start's distance (0.4).
#r "nuget: Hybrid.Core, 0.1.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training

Engine.usePrecision Float64

let decay =
    let u, k = sym "u", sym "k"

    model "decay" {
        domain point
        field "u"
        param "k" (positive 0.3)
        equation (dt u == -k * u)
        initialValue "u" 1.0
    }

printfn "%s" (Print.model Notation.Unicode decay)

let trueRate = 0.7
let times = Array.init 8 (fun i -> 0.25 * float (i + 1))
let simulator = Compiler.compile Compiler.defaults decay

let options = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 0.01
        SaveTimes = times
}

let predict () =
    simulator.Simulate(simulator.Initial 1, options).Values[0]

let data =
    use exact =
        torch.tensor (times |> Array.map (fun t -> exp (-trueRate * t)), dtype = torch.float64)

    exact.reshape ((predict ()).shape)

let losses =
    Trainer.lbfgs (simulator.Trainable()) 1.0 10 50 (fun () -> Loss.mse (predict ()) data)

let fitted = (simulator.Param "k").Get()
let error = abs (fitted - trueRate)
printfn "k = %.9f (true %.1f, error %.1e), final loss %.1e" fitted trueRate error (Array.last losses)

if error > 1e-6 then
    eprintfn "tests/consumers/fit.fsx: k = %.9f is %.1e from %.1f (allowed 1e-6)" fitted error trueRate
    exit 1
