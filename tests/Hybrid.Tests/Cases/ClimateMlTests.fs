/// The climate case's pure-ML baselines and α-fusion (issue #16) in the cut-down settings of `ClimateTests` (whose
/// shared run trains them with every other model): the CNN emulator holds no physics (zero output weights give
/// exactly persistence and no rain; its precipitation bias rains the training block's mean), the ConvLSTM starts as
/// persistence and has about the emulator's weight count, the fused model starts as the mean of its two branches,
/// and each trains (its best validation error falls below its untrained one) to finite forecasts of the right shapes.
module Hybrid.Tests.Cases.ClimateMlTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.TensorArithmetic

let private settings = ClimateTests.settings

let private data = lazy (Climate.data settings)

/// The largest |a − b| over every element.
let private gap (a: torch.Tensor) (b: torch.Tensor) = (a .- b).abs().max().ToDouble()

/// A few test windows' start states and the number of saves to forecast.
let private starts () =
    let d = data.Force()
    Climate.startStates d.Truth.Main (d.TestStarts[..2])

let private expectShapes (what: string) (forecast: torch.Tensor[]) (u0: torch.Tensor[]) (intervals: int) =
    Expect.equal forecast.Length 3 $"{what}: ω, q, P"

    for f in 0..2 do
        Expect.sequenceEqual
            (forecast[f].shape)
            (Array.append [| int64 (intervals + 1) |] u0[f].shape)
            $"{what}: field {f} is [saves; B; n; n]"

let private result (name: string) =
    ClimateTests.outcome.Force().Models |> List.find (fun m -> m.Name = name)

