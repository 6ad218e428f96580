/// `hybrid bench-kernels`: the kernel path (generated kernels and adjoints) against hand-written eager
/// TorchSharp, the compiled eager simulator, and a hand-written plain F# loop with a hand-written adjoint
/// (the practical limit on a CPU); a scaling table over grid size; peak memory of long rollouts with and
/// without checkpointing. Writes bench/kernels.md.
module internal Hybrid.Cli.KernelBench

open System
open System.IO
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels

/// 1-D Fisher–KPP with no-flux ends, RK4, written by hand on float arrays, with its adjoint written by hand:
/// the fastest this computation gets in .NET without SIMD.
module private PlainFisher =

    let private rhs (n: int) (h2inv: float) (d: float) (r: float) (u: float[]) (k: float[]) =
        for i in 0 .. n - 1 do
            let left = if i = 0 then u[0] else u[i - 1]
            let right = if i = n - 1 then u[n - 1] else u[i + 1]
            k[i] <- d * (left - 2.0 * u[i] + right) * h2inv + r * u[i] * (1.0 - u[i])

    /// λᵀ∂f/∂u into `out`; returns (λᵀ∂f/∂D, λᵀ∂f/∂r).
    let private vjp (n: int) (h2inv: float) (d: float) (r: float) (u: float[]) (lam: float[]) (out: float[]) =
        let mutable gd = 0.0
        let mutable gr = 0.0

        for j in 0 .. n - 1 do
            let left = if j = 0 then lam[0] else lam[j - 1]
            let right = if j = n - 1 then lam[n - 1] else lam[j + 1]
            out[j] <- d * h2inv * (left - 2.0 * lam[j] + right) + r * (1.0 - 2.0 * u[j]) * lam[j]
            let uleft = if j = 0 then u[0] else u[j - 1]
            let uright = if j = n - 1 then u[n - 1] else u[j + 1]
            gd <- gd + lam[j] * (uleft - 2.0 * u[j] + uright) * h2inv
            gr <- gr + lam[j] * u[j] * (1.0 - u[j])

        gd, gr

    /// Runs `steps` RK4 steps from u0, then the adjoint of L = Σ u_T²; returns (L, ∂L/∂D, ∂L/∂r).
    let lossAndGradient (n: int) (d: float) (r: float) (dt: float) (steps: int) (u0: float[]) =
        let h2inv = float (n * n)
        let states = Array.init (steps + 1) (fun _ -> Array.zeroCreate<float> n)
        Array.blit u0 0 states[0] 0 n
        let k = Array.init 4 (fun _ -> Array.zeroCreate<float> n)
        let s = Array.init 4 (fun _ -> Array.zeroCreate<float> n)
        let a = [| 0.0; 0.5; 0.5; 1.0 |]
        let b = [| 1.0 / 6.0; 1.0 / 3.0; 1.0 / 3.0; 1.0 / 6.0 |]

        /// Stage inputs s[0..3] and slopes k[0..2] (and k[3] when `last`).
        let stages (u: float[]) (last: bool) =
            for i in 0..3 do
                for c in 0 .. n - 1 do
                    s[i][c] <- if i = 0 then u[c] else u[c] + dt * a[i] * k[i - 1][c]

                if i < 3 || last then
                    rhs n h2inv d r s[i] k[i]

        for step in 0 .. steps - 1 do
            let u = states[step]
            stages u true
            let next = states[step + 1]

            for c in 0 .. n - 1 do
                next[c] <- u[c] + dt * (b[0] * k[0][c] + b[1] * k[1][c] + b[2] * k[2][c] + b[3] * k[3][c])

        let final = states[steps]
        let loss = final |> Array.sumBy (fun v -> v * v)
        let mutable lam = final |> Array.map (fun v -> 2.0 * v)
        let sbar = Array.init 4 (fun _ -> Array.zeroCreate<float> n)
        let kbar = Array.zeroCreate<float> n
        let mutable gd = 0.0
        let mutable gr = 0.0

        for step in steps - 1 .. -1 .. 0 do
            stages states[step] false

            for i in 3..-1..0 do
                for c in 0 .. n - 1 do
                    kbar[c] <- dt * b[i] * lam[c] + (if i < 3 then dt * a[i + 1] * sbar[i + 1][c] else 0.0)

                let pd, pr = vjp n h2inv d r s[i] kbar sbar[i]
                gd <- gd + pd
                gr <- gr + pr

            lam <- Array.init n (fun c -> lam[c] + sbar[0][c] + sbar[1][c] + sbar[2][c] + sbar[3][c])

        loss, gd, gr

/// One-scale Lorenz-96, dXₖ/dt = (Xₖ₊₁ − Xₖ₋₂) Xₖ₋₁ − Xₖ + F.
let internal lorenzModel (k: int) =
    let shift m = Shift("X", LatticeIndex.K, m)

    Model.empty "lorenz96"
    |> Model.withDomain (Domain.Lattice(k, 0))
    |> Model.addField (Model.field "X")
    |> Model.addParam (Model.param "F" 8.0)
    |> Model.addEquation "X" ((shift 1 - shift -2) * shift -1 - Sym "X" + Sym "F")

