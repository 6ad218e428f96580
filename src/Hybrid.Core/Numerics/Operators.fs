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
