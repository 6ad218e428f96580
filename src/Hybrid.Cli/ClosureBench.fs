/// `hybrid bench-closures`: a model with CNN closures over whole fields (the climate case's coarse model, 32²) on
/// the generated kernels against the eager back end, forward + backward; the kernels' backward pass keeping each
/// replayed stage's network graphs (the default) against recomputing the stages and running the networks again; the
/// same model without its CNNs beside it; wall and CPU time on one thread, interleaved. Writes bench/closures.md.
module internal Hybrid.Cli.ClosureBench

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Models.Cases

/// The climate case's coarse model at n², viscosity 2·10⁻³, with CNN closures of `hidden` widths (none: physics
/// alone), compiled in `dtype` on `backend` (seed 1: both back ends draw the same weights).
let private climateIn (dtype: torch.ScalarType) (backend: Backend) (n: int) (hidden: int list) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
                Dtype = dtype
                Seed = 1
        }
        (Parse.model (ClimateModel.text ClimateModel.reference n 2e-3 hidden))

/// `climateIn` in float64.
let private climate = climateIn torch.ScalarType.Float64

/// The climate case's training rollout (`Climate.trainThroughSolver` with the full settings' longest horizon): from
/// 4 start states, 80 Heun steps of 0.05 saved every 10 (8 saves), L = Σ over the saves of squares; forward +
/// backward with `gradients`, else one forecast without gradients (the validation scores').
let private trainingRollout (sim: Simulator) (gradients: bool) () =
    use _ = torch.NewDisposeScope()

    let options = {
        Rollout.defaults with
            Scheme = Scheme.Heun
            Dt = 0.05
            SaveTimes = Array.init 9 (fun i -> float i * 0.5)
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    let u0 = sim.Initial 4

    if gradients then
        let trajectory = sim.Simulate(u0, options)
        (trajectory.Values |> Array.map (fun v -> v.square().sum ()) |> Array.reduce (+)).backward ()
    else
        use _ = torch.no_grad ()
        sim.Simulate(u0, options) |> ignore

/// Forward + backward of L = Σ (final state)² over `steps` RK4 steps of Δt = 0.05 from the model's initial state:
/// gradients for the initial state, every learnable parameter and network weight. Under Dopri5: adaptive steps to the
/// same end time from a first step of 0.05 at relative tolerance 10⁻⁴ (absolute 10⁻⁶).
let private loss (sim: Simulator) (scheme: Scheme) (steps: int) (checkpointing: Checkpointing) () =
    use _ = torch.NewDisposeScope()
    let dt = 0.05

    let options = {
        Rollout.defaults with
            Scheme = scheme
            Dt = dt
            Tolerance = { Relative = 1e-4; Absolute = 1e-6 }
            SaveTimes = [| float steps * dt |]
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
            Checkpointing = checkpointing
    }

    let u0 = sim.Initial 1 |> Array.map (fun t -> t.detach().requires_grad_ true)
    let trajectory = sim.Simulate(u0, options)
    (trajectory.Values |> Array.map (fun v -> v.square().sum ()) |> Array.reduce (+)).backward ()

/// Runs the benchmark and writes the markdown to `path`; `quick` uses fewer rounds.
let run (path: string) (quick: bool) : int =
    Engine.init ()
    // One thread for libtorch and the kernels: the CPU time of a run is then its work, which a loaded machine
    // stretches far less than its wall time.
    Engine.useThreads 1

    Bench.writeReport path (fun say ->
        let rounds = if quick then 2 else 5
        let n, steps = 32, 20
        let date = DateTime.UtcNow.ToString "yyyy-MM-dd"
        say "# Benchmark: CNN closures over whole fields, generated kernels against eager"
        say ""

        say
            $"Machine: {Bench.machine ()}; load average {Bench.loadAverage ()} at the start. Date: {date}. The climate case's coarse model (`ClimateModel.text`, {n}², diagnostic ψ, J, advectFlux), float64, batch 1, one thread for libtorch and the kernels, {steps} RK4 steps of 0.05, forward + backward of L = Σ (final state)² (gradients for the initial state and every network weight), eager without checkpointing, the kernels with the checkpointing of each row (their backward pass keeps one segment's stages: all 80 without checkpointing). The last row takes Dopri5's adaptive steps to the same end time (first step 0.05, relative tolerance 10⁻⁴, absolute 10⁻⁶; the kernels' backward pass keeps the stages of at most 2 accepted steps at once, √T checkpoints). Three sides: eager; the kernels keeping (their backward pass replays the segment with the networks under autograd and keeps every stage's graphs for the adjoint steps: networks run twice per stage in all, the rollout and the replay, except in the last segment, whose stages the forward pass keeps: without checkpointing, the whole rollout, each network run once per stage); the kernels recomputing (the adjoint steps recompute their stages and run each network again for its vector–Jacobian product: about 3.4 runs per stage in all, as before). After one warm-up run of each, {rounds} rounds, each timing the three sides in a rotating order, every timed run after an untimed run of the same side. Wall and CPU time (ms) of each run; medians over the rounds with the smallest and largest in brackets; ratios are the medians of the per-round ratios of CPU times."

        say ""

        say
            "| closures | eager wall | keeping wall | recomputing wall | eager CPU | keeping CPU | recomputing CPU | keeping / eager (CPU) | recomputing / keeping (CPU) |"

        say "|---|---|---|---|---|---|---|---|---|"

        for hidden, checkpointing, scheme in
            [
                [ 16; 16 ], Checkpointing.Off, Scheme.Rk4
                [ 16; 16 ], Checkpointing.Segments 1, Scheme.Rk4
                [ 16; 16 ], Checkpointing.Sqrt, Scheme.Rk4
                [], Checkpointing.Off, Scheme.Rk4
                [ 16; 16 ], Checkpointing.Sqrt, Scheme.Dopri5
            ] do
            let kernels = loss (climate Backend.Kernels n hidden) scheme steps checkpointing
            let eager = loss (climate Backend.Eager n hidden) scheme steps Checkpointing.Off

            let wall, cpu =
                Bench.rotatingRounds rounds [| eager; kernels; Bench.recomputing kernels |]

            let per a b = List.map2 (/) cpu[a] cpu[b]

            let label =
                match hidden with
                | [] -> "none (physics alone)"
                | h when scheme = Scheme.Dopri5 ->
                    $"CNN {h}, Dopri5 (adaptive), kernels' checkpointing {checkpointing}"
                | h -> $"CNN {h} (sgsomega, sgsq), kernels' checkpointing {checkpointing}"

            say
                $"| {label} | {Bench.msText wall[0]} | {Bench.msText wall[1]} | {Bench.msText wall[2]} | {Bench.msText cpu[0]} | {Bench.msText cpu[1]} | {Bench.msText cpu[2]} | {Bench.ratioText (per 1 0)} | {Bench.ratioText (per 2 1)} |"

        say ""

        say
            "The climate case's training rollouts (`Climate.trainThroughSolver`, the full settings' longest horizon): its coarse model at 32² with CNN [16, 16] closures, float32, seed 1 on both sides, 4 start states (the model's initial state), 80 Heun steps of 0.05 saved every 10 (8 saves), no checkpointing (the case's), forward + backward of L = Σ over the saves of squares; and the same rollout without gradients (the validation forecasts'). Same rounds as above."

        say ""
        say "| rollout | eager wall | kernels wall | eager CPU | kernels CPU | kernels / eager (CPU) |"
        say "|---|---|---|---|---|---|"
        let eager = climateIn torch.ScalarType.Float32 Backend.Eager n [ 16; 16 ]
        let kernels = climateIn torch.ScalarType.Float32 Backend.Kernels n [ 16; 16 ]

        for label, gradients in [ "forward + backward", true; "forecast without gradients", false ] do
            let wall, cpu =
                Bench.rotatingRounds rounds [| trainingRollout eager gradients; trainingRollout kernels gradients |]

            say
                $"| {label} | {Bench.msText wall[0]} | {Bench.msText wall[1]} | {Bench.msText cpu[0]} | {Bench.msText cpu[1]} | {Bench.ratioText (List.map2 (/) cpu[1] cpu[0])} |"

        say ""
        say $"Load average at the end: {Bench.loadAverage ()}.")

    0
