namespace Hybrid.Training

open System
open System.IO
open System.Globalization
open TorchSharp
open Hybrid

/// A CSV file read as text: a header of column names and rows of cells.
type CsvTable = {
    /// Where it came from (for messages).
    Source: string
    /// Column names from the header.
    Columns: string[]
    /// Rows of cells (each as many as there are columns).
    Rows: string[][]
}

/// Loading data into the shapes models expect, with errors that name the field, the shapes and the
/// offending positions.
[<RequireQualifiedAccess>]
module Data =

    let private inv = CultureInfo.InvariantCulture

    let private splitLine (line: string) =
        // Minimal RFC 4180: commas, double quotes around cells, "" inside quotes.
        let cells = ResizeArray<string>()
        let sb = Text.StringBuilder()
        let mutable quoted = false
        let mutable i = 0

        while i < line.Length do
            let c = line[i]

            if quoted then
                if c = '"' && i + 1 < line.Length && line[i + 1] = '"' then
                    sb.Append '"' |> ignore
                    i <- i + 1
                elif c = '"' then
                    quoted <- false
                else
                    sb.Append c |> ignore
            elif c = '"' then
                quoted <- true
            elif c = ',' then
                cells.Add(sb.ToString().Trim())
                sb.Clear() |> ignore
            else
                sb.Append c |> ignore

            i <- i + 1

        cells.Add(sb.ToString().Trim())
        cells.ToArray()

    /// Parses CSV text (first line = header; `#` comment lines and blank lines skipped).
    let parseCsv (source: string) (text: string) : CsvTable =
        let lines =
            text.Split([| "\r\n"; "\n" |], StringSplitOptions.None)
            |> Array.filter (fun l -> not (String.IsNullOrWhiteSpace l) && not (l.TrimStart().StartsWith "#"))

        if lines.Length = 0 then
            raise (HybridException($"CSV '{source}' is empty: it has no header line."))

        let header = splitLine lines[0]

        let rows =
            lines[1..]
            |> Array.mapi (fun i l ->
                let cells = splitLine l

                if cells.Length <> header.Length then
                    raise (
                        HybridException(
                            $"CSV '{source}' row {i + 1} has {cells.Length} cells but the header has {header.Length} columns ({String.Join(';', header)})."
                        )
                    )

                cells)

        {
            Source = source
            Columns = header
            Rows = rows
        }

    /// Reads a CSV file.
    let readCsv (path: string) : CsvTable =
        if not (File.Exists path) then
            raise (HybridException($"CSV file '{path}' does not exist."))

        parseCsv path (File.ReadAllText path)

    let private columnIndex (t: CsvTable) (name: string) =
        match Array.tryFindIndex (fun c -> c = name) t.Columns with
        | Some i -> i
        | None ->
            let names = String.Join(", ", t.Columns)

            raise (HybridException($"CSV '{t.Source}' has no column '{name}'. Columns are: {names}."))

    /// The numbers of one column; empty cells and `NA`/`NaN` become NaN; other text raises naming the row.
    let column (t: CsvTable) (name: string) : float[] =
        let i = columnIndex t name

        t.Rows
        |> Array.mapi (fun r row ->
            let s = row[i]

            if s = "" || s = "NA" || s = "NaN" || s = "nan" then
                nan
            else
                match Double.TryParse(s, NumberStyles.Float, inv) with
                | true, v -> v
                | _ ->
                    raise (
                        HybridException(
                            $"CSV '{t.Source}', column '{name}', row {r + 1}: '{s}' is not a number. Fix the cell or leave it empty for a missing value."
                        )
                    ))

    /// NaN positions of a tensor as index tuples (at most `limit`), e.g. for error messages.
    let nanPositions (limit: int) (values: torch.Tensor) : int64[][] =
        use _ = torch.no_grad ()
        use idx = values.isnan().nonzero ()
        let n = min (int idx.shape[0]) limit
        Array.init n (fun k -> Array.init (int idx.shape[1]) (fun d -> idx[int64 k, int64 d].ToInt64()))

    /// Raises when `values` (named `name`) contains NaN, listing the first positions; use it where missing
    /// values are not allowed (e.g. initial states).
    let requireFinite (name: string) (values: torch.Tensor) : unit =
        let pos = nanPositions 5 values

        if pos.Length > 0 then
            let text =
                pos
                |> Array.map (fun p -> "[" + String.Join(",", p) + "]")
                |> fun a -> String.Join(" ", a)

            use _ = torch.no_grad ()
            let count = values.isnan().sum().ToInt64()

            raise (
                HybridException(
                    $"'{name}' has {count} NaN values, first at {text}. Fill them, or mask them as missing observations (Loss.mse ignores NaN targets)."
                )
            )

    /// Raises unless `values` (named `name`) has exactly the `expected` shape.
    let expectShape (name: string) (expected: int64[]) (values: torch.Tensor) : unit =
        if values.shape <> expected then
            raise (
                HybridException(
                    $"'{name}' has shape [{String.Join(',', values.shape)}] but the model expects [{String.Join(',', expected)}]."
                )
            )

    /// A time series: the `time` column (must increase) and the `fields` columns as a tensor [T; fields]
    /// (missing cells are NaN).
    let timeSeries (t: CsvTable) (time: string) (fields: string[]) (dtype: torch.ScalarType) : float[] * torch.Tensor =
        Engine.init ()

        if t.Rows.Length = 0 then
            raise (HybridException($"CSV '{t.Source}' has a header but no data rows."))

        let times = column t time

        times
        |> Array.iteri (fun i v ->
            if Double.IsNaN v then
                raise (HybridException($"CSV '{t.Source}', column '{time}', row {i + 1}: the time is missing."))

            if i > 0 && not (v > times[i - 1]) then
                raise (
                    HybridException(
                        $"CSV '{t.Source}', column '{time}': times must increase, but row {i + 1} has {v} after {times[i - 1]}. Sort the file."
                    )
                ))

        let cols = fields |> Array.map (column t)
        let data = Array2D.init times.Length fields.Length (fun r c -> cols[c][r])
        times, torch.tensor (data, dtype = dtype, device = Engine.torchDevice ())

    /// Gridded data in long format (one row per time and cell: columns `time`, `x`, `value`) as [S; n] on
    /// the n cell centres `centres`; each x must match a centre (to 1e-9 relative), every (time, cell) pair
    /// at most once, missing pairs are NaN.
    let gridded
        (t: CsvTable)
        (time: string)
        (x: string)
        (value: string)
        (centres: float[])
        (dtype: torch.ScalarType)
        : float[] * torch.Tensor =
        Engine.init ()

        if t.Rows.Length = 0 then
            raise (HybridException($"CSV '{t.Source}' has a header but no data rows."))

        let ts = column t time
        let xs = column t x
        let vs = column t value
        let times = ts |> Array.distinct |> Array.sort
        let data = Array2D.create times.Length centres.Length nan
        let seen = Array2D.create times.Length centres.Length false
        let tol = 1e-9 * (centres |> Array.map abs |> Array.fold max 1.0)

        for r in 0 .. ts.Length - 1 do
            let i = Array.BinarySearch(times, ts[r])

            let j =
                match centres |> Array.tryFindIndex (fun c -> abs (c - xs[r]) <= tol) with
                | Some j -> j
                | None ->
                    raise (
                        HybridException(
                            $"CSV '{t.Source}', row {r + 1}: {x} = {xs[r]} is not a cell centre of the grid ({centres.Length} cells from {centres[0]} to {centres[centres.Length - 1]}). Interpolate with an observation operator instead."
                        )
                    )

            if seen[i, j] then
                raise (
                    HybridException($"CSV '{t.Source}', row {r + 1}: ({time} = {ts[r]}, {x} = {xs[r]}) appears twice.")
                )

            seen[i, j] <- true
            data[i, j] <- vs[r]

        times, torch.tensor (data, dtype = dtype, device = Engine.torchDevice ())

    /// Splits `count` items (e.g. trajectories) at random (seeded) into training and validation index sets,
    /// `validation` being the fraction held out; raises when the training set would be empty.
    let split (count: int) (validation: float) (seed: int) : int[] * int[] =
        if not (validation >= 0.0 && validation < 1.0) then
            raise (HybridException($"Data.split: the validation fraction {validation} must lie in [0, 1)."))

        let nVal = int (round (float count * validation))

        if count - nVal < 1 then
            raise (
                HybridException(
                    $"Data.split: the training set is empty ({count} items, {nVal} held out for validation). Give more data or a smaller validation fraction."
                )
            )

        let rnd = Random(seed)
        let order = Array.init count id |> Array.sortBy (fun _ -> rnd.Next())
        Array.sort order[nVal..], Array.sort order[.. nVal - 1]
