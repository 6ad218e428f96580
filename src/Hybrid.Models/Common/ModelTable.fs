/// The table every case shares: one row per model (test and train MSE, training time, parameters), as
/// markdown and as CSV files.
module internal Hybrid.Models.Common.ModelTable

open System
open System.IO
open Hybrid.Training
open Hybrid.Models.Common.ReportFormat

/// One model's row of a case's tables (every case's results project to it).
type ModelRow = {
    /// The model's short name (the table's first column).
    Name: string
    /// What the model is, in one sentence.
    Description: string
    /// Mean squared error on the test data (in the squared units of the case's data; for models run over
    /// several seeds, the mean over seeds).
    TestMse: float
    /// Mean squared error on the training data (same units; NaN where the model has none).
    TrainMse: float
    /// Training wall time (s; for models run over several seeds, the mean per seed).
    TrainSeconds: float
    /// Wall time of the model's test predictions (s; each case says what they are).
    InferenceSeconds: float
    /// Training epochs (Adam iterations; 0 for fixed models).
    Epochs: int
    /// Test MSE per seed for models run over several seeds (`TestMse` is their mean); empty otherwise.
    SeedTestMse: float[]
    /// Norm of the model's physics residual along its predictions (each case defines it; NaN if not computed).
    PhysicsResidual: float
    /// The table's parameters column as (name, value) pairs: fitted or fixed parameters, or a network's weight
    /// count.
    Parameters: (string * float)[]
}

/// The row of a case's model result whose fields carry the shared table's names (predator–prey,
/// pharmacokinetics and energy balance; the twin cases compute their test MSE and build rows themselves).
let inline rowOf (m: ^M) : ModelRow = {
    Name = (^M: (member Name: string) m)
    Description = (^M: (member Description: string) m)
    TestMse = (^M: (member TestMse: float) m)
    TrainMse = (^M: (member TrainMse: float) m)
    TrainSeconds = (^M: (member TrainSeconds: float) m)
    InferenceSeconds = (^M: (member InferenceSeconds: float) m)
    Epochs = (^M: (member Epochs: int) m)
    SeedTestMse = (^M: (member SeedTestMse: float[]) m)
    PhysicsResidual = (^M: (member PhysicsResidual: float) m)
    Parameters = (^M: (member Parameters: (string * float)[]) m)
}

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

/// A row's test MSE per seed: `SeedTestMse`, or its one `TestMse` where it ran once.
let seedRuns (m: ModelRow) =
    if m.SeedTestMse.Length > 0 then
        m.SeedTestMse
    else
        [| m.TestMse |]

/// The generated sentences on the proposal's claim: for each hybrid row (name starting with "hybrid"), its error
/// ratio against the best pure-ML row on `what` with its interval and verdict (`Comparison.claimSentence`), as
/// markdown bullets; none when a case has no pure-ML row.
let claimLines (what: string) (models: ModelRow[]) : string list =
    let baselines =
        models
        |> Array.filter (fun m -> isPureMl m.Name)
        |> Array.map (fun m -> m.Name, seedRuns m)

    if baselines.Length = 0 then
        []
    else
        [
            for h in models |> Array.filter (fun m -> m.Name.StartsWith "hybrid") ->
                "- "
                + Hybrid.Models.Common.Comparison.claimSentence what h.Name (seedRuns h) baselines
        ]

/// The generated sentences on what the physics adds: for each hybrid row (name starting with "hybrid"), its test MSE
/// against the "same network, no physics" control's (`NoPhysics`) on `what`, as the ratio of geometric means with its
/// 95% interval from log-MSE differences paired by seed (`Statistics.errorRatio`; the ratio alone with fewer than two
/// paired seeds); none when the table has no control row.
let noPhysicsLines (what: string) (models: ModelRow[]) : string list =
    match models |> Array.tryFind (fun m -> m.Name = NoPhysics) with
    | None -> []
    | Some control ->
        let f (v: float) =
            v.ToString("F2", Globalization.CultureInfo.InvariantCulture)

        let g (v: float) =
            v.ToString("g3", Globalization.CultureInfo.InvariantCulture)

        [
            for h in models |> Array.filter (fun m -> m.Name.StartsWith "hybrid") ->
                let hybrid, baseline = seedRuns h, seedRuns control
                let pairs = min hybrid.Length baseline.Length

                if pairs < 2 then
                    $"- What the physics adds on the {what}: {h.Name}'s MSE ({g h.TestMse}) is {f (h.TestMse / control.TestMse)}× that of {NoPhysics} ({g control.TestMse}; the same network, seeds and training without the scientific terms), from one seed (no interval)."
                else
                    let r = Statistics.errorRatio 0.95 hybrid[.. pairs - 1] baseline[.. pairs - 1]

                    $"- What the physics adds on the {what}: {h.Name}'s MSE is {f r.Estimate}× that of {NoPhysics} (the same network, seeds and training without the scientific terms; ratio of geometric means over {pairs} seeds, 95%% CI {f r.Lower}–{f r.Upper} from log-MSE differences paired by seed)."
        ]

