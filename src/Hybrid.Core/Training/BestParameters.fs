namespace Hybrid.Training

open TorchSharp
open TorchSharp.Modules

/// The parameters of the best validation epoch so far, and early stopping: a copy of every trained parameter
/// taken whenever validation improves by more than the minimum delta.
type internal BestParameters(all: Parameter[]) =
    let copies =
        use _ = torch.no_grad ()
        all |> Array.map (fun p -> p.detach().clone ())

    /// The copies (what a checkpoint saves as the best parameters).
    member _.Copies: torch.Tensor[] = copies

    /// The best validation loss so far (∞ before any).
    member val Validation = infinity with get, set

    /// The epoch (1-based) of the best validation loss; 0 before any.
    member val Epoch = 0 with get, set

    /// Records the validation loss after `epochsDone` epochs (NaN: not validated). Returns true when
    /// `patience` (> 0) epochs have passed without an improvement of more than `minDelta`.
    member b.Record(validation: float, epochsDone: int, minDelta: float, patience: int) : bool =
        if System.Double.IsNaN validation then
            false
        elif validation < b.Validation - minDelta then
            b.Validation <- validation
            b.Epoch <- epochsDone
            use _ = torch.no_grad ()

            for i in 0 .. all.Length - 1 do
                copies[i].copy_ all[i] |> ignore

            false
        else
            patience > 0 && epochsDone - b.Epoch >= patience

    /// Puts the best parameters back (nothing when no epoch was validated).
    member b.Restore() =
        if b.Epoch > 0 then
            use _ = torch.no_grad ()

            for i in 0 .. all.Length - 1 do
                all[i].copy_ copies[i] |> ignore
