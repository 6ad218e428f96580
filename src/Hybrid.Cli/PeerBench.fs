/// `hybrid bench-peers`: the kernel bench's three problems (Fisher–KPP 1-D, Gray–Scott 2-D, Lorenz-96; RK4,
/// float64, forward + backward of L = Σ u_T²) run by Hybrid's generated kernels and compiled eager simulator and
/// by PyTorch (eager, and TorchScript of the whole loop; bench/peers.py, embedded) from the same initial states
/// and parameter values, interleaved in one sitting; the losses and parameter gradients are checked to agree
/// before any ratio is printed. A roofline line per case gives the kernels' GFLOP/s, FLOPs counted from their
/// own expressions (`Kernels.operations`), against a hand-written SIMD loop (`SimdFisher`). Writes bench/peers.md.
module internal Hybrid.Cli.PeerBench

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Numerics
open Hybrid.Kernels

/// The script bench/peers.py, embedded in this assembly.
let script () =
    use s =
        Reflection.Assembly.GetExecutingAssembly().GetManifestResourceStream "peers.py"

    use reader = new StreamReader(s)
    reader.ReadToEnd()

/// The first Python that imports torch: `python3` on the path, else Debian's /usr/bin/python3 (a pyenv or venv
/// python3 on the path may lack the system's packages); None where neither does.
let interpreter () : string option =
    [ "python3"; "/usr/bin/python3" ]
    |> List.tryFind (fun python ->
        try
            use proc =
                Process.Start(
                    ProcessStartInfo(
                        python,
                        "-c \"import torch\"",
                        RedirectStandardError = true,
                        RedirectStandardOutput = true
                    )
                )

            proc.WaitForExit()
            proc.ExitCode = 0
        with _ ->
            false)

/// One of the bench's problems, as both sides run it.
type internal Problem = {
    /// The row's label.
    Label: string
    /// The peer's name for it: "fisher", "grayscott" or "lorenz96".
    Kind: string
    /// Cells per axis (sites of the ring for Lorenz-96).
    N: int
    /// RK4 steps.
    Steps: int
    /// Step size.
    Dt: float
    /// The compiled eager simulator (its initial state and parameter values are the problem's).
    Compiled: Simulator
    /// The generated kernels of the same model.
    Kernels: KernelSimulator
    /// The initial state, one tensor per field.
    U0: torch.Tensor[]
}

/// Loss and parameter gradients of one forward + backward.
type internal Outcome = {
    /// L = Σ u_T² over every field.
    Loss: float
    /// ∂L/∂θ, in the model's parameter order.
    Gradient: float[]
}

/// The bench's problems at full size, or (`quick`, for the test and a check of the set-up) tiny 1-D and 2-D ones
/// with the full Lorenz-96.
let problems (quick: bool) : Problem[] =
    let make label kind n steps dt (model: Model) (u0: Simulator -> torch.Tensor[]) =
        let c = Compiler.compile Bench.eagerOnly model

        {
            Label = label
            Kind = kind
            N = n
            Steps = steps
            Dt = dt
            Compiled = c
            Kernels = Kernels.compile Scheme.Rk4 c.Model
            U0 = u0 c
        }

    let n, fSteps = (if quick then 16, 20 else 256, 1000)
    // Gray–Scott at the issue's two sizes, 20 steps each (500 steps at 128² made PyTorch eager's tape 5 GB), with
    // Δt inside RK4's stability limit for the diffusion (Du Δt / h² ≤ 0.2).
    let grayScott (m: int) =
        let steps = if quick then 10 else 20
        let dt = min 1.0 (0.2 / float (m * m) / 2e-5)

        make $"Gray–Scott 2-D, {m}², {steps} RK4 steps" "grayscott" m steps dt (Bench.grayScottModel m) (fun _ ->
            Bench.grayScottInitial m)

    // Lorenz-96 at full size even when quick: its chaos amplifies any difference in rounding over 1,000 steps
    // (a step summed in another order than Hybrid's stepper differs by 1e-8), and it costs a second.
    let k, lSteps = 40, 1000

    [|
        yield
            make
                $"Fisher–KPP 1-D, N = {n}, {fSteps:N0} RK4 steps"
                "fisher"
                n
                fSteps
                0.01
                (Bench.fisherModel n)
                (fun c -> c.Initial 1)
        yield!
            (if quick then
                 [ grayScott 8 ]
             else
                 [ grayScott 128; grayScott 512 ])
        yield
            make
                $"Lorenz-96, K = {k}, {lSteps:N0} RK4 steps"
                "lorenz96"
                k
                lSteps
                0.005
                (KernelBench.lorenzModel k)
                (fun _ -> KernelBench.lorenzInitial k)
    |]

