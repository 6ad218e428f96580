/// Number formatting and generated verdicts shared by the report's writers.
module internal Hybrid.Models.Common.ReportFormat

open System.Globalization

/// A number for CSV and SVG files: six significant digits, invariant culture.
let inv (x: float) =
    x.ToString("G6", CultureInfo.InvariantCulture)

/// "beats" when `value` < `reference` (lower is better), otherwise "does NOT beat".
let verdict (value: float) (reference: float) =
    if value < reference then "beats" else "does NOT beat"

/// The change of `value` against `reference` in per cent with its sign, e.g. "+31%" or "-4.5%"
/// (`decimals` digits after the point; two where none would turn −99.97% into −100%).
let percentChange (decimals: int) (value: float) (reference: float) =
    let change = 100.0 * (value - reference) / reference
    let sign = if change >= 0.0 then "+" else ""

    // Two decimals where none would round a change just short of -100% to "-100%".
    let decimals =
        if decimals = 0 && abs change >= 99.5 && abs change < 100.0 then
            2
        else
            decimals

    let digits =
        if decimals = 0 then
            "0"
        else
            "0." + String.replicate decimals "0"

    sign + change.ToString(digits, CultureInfo.InvariantCulture) + "%"