let private lorenzHand (f: torch.Tensor) (s: torch.Tensor[]) =
    let x = s[0]
    [| (x.roll (-1L, 1L) - x.roll (2L, 1L)) * x.roll (1L, 1L) - x + f |]

let internal lorenzInitial (k: int) = [|
    torch
        .tensor(Array.init k (fun i -> 8.0 + (if i = 0 then 0.01 else 0.0)), dtype = torch.ScalarType.Float64)
        .reshape ([| 1L; int64 k |])
|]

/// Checkpoint segment of ⌈√T⌉ steps: the kernel path's default, small tapes that stay in cache.
let internal sqrtSegment (steps: int) = int (ceil (sqrt (float steps)))

/// Forward + backward of L = Σ (final state)² through the kernel simulator, checkpoints every `segment` steps.
let internal fusedLoss
    (sim: KernelSimulator)
    (theta: unit -> torch.Tensor[])
    (u0: torch.Tensor[])
    (dt: float)
    (steps: int)
    (segment: int)
    ()
    =
    use _ = torch.NewDisposeScope()
    let saved = Kernels.rollout sim u0 (theta ()) 0.0 dt steps steps segment
    let loss = saved |> Array.map (fun s -> s.square().sum ()) |> Array.reduce (+)
    loss.backward ()

