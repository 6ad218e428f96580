/// The climate case's truth as CF-1.8 NetCDF files: one file per run (the in-distribution run and the
/// out-of-distribution one), written by `write` from the generated truth and read by `read`, from Hybrid's files or
/// from those of another code, with checks of the grid, the variables and the times against the truth's settings.
///
/// A file holds the dimensions time, y and x with their coordinate variables and the fields omega, q and P over
/// (time, y, x), the order CF and xarray expect (the model's own tensors are [time; 1; x; y]). The model is
/// non-dimensional (domain [0, 2π)², one time unit ≈ one eddy turnover): every variable has units "1" and a
/// long_name that says what it is. q carries the standard name specific_humidity (whose canonical units are "1");
/// ω and P carry none, because the standard names that would fit them (atmosphere_relative_vorticity,
/// precipitation_amount) have dimensional canonical units (s-1, kg m-2) that a non-dimensional field cannot honestly
/// claim. One file per run, not one file with two groups: the runs have different lengths and forcings, classic
/// NetCDF (what Hybrid.NetCdf writes, and every reader opens) has no groups, and `xr.open_dataset(path)` opens each
/// run as it is, with no `group=` argument to know.
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateTruthFile

open System
open System.Globalization
open System.IO
open TorchSharp
open Hybrid
open Hybrid.NetCdf

/// The names of a truth file's dimensions (each with a coordinate variable named like it) and of the variables
/// that hold ω, q and P. `names` are the ones Hybrid writes; a file from another code names its own.
type Names = {
    /// The time dimension and its coordinate ("time"): saves equally spaced by `ClimateTruth.Settings.SaveEvery`.
    Time: string
    /// The zonal dimension and its coordinate ("x"): the model's first spatial axis.
    X: string
    /// The meridional dimension and its coordinate ("y"): the axis along which the saturation q_sat(y) and the
    /// forcing F0 cos 4y vary.
    Y: string
    /// The relative vorticity ω ("omega").
    Omega: string
    /// The specific humidity q ("q").
    Q: string
    /// The accumulated precipitation P ("P"): only its changes in time are used, so the time it accumulates from
    /// does not matter.
    P: string
}

/// The names Hybrid writes: time, y, x; omega, q, P.
let names = {
    Time = "time"
    X = "x"
    Y = "y"
    Omega = "omega"
    Q = "q"
    P = "P"
}

/// Which run of the truth a file holds.
type RunKind =
    /// The in-distribution run (its training, validation and test blocks in time): `Intervals` saved intervals.
    | InDistribution
    /// The out-of-distribution run (the forcing scaled by `OodForcingFactor`): `OodIntervals` saved intervals.
    | OutOfDistribution

