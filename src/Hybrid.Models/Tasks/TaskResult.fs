namespace Hybrid.Models.Tasks

open System
open System.IO
open System.Text
open System.Text.Json
open Hybrid
open Hybrid.Models.Common

/// What one task computed: its numbers as long-format rows, the curves its section charts (named float series)
/// and the texts its tables need (a model's description), with the task and its wall time. Written as
/// `results/<id>.json` in the "hybrid-task-result 1" format.
type TaskResult = {
    /// The task's stable id (`TaskSpec.id`).
    Id: string
    /// The task itself.
    Task: TaskSpec
    /// The numbers, one row each.
    Rows: ResultRow[]
    /// Named curves (e.g. "simulated:hybrid (EBM + MLP)" → one value per year), in the order the task made them.
    Series: (string * float[])[]
    /// Named texts (e.g. "description:PINN" → what the model is), in the order the task made them.
    Texts: (string * string)[]
    /// Wall time of the task in seconds.
    Seconds: float
}

/// Reading and writing task results as JSON.
module TaskResult =

    /// The format this version of Hybrid writes and reads.
    [<Literal>]
    let FormatVersion = 1

    /// The value of the "format" field.
    let formatName = $"hybrid-task-result {FormatVersion}"

    /// The series named `name`; a `HybridException` names the task and the series when it has none.
    let series (name: string) (r: TaskResult) : float[] =
        r.Series
        |> Array.tryFind (fst >> (=) name)
        |> Option.map snd
        |> Option.defaultWith (fun () ->
            raise (HybridException $"The result of task {r.Id} ({TaskSpec.describe r.Task}) has no series '{name}'."))

    /// The text named `name`; a `HybridException` names the task and the text when it has none.
    let text (name: string) (r: TaskResult) : string =
        r.Texts
        |> Array.tryFind (fst >> (=) name)
        |> Option.map snd
        |> Option.defaultWith (fun () ->
            raise (HybridException $"The result of task {r.Id} ({TaskSpec.describe r.Task}) has no text '{name}'."))

    // NaN and ±∞ are not JSON numbers: they are written as the strings "NaN", "Infinity", "-Infinity".
    let private writeFloat (w: Utf8JsonWriter) (v: float) =
        if Double.IsFinite v then w.WriteNumberValue v
        elif Double.IsNaN v then w.WriteStringValue "NaN"
        elif v > 0.0 then w.WriteStringValue "Infinity"
        else w.WriteStringValue "-Infinity"

    /// The result as indented JSON text.
    let toJson (r: TaskResult) : string =
        use stream = new MemoryStream()

        do
            use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
            w.WriteStartObject()
            w.WriteString("format", formatName)
            w.WriteString("id", r.Id)
            w.WritePropertyName "task"
            TaskSpec.writeTo w r.Task
            w.WritePropertyName "seconds"
            writeFloat w r.Seconds
            w.WriteStartArray "rows"

            for row in r.Rows do
                w.WriteStartObject()
                w.WriteString("case", row.Case)
                w.WriteString("model", row.Model)
                w.WriteString("split", row.Split)
                w.WriteString("metric", row.Metric)
                w.WriteNumber("seed", row.Seed)
                w.WritePropertyName "value"
                writeFloat w row.Value
                w.WriteEndObject()

            w.WriteEndArray()
            w.WriteStartObject "series"

            for name, values in r.Series do
                w.WriteStartArray name

                for v in values do
                    writeFloat w v

                w.WriteEndArray()

            w.WriteEndObject()
            w.WriteStartObject "texts"

            for name, value in r.Texts do
                w.WriteString(name, value)

            w.WriteEndObject()
            w.WriteEndObject()

        Encoding.UTF8.GetString(stream.ToArray())

    /// Parses a result written by `toJson`; `where` names the file for messages. A result in another format says
    /// which Hybrid writes it; one whose id does not match its task is refused.
    let ofJson (where: string) (json: string) : TaskResult =
        let fail what =
            raise (HybridException $"{where}: {what}.")

        use doc =
            try
                JsonDocument.Parse json
            with :? JsonException as e ->
                fail $"is not valid JSON ({e.Message}); delete it and run the task again (`hybrid sweep run --retry`)"

        let root = doc.RootElement

        let field name =
            match root.TryGetProperty(name: string) with
            | true, v -> v
            | _ -> fail $"has no field \"{name}\"; it is not a task result of this version of Hybrid"

        match (field "format").GetString() with
        | f when f = formatName -> ()
        | f ->
            let writer =
                match f.Split ' ' with
                | [| "hybrid-task-result"; n |] ->
                    match Int32.TryParse n with
                    | true, v when v < FormatVersion -> "an older version of Hybrid"
                    | true, _ -> "a newer version of Hybrid"
                    | _ -> "no version of Hybrid"
                | _ -> "no version of Hybrid"

            fail
                $"is in format \"{f}\", written by {writer}; this version reads \"{formatName}\". Merge it with the Hybrid that wrote it, or run the task again (`hybrid sweep run --retry` after deleting the file)"

        let readFloat (e: JsonElement) =
            match e.ValueKind with
            | JsonValueKind.Number -> e.GetDouble()
            | JsonValueKind.String ->
                match e.GetString() with
                | "NaN" -> nan
                | "Infinity" -> infinity
                | "-Infinity" -> -infinity
                | s -> fail $"holds \"{s}\" where a number belongs"
            | _ -> fail $"holds {e.GetRawText()} where a number belongs"

        let task = TaskSpec.ofJson where (field "task")
        let id = (field "id").GetString()

        if id <> TaskSpec.id task then
            fail
                $"has id {id} but its task {TaskSpec.canonical task} has id {TaskSpec.id task}; the file was edited or copied from another task"

        {
            Id = id
            Task = task
            Seconds = readFloat (field "seconds")
            Rows = [|
                for row in (field "rows").EnumerateArray() ->
                    {
                        Case = row.GetProperty("case").GetString()
                        Model = row.GetProperty("model").GetString()
                        Split = row.GetProperty("split").GetString()
                        Metric = row.GetProperty("metric").GetString()
                        Seed = row.GetProperty("seed").GetInt32()
                        Value = readFloat (row.GetProperty "value")
                    }
            |]
            Series = [|
                for p in (field "series").EnumerateObject() ->
                    p.Name, [| for v in p.Value.EnumerateArray() -> readFloat v |]
            |]
            Texts = [| for p in (field "texts").EnumerateObject() -> p.Name, p.Value.GetString() |]
        }
