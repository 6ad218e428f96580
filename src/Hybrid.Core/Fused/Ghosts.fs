namespace Hybrid.Fused

open System.Runtime.CompilerServices

/// Where each value of a padded array comes from, for one field and one trajectory: interior cells are
/// copied; ghost k (k = 1 … width, counted outward) is an affine function of one interior cell, by the rules
/// of `Numerics.Boundary.pad`: on the low side u[n−k] (periodic), 2v − u[k−1] (Dirichlet v),
/// u[k−1] + s·(2k−1)·h (Neumann s), u[k−1] (no flux); mirrored on the high side. Corner ghosts of 2-D grids
/// stay zero (no stencil of the fused path reads them). Built once per plan, so filling is a flat loop.
type GhostMap = {
    /// Padded index of interior cell c (x-major), trajectory 0.
    Interior: int[]
    /// Padded index of each ghost, trajectory 0.
    Ghost: int[]
    /// Padded index of the interior cell each ghost copies.
    Source: int[]
    /// Factor on the source value (1 or −1).
    Factor: float[]
    /// Constant added (2v for Dirichlet, s·(2k−1)·h for Neumann).
    Offset: float[]
}

/// Ghost cells on padded flat arrays ([B·PaddedCells] per field), and conversion from and to unpadded
/// values ([B·Cells] per field, x-major).
[<RequireQualifiedAccess>]
module Ghosts =

    let private ghostSource (rule: GhostRule) (n: int) (k: int) (high: bool) (h: float) =
        let mirror = if high then n - k else k - 1

        match rule with
        | GhostRule.Periodic -> (if high then k - 1 else n - k), 1.0, 0.0
        | GhostRule.Dirichlet v -> mirror, -1.0, 2.0 * v
        | GhostRule.Neumann s -> mirror, 1.0, s * float (2 * k - 1) * h
        | GhostRule.NoFlux -> mirror, 1.0, 0.0

    /// The map of field number `field`.
    let map (plan: KernelPlan) (field: int) : GhostMap =
        let g = plan.Ghost
        let gy = if plan.Grid.Dims >= 2 then g else 0
        let at ix iy = (ix + g) * plan.Py + (iy + gy)
        let interior = Array.init plan.Cells (fun c -> at (c / plan.Ny) (c % plan.Ny))
        let ghosts = ResizeArray<int * int * float * float>()

        let side (rule: GhostRule) (n: int) (h: float) (place: int -> int) (k: int) (high: bool) =
            let s, c, o = ghostSource rule n k high h
            let ghostPosition = if high then n - 1 + k else -k
            ghosts.Add(place ghostPosition, place s, c, o)

        match plan.Grid.Dims with
        | 0 -> ()
        | 1 ->
            let low, high = plan.Rules[field][0]
            let h = plan.Grid.Axes[0].Spacing

            for k in 1..g do
                side low plan.Nx h (fun i -> at i 0) k false
                side high plan.Nx h (fun i -> at i 0) k true
        | _ ->
            let lowX, highX = plan.Rules[field][0]
            let lowY, highY = plan.Rules[field][1]
            let hx = plan.Grid.Axes[0].Spacing
            let hy = plan.Grid.Axes[1].Spacing

            for k in 1..g do
                for iy in 0 .. plan.Ny - 1 do
                    side lowX plan.Nx hx (fun i -> at i iy) k false
                    side highX plan.Nx hx (fun i -> at i iy) k true

                for ix in 0 .. plan.Nx - 1 do
                    side lowY plan.Ny hy (fun j -> at ix j) k false
                    side highY plan.Ny hy (fun j -> at ix j) k true

        {
            Interior = interior
            Ghost = ghosts |> Seq.map (fun (a, _, _, _) -> a) |> Array.ofSeq
            Source = ghosts |> Seq.map (fun (_, b, _, _) -> b) |> Array.ofSeq
            Factor = ghosts |> Seq.map (fun (_, _, c, _) -> c) |> Array.ofSeq
            Offset = ghosts |> Seq.map (fun (_, _, _, d) -> d) |> Array.ofSeq
        }

    /// Copies unpadded values ([B·Cells] per field) into the interior of padded arrays ([B·PaddedCells]).
    let scatter (plan: KernelPlan) (maps: GhostMap[]) (batch: int) (values: float[][]) (padded: float[][]) =
        for f in 0 .. maps.Length - 1 do
            let interior = maps[f].Interior
            let u = values[f]
            let p = padded[f]

            for b in 0 .. batch - 1 do
                let pb = b * plan.PaddedCells
                let ub = b * plan.Cells

                for c in 0 .. interior.Length - 1 do
                    p[pb + interior[c]] <- u[ub + c]

    /// The interior of padded arrays as unpadded values ([B·Cells] per field).
    let gather (plan: KernelPlan) (maps: GhostMap[]) (batch: int) (padded: float[][]) : float[][] =
        maps
        |> Array.mapi (fun f m ->
            let p = padded[f]

            Array.init (batch * plan.Cells) (fun i ->
                p[(i / plan.Cells) * plan.PaddedCells + m.Interior[i % plan.Cells]]))

    /// Fills the ghost entries of padded arrays from their interior.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let fill (plan: KernelPlan) (maps: GhostMap[]) (batch: int) (padded: float[][]) =
        for f in 0 .. maps.Length - 1 do
            let m = maps[f]
            let p = padded[f]

            for b in 0 .. batch - 1 do
                let pb = b * plan.PaddedCells

                for i in 0 .. m.Ghost.Length - 1 do
                    p[pb + m.Ghost[i]] <- m.Factor[i] * p[pb + m.Source[i]] + m.Offset[i]

    /// The transpose of `fill` on an adjoint: adds each ghost entry into its source cell and zeroes it, so the
    /// array holds the adjoint of the interior alone.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let fold (plan: KernelPlan) (maps: GhostMap[]) (batch: int) (paddedAdjoint: float[][]) =
        for f in 0 .. maps.Length - 1 do
            let m = maps[f]
            let pa = paddedAdjoint[f]

            for b in 0 .. batch - 1 do
                let pb = b * plan.PaddedCells

                for i in 0 .. m.Ghost.Length - 1 do
                    let ghost = pb + m.Ghost[i]
                    pa[pb + m.Source[i]] <- pa[pb + m.Source[i]] + m.Factor[i] * pa[ghost]
                    pa[ghost] <- 0.0
