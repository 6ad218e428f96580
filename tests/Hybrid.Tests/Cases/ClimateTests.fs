/// The climate case's first slice in cut-down quick settings (issue #16): the truth (fine grid, SSP-RK3, coarse-
/// grained) is not the coarse model's own output, keeps q ≥ 0 and accumulates non-negative precipitation whose regional
/// sums add up to the domain total; the a-posteriori hybrid trained through the solver beats the same coarse physics
/// without its closure on the test block. One run shared by the tests.
module Hybrid.Tests.Cases.ClimateTests

open System
open Expecto
open TorchSharp
open Hybrid.Models.Cases
open Hybrid.TensorArithmetic

/// The quick settings cut for CI: truth on 64² (still SSP-RK3 at its own Δt = 0.02, twice the models' resolution, so
/// not their discretisation), 30 epochs with the horizon growing every 8.
let internal settings = {
    Climate.quick with
        Truth = {
            Climate.quick.Truth with
                Cells = 64
                Dt = 0.02
        }
        Epochs = 30
        Horizon = {
            Climate.quick.Horizon with
                GrowEvery = 8
        }
}

/// The shared run of every model (`ClimateModels.all`), also read by `ClimateMlTests`.
let internal outcome = lazy (ClimateModels.run settings)

let private data = lazy (Climate.data settings)

let private model name =
    outcome.Force().Models |> List.find (fun m -> m.Name = name)

let tests =
    testSequenced
    <| testList "Cases.Climate" [
        test "the truth is not the coarse model's own output" {
            let d = data.Force()
            let physics = Climate.physics.Build settings d
            let main = d.Truth.Main
            let starts = d.TestStarts
            use _ = torch.no_grad ()
            let forecast = physics.Forecast (Climate.startStates main starts) 1
            let truth = Climate.truthWindows main starts 1
            let omega = truth[0][1L]
            let gap = (square (forecast[0][1L] .- omega)).mean().ToDouble()
            let size = (square omega).mean().ToDouble()
            // Float32 round-off of a mean square relative to its size is ~1e-13; a shared discretisation would give that.
            Expect.isGreaterThan
                (gap / size)
                1e-6
                $"relative MSE of the coarse model against the truth after one save: {gap / size:g3}"
            // Both start from the same state: the gap comes from the dynamics, not from the start.
            let start = (square (forecast[0][0L] .- truth[0][0L])).max().ToDouble()
            Expect.equal start 0.0 "the forecast starts at the truth's coarse state"
        }

        test "the truth keeps q non-negative on the fine grid" {
            let d = data.Force()
            Expect.isGreaterThanOrEqual d.Truth.Main.FineQMin 0.0 "smallest q of the in-distribution run"
            Expect.isGreaterThanOrEqual d.Truth.Ood.FineQMin 0.0 "smallest q of the out-of-distribution run"
        }

        test "precipitation accumulates non-negatively and its regions add up to the domain total" {
            let d = data.Force()
            let main = d.Truth.Main
            use _ = torch.no_grad ()
            let p = main.Fields[2]
            let first, last = p[0L], p[p.shape[0] - 1L]
            let regional = Climate.regionalPrecipitation settings.Regions first last
            Expect.isGreaterThanOrEqual (regional.min().ToDouble()) 0.0 "smallest regional precipitation over the run"
            // The domain integral as the mean times the area (2π)², computed without the regions.
            let total = (last .- first).mean().ToDouble() * 4.0 * Math.PI * Math.PI
            let sum = regional.sum().ToDouble()
            Expect.isGreaterThan total 0.0 "it rains"

            Expect.floatClose
                { absolute = 0.0; relative = 1e-5 }
                sum
                total
                "regional sums against the domain total (float32)"

            let steps = p.narrow (0L, 1L, p.shape[0] - 1L) .- p.narrow (0L, 0L, p.shape[0] - 1L)
            Expect.isGreaterThanOrEqual (steps.min().ToDouble()) 0.0 "P never decreases between saves"
        }

        test "the a-posteriori hybrid beats the coarse physics without its closure on the test block" {
            let o = outcome.Force()
            let physics = model Climate.physics.Name
            let hybrid = model Climate.hybrid.Name
            let lead = List.max settings.Leads

            let omega (m: Climate.ModelResult) =
                m.Test.Fields |> Array.find (fun (l, _, _) -> l = lead) |> (fun (_, w, _) -> w)

            let ratio = omega hybrid / omega physics

            printfn
                "climate: truth %.1f s, hybrid training %.1f s; test ω MSE at lead %d: hybrid %.4g, physics %.4g (ratio %.3f); precipitation %A vs %A"
                o.TruthSeconds
                hybrid.TrainSeconds
                lead
                (omega hybrid)
                (omega physics)
                ratio
                hybrid.Test.Precipitation
                physics.Test.Precipitation

            Expect.isLessThan ratio 0.8 "ω MSE ratio hybrid / physics at the longest lead on the test block"
        }
    ]
