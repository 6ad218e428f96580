// The public surface and its documentation: Loss.fsi.
namespace Hybrid.Training

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

[<RequireQualifiedAccess>]
type LambdaSchedule =
    | Constant of float
    | Linear of start: float * stop: float * epochs: int
    | Exponential of start: float * factor: float * cap: float

[<RequireQualifiedAccess>]
module Loss =


    let private sameShape (what: string) (prediction: torch.Tensor) (target: torch.Tensor) =
        if prediction.shape <> target.shape then
            raise (
                HybridException(
                    $"{what}: prediction has shape {ShapeText.ofShape prediction.shape} but target has {ShapeText.ofShape target.shape}. Apply the observation operator to the prediction first."
                )
            )

    let observedMask (target: torch.Tensor) : torch.Tensor =
        torch.isfinite(target).to_type target.dtype

    /// Raises when `target` holds ±∞, with the count and the first position: only NaN marks a missing value.
    let private refuseInfinite (what: string) (target: torch.Tensor) =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()
        let infinite = torch.isinf target
        let count = infinite.sum().ToInt64()

        if count > 0L then
            let position =
                infinite.nonzero().narrow(0L, 0L, 1L).reshape(-1L).cpu().data<int64>().ToArray()

            let value =
                target
                    .detach()
                    .reshape(-1L)
                    .cpu()
                    .to_type(torch.ScalarType.Float64)
                    .index_select(0L, infinite.reshape(-1L).nonzero().narrow(0L, 0L, 1L).reshape (-1L))
                    .ToDouble()

            let sign = if value > 0.0 then "+∞" else "-∞"

            let at =
                if position.Length = 0 then
                    ""
                else
                    " at index [" + System.String.Join(", ", position) + "]"

            let values = if count = 1L then "value" else "values"

            raise (
                HybridException(
                    $"{what}: the target holds {count} infinite {values} (the first is {sign}{at}). Only NaN marks a missing value, so ±∞ is not ignored: it usually comes from an overflow or from text such as 'Infinity' in the data. Replace it by NaN to mark it missing, or correct the data."
                )
            )

    let private masked (what: string) (target: torch.Tensor) =
        refuseInfinite what target
        let mask = observedMask target
        let count = mask.sum ()

        if count.ToDouble() = 0.0 then
            raise (HybridException("Loss: every target value is missing (NaN); there is nothing to fit."))

        mask, torch.where (mask.to_type (torch.ScalarType.Bool), target, torch.zeros_like target), count

    let mse (prediction: torch.Tensor) (target: torch.Tensor) : torch.Tensor =
        sameShape "Loss.mse" prediction target
        let mask, filled, count = masked "Loss.mse" target
        (square (prediction - filled) * mask).sum () / count

    let fusedMse
        (branchWeight: float)
        (fused: torch.Tensor)
        (physics: torch.Tensor)
        (neural: torch.Tensor)
        (target: torch.Tensor)
        : torch.Tensor =
        if branchWeight < 0.0 then
            raise (HybridException($"Loss.fusedMse: the branch weight must be ≥ 0, got {branchWeight}."))

        let main = mse fused target

        if branchWeight = 0.0 then
            main
        else
            main .+ branchWeight .* (mse physics target .+ mse neural target)

    let gaussianNll (mean: torch.Tensor) (std: torch.Tensor) (target: torch.Tensor) : torch.Tensor =
        sameShape "Loss.gaussianNll" mean target
        sameShape "Loss.gaussianNll (std)" std target
        let mask, filled, count = masked "Loss.gaussianNll" target
        let var = square std

        let nll =
            0.5
            .* (torch.log (var) .+ square (mean - filled) / var .+ log (2.0 * System.Math.PI))

        (nll * mask).sum () / count

    let residual
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (form: ResidualForm)
        (times: float[])
        (values: torch.Tensor[])
        : torch.Tensor =
        let r = Residual.compute dyn theta form times values

        r.Values
        |> Array.map (fun v -> (square v).mean ())
        |> Array.reduce (.+)
        |> fun s -> s ./ float r.Values.Length

    let prior (mean: float) (sd: float) (value: torch.Tensor) : torch.Tensor =
        if not (sd > 0.0) then
            raise (HybridException($"Loss.prior: the prior standard deviation must be positive, got {sd}."))

        0.5 .* (square ((value .- mean) ./ sd)).sum ()

    let smoothness (batched: bool) (field: torch.Tensor) : torch.Tensor =
        let first = if batched then 1 else 0
        let dims = int (field.dim ())

        if dims <= first then
            torch.zeros ([||], dtype = field.dtype, device = field.device)
        else
            [ first .. dims - 1 ]
            |> List.map (fun d ->
                let n = field.shape[d]
                (square (field.narrow (int64 d, 1L, n - 1L) - field.narrow (int64 d, 0L, n - 1L))).mean ())
            |> List.reduce (.+)

    let lambdaAt (schedule: LambdaSchedule) (epoch: int) : float =
        match schedule with
        | LambdaSchedule.Constant l -> l
        | LambdaSchedule.Linear(a, b, n) ->
            if n <= 0 || epoch >= n then
                b
            else
                a + (b - a) * float epoch / float n
        | LambdaSchedule.Exponential(a, f, cap) -> min cap (a * System.Math.Pow(f, float epoch))
