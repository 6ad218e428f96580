/// The tumour case's settings as the report and `hybrid tune` run it (one task for the section, `SectionTask`): the
/// settings of a key, with the hyper-parameters `hybrid tune` chose where they exist.
module internal Hybrid.Models.Report.TumourTasks

open Hybrid.Models.Cases
open Hybrid.Models.Tasks

/// The case's name in tasks and its tuning file's name.
[<Literal>]
let Name = "tumour"

/// The settings of a key: "quick", "full" (the report's), and "tiny" (one seed of a few epochs, no uncertainty or
/// ablation, for tests; seconds, not minutes).
let baseSettings (key: string) : Tumour.Settings =
    Experiment.pick key Tumour.quick Tumour.defaults {
        Tumour.quick with
            PhysicsEpochs = 5
            HybridEpochs = 10
            SequenceIterations = 10
            PinnIterations = 10
            Seeds = [ 1 ]
            Uncertainty = Hybrid.Models.Common.CaseUncertainty.off
            Ablation = false
    }

/// The settings of a key with the hyper-parameters `hybrid tune` chose (`tuning/tumour.csv`, `TuningFile.load`) for
/// "quick" and "full" where the file exists; "tiny" (tests) never reads it. The report does not tune.
let settings (key: string) : Tumour.Settings =
    let s = baseSettings key

    if key = "tiny" then
        s
    else
        {
            s with
                Tuned = Hybrid.Models.Tuning.TuningFile.load Name
        }
