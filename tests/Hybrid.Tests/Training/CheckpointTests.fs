/// Checkpoints that never lose a good state: verified saves (manifest with lengths and SHA-256), fallback past a
/// dangling `latest` and past each damaged file, errors that name the file, metadata checked against the run.
module Hybrid.Tests.Training.CheckpointTests

open System
open System.IO
open System.Security.Cryptography
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Training

let private f64 = torch.ScalarType.Float64

/// A run's state: two parameters, their best copies and an Adam optimizer.
type private State = {
    Parameters: torch.Tensor[]
    Best: torch.Tensor[]
    Optimizer: Adam
}

let private state () =
    Engine.init ()

    let ps = [|
        torch.nn.Parameter(torch.tensor ([| 0.0; 0.0 |], dtype = f64))
        torch.nn.Parameter(torch.tensor (0.0, dtype = f64))
    |]

    let optimizer = new Adam([| ps |> Array.map (fun p -> p :> torch.Tensor), 0.1 |])

    {
        Parameters = ps |> Array.map (fun p -> p :> torch.Tensor)
        Best = [| torch.zeros (2L, dtype = f64); torch.zeros ([||], dtype = f64) |]
        Optimizer = optimizer
    }

/// Puts the values of epoch `e` into the state: parameters e·[1, 2] and e, best copies −e·[1, 2] and −e (the
/// optimizer state round trip is checked bitwise by the Trainer's resume tests).
let private setEpoch (s: State) (e: int) =
    use _ = torch.no_grad ()

    s.Parameters[0].copy_ (torch.tensor ([| float e; 2.0 * float e |], dtype = f64))
    |> ignore

    s.Parameters[1].fill_ (float e) |> ignore

    s.Best[0].copy_ (torch.tensor ([| -float e; -2.0 * float e |], dtype = f64))
    |> ignore

    s.Best[1].fill_ (float -e) |> ignore

let private meta (e: int) = {
    Epoch = e
    Seed = 3
    BestValidation = infinity
    BestEpoch = 0
    TrainLosses = Array.init e (fun i -> 1.0 / float (i + 1))
    ValidationLosses = Array.init e (fun i -> 2.0 / float (i + 1))
}

/// Saves checkpoints at the given epochs into a fresh folder.
let private saved (epochs: int list) =
    let dir =
        Path.Combine(Path.GetTempPath(), "hybrid-ckpt-" + Guid.NewGuid().ToString("N"))

    let s = state ()

    for e in epochs do
        setEpoch s e
        Checkpoint.save dir s.Parameters s.Best s.Optimizer (meta e) |> ignore

    dir

let private values (ts: torch.Tensor[]) =
    ts |> Array.collect (fun t -> t.reshape(-1L).data<float>().ToArray())

