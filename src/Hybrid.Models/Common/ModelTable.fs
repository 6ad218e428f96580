/// The table every case shares: one line per model (test and train MSE, training time, parameters), as markdown and
/// as CSV files, computed from the section's long-format result rows (`ResultRow`: the rows its tasks return and
/// `<case>-results.csv` holds), grouped by model: the test MSE per seed gives the mean and the seed list.
module internal Hybrid.Models.Common.ModelTable

open System
open System.IO
open Hybrid
open Hybrid.Training
open Hybrid.Models.Common.ReportFormat

/// A table: which models it shows, in which order, and the result rows its numbers come from.
type Table = {
    /// Each model's name and what it is in one sentence (the table's first and last columns), in the table's order.
    Models: (string * string)[]
    /// The rows the numbers come from; the table reads each of its models' "test" "mse" rows (one per seed, in seed
    /// order), "train" "mse", "" "seconds", "" "inference_seconds", "" "epochs", "" "physics_residual" and
    /// "" "param:<name>" rows, and ignores every other row.
    Rows: ResultRow[]
    /// Whether a model's train MSE, inference time, physics residual and parameters are the means over its seeds
    /// (true) or its first seed's (false); its test MSE and training time are always the means over its seeds, its
    /// epochs its first seed's.
    SeedMeans: bool
}

/// The table of `models` (name, description; in the table's order) from `rows`, each model's numbers other than its
/// test MSE and training time its first seed's (`Table.SeedMeans` false).
let table (models: (string * string)[]) (rows: ResultRow[]) : Table = {
    Models = models
    Rows = rows
    SeedMeans = false
}

/// The names of a table's models, in its order.
let names (t: Table) : string[] = t.Models |> Array.map fst

/// The description of model `name` in `t` ("" where the table does not show it).
let description (t: Table) (name: string) : string =
    t.Models
    |> Array.tryFind (fun (n, _) -> n = name)
    |> Option.map snd
    |> Option.defaultValue ""

/// The values of model `name`'s rows with this split and metric, in row order (one per seed).
let private valuesOf (t: Table) (name: string) (split: string) (metric: string) : float[] =
    t.Rows
    |> Array.filter (fun r -> r.Model = name && r.Split = split && r.Metric = metric)
    |> Array.map (fun r -> r.Value)

/// The one value of a metric that `Table.SeedMeans` summarises (first seed's or the mean); NaN without rows where
/// `optional`, else a `HybridException` naming the missing row.
let private summary (optional: bool) (t: Table) (name: string) (split: string) (metric: string) : float =
    match valuesOf t name split metric with
    | [||] when optional -> nan
    | [||] -> ResultRow.value name split metric t.Rows
    | values when t.SeedMeans -> Array.average values
    | values -> values[0]

/// Model `name`'s test MSE per seed (its "test" "mse" rows in row order); a `HybridException` names a model with
/// none.
let seedRuns (t: Table) (name: string) : float[] =
    match valuesOf t name "test" "mse" with
    | [||] -> [| ResultRow.value name "test" "mse" t.Rows |]
    | values -> values

/// Model `name`'s test MSE: the mean over its seeds (`seedRuns`).
let testMse (t: Table) (name: string) : float = Array.average (seedRuns t name)

/// Model `name`'s train MSE (NaN where it has none; see `Table.SeedMeans`).
let trainMse (t: Table) (name: string) : float = summary false t name "train" "mse"

/// Model `name`'s training wall time (s): the mean over its seeds.
let trainSeconds (t: Table) (name: string) : float =
    Array.average (
        match valuesOf t name "" "seconds" with
        | [||] -> [| ResultRow.value name "" "seconds" t.Rows |]
        | values -> values
    )

/// Model `name`'s inference wall time (s; see `Table.SeedMeans`).
let inferenceSeconds (t: Table) (name: string) : float =
    summary false t name "" "inference_seconds"

/// Model `name`'s training epochs (its first seed's).
let epochs (t: Table) (name: string) : int =
    int (ResultRow.value name "" "epochs" t.Rows)

/// Model `name`'s physics residual (NaN where not computed; see `Table.SeedMeans`).
let physicsResidual (t: Table) (name: string) : float =
    summary true t name "" "physics_residual"

