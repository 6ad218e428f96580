/// The claims page (issue #15, item 8): the proposal's four expected outcomes × every case, each cell "holds",
/// "fails" or "inconclusive" with its numbers and interval, or "not tested" with the reason. Each case's section
/// writes its cells to `<case>-claims.csv` next to summary.md (`write`); the report reads every such file back
/// (`readAll`) and puts the table at the top (`markdown`), so an in-process report and a merged sweep build it
/// the same way. One rule per outcome, the same in the quick and the full settings.
module internal Hybrid.Models.Common.Claims

open System
open System.Globalization
open System.IO
open Hybrid
open Hybrid.Training

/// The proposal's expected outcomes, in the table's column order.
let outcomes = [|
    "OOD error −20–40%"
    "50% data efficiency"
    "interpretable θ"
    "calibrated uncertainty"
|]

/// A cell's verdict.
[<RequireQualifiedAccess>]
type Verdict =
    /// The whole interval supports the outcome.
    | Holds
    /// The whole interval contradicts it.
    | Fails
    /// The interval straddles the bar, or there is no interval.
    | Inconclusive
    /// The case does not test this outcome (the cell says why).
    | NotTested

/// One cell of the claims table.
type Cell = {
    /// The case's file-name stem, e.g. "pharmacokinetics".
    Case: string
    /// One of `outcomes`.
    Outcome: string
    /// The verdict.
    Verdict: Verdict
    /// The numbers behind it (estimate, interval, what was compared), or why it is not tested.
    Detail: string
}

let private verdictText (v: Verdict) =
    match v with
    | Verdict.Holds -> "holds"
    | Verdict.Fails -> "fails"
    | Verdict.Inconclusive -> "inconclusive"
    | Verdict.NotTested -> "not tested"

let private verdictOf (case: string) (text: string) =
    match text with
    | "holds" -> Verdict.Holds
    | "fails" -> Verdict.Fails
    | "inconclusive" -> Verdict.Inconclusive
    | "not tested" -> Verdict.NotTested
    | other ->
        raise (
            HybridException
                $"{case}-claims.csv: verdict '{other}' is not one of holds, fails, inconclusive, not tested; regenerate the report."
        )

let private f2 (v: float) =
    v.ToString("F2", CultureInfo.InvariantCulture)

let private f3 (v: float) =
    v.ToString("F3", CultureInfo.InvariantCulture)

let private cell case outcome verdict detail = {
    Case = case
    Outcome = outcome
    Verdict = verdict
    Detail = detail
}

/// The out-of-domain error outcome for `hybrid` (test MSE per seed) against `baselines` (the pure-ML models'
/// test MSE per seed) on the split `split`: `Comparison.claim` (the best baseline by geometric mean, the 95%
/// t-interval of the log-MSE ratio paired by seed; at least 20% lower over the whole interval holds).
let ood (case: string) (split: string) (hybridName: string) (hybrid: float[]) (baselines: (string * float[])[]) =
    let outcome = outcomes[0]

    if baselines.Length = 0 then
        cell case outcome Verdict.NotTested "no pure-ML baseline in this case"
    else
        let c = Comparison.claim hybrid baselines

        match c.Ratio with
        | None ->
            cell case outcome Verdict.Inconclusive $"{hybridName} vs {c.Baseline} on {split}: one seed, no interval"
        | Some r ->
            let verdict =
                match c.Verdict with
                | Statistics.Verdict.Holds -> Verdict.Holds
                | Statistics.Verdict.Fails -> Verdict.Fails
                | Statistics.Verdict.Inconclusive -> Verdict.Inconclusive

            cell
                case
                outcome
                verdict
                $"{hybridName} vs {c.Baseline} on {split}: MSE ratio {f2 r.Estimate} [{f2 r.Lower}, {f2 r.Upper}], {c.Pairs} seeds"

