namespace Hybrid.Training

open System

/// One progress report, sent after every epoch to the hook and (every `ProgressOptions.Every` epochs)
/// printed.
type ProgressReport = {
    /// Epoch just finished (1-based).
    Epoch: int
    /// Total epochs planned.
    Epochs: int
    /// Mean training loss of the epoch.
    TrainLoss: float
    /// Validation loss (NaN when not validated this epoch).
    ValidationLoss: float
    /// Named loss components (means over the epoch), e.g. data, physics.
    Parts: (string * float)[]
    /// Current scientific parameters θ by name.
    Theta: (string * float)[]
    /// Rollout horizon used this epoch (save intervals per window).
    Horizon: int
    /// Time since training (re)started.
    Elapsed: TimeSpan
    /// Estimated time to finish all epochs.
    Eta: TimeSpan
}

/// Progress display settings.
type ProgressOptions = {
    /// Print a line to standard output.
    Show: bool
    /// Print every this many epochs (the hook gets every epoch).
    Every: int
    /// Receives every report (e.g. a C# `Progress<T>`); None for none.
    Hook: IProgress<ProgressReport> option
}

/// Progress display: formatting and the default settings.
[<RequireQualifiedAccess>]
module Progress =

    /// No printing, no hook.
    let silent: ProgressOptions = { Show = false; Every = 1; Hook = None }

    /// Print every `every` epochs.
    let console (every: int) : ProgressOptions = {
        Show = true
        Every = max 1 every
        Hook = None
    }

    /// A hook from a plain function (F# convenience over `IProgress`).
    let hook (f: ProgressReport -> unit) : IProgress<ProgressReport> =
        { new IProgress<ProgressReport> with
            member _.Report r = f r
        }

    /// One line: `epoch 12/100  loss 1.23e-03  val 1.50e-03  data … physics …  D=0.1  H=4  ETA 00:01:02`.
    let format (r: ProgressReport) : string =
        let parts =
            r.Parts
            |> Array.map (fun (n, v) -> $"{n} {v:E2}")
            |> fun a -> String.Join("  ", a)

        let theta =
            r.Theta
            |> Array.map (fun (n, v) -> $"{n}={v:G5}")
            |> fun a -> String.Join(" ", a)

        let v =
            if Double.IsNaN r.ValidationLoss then
                ""
            else
                $"  val {r.ValidationLoss:E3}"

        let eta = r.Eta.ToString(@"hh\:mm\:ss")
        $"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainLoss:E3}{v}  {parts}  {theta}  H={r.Horizon}  ETA {eta}"

    /// Sends a report to the hook and prints it when due.
    let report (o: ProgressOptions) (r: ProgressReport) : unit =
        o.Hook |> Option.iter (fun h -> h.Report r)

        if o.Show && (r.Epoch % o.Every = 0 || r.Epoch = r.Epochs) then
            printfn "%s" (format r)
