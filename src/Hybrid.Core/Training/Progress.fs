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

    /// One line, the same in every culture:
    /// `epoch 12/100  loss 1.230E-003  val 1.500E-003  data 1.00E-003  physics 2.30E-004  D=0.1 r=2  horizon 4  ETA 00:01:02`.
    /// Only the parameters θ are written `name=value`; the horizon and the other words are written with a space,
    /// so that no field or parameter name (a parameter may be called `H`) can be mistaken for them. Empty parts
    /// (no validation, no loss parts, no θ) are left out.
    let format (r: ProgressReport) : string =
        let inv (s: FormattableString) = FormattableString.Invariant s

        let parts =
            r.Parts
            |> Array.map (fun (n, v) -> inv $"{n} {v:E2}")
            |> fun a -> String.Join("  ", a)

        let theta =
            r.Theta
            |> Array.map (fun (n, v) -> inv $"{n}={v:G5}")
            |> fun a -> String.Join(" ", a)

        let v =
            if Double.IsNaN r.ValidationLoss then
                ""
            else
                inv $"val {r.ValidationLoss:E3}"

        let eta = r.Eta.ToString(@"hh\:mm\:ss")

        [
            inv $"epoch {r.Epoch}/{r.Epochs}"
            inv $"loss {r.TrainLoss:E3}"
            v
            parts
            theta
            inv $"horizon {r.Horizon}"
            $"ETA {eta}"
        ]
        |> List.filter (fun s -> s <> "")
        |> String.concat "  "

    /// Sends a report to the hook and prints it when due.
    let report (o: ProgressOptions) (r: ProgressReport) : unit =
        o.Hook |> Option.iter (fun h -> h.Report r)

        if o.Show && (r.Epoch % o.Every = 0 || r.Epoch = r.Epochs) then
            printfn "%s" (format r)