/// The out-of-domain error outcome of every hybrid of a case's table (name starting with "hybrid") against its
/// pure-ML models (`ModelTable.isPureMl`), each by its per-seed test MSE from the table's result rows
/// (`ModelTable.seedRuns`) on `split`: one cell per hybrid (`ood`).
let oodOfRows (case: string) (split: string) (t: ModelTable.Table) : Cell[] =
    let baselines =
        ModelTable.names t
        |> Array.filter ModelTable.isPureMl
        |> Array.map (fun m -> m, ModelTable.seedRuns t m)

    ModelTable.names t
    |> Array.filter (fun m -> m.StartsWith "hybrid")
    |> Array.map (fun h -> ood case split h (ModelTable.seedRuns t h) baselines)

/// The largest ECE (mean |coverage − level| over the levels 10%–90%) that counts as calibrated: 0.05, five
/// percentage points of coverage on average.
[<Literal>]
let CalibratedEce = 0.05

/// The calibration outcome from the uncertainty rows (`CaseUncertainty.MethodResult`), one cell per split other than
/// the validation split (`CaseUncertainty.Validation`, where recalibration is fitted): among the hybrid's rows
/// (model "hybrid") on that split — the recalibrated ones (variance scale ≠ 1) where there are any, else those as
/// trained — the method with the lowest ECE; holds when the upper end of its ECE's bias-corrected (basic) bootstrap interval is at most
/// `CalibratedEce`, fails when the lower end is above it, inconclusive otherwise. The detail also names the best
/// other model on the same split and in the same state (recalibrated or as trained) with its ECE interval. One
/// not-tested cell without hybrid rows (the experiment was off).
let calibrated (case: string) (results: CaseUncertainty.MethodResult[]) : Cell[] =
    let outcome = outcomes[3]

    let scored =
        results |> Array.filter (fun r -> r.Split <> CaseUncertainty.Validation)

    let hybridRows = scored |> Array.filter (fun r -> r.Model = "hybrid")

    if hybridRows.Length = 0 then
        [|
            cell case outcome Verdict.NotTested "no uncertainty experiment of the hybrid in these settings"
        |]
    else
        [|
            for split, rows in hybridRows |> Array.groupBy (fun r -> r.Split) ->
                let recalibrated = rows |> Array.filter (fun r -> r.VarianceScale <> 1.0)
                let scaled = recalibrated.Length > 0
                let pool = if scaled then recalibrated else rows
                let best = pool |> Array.minBy (fun r -> r.Calibration.Ece)
                let e = best.EceInterval

                let verdict =
                    if e.Upper <= CalibratedEce then Verdict.Holds
                    elif e.Lower > CalibratedEce then Verdict.Fails
                    else Verdict.Inconclusive

                let state =
                    if scaled then
                        $" recalibrated (σ × {f2 best.VarianceScale})"
                    else
                        ""

                let others =
                    scored
                    |> Array.filter (fun r ->
                        r.Model <> "hybrid" && r.Split = split && (r.VarianceScale <> 1.0) = scaled)

                let comparison =
                    if others.Length = 0 then
                        ""
                    else
                        let o = others |> Array.minBy (fun r -> r.Calibration.Ece)
                        let oe = o.EceInterval

                        $"; best baseline {o.Model} {o.Method}: ECE {f3 o.Calibration.Ece}, bias-corrected {f3 oe.Estimate} [{f3 oe.Lower}, {f3 oe.Upper}]"

                cell
                    case
                    outcome
                    verdict
                    $"hybrid {best.Method}{state} on {split}: ECE {f3 best.Calibration.Ece}, bias-corrected {f3 e.Estimate} [{f3 e.Lower}, {f3 e.Upper}] against ≤ {f2 CalibratedEce}, {best.Points} values{comparison}"
        |]

/// One fitted parameter for the interpretability outcome: its estimate and standard error (NaN where none was
/// computed), and either the value it was generated with (a twin experiment) or the range of physically
/// plausible values (real data).
type Parameter = {
    /// Name as the model declares it.
    Name: string
    /// Fitted value.
    Estimate: float
    /// Standard error (e.g. `Covariance`'s Gauss–Newton one); NaN when not computed.
    StandardError: float
    /// The true value in a twin experiment.
    Truth: float option
    /// The plausible range on real data (low, high).
    Plausible: (float * float) option
}

