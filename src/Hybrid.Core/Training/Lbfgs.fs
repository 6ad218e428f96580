namespace Hybrid.Training

open System
open System.Diagnostics
open TorchSharp
open TorchSharp.Modules
open Hybrid

/// Settings of `Lbfgs.minimize` / `LbfgsOptimizer`.
type LbfgsOptions = {
    /// Iterations (line-searched steps) at most (default 100).
    MaxIterations: int
    /// Correction pairs (s, y) kept for the inverse-Hessian estimate (default 10).
    History: int
    /// Length of the first trial step in parameter space: the first iteration (and any iteration after the
    /// history was reset) tries α = `InitialStep` / ‖g‖₂ along −g; later iterations try the full quasi-Newton
    /// step α = 1 first (default 1).
    InitialStep: float
    /// Stop when the largest gradient component is at most this (default 1e-10).
    GradientTolerance: float
    /// Stop when an iteration lowers the loss by at most this fraction of it (default 1e-12).
    LossTolerance: float
    /// Loss evaluations at most per line search, failed trials included (default 25).
    MaxEvaluations: int
    /// Sufficient-decrease constant c₁ of the strong Wolfe conditions (default 1e-4).
    SufficientDecrease: float
    /// Curvature constant c₂ of the strong Wolfe conditions (default 0.9).
    Curvature: float
}

/// Why an L-BFGS run stopped.
[<RequireQualifiedAccess>]
type LbfgsStop =
    /// The iteration budget of the call was used up (more iterations may still lower the loss).
    | IterationLimit
    /// The largest gradient component fell to `GradientTolerance` or below.
    | GradientTolerance
    /// An iteration lowered the loss by no more than `LossTolerance` of it.
    | LossTolerance
    /// No step along the quasi-Newton direction, nor along −g, lowered the loss (a minimum to the precision of
    /// the loss, or every trial failed; `reason` is the last failure, or says that none failed).
    | NoDescent of reason: string

/// Outcome of an L-BFGS run (or of one `LbfgsOptimizer.Run` call).
type LbfgsResult = {
    /// Loss after each iteration of this call (each a line-searched step).
    Losses: float[]
    /// Loss at the start of this call.
    InitialLoss: float
    /// Loss at the end (the parameters are left at its point).
    Loss: float
    /// Iterations done in this call.
    Iterations: int
    /// Loss evaluations in this call, failed trials included.
    Evaluations: int
    /// Trial steps rejected because the loss or gradient was not finite, or the loss raised a `HybridException`
    /// (e.g. a simulation's stability check).
    FailedTrials: int
    /// Why the call ended.
    Stop: LbfgsStop
    /// Why the last failed trial of this call failed (its exception's message, or the non-finite value);
    /// None when no trial failed.
    LastFailure: string option
    /// Wall time of the call.
    WallTime: TimeSpan
}

/// One evaluation of the objective of the vector core: loss and gradient, or why it failed.
[<RequireQualifiedAccess>]
type internal Evaluation =
    | Value of loss: float * gradient: float[]
    | Failed of reason: string

