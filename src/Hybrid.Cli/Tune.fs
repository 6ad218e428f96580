/// `hybrid tune`: the hyper-parameter searches of the cases (issue #15, item 3) as a sweep of model × trial tasks
/// (`Hybrid.Models.Tuning.TuningExperiment`), run on a local process pool or Slurm like `hybrid sweep run`, then
/// each case's best trial per model written to `<out>/<case>.csv` (default `tuning/`), the file the report reads.
/// The sweep's folder (default `<out>/sweep`) keeps every finished trial, so a run stopped midway resumes.
module internal Hybrid.Cli.Tune

open System.IO
open Hybrid
open Hybrid.Models.Tasks
open Hybrid.Models.Tuning

/// Runs the searches of `cases` (all where empty) under the settings `key` with `trials` trials per model on
/// `backend`, in the sweep folder `sweep`, and writes the chosen settings into `out`. Returns 0 when every trial
/// finished and every file was written, 1 otherwise.
let run
    (cases: string list)
    (trials: int)
    (key: string)
    (backend: Arguments.Backend)
    (out: string)
    (sweep: string)
    : int =
    TuningExperiment.checkTrials trials

    let searches =
        match cases with
        | [] -> TuningTasks.searches
        | names -> names |> List.map TuningTasks.find

    let experiments =
        searches |> List.map (fun s -> s, TuningExperiment.experiment s trials)

    let tasks = experiments |> List.collect (fun (_, e) -> e.Tasks key)
    SweepFolder.writePlan sweep tasks

    for s, _ in experiments do
        let models = s.Models key
        eprintfn $"tune: {s.Case}: {models.Length} models × {trials} trials under the \"{key}\" settings"

    let finished, _, _ = SweepStatus.counts (SweepStatus.read sweep)
    eprintfn $"tune: {SweepFolder.planPath sweep}: {tasks.Length} tasks, {finished} done already"

    let code =
        match backend with
        | Arguments.Local workers ->
            let k, t = LocalPool.shape workers None
            LocalPool.run sweep k t true
        | Arguments.Slurm -> Slurm.run sweep true 1 false 16

    let entries = SweepStatus.read sweep

    if code <> 0 || entries |> Array.exists (fun e -> e.State <> SweepStatus.Done) then
        eprintfn
            $"tune: not every trial finished; nothing written. `hybrid sweep status {sweep}` lists them; run `hybrid tune` again to resume."

        1
    else
        Directory.CreateDirectory out |> ignore

        for s, e in experiments do
            let results =
                entries
                |> Array.filter (fun entry -> entry.Task.Experiment = e.Name)
                |> Array.map (fun entry -> SweepFolder.readResult sweep entry.Id)
                |> Array.toList

            printfn "%s" (e.Assemble out key results).Markdown
            eprintfn $"tune: wrote {TuningFile.path out s.Case}"

        0
