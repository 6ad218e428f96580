/// `hybrid bench-face-fluxes`: flux advection (`advectFlux`, van Leer) on the generated kernels with each face's flux
/// computed once (face copies written by a kernel of their own, `Lowering.lower`) against each cell computing the
/// fluxes through both its faces (`Lowering.lowerWith false`, as before), forward + backward, interleaved in one
/// process on one thread (the last model's kernel passes on two). Writes bench/face-fluxes.md.
module internal Hybrid.Cli.FaceFluxBench

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels
open Hybrid.Models.Cases

/// ∂q/∂t = −advectFlux(−∂y ψ, ∂x ψ, q) with a steady ψ = cos x sin y on a doubly periodic n × n [0, 2π]², from
/// q = max(0, sin x sin 2y)³.
let private stirred (n: int) =
    Parse.model (
        $"model stirred\ndomain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells {n} x {n}\nfield psi\nfield q\ndpsi/dt = 0\ndq/dt = -advectFlux(-∂y(psi), ∂x(psi), q)\nboundary psi periodic\nboundary q periodic\ninitial psi = cos(x)*sin(y)\ninitial q = max(0, sin(x)*sin(2*y))^3"
    )

/// Forward + backward of L = Σ (final state)² over `steps` RK4 steps of `dt` of `plan` from the eager simulator's
/// initial state and parameter values (`eager`), checkpointed every √steps: gradients for u0 and θ.
let private loss (eager: Simulator) (plan: KernelPlan) (steps: int) (dt: float) =
    let sim = KernelSimulator(plan, None, Scheme.Rk4, [||], [||])
    let segment = max 1 (int (ceil (sqrt (float steps))))

    fun () ->
        use _ = torch.NewDisposeScope()
        let u0 = eager.Initial 1 |> Array.map (fun t -> t.detach().requires_grad_ true)

        let theta =
            eager.Theta() |> Array.map (fun t -> t.detach().clone().requires_grad_ true)

        let saved = Kernels.rollout sim u0 theta 0.0 dt steps steps segment
        (saved |> Array.map (fun v -> v.square().sum ()) |> Array.reduce (+)).backward ()

/// Runs the benchmark and writes the markdown to `path`; `quick` uses fewer rounds.
let run (path: string) (quick: bool) : int =
    Engine.init ()
    Engine.useThreads 1

    Bench.writeReport path (fun say ->
        let rounds = if quick then 3 else 9
        let date = DateTime.UtcNow.ToString "yyyy-MM-dd"
        say "# Benchmark: flux advection with each face's flux computed once"
        say ""

        say
            $"Machine: {Bench.machine ()}; load average {Bench.loadAverage ()} at the start. Date: {date}. The generated kernels of a model with `advectFlux` (van Leer) in float64, batch 1, one thread (the last row: the kernels' passes over 2 threads, libtorch on one), RK4, forward + backward of L = Σ (final state)² (gradients for u0 and θ), checkpoints every ⌈√T⌉ steps. Two plans of the same model: **once per face** (`Lowering.lower`: along periodic axes a kernel of its own writes the flux through each cell's upper face into a padded copy, read by the cell at itself and one cell down) and **in both cells** (`Lowering.lowerWith false`: each cell computes the fluxes through both its faces, as before). Operations per cell from `Kernels.operations` (forward: right-hand side; adjoint: vector–Jacobian product; face kernels included). After one warm-up run of each, {rounds} rounds, each timing the two sides in alternating order, every timed run after an untimed run of the same side. Wall and CPU time (ms); medians over the rounds with the smallest and largest in brackets; the ratio is the median of the per-round ratios of CPU times."

        say ""

        say
            "| model | ops forward (once / both) | ops adjoint (once / both) | once per face wall | in both cells wall | once per face CPU | in both cells CPU | once / both (CPU) |"

        say "|---|---|---|---|---|---|---|---|"

        let cases = [
            "climate coarse physics (ω, diagnostic ψ, q, P; J and advectFlux), 32², 20 steps of 0.05",
            Parse.model (ClimateModel.text ClimateModel.reference 32 2e-3 []),
            20,
            0.05,
            1
            "climate coarse physics, 64², 20 steps of 0.02",
            Parse.model (ClimateModel.text ClimateModel.reference 64 2e-3 []),
            20,
            0.02,
            1
            "stirred tracer (ψ steady, q by advectFlux), 128², 40 steps of 0.01", stirred 128, 40, 0.01, 1
            "the stirred tracer at 256², 20 steps of 0.005, the kernels' passes split over 2 threads",
            stirred 256,
            20,
            0.005,
            2
        ]

        for label, model, steps, dt, threads in cases do
            KernelThreads.useThreads threads

            let eager =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Backend = Backend.Eager
                            Dtype = torch.ScalarType.Float64
                    }
                    model

            let system = ResolvedSystem.ofModel model
            let once, both = Lowering.lowerWith true system, Lowering.lowerWith false system

            let ops (plan: KernelPlan) =
                let o = Kernels.operations (KernelSimulator(plan, None, Scheme.Rk4, [||], [||]))
                o.RightHandSide, o.Adjoint

            let (f1, a1), (f2, a2) = ops once, ops both

            let wall, cpu =
                Bench.rotatingRounds rounds [| loss eager once steps dt; loss eager both steps dt |]

            let per = List.map2 (/) cpu[0] cpu[1]

            say
                $"| {label} | {f1} / {f2} | {a1} / {a2} | {Bench.msText wall[0]} | {Bench.msText wall[1]} | {Bench.msText cpu[0]} | {Bench.msText cpu[1]} | {Bench.ratioText per} |"

        KernelThreads.useThreads 1
        say ""
        say $"Load average at the end: {Bench.loadAverage ()}.")

    0
