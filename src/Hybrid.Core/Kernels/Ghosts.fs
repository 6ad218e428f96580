namespace Hybrid.Kernels

open System.Numerics
open System.Runtime.CompilerServices

/// A ghost whose Dirichlet or Neumann value is not a constant: its offset is `Scale` × `Value`(t, θ, x, y),
/// recomputed whenever the ghosts are filled; `Slopes[p]` is ∂Value/∂θ for parameter `Parameters[p]`.
type internal MovingGhost = {
    /// Index into the ghost arrays of `GhostMap`.
    Entry: int
    /// 2 for Dirichlet, (2k − 1)·h for Neumann.
    Scale: float
    /// The boundary value.
    Value: KExpr
    /// Parameters the value depends on.
    Parameters: int[]
    /// ∂Value/∂θ per entry of `Parameters`.
    Slopes: KExpr[]
    /// Coordinates at which the value is taken: the boundary face along the normal, the cell centre along it.
    X: float
    /// See `X`.
    Y: float
}

/// Where each value of a padded array comes from, for one field and one trajectory: interior cells are
/// copied; ghost k (k = 1 … width, counted outward) is an affine function of one interior cell, by the rules
/// of `Numerics.Boundary.pad`: on the low side u[n−k] (periodic), 2v − u[k−1] (Dirichlet v),
/// u[k−1] + s·(2k−1)·h (Neumann s), u[k−1] (no flux); mirrored on the high side. Corner ghosts of 2-D grids (the
/// Arakawa Jacobian and the flux advection of a composite velocity read them) follow `Operators`' corner padding
/// where at least one axis is periodic: the other axis' rule applied in the wrapped column or row; with walls on
/// both axes they stay zero (the lowering refuses the stencils that would read them, `ExprLowering`). Built once
/// per plan, so filling is a flat loop.
type internal GhostMap = {
    /// Padded index of interior cell c (x-major), trajectory 0.
    Interior: int[]
    /// Padded values per trajectory.
    Padded: int
    /// Padded index of each ghost, trajectory 0.
    Ghost: int[]
    /// Padded index of the interior cell each ghost copies.
    Source: int[]
    /// Factor on the source value (1 or −1).
    Factor: float[]
    /// Constant added (2v for Dirichlet, s·(2k−1)·h for Neumann); the entries of `Moving` are rewritten by
    /// `Ghosts.update`.
    Offset: float[]
    /// Ghosts whose offset depends on time, coordinates or parameters.
    Moving: MovingGhost[]
}

