namespace Hybrid.NetCdf

open System
open System.IO

/// Writing NetCDF classic files and reading NetCDF classic and NetCDF-4 files.
[<RequireQualifiedAccess>]
module NetCdf =

    let private refuse (path: string) (message: string) =
        raise (NetCdfException($"Cannot write '{path}': {message}"))

    let private checkName (path: string) (what: string) (name: string) =
        if String.IsNullOrEmpty name || name.Contains '/' || name.Trim() <> name then
            refuse
                path
                $"{what} name '{name}' is not a NetCDF name (it must be non-empty, without '/' and without leading or trailing spaces). Rename it, e.g. 'air_temperature'."

    let private checkForWrite (path: string) (dataset: Dataset) =
        let lengths = Collections.Generic.Dictionary<string, int>()

        for d in dataset.Dimensions do
            checkName path "dimension" d.Name

            if lengths.ContainsKey d.Name then
                refuse path $"dimension '{d.Name}' is declared twice. Keep one."

            if d.Length < 1 then
                refuse
                    path
                    $"dimension '{d.Name}' has length {d.Length}; the classic format writes dimensions of 1 point or more (length 0 means 'unlimited' there). Give it at least one point or drop it."

            lengths[d.Name] <- d.Length

        let seen = Collections.Generic.HashSet<string>()

        for v in dataset.Variables do
            checkName path "variable" v.Name

            if not (seen.Add v.Name) then
                refuse path $"variable '{v.Name}' is declared twice. Keep one or rename one."

            for d in v.Dimensions do
                if not (lengths.ContainsKey d) then
                    let known =
                        dataset.Dimensions |> List.map (fun d -> $"'{d.Name}'") |> String.concat ", "

                    refuse
                        path
                        $"variable '{v.Name}' is over dimension '{d}', which the dataset does not declare (it declares {known}). Add it with Dataset.withDimension \"{d}\" <length>."

            let expected = v.Dimensions |> List.fold (fun n d -> n * int64 lengths[d]) 1L

            if int64 v.Data.Length <> expected then
                let shape =
                    v.Dimensions |> List.map (fun d -> $"{d}={lengths[d]}") |> String.concat " x "

                refuse
                    path
                    $"variable '{v.Name}' has {v.Data.Length} values, but its dimensions ({shape}) hold {expected}. Give it {expected} values in C order (the last dimension varying fastest)."

            for name, _ in v.Attributes do
                checkName path $"attribute of variable '{v.Name}': the attribute" name

        for name, _ in dataset.Attributes do
            checkName path "global attribute" name

    let private fillValue (v: Variable) =
        v.Attributes
        |> List.tryPick (fun (n, a) ->
            match n, a with
            | "_FillValue", Float64s [| f |] -> Some f
            | "_FillValue", Float32s [| f |] -> Some(float f)
            | "_FillValue", Int32s [| f |] -> Some(float f)
            | _ -> None)

    /// NaN → _FillValue for writing (CF: missing values are stored as the fill value).
    let private fillMissing (v: Variable) =
        match fillValue v, v.Data with
        | Some f, Float64 values when not (Double.IsNaN f) -> {
            v with
                Data = Float64(values |> Array.map (fun x -> if Double.IsNaN x then f else x))
          }
        | Some f, Float32 values when not (Double.IsNaN f) -> {
            v with
                Data = Float32(values |> Array.map (fun x -> if Single.IsNaN x then float32 f else x))
          }
        | _ -> v

    /// _FillValue → NaN for reading float variables (integer variables keep their fill value).
    let private missingFromFill (v: Variable) =
        match fillValue v, v.Data with
        | Some f, Float64 values -> {
            v with
                Data = Float64(values |> Array.map (fun x -> if x = f then nan else x))
          }
        | Some f, Float32 values -> {
            v with
                Data = Float32(values |> Array.map (fun x -> if float x = f then nanf else x))
          }
        | _ -> v

    /// `write` with the offset past which CDF-2 is written (tests write CDF-2 without 2 GiB of data).
    let internal writeClassic (offsetLimit: int64) (path: string) (dataset: Dataset) =
        checkForWrite path dataset

        Classic.write offsetLimit path {
            dataset with
                Variables = dataset.Variables |> List.map fillMissing
        }

    /// Writes `dataset` to `path` as a NetCDF classic file (CDF-1, or CDF-2 "64-bit offset" when its data reach
    /// past 2 GiB), which every NetCDF reader (netCDF-C, xarray, CDO, NCO, Panoply) reads. NaN values of a float
    /// variable with a `_FillValue` are written as that fill value. Raises NetCdfException naming the dimension
    /// or variable when a name is not a NetCDF name, a dimension is missing or has no points, or a variable's
    /// number of values does not match its dimensions.
    let write (path: string) (dataset: Dataset) =
        writeClassic Classic.classicOffsetLimit path dataset

    /// Reads a NetCDF file: classic (CDF-1) or 64-bit offset (CDF-2), or NetCDF-4 (HDF5, the root group; xarray's
    /// default). byte and short values are widened to int32, 64-bit integers (below 2^53) to float64. Values of
    /// a float variable equal to its `_FillValue` become NaN. Raises NetCdfException naming the file and the
    /// variable when the file is not NetCDF, is malformed, or holds a type Hybrid.NetCdf does not read.
    let read (path: string) : Dataset =
        if not (File.Exists path) then
            raise (
                NetCdfException(
                    $"Cannot read '{path}': there is no such file. Check the path (relative paths start at {Environment.CurrentDirectory})."
                )
            )

        let magic =
            use stream = File.OpenRead path
            let bytes = Array.zeroCreate<byte> 8
            let n = stream.Read(bytes, 0, 8)
            bytes[.. n - 1]

        let isHdf5 =
            magic = [| 0x89uy; byte 'H'; byte 'D'; byte 'F'; 13uy; 10uy; 26uy; 10uy |]

        let isClassic =
            magic.Length >= 4
            && magic[0] = byte 'C'
            && magic[1] = byte 'D'
            && magic[2] = byte 'F'

        let dataset =
            if isClassic then
                Classic.read path
            elif isHdf5 then
                try
                    Hdf5.read path
                with
                | :? NetCdfException -> reraise ()
                | e ->
                    raise (
                        NetCdfException(
                            $"Cannot read '{path}' as NetCDF-4 (HDF5): {e.Message}. If another tool reads it, convert it with 'nccopy -k classic {path} out.nc' and read that."
                        )
                    )
            else
                raise (
                    NetCdfException(
                        $"Cannot read '{path}': it starts with neither \"CDF\" (NetCDF classic) nor the HDF5 signature (NetCDF-4), so it is not a NetCDF file. Check the path, or convert the file to NetCDF."
                    )
                )

        {
            dataset with
                Variables = dataset.Variables |> List.map missingFromFill
        }
