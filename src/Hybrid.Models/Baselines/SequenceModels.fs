/// Pure data-driven sequence baselines: a causal LSTM or transformer network on a multivariate time series with
/// optional exogenous inputs (forcing, dose, covariates), used two ways:
///  - `fitForecaster` / `forecast`: autoregressive forecasting. The input at step k is (x(k), u(k + 1)), the
///    state and the exogenous input of the step's target; the network predicts the increment x(k + 1) − x(k).
///    Training sees windows of `Window` steps, full batch: the first `WarmStart` share of the iterations with
///    teacher forcing (the observed states as inputs, MSE of the increments), the rest on free-running rollouts
///    (after the first half of a window as observed context, the network feeds its own predictions back; MSE of
///    the predicted states), the multi-step objective the hybrids' rollouts have too. Forecasts feed their predictions back the same way, with the
///    last `Window` states as context.
///  - `fitRegression` / `regress`: sequence-to-sequence regression from inputs to outputs at every step
///    (e.g. a concentration curve from sampling times and dose), with no observed outputs as inputs.
/// Values are taken as given: scale series and inputs to order one before calling. Networks are tiny (the
/// case studies have 16–120 points), initialised from `Settings.Seed` with `CaseTraining.initialise` and
/// trained with `Trainer.train` (Adam; `CaseTraining.network`), so the same seed gives the same result.
module Hybrid.Models.Baselines.SequenceModels

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Models.Common

/// The network behind a sequence baseline.
[<RequireQualifiedAccess>]
type Architecture =
    /// `torch.nn.LSTM` (batch first) followed by a linear read-out.
    | Lstm
    /// A linear embedding plus sinusoidal positions, `torch.nn.TransformerEncoder` with a causal mask
    /// (ReLU feed-forward of twice the model width, no dropout), and a linear read-out.
    | Transformer

/// Settings of a sequence baseline.
type Settings = {
    /// The network: LSTM or transformer.
    Architecture: Architecture
    /// Hidden size of the LSTM, or model width of the transformer.
    Hidden: int
    /// LSTM layers, or transformer encoder layers.
    Layers: int
    /// Attention heads of the transformer (must divide `Hidden`; ignored by the LSTM).
    Heads: int
    /// Context length in steps: training windows and the forecast context (forecasting only).
    Window: int
    /// Adam iterations; each is one full-batch epoch over every training window.
    Iterations: int
    /// Share of `Iterations` (0 … 1) a forecaster trains with teacher forcing before it trains on free-running
    /// rollouts of its windows (1 = teacher forcing only; ignored by the regression).
    WarmStart: float
    /// Adam learning rate.
    LearningRate: float
    /// Seed of the weight initialisation.
    Seed: int
}

/// A small default: 16 hidden units, one layer, two heads, 8-step windows, 400 Adam iterations at 1e-2, the
/// first third of them with teacher forcing.
let defaults (architecture: Architecture) = {
    Architecture = architecture
    Hidden = 16
    Layers = 1
    Heads = 2
    Window = 8
    Iterations = 400
    WarmStart = 1.0 / 3.0
    LearningRate = 1e-2
    Seed = 1
}

/// Name of an architecture for tables ("LSTM", "Transformer").
let internal name (a: Architecture) =
    match a with
    | Architecture.Lstm -> "LSTM"
    | Architecture.Transformer -> "Transformer"

let private f64 = torch.ScalarType.Float64

/// Sinusoidal position code [steps; width] (Vaswani et al. 2017).
let private positions (steps: int64) (width: int) =
    let values =
        Array.init (int steps * width) (fun i ->
            let k, j = i / width, i % width
            let rate = Math.Pow(10000.0, -float(2 * (j / 2)) / float width)

            if j % 2 = 0 then
                sin (float k * rate)
            else
                cos (float k * rate))

    torch.tensor(values, dtype = f64).reshape (steps, int64 width)

