/// The truth of the climate case: `ClimateModel`'s equations on a fine grid with their own scheme, time step and
/// viscosity, spun up, then coarse-grained by block averages to the models' grid. An in-distribution run (the
/// reference physics) and an out-of-distribution one (the forcing scaled, branched from the spun-up state and given
/// time to adjust). Generated once per process and settings (`generate` caches it).
[<RequireQualifiedAccess>]
module Hybrid.Models.Cases.ClimateTruth

open System.Collections.Generic
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.TensorArithmetic

/// How the truth is made.
type Settings = {
    /// The physics of the in-distribution run.
    Physics: ClimateModel.Physics
    /// Cells per side of the fine grid (a multiple of `ModelCells`).
    Cells: int
    /// Viscosity ν of the fine grid.
    Nu: float
    /// Time scheme of the fine grid (SSP-RK3: keeps q ≥ 0 under the limited flux advection).
    Scheme: Scheme
    /// Time step of the fine grid.
    Dt: float
    /// Cells per side of the models' grid, to which the truth is coarse-grained.
    ModelCells: int
    /// Time from the initial condition to the first saved state.
    SpinUp: float
    /// Time between saved (coarse-grained) states.
    SaveEvery: float
    /// Saved intervals of the in-distribution run after the spin-up (its train, validation and test blocks).
    Intervals: int
    /// The out-of-distribution run's forcing F0, as a multiple of the reference.
    OodForcingFactor: float
    /// Time the out-of-distribution run adjusts (from the spun-up state) before its first saved state.
    OodAdjust: float
    /// Saved intervals of the out-of-distribution run.
    OodIntervals: int
    /// Precision of the fine run.
    Dtype: torch.ScalarType
}

/// A coarse-grained run: the saved times and each state field (ω, q, P) at them, [S; 1; n; n] on the models' grid.
type Run = {
    /// Save times.
    Times: float[]
    /// ω, q and P (the simulator's state order), each [S; 1; n; n].
    Fields: torch.Tensor[]
    /// The smallest q on the fine grid over the saved states.
    FineQMin: float
}

/// The truth: both runs and what generating them cost.
type Truth = {
    /// The in-distribution run (train, validation and test blocks in time).
    Main: Run
    /// The out-of-distribution run (forcing scaled by `OodForcingFactor`).
    Ood: Run
    /// The fine model's own tendencies (its right-hand side, ψ solved from ω) at every saved state of `Main`,
    /// coarse-grained: ω, q and P, each [S; 1; n; n] like `Main.Fields`, for the a-priori closure's sub-grid targets
    /// (which read only the training block's).
    Tendencies: torch.Tensor[]
    /// Wall time of the generation in seconds.
    Seconds: float
}

/// Block averages of `f` × `f` cells of the last two axes: [..; n; n] → [..; n/f; n/f] (the cell averages of the
/// coarse grid, which conserve the domain integral).
let coarseGrain (f: int) (t: torch.Tensor) : torch.Tensor =
    let shape = t.shape
    let lead = shape[.. shape.Length - 3]
    let n = shape[shape.Length - 1]
    let c = n / int64 f

    t.reshape(Array.append lead [| c; int64 f; c; int64 f |]).mean ([| -3L; -1L |])

let private cache = Dictionary<Settings, Truth>()

/// The fine model of `s` with `physics` (the fine grid, its viscosity, the truth's precision) on `Backend.Auto`: the
/// generated kernels in the truth's precision (float32 kernels, ψ solved in float32 for a float32 truth), 1.6× faster
/// than the eager back end (the tests' 64² truth: 6.4–6.8 s against 10.5–10.8 s, idle machine). They round in another
/// order than the eager back end, so the chaotic truth differs from the eager one's after a while (as it would after
/// any change of rounding).
let internal compile (s: Settings) (physics: ClimateModel.Physics) =
    Compiler.compile
        {
            Compiler.defaults with
                Dtype = s.Dtype
        }
        (Parse.model (ClimateModel.text physics s.Cells s.Nu []))

let private options (s: Settings) (t0: float) (saves: float[]) = {
    Rollout.defaults with
        Scheme = s.Scheme
        Dt = s.Dt
        T0 = t0
        SaveTimes = saves
        FiniteCheckEvery = 100
        OnUnstable = OnUnstable.Ignore
}

let private coarse (s: Settings) (tr: Trajectory) : Run =
    let f = s.Cells / s.ModelCells

    {
        Times = tr.Times
        Fields = tr.Values |> Array.map (fun v -> (coarseGrain f v).MoveToOuterDisposeScope())
        FineQMin = tr.Values[1].min().ToDouble()
    }

/// The tendencies of the fine simulator `fine` (its full right-hand side at time `t`, diagnostic fields solved)
/// at fine states `u` (ω, q, P, each [B; N; N]), coarse-grained by `factor` × `factor` block averages: each [B; n; n].
let coarseTendencies (fine: Simulator) (factor: int) (t: float) (u: torch.Tensor[]) : torch.Tensor[] =
    Dynamics.total fine.Dynamics (fine.Theta()) t u
    |> Array.map (coarseGrain factor)

let private make (s: Settings) : Truth =
    if s.Cells % s.ModelCells <> 0 then
        raise (HybridException $"Climate truth: {s.Cells} fine cells are not a multiple of {s.ModelCells} model cells.")

    let watch = Stopwatch.StartNew()
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let sim = compile s s.Physics

    let saves (t0: float) (count: int) =
        Array.init (count + 1) (fun i -> t0 + float i * s.SaveEvery)

    let main = sim.Simulate(sim.Initial 1, options s 0.0 (saves s.SpinUp s.Intervals))
    let spun = main.Values |> Array.map (fun v -> v[0])

    let oodSim =
        compile s {
            s.Physics with
                Forcing = s.Physics.Forcing * s.OodForcingFactor
        }

    let ood =
        oodSim.Simulate(spun, options s s.SpinUp (saves (s.SpinUp + s.OodAdjust) s.OodIntervals))

    // One right-hand side over all saved states at once (the saves as the batch; the equations are autonomous).
    let tendencies =
        let states = main.Values |> Array.map (fun v -> v.squeeze 1L)

        coarseTendencies sim (s.Cells / s.ModelCells) 0.0 states
        |> Array.map (fun v -> v.unsqueeze(1L).MoveToOuterDisposeScope())

    {
        Main = coarse s main
        Ood = coarse s ood
        Tendencies = tendencies
        Seconds = watch.Elapsed.TotalSeconds
    }

/// The truth of `s`, generated on the first call in a process and cached (keyed by `s`). Not thread-safe with
/// other Hybrid work (libtorch runs one call at a time here).
let generate (s: Settings) : Truth =
    lock cache (fun () ->
        match cache.TryGetValue s with
        | true, t -> t
        | _ ->
            let t = make s
            cache[s] <- t
            t)
