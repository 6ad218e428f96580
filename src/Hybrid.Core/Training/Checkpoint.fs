namespace Hybrid.Training

open System
open System.IO
open System.Globalization
open System.Security.Cryptography
open System.Text.RegularExpressions
open TorchSharp
open Hybrid

/// What a checkpoint holds besides tensors: the place in training and the history so far.
type CheckpointMeta = {
    /// Epochs completed.
    Epoch: int
    /// The run's seed (the random state of epoch e is derived from (seed, e), so epoch and seed restore it).
    Seed: int
    /// Best validation loss so far (infinity when none).
    BestValidation: float
    /// Epoch of the best validation loss (0 when none).
    BestEpoch: int
    /// Training loss per completed epoch.
    TrainLosses: float[]
    /// Validation loss per completed epoch (NaN when not validated).
    ValidationLosses: float[]
}

/// Saving and loading training state: parameter tensors (θ and φ, plus the best-so-far copy), optimizer
/// state (`Adam.Save`) and a small text file with the epoch, seed and loss history.
///
/// A save never puts a good state at risk. It writes every file of `epoch-NNNNNN` in a staging folder, each to
/// a temporary name that is flushed to disk (fsync) and then renamed; it writes `manifest.txt` last, with the
/// length and SHA-256 of every file; it renames the staging folder into place, verifies it against its
/// manifest, and only then points `latest` at it and deletes older folders, always keeping the newest two
/// verified checkpoints. Loading verifies the same way, so damage (a truncated or garbled file, a dangling
/// `latest`) is detected, not guessed: the newest intact checkpoint is used, with a warning on standard error
/// naming the damaged file. Every error that cannot fall back names the file and says what to do.
[<RequireQualifiedAccess>]
module Checkpoint =

    let private inv = CultureInfo.InvariantCulture

    /// The checkpoint format this version of Hybrid writes and reads (2: optimizer.bin holds `Adam.Save`'s
    /// state; 1, Hybrid before 0.1.0: TorchSharp's optimizer state).
    let formatVersion = 2

    /// The first line of a manifest.
    let private manifestHeader = $"hybrid-checkpoint {formatVersion}"

    let private headerPattern =
        Regex(@"^hybrid-checkpoint (\d+)$", RegexOptions.CultureInvariant)

    let private manifestName = "manifest.txt"

    /// The format of a checkpoint folder when its manifest names one other than `formatVersion` (such a folder
    /// is not damaged: it is never fallen back from nor deleted, and loading it says which Hybrid reads it).
    let private otherFormat (folder: string) : int option =
        let manifest = Path.Combine(folder, manifestName)

        if File.Exists manifest then
            use reader = new StreamReader(manifest)

            let m =
                headerPattern.Match(reader.ReadLine() |> Option.ofObj |> Option.defaultValue "")

            match Int32.TryParse(m.Groups[1].Value, NumberStyles.None, inv) with
            | true, n when m.Success && n <> formatVersion -> Some n
            | _ -> None
        else
            None

    let private otherFormatMessage (folder: string) (n: int) =
        let writer =
            if n < formatVersion then
                "an older version of Hybrid (before the optimizer state became Hybrid's own)"
            else
                "a newer version of Hybrid"

        $"the checkpoint '{folder}' is in checkpoint format {n}, written by {writer}; this version reads format {formatVersion}. Resume it with the Hybrid that wrote it, or train afresh in another checkpoint folder (it is kept as it is)"

    /// Checkpoint folders: `epoch-NNNNNN`, and `epoch-NNNNNN.replaced` (an older folder of the same epoch moved
    /// aside while its successor is put in place).
    let private folderPattern =
        Regex(@"^epoch-(\d+)(\.replaced)?$", RegexOptions.CultureInvariant)

    let private floats (a: float[]) =
        String.Join(" ", a |> Array.map (fun v -> v.ToString("R", inv)))

    /// Writes `path` through a temporary name: written, flushed to disk, then renamed over `path`.
    let private writeDurably (path: string) (write: Stream -> unit) =
        let tmp = path + ".tmp"

        do
            use f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None)
            write f
            f.Flush true

        File.Move(tmp, path, true)

    let private writeTensors (path: string) (tensors: torch.Tensor[]) =
        writeDurably path (fun f ->
            use w = new BinaryWriter(f, Text.Encoding.UTF8, true)
            w.Write tensors.Length

            for t in tensors do
                use c = t.detach().cpu ()
                c.Save w

            w.Flush())

    let private sha256 (path: string) =
        use f = File.OpenRead path
        Convert.ToHexString(SHA256.HashData f).ToLowerInvariant()

    let private metaText (meta: CheckpointMeta) =
        String.Join(
            "\n",
            [|
                $"epoch {meta.Epoch}"
                $"seed {meta.Seed}"
                $"""bestValidation {meta.BestValidation.ToString("R", inv)}"""
                $"bestEpoch {meta.BestEpoch}"
                $"train {floats meta.TrainLosses}"
                $"validation {floats meta.ValidationLosses}"
                ""
            |]
        )

    /// Raised inside `parseMeta` only; becomes its Error.
    type private GarbledMeta(message: string) =
        inherit Exception(message)

    /// Parses meta.txt; Error names the file and what is wrong.
    let private parseMeta (path: string) : Result<CheckpointMeta, string> =
        let garbled (detail: string) : 'T =
            raise (GarbledMeta $"'{path}' is garbled: {detail}")

        try
            let fields =
                File.ReadAllLines path
                |> Array.filter (fun l -> l <> "")
                |> Array.map (fun l ->
                    let i = l.IndexOf ' '

                    if i < 0 then
                        l, ""
                    else
                        l.Substring(0, i), l.Substring(i + 1))

            let table = Collections.Generic.Dictionary<string, string>()

            for k, v in fields do
                if not (table.TryAdd(k, v)) then
                    garbled $"the field '{k}' appears twice"

            let text (k: string) =
                match table.TryGetValue k with
                | true, v -> v
                | _ -> garbled $"it lacks the field '{k}'"

            let whole (k: string) =
                match Int32.TryParse(text k, NumberStyles.Integer, inv) with
                | true, v -> v
                | _ -> garbled $"the field '{k}' is '{text k}', not a whole number"

            let real (k: string) (s: string) =
                match Double.TryParse(s, NumberStyles.Float, inv) with
                | true, v -> v
                | _ -> garbled $"the field '{k}' holds '{s}', not a number"

            let reals (k: string) =
                let s = text k

                if String.IsNullOrWhiteSpace s then
                    [||]
                else
                    s.Split(' ') |> Array.map (real k)

            let epoch = whole "epoch"
            let seed = whole "seed"
            let bestValidation = real "bestValidation" (text "bestValidation")
            let bestEpoch = whole "bestEpoch"
            let train = reals "train"
            let validation = reals "validation"

            if epoch < 0 then
                garbled $"the epoch is {epoch}"

            if train.Length <> epoch || validation.Length <> epoch then
                garbled
                    $"epoch {epoch} but {train.Length} training and {validation.Length} validation losses (one per epoch expected)"

            if bestEpoch < 0 || bestEpoch > epoch then
                garbled $"the best epoch {bestEpoch} is outside 0..{epoch}"

            Ok {
                Epoch = epoch
                Seed = seed
                BestValidation = bestValidation
                BestEpoch = bestEpoch
                TrainLosses = train
                ValidationLosses = validation
            }
        with :? GarbledMeta as e ->
            Error e.Message

    /// Checks a checkpoint folder against its manifest (every file present, with the recorded length and
    /// SHA-256) and parses its meta.txt. Ok: the meta; Error: which file is damaged and how.
    let verify (folder: string) : Result<CheckpointMeta, string> =
        let manifest = Path.Combine(folder, manifestName)

        if not (Directory.Exists folder) then
            Error $"the folder '{folder}' does not exist"
        elif not (File.Exists manifest) then
            Error
                $"'{manifest}' is missing: the save was interrupted, or the folder was written by an older version of Hybrid"
        elif (otherFormat folder).IsSome then
            Error(otherFormatMessage folder (otherFormat folder).Value)
        else
            let lines = File.ReadAllLines manifest |> Array.filter (fun l -> l <> "")

            if lines.Length = 0 || lines[0] <> manifestHeader then
                Error $"'{manifest}' is garbled: its first line is not '{manifestHeader}'"
            else
                let entries =
                    lines[1..]
                    |> Array.map (fun l ->
                        match l.Split(' ') with
                        | [| name; length; hash |] ->
                            match Int64.TryParse(length, NumberStyles.Integer, inv) with
                            | true, n when not (name.Contains '/' || name.Contains '\\' || name.StartsWith '.') ->
                                Some(name, n, hash)
                            | _ -> None
                        | _ -> None)

                if entries |> Array.exists Option.isNone then
                    Error $"'{manifest}' is garbled: a line is not 'name length sha256'"
                else
                    let entries = entries |> Array.map Option.get
                    let names = entries |> Array.map (fun (n, _, _) -> n)

                    let problem =
                        [ "parameters.bin"; "best.bin"; "meta.txt" ]
                        |> List.tryFind (fun n -> not (Array.contains n names))
                        |> Option.map (fun n -> $"'{manifest}' does not list {n}")
                        |> Option.orElse (
                            entries
                            |> Array.tryPick (fun (name, length, hash) ->
                                let path = Path.Combine(folder, name)

                                if not (File.Exists path) then
                                    Some $"'{path}' is missing"
                                else
                                    let actual = FileInfo(path).Length

                                    if actual <> length then
                                        Some
                                            $"'{path}' is damaged: it has {actual} bytes, the manifest records {length} (truncated or overwritten)"
                                    elif sha256 path <> hash then
                                        Some
                                            $"'{path}' is damaged: its SHA-256 differs from the one in the manifest (its bytes changed after the save)"
                                    else
                                        None)
                        )

                    match problem with
                    | Some p -> Error p
                    | None ->
                        let metaPath = Path.Combine(folder, "meta.txt")
                        let meta = parseMeta metaPath

                        let m =
                            folderPattern.Match(Path.GetFileName(Path.TrimEndingDirectorySeparator folder))

                        match meta with
                        | Ok meta when m.Success && Int64.Parse(m.Groups[1].Value, inv) <> int64 meta.Epoch ->
                            Error
                                $"'{metaPath}' says epoch {meta.Epoch} but the folder is named for epoch {m.Groups[1].Value}"
                        | other -> other

    /// Checkpoint folders under `dir`, newest first: (epoch, folder).
    let private candidates (dir: string) =
        if not (Directory.Exists dir) then
            [||]
        else
            Directory.GetDirectories dir
            |> Array.choose (fun d ->
                let m = folderPattern.Match(Path.GetFileName d)

                match Int32.TryParse(m.Groups[1].Value, NumberStyles.None, inv) with
                | true, epoch when m.Success -> Some(epoch, m.Groups[2].Success, d)
                | _ -> None)
            // Newest epoch first; of two folders of one epoch, the one in place before the one moved aside.
            |> Array.sortBy (fun (epoch, replaced, _) -> -epoch, replaced)
            |> Array.map (fun (epoch, _, d) -> epoch, d)

    /// The newest verified checkpoint under `dir`: Some (folder, meta), or None when `dir` holds no checkpoint
    /// folder. Damaged newer folders and a dangling `latest` give warnings on standard error; a `dir` whose
    /// checkpoint folders are all damaged raises `HybridException` listing them.
    let private newestIntact (dir: string) : (string * CheckpointMeta) option =
        let pointer = Path.Combine(dir, "latest")

        let named =
            if File.Exists pointer then
                Some(File.ReadAllText(pointer).Trim())
            else
                None

        let all = candidates dir
        let problems = ResizeArray<string>()

        let chosen =
            all
            |> Array.tryPick (fun (_, folder) ->
                otherFormat folder
                |> Option.iter (fun n -> raise (HybridException $"Cannot resume: {otherFormatMessage folder n}."))

                match verify folder with
                | Ok meta -> Some(folder, meta)
                | Error p ->
                    problems.Add p
                    None)

        match named with
        | Some name when not (folderPattern.IsMatch name) ->
            eprintfn
                "warning: checkpoint pointer '%s' holds '%s', which is not a checkpoint folder name; it is ignored."
                pointer
                name
        | Some name when not (Directory.Exists(Path.Combine(dir, name))) ->
            let instead =
                match chosen with
                | Some(folder, _) -> $"using '{folder}', the newest intact checkpoint"
                | None -> "no intact checkpoint remains"

            eprintfn "warning: checkpoint pointer '%s' names '%s', which does not exist; %s." pointer name instead
        | _ -> ()

        match chosen with
        | Some(folder, meta) ->
            for p in problems do
                eprintfn "warning: checkpoint skipped: %s. Resuming from the previous intact one, '%s'." p folder

            Some(folder, meta)
        | None when all.Length = 0 -> None
        | None ->
            let list = String.Join("; ", problems)

            raise (
                HybridException(
                    $"No intact checkpoint in '{dir}': {list}. Training does not restart from epoch 0 over damaged checkpoints: move or delete those folders to start afresh, restore them from a backup, or use another checkpoint folder."
                )
            )

    /// The newest intact (verified) checkpoint folder under `dir`, if any. Falls back past damaged folders
    /// and a dangling `latest` pointer with a warning on standard error; raises `HybridException` when
    /// checkpoint folders exist but none is intact.
    let latest (dir: string) : string option = newestIntact dir |> Option.map fst

    let private wrapLoad (path: string) (f: unit -> 'T) : 'T =
        try
            f ()
        with
        | :? HybridException -> reraise ()
        | e ->
            raise (
                HybridException(
                    $"Checkpoint file '{path}' could not be loaded ({e.GetType().Name}: {e.Message}). It passed its checksum, so it was written for another model or optimizer: resume with the same model, parameter groups and optimizer, or use another checkpoint folder.",
                    e
                )
            )

    let private readTensors (path: string) (into: torch.Tensor[]) =
        wrapLoad path (fun () ->
            use f = File.OpenRead path
            use r = new BinaryReader(f)
            let n = r.ReadInt32()

            if n <> into.Length then
                raise (
                    HybridException(
                        $"Checkpoint '{path}' holds {n} tensors but this run has {into.Length}. Resume with the same model and parameter groups."
                    )
                )

            use _ = torch.no_grad ()

            // Read everything before changing anything, so a bad file leaves the model as it was.
            let loaded =
                into
                |> Array.map (fun t ->
                    let tmp = torch.zeros_like(t).cpu ()
                    tmp.Load r

                    if tmp.shape <> t.shape then
                        raise (
                            HybridException(
                                $"Checkpoint '{path}': a tensor has shape {ShapeText.ofShape tmp.shape} but the model's has {ShapeText.ofShape t.shape}. Resume with the same model."
                            )
                        )

                    tmp)

            Array.iter2 (fun (t: torch.Tensor) (tmp: torch.Tensor) -> t.copy_ tmp |> ignore) into loaded
            loaded |> Array.iter (fun t -> t.Dispose()))

    let private loadVerified (folder: string) (parameters: torch.Tensor[]) (best: torch.Tensor[]) (optimizer: Adam) =
        readTensors (Path.Combine(folder, "parameters.bin")) parameters
        readTensors (Path.Combine(folder, "best.bin")) best
        let optimizerPath = Path.Combine(folder, "optimizer.bin")

        if File.Exists optimizerPath then
            wrapLoad optimizerPath (fun () ->
                use f = File.OpenRead optimizerPath
                use r = new BinaryReader(f)
                optimizer.Load r)
        else
            raise (
                HybridException(
                    $"Checkpoint '{folder}' has no optimizer.bin but this run's optimizer needs one. Resume with the optimizer the checkpoint was made with, or use another checkpoint folder."
                )
            )

    /// Saves parameters, the best-so-far copies, optimizer state and meta into `dir/epoch-NNNNNN` (each file
    /// written to a temporary name, flushed to disk and renamed; a manifest with lengths and SHA-256 last),
    /// verifies the folder, points `dir/latest` at it, and then deletes older checkpoint folders, keeping the
    /// newest two verified ones. Returns the folder.
    let save
        (dir: string)
        (parameters: torch.Tensor[])
        (best: torch.Tensor[])
        (optimizer: Adam)
        (meta: CheckpointMeta)
        : string =
        Directory.CreateDirectory dir |> ignore
        let name = sprintf "epoch-%06d" meta.Epoch
        let target = Path.Combine(dir, name)
        let staging = target + ".tmp"

        if Directory.Exists staging then
            Directory.Delete(staging, true)

        Directory.CreateDirectory staging |> ignore
        let written = ResizeArray<string>()
        writeTensors (Path.Combine(staging, "parameters.bin")) parameters
        written.Add "parameters.bin"
        writeTensors (Path.Combine(staging, "best.bin")) best
        written.Add "best.bin"

        writeDurably (Path.Combine(staging, "optimizer.bin")) (fun f ->
            use w = new BinaryWriter(f, Text.Encoding.UTF8, true)
            optimizer.Save w
            w.Flush())

        written.Add "optimizer.bin"

        writeDurably (Path.Combine(staging, "meta.txt")) (fun f ->
            let bytes = Text.Encoding.UTF8.GetBytes(metaText meta)
            f.Write(bytes, 0, bytes.Length))

        written.Add "meta.txt"

        let manifest =
            String.Join(
                "\n",
                Array.append [| manifestHeader |] [|
                    for n in written do
                        let path = Path.Combine(staging, n)
                        yield $"{n} {FileInfo(path).Length} {sha256 path}"
                |]
            )
            + "\n"

        writeDurably (Path.Combine(staging, manifestName)) (fun f ->
            let bytes = Text.Encoding.UTF8.GetBytes manifest
            f.Write(bytes, 0, bytes.Length))

        // A folder of the same epoch (a damaged one, or one from an earlier run) is moved aside, not deleted,
        // until its successor is verified.
        let aside = target + ".replaced"

        if Directory.Exists target then
            if Directory.Exists aside then
                Directory.Delete(aside, true)

            Directory.Move(target, aside)

        Directory.Move(staging, target)

        match verify target with
        | Error p ->
            raise (
                HybridException(
                    $"The checkpoint just written does not verify: {p}. The disk may be full or failing; the previous checkpoints in '{dir}' are kept. Free space or use another checkpoint folder."
                )
            )
        | Ok _ -> ()

        writeDurably (Path.Combine(dir, "latest")) (fun f ->
            let bytes = Text.Encoding.UTF8.GetBytes name
            f.Write(bytes, 0, bytes.Length))

        // Keep the new checkpoint and the newest older verified one; everything else goes (damaged folders
        // included: they can never be loaded).
        let older =
            candidates dir
            |> Array.filter (fun (_, folder) -> folder <> target)
            |> Array.tryFind (fun (epoch, folder) -> epoch <= meta.Epoch && Result.isOk (verify folder))
            |> Option.map snd

        for _, folder in candidates dir do
            if folder <> target && Some folder <> older && (otherFormat folder).IsNone then
                try
                    Directory.Delete(folder, true)
                with _ ->
                    ()

        for staleStaging in Directory.GetDirectories(dir, "epoch-*.tmp") do
            try
                Directory.Delete(staleStaging, true)
            with _ ->
                ()

        target

    /// Loads a checkpoint folder into the given parameters, best copies and optimizer; returns the meta.
    /// The folder is verified first: a damaged file raises `HybridException` naming it (nothing is changed).
    let load (folder: string) (parameters: torch.Tensor[]) (best: torch.Tensor[]) (optimizer: Adam) : CheckpointMeta =
        otherFormat folder
        |> Option.iter (fun n -> raise (HybridException $"Cannot load: {otherFormatMessage folder n}."))

        match verify folder with
        | Error p ->
            raise (
                HybridException(
                    $"Cannot load checkpoint '{folder}': {p}. Load an older epoch-NNNNNN folder from the same directory (Checkpoint.latest picks the newest intact one), or retrain."
                )
            )
        | Ok meta ->
            loadVerified folder parameters best optimizer
            meta

    /// Resumes a run: finds the newest intact checkpoint under `dir` (as `latest`), checks its meta against
    /// the run's `seed` and `epochs` before touching anything, and loads it. None when `dir` holds no
    /// checkpoint. Raises `HybridException` when the checkpoint was made with another seed or has more epochs
    /// than `epochs`, naming both values.
    let resume
        (dir: string)
        (parameters: torch.Tensor[])
        (best: torch.Tensor[])
        (optimizer: Adam)
        (seed: int)
        (epochs: int)
        : CheckpointMeta option =
        match newestIntact dir with
        | None -> None
        | Some(folder, meta) ->
            if meta.Seed <> seed then
                raise (
                    HybridException(
                        $"Trainer: the checkpoint in '{folder}' was made with seed {meta.Seed}, this run has seed {seed}. Use the same seed or another CheckpointDir."
                    )
                )

            if meta.Epoch > epochs then
                raise (
                    HybridException(
                        $"Trainer: the checkpoint in '{folder}' has completed {meta.Epoch} epochs but this run asks for Epochs = {epochs}. Set Epochs ≥ {meta.Epoch} to continue it, or use another CheckpointDir (or Resume = false) to train afresh."
                    )
                )

            loadVerified folder parameters best optimizer
            Some meta