/// A causal sequence network in float64: [B; T; inputs] → [B; T; outputs], the output at step k depending on
/// the inputs at steps 0 … k only.
type internal SequenceNet
    /// Creates the network `label` with `inputs` features in and `outputs` out per step, shaped by `s`
    /// (architecture, width, layers, heads).
    (label: string, inputs: int, outputs: int, s: Settings) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>(label)

    do
        Engine.init ()

        if inputs < 1 || outputs < 1 then
            raise (HybridException $"SequenceNet '{label}': inputs {inputs} and outputs {outputs} must be at least 1.")

        if s.Hidden < 1 || s.Layers < 1 then
            raise (
                HybridException
                    $"SequenceNet '{label}': Hidden {s.Hidden} and Layers {s.Layers} must be at least 1; use e.g. Hidden = 16, Layers = 1."
            )

        if
            s.Architecture = Architecture.Transformer
            && (s.Heads < 1 || s.Hidden % s.Heads <> 0)
        then
            raise (
                HybridException
                    $"SequenceNet '{label}': Heads {s.Heads} must divide Hidden {s.Hidden}; use e.g. Heads = 2 with Hidden = 16."
            )

    let lstm =
        match s.Architecture with
        | Architecture.Lstm -> Some(torch.nn.LSTM(int64 inputs, int64 s.Hidden, int64 s.Layers, batchFirst = true))
        | Architecture.Transformer -> None

    let embed, encoder =
        match s.Architecture with
        | Architecture.Lstm -> None, None
        | Architecture.Transformer ->
            let layer =
                torch.nn.TransformerEncoderLayer(
                    int64 s.Hidden,
                    int64 s.Heads,
                    int64 (2 * s.Hidden),
                    0.0,
                    torch.nn.Activations.ReLU
                )

            Some(torch.nn.Linear(int64 inputs, int64 s.Hidden)),
            Some(torch.nn.TransformerEncoder(layer, int64 s.Layers))

    let readout = torch.nn.Linear(int64 s.Hidden, int64 outputs)

    do
        lstm |> Option.iter (fun m -> this.register_module ("lstm", m))
        embed |> Option.iter (fun m -> this.register_module ("embed", m))
        encoder |> Option.iter (fun m -> this.register_module ("encoder", m))
        this.register_module ("readout", readout)
        this.``to`` (Engine.torchDevice (), f64) |> ignore

    /// Input features per step.
    member _.Inputs = inputs

    /// Outputs per step.
    member _.Outputs = outputs

    /// [B; T; inputs] → [B; T; outputs].
    override _.forward(x: torch.Tensor) : torch.Tensor =
        if x.dim () <> 3L || x.shape[2] <> int64 inputs then
            raise (
                HybridException
                    $"SequenceNet '{label}' expects [batch; steps; {inputs}], got [{String.Join(',', x.shape)}]."
            )

        let hidden =
            match lstm, embed, encoder with
            | Some m, _, _ ->
                let struct (y, _, _) = m.forward (x, Nullable())
                y
            | None, Some e, Some enc ->
                let steps = x.shape[1]
                let tokens = e.forward x .+ positions steps s.Hidden
                // Causal mask: −∞ above the diagonal, so step k attends to steps 0 … k only.
                let mask =
                    withScalar Double.NegativeInfinity (fun v ->
                        (torch.full ([| steps; steps |], v, dtype = f64)).triu 1L)

                enc.forward(tokens.transpose (0L, 1L), mask, null).transpose (0L, 1L)
            | _ -> raise (HybridException $"SequenceNet '{label}': no network built (internal error).")

        readout.forward hidden

/// A trained sequence baseline.
type internal Trained = {
    /// The network.
    Net: SequenceNet
    /// Settings it was trained with.
    Settings: Settings
    /// Adam iterations run (full-batch epochs).
    Epochs: int
    /// Training wall time (s).
    Seconds: float
    /// Final training loss: MSE of the one-step increments under teacher forcing (forecaster) or of the outputs
    /// (regression), in the scaled units it was given.
    TrainLoss: float
}

let private matrix (rows: float[][]) (columns: int) =
    torch.tensor(Array.concat rows, dtype = f64).reshape (int64 rows.Length, int64 columns)

let private width (what: string) (rows: float[][]) =
    let w = if rows.Length = 0 then 0 else rows[0].Length

    match rows |> Array.tryFindIndex (fun r -> r.Length <> w) with
    | Some i -> raise (HybridException $"{what}: row {i} has {rows[i].Length} values, row 0 has {w}; give equal rows.")
    | None -> w

