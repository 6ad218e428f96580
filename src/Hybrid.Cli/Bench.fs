/// `hybrid bench`: compiled simulators against hand-written eager TorchSharp code doing the same operations,
/// and the peak memory of a long rollout with and without checkpointing. Writes bench/results.md.
module internal Hybrid.Cli.Bench

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler

/// The compiled simulators these benchmarks time are the eager back end (TorchSharp operations), not the
/// generated kernels `Backend.Auto` would pick.
let internal eagerOnly = {
    Compiler.defaults with
        Backend = Backend.Eager
}

let private f64 = torch.ScalarType.Float64

let private median (xs: float list) = (List.sort xs)[xs.Length / 2]

/// The median of some measurements and their smallest and largest value.
type internal Spread = {
    /// The median (the upper one of an even count).
    Median: float
    /// The smallest value.
    Low: float
    /// The largest value.
    High: float
}

let internal spread (xs: float list) = {
    Median = median xs
    Low = List.min xs
    High = List.max xs
}

/// glibc's malloc_trim: consolidates the allocator's free lists and returns free memory to the system.
[<Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")>]
extern int private mallocTrim(unativeint pad)

/// Collects garbage and runs pending finalizers (TorchSharp tensors free native memory in finalizers), so that
/// one measurement does not pay for the garbage of the previous one.
let private collect () =
    GC.Collect()
    GC.WaitForPendingFinalizers()
    GC.Collect()

/// `collect`, then, on glibc with the system's heap settings (`HYBRID_NATIVE_HEAP=system`), consolidates the native
/// heap (`malloc_trim`). An eager TorchSharp run frees hundreds of thousands of small native blocks into glibc's fast
/// bins, and the next large allocation walks and merges them all (malloc_consolidate): 30–50 ms charged to whatever
/// runs next, which made kernels timed right after an eager run 4–15× slower than alone (measured: Fisher–KPP kernels
/// 5 ms alone, 34–65 ms right after an eager run, 6.6 ms with GLIBC_TUNABLES=glibc.malloc.mxfast=0, which turns the
/// fast bins off). Never right before a timed run: malloc_trim also returns the free memory to the system, so an
/// eager run timed after it pays a page fault for every fresh block (its compiled Gray–Scott 128² took 25 s in the
/// harness against 3.2 s run repeatedly). Where the heap keeps freed memory (Hybrid's default, `Engine.describe`),
/// no trim: it would hand back what the process keeps on purpose, and the untimed run that precedes every timed one
/// (`primed`) pays the consolidation instead.
let internal settle () =
    collect ()

    if OperatingSystem.IsLinux() && not (Engine.nativeHeapRetained ()) then
        try
            mallocTrim 0un |> ignore
        with _ ->
            ()

/// struct timespec.
[<Struct; Runtime.InteropServices.StructLayout(Runtime.InteropServices.LayoutKind.Sequential)>]
type private TimeSpec =
    val mutable Seconds: int64
    val mutable Nanoseconds: int64

[<Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")>]
extern int private clockGetTime(int clock, TimeSpec& time)

/// CPU time of the calling thread in ms (Linux: CLOCK_THREAD_CPUTIME_ID), NaN elsewhere: on a loaded machine it
/// leaves out the time the thread waited for a core, which wall time counts.
let internal threadCpuMs () =
    if OperatingSystem.IsLinux() then
        let mutable time = TimeSpec()

        if clockGetTime (3, &time) = 0 then
            float time.Seconds * 1e3 + float time.Nanoseconds * 1e-6
        else
            nan
    else
        nan

/// Runs `f` at least twice and until `seconds` have passed: long enough for .NET's tiered JIT to have
/// recompiled the hot methods (30 calls, then a background compile after a 100 ms delay), so the timed runs
/// measure optimised code, not the warm-up.
let internal warmUp (seconds: float) (f: unit -> unit) =
    let w = Stopwatch.StartNew()
    let mutable runs = 0

    while runs < 2 || w.Elapsed.TotalSeconds < seconds do
        f ()
        runs <- runs + 1

/// One timed run of `f` (ms) after `collect`: the heap as the previous run left it, as in a loop.
let internal once (f: unit -> unit) =
    collect ()
    let w = Stopwatch.StartNew()
    f ()
    w.Elapsed.TotalMilliseconds

/// Wall times (ms) of `reps` runs after `settle` and `warmUp warmup` (each after the previous run of `f` itself):
/// median and range.
let internal time (warmup: float) (reps: int) (f: unit -> unit) =
    settle ()
    warmUp warmup f
    [ for _ in 1..reps -> once f ] |> spread

/// `settle`, `f` run once untimed, then timed (`once`): what another workload left in the process (the native
/// heap's free lists, caches) is consolidated and then paid by the untimed run, so a side timed right after a
/// different one measures what it costs when run repeatedly, as in a training loop, and not the other side's
/// after-effects.
let internal primed (f: unit -> unit) =
    settle ()
    f ()
    once f

/// Wall and process CPU time (ms) of one run of `f`, `primed` (after `settle` and an untimed run of `f`), the CPU
/// time from the process's total (on one thread for libtorch and the kernels, the run's work, which a loaded
/// machine stretches far less than its wall time).
let internal primedWithCpu (f: unit -> unit) =
    settle ()
    f ()
    GC.Collect()
    GC.WaitForPendingFinalizers()
    let me = Process.GetCurrentProcess()
    let cpu = me.TotalProcessorTime
    let wall = Stopwatch.StartNew()
    f ()
    let elapsed = wall.Elapsed.TotalMilliseconds
    me.Refresh()
    elapsed, (me.TotalProcessorTime - cpu).TotalMilliseconds

/// `f` with the kernels' backward pass recomputing each step's stages (`TapedRollout.keepStages` off), as before
/// it kept them (Rodas4: its linear system too).
let internal recomputing (f: unit -> unit) () =
    Hybrid.Kernels.TapedRollout.keepStages <- false

    try
        f ()
    finally
        Hybrid.Kernels.TapedRollout.keepStages <- true

/// `rounds` rounds each timing every side of `sides` once (`primedWithCpu`), the order rotating by one side per
/// round, after an untimed run of each: per side, its wall times and its CPU times (ms) over the rounds.
let internal rotatingRounds (rounds: int) (sides: (unit -> unit)[]) =
    for side in sides do
        side ()

    let results = [
        for r in 0 .. rounds - 1 ->
            let times = Array.zeroCreate sides.Length

            for k in 0 .. sides.Length - 1 do
                let side = (r + k) % sides.Length
                times[side] <- primedWithCpu sides[side]

            times
    ]

    let per (pick: float * float -> float) =
        Array.init sides.Length (fun side -> results |> List.map (fun t -> pick t[side]))

    per fst, per snd

/// Runs `write say`, `say` printing a line and keeping it, then writes the kept lines to `path` (its folder created):
/// a benchmark's markdown.
let internal writeReport (path: string) (write: (string -> unit) -> unit) =
    let lines = Collections.Generic.List<string>()

    let say (s: string) =
        printfn "%s" s
        lines.Add s

    write say

    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path))
    |> ignore

    File.WriteAllLines(path, lines)