/// Model `name`'s parameters as (name, value) pairs in its first seed's order: its first seed's values, or each
/// parameter's mean over the seeds (`Table.SeedMeans`).
let parameters (t: Table) (name: string) : (string * float)[] =
    let bySeed =
        t.Rows
        |> Array.filter (fun r -> r.Model = name && r.Split = "" && r.Metric.StartsWith ResultRow.ParameterPrefix)
        |> Array.groupBy (fun r -> r.Seed)

    match bySeed with
    | [||] -> [||]
    | _ ->
        snd bySeed[0]
        |> Array.map (fun first ->
            let values =
                if t.SeedMeans then
                    bySeed
                    |> Array.map (fun (_, rows) -> (rows |> Array.find (fun r -> r.Metric = first.Metric)).Value)
                    |> Array.average
                else
                    first.Value

            first.Metric.Substring ResultRow.ParameterPrefix.Length, values)

/// The name of every case's "same network, no physics" control (issue #15, item 3): the hybrid's equation with its
/// scientific terms removed, a neural ODE du/dt = N(u, inputs) with the hybrid's network (architecture, inputs,
/// width, seeds), optimiser, rate, epochs and objective, compiled and trained by the same code path.
[<Literal>]
let NoPhysics = "neural ODE (no physics)"

/// Rows of a pure-ML model: the names of the LSTM, transformer and MLP baselines and of the "same network, no
/// physics" control (`NoPhysics`) the hybrids are compared with.
let isPureMl (name: string) =
    name = "LSTM"
    || name = "Transformer"
    || name.StartsWith "MLP"
    || name = NoPhysics

/// The generated sentences on the proposal's claim: for each hybrid of the table (name starting with "hybrid"), its
/// error ratio against the best pure-ML model on `what` with its interval and verdict (`Comparison.claimSentence`),
/// as markdown bullets; none when the table has no pure-ML model.
let claimLines (what: string) (t: Table) : string list =
    let baselines =
        names t |> Array.filter isPureMl |> Array.map (fun m -> m, seedRuns t m)

    if baselines.Length = 0 then
        []
    else
        [
            for h in names t |> Array.filter (fun m -> m.StartsWith "hybrid") ->
                "- "
                + Hybrid.Models.Common.Comparison.claimSentence what h (seedRuns t h) baselines
        ]

/// The generated sentences on what the physics adds: for each hybrid of the table (name starting with "hybrid"), its
/// test MSE against the "same network, no physics" control's (`NoPhysics`) on `what`, as the ratio of geometric means
/// with its 95% interval from log-MSE differences paired by seed (`Statistics.errorRatio`; the ratio alone with fewer
/// than two paired seeds); none when the table has no control.
let noPhysicsLines (what: string) (t: Table) : string list =
    if not (names t |> Array.contains NoPhysics) then
        []
    else
        let f (v: float) =
            v.ToString("F2", Globalization.CultureInfo.InvariantCulture)

        let g (v: float) =
            v.ToString("g3", Globalization.CultureInfo.InvariantCulture)

        let control = testMse t NoPhysics

        [
            for h in names t |> Array.filter (fun m -> m.StartsWith "hybrid") ->
                let hybrid, baseline = seedRuns t h, seedRuns t NoPhysics
                let pairs = min hybrid.Length baseline.Length

                if pairs < 2 then
                    let mse = testMse t h

                    $"- What the physics adds on the {what}: {h}'s MSE ({g mse}) is {f (mse / control)}× that of {NoPhysics} ({g control}; the same network, seeds and training without the scientific terms), from one seed (no interval)."
                else
                    let r = Statistics.errorRatio 0.95 hybrid[.. pairs - 1] baseline[.. pairs - 1]

                    $"- What the physics adds on the {what}: {h}'s MSE is {f r.Estimate}× that of {NoPhysics} (the same network, seeds and training without the scientific terms; ratio of geometric means over {pairs} seeds, 95%% CI {f r.Lower}–{f r.Upper} from log-MSE differences paired by seed)."
        ]

