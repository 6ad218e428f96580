namespace Hybrid.Training

open TorchSharp

/// The convolution layers of Hybrid's networks (`Cnn1d`/`Cnn2d`, `FieldCnn`, `ConvLstmCell`), created and applied
/// here so that all of them avoid a defect of the CPU libtorch (2.10.0) Hybrid ships with: in float32, the gradient
/// with respect to a convolution's input comes back as NaN at random (in about one backward pass in ten) when the
/// layer's output channels are not a multiple of 16, oneDNN's channel block — a 16 → 3 or 8 → 2 layer, like the
/// output layer of a closure, hits it; float64 and layers of 16, 32, … outputs do not. `apply` then convolves with
/// the weights (and bias) padded by zero output channels to the next multiple of 16 and keeps the layer's own
/// channels: the same values, gradients without the NaN, at the cost of the padded channels. It does so only where
/// the defect can strike (float32 on the CPU, gradients recorded, a layer whose output channels are not a multiple
/// of 16); elsewhere it is the layer's own forward.
[<RequireQualifiedAccess>]
module internal Convolution =

    /// oneDNN's channel block on AVX-512 (twice the AVX2 block, so padding to it covers both).
    let private block = 16L

    /// A convolution over `dims` (1 or 2) spatial axes, `inputs` → `outputs` channels, an odd `kernel`, no padding
    /// of its own (the callers pad the fields first), with a bias.
    let create (dims: int) (inputs: int64) (outputs: int64) (kernel: int64) : Modules.Convolution =
        if dims = 1 then
            torch.nn.Conv1d(inputs, outputs, kernel)
        else
            torch.nn.Conv2d(inputs, outputs, kernel)

    /// Whether applying a layer with `outputs` output channels to `x` needs the padded form.
    let private exposed (x: torch.Tensor) (outputs: int64) =
        outputs % block <> 0L
        && x.dtype = torch.ScalarType.Float32
        && x.device_type = DeviceType.CPU
        && torch.is_grad_enabled ()

    /// `x` convolved with `weight` (and `bias`, or none where it is null) over 1 or 2 spatial axes, no padding.
    let private run (x: torch.Tensor) (weight: torch.Tensor) (bias: torch.Tensor) =
        if x.dim () = 3L then
            torch.nn.functional.conv1d (x, weight, bias)
        else
            torch.nn.functional.conv2d (x, weight, bias)

    /// `conv`'s weights, and its bias where `withBias`, applied to `x` ([B; inputs; spatial…]), guarded against the
    /// defect described above.
    let private convolve (conv: Modules.Convolution) (withBias: bool) (x: torch.Tensor) : torch.Tensor =
        let outputs = conv.out_channels

        if not (exposed x outputs) then
            if withBias then conv.forward x else run x conv.weight null
        else
            use _ = torch.NewDisposeScope()
            let extra = block - outputs % block
            let w = conv.weight

            let zeros =
                torch.zeros (Array.append [| extra |] w.shape[1..], dtype = w.dtype, device = w.device)

            let weight = torch.cat ([| w :> torch.Tensor; zeros |], 0L)

            let bias =
                match conv.bias with
                | null -> null
                | _ when not withBias -> null
                | b ->
                    torch.cat (
                        [|
                            b :> torch.Tensor
                            torch.zeros ([| extra |], dtype = b.dtype, device = b.device)
                        |],
                        0L
                    )

            (run x weight bias).narrow(1L, 0L, outputs).MoveToOuterDisposeScope()

    /// `conv` applied to `x` ([B; inputs; spatial…]), guarded against the defect described above.
    let apply (conv: Modules.Convolution) (x: torch.Tensor) : torch.Tensor = convolve conv true x

    /// `conv`'s linear part (its weights, without the bias) applied to `x`, guarded as `apply`: the convolution's
    /// derivative with respect to its input, for forward-mode JVPs.
    let linear (conv: Modules.Convolution) (x: torch.Tensor) : torch.Tensor = convolve conv false x
