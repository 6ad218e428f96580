/// `hybrid bench-closures`: a model with CNN closures over whole fields (the climate case's coarse model, 32²) on
/// the generated kernels against the eager back end, forward + backward, interleaved in pairs (`Bench.compare`);
/// the kernels' backward pass keeping each replayed stage's network graphs (the default) against recomputing the
/// stages and running the networks again; the same model without its CNNs beside it. Writes bench/closures.md.
module internal Hybrid.Cli.ClosureBench

open System
open System.IO
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels
open Hybrid.Models.Cases

/// The climate case's coarse model at n², viscosity 2·10⁻³, with CNN closures of `hidden` widths (none: physics
/// alone), compiled in float64 on `backend`.
let private climate (backend: Backend) (n: int) (hidden: int list) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = backend
                Dtype = torch.ScalarType.Float64
        }
        (Parse.model (ClimateModel.text ClimateModel.reference n 2e-3 hidden))

/// Forward + backward of L = Σ (final state)² over `steps` RK4 steps of Δt = 0.05 from the model's initial state:
/// gradients for the initial state, every learnable parameter and network weight.
let private loss (sim: Simulator) (steps: int) () =
    use _ = torch.NewDisposeScope()
    let dt = 0.05

    let options = {
        Rollout.defaults with
            Scheme = Scheme.Rk4
            Dt = dt
            SaveTimes = [| float steps * dt |]
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    let u0 = sim.Initial 1 |> Array.map (fun t -> t.detach().requires_grad_ true)
    let trajectory = sim.Simulate(u0, options)
    (trajectory.Values |> Array.map (fun v -> v.square().sum ()) |> Array.reduce (+)).backward ()

/// `f` with the kernels' backward pass recomputing the stages (`TapedRollout.keepStages` off), as before it kept them.
let private recomputing (f: unit -> unit) () =
    TapedRollout.keepStages <- false

    try
        f ()
    finally
        TapedRollout.keepStages <- true

/// Runs the benchmark and writes the markdown to `path`; `quick` uses fewer repetitions.
let run (path: string) (quick: bool) : int =
    Engine.init ()
    let lines = Collections.Generic.List<string>()

    let say (s: string) =
        printfn "%s" s
        lines.Add s

    let reps = if quick then 3 else 7
    let warmup = if quick then 0.2 else 1.0
    let n, steps = 32, 20
    let date = DateTime.UtcNow.ToString "yyyy-MM-dd"
    say "# Benchmark: CNN closures over whole fields, generated kernels against eager"
    say ""

    say
        $"Machine: {Bench.machine ()}. Date: {date}. The climate case's coarse model (`ClimateModel.text`, {n}², diagnostic ψ, J, advectFlux), float64, batch 1, {steps} RK4 steps of 0.05, forward + backward of L = Σ (final state)² (gradients for the initial state and every network weight), default checkpointing. Each pair times both sides back to back in alternating order after a warm-up, each timed run after an untimed run of the same side (`Bench.compare`); times are medians of {reps} pairs with the smallest and largest in brackets, ratios the medians of the per-pair ratios. \"Keeping\": the kernels' backward pass replays each checkpoint segment with the networks under autograd and keeps every stage's graph for the adjoint steps (networks run twice per stage in all: the rollout and the replay); \"recomputing\": the adjoint steps recompute their stages and run each network again for its vector–Jacobian product (about 3.4 runs per stage in all), as before."

    say ""

    say
        "| closures | eager (ms) | kernels, keeping (ms) | kernels / eager | kernels, recomputing (ms) | recomputing / keeping |"

    say "|---|---|---|---|---|---|"

    /// A time as "median (smallest–largest)".
    let ms (s: Bench.Spread) =
        $"{s.Median:F0} ({s.Low:F0}–{s.High:F0})"

    let ratio (s: Bench.Spread) =
        $"{s.Median:F2}× ({s.Low:F2}–{s.High:F2})"

    for hidden in [ [ 16; 16 ]; [] ] do
        let eager = loss (climate Backend.Eager n hidden) steps
        let kernels = loss (climate Backend.Kernels n hidden) steps
        let keptMs, eagerMs, toEager = Bench.compare warmup reps kernels eager

        let recomputedMs, _, toKept =
            Bench.compare warmup reps (recomputing kernels) kernels

        let label =
            match hidden with
            | [] -> "none (physics alone)"
            | h -> $"CNN {h} (sgsomega, sgsq)"

        say $"| {label} | {ms eagerMs} | {ms keptMs} | {ratio toEager} | {ms recomputedMs} | {ratio toKept} |"

    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path))
    |> ignore

    File.WriteAllLines(path, lines)
    0
