namespace Hybrid.Training

open TorchSharp

/// Padding of the spatial axes of [B; channels; spatial…] tensors before a convolution, one `Padding` per axis
/// (x first): what `FieldCnn` and `ConvLstmCell` share.
[<RequireQualifiedAccess>]
module internal FieldPadding =

    /// TorchSharp's padding mode of a `Padding`.
    let mode (p: Hybrid.Training.Padding) =
        match p with
        | Hybrid.Training.Padding.Periodic -> PaddingModes.Circular
        | Hybrid.Training.Padding.Zeros -> PaddingModes.Constant
        | Hybrid.Training.Padding.Replicate -> PaddingModes.Replicate

    /// `x` ([B; channels; spatial…], `padding.Length` spatial axes) padded by `half` cells on both sides of each
    /// spatial axis a with `padding[a]`; `x` itself when `half` is 0.
    let pad (padding: Hybrid.Training.Padding[]) (half: int64) (x: torch.Tensor) : torch.Tensor =
        let dims = padding.Length

        if half = 0L then
            x
        elif padding |> Array.forall (fun p -> p = padding[0]) then
            torch.nn.functional.pad (x, Array.create (2 * dims) half, mode padding[0])
        else
            // torch's pad widths run from the last axis backwards: axis a (x = 0) sits at 2 (dims − 1 − a).
            let mutable h = x

            for a in 0 .. dims - 1 do
                let w = Array.zeroCreate<int64> (2 * dims)
                let at = 2 * (dims - 1 - a)
                w[at] <- half
                w[at + 1] <- half
                h <- torch.nn.functional.pad (h, w, mode padding[a])

            h
