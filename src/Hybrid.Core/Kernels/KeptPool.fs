namespace Hybrid.Kernels

open System.Collections.Concurrent
open System.Runtime.CompilerServices
open System.Threading

/// Spare `KeptStep<'T>`s of one keeping stepper, kept from one backward pass for the next (as `StatePool` keeps
/// states). A rollout with gradients keeps every step of its last checkpoint segment (without checkpointing: all of
/// them), and allocating their arrays afresh for each rollout promoted megabytes of them into the .NET heap's older
/// generations at every training step (the climate case's training rollout, 80 Heun steps: about 9 MB of kept arrays,
/// three full collections per rollout). A kept step goes back once its adjoint has run: its arrays are overwritten
/// before they are read again and its tensor slots are empty (`Stepper.keptRhsAdjoint` disposes and clears them). At
/// most `MaxSpareBytes` of spare kept steps are kept per stepper. Safe to use from several threads.
[<Sealed>]
type internal KeptPool<'T>(stepper: IKeepingStepper<'T>) =
    static let pools = ConditionalWeakTable<IKeepingStepper<'T>, KeptPool<'T>>()
    let spare = ConcurrentBag<KeptStep<'T>>()
    let mutable spareBytes = 0L

    static let bytesOf (kept: KeptStep<'T>) =
        let arrays (xs: 'T[][][]) =
            xs |> Array.sumBy (Array.sumBy (fun a -> int64 a.Length))

        (arrays kept.States + arrays kept.Inputs + arrays kept.Extra)
        * int64 (Unsafe.SizeOf<'T>())

    /// The most bytes of spare kept steps the pool of a stepper keeps.
    static member MaxSpareBytes = 256L * 1024L * 1024L

    /// The pool of `stepper`'s kept steps (made on first use; it lives as long as the stepper).
    static member Of(stepper: IKeepingStepper<'T>) : KeptPool<'T> =
        pools.GetValue(stepper, fun s -> KeptPool<'T>(s))

    /// `count` kept steps: spare ones, or new ones (`IKeepingStepper.NewKept`).
    member _.Rent(count: int) : KeptStep<'T>[] =
        Array.init count (fun _ ->
            match spare.TryTake() with
            | true, kept ->
                Interlocked.Add(&spareBytes, -(bytesOf kept)) |> ignore
                kept
            | _ -> stepper.NewKept())

    /// Gives back `kept` (null: nothing), every step of which has had its adjoint run (its tensor slots empty).
    member _.Return(kept: KeptStep<'T>[]) =
        if not (isNull kept) then
            for k in kept do
                let bytes = bytesOf k

                if Interlocked.Add(&spareBytes, bytes) <= KeptPool<'T>.MaxSpareBytes then
                    spare.Add k
                else
                    Interlocked.Add(&spareBytes, -bytes) |> ignore

    /// The bytes of spare kept steps held now.
    member _.SpareBytes = Interlocked.Read &spareBytes
