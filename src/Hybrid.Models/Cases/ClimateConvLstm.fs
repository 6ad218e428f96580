/// The climate case's recurrent pure-ML baseline (issue #16): a two-layer convolutional LSTM (`ConvLstmCell`, kernel
/// 3, circular padding) over the coarse fields, autoregressive per saved interval. At each save k it reads ω and q
/// (the truth's at the start, its own forecast after) and carries its hidden states; a pointwise (1 × 1) read-out of
/// the top layer's hidden state gives the changes to save k + 1:
///
///     ω_{k+1} = ω_k + s_ω y₁,   q_{k+1} = q_k + s_q y₂,   P_{k+1} = P_k + s_P max(y₃, 0)
///
/// with s the training block's root-mean-square change per interval (`ClimateUnroll.changeScales`). Every forecast
/// starts from zero hidden states: the model sees the same start state as every other model and nothing before it,
/// so what it remembers is its own forecast's history. Its hidden width is the one whose weight count is nearest the
/// CNN emulator's (`ClimateEmulator.weightCount`; quick and full settings: 7 channels, 5,876 weights against the
/// emulator's 5,379). The read-out starts at zero except the precipitation channel's bias, set to rain the training block's
/// mean (as the emulator), so it starts as persistence with climatological precipitation; it is trained with
/// `Trainer.train` on the case's objective and budget (`Climate.trainThroughSolver`).
module Hybrid.Models.Cases.ClimateConvLstm

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training

/// The model's name in the report.
[<Literal>]
let Name = "ConvLSTM (pure ML, recurrent)"

/// Stacked ConvLSTM layers.
[<Literal>]
let Layers = 2

/// The gates' kernel size.
[<Literal>]
let Kernel = 3

/// The weight count of the model with `hidden` channels per layer: the first layer's gates (2 + h) · 4h · 9 + 4h,
/// each further layer's 2h · 4h · 9 + 4h, and the read-out 3h + 3.
let weights (hidden: int) : int =
    let gates inputs =
        (inputs + hidden) * 4 * hidden * Kernel * Kernel + 4 * hidden

    gates 2 + (Layers - 1) * gates hidden + 3 * hidden + 3

/// The hidden width whose weight count (`weights`) is nearest `target` (the smaller on a tie).
let hiddenFor (target: int) : int =
    [ 1..256 ] |> List.minBy (fun h -> abs (weights h - target))

/// The ConvLSTM's modules: its layers and the read-out, created from `s.Seed` in `s.Truth.Dtype`.
type Network = {
    /// The stacked cells, the first reading ω and q.
    Cells: ConvLstmCell[]
    /// The pointwise read-out from the top layer's hidden state to the three changes.
    Readout: FieldCnn
}

/// The ConvLSTM of `s` for the data `d`, untrained: cells of `hiddenFor (ClimateEmulator.weightCount s)` channels
/// with TorchSharp's initial weights from `s.Seed`, the read-out zero except the precipitation channel's bias.
let create (s: Climate.Settings) (d: Climate.Data) : Network =
    let hidden = hiddenFor (ClimateEmulator.weightCount s)
    let periodic = [| Padding.Periodic; Padding.Periodic |]
    let dtype = s.Truth.Dtype
    Engine.seed s.Seed

    let cells =
        Array.init Layers (fun l ->
            new ConvLstmCell($"convlstm{l}", 2, (if l = 0 then 2 else hidden), hidden, Kernel, periodic, dtype))

    let readout =
        new FieldCnn("readout", 2, [ hidden; 3 ], 1, Activation.Tanh, periodic, dtype)

    do
        use _ = torch.no_grad ()
        let ps = Neural.parameters readout

        for p in ps do
            p.zero_ () |> ignore

        let bias =
            ClimateUnroll.meanPrecipitationChange s d / (ClimateUnroll.changeScales d)[2]

        use precipitation = ps[ps.Length - 1].narrow (0L, 2L, 1L)
        withScalar bias precipitation.fill_ |> ignore

    { Cells = cells; Readout = readout }

/// The modules of `net` (its cells and read-out), for the trainer and for counting weights.
let modules (net: Network) : torch.nn.Module[] =
    Array.append (net.Cells |> Array.map (fun c -> c :> torch.nn.Module)) [| net.Readout :> torch.nn.Module |]

/// The forecast of `net`: from states u0 (ω, q, P, each [B; n; n]) the states at 0 … `intervals` saves, each field
/// [intervals + 1; B; n; n], one recurrent step per saved interval from zero hidden states.
let forecast (d: Climate.Data) (net: Network) (u0: torch.Tensor[]) (intervals: int) : torch.Tensor[] =
    let scales = ClimateUnroll.changeScales d
    let spatial = u0[0].shape[1..]
    let batch = int (u0[0].shape[0])
    let states = net.Cells |> Array.map (fun c -> c.ZeroState(batch, spatial))
    let saves = Array.init 3 (fun _ -> ResizeArray<torch.Tensor>())
    let mutable u = u0

    for f in 0..2 do
        saves[f].Add(u[f])

    for _ in 1..intervals do
        let mutable x = torch.stack ([| u[0]; u[1] |], 1L)

        for l in 0 .. net.Cells.Length - 1 do
            states[l] <- net.Cells[l].Step(x, states[l])
            x <- states[l].Hidden

        let y = net.Readout.forward x

        let change f =
            let c = y.select (1L, int64 f)
            (if f = 2 then torch.nn.functional.relu c else c) .* scales[f]

        let current = u
        u <- Array.init 3 (fun f -> current[f] .+ change f)

        for f in 0..2 do
            saves[f].Add(u[f])

    saves |> Array.map (fun v -> torch.stack (v, 0L))

/// The ConvLSTM baseline, trained through its autoregressive forecast with the a-posteriori hybrid's objective and
/// budget.
let convLstm: Climate.ModelBuilder = {
    Name = Name
    Build =
        fun s d ->
            let net = create s d
            let ms = modules net

            Climate.trainThroughSolver
                s
                d
                Name
                (forecast d net)
                [| Trainer.group "phi" s.Rate (ms |> Array.collect Neural.parameters) |]
                ms
}
