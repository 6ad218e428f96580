module Hybrid.Cli.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid.Cli" [ CliTests.tests ]
    |> Hybrid.Tests.Summary.runOneAtATime argv
