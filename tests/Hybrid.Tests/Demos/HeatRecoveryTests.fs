/// The foundation demo recovers the diffusion coefficient it was generated with.
module Hybrid.Tests.Demos.HeatRecoveryTests

open Expecto
open Hybrid.Models.Demos

let tests =
    testList "Heat recovery demo" [
        test "recovers D within 2% from 1%-noise data" {
            // 100 of the demo's 150 Adam iterations: D is 0.44% off by then (1.7% at 75) and the remaining ones only
            // polish it. scripts/heat-demo.fsx runs the demo's full defaults with the same 2% check. A wrong gradient
            // or simulator still misses by far more than 2%.
            let outcome =
                HeatRecovery.run
                    {
                        HeatRecovery.defaults with
                            Iterations = 100
                    }
                    (fun _ _ _ -> ())

            Expect.isLessThan outcome.RelativeError 0.02 $"recovered {outcome.RecoveredD} vs true {outcome.TrueD}"
        }

        test "fails clearly when the learning rate drives D out of the stable range" {
            let settings = {
                HeatRecovery.defaults with
                    LearningRate = 5.0
                    Iterations = 20
            }

            let e =
                Expect.throwsC (fun () -> HeatRecovery.run settings (fun _ _ _ -> ()) |> ignore) id

            Expect.stringContains e.Message "lower LearningRate" "says what to change"
        }
    ]
