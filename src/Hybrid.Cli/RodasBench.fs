/// `hybrid bench-rodas`: Rodas4 rollouts with gradients on the generated kernels, forward + backward: the backward
/// pass keeping each step's stages and linear system (the default; the forward pass keeps the last steps) against
/// recomputing them, on a 1-D grid (banded solves), a 2-D grid (BiCGSTAB on blocks) and the climate case's coarse
/// model at 16² (CNN closures, a diagnostic ψ: 512 unknowns that all couple); and for that model, its steps started
/// matrix-free (the default from 256 unknowns) against forming A every step, and its speed-ups each against the run
/// without it (the CNN closures' JVPs in forward mode; the transposed products from a held adjoint). Auto on the 1-D
/// grid too (its Rodas4 steps kept). Wall and CPU time, interleaved. Writes bench/rodas.md.
module internal Hybrid.Cli.RodasBench

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels
open Hybrid.Models.Cases

/// A 1-D reaction–diffusion pair on 300 cells (600 unknowns, nearest neighbours: block tridiagonal solves).
let private line =
    "model line\ndomain interval [0, 1] cells 300\nfield u\nfield v\nparam D = 0.5\nparam r = 5\ndu/dt = D*lap(u) + r*u*(1 - u) - u*v\ndv/dt = 0.1*D*lap(v) + u - v\nboundary u noflux\nboundary v noflux\ninitial u = 0.5 + 0.4*cos(6.283185307179586*x)\ninitial v = 0.2"

/// Fisher–KPP on a 24 × 24 grid (BiCGSTAB on the blocks of A).
let private plane =
    "model plane\ndomain rectangle [0, 1] x [0, 1] cells 24 x 24\nfield u\nparam D = 0.2\nparam r = 5\ndu/dt = D*lap(u) + r*u*(1 - u)\nboundary u noflux\ninitial u = 0.5 + 0.4*cos(6.283185307179586*x)*sin(3*y)"

/// `text` compiled on the kernels in float64 (seed 1).
let private compiled (text: string) =
    Compiler.compile
        {
            Compiler.defaults with
                Backend = Backend.Kernels
                Dtype = torch.ScalarType.Float64
                Seed = 1
        }
        (Parse.model text)

/// Forward + backward of L = Σ over the saves (T/2 and T) of squares, `scheme` (Rodas4 or Auto) at relative
/// tolerance 10⁻⁶ (absolute 10⁻⁹) from a first step of 10⁻³, one trajectory, gradients for the initial state, the
/// parameters and the weights.
let private lossWith (scheme: Scheme) (sim: Simulator) (T: float) () =
    use _ = torch.NewDisposeScope()

    let options = {
        Rollout.defaults with
            Scheme = scheme
            Dt = 1e-3
            SaveTimes = [| T / 2.0; T |]
            Tolerance = { Relative = 1e-6; Absolute = 1e-9 }
            FiniteCheckEvery = 0
    }

    let u0 = sim.Initial 1 |> Array.map (fun t -> t.detach().requires_grad_ true)
    let trajectory = sim.Simulate(u0, options)
    (trajectory.Values |> Array.map (fun v -> v.square().sum ()) |> Array.reduce (+)).backward ()

/// `lossWith` Rodas4.
let private loss = lossWith Scheme.Rodas4

/// A simulator of `text` whose Rodas4 steppers are made, by one untimed run of `run`, with `hooks` set (each sets a
/// hook and gives back what resets it).
let private madeWith (hooks: (unit -> (unit -> unit)) list) (text: string) (run: Simulator -> unit -> unit) =
    let sim = compiled text
    let resets = hooks |> List.map (fun set -> set ())

    try
        run sim ()
    finally
        for reset in resets do
            reset ()

    sim

/// Steppers that form A every step (`RosenbrockStepper.MatrixFreeFrom` raised).
let private formingA () =
    RosenbrockStepper.MatrixFreeFrom <- Int32.MaxValue
    fun () -> RosenbrockStepper.MatrixFreeFrom <- 256

/// Steppers that take the CNN closures' JVPs by differentiating twice (`TangentPlan.forwardMode` off), as before the
/// forward mode.
let private differentiatingTwice () =
    TangentPlan.forwardMode <- false
    fun () -> TangentPlan.forwardMode <- true

/// Steppers whose matrix-free transposed products run the closures and solves forward for every product
/// (`RosenbrockStepper.HoldsTransposedProducts` off), as before they held the adjoint at U₀.
let private unheldTransposes () =
    RosenbrockStepper.HoldsTransposedProducts <- false
    fun () -> RosenbrockStepper.HoldsTransposedProducts <- true

