/// Tuned hyper-parameters as a case's settings carry them: per model, named values chosen by `hybrid tune` and read
/// from `tuning/<case>.csv` (`TuningFile`). A model reads each of its hyper-parameters with `value`, falling back to
/// the case's own default where nothing was tuned.
module Hybrid.Models.Tuning.Tuned

/// Nothing tuned (model name → hyper-parameter name → value, empty): every model uses its defaults.
let none: Map<string, Map<string, float>> = Map.empty

/// The learning rate (Adam) of a model: the name every case's search space uses.
[<Literal>]
let LearningRate = "learning rate"

/// The hidden width of a model's network (an MLP's hidden layers, an LSTM's hidden size, a transformer's model
/// width): the name every case's search space uses.
[<Literal>]
let Width = "width"

/// The tuned value of `name` for `model`, or `fallback` where it has none.
let value (tuned: Map<string, Map<string, float>>) (model: string) (name: string) (fallback: float) : float =
    tuned
    |> Map.tryFind model
    |> Option.bind (Map.tryFind name)
    |> Option.defaultValue fallback

/// The tuned width of `model` as a whole number of units, or `fallback`.
let width (tuned: Map<string, Map<string, float>>) (model: string) (fallback: int) : int =
    int (System.Math.Round(value tuned model Width (float fallback)))

/// `tuned` with `values` set for `model` (replacing what it had).
let withModel
    (model: string)
    (values: (string * float)[])
    (tuned: Map<string, Map<string, float>>)
    : Map<string, Map<string, float>> =
    Map.add model (Map.ofArray values) tuned
