/// The NetCDF classic format (CDF-1) and its 64-bit offset variant (CDF-2), big-endian, as Unidata's "NetCDF
/// Classic and 64-bit Offset File Format" specifies: a header (dimensions, global attributes, variables with
/// their attributes, types, sizes and offsets), then each variable's values. Fixed-size dimensions are written;
/// record (unlimited) variables are read too.
module internal Hybrid.NetCdf.Classic

open System
open System.IO
open System.Text
open System.Buffers.Binary

let private ncDimension = 0x0A
let private ncVariable = 0x0B
let private ncAttribute = 0x0C

let private ncByte = 1
let private ncChar = 2
let private ncShort = 3
let private ncInt = 4
let private ncFloat = 5
let private ncDouble = 6

let private typeName =
    function
    | 1 -> "byte"
    | 2 -> "char"
    | 3 -> "short"
    | 4 -> "int"
    | 5 -> "float"
    | 6 -> "double"
    | 7 -> "ubyte"
    | 8 -> "ushort"
    | 9 -> "uint"
    | 10 -> "int64"
    | 11 -> "uint64"
    | t -> $"unknown type {t}"

let private typeSize =
    function
    | 1
    | 2 -> 1
    | 3 -> 2
    | 4
    | 5 -> 4
    | _ -> 8

let private padded (n: int64) = (n + 3L) &&& ~~~3L

// ---------------------------------------------------------------- writing

type private Writer(stream: Stream) =
    let buffer = Array.zeroCreate<byte> 8

    member _.Int32(v: int) =
        BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(), v)
        stream.Write(buffer, 0, 4)

    member _.Int64(v: int64) =
        BinaryPrimitives.WriteInt64BigEndian(buffer.AsSpan(), v)
        stream.Write(buffer, 0, 8)

    member _.Float64(v: float) =
        BinaryPrimitives.WriteDoubleBigEndian(buffer.AsSpan(), v)
        stream.Write(buffer, 0, 8)

    member _.Float32(v: float32) =
        BinaryPrimitives.WriteSingleBigEndian(buffer.AsSpan(), v)
        stream.Write(buffer, 0, 4)

    /// Bytes, then zeros up to a multiple of 4.
    member _.Padded(bytes: byte[]) =
        stream.Write(bytes, 0, bytes.Length)
        let pad = int (padded (int64 bytes.Length)) - bytes.Length
        stream.Write(Array.zeroCreate pad, 0, pad)

    member w.Name(name: string) =
        let bytes = Encoding.UTF8.GetBytes(name.Normalize NormalizationForm.FormC)
        w.Int32 bytes.Length
        w.Padded bytes

let private attributeSize (name: string, value: AttributeValue) =
    let nameSize =
        4L
        + padded (int64 (Encoding.UTF8.GetByteCount(name.Normalize NormalizationForm.FormC)))

    let valuesSize =
        match value with
        | Text s -> padded (int64 (Encoding.UTF8.GetByteCount s))
        | Float64s v -> 8L * int64 v.Length
        | Float32s v -> 4L * int64 v.Length
        | Int32s v -> 4L * int64 v.Length

    nameSize + 8L + valuesSize

let private listSize (items: 'a list) (size: 'a -> int64) =
    if items.IsEmpty then 8L else 8L + List.sumBy size items

let private attributesSize (attributes: (string * AttributeValue) list) = listSize attributes attributeSize

let private nameSize (name: string) =
    4L
    + padded (int64 (Encoding.UTF8.GetByteCount(name.Normalize NormalizationForm.FormC)))

let private headerSize (offsetSize: int64) (dataset: Dataset) =
    4L
    + 4L
    + listSize dataset.Dimensions (fun d -> nameSize d.Name + 4L)
    + attributesSize dataset.Attributes
    + listSize dataset.Variables (fun v ->
        nameSize v.Name
        + 4L
        + 4L * int64 v.Dimensions.Length
        + attributesSize v.Attributes
        + 4L
        + 4L
        + offsetSize)

let private dataBytes (data: VariableData) =
    match data with
    | Float64 v -> 8L * int64 v.Length
    | Float32 v -> 4L * int64 v.Length
    | Int32 v -> 4L * int64 v.Length

