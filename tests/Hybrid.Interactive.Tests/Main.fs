module Hybrid.Interactive.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    Hybrid.Engine.init ()
    Hybrid.Engine.usePrecision Hybrid.Float64

    // One test at a time: see Summary.runOneAtATime.
    testList "Hybrid.Interactive" [
        ModelDisplayTests.tests
        ParameterTableTests.tests
        TensorSummaryTests.tests
        TrainResultDisplayTests.tests
        FormattersTests.tests
    ]
    |> Hybrid.Tests.Summary.runOneAtATime argv