/// Early stopping of a sequence baseline: its validation MSE from the model as it is during training (e.g. a
/// forecast of the validation block, `forecast`) and the case's rule.
type internal Validation = {
    /// The validation MSE of the model (its network at the current weights).
    Score: Trained -> float
    /// The case's early-stopping rule.
    Rule: EarlyStopping.Rule
}

/// Trains `net` from its seeded initialisation on `loss epoch` with `CaseTraining.networkWith` (Adam, one full batch
/// an epoch; early stopping on `validation` where given); `final` is the reported training loss after the last epoch
/// (after the best epoch's weights are put back).
let private train
    (net: SequenceNet)
    (s: Settings)
    (validation: Validation option)
    (loss: int -> torch.Tensor)
    (final: unit -> torch.Tensor)
    =
    CaseTraining.initialise net s.Seed false

    let current = {
        Net = net
        Settings = s
        Epochs = 0
        Seconds = 0.0
        TrainLoss = nan
    }

    let check =
        validation
        |> Option.map (fun v -> {
            EarlyStopping.Check.Score = fun () -> v.Score current
            EarlyStopping.Check.Rule = v.Rule
        })

    let fit =
        CaseTraining.singleThreaded (fun () ->
            CaseTraining.networkWith check net s.LearningRate s.Iterations s.Seed (fun context -> loss context.Epoch))

    use _ = torch.no_grad ()

    {
        Net = net
        Settings = s
        Epochs = fit.Epochs
        Seconds = fit.WallTime.TotalSeconds
        TrainLoss = (final ()).ToDouble()
    }

/// Step inputs (x(k), u(k + 1)) for k = start … start + steps − 1 of one record: [steps; channels + covariates].
let private stepInputs (series: float[][]) (exogenous: float[][]) (start: int) (steps: int) =
    Array.init steps (fun i ->
        let k = start + i

        if exogenous.Length = 0 then
            series[k]
        else
            Array.append series[k] exogenous[k + 1])

/// The observed states after each step of teacher-forced windows: x(k) + Δx(k), [B; W; channels].
let private observedStates (channels: int) (x: torch.Tensor) (dx: torch.Tensor) =
    x.narrow (2L, 0L, int64 channels) .+ dx

/// A free-running rollout of `net` over windows whose teacher-forced inputs are `x` [B; W; channels +
/// covariates]: the first `context` steps see the observed states (a forecast's history), every later step the
/// predicted state with the observed exogenous input of that step. Returns the predicted states after steps
/// `context` − 1 … W − 1, [B; W − context + 1; channels]. Differentiable (the multi-step objective); one forward
/// pass per predicted step over the growing prefix, as a forecast makes them.
let internal rollWindow (net: SequenceNet) (channels: int) (context: int) (x: torch.Tensor) =
    let steps = int x.shape[1]
    let covariates = x.shape[2] - int64 channels

    let input (state: torch.Tensor) k =
        if covariates = 0L then
            state
        else
            torch.cat ([| state; x.select(1L, int64 k).narrow (1L, int64 channels, covariates) |], 1L)

    let inputs = ResizeArray [ for k in 0 .. context - 1 -> x.select (1L, int64 k) ]
    let predicted = ResizeArray<torch.Tensor>()

    let mutable state =
        x.select(1L, int64 (context - 1)).narrow (1L, 0L, int64 channels)

    for k in context - 1 .. steps - 1 do
        let increment = (net.forward (torch.stack (inputs, 1L))).select (1L, int64 k)
        state <- state .+ increment
        predicted.Add state

        if k + 1 < steps then
            inputs.Add(input state (k + 1))

    torch.stack (predicted, 1L)

