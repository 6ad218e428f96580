/// A case's part result as the long-format rows its task result carries (`CasePart.PartResult.Rows`): the same
/// rows, in the same order, for every case, from the numbers each case reads off its own model results.
module internal Hybrid.Models.Tasks.PartRows

open Hybrid.Models.Common

/// The numbers of one trained model that every case reports.
type ModelNumbers = {
    /// The model's name in the case's tables.
    Name: string
    /// The case's headline "test" "mse" (its out-of-distribution split).
    TestMse: float
    /// Its MSE on the training data.
    TrainMse: float
    /// Training time.
    TrainSeconds: float
    /// Time to predict the test data.
    InferenceSeconds: float
    /// Epochs (or iterations) trained.
    Epochs: int
    /// NaN where the case's `assemble` computes it from the predictions.
    PhysicsResidual: float
    /// Each parameter's value, by name.
    Parameters: (string * float)[]
    /// The MSE on the case's other splits (e.g. "in-distribution", "validation"), in the order their rows go in.
    SplitMse: (string * float)[]
}

/// The numbers of a model result whose fields carry them under the same names (`Name`, `TestMse`, `TrainMse`,
/// `TrainSeconds`, `InferenceSeconds`, `Epochs`, `PhysicsResidual`, `Parameters`), with its MSE on the case's other
/// splits.
let inline ofFields (splitMse: (string * float)[]) (m: ^M) : ModelNumbers = {
    Name = (^M: (member Name: string) m)
    TestMse = (^M: (member TestMse: float) m)
    TrainMse = (^M: (member TrainMse: float) m)
    TrainSeconds = (^M: (member TrainSeconds: float) m)
    InferenceSeconds = (^M: (member InferenceSeconds: float) m)
    Epochs = (^M: (member Epochs: int) m)
    PhysicsResidual = (^M: (member PhysicsResidual: float) m)
    Parameters = (^M: (member Parameters: (string * float)[]) m)
    SplitMse = splitMse
}

/// The rows of one model of a part of `case` at `seed`: "test" and "train" "mse", training "seconds",
/// "inference_seconds", "epochs", "physics_residual" and each parameter as "param:<name>", in that order.
let modelRows (case: string) (seed: int) (m: ModelNumbers) : ResultRow[] =
    let row split metric value =
        CasePart.row case seed m.Name split metric value

    Array.append
        [|
            row "test" "mse" m.TestMse
            row "train" "mse" m.TrainMse
            row "" "seconds" m.TrainSeconds
            row "" "inference_seconds" m.InferenceSeconds
            row "" "epochs" (float m.Epochs)
            row "" "physics_residual" m.PhysicsResidual
        |]
        (m.Parameters
         |> Array.map (fun (n, v) -> row "" (ResultRow.ParameterPrefix + n) v))

/// The rows of a part's `models` and uncertainty `outputs` at the part's seed: each model's (`modelRows` of
/// `numbers`), the uncertainty experiment's (`UncertaintyRows.rows`), then split by split of `SplitMse` each model's
/// "mse" on it, then `more`.
let rows
    (case: string)
    (part: CasePart.Part)
    (numbers: 'M -> ModelNumbers)
    (models: 'M[])
    (outputs: CaseUncertainty.Output[])
    (more: ResultRow[])
    : ResultRow[] =
    let models = models |> Array.map numbers

    let splits =
        models
        |> Array.tryHead
        |> Option.map (fun m -> m.SplitMse.Length)
        |> Option.defaultValue 0

    Array.concat [
        models |> Array.collect (modelRows case part.Seed)
        outputs |> Array.collect (UncertaintyRows.rows case part.Model part.Seed)
        [|
            for i in 0 .. splits - 1 do
                for m in models do
                    let split, mse = m.SplitMse[i]
                    CasePart.row case part.Seed m.Name split "mse" mse
        |]
        more
    ]

/// `r` with its `rows` (none beyond them).
let withRows (case: string) (part: CasePart.Part) (numbers: 'M -> ModelNumbers) (r: CasePart.PartResult<'M>) = {
    r with
        Rows = rows case part numbers r.Models r.Uncertainty [||]
}
