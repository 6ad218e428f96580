/// `hybrid tune` as a user runs it: the energy-balance search under the tiny settings, two trials per model, on a
/// pool of two processes; the file it writes holds each model's best trial (checked against the trials' own results
/// in the sweep folder), a second run resumes without computing anything again, and the report's settings read the
/// file back (quick and full; never tiny).
module Hybrid.Cli.Tests.TuneTests

open System
open System.IO
open Expecto
open Hybrid.Models.Tasks
open Hybrid.Models.Tuning
open Hybrid.Models.Report

let tests =
    testSequenced
    <| testList "Tune" [
        test "tune arguments parse" {
            let parse = Hybrid.Cli.Arguments.parse

            Expect.equal
                (parse [|
                    "tune"
                    "--case"
                    "energy-balance"
                    "--trials"
                    "3"
                    "--quick"
                    "--on"
                    "local:2"
                |])
                (Hybrid.Cli.Arguments.RunTune(
                    [ "energy-balance" ],
                    3,
                    "quick",
                    Hybrid.Cli.Arguments.Local(Some 2),
                    "tuning",
                    Path.Combine("tuning", "sweep")
                ))
                "a case, three trials, quick, a pool of two"

            match parse [| "tune"; "--trials"; "9" |] with
            | Hybrid.Cli.Arguments.Usage(text, 2) -> Expect.stringContains text "give 1 to 8 trials" "the limit"
            | other -> failtest $"9 trials: {other}"
        }

        test "hybrid tune on a local pool writes each model's best trial, resumes, and the report's settings read it" {
            let root =
                Path.Combine(Path.GetTempPath(), "hybrid-tune-" + Guid.NewGuid().ToString("N"))

            let out = Path.Combine(root, "tuning")

            let run () =
                SweepTests.hybrid 600 [] [
                    "tune"
                    "--case"
                    "energy-balance"
                    "--settings"
                    "tiny"
                    "--trials"
                    "2"
                    "--on"
                    "local:2"
                    "--out"
                    out
                ]

            let code, stdout, stderr = run ()
            Expect.equal code 0 $"hybrid tune exits 0; stderr: {stderr}"
            Expect.stringContains stdout "## Tuning: energy balance" "the summary"
            let path = TuningFile.path out "energy-balance"
            let chosen = TuningFile.read path

            Expect.equal
                (chosen |> List.map (fun c -> c.Model))
                [ "hybrid"; "neural ODE (no physics)"; "LSTM"; "Transformer"; "PINN" ]
                "every network model of the case"

            let sweep = Path.Combine(out, "sweep")

            let trials =
                SweepStatus.read sweep
                |> Array.map (fun e -> SweepFolder.readResult sweep e.Id)
                |> Array.map TuningExperiment.scoreOf
                |> Array.zip (SweepStatus.read sweep |> Array.map (fun e -> e.Task.Model))

            for c in chosen do
                let own = trials |> Array.filter (fun (m, _) -> m = c.Model) |> Array.map snd
                Expect.equal c.Trials 2 $"{c.Model}: two trials"
                Expect.equal own.Length 2 $"{c.Model}: two results"
                let best = own |> Array.minBy (fun t -> t.ValidationMse)
                Expect.equal c.ValidationMse best.ValidationMse $"{c.Model}: the lowest validation MSE of its trials"
                Expect.equal c.Values best.Values $"{c.Model}: that trial's hyper-parameters"

                Expect.equal
                    (c.Values |> Array.map fst)
                    [| Tuned.LearningRate; Tuned.Width |]
                    $"{c.Model}: learning rate and width"

            let code, _, stderr = run ()
            Expect.equal code 0 "the second run exits 0"
            Expect.stringContains stderr "10 tasks, 10 done already" "nothing is computed again"

            let previous = Environment.GetEnvironmentVariable "HYBRID_TUNING"

            try
                Environment.SetEnvironmentVariable("HYBRID_TUNING", out)
                let expected = TuningFile.values chosen
                Expect.equal (EnergyBalanceTasks.settings "quick").Tuned expected "quick reads the file"
                Expect.equal (EnergyBalanceTasks.settings "full").Tuned expected "full reads the file"
                Expect.isTrue (EnergyBalanceTasks.settings "tiny").Tuned.IsEmpty "tiny never does"
            finally
                Environment.SetEnvironmentVariable("HYBRID_TUNING", previous)
        }
    ]
