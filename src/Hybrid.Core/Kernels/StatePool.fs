namespace Hybrid.Kernels

open System
open System.Collections.Concurrent
open System.Collections.Generic
open System.Runtime.CompilerServices
open System.Threading

/// Spare states of one stepper ('T[][], one padded array per field, as `IStepper.NewState` makes them), kept from one
/// rollout for the next. A fresh array's pages are faulted in by its first writes, and the .NET heap gives a large
/// array's pages back to the system once it is collected, so a rollout that allocated its working states afresh paid
/// for the faults every time: on a 2-core virtual machine, writing 7 fresh states of a 256² two-field grid took
/// 9.4 ms, against 0.27 ms to write the same states again — a third of the forward pass of 20 RK4 steps. Rollouts
/// rent their working states here and return them when they are done with them; at most `maxSpareBytes` of spare
/// states are kept (`MaxSpareBytes` in a stepper's pool, `Of`), the rest are left to the collector. Safe to use from
/// several threads.
[<Sealed>]
type internal StatePool<'T>(newState: unit -> 'T[][], maxSpareBytes: int64) =
    static let pools = ConditionalWeakTable<IStepper<'T>, StatePool<'T>>()
    let spare = ConcurrentBag<'T[][]>()
    let mutable spareBytes = 0L

    static let bytesOf (state: 'T[][]) =
        state |> Array.sumBy (fun a -> int64 a.Length * int64 (Unsafe.SizeOf<'T>()))

    /// The most bytes of spare states the pool of a stepper (`Of`) keeps.
    static member MaxSpareBytes = 256L * 1024L * 1024L

    /// The pool of `stepper`'s states (made on first use; it lives as long as the stepper).
    static member Of(stepper: IStepper<'T>) : StatePool<'T> =
        pools.GetValue(stepper, fun s -> StatePool<'T>((fun () -> s.NewState()), StatePool<'T>.MaxSpareBytes))

    /// A state: a spare one (every entry zero when `zeroed`, else whatever it held) or a new one (all zero).
    member _.Rent(zeroed: bool) : 'T[][] =
        match spare.TryTake() with
        | true, state ->
            Interlocked.Add(&spareBytes, -(bytesOf state)) |> ignore

            if zeroed then
                for a in state do
                    Array.Clear a

            state
        | _ -> newState ()

    /// Gives `state` back (null: nothing); the caller no longer reads or writes it.
    member _.Return(state: 'T[][]) =
        if not (isNull state) then
            let bytes = bytesOf state

            if Interlocked.Add(&spareBytes, bytes) <= maxSpareBytes then
                spare.Add state
            else
                Interlocked.Add(&spareBytes, -bytes) |> ignore

    /// Gives back the checkpoints of a rollout's tape (states by step index) past step 0 and removes them from it: they
    /// are states of the pool, step 0's is the tape's own (from which a later backward pass recomputes the others).
    member pool.ReturnCheckpoints(checkpoints: Dictionary<int, 'T[][]>) =
        for n in Array.ofSeq checkpoints.Keys do
            if n > 0 then
                pool.Return checkpoints[n]
                checkpoints.Remove n |> ignore

    /// The bytes of spare states kept now.
    member _.SpareBytes = Interlocked.Read &spareBytes
