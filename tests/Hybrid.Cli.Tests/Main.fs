module Hybrid.Cli.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid" [
        CliTests.tests
        SweepTests.tests
        WorkPrecisionTests.tests
        PeerBenchTests.tests
        TuneTests.tests
    ]
    |> Hybrid.Tests.Summary.runOneAtATime argv
