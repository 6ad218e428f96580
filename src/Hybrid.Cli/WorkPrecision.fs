/// `hybrid bench-stiff`: work–precision of Hybrid's adaptive schemes against SciPy's `solve_ivp` on the test-set
/// problems (`IvpTestSet`), in one sitting. For each problem and relative tolerance (the absolute tolerances scale
/// with it, `Problem.Scale`), each solver's error at the end time against the published reference
/// (`IvpTestSet.mixedError`) and its median wall time; then, for each Hybrid run, SciPy's best time at the same
/// error (log–log interpolation along each SciPy method's curve) and the ratio. Writes a markdown table with the
/// machine's description, the rows as an RFC 4180 CSV file and a Plotly chart (error against time, log–log).
module internal Hybrid.Cli.WorkPrecision

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Plotly.NET
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training

/// One solver's run at one tolerance.
type Row = {
    Problem: string
    /// "Hybrid Rodas4", "SciPy Radau", …
    Solver: string
    Tolerance: float
    /// `IvpTestSet.mixedError` at the end time (NaN where the run failed).
    Error: float
    /// Median wall time (s).
    Seconds: float
    /// "ok", "timeout" or the failure's message.
    Status: string
}

/// What a run covers.
type Settings = {
    Problems: IvpTestSet.Problem list
    Tolerances: float list
    /// Hybrid's schemes, by name in the rows.
    Schemes: (string * Scheme) list
    /// SciPy's `solve_ivp` methods.
    SciPy: string list
    /// Seconds before a SciPy run is stopped (and reported as "timeout").
    Budget: float
}

/// The full benchmark: the four problems, tolerances 1e-3 … 1e-8, Rodas4 and Auto against RK45, Radau, BDF and
/// LSODA with a 30 s budget.
let defaults = {
    Problems = IvpTestSet.all
    Tolerances = [ 1e-3; 1e-4; 1e-5; 1e-6; 1e-7; 1e-8 ]
    Schemes = [ "Rodas4", Scheme.Rodas4; "Auto", Scheme.Auto ]
    SciPy = [ "RK45"; "Radau"; "BDF"; "LSODA" ]
    Budget = 30.0
}

/// `--quick`: tolerances 1e-3, 1e-5, 1e-7 and a 10 s budget.
let quick = {
    defaults with
        Tolerances = [ 1e-3; 1e-5; 1e-7 ]
        Budget = 10.0
}

/// The rollout options of `p` at relative tolerance `tol` under `scheme` (per-field absolute tolerances).
let options (p: IvpTestSet.Problem) (fields: string[]) (scheme: Scheme) (tol: float) = {
    Rollout.defaults with
        Scheme = scheme
        Dt = p.FirstStep
        SaveTimes = [| p.End |]
        FiniteCheckEvery = 0
        Tolerance = {
            Relative = tol
            Absolute = tol * Array.min p.Scale
        }
        FieldTolerances =
            Array.mapi
                (fun i f ->
                    f,
                    {
                        Relative = tol
                        Absolute = tol * p.Scale[i]
                    })
                fields
            |> Map.ofArray
}

/// The final state of one Hybrid run of `sim` under `o`.
let private final (sim: Simulator) (o: RolloutOptions) =
    use _ = torch.no_grad ()
    use scope = torch.NewDisposeScope()

    (sim.Simulate(sim.Initial 1, o)).Values
    |> Array.map (fun v -> v[-1L].reshape(-1L).ToDouble())

/// Hybrid's run of `p` under `scheme` at `tol`: the median of up to three timed runs (one where it takes over a
/// second), after the first run (which also gives the final state).
let hybridRow (p: IvpTestSet.Problem) (sim: Simulator) (name: string, scheme: Scheme) (tol: float) : Row =
    let fields = sim.Fields
    let o = options p fields scheme tol

    let row error seconds status = {
        Problem = p.Name
        Solver = $"Hybrid {name}"
        Tolerance = tol
        Error = error
        Seconds = seconds
        Status = status
    }

    try
        let watch = Stopwatch.StartNew()
        let y = final sim o
        let first = watch.Elapsed.TotalSeconds
        let times = ResizeArray [ first ]

        while times.Count < 3 && Seq.sum times < 1.0 do
            let w = Stopwatch.StartNew()
            final sim o |> ignore
            times.Add w.Elapsed.TotalSeconds

        let sorted = Seq.sort times |> Array.ofSeq
        row (IvpTestSet.mixedError p y) sorted[sorted.Length / 2] "ok"
    with :? HybridException as e ->
        row nan nan e.Message

