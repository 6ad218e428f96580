/// Data loading, observation operators, losses with missing values, neural module shapes, and the clear
/// errors of each bad-input case.
module Hybrid.Tests.Training.DataTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Training

let f64 = torch.ScalarType.Float64

let csv = "time,u,v\n0,1.0,2\n1,1.5,\n2,2.0,3\n"

let message (f: unit -> unit) = (Expect.throwsC f id).Message

let tests =
    testList "Data and observations" [
        test "time series loads into [T; fields] with missing cells as NaN" {
            let t = Data.parseCsv "mem" csv
            let times, values = Data.timeSeries t "time" [| "u"; "v" |] f64
            Expect.sequenceEqual times [| 0.0; 1.0; 2.0 |] "times"
            Expect.equal values.shape [| 3L; 2L |] "shape"
            Expect.equal (Data.nanPositions 10 values) [| [| 1L; 1L |] |] "NaN position"
        }

        test "gridded long-format data loads into [S; n]" {
            let g = Grid.line 0.0 1.0 2
            let t = Data.parseCsv "mem" "t,x,u\n0,0.25,1\n0,0.75,2\n1,0.25,3\n"
            let times, values = Data.gridded t "t" "x" "u" g.Axes[0].Centres f64
            Expect.sequenceEqual times [| 0.0; 1.0 |] "times"
            Expect.equal values.shape [| 2L; 2L |] "shape"
            Expect.isTrue (System.Double.IsNaN(values[1L, 1L].ToDouble())) "missing pair is NaN"
        }

        test "each bad input names the field, the shapes, the positions" {
            let t = Data.parseCsv "obs.csv" csv

            Expect.stringContains
                (message (fun () -> Data.column t "w" |> ignore))
                "no column 'w'. Columns are: time, u, v"
                "missing column"

            let bad = Data.parseCsv "obs.csv" "time,u\n0,abc\n"

            Expect.stringContains
                (message (fun () -> Data.column bad "u" |> ignore))
                "column 'u', row 1: 'abc'"
                "not a number"

            let ragged = message (fun () -> Data.parseCsv "obs.csv" "a,b\n1\n" |> ignore)
            Expect.stringContains ragged "row 1 has 1 cells but the header has 2" "ragged row"
            let unsorted = Data.parseCsv "obs.csv" "time,u\n1,0\n0,1\n"

            Expect.stringContains
                (message (fun () -> Data.timeSeries unsorted "time" [| "u" |] f64 |> ignore))
                "times must increase"
                "unsorted"

            let empty = Data.parseCsv "obs.csv" "time,u\n"

            Expect.stringContains
                (message (fun () -> Data.timeSeries empty "time" [| "u" |] f64 |> ignore))
                "no data rows"
                "no rows"

            let _, v = Data.timeSeries t "time" [| "u"; "v" |] f64

            Expect.stringContains
                (message (fun () -> Data.requireFinite "v0" v))
                "'v0' has 1 NaN values, first at [1,1]"
                "NaN positions"

            Expect.stringContains
                (message (fun () -> Data.expectShape "u0" [| 4L; 32L |] v))
                "'u0' has shape [3,2] but the model expects [4,32]"
                "shape"

            Expect.stringContains
                (message (fun () -> Data.split 1 0.9 0 |> ignore))
                "training set is empty"
                "empty training set"

            let g = Grid.line 0.0 1.0 2
            let off = Data.parseCsv "g.csv" "t,x,u\n0,0.3,1\n"

            Expect.stringContains
                (message (fun () -> Data.gridded off "t" "x" "u" g.Axes[0].Centres f64 |> ignore))
                "x = 0.3 is not a cell centre"
                "off-grid"

            let allMissing = torch.tensor ([| nan; nan |], dtype = f64)

            Expect.stringContains
                (message (fun () -> Loss.mse (torch.zeros (2L, dtype = f64)) allMissing |> ignore))
                "every target value is missing"
                "all missing"

            Expect.stringContains
                (message (fun () ->
                    Loss.mse (torch.zeros (3L, dtype = f64)) (torch.zeros (2L, dtype = f64))
                    |> ignore))
                "prediction has shape [3] but target has [2]"
                "loss shapes"
        }

        test "split is seeded and disjoint" {
            let a, b = Data.split 10 0.3 4
            Expect.equal (a.Length, b.Length) (7, 3) "sizes"
            Expect.isEmpty (Set.intersect (set a) (set b)) "disjoint"
            Expect.equal (Data.split 10 0.3 4) (a, b) "repeatable"
        }

        test "observation operator interpolates in space and time; NaN targets are masked" {
            let g = Grid.line 0.0 1.0 4 // centres 0.125 0.375 0.625 0.875
            let saves = [| 0.0; 1.0 |]
            // u(t, x) = x + t is reproduced exactly by linear interpolation between centres.
            let traj =
                torch.stack ([| for t in saves -> Grid.init g 2 f64 (fun x _ -> x + t) |], 0L)

            let op = Observation.create g saves [| 0.2, 0.0; 0.5, 0.0 |] [| 0.25; 0.75 |] f64
            let obs = Observation.apply op traj
            Expect.equal obs.shape [| 2L; 2L; 2L |] "[T; B; P]"
            Expect.floatClose Accuracy.high (obs[1L, 0L, 1L].ToDouble()) 1.25 "x = 0.5 at t = 0.75"

            let target =
                Observation.withMissing ((torch.tensor [| true; false |]).reshape ([| 1L; 1L; 2L |])) obs

            let pred = obs + torch.tensor([| 0.0; 10.0 |], dtype = f64).reshape (1L, 1L, 2L)
            Expect.floatClose Accuracy.high ((Loss.mse pred target).ToDouble()) 0.0 "the missing column is ignored"

            Expect.stringContains
                (message (fun () -> Observation.create g saves [| 1.5, 0.0 |] [| 0.5 |] f64 |> ignore))
                "sensor x 0 = 1.5 lies outside [0, 1]"
                "off-domain sensor"

            let noisy = Observation.addNoise 0.1 1L obs
            Expect.equal ((noisy - Observation.addNoise 0.1 1L obs).abs().max().ToDouble()) 0.0 "seeded noise repeats"
        }

        test "CNNs keep the grid size; a periodic CNN commutes with shifts; closures batch every cell" {
            Engine.seed 2
            let c1 = new Cnn1d("c1", 2, 1, 8, 2, 3, dtype = f64)
            let u = torch.rand ([| 3L; 16L |], dtype = f64)
            let v = torch.rand ([| 3L; 16L |], dtype = f64)
            let y = Closure.field c1 [| u; v |]
            Expect.equal y.shape [| 3L; 16L |] "field closure shape"
            let shifted = Closure.field c1 [| u.roll (5L, 1L); v.roll (5L, 1L) |]
            Expect.isTrue (torch.allclose (shifted, y.roll (5L, 1L))) "shift equivariance with periodic padding"
            let c2 = new Cnn2d("c2", 1, 2, 4, 1, 3, padding = Padding.Zeros, dtype = f64)

            Expect.equal
                (c2.forward(torch.rand ([| 2L; 1L; 5L; 6L |], dtype = f64)).shape)
                [| 2L; 2L; 5L; 6L |]
                "2-D shape"

            let m = new Mlp("r", 2, 1, 8, 2, dtype = f64)
            Expect.equal (Closure.pointwise m [| u; v |]).shape [| 3L; 16L |] "pointwise closure shape"

            Expect.stringContains
                (message (fun () -> Closure.pointwise m [| u; torch.rand (3L, dtype = f64) |] |> ignore))
                "input 1 has shape [3]"
                "mismatched closure inputs"

            Expect.stringContains
                (message (fun () -> m.forward (torch.rand ([| 4L; 3L |], dtype = f64)) |> ignore))
                "last dimension 2"
                "wrong MLP width"

            Expect.stringContains
                (message (fun () -> new Cnn1d("k", 1, 1, 4, 1, 2) |> ignore))
                "kernel 2 must be odd"
                "even kernel"
        }
    ]