let private writeAttributes (w: Writer) (attributes: (string * AttributeValue) list) =
    if attributes.IsEmpty then
        w.Int32 0
        w.Int32 0
    else
        w.Int32 ncAttribute
        w.Int32 attributes.Length

        for name, value in attributes do
            w.Name name

            match value with
            | Text s ->
                let bytes = Encoding.UTF8.GetBytes s
                w.Int32 ncChar
                w.Int32 bytes.Length
                w.Padded bytes
            | Float64s v ->
                w.Int32 ncDouble
                w.Int32 v.Length
                Array.iter w.Float64 v
            | Float32s v ->
                w.Int32 ncFloat
                w.Int32 v.Length
                Array.iter w.Float32 v
            | Int32s v ->
                w.Int32 ncInt
                w.Int32 v.Length
                Array.iter w.Int32 v

/// The largest offset CDF-1 can hold; a dataset whose data starts beyond it is written as CDF-2.
let classicOffsetLimit = int64 Int32.MaxValue

/// Writes a checked dataset as CDF-1, or as CDF-2 where a variable's data start beyond `offsetLimit`
/// (classicOffsetLimit; tests pass a smaller one to write CDF-2 without 2 GiB of data).
let write (offsetLimit: int64) (path: string) (dataset: Dataset) =
    let offsets (offsetSize: int64) =
        let start = headerSize offsetSize dataset

        dataset.Variables
        |> List.scan (fun offset v -> offset + padded (dataBytes v.Data)) start
        |> List.take dataset.Variables.Length

    let classic = offsets 4L

    let version, offsetSize, begins =
        if classic |> List.forall (fun b -> b <= offsetLimit) then
            1uy, 4L, classic
        else
            2uy, 8L, offsets 8L

    let dimensionIndex =
        dataset.Dimensions |> List.mapi (fun i d -> d.Name, i) |> Map.ofList

    use file =
        new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 <<< 16)

    let w = Writer(file)
    file.Write([| byte 'C'; byte 'D'; byte 'F'; version |], 0, 4)
    w.Int32 0

    if dataset.Dimensions.IsEmpty then
        w.Int32 0
        w.Int32 0
    else
        w.Int32 ncDimension
        w.Int32 dataset.Dimensions.Length

        for d in dataset.Dimensions do
            w.Name d.Name
            w.Int32 d.Length

    writeAttributes w dataset.Attributes

    if dataset.Variables.IsEmpty then
        w.Int32 0
        w.Int32 0
    else
        w.Int32 ncVariable
        w.Int32 dataset.Variables.Length

        for v, b in List.zip dataset.Variables begins do
            w.Name v.Name
            w.Int32 v.Dimensions.Length

            for d in v.Dimensions do
                w.Int32 dimensionIndex[d]

            writeAttributes w v.Attributes

            let ncType =
                match v.Data with
                | Float64 _ -> ncDouble
                | Float32 _ -> ncFloat
                | Int32 _ -> ncInt

            w.Int32 ncType
            let vsize = padded (dataBytes v.Data)
            // The spec's escape for a last variable over 4 GiB: its vsize is 2^32 - 1 and readers compute it.
            w.Int32(if vsize > 0xFFFFFFFCL then -1 else int (uint32 vsize))

            if offsetSize = 4L then w.Int32(int b) else w.Int64 b

    for v in dataset.Variables do
        match v.Data with
        | Float64 values -> Array.iter w.Float64 values
        | Float32 values -> Array.iter w.Float32 values
        | Int32 values -> Array.iter w.Int32 values

// ---------------------------------------------------------------- reading

