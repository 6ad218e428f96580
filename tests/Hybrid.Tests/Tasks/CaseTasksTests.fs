/// A case split into tasks gives the outcome of its one-process run: the predator–prey case under the "tiny"
/// settings (two seeds), every task's result written to JSON and read back before the outcome is assembled, against
/// `PredatorPrey.run` with the same settings (same seeds: the same numbers, bit for bit).
module Hybrid.Tests.Tasks.CaseTasksTests

open Expecto
open Hybrid.Models.Cases
open Hybrid.Models.Tasks
open Hybrid.Models.Report

let private bits (v: float) = System.BitConverter.DoubleToInt64Bits v

let tests =
    testList "Tasks.Cases" [
        test "predator–prey from task results read back from JSON = the one-process run" {
            let s = PredatorPreyTasks.settings "tiny"
            let e = PredatorPreyTasks.experiment
            let tasks = e.Tasks "tiny"
            Expect.equal tasks.Length 16 "physics, 7 networks × 2 seeds, uncertainty"

            let fromTasks =
                tasks
                |> List.map (fun t ->
                    let r = Experiment.run e "" t
                    TaskResult.ofJson "memory" (TaskResult.toJson r) |> PredatorPreyTasks.ofResult)
                |> PredatorPrey.assemble s

            let direct = PredatorPrey.run s

            Expect.equal
                (fromTasks.Models |> Array.map (fun m -> m.Name))
                (direct.Models |> Array.map (fun m -> m.Name))
                "the same models in the same order"

            for a, b in Array.zip fromTasks.Models direct.Models do
                Expect.equal (bits a.TestMse) (bits b.TestMse) $"{a.Name}: test MSE"
                Expect.equal (Array.map bits a.SeedTestMse) (Array.map bits b.SeedTestMse) $"{a.Name}: per seed"
                Expect.equal (bits a.TrainMse) (bits b.TrainMse) $"{a.Name}: train MSE"
                Expect.equal (bits a.ValidationMse) (bits b.ValidationMse) $"{a.Name}: validation MSE"
                Expect.equal (bits a.PhysicsResidual) (bits b.PhysicsResidual) $"{a.Name}: physics residual"
                Expect.equal a.Epochs b.Epochs $"{a.Name}: epochs"
                Expect.equal a.Description b.Description $"{a.Name}: description"

                Expect.equal
                    (a.Parameters |> Array.map (fun (n, v) -> n, bits v))
                    (b.Parameters |> Array.map (fun (n, v) -> n, bits v))
                    $"{a.Name}: parameters"

                Expect.equal
                    (a.Forecast |> Array.map (Array.map bits))
                    (b.Forecast |> Array.map (Array.map bits))
                    $"{a.Name}: forecast"

            Expect.equal fromTasks.Models[4].SeedTestMse.Length 2 "two seeds"

            // The deep ensemble's members have their own seeds; MC dropout draws from the global generator, which a
            // task seeds at its start and the one-process run leaves as earlier work left it.
            let ensemble (o: PredatorPrey.Outcome) =
                o.Uncertainty
                |> Array.filter (fun u -> u.Method.StartsWith "deep ensemble")
                |> Array.map (fun u -> u.Method, u.Split, bits u.Calibration.Ece, bits u.Nll, bits u.Crps)

            Expect.equal (ensemble fromTasks).Length 1 "one ensemble result"
            Expect.equal (ensemble fromTasks) (ensemble direct) "the deep ensemble's calibration"
        }
    ]
