namespace Hybrid.Training

open System
open TorchSharp
open TorchSharp.Modules
open Hybrid

/// The network of an `Architecture.Cnn` closure: a convolutional network over `dims` spatial axes (1 or 2),
/// [B; channels₀; spatial…] → [B; channelsₙ; spatial…], one convolution of odd size `kernel` (along every axis)
/// between each pair of consecutive channel widths, `activation` between convolutions (none after the last).
/// Before every convolution each axis is padded by kernel / 2 cells with its own `Padding` (axis 0 = x first):
/// `Periodic` (circular) on periodic axes keeps the network translation-equivariant there; `Replicate` or
/// `Zeros` on walled ones. The output has the input's spatial size. Created in `dtype` (default: the engine
/// precision) on the engine device; weights from TorchSharp's (seedable) RNG.
type FieldCnn
    /// Creates the network `name` over `dims` spatial axes: channel widths `channels` (at least two: inputs, …,
    /// outputs), odd `kernel`, `activation` between convolutions, one `Padding` per spatial axis.
    (
        name: string,
        dims: int,
        channels: int list,
        kernel: int,
        activation: Activation,
        padding: Hybrid.Training.Padding[],
        ?dtype: torch.ScalarType
    ) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>(name)

    do
        Engine.init ()

        if dims < 1 || dims > 2 then
            raise (HybridException($"FieldCnn '{name}': {dims} spatial axes; it runs on 1 or 2."))

        if channels.Length < 2 || channels |> List.exists (fun c -> c < 1) then
            raise (
                HybridException(
                    $"FieldCnn '{name}': channel widths %A{channels}; give at least two positive widths (inputs, …, outputs)."
                )
            )

        if kernel < 1 || kernel % 2 = 0 then
            raise (HybridException($"FieldCnn '{name}': kernel {kernel} must be odd and positive (e.g. 3 or 5)."))

        if padding.Length <> dims then
            raise (
                HybridException(
                    $"FieldCnn '{name}': {padding.Length} paddings for {dims} spatial axes; give one per axis (x first)."
                )
            )

    let widths = Array.ofList channels
    let half = int64 (kernel / 2)

    let convs =
        let list = new ModuleList<Modules.Convolution>()

        for i in 0 .. widths.Length - 2 do
            list.Add(Convolution.create dims (int64 widths[i]) (int64 widths[i + 1]) (int64 kernel))

        list

    let act = Neural.activationModule activation

    do
        this.register_module ("convs", convs)

        this.``to`` (Engine.torchDevice (), defaultArg dtype (Engine.dtype ()))
        |> ignore

    /// Input channels (the closure's arity).
    member _.Inputs = widths[0]

    /// Output channels (the closure's number of outputs).
    member _.Outputs = widths[widths.Length - 1]

    /// The padding of each spatial axis, x first.
    member _.Padding = Array.copy padding

    /// Raises unless `x` is [B; inputs; spatial…].
    member private _.Check(x: torch.Tensor) =
        if x.dim () <> int64 (dims + 2) || x.shape[1] <> int64 widths[0] then
            let spatial = if dims = 1 then "n" else "nx; ny"

            raise (
                HybridException(
                    $"FieldCnn '{name}' expects [batch; {widths[0]}; {spatial}], got shape [{String.Join(',', x.shape)}]."
                )
            )

    /// What the network's JVP at x needs besides its weights: the activation's slopes σ′(zᵢ) at each hidden layer's
    /// pre-activations zᵢ (one tensor per convolution but the last), for x [B; inputs; spatial…]. With `Tangent`, the
    /// forward-mode JVP that the Rodas4 kernels' tangent plan takes (`ForwardTangentNetwork`).
    member internal this.Slopes(x: torch.Tensor) : torch.Tensor list =
        this.Check x
        let mutable h = x

        [
            for i in 0 .. convs.Count - 2 do
                let z = Convolution.apply convs[i] (FieldPadding.pad padding half h)
                Neural.activationSlope activation z
                h <- act.forward z
        ]

    /// The JVP (∂N/∂x)(x) ẋ from `Slopes` at x, for a direction ẋ shaped like x: each convolution's linear part (the
    /// paddings are linear too), times the slopes between them. Linear in ẋ; differentiable in x (through the slopes),
    /// ẋ and the weights.
    member internal _.Tangent(slopes: torch.Tensor list, direction: torch.Tensor) : torch.Tensor =
        let slopes = Array.ofList slopes
        let mutable t = direction

        for i in 0 .. convs.Count - 1 do
            t <- Convolution.linear convs[i] (FieldPadding.pad padding half t)

            if i < convs.Count - 1 then
                t <- t * slopes[i]

        t

    /// Applies the network to [B; inputs; spatial…].
    override this.forward(x: torch.Tensor) : torch.Tensor =
        this.Check x

        let mutable h = x

        for i in 0 .. convs.Count - 1 do
            h <- Convolution.apply convs[i] (FieldPadding.pad padding half h)

            if i < convs.Count - 1 then
                h <- act.forward h

        h