let tests =
    testSequenced
    <| testList "Cases.ClimateML" [
        test "the emulator with zero output weights is exactly persistence with zero precipitation" {
            let d = data.Force()
            let sim = ClimateEmulator.create settings d
            let u0 = starts ()
            use _ = torch.no_grad ()

            // As created: the output weights are zero and the precipitation bias rains the training block's mean.
            let climatology = ClimateEmulator.forecast settings sim u0 2
            expectShapes "emulator" climatology u0 2
            Expect.equal (gap (climatology[0][2L]) (u0[0])) 0.0 "ω is persistent"
            Expect.equal (gap (climatology[1][2L]) (u0[1])) 0.0 "q is persistent"
            let mean = ClimateUnroll.meanPrecipitationChange settings d
            let change = climatology[2][1L] .- u0[2]
            Expect.isGreaterThan mean 0.0 "it rains in the training block"
            // Float32: the rate times Δt summed over 10 Heun steps and added to P of order 0.1–1.
            Expect.isLessThan
                (gap change (withScalar mean (fun s -> torch.full_like (change, s))))
                (1e-5 * (1.0 + u0[2].abs().max().ToDouble()))
                "the mean rain everywhere"

            // Every output weight zero: nothing changes, at all, anywhere (no physics leaked in).
            let weights = Neural.parameters (snd sim.Modules[0])

            for p in weights[weights.Length - 2 ..] do
                p.zero_ () |> ignore

            let frozen = ClimateEmulator.forecast settings sim u0 3

            for f in 0..2 do
                for k in 0L .. 3L do
                    Expect.equal (gap (frozen[f][k]) (u0[f])) 0.0 $"field {f} at save {k}"
        }

        test "the emulator's CNN and the ConvLSTM have about the same number of weights" {
            let d = data.Force()
            let emulator = ClimateEmulator.create settings d
            let net = ClimateConvLstm.create settings d
            let emulatorCount = Neural.parameterCount (snd emulator.Modules[0])

            let convLstmCount = ClimateConvLstm.modules net |> Array.sumBy Neural.parameterCount

            printfn $"climate weights: CNN emulator {emulatorCount}, ConvLSTM {convLstmCount}"
            Expect.equal emulatorCount (int64 (ClimateEmulator.weightCount settings)) "the emulator's count formula"

            Expect.equal
                convLstmCount
                (int64 (ClimateConvLstm.weights net.Cells[0].HiddenChannels))
                "the ConvLSTM's count formula"

            // The nearest hidden width: one channel more or less moves the count by about (2·9·8·h) ≈ 700 at h = 5.
            Expect.isLessThan
                (abs (float convLstmCount / float emulatorCount - 1.0))
                0.1
                "the ConvLSTM's weights within 10% of the emulator's"
        }

        test "the untrained ConvLSTM is persistence with climatological precipitation" {
            let d = data.Force()
            let net = ClimateConvLstm.create settings d
            let u0 = starts ()
            use _ = torch.no_grad ()
            let forecast = ClimateConvLstm.forecast d net u0 3
            expectShapes "ConvLSTM" forecast u0 3
            Expect.equal (gap (forecast[0][3L]) (u0[0])) 0.0 "ω is persistent"
            Expect.equal (gap (forecast[1][3L]) (u0[1])) 0.0 "q is persistent"
            let mean = ClimateUnroll.meanPrecipitationChange settings d
            let change = forecast[2][3L] .- u0[2]

            Expect.isLessThan
                (gap change (withScalar (3.0 * mean) (fun s -> torch.full_like (change, s))))
                (1e-5 * (1.0 + u0[2].abs().max().ToDouble()))
                "three intervals of the mean rain"
        }

        test "the fused model starts halfway between the physics and the emulator, with a scalar α or a gate" {
            let d = data.Force()
            let u0 = starts ()
            use _ = torch.no_grad ()

            let scalar = ClimateFusion.create (FusionMode.Scalar 0.5) settings d
            let gate = ClimateFusion.create (FusionMode.Gate(1, 4)) settings d
            let one = Climate.rolloutOptions settings 1
            let physics = scalar.Physics.Simulate(u0, one).Values
            let emulator = scalar.Emulator.Simulate(u0, one).Values

            for m, what in [ scalar, "scalar α"; gate, "gate" ] do
                let fused = ClimateFusion.forecast settings d m u0 1
                expectShapes what fused u0 1

                for f in 0..2 do
                    let half = (physics[f][1L] .+ emulator[f][1L]) .* 0.5
                    let size = half.abs().max().ToDouble()
                    // Float32 round-off of the fused changes added back to the state.
                    Expect.isLessThan (gap (fused[f][1L]) half) (1e-5 * (1.0 + size)) $"{what}: field {f}"

                // The physics does change the state: the test would see a branch missing.
                Expect.isGreaterThan (gap (physics[0][1L]) (u0[0])) 1e-3 "the physics moves ω"
        }

        test "each new model trains: its best validation error is below its untrained one, to finite forecasts" {
            let d = data.Force()

            let untrained = [
                ClimateFusion.name (FusionMode.Scalar 0.5),
                (fun () ->
                    let m = ClimateFusion.create (FusionMode.Scalar 0.5) settings d
                    ClimateFusion.forecast settings d m)
                ClimateEmulator.Name, (fun () -> ClimateEmulator.forecast settings (ClimateEmulator.create settings d))
                ClimateConvLstm.Name, (fun () -> ClimateConvLstm.forecast d (ClimateConvLstm.create settings d))
            ]

            for name, start in untrained do
                let m = result name
                // The same fixed validation windows before training and at every validated epoch: no sampling noise
                // between the two numbers. A model whose training changed nothing keeps its start's value.
                let before = Climate.validationLoss settings d (start ())
                let best = m.ValidationLosses |> Array.filter System.Double.IsFinite |> Array.min
                printfn $"climate {name}: validation error untrained {before:g4}, best trained {best:g4}"

                Expect.isLessThan
                    best
                    (0.999 * before)
                    $"{name}: training lowers the validation error by more than 0.1%%"

                for scores, split in [ m.Test, "test"; m.Ood, "out of distribution" ] do
                    for lead, omega, q in scores.Fields do
                        Expect.isTrue
                            (System.Double.IsFinite omega && System.Double.IsFinite q)
                            $"{name}: finite {split} field errors at lead {lead}"

                    for lead, p in scores.Precipitation do
                        Expect.isTrue
                            (System.Double.IsFinite p)
                            $"{name}: finite {split} precipitation error at lead {lead}"
        }
    ]