/// SciPy's best time at `error` on `p`: over its methods, the time interpolated log–log between the two runs whose
/// errors bracket it (None where no method's curve reaches that error).
let scipyTimeAt (rows: Row list) (error: float) : float option =
    rows
    |> List.groupBy (fun r -> r.Solver)
    |> List.choose (fun (_, curve) ->
        let points =
            curve
            |> List.filter (fun r -> r.Status = "ok" && r.Error > 0.0)
            |> List.map (fun r -> log r.Error, log r.Seconds)
            |> List.sortBy fst
            |> Array.ofList

        let e = log error

        Array.pairwise points
        |> Array.tryPick (fun ((e0, t0), (e1, t1)) ->
            if e0 <= e && e <= e1 then
                let w = if e1 > e0 then (e - e0) / (e1 - e0) else 0.0
                Some(exp (t0 + w * (t1 - t0)))
            else
                None)
        |> Option.orElse (
            points
            |> Array.tryFind (fun (e0, _) -> abs (e0 - e) < 1e-12)
            |> Option.map (snd >> exp)
        ))
    |> function
        | [] -> None
        | times -> Some(List.min times)

/// Runs the benchmark, with a progress line per problem and solver.
let run (s: Settings) (progress: string -> unit) : Row list = [
    for p in s.Problems do
        let sim = Compiler.compile Compiler.defaults (Parse.model p.Text)

        let initial = (sim.Initial 1) |> Array.map (fun v -> v.reshape(-1L).ToDouble())

        for scheme in s.Schemes do
            progress $"{p.Name}: Hybrid {fst scheme}"

            for tol in s.Tolerances do
                yield hybridRow p sim scheme tol

        progress $"""{p.Name}: SciPy {String.Join(", ", s.SciPy)}"""

        for o in SciPyRuns.run p initial s.SciPy s.Tolerances s.Budget do
            yield {
                Problem = p.Name
                Solver = $"SciPy {o.Method}"
                Tolerance = o.Tolerance
                Error =
                    if o.Status = "ok" then
                        IvpTestSet.mixedError p o.Final
                    else
                        nan
                Seconds = o.Seconds
                Status = o.Status
            }
]

/// For each Hybrid row that ran: SciPy's best time at its error over its own time (> 1: Hybrid is faster).
let speedups (rows: Row list) : (Row * float option) list =
    rows
    |> List.filter (fun r -> r.Solver.StartsWith "Hybrid" && r.Status = "ok")
    |> List.map (fun r ->
        let scipy =
            rows
            |> List.filter (fun x -> x.Problem = r.Problem && x.Solver.StartsWith "SciPy")

        r, scipyTimeAt scipy r.Error |> Option.map (fun t -> t / r.Seconds))

let private g (v: float) =
    v.ToString("G3", Globalization.CultureInfo.InvariantCulture)

/// The rows as CSV (problem, solver, tolerance, error, seconds, status).
let csv (rows: Row list) : string =
    Csv.format
        "work-precision"
        [| "problem"; "solver"; "tolerance"; "error"; "seconds"; "status" |]
        (rows
         |> List.map (fun r -> [|
             r.Problem
             r.Solver
             Print.number r.Tolerance
             Print.number r.Error
             Print.number r.Seconds
             r.Status
         |]))

