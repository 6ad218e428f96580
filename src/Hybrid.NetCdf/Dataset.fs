namespace Hybrid.NetCdf

/// Raised when a NetCDF file cannot be read or a dataset cannot be written; the message names the file, the
/// variable or attribute, what is wrong and the fix.
type NetCdfException
    /// Creates the exception with its message: the file, the variable or attribute, what is wrong, the fix.
    (message: string) =
    inherit System.Exception(message)

/// The value of an attribute: text, or an array of numbers of one type.
type AttributeValue =
    /// Text (NetCDF `char`), e.g. `units = "K"`.
    | Text of string
    /// 64-bit floating-point numbers (NetCDF `double`).
    | Float64s of float[]
    /// 32-bit floating-point numbers (NetCDF `float`).
    | Float32s of float32[]
    /// 32-bit integers (NetCDF `int`; `byte` and `short` attributes are read as these too).
    | Int32s of int[]

/// The values of a variable, flat in C order (the last dimension varies fastest).
type VariableData =
    /// 64-bit floating-point values (NetCDF `double`).
    | Float64 of float[]
    /// 32-bit floating-point values (NetCDF `float`).
    | Float32 of float32[]
    /// 32-bit integers (NetCDF `int`; `byte` and `short` variables are read as these too).
    | Int32 of int[]

    /// The number of values.
    member data.Length =
        match data with
        | Float64 v -> v.Length
        | Float32 v -> v.Length
        | Int32 v -> v.Length

/// A named dimension of a dataset and its length.
type Dimension = {
    /// The dimension's name, e.g. "time" or "lat".
    Name: string
    /// The number of points along it (at least 0).
    Length: int
}

/// A variable: named, over named dimensions, with values and attributes.
type Variable = {
    /// The variable's name; a variable named like its (only) dimension is that dimension's coordinate variable.
    Name: string
    /// The names of its dimensions, slowest-varying first (C order); empty for a scalar.
    Dimensions: string list
    /// Its values, flat in C order; as many as the product of its dimensions' lengths.
    Data: VariableData
    /// Its attributes in file order (CF: `units`, `long_name`, `standard_name`, `_FillValue`, ...).
    Attributes: (string * AttributeValue) list
}

/// A NetCDF dataset: dimensions, variables and global attributes.
type Dataset = {
    /// The dimensions, in file order.
    Dimensions: Dimension list
    /// The variables, in file order.
    Variables: Variable list
    /// The global attributes (CF: `title`, `history`, `Conventions`, ...).
    Attributes: (string * AttributeValue) list
}

/// Building and inspecting datasets with the CF conventions' common attributes.
[<RequireQualifiedAccess>]
module Dataset =

    /// A dataset without dimensions, variables or attributes.
    let empty = {
        Dimensions = []
        Variables = []
        Attributes = []
    }

    /// Adds a dimension of `length` points.
    let withDimension (name: string) (length: int) (dataset: Dataset) = {
        dataset with
            Dimensions = dataset.Dimensions @ [ { Name = name; Length = length } ]
    }

    /// Adds a variable.
    let withVariable (variable: Variable) (dataset: Dataset) = {
        dataset with
            Variables = dataset.Variables @ [ variable ]
    }

    /// Adds (or replaces) a global attribute.
    let withAttribute (name: string) (value: AttributeValue) (dataset: Dataset) = {
        dataset with
            Attributes = (dataset.Attributes |> List.filter (fun (n, _) -> n <> name)) @ [ name, value ]
    }

    /// Adds a dimension `name` and its coordinate variable (a float64 variable named like it) with `values`
    /// and `units` (CF `units`, e.g. "degrees_north").
    let withCoordinate (name: string) (units: string) (values: float[]) (dataset: Dataset) =
        dataset
        |> withDimension name values.Length
        |> withVariable {
            Name = name
            Dimensions = [ name ]
            Data = Float64 values
            Attributes = [ "units", Text units ]
        }

    /// The variable `name`; raises NetCdfException naming the variables there are when there is none.
    let variable (name: string) (dataset: Dataset) =
        match dataset.Variables |> List.tryFind (fun v -> v.Name = name) with
        | Some v -> v
        | None ->
            let names =
                dataset.Variables |> List.map (fun v -> $"'{v.Name}'") |> String.concat ", "

            raise (
                NetCdfException(
                    $"The dataset has no variable '{name}'; it has {names}. Use one of those names (they are case-sensitive)."
                )
            )

    /// The coordinate variable of dimension `dimension` (the variable named like it), if the dataset has one.
    let tryCoordinate (dimension: string) (dataset: Dataset) =
        dataset.Variables
        |> List.tryFind (fun v -> v.Name = dimension && v.Dimensions = [ dimension ])

/// Reading a variable's CF attributes.
[<RequireQualifiedAccess>]
module Variable =

    /// The text attribute `name`, if the variable has one.
    let tryText (name: string) (variable: Variable) =
        variable.Attributes
        |> List.tryPick (fun (n, v) ->
            match v with
            | Text s when n = name -> Some s
            | _ -> None)

    /// The CF `units` attribute, if any.
    let units (variable: Variable) = tryText "units" variable

    /// The CF `long_name` attribute, if any.
    let longName (variable: Variable) = tryText "long_name" variable

    /// The CF `standard_name` attribute, if any.
    let standardName (variable: Variable) = tryText "standard_name" variable

    /// The values as float64 (float32 and int32 values are widened exactly).
    let values (variable: Variable) =
        match variable.Data with
        | Float64 v -> v
        | Float32 v -> Array.map float v
        | Int32 v -> Array.map float v
