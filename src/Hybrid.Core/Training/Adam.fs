namespace Hybrid.Training

open System
open System.IO
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Adam (Kingma and Ba, 2015) over groups of parameters, each group with its own learning rate, as used by
/// `Trainer.train` and the case studies. Use it in a training loop of your own like TorchSharp's optimizers:
/// `ZeroGrad ()`, the loss's `backward ()`, `Step ()`. `Adam(groups, beta1, beta2, epsilon)` sets the
/// coefficients.
///
/// Its arithmetic is TorchSharp 0.107's `optim.Adam` operation for operation (m ← β₁m + (1 − β₁)g,
/// v ← β₂v + (1 − β₂)g², θ ← θ − (lr / (1 − β₁ᵗ)) m / (√v / √(1 − β₂ᵗ) + ε)), so results are bitwise the
/// same; a parameter is skipped while it has no gradient, and `ZeroGrad` zeroes gradients (keeps them).
/// Unlike TorchSharp's, its step keeps every number it passes to libtorch alive for the whole call (see
/// `TensorArithmetic`): TorchSharp's step hands libtorch temporary Scalars that the garbage collector can
/// free mid-call, which failed training runs at random ("Expected false to be true … Scalar.h").
type Adam
    /// Adam over `groups` (parameters, learning rate) with the coefficients β₁ = `beta1`, β₂ = `beta2` and ε =
    /// `epsilon`; raises `ArgumentOutOfRangeException` naming a coefficient or rate outside its range.
    (groups: (torch.Tensor[] * float)[], beta1: float, beta2: float, epsilon: float) =
    do
        Engine.init ()

        let bad (name: string) (value: float) (need: string) =
            raise (ArgumentOutOfRangeException(name, value, $"Adam: {name} = {value}; need {need}."))

        if not (beta1 >= 0.0 && beta1 < 1.0) then
            bad "beta1" beta1 "0 ≤ beta1 < 1"

        if not (beta2 >= 0.0 && beta2 < 1.0) then
            bad "beta2" beta2 "0 ≤ beta2 < 1"

        if not (epsilon >= 0.0 && Double.IsFinite epsilon) then
            bad "epsilon" epsilon "a finite epsilon ≥ 0"

        groups
        |> Array.iteri (fun i (_, rate) ->
            if not (rate >= 0.0 && Double.IsFinite rate) then
                bad $"learning rate of group {i}" rate "a finite rate ≥ 0")

    let rates = groups |> Array.map snd
    let parameters = groups |> Array.map fst

    let createMoments () =
        use _ = torch.no_grad ()

        parameters
        |> Array.map (Array.map (fun p -> torch.zeros_like p, torch.zeros_like p))

    // Per parameter: steps taken, first moment m and second moment v.
    let steps = parameters |> Array.map (fun ps -> Array.zeroCreate<int64> ps.Length)
    let moments = createMoments ()
    let mutable disposed = false

    let update (p: torch.Tensor) (grad: torch.Tensor) (m: torch.Tensor) (v: torch.Tensor) (step: int64) (rate: float) =
        let correction1 = 1.0 - Math.Pow(beta1, float step)
        let correction2 = 1.0 - Math.Pow(beta2, float step)
        withScalar beta1 m.mul_ |> ignore
        withScalar (1.0 - beta1) (fun a -> m.add_ (grad, a)) |> ignore
        withScalar beta2 v.mul_ |> ignore
        withScalar (1.0 - beta2) (fun a -> v.addcmul_ (grad, grad, a)) |> ignore
        use root = v.sqrt ()
        use denominator = root ./ Math.Sqrt correction2

        withScalar epsilon (fun e -> withScalar 1.0 (fun one -> denominator.add_ (e, one)))
        |> ignore

        withScalar (-rate / correction1) (fun s -> p.addcdiv_ (m, denominator, s))
        |> ignore

    let checkAlive () =
        if disposed then
            raise (ObjectDisposedException("Adam", "Adam: this optimizer has been disposed of."))

    /// Adam with β₁ = 0.9, β₂ = 0.999 and ε = 1e-8 over (parameters, learning rate) groups.
    new(groups: (torch.Tensor[] * float)[]) = new Adam(groups, 0.9, 0.999, 1e-8)

    /// The number of parameter groups.
    member _.Groups = groups.Length

    /// The learning rate of group `group` (settable, e.g. for a schedule).
    member _.LearningRate
        with get (group: int) = rates[group]
        and set (group: int) (rate: float) =
            if not (rate >= 0.0 && Double.IsFinite rate) then
                raise (
                    ArgumentOutOfRangeException(
                        "rate",
                        rate,
                        $"Adam: the learning rate of group {group} must be finite and ≥ 0, got {rate}."
                    )
                )

            rates[group] <- rate

    /// Zeroes the gradient of every parameter that has one.
    member _.ZeroGrad() =
        checkAlive ()

        for ps in parameters do
            for p in ps do
                use g = p.grad

                if not (isNull g) then
                    g.zero_ () |> ignore

    /// One Adam step on every parameter that has a gradient.
    member _.Step() =
        checkAlive ()
        use _ = torch.no_grad ()

        for i in 0 .. parameters.Length - 1 do
            for j in 0 .. parameters[i].Length - 1 do
                let p = parameters[i][j]
                use grad = p.grad

                if not (isNull grad) then
                    steps[i][j] <- steps[i][j] + 1L
                    let m, v = moments[i][j]
                    update p grad m v steps.[i].[j] rates.[i]

    /// Writes the optimizer's state (steps and moments of every parameter, not the learning rates).
    member _.Save(writer: BinaryWriter) =
        checkAlive ()
        writer.Write parameters.Length

        for i in 0 .. parameters.Length - 1 do
            writer.Write parameters[i].Length

            for j in 0 .. parameters[i].Length - 1 do
                let m, v = moments[i][j]
                writer.Write(steps[i][j])
                use mc = m.cpu ()
                use vc = v.cpu ()
                mc.Save writer
                vc.Save writer

    /// Reads state written by `Save` for the same groups of parameters (same counts and shapes); raises
    /// `InvalidDataException` naming what differs, leaving the state unchanged.
    member _.Load(reader: BinaryReader) =
        checkAlive ()
        let count = reader.ReadInt32()

        if count <> parameters.Length then
            raise (
                InvalidDataException
                    $"the saved Adam state has {count} parameter groups, this optimizer {parameters.Length}"
            )

        let loaded = [|
            for i in 0 .. parameters.Length - 1 do
                let n = reader.ReadInt32()

                if n <> parameters[i].Length then
                    raise (
                        InvalidDataException
                            $"group {i} of the saved Adam state has {n} parameters, this optimizer's {parameters[i].Length}"
                    )

                yield [|
                    for j in 0 .. n - 1 do
                        let step = reader.ReadInt64()
                        let m, v = moments[i][j]
                        let m' = torch.zeros (m.shape, dtype = m.dtype)
                        let v' = torch.zeros (v.shape, dtype = v.dtype)

                        try
                            m'.Load reader |> ignore
                            v'.Load reader |> ignore
                        with :? ArgumentException as e ->
                            raise (
                                InvalidDataException(
                                    $"parameter {j} of group {i} has shape {ShapeText.ofShape m.shape}, its saved Adam moments another ({e.Message})",
                                    e
                                )
                            )

                        yield step, m', v'
                |]
        |]

        use _ = torch.no_grad ()

        loaded
        |> Array.iteri (fun i row ->
            row
            |> Array.iteri (fun j (step, m', v') ->
                let m, v = moments[i][j]
                steps[i][j] <- step
                m.copy_ m' |> ignore
                v.copy_ v' |> ignore
                m'.Dispose()
                v'.Dispose()))

    interface IDisposable with
        member _.Dispose() =
            if not disposed then
                disposed <- true

                for row in moments do
                    for m, v in row do
                        m.Dispose()
                        v.Dispose()
