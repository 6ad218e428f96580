module Hybrid.Dsl.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid.Dsl" [ ErrorsTests.tests ] |> Hybrid.Tests.Summary.run argv
