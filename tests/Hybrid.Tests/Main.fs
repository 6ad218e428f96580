module Hybrid.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid" [
        Engine.ElfVersionsTests.tests
        Engine.EngineTests.tests
        Demos.HeatRecoveryTests.tests
        Training.UdeTests.tests
        Training.FusionTests.tests
        Training.TrainerTests.tests
        Training.UncertaintyTests.tests
        Training.DataTests.tests
    ]
    |> Summary.run argv