type private Reader(path: string, stream: Stream) =
    member _.Path = path

    member r.Fail(what: string) =
        raise (
            NetCdfException(
                $"'{path}' is not a valid NetCDF classic file: {what} (at byte {stream.Position}). The file may be truncated or not NetCDF; check it with 'ncdump -h'."
            )
        )

    member r.Bytes(n: int) =
        let bytes = Array.zeroCreate<byte> n
        let mutable read = 0

        while read < n do
            let k = stream.Read(bytes, read, n - read)

            if k = 0 then
                r.Fail $"the file ends where {n} more bytes were expected"

            read <- read + k

        bytes

    member r.Int32() =
        BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(r.Bytes 4))

    member r.Int64() =
        BinaryPrimitives.ReadInt64BigEndian(ReadOnlySpan(r.Bytes 8))

    member r.Count(what: string) =
        let n = r.Int32()

        if n < 0 then
            r.Fail $"the number of {what} is negative ({n})"

        n

    member r.Name() =
        let n = r.Count "bytes in a name"
        let bytes = r.Bytes(int (padded (int64 n)))
        Encoding.UTF8.GetString(bytes, 0, n)

    member _.Seek(offset: int64) =
        stream.Seek(offset, SeekOrigin.Begin) |> ignore

/// Values of `count` elements of NetCDF type `ncType` from big-endian `bytes`.
let private decode (ncType: int) (count: int) (bytes: byte[]) (at: int) : VariableData =
    match ncType with
    | 1 -> VariableData.Int32(Array.init count (fun i -> int (sbyte bytes[at + i])))
    | 3 ->
        VariableData.Int32(
            Array.init count (fun i -> int (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan(bytes, at + i * 2, 2))))
        )
    | 4 ->
        VariableData.Int32(
            Array.init count (fun i -> BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(bytes, at + i * 4, 4)))
        )
    | 5 -> Float32(Array.init count (fun i -> BinaryPrimitives.ReadSingleBigEndian(ReadOnlySpan(bytes, at + i * 4, 4))))
    | _ -> Float64(Array.init count (fun i -> BinaryPrimitives.ReadDoubleBigEndian(ReadOnlySpan(bytes, at + i * 8, 8))))

let private readAttributes (r: Reader) (owner: string) =
    let tag = r.Int32()
    let n = r.Count "attributes"

    if tag = 0 && n = 0 then
        []
    elif tag <> ncAttribute then
        r.Fail $"the attribute list of {owner} starts with tag {tag}, expected {ncAttribute} (NC_ATTRIBUTE) or 0"
    else
        List.init n (fun _ ->
            let name = r.Name()
            let ncType = r.Int32()
            let count = r.Count $"values of attribute '{name}'"

            if ncType < 1 || ncType > 6 then
                raise (
                    NetCdfException(
                        $"'{r.Path}': attribute '{name}' of {owner} has type {typeName ncType}, which Hybrid.NetCdf does not read (it reads char, byte, short, int, float and double). Convert the file with 'nccopy -k classic' or drop the attribute."
                    )
                )

            let bytes = r.Bytes(int (padded (int64 count * int64 (typeSize ncType))))

            let value =
                if ncType = ncChar then
                    Text(Encoding.UTF8.GetString(bytes, 0, count).TrimEnd '\000')
                else
                    match decode ncType count bytes 0 with
                    | Float64 v -> Float64s v
                    | Float32 v -> Float32s v
                    | Int32 v -> Int32s v

            name, value)

type private Header = {
    Version: byte
    Records: int
    Dimensions: (string * int) list
    Attributes: (string * AttributeValue) list
    Variables: (string * int list * (string * AttributeValue) list * int * int64 * int64) list
}

