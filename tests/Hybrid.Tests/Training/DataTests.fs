/// Data loading, observation operators, losses with missing values, neural module shapes, and the clear
/// errors of each bad-input case.
module Hybrid.Tests.Training.DataTests

open System
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
                "CSV 'obs.csv', column 'u', row 1 (line 2): 'abc' is not a number. Fix the cell"
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

        test "±∞ cells are refused naming the column, row, line and cell, unless allowed explicitly" {
            let t = Data.parseCsv "inf.csv" "u\n1\nInfinity\n-inf\n∞\n1e309\n"

            Expect.equal
                (message (fun () -> Data.column t "u" |> ignore))
                "CSV 'inf.csv', column 'u', row 2 (line 3): 'Infinity' is not a finite number (it reads as ±∞). Data may not hold infinite values: fix the cell, leave it empty for a missing value, or read the column with Data.columnWith NonFinite.Allow if ±∞ is meant."
                "Infinity"

            for cell, why in
                [
                    "inf", "it reads as ±∞"
                    "-INF", "it reads as ±∞"
                    "∞", "it reads as ±∞"
                    "1e309", "it overflows double precision"
                ] do
                let one = Data.parseCsv "inf.csv" $"u\n{cell}\n"

                Expect.stringContains
                    (message (fun () -> Data.column one "u" |> ignore))
                    $"column 'u', row 1 (line 2): '{cell}' is not a finite number ({why}"
                    cell

            Expect.equal
                (Data.columnWith NonFinite.Allow t "u")
                [| 1.0; infinity; -infinity; infinity; infinity |]
                "allowed explicitly, they read as ±∞"

            let times = Data.parseCsv "inf.csv" "time,u\n0,1\ninf,2\n"

            Expect.stringContains
                (message (fun () -> Data.timeSeries times "time" [| "u" |] f64 |> ignore))
                "column 'time', row 2 (line 3): 'inf' is not a finite number"
                "an infinite time"
        }

        test "'#N/A' (and NA, N/A, NaN, empty) is a missing value in a data row, not a comment" {
            let t =
                Data.parseCsv "na.csv" "# exported by hand\nu,time\n#N/A,0\n2,1\nN/A,2\nnan,3\n,4\n"

            Expect.equal t.Rows.Length 5 "every data row is read"
            let u = Data.column t "u"
            Expect.equal u[1] 2.0 "the value"
            Expect.equal (u |> Array.map Double.IsNaN) [| true; false; true; true; true |] "missing values"
            let times, values = Data.timeSeries t "time" [| "u" |] f64
            Expect.sequenceEqual times [| 0.0; 1.0; 2.0; 3.0; 4.0 |] "times"
            Expect.equal (Data.nanPositions 10 values).Length 4 "four missing cells"
        }

        test "a missing, NaN or non-increasing time is refused with its row, line and value" {
            let nanTime = Data.parseCsv "ts.csv" "time,u\n0,1\nNaN,2\n"

            Expect.equal
                (message (fun () -> Data.timeSeries nanTime "time" [| "u" |] f64 |> ignore))
                "CSV 'ts.csv', column 'time', row 2 (line 3): the time is missing ('NaN'). Every row of a time series needs its time: fill it in or remove the row."
                "NaN time"

            let empty = Data.parseCsv "ts.csv" "time,u\n0,1\n,2\n"

            Expect.stringContains
                (message (fun () -> Data.timeSeries empty "time" [| "u" |] f64 |> ignore))
                "row 2 (line 3): the time is missing (an empty cell)"
                "empty time"

            let repeated = Data.parseCsv "ts.csv" "time,u\n0,1\n1,2\n1,3\n"

            Expect.equal
                (message (fun () -> Data.timeSeries repeated "time" [| "u" |] f64 |> ignore))
                "CSV 'ts.csv', column 'time': times must increase, but row 3 (line 4) repeats 1 after 1 in row 2. Sort the file by time, with each time once."
                "repeated time"

            let back = Data.parseCsv "ts.csv" "time,u\n0,1\n1.5,2\n0.5,3\n"

            Expect.stringContains
                (message (fun () -> Data.timeSeries back "time" [| "u" |] f64 |> ignore))
                "row 3 (line 4) goes back to 0.5 after 1.5 in row 2"
                "decreasing time"

            let g = Grid.line 0.0 1.0 2
            let gridNan = Data.parseCsv "g.csv" "t,x,u\n0,0.25,1\nNaN,0.75,2\n"

            Expect.equal
                (message (fun () -> Data.gridded gridNan "t" "x" "u" g.Axes[0].Centres f64 |> ignore))
                "CSV 'g.csv', column 't', row 2 (line 3): the t is missing ('NaN'). Every row of gridded data needs its t and x: fill it in or remove the row."
                "gridded NaN time"

            let gridX = Data.parseCsv "g.csv" "t,x,u\n0,,1\n"

            Expect.stringContains
                (message (fun () -> Data.gridded gridX "t" "x" "u" g.Axes[0].Centres f64 |> ignore))
                "column 'x', row 1 (line 2): the x is missing (an empty cell)"
                "gridded missing x"

            Expect.stringContains
                (message (fun () -> Data.gridded gridX "t" "x" "u" [||] f64 |> ignore))
                "there are no cell centres to place the values on"
                "no centres (was an IndexOutOfRangeException)"

            // Long format: rows in any order, times sorted.
            let unsorted = Data.parseCsv "g.csv" "t,x,u\n1,0.25,3\n0,0.75,2\n0,0.25,1\n"
            let times, values = Data.gridded unsorted "t" "x" "u" g.Axes[0].Centres f64
            Expect.sequenceEqual times [| 0.0; 1.0 |] "distinct times, increasing"

            Expect.equal
                (values[0L, 0L].ToDouble(), values[0L, 1L].ToDouble(), values[1L, 0L].ToDouble())
                (1.0, 2.0, 3.0)
                "placed by time and x"
        }

        test "the loaders read the cause of a malformed file, not a missing column" {
            Expect.stringContains
                (message (fun () -> Data.parseCsv "eu.csv" "time;u\n0;0,5\n" |> ignore))
                "looks semicolon-separated"
                "semicolons"

            Expect.stringContains
                (message (fun () -> Data.parseCsv "t.tsv" "time\tu\n0\t1\n" |> ignore))
                "looks tab-separated"
                "tabs"

            Expect.stringContains
                (message (fun () -> Data.parseCsv "q.csv" "time,u\n0,\"1\n1,2\n" |> ignore))
                "line 2: the row starting on this line opens a quoted cell that is never closed (an unterminated quote)"
                "unterminated quote"

            let eu = Csv.parseWith { Delimiter = ';' } "eu.csv" "time;u\n0;1,5\n"

            Expect.stringContains
                (message (fun () -> Data.column eu "u" |> ignore))
                "'1,5' is not a number. Numbers are read with a decimal point and no thousands separators (0.5, 1000)."
                "decimal comma"
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
