/// The climate case's pure-ML emulator (issue #16): no physics at all, the tendencies of ω, q and the accumulated
/// precipitation P given by one whole-field CNN with as many weights as the a-posteriori hybrid's two closures
/// (`hidden`; kernel 3, tanh), written in the DSL and stepped by the same Heun rollout:
///
///     closure net/2 = cnn [2, …, 3] kernel 3 tanh
///     ∂omega/∂t = comega net(omega, q)[1]
///     ∂q/∂t = cq net(omega, q)[2]
///     ∂P/∂t = cP max(net(omega, q)[3], 0)
///
/// The fixed rates c are the training block's root-mean-square change per saved interval over the interval's
/// length (`ClimateUnroll.changeScales`), so the network's outputs are of order one. The precipitation rate is kept
/// non-negative by max(·, 0) rather than softplus: with its output layer zero the emulator is then exactly
/// persistence with zero precipitation (softplus(0) = log 2 would rain). Training starts there, with the output
/// layer's weights zero and the precipitation channel's bias set so that it rains the training block's mean rate
/// everywhere (so max(·, 0) passes gradients from the first step); it is trained through the rollout by
/// `Trainer.train` on the case's objective and budget (`Climate.trainThroughSolver`).
module Hybrid.Models.Cases.ClimateEmulator

open System.Globalization
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Training

/// The model's name in the report.
[<Literal>]
let Name = "CNN emulator (pure ML, no physics)"

let private num (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// The channel widths of the emulator's CNN: 2 inputs (ω, q), `hidden`, 3 outputs (the tendencies of ω, q, P).
let widths (hidden: int list) : int list = [ 2 ] @ hidden @ [ 3 ]

/// The emulator's hidden widths at `s`: layers of the hybrid's first hidden width (16 in the quick and full
/// settings), as many as bring its weight count nearest the hybrid's two closures together
/// (`ClimateModel.closureWeights`), so that the pure-ML model has the hybrid's capacity: [16; 16; 16], 5,379
/// weights, against the closures' 5,394 at [16; 16]. Widths stay the hybrid's (a multiple of 16) rather than a
/// width in between: libtorch 2.10's oneDNN convolutions on float32 CPU tensors read NaN from the padding of channel
/// counts that are not (`Convolution`), and a [22; 22] emulator's forecasts turned NaN in the tests.
let hidden (s: Climate.Settings) : int list =
    let target = ClimateModel.closureWeights s.Hidden
    let width = List.head s.Hidden

    let count layers =
        ClimateModel.cnnWeights (widths (List.replicate layers width)) 3

    let layers = [ 1..64 ] |> List.minBy (fun l -> abs (count l - target))
    List.replicate layers width

/// The emulator's weight count at `s` (`hidden`).
let weightCount (s: Climate.Settings) : int =
    ClimateModel.cnnWeights (widths (hidden s)) 3

/// The emulator's text on an `n` × `n` periodic square [0, 2π]² with CNN hidden widths `hidden` and the fixed
/// tendency scales `rates` (of ω, q and P). The initial conditions (zero) are never used: every forecast starts from
/// given states.
let text (n: int) (hidden: int list) (rates: float[]) : string =
    let w = widths hidden |> List.map string |> String.concat ", "

    $"""model emulator
domain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells {n} x {n}
field omega
field q
field P
param comega = {num rates[0]} fixed
param cq = {num rates[1]} fixed
param cP = {num rates[2]} fixed
closure net/2 = cnn [{w}] kernel 3 tanh
∂omega/∂t = comega net(omega, q)[1]
∂q/∂t = cq net(omega, q)[2]
∂P/∂t = cP max(net(omega, q)[3], 0)
boundary omega periodic
boundary q periodic
boundary P periodic
initial omega = 0
initial q = 0
initial P = 0
"""

/// The emulator of `s` for the data `d`, untrained: compiled (its CNN seeded from `s.Seed`), the output layer's
/// weights zero and the precipitation channel's bias at the training block's mean rate (see the module's summary).
/// Its only module is the CNN (`Modules[0]`).
let create (s: Climate.Settings) (d: Climate.Data) : Simulator =
    let scales = ClimateUnroll.changeScales d
    let rates = scales |> Array.map (fun c -> c / s.Truth.SaveEvery)

    let sim = Climate.compileText s (text s.Truth.ModelCells (hidden s) rates)

    let weights = Neural.parameters (snd sim.Modules[0])

    do
        use _ = torch.no_grad ()

        for p in weights[weights.Length - 2 ..] do
            p.zero_ () |> ignore

        // rate · bias = the mean rate: bias = mean change / root-mean-square change (in (0, 1]).
        let bias = ClimateUnroll.meanPrecipitationChange s d / scales[2]
        use precipitation = weights[weights.Length - 1].narrow (0L, 2L, 1L)
        withScalar bias precipitation.fill_ |> ignore

    sim

/// The forecast of the emulator `sim`: from states u0 (ω, q, P, each [B; n; n]) the states at 0 … `intervals` saves.
let forecast (s: Climate.Settings) (sim: Simulator) (u0: torch.Tensor[]) (intervals: int) : torch.Tensor[] =
    sim.Simulate(u0, Climate.rolloutOptions s intervals).Values

/// The CNN emulator, trained through its Heun rollout with the a-posteriori hybrid's objective and budget.
let emulator: Climate.ModelBuilder = {
    Name = Name
    Build =
        fun s d ->
            let sim = create s d
            let net = snd sim.Modules[0]

            Climate.trainThroughSolver s d Name (forecast s sim) [|
                Trainer.group "phi" s.Rate (Neural.parameters net)
            |] [| net :> torch.nn.Module |]
}
