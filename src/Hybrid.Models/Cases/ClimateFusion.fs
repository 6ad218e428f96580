/// The climate case's α-fusion (issue #16): the coarse physics forecast F (the fixed coarse equations) and a CNN
/// emulator G (its own copy of `ClimateEmulator`, trained jointly with α) fused per saved interval with the library's
/// `Fusion` layer (`FusedRollout.fuse`): ŷ = αF + (1 − α)G.
///
/// State fusion: the fused state is fed back. From the state u_k at save k both branches run one saved interval
/// (each its own Heun rollout), and u_{k+1} = u_k + fuse(F(u_k) − u_k, G(u_k) − u_k), which for a scalar α is
/// αF(u_k) + (1 − α)G(u_k); the next interval starts from u_{k+1}. That is what a forecaster would run (one state
/// carried forward), and each interval is the same map, so the fusion's time feature is constant (zero). Fusing the
/// changes rather than the states changes nothing for a scalar α but gives a gate (`FusionMode.Gate (1, width)`,
/// one weight per point from the physics' change in units of the training block's root-mean-square change)
/// stationary inputs: the accumulated precipitation itself grows without bound. The alternative, two free runs
/// whose outputs alone are fused, would let the branches drift apart and fuse two unrelated states at long leads.
///
/// α starts at 0.5 (a gate's network with its output layer zero, so 0.5 everywhere) and trains in its own group at
/// `CaseTraining.fusionRate` (0.05 for a scalar, as the other cases' α-fusion), the emulator's network at `s.Rate`,
/// both by `Trainer.train` on the case's objective and budget (`Climate.trainThroughSolver`). The learned α (the mean gate)
/// is printed to standard error after training.
module Hybrid.Models.Cases.ClimateFusion

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic
open Hybrid.Training
open Hybrid.Models.Common

/// The name of the fused model of `mode` in the report.
let name (mode: FusionMode) : string =
    match mode with
    | FusionMode.Scalar _ -> "α-fusion (coarse physics and CNN emulator, scalar α)"
    | FusionMode.Gate _ -> "α-fusion (coarse physics and CNN emulator, per-point gate)"
    | FusionMode.Residual -> "residual fusion (coarse physics plus CNN emulator)"

/// A fused model's parts.
type Fused = {
    /// The coarse physics (fixed parameters, no closure).
    Physics: Simulator
    /// The emulator branch (`ClimateEmulator.create`).
    Emulator: Simulator
    /// The fusion layer.
    Fusion: Fusion
}

/// The fused model of `mode` for `s` and the data `d`, untrained: the coarse physics, a fresh emulator and a fusion
/// layer in `s.Truth.Dtype` starting at α = 0.5 (a gate's network from `s.Seed`, its output layer zero).
let create (mode: FusionMode) (s: Climate.Settings) (d: Climate.Data) : Fused =
    let physics = Climate.compile s []

    let fusion = new Fusion(mode, dtype = s.Truth.Dtype)

    match mode with
    | FusionMode.Gate _ -> CaseTraining.initialise fusion s.Seed true
    | _ -> ()

    {
        Physics = physics
        Emulator = ClimateEmulator.create s d
        Fusion = fusion
    }

/// The fused forecast of `m`: from states u0 (ω, q, P, each [B; n; n]) the states at 0 … `intervals` saves, each
/// field [intervals + 1; B; n; n], the fused state fed back every interval.
let forecast (s: Climate.Settings) (d: Climate.Data) (m: Fused) (u0: torch.Tensor[]) (intervals: int) : torch.Tensor[] =
    let scales = ClimateUnroll.changeScales d
    let one = Climate.rolloutOptions s 1

    let next (sim: Simulator) (u: torch.Tensor[]) =
        sim.Simulate(u, one).Values |> Array.map (fun v -> v[1L])

    let saves = Array.init u0.Length (fun _ -> ResizeArray<torch.Tensor>())
    let mutable u = u0

    for f in 0 .. u.Length - 1 do
        saves[f].Add(u[f])

    for _ in 1..intervals do
        let current = u

        let changes (v: torch.Tensor[]) =
            Array.map2 (fun (a: torch.Tensor) (b: torch.Tensor) -> a .- b) v current

        let physics = changes (next m.Physics current)
        let emulator = changes (next m.Emulator current)
        let time = torch.zeros_like (current[0])
        let fused = FusedRollout.fuse m.Fusion scales time physics emulator
        u <- Array.map2 (fun (a: torch.Tensor) (b: torch.Tensor) -> a .+ b) current fused.Fused

        for f in 0 .. u.Length - 1 do
            saves[f].Add(u[f])

    saves |> Array.map (fun v -> torch.stack (v, 0L))

/// The α-fusion of `mode` (e.g. `FusionMode.Scalar 0.5`, `FusionMode.Gate (1, 8)`), trained end to end.
let fused (mode: FusionMode) : Climate.ModelBuilder =
    let label = name mode

    {
        Name = label
        Build =
            fun s d ->
                let m = create mode s d
                let net = snd m.Emulator.Modules[0]

                let trained =
                    Climate.trainThroughSolver s d label (forecast s d m) [|
                        Trainer.group "phi" s.Rate (Neural.parameters net)
                        Trainer.group "alpha" (CaseTraining.fusionRate mode) (Neural.parameters m.Fusion)
                    |] [| net :> torch.nn.Module; m.Fusion |]

                eprintfn $"{label}: α = {m.Fusion.Alpha:g3} after training"
                trained
    }

/// The α-fusion with one learned scalar α (starting at 0.5): the report's fused model.
let scalar: Climate.ModelBuilder = fused (FusionMode.Scalar 0.5)
