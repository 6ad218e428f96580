/// FsCheck: any dataset Hybrid.NetCdf writes reads back equal (dimensions, variables of each type, attributes).
module Hybrid.NetCdf.Tests.PropertyTests

open Expecto
open FsCheck
open FsCheck.FSharp
open Hybrid.NetCdf
open Hybrid.NetCdf.Tests.Reference

let private config = {
    FsCheckConfig.defaultConfig with
        maxTest = 100
}

let private float64s =
    ArbMap.defaults |> ArbMap.generate<NormalFloat> |> Gen.map float

let private float32s =
    ArbMap.defaults
    |> ArbMap.generate<float32>
    |> Gen.filter (fun f -> not (System.Single.IsNaN f))

let private int32s = ArbMap.defaults |> ArbMap.generate<int>

let private text =
    Gen.elements [ ""; "K"; "degrees_north"; "Grad Celsius"; "Ünïcödé Ω"; "a\nb" ]

let private attribute =
    Gen.oneof [
        text |> Gen.map Text
        Gen.arrayOfLength 2 float64s |> Gen.map Float64s
        Gen.arrayOfLength 1 float32s |> Gen.map Float32s
        Gen.arrayOfLength 3 int32s |> Gen.map Int32s
    ]

let private attributes =
    gen {
        let! n = Gen.choose (0, 3)
        let! values = Gen.listOfLength n attribute
        return values |> List.mapi (fun i v -> $"att{i}", v)
    }

let private dataset =
    gen {
        let! lengths = Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n (Gen.choose (1, 4)))
        let dimensions = lengths |> List.mapi (fun i n -> { Name = $"d{i}"; Length = n })
        let! n = Gen.choose (0, 4)

        let! variables =
            Gen.listOfLength
                n
                (gen {
                    let! over = Gen.subListOf dimensions |> Gen.map List.ofSeq
                    let count = over |> List.fold (fun a d -> a * d.Length) 1

                    let! data =
                        Gen.oneof [
                            Gen.arrayOfLength count float64s |> Gen.map Float64
                            Gen.arrayOfLength count float32s |> Gen.map Float32
                            Gen.arrayOfLength count int32s |> Gen.map Int32
                        ]

                    let! attributes = attributes

                    return over, data, attributes
                })

        let! globals = attributes

        return {
            Dimensions = dimensions
            Variables =
                variables
                |> List.mapi (fun i (over, data, attributes) -> {
                    Name = $"v{i}"
                    Dimensions = over |> List.map (fun d -> d.Name)
                    Data = data
                    Attributes = attributes
                })
            Attributes = globals
        }
    }

let tests =
    testList "properties" [
        testPropertyWithConfig config "any dataset written reads back equal"
        <| Prop.forAll (Arb.fromGen dataset) (fun d ->
            use file = new TempFile(".nc")
            NetCdf.write file.Path d
            NetCdf.read file.Path = d)
    ]
