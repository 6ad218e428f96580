/// The progress line: its exact text, and that a parameter named like a word of the line stays unambiguous.
module Hybrid.Tests.Training.ProgressTests

open System
open Expecto
open Hybrid.Training

let private report: ProgressReport = {
    Epoch = 12
    Epochs = 100
    TrainLoss = 0.00123
    ValidationLoss = 0.0015
    Parts = [| "data", 0.001; "physics", 0.00023 |]
    Theta = [| "H", 0.5; "D", 0.1 |]
    Horizon = 4
    Elapsed = TimeSpan.FromSeconds 10.0
    Eta = TimeSpan(0, 1, 2)
}

let tests =
    testList "Progress" [
        test "the line shows loss, validation, parts, θ, the horizon as 'horizon n' and the ETA" {
            Expect.equal
                (Progress.format report)
                "epoch 12/100  loss 1.230E-003  val 1.500E-003  data 1.00E-003  physics 2.30E-004  H=0.5 D=0.1  horizon 4  ETA 00:01:02"
                "the line"
        }

        test "a parameter named H is the only 'H=' in the line (the horizon cannot be read as it)" {
            let line = Progress.format report
            let count = (line.Length - line.Replace("H=", "").Length) / 2
            Expect.equal count 1 "one H="
            Expect.stringContains line "H=0.5" "the parameter H"
        }

        test "without validation and θ the line has neither, nor a gap" {
            Expect.equal
                (Progress.format {
                    report with
                        ValidationLoss = nan
                        Theta = [||]
                })
                "epoch 12/100  loss 1.230E-003  data 1.00E-003  physics 2.30E-004  horizon 4  ETA 00:01:02"
                "the line"
        }
    ]
