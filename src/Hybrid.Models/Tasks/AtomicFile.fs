/// Writing a file so that a reader sees either nothing or the whole file, even when the writing process dies.
module Hybrid.Models.Tasks.AtomicFile

open System
open System.IO
open System.Text

/// Writes `text` (UTF-8) to `path` atomically: into a temporary file in the same folder (named
/// ".<name>.tmp-<pid>"), flushed to disk (fsync), then renamed over `path`. A process killed midway leaves at most
/// the temporary file, never a partial `path`.
let write (path: string) (text: string) : unit =
    let full = Path.GetFullPath path
    let folder = Path.GetDirectoryName full
    Directory.CreateDirectory folder |> ignore

    let temporary =
        Path.Combine(folder, $".{Path.GetFileName full}.tmp-{Environment.ProcessId}")

    do
        use stream =
            new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None)

        let bytes = Encoding.UTF8.GetBytes text
        stream.Write(bytes, 0, bytes.Length)
        stream.Flush true

    File.Move(temporary, full, true)

/// True for the temporary files `write` leaves behind when it is killed (they are never results).
let isTemporary (path: string) : bool =
    let name = Path.GetFileName path
    name.StartsWith "." && name.Contains ".tmp-"
