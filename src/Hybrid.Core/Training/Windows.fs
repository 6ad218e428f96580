namespace Hybrid.Training

open System
open TorchSharp
open Hybrid

/// Mini-batches of trajectory windows for multiple shooting.
[<RequireQualifiedAccess>]
module Windows =

    /// Every (trajectory, start) pair whose window of `horizon` save intervals fits in `snapshots`.
    let starts (snapshots: int) (trajectories: int) (horizon: int) : (int * int)[] =
        if horizon < 1 then
            raise (HybridException($"Windows: the horizon must be at least 1 save interval, got {horizon}."))

        if snapshots <= horizon then
            raise (
                HybridException(
                    $"Windows: a horizon of {horizon} intervals needs more than {horizon} snapshots, but the data has {snapshots}. Lower the horizon or give longer trajectories."
                )
            )

        [|
            for b in 0 .. trajectories - 1 do
                for s in 0 .. snapshots - 1 - horizon -> (b, s)
        |]

    /// `count` distinct pairs drawn at random (all of them, shuffled, when count ≥ available).
    let sample (random: Random) (count: int) (pairs: (int * int)[]) : (int * int)[] =
        let a = Array.copy pairs

        for i in a.Length - 1 .. -1 .. 1 do
            let j = random.Next(i + 1)
            let t = a[i]
            a[i] <- a[j]
            a[j] <- t

        if count >= a.Length then a else a[0 .. count - 1]

    /// The windows of `data` [S; B; spatial…]: shape [horizon + 1; W; spatial…] (index 0 = initial states).
    let take (data: torch.Tensor) (pairs: (int * int)[]) (horizon: int) : torch.Tensor =
        if pairs.Length = 0 then
            raise (HybridException("Windows.take: no windows were given (empty training set?)."))

        let w = pairs.Length
        let ti = Array.init ((horizon + 1) * w) (fun k -> int64 (snd pairs[k % w] + k / w))
        let bi = Array.init ((horizon + 1) * w) (fun k -> int64 (fst pairs[k % w]))

        let tt =
            torch.tensor(ti, device = data.device).reshape ([| int64 (horizon + 1); int64 w |])

        let bt =
            torch.tensor(bi, device = data.device).reshape ([| int64 (horizon + 1); int64 w |])

        data.index ([| torch.TensorIndex.Tensor tt; torch.TensorIndex.Tensor bt |])
