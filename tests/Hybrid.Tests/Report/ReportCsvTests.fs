/// The report's CSV files: the writers of the report sections write through the library's writer and read back
/// through its reader, and every committed `docs/report/*.csv` reads strictly (one cell per column) through the
/// library's reader and an independent RFC 4180 reader, in exactly the form the writer writes.
module Hybrid.Tests.Report.ReportCsvTests

open System
open System.IO
open Expecto
open Hybrid.Training
open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Experiments
open Hybrid.Models.Report
open Hybrid.Tests.Training.CsvTests

let private reportDir =
    Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "docs", "report"))

let private inTempDir (f: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), $"hybrid-report-csv-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore

    try
        f dir
    finally
        Directory.Delete(dir, true)

/// A model's rows for the shared table's CSV files: test MSE per seed, then train MSE 0.125, 2.5 s of training,
/// 0.001 s of inference, 150 epochs and `pars` at its first seed.
let private row name (seeds: float[]) (pars: (string * float)[]) =
    (name, "unused in the CSV files"), TableRows.modelRows name seeds 0.125 2.5 0.001 150 pars

/// The columns of the committed report files that hold text; every other column must read as numbers.
let private textColumns =
    set [
        "model"
        "parameter"
        "schedule"
        "method"
        "split"
        // Long-format results files, claims files and Lorenz-96's ablation.
        "case"
        "metric"
        "outcome"
        "verdict"
        "detail"
        "closure"
        "training"
    ]

/// Rows that are not models of the metrics table (observations and truths).
let private references = set [ "truth"; "observed"; "truth (binned mean)" ]

