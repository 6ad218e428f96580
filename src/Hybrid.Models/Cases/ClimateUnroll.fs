/// Output scales of the climate case's pure-ML and fused models (issue #16): the training block's typical change per
/// saved interval and its mean precipitation, so the networks predict changes of order one and start at the
/// climatology. (They train through `Climate.trainThroughSolver`, like the a-posteriori hybrid.)
module Hybrid.Models.Cases.ClimateUnroll

open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common

/// The root-mean-square change of ω, q and P over one saved interval in the training block (√`d.Scales`): the
/// pure-ML models' output scales, so their networks predict changes of order one.
let changeScales (d: Climate.Data) : float[] = d.Scales |> Array.map sqrt

/// The mean change of the accumulated precipitation P over one saved interval in the training block (the domain
/// mean): the pure-ML models' precipitation starts at this climatology.
let meanPrecipitationChange (s: Climate.Settings) (d: Climate.Data) : float =
    use _ = torch.no_grad ()
    let p = d.Truth.Main.Fields[2]
    let total = (p[int64 s.TrainIntervals] .- p[0L]).mean().ToDouble()
    total / float s.TrainIntervals
