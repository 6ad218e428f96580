module Hybrid.Interactive.Tests.FormattersTests

open Expecto
open Microsoft.DotNet.Interactive.Formatting
open TorchSharp
open Hybrid.Compiler
open Hybrid.Interactive

let tests =
    testList "Formatters" [
        test "after register, .NET Interactive formats Hybrid's values with them" {
            Formatters.register ()
            Formatters.register ()
            let simulator = Compiler.compile Compiler.defaults Samples.decay
            use t = torch.tensor ([| 0.5; 0.25 |], dtype = torch.float64)

            Expect.equal
                (Formatter.ToDisplayString(Samples.decay, "text/html"))
                (ModelDisplay.html Samples.decay)
                "model, HTML"

            Expect.equal
                (Formatter.ToDisplayString(Samples.decay, "text/plain"))
                "model decay\ndomain point\nfield u\nparam k = 0.5 positive\n∂u/∂t = −k u\ninitial u = 1\n"
                "model, text"

            Expect.equal
                (Formatter.ToDisplayString(simulator.Parameters, "text/plain"))
                "k = 0.5 (positive, learnable)"
                "parameters, text"

            Expect.equal (Formatter.ToDisplayString(t, "text/plain")) "tensor Float64 [2]: 0.5, 0.25" "tensor, text"

            Expect.equal
                (Formatter.GetPreferredMimeTypesFor(typeof<Hybrid.Model>) |> List.ofSeq)
                [ "text/html"; "text/plain" ]
                "preferred MIME types"
        }
    ]
