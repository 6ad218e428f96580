module Hybrid.Dsl.Tests.UnitsTests

open Expecto
open Hybrid

let tests =
    testList "Units" [
        test "parses common spellings to the same factors" {
            Expect.equal (Units.parse "m^2/s") (Units.parse "m^2 s^-1") "two spellings"
            Expect.equal (Units.parse "mol/(m^3*s)") (Units.ofFactors [ "mol", 1; "m", -3; "s", -1 ]) "grouped"
            Expect.equal (Units.parse "1/s") (Units.ofFactors [ "s", -1 ]) "reciprocal"
            Expect.equal (Units.parse "1") Units.one "dimensionless"
        }

        test "formats back to something that parses to the same units" {
            for text in [ "m^2/s"; "mol/m^3"; "1/h"; "mg/L"; "kg*m/s^2"; "mol/(m^3*s)"; "1" ] do
                let u = Units.parse text
                Expect.equal (Units.parse (Units.format u)) u text
        }

        test "dimensions follow SI base dimensions and ignore scale" {
            Expect.equal
                (Units.dimension (Units.parse "mg/L"))
                (Units.dimension (Units.parse "kg/m^3"))
                "mass per volume"

            Expect.equal (Units.dimension (Units.parse "N")) (Units.dimension (Units.parse "kg*m/s^2")) "newton"
            Expect.equal (Units.formatDimension (Units.dimension (Units.parse "m^2/s"))) "m^2/s" "diffusivity"
        }

        test "errors name the symbol and the position" {
            match Units.tryParse "m/ss" with
            | Error(msg, at) ->
                Expect.stringContains msg "unknown unit symbol 'ss'" "symbol"
                Expect.equal at 2 "0-based offset"
            | Ok _ -> failtest "accepted 'ss'"

            Expect.throwsT<ModelException> (fun () -> Units.parse "m^" |> ignore) "bad exponent"
        }
    ]
