/// The climate case's first slice in cut-down quick settings (issue #16): the truth (fine grid, SSP-RK3, coarse-
/// grained) is not the coarse model's own output, keeps q ≥ 0 and accumulates non-negative precipitation whose regional
/// sums add up to the domain total; the a-posteriori hybrid trained through the solver beats the same coarse physics
/// without its closure on the test block. One run shared by the tests.
module Hybrid.Tests.Cases.ClimateTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
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

/// How much worse than the physics the classic closure's test ω MSE may be. Its coefficients can fall back to ~0 (then
/// it is the physics), but they are fitted on the training block and chosen on the validation block, and the
/// cut-down test block holds only 9 windows, so a fit that helps there can still cost a little here.
let private classicTolerance = 0.05

/// ω MSE of a model on the test block at the longest lead.
let private testOmega (m: Climate.ModelResult) =
    let lead = List.max settings.Leads
    m.Test.Fields |> Array.find (fun (l, _, _) -> l = lead) |> (fun (_, w, _) -> w)

/// The mean of cos(k·o) over the offsets o of the f fine cell centres from their coarse cell's centre (fine spacing
/// h): the factor by which a block average scales a mode cos(k x + φ) (or sin) sampled at the fine centres.
let private blockFactor (f: int) (h: float) (k: float) =
    Seq.init f (fun j -> cos (k * (float j - float (f - 1) / 2.0) * h))
    |> Seq.average

/// The multiplier of the five-point Laplacian on the mode sin(x) at spacing h: (2 cos h − 2)/h².
let private laplacianOfSin (h: float) = (2.0 * cos h - 2.0) / (h * h)