let private num (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// The model grid's cell centres (i + ½)·2π/n, i = 0 … n − 1.
let private centres (n: int) =
    Array.init n (fun i -> (float i + 0.5) * 2.0 * Math.PI / float n)

/// ω, q and P, [S; 1; nx; ny] each, as (time, y, x) values in C order, in the tensors' precision (float64 stays
/// float64, anything else is written as float32).
let private fieldData (t: torch.Tensor) : VariableData =
    use _ = torch.NewDisposeScope()
    let yx = t.squeeze(1L).transpose(1L, 2L).contiguous().cpu ()

    if yx.dtype = torch.ScalarType.Float64 then
        Float64(yx.data<float>().ToArray())
    else
        Float32(yx.to_type(torch.ScalarType.Float32).data<float32>().ToArray())

let private runText (s: ClimateTruth.Settings) (kind: RunKind) =
    match kind with
    | OutOfDistribution ->
        $"out-of-distribution run: the forcing F0 times {num s.OodForcingFactor}, branched from the in-distribution run's spun-up state at t = {num s.SpinUp}, adjusted for {num s.OodAdjust} time units, then {s.OodIntervals} saved intervals"
    | InDistribution ->
        $"in-distribution run: spun up from the initial condition for {num s.SpinUp} time units, then {s.Intervals} saved intervals (the case's training, validation and test blocks, in that order)"

let private dataset (s: ClimateTruth.Settings) (kind: RunKind) (run: ClimateTruth.Run) : Dataset =
    let physics =
        match kind with
        | OutOfDistribution -> {
            s.Physics with
                Forcing = s.Physics.Forcing * s.OodForcingFactor
          }
        | InDistribution -> s.Physics

    let n = s.ModelCells
    let fineText = ClimateModel.text physics s.Cells s.Nu []

    let scheme = sprintf "%A" s.Scheme

    let source =
        $"Hybrid (Hybrid.Models.Cases.ClimateTruth): the model below on a fine {s.Cells} x {s.Cells} grid, {scheme} with dt = {num s.Dt} and nu = {num s.Nu} in {s.Dtype}; {runText s kind}; saved every {num s.SaveEvery} time units and coarse-grained by block averages to {n} x {n} cells.\n\n{fineText}"

    let axis (name: string) (axisName: string) (longName: string) values : Variable = {
        Name = name
        Dimensions = [ name ]
        Data = Float64 values
        Attributes = [ "units", Text "1"; "axis", Text axisName; "long_name", Text longName ]
    }

    let field (name: string) (index: int) (attributes: (string * AttributeValue) list) : Variable = {
        Name = name
        Dimensions = [ names.Time; names.Y; names.X ]
        Data = fieldData (run.Fields[index])
        Attributes = attributes @ [ "units", Text "1" ]
    }

    let which =
        match kind with
        | InDistribution -> "in-distribution run"
        | OutOfDistribution -> "out-of-distribution run"

    Dataset.empty
    |> Dataset.withDimension names.Time run.Times.Length
    |> Dataset.withDimension names.Y n
    |> Dataset.withDimension names.X n
    |> Dataset.withVariable (
        axis
            names.Time
            "T"
            "time in the model's non-dimensional time units (one unit is about one eddy turnover)"
            run.Times
    )
    |> Dataset.withVariable (
        axis
            names.Y
            "Y"
            "meridional coordinate, non-dimensional: cell centres of the periodic domain [0, 2π), equator at π"
            (centres n)
    )
    |> Dataset.withVariable (
        axis names.X "X" "zonal coordinate, non-dimensional: cell centres of the periodic domain [0, 2π)" (centres n)
    )
    |> Dataset.withVariable (
        field names.Omega 0 [
            "long_name", Text "relative vorticity ω (non-dimensional), the cell average of the fine grid's"
        ]
    )
    |> Dataset.withVariable (
        field names.Q 1 [
            "standard_name", Text "specific_humidity"
            "long_name", Text "specific humidity q (non-dimensional), the cell average of the fine grid's"
        ]
    )
    |> Dataset.withVariable (
        field names.P 2 [
            "long_name",
            Text
                "precipitation amount accumulated since the start of the spin-up (non-dimensional; the precipitation of an interval is the change of P over it)"
        ]
    )
    |> Dataset.withAttribute "Conventions" (Text "CF-1.8")
    |> Dataset.withAttribute
        "title"
        (Text $"Hybrid climate case: the truth's {which}, coarse-grained to the models' {n} x {n} grid")
    |> Dataset.withAttribute "source" (Text source)
    |> Dataset.withAttribute
        "history"
        (Text
            $"""{DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)} written by Hybrid.Models (ClimateTruthFile.write)""")
    |> Dataset.withAttribute
        "comment"
        (Text
            "A twin experiment's truth: a forced barotropic vorticity equation on a doubly periodic beta-plane with a moisture tracer (issue #16). Non-dimensional, hence units \"1\"; omega and P have no standard_name because the fitting ones have dimensional canonical units.")

/// Writes the truth's two runs (`ClimateTruth.generate` of `s`) as CF-1.8 NetCDF classic files: the
/// in-distribution run to `main`, the out-of-distribution run to `ood`. Each holds the coordinates time (the save
/// times), y and x (the models' cell centres in [0, 2π)), and ω, q and P over (time, y, x) in the truth's precision
/// (float32, or float64 for a float64 truth), with units "1", long names, the standard name specific_humidity on q,
/// and the global attributes Conventions, title, source (the fine grid's model text and the truth's settings),
/// history and comment. `ClimateTruthSource.files main ood` reads them back as a truth.
let write (s: ClimateTruth.Settings) (truth: ClimateTruth.Truth) (main: string) (ood: string) : unit =
    NetCdf.write main (dataset s InDistribution truth.Main)
    NetCdf.write ood (dataset s OutOfDistribution truth.Ood)

let private fail (path: string) (message: string) : 'a =
    raise (HybridException $"Climate truth file '{path}': {message}")

let private listed (items: string seq) =
    items |> Seq.map (fun n -> $"'{n}'") |> String.concat ", "

/// The coordinate variable of dimension `name` (`field` names it in `Names`).
let private coordinate (path: string) (ds: Dataset) (name: string) (field: string) (what: string) =
    match Dataset.tryCoordinate name ds with
    | Some v -> Variable.values v
    | None ->
        fail
            path
            $"there is no coordinate variable '{name}' for {what} (a variable named like its dimension and over it alone); the file's dimensions are {listed (ds.Dimensions |> List.map (fun d -> d.Name))}. Name the file's own in the truth files' Names ({field} = \"<name>\"), or add the coordinate (xarray: ds = ds.assign_coords({name}=values))."

/// Checks a spatial axis: `cells` points, increasing, uniformly spaced.
let private checkAxis (path: string) (name: string) (cells: int) (values: float[]) =
    if values.Length <> cells then
        fail
            path
            $"'{name}' has {values.Length} points, but the models' grid has {cells} cells per side (ClimateTruth.Settings.ModelCells). Coarse-grain the file to {cells} x {cells} (xarray: ds.coarsen({name}=k).mean()), or set ModelCells = {values.Length} (and Regions to a divisor of it)."

    let spacing = (values[cells - 1] - values[0]) / float (cells - 1)

    if not (spacing > 0.0) then
        fail
            path
            $"'{name}' does not increase (from {num (values[0])} to {num (values[cells - 1])}): the models' cells run in increasing order. Sort the file (xarray: ds = ds.sortby(\"{name}\"))."

    for i in 0 .. cells - 1 do
        let expected = values[0] + float i * spacing

        // 1e-4 of a cell: far above float32 round-off of coordinates up to 10⁴ cells, far below a misplaced cell.
        if not (abs (values[i] - expected) <= 1e-4 * spacing) then
            fail
                path
                $"'{name}' is not uniformly spaced: point {i} is at {num (values[i])}, where the spacing {num spacing} from {num (values[0])} puts it at {num expected}. The models' grid is uniform: interpolate the file onto {cells} uniformly spaced points (xarray: ds.interp({name}=...))."

/// Checks the time axis: `intervals` + 1 saves, increasing, equally spaced by `saveEvery`.
let private checkTime (path: string) (name: string) (intervals: int) (setting: string) (saveEvery: float) (t: float[]) =
    if t.Length <> intervals + 1 then
        fail
            path
            $"'{name}' has {t.Length} saves, but the settings ask for {intervals + 1} ({setting} = {intervals} saved intervals). Set {setting} = {t.Length - 1} (and the case's blocks and leads to fit it), or cut the file to {intervals + 1} saves (xarray: ds.isel({name}=slice(0, {intervals + 1})))."

    for i in 1 .. t.Length - 1 do
        if not (t[i] > t[i - 1]) then
            fail
                path
                $"'{name}' does not increase at save {i} ({num (t[i - 1])}, then {num (t[i])}): the case reads saves in time order. Sort the file by time and drop repeated saves (xarray: ds = ds.sortby(\"{name}\"))."

    // 1e-5 of the times' scale: 100 times float32 round-off, far below a missing or shifted save.
    let tolerance = 1e-5 * (Array.max (Array.map abs t) + saveEvery)

    if t.Length > 1 then
        let first = t[1] - t[0]

        for i in 2 .. t.Length - 1 do
            let step = t[i] - t[i - 1]

            if abs (step - first) > tolerance then
                fail
                    path
                    $"'{name}' is unevenly spaced: from save {i - 1} to save {i} ({num (t[i - 1])} to {num (t[i])}) is {num step}, from save 0 to save 1 is {num first}. The case forecasts in equal steps of SaveEvery: resample the file to equal spacing (xarray: ds.interp({name}=...)) or drop the odd saves."

        if abs (first - saveEvery) > tolerance then
            fail
                path
                $"'{name}' is spaced by {num first}, but the settings save every {num saveEvery} (ClimateTruth.Settings.SaveEvery). Set SaveEvery = {num first} (the models' forecasts step by it), or resample the file to every {num saveEvery}."

/// The field `name` (ω, q or P: `field` names it in `Names`), [S; 1; nx; ny] in `dtype`, from a variable over
/// the three dimensions in any order.
let private fieldTensor
    (path: string)
    (ds: Dataset)
    (n: Names)
    (name: string)
    (field: string)
    (what: string)
    (dtype: torch.ScalarType)
    =
    let v =
        match ds.Variables |> List.tryFind (fun v -> v.Name = name) with
        | Some v -> v
        | None ->
            fail
                path
                $"there is no variable '{name}' for {what}; the file's variables are {listed (ds.Variables |> List.map (fun v -> v.Name))}. Name the file's own in the truth files' Names ({field} = \"<name>\"), or rename it in the file (xarray: ds = ds.rename({{\"<name>\": \"{name}\"}}))."

    let wanted = [ n.Time; n.Y; n.X ]

    if List.sort v.Dimensions <> List.sort wanted then
        let over = String.concat ", " v.Dimensions

        fail
            path
            $"variable '{name}' ({what}) is over ({over}); the case reads fields over '{n.Time}', '{n.Y}' and '{n.X}' (in any order). Drop the other dimensions (xarray: ds = ds.squeeze()), or name the file's dimensions in the truth files' Names (Time, Y, X)."

    let length d =
        (ds.Dimensions |> List.find (fun x -> x.Name = d)).Length

    let lengths = v.Dimensions |> List.map length |> Array.ofList
    // Strides of the file's C order, picked out for time, x and y.
    let strides =
        Array.init lengths.Length (fun k -> Array.fold (*) 1 (lengths[k + 1 ..]))

    let stride d =
        strides[List.findIndex ((=) d) v.Dimensions]

    let st, sx, sy = stride n.Time, stride n.X, stride n.Y
    let saves, cells = length n.Time, length n.X
    let values = Variable.values v
    let out = Array.zeroCreate<float> (saves * cells * cells)

    for s in 0 .. saves - 1 do
        for ix in 0 .. cells - 1 do
            for iy in 0 .. cells - 1 do
                out[(s * cells + ix) * cells + iy] <- values[s * st + ix * sx + iy * sy]

    match out |> Array.tryFindIndex (Double.IsFinite >> not) with
    | Some k ->
        let count = out |> Array.filter (Double.IsFinite >> not) |> Array.length

        fail
            path
            $"variable '{name}' ({what}) has {count} missing or non-finite values, the first at {n.Time} index {k / (cells * cells)}, {n.X} index {k / cells % cells}, {n.Y} index {k % cells}. The models start from and are scored against every cell: fill the gaps (xarray: ds[\"{name}\"].interpolate_na(...)) or cut the affected saves."
    | None -> ()

    torch.tensor(out, dtype = dtype, device = Engine.torchDevice ()).reshape (int64 saves, 1L, int64 cells, int64 cells)

/// Reads run `kind` of the truth from the NetCDF file `path` (classic or NetCDF-4, Hybrid's or another code's) with
/// the dimension and variable names `n`, and checks it against the truth settings `s`:
///  - the grid: x and y have `s.ModelCells` points each, increasing and uniformly spaced (to 1e-4 of a cell). The
///    model's domain is [0, 2π)² whatever the file's units: the i-th point of an axis is the model's i-th cell, so
///    an axis in km or degrees, starting at 0 (cell edges) or at half a cell (centres), is rescaled and shifted
///    onto the model's cell centres (i + ½)·2π/n. The file's first y is the model's first cell next to y = 0 (a
///    cold pole; the warm equator is at y = π): the forcing and the saturation depend on y, so a file that starts
///    elsewhere should be rolled to start there;
///  - the time: `s.Intervals` + 1 saves for the in-distribution run, `s.OodIntervals` + 1 for the other,
///    increasing and equally spaced by `s.SaveEvery` (to 1e-5 of the times' scale); the times are kept as they are
///    (the models are autonomous, so their origin does not matter);
///  - the fields: ω, q and P present, over the dimensions time, y and x in any order (float32 or float64, the
///    variables in any order), every value finite.
/// The fields become [S; 1; nx; ny] tensors in `s.Dtype` on Hybrid's device; `FineQMin` is the smallest q of the
/// file (there is no fine grid to look at). Raises HybridException naming the file, the variable and the fix.
let read (n: Names) (s: ClimateTruth.Settings) (kind: RunKind) (path: string) : ClimateTruth.Run =
    let ds =
        try
            NetCdf.read path
        with :? NetCdfException as e ->
            raise (HybridException(e.Message, e))

    let intervals, setting =
        match kind with
        | InDistribution -> s.Intervals, "ClimateTruth.Settings.Intervals"
        | OutOfDistribution -> s.OodIntervals, "ClimateTruth.Settings.OodIntervals"

    let time = coordinate path ds n.Time "Time" "the time"
    let x = coordinate path ds n.X "X" "the zonal axis x"
    let y = coordinate path ds n.Y "Y" "the meridional axis y"
    checkAxis path n.X s.ModelCells x
    checkAxis path n.Y s.ModelCells y
    checkTime path n.Time intervals setting s.SaveEvery time

    use _ = torch.no_grad ()

    let fields = [|
        fieldTensor path ds n n.Omega "Omega" "the vorticity ω" s.Dtype
        fieldTensor path ds n n.Q "Q" "the specific humidity q" s.Dtype
        fieldTensor path ds n n.P "P" "the accumulated precipitation P" s.Dtype
    |]

    {
        Times = time
        Fields = fields
        FineQMin = fields[1].min().ToDouble()
    }
