namespace Hybrid.Fused

/// Ghost cells on flat arrays, the same rules as `Numerics.Boundary.pad`: ghost k (k = 1 … width, counted
/// outward) on the low side is u[n−k] (periodic), 2v − u[k−1] (Dirichlet v), u[k−1] + s·(2k−1)·h
/// (Neumann s), u[k−1] (no flux); mirrored on the high side. Corner ghosts of 2-D grids stay zero (no
/// stencil of the fused path reads them).
[<RequireQualifiedAccess>]
module Ghosts =

    /// Source cell and affine coefficients of ghost k on one side: value = coefficient·u[source] + offset.
    let private ghostSource (rule: GhostRule) (n: int) (k: int) (high: bool) (h: float) =
        let mirror = if high then n - k else k - 1

        match rule with
        | GhostRule.Periodic -> (if high then k - 1 else n - k), 1.0, 0.0
        | GhostRule.Dirichlet v -> mirror, -1.0, 2.0 * v
        | GhostRule.Neumann s -> mirror, 1.0, s * float (2 * k - 1) * h
        | GhostRule.NoFlux -> mirror, 1.0, 0.0

    /// Visits every ghost of one field: (padded index of the ghost, padded index of its source cell, coefficient,
    /// offset), for trajectory `b`.
    let private forEachGhost (plan: KernelPlan) (field: int) (b: int) (visit: int -> int -> float -> float -> unit) =
        let g = plan.Ghost
        let baseIndex = b * plan.PaddedCells

        match plan.Grid.Dims with
        | 0 -> ()
        | 1 ->
            let low, high = plan.Rules[field][0]
            let n = plan.Nx
            let h = plan.Grid.Axes[0].Spacing

            for k in 1..g do
                let s, c, o = ghostSource low n k false h
                visit (baseIndex + g - k) (baseIndex + g + s) c o
                let s, c, o = ghostSource high n k true h
                visit (baseIndex + g + n - 1 + k) (baseIndex + g + s) c o
        | _ ->
            let py = plan.Py
            let at ix iy = baseIndex + (ix + g) * py + (iy + g)
            let lowX, highX = plan.Rules[field][0]
            let lowY, highY = plan.Rules[field][1]
            let hx = plan.Grid.Axes[0].Spacing
            let hy = plan.Grid.Axes[1].Spacing

            for k in 1..g do
                for iy in 0 .. plan.Ny - 1 do
                    let s, c, o = ghostSource lowX plan.Nx k false hx
                    visit (at -k iy) (at s iy) c o
                    let s, c, o = ghostSource highX plan.Nx k true hx
                    visit (at (plan.Nx - 1 + k) iy) (at s iy) c o

                for ix in 0 .. plan.Nx - 1 do
                    let s, c, o = ghostSource lowY plan.Ny k false hy
                    visit (at ix -k) (at ix s) c o
                    let s, c, o = ghostSource highY plan.Ny k true hy
                    visit (at ix (plan.Ny - 1 + k)) (at ix s) c o

    /// Padded index of interior cell `cell` (0 … Cells − 1, x-major) of trajectory `b`.
    let paddedIndex (plan: KernelPlan) (b: int) (cell: int) =
        let g = plan.Ghost
        let gy = if plan.Grid.Dims >= 2 then g else 0
        let ix = cell / plan.Ny
        let iy = cell % plan.Ny
        b * plan.PaddedCells + (ix + g) * plan.Py + (iy + gy)

    /// Copies the state (one flat array [B·Cells] per field) into the padded arrays and fills the ghosts.
    let fill (plan: KernelPlan) (batch: int) (state: float[][]) (padded: float[][]) =
        for f in 0 .. plan.Fields.Length - 1 do
            let u = state[f]
            let p = padded[f]

            for b in 0 .. batch - 1 do
                for cell in 0 .. plan.Cells - 1 do
                    p[paddedIndex plan b cell] <- u[b * plan.Cells + cell]

                forEachGhost plan f b (fun ghost source c o -> p[ghost] <- c * p[source] + o)

    /// The transpose of `fill`: adds the adjoint of the padded arrays (ghosts included) into the state adjoint.
    let unfill (plan: KernelPlan) (batch: int) (paddedAdjoint: float[][]) (stateAdjoint: float[][]) =
        for f in 0 .. plan.Fields.Length - 1 do
            let pa = paddedAdjoint[f]
            let ua = stateAdjoint[f]

            for b in 0 .. batch - 1 do
                // Ghosts first: their adjoint flows to their source cell.
                forEachGhost plan f b (fun ghost source c _ -> pa[source] <- pa[source] + c * pa[ghost])

                for cell in 0 .. plan.Cells - 1 do
                    ua[b * plan.Cells + cell] <- ua[b * plan.Cells + cell] + pa[paddedIndex plan b cell]