/// L-BFGS (Nocedal & Wright algorithm 7.4, two-loop recursion) with the strong-Wolfe line search on a float
/// vector. Keeps its state between `Run` calls.
type internal LbfgsCore(options: LbfgsOptions, objective: float[] -> Evaluation, x0: float[]) =
    let dot (a: float[]) (b: float[]) =
        let mutable s = 0.0

        for i in 0 .. a.Length - 1 do
            s <- s + a[i] * b[i]

        s

    let norm (a: float[]) = sqrt (dot a a)

    let finite (g: float[]) = g |> Array.forall Double.IsFinite

    let mutable x = Array.copy x0
    let mutable f = nan
    let mutable g: float[] = [||]
    let mutable stopped: LbfgsStop option = None
    let s = ResizeArray<float[]>()
    let y = ResizeArray<float[]>()
    let rho = ResizeArray<float>()
    let mutable evaluations = 0
    let mutable failed = 0
    let mutable lastFailure: string option = None

    let evaluate (point: float[]) =
        evaluations <- evaluations + 1

        match objective point with
        | Evaluation.Value(l, grad) when Double.IsFinite l && finite grad -> Evaluation.Value(l, grad)
        | Evaluation.Value(l, grad) when Double.IsFinite l ->
            let bad = grad |> Array.findIndex (fun v -> not (Double.IsFinite v))
            Evaluation.Failed $"gradient component {bad} is {grad[bad]}"
        | Evaluation.Value(l, _) -> Evaluation.Failed $"the loss is {l}"
        | Evaluation.Failed r -> Evaluation.Failed r

    let start () =
        if Double.IsNaN f then
            match evaluate x with
            | Evaluation.Value(l, grad) ->
                f <- l
                g <- grad
            | Evaluation.Failed reason ->
                raise (
                    HybridException(
                        $"L-BFGS: the loss cannot be evaluated at the starting parameters ({reason}). Start from parameter values at which the model runs and the loss is finite."
                    )
                )

    // Two-loop recursion: d = −H g with H₀ = γ I, γ = sᵀy / yᵀy of the newest pair.
    let direction () =
        let q = Array.copy g
        let m = s.Count
        let a = Array.zeroCreate m

        for i in m - 1 .. -1 .. 0 do
            a[i] <- rho[i] * dot s[i] q

            for k in 0 .. q.Length - 1 do
                q[k] <- q[k] - a[i] * y[i][k]

        let gamma =
            if m > 0 then
                dot s[m - 1] y[m - 1] / dot y[m - 1] y[m - 1]
            else
                1.0

        for k in 0 .. q.Length - 1 do
            q[k] <- gamma * q[k]

        for i in 0 .. m - 1 do
            let b = rho[i] * dot y[i] q

            for k in 0 .. q.Length - 1 do
                q[k] <- q[k] + s[i][k] * (a[i] - b)

        Array.map (fun v -> -v) q

    let search (d: float[]) (alpha1: float) =
        let slope0 = dot g d

        let trial alpha =
            let point = Array.init x.Length (fun k -> x[k] + alpha * d[k])

            match evaluate point with
            | Evaluation.Value(l, grad) -> {
                Alpha = alpha
                Loss = l
                Slope = dot grad d
                Gradient = grad
                Failure = None
              }
            | Evaluation.Failed reason ->
                failed <- failed + 1
                lastFailure <- Some reason

                {
                    Alpha = alpha
                    Loss = infinity
                    Slope = nan
                    Gradient = [||]
                    Failure = Some reason
                }

        let settings = {
            C1 = options.SufficientDecrease
            C2 = options.Curvature
            MaxEvaluations = options.MaxEvaluations
        }

        LineSearch.strongWolfe settings trial f slope0 alpha1

    let steepestStep () =
        options.InitialStep / max (norm g) 1e-300

    /// One iteration: a line-searched step, or `stopped` set when there is none.
    let iterate () =
        let withHistory = s.Count > 0

        let d0 =
            if withHistory then
                direction ()
            else
                Array.map (fun v -> -v) g

        // A direction that does not descend (possible after rounding) restarts from steepest descent.
        let d, alpha1, fresh =
            if withHistory && dot g d0 < 0.0 then
                d0, 1.0, false
            else
                Array.map (fun v -> -v) g, steepestStep (), true

        let outcome, trials = search d alpha1

        // When the quasi-Newton direction gives no step, forget the history and search along −g.
        let outcome, trials, used =
            match outcome with
            | SearchOutcome.NoStep when not fresh ->
                s.Clear()
                y.Clear()
                rho.Clear()
                let steepest = Array.map (fun v -> -v) g
                let o, t = search steepest (steepestStep ())
                o, trials @ t, steepest
            | _ -> outcome, trials, d

        match outcome with
        | SearchOutcome.NoStep ->
            let reason =
                trials
                |> List.tryFindBack (fun t -> t.Failure.IsSome)
                |> Option.bind (fun t -> t.Failure)
                |> Option.map (fun r -> $"the last failed trial: {r}")
                |> Option.defaultValue "no trial failed; the loss is at a minimum to its precision"

            stopped <- Some(LbfgsStop.NoDescent reason)
        | SearchOutcome.Wolfe t
        | SearchOutcome.Decrease t ->
            let step = Array.map (fun v -> t.Alpha * v) used
            let change = Array.init g.Length (fun k -> t.Gradient[k] - g[k])
            let sy = dot step change

            if sy > 1e-12 * dot change change then
                if s.Count = max 1 options.History then
                    s.RemoveAt 0
                    y.RemoveAt 0
                    rho.RemoveAt 0

                s.Add step
                y.Add change
                rho.Add(1.0 / sy)

            x <- Array.init x.Length (fun k -> x[k] + step[k])
            let previous = f
            f <- t.Loss
            g <- t.Gradient

            if (g |> Array.fold (fun m v -> max m (abs v)) 0.0) <= options.GradientTolerance then
                stopped <- Some LbfgsStop.GradientTolerance
            elif previous - f <= options.LossTolerance * max (abs previous) (abs f) then
                stopped <- Some LbfgsStop.LossTolerance

    /// The current point.
    member _.X = x

    /// The loss at the current point (NaN before the first run).
    member _.Loss = f

    /// The gradient at the current point.
    member _.Gradient = g

    /// Why the run stopped, once it has.
    member _.Stopped = stopped

    /// Why the last failed trial failed, if one did.
    member _.LastFailure = lastFailure

    /// Up to `iterations` iterations (none once stopped). Returns the loss after each, the loss before, the
    /// evaluations and failed trials of this call, and why it ended.
    member _.Run(iterations: int) =
        let e0, f0 = evaluations, failed
        lastFailure <- None
        start ()
        let initial = f
        let losses = ResizeArray<float>()

        if stopped.IsNone then
            if (g |> Array.fold (fun m v -> max m (abs v)) 0.0) <= options.GradientTolerance then
                stopped <- Some LbfgsStop.GradientTolerance

        let mutable k = 0

        while k < iterations && stopped.IsNone do
            iterate ()
            // An iteration that found no step changed nothing and records no loss.
            match stopped with
            | Some(LbfgsStop.NoDescent _) -> ()
            | _ -> losses.Add f

            k <- k + 1

        losses.ToArray(), initial, evaluations - e0, failed - f0, defaultArg stopped LbfgsStop.IterationLimit

