/// Hybrid's Adam: bitwise TorchSharp's `optim.Adam` (groups with their own rates, a parameter that gets its first
/// gradient late), a state that saves and loads exactly, and arguments refused by name.
module Hybrid.Tests.Training.AdamTests

open System
open System.IO
open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Training

let private f64 = torch.ScalarType.Float64

/// Three parameters in two groups: a vector and a scalar at rate 0.05, a vector at rate 0.2.
let private parameters () =
    Engine.init ()
    use generator = new torch.Generator(7UL)

    [|
        torch.nn.Parameter(torch.randn ([| 5L |], dtype = f64, generator = generator))
        torch.nn.Parameter(torch.randn ([||], dtype = f64, generator = generator))
        torch.nn.Parameter(torch.randn ([| 3L |], dtype = f64, generator = generator))
    |]

/// A non-quadratic loss; the third parameter enters only from step 4 on (no gradient before: skipped).
let private loss (ps: Modules.Parameter[]) (step: int) =
    let a = (square (ps[0] .- 1.0)).sum () .* (ps[1].tanh () .+ 2.0)
    let b = (ps[0] .* ps[0].sin ()).sum ()

    if step >= 4 then
        a .+ b .+ (square (ps[2] .* ps[0][0L] .- 0.5)).sum ()
    else
        a .+ b

let private groups (ps: Modules.Parameter[]) = [|
    [| ps[0] :> torch.Tensor; ps[1] |], 0.05
    [| ps[2] :> torch.Tensor |], 0.2
|]

/// Runs `steps` steps of Hybrid's Adam from step `first`, as the training loop does.
let private run (adam: Adam) (ps: Modules.Parameter[]) (first: int) (steps: int) =
    for step in first .. first + steps - 1 do
        use _ = torch.NewDisposeScope()
        adam.ZeroGrad()
        (loss ps step).backward ()
        adam.Step()

let private values (ps: Modules.Parameter[]) =
    ps |> Array.collect (fun p -> p.detach().reshape(-1L).data<float>().ToArray())

let tests =
    testList "Adam" [
        test "equals TorchSharp's Adam bit for bit, groups and a late first gradient included" {
            let ours = parameters ()
            let theirs = parameters ()
            use adam = new Adam(groups ours)

            use reference =
                torch.optim.Adam(
                    [|
                        Modules.Adam.ParamGroup([| theirs[0]; theirs[1] |], lr = 0.05)
                        Modules.Adam.ParamGroup([| theirs[2] |], lr = 0.2)
                    |]
                )

            for step in 0..29 do
                use _ = torch.NewDisposeScope()
                reference.zero_grad ()
                (loss theirs step).backward ()
                reference.step () |> ignore

            run adam ours 0 30
            let start = parameters () |> values
            Expect.notEqual (values ours) start "the parameters moved"
            Expect.equal (values ours) (values theirs) "bitwise equal after 30 steps"
        }

        test "a saved state loads back exactly: stopping and resuming gives the uninterrupted run" {
            let straight = parameters ()
            use adam = new Adam(groups straight)
            run adam straight 0 20

            let resumed = parameters ()
            use first = new Adam(groups resumed)
            run first resumed 0 10
            use buffer = new MemoryStream()

            do
                use writer = new BinaryWriter(buffer, Text.Encoding.UTF8, true)
                first.Save writer

            buffer.Position <- 0L
            use second = new Adam(groups resumed)
            use reader = new BinaryReader(buffer)
            second.Load reader
            run second resumed 10 10
            Expect.equal (values resumed) (values straight) "bitwise equal"

            // Without the state (fresh moments and step counts) the run differs: the state matters.
            let fresh = parameters ()
            use a = new Adam(groups fresh)
            run a fresh 0 10
            use b = new Adam(groups fresh)
            run b fresh 10 10
            Expect.notEqual (values fresh) (values straight) "the moments carry over"
        }

        test "a state of other parameters is refused, naming the difference, and nothing changes" {
            let ps = parameters ()
            use adam = new Adam(groups ps)
            run adam ps 0 5
            use buffer = new MemoryStream()

            do
                use writer = new BinaryWriter(buffer, Text.Encoding.UTF8, true)
                adam.Save writer

            let other = [| torch.nn.Parameter(torch.zeros ([| 4L |], dtype = f64)) :> torch.Tensor |]
            use wrongCount = new Adam([| other, 0.1 |])
            buffer.Position <- 0L

            let e =
                Expect.throwsC (fun () -> wrongCount.Load(new BinaryReader(buffer, Text.Encoding.UTF8, true))) id

            Expect.equal e.Message "the saved Adam state has 2 parameter groups, this optimizer 1" "counts"

            let reshaped = parameters ()
            let bigger = torch.nn.Parameter(torch.zeros ([| 6L |], dtype = f64))

            use wrongShape =
                new Adam([| [| bigger :> torch.Tensor; reshaped[1] |], 0.1; [| reshaped[2] |], 0.1 |])

            buffer.Position <- 0L

            let e =
                Expect.throwsC (fun () -> wrongShape.Load(new BinaryReader(buffer, Text.Encoding.UTF8, true))) id

            Expect.stringStarts
                e.Message
                "parameter 0 of group 0 has shape [6], its saved Adam moments another"
                "shapes"

            // The refused load left the state as it was: both continue like a fresh optimizer.
            bigger.grad <- torch.ones ([| 6L |], dtype = f64)
            wrongShape.Step()
            let expected = -0.1 // the first step of Adam moves by lr·g/(|g| + ε) ≈ lr
            Expect.floatClose Accuracy.high (bigger[0L].ToDouble()) expected "a first step"
        }

        test "invalid coefficients and rates are refused by name" {
            let ps = parameters ()

            let message (f: unit -> Adam) =
                (Expect.throwsC (fun () -> f () |> ignore) (fun e -> e :?> ArgumentOutOfRangeException)).ParamName

            Expect.equal (message (fun () -> new Adam(groups ps, 1.0, 0.999, 1e-8))) "beta1" "β₁ = 1"
            Expect.equal (message (fun () -> new Adam(groups ps, 0.9, -0.1, 1e-8))) "beta2" "β₂ < 0"
            Expect.equal (message (fun () -> new Adam(groups ps, 0.9, 0.999, nan))) "epsilon" "ε = NaN"

            Expect.equal
                (message (fun () -> new Adam([| [| ps[0] :> torch.Tensor |], nan |])))
                "learning rate of group 0"
                "rate NaN"

            use adam = new Adam(groups ps)
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> adam.LearningRate(1) <- -1.0) "negative rate"
            adam.LearningRate(1) <- 0.3
            Expect.equal (adam.LearningRate 1) 0.3 "set"
        }
    ]
