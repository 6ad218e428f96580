namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// A boundary condition on one side of one axis, imposed through ghost cells.
/// Values are tensors broadcastable to the boundary slab ([B; 1] in 1-D, [B; 1; ny] or [B; nx; 1] in 2-D;
/// a 0-dim tensor for a constant), so they may depend on parameters and carry gradients.
[<RequireQualifiedAccess>]
type Bc =
    /// Wraps around to the opposite side (must be set on both sides of the axis).
    | Periodic
    /// u = value on the boundary face (ghost uₖ₋ = 2·value − mirror cell).
    | Dirichlet of value: torch.Tensor
    /// Outward normal derivative ∂u/∂n = value on the boundary face.
    | Neumann of gradient: torch.Tensor
    /// Zero flux: ∂u/∂n = 0, so a conservative flux through the boundary face is exactly zero.
    | NoFlux

/// The conditions on the low (x0 / y0) and high (x1 / y1) side of one axis.
type Sides = {
    /// Condition at the low end of the axis.
    Low: Bc
    /// Condition at the high end of the axis.
    High: Bc
}

/// Boundary conditions of one field: one `Sides` per spatial axis (ignored on lattices, which are periodic).
type FieldBoundary = Sides[]

/// Boundary conditions and ghost cells.
[<RequireQualifiedAccess>]
module Boundary =

    let private scalar (v: float) =
        Engine.init ()
        torch.tensor (v, dtype = torch.ScalarType.Float64, device = Engine.torchDevice ())

    /// Dirichlet u = v (a 0-dim float64 tensor; it adopts the field's precision in arithmetic).
    let dirichlet (v: float) : Bc = Bc.Dirichlet(scalar v)

    /// Neumann ∂u/∂n = g (outward normal derivative).
    let neumann (g: float) : Bc = Bc.Neumann(scalar g)

    /// The same condition on both sides of an axis.
    let both (bc: Bc) : Sides = { Low = bc; High = bc }

    /// The same condition on every side of every axis of a grid.
    let uniform (g: Grid) (bc: Bc) : FieldBoundary = Array.init g.Dims (fun _ -> both bc)

    /// Periodic on every axis.
    let periodic (g: Grid) : FieldBoundary = uniform g Bc.Periodic

    /// No flux on every side.
    let noFlux (g: Grid) : FieldBoundary = uniform g Bc.NoFlux

    let private check (g: Grid) (bcs: FieldBoundary) (axis: int) =
        if bcs.Length <> g.Dims then
            raise (
                ModelException(
                    $"Boundary conditions were given for {bcs.Length} axes, but the grid has {g.Dims}. Give one Sides per axis (e.g. Boundary.uniform grid Bc.NoFlux)."
                )
            )

        match bcs[axis].Low, bcs[axis].High with
        | Bc.Periodic, Bc.Periodic -> ()
        | Bc.Periodic, _
        | _, Bc.Periodic ->
            raise (
                ModelException(
                    $"Axis '{g.Axes[axis].Name}' is periodic on one side only. Set Bc.Periodic on both sides or on neither."
                )
            )
        | _ -> ()

    /// The field `u` ([B; spatial…]) padded with `width` ghost cells on both ends of spatial axis `axis`
    /// (0 = x), filled by the boundary conditions: periodic wrap, odd reflection about the Dirichlet value,
    /// even reflection plus the Neumann slope (NoFlux = Neumann 0). Lattices are always periodic.
    let pad (g: Grid) (bcs: FieldBoundary) (axis: int) (width: int) (u: torch.Tensor) : torch.Tensor =
        let d = int64 (axis + 1)
        let n = u.shape[axis + 1]
        let w = int64 width

        if w > n then
            raise (ModelException($"Cannot pad {width} ghost cells on an axis of {n} cells."))

        let wrap = g.IsLattice

        if not wrap then
            check g bcs axis

        let sides = if wrap then both Bc.Periodic else bcs[axis]

        // Distances (2k − 1)·dx of ghost k (k = w … 1 outward-in) from its mirror cell, shaped along the axis.
        let offsets (reverse: bool) =
            let dx = g.Axes[axis].Spacing

            let values =
                Array.init width (fun i ->
                    let k = if reverse then width - i else i + 1
                    float (2 * k - 1) * dx)

            torch.tensor(values, dtype = u.dtype, device = u.device).reshape (Grid.broadcastShape g axis width)

        // Mirror cells of the ghosts, outermost ghost first (a flip only when more than one ghost is needed).
        let mirror (start: int64) =
            let m = u.narrow (d, start, w)
            if w = 1L then m else m.flip ([| d |])

        let slope (s: torch.Tensor) (reverse: bool) =
            if w = 1L then
                s .* g.Axes[axis].Spacing
            else
                s * offsets reverse

        let low =
            match sides.Low with
            | Bc.Periodic -> u.narrow (d, n - w, w)
            | Bc.Dirichlet v -> 2.0 .* v - mirror 0L
            | Bc.Neumann s -> mirror 0L .+ slope s true
            | Bc.NoFlux -> mirror 0L

        let high =
            match sides.High with
            | Bc.Periodic -> u.narrow (d, 0L, w)
            | Bc.Dirichlet v -> 2.0 .* v - mirror (n - w)
            | Bc.Neumann s -> mirror (n - w) .+ slope s false
            | Bc.NoFlux -> mirror (n - w)

        torch.cat ([| low; u; high |], d)
