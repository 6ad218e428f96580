(**
# Training a model against data

`./build.sh test` runs this page. It simulates Fisher–KPP, ∂u/∂t = D Δu + r u (1 − u), with known
D and r, then fits both from the noisy trajectory with `Trainer.train` — a data term plus a physics
residual term — and checks the recovered values. The same objective, with a neural closure in the model
and its network's weights in a second parameter group, is the universal-differential-equation fit of
`tests/Hybrid.Tests/Training/UdeTests.fs`.
*)

#I "../src/Hybrid.Cli/bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Hybrid.Dsl.dll"
#r "Hybrid.Core.dll"

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training

let check (what: string) (ok: bool) =
    if not ok then
        failwithf "docs/training.fsx: %s" what

Engine.init ()
Engine.seed 3

(** The model, with the parameters' starting guesses (the truth is D = 0.01, r = 2). *)
let fisher =
    let u, D, r = sym "u", sym "D", sym "r"

    model "fisher_kpp" {
        domain (interval 0.0 1.0) (cells 32)
        field "u"
        param "D" (positive 0.03)
        param "r" (positive 1.0)
        equation (dt u == D * lap u + r * u * (1.0 - u))
        boundary "u" noFlux
        initial "u" (fun x -> 0.2 + 0.6 * exp (-40.0 * (x - 0.5) ** 2))
    }

let simulator = Compiler.compile Compiler.defaults fisher
let saveTimes = Array.init 11 (fun i -> 0.1 * float i)

let options = {
    Rollout.defaults with
        Scheme = Scheme.Rk4
        Dt = 0.01
        SaveTimes = saveTimes
}

(** Synthetic data: the truth plus 1% noise. *)
let data =
    use _ = torch.no_grad ()
    (simulator.Param "D").Set 0.01
    (simulator.Param "r").Set 2.0
    let clean = simulator.Simulate(simulator.Initial 1, options).Values[0]
    (simulator.Param "D").Set 0.03
    (simulator.Param "r").Set 1.0
    (clean + 0.01 * clean.std () * torch.randn_like clean).detach ()

(** The objective: misfit to the data, plus λ times the physics residual of the prediction. *)
let objective = {
    Loss =
        fun ctx ->
            let predicted = simulator.Simulate(simulator.Initial 1, options).Values[0]
            let misfit = Loss.mse predicted data

            let residual =
                Loss.residual simulator.Dynamics (simulator.Theta()) ResidualForm.ForwardEuler saveTimes [| predicted |]

            {
                Total = misfit + ctx.Lambda * residual
                Parts = [| "data", misfit; "physics", residual |]
            }
    Validation = None
}

let result =
    Trainer.train
        {
            Trainer.defaults with
                Epochs = 100
                Seed = 3
                Groups = [| Trainer.group "theta" 0.05 (simulator.Trainable()) |]
                Lambda = LambdaSchedule.Constant 1e-4
                Progress = Progress.console 25
                Theta = [| "D", (simulator.Param "D").Get; "r", (simulator.Param "r").Get |]
        }
        objective

let d, r = (simulator.Param "D").Get(), (simulator.Param "r").Get()
printfn "recovered D = %.5f (true 0.01), r = %.4f (true 2) in %.1f s" d r result.WallTime.TotalSeconds
check "D within 5%" (abs (d - 0.01) / 0.01 < 0.05)
check "r within 5%" (abs (r - 2.0) / 2.0 < 0.05)
