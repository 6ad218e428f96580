/// A case split into parts that run as separate tasks (`EnergyBalance.parts`, `PredatorPrey.parts`,
/// `Pharmacokinetics.parts`, `Tumour.parts`): the physics fit (once, or per seed where each seed draws its own data),
/// each network model at each of its seeds, and the uncertainty experiment as one task per trained network: each
/// compared model's ensemble members ("uncertainty:<model>", seed `Settings.Seed` + k) and its MC-dropout network
/// ("uncertainty:<model>:MC dropout", seed `Settings.Seed`) where it has one.
/// A part's numbers leave it as result rows (`PartResult.Rows`, its task result's rows); the case's `assemble` gathers
/// them in plan order (`rowsOf`) into the rows its report's tables are computed from.
module Hybrid.Models.Common.CasePart

/// One part of a case run.
type Part = {
    /// "physics", a network model's name, or an uncertainty task's "uncertainty:<model>[:MC dropout]".
    Model: string
    /// The network seed (0 for a "physics" fitted once; the seed of its data where the physics is fitted per seed).
    Seed: int
}

/// What one part produced.
type PartResult<'M> = {
    /// The models it trained, one seed each: what the case's `assemble` needs beyond their numbers (forecasts,
    /// curves and descriptions for its plots and sentences).
    Models: 'M[]
    /// Every number the part computed as long-format rows (`ResultRow`: each model's shared-table metrics and
    /// parameters, the case's own splits; an uncertainty part's noise variance and seconds): its task result's rows,
    /// and what the report's tables are computed from.
    Rows: ResultRow[]
    /// The output of an uncertainty part (one; empty for the others).
    Uncertainty: CaseUncertainty.Output[]
}

/// The prefix of an uncertainty part's model.
[<Literal>]
let private UncertaintyPrefix = "uncertainty:"

/// The suffix of an MC-dropout uncertainty part's model.
[<Literal>]
let private DropoutSuffix = ":MC dropout"

/// The model of the uncertainty part of `candidate`: a member's, or the MC-dropout network's with `dropout`.
let uncertaintyModel (candidate: string) (dropout: bool) =
    UncertaintyPrefix + candidate + (if dropout then DropoutSuffix else "")

/// The uncertainty parts of a case comparing `candidates` (a model's name and whether it has a dropout network), in
/// order: per candidate, its `s.Members` ensemble members (seeds s.Seed + k), then its MC-dropout network (seed
/// s.Seed) where it has one. None with `CaseUncertainty.off`.
let uncertaintyParts (s: CaseUncertainty.Settings) (candidates: (string * bool) list) : Part list = [
    if s.Members > 0 then
        for name, dropout in candidates do
            for k in 0 .. s.Members - 1 do
                yield {
                    Model = uncertaintyModel name false
                    Seed = s.Seed + k
                }

            if dropout then
                yield {
                    Model = uncertaintyModel name true
                    Seed = s.Seed
                }
]

/// The models of the uncertainty parts of `candidates` (for `checkKnown`).
let uncertaintyModels (candidates: (string * bool) list) : string list = [
    for name, dropout in candidates do
        yield uncertaintyModel name false

        if dropout then
            yield uncertaintyModel name true
]

/// An uncertainty part's model: its candidate and whether it is the MC-dropout network.
let (|UncertaintyOf|_|) (model: string) : (string * bool) option =
    if model.StartsWith UncertaintyPrefix then
        let rest = model.Substring UncertaintyPrefix.Length

        if rest.EndsWith DropoutSuffix then
            Some(rest.Substring(0, rest.Length - DropoutSuffix.Length), true)
        else
            Some(rest, false)
    else
        None

/// The parts of a run, in the order the case's `run` takes them: the physics, each network (name, its seeds in
/// order), then the uncertainty parts (`uncertaintyParts`).
let partsOver (networks: (string * int list) list) (uncertainty: Part list) : Part list = [
    yield { Model = "physics"; Seed = 0 }
    for model, seeds in networks do
        for seed in seeds do
            yield { Model = model; Seed = seed }
    yield! uncertainty
]

/// The parts of a run, in the order the case's `run` takes them: the physics, each network (name, first seed)
/// over `seeds` seeds (`Comparison.seeds`), then the uncertainty parts (`uncertaintyParts`).
let parts (networks: (string * int) list) (seeds: int) (uncertainty: Part list) : Part list =
    partsOver
        [
            for model, first in networks -> model, List.ofArray (Comparison.seeds first seeds)
        ]
        uncertainty

