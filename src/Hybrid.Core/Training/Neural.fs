namespace Hybrid.Training

open TorchSharp
open TorchSharp.Modules
open Hybrid
open Hybrid.TensorArithmetic

/// Neural building blocks: MLPs and 1-D/2-D CNNs (with periodic padding), plus ways to call them as
/// closures inside equations.
[<RequireQualifiedAccess>]
module Neural =

    /// The TorchSharp module of an activation (the DSL's `Activation`, shared by closures and networks).
    let activationModule (a: Activation) : torch.nn.Module<torch.Tensor, torch.Tensor> =
        match a with
        | Activation.Tanh -> torch.nn.Tanh()
        | Activation.Relu -> torch.nn.ReLU()
        | Activation.Silu -> torch.nn.SiLU()
        | Activation.Softplus -> torch.nn.Softplus()
        | Activation.Gelu -> torch.nn.GELU()
        | Activation.Sigmoid -> torch.nn.Sigmoid()

    /// The derivative of `activationModule a` at the pre-activations `z`, elementwise, as TorchSharp's backward of that
    /// module computes it (ReLU's is 0 at 0; Softplus, β = 1, is linear above its threshold 20, so its slope is 1
    /// there): the slopes of a network's forward-mode JVP. Built from differentiable operations, so autograd takes it
    /// further (second-order terms).
    let internal activationSlope (a: Activation) (z: torch.Tensor) : torch.Tensor =
        match a with
        | Activation.Tanh ->
            let t = z.tanh ()
            1.0 .- t .* t
        | Activation.Relu -> (withScalar 0.0 z.gt).to_type (z.dtype)
        | Activation.Sigmoid ->
            let s = z.sigmoid ()
            s .* (1.0 .- s)
        | Activation.Silu ->
            // d/dz z σ(z) = σ(z) (1 + z (1 − σ(z))).
            let s = z.sigmoid ()
            s .* (1.0 .+ z .* (1.0 .- s))
        | Activation.Softplus -> torch.where (withScalar 20.0 z.gt, torch.ones_like z, z.sigmoid ())
        | Activation.Gelu ->
            // The exact GELU z Φ(z): Φ(z) + z φ(z).
            let phi = (z .* z .* -0.5).exp () .* (1.0 / sqrt (2.0 * System.Math.PI))
            0.5 .* (1.0 .+ (z .* (1.0 / sqrt 2.0)).erf ()) .+ z .* phi

    let internal check (what: string) (name: string) (value: int) (least: int) =
        if value < least then
            raise (HybridException($"{what} '{name}': {value} is too small, it must be at least {least}."))

    /// All trainable parameters of a module, in registration order.
    let parameters (m: torch.nn.Module) : Parameter[] = m.parameters () |> Array.ofSeq

    /// Number of trainable scalars of a module.
    let parameterCount (m: torch.nn.Module) : int64 =
        parameters m |> Array.sumBy (fun p -> p.NumberOfElements)

/// A multilayer perceptron acting on the last dimension: [..., inputs] → [..., outputs]. `depth` hidden
/// layers of `width` units with `activation`, each followed by dropout with probability `dropout`
/// (0 = none; dropout is active only in training mode, or in MC-dropout passes). Created in `dtype`
/// (default: the engine precision) on the engine device; weights come from TorchSharp's (seedable) RNG.
type Mlp
    /// Creates the network `name`: `inputs` → `depth` hidden layers of `width` units → `outputs`; activation
    /// Tanh and dropout 0 unless given, in `dtype` (default: the engine precision).
    (
        name: string,
        inputs: int,
        outputs: int,
        width: int,
        depth: int,
        ?activation: Activation,
        ?dropout: float,
        ?dtype: torch.ScalarType
    ) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>(name)

    do
        Engine.init ()
        Neural.check "Mlp inputs" name inputs 1
        Neural.check "Mlp outputs" name outputs 1
        Neural.check "Mlp width" name width 1
        Neural.check "Mlp depth" name depth 0

    let act = defaultArg activation Activation.Tanh
    let p = defaultArg dropout 0.0

    do
        if p < 0.0 || p >= 1.0 then
            raise (HybridException($"Mlp '{name}': dropout {p} must lie in [0, 1). Use 0 for none."))

    let net =
        let layers =
            ResizeArray<struct (string * torch.nn.Module<torch.Tensor, torch.Tensor>)>()

        let mutable last = inputs

        for i in 0 .. depth - 1 do
            layers.Add(struct ($"linear{i}", torch.nn.Linear(int64 last, int64 width)))
            layers.Add(struct ($"act{i}", Neural.activationModule act))

            if p > 0.0 then
                layers.Add(struct ($"dropout{i}", torch.nn.Dropout(p)))

            last <- width

        layers.Add(struct ("out", torch.nn.Linear(int64 last, int64 outputs)))
        torch.nn.Sequential(layers)

    do
        this.register_module ("net", net)

        this.``to`` (Engine.torchDevice (), defaultArg dtype (Engine.dtype ()))
        |> ignore

    /// Number of input features (size of the last dimension it expects).
    member _.Inputs = inputs

    /// Number of outputs.
    member _.Outputs = outputs

    /// Dropout probability (0 = none).
    member _.Dropout = p

    /// Applies the network to the last dimension of `x`.
    override _.forward(x: torch.Tensor) : torch.Tensor =
        if x.dim () = 0L || x.shape[x.shape.Length - 1] <> int64 inputs then
            raise (
                HybridException(
                    $"Mlp '{name}' expects inputs with last dimension {inputs}, got shape [{System.String.Join(',', x.shape)}]."
                )
            )

        net.forward x