/// Runs `f` with standard error captured; returns its result and what it wrote there.
let private capturingStderr (f: unit -> 'T) : 'T * string =
    let previous = Console.Error
    use writer = new StringWriter()
    Console.SetError writer

    try
        let r = f ()
        r, writer.ToString()
    finally
        Console.SetError previous

/// Resumes into a fresh state; returns the meta, the loaded parameter and best values, and standard error.
let private resume (dir: string) (epochs: int) =
    let s = state ()

    let m, err =
        capturingStderr (fun () -> Checkpoint.resume dir s.Parameters s.Best s.Optimizer 3 epochs)

    m, values s.Parameters, values s.Best, err

let private withDir (dir: string) (f: unit -> unit) =
    try
        f ()
    finally
        if Directory.Exists dir then
            Directory.Delete(dir, true)

let private folder (dir: string) (epoch: int) =
    Path.Combine(dir, sprintf "epoch-%06d" epoch)

let private truncate (path: string) =
    let bytes = File.ReadAllBytes path
    File.WriteAllBytes(path, bytes[0 .. bytes.Length / 2 - 1])

/// Rewrites meta.txt and its manifest entry, so that only the parser can object.
let private replaceMeta (checkpoint: string) (text: string) =
    let path = Path.Combine(checkpoint, "meta.txt")
    File.WriteAllText(path, text)
    let bytes = File.ReadAllBytes path
    let hash = Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()
    let manifest = Path.Combine(checkpoint, "manifest.txt")

    File.ReadAllLines manifest
    |> Array.map (fun l ->
        if l.StartsWith "meta.txt " then
            $"meta.txt {bytes.Length} {hash}"
        else
            l)
    |> fun lines -> File.WriteAllLines(manifest, lines)

let private epochValues (e: int) =
    [| float e; 2.0 * float e; float e |], [| -float e; -2.0 * float e; -float e |]

let tests =
    testSequenced
    <| testList "Checkpoint" [
        test "a saved checkpoint verifies and loads back exactly" {
            let dir = saved [ 5 ]

            withDir dir (fun () ->
                Expect.equal (Checkpoint.verify (folder dir 5)) (Ok(meta 5)) "verifies"

                let lines = File.ReadAllLines(Path.Combine(folder dir 5, "manifest.txt"))
                Expect.equal lines[0] "hybrid-checkpoint 2" "manifest header"

                Expect.sequenceEqual
                    (lines[1..] |> Array.map (fun l -> l.Split(' ')[0]))
                    [ "parameters.bin"; "best.bin"; "optimizer.bin"; "meta.txt" ]
                    "every file is listed"

                let m, p, b, err = resume dir 20
                Expect.equal (m |> Option.map (fun m -> m.Epoch)) (Some 5) "epoch 5"
                Expect.equal (p, b) (epochValues 5) "the saved values"
                Expect.equal err "" "no warning")
        }

        test "the newest two verified checkpoints are kept, older ones deleted" {
            let dir = saved [ 5; 10; 15 ]

            withDir dir (fun () ->
                let names = Directory.GetDirectories dir |> Array.map Path.GetFileName |> Array.sort

                Expect.equal names [| "epoch-000010"; "epoch-000015" |] "two kept"
                Expect.equal (File.ReadAllText(Path.Combine(dir, "latest"))) "epoch-000015" "latest")
        }

        test "a dangling latest falls back to the newest intact checkpoint, which the next save keeps" {
            let dir = saved [ 5; 10 ]

            withDir dir (fun () ->
                File.WriteAllText(Path.Combine(dir, "latest"), "epoch-000099")
                let m, p, b, err = resume dir 20
                Expect.equal (m |> Option.map (fun m -> m.Epoch)) (Some 10) "resumes at epoch 10, not 0"
                Expect.equal (p, b) (epochValues 10) "epoch 10's values"

                Expect.stringContains
                    err
                    $"""names 'epoch-000099', which does not exist; using '{folder dir 10}', the newest intact checkpoint."""
                    "warns, naming the pointer's target"

                // The next save verifies itself before deleting anything, and keeps epoch 10 beside it.
                let s = state ()
                setEpoch s 15
                Checkpoint.save dir s.Parameters s.Best s.Optimizer (meta 15) |> ignore
                Expect.isTrue (Directory.Exists(folder dir 10)) "epoch 10 survives"
                Expect.isTrue (Directory.Exists(folder dir 15)) "epoch 15 written"
                Expect.isFalse (Directory.Exists(folder dir 5)) "epoch 5 pruned")
        }

        testList "a damaged newest checkpoint falls back to the previous one" [
            for file in [ "parameters.bin"; "best.bin"; "optimizer.bin"; "meta.txt" ] ->
                test $"truncated {file}" {
                    let dir = saved [ 5; 10 ]

                    withDir dir (fun () ->
                        let damaged = Path.Combine(folder dir 10, file)
                        let length = FileInfo(damaged).Length
                        truncate damaged
                        let m, p, b, err = resume dir 20
                        Expect.equal (m |> Option.map (fun m -> m.Epoch)) (Some 5) "resumes at epoch 5"
                        Expect.equal (p, b) (epochValues 5) "epoch 5's values"

                        Expect.stringContains
                            err
                            $"'{damaged}' is damaged: it has {length / 2L} bytes, the manifest records {length} (truncated or overwritten). Resuming from the previous intact one, '{folder dir 5}'."
                            "names the file")
                }
        ]

        test "a garbled meta.txt is detected by its checksum and falls back" {
            let dir = saved [ 5; 10 ]

            withDir dir (fun () ->
                let path = Path.Combine(folder dir 10, "meta.txt")
                let text = File.ReadAllText path
                File.WriteAllText(path, text.Replace("epoch 10", "epoch 1x"))
                let m, _, _, err = resume dir 20
                Expect.equal (m |> Option.map (fun m -> m.Epoch)) (Some 5) "resumes at epoch 5"

                Expect.stringContains
                    err
                    $"'{path}' is damaged: its SHA-256 differs from the one in the manifest"
                    "names the file")
        }

        test "a garbled meta.txt with a matching manifest is refused by the parser, naming the field" {
            let dir = saved [ 5; 10 ]

            withDir dir (fun () ->
                replaceMeta (folder dir 10) "epoch ten\nseed 3\n"
                let m, _, _, err = resume dir 20
                Expect.equal (m |> Option.map (fun m -> m.Epoch)) (Some 5) "resumes at epoch 5"

                Expect.stringContains
                    err
                    $"""'{Path.Combine(folder dir 10, "meta.txt")}' is garbled: the field 'epoch' is 'ten', not a whole number"""
                    "names the file and the field"

                replaceMeta
                    (folder dir 10)
                    "epoch 10\nseed 3\nbestValidation 1\nbestEpoch 0\ntrain 1 2\nvalidation 1 2\n"

                match Checkpoint.verify (folder dir 10) with
                | Error e ->
                    Expect.stringContains
                        e
                        "is garbled: epoch 10 but 2 training and 2 validation losses (one per epoch expected)"
                        "inconsistent history"
                | Ok _ -> failtest "an inconsistent meta.txt verified")
        }

        test "a checkpoint with more epochs than the run asks for is an error naming both" {
            let dir = saved [ 5; 10 ]

            withDir dir (fun () ->
                let e = Expect.throwsC (fun () -> resume dir 8 |> ignore) id

                Expect.stringContains
                    e.Message
                    $"the checkpoint in '{folder dir 10}' has completed 10 epochs but this run asks for Epochs = 8. Set Epochs ≥ 10 to continue it"
                    "names both and the fix")
        }

        test "a checkpoint made with another seed is refused before anything is loaded" {
            let dir = saved [ 5 ]

            withDir dir (fun () ->
                let s = state ()

                let e =
                    Expect.throwsC (fun () -> Checkpoint.resume dir s.Parameters s.Best s.Optimizer 4 20 |> ignore) id

                Expect.stringContains e.Message "was made with seed 3, this run has seed 4" "names both seeds"
                Expect.equal (values s.Parameters) [| 0.0; 0.0; 0.0 |] "nothing loaded")
        }

        test "when every checkpoint is damaged, resuming is an error naming the files, never a restart" {
            let dir = saved [ 5 ]

            withDir dir (fun () ->
                let damaged = Path.Combine(folder dir 5, "parameters.bin")
                truncate damaged
                let s = state ()

                let e =
                    Expect.throwsC (fun () -> Checkpoint.resume dir s.Parameters s.Best s.Optimizer 3 20 |> ignore) id

                Expect.stringContains e.Message $"No intact checkpoint in '{dir}': '{damaged}' is damaged" "names it"

                Expect.stringContains
                    e.Message
                    "move or delete those folders to start afresh, restore them from a backup, or use another checkpoint folder."
                    "says what to do"

                Expect.equal (values s.Parameters) [| 0.0; 0.0; 0.0 |] "nothing loaded")
        }

        test "an interrupted first save leaves no checkpoint: the run starts at epoch 0" {
            let dir = saved [ 5 ]

            withDir dir (fun () ->
                // As if killed before the staging folder was renamed into place.
                Directory.Move(folder dir 5, folder dir 5 + ".tmp")
                File.Delete(Path.Combine(dir, "latest"))
                let m, _, _, err = resume dir 20
                Expect.isNone m "no checkpoint"
                Expect.equal err "" "nothing to warn about")
        }

        test "loading a damaged folder explicitly names the file and changes nothing" {
            let dir = saved [ 5 ]

            withDir dir (fun () ->
                let damaged = Path.Combine(folder dir 5, "best.bin")
                truncate damaged
                let s = state ()

                let e =
                    Expect.throwsC
                        (fun () -> Checkpoint.load (folder dir 5) s.Parameters s.Best s.Optimizer |> ignore)
                        id

                Expect.stringContains
                    e.Message
                    $"Cannot load checkpoint '{folder dir 5}': '{damaged}' is damaged"
                    "names it"

                Expect.equal (values s.Parameters) [| 0.0; 0.0; 0.0 |] "nothing loaded")
        }

        testList "a checkpoint in another format is neither damaged nor deleted: resuming says which Hybrid reads it" [
            for version, writer in
                [
                    1, "an older version of Hybrid (before the optimizer state became Hybrid's own)"
                    3, "a newer version of Hybrid"
                ] ->
                test $"format {version}" {
                    let dir = saved [ 5; 10 ]

                    withDir dir (fun () ->
                        let manifest = Path.Combine(folder dir 10, "manifest.txt")
                        let lines = File.ReadAllLines manifest
                        lines[0] <- $"hybrid-checkpoint {version}"
                        File.WriteAllLines(manifest, lines)
                        let s = state ()

                        let e =
                            Expect.throwsC
                                (fun () -> Checkpoint.resume dir s.Parameters s.Best s.Optimizer 3 20 |> ignore)
                                id

                        Expect.equal
                            e.Message
                            $"Cannot resume: the checkpoint '{folder dir 10}' is in checkpoint format {version}, written by {writer}; this version reads format 2. Resume it with the Hybrid that wrote it, or train afresh in another checkpoint folder (it is kept as it is)."
                            "names the format, the writer and what to do"

                        Expect.equal (values s.Parameters) [| 0.0; 0.0; 0.0 |] "nothing loaded, not epoch 5 either"

                        let e =
                            Expect.throwsC
                                (fun () -> Checkpoint.load (folder dir 10) s.Parameters s.Best s.Optimizer |> ignore)
                                id

                        Expect.stringContains
                            e.Message
                            $"Cannot load: the checkpoint '{folder dir 10}' is in checkpoint format {version}"
                            "load says so too"

                        // A later save in the same folder keeps it (and its own newest older checkpoint).
                        setEpoch s 15
                        Checkpoint.save dir s.Parameters s.Best s.Optimizer (meta 15) |> ignore
                        Expect.isTrue (Directory.Exists(folder dir 10)) "the other format's folder is kept"
                        Expect.equal (File.ReadAllLines(manifest).[0]) $"hybrid-checkpoint {version}" "untouched")
                }
        ]

        test "a checkpoint of another model names the file and the mismatch" {
            let dir = saved [ 5 ]

            withDir dir (fun () ->
                let s = state ()
                let one = [| s.Parameters[0] |]

                let e =
                    Expect.throwsC
                        (fun () -> Checkpoint.load (folder dir 5) one [| s.Best[0] |] s.Optimizer |> ignore)
                        id

                Expect.stringContains
                    e.Message
                    $"""Checkpoint '{Path.Combine(folder dir 5, "parameters.bin")}' holds 2 tensors but this run has 1."""
                    "names file and counts")
        }
    ]
