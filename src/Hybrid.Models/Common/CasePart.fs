/// A case split into parts that run as separate tasks (`EnergyBalance.parts`, `PredatorPrey.parts`,
/// `Pharmacokinetics.parts`, `Tumour.parts`): the physics fit (once, or per seed where each seed draws its own data),
/// each network model at each of its seeds, and the uncertainty experiment.
module Hybrid.Models.Common.CasePart

/// One part of a case run.
type Part = {
    /// "physics", a network model's name, or "uncertainty".
    Model: string
    /// The network seed (0 for a "physics" fitted once; the seed of its data where the physics is fitted per seed).
    Seed: int
}

/// What one part produced.
type PartResult<'M> = {
    /// The models it trained, one seed each (`SeedTestMse` empty and `PhysicsResidual` NaN: the case's `assemble`
    /// fills them).
    Models: 'M[]
    /// The calibration results of the "uncertainty" part (empty for the others).
    Uncertainty: CaseUncertainty.MethodResult[]
}

/// The parts of a run, in the order the case's `run` takes them: the physics, each network (name, its seeds in
/// order), then the uncertainty experiment where it has members.
let partsOver (networks: (string * int list) list) (uncertainty: CaseUncertainty.Settings) : Part list = [
    yield { Model = "physics"; Seed = 0 }
    for model, seeds in networks do
        for seed in seeds do
            yield { Model = model; Seed = seed }
    if uncertainty.Members > 0 then
        yield {
            Model = "uncertainty"
            Seed = uncertainty.Seed
        }
]

/// The parts of a run, in the order the case's `run` takes them: the physics, each network (name, first seed)
/// over `seeds` seeds (`Comparison.seeds`), then the uncertainty experiment where it has members.
let parts (networks: (string * int) list) (seeds: int) (uncertainty: CaseUncertainty.Settings) : Part list =
    partsOver
        [
            for model, first in networks -> model, List.ofArray (Comparison.seeds first seeds)
        ]
        uncertainty

/// The parts of a run whose physics is fitted per seed (the tumour twin, where every seed draws its own observation
/// noise), in the order the case's `run` takes them: each of `models` ("physics" first) at every seed of `seeds` in
/// order, then the uncertainty experiment where it has members.
let perSeed (models: string list) (seeds: int list) (uncertainty: CaseUncertainty.Settings) : Part list = [
    for model in models do
        for seed in seeds do
            yield { Model = model; Seed = seed }
    if uncertainty.Members > 0 then
        yield {
            Model = "uncertainty"
            Seed = uncertainty.Seed
        }
]

/// Refuses a part that is not one of `known` (the case's parts), naming them.
let checkKnown (case: string) (known: string list) (part: Part) =
    if not (List.contains part.Model known) then
        let names = String.concat ", " known
        raise (Hybrid.HybridException $"{case}: there is no part '{part.Model}'; the parts are {names}.")

/// The calibration results of a run: those of its "uncertainty" part (`resultOf` finds a part's result) where the
/// settings have ensemble members, none otherwise.
let uncertainty (settings: CaseUncertainty.Settings) (resultOf: Part -> PartResult<'M>) =
    if settings.Members > 0 then
        (resultOf {
            Model = "uncertainty"
            Seed = settings.Seed
        })
            .Uncertainty
    else
        [||]
