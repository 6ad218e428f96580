/// The reference dataset shared with netcdf_client.py: time=2, lat=3, lon=4; tas(time, lat, lon) float32
/// 250 + 0.5 i in K with _FillValue -9999 and value 5 missing; count(lat) int32 1, 2, 3; CF attributes.
module Hybrid.NetCdf.Tests.Reference

open System.IO
open Expecto
open Hybrid.NetCdf

let tasValues =
    Array.init 24 (fun i -> if i = 5 then nanf else 250.0f + 0.5f * float32 i)

let dataset =
    Dataset.empty
    |> Dataset.withCoordinate "time" "days since 2000-01-01" [| 0.0; 1.0 |]
    |> Dataset.withCoordinate "lat" "degrees_north" [| -10.0; 0.0; 10.0 |]
    |> Dataset.withCoordinate "lon" "degrees_east" [| 0.0; 90.0; 180.0; 270.0 |]
    |> fun d -> {
        d with
            Variables =
                d.Variables
                |> List.map (fun v ->
                    if v.Name = "lat" then
                        {
                            v with
                                Attributes = v.Attributes @ [ "standard_name", Text "latitude" ]
                        }
                    else
                        v)
    }
    |> Dataset.withVariable {
        Name = "tas"
        Dimensions = [ "time"; "lat"; "lon" ]
        Data = Float32 tasValues
        Attributes = [
            "units", Text "K"
            "standard_name", Text "air_temperature"
            "long_name", Text "near-surface air temperature"
            "_FillValue", Float32s [| -9999.0f |]
        ]
    }
    |> Dataset.withVariable {
        Name = "count"
        Dimensions = [ "lat" ]
        Data = Int32 [| 1; 2; 3 |]
        Attributes = [ "long_name", Text "stations" ]
    }
    |> Dataset.withAttribute "title" (Text "Hybrid NetCDF test")
    |> Dataset.withAttribute "Conventions" (Text "CF-1.8")
    |> Dataset.withAttribute "version" (Float64s [| 1.5 |])

/// Float32 values compared bit for bit, NaN equal to NaN.
let expectSameFloat32 (actual: float32[]) (expected: float32[]) (what: string) =
    Expect.equal
        (actual |> Array.map System.BitConverter.SingleToInt32Bits)
        (expected |> Array.map System.BitConverter.SingleToInt32Bits)
        $"{what}: bit-identical values"

/// Checks a dataset read back against the reference: dimensions, coordinates, units, values, attributes.
let check (read: Dataset) =
    let sorted = read.Dimensions |> List.sortBy (fun d -> d.Name)

    Expect.equal
        sorted
        [
            { Name = "lat"; Length = 3 }
            { Name = "lon"; Length = 4 }
            { Name = "time"; Length = 2 }
        ]
        "dimensions"

    for name, units, values in
        [
            "time", "days since 2000-01-01", [| 0.0; 1.0 |]
            "lat", "degrees_north", [| -10.0; 0.0; 10.0 |]
            "lon", "degrees_east", [| 0.0; 90.0; 180.0; 270.0 |]
        ] do
        match Dataset.tryCoordinate name read with
        | Some c ->
            Expect.equal (Variable.values c) values $"coordinate {name}"
            Expect.equal (Variable.units c) (Some units) $"units of {name}"
        | None -> failtest $"no coordinate variable '{name}'"

    Expect.equal (Variable.standardName (Dataset.variable "lat" read)) (Some "latitude") "lat's standard_name"
    let tas = Dataset.variable "tas" read
    Expect.equal tas.Dimensions [ "time"; "lat"; "lon" ] "tas's dimensions"

    match tas.Data with
    | Float32 v -> expectSameFloat32 v tasValues "tas (the -9999 fill value read as NaN)"
    | other -> failtest $"tas should be float32, is {other}"

    Expect.equal (Variable.units tas) (Some "K") "tas's units"
    Expect.equal (Variable.standardName tas) (Some "air_temperature") "tas's standard_name"
    Expect.equal (Variable.longName tas) (Some "near-surface air temperature") "tas's long_name"

    Expect.equal
        (tas.Attributes
         |> List.tryFind (fun (n, _) -> n = "_FillValue")
         |> Option.map snd)
        (Some(Float32s [| -9999.0f |]))
        "tas's _FillValue"

    let count = Dataset.variable "count" read
    Expect.equal count.Data (Int32 [| 1; 2; 3 |]) "count (int32)"
    Expect.equal (Variable.longName count) (Some "stations") "count's long_name"

    let attribute name =
        read.Attributes |> List.tryFind (fun (n, _) -> n = name) |> Option.map snd

    Expect.equal (attribute "title") (Some(Text "Hybrid NetCDF test")) "title"
    Expect.equal (attribute "Conventions") (Some(Text "CF-1.8")) "Conventions"
    Expect.equal (attribute "version") (Some(Float64s [| 1.5 |])) "version"

/// A fresh temporary file name with `extension`, deleted when disposed.
type TempFile(extension: string) =
    let path =
        Path.Combine(Path.GetTempPath(), $"hybrid-netcdf-{System.Guid.NewGuid():N}{extension}")

    member _.Path = path

    interface System.IDisposable with
        member _.Dispose() = File.Delete path