/// The parameters' values of a problem (the compiled simulator's constrained values).
let private thetaValues (p: Problem) =
    p.Compiled.Theta() |> Array.map (fun t -> t.ToDouble())

/// Hybrid's kernels: loss and gradients with respect to the parameters' values.
let hybridOutcome (p: Problem) : Outcome =
    use _ = torch.NewDisposeScope()

    let theta =
        thetaValues p
        |> Array.map (fun v -> torch.tensor (v, dtype = torch.ScalarType.Float64, requires_grad = true))

    let saved =
        Kernels.rollout p.Kernels p.U0 theta 0.0 p.Dt p.Steps p.Steps (KernelBench.sqrtSegment p.Steps)

    let loss = saved |> Array.map (fun s -> s.square().sum ()) |> Array.reduce (+)
    loss.backward ()

    {
        Loss = loss.ToDouble()
        Gradient = theta |> Array.map (fun t -> t.grad.ToDouble())
    }

/// The largest relative difference of two outcomes (loss and every gradient entry).
let difference (a: Outcome) (b: Outcome) =
    let rel (x: float) (y: float) =
        if x = y then 0.0 else abs (x - y) / max (abs x) (abs y)

    Array.append [| rel a.Loss b.Loss |] (Array.map2 rel a.Gradient b.Gradient)
    |> Array.max

/// A running peer: bench/peers.py started with `python`, set up with `problems` and `threads` intra-op
/// threads; each `Run` is one forward + backward in PyTorch, timed by the peer itself.
type internal Peer(python: string, problems: Problem[], threads: int) =
    let path = Path.Combine(Path.GetTempPath(), $"hybrid-peers-{Guid.NewGuid():N}.py")
    do File.WriteAllText(path, script ())

    let proc =
        let info =
            ProcessStartInfo(
                python,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false
            )

        info.ArgumentList.Add path
        Process.Start info

    let errors = proc.StandardError.ReadToEndAsync()

    let ask (line: string) =
        proc.StandardInput.WriteLine line
        proc.StandardInput.Flush()

        match proc.StandardOutput.ReadLine() with
        | null -> raise (HybridException $"The PyTorch peer ({python} bench/peers.py) stopped: {errors.Result}")
        | answer -> JsonDocument.Parse(answer).RootElement

    let setup =
        let cases =
            problems
            |> Array.map (fun p -> {|
                kind = p.Kind
                n = p.N
                steps = p.Steps
                dt = p.Dt
                theta = thetaValues p
                u0 = p.U0 |> Array.map (fun u -> u.contiguous().data<float>().ToArray())
            |})

        ask (JsonSerializer.Serialize {| threads = threads; cases = cases |})

    /// PyTorch's version.
    member _.Version = setup.GetProperty("torch").GetString()

    /// PyTorch's intra-op threads.
    member _.Threads = setup.GetProperty("threads").GetInt32()

    /// One forward + backward of problem `case` in `mode` ("eager" or "script"): its time (ms) and outcome.
    member _.Run(case: int, mode: string) =
        let o = ask (JsonSerializer.Serialize {| case = case; mode = mode |})

        o.GetProperty("ms").GetDouble(),
        {
            Loss = o.GetProperty("loss").GetDouble()
            Gradient = o.GetProperty("grad").EnumerateArray() |> Seq.map _.GetDouble() |> Array.ofSeq
        }

    interface IDisposable with
        member _.Dispose() =
            try
                proc.StandardInput.Close()

                if not (proc.WaitForExit 10_000) then
                    proc.Kill()
            finally
                proc.Dispose()
                File.Delete path