/// Ok with what `f` returns, or Error with the message of what it raised.
let private attempt (f: unit -> 'T) : Result<'T, string> =
    try
        Ok(f ())
    with e ->
        Error e.Message

let private committed () =
    Directory.GetFiles(reportDir, "*.csv") |> Array.sort

let tests =
    testList "Report CSV files" [
        test "the shared model table's CSV files read back through the library's reader, names with commas whole" {
            let models = [|
                row "prior (log-kill, fixed prior values)" [| 0.25; 0.75 |] [| "D", 0.06; "ka (1/h), oral", 1.5 |]
                row "a \"quoted\" name" [| 2.0 |] [| "network weights", 97.0 |]
            |]

            let rows = ModelTable.table (Array.map fst models) (Array.collect snd models)

            inTempDir (fun dir ->
                ModelTable.writeCsv dir "case" rows
                let metrics = Csv.read (Path.Combine(dir, "case-metrics.csv"))

                Expect.equal
                    metrics.Columns
                    [|
                        "model"
                        "test_mse"
                        "test_mse_sd"
                        "seeds"
                        "train_mse"
                        "physics_residual"
                        "train_seconds"
                        "inference_seconds"
                        "epochs"
                    |]
                    "header"

                Expect.equal
                    (metrics.Rows |> Array.map (fun r -> r[0]))
                    [| "prior (log-kill, fixed prior values)"; "a \"quoted\" name" |]
                    "names whole"

                Expect.equal (Data.column metrics "test_mse") [| 0.5; 2.0 |] "test MSE"
                Expect.equal (Data.column metrics "seeds") [| 2.0; 1.0 |] "seeds"
                // Sample sd of 0.25 and 0.75 = 0.25·√2 = 0.353553… (six significant digits in the file).
                Expect.equal (metrics.Rows[0][2]) "0.353553" "spread"
                Expect.equal (metrics.Rows[0][5]) "NaN" "no residual"
                let pars = Csv.read (Path.Combine(dir, "case-parameters.csv"))

                Expect.equal
                    pars.Rows
                    [|
                        [| "prior (log-kill, fixed prior values)"; "D"; "0.06" |]
                        [| "prior (log-kill, fixed prior values)"; "ka (1/h), oral"; "1.5" |]
                        [| "a \"quoted\" name"; "network weights"; "97" |]
                    |]
                    "parameters")
        }

        test "the calibration and data-efficiency CSV files read back through the library's reader" {
            let result: CaseUncertainty.MethodResult = {
                Model = "hybrid"
                Method = "deep ensemble (M = 5)"
                VarianceScale = 1.25
                Split = "F = 24, out of domain"
                Calibration = {
                    Levels = [| 0.1; 0.5 |]
                    Coverage = [| 0.125; 0.5 |]
                    Ece = 0.0125
                }
                EceInterval = {
                    Estimate = 0.0125
                    Lower = 0.01
                    Upper = 0.02
                    Level = 0.95
                    Count = 10
                }
                Coverage50 = 0.5
                Coverage90 = 0.9
                Nll = 1.0
                Crps = 1.0
                Rmse = 1.0
                MeanStd = 1.0
                NoiseStd = 1.0
                ModelStd = 1.0
                ModelCoverage90 = 0.9
                Points = 10
                Seconds = 1.0
            }

            let efficiency: DataEfficiency.Result = {
                Case = "case"
                Fractions = [| 0.5; 1.0 |]
                Subsets = [| 1; 2 |]
                Models = [| "MLP C(t, dose)"; "hybrid" |]
                Replicates = [| [| [| 3.0; 4.0 |]; [| 2.0; 2.0 |] |]; [| [| 1.0; 1.5 |]; [| 0.5; 0.5 |] |] |]
                TestMse = [| [| 3.5; 2.0 |]; [| 1.25; 0.5 |] |]
                Seconds = [| 0.0; 0.0 |]
            }

            inTempDir (fun dir ->
                UncertaintyReport.writeCsv dir "case" [| result |]
                let calibration = Csv.read (Path.Combine(dir, "case-calibration.csv"))

                Expect.equal
                    calibration.Columns
                    [|
                        "model"
                        "method"
                        "variance_scale"
                        "split"
                        "level"
                        "expected"
                        "observed"
                    |]
                    "header"

                Expect.equal
                    calibration.Rows
                    [|
                        [|
                            "hybrid"
                            "deep ensemble (M = 5)"
                            "1.25"
                            "F = 24, out of domain"
                            "0.1"
                            "0.1"
                            "0.125"
                        |]
                        [|
                            "hybrid"
                            "deep ensemble (M = 5)"
                            "1.25"
                            "F = 24, out of domain"
                            "0.5"
                            "0.5"
                            "0.5"
                        |]
                    |]
                    "rows"

                DataEfficiency.writeCsv dir efficiency
                let shares = Csv.read (Path.Combine(dir, "case-data-efficiency.csv"))

                Expect.equal shares.Columns [| "model"; "fraction"; "subset"; "test_mse" |] "header"

                Expect.equal
                    shares.Rows
                    [|
                        [| "MLP C(t, dose)"; "0.5"; "1"; "3" |]
                        [| "MLP C(t, dose)"; "0.5"; "2"; "4" |]
                        [| "MLP C(t, dose)"; "1"; "1"; "2" |]
                        [| "MLP C(t, dose)"; "1"; "2"; "2" |]
                        [| "hybrid"; "0.5"; "1"; "1" |]
                        [| "hybrid"; "0.5"; "2"; "1.5" |]
                        [| "hybrid"; "1"; "1"; "0.5" |]
                        [| "hybrid"; "1"; "2"; "0.5" |]
                    |]
                    "rows, one per replicate")
        }

        test
            "every committed docs/report CSV file reads strictly, through the library's reader and a strict RFC 4180 reader, as the writer writes it" {
            let files = committed ()
            Expect.isNonEmpty files $"CSV files in {reportDir}"

            let problems = [
                for path in files do
                    let name = Path.GetFileName path
                    let text = File.ReadAllText path

                    match attempt (fun () -> Csv.parse name text) with
                    | Error why -> $"{name}: {why}"
                    | Ok t ->
                        for i, cells in Array.indexed t.Rows do
                            if cells.Length <> t.Columns.Length then
                                $"{name}: row {i + 1} has {cells.Length} cells for {t.Columns.Length} columns"

                        match attempt (fun () -> strictRfc4180 text) with
                        | Error why -> $"{name}: {why}"
                        | Ok strict ->
                            if strict <> Array.append [| t.Columns |] t.Rows then
                                $"{name}: the strict RFC 4180 reader reads other cells"

                        if Csv.format name t.Columns t.Rows <> text then
                            $"{name}: not in the form the library's writer writes (quoting or line ends)"
            ]

            Expect.isTrue problems.IsEmpty (String.concat "\n" ("every committed CSV file:" :: List.distinct problems))
        }

        test
            "in the committed report files every model cell names a model of its case's metrics, and every other column is numbers" {
            let metricsOf (case: string) =
                match attempt (fun () -> Csv.read (Path.Combine(reportDir, $"{case}-metrics.csv"))) with
                | Ok t -> t.Rows |> Array.map (fun r -> r[0]) |> set
                | Error _ -> Set.empty

            let caseOf (name: string) =
                [ "energy-balance"; "lorenz96"; "pharmacokinetics"; "predator-prey"; "tumour" ]
                |> List.tryFind (fun c -> name.StartsWith(c + "-"))

            let problems = [
                for path in committed () do
                    let name = Path.GetFileName path

                    match attempt (fun () -> Csv.read path) with
                    | Error why -> $"{name}: {why}"
                    | Ok t ->
                        match caseOf name, Array.tryFindIndex ((=) "model") t.Columns with
                        // A results file holds every part's models (e.g. Lorenz-96's a-priori-only networks).
                        | Some case, Some m when not (name.EndsWith "-calibration.csv" || name.EndsWith "-results.csv") ->
                            let models = metricsOf case

                            for cells in t.Rows do
                                if
                                    not (
                                        models.Contains cells[m]
                                        || references.Contains cells[m]
                                        || Hybrid.Models.Common.AblationTable.isAblation cells[m]
                                    )
                                then
                                    $"{name}: model '{cells[m]}' is not a row of {case}-metrics.csv"
                        | _ -> ()

                        for column in t.Columns do
                            if not (textColumns.Contains column) then
                                // ±∞ is a legitimate number here (a standard error the data do not bound).
                                match attempt (fun () -> Data.columnWith NonFinite.Allow t column) with
                                | Error why -> $"{name}: {why}"
                                | Ok _ -> ()
            ]

            Expect.isTrue
                problems.IsEmpty
                (String.concat "\n" ("model names whole, numbers in numeric columns:" :: List.distinct problems))
        }
    ]
