/// The shared ablation table: each variant's error ratio to the hybrid from log-MSEs paired by seed, against a hand
/// computation, and the table's rows and CSV file.
module Hybrid.Tests.Report.AblationTableTests

open System
open Expecto
open Hybrid.Models.Common

/// A table of the hybrid and its variants (name, test MSE per seed), each at its first seed trained for 1 s in 30
/// epochs, 0.1 s to predict, with one parameter α = 0.25.
let private ablationTable (models: (string * float[]) list) : ModelTable.Table =
    ModelTable.table [| for name, _ in models -> name, $"{name} (test row)" |] [|
        for name, seeds in models do
            yield! TableRows.modelRows name seeds nan 1.0 0.1 30 [| "α", 0.25 |]
    |]

let tests =
    testList "Report.AblationTable" [
        // By hand: log(variant / hybrid) per seed = ln 2 · (1, 0, 1); mean m = 0.462098, sample sd s = 0.400189,
        // t(0.975, 2) = 4.302653, so exp(m ± t s / √3) = [0.587414, 4.289722] around exp(m) = 2^(2/3) = 1.587401.
        test "a variant's paired interval against the hybrid matches a hand computation" {
            let t =
                ablationTable [
                    "hybrid", [| 1.0; 2.0; 4.0 |]
                    AblationTable.FusedScalar, [| 2.0; 2.0; 8.0 |]
                ]

            let r = (AblationTable.ratio t AblationTable.FusedScalar "hybrid").Value
            Expect.floatClose Accuracy.high r.Estimate 1.5874010519681994 "ratio of geometric means"
            Expect.floatClose { absolute = 0.0; relative = 1e-6 } r.Lower 0.5874138105445416 "lower end"
            Expect.floatClose { absolute = 0.0; relative = 1e-6 } r.Upper 4.289722261473243 "upper end"
            Expect.equal r.Count 3 "three pairs"

            Expect.equal
                (AblationTable.ratioCell t AblationTable.FusedScalar "hybrid")
                "1.59 [0.59, 4.29]"
                "the table's cell"
        }

        test "one seed: the plain ratio, no interval" {
            let t =
                ablationTable [ "hybrid", [| 2.0 |]; AblationTable.SeparateRates, [| 3.0 |] ]

            Expect.isNone (AblationTable.ratio t AblationTable.SeparateRates "hybrid") "no interval from one pair"

            Expect.equal
                (AblationTable.ratioCell t AblationTable.SeparateRates "hybrid")
                "1.50 (one seed)"
                "the ratio of the MSEs"
        }

        test
            "the section: the hybrid as reference, one row per variant, a CSV file, and a line per mechanism that does not apply" {
            let dir = IO.Path.Combine(IO.Path.GetTempPath(), $"ablation-{Guid.NewGuid()}")
            IO.Directory.CreateDirectory dir |> ignore

            try
                let hybrid = "hybrid (test)", [| 1.0; 2.0; 4.0 |]

                let variants = [
                    AblationTable.SeparateRates, [| 1.0; 1.0; 1.0 |]
                    AblationTable.FusedScalar, [| 2.0; 2.0; 8.0 |]
                ]

                let lines =
                    AblationTable.section dir "case" 2 "Intro." (ablationTable (hybrid :: variants)) [
                        "λ schedule", "no physics residual."
                    ]

                let table = lines |> List.filter (fun l -> l.StartsWith "| ")
                Expect.equal table.Length 4 "header and three rows"

                Expect.stringContains
                    table[1]
                    "| hybrid (test) | 2.33 | 1.00, 2.00, 4.00 | 1 (reference) |"
                    "the reference"

                Expect.stringContains table[3] "| 4.00 | 2.00, 2.00, 8.00 | 1.59 [0.59, 4.29] |" "the fused row"
                Expect.contains lines "- No λ schedule here: no physics residual." "the mechanism that does not apply"
                let csv = IO.File.ReadAllLines(IO.Path.Combine(dir, "case-ablation.csv"))
                Expect.equal csv.Length 4 "header and three rows"
                Expect.stringContains csv[3] ",4,3,1.5874,0.587414,4.28972" "the CSV row"

                Expect.isEmpty
                    (AblationTable.section dir "case" 2 "Intro." (ablationTable [ hybrid ]) [])
                    "no variants, no section"
            finally
                IO.Directory.Delete(dir, true)
        }
    ]
