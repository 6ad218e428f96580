namespace Hybrid.Training

open System
open System.Collections.Generic
open TorchSharp
open Hybrid

/// One epoch of training: the optimizer steps over mini-batches, and the validation pass.
[<RequireQualifiedAccess>]
module internal Epoch =

    /// The loss of one step, checked: a 0-dim tensor with a finite value.
    let private checkedLoss (parts: LossParts) (epoch: int) (step: int) =
        if parts.Total.dim () <> 0L then
            raise (
                HybridException(
                    $"Trainer: the loss must be a scalar (0-dim) tensor, got shape {ShapeText.ofShape parts.Total.shape}. Reduce it with .mean()."
                )
            )

        let value = parts.Total.ToDouble()

        if Double.IsNaN value || Double.IsInfinity value then
            raise (
                DivergenceException(
                    $"Trainer: the loss became {value} at epoch {epoch + 1}, step {step + 1}. Lower the learning rates, clip gradients (ClipNorm), or shorten the horizon."
                )
            )

        value

    /// The names of the groups with a gradient that holds a NaN or ±∞ (empty when every gradient is finite). A NaN or
    /// ±∞ makes the sum of a parameter's gradient entries non-finite, so one sum per parameter decides the common case;
    /// only a non-finite sum (which finite gradients give only when they overflow it) tests each entry.
    let private nonFiniteGroups (o: TrainOptions) : string[] =
        let withGrad (f: torch.Tensor -> 'T) (p: Modules.Parameter) =
            use grad = p.grad
            if isNull grad then None else Some(f grad)

        let sumOf (t: torch.Tensor) =
            use sum = t.sum ()
            sum.ToDouble()

        let total =
            o.Groups
            |> Array.sumBy (fun g -> g.Parameters |> Array.choose (withGrad sumOf) |> Array.sum)

        if Double.IsFinite total then
            [||]
        else
            let finite (t: torch.Tensor) =
                use ok = torch.isfinite t
                use all = ok.all ()
                all.ToBoolean()

            o.Groups
            |> Array.filter (fun g -> g.Parameters |> Array.choose (withGrad finite) |> Array.exists not)
            |> Array.map (fun g -> g.Name)

    /// Raises `DivergenceException` before the optimizer step when a gradient is not finite although the loss is:
    /// Adam would write the NaN into the parameters (and clipping the global norm would spread it to all of them).
    let private checkGradients (o: TrainOptions) (epoch: int) (step: int) (loss: float) =
        match nonFiniteGroups o with
        | [||] -> ()
        | groups ->
            let names = groups |> Array.map (fun n -> $"'{n}'") |> String.concat ", "

            raise (
                DivergenceException(
                    $"Trainer: the gradient of group {names} became non-finite (NaN or ±∞) at epoch {epoch + 1}, step {step + 1}, with a finite loss {loss:g6}; the step was not taken. A NaN gradient under a finite loss usually comes from a branch that torch.where (or a mask) leaves unused but that is NaN or ±∞ there (a division by 0, sqrt or log at 0): make both branches finite. Otherwise lower the learning rates, clip gradients (ClipNorm), or shorten the horizon."
                )
            )

    /// Runs `o.StepsPerEpoch` optimizer steps (modules in training mode, each step in its own dispose scope), each
    /// refused with a `DivergenceException` when its loss or a gradient is not finite; returns the mean loss and the
    /// mean of each named part, in the order first reported.
    let steps
        (o: TrainOptions)
        (optimizer: Adam)
        (all: Modules.Parameter[])
        (objective: Objective)
        (ctx: TrainContext)
        : float * (string * float)[] =
        let mutable sum = 0.0
        let partSums = Dictionary<string, float>()
        let partOrder = ResizeArray<string>()

        for m in o.Modules do
            m.train ()

        for step in 0 .. o.StepsPerEpoch - 1 do
            use _ = torch.NewDisposeScope()
            optimizer.ZeroGrad()
            let parts = objective.Loss { ctx with Step = step }
            let value = checkedLoss parts ctx.Epoch step
            parts.Total.backward ()
            checkGradients o ctx.Epoch step value

            if o.ClipNorm > 0.0 then
                torch.nn.utils.clip_grad_norm_ (all, o.ClipNorm) |> ignore

            optimizer.Step()
            sum <- sum + value

            for (n, t) in parts.Parts do
                if not (partSums.ContainsKey n) then
                    partSums[n] <- 0.0
                    partOrder.Add n

                partSums[n] <- partSums[n] + t.ToDouble()

        let n = float o.StepsPerEpoch
        sum / n, [| for p in partOrder -> p, partSums[p] / n |]

    /// The validation loss, without gradients and with the modules in eval mode (back in training mode after,
    /// even when the validation loss throws).
    let validation (o: TrainOptions) (validate: TrainContext -> float) (ctx: TrainContext) : float =
        for m in o.Modules do
            m.eval ()

        try
            use _ = torch.no_grad ()
            use _ = torch.NewDisposeScope()
            validate ctx
        finally
            for m in o.Modules do
                m.train ()
