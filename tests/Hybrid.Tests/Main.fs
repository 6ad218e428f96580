module Hybrid.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid" [
        Engine.ElfVersionsTests.tests
        Engine.EngineTests.tests
        Demos.HeatRecoveryTests.tests
        Numerics.OperatorTests.tests
        Numerics.ConvergenceTests.tests
        Numerics.RolloutTests.tests
        Compiler.CompilerTests.tests
    ]
    |> Summary.run argv
