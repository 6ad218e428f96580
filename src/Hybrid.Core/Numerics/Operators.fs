namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Finite-difference / finite-volume operators on fields of shape [B; spatial…] (see `Grid`), with ghost
/// cells from the field's boundary conditions. All are second order in the grid spacing (upwind advection
/// is first order) and differentiable with respect to the field, the boundary values and any coefficient.
[<RequireQualifiedAccess>]
module Operators =

    let private spatial (g: Grid) (axis: int) (what: string) =
        if axis < 0 || axis >= g.Dims then
            raise (
                ModelException(
                    $"{what} along axis {axis} needs a grid with at least {axis + 1} spatial dimension(s); this grid has {g.Dims}."
                )
            )

    /// ∂u/∂(axis) by central differences (uᵢ₊₁ − uᵢ₋₁) / 2h. Axis 0 is x, 1 is y.
    let partial (g: Grid) (bcs: FieldBoundary) (axis: int) (u: torch.Tensor) : torch.Tensor =
        spatial g axis "A partial derivative"
        let d = int64 (axis + 1)
        let n = u.shape[axis + 1]
        let p = Boundary.pad g bcs axis 1 u
        (p.narrow (d, 2L, n) - p.narrow (d, 0L, n)) ./ (2.0 * g.Axes[axis].Spacing)

    /// ∂u/∂x, central.
    let ddx (g: Grid) (bcs: FieldBoundary) (u: torch.Tensor) : torch.Tensor = partial g bcs 0 u

    /// ∂u/∂y, central.
    let ddy (g: Grid) (bcs: FieldBoundary) (u: torch.Tensor) : torch.Tensor = partial g bcs 1 u

    /// ∇u: one central-difference component per spatial axis.
    let gradient (g: Grid) (bcs: FieldBoundary) (u: torch.Tensor) : torch.Tensor[] =
        Array.init g.Dims (fun a -> partial g bcs a u)

    /// ∇·v of a cell-centred vector field (one component per axis) by central differences; each component
    /// is padded with `bcs`. For ∇·(κ∇u) use `diffusion`, which is conservative.
    let divergence (g: Grid) (bcs: FieldBoundary) (v: torch.Tensor[]) : torch.Tensor =
        if v.Length <> g.Dims then
            raise (ModelException($"Divergence needs {g.Dims} vector components, got {v.Length}."))

        v |> Array.mapi (fun a c -> partial g bcs a c) |> Array.reduce (.+)

    /// Δu = Σ (uᵢ₊₁ − 2uᵢ + uᵢ₋₁) / h² over the spatial axes (3-point in 1-D, 5-point in 2-D; on lattices
    /// the periodic second difference with unit spacing).
    let laplacian (g: Grid) (bcs: FieldBoundary) (u: torch.Tensor) : torch.Tensor =
        spatial g 0 "The Laplacian"

        Array.init g.Dims (fun a ->
            let d = int64 (a + 1)
            let n = u.shape[a + 1]
            let p = Boundary.pad g bcs a 1 u
            let h = g.Axes[a].Spacing
            (p.narrow (d, 2L, n) .- 2.0 .* u .+ p.narrow (d, 0L, n)) ./ (h * h))
        |> Array.reduce (.+)

    /// Values at the n + 1 faces along `axis` (both boundary faces included): the mean of the two
    /// neighbouring cells, ghost cells from `bcs` (so a Dirichlet face gets exactly its value).
    /// Shape [B; n + 1] in 1-D; [B; nx + 1; ny] or [B; nx; ny + 1] in 2-D.
    let toFaces (g: Grid) (bcs: FieldBoundary) (axis: int) (u: torch.Tensor) : torch.Tensor =
        spatial g axis "Face interpolation"
        let d = int64 (axis + 1)
        let n = u.shape[axis + 1]
        let p = Boundary.pad g bcs axis 1 u
        0.5 .* (p.narrow (d, 0L, n + 1L) .+ p.narrow (d, 1L, n + 1L))

    /// ∇·(κ∇u) in conservative flux form: Σ (Fᵢ₊½ − Fᵢ₋½)/h with face fluxes Fᵢ₊½ = κᵢ₊½ (uᵢ₊₁ − uᵢ)/h.
    /// `kappaAtFaces axis` gives κ at the faces along that axis, broadcastable to the `toFaces` shape (a
    /// 0-dim tensor for a constant; evaluate a u-dependent or neural κ on `toFaces` values). With `NoFlux`
    /// the boundary fluxes are exactly zero, so Σu·dV is conserved to round-off.
    let diffusion (g: Grid) (bcs: FieldBoundary) (kappaAtFaces: int -> torch.Tensor) (u: torch.Tensor) : torch.Tensor =
        spatial g 0 "Diffusion"

        Array.init g.Dims (fun a ->
            let d = int64 (a + 1)
            let n = u.shape[a + 1]
            let h = g.Axes[a].Spacing
            let p = Boundary.pad g bcs a 1 u

            let flux =
                kappaAtFaces a * (p.narrow (d, 1L, n + 1L) - p.narrow (d, 0L, n + 1L)) ./ h

            (flux.narrow (d, 1L, n) - flux.narrow (d, 0L, n)) ./ h)
        |> Array.reduce (.+)

    /// (v·∇)u by first-order upwinding: per axis vₐ (uᵢ − uᵢ₋₁)/h where vₐ > 0, vₐ (uᵢ₊₁ − uᵢ)/h otherwise.
    /// `velocity` has one cell-centred component per axis, each broadcastable to u.
    let advection (g: Grid) (bcs: FieldBoundary) (velocity: torch.Tensor[]) (u: torch.Tensor) : torch.Tensor =
        if velocity.Length <> g.Dims then
            raise (ModelException($"Advection needs {g.Dims} velocity components, got {velocity.Length}."))

        velocity
        |> Array.mapi (fun a v ->
            let d = int64 (a + 1)
            let n = u.shape[a + 1]
            let h = g.Axes[a].Spacing
            let p = Boundary.pad g bcs a 1 u
            let backward = (u - p.narrow (d, 0L, n)) ./ h
            let forward = (p.narrow (d, 2L, n) - u) ./ h
            torch.where (v.gt (torch.tensor (0.0, dtype = v.dtype, device = v.device)), v * backward, v * forward))
        |> Array.reduce (.+)

    /// u[k + offset] on a periodic lattice (tensor dimension 1 of [B; K]): `shift 1 u` at site k is u at k + 1.
    let shift (offset: int) (u: torch.Tensor) : torch.Tensor =
        if offset = 0 then u else u.roll (int64 -offset, 1L)

    /// A boundary value extended by one entry at each end of tensor dimension `d` (its edge values repeated) when
    /// it varies along that dimension, so that it broadcasts against a field padded there by one ghost cell.
    let private extendValue (d: int64) (v: torch.Tensor) : torch.Tensor =
        if v.dim () > d && v.shape[int d] > 1L then
            let n = v.shape[int d]
            torch.cat ([| v.narrow (d, 0L, 1L); v; v.narrow (d, n - 1L, 1L) |], d)
        else
            v

    /// u ([B; nx; ny]) padded with one ghost cell on every side and corner ([B; nx + 2; ny + 2]): first along y by
    /// the y conditions, then along x by the x conditions (periodic wrap; walls reflect, with a boundary value that
    /// varies along y extended by its end values at the corners), so a corner ghost of two walls is reflected twice.
    let private padCorners (g: Grid) (bcs: FieldBoundary) (u: torch.Tensor) : torch.Tensor =
        let byY = Boundary.pad g bcs 1 1 u

        let extend (bc: Bc) =
            match bc with
            | Bc.Dirichlet v -> Bc.Dirichlet(extendValue 2L v)
            | Bc.Neumann s -> Bc.Neumann(extendValue 2L s)
            | other -> other

        let xSides = {
            Low = extend bcs[0].Low
            High = extend bcs[0].High
        }

        Boundary.pad g [| xSides; bcs[1] |] 0 1 byY

    /// J(a, b) = ∂a/∂x ∂b/∂y − ∂a/∂y ∂b/∂x on a 2-D rectangle in Arakawa's (1966) form: the mean of the three
    /// second-order Jacobians J⁺⁺ (products of central differences), J⁺ˣ (the divergence form ∇·(a ∇b × ẑ)) and
    /// Jˣ⁺ (the form ∇·(b ẑ × ∇a)) on the 9-point stencil. `bcsA` and `bcsB` fill each operand's ghost cells
    /// (corners included). On a doubly periodic grid the sums Σ J, Σ a·J(a, b) and Σ b·J(a, b) are zero to
    /// round-off, so ∂q/∂t = −J(ψ, q) conserves the mean of q, of q² (enstrophy when q is the vorticity) and,
    /// with q = Δψ, the kinetic energy; the error is second order in the spacing. With walls the three sums
    /// change only by terms at the boundary cells, computed from the ghost cells the conditions fill. They vanish
    /// when a is constant along each wall in the row of cells next to it (a Dirichlet, Neumann 0 or no-flux
    /// condition then mirrors that constant into the ghost cells), whatever b's conditions; a Dirichlet condition
    /// alone does not make it so (it fixes a on the wall, half a cell away, and a ψ = sin(πx) sin(πy) varies along the
    /// cells next to the wall). `a` and `b` broadcast against each other to [B; nx; ny].
    let jacobian (g: Grid) (bcsA: FieldBoundary) (bcsB: FieldBoundary) (a: torch.Tensor) (b: torch.Tensor) =
        if g.Dims <> 2 || g.IsLattice then
            raise (
                ModelException(
                    $"The Arakawa Jacobian needs a 2-D rectangle grid; this grid has {g.Dims} spatial dimension(s)."
                )
            )

        let full = torch.broadcast_tensors (a, b)
        let nx, ny = full[0].shape[1], full[0].shape[2]
        let pa = padCorners g bcsA full[0]
        let pb = padCorners g bcsB full[1]
        // The value at offset (i, j) from each cell.
        let at (p: torch.Tensor) (i: int64) (j: int64) =
            p.narrow(1L, 1L + i, nx).narrow (2L, 1L + j, ny)

        let aE, aW, aN, aS = at pa 1L 0L, at pa -1L 0L, at pa 0L 1L, at pa 0L -1L
        let bE, bW, bN, bS = at pb 1L 0L, at pb -1L 0L, at pb 0L 1L, at pb 0L -1L
        let aNE, aNW, aSE, aSW = at pa 1L 1L, at pa -1L 1L, at pa 1L -1L, at pa -1L -1L
        let bNE, bNW, bSE, bSW = at pb 1L 1L, at pb -1L 1L, at pb 1L -1L, at pb -1L -1L
        let jpp = (aE - aW) * (bN - bS) - (aN - aS) * (bE - bW)

        let jpx = aE * (bNE - bSE) - aW * (bNW - bSW) - aN * (bNE - bNW) .+ aS * (bSE - bSW)

        let jxp = bN * (aNE - aNW) - bS * (aSE - aSW) - bE * (aNE - aSE) .+ bW * (aNW - aSW)

        (jpp .+ jpx .+ jxp) ./ (12.0 * g.Axes[0].Spacing * g.Axes[1].Spacing)

    /// A cell's values at its two faces, reconstructed linearly with the van Leer limited slope σ = 2ab/(a + b)
    /// (0 unless the backward and forward differences a = qᵢ − qᵢ₋₁ and b = qᵢ₊₁ − qᵢ have the same sign): the
    /// right face qᵢ + σ/2 and the left face qᵢ − σ/2. Each is written as an interpolation between the cell and the
    /// neighbour on that side, from whichever end is nearer (qᵢ + t·b for a weight t = a/(a + b) ≤ ½, else
    /// qᵢ₊₁ − (1 − t)·b), so a face value between two non-negative cells is non-negative in floating point too.
    let private vanLeerFaces (before: torch.Tensor) (cell: torch.Tensor) (after: torch.Tensor) =
        let a = cell - before
        let b = after - cell
        let zeros = torch.zeros_like cell
        let same = (a * b).gt zeros
        let den = torch.where (same, a .+ b, torch.ones_like cell)
        let t = torch.where (same, a / den, zeros)
        let s = torch.where (same, b / den, zeros)
        let right = torch.where (withScalar 0.5 t.le, cell .+ t * b, after - s * b)
        let left = torch.where (withScalar 0.5 s.le, cell - s * a, before .+ t * a)
        left, right

    /// ∇·(v q) of a tracer q by a finite-volume upwind scheme on a MUSCL reconstruction with the van Leer limiter:
    /// per axis, q is reconstructed linearly in each cell with the limited slope of its two neighbouring
    /// differences (`Boundary.pad` fills two ghost cells from `bcsQ`), the velocity component is averaged to the
    /// faces (`toFaces`, ghost cells from that component's `velocityBcs`), and the face flux is v⁺ q_left + v⁻ q_right.
    /// The divergence of the fluxes telescopes, so on periodic axes (and walls whose face velocity is zero, e.g. a
    /// Dirichlet 0 velocity) Σq is conserved to round-off. The reconstructed face values lie between the two
    /// neighbouring cell values, so a forward-Euler step keeps q ≥ 0 when Δt·Σₐ max|vₐ|/hₐ ≤ ½ (a Courant number of
    /// ½ in 1-D), and so do the strong-stability-preserving schemes that are convex combinations of Euler steps
    /// (Heun, which is SSP-RK2, and SspRk3) under the same limit; RK4 is not SSP. Second order where q is smooth and
    /// monotone, first order at extrema (where the limiter flattens the slope). Differentiable by autograd; the
    /// limiter's |·| and the upwind switch have kinks where a difference or a face velocity is zero (there the
    /// derivative is one-sided as libtorch defines it: d|x|/dx = 0 at x = 0).
    let fluxAdvection
        (g: Grid)
        (velocityBcs: FieldBoundary[])
        (bcsQ: FieldBoundary)
        (velocity: torch.Tensor[])
        (q: torch.Tensor)
        : torch.Tensor =
        spatial g 0 "Flux advection"

        if velocity.Length <> g.Dims || velocityBcs.Length <> g.Dims then
            raise (ModelException($"Flux advection needs {g.Dims} velocity components, got {velocity.Length}."))

        velocity
        |> Array.mapi (fun a v ->
            let d = int64 (a + 1)
            let n = q.shape[a + 1]
            let h = g.Axes[a].Spacing
            let v = if v.shape = q.shape then v else v.expand (q.shape)
            let faceV = toFaces g velocityBcs[a] a v
            let p = Boundary.pad g bcsQ a 2 q
            // Cells −1 … n, each with its two neighbours: their face values.
            let cellLeft, cellRight =
                vanLeerFaces (p.narrow (d, 0L, n + 2L)) (p.narrow (d, 1L, n + 2L)) (p.narrow (d, 2L, n + 2L))

            // Face f = 0 … n lies between cells f − 1 and f.
            let left = cellRight.narrow (d, 0L, n + 1L)
            let right = cellLeft.narrow (d, 1L, n + 1L)
            let forward = torch.nn.functional.relu faceV
            let flux = forward * left .+ (faceV - forward) * right
            (flux.narrow (d, 1L, n) - flux.narrow (d, 0L, n)) ./ h)
        |> Array.reduce (.+)