/// Sample standard deviation of model `name`'s per-seed test MSEs (NaN for fewer than two seeds).
let seedSpread (t: Table) (name: string) =
    let runs = seedRuns t name

    if runs.Length < 2 then
        nan
    else
        (Hybrid.Models.Common.Comparison.summarise runs).Spread

/// The generated sentences on seeds: how many seeds the models with a network were run over (their test MSE is the
/// mean, ± the sample standard deviation), and for each hybrid (name starting with "hybrid") in how many of its seeds
/// it beats each model named in `references` (e.g. the fixed-parameter physics), with its per-seed MSEs (`digits`
/// decimals).
let seedLines (digits: int) (references: string list) (t: Table) : string list =
    let seeds = names t |> Array.map (fun m -> (seedRuns t m).Length) |> Array.max
    let fixedPoint (v: float) = v.ToString($"F{digits}")

    [
        $"- Every row with a network is the mean test MSE over {seeds} seed(s) (± sample standard deviation where more than one); its curves, parameters and train MSE are its first seed's. The physics fits have no random element."
        if seeds > 1 then
            for h in names t |> Array.filter (fun m -> m.StartsWith "hybrid") do
                for reference in references do
                    if names t |> Array.contains reference then
                        let r = testMse t reference
                        let runs = seedRuns t h
                        let wins = runs |> Array.filter (fun v -> v < r) |> Array.length
                        let perSeed = runs |> Array.map fixedPoint |> String.concat ", "

                        $"- {h} beats {reference} ({fixedPoint r}) with {wins} of its {runs.Length} seeds (per seed: {perSeed})."
    ]

/// Writes `<case>-metrics.csv` (test and train MSE, training time per model) and `<case>-parameters.csv`
/// (every named parameter of every model) into `dir`.
let writeCsv (dir: string) (case: string) (t: Table) =
    Csv.write (Path.Combine(dir, $"{case}-metrics.csv")) [|
        "model"
        "test_mse"
        "test_mse_sd"
        "seeds"
        "train_mse"
        "physics_residual"
        "train_seconds"
        "inference_seconds"
        "epochs"
    |] [
        for m in names t ->
            [|
                m
                inv (testMse t m)
                inv (seedSpread t m)
                string (seedRuns t m).Length
                inv (trainMse t m)
                inv (physicsResidual t m)
                inv (trainSeconds t m)
                inv (inferenceSeconds t m)
                string (epochs t m)
            |]
    ]

    Csv.write (Path.Combine(dir, $"{case}-parameters.csv")) [| "model"; "parameter"; "value" |] [
        for m in names t do
            for n, v in parameters t m -> [| m; n; inv v |]
    ]

/// The parameters cell of model `name`: "name value" pairs, values with four significant digits.
let parametersCell (t: Table) (name: string) : string =
    parameters t name
    |> Array.map (fun (n, v) -> $"{n} {v:G4}")
    |> String.concat ", "

/// The physics-residual cell of model `name`: three significant digits, "—" where not computed.
let residualCell (t: Table) (name: string) : string =
    let residual = physicsResidual t name

    if Double.IsNaN residual then
        "—"
    else
        residual.ToString "G3"

/// The markdown table of a table's models, errors with `digits` decimals (the physics residual with three
/// significant digits, "—" where not computed); a model run over several seeds shows its test MSE as mean ± sample
/// standard deviation (n seeds) and its training time per seed.
let markdown (digits: int) (t: Table) : string list = [
    "| model | test MSE | train MSE | physics residual | training s | epochs | inference s | parameters | what |"
    "|---|---:|---:|---:|---:|---:|---:|---|---|"
    for m, description in t.Models do
        let fixedPoint (v: float) = v.ToString($"F{digits}")
        let runs = seedRuns t m
        let train = trainMse t m
        let train = if Double.IsNaN train then "—" else fixedPoint train

        let test =
            if runs.Length > 1 then
                $"{fixedPoint (testMse t m)} ± {fixedPoint (seedSpread t m)} ({runs.Length} seeds)"
            else
                fixedPoint (testMse t m)

        $"| {m} | {test} | {train} | {residualCell t m} | {trainSeconds t m:F1} | {epochs t m} | {inferenceSeconds t m:F3} | {parametersCell t m} | {description} |"
]