/// The load averages over 1, 5 and 15 minutes (/proc/loadavg), or "unknown".
let internal loadAverage () =
    try
        String.Join(", ", (File.ReadAllText "/proc/loadavg").Split(' ')[0..2])
    with _ ->
        "unknown"

/// Times (ms) as "median (smallest–largest)".
let internal msText (xs: float list) =
    let s = spread xs
    $"{s.Median:F0} ({s.Low:F0}–{s.High:F0})"

/// Ratios as "median× (smallest–largest)".
let internal ratioText (xs: float list) =
    let s = spread xs
    $"{s.Median:F2}× ({s.Low:F2}–{s.High:F2})"

/// Compiled against hand-written, interleaved so that a slow spell of the machine hits both: after
/// `warmUp warmup` of each, `reps` pairs, each pair timed in alternating order, each timed
/// run `primed` by an untimed run of the same side. Returns the times (ms) of each side and the per-pair
/// ratios compiled/hand-written, each as median and range.
let internal compare (warmup: float) (reps: int) (compiled: unit -> unit) (hand: unit -> unit) =
    warmUp warmup compiled
    warmUp warmup hand

    let pairs = [
        for k in 1..reps ->
            if k % 2 = 1 then
                let c = primed compiled
                c, primed hand
            else
                let h = primed hand
                primed compiled, h
    ]

    spread (List.map fst pairs), spread (List.map snd pairs), spread (pairs |> List.map (fun (c, h) -> c / h))

