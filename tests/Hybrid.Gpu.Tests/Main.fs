module Hybrid.Gpu.Tests.Main

open Expecto

[<EntryPoint>]
let main argv =
    testList "Hybrid.Gpu" [ DeviceKernelTests.tests ]
    |> Hybrid.Tests.Summary.run argv
