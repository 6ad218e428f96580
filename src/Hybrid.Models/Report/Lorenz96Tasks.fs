/// The two-scale Lorenz-96 case as tasks: one task per part of the case (`Lorenz96.parts`: the physics, each network
/// model per network seed, the uncertainty experiment), its models carried as result rows (`CasePartTasks`), their
/// per-forcing scores, example forecast and closure curve as series, the truth's scores as rows and series of the
/// physics task, and the section assembled from them by `Lorenz96Report.write`.
module Hybrid.Models.Report.Lorenz96Tasks

open Hybrid.Models.Cases
open Hybrid.Models.Cases.Lorenz96
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The experiment's name in tasks.
[<Literal>]
let Name = "lorenz96"

/// The model name of the truth's rows and series in the physics task's result.
[<Literal>]
let private Truth = "truth"

/// The settings of a key: "quick", "full" (the report's), and "tiny" (two network seeds of a few epochs each on
/// 10 MTU of training data and 5 start states, for tests; seconds, not minutes).
let baseSettings (key: string) : Lorenz96.Settings =
    Experiment.pick key Lorenz96.quick Lorenz96.defaults {
        Lorenz96.quick with
            NetworkSeeds = [ 5; 6 ]
            SpinUp = 2.0
            TrainSpan = 10.0
            Starts = 5
            FreeRun = 5.0
            Epochs = 20
            PosteriorEpochs = 4
            Windows = 8
            MaxHorizon = 3
            SequenceIterations = 5
            TransformerIterations = 5
            Uncertainty = {
                Lorenz96.quick.Uncertainty with
                    Iterations = 3
                    Passes = 4
            }
    }

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/lorenz96.csv`, `TuningFile.load`)
/// for "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : Lorenz96.Settings =
    let s = baseSettings key

    if key = "tiny" then
        s
    else
        {
            s with
                Tuned = Hybrid.Models.Tuning.TuningFile.load Name
        }

/// Skills per forcing as series (kind, values): "forcing", "rmse" (forcing-major, then lead), "closure_mse", "mean",
/// "std", "autocorrelation".
let private skillSeries (skills: Lorenz96.Skill[]) : (string * float[])[] = [|
    "forcing", skills |> Array.map (fun k -> k.Forcing)
    "rmse", skills |> Array.collect (fun k -> k.Rmse)
    "closure_mse", skills |> Array.map (fun k -> k.ClosureMse)
    "mean", skills |> Array.map (fun k -> k.Mean)
    "std", skills |> Array.map (fun k -> k.Std)
    "autocorrelation", skills |> Array.map (fun k -> k.Autocorrelation)
|]

/// The skills back from `skillSeries` (`series kind` gives a kind's values).
let private skillsOf (series: string -> float[]) : Lorenz96.Skill[] =
    let forcings = series "forcing"
    let rmse = series "rmse"

    let leads =
        if forcings.Length = 0 then
            0
        else
            rmse.Length / forcings.Length

    forcings
    |> Array.mapi (fun i f -> {
        Lorenz96.Skill.Forcing = f
        Rmse = Array.sub rmse (i * leads) leads
        ClosureMse = (series "closure_mse")[i]
        Mean = (series "mean")[i]
        Std = (series "std")[i]
        Autocorrelation = (series "autocorrelation")[i]
    })

/// A model's series beyond its shared-table row: its skills, "example" and "closure".
let private modelSeries (m: Lorenz96.ModelResult) : (string * float[])[] =
    Array.append (skillSeries m.Skills) [| "example", m.Example; "closure", m.Closure |]

/// The task result of one part's result: each model's shared-table rows (test MSE: in domain at the longest lead),
/// its series and description (`CasePartTasks`); the truth's rows ("physics_residual", "seconds") and series (its
/// skills, "example", "binned_x", "binned_u"), model "truth", where the part has them; the uncertainty part's methods.
let toResult (task: TaskSpec) (r: Lorenz96.PartResult) : TaskResult =
    let parts =
        CasePartTasks.toResult Name (Lorenz96Report.rowAt 0) modelSeries task {
            Models = r.Models
            Uncertainty = r.Uncertainty
        }

    let result = {
        parts with
            Rows =
                Array.append
                    parts.Rows
                    (CasePartTasks.validationRows
                        Name
                        task.Seed
                        (fun (m: Lorenz96.ModelResult) -> m.Name, m.ValidationMse)
                        r.Models)
    }

    match r.Truth with
    | None -> result
    | Some t ->
        let row metric value = {
            Case = Name
            Model = Truth
            Split = ""
            Metric = metric
            Seed = task.Seed
            Value = value
        }

        {
            result with
                Rows = Array.append result.Rows [| row "physics_residual" t.PhysicsResidual; row "seconds" t.Seconds |]
                Series =
                    Array.append
                        result.Series
                        (Array.append (skillSeries t.Skills) [|
                            "example", t.Example
                            "binned_x", Array.map fst t.Binned
                            "binned_u", Array.map snd t.Binned
                         |]
                         |> Array.map (fun (kind, values) -> $"{kind}:{Truth}", values))
        }

/// The part's result back from its task result.
let ofResult (r: TaskResult) : Lorenz96.Part * Lorenz96.PartResult =
    let part, models =
        CasePartTasks.ofResult
            (fun (row: ModelTable.ModelRow) series -> {
                Lorenz96.ModelResult.Name = row.Name
                Description = row.Description
                TrainMse = row.TrainMse
                TrainSeconds = row.TrainSeconds
                InferenceSeconds = row.InferenceSeconds
                Epochs = row.Epochs
                Parameters = row.Parameters
                Skills = skillsOf series
                SeedRmse = [||]
                ValidationMse = CasePartTasks.validationOf r row.Name
                PhysicsResidual = row.PhysicsResidual
                Example = series "example"
                Closure = series "closure"
            })
            r

    let truth =
        if r.Series |> Array.exists (fun (name, _) -> name = $"forcing:{Truth}") then
            let series kind = TaskResult.series $"{kind}:{Truth}" r
            let value metric = ResultRow.value Truth "" metric r.Rows

            Some {
                Lorenz96.TruthResult.Skills = skillsOf series
                PhysicsResidual = value "physics_residual"
                Seconds = value "seconds"
                Example = series "example"
                Binned = Array.zip (series "binned_x") (series "binned_u")
            }
        else
            None

    part,
    {
        Models = models.Models
        Truth = truth
        Uncertainty = models.Uncertainty
    }

/// The two-scale Lorenz-96 section as tasks; each task says on standard error which part it runs.
let experiment: Experiment = {
    Name = Name
    Title = "two-scale Lorenz-96"
    Tasks =
        fun key ->
            Lorenz96.parts (settings key)
            |> List.map (fun p -> TaskSpec.create Name key p.Model p.Seed)
    Run =
        fun _ t ->
            eprintfn $"report: two-scale Lorenz-96, part {t.Model} (seed {t.Seed}) ..."
            toResult t (Lorenz96.runPart (settings t.Settings) { Model = t.Model; Seed = t.Seed })
    Assemble =
        fun dir key results ->
            Lorenz96Report.write dir (Lorenz96.assemble (settings key) (results |> List.map ofResult))
}