let private rk4 (f: torch.Tensor[] -> torch.Tensor[]) (h: float) (u: torch.Tensor[]) =
    let axpy (a: torch.Tensor[]) (s: float) (k: torch.Tensor[]) =
        Array.map2 (fun (x: torch.Tensor) y -> x + s * y) a k

    let k1 = f u
    let k2 = f (axpy u (0.5 * h) k1)
    let k3 = f (axpy u (0.5 * h) k2)
    let k4 = f (axpy u h k3)
    Array.init u.Length (fun i -> u[i] + (h / 6.0) * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))

/// Hand-written eager rollout: `steps` RK4 steps, per-step dispose scope, returns the final state.
let internal handRollout (f: torch.Tensor[] -> torch.Tensor[]) (h: float) (steps: int) (u0: torch.Tensor[]) =
    let mutable u = u0

    for _ in 1..steps do
        use _ = torch.NewDisposeScope()
        let next = rk4 f h u
        next |> Array.iter (fun x -> x.MoveToOuterDisposeScope() |> ignore)
        u <- next

    u

// ---- 1-D Fisher–KPP, N = 256, no flux: ∂u/∂t = ∇·(D∇u) + r u (1 − u) ----

let internal fisherModel n =
    let u = Sym "u"

    Model.empty "fisher"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, n))
    |> Model.addField (Model.field "u")
    |> Model.addParam {
        Model.param "D" 1e-4 with
            Constraint = Constraint.Positive
    }
    |> Model.addParam {
        Model.param "r" 1.0 with
            Constraint = Constraint.Positive
    }
    |> Model.addEquation "u" (Add(Divergence(Mul(Sym "D", Grad u)), Mul(Mul(Sym "r", u), Sub(Num 1.0, u))))
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux
    |> Model.setInitial "u" (InitialCondition.Expr(Apply(Fn.Exp, Mul(Num -100.0, PowInt(Sub(Sym "x", Num 0.5), 2)))))

/// The same operations written by hand: ghost cells by concatenation, face fluxes, flux differences.
let internal fisherHand (n: int) (d: torch.Tensor) (r: torch.Tensor) (s: torch.Tensor[]) =
    let u = s[0]
    let dx = 1.0 / float n

    let p =
        torch.cat ([| u.narrow (1L, 0L, 1L); u; u.narrow (1L, int64 n - 1L, 1L) |], 1L)

    let flux =
        d * (p.narrow (1L, 1L, int64 n + 1L) - p.narrow (1L, 0L, int64 n + 1L)) / dx

    [|
        (flux.narrow (1L, 1L, int64 n) - flux.narrow (1L, 0L, int64 n)) / dx
        + r * u * (1.0 - u)
    |]

// ---- 2-D Gray–Scott, 128², periodic ----

let internal grayScottModel n =
    let u, v = Sym "u", Sym "v"
    let uvv = Mul(u, PowInt(v, 2))

    Model.empty "grayscott"
    |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, n, n))
    |> Model.addField (Model.field "u")
    |> Model.addField (Model.field "v")
    |> Model.addParam (Model.param "Du" 2e-5)
    |> Model.addParam (Model.param "Dv" 1e-5)
    |> Model.addParam (Model.param "F" 0.04)
    |> Model.addParam (Model.param "k" 0.06)
    |> Model.addEquation "u" (Add(Sub(Mul(Sym "Du", Laplacian u), uvv), Mul(Sym "F", Sub(Num 1.0, u))))
    |> Model.addEquation "v" (Sub(Add(Mul(Sym "Dv", Laplacian v), uvv), Mul(Add(Sym "F", Sym "k"), v)))
    |> Model.setBoundaryAll "u" BoundaryCondition.Periodic
    |> Model.setBoundaryAll "v" BoundaryCondition.Periodic

