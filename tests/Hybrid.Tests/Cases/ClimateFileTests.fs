/// The climate case's NetCDF files (issue #16) on a tiny truth (32² fine grid, 16² models): the truth files Hybrid
/// writes have the CF layout and the tensors' values where xarray (with netCDF-C) looks for them; a truth that xarray
/// writes as another code would (NetCDF-4, float64, its own names, dimension orders and coordinates) gives the case
/// the same scores as the generated truth; malformed files fail with messages naming the file, the variable and
/// the fix; a model's forecast file starts at the truth and its regions add up to the domain's precipitation. The
/// xarray tests are skipped with a message where python3-xarray and python3-netcdf4 are missing (CI installs them).
module Hybrid.Tests.Cases.ClimateFileTests

open System
open System.Diagnostics
open System.Globalization
open System.IO
open Expecto
open Hybrid.Tests.XarrayClient
open TorchSharp
open Hybrid
open Hybrid.NetCdf
open Hybrid.Models.Cases
open Hybrid.TensorArithmetic

/// Tiny settings: truth on 32² (SSP-RK3, Δt = 0.04, ν = 2e-3) spun up for 0.5 time units, saved every 0.25: 10
/// saved intervals in distribution (4 training, 2 validation, the rest test) and 4 out of it; models on 16²
/// (ν = 8e-3), leads 1 and 2, 4 × 4 regions. The physics is all these tests run.
let private settings = {
    Climate.quick with
        Truth = {
            Climate.quick.Truth with
                Cells = 32
                Nu = 2e-3
                Dt = 0.04
                ModelCells = 16
                SpinUp = 0.5
                SaveEvery = 0.25
                Intervals = 10
                OodAdjust = 0.25
                OodIntervals = 4
        }
        ModelNu = 8e-3
        TrainIntervals = 4
        ValidationIntervals = 2
        FreeRunIntervals = 4
        Leads = [ 1; 2 ]
        Horizon = {
            Climate.quick.Horizon with
                Max = 2
                GrowEvery = 1
        }
}

let private truth = lazy (ClimateTruth.generate settings.Truth)

let private script = Path.Combine(AppContext.BaseDirectory, "climate_files.py")

/// A fresh folder under the temporary folder, deleted after `body`.
let private inFolder (body: string -> unit) =
    let folder =
        Path.Combine(Path.GetTempPath(), $"hybrid-climate-files-{Guid.NewGuid():N}")

    Directory.CreateDirectory folder |> ignore

    try
        body folder
    finally
        Directory.Delete(folder, true)

/// The truth written to `folder`: the in-distribution and out-of-distribution files' paths.
let private written (folder: string) =
    let main = Path.Combine(folder, "truth-main.nc")
    let ood = Path.Combine(folder, "truth-ood.nc")
    ClimateTruthFile.write settings.Truth (truth.Force()) main ood
    main, ood

