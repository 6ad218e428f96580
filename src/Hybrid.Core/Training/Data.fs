namespace Hybrid.Training

open System
open System.Globalization
open TorchSharp
open Hybrid

/// What `Data.columnWith` does with a cell that reads as ±∞: `Infinity`, `inf`, `∞` (either sign, any case) or a
/// number beyond double precision (±1.8e308) such as `1e309`.
[<RequireQualifiedAccess>]
type NonFinite =
    /// Refuse it, naming the column, the row and the cell (what every loader does).
    | Refuse
    /// Read it as ±∞.
    | Allow

/// Loading data into the shapes models expect, with errors that name the field, the shapes and the
/// offending positions.
[<RequireQualifiedAccess>]
module Data =

    let private inv = CultureInfo.InvariantCulture

    /// Parses comma-separated text (named `source` in messages) into a table with `Csv.parse`: RFC 4180 quoting,
    /// first line = header, blank lines and comment lines (`#` followed by a space) skipped; `#N/A` is a cell.
    let parseCsv (source: string) (text: string) : CsvTable = Csv.parse source text

    /// Reads a comma-separated file with `Csv.read` (see `parseCsv`); for another delimiter use `Csv.readWith`.
    let readCsv (path: string) : CsvTable = Csv.read path

    let private columnIndex (t: CsvTable) (name: string) =
        match Array.tryFindIndex (fun c -> c = name) t.Columns with
        | Some i -> i
        | None ->
            let names = String.Join(", ", t.Columns)

            raise (HybridException($"CSV '{t.Source}' has no column '{name}'. Columns are: {names}."))

    /// " (line 5)" for row index `r` of a table read from text; empty for a table built without line numbers.
    let private lineOf (t: CsvTable) (r: int) =
        if r < t.Lines.Length then $" (line {t.Lines[r]})" else ""

    let private infinityWord =
        Text.RegularExpressions.Regex(@"^([+-]?)(inf|infinity|∞)$", Text.RegularExpressions.RegexOptions.IgnoreCase)

    /// The cells that mean a missing value (besides NaN in any case).
    let private missing = set [ ""; "NA"; "N/A"; "#N/A" ]

    /// The numbers of one column, read with the invariant culture (a decimal point); empty cells, `NA`, `N/A`, `#N/A`
    /// and `NaN` (any case) become NaN (missing); a ±∞ cell is read as `nonFinite` says; other text raises naming
    /// the column, the row, its line and the cell.
    let columnWith (nonFinite: NonFinite) (t: CsvTable) (name: string) : float[] =
        let i = columnIndex t name

        t.Rows
        |> Array.mapi (fun r row ->
            let s = if isNull row[i] then "" else row[i].Trim()
            let at = $"CSV '{t.Source}', column '{name}', row {r + 1}{lineOf t r}"

            let infinite (v: float) (why: string) =
                match nonFinite with
                | NonFinite.Allow -> v
                | NonFinite.Refuse ->
                    raise (
                        HybridException(
                            $"{at}: '{s}' is not a finite number ({why}). Data may not hold infinite values: fix the cell, leave it empty for a missing value, or read the column with Data.columnWith NonFinite.Allow if ±∞ is meant."
                        )
                    )

            if missing.Contains s || s.Equals("nan", StringComparison.OrdinalIgnoreCase) then
                nan
            else
                match Double.TryParse(s, NumberStyles.Float, inv) with
                | true, v when Double.IsNaN v -> nan
                | true, v when Double.IsInfinity v ->
                    if infinityWord.IsMatch s then
                        infinite v "it reads as ±∞"
                    else
                        infinite v "it overflows double precision, whose largest magnitude is 1.8e308"
                | true, v -> v
                | _ ->
                    let m = infinityWord.Match s

                    if m.Success then
                        infinite (if m.Groups[1].Value = "-" then -infinity else infinity) "it reads as ±∞"
                    else
                        let hint =
                            match Double.TryParse(s.Replace(',', '.'), NumberStyles.Float, inv) with
                            | true, _ when s.Contains ',' ->
                                " Numbers are read with a decimal point and no thousands separators (0.5, 1000)."
                            | _ -> ""

                        raise (
                            HybridException(
                                $"{at}: '{s}' is not a number.{hint} Fix the cell, or leave it empty for a missing value."
                            )
                        ))

    /// The numbers of one column as `columnWith NonFinite.Refuse` reads them: missing cells are NaN, ±∞ is refused.
    let column (t: CsvTable) (name: string) : float[] = columnWith NonFinite.Refuse t name

    /// The text of cell (row `r`, column `name`) for messages: 'NaN', or 'empty'.
    let private cellText (t: CsvTable) (name: string) (r: int) =
        let s = t.Rows[r][columnIndex t name]

        if String.IsNullOrWhiteSpace s then
            "an empty cell"
        else
            $"'{s.Trim()}'"

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

    /// A time series: the `time` column (present, finite and increasing row by row) and the `fields` columns as a
    /// tensor [T; fields] (missing cells are NaN; ±∞ is refused, see `columnWith`).
    let timeSeries (t: CsvTable) (time: string) (fields: string[]) (dtype: torch.ScalarType) : float[] * torch.Tensor =
        Engine.init ()

        if t.Rows.Length = 0 then
            raise (HybridException($"CSV '{t.Source}' has a header but no data rows."))

        let times = column t time

        times
        |> Array.iteri (fun i v ->
            if Double.IsNaN v then
                raise (
                    HybridException(
                        $"CSV '{t.Source}', column '{time}', row {i + 1}{lineOf t i}: the time is missing ({cellText t time i}). Every row of a time series needs its time: fill it in or remove the row."
                    )
                )

            if i > 0 && not (v > times[i - 1]) then
                let what = if v = times[i - 1] then "repeats" else "goes back to"
                let num (v: float) = v.ToString inv

                raise (
                    HybridException(
                        $"CSV '{t.Source}', column '{time}': times must increase, but row {i + 1}{lineOf t i} {what} {num v} after {num times[i - 1]} in row {i}. Sort the file by time, with each time once."
                    )
                ))

        let cols = fields |> Array.map (column t)
        let data = Array2D.init times.Length fields.Length (fun r c -> cols[c][r])
        times, torch.tensor (data, dtype = dtype, device = Engine.torchDevice ())

    /// Gridded data in long format (one row per time and cell: columns `time`, `x`, `value`) as [S; n] on
    /// the n cell centres `centres`, with the S distinct times in increasing order. Rows may come in any order (a
    /// time repeats once per cell); each time and x must be present and finite, each x must match a centre (to 1e-9
    /// relative), every (time, cell) pair may appear at most once, and missing values and pairs are NaN.
    let gridded
        (t: CsvTable)
        (time: string)
        (x: string)
        (value: string)
        (centres: float[])
        (dtype: torch.ScalarType)
        : float[] * torch.Tensor =
        Engine.init ()

        if isNull centres || centres.Length = 0 then
            raise (
                HybridException(
                    $"Data.gridded of CSV '{t.Source}': there are no cell centres to place the values on. Pass the grid's centres, e.g. grid.Axes[0].Centres."
                )
            )

        if t.Rows.Length = 0 then
            raise (HybridException($"CSV '{t.Source}' has a header but no data rows."))

        let ts = column t time
        let xs = column t x
        let vs = column t value

        for r in 0 .. ts.Length - 1 do
            for name, v in [ time, ts[r]; x, xs[r] ] do
                if Double.IsNaN v then
                    raise (
                        HybridException(
                            $"CSV '{t.Source}', column '{name}', row {r + 1}{lineOf t r}: the {name} is missing ({cellText t name r}). Every row of gridded data needs its {time} and {x}: fill it in or remove the row."
                        )
                    )

        let times = ts |> Array.distinct |> Array.sort
        let data = Array2D.create times.Length centres.Length nan
        let seen = Array2D.create times.Length centres.Length false
        let tol = 1e-9 * (centres |> Array.map abs |> Array.fold max 1.0)
        let num (v: float) = v.ToString inv

        for r in 0 .. ts.Length - 1 do
            let i = Array.BinarySearch(times, ts[r])

            let j =
                match centres |> Array.tryFindIndex (fun c -> abs (c - xs[r]) <= tol) with
                | Some j -> j
                | None ->
                    raise (
                        HybridException(
                            $"CSV '{t.Source}', row {r + 1}{lineOf t r}: {x} = {num xs[r]} is not a cell centre of the grid ({centres.Length} cells from {num centres[0]} to {num centres[centres.Length - 1]}). Interpolate with an observation operator instead."
                        )
                    )

            if seen[i, j] then
                raise (
                    HybridException(
                        $"CSV '{t.Source}', row {r + 1}{lineOf t r}: ({time} = {num ts[r]}, {x} = {num xs[r]}) appears twice. Keep one row per time and cell."
                    )
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
