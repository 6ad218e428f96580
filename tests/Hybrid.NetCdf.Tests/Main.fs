module Hybrid.NetCdf.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid.NetCdf" [
        RoundTripTests.tests
        PropertyTests.tests
        ClientTests.tests
        ErrorTests.tests
    ]
    |> Hybrid.Tests.Summary.run argv
