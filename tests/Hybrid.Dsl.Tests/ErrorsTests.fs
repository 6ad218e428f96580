module Hybrid.Dsl.Tests.ErrorsTests

open Expecto
open Hybrid

let tests =
    testList "Errors" [
        test "parse errors carry their position and are HybridExceptions" {
            let e = ParseException("unexpected ')'", 2, 7)
            Expect.equal (e.Line, e.Column) (2, 7) "position kept"
            Expect.isTrue (box e :? HybridException) "one library exception type"
        }
    ]