/// The libtorch package this program was built against (from its .deps.json files), or "?".
let private libtorchVersion () =
    try
        let files =
            (string (AppContext.GetData "APP_CONTEXT_DEPS_FILES")).Split(';', StringSplitOptions.RemoveEmptyEntries)

        files
        |> Array.tryPick (fun f ->
            let text = File.ReadAllText f
            let key = "\"libtorch-cpu-linux-x64/"
            let i = text.IndexOf key

            if i >= 0 then
                Some(text.Substring(i + key.Length).Split('"')[0])
            else
                None)
        |> Option.defaultValue "?"
    with _ ->
        "?"

/// FLOPs of one forward + backward of `p` through the kernels: the forward, the checkpoint recompute (another
/// forward) and the adjoint, per cell and step from `Kernels.operations`.
let flops (p: Problem) =
    let o = Kernels.operations p.Kernels
    let cells = p.U0[0].numel () |> float
    float (2 * o.ForwardPerStep + o.AdjointPerStep) * cells * float p.Steps, o

/// Runs the benchmark and writes the markdown to `path`; `quick` runs the quick problems 3 times.
let run (path: string) (quick: bool) : int =
    Engine.init ()
    let lines = Collections.Generic.List<string>()

    let dir = Path.GetDirectoryName(Path.GetFullPath path)
    Directory.CreateDirectory dir |> ignore

    // Written after every line, so a run stopped midway (the 2-D case takes minutes) leaves what it measured.
    let say (s: string) =
        printfn "%s" s
        lines.Add s
        File.WriteAllLines(path, lines)

    let reps = if quick then 3 else 7
    let warmup = if quick then 0.2 else 1.5
    let date = DateTime.UtcNow.ToString "yyyy-MM-dd"
    let ps = problems quick
    let threads = torch.get_num_threads ()
    say "# Benchmark: Hybrid against PyTorch (eager and TorchScript)"
    say ""
    let peer = interpreter ()

    let peerNote =
        match peer with
        | Some python ->
            use probe = new Peer(python, [||], threads)
            $"PyTorch {probe.Version} ({python}, {probe.Threads} intra-op threads)"
        | None ->
            "PyTorch: not available (python3 -c \"import torch\" fails; on Debian: apt-get install python3-torch, which `./build.sh Bench` does), so the peer columns are empty"

    say
        $"Machine: {Bench.machine ()}; libtorch {libtorchVersion ()} ({threads} intra-op threads); {peerNote}; Hybrid's kernels on {Hybrid.Kernels.KernelThreads.configured ()} thread(s) ($HYBRID_THREADS). Date: {date}. Measured on a shared, loaded machine unless said otherwise."

    say ""

    say
        $"float64, batch 1, forward + backward of L = Σ u_T² (all fields), gradients with respect to the parameters' values; the same initial states and parameter values on both sides (sent to bench/peers.py from Hybrid's). Kernels: generated forward and adjoint, checkpoints every ⌈√T⌉ steps. Compiled eager: Hybrid's TorchSharp back end. PyTorch eager: the same RK4 loop and right-hand sides written in PyTorch; TorchScript: torch.jit.script of the whole loop (its profiling executor optimises after the warm-up runs). Each side is warmed up first ({warmup} s and at least two runs for Hybrid, three runs for each PyTorch mode), then {reps} rounds: each round runs all four sides, in an order rotated from round to round, so a slow spell of the machine touches every side; each side runs twice in a row and its second run is timed, so no side pays for what the one before it left in the process (see `hybrid bench-kernels`' notes: glibc's free lists after an eager run). Times are medians (smallest–largest) in ms, each side's own time of its run (PyTorch's measured inside Python, without the messaging). Ratios are medians (smallest–largest) of the per-round ratios; none is printed where the two sides' loss and gradients differ by more than 1e-9 (relative)."

    say ""

    say
        "| case | agreement (largest relative difference of L, ∂L/∂θ; eager, TorchScript) | kernels | compiled eager | PyTorch eager | TorchScript | PyTorch eager / kernels | TorchScript / kernels | compiled eager / PyTorch eager |"

    say "|---|---|---|---|---|---|---|---|---|"

    let ms (s: Bench.Spread) =
        let digits = if s.Median < 10.0 then "F2" else "F1"
        $"{s.Median.ToString digits} ({s.Low.ToString digits}–{s.High.ToString digits})"

    let ratio (s: Bench.Spread) =
        $"{s.Median:F2}× ({s.Low:F2}–{s.High:F2})"

    let kernelMedians = Collections.Generic.List<float>()
    // Per problem (when PyTorch ran and agreed): the median per-round ratios PyTorch eager / kernels and
    // TorchScript / kernels.
    let speedups = Collections.Generic.Dictionary<int, float * float>()

    let running =
        match peer with
        | Some python -> Some(new Peer(python, ps, threads))
        | None -> None

    for i in 0 .. ps.Length - 1 do
        let p = ps[i]
        let hybrid = hybridOutcome p

        let kernels =
            KernelBench.fusedLoss p.Kernels p.Compiled.Theta p.U0 p.Dt p.Steps (KernelBench.sqrtSegment p.Steps)

        let compiled = KernelBench.compiledLoss p.Compiled p.U0 p.Dt p.Steps
        Bench.warmUp warmup kernels
        Bench.warmUp warmup compiled

        match running with
        | None ->
            let k = Bench.time 0.0 reps kernels
            let c = Bench.time 0.0 reps compiled
            kernelMedians.Add k.Median
            say $"| {p.Label} | — | {ms k} | {ms c} | — | — | — | — | — |"
        | Some peer ->
            let eagerOutcome = snd (peer.Run(i, "eager"))
            let scriptOutcome = snd (peer.Run(i, "script"))

            for _ in 1..2 do
                peer.Run(i, "eager") |> ignore
                peer.Run(i, "script") |> ignore

            let eagerDiff = difference hybrid eagerOutcome
            let scriptDiff = difference hybrid scriptOutcome

            let sides: (unit -> float)[] = [|
                (fun () -> Bench.primed kernels)
                (fun () -> Bench.primed compiled)
                (fun () ->
                    peer.Run(i, "eager") |> ignore
                    fst (peer.Run(i, "eager")))
                (fun () ->
                    peer.Run(i, "script") |> ignore
                    fst (peer.Run(i, "script")))
            |]

            let rounds = [
                for r in 0 .. reps - 1 ->
                    let times = Array.zeroCreate<float> sides.Length

                    for j in 0 .. sides.Length - 1 do
                        let side = (j + r) % sides.Length
                        times[side] <- sides[side]()

                    times
            ]

            let column j =
                rounds |> List.map (fun t -> t[j]) |> Bench.spread

            let per a b =
                rounds |> List.map (fun t -> t[a] / t[b]) |> Bench.spread

            kernelMedians.Add (column 0).Median

            if eagerDiff <= 1e-9 && scriptDiff <= 1e-9 then
                speedups[i] <- ((per 2 0).Median, (per 3 0).Median)

            let guarded (diff: float) (s: Bench.Spread) =
                if diff <= 1e-9 then
                    ratio s
                else
                    $"not printed: the results differ by {diff:E1}"

            say
                $"| {p.Label} | {eagerDiff:E1}, {scriptDiff:E1} | {ms (column 0)} | {ms (column 1)} | {ms (column 2)} | {ms (column 3)} | {guarded eagerDiff (per 2 0)} | {guarded scriptDiff (per 3 0)} | {guarded eagerDiff (per 1 2)} |"

    running |> Option.iter (fun p -> (p :> IDisposable).Dispose())

    // The roofline: the kernels' rate against a hand-written SIMD loop of the 1-D case.
    say ""
    let fisher = ps[0]
    let theta = thetaValues fisher
    let u0 = fisher.U0[0].contiguous().data<float>().ToArray()

    let simd () =
        SimdFisher.lossAndGradient fisher.N theta[0] theta[1] fisher.Dt fisher.Steps u0

    let simdLoss, simdD, simdR = simd ()

    let simdDiff =
        difference (hybridOutcome fisher) {
            Loss = simdLoss
            Gradient = [| simdD; simdR |]
        }

    let simdTime = Bench.time warmup reps (simd >> ignore)
    let fisherFlops, _ = flops fisher
    let peak = fisherFlops / (simdTime.Median * 1e6)

    say
        $"Roofline: FLOPs counted from the generated kernels' own expressions (`Kernels.operations`: distinct subexpressions once per cell, as the generator emits them, plus the stage combinations), per cell and step forward and adjoint; a forward + backward runs the forward twice (the checkpoint recompute) and the adjoint once. The reference is a hand-written .NET loop of the 1-D case with hardware intrinsics, {SimdFisher.describe ()} (src/Hybrid.Cli/SimdFisher.fs: the same RK4 stages, stage recompute and adjoint; it keeps every state), timed alone ({reps} runs after the warm-up): {ms simdTime} ms, {peak:F2} GFLOP/s at the kernels' count; its L and gradients agree with the kernels' to {simdDiff:E1} (relative). The fraction is the case's GFLOP/s over the reference's."

    say ""

    say
        "| case | FLOPs per cell and step (forward; adjoint) | FLOPs per run | kernels (ms, median) | GFLOP/s | fraction of the SIMD reference |"

    say "|---|---|---|---|---|---|"

    for i in 0 .. ps.Length - 1 do
        let total, o = flops ps[i]
        let rate = total / (kernelMedians[i] * 1e6)

        say
            $"| {ps[i].Label} | {o.ForwardPerStep}; {o.AdjointPerStep} | {total / 1e6:F1} M | {kernelMedians[i]:F2} | {rate:F2} | {rate / peak:P0} |"

    // The issue's goals, on this run's medians.
    say ""
    say "Goals (medians of the per-round ratios):"

    let goal (text: string) (met: bool option) (detail: string) =
        let verdict =
            match met with
            | Some true -> "met"
            | Some false -> "missed"
            | None -> "not measured"

        say $"- {text}: {verdict} ({detail})"

    let vsPeers (size: int) (eagerBar: float) (scriptBar: float) =
        let label = $"Gray–Scott 2-D, {size}²"

        match ps |> Array.tryFindIndex (fun p -> p.Label.StartsWith label) with
        | Some i when speedups.ContainsKey i ->
            let e, t = speedups[i]

            goal
                $"{label}: kernels ≥ {eagerBar:G}× PyTorch eager and ≥ {scriptBar:G}× TorchScript"
                (Some(e >= eagerBar && t >= scriptBar))
                $"{e:F2}× and {t:F2}×"
        | Some _ -> goal $"{label}: kernels against PyTorch" None "PyTorch did not run or did not agree"
        | None -> goal $"{label}: kernels against PyTorch" None "not in this run (--quick)"

    vsPeers 128 10.0 8.0
    vsPeers 512 2.0 2.0
    let toSimd = kernelMedians[0] / simdTime.Median

    goal
        "1-D forward + backward within 2× of the hand-written SIMD reference"
        (Some(toSimd <= 2.0))
        $"kernels {kernelMedians[0]:F2} ms, reference {simdTime.Median:F2} ms: {toSimd:F2}×"

    printfn "written to %s" path
    if simdDiff > 1e-10 then 1 else 0