/// A parameter estimated in every seed of a twin experiment (each seed its own noise draw): the mean of `values`
/// and its standard error, the sample standard deviation over √n (NaN for one seed).
let overSeeds (name: string) (values: float[]) (truth: float option) (plausible: (float * float) option) : Parameter = {
    Name = name
    Estimate = Array.average values
    StandardError =
        if values.Length < 2 then
            nan
        else
            (Comparison.summarise values).Spread / sqrt (float values.Length)
    Truth = truth
    Plausible = plausible
}

/// How far from its literature value a fitted parameter may lie and still count as physically plausible: a factor
/// of two either way.
[<Literal>]
let PlausibleFactor = 2.0

/// Fitted parameters of a real-data case against their literature values: each `literature` name looked up in
/// `fitted` (a model's parameter list) with its standard error (the entry named with
/// `CaseTraining.StandardErrorSuffix`; NaN without one), plausible within `PlausibleFactor` of the literature value.
/// A name missing from `fitted` raises a `HybridException` naming it and the names there are.
let againstLiterature (case: string) (fitted: (string * float)[]) (literature: (string * float) list) : Parameter[] =
    let find name =
        fitted |> Array.tryFind (fun (n, _) -> n = name) |> Option.map snd

    [|
        for name, value in literature ->
            match find name with
            | None ->
                let known = fitted |> Array.map fst |> String.concat ", "

                raise (
                    HybridException
                        $"Claims.againstLiterature ({case}): no fitted parameter '{name}'; the model has {known}."
                )
            | Some estimate -> {
                Name = name
                Estimate = estimate
                StandardError = find (name + CaseTraining.StandardErrorSuffix) |> Option.defaultValue nan
                Truth = None
                Plausible = Some(value / PlausibleFactor, value * PlausibleFactor)
              }
    |]

/// The interpretability outcome from the hybrid's fitted parameters: every parameter needs a standard error
/// (inconclusive otherwise). In a twin it holds when every estimate lies within 2 standard errors of its truth and
/// fails when one lies further than 3; on real data it holds when every 95% interval (estimate ± 2 SE) lies in its
/// plausible range and fails when one lies wholly outside it; inconclusive in between.
let interpretable (case: string) (parameters: Parameter[]) =
    let outcome = outcomes[2]

    if parameters.Length = 0 then
        cell case outcome Verdict.NotTested "no fitted scientific parameters"
    elif parameters |> Array.exists (fun p -> not (p.StandardError > 0.0)) then
        let names =
            parameters
            |> Array.filter (fun p -> not (p.StandardError > 0.0))
            |> Array.map (fun p -> $"{p.Name} = {p.Estimate:G3}")
            |> String.concat ", "

        cell case outcome Verdict.Inconclusive $"estimates without a standard error: {names}"
    else
        let score (p: Parameter) =
            match p.Truth, p.Plausible with
            | Some truth, _ ->
                let z = abs (p.Estimate - truth) / p.StandardError

                (if z <= 2.0 then 1
                 elif z > 3.0 then -1
                 else 0),
                $"{p.Name} {p.Estimate:G4} ± {p.StandardError:G2} (truth {truth:G4}, {z:F1} SE)"
            | None, Some(lo, hi) ->
                let a, b = p.Estimate - 2.0 * p.StandardError, p.Estimate + 2.0 * p.StandardError

                (if a >= lo && b <= hi then 1
                 elif b < lo || a > hi then -1
                 else 0),
                $"{p.Name} {p.Estimate:G4} ± {p.StandardError:G2} (plausible {lo:G3}–{hi:G3})"
            | None, None ->
                raise (
                    HybridException
                        $"Claims.interpretable ({case}): parameter {p.Name} has neither a truth nor a plausible range; give one."
                )

        let scores = parameters |> Array.map score
        let detail = scores |> Array.map snd |> String.concat "; "

        let verdict =
            if scores |> Array.exists (fun (s, _) -> s < 0) then
                Verdict.Fails
            elif scores |> Array.forall (fun (s, _) -> s > 0) then
                Verdict.Holds
            else
                Verdict.Inconclusive

        cell case outcome verdict detail

