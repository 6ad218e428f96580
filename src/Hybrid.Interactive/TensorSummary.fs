namespace Hybrid.Interactive

open System
open TorchSharp

/// A tensor as one line: dtype, shape, device (when not the CPU), whether it requires gradients, and its
/// first values in row-major order: `tensor Float64 [2, 3]: 1, 2, 3, 4, 5, 6`.
[<RequireQualifiedAccess>]
module TensorSummary =

    /// How many values the summary shows before `…`.
    [<Literal>]
    let ShownValues = 8

    let private isInteger (t: torch.ScalarType) =
        match t with
        | torch.ScalarType.Byte
        | torch.ScalarType.Int8
        | torch.ScalarType.Int16
        | torch.ScalarType.Int32
        | torch.ScalarType.Int64 -> true
        | _ -> false

    let private isComplex (t: torch.ScalarType) =
        t = torch.ScalarType.ComplexFloat32 || t = torch.ScalarType.ComplexFloat64

    /// The first `count` values (row-major) as text.
    let private firstValues (t: torch.Tensor) (count: int64) : string[] =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let head = t.detach().flatten().narrow(0L, 0L, count).cpu ()

        match head.dtype with
        | torch.ScalarType.Bool ->
            head.to_type(torch.ScalarType.Int64).data<int64>().ToArray()
            |> Array.map (fun v -> if v <> 0L then "true" else "false")
        | dtype when isInteger dtype ->
            head.to_type(torch.ScalarType.Int64).data<int64>().ToArray()
            |> Array.map (fun v -> v.ToString(Globalization.CultureInfo.InvariantCulture))
        | _ ->
            head.to_type(torch.ScalarType.Float64).data<float>().ToArray()
            |> Array.map Html.number

    /// The summary line. A disposed tensor reads `tensor (disposed)`; complex values are not shown.
    let text (t: torch.Tensor) : string =
        if isNull (box t) || t.IsInvalid then
            "tensor (disposed)"
        else
            let device =
                if t.device_type = DeviceType.CPU then
                    ""
                else
                    $" on {t.device}"

            let grad = if t.requires_grad then ", requires grad" else ""
            let head = $"tensor {t.dtype} {Html.shape t.shape}{device}{grad}"
            let count = t.numel ()

            let values =
                if count = 0L then
                    "no values"
                elif isComplex t.dtype then
                    $"{count} complex values (not shown)"
                else
                    let shown = min count (int64 ShownValues)
                    let first = String.Join(", ", firstValues t shown)

                    if count > shown then
                        $"{first}, … ({count} values)"
                    else
                        first

            $"{head}: {values}"

    /// The summary line as HTML (`<code>`).
    let html (t: torch.Tensor) : string =
        $"<code class=\"hybrid-tensor\">{Html.escape (text t)}</code>"