/// Sample standard deviation of a row's per-seed test MSEs (NaN for fewer than two seeds).
let seedSpread (m: ModelRow) =
    if m.SeedTestMse.Length < 2 then
        nan
    else
        (Hybrid.Models.Common.Comparison.summarise m.SeedTestMse).Spread

/// The generated sentences on seeds: how many seeds the rows with a network were run over (their test MSE is the
/// mean, ± the sample standard deviation), and for each hybrid row in how many of its seeds it beats each row
/// named in `references` (e.g. the fixed-parameter physics), with its per-seed MSEs (`digits` decimals).
let seedLines (digits: int) (references: string list) (models: ModelRow[]) : string list =
    let seeds = models |> Array.map (fun m -> m.SeedTestMse.Length) |> Array.max
    let fixedPoint (v: float) = v.ToString($"F{digits}")

    [
        $"- Every row with a network is the mean test MSE over {seeds} seed(s) (± sample standard deviation where more than one); its curves, parameters and train MSE are its first seed's. The physics fits have no random element."
        if seeds > 1 then
            for h in models |> Array.filter (fun m -> m.Name.StartsWith "hybrid") do
                for reference in references do
                    match models |> Array.tryFind (fun m -> m.Name = reference) with
                    | Some r ->
                        let wins = h.SeedTestMse |> Array.filter (fun v -> v < r.TestMse) |> Array.length
                        let runs = h.SeedTestMse |> Array.map fixedPoint |> String.concat ", "

                        $"- {h.Name} beats {reference} ({fixedPoint r.TestMse}) with {wins} of its {h.SeedTestMse.Length} seeds (per seed: {runs})."
                    | None -> ()
    ]

/// Writes `<case>-metrics.csv` (test and train MSE, training time per model) and `<case>-parameters.csv`
/// (every named parameter of every model) into `dir`.
let writeCsv (dir: string) (case: string) (models: ModelRow[]) =
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
        for m in models ->
            [|
                m.Name
                inv m.TestMse
                inv (seedSpread m)
                string (max 1 m.SeedTestMse.Length)
                inv m.TrainMse
                inv m.PhysicsResidual
                inv m.TrainSeconds
                inv m.InferenceSeconds
                string m.Epochs
            |]
    ]

    Csv.write (Path.Combine(dir, $"{case}-parameters.csv")) [| "model"; "parameter"; "value" |] [
        for m in models do
            for n, v in m.Parameters -> [| m.Name; n; inv v |]
    ]

/// The markdown table of a case's models, errors with `digits` decimals (the physics residual with three
/// significant digits, "—" where not computed); a model run over several seeds shows its test MSE as mean ± sample
/// standard deviation (n seeds) and its training time per seed.
let markdown (digits: int) (models: ModelRow[]) : string list = [
    "| model | test MSE | train MSE | physics residual | training s | epochs | inference s | parameters | what |"
    "|---|---:|---:|---:|---:|---:|---:|---|---|"
    for m in models do
        let ps =
            m.Parameters |> Array.map (fun (n, v) -> $"{n} {v:G4}") |> String.concat ", "

        let fixedPoint (v: float) = v.ToString($"F{digits}")

        let train =
            if Double.IsNaN m.TrainMse then
                "—"
            else
                fixedPoint m.TrainMse

        let test =
            if m.SeedTestMse.Length > 1 then
                $"{fixedPoint m.TestMse} ± {fixedPoint (seedSpread m)} ({m.SeedTestMse.Length} seeds)"
            else
                fixedPoint m.TestMse

        let residual =
            if Double.IsNaN m.PhysicsResidual then
                "—"
            else
                m.PhysicsResidual.ToString "G3"

        $"| {m.Name} | {test} | {train} | {residual} | {m.TrainSeconds:F1} | {m.Epochs} | {m.InferenceSeconds:F3} | {ps} | {m.Description} |"
]