/// Reads a CDF-1 or CDF-2 file (the caller has checked the first three bytes are "CDF").
let read (path: string) : Dataset =
    use file =
        new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 <<< 16)

    let r = Reader(path, file)
    let magic = r.Bytes 4
    let version = magic[3]

    if version = 5uy then
        raise (
            NetCdfException(
                $"'{path}' is a CDF-5 (64-bit data) NetCDF file, which Hybrid.NetCdf does not read. Convert it with 'nccopy -k nc4 {path} out.nc' (NetCDF-4) or 'nccopy -k 64-bit-offset'."
            )
        )

    if version <> 1uy && version <> 2uy then
        r.Fail $"the version byte is {version}, expected 1 (classic) or 2 (64-bit offset)"

    let records = r.Int32()

    if records = -1 then
        raise (
            NetCdfException(
                $"'{path}' is a NetCDF file still being written (its record count says 'streaming'). Read it after the writer has closed it."
            )
        )

    let dimensions =
        let tag = r.Int32()
        let n = r.Count "dimensions"

        if tag = 0 && n = 0 then
            []
        elif tag <> ncDimension then
            r.Fail $"the dimension list starts with tag {tag}, expected {ncDimension} (NC_DIMENSION) or 0"
        else
            List.init n (fun _ ->
                let name = r.Name()
                name, r.Count $"points of dimension '{name}'")

    let attributes = readAttributes r "the file (global)"

    let variables =
        let tag = r.Int32()
        let n = r.Count "variables"

        if tag = 0 && n = 0 then
            []
        elif tag <> ncVariable then
            r.Fail $"the variable list starts with tag {tag}, expected {ncVariable} (NC_VARIABLE) or 0"
        else
            List.init n (fun _ ->
                let name = r.Name()
                let rank = r.Count $"dimensions of variable '{name}'"

                let dims =
                    List.init rank (fun _ ->
                        let id = r.Int32()

                        if id < 0 || id >= dimensions.Length then
                            r.Fail
                                $"variable '{name}' names dimension id {id}, but the file has {dimensions.Length} dimensions"

                        id)

                let attributes = readAttributes r $"variable '{name}'"
                let ncType = r.Int32()
                let vsize = int64 (uint32 (r.Int32()))
                let start = if version = 1uy then int64 (r.Int32()) else r.Int64()
                name, dims, attributes, ncType, vsize, start)

    let header = {
        Version = version
        Records = records
        Dimensions = dimensions
        Attributes = attributes
        Variables = variables
    }

    let isRecord (dims: int list) =
        match dims with
        | d :: _ -> snd header.Dimensions[d] = 0
        | [] -> false

    let length (d: int) =
        let n = snd header.Dimensions[d]
        if n = 0 then header.Records else n

    let recordVariables =
        header.Variables |> List.filter (fun (_, dims, _, _, _, _) -> isRecord dims)

    let recordSize =
        match recordVariables with
        | [ (_, dims, _, t, _, _) ] ->
            int64 (typeSize t)
            * (dims.Tail |> List.fold (fun a d -> a * int64 (length d)) 1L)
        | many ->
            many
            |> List.sumBy (fun (_, dims, _, t, _, _) ->
                padded (
                    int64 (typeSize t)
                    * (dims.Tail |> List.fold (fun a d -> a * int64 (length d)) 1L)
                ))

    let variables =
        header.Variables
        |> List.map (fun (name, dims, attributes, ncType, _, start) ->
            if ncType = ncChar then
                raise (
                    NetCdfException(
                        $"'{path}': variable '{name}' holds text (NetCDF char), which Hybrid.NetCdf does not read (it reads byte, short, int, float and double variables). Drop the variable or store its values as numbers."
                    )
                )

            if ncType < 1 || ncType > 6 then
                raise (
                    NetCdfException(
                        $"'{path}': variable '{name}' has type {typeName ncType}, which Hybrid.NetCdf does not read (it reads byte, short, int, float and double). Convert it, e.g. with 'nccopy -k classic'."
                    )
                )

            let size = typeSize ncType

            let data =
                if isRecord dims then
                    let perRecord = dims.Tail |> List.fold (fun a d -> a * length d) 1
                    let bytes = Array.zeroCreate<byte> (perRecord * size * header.Records)

                    for k in 0 .. header.Records - 1 do
                        r.Seek(start + int64 k * recordSize)
                        Array.blit (r.Bytes(perRecord * size)) 0 bytes (k * perRecord * size) (perRecord * size)

                    decode ncType (perRecord * header.Records) bytes 0
                else
                    let count = dims |> List.fold (fun a d -> a * int64 (length d)) 1L

                    if count * int64 size > int64 Int32.MaxValue then
                        raise (
                            NetCdfException(
                                $"'{path}': variable '{name}' has {count} values, more than one .NET array holds. Read a smaller file (e.g. cut it with 'ncks -d')."
                            )
                        )

                    r.Seek start
                    decode ncType (int count) (r.Bytes(int count * size)) 0

            {
                Name = name
                Dimensions = dims |> List.map (fun d -> fst header.Dimensions[d])
                Data = data
                Attributes = attributes
            })

    {
        Dimensions =
            header.Dimensions
            |> List.mapi (fun i (name, _) -> { Name = name; Length = length i })
        Variables = variables
        Attributes = header.Attributes
    }