/// L-BFGS over TorchSharp parameters with a strong-Wolfe line search: the parameters are gathered into one
/// float64 vector, the loss and its gradient are evaluated by autograd, and a trial step whose loss or
/// gradient is not finite, or whose loss raises a `HybridException` (a simulation's stability or NaN check),
/// is a failed trial: the line search retreats from it and the fit goes on. The optimizer keeps its history
/// between `Run` calls. Not thread-safe.
type LbfgsOptimizer
    /// Creates the optimizer of `parameters` with `options`; `loss` evaluates the scalar loss at their current
    /// values (it is called once per evaluation; the optimizer takes the gradient).
    (options: LbfgsOptions, parameters: Parameter[], loss: unit -> torch.Tensor) =
    do Engine.init ()

    do
        if parameters.Length = 0 then
            raise (HybridException("L-BFGS: no parameters to fit. Give at least one parameter (e.g. Param.Raw)."))

        if parameters |> Array.exists (fun p -> not p.requires_grad) then
            let i = parameters |> Array.findIndex (fun p -> not p.requires_grad)

            raise (
                HybridException(
                    $"L-BFGS: parameter {i} (shape {ShapeText.ofShape parameters[i].shape}) does not require gradients. Leave out parameters that are not learnable."
                )
            )

        if
            options.MaxIterations < 0
            || options.History < 1
            || not (options.InitialStep > 0.0)
            || options.MaxEvaluations < 1
            || not (
                0.0 < options.SufficientDecrease
                && options.SufficientDecrease < options.Curvature
                && options.Curvature < 1.0
            )
        then
            raise (
                HybridException(
                    $"L-BFGS: invalid options (MaxIterations = {options.MaxIterations}, History = {options.History}, InitialStep = {options.InitialStep}, MaxEvaluations = {options.MaxEvaluations}, SufficientDecrease = {options.SufficientDecrease}, Curvature = {options.Curvature}). Need MaxIterations ≥ 0, History ≥ 1, InitialStep > 0, MaxEvaluations ≥ 1 and 0 < SufficientDecrease < Curvature < 1; start from Lbfgs.defaults."
                )
            )

    let sizes = parameters |> Array.map (fun p -> int (p.numel ()))
    let offsets = Array.scan (+) 0 sizes

    let read () : float[] =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()

        parameters
        |> Array.collect (fun p ->
            p.detach().to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray())

    let write (x: float[]) =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()

        parameters
        |> Array.iteri (fun i p ->
            let values: float[] = x[offsets[i] .. offsets[i + 1] - 1]
            // copy_ converts to the parameter's dtype and device.
            p.copy_ (torch.tensor(values).reshape p.shape) |> ignore)

    let gradient () : float[] =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()

        parameters
        |> Array.mapi (fun i p ->
            match p.grad with
            | null -> Array.zeroCreate sizes[i]
            | grad -> grad.to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray())
        |> Array.concat

    let clearGradients () =
        for p in parameters do
            match p.grad with
            | null -> ()
            | grad -> grad.zero_ () |> ignore

    let objective (x: float[]) : Evaluation =
        write x
        clearGradients ()
        use _ = torch.NewDisposeScope()

        let attempt =
            try
                Ok(loss ())
            with :? HybridException as e ->
                Error e.Message

        match attempt with
        | Error reason -> Evaluation.Failed reason
        | Ok l ->
            if l.dim () <> 0L then
                raise (
                    HybridException(
                        $"L-BFGS: the loss must be a scalar (0-dim) tensor, got shape {ShapeText.ofShape l.shape}. Reduce it, e.g. with .mean()."
                    )
                )

            let value = l.ToDouble()

            if not (Double.IsFinite value) then
                Evaluation.Failed $"the loss is {value}"
            else
                let backward =
                    try
                        l.backward ()
                        None
                    with :? HybridException as e ->
                        Some e.Message

                match backward with
                | Some reason -> Evaluation.Failed reason
                | None -> Evaluation.Value(value, gradient ())

    let core = LbfgsCore(options, objective, read ())

    /// The options it runs with.
    member _.Options = options

    /// Runs up to `iterations` more iterations (stopping early on a tolerance or when no step lowers the loss)
    /// and leaves the parameters at the best point found. A call after the run has stopped returns at once.
    /// Raises `HybridException` when the loss cannot be evaluated at the starting parameters.
    member _.Run(iterations: int) : LbfgsResult =
        let watch = Stopwatch.StartNew()

        let losses, initial, evaluations, failedTrials, stop =
            try
                core.Run iterations
            finally
                write core.X
                clearGradients ()

        {
            Losses = losses
            InitialLoss = initial
            Loss = core.Loss
            Iterations = losses.Length
            Evaluations = evaluations
            FailedTrials = failedTrials
            Stop = stop
            LastFailure = core.LastFailure
            WallTime = watch.Elapsed
        }

    /// The loss at the current parameters (NaN before the first `Run`).
    member _.Loss = core.Loss

/// L-BFGS with a strong-Wolfe line search for fitting a few parameters (typically θ) to a smooth loss.
[<RequireQualifiedAccess>]
module Lbfgs =

    /// 100 iterations, history 10, first step of length 1, gradient tolerance 1e-10, loss tolerance 1e-12,
    /// 25 evaluations per line search, c₁ = 1e-4, c₂ = 0.9.
    let defaults: LbfgsOptions = {
        MaxIterations = 100
        History = 10
        InitialStep = 1.0
        GradientTolerance = 1e-10
        LossTolerance = 1e-12
        MaxEvaluations = 25
        SufficientDecrease = 1e-4
        Curvature = 0.9
    }

    /// Minimises `loss` (a 0-dim tensor, rebuilt at each call; each call runs in its own dispose scope) over
    /// `parameters` with at most `options.MaxIterations` iterations; the parameters are left at the minimum
    /// found. `result.Losses` holds the loss after each iteration.
    let minimize (options: LbfgsOptions) (parameters: Parameter[]) (loss: unit -> torch.Tensor) : LbfgsResult =
        LbfgsOptimizer(options, parameters, loss).Run options.MaxIterations