let internal compiledLoss (c: Simulator) (u0: torch.Tensor[]) (dt: float) (steps: int) () =
    use _ = torch.NewDisposeScope()

    let o = {
        Rollout.defaults with
            Dt = dt
            SaveTimes = [| float steps * dt |]
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    let traj = c.Simulate(u0, o)
    (traj.Values |> Array.map (fun s -> s.square().sum ()) |> Array.reduce (+)).backward ()

/// Forward + backward of L = Σ (final state)² through a hand-written eager RK4 rollout. `rhs ()` computes the
/// parameters' values once per run, as the kernel and compiled paths do, and returns the right-hand side.
let internal handLoss (rhs: unit -> torch.Tensor[] -> torch.Tensor[]) (u0: torch.Tensor[]) (dt: float) (steps: int) () =
    use _ = torch.NewDisposeScope()
    let u = Bench.handRollout (rhs ()) dt steps u0
    (u |> Array.map (fun s -> s.square().sum ()) |> Array.reduce (+)).backward ()

/// Pool parts that compute in registers only (a dependent chain of multiply–adds per part, about 10 µs each): how
/// the worker pool scales when memory is not the limit.
type private RegisterParts(parts: int) =
    let results = Array.zeroCreate<float> parts
    member _.Parts = parts

    interface IParts with
        member _.Execute(part: int) =
            let mutable x = float part

            for _ in 1..10_000 do
                x <- x * 0.999999 + 1e-6

            results[part] <- x

/// Pool parts that compute in registers only at the core's full SIMD rate (sixteen independent chains of 8-lane
/// float64 multiply–adds per part, a few µs each where Vector512 is accelerated): unlike `RegisterParts`, whose one
/// dependent chain leaves most of a core idle, these fill its vector units, so two threads scale 2× only on two
/// physical cores that do not share them — hardware threads of one core (a VM's vCPUs may be) share the units. The
/// ceiling of this machine for the SIMD-bound kernel passes.
type private VectorParts(parts: int) =
    let results = Array.zeroCreate<float> parts
    member _.Parts = parts

    interface IParts with
        member _.Execute(part: int) =
            let a = Runtime.Intrinsics.Vector512.Create 0.999999
            let b = Runtime.Intrinsics.Vector512.Create 1e-6
            let mutable x0 = Runtime.Intrinsics.Vector512.Create(float part)
            let mutable x1 = x0 + b
            let mutable x2 = x1 + b
            let mutable x3 = x2 + b
            let mutable x4 = x3 + b
            let mutable x5 = x4 + b
            let mutable x6 = x5 + b
            let mutable x7 = x6 + b
            let mutable x8 = x7 + b
            let mutable x9 = x8 + b
            let mutable x10 = x9 + b
            let mutable x11 = x10 + b
            let mutable x12 = x11 + b
            let mutable x13 = x12 + b
            let mutable x14 = x13 + b
            let mutable x15 = x14 + b

            for _ in 1..625 do
                x0 <- x0 * a + b
                x1 <- x1 * a + b
                x2 <- x2 * a + b
                x3 <- x3 * a + b
                x4 <- x4 * a + b
                x5 <- x5 * a + b
                x6 <- x6 * a + b
                x7 <- x7 * a + b
                x8 <- x8 * a + b
                x9 <- x9 * a + b
                x10 <- x10 * a + b
                x11 <- x11 * a + b
                x12 <- x12 * a + b
                x13 <- x13 * a + b
                x14 <- x14 * a + b
                x15 <- x15 * a + b

            results[part] <-
                Runtime.Intrinsics.Vector512.Sum(
                    x0
                    + x1
                    + x2
                    + x3
                    + x4
                    + x5
                    + x6
                    + x7
                    + x8
                    + x9
                    + x10
                    + x11
                    + x12
                    + x13
                    + x14
                    + x15
                )

/// The line comparing the float32 kernels with the float64 ones: forward + backward of the same rollout from a float32
/// and a float64 state (Gray–Scott 2-D 256², 20 RK4 steps; Fisher–KPP 1-D N = 256, 1,000 RK4 steps; checkpoints every
/// ⌈√T⌉ steps), `reps` interleaved pairs after `warmup` s of warm-up; each ratio is the median (range) of the per-pair
/// ratios float64 time / float32 time.
let precisionLine (warmup: float) (reps: int) : string =
    let ratio (c: Simulator) (init: torch.Tensor[]) (dt: float) (steps: int) =
        let f = Kernels.compile Scheme.Rk4 c.Model
        let f32 = torch.ScalarType.Float32

        let theta32 () =
            c.Theta() |> Array.map (fun t -> t.detach().to_type(f32).requires_grad_ (true))

        let init32 = init |> Array.map (fun t -> t.to_type f32)
        let on64 = fusedLoss f c.Theta init dt steps (sqrtSegment steps)
        let on32 = fusedLoss f theta32 init32 dt steps (sqrtSegment steps)
        let t64, t32, r = Bench.compare warmup reps on64 on32
        $"{r.Median:F2}× ({r.Low:F2}–{r.High:F2}; {t64.Median:F1} ms → {t32.Median:F1} ms)"

    let gs =
        ratio (Compiler.compile Bench.eagerOnly (Bench.grayScottModel 256)) (Bench.grayScottInitial 256) 0.15 20

    let fisher = Compiler.compile Bench.eagerOnly (Bench.fisherModel 256)
    let fk = ratio fisher (fisher.Initial 1) 0.01 1000

    $"float32 kernels against float64 (forward + backward, checkpoints every ⌈√T⌉ steps, {reps} interleaved pairs; float64 time / float32 time, median (range)): Gray–Scott 2-D 256², 20 RK4 steps: {gs}; Fisher–KPP 1-D N = 256, 1,000 RK4 steps: {fk}."

/// A time as "median (smallest–largest)".
let private ms (digits: int) (s: Bench.Spread) =
    let f (v: float) = v.ToString("F" + string digits)
    $"{f s.Median} ({f s.Low}–{f s.High})"

/// The values of a tensor, float64.
let private values (x: torch.Tensor) =
    x.detach().to_type(torch.ScalarType.Float64).contiguous().data<float>().ToArray()

/// The parameter values θ as one array (the kernels' layout).
let private thetaValues (theta: unit -> torch.Tensor[]) = theta () |> Array.collect values

/// One stepper's phases (batch 1) from `initial` (interior values per field): `steps` forward steps, adjoint steps
/// and finite checks, and the taped forward and backward passes of a `steps`-step rollout with checkpoints every
/// ⌈√steps⌉; with the state, the next state and two adjoints it runs on.
let private stepperPhases (stepper: IStepper<float>) (initial: float[][]) (theta: float[]) (dt: float) (steps: int) =
    let u = stepper.NewState()

    initial
    |> Array.iteri (fun f v -> stepper.Maps[f].Interior |> Array.iteri (fun i at -> u[f].[at] <- v[i]))

    Ghosts.fill stepper.Maps 1 u

    let next, lambda, lambdaPrevious =
        stepper.NewState(), stepper.NewState(), stepper.NewState()

    let thetaAdjoint = Array.zeroCreate theta.Length
    lambda |> Array.iter (fun l -> Array.fill l 0 l.Length 1e-3)

    let spec = RolloutSpec.uniform 0.0 dt steps steps (sqrtSegment steps)

    let tape = TapedRollout.forward stepper u theta spec
    let savedAdjoint = [| lambda |]

    let phases = [
        $"RK4 step, {steps} calls",
        (fun () ->
            for _ in 1..steps do
                stepper.Step(u, theta, 0.0, dt, next))
        $"adjoint step, {steps} calls",
        (fun () ->
            for _ in 1..steps do
                stepper.StepAdjoint(u, theta, 0.0, dt, lambda, lambdaPrevious, thetaAdjoint))
        $"finite check, {steps} calls",
        (fun () ->
            for _ in 1..steps do
                stepper.CheckFinite(next, 1, dt))
        $"taped forward (steps and checks, checkpoints every {spec.Segment})",
        (let pool = StatePool.Of stepper

         fun () ->
             // Its saved states and checkpoints go back to the pool, as a rollout's do (kept, each call would take
             // fresh arrays, whose pages fault on their first writes).
             let taped = TapedRollout.forward stepper u theta spec
             taped.Saved |> Array.iter pool.Return
             pool.ReturnCheckpoints taped.Checkpoints)
        "taped backward (recomputed segments and adjoint steps)",
        (fun () -> TapedRollout.backward stepper tape theta spec savedAdjoint false |> ignore)
    ]

    phases, u, next, lambda, lambdaPrevious

/// Where the time goes at 256² (Gray–Scott): one stepper's forward step, adjoint step and finite check, the taped
/// passes and the whole rollout on 1 and 2 threads, each phase in interleaved pairs.
let private grayScottPhases (say: string -> unit) (warmup: float) (reps: int) =
    say $"Phases at 256² (one stepper, 20 calls of each, {reps} interleaved pairs after the warm-up; ms):"

    say ""
    say "| phase | 1 thread | 2 threads | speed-up 1 → 2 threads |"
    say "|---|---|---|---|"

    let phases =
        let nn = 256
        let c = Compiler.compile Bench.eagerOnly (Bench.grayScottModel nn)
        let sim = Kernels.compile Scheme.Rk4 c.Model
        let stepper = sim.Stepper 1
        let dt = min 1.0 (0.2 / float (nn * nn) / 2e-5)

        let theta = thetaValues c.Theta
        let initial = Bench.grayScottInitial nn |> Array.map values

        let common, u, next, lambda, lambdaPrevious =
            stepperPhases stepper initial theta dt 20

        let thetaAdjointScratch = Array.zeroCreate theta.Length
        let ten = Array.init 10 (fun _ -> stepper.NewState())
        let split = RowSplit.ofPlan (stepper.Plan) 1
        let sums = CombinationPass(split, u.Length, 3)
        let registers = RegisterParts(split.Flat.Length * u.Length)
        let vectors = VectorParts(split.Flat.Length * u.Length)

        let plain = stepper :?> Stepper<float>

        [
            yield! common
            // The two kinds of pass an RK4 step runs (four right-hand sides and their stage sums) and the serial
            // ghost fill between them, alone.
            "right-hand side, 80 calls",
            (fun () ->
                for _ in 1..80 do
                    plain.Rhs(u, theta, 0.0, next))
            "right-hand-side adjoint, 80 calls",
            (fun () ->
                for _ in 1..80 do
                    plain.RhsAdjoint(u, theta, 0.0, lambda, lambdaPrevious, thetaAdjointScratch))
            "ghost fill, 80 calls",
            (fun () ->
                for _ in 1..80 do
                    plain.FillGhosts(next, theta, 0.0))
            "whole rollout through torch (as in the table above)",
            fusedLoss sim c.Theta (Bench.grayScottInitial nn) dt 20 (sqrtSegment 20)
            // What a rollout's autograd function copies between tensors and padded states, 10 times: u0 [B; N] in,
            // the saved state out as [S; B; N], its cotangent in, ∂L/∂u0 out.
            "tensor boundary (u0 in, saved out, cotangent in, ∂L/∂u0 out), 10 calls",
            (let x =
                torch.cat (Bench.grayScottInitial nn |> Array.map (fun t -> t.reshape (1L, -1L)), 1L)

             let pool = StatePool.Of stepper

             fun () ->
                 use _ = torch.NewDisposeScope()

                 for _ in 1..10 do
                     let start = StateLayout.ofTensor stepper x 0
                     let saved = StateLayout.savedTensor stepper [| start |]
                     let adjoint = StateLayout.savedAdjoints stepper saved 1
                     StateLayout.inputGradients stepper adjoint[0] [||] |> ignore
                     pool.Return start
                     pool.Return adjoint[0])
            // The pool's ceiling on this machine: 180 passes (an RK4 step's nine, 20 times) of stage sums alone
            // (memory-bound), and of parts that only compute in registers, each split as the step's passes are.
            "stage sums alone, 180 passes",
            (fun () ->
                for _ in 1..180 do
                    sums.Set(next, u)
                    sums.Add(0.5 * dt, lambda)
                    sums.Add(0.5 * dt, lambdaPrevious)
                    KernelThreads.pool().Run(sums.Parts, sums))
            "stage sums over ten states, 180 passes",
            (fun () ->
                for i in 1..180 do
                    let at j = ten[(4 * i + j) % 10]
                    sums.Set(at 0, at 1)
                    sums.Add(0.5 * dt, at 2)
                    sums.Add(0.5 * dt, at 3)
                    KernelThreads.pool().Run(sums.Parts, sums))
            "register-only parts, 180 passes",
            (fun () ->
                for _ in 1..180 do
                    KernelThreads.pool().Run(registers.Parts, registers))
            "register-only parts at the full SIMD rate (16 independent 8-lane chains), 180 passes",
            (fun () ->
                for _ in 1..180 do
                    KernelThreads.pool().Run(vectors.Parts, vectors))
        ]

    for name, phase in phases do
        let on (threads: int) () =
            KernelThreads.useThreads threads
            phase ()

        let one, two, ratio = Bench.compare warmup reps (on 1) (on 2)
        KernelThreads.useThreads (KernelThreads.configured ())
        say $"| {name} | {ms 2 one} | {ms 2 two} | {ratio.Median:F2}× ({ratio.Low:F2}–{ratio.High:F2}) |"

/// Each phase warmed up, then `reps` rounds that time every phase once (after `Bench.settle` and an untimed run),
/// in an order rotated from round to round so that a slow spell of the machine touches them all; per phase its
/// wall times and its thread's CPU times (ms) per round.
let private rounds (warmup: float) (reps: int) (phases: (unit -> unit)[]) =
    for f in phases do
        Bench.warmUp warmup f

    let wall = Array.init phases.Length (fun _ -> Array.zeroCreate<float> reps)
    let cpu = Array.init phases.Length (fun _ -> Array.zeroCreate<float> reps)

    for k in 0 .. reps - 1 do
        for j in 0 .. phases.Length - 1 do
            let p = (j + k) % phases.Length
            Bench.settle ()
            phases[p]()
            let c0 = Bench.threadCpuMs ()
            let w = Diagnostics.Stopwatch.StartNew()
            phases[p]()
            wall[p].[k] <- w.Elapsed.TotalMilliseconds
            cpu[p].[k] <- Bench.threadCpuMs () - c0

    wall, cpu

/// Where the time goes on the 1-D case (Fisher–KPP, N = 256, 1,000 RK4 steps, one thread): one stepper's forward
/// step, adjoint step and finite check, the taped passes, the whole rollout, and the hand-written SIMD reference
/// (`SimdFisher`), interleaved in rounds.
let private fisherPhases (say: string -> unit) (warmup: float) (reps: int) =
    let n, steps, dt = 256, 1000, 0.01
    let fisher = Compiler.compile Bench.eagerOnly (Bench.fisherModel n)
    let sim = Kernels.compile Scheme.Rk4 fisher.Model
    let stepper = sim.Stepper 1
    let u0 = fisher.Initial 1
    let theta = thetaValues fisher.Theta
    let start = values u0[0]
    let common, _, _, _, _ = stepperPhases stepper [| start |] theta dt steps

    // The same rollout on kernels built with the runtime's `Vector<float>` (where the loops are wider), to compare
    // the widths in one process.
    let narrow =
        if Codegen.wide () then
            let narrowSim =
                Codegen.narrowly (fun () ->
                    let s = Kernels.compile Scheme.Rk4 fisher.Model
                    s.Stepper 1 |> ignore
                    s)

            [|
                $"whole rollout, kernels built with Vector<float> ({Numerics.Vector<float>.Count} lanes)",
                fusedLoss narrowSim fisher.Theta u0 dt steps (sqrtSegment steps)
            |]
        else
            [||]

    let phases = [|
        yield! common
        "whole rollout through torch (forward + backward)", fusedLoss sim fisher.Theta u0 dt steps (sqrtSegment steps)
        yield! narrow
        $"SIMD reference, {SimdFisher.describe ()} (forward + backward, every state kept)",
        (fun () -> SimdFisher.lossAndGradient n theta[0] theta[1] dt steps start |> ignore)
    |]

    let times, cpu = rounds warmup reps (Array.map snd phases)

    say
        $"Phases of the 1-D case (Fisher–KPP, N = {n}, {steps} RK4 steps, one thread; the kernels' loops run {Codegen.width ()} float64 lanes; {reps} rounds after the warm-up, each timing every phase once in rotated order; wall time, and the CPU time of the timing thread, which leaves out waits for a core on a loaded machine; ms):"

    say ""
    say "| phase | wall | thread CPU |"
    say "|---|---|---|"

    for k in 0 .. phases.Length - 1 do
        say
            $"| {fst phases[k]} | {ms 3 (Bench.spread (List.ofArray times[k]))} | {ms 3 (Bench.spread (List.ofArray cpu[k]))} |"

    let last = phases.Length - 1

    let perRound (label: string) (k: int) =
        let ratio (t: float[][]) =
            Bench.spread (List.init reps (fun r -> t[k].[r] / t[last].[r]))

        let w, c = ratio times, ratio cpu

        say
            $"- {label} / SIMD reference, per round: wall {w.Median:F2}× ({w.Low:F2}–{w.High:F2}), thread CPU {c.Median:F2}× ({c.Low:F2}–{c.High:F2})"

    say ""
    perRound "whole rollout" 5

    if narrow.Length > 0 then
        perRound "whole rollout with Vector<float> kernels" 6

/// Prints the phase tables alone (`hybrid bench-kernel-phases`): where the kernels' time goes, without the rest of
/// the benchmark and without writing a file; `only` = "1d" or "2d" picks one table ("": both).
let phases (reps: int) (only: string) : int =
    Engine.init ()

    if only <> "1d" then
        grayScottPhases (printfn "%s") 1.5 reps
        printfn ""

    if only <> "2d" then
        fisherPhases (printfn "%s") 1.5 reps

    0

/// Runs the benchmark and writes the markdown to `path`; `quick` uses fewer repetitions and sizes.
let run (path: string) (quick: bool) : int =
    Engine.init ()
    let lines = Collections.Generic.List<string>()

    let say (s: string) =
        printfn "%s" s
        lines.Add s

    let reps = if quick then 3 else 7
    // Seconds of warm-up per side (at least two runs): the tiered JIT has recompiled the hot paths by then.
    let warmup = if quick then 0.2 else 1.5
    let date = DateTime.UtcNow.ToString "yyyy-MM-dd"
    say "# Benchmark: generated kernels with generated adjoints"
    say ""

    say
        $"Machine: {Bench.machine ()}. Date: {date}. float64, batch 1, forward + backward of L = Σ u_T². The kernel path keeps checkpoints every ⌈√T⌉ steps and recomputes each segment in the backward pass (its default); the plain loop keeps every state. Each side is warmed up first (at least two runs and {warmup} s, so .NET's tiered JIT has optimised the hot paths), then timed {reps} times in a row; times are medians with the smallest and largest in brackets. The ratios come from {reps} pairs timed back to back in alternating order (kernels with hand-written eager, kernels with the plain loop), so a slow spell of the machine hits both sides of a pair: each is the median of the per-pair ratios, with their smallest and largest in brackets. \"Kernels in pairs\" are the kernel runs of the pairs with hand-written eager, \"kernels alone\" {reps} runs in a row; the hand-written eager code computes the parameters' values once per run, as the other paths do. Before every timed run the .NET heap is collected, and every timed run in the pairs follows an untimed run of the same side, so each side is timed as it runs repeatedly, not with the other side's after-effects: an eager run frees hundreds of thousands of small native blocks into glibc's fast bins, and the next large allocation walks and merges them all (30–50 ms), which made kernels timed right after an eager run 4–15× slower than alone (the cause found by turning the fast bins off with GLIBC_TUNABLES=glibc.malloc.mxfast=0: most of the gap went away); the untimed run pays that merge. The native heap keeps freed memory (Hybrid's default), so the harness no longer trims it (`malloc_trim`) between runs: trimming handed the kept memory back to the system, and the next run paid a page fault per fresh block (with HYBRID_NATIVE_HEAP=system it still trims before each untimed run, never right before a timed one)."

    say ""

    // 1-D Fisher–KPP, N = 256, 1,000 RK4 steps.
    let n, steps, dt = 256, 1000, 0.01
    let fisher = Compiler.compile Bench.eagerOnly (Bench.fisherModel n)
    let fisherFused = Kernels.compile Scheme.Rk4 fisher.Model
    let u0 = fisher.Initial 1
    let th () = fisher.Theta()

    let plainU0 = u0[0].data<float>().ToArray()
    let d, r = (th ()).[0].ToDouble(), (th ()).[1].ToDouble()

    // The plain loop must compute what the kernel path computes: compare the gradients once.
    let _, plainD, plainR = PlainFisher.lossAndGradient n d r dt steps plainU0

    let fusedD, fusedR =
        let theta = [|
            torch.tensor (d, dtype = torch.ScalarType.Float64, requires_grad = true)
            torch.tensor (r, dtype = torch.ScalarType.Float64, requires_grad = true)
        |]

        let saved = Kernels.rollout fisherFused u0 theta 0.0 dt steps steps steps
        saved[0].square().sum().backward ()
        theta[0].grad.ToDouble(), theta[1].grad.ToDouble()

    let agreement =
        max (abs (plainD - fusedD) / abs fusedD) (abs (plainR - fusedR) / abs fusedR)

    say
        $"Check: the plain loop's hand-written adjoint and the generated adjoint agree on ∂L/∂D and ∂L/∂r to {agreement:E1} (relative)."

    say ""

    say
        "| case | hand-written eager TorchSharp (ms) | compiled eager (ms) | kernels in pairs (ms) | kernels alone (ms) | plain F# loop + hand adjoint (ms) | eager / kernels | kernels / plain |"

    say "|---|---|---|---|---|---|---|---|"

    /// One case: the kernel path timed in pairs with the hand-written eager code and with the plain loop (if
    /// any), on its own, and the compiled eager path on its own. Returns the median speed-up over eager and its
    /// smallest value, the median and largest kernels/plain ratio, and the median kernel time in the pairs and
    /// alone.
    let row (case: string) (hand: unit -> unit) (compiled: unit -> unit) (kernels: unit -> unit) plain =
        let kernelMs, handMs, toHand = Bench.compare warmup reps kernels hand
        let compiledMs = Bench.time warmup reps compiled
        let aloneMs = Bench.time warmup reps kernels

        let speedup, slowest, fastest =
            1.0 / toHand.Median, 1.0 / toHand.High, 1.0 / toHand.Low

        let plainCell, ratioCell, vsPlain =
            match plain with
            | Some p ->
                let _, plainMs, ratio = Bench.compare warmup reps kernels p

                ms 1 plainMs, $"{ratio.Median:F2}× ({ratio.Low:F2}–{ratio.High:F2})", Some(ratio.Median, ratio.High)
            | None -> "—", "—", None

        say
            $"| {case} | {ms 1 handMs} | {ms 1 compiledMs} | {ms 2 kernelMs} | {ms 2 aloneMs} | {plainCell} | {speedup:F1}× ({slowest:F1}–{fastest:F1}) | {ratioCell} |"

        (speedup, slowest), vsPlain, (kernelMs.Median, aloneMs.Median)

    let fisherSpeedup, fisherVsPlain, fisherTimes =
        row
            $"Fisher–KPP 1-D, N = {n}, {steps} RK4 steps"
            (handLoss
                (fun () ->
                    let p = th ()
                    Bench.fisherHand n p[0] p[1])
                u0
                dt
                steps)
            (compiledLoss fisher u0 dt steps)
            (fusedLoss fisherFused th u0 dt steps (sqrtSegment steps))
            (Some(fun () -> PlainFisher.lossAndGradient n d r dt steps plainU0 |> ignore))

    // 2-D Gray–Scott, 128², 500 RK4 steps.
    let m, gsSteps = (if quick then 32 else 128), (if quick then 50 else 500)
    let gs = Compiler.compile Bench.eagerOnly (Bench.grayScottModel m)
    let gsFused = Kernels.compile Scheme.Rk4 gs.Model
    let v0 = Bench.grayScottInitial m

    let grayScottSpeedup, _, grayScottTimes =
        row
            $"Gray–Scott 2-D, {m}², {gsSteps} RK4 steps"
            (handLoss (fun () -> Bench.grayScottHand m (gs.Theta())) v0 1.0 gsSteps)
            (compiledLoss gs v0 1.0 gsSteps)
            (fusedLoss gsFused gs.Theta v0 1.0 gsSteps (sqrtSegment gsSteps))
            None

    // Lorenz-96, K = 40, 1,000 RK4 steps.
    let k, lSteps, ldt = 40, 1000, 0.005
    let lorenz = Compiler.compile Bench.eagerOnly (lorenzModel k)
    let lorenzFused = Kernels.compile Scheme.Rk4 lorenz.Model
    let x0 = lorenzInitial k

    let _, _, lorenzTimes =
        row
            $"Lorenz-96, K = {k}, {lSteps} RK4 steps"
            (handLoss (fun () -> lorenzHand (lorenz.Theta()).[0]) x0 ldt lSteps)
            (compiledLoss lorenz x0 ldt lSteps)
            (fusedLoss lorenzFused lorenz.Theta x0 ldt lSteps (sqrtSegment lSteps))
            None

    // The goals of the fast path, checked on this run's medians; the worst pair is given beside each.
    let goal (text: string) (met: bool) (detail: string) =
        let verdict = if met then "met" else "missed"
        say $"- {text}: {verdict} ({detail})"

    say ""
    say "Goals (on the median of the pairs; the worst pair in brackets):"

    let speedupGoal (text: string) (target: float) ((median, worst): float * float) =
        goal text (median >= target) $"{median:F1}×; worst pair {worst:F1}×"

    speedupGoal "kernels ≥ 20× faster than hand-written eager on the 1-D case" 20.0 fisherSpeedup
    speedupGoal "kernels ≥ 3× faster than hand-written eager on the 2-D case" 3.0 grayScottSpeedup

    match fisherVsPlain with
    | Some(ratio, worst) ->
        let why =
            if ratio <= 1.5 then
                ""
            else
                "; the kernel path recomputes each √T checkpoint segment in the backward pass and refills ghost cells at every stage, while the plain loop keeps every state and reads its boundaries inline"

        goal
            "kernels within 1.5× of the hand-written plain loop"
            (ratio <= 1.5)
            $"{ratio:F2}×; worst pair {worst:F2}×{why}"
    | None -> ()

    // The kernels' time should not depend on what runs beside them once both are warmed up.
    let consistent =
        [ fisherTimes; grayScottTimes; lorenzTimes ]
        |> List.map (fun (paired, alone) -> paired / alone)

    let worst = consistent |> List.maxBy (fun r -> abs (r - 1.0))

    goal
        "kernel times in the pairs and alone agree within 15% (all three cases)"
        (abs (worst - 1.0) <= 0.15)
        ("paired / alone: "
         + (consistent |> List.map (fun r -> $"{r:F2}") |> String.concat ", "))

    // Scaling: where each path wins.
    say ""

    say
        "Scaling over grid size and number of steps (forward + backward, RK4, median of 3 after the warm-up; compiled eager vs kernels, ms):"

    say ""
    say "| grid | steps | compiled eager | kernels | eager / kernels |"
    say "|---|---|---|---|---|"

    let scale (label: string) (c: Simulator) (f: KernelSimulator) (init: torch.Tensor[]) (dt: float) (steps: int) =
        let e = (Bench.time warmup 3 (compiledLoss c init dt steps)).Median

        let fu =
            (Bench.time warmup 3 (fusedLoss f c.Theta init dt steps (sqrtSegment steps))).Median

        say $"| {label} | {steps} | {e:F1} | {fu:F1} | {e / fu:F1}× |"

    for nn in (if quick then [ 64; 256 ] else [ 64; 256; 1024; 4096 ]) do
        let c = Compiler.compile Bench.eagerOnly (Bench.fisherModel nn)

        scale
            $"1-D N = {nn}"
            c
            (Kernels.compile Scheme.Rk4 c.Model)
            (c.Initial 1)
            (min 0.01 (0.2 / float (nn * nn) / 1e-4))
            200

    // Over the number of steps at N = 256: the fixed cost of entering the kernel function against per-step cost.
    for steps in (if quick then [ 20 ] else [ 20; 2000; 5000 ]) do
        scale $"1-D N = {n}" fisher fisherFused u0 dt steps

    for nn in (if quick then [ 32 ] else [ 32; 64; 128; 256; 512 ]) do
        let c = Compiler.compile Bench.eagerOnly (Bench.grayScottModel nn)

        scale
            $"2-D {nn}²"
            c
            (Kernels.compile Scheme.Rk4 c.Model)
            (Bench.grayScottInitial nn)
            (min 1.0 (0.2 / float (nn * nn) / 2e-5))
            20

    // Threads: the same kernels on 1 and on 2 threads of the worker pool, interleaved in pairs.
    say ""

    say
        $"Threads (Gray–Scott 2-D, forward + backward, 20 RK4 steps; kernels on the worker pool with 1 and 2 threads, {reps} interleaved pairs after the warm-up; the passes are split into the same parts whatever the thread count, so both compute the same numbers; ms):"

    say ""
    say "| grid | parts | 1 thread | 2 threads | speed-up 1 → 2 threads |"
    say "|---|---|---|---|---|"

    let threadSpeedups = [
        for nn in (if quick then [ 256 ] else [ 128; 256; 512 ]) ->
            let c = Compiler.compile Bench.eagerOnly (Bench.grayScottModel nn)
            let f = Kernels.compile Scheme.Rk4 c.Model
            let init = Bench.grayScottInitial nn
            let dt = min 1.0 (0.2 / float (nn * nn) / 2e-5)

            let parts =
                (RowSplit.ofPlan (Lowering.lower (ResolvedSystem.ofModel c.Model)) 1).Rows.Length

            let on (threads: int) () =
                KernelThreads.useThreads threads
                fusedLoss f c.Theta init dt 20 (sqrtSegment 20) ()

            let one, two, ratio = Bench.compare warmup reps (on 1) (on 2)
            KernelThreads.useThreads (KernelThreads.configured ())
            // `compare`'s ratio is its first side over its second: 1 thread's time over 2 threads'.
            let speedup = ratio.Median

            say $"| {nn}² | {parts} | {ms 1 one} | {ms 1 two} | {speedup:F2}× ({ratio.Low:F2}–{ratio.High:F2}) |"

            nn, speedup
    ]

    say ""
    say (precisionLine warmup reps)
    say ""
    grayScottPhases say warmup reps
    say ""
    fisherPhases say warmup reps

    match threadSpeedups |> List.tryFind (fun (nn, _) -> nn = 256) with
    | Some(_, speedup) ->
        say ""

        goal
            "≥ 1.7× from 1 to 2 threads at 256²"
            (speedup >= 1.7)
            $"{speedup:F2}× on {Environment.ProcessorCount} visible cores"
    | None -> ()

    // Memory of long rollouts with gradients, each in a fresh process (a process's peak resident set only
    // grows, so earlier runs would hide later peaks).
    say ""
    say "Long rollouts with gradients (kernels, Fisher–KPP N = 256, RK4, Δt = 0.001), each in a fresh process:"
    say "checkpoints every √T steps versus none (segment = T). Tape = the states the backward pass keeps, counted;"
    say "peak = growth of the process's peak resident set (VmHWM) during forward + backward."
    say ""
    say "| steps | checkpointing | tape (MB) | peak growth (MB) | wall time (s) |"
    say "|---|---|---|---|---|"

    for longSteps in (if quick then [ 10_000 ] else [ 10_000; 100_000 ]) do
        for segment, name in [ sqrtSegment longSteps, "√T"; longSteps, "off" ] do
            let tape = float (longSteps / segment + segment) * float ((n + 2) * 8) / 1e6

            // The same program again: its apphost, or `dotnet hybrid.dll` when started that way.
            let host = Environment.ProcessPath

            let args =
                if Path.GetFileNameWithoutExtension host = "dotnet" then
                    $"\"{Reflection.Assembly.GetEntryAssembly().Location}\" "
                else
                    ""

            let psi =
                Diagnostics.ProcessStartInfo(
                    host,
                    $"{args}bench-kernels-memory {longSteps} {segment}",
                    RedirectStandardOutput = true,
                    UseShellExecute = false
                )

            use p = Diagnostics.Process.Start psi
            let output = p.StandardOutput.ReadToEnd().Trim()
            p.WaitForExit()

            match output.Split ' ' with
            | [| peak; seconds |] -> say $"| {longSteps:N0} | {name} | {tape:F1} | {peak} | {seconds} |"
            | _ -> say $"| {longSteps:N0} | {name} | {tape:F1} | n/a ({output}) | — |"

    let dir = Path.GetDirectoryName(Path.GetFullPath path)
    Directory.CreateDirectory dir |> ignore
    File.WriteAllLines(path, lines)
    printfn "written to %s" path
    0

/// Child process of `run`: one long kernel rollout with gradients; prints "peak-growth-MB seconds".
let memory (steps: int) (segment: int) : int =
    Engine.init ()
    let n = 256
    let fisher = Compiler.compile Bench.eagerOnly (Bench.fisherModel n)
    let sim = Kernels.compile Scheme.Rk4 fisher.Model
    let u0 = fisher.Initial 1
    // Warm up (kernels compiled, code jitted) before the baseline.
    fusedLoss sim fisher.Theta u0 0.001 10 10 ()
    let watch = Diagnostics.Stopwatch.StartNew()

    match Bench.peakRss (fusedLoss sim fisher.Theta u0 0.001 steps segment) with
    | Some bytes -> printfn "%.1f %.1f" (float bytes / 1e6) watch.Elapsed.TotalSeconds
    | None -> printfn "n/a %.1f" watch.Elapsed.TotalSeconds

    0