let internal grayScottInitial (n: int) =
    let g = Grid.plane (0.0, 1.0, n) (0.0, 1.0, n)

    let bump x y =
        exp (-200.0 * ((x - 0.5) ** 2.0 + (y - 0.5) ** 2.0))

    [|
        Grid.init g 1 f64 (fun x y -> 1.0 - 0.5 * bump x y)
        Grid.init g 1 f64 (fun x y -> 0.25 * bump x y)
    |]

/// Hand-written: periodic 5-point Laplacian by concatenating wrapped ghost rows and columns (as the compiler does).
let internal grayScottHand (n: int) (th: torch.Tensor[]) (s: torch.Tensor[]) =
    let h = 1.0 / float n
    let m = int64 n

    let lap (w: torch.Tensor) =
        let px = torch.cat ([| w.narrow (1L, m - 1L, 1L); w; w.narrow (1L, 0L, 1L) |], 1L)
        let py = torch.cat ([| w.narrow (2L, m - 1L, 1L); w; w.narrow (2L, 0L, 1L) |], 2L)

        (px.narrow (1L, 2L, m) - 2.0 * w + px.narrow (1L, 0L, m)) / (h * h)
        + (py.narrow (2L, 2L, m) - 2.0 * w + py.narrow (2L, 0L, m)) / (h * h)

    let u, v = s[0], s[1]
    let uvv = u * v.square ()

    [|
        th[0] * lap u - uvv + th[2] * (1.0 - u)
        th[1] * lap v + uvv - (th[2] + th[3]) * v
    |]

let internal peakRss (f: unit -> unit) : int64 option =
    let field (name: string) =
        File.ReadAllLines "/proc/self/status"
        |> Array.find (fun l -> l.StartsWith name)
        |> fun l ->
            int64 (l.Split([| ' '; '\t' |], StringSplitOptions.RemoveEmptyEntries)[1])
            * 1024L

    try
        let before = field "VmRSS:"
        File.WriteAllText("/proc/self/clear_refs", "5")
        f ()
        Some(field "VmHWM:" - before)
    with _ ->
        f ()
        None

let internal machine () =
    let cpu =
        try
            File.ReadAllLines "/proc/cpuinfo"
            |> Array.tryFind (fun l -> l.StartsWith "model name")
            |> Option.map (fun l -> (l.Split(':')[1]).Trim())
            |> Option.defaultValue "unknown CPU"
        with _ ->
            "unknown CPU"

    $"{cpu}, {Environment.ProcessorCount} cores visible, {Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}; {Engine.describe ()}"

