/// The climate case's classic closure (issue #16): the coarse physics plus Leith's (1996) eddy viscosity on the
/// vorticity, ν* = (c_ω Δ)³ |∇ω|, and an eddy diffusivity of the same form on the humidity, κ* = (c_q Δ)³ |∇ω|,
/// written in the DSL (`ClimateModel.textWith`), with the two coefficients learnable positive parameters fitted
/// through the solver exactly as the a-posteriori hybrid's network is (`Climate.trainThroughSolver`: the same
/// objective, data, epochs, batch, horizon schedule, clipping and early stopping; only the learning rate is the
/// coefficients' own, `Settings.CoefficientRate`). Leith rather than Smagorinsky: in two-dimensional flow enstrophy
/// cascades to the grid scale, and Leith's viscosity scales with the vorticity gradient that carries that cascade,
/// while Smagorinsky's strain rate |S| from ψ is large in the resolved jets themselves and damps them; Leith's
/// form also needs only ∇ω, no second derivatives of ψ.
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateClassic

open System.Collections.Generic
open TorchSharp
open Hybrid.Training
open Hybrid.Models.Cases.Climate

/// The coefficients c_ω and c_q start at 0.5 (Leith's constant is of order 1): ν* ≈ 10⁻³ |∇ω| on the quick 32²
/// grid, comparable with its viscosity ν = 2 × 10⁻³ where |∇ω| ≈ 2.
let start: ClimateModel.Leith = { Omega = 0.5; Q = 0.5 }

/// The model's name in the report.
let name =
    "coarse physics + Leith eddy viscosity and diffusivity (fitted coefficients)"

/// A fitted classic closure.
type Fitted = {
    /// The trained model.
    Trained: Trained
    /// The coefficients after the fit, by parameter name: ("cw", c_ω), ("cq", c_q).
    Coefficients: (string * float)[]
}

let private cache = Dictionary<Settings, Fitted>()

let private train (s: Settings) (d: Data) : Fitted =
    let sim =
        compileText s (ClimateModel.textWith s.Truth.Physics s.Truth.ModelCells s.ModelNu [] (Some start))

    let trained =
        trainThroughSolver s d name (forecastWith s sim) [| Trainer.group "theta" s.CoefficientRate (sim.Trainable()) |] [||]

    {
        Trained = trained
        Coefficients = [| for n in [ "cw"; "cq" ] -> n, (sim.Param n).Value.ToDouble() |]
    }

/// The classic closure fitted on the data of `s`: trained on the first call in a process and cached (keyed by `s`,
/// which determines the data), so that the report and the tests that look at its coefficients share one fit.
let fit (s: Settings) (d: Data) : Fitted = cachedBy cache s (fun () -> train s d)

/// The classic closure as a model of the case (`fit`).
let leith: ModelBuilder = {
    Name = name
    Build = fun s d -> (fit s d).Trained
}
