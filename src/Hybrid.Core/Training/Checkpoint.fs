namespace Hybrid.Training

open System
open System.IO
open System.Globalization
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
/// state (TorchSharp's own format) and a small text file with the epoch, seed and loss history. Each save
/// goes to a fresh folder `epoch-NNNNNN` and then the text file `latest` is replaced atomically, so a
/// run killed mid-save still finds the previous checkpoint.
[<RequireQualifiedAccess>]
module Checkpoint =

    let private inv = CultureInfo.InvariantCulture

    let private floats (a: float[]) =
        String.Join(" ", a |> Array.map (fun v -> v.ToString("R", inv)))

    let private parseFloats (s: string) =
        if String.IsNullOrWhiteSpace s then
            [||]
        else
            s.Split(' ') |> Array.map (fun v -> Double.Parse(v, inv))

    let private writeTensors (path: string) (tensors: torch.Tensor[]) =
        use f = File.Create path
        use w = new BinaryWriter(f)
        w.Write tensors.Length

        for t in tensors do
            use c = t.detach().cpu ()
            c.Save w

    let private readTensors (path: string) (into: torch.Tensor[]) =
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

        for t in into do
            use tmp = torch.zeros_like(t).cpu ()
            tmp.Load r

            if tmp.shape <> t.shape then
                raise (
                    HybridException(
                        $"Checkpoint '{path}': a tensor has shape {tmp.shape} but the model's has {t.shape}."
                    )
                )

            t.copy_ tmp |> ignore

    /// The newest complete checkpoint folder under `dir`, if any.
    let latest (dir: string) : string option =
        let pointer = Path.Combine(dir, "latest")

        if File.Exists pointer then
            let d = Path.Combine(dir, File.ReadAllText(pointer).Trim())
            if Directory.Exists d then Some d else None
        else
            None

    /// Saves parameters, the best-so-far copies, optimizer state and meta into `dir/epoch-NNNNNN`, then
    /// points `dir/latest` at it and deletes older checkpoint folders.
    let save
        (dir: string)
        (parameters: torch.Tensor[])
        (best: torch.Tensor[])
        (optimizer: torch.optim.Optimizer)
        (meta: CheckpointMeta)
        : string =
        Directory.CreateDirectory dir |> ignore
        let name = sprintf "epoch-%06d" meta.Epoch
        let target = Path.Combine(dir, name)
        let staging = target + ".tmp"

        if Directory.Exists staging then
            Directory.Delete(staging, true)

        Directory.CreateDirectory staging |> ignore
        writeTensors (Path.Combine(staging, "parameters.bin")) parameters
        writeTensors (Path.Combine(staging, "best.bin")) best

        (match optimizer with
         | :? Modules.OptimizerHelper as o -> o.save_state_dict (Path.Combine(staging, "optimizer.bin"))
         | _ -> ())

        let text = [|
            $"epoch {meta.Epoch}"
            $"seed {meta.Seed}"
            $"""bestValidation {meta.BestValidation.ToString("R", inv)}"""
            $"bestEpoch {meta.BestEpoch}"
            $"train {floats meta.TrainLosses}"
            $"validation {floats meta.ValidationLosses}"
        |]

        File.WriteAllLines(Path.Combine(staging, "meta.txt"), text)

        if Directory.Exists target then
            Directory.Delete(target, true)

        Directory.Move(staging, target)
        let pointerTmp = Path.Combine(dir, "latest.tmp")
        File.WriteAllText(pointerTmp, name)
        File.Move(pointerTmp, Path.Combine(dir, "latest"), true)

        for old in Directory.GetDirectories(dir, "epoch-*") do
            if Path.GetFileName old <> name then
                try
                    Directory.Delete(old, true)
                with _ ->
                    ()

        target

    /// Loads a checkpoint folder into the given parameters, best copies and optimizer; returns the meta.
    let load
        (folder: string)
        (parameters: torch.Tensor[])
        (best: torch.Tensor[])
        (optimizer: torch.optim.Optimizer)
        : CheckpointMeta =
        let metaPath = Path.Combine(folder, "meta.txt")

        if not (File.Exists metaPath) then
            raise (
                HybridException($"Checkpoint folder '{folder}' has no meta.txt; it is incomplete or not a checkpoint.")
            )

        readTensors (Path.Combine(folder, "parameters.bin")) parameters
        readTensors (Path.Combine(folder, "best.bin")) best

        (match optimizer with
         | :? Modules.OptimizerHelper as o -> o.load_state_dict (Path.Combine(folder, "optimizer.bin"))
         | _ -> ())

        let fields =
            File.ReadAllLines metaPath
            |> Array.map (fun l ->
                let i = l.IndexOf ' '

                if i < 0 then
                    l, ""
                else
                    l.Substring(0, i), l.Substring(i + 1))
            |> dict

        let get k =
            match fields.TryGetValue k with
            | true, v -> v
            | _ -> raise (HybridException($"Checkpoint '{metaPath}' lacks the field '{k}'."))

        {
            Epoch = int (get "epoch")
            Seed = int (get "seed")
            BestValidation = Double.Parse(get "bestValidation", inv)
            BestEpoch = int (get "bestEpoch")
            TrainLosses = parseFloats (get "train")
            ValidationLosses = parseFloats (get "validation")
        }