/// Padding of the convolutions of a CNN.
[<RequireQualifiedAccess>]
type Padding =
    /// Wraps around (periodic domains): the output has the input's size.
    | Periodic
    /// Zeros outside the domain: the output has the input's size.
    | Zeros
    /// The edge cell repeated outside the domain (a zero-gradient extension): the output has the input's size.
    | Replicate

/// A convolutional network over `dims` spatial axes (1 or 2): [B; inputs; spatial…] → [B; outputs; spatial…].
/// `depth` hidden convolutions of `width` channels and odd `kernel` size with `activation`, then a
/// convolution to `outputs` channels; `padding` keeps the size (periodic wrap for periodic domains). For
/// field-to-field (sub-grid) closures. Use `Cnn1d` or `Cnn2d`.
type ConvNet
    /// Creates the network `name` over `dims` spatial axes (1 or 2), `kind` naming it in messages: `inputs`
    /// channels → `depth` convolutions of `width` channels and odd `kernel` size → `outputs` channels; padding
    /// Periodic and activation Tanh unless given, in `dtype` (default: the engine precision).
    (
        kind: string,
        dims: int,
        name: string,
        inputs: int,
        outputs: int,
        width: int,
        depth: int,
        kernel: int,
        ?padding: Padding,
        ?activation: Activation,
        ?dtype: torch.ScalarType
    ) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>(name)

    do
        Engine.init ()
        Neural.check $"{kind} inputs" name inputs 1
        Neural.check $"{kind} outputs" name outputs 1
        Neural.check $"{kind} width" name width 1
        Neural.check $"{kind} depth" name depth 0

        if kernel < 1 || kernel % 2 = 0 then
            raise (HybridException($"{kind} '{name}': kernel {kernel} must be odd and positive (e.g. 3 or 5)."))

    let pad = defaultArg padding Padding.Periodic
    let half = int64 (kernel / 2)

    let conv (i: int) (o: int) =
        Convolution.create dims (int64 i) (int64 o) (int64 kernel)

    let convs =
        let list = new ModuleList<Modules.Convolution>()
        let mutable last = inputs

        for _ in 0 .. depth - 1 do
            list.Add(conv last width)
            last <- width

        list.Add(conv last outputs)
        list

    let act = Neural.activationModule (defaultArg activation Activation.Tanh)

    do
        this.register_module ("convs", convs)

        this.``to`` (Engine.torchDevice (), defaultArg dtype (Engine.dtype ()))
        |> ignore

    let padded (x: torch.Tensor) =
        if half = 0L then
            x
        else
            let widths = Array.create (2 * dims) half

            match pad with
            | Padding.Periodic -> torch.nn.functional.pad (x, widths, PaddingModes.Circular)
            | Padding.Zeros -> torch.nn.functional.pad (x, widths, PaddingModes.Constant)
            | Padding.Replicate -> torch.nn.functional.pad (x, widths, PaddingModes.Replicate)

    /// Applies the network to [B; inputs; spatial…].
    override _.forward(x: torch.Tensor) : torch.Tensor =
        if x.dim () <> int64 (dims + 2) || x.shape[1] <> int64 inputs then
            let spatial = if dims = 1 then "n" else "nx; ny"

            raise (
                HybridException(
                    $"{kind} '{name}' expects [batch; {inputs}; {spatial}], got shape [{System.String.Join(',', x.shape)}]."
                )
            )

        let mutable h = x

        for i in 0 .. convs.Count - 1 do
            h <- Convolution.apply convs[i] (padded h)

            if i < convs.Count - 1 then
                h <- act.forward h

        h