/// Trains an autoregressive forecaster on `records`, each a series [T; channels] (scaled to order one) with
/// its exogenous inputs [T; covariates] (`exogenous` empty, or one array per record; give each record's
/// exogenous array the same length as the series). Every window of `Window` + 1 consecutive steps is a
/// training sample, with the increment predicted at each of its `Window` positions; a record shorter than
/// that gives one shorter window. With `validation`, training stops early on its score (see `Validation`).
let internal fitForecasterWith
    (validation: Validation option)
    (s: Settings)
    (records: float[][][])
    (exogenous: float[][][])
    : Trained =
    if records.Length = 0 || records |> Array.exists (fun r -> r.Length < 2) then
        raise (HybridException "fitForecaster: give at least one record of at least two steps.")

    if exogenous.Length <> 0 && exogenous.Length <> records.Length then
        raise (
            HybridException
                $"fitForecaster: {exogenous.Length} exogenous arrays for {records.Length} records; give one per record or none."
        )

    if s.Window < 1 then
        raise (HybridException $"fitForecaster: Window {s.Window} must be at least 1.")

    if not (s.WarmStart >= 0.0 && s.WarmStart <= 1.0) then
        raise (
            HybridException
                $"fitForecaster: WarmStart {s.WarmStart} is the share of iterations with teacher forcing; give a value in [0, 1] (e.g. 1/3)."
        )

    let channels = width "fitForecaster series" records[0]

    let covariates =
        if exogenous.Length = 0 then
            0
        else
            width "fitForecaster exogenous" exogenous[0]

    let exogenousOf r =
        if exogenous.Length = 0 then [||] else exogenous[r]

    // Windows grouped by length (a short record gives a shorter window); each group is one batch.
    let windows =
        records
        |> Array.mapi (fun r series ->
            let steps = min s.Window (series.Length - 1)

            [| 0 .. series.Length - 1 - steps |]
            |> Array.map (fun start ->
                let x = stepInputs series (exogenousOf r) start steps

                let dx =
                    Array.init steps (fun i -> Array.map2 (-) series[start + i + 1] series[start + i])

                steps, x, dx))
        |> Array.concat
        |> Array.groupBy (fun (steps, _, _) -> steps)
        |> Array.map (fun (steps, group) ->
            let b = int64 group.Length
            let x = group |> Array.collect (fun (_, x, _) -> x)
            let dx = group |> Array.collect (fun (_, _, dx) -> dx)

            (matrix x (channels + covariates)).reshape (b, int64 steps, int64 (channels + covariates)),
            (matrix dx channels).reshape (b, int64 steps, int64 channels))

    let count = windows |> Array.sumBy (fun (_, dx) -> float dx.NumberOfElements)
    let net = new SequenceNet("forecaster", channels + covariates, channels, s)

    let teacherForced () =
        windows
        |> Array.map (fun (x, dx) -> (square (net.forward x .- dx)).sum ())
        |> Array.reduce (.+)
        |> fun total -> total ./ count

    // Free-running windows keep the first half of their steps as observed context (at least one).
    let freeCount =
        windows
        |> Array.sumBy (fun (_, dx) ->
            let steps = int dx.shape[1]
            float (dx.shape[0] * int64 (steps - max 1 (steps / 2) + 1) * int64 channels))

    let freeRunning () =
        windows
        |> Array.map (fun (x, dx) ->
            let steps = int x.shape[1]
            let context = max 1 (steps / 2)

            let observed =
                (observedStates channels x dx).narrow (1L, int64 (context - 1), int64 (steps - context + 1))

            (square (rollWindow net channels context x .- observed)).sum ())
        |> Array.reduce (.+)
        |> fun total -> total ./ freeCount

    let warm = int (Math.Round(s.WarmStart * float s.Iterations))

    train net s validation (fun epoch -> if epoch < warm then teacherForced () else freeRunning ()) teacherForced

/// `fitForecasterWith` without validation: every iteration runs.
let internal fitForecaster (s: Settings) (records: float[][][]) (exogenous: float[][][]) : Trained =
    fitForecasterWith None s records exogenous

let private forecastOn (model: Trained) (history: float[][]) (exogenous: float[][]) (steps: int) : float[][] =
    let channels = model.Net.Outputs

    if history.Length = 0 || history |> Array.exists (fun r -> r.Length <> channels) then
        raise (HybridException $"forecast: give a non-empty history of rows with {channels} values.")

    if model.Net.Inputs > channels && exogenous.Length < history.Length + steps then
        raise (
            HybridException
                $"forecast: exogenous has {exogenous.Length} rows; it needs {history.Length + steps} (history and forecast)."
        )

    use _ = torch.no_grad ()
    let states = ResizeArray history
    let exo = if model.Net.Inputs > channels then exogenous else [||]

    for _ in 1..steps do
        use _ = torch.NewDisposeScope()
        let context = min model.Settings.Window states.Count
        let start = states.Count - context
        let x = stepInputs (states.ToArray()) exo start context

        let dx =
            (model.Net.forward ((matrix x model.Net.Inputs).unsqueeze 0L)).select(1L, int64 (context - 1)).squeeze 0L

        let last = states[states.Count - 1]
        states.Add(Array.map2 (+) last (dx.data<float>().ToArray()))

    states.ToArray() |> Array.skip history.Length