let tests =
    testSequenced
    <| testList "Cases.Climate" [
        // The full settings once had a validation block (6 saves) shorter than their longest lead (8): no validation
        // window, and an FFT of an empty batch failed an hour into the report. The check must catch such settings
        // before any truth is generated, and name the field to change.
        test "splits without a window are refused before the truth is made; quick and full have every block" {
            Climate.checkSplits Climate.quick
            Climate.checkSplits Climate.full
            Climate.checkSplits settings

            let refused (s: Climate.Settings) (field: string) =
                let message =
                    try
                        Climate.checkSplits s
                        "accepted"
                    with :? HybridException as e ->
                        e.Message

                Expect.stringContains message field $"the message names {field}"

            refused
                {
                    Climate.full with
                        ValidationIntervals = 6
                }
                "ValidationIntervals to at least 8"

            refused
                {
                    Climate.quick with
                        TrainIntervals = 3
                }
                "TrainIntervals to at least 4"

            refused
                {
                    Climate.quick with
                        Truth = {
                            Climate.quick.Truth with
                                OodIntervals = 3
                        }
                }
                "OodIntervals to at least 4"

            refused
                {
                    Climate.quick with
                        FreeRunIntervals = 60
                }
                "Truth.Intervals to at least 90"
        }

        // The truth's ω is invariant under shifts by (π, π/2) and (0, π): its forcing F0 cos 4y and start have only
        // modes with k_y even and k_x + k_y/2 even. q is not (q_sat(y) = 0.6 − 0.4 cos y). A closure of ω that read q
        // broke the symmetry, and free runs filled the shells the truth leaves empty; the hybrid's closure of ω reads
        // ω alone, and a periodic convolution commutes with whole-cell shifts, so its ω tendency must keep it.
        test "the hybrid's vorticity tendency keeps the truth's translation symmetry; its humidity's need not" {
            let d = data.Force()
            use _ = torch.NewDisposeScope()
            use _ = torch.no_grad ()
            // Closures with their initial (random, non-zero) weights.
            let sim = Climate.compile settings settings.Hidden
            let n = int64 settings.Truth.ModelCells

            let states =
                d.Truth.Main.Fields |> Array.map (fun v -> v.narrow(0L, 5L, 1L).squeeze 1L)

            let shift (v: torch.Tensor) =
                v.roll ([| n / 2L; n / 4L |], [| 1L; 2L |])

            let asymmetry (v: torch.Tensor) =
                (shift v .- v).abs().max().ToDouble() / v.abs().max().ToDouble()

            // To float32 round-off grown by the flow (the symmetric state is not exactly stable): ~1e-4.
            Expect.isLessThan (asymmetry states[0]) 1e-3 "the truth's ω is symmetric"
            Expect.isGreaterThan (asymmetry states[1]) 0.01 "the truth's q is not"

            let tendencies (sim: Hybrid.Compiler.Simulator) =
                Hybrid.Numerics.Dynamics.total sim.Dynamics (sim.Theta()) 0.0 states

            let rhs = tendencies sim
            Expect.isLessThan (asymmetry rhs[0]) 1e-3 "the hybrid's ω tendency is symmetric"
            Expect.isGreaterThan (asymmetry rhs[1]) 0.01 "its q tendency is not (the test can tell)"

            // The control: the same model with the closure of ω reading q too (the design that broke it).
            let readsQ =
                (Climate.modelText settings settings.Hidden)
                    .Replace("closure sgsomega/1 = cnn [1,", "closure sgsomega/2 = cnn [2,")
                    .Replace("sgsomega(omega)", "sgsomega(omega, q)")

            let control = tendencies (Climate.compileText settings readsQ)
            Expect.isGreaterThan (asymmetry control[0]) 0.01 "a closure of ω that reads q breaks it"
        }

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

        // A fine state with one resolved mode in ω, sin x, and a humidity q(x) = 0.02 + 0.01 sin x well below
        // saturation: J(ψ, ω) = 0 (ψ ∝ ω), advectFlux of q(x) by the meridional velocity ∂ψ/∂x(x) is 0, the drag and the
        // linear evaporation commute with the block average. What is left of coarseGrain(RHS_fine) − RHS_coarse(
        // coarseGrain u) is analytic: the block average of the forcing F0 cos 4y (factor s₄ − 1), the difference of
        // the two grids' multipliers of β ∂x Δ⁻¹ and ν Δ on sin x, and the block average of the nonlinear pointwise
        // terms of q (evaluated here in doubles). Float32 round-off of the O(1) terms is ~1e-6; the targets are ~1e-3.
        test "the a-priori sub-grid target of a smooth fine state is small and matches its analytic value" {
            let t = settings.Truth
            let f = t.Cells / t.ModelCells
            let p = t.Physics
            let fine = ClimateTruth.compile t p
            let coarse = Climate.compile settings []
            let hf, hc = 2.0 * Math.PI / float t.Cells, 2.0 * Math.PI / float t.ModelCells
            let qOf (x: float) = 0.02 + 0.01 * sin x
            let init (g: Grid) (v: float -> float -> float) = Grid.init g 1 t.Dtype v
            use _ = torch.no_grad ()

            let u = [|
                init fine.Grid (fun x _ -> sin x)
                init fine.Grid (fun x _ -> qOf x)
                init fine.Grid (fun _ _ -> 0.0)
            |]

            let states = u |> Array.map (ClimateTruth.coarseGrain f)
            let tendencies = ClimateTruth.coarseTendencies fine f 0.0 u
            let target = ClimateAPriori.subgridTargets coarse tendencies states
            let rhs = Hybrid.Numerics.Dynamics.total coarse.Dynamics (coarse.Theta()) 0.0 states
            // The analytic target, [2; n; n] (ω, q) at the coarse centres.
            let s1, s4 = blockFactor f hf 1.0, blockFactor f hf 4.0
            let multiplier (h: float) = (sin h / h) / laplacianOfSin h
            let qsat (y: float) = p.QsatMean - p.QsatAmplitude * cos y

            let pointwise (q: float) (y: float) =
                let excess = p.Sharpness * (q - qsat y)
                let softplus = Math.Max(excess, 0.0) + Math.Log(1.0 + Math.Exp(-abs excess))

                p.Evaporation * Math.Max(qsat y - q, 0.0)
                - softplus / (p.Sharpness * p.CondensationTime)

            let centres (h: float) (n: int) =
                Array.init n (fun i -> (float i + 0.5) * h)

            let xc = centres hc t.ModelCells

            let offsets = Array.init f (fun j -> (float j - float (f - 1) / 2.0) * hf)

            let expected =
                Array.init 2 (fun c ->
                    Array.init t.ModelCells (fun i ->
                        Array.init t.ModelCells (fun j ->
                            let x, y = xc[i], xc[j]

                            if c = 0 then
                                -p.Beta * s1 * (multiplier hf - multiplier hc) * cos x
                                + p.Forcing * (s4 - 1.0) * cos (4.0 * y)
                                + s1 * (t.Nu * laplacianOfSin hf - settings.ModelNu * laplacianOfSin hc) * sin x
                            else
                                let fineMean =
                                    Seq.average (
                                        seq {
                                            for ox in offsets do
                                                for oy in offsets -> pointwise (qOf (x + ox)) (y + oy)
                                        }
                                    )

                                fineMean - pointwise (0.02 + 0.01 * s1 * sin x) y)))

            let expected =
                torch.tensor (expected |> Array.collect (Array.collect id), dtype = torch.ScalarType.Float64)

            let measured = target[0].to_type(torch.ScalarType.Float64).reshape (expected.shape)
            let rms (v: torch.Tensor) = (square v).mean().sqrt().ToDouble()

            for c, field in [ 0, "ω"; 1, "q" ] do
                let e = expected.reshape(2L, -1L)[int64 c]
                let m = measured.reshape(2L, -1L)[int64 c]
                let size = rms (rhs[c].to_type torch.ScalarType.Float64)
                let deviation = (m - e).abs().max().ToDouble()

                printfn
                    "a-priori target of a smooth state, %s: rms %.3g (analytic %.3g), right-hand side rms %.3g, largest deviation %.2g"
                    field
                    (rms m)
                    (rms e)
                    size
                    deviation

                Expect.isLessThan (rms m / size) 0.01 $"{field}: sub-grid target relative to the coarse right-hand side"
                Expect.isLessThan deviation 1e-5 $"{field}: sub-grid target against its analytic value"
        }

        // Pending: with the classic closure in the shared run, a later network fit (group 'phi') hit a NaN gradient
        // under a finite loss at epoch 17 (caught by the trainer's check); not yet found which operation.
        test "the classic closure's coefficients move from their start; its test error is no worse than the physics'" {
            // The shared run first, so that the fit below is the one it trained (cached by the settings).
            outcome.Force() |> ignore
            let fitted = ClimateClassic.fit settings (data.Force())
            let start = dict [ "cw", ClimateClassic.start.Omega; "cq", ClimateClassic.start.Q ]

            for name, value in fitted.Coefficients do
                let initial = start[name]
                printfn "classic closure: %s = %.4f (start %.2f)" name value initial
                // Five Adam steps (the first validation) at the coefficient rate move a coefficient with a
                // non-zero gradient by far more than 0.01; an untrained one stays at its start to round-off.
                Expect.isGreaterThan (abs (value - initial)) 0.01 $"{name} moved from its start"

            let classic = testOmega (model ClimateClassic.name)
            let physics = testOmega (model Climate.physics.Name)
            printfn "classic closure: test ω MSE %.4g, physics %.4g (ratio %.3f)" classic physics (classic / physics)
            Expect.isLessThanOrEqual classic (physics * (1.0 + classicTolerance)) "test ω MSE of the classic closure"
        }

        test "the a-priori fit reduces its offline loss" {
            outcome.Force() |> ignore
            let fitted = ClimateAPriori.fit settings (data.Force())
            printfn "a-priori closure: offline loss %.4f → %.4f" fitted.OfflineBefore fitted.OfflineAfter
            // A zero output layer predicts 0: each channel's error is its mean square target, its scale, so 1 each.
            Expect.floatClose
                { absolute = 1e-4; relative = 0.0 }
                fitted.OfflineBefore
                2.0
                "normalised offline loss of the zero closure"

            Expect.isLessThan fitted.OfflineAfter fitted.OfflineBefore "offline loss after the fit"
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
