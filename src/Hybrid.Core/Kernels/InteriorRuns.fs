namespace Hybrid.Kernels

open System
open System.Numerics
open System.Runtime.CompilerServices

/// The interior of a padded field as runs of consecutive entries (one per row of a 2-D grid, one for a 1-D grid):
/// the stepper's per-step check that a state is finite and below the blow-up limit scans them with `Vector<float>`
/// loads, and states move between the unpadded layout and the padded one by block copies of them, instead of cell
/// by cell through the index array.
[<RequireQualifiedAccess>]
module internal InteriorRuns =

    /// The runs of `map.Interior` (trajectory 0) as (first padded index, length), in interior order.
    let runs (map: GhostMap) : struct (int * int)[] =
        let interior = map.Interior
        let result = ResizeArray()
        let mutable start = 0

        for c in 1 .. interior.Length do
            if c = interior.Length || interior[c] <> interior[c - 1] + 1 then
                result.Add(struct (interior[start], c - start))
                start <- c

        result.ToArray()

    /// Whether every interior value of `values` ([batch·padded], runs per trajectory; float or float32) is finite
    /// with |v| ≤ `limit` (a NaN fails every comparison, and ±∞ fails |v| ≤ the largest finite value of the element
    /// type, so both fail even for an infinite limit).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let within<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (limit: float)
        (runs: struct (int * int)[])
        (padded: int)
        (batch: int)
        (values: 'T[])
        : bool =
        let width = Vector<'T>.Count
        let limit = 'T.Min('T.CreateSaturating limit, 'T.BitDecrement 'T.PositiveInfinity)
        let bound = Vector<'T>(limit)
        let mutable ok = Vector<int64>.AllBitsSet
        let mutable scalarOk = true

        for b in 0 .. batch - 1 do
            for struct (first, length) in runs do
                let start = b * padded + first
                let stop = start + length
                let mutable i = start

                while i + width <= stop do
                    ok <-
                        ok
                        &&& Vector.AsVectorInt64(Vector.LessThanOrEqual(Vector.Abs(Vector<'T>(values, i)), bound))

                    i <- i + width

                while i < stop do
                    scalarOk <- scalarOk && 'T.op_LessThanOrEqual ('T.Abs values[i], limit)
                    i <- i + 1

        scalarOk && Vector.EqualsAll(ok, Vector<int64>.AllBitsSet)

    /// Copies the unpadded values of one field and trajectory, starting at `values[from]` (interior order; an array's
    /// or a tensor's storage), into the interior of a padded array whose trajectory starts at `padded[at]`.
    let copyIn (runs: struct (int * int)[]) (values: ReadOnlySpan<'T>) (from: int) (padded: 'T[]) (at: int) =
        let mutable source = from

        for struct (first, length) in runs do
            values.Slice(source, length).CopyTo(Span<'T>(padded, at + first, length))
            source <- source + length

    /// The reverse of `copyIn`: the interior of one trajectory of a padded array (starting at `padded[at]`) into
    /// unpadded values from `values[into]`.
    let copyOut (runs: struct (int * int)[]) (padded: 'T[]) (at: int) (values: Span<'T>) (into: int) =
        let mutable target = into

        for struct (first, length) in runs do
            ReadOnlySpan<'T>(padded, at + first, length).CopyTo(values.Slice(target, length))
            target <- target + length