/// The markdown page: per problem a table of error and time per solver and tolerance, then the speed-ups.
let markdown (s: Settings) (rows: Row list) (machine: string) (seconds: float) : string =
    let b = Text.StringBuilder()
    let line (t: string) = b.AppendLine t |> ignore
    line "# Work–precision: Hybrid's adaptive schemes against SciPy's solve_ivp"
    line ""

    line
        $"Made by `hybrid bench-stiff` in {seconds:F0} s on {machine}. Error: the largest mixed error at the end time against the Test Set for IVP Solvers' reference, |y − r| / (|r| + scale) per component (absolute tolerance = tolerance × scale, the same for both). Time: the median of up to three runs. SciPy gets the exact Jacobian (printed from the same model) except RK45; a SciPy run past {s.Budget:F0} s is stopped, and that method is not run at tighter tolerances."

    for p in s.Problems do
        let mine = rows |> List.filter (fun r -> r.Problem = p.Name)
        let solvers = mine |> List.map (fun r -> r.Solver) |> List.distinct
        line ""
        line $"## {p.Name}"
        line ""
        line ("| tolerance | " + String.Join(" | ", solvers) + " |")
        line ("|---|" + String.replicate solvers.Length "---|")

        for tol in s.Tolerances do
            let cell solver =
                match mine |> List.tryFind (fun r -> r.Solver = solver && r.Tolerance = tol) with
                | Some r when r.Status = "ok" -> $"{g r.Error} in {g (r.Seconds * 1000.0)} ms"
                | Some r when r.Status = "timeout" -> $"stopped after {r.Seconds:F0} s"
                | Some r when r.Status.StartsWith "not run" -> "not run (stopped at a looser tolerance)"
                | Some r -> "failed: " + (r.Status.Split('\n')[0]).Replace("|", "/")
                | None -> ""

            line ($"| {g tol} | " + String.Join(" | ", solvers |> List.map cell) + " |")

    line ""
    line "## Accuracy against the tolerance"
    line ""
    line "The largest error / tolerance ratio of each solver over the tolerances it finished (the goal: below 10)."
    line ""
    line "| problem | solver | worst error / tolerance | runs finished |"
    line "|---|---|---|---|"

    for (problem, solver), runs in rows |> List.groupBy (fun r -> r.Problem, r.Solver) do
        let finished = runs |> List.filter (fun r -> r.Status = "ok")

        let worst =
            if finished.IsEmpty then
                "—"
            else
                g (finished |> List.map (fun r -> r.Error / r.Tolerance) |> List.max)

        line $"| {problem} | {solver} | {worst} | {finished.Length} of {runs.Length} |"

    line ""
    line "## Speed-up at equal error"
    line ""

    line
        "SciPy's best method's time at the Hybrid run's error (interpolated log–log along each method's curve) over Hybrid's time: above 1 Hybrid is faster; '—' where no SciPy curve reaches that error."

    line ""
    line "| problem | solver | tolerance | error | speed-up |"
    line "|---|---|---|---|---|"

    for r, ratio in speedups rows do
        let shown = ratio |> Option.map (fun x -> g x + "×") |> Option.defaultValue "—"

        line $"| {r.Problem} | {r.Solver} | {g r.Tolerance} | {g r.Error} | {shown} |"

    b.ToString()

/// Error against time (log–log), one panel per problem, one line per solver.
let chart (rows: Row list) : GenericChart =
    rows
    |> List.groupBy (fun r -> r.Problem)
    |> List.map (fun (problem, mine) ->
        mine
        |> List.filter (fun r -> r.Status = "ok")
        |> List.groupBy (fun r -> r.Solver)
        |> List.map (fun (solver, curve) ->
            let curve = curve |> List.sortBy (fun r -> r.Tolerance)

            Chart.Line(
                x = (curve |> List.map (fun r -> r.Error)),
                y = (curve |> List.map (fun r -> r.Seconds)),
                Name = $"{problem}: {solver}",
                ShowMarkers = true
            ))
        |> Chart.combine
        |> Chart.withXAxisStyle (TitleText = $"{problem}: error", AxisType = StyleParam.AxisType.Log)
        |> Chart.withYAxisStyle (TitleText = "seconds", AxisType = StyleParam.AxisType.Log))
    |> Chart.Grid(2, 2)
    |> Chart.withTitle "Work–precision: Hybrid against SciPy"

/// The 1-minute load average (from /proc/loadavg; "unknown" elsewhere): other work on the machine slows both sides.
let private load () =
    try
        (File.ReadAllText "/proc/loadavg").Split(' ')[0]
    with _ ->
        "unknown"

/// Runs the benchmark and writes `<stem>.md`, `<stem>.csv` and `<stem>.html`; returns 0.
let write (s: Settings) (stem: string) : int =
    Engine.init ()
    let watch = Stopwatch.StartNew()
    let before = load ()
    let rows = run s (fun line -> eprintfn "%s" line)

    let machine =
        $"{Bench.machine ()}; load average {before} at the start, {load ()} at the end"

    match Path.GetDirectoryName(Path.GetFullPath stem) with
    | null -> ()
    | dir -> Directory.CreateDirectory dir |> ignore

    File.WriteAllText(stem + ".csv", csv rows)
    File.WriteAllText(stem + ".md", markdown s rows machine watch.Elapsed.TotalSeconds)
    Hybrid.Charts.Charts.writeHtml (stem + ".html") (chart rows)
    printfn "Wrote %s.md, .csv and .html." stem
    0
