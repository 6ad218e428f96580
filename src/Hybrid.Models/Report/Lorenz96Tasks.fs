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

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/lorenz96.csv`, `TuningFile.forKey`)
/// for "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : Lorenz96.Settings = {
    baseSettings key with
        Tuned = Hybrid.Models.Tuning.TuningFile.forKey key Name
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

/// The task result of one part's result: its rows as they are (each model's shared-table rows, test MSE: in domain
/// at the longest lead; the truth's "physics_residual" and "seconds", model "truth", where the part has them), each
/// model's series and description (`CasePartTasks`); the truth's series (its skills, "example", "binned_x",
/// "binned_u") where the part has them; the uncertainty part's calibration curves.
let toResult (task: TaskSpec) (r: Lorenz96.PartResult) : TaskResult =
    let result =
        CasePartTasks.toResult (fun (m: Lorenz96.ModelResult) -> m.Name) (fun m -> m.Description) modelSeries task {
            Models = r.Models
            Rows = r.Rows
            Uncertainty = r.Uncertainty
        }

    match r.Truth with
    | None -> result
    | Some t -> {
        result with
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
            (fun name description rows series ->
                let value split metric = ResultRow.value name split metric rows

                {
                    Lorenz96.ModelResult.Name = name
                    Description = description
                    TrainMse = value "train" "mse"
                    TrainSeconds = value "" "seconds"
                    InferenceSeconds = value "" "inference_seconds"
                    Epochs = int (value "" "epochs")
                    Parameters = ResultRow.parameters name rows
                    Skills = skillsOf series
                    SeedRmse = [||]
                    ValidationMse = CasePartTasks.validationOf rows
                    PhysicsResidual = CasePartTasks.residualOf rows
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
        Rows = r.Rows
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
            let o = Lorenz96.assemble (settings key) (results |> List.map ofResult)

            {
                Markdown = Lorenz96Report.write dir o
                Rows = Array.append o.Rows (UncertaintyRows.calibration Name o.Uncertainty)
            }
}
