/// The convolutional LSTM cell: shapes and weight count, refusals, translation equivariance under circular padding,
/// gradients of an unrolled sequence against central finite differences (float64), and memory: recalling the input
/// of two steps ago, which no memoryless network can do better than the input's variance.
module Hybrid.Tests.Training.ConvLstmTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64

let private periodic2 = [| Padding.Periodic; Padding.Periodic |]

/// `steps` steps of `cell` from the zero state over the inputs `xs` (each [B; inputs; spatial…]): the last state.
let private unroll (cell: ConvLstmCell) (xs: torch.Tensor[]) =
    let spatial = xs[0].shape[2..]

    xs
    |> Array.fold (fun state x -> cell.Step(x, state)) (cell.ZeroState(int (xs[0].shape[0]), spatial))

let tests =
    testSequenced
    <| testList "ConvLstm" [
        test "a step keeps the spatial shape; the weight count is (inputs + hidden) · 4 hidden · k² + 4 hidden" {
            Engine.seed 1
            let cell = new ConvLstmCell("cell", 2, 3, 5, 3, periodic2, f64)
            let x = torch.randn (2L, 3L, 6L, 4L, dtype = f64)
            let s = cell.Step(x, cell.ZeroState(2, [| 6L; 4L |]))
            Expect.sequenceEqual s.Hidden.shape [| 2L; 5L; 6L; 4L |] "h"
            Expect.sequenceEqual s.Cell.shape [| 2L; 5L; 6L; 4L |] "c"
            Expect.equal (Neural.parameterCount cell) (int64 ((3 + 5) * 4 * 5 * 9 + 4 * 5)) "weights"
            // |h| < 1 (o ∈ (0, 1), tanh ∈ (−1, 1)) and it is not zero: the step did something.
            Expect.isLessThan (s.Hidden.abs().max().ToDouble()) 1.0 "|h| < 1"
            Expect.isGreaterThan (s.Hidden.abs().max().ToDouble()) 0.0 "h ≠ 0"
            let oneD = new ConvLstmCell("line", 1, 1, 2, 5, [| Padding.Zeros |], f64)

            let y =
                oneD.Step(torch.randn (3L, 1L, 7L, dtype = f64), oneD.ZeroState(3, [| 7L |]))

            Expect.sequenceEqual y.Hidden.shape [| 3L; 2L; 7L |] "1-D h"
        }

        test "the forget gate's biases start at 1, the others as TorchSharp sets them" {
            Engine.seed 2
            let cell = new ConvLstmCell("cell", 1, 2, 3, 3, [| Padding.Periodic |], f64)
            let bias = Neural.parameters cell |> Array.find (fun p -> p.dim () = 1L)
            let values = Array.init 12 (fun i -> bias[int64 i].ToDouble())
            Expect.sequenceEqual values[3..5] [| 1.0; 1.0; 1.0 |] "forget gate"
            // TorchSharp's bias init is uniform in ±1/√(fan-in) = ±1/√(5 · 3): never exactly 1.
            for i in [ 0; 1; 2; 6; 7; 8; 9; 10; 11 ] do
                Expect.isLessThan (abs (values[i])) (1.0 / sqrt 15.0 + 1e-12) $"bias {i}"
        }

        test "wrong inputs, states, kernels and paddings are refused with the shapes" {
            let cell = new ConvLstmCell("cell", 2, 2, 3, 3, periodic2, f64)
            let state = cell.ZeroState(1, [| 4L; 4L |])

            let message (f: unit -> unit) =
                try
                    f ()
                    ""
                with :? HybridException as e ->
                    e.Message

            let channels =
                message (fun () -> cell.Step(torch.zeros (1L, 3L, 4L, 4L, dtype = f64), state) |> ignore)

            Expect.stringContains channels "[batch; 2; nx; ny]" "the expected input shape"
            Expect.stringContains channels "[1, 3, 4, 4]" "the given shape"

            let wrongState =
                message (fun () -> cell.Step(torch.zeros (1L, 2L, 5L, 4L, dtype = f64), state) |> ignore)

            Expect.stringContains wrongState "[1, 3, 5, 4]" "the state shape it needs"

            let even =
                message (fun () -> new ConvLstmCell("even", 2, 2, 3, 4, periodic2) |> ignore)

            Expect.stringContains even "kernel 4 must be odd" "even kernel"

            let paddings =
                message (fun () -> new ConvLstmCell("pads", 2, 2, 3, 3, [| Padding.Periodic |]) |> ignore)

            Expect.stringContains paddings "1 paddings for 2 spatial axes" "one padding per axis"
        }

        test "circular padding makes a step translation-equivariant; zero padding does not" {
            Engine.seed 3
            let x = torch.randn (2L, 2L, 6L, 5L, dtype = f64)
            let h = torch.randn (2L, 3L, 6L, 5L, dtype = f64)
            let c = torch.randn (2L, 3L, 6L, 5L, dtype = f64)

            let shift (t: torch.Tensor) =
                torch.roll (t, [| 2L; -1L |], [| 2L; 3L |])

            let gap (cell: ConvLstmCell) =
                use _ = torch.no_grad ()
                let shiftedThenStepped = cell.Step(shift x, { Hidden = shift h; Cell = shift c })
                let steppedThenShifted = cell.Step(x, { Hidden = h; Cell = c })

                (shiftedThenStepped.Hidden .- shift steppedThenShifted.Hidden).abs().max().ToDouble()

            let periodic = new ConvLstmCell("p", 2, 2, 3, 3, periodic2, f64)

            let walled =
                new ConvLstmCell("z", 2, 2, 3, 3, [| Padding.Zeros; Padding.Zeros |], f64)
            // Float64 round-off of O(1) values: ~1e-15.
            Expect.isLessThan (gap periodic) 1e-12 "periodic: equivariant"
            Expect.isGreaterThan (gap walled) 1e-3 "zero padding: the walls break the symmetry"
        }

        test "gradients of an unrolled sequence match central finite differences (float64)" {
            Engine.seed 4
            // Mixed padding (periodic x, zeros y) on a non-square grid, three steps.
            let cell =
                new ConvLstmCell("cell", 2, 2, 3, 3, [| Padding.Periodic; Padding.Zeros |], f64)

            let xs = Array.init 3 (fun _ -> torch.randn (2L, 2L, 5L, 4L, dtype = f64))
            let rh = torch.randn (2L, 3L, 5L, 4L, dtype = f64)
            let rc = torch.randn (2L, 3L, 5L, 4L, dtype = f64)
            let x0 = xs[0].detach().clone().requires_grad_ (true)
            let inputs () = Array.append [| x0 |] xs[1..]

            let loss () =
                let s = unroll cell (inputs ())
                (s.Hidden .* rh).sum () .+ (s.Cell .* rc).sum ()

            let ps = Neural.parameters cell
            let weight, bias = ps[0], ps[1]
            let l = loss ()

            let grads =
                torch.autograd.grad ([| l |], [| weight :> torch.Tensor; bias :> torch.Tensor; x0 |])

            let h = 1e-6

            for which, (t: torch.Tensor), index in
                [
                    0, weight :> torch.Tensor, 0L
                    0, weight :> torch.Tensor, 37L
                    0, weight :> torch.Tensor, 400L
                    1, bias :> torch.Tensor, 1L
                    1, bias :> torch.Tensor, 4L
                    2, x0, 0L
                    2, x0, 33L
                ] do
                let flat = t.view (-1L)

                let at (delta: float) =
                    use _ = torch.no_grad ()
                    let old = flat[index].ToDouble()
                    flat[index] <- torch.tensor (old + delta, dtype = f64)
                    let v = (loss ()).ToDouble()
                    flat[index] <- torch.tensor (old, dtype = f64)
                    v

                let fd = (at h - at (-h)) / (2.0 * h)
                let g: torch.Tensor = grads[which].reshape (-1L)
                let ad = g[index].ToDouble()
                // Central differences: error O(h² f''') plus rounding O(ε |f| / h) ≈ 1e-9 here.
                Expect.isLessThan
                    (abs (fd - ad))
                    (1e-6 * max 1.0 (abs ad))
                    $"input {which}[{index}]: fd {fd} vs ad {ad}"
        }

        test "the state carries memory: it learns to output the input of two steps ago" {
            // Inputs uniform in [−1, 1], independent over time: the best a memoryless network (any function of the
            // current input) can do is the mean, MSE = Var = 1/3. The ConvLSTM (hidden 8, pointwise gates) with a
            // pointwise linear read-out learns the delay.
            Engine.seed 5
            let f32 = torch.ScalarType.Float32
            let cell = new ConvLstmCell("memory", 1, 1, 8, 1, [| Padding.Periodic |], f32)

            let head =
                new FieldCnn("readout", 1, [ 8; 1 ], 1, Activation.Tanh, [| Padding.Periodic |], f32)

            let length, batch, cells = 6, 32, 4

            let mse () =
                let xs =
                    Array.init length (fun _ -> torch.rand (int64 batch, 1L, int64 cells, dtype = f32) .* 2.0 .- 1.0)

                let mutable state = cell.ZeroState(batch, [| int64 cells |])

                let errors = [|
                    for t in 0 .. length - 1 do
                        state <- cell.Step(xs[t], state)

                        if t >= 2 then
                            yield Loss.mse (head.forward state.Hidden) (xs[t - 2])
                |]

                torch.stack(errors).mean ()

            let result =
                Trainer.train
                    {
                        Trainer.defaults with
                            Epochs = 220
                            Seed = 5
                            Groups = [|
                                Trainer.group
                                    "convlstm"
                                    1e-2
                                    (Array.append (Neural.parameters cell) (Neural.parameters head))
                            |]
                    }
                    {
                        Loss =
                            fun _ ->
                                let l = mse ()
                                { Total = l; Parts = [| "data", l |] }
                        Validation = None
                    }

            let fresh =
                use _ = torch.no_grad ()
                Engine.seed 6
                Array.init 4 (fun _ -> (mse ()).ToDouble()) |> Array.average

            printfn $"ConvLSTM delay-2 recall: MSE {fresh:g3} after {result.Epochs} epochs (memoryless bound 1/3)"
            // A tenth of the memoryless bound: no function of the current input alone comes near it.
            Expect.isLessThan fresh (0.1 / 3.0) "MSE of the recalled input on fresh sequences"
        }
    ]
