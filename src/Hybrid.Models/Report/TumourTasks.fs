/// The tumour case as tasks: one task per part of the case (`Tumour.parts`: the physics at each seed, each network
/// model per seed, the ablation variants per seed with `Settings.Ablation`, the uncertainty experiment), its models
/// carried as result rows (the shared table's, the out-of-domain MSE as "test"; "in-domain" and "validation" MSEs),
/// the kill curve ("kill:<model>"), the burden curves of the unseen schedules ("burden-day-<i>:<model>",
/// "burden-<i>:<model>") and descriptions, and the section assembled from them by `TumourReport.write`; the settings
/// of a key as the report and `hybrid tune` run them.
module internal Hybrid.Models.Report.TumourTasks

open Hybrid.Models.Cases
open Hybrid.Models.Common
open Hybrid.Models.Tasks

/// The case's name in tasks and its tuning file's name.
[<Literal>]
let Name = "tumour"

/// The settings of a key: "quick", "full" (the report's), and "tiny" (two seeds of a few epochs each, the ablation
/// and a two-member uncertainty experiment of 3 epochs, for tests; seconds, not minutes).
let baseSettings (key: string) : Tumour.Settings =
    Experiment.pick key Tumour.quick Tumour.defaults {
        Tumour.quick with
            PhysicsEpochs = 5
            HybridEpochs = 10
            SequenceIterations = 10
            PinnIterations = 10
            Seeds = [ 1; 2 ]
            Ablation = true
            Uncertainty = {
                Tumour.quick.Uncertainty with
                    Iterations = 3
                    Passes = 4
            }
    }

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/tumour.csv`, `TuningFile.forKey`) for
/// "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : Tumour.Settings = {
    baseSettings key with
        Tuned = Hybrid.Models.Tuning.TuningFile.forKey key Name
}

/// The split of the in-domain MSE rows (the in-domain test schedules: unseen timings).
[<Literal>]
let InDomain = TumourReport.InDomain

/// A model's series: its kill curve ("kill"; empty without a kill term) and, per unseen schedule i, its burden
/// curve's days ("burden-day-<i>") and mean u ("burden-<i>").
let private seriesOf (m: Tumour.ModelResult) : (string * float[])[] = [|
    "kill", m.Kill
    for i, curve in Array.indexed m.Burden do
        $"burden-day-{i}", Array.map fst curve
        $"burden-{i}", Array.map snd curve
|]

/// The task result of one part's result (its rows, with each model's in-domain and validation MSEs as "in-domain"
/// and "validation" "mse" rows; its series and a "description:<model>" text per model; the uncertainty part's
/// calibration curves).
let toResult (task: TaskSpec) (r: Tumour.PartResult) : TaskResult =
    CasePartTasks.toResult (fun (m: Tumour.ModelResult) -> m.Name) (fun m -> m.Description) seriesOf task r

/// The part's result back from its task result: each model over its one seed, its numbers from its rows.
let ofResult (r: TaskResult) : Tumour.Part * Tumour.PartResult =
    CasePartTasks.ofResult
        (fun name description rows series ->
            let value split metric = ResultRow.value name split metric rows
            let inDomain = value InDomain "mse"
            let outOfDomain = value "test" "mse"

            {
                Tumour.ModelResult.Name = name
                Description = description
                InDomainMse = inDomain
                SeedInDomainMse = [| inDomain |]
                OutOfDomainMse = outOfDomain
                TrainMse = value "train" "mse"
                ValidationMse = CasePartTasks.validationOf rows
                ResidualNorm = CasePartTasks.residualOf rows
                TrainSeconds = value "" "seconds"
                InferenceSeconds = value "" "inference_seconds"
                Epochs = int (value "" "epochs")
                SeedOutOfDomainMse = [| outOfDomain |]
                Parameters = ResultRow.parameters name rows |> Array.map (fun (n, v) -> n, [| v |])
                Kill = series "kill"
                Burden =
                    Array.init Tumour.outOfDomain.Length (fun i ->
                        Array.zip (series $"burden-day-{i}") (series $"burden-{i}"))
            })
        r

/// The tumour section as tasks.
let experiment: Experiment = {
    Name = Name
    Title = "tumour growth"
    Tasks =
        fun key ->
            Tumour.parts (settings key)
            |> List.map (fun p -> TaskSpec.create Name key p.Model p.Seed)
    Run = fun _ t -> toResult t (Tumour.runPart (settings t.Settings) { Model = t.Model; Seed = t.Seed })
    Assemble =
        fun dir key results ->
            let o = Tumour.assemble (settings key) (results |> List.map ofResult)

            {
                Markdown = TumourReport.write dir o
                Rows = Array.append o.Rows (UncertaintyRows.calibration Name o.Uncertainty)
            }
}