/// Runs the benchmark and writes the markdown to `path`; `quick` uses fewer rounds.
let run (path: string) (quick: bool) : int =
    Engine.init ()
    // One thread for libtorch and the kernels: the CPU time of a run is its work.
    Engine.useThreads 1

    Bench.writeReport path (fun say ->
        let rounds = if quick then 2 else 5
        let date = DateTime.UtcNow.ToString "yyyy-MM-dd"
        let climate = ClimateModel.text ClimateModel.reference 16 2e-3 [ 16; 16 ]
        say "# Benchmark: Rodas4 with gradients on the generated kernels"
        say ""

        say
            $"Machine: {Bench.machine ()}; load average {Bench.loadAverage ()} at the start. Date: {date}. Float64, one trajectory, one thread for libtorch and the kernels; Rodas4 at relative tolerance 10⁻⁶ (absolute 10⁻⁹) from a first step of 10⁻³, saves at T/2 and T, forward + backward of L = Σ over the saves of squares (gradients for the initial state, the parameters and the network weights). After one warm-up run of each side, {rounds} rounds, each timing the sides in a rotating order, every timed run after an untimed run of the same side. Wall and CPU time (ms); medians over the rounds with the smallest and largest in brackets; ratios are the medians of the per-round ratios of CPU times."

        say ""

        say
            "Keeping each step's stages and linear system for the backward pass (the forward pass keeps the last accepted steps, up to 64 MiB, which the backward pass then neither replays nor recomputes) against recomputing them (each step's Jacobian probed and A formed again in its adjoint):"

        say ""
        say "| model | keeping wall | recomputing wall | keeping CPU | recomputing CPU | recomputing / keeping (CPU) |"
        say "|---|---|---|---|---|---|"

        for label, scheme, text, T in
            [
                "1-D, 300 cells × 2 fields (block tridiagonal), T = 0.1", Scheme.Rodas4, line, 0.1
                "the same with Auto (Dopri5 until it turns stiff, then Rodas4: its Rodas4 steps kept), T = 0.1",
                Scheme.Auto,
                line,
                0.1
                "2-D, 24 × 24 (BiCGSTAB on blocks), T = 0.1", Scheme.Rodas4, plane, 0.1
                "the climate case's coarse model, 16², CNN [16; 16] closures, diagnostic ψ (512 unknowns, matrix-free steps), T = 0.05",
                Scheme.Rodas4,
                climate,
                0.05
            ] do
            let keeping = lossWith scheme (compiled text) T
            let wall, cpu = Bench.rotatingRounds rounds [| keeping; Bench.recomputing keeping |]

            say
                $"| {label} | {Bench.msText wall[0]} | {Bench.msText wall[1]} | {Bench.msText cpu[0]} | {Bench.msText cpu[1]} | {Bench.ratioText (List.map2 (/) cpu[1] cpu[0])} |"

        say ""

        say
            "The climate model's steps started matrix-free (the default for systems that couple every cell from 256 unknowns: BiCGSTAB with J v from the tangent kernel, A formed only when a step's solves run out of a budget of U/4 products) against forming A every step (J probed 64 directions a pass, LU-factored), both keeping:"

        say ""

        say
            "| model | matrix-free wall | forming A wall | matrix-free CPU | forming A CPU | forming A / matrix-free (CPU) |"

        say "|---|---|---|---|---|---|"
        let matrixFree = loss (compiled climate) 0.05

        let climateWith hooks =
            loss (madeWith hooks climate (fun sim -> loss sim 0.05)) 0.05

        let formed = climateWith [ formingA ]
        let wall, cpu = Bench.rotatingRounds rounds [| matrixFree; formed |]

        say
            $"| the climate case's coarse model, 16², T = 0.05 | {Bench.msText wall[0]} | {Bench.msText wall[1]} | {Bench.msText cpu[0]} | {Bench.msText cpu[1]} | {Bench.ratioText (List.map2 (/) cpu[1] cpu[0])} |"

        say ""

        say
            "The climate model's products, each speed-up against the run without it: the CNN closures' Jacobian–vector products (the matrix-free steps' J v, and the probes of J where A is formed) in forward mode (the default: each convolution's linear part times the activation's slopes, the slopes computed once per state) against differentiating twice (a backward pass with its graph, then the derivative of that with respect to its seed: what any other network over whole fields gets); and the adjoint's matrix-free transposed products Aᵀw from one hold of the model's adjoint at the step's state (the default: the closures and the ψ solve run forward once per solve, their graphs kept, no weight gradients) against running them forward for every product:"

        say ""

        say "| model | default wall | without it wall | default CPU | without it CPU | without / default (CPU) |"

        say "|---|---|---|---|---|---|"

        for label, faster, slower in
            [
                "16², T = 0.05, matrix-free steps; JVPs in forward mode against differentiating twice",
                matrixFree,
                climateWith [ differentiatingTwice ]
                "the same, forming A every step", formed, climateWith [ formingA; differentiatingTwice ]
                "16², T = 0.05, matrix-free steps; transposed products from a held adjoint against running forward each",
                matrixFree,
                climateWith [ unheldTransposes ]
            ] do
            let wall, cpu = Bench.rotatingRounds rounds [| faster; slower |]

            say
                $"| {label} | {Bench.msText wall[0]} | {Bench.msText wall[1]} | {Bench.msText cpu[0]} | {Bench.msText cpu[1]} | {Bench.ratioText (List.map2 (/) cpu[1] cpu[0])} |"

        say ""
        say $"Load average at the end: {Bench.loadAverage ()}.")

    0
