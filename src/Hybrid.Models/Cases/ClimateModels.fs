/// The climate case's models in the report's order, and the run of all of them. Each model is a
/// `Climate.ModelBuilder` defined in its own file (the physics and the a-posteriori hybrid in `Climate`).
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateModels

/// Every model of the climate case, in the report's order.
let all: Climate.ModelBuilder list = [
    Climate.physics
    ClimateClassic.leith
    ClimateAPriori.apriori
    Climate.hybrid
    ClimateFusion.scalar
    ClimateEmulator.emulator
    ClimateConvLstm.convLstm
]

/// Runs every model (`all`) on the case's data and scores them (`Climate.runModels`).
let run (s: Climate.Settings) : Climate.Outcome = Climate.runModels s all
