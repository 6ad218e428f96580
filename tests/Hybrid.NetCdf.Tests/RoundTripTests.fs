module Hybrid.NetCdf.Tests.RoundTripTests

open System.IO
open Expecto
open Hybrid.NetCdf
open Hybrid.NetCdf.Tests.Reference

let private roundTrip (dataset: Dataset) =
    use file = new TempFile(".nc")
    NetCdf.write file.Path dataset
    NetCdf.read file.Path

let tests =
    testList "round trip" [
        test "the reference dataset reads back with its coordinates, units, values and attributes" {
            check (roundTrip dataset)
        }

        test "float64, float32 and int32 values, every attribute type and a scalar read back exactly" {
            let written =
                Dataset.empty
                |> Dataset.withDimension "y" 2
                |> Dataset.withDimension "x" 3
                |> Dataset.withVariable {
                    Name = "a"
                    Dimensions = [ "y"; "x" ]
                    Data = Float64 [| 0.1; -2.5e300; 5e-324; infinity; -0.0; 1.0 / 3.0 |]
                    Attributes = [
                        "f64", Float64s [| 1.0; 2.0 |]
                        "f32", Float32s [| 0.1f |]
                        "i32", Int32s [| -7; System.Int32.MaxValue |]
                        "text", Text "Grad Celsius, Ünïcödé"
                    ]
                }
                |> Dataset.withVariable {
                    Name = "b"
                    Dimensions = [ "x" ]
                    Data = Float32 [| 1.5f; -3.25f; 1e-45f |]
                    Attributes = []
                }
                |> Dataset.withVariable {
                    Name = "c"
                    Dimensions = [ "y" ]
                    Data = Int32 [| System.Int32.MinValue; 42 |]
                    Attributes = []
                }
                |> Dataset.withVariable {
                    Name = "g"
                    Dimensions = []
                    Data = Float64 [| 9.81 |]
                    Attributes = [ "units", Text "m s-2" ]
                }
                |> Dataset.withAttribute "history" (Text "made by a test")

            Expect.equal (roundTrip written) written "the same dataset"
        }

        test "past the classic offset limit the file is CDF-2 (64-bit offsets) and reads back the same" {
            use file = new TempFile(".nc")
            NetCdf.writeClassic 0L file.Path dataset
            Expect.equal (File.ReadAllBytes(file.Path).[..3]) "CDF\002"B "magic: CDF, version 2"
            check (NetCdf.read file.Path)
        }

        test "a tiny file has exactly the bytes the classic format specifies" {
            use file = new TempFile(".nc")

            Dataset.empty
            |> Dataset.withDimension "x" 2
            |> Dataset.withVariable {
                Name = "v"
                Dimensions = [ "x" ]
                Data = Int32 [| 1; 2 |]
                Attributes = []
            }
            |> NetCdf.write file.Path

            // magic "CDF" 1, numrecs 0; NC_DIMENSION (10) 1: "x" padded, 2; no global attributes (0 0);
            // NC_VARIABLE (11) 1: "v" padded, 1 dimension: id 0, no attributes (0 0), NC_INT (4), vsize 8,
            // begin 80 (the header's length); then 1 and 2 as big-endian int32.
            let expected =
                [|
                    yield! [| 0x43; 0x44; 0x46; 0x01 |]
                    yield! [| 0; 0; 0; 0 |]
                    yield! [| 0; 0; 0; 10; 0; 0; 0; 1; 0; 0; 0; 1; int 'x'; 0; 0; 0; 0; 0; 0; 2 |]
                    yield! [| 0; 0; 0; 0; 0; 0; 0; 0 |]
                    yield! [| 0; 0; 0; 11; 0; 0; 0; 1; 0; 0; 0; 1; int 'v'; 0; 0; 0 |]
                    yield! [| 0; 0; 0; 1; 0; 0; 0; 0 |]
                    yield! [| 0; 0; 0; 0; 0; 0; 0; 0 |]
                    yield! [| 0; 0; 0; 4; 0; 0; 0; 8; 0; 0; 0; 80 |]
                    yield! [| 0; 0; 0; 1; 0; 0; 0; 2 |]
                |]
                |> Array.map byte

            Expect.equal (File.ReadAllBytes file.Path) expected "88 bytes"
        }

        test "NaN in a float variable with a _FillValue is written as the fill value and read back as NaN" {
            use file = new TempFile(".nc")

            Dataset.empty
            |> Dataset.withDimension "x" 3
            |> Dataset.withVariable {
                Name = "v"
                Dimensions = [ "x" ]
                Data = Float64 [| 1.0; nan; 3.0 |]
                Attributes = [ "_FillValue", Float64s [| -1.0 |] ]
            }
            |> NetCdf.write file.Path

            let bytes = File.ReadAllBytes file.Path

            let stored =
                System.Buffers.Binary.BinaryPrimitives.ReadDoubleBigEndian(
                    System.ReadOnlySpan(bytes, bytes.Length - 16, 8)
                )

            Expect.equal stored -1.0 "the file holds the fill value"

            match (Dataset.variable "v" (NetCdf.read file.Path)).Data with
            | Float64 [| 1.0; m; 3.0 |] -> Expect.isTrue (System.Double.IsNaN m) $"read as NaN, not {m}"
            | other -> failtest $"read {other}"
        }
    ]
