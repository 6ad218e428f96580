namespace Hybrid.Models.Tasks

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json
open Hybrid

/// One independent unit of the report's work: one training (or fit) of one model of one case or experiment, with
/// one seed, under one settings key. Tasks share nothing but their inputs, so a sweep runs them in any order, in
/// any process (a local pool, a Slurm job array) and merges their results.
type TaskSpec = {
    /// The case or experiment, e.g. "energy-balance" (a name the report's task registry knows).
    Experiment: string
    /// The settings key: "quick", "full", or "tiny" (even smaller budgets, for tests).
    Settings: string
    /// The model (or group of models computed together) the task runs, e.g. "hybrid" or "physics".
    Model: string
    /// The network seed (0 for a task with no random element).
    Seed: int
    /// The share of the training data, where the experiment varies it (data efficiency).
    Share: float option
    /// The ensemble member, where the experiment has members.
    Member: int option
    /// The trial of a hyper-parameter search, where the experiment has trials.
    Trial: int option
}

/// Canonical JSON and stable ids of tasks.
module TaskSpec =

    /// A task of `experiment` under `settings` for `model` and `seed` (no share, member or trial).
    let create (experiment: string) (settings: string) (model: string) (seed: int) : TaskSpec = {
        Experiment = experiment
        Settings = settings
        Model = model
        Seed = seed
        Share = None
        Member = None
        Trial = None
    }

    /// Writes the task as a JSON object, keys in a fixed order, absent options left out.
    let writeTo (w: Utf8JsonWriter) (t: TaskSpec) =
        w.WriteStartObject()
        w.WriteString("experiment", t.Experiment)
        w.WriteString("settings", t.Settings)
        w.WriteString("model", t.Model)
        w.WriteNumber("seed", t.Seed)
        t.Share |> Option.iter (fun v -> w.WriteNumber("share", v))
        t.Member |> Option.iter (fun v -> w.WriteNumber("member", v))
        t.Trial |> Option.iter (fun v -> w.WriteNumber("trial", v))
        w.WriteEndObject()

    /// The task's canonical JSON: one line, keys in a fixed order, no spaces; the same task always gives the same
    /// text.
    let canonical (t: TaskSpec) : string =
        use stream = new MemoryStream()

        do
            use w = new Utf8JsonWriter(stream)
            writeTo w t

        Encoding.UTF8.GetString(stream.ToArray())

    /// The task's stable id: the first 16 hex digits of the SHA-256 of its canonical JSON. Equal tasks have equal
    /// ids in every process and on every machine; any change of a field gives another id.
    let id (t: TaskSpec) : string =
        let hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonical t))
        Convert.ToHexString(hash).Substring(0, 16).ToLowerInvariant()

    /// Reads a task from a JSON object written by `writeTo`; `where` names the source for messages.
    let ofJson (where: string) (e: JsonElement) : TaskSpec =
        let fail what =
            raise (HybridException $"{where}: the task {e.GetRawText()} {what}; write tasks with `hybrid sweep plan`.")

        if e.ValueKind <> JsonValueKind.Object then
            fail "is not a JSON object"

        let text name =
            match e.TryGetProperty(name: string) with
            | true, v when v.ValueKind = JsonValueKind.String -> v.GetString()
            | _ -> fail $"has no text field \"{name}\""

        let optional name (read: JsonElement -> 'T) =
            match e.TryGetProperty(name: string) with
            | true, v when v.ValueKind = JsonValueKind.Number -> Some(read v)
            | true, _ -> fail $"has a field \"{name}\" that is not a number"
            | _ -> None

        {
            Experiment = text "experiment"
            Settings = text "settings"
            Model = text "model"
            Seed =
                optional "seed" (fun v -> v.GetInt32())
                |> Option.defaultWith (fun () -> fail "has no number field \"seed\"")
            Share = optional "share" (fun v -> v.GetDouble())
            Member = optional "member" (fun v -> v.GetInt32())
            Trial = optional "trial" (fun v -> v.GetInt32())
        }

    /// A short readable name of the task for progress lines and messages, e.g. "energy-balance/quick hybrid
    /// seed 3".
    let describe (t: TaskSpec) : string =
        let extra =
            [
                t.Share |> Option.map (fun v -> $" share {v}")
                t.Member |> Option.map (fun v -> $" member {v}")
                t.Trial |> Option.map (fun v -> $" trial {v}")
            ]
            |> List.choose (fun o -> o)
            |> String.concat ""

        $"{t.Experiment}/{t.Settings} {t.Model} seed {t.Seed}{extra}"
