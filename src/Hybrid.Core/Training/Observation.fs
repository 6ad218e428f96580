namespace Hybrid.Training

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// An observation operator: maps a simulated trajectory [S; B; spatial…] (at the save times) to the
/// observations [T; B; P] at `Times` and sensor positions, by linear interpolation in time and
/// (bi)linear interpolation in space between cell centres (values beyond the outer centres are clamped).
type ObservationOperator = {
    /// Observation times (length T).
    Times: float[]
    /// Sensor positions (x, y); y is ignored in 1-D (length P).
    Sensors: (float * float)[]
    /// Time interpolation matrix [T; S].
    TimeWeights: torch.Tensor
    /// Space interpolation matrix [cells; P].
    SpaceWeights: torch.Tensor
}

/// Observation operators, missing-value masks and observation noise.
[<RequireQualifiedAccess>]
module Observation =

    /// Linear interpolation weights of `points` against sorted `nodes` (clamped outside): one row per point,
    /// as (index, weight) pairs.
    let internal weights1d (what: string) (nodes: float[]) (points: float[]) : (int * float)[][] =
        let n = nodes.Length

        points
        |> Array.mapi (fun k p ->
            if System.Double.IsNaN p then
                raise (HybridException($"Observation: {what} {k} is NaN. Give finite positions and times."))

            if n = 1 || p <= nodes[0] then
                [| 0, 1.0 |]
            elif p >= nodes[n - 1] then
                [| n - 1, 1.0 |]
            else
                let i = (nodes |> Array.findIndexBack (fun x -> x <= p))
                let w = (p - nodes[i]) / (nodes[i + 1] - nodes[i])
                [| i, 1.0 - w; i + 1, w |])

    let private checkRange (what: string) (lo: float) (hi: float) (values: float[]) =
        values
        |> Array.iteri (fun k v ->
            if v < lo - 1e-9 * max 1.0 (abs lo) || v > hi + 1e-9 * max 1.0 (abs hi) then
                raise (
                    HybridException(
                        $"Observation: {what} {k} = {v} lies outside [{lo}, {hi}]. Drop it or extend the domain/rollout."
                    )
                ))

    /// The operator for a grid, simulation save times, sensor positions (x, y) and observation times.
    /// Raises when a sensor lies outside the domain or a time outside the save times.
    let create
        (grid: Grid)
        (saveTimes: float[])
        (sensors: (float * float)[])
        (times: float[])
        (dtype: torch.ScalarType)
        : ObservationOperator =
        Engine.init ()

        if sensors.Length = 0 then
            raise (HybridException("Observation: no sensors were given. Give at least one position."))

        if times.Length = 0 then
            raise (HybridException("Observation: no observation times were given."))

        checkRange "time" saveTimes[0] saveTimes[saveTimes.Length - 1] times
        let dev = Engine.torchDevice ()
        let tw = Array2D.zeroCreate times.Length saveTimes.Length

        weights1d "time" saveTimes times
        |> Array.iteri (fun k row -> row |> Array.iter (fun (i, w) -> tw[k, i] <- tw[k, i] + w))

        let cells = max 1 grid.CellCount
        let sw = Array2D.zeroCreate cells sensors.Length

        match grid with
        | Point -> sensors |> Array.iteri (fun k _ -> sw[0, k] <- 1.0)
        | Line _
        | Lattice _ ->
            let a = grid.Axes[0]
            let xs = sensors |> Array.map fst
            checkRange "sensor x" a.Lo a.Hi xs

            weights1d "sensor x" a.Centres xs
            |> Array.iter2 (fun k row -> row |> Array.iter (fun (i, w) -> sw[i, k] <- sw[i, k] + w)) [|
                0 .. xs.Length - 1
            |]
        | Plane(a, b) ->
            let xs = sensors |> Array.map fst
            let ys = sensors |> Array.map snd
            checkRange "sensor x" a.Lo a.Hi xs
            checkRange "sensor y" b.Lo b.Hi ys
            let wx = weights1d "sensor x" a.Centres xs
            let wy = weights1d "sensor y" b.Centres ys

            for k in 0 .. sensors.Length - 1 do
                for (i, u) in wx[k] do
                    for (j, v) in wy[k] do
                        let c = i * b.Cells + j
                        sw[c, k] <- sw[c, k] + u * v

        {
            Times = Array.copy times
            Sensors = Array.copy sensors
            TimeWeights = torch.tensor (tw, dtype = dtype, device = dev)
            SpaceWeights = torch.tensor (sw, dtype = dtype, device = dev)
        }

    /// Applies the operator to a trajectory [S; B; spatial…] (e.g. `Trajectory.Values[i]`), giving [T; B; P].
    let apply (op: ObservationOperator) (trajectory: torch.Tensor) : torch.Tensor =
        let s = trajectory.shape[0]

        if s <> op.TimeWeights.shape[1] then
            raise (
                HybridException(
                    $"Observation: the trajectory has {s} snapshots but the operator was built for {op.TimeWeights.shape[1]} save times."
                )
            )

        let b = trajectory.shape[1]
        let flat = trajectory.reshape ([| s; b; -1L |])

        if flat.shape[2] <> op.SpaceWeights.shape[0] then
            raise (
                HybridException(
                    $"Observation: the trajectory has {flat.shape[2]} cells per snapshot but the operator was built for {op.SpaceWeights.shape[0]}."
                )
            )

        let w = op.SpaceWeights.to_type trajectory.dtype
        let tw = op.TimeWeights.to_type trajectory.dtype
        let inSpace = flat.matmul w // [S; B; P]
        torch.einsum ("ts,sbp->tbp", tw, inSpace)

    /// Replaces the entries where `mask` is false (0) by NaN, i.e. marks them missing for `Loss.mse`.
    let withMissing (mask: torch.Tensor) (values: torch.Tensor) : torch.Tensor =
        let missing =
            withScalar System.Double.NaN (fun nan -> torch.full_like (values, nan))

        torch.where (mask.to_type (torch.ScalarType.Bool), values, missing)

    /// Adds independent Gaussian noise of standard deviation `sd` from a generator seeded with `seed`
    /// (the global RNG is untouched); NaN entries stay NaN.
    let addNoise (sd: float) (seed: int64) (values: torch.Tensor) : torch.Tensor =
        Engine.init ()

        if sd < 0.0 then
            raise (HybridException($"Observation.addNoise: the noise standard deviation must be ≥ 0, got {sd}."))

        let g = new torch.Generator(uint64 seed, torch.CPU)

        let noise =
            torch.randn(values.shape, dtype = values.dtype, generator = g).``to`` values.device

        values .+ sd .* noise