/// Runs the benchmark and writes the markdown table to `path`; returns 0.
let run (path: string) (reps: int) : int =
    Engine.init ()
    let lines = Collections.Generic.List<string>()

    let say (s: string) =
        printfn "%s" s
        lines.Add s

    say "# Benchmark: compiled simulators vs hand-written eager TorchSharp"
    say ""
    let gsReps = max 1 ((reps + 1) / 2)
    let date = DateTime.UtcNow.ToString "yyyy-MM-dd"

    say
        $"Machine: {machine ()}. Date: {date}. float64, batch 1. After a warm-up of each (at least two runs and 0.5 s), {reps} pairs of runs (Gray–Scott: {gsReps}), compiled and hand-written interleaved in alternating order, each timed run after a consolidated heap and an untimed run of the same side; times are medians, the ratio is the median of the per-pair ratios, and its range shows the machine's noise."

    say ""
    say "| case | mode | compiled (ms) | hand-written (ms) | ratio (median) | ratio range |"
    say "|---|---|---|---|---|---|"

    let row case mode (c: Spread, h: Spread, ratio: Spread) =
        say
            $"| {case} | {mode} | {c.Median:F1} | {h.Median:F1} | {ratio.Median:F2}× | {ratio.Low:F2}–{ratio.High:F2}× |"

    // Fisher–KPP.
    let n = 256
    let steps = 1000
    let dt = 0.01
    let fisher = Compiler.compile eagerOnly (fisherModel n)

    let o = {
        Rollout.defaults with
            Dt = dt
            SaveTimes = [| float steps * dt |]
            FiniteCheckEvery = 0
            OnUnstable = OnUnstable.Ignore
    }

    let u0 = fisher.Initial 1

    let fwdCompiled () =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        fisher.Simulate(u0, o) |> ignore

    let fwdHand () =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let th = fisher.Theta()
        handRollout (fisherHand n th[0] th[1]) dt steps u0 |> ignore

    let bwdCompiled () =
        use _ = torch.NewDisposeScope()
        let traj = fisher.Simulate(u0, o)
        traj.Values[0].square().sum().backward ()

    let bwdHand () =
        use _ = torch.NewDisposeScope()
        let th = fisher.Theta()
        let u = handRollout (fisherHand n th[0] th[1]) dt steps u0
        u[0].square().sum().backward ()

    // Memory of a 10,000-step rollout with gradients.
    let longO = {
        o with
            SaveTimes = [| 10000.0 * dt |]
    }

    let measure c =
        peakRss (fun () ->
            use _ = torch.NewDisposeScope()
            let traj = fisher.Simulate(u0, { longO with Checkpointing = c })
            traj.Values[0].square().sum().backward ())

    // Measured first, in a fresh process: heap freed by the timing runs would hide these peaks.
    let memoryLines = Collections.Generic.List<string>()
    let note (s: string) = memoryLines.Add s
    note ""

    note
        "Peak memory (resident set growth, /proc VmHWM) of a 10,000-step RK4 rollout of Fisher–KPP (N = 256) with gradients:"

    note ""
    note "| checkpointing | peak memory (MB) |"
    note "|---|---|"

    // Checkpointed first: freed heap from a bigger run could otherwise hide a smaller run's peak.
    for c, name in [ Checkpointing.Sqrt, "√T segments (100 steps)"; Checkpointing.Off, "off" ] do
        match measure c with
        | Some b -> note $"| {name} | {float b / 1e6:F1} |"
        | None -> note $"| {name} | n/a (/proc not readable) |"

    row "Fisher–KPP 1-D, N = 256, 1,000 RK4 steps" "forward" (compare 0.5 reps fwdCompiled fwdHand)
    row "Fisher–KPP 1-D, N = 256, 1,000 RK4 steps" "forward + backward" (compare 0.5 reps bwdCompiled bwdHand)

    // Gray–Scott.
    let m = 128
    let gsSteps = 500
    let gs = Compiler.compile eagerOnly (grayScottModel m)

    let gsO = {
        o with
            Dt = 1.0
            SaveTimes = [| float gsSteps |]
    }

    let v0 = grayScottInitial m

    let gsFwdCompiled () =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        gs.Simulate(v0, gsO) |> ignore

    let gsFwdHand () =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        handRollout (grayScottHand m (gs.Theta())) 1.0 gsSteps v0 |> ignore

    let gsBwdCompiled () =
        use _ = torch.NewDisposeScope()
        let traj = gs.Simulate(v0, gsO)
        traj.Values[1].square().sum().backward ()

    let gsBwdHand () =
        use _ = torch.NewDisposeScope()
        let u = handRollout (grayScottHand m (gs.Theta())) 1.0 gsSteps v0
        u[1].square().sum().backward ()

    row "Gray–Scott 2-D, 128², 500 RK4 steps" "forward" (compare 0.5 gsReps gsFwdCompiled gsFwdHand)
    row "Gray–Scott 2-D, 128², 500 RK4 steps" "forward + backward" (compare 0.5 gsReps gsBwdCompiled gsBwdHand)

    for l in memoryLines do
        say l

    let dir = Path.GetDirectoryName(Path.GetFullPath path)
    Directory.CreateDirectory dir |> ignore
    File.WriteAllLines(path, lines)
    printfn "written to %s" path
    0