/// A 1-D convolutional network [B; inputs; n] → [B; outputs; n]; see `ConvNet`.
type Cnn1d
    /// Creates the 1-D network `name`: `inputs` channels → `depth` convolutions of `width` channels and odd
    /// `kernel` size → `outputs` channels; padding Periodic and activation Tanh unless given, in `dtype`
    /// (default: the engine precision).
    (
        name: string,
        inputs: int,
        outputs: int,
        width: int,
        depth: int,
        kernel: int,
        ?padding: Padding,
        ?activation: Activation,
        ?dtype: torch.ScalarType
    ) =
    inherit
        ConvNet(
            "Cnn1d",
            1,
            name,
            inputs,
            outputs,
            width,
            depth,
            kernel,
            defaultArg padding Padding.Periodic,
            defaultArg activation Activation.Tanh,
            defaultArg dtype (Engine.dtype ())
        )

/// A 2-D convolutional network [B; inputs; nx; ny] → [B; outputs; nx; ny]; see `ConvNet`.
type Cnn2d
    /// Creates the 2-D network `name`: `inputs` channels → `depth` convolutions of `width` channels and odd
    /// `kernel` size (in both axes) → `outputs` channels; padding Periodic and activation Tanh unless given, in
    /// `dtype` (default: the engine precision).
    (
        name: string,
        inputs: int,
        outputs: int,
        width: int,
        depth: int,
        kernel: int,
        ?padding: Padding,
        ?activation: Activation,
        ?dtype: torch.ScalarType
    ) =
    inherit
        ConvNet(
            "Cnn2d",
            2,
            name,
            inputs,
            outputs,
            width,
            depth,
            kernel,
            defaultArg padding Padding.Periodic,
            defaultArg activation Activation.Tanh,
            defaultArg dtype (Engine.dtype ())
        )

/// Calling networks as closures inside equations.
[<RequireQualifiedAccess>]
module Closure =

    /// A pointwise closure R(u, v, …): the input fields (each [B; spatial…], same shape) are stacked on a
    /// new last axis and the network is evaluated on every grid cell in one batched call. Returns
    /// [B; spatial…] for a one-output network, [B; spatial…; outputs] otherwise.
    let pointwise (net: torch.nn.Module<torch.Tensor, torch.Tensor>) (inputs: torch.Tensor[]) : torch.Tensor =
        if inputs.Length = 0 then
            raise (HybridException($"Closure '{net.GetName()}' was called with no input fields. Pass at least one."))

        let shape = inputs[0].shape

        inputs
        |> Array.iteri (fun i t ->
            if t.shape <> shape then
                raise (
                    HybridException(
                        $"Closure '{net.GetName()}': input {i} has shape [{System.String.Join(',', t.shape)}] but input 0 has [{System.String.Join(',', shape)}]. Pointwise closures need fields of one shape."
                    )
                ))

        let y = net.forward (torch.stack (inputs, -1L))

        if y.shape[y.shape.Length - 1] = 1L then
            y.squeeze (-1L)
        else
            y

    /// A field-to-field closure (sub-grid terms): the input fields [B; spatial…] become channels of a CNN
    /// ([B; k; spatial…]); returns [B; spatial…] for one output channel, [B; outputs; spatial…] otherwise.
    let field (net: torch.nn.Module<torch.Tensor, torch.Tensor>) (inputs: torch.Tensor[]) : torch.Tensor =
        if inputs.Length = 0 then
            raise (HybridException($"Closure '{net.GetName()}' was called with no input fields. Pass at least one."))

        let y = net.forward (torch.stack (inputs, 1L))
        if y.shape[1] = 1L then y.squeeze (1L) else y
