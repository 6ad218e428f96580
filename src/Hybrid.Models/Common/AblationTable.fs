/// The ablation table every case shares (issue #15, item 2): the table's hybrid against the same hybrid trained
/// another way (separate θ/φ learning rates, a λ schedule on the physics residual) and against α-fusion of the
/// physics with a neural branch (a scalar α, a per-point gate), on the same data, seeds and budget; each variant's
/// per-seed test MSEs and its error ratio to the hybrid from log-MSEs paired by seed.
module internal Hybrid.Models.Common.AblationTable

open System
open System.IO
open Hybrid.Training
open Hybrid.Models.Common.ReportFormat
open Hybrid.Models.Common.ModelTable

/// The row of the learning-rate ablation (2 d): the hybrid with its own rates for θ and φ.
[<Literal>]
let SeparateRates = "ablation: separate θ/φ rates"

/// The row of the physics-residual ablation (2 c): the hybrid plus λ times its physics residual, λ on a schedule.
[<Literal>]
let LambdaSchedule = "ablation: λ schedule"

/// The row of α-fusion with one learned scalar α (2 b): ŷ = α·F_θ + (1 − α)·G_φ.
[<Literal>]
let FusedScalar = "ablation: α-fusion, scalar α"

/// The row of α-fusion with a learned per-point gate α(t, F) (2 b).
[<Literal>]
let FusedGate = "ablation: α-fusion, per-point gate"

/// Every ablation row's name, in the table's order.
let names = [ SeparateRates; LambdaSchedule; FusedScalar; FusedGate ]

/// Whether `name` is an ablation row (its name starts with "ablation:").
let isAblation (name: string) = name.StartsWith "ablation:"

/// The error ratio of `variant` to `hybrid` (test MSE per seed, paired by seed over the seeds both have): the 95%
/// Student-t interval of the mean log-MSE difference, back on the ratio scale (`Statistics.errorRatio`); None with
/// fewer than two pairs.
let ratio (variant: ModelRow) (hybrid: ModelRow) : Statistics.Interval option =
    let v, h = seedRuns variant, seedRuns hybrid
    let pairs = min v.Length h.Length

    if pairs < 2 then
        None
    else
        Some(Statistics.errorRatio 0.95 v[.. pairs - 1] h[.. pairs - 1])

let private f2 (v: float) =
    v.ToString("F2", Globalization.CultureInfo.InvariantCulture)

/// The ratio cell of `variant` against `hybrid`: "0.93 [0.71, 1.22]" (95% interval), the plain ratio of the test
/// MSEs with "(one seed)" where no interval can be formed.
let ratioCell (variant: ModelRow) (hybrid: ModelRow) : string =
    match ratio variant hybrid with
    | Some r -> $"{f2 r.Estimate} [{f2 r.Lower}, {f2 r.Upper}]"
    | None -> $"{f2 (variant.TestMse / hybrid.TestMse)} (one seed)"

/// The markdown table: the table's hybrid first (the reference), then each variant with its mean test MSE, the
/// per-seed MSEs (`digits` decimals), the error ratio to the hybrid with its 95% interval (`ratioCell`), its physics
/// residual, epochs, parameters (a fused model's learned α or mean gate among them) and what it is.
let markdown (digits: int) (hybrid: ModelRow) (variants: ModelRow[]) : string list = [
    "| model | test MSE (mean) | per seed | ratio to the hybrid [95% CI] | physics residual | epochs | parameters | what |"
    "|---|---:|---|---|---:|---:|---|---|"
    for i, m in Array.indexed (Array.append [| hybrid |] variants) do
        let fixedPoint (v: float) = v.ToString($"F{digits}")
        let perSeed = seedRuns m |> Array.map fixedPoint |> String.concat ", "

        let ps =
            m.Parameters |> Array.map (fun (n, v) -> $"{n} {v:G4}") |> String.concat ", "

        let ratio = if i = 0 then "1 (reference)" else ratioCell m hybrid

        let residual =
            if Double.IsNaN m.PhysicsResidual then
                "—"
            else
                m.PhysicsResidual.ToString "G3"

        $"| {m.Name} | {fixedPoint m.TestMse} | {perSeed} | {ratio} | {residual} | {m.Epochs} | {ps} | {m.Description} |"
]

/// Writes `<case>-ablation.csv` into `dir`: per row its mean test MSE, seeds, and the error ratio to the hybrid with
/// its 95% interval (empty for the hybrid itself and without an interval).
let writeCsv (dir: string) (case: string) (hybrid: ModelRow) (variants: ModelRow[]) =
    Csv.write (Path.Combine(dir, $"{case}-ablation.csv")) [|
        "model"
        "test_mse"
        "seeds"
        "ratio_to_hybrid"
        "ratio_lower"
        "ratio_upper"
    |] [
        for i, m in Array.indexed (Array.append [| hybrid |] variants) ->
            let r = if i = 0 then None else ratio m hybrid

            let cells =
                match r with
                | Some r -> [| inv r.Estimate; inv r.Lower; inv r.Upper |]
                | None -> [| ""; ""; "" |]

            Array.append [| m.Name; inv m.TestMse; string (seedRuns m).Length |] cells
    ]

/// The case's ablation section as markdown lines (heading, `intro`, the table, one line per mechanism in
/// `notApplicable` (mechanism, why not, one sentence)) and its CSV file; nothing without variants.
let section
    (dir: string)
    (case: string)
    (digits: int)
    (intro: string)
    (hybrid: ModelRow)
    (variants: ModelRow[])
    (notApplicable: (string * string) list)
    : string list =
    if variants.Length = 0 then
        []
    else
        writeCsv dir case hybrid variants

        [
            "### Ablation: the proposal's mechanisms"
            ""
            intro
            + " Ratio: the variant's test MSE over the hybrid's, the ratio of geometric means over the seeds both ran, with its 95% Student-t interval from log-MSE differences paired by seed (below 1: the variant has lower error; an interval across 1 is no evidence either way)."
            ""
            yield! markdown digits hybrid variants
            for mechanism, why in notApplicable do
                ""
                $"- No {mechanism} here: {why}"
        ]
