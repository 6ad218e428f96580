/// The ablation table every case shares (issue #15, item 2): the table's hybrid against the same hybrid trained
/// another way (separate θ/φ learning rates, a λ schedule on the physics residual) and against α-fusion of the
/// physics with a neural branch (a scalar α, a per-point gate), on the same data, seeds and budget; each variant's
/// per-seed test MSEs and its error ratio to the hybrid from log-MSEs paired by seed, computed from the section's
/// result rows (`ModelTable.Table`).
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

/// The error ratio of `variant` to `hybrid` (test MSE per seed in `t`, paired by seed over the seeds both have): the
/// 95% Student-t interval of the mean log-MSE difference, back on the ratio scale (`Statistics.errorRatio`); None with
/// fewer than two pairs.
let ratio (t: Table) (variant: string) (hybrid: string) : Statistics.Interval option =
    let v, h = seedRuns t variant, seedRuns t hybrid
    let pairs = min v.Length h.Length

    if pairs < 2 then
        None
    else
        Some(Statistics.errorRatio 0.95 v[.. pairs - 1] h[.. pairs - 1])

let private f2 (v: float) =
    v.ToString("F2", Globalization.CultureInfo.InvariantCulture)

/// The ratio cell of `variant` against `hybrid`: "0.93 [0.71, 1.22]" (95% interval), the plain ratio of the test
/// MSEs with "(one seed)" where no interval can be formed.
let ratioCell (t: Table) (variant: string) (hybrid: string) : string =
    match ratio t variant hybrid with
    | Some r -> $"{f2 r.Estimate} [{f2 r.Lower}, {f2 r.Upper}]"
    | None -> $"{f2 (testMse t variant / testMse t hybrid)} (one seed)"

/// The markdown table of `t`'s models: its first, the hybrid, as the reference, then each variant with its mean test
/// MSE, the per-seed MSEs (`digits` decimals), the error ratio to the hybrid with its 95% interval (`ratioCell`), its
/// physics residual, epochs, parameters (a fused model's learned α or mean gate among them) and what it is.
let markdown (digits: int) (t: Table) : string list = [
    "| model | test MSE (mean) | per seed | ratio to the hybrid [95% CI] | physics residual | epochs | parameters | what |"
    "|---|---:|---|---|---:|---:|---|---|"
    let hybrid = fst t.Models[0]

    for i, (m, description) in Array.indexed t.Models do
        let fixedPoint (v: float) = v.ToString($"F{digits}")
        let perSeed = seedRuns t m |> Array.map fixedPoint |> String.concat ", "
        let ratio = if i = 0 then "1 (reference)" else ratioCell t m hybrid

        $"| {m} | {fixedPoint (testMse t m)} | {perSeed} | {ratio} | {residualCell t m} | {epochs t m} | {parametersCell t m} | {description} |"
]

/// Writes `<case>-ablation.csv` into `dir`: per model of `t` (the hybrid first) its mean test MSE, seeds, and the
/// error ratio to the hybrid with its 95% interval (empty for the hybrid itself and without an interval).
let writeCsv (dir: string) (case: string) (t: Table) =
    let hybrid = fst t.Models[0]

    Csv.write (Path.Combine(dir, $"{case}-ablation.csv")) [|
        "model"
        "test_mse"
        "seeds"
        "ratio_to_hybrid"
        "ratio_lower"
        "ratio_upper"
    |] [
        for i, m in Array.indexed (ModelTable.names t) ->
            let r = if i = 0 then None else ratio t m hybrid

            let cells =
                match r with
                | Some r -> [| inv r.Estimate; inv r.Lower; inv r.Upper |]
                | None -> [| ""; ""; "" |]

            Array.append [| m; inv (testMse t m); string (seedRuns t m).Length |] cells
    ]

/// The case's ablation section as markdown lines (heading, `intro`, the table of `t`: its first model the hybrid, the
/// others the variants; one line per mechanism in `notApplicable` (mechanism, why not, one sentence)) and its CSV
/// file; nothing without variants.
let section
    (dir: string)
    (case: string)
    (digits: int)
    (intro: string)
    (t: Table)
    (notApplicable: (string * string) list)
    : string list =
    if t.Models.Length < 2 then
        []
    else
        writeCsv dir case t

        [
            "### Ablation: the proposal's mechanisms"
            ""
            intro
            + " Ratio: the variant's test MSE over the hybrid's, the ratio of geometric means over the seeds both ran, with its 95% Student-t interval from log-MSE differences paired by seed (below 1: the variant has lower error; an interval across 1 is no evidence either way)."
            ""
            yield! markdown digits t
            for mechanism, why in notApplicable do
                ""
                $"- No {mechanism} here: {why}"
        ]