/// The parts of a run whose physics is fitted per seed (the tumour twin, where every seed draws its own observation
/// noise), in the order the case's `run` takes them: each of `models` ("physics" first) at every seed of `seeds` in
/// order, then the uncertainty parts (`uncertaintyParts`).
let perSeed (models: string list) (seeds: int list) (uncertainty: Part list) : Part list = [
    for model in models do
        for seed in seeds do
            yield { Model = model; Seed = seed }
    yield! uncertainty
]

/// A row of `case` at `seed` for one model's number on one split, e.g. its "validation" "mse".
let internal row (case: string) (seed: int) (name: string) (split: string) (metric: string) (value: float) : ResultRow = {
    Case = case
    Model = name
    Split = split
    Metric = metric
    Seed = seed
    Value = value
}

/// The rows of a run, from the results of its parts in the order of `parts` (`resultOf` finds a part's result): the
/// order the tables read a model's seeds in, whatever order the parts ran in.
let internal rowsOf (parts: Part list) (resultOf: Part -> PartResult<'M>) : ResultRow[] =
    parts |> List.toArray |> Array.collect (fun p -> (resultOf p).Rows)

/// `rows` with model `name`'s physics residual at its first seed (its first "physics_residual" row) set to `value`,
/// or a row added where it has none: the residual a case's `assemble` computes from the first seed's predictions.
let internal withResidual (name: string) (value: float) (rows: ResultRow[]) : ResultRow[] =
    match
        rows
        |> Array.tryFindIndex (fun r -> r.Model = name && r.Split = "" && r.Metric = "physics_residual")
    with
    | Some i -> rows |> Array.mapi (fun j r -> if j = i then { r with Value = value } else r)
    | None ->
        Array.append rows [|
            {
                Case = (rows |> Array.tryHead |> Option.map (fun r -> r.Case) |> Option.defaultValue "")
                Model = name
                Split = ""
                Metric = "physics_residual"
                Seed = 0
                Value = value
            }
        |]

/// Refuses a part that is not one of `known` (the case's parts), naming them.
let checkKnown (case: string) (known: string list) (part: Part) =
    if not (List.contains part.Model known) then
        let names = String.concat ", " known
        raise (Hybrid.HybridException $"{case}: there is no part '{part.Model}'; the parts are {names}.")

/// The calibration results of a run from its uncertainty parts' outputs (`outputsOf` gives a part's):
/// `CaseUncertainty.combine` over `candidates` in order, recalibrated on the split named
/// `CaseUncertainty.Validation` where a candidate predicts it; none with `CaseUncertainty.off`.
let uncertaintyOf
    (settings: CaseUncertainty.Settings)
    (candidates: (string * bool) list)
    (outputsOf: Part -> CaseUncertainty.Output[])
    : CaseUncertainty.MethodResult[] =
    if settings.Members = 0 then
        [||]
    else
        let outputOf model seed =
            let outputs = outputsOf { Model = model; Seed = seed }

            if outputs.Length <> 1 then
                raise (
                    Hybrid.HybridException
                        $"The part {model} (seed {seed}) has {outputs.Length} uncertainty outputs, not one."
                )

            outputs[0]

        candidates
        |> List.map (fun (name, dropout) -> {
            CaseUncertainty.CandidateOutputs.Name = name
            CaseUncertainty.CandidateOutputs.Members =
                Array.init settings.Members (fun k -> outputOf (uncertaintyModel name false) (settings.Seed + k))
            CaseUncertainty.CandidateOutputs.Dropout =
                if dropout then
                    Some(outputOf (uncertaintyModel name true) settings.Seed)
                else
                    None
        })
        |> Array.ofList
        |> CaseUncertainty.combine settings (Some CaseUncertainty.Validation)

/// `uncertaintyOf` with the outputs of the parts' results (`resultOf` finds a part's result).
let uncertainty
    (settings: CaseUncertainty.Settings)
    (candidates: (string * bool) list)
    (resultOf: Part -> PartResult<'M>)
    : CaseUncertainty.MethodResult[] =
    uncertaintyOf settings candidates (fun part -> (resultOf part).Uncertainty)

/// The result of an uncertainty part: its one output (`CaseUncertainty.output s splits dropout seed train`).
let uncertaintyResult
    (s: CaseUncertainty.Settings)
    (splits: (string * TorchSharp.torch.Tensor)[])
    (dropout: bool)
    (seed: int)
    (train: int -> float -> CaseUncertainty.Trained)
    : PartResult<'M> =
    {
        Models = [||]
        Rows = [||]
        Uncertainty = [| CaseUncertainty.output s splits dropout seed train |]
    }
