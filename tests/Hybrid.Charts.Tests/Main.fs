module Hybrid.Charts.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    // Load libtorch the Hybrid way before a test makes a tensor (TorchSharp's own first load can fail here).
    Hybrid.Engine.init ()

    testList "Hybrid.Charts" [
        LineChartSvgTests.tests
        ChartsTests.tests
        ChartFilesTests.tests
        HybridChartsTests.tests
    ]
    |> Hybrid.Tests.Summary.runOneAtATime argv