/// Forecasts `steps` steps after `history` [T; channels] (the same scaling as in training) with a trained
/// forecaster, feeding predictions back; `exogenous` [T + steps; covariates] covers the history and the
/// forecast (empty when the forecaster has none). Returns [steps; channels].
let internal forecast (model: Trained) (history: float[][]) (exogenous: float[][]) (steps: int) : float[][] =
    CaseTraining.singleThreaded (fun () -> forecastOn model history exogenous steps)

/// One-step-ahead predictions of a trained forecaster along an observed `series` [T; channels] with its
/// `exogenous` inputs [T; covariates] (empty when none): row k is the prediction of x(k + 1) from the observed
/// states up to k (at most `Window` of them), [T − 1; channels].
let internal oneStep (model: Trained) (series: float[][]) (exogenous: float[][]) : float[][] =
    use _ = torch.no_grad ()

    let exo =
        if model.Net.Inputs > model.Net.Outputs then
            exogenous
        else
            [||]

    Array.init (series.Length - 1) (fun k ->
        use _ = torch.NewDisposeScope()
        let context = min model.Settings.Window (k + 1)
        let x = stepInputs series exo (k + 1 - context) context

        let dx =
            (model.Net.forward ((matrix x model.Net.Inputs).unsqueeze 0L)).select(1L, int64 (context - 1)).squeeze 0L

        Array.map2 (+) series[k] (dx.data<float>().ToArray()))

/// Trains a sequence-to-sequence regression: `inputs` [records; T; features] to `targets` [records; T; outputs]
/// at every step (all records of the same length T; scaled to order one). With `validation`, training stops early on
/// its score (see `Validation`).
let internal fitRegressionWith
    (validation: Validation option)
    (s: Settings)
    (inputs: float[][][])
    (targets: float[][][])
    : Trained =
    if inputs.Length = 0 || inputs.Length <> targets.Length then
        raise (
            HybridException
                $"fitRegression: {inputs.Length} input and {targets.Length} target records; give equal, non-zero counts."
        )

    let steps = inputs[0].Length

    match Array.append inputs targets |> Array.tryFind (fun r -> r.Length <> steps) with
    | Some r ->
        raise (
            HybridException $"fitRegression: a record has {r.Length} steps, the first has {steps}; give equal lengths."
        )
    | None -> ()

    let features = width "fitRegression inputs" (Array.concat inputs)
    let outputs = width "fitRegression targets" (Array.concat targets)
    let b = int64 inputs.Length

    let x =
        (matrix (Array.concat inputs) features).reshape (b, int64 steps, int64 features)

    let y =
        (matrix (Array.concat targets) outputs).reshape (b, int64 steps, int64 outputs)

    let net = new SequenceNet("regression", features, outputs, s)
    let loss () = (square (net.forward x .- y)).mean ()
    train net s validation (fun _ -> loss ()) loss

/// `fitRegressionWith` without validation: every iteration runs.
let internal fitRegression (s: Settings) (inputs: float[][][]) (targets: float[][][]) : Trained =
    fitRegressionWith None s inputs targets

/// Applies a trained regression to `inputs` [records; T; features] (any T); returns [records; T; outputs].
let internal regress (model: Trained) (inputs: float[][][]) : float[][][] =
    use _ = torch.no_grad ()
    use _ = torch.NewDisposeScope()
    let steps = inputs[0].Length

    let x =
        (matrix (Array.concat inputs) model.Net.Inputs)
            .reshape (int64 inputs.Length, int64 steps, int64 model.Net.Inputs)

    let y = (model.Net.forward x).contiguous().data<float>().ToArray()
    let o = model.Net.Outputs
    Array.init inputs.Length (fun r -> Array.init steps (fun k -> Array.sub y ((r * steps + k) * o) o))