let private num (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// The message of the HybridException `f` raises.
let private message (f: unit -> unit) =
    try
        f ()
        failtest "expected a HybridException"
        ""
    with :? HybridException as e ->
        e.Message

/// The settings' message for a truth file changed by `change`, read as run `kind` with `s`: it names the file and
/// holds each of `expected`.
let private refused
    (change: Dataset -> Dataset)
    (s: ClimateTruth.Settings)
    (kind: ClimateTruthFile.RunKind)
    (expected: string list)
    =
    inFolder (fun folder ->
        let main, _ = written folder
        let bad = Path.Combine(folder, "bad.nc")
        NetCdf.write bad (change (NetCdf.read main))

        let text =
            message (fun () -> ClimateTruthFile.read ClimateTruthFile.names s kind bad |> ignore)

        for part in $"'{bad}'" :: expected do
            Expect.stringContains text part "the message")

/// `dataset` with variable `name`'s values changed by `f`.
let private mapValues (name: string) (f: float[] -> float[]) (dataset: Dataset) = {
    dataset with
        Variables =
            dataset.Variables
            |> List.map (fun v ->
                if v.Name = name then
                    {
                        v with
                            Data = Float64(f (Variable.values v))
                    }
                else
                    v)
}

let private setAt (i: int) (value: float) (values: float[]) =
    let copy = Array.copy values
    copy[i] <- value
    copy

let private modelScores (s: Climate.Settings) =
    (Climate.runModels s [ Climate.physics ]).Models |> List.exactlyOne

let tests =
    testSequenced
    <| testList "Cases.ClimateFiles" [
        test "the truth file holds the tensors' values in (time, y, x) order, and reads back exactly" {
            inFolder (fun folder ->
                let main, ood = written folder
                let t = truth.Force()

                for path, r in [ main, t.Main; ood, t.Ood ] do
                    let file = NetCdf.read path
                    let n = settings.Truth.ModelCells
                    let omega = Dataset.variable "omega" file |> Variable.values
                    Expect.equal omega.Length (r.Times.Length * n * n) "values of omega"
                    // Read with Hybrid.NetCdf alone: (time, y, x) in C order against the tensor's [time; 1; x; y].
                    for s, ix, iy in [ 0, 1, 2; r.Times.Length - 1, 13, 4; 2, 7, 15 ] do
                        let expected = (r.Fields[0]).[int64 s, 0L, int64 ix, int64 iy].ToDouble()
                        Expect.equal (omega[(s * n + iy) * n + ix]) expected $"omega at save {s}, x {ix}, y {iy}"

                let back =
                    ClimateTruthSource.load (ClimateTruthSource.files main ood) settings.Truth

                for original, read in [ t.Main, back.Main; t.Ood, back.Ood ] do
                    Expect.equal read.Times original.Times "save times"

                    for f in 0..2 do
                        Expect.equal (read.Fields[f].shape) (original.Fields[f].shape) $"shape of field {f}"

                        let gap = (read.Fields[f] .- original.Fields[f]).abs().max().ToDouble()
                        Expect.equal gap 0.0 $"largest difference of field {f} (float32 written and read as float32)")
        }

        test "xarray reads the truth files: CF layout, coordinates, units, attributes and values" {
            withPython (fun python ->
                inFolder (fun folder ->
                    let main, ood = written folder
                    let t = truth.Force()
                    let n = settings.Truth.ModelCells

                    for path, r, name in [ main, t.Main, "in-distribution"; ood, t.Ood, "out-of-distribution" ] do
                        // x and y indices differ, so a file written as [time; x; y] fails.
                        let s, ix, iy = r.Times.Length - 2, 3, 11

                        let at f =
                            num ((r.Fields[f]).[int64 s, 0L, int64 ix, int64 iy].ToDouble())

                        let code, output =
                            run python [
                                script
                                "check-truth"
                                path
                                name
                                string n
                                num settings.Truth.SaveEvery
                                string r.Times.Length
                                string settings.Truth.Cells
                                string s
                                string ix
                                string iy
                                at 0
                                at 1
                                at 2
                            ]

                        Expect.equal (code, output.Trim()) (0, "ok") $"climate_files.py check-truth ({name})"))
        }

        test
            "the case scores from a truth xarray wrote (NetCDF-4, float64, its own names and order) as from the generated one" {
            withPython (fun python ->
                inFolder (fun folder ->
                    let main, ood = written folder
                    let foreignMain = Path.Combine(folder, "foreign-main.nc")
                    let foreignOod = Path.Combine(folder, "foreign-ood.nc")

                    for source, target in [ main, foreignMain; ood, foreignOod ] do
                        let code, output = run python [ script; "rewrite"; source; target ]
                        Expect.equal (code, output.Trim()) (0, "ok") "climate_files.py rewrite"

                    let fromFiles = {
                        settings with
                            TruthSource =
                                ClimateTruthSource.Files {
                                    ClimateTruthSource.Main = foreignMain
                                    Ood = foreignOod
                                    Names = {
                                        ClimateTruthFile.Time = "t"
                                        X = "lon"
                                        Y = "lat"
                                        Omega = "vorticity"
                                        Q = "hus"
                                        P = "pr"
                                    }
                                }
                    }

                    let generated = modelScores settings
                    let read = modelScores fromFiles
                    // The same float32 values reach the same coarse model: only the order of libtorch's sums could
                    // differ, so the scores agree to float32 round-off of a mean.
                    let close a b what =
                        Expect.floatClose { absolute = 0.0; relative = 1e-6 } a b what

                    for split, a, b in [ "test", generated.Test, read.Test; "ood", generated.Ood, read.Ood ] do
                        Expect.equal (Array.map (fun (l, _, _) -> l) b.Fields) [| 1; 2 |] $"{split}: leads"

                        for (lead, wa, qa), (_, wb, qb) in Array.zip a.Fields b.Fields do
                            close wb wa $"{split}: ω MSE at lead {lead}"
                            close qb qa $"{split}: q MSE at lead {lead}"

                        for (lead, pa), (_, pb) in Array.zip a.Precipitation b.Precipitation do
                            close pb pa $"{split}: regional precipitation MSE at lead {lead}"

                        // The physics is not the truth: a zero score would make the comparison empty.
                        let _, w, _ = a.Fields[1]
                        Expect.isGreaterThan w 0.0 $"{split}: ω MSE of the physics at lead 2"))
        }

        test "a truth file on another grid is refused with its cells, the models' and the fix" {
            refused id { settings.Truth with ModelCells = 8 } ClimateTruthFile.InDistribution [
                "'x' has 16 points"
                "8 cells per side"
                "ModelCells"
            ]
        }

        test "a truth file with unevenly spaced x is refused at the point that is off" {
            let spacing = 2.0 * Math.PI / 16.0

            refused
                (mapValues "x" (fun x -> setAt 5 (x[5] + 0.3 * spacing) x))
                settings.Truth
                ClimateTruthFile.InDistribution
                [ "'x' is not uniformly spaced"; "point 5" ]
        }

        test "a truth file without the humidity is refused with the variables it has and the name to set" {
            refused
                (fun d -> {
                    d with
                        Variables = d.Variables |> List.filter (fun v -> v.Name <> "q")
                })
                settings.Truth
                ClimateTruthFile.InDistribution
                [ "no variable 'q'"; "specific humidity"; "'omega', 'P'"; "Q = " ]
        }

        test "a truth file with unevenly spaced times is refused at the save that is off" {
            refused (mapValues "time" (fun t -> setAt 5 (t[5] + 0.05) t)) settings.Truth ClimateTruthFile.InDistribution [
                "'time' is unevenly spaced"
                "save 5"
            ]
        }

        test "a truth file with another number of saves or save interval is refused with the setting to change" {
            refused id settings.Truth ClimateTruthFile.OutOfDistribution [ "'time' has 11 saves"; "OodIntervals = 4" ]

            refused id { settings.Truth with SaveEvery = 0.5 } ClimateTruthFile.InDistribution [
                "'time' is spaced by 0.25"
                "SaveEvery = 0.25"
            ]
        }

        test "a truth file with a missing value is refused with the variable and where" {
            refused
                (fun d ->
                    d
                    |> mapValues "P" (setAt (16 * 16 + 3) nan)
                    |> fun d -> {
                        d with
                            Variables =
                                d.Variables
                                |> List.map (fun v ->
                                    if v.Name = "P" then
                                        {
                                            v with
                                                Attributes = v.Attributes @ [ "_FillValue", Float64s [| -1e30 |] ]
                                        }
                                    else
                                        v)
                    })
                settings.Truth
                ClimateTruthFile.InDistribution
                [ "variable 'P'"; "1 missing"; "time index 1, x index 3, y index 0" ]
        }

        test "a model's forecast file starts at the truth and its regions add up to the domain's precipitation" {
            inFolder (fun folder ->
                let d = Climate.data settings
                let physics = Climate.physics.Build settings d
                let path = Path.Combine(folder, "forecast.nc")
                let starts = d.TestStarts
                let intervals = 3
                ClimateForecastFile.write settings physics "test block" d.Truth.Main starts intervals path
                let file = NetCdf.read path
                let n = settings.Truth.ModelCells
                let r = settings.Regions
                let leads = intervals + 1

                let values name =
                    Dataset.variable name file |> Variable.values

                Expect.equal
                    (Dataset.variable "start_index" file).Data
                    (VariableData.Int32 starts)
                    "start indices into the truth's time"

                Expect.equal (values "lead") (Array.init leads (fun k -> float k * settings.Truth.SaveEvery)) "leads"

                let omega, p, precipitation = values "omega", values "P", values "precipitation"
                let truthOmega = d.Truth.Main.Fields[0]

                for b, start in Array.indexed starts do
                    for ix, iy in [ 0, 5; 9, 2; 15, 15 ] do
                        let expected = truthOmega[int64 start, 0L, int64 ix, int64 iy].ToDouble()

                        Expect.equal
                            (omega[((b * leads + 0) * n + iy) * n + ix])
                            expected
                            $"lead 0 of window {b} at x {ix}, y {iy}"

                    for lead in 1 .. leads - 1 do
                        let cells k = (b * leads + k) * n * n
                        // The domain integral of P's change from the cells, against the regions' sum.
                        let total =
                            Array.init (n * n) (fun c -> p[cells lead + c] - p[cells 0 + c]) |> Array.sum

                        let total = total * (2.0 * Math.PI / float n) ** 2.0

                        let summed =
                            precipitation[(b * leads + lead) * r * r .. (b * leads + lead + 1) * r * r - 1]
                            |> Array.sum

                        Expect.isGreaterThan total 0.0 $"it rains in window {b} by lead {lead}"
                        // float32 sums of 256 cells: relative round-off ~1e-6.
                        Expect.floatClose
                            { absolute = 0.0; relative = 1e-5 }
                            summed
                            total
                            $"regions against the domain total, window {b}, lead {lead}"

                withPython (fun python ->
                    let main, _ = written folder

                    let code, output =
                        run python [
                            script
                            "check-forecast"
                            path
                            main
                            string n
                            string r
                            string intervals
                            num settings.Truth.SaveEvery
                        ]

                    Expect.equal (code, output.Trim()) (0, "ok") "climate_files.py check-forecast"))
        }
    ]