/// A cell for an outcome the case does not test, with the reason.
let notTested (case: string) (outcome: string) (why: string) = cell case outcome Verdict.NotTested why

/// A cell with a verdict and detail computed elsewhere (e.g. the data-efficiency experiment's).
let ofVerdict (case: string) (outcome: string) (verdict: Verdict) (detail: string) = cell case outcome verdict detail

let private columns = [| "case"; "outcome"; "verdict"; "detail" |]
let private suffix = "-claims.csv"

/// Writes `cells` to `dir`/`<source>-claims.csv`, one file per report section (`source` is its file-name stem, e.g.
/// the case's, or "data-efficiency" for the experiment that adds a cell to every case); `markdown` shows the
/// outcomes no section wrote as not reported.
let write (dir: string) (source: string) (cells: Cell[]) =
    Csv.write (Path.Combine(dir, source + suffix)) columns [
        for c in cells -> [| c.Case; c.Outcome; verdictText c.Verdict; c.Detail |]
    ]

/// Every cell in the `*-claims.csv` files of `dir`, by file name.
let readAll (dir: string) : Cell[] =
    if not (Directory.Exists dir) then
        [||]
    else
        Directory.GetFiles(dir, "*" + suffix)
        |> Array.sort
        |> Array.collect (fun path ->
            let table = Csv.read path

            if table.Columns <> columns then
                raise (
                    HybridException
                        $"{path}: columns {String.Join(',', table.Columns)}; a claims file has {String.Join(',', columns)}. Regenerate the report."
                )

            table.Rows |> Array.map (fun r -> cell r[0] r[1] (verdictOf r[0] r[2]) r[3]))

/// Removes the claims files of `dir` (a report run starts from none, so a case that no longer reports leaves no
/// stale cells).
let clear (dir: string) =
    if Directory.Exists dir then
        for path in Directory.GetFiles(dir, "*" + suffix) do
            File.Delete path

/// The claims table: one row per case (in alphabetical order), one column per outcome, each cell its
/// verdict in bold and its numbers (several, one per line, where a case reports several hybrids or splits); "not
/// reported" where a case wrote no cell for an outcome. Empty without cells.
let markdown (cells: Cell[]) : string list =
    if cells.Length = 0 then
        []
    else
        let cases = cells |> Array.map (fun c -> c.Case) |> Array.distinct |> Array.sort

        [
            "## The proposal's claims, case by case"
            ""
            "Each cell is the verdict on one expected outcome in one case, with the numbers behind it. OOD error: the hybrid's test MSE against the best pure-ML baseline's, the 95% t-interval of their ratio from log-MSE differences paired by seed; it holds where the whole interval lies at least 20% lower. Data efficiency: the hybrid with half the training data against the best pure-ML model with all of it. Interpretable θ: the hybrid's fitted parameters within 2 standard errors of the truth (twins: the mean over seeds and its standard error), or with 95% intervals (± 2 Gauss–Newton standard errors, conditional on the trained network) within a factor of two of the literature values (real data). Calibrated uncertainty: the hybrid's best method's ECE, bias-corrected, with its 95% basic-bootstrap interval against 0.05 (holds where the whole interval is at most 0.05). The same rules in the quick and the full settings."
            ""
            "| case | " + String.Join(" | ", outcomes) + " |"
            "|---|" + String.replicate outcomes.Length "---|"
            for case in cases do
                let here = cells |> Array.filter (fun c -> c.Case = case)

                let column outcome =
                    match here |> Array.filter (fun c -> c.Outcome = outcome) with
                    | [||] -> "not reported"
                    | found ->
                        found
                        |> Array.map (fun c -> $"**{verdictText c.Verdict}**: {c.Detail.Replace('|', '/')}")
                        |> String.concat "<br>"

                "| " + case + " | " + String.Join(" | ", outcomes |> Array.map column) + " |"
            ""
        ]
