/// NetCDF-4 files (HDF5, as netCDF-C, xarray and CDO write them) read through PureHDF: the root group's datasets
/// are the variables, its dimension scales the dimensions, and each variable's DIMENSION_LIST names its
/// dimensions. Groups below the root are not read.
module internal Hybrid.NetCdf.Hdf5

open System
open PureHDF
open PureHDF.VOL.Native

/// The NAME netCDF-C gives a dimension scale that is a dimension only (no coordinate variable).
let private dimensionOnly = "This is a netCDF dimension but not a netCDF variable"

/// Attributes of the HDF5 dimension-scale machinery and netCDF-C's bookkeeping, not the user's.
let private reserved =
    set [
        "CLASS"
        "NAME"
        "DIMENSION_LIST"
        "REFERENCE_LIST"
        "_Netcdf4Dimid"
        "_Netcdf4Coordinates"
        "_NCProperties"
        "_nc3_strict"
        "_SuperblockVersion"
        "_IsNetcdf4"
    ]

let private unsupported (path: string) (what: string) (typeDescription: string) =
    raise (
        NetCdfException(
            $"'{path}': {what} has HDF5 type {typeDescription}, which Hybrid.NetCdf does not read (it reads text, 8/16/32-bit integers, 64-bit integers below 2^53, float and double). Store it as one of those (e.g. xarray: ds[name].astype('float64'))."
        )
    )

let private describe (t: IH5DataType) = $"{t.Class} of {t.Size} bytes"

/// Exact float64 values of 64-bit integers; refuses any beyond 2^53, where float64 would round.
let private exactInt64 (path: string) (what: string) (values: int64[]) =
    values
    |> Array.map (fun v ->
        if abs v > (1L <<< 53) then
            raise (
                NetCdfException(
                    $"'{path}': {what} holds the 64-bit integer {v}, beyond 2^53, which float64 cannot hold exactly. Store it as float64 or int32."
                )
            )

        float v)

/// Numbers of an attribute or dataset of type `t`, read by `read` with the matching element type.
let private numbers
    (path: string)
    (what: string)
    (t: IH5DataType)
    (readFloat64: unit -> float[])
    (readFloat32: unit -> float32[])
    (readInt: unit -> int[])
    (readInt64: unit -> int64[])
    =
    match t.Class, int t.Size with
    | H5DataTypeClass.FloatingPoint, 8 -> Float64(readFloat64 ())
    | H5DataTypeClass.FloatingPoint, 4 -> Float32(readFloat32 ())
    | H5DataTypeClass.FixedPoint, (1 | 2 | 4) -> VariableData.Int32(readInt ())
    | H5DataTypeClass.FixedPoint, 8 -> Float64(exactInt64 path what (readInt64 ()))
    | _ -> unsupported path what (describe t)

let private attributeValue (path: string) (owner: string) (a: IH5Attribute) =
    let what = $"attribute '{a.Name}' of {owner}"

    if a.Type.Class = H5DataTypeClass.String then
        match a.Read<string[]>() with
        | [| s |] -> Text s
        | many -> Text(String.concat "\n" many)
    else
        let readInt () =
            match int a.Type.Size, a.Type.FixedPoint.IsSigned with
            | 1, true -> a.Read<sbyte[]>() |> Array.map int
            | 1, false -> a.Read<byte[]>() |> Array.map int
            | 2, true -> a.Read<int16[]>() |> Array.map int
            | 2, false -> a.Read<uint16[]>() |> Array.map int
            | _, true -> a.Read<int[]>()
            | _ -> unsupported path what (describe a.Type + " (unsigned)")

        match
            numbers path what a.Type (fun () -> a.Read<float[]>()) (fun () -> a.Read<float32[]>()) readInt (fun () ->
                a.Read<int64[]>())
        with
        | Float64 v -> Float64s v
        | Float32 v -> Float32s v
        | Int32 v -> Int32s v

let private isScale (d: IH5Dataset) =
    d.AttributeExists "CLASS"
    && d.Attribute("CLASS").Type.Class = H5DataTypeClass.String
    && d.Attribute("CLASS").Read<string>() = "DIMENSION_SCALE"

let private isDimensionOnly (d: IH5Dataset) =
    d.AttributeExists "NAME"
    && d.Attribute("NAME").Type.Class = H5DataTypeClass.String
    && d.Attribute("NAME").Read<string>().StartsWith dimensionOnly

/// Reads a NetCDF-4 (HDF5) file's root group.
let read (path: string) : Dataset =
    use file = H5File.OpenRead path

    let datasets =
        file.Children()
        |> Seq.choose (fun o ->
            match o with
            | :? IH5Dataset as d -> Some d
            | _ -> None)
        |> List.ofSeq

    let dimensionId (d: IH5Dataset) =
        if d.AttributeExists "_Netcdf4Dimid" then
            d.Attribute("_Netcdf4Dimid").Read<int>()
        else
            Int32.MaxValue

    let dimensions =
        datasets
        |> List.filter isScale
        |> List.sortBy dimensionId
        |> List.map (fun d -> {
            Name = d.Name
            Length = int (d.Space.Dimensions[0])
        })

    let variables =
        datasets
        |> List.filter (fun d -> not (isDimensionOnly d))
        |> List.map (fun d ->
            let what = $"variable '{d.Name}'"

            let dims =
                if isScale d then
                    [ d.Name ]
                elif d.AttributeExists "DIMENSION_LIST" then
                    d.Attribute("DIMENSION_LIST").Read<NativeObjectReference1[][]>()
                    |> Array.map (fun refs -> file.Get(refs[0]).Name)
                    |> List.ofArray
                elif int d.Space.Rank = 0 then
                    []
                else
                    raise (
                        NetCdfException(
                            $"'{path}': {what} has {d.Space.Rank} dimensions but no dimension names (no DIMENSION_LIST): it is plain HDF5, not NetCDF-4. Write the file with netCDF-C, xarray or h5netcdf so that its dimensions are named."
                        )
                    )

            let readInt () =
                match int d.Type.Size, d.Type.FixedPoint.IsSigned with
                | 1, true -> d.Read<sbyte[]>() |> Array.map int
                | 1, false -> d.Read<byte[]>() |> Array.map int
                | 2, true -> d.Read<int16[]>() |> Array.map int
                | 2, false -> d.Read<uint16[]>() |> Array.map int
                | _, true -> d.Read<int[]>()
                | _ -> unsupported path what (describe d.Type + " (unsigned)")

            let data =
                numbers
                    path
                    what
                    d.Type
                    (fun () -> d.Read<float[]>())
                    (fun () -> d.Read<float32[]>())
                    readInt
                    (fun () -> d.Read<int64[]>())

            {
                Name = d.Name
                Dimensions = dims
                Data = data
                Attributes =
                    d.Attributes()
                    |> Seq.filter (fun a -> not (reserved.Contains a.Name))
                    |> Seq.map (fun a -> a.Name, attributeValue path what a)
                    |> List.ofSeq
            })

    {
        Dimensions = dimensions
        Variables = variables
        Attributes =
            file.Attributes()
            |> Seq.filter (fun a -> not (reserved.Contains a.Name))
            |> Seq.map (fun a -> a.Name, attributeValue path "the file (global)" a)
            |> List.ofSeq
    }
