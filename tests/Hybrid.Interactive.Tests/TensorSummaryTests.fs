module Hybrid.Interactive.Tests.TensorSummaryTests

open Expecto
open TorchSharp
open Hybrid.Interactive

let tests =
    testList "TensorSummary" [
        test "dtype, shape and every value when there are at most 8" {
            use t =
                torch.tensor([| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |], dtype = torch.float64).reshape (2L, 3L)

            Expect.equal (TensorSummary.text t) "tensor Float64 [2, 3]: 1, 2, 3, 4, 5, 6" "summary"
        }

        test "the first 8 values, then the count" {
            use t = torch.arange (10, dtype = torch.float32)
            Expect.equal (TensorSummary.text t) "tensor Float32 [10]: 0, 1, 2, 3, 4, 5, 6, 7, … (10 values)" "summary"
        }

        test "a scalar, an integer tensor, a boolean tensor" {
            use scalar = torch.tensor (0.25, dtype = torch.float64)
            use ints = torch.tensor ([| 3L; -4L |])
            use flags = torch.tensor ([| true; false |])
            Expect.equal (TensorSummary.text scalar) "tensor Float64 []: 0.25" "scalar"
            Expect.equal (TensorSummary.text ints) "tensor Int64 [2]: 3, -4" "integers"
            Expect.equal (TensorSummary.text flags) "tensor Bool [2]: true, false" "booleans"
        }

        test "a tensor that requires gradients says so; an empty one has no values" {
            use leaf = torch.tensor([| 1.5 |], dtype = torch.float64).requires_grad_ true
            use empty = torch.zeros (0L, dtype = torch.float32)
            Expect.equal (TensorSummary.text leaf) "tensor Float64 [1], requires grad: 1.5" "leaf"
            Expect.equal (TensorSummary.text empty) "tensor Float32 [0]: no values" "empty"
        }

        test "a disposed tensor" {
            let t = torch.ones (2L)
            t.Dispose()
            Expect.equal (TensorSummary.text t) "tensor (disposed)" "disposed"
        }

        test "the HTML is the line in a code element, escaped" {
            use t = torch.tensor ([| 2.0 |], dtype = torch.float64)
            Expect.equal (TensorSummary.html t) "<code class=\"hybrid-tensor\">tensor Float64 [1]: 2</code>" "HTML"
        }
    ]