/// Ghost cells on padded flat arrays ([B·Padded] per field), and conversion from and to unpadded
/// values ([B·Cells] per field, x-major); generic over the kernels' element type (`KernelElement`: float or float32;
/// the maps' factors and offsets are float64, rounded to it).
[<RequireQualifiedAccess>]
module internal Ghosts =

    /// The map of an array of the plan's fast ring (`fast`) or slow grid with ghost rules `rules` per axis.
    let private mapWith (plan: KernelPlan) (fast: bool) (rules: (GhostRule * GhostRule)[]) : GhostMap =
        let ghosts = ResizeArray<int * int * float * float>()
        let moving = ResizeArray<MovingGhost>()

        /// Ghost k (1 … width) beyond side `high` of an axis of n cells and spacing h; `place` maps a position
        /// along the axis to the padded index, `at` gives the (x, y) of the boundary face next to it.
        let side (rule: GhostRule) (n: int) (h: float) (place: int -> int) (at: float * float) (k: int) (high: bool) =
            let mirror = if high then n - k else k - 1
            let ghostPosition = if high then n - 1 + k else -k

            let constantOrMoving (source: int) (factor: float) (scale: float) (value: KExpr) =
                match value with
                | KConst v -> ghosts.Add(place ghostPosition, place source, factor, scale * v)
                | _ ->
                    let parameters = KExpr.parameters value |> Array.ofList

                    moving.Add {
                        Entry = ghosts.Count
                        Scale = scale
                        Value = value
                        Parameters = parameters
                        Slopes = parameters |> Array.map (fun p -> KExpr.derivative (KParam p) value)
                        X = fst at
                        Y = snd at
                    }

                    ghosts.Add(place ghostPosition, place source, factor, 0.0)

            match rule with
            | GhostRule.Periodic -> ghosts.Add(place ghostPosition, place (if high then k - 1 else n - k), 1.0, 0.0)
            | GhostRule.Dirichlet v -> constantOrMoving mirror -1.0 2.0 v
            | GhostRule.Neumann s -> constantOrMoving mirror 1.0 (float (2 * k - 1) * h) s
            | GhostRule.NoFlux -> ghosts.Add(place ghostPosition, place mirror, 1.0, 0.0)

        let interior, padded =
            if fast then
                // The fast ring of a two-scale lattice: 1-D, periodic.
                let g = plan.FastGhost
                let n = plan.FastCells

                for k in 1..g do
                    side GhostRule.Periodic n 1.0 (fun i -> i + g) (0.0, 0.0) k false
                    side GhostRule.Periodic n 1.0 (fun i -> i + g) (0.0, 0.0) k true

                Array.init n (fun c -> c + g), plan.FastPaddedCells
            else
                let g = plan.Ghost
                let gy = if plan.Grid.Dims >= 2 then g else 0
                let at ix iy = (ix + g) * plan.Py + (iy + gy)
                let axes = plan.Grid.Axes

                match plan.Grid.Dims with
                | 0 -> ()
                | 1 ->
                    let low, high = rules[0]
                    let h = axes[0].Spacing

                    for k in 1..g do
                        side low plan.Nx h (fun i -> at i 0) (axes[0].Lo, 0.0) k false
                        side high plan.Nx h (fun i -> at i 0) (axes[0].Hi, 0.0) k true
                | _ ->
                    let lowX, highX = rules[0]
                    let lowY, highY = rules[1]
                    let hx = axes[0].Spacing
                    let hy = axes[1].Spacing

                    for k in 1..g do
                        for iy in 0 .. plan.Ny - 1 do
                            let y = axes[1].Centres[iy]
                            side lowX plan.Nx hx (fun i -> at i iy) (axes[0].Lo, y) k false
                            side highX plan.Nx hx (fun i -> at i iy) (axes[0].Hi, y) k true

                        for ix in 0 .. plan.Nx - 1 do
                            let x = axes[0].Centres[ix]
                            side lowY plan.Ny hy (fun j -> at ix j) (x, axes[1].Lo) k false
                            side highY plan.Ny hy (fun j -> at ix j) (x, axes[1].Hi) k true

                    // Corners, as `Operators`' corner padding (the array padded along y by the y rules, then along x
                    // by the x rules): where x wraps, a corner is the y ghost of the column it wraps to; where only y
                    // wraps, the x ghost of the row it wraps to, with the boundary value of the nearest end row (the
                    // eager back end extends the value by its end values). `place` puts a ghost at the corner and
                    // reads its source in the wrapped column or row.
                    let periodic (rule: GhostRule) =
                        match rule with
                        | GhostRule.Periodic -> true
                        | _ -> false

                    let wrap (i: int) (n: int) = ((i % n) + n) % n
                    let outside (n: int) = [ -g .. -1 ] @ [ n .. n + g - 1 ]
                    let inside (i: int) (n: int) = i >= 0 && i < n

                    if periodic lowX && periodic highX then
                        for ix in outside plan.Nx do
                            let column = wrap ix plan.Nx
                            let x = axes[0].Centres[column]

                            let place j =
                                if inside j plan.Ny then at column j else at ix j

                            for k in 1..g do
                                side lowY plan.Ny hy place (x, axes[1].Lo) k false
                                side highY plan.Ny hy place (x, axes[1].Hi) k true
                    elif periodic lowY && periodic highY then
                        for iy in outside plan.Ny do
                            let row = wrap iy plan.Ny
                            let y = axes[1].Centres[max 0 (min (plan.Ny - 1) iy)]

                            let place i =
                                if inside i plan.Nx then at i row else at i iy

                            for k in 1..g do
                                side lowX plan.Nx hx place (axes[0].Lo, y) k false
                                side highX plan.Nx hx place (axes[0].Hi, y) k true

                Array.init plan.Cells (fun c -> at (c / plan.Ny) (c % plan.Ny)), plan.PaddedCells

        {
            Interior = interior
            Padded = padded
            Ghost = ghosts |> Seq.map (fun (a, _, _, _) -> a) |> Array.ofSeq
            Source = ghosts |> Seq.map (fun (_, b, _, _) -> b) |> Array.ofSeq
            Factor = ghosts |> Seq.map (fun (_, _, c, _) -> c) |> Array.ofSeq
            Offset = ghosts |> Seq.map (fun (_, _, _, d) -> d) |> Array.ofSeq
            Moving = moving.ToArray()
        }

    /// The map of field number `field`.
    let map (plan: KernelPlan) (field: int) : GhostMap =
        mapWith plan plan.Fast[field] plan.Rules[field]

    /// The map of a padded copy of a spatial parameter: ghosts wrap along its periodic axes and mirror the
    /// interior elsewhere (the no-flux rule, so the first ghost repeats the edge cell).
    let copyMap (plan: KernelPlan) (copy: ParamCopy) : GhostMap =
        copy.Periodic
        |> Array.map (fun periodic ->
            if periodic then
                GhostRule.Periodic, GhostRule.Periodic
            else
                GhostRule.NoFlux, GhostRule.NoFlux)
        |> mapWith plan false

    /// Copies unpadded values ([B·Cells] per field) into the interior of padded arrays ([B·Padded]).
    let scatter (maps: GhostMap[]) (batch: int) (values: 'T[][]) (padded: 'T[][]) =
        for f in 0 .. maps.Length - 1 do
            let interior = maps[f].Interior
            let u = values[f]
            let p = padded[f]

            for b in 0 .. batch - 1 do
                let pb = b * maps[f].Padded
                let ub = b * interior.Length

                for c in 0 .. interior.Length - 1 do
                    p[pb + interior[c]] <- u[ub + c]

    /// The interior of padded arrays as unpadded values ([B·Cells] per field).
    let gather (maps: GhostMap[]) (batch: int) (padded: 'T[][]) : 'T[][] =
        maps
        |> Array.mapi (fun f m ->
            let p = padded[f]
            let cells = m.Interior.Length

            Array.init (batch * cells) (fun i -> p[(i / cells) * m.Padded + m.Interior[i % cells]]))

    /// Rewrites the offsets of moving ghosts for time t and parameter values θ (`offsets` as
    /// `KernelPlan.ParamOffsets`).
    let update (maps: GhostMap[]) (theta: float[]) (offsets: int[]) (t: float) =
        for m in maps do
            for g in m.Moving do
                m.Offset[g.Entry] <- g.Scale * KExpr.evaluate theta offsets t g.X g.Y g.Value

    /// Fills the ghost entries of padded arrays from their interior (call `update` first when the maps have
    /// moving ghosts).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let fill<'T when 'T :> INumber<'T>> (maps: GhostMap[]) (batch: int) (padded: 'T[][]) =
        for f in 0 .. maps.Length - 1 do
            let m = maps[f]
            let p = padded[f]

            for b in 0 .. batch - 1 do
                let pb = b * m.Padded

                for i in 0 .. m.Ghost.Length - 1 do
                    // factor·u + offset ('T's operators: F# resolves `*` and `+` on 'T only in members)
                    p[pb + m.Ghost[i]] <-
                        'T
                            .op_Addition (
                                'T.op_Multiply (KernelElement.ofFloat<'T> m.Factor[i], p[pb + m.Source[i]]),
                                KernelElement.ofFloat<'T> m.Offset[i]
                            )

    /// The transpose of `fill` on an adjoint: adds each ghost entry into its source cell and zeroes it, so the
    /// array holds the adjoint of the interior alone; the moving ghosts' share goes into `thetaAdjoint`
    /// (values at time t and θ).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let fold<'T when 'T :> INumber<'T>>
        (maps: GhostMap[])
        (batch: int)
        (theta: 'T[])
        (offsets: int[])
        (t: float)
        (paddedAdjoint: 'T[][])
        (thetaAdjoint: 'T[])
        =
        let thetaValues =
            if maps |> Array.exists (fun m -> m.Moving.Length > 0) then
                KernelElement.floats theta
            else
                null

        for f in 0 .. maps.Length - 1 do
            let m = maps[f]
            let pa = paddedAdjoint[f]

            for g in m.Moving do
                let mutable total = 0.0

                for b in 0 .. batch - 1 do
                    total <- total + KernelElement.toFloat pa[b * m.Padded + m.Ghost[g.Entry]]

                for p in 0 .. g.Parameters.Length - 1 do
                    let slope = KExpr.evaluate thetaValues offsets t g.X g.Y g.Slopes[p]
                    let i = offsets[g.Parameters[p]]

                    thetaAdjoint[i] <-
                        'T.op_Addition (thetaAdjoint[i], KernelElement.ofFloat<'T> (total * g.Scale * slope))

            for b in 0 .. batch - 1 do
                let pb = b * m.Padded

                for i in 0 .. m.Ghost.Length - 1 do
                    let ghost = pb + m.Ghost[i]

                    pa[pb + m.Source[i]] <-
                        'T
                            .op_Addition (
                                pa[pb + m.Source[i]],
                                'T.op_Multiply (KernelElement.ofFloat<'T> m.Factor[i], pa[ghost])
                            )

                    pa[ghost] <- 'T.Zero
