module Hybrid.Tests.Report.ModelTableTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Numerics
open Hybrid.Models.Report
open Hybrid.Models.Common

[<Tests>]
let tests =
    testList "Report.ModelTable" [
        test "the seed sentences count a hybrid's seeds that beat each reference" {
            let rows =
                TableRows.table [
                    "physics prior", [| 2.0 |]
                    "hybrid (A)", [| 1.5; 2.5; 2.0 |]
                    "LSTM", [| 3.0; 3.0; 3.0 |]
                ]

            let lines = ModelTable.seedLines 1 [ "physics prior"; "missing row" ] rows
            Expect.equal lines.Length 2 "the seed count, then one line per hybrid and reference found"
            Expect.stringContains lines[0] "over 3 seed(s)" "the seed count"

            Expect.equal
                lines[1]
                "- hybrid (A) beats physics prior (2.0) with 1 of its 3 seeds (per seed: 1.5, 2.5, 2.0)."
                "a tie is not a win"
        }

        test "the no-physics control is a pure-ML row: the claim's and the claims table's baseline set include it" {
            Expect.isTrue (ModelTable.isPureMl ModelTable.NoPhysics) "the control counts as pure ML"
            Expect.isFalse (ModelTable.isPureMl "hybrid (A)") "a hybrid does not"
            Expect.isFalse (ModelTable.isPureMl "physics prior") "nor the physics"

            // The control is the best pure-ML row here (geometric mean 1.0 against the LSTM's 2.0), so both the
            // claim sentence and the claims table must name it as the baseline; ratio 0.5 on every seed.
            let rows =
                TableRows.table [
                    "hybrid (A)", [| 0.5; 0.5; 0.5 |]
                    ModelTable.NoPhysics, [| 0.9; 1.0; 1.0 / 0.9 |]
                    "LSTM", [| 2.0; 2.0; 2.0 |]
                ]

            let lines = ModelTable.claimLines "test" rows
            Expect.equal lines.Length 1 "one sentence per hybrid"

            Expect.stringContains
                lines[0]
                $"the best pure-ML baseline, {ModelTable.NoPhysics}"
                "the control is the baseline"

            let cells = Claims.oodOfRows "c" "test" rows
            Expect.stringContains cells[0].Detail $"hybrid (A) vs {ModelTable.NoPhysics}" "and in the claims table"
        }

        test "what the physics adds: each hybrid's MSE ratio to the no-physics control, none without a control" {
            let models = [
                "hybrid (A)", [| 1.0; 1.0 |]
                ModelTable.NoPhysics, [| 4.0; 4.0 |]
                "LSTM", [| 2.0; 2.0 |]
            ]

            let rows = TableRows.table models

            let lines = ModelTable.noPhysicsLines "test" rows
            Expect.equal lines.Length 1 "one line per hybrid"
            // log-ratios log(1/4) on both seeds: no spread, so the interval is the point 0.25.
            Expect.stringContains lines[0] "hybrid (A)'s MSE is 0.25× that of neural ODE (no physics)" "the ratio"
            Expect.stringContains lines[0] "95% CI 0.25–0.25" "its interval"

            let one =
                ModelTable.noPhysicsLines
                    "test"
                    (TableRows.table [ "hybrid (A)", [| 1.0 |]; ModelTable.NoPhysics, [| 4.0 |] ])

            Expect.stringContains one[0] "is 0.25× that of" "one seed: the ratio of the MSEs"
            Expect.stringContains one[0] "no interval" "and says so"

            Expect.isEmpty
                (ModelTable.noPhysicsLines "test" (TableRows.table [ models[0]; models[2] ]))
                "no control row, no line"
        }

        test "one seed: no per-seed sentence, the table shows the MSE alone" {
            let rows = TableRows.table [ "hybrid (A)", [| 1.25 |]; "physics", [| 2.0 |] ]
            Expect.equal (ModelTable.seedLines 2 [ "physics" ] rows).Length 1 "the seed count only"
            let table = ModelTable.markdown 2 rows
            Expect.stringContains table[2] "| hybrid (A) | 1.25 | — | — |" "no ± for one seed, no residual"

            let spread =
                ModelTable.markdown 2 (TableRows.table [ "hybrid (A)", [| 1.0; 3.0 |] ])

            Expect.stringContains spread[2] "2.00 ± 1.41 (2 seeds)" "mean ± sample sd"
        }

        test "a table's standard errors: Gauss–Newton's where identifiable, +∞ (not a crash) where JᵀJ is singular" {
            let xs = [| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |]
            let ys = [| 2.1; 3.9; 6.2; 7.8; 10.1; 12.2 |]
            let x = torch.tensor (xs, dtype = torch.float64)
            let y = torch.tensor (ys, dtype = torch.float64)
            let a = Param("a", Constraint.Free, 2.0, dtype = torch.float64)
            let b = Param("b", Constraint.Free, 1.0, dtype = torch.float64)
            let line () = a.Value .* x .- y
            let ses = CaseTraining.standardErrorsOf line [| "a", a |]

            let expected =
                (Training.Covariance.gaussNewtonBy Training.JacobianMethod.Differences line [| a |]).StandardErrors[0]

            Expect.equal ses [| "a SE", expected |] "the covariance's standard error (by differences), named"

            Expect.floatClose
                { absolute = 0.0; relative = 1e-9 }
                expected
                (Training.Covariance.gaussNewton line [| a |]).StandardErrors[0]
                "as reverse mode's"

            Expect.isTrue (expected > 0.0 && expected < infinity) "a finite SE"
            // y = a·b·x: a change of a is undone by b, so the covariance refuses; the table says +∞ for both.
            let product () = a.Value .* b.Value .* x .- y

            Expect.throwsT<HybridException>
                (fun () -> Training.Covariance.gaussNewton product [| a; b |] |> ignore)
                "the covariance refuses"

            Expect.equal
                (CaseTraining.standardErrorsOf product [| "a", a; "b", b |])
                [| "a SE", infinity; "b SE", infinity |]
                "infinite, not a crash"
        }
    ]
