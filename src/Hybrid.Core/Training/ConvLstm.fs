namespace Hybrid.Training

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// The state a `ConvLstmCell` carries from one step to the next: hidden state and memory cell, each
/// [B; hidden; spatial…].
type ConvLstmState = {
    /// h, the hidden state (the cell's output), [B; hidden; spatial…].
    Hidden: torch.Tensor
    /// c, the memory cell, [B; hidden; spatial…].
    Cell: torch.Tensor
}

/// A convolutional LSTM cell (Shi et al. 2015, "Convolutional LSTM network: a machine learning approach for
/// precipitation nowcasting") over `dims` spatial axes (1 or 2): an LSTM whose gates are convolutions over the
/// fields instead of matrix products, so it keeps the spatial layout. One step from input x [B; inputs; spatial…]
/// and state (h, c):
///
///     [i; f; g; o] = W ∗ [x; h] + b        (one convolution of odd size `kernel` to 4 · hidden channels)
///     c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g),   h' = σ(o) ⊙ tanh(c')
///
/// without Shi et al.'s peephole terms (W_c ⊙ c inside the gates), as in most later uses. Before the convolution
/// each spatial axis of [x; h] is padded by kernel / 2 cells with its own `Padding` (axis 0 = x first), as in
/// `FieldCnn`: `Periodic` (circular) on periodic axes keeps the cell translation-equivariant there. The output has
/// the input's spatial size. The gates' convolution has TorchSharp's (seedable) initial weights, its forget-gate
/// biases start at 1 (the cell starts by keeping its memory, Jozefowicz et al. 2015), the other biases as
/// TorchSharp sets them. Created in `dtype` (default: the engine precision) on the engine device.
type ConvLstmCell
    /// Creates the cell `name` over `dims` spatial axes: `inputs` input channels, `hidden` channels of h and c, odd
    /// `kernel`, one `Padding` per spatial axis.
    (
        name: string,
        dims: int,
        inputs: int,
        hidden: int,
        kernel: int,
        padding: Hybrid.Training.Padding[],
        ?dtype: torch.ScalarType
    ) as this =
    inherit torch.nn.Module(name)

    do
        Engine.init ()

        if dims < 1 || dims > 2 then
            raise (HybridException($"ConvLstmCell '{name}': {dims} spatial axes; it runs on 1 or 2."))

        Neural.check "ConvLstmCell inputs" name inputs 1
        Neural.check "ConvLstmCell hidden channels" name hidden 1

        if kernel < 1 || kernel % 2 = 0 then
            raise (HybridException($"ConvLstmCell '{name}': kernel {kernel} must be odd and positive (e.g. 3 or 5)."))

        if padding.Length <> dims then
            raise (
                HybridException(
                    $"ConvLstmCell '{name}': {padding.Length} paddings for {dims} spatial axes; give one per axis (x first)."
                )
            )

    let padding = Array.copy padding
    let half = int64 (kernel / 2)
    let channels = int64 (inputs + hidden)
    let gateChannels = 4L * int64 hidden

    let conv = Convolution.create dims channels gateChannels (int64 kernel)

    do
        this.register_module ("gates", conv)

        this.``to`` (Engine.torchDevice (), defaultArg dtype (Engine.dtype ()))
        |> ignore

        // The forget gate's biases (channels hidden … 2 hidden − 1) start at 1.
        let keepMemory () =
            use _ = torch.no_grad ()
            let bias = conv.parameters () |> Seq.find (fun p -> p.dim () = 1L)
            use forget = bias.narrow (0L, int64 hidden, int64 hidden)
            withScalar 1.0 forget.fill_ |> ignore

        keepMemory ()

    let shapeText (t: torch.Tensor) = "[" + String.Join(", ", t.shape) + "]"

    /// Input channels.
    member _.Inputs = inputs

    /// Channels of the hidden state and of the memory cell.
    member _.HiddenChannels = hidden

    /// The size of the gates' convolution along every axis.
    member _.Kernel = kernel

    /// The padding of each spatial axis, x first.
    member _.Padding = Array.copy padding

    /// The zero state (h = c = 0) of a batch of `batch` over the spatial shape `spatial` (one size per axis, x
    /// first), in the cell's dtype and on its device.
    member _.ZeroState(batch: int, spatial: int64[]) : ConvLstmState =
        if spatial.Length <> dims then
            raise (
                HybridException(
                    $"ConvLstmCell '{name}': a zero state over {spatial.Length} spatial axes; the cell runs on {dims}."
                )
            )

        let w = conv.parameters () |> Seq.head
        let shape = Array.append [| int64 batch; int64 hidden |] spatial

        {
            Hidden = torch.zeros (shape, dtype = w.dtype, device = w.device)
            Cell = torch.zeros (shape, dtype = w.dtype, device = w.device)
        }

    /// One step: the next state from the input `x` [B; inputs; spatial…] and the state `state` (each
    /// [B; hidden; spatial…] of the same B and spatial sizes). The new hidden state is the cell's output.
    member _.Step(x: torch.Tensor, state: ConvLstmState) : ConvLstmState =
        let spatial = if dims = 1 then "n" else "nx; ny"

        if x.dim () <> int64 (dims + 2) || x.shape[1] <> int64 inputs then
            raise (
                HybridException(
                    $"ConvLstmCell '{name}' expects inputs [batch; {inputs}; {spatial}], got shape {shapeText x}."
                )
            )

        let expected = Array.append [| x.shape[0]; int64 hidden |] x.shape[2..]
        let expectedText = String.Join(", ", expected)

        if state.Hidden.shape <> expected || state.Cell.shape <> expected then
            raise (
                HybridException(
                    $"ConvLstmCell '{name}': the state has shapes {shapeText state.Hidden} (h) and {shapeText state.Cell} (c), the input {shapeText x}; both must be [{expectedText}] (use ZeroState for a first step)."
                )
            )

        let gates =
            Convolution.apply conv (FieldPadding.pad padding half (torch.cat ([| x; state.Hidden |], 1L)))

        let parts = gates.chunk (4L, 1L)
        let i = torch.sigmoid (parts[0])
        let f = torch.sigmoid (parts[1])
        let g = torch.tanh (parts[2])
        let o = torch.sigmoid (parts[3])
        let c = f .* state.Cell .+ i .* g

        { Hidden = o .* torch.tanh c; Cell = c }
