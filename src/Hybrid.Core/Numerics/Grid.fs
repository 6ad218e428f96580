namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// One uniform axis of cell-centred cells: `Cells` cells of width `Spacing` covering [Lo, Hi].
type GridAxis = {
    /// Coordinate name (`x`, `y`, or `k` on lattices).
    Name: string
    /// Left edge of the first cell.
    Lo: float
    /// Right edge of the last cell.
    Hi: float
    /// Number of cells (unknowns) along the axis.
    Cells: int
} with

    /// Cell width (Hi − Lo) / Cells.
    member a.Spacing = (a.Hi - a.Lo) / float a.Cells

    /// Cell centres Lo + (i + ½)·Spacing, i = 0 … Cells − 1.
    member a.Centres = Array.init a.Cells (fun i -> a.Lo + (float i + 0.5) * a.Spacing)

/// Where a simulator's fields live. Every field tensor has a leading batch dimension B (many
/// trajectories at once): shape [B] on `Point`, [B; n] on `Line` and `Lattice`, [B; nx; ny] on `Plane`.
type Grid =
    /// No space: 0-D systems of ODEs.
    | Point
    /// A uniform 1-D grid of cell-centred unknowns.
    | Line of GridAxis
    /// A uniform 2-D grid, x (tensor dimension 1) by y (tensor dimension 2).
    | Plane of GridAxis * GridAxis
    /// A periodic 1-D lattice of `sites` sites (unit spacing, site k at coordinate k) with `fast` fast
    /// sites per slow site (0 for none); fast fields live on a ring of sites·fast sites.
    | Lattice of sites: int * fast: int

    /// The spatial axes (none for `Point`; one axis `k` with unit spacing for `Lattice`).
    member g.Axes: GridAxis[] =
        match g with
        | Point -> [||]
        | Line a -> [| a |]
        | Plane(a, b) -> [| a; b |]
        | Lattice(k, _) -> [|
            {
                Name = "k"
                Lo = -0.5
                Hi = float k - 0.5
                Cells = k
            }
          |]

    /// Number of spatial dimensions (0, 1 or 2).
    member g.Dims = g.Axes.Length

    /// Spatial shape of a (slow) field, without the batch dimension.
    member g.Shape: int64[] = g.Axes |> Array.map (fun a -> int64 a.Cells)

    /// Number of cells of a (slow) field.
    member g.CellCount = g.Axes |> Array.fold (fun n a -> n * a.Cells) 1

    /// Volume (length, area) of one cell; 1 on `Point` and `Lattice`.
    member g.CellVolume = g.Axes |> Array.fold (fun v a -> v * a.Spacing) 1.0

/// Constructors and helpers for grids.
[<RequireQualifiedAccess>]
module Grid =

    let private axis name lo hi cells =
        if cells < 2 then
            raise (ModelException($"Axis '{name}' needs at least 2 cells, got {cells}. Use more cells."))

        if not (hi > lo) then
            raise (ModelException($"Axis '{name}' needs lo < hi, got [{lo}, {hi}]."))

        {
            Name = name
            Lo = lo
            Hi = hi
            Cells = cells
        }

    /// A 0-D grid (ODE systems).
    let point: Grid = Point

    /// The interval [x0, x1] split into `cells` uniform cells.
    let line (x0: float) (x1: float) (cells: int) : Grid = Line(axis "x" x0 x1 cells)

    /// The rectangle [x0, x1] × [y0, y1] split into nx × ny uniform cells.
    let plane (x0: float, x1: float, nx: int) (y0: float, y1: float, ny: int) : Grid =
        Plane(axis "x" x0 x1 nx, axis "y" y0 y1 ny)

    /// A periodic lattice of `sites` sites (no fast sub-lattice).
    let lattice (sites: int) : Grid =
        if sites < 3 then
            raise (ModelException($"A lattice needs at least 3 sites, got {sites}."))

        Lattice(sites, 0)

    /// The grid of a DSL domain.
    let ofDomain (d: Domain) : Grid =
        match d with
        | Domain.Point -> Point
        | Domain.Interval(x0, x1, n) -> line x0 x1 n
        | Domain.Rectangle(x0, x1, y0, y1, nx, ny) -> plane (x0, x1, nx) (y0, y1, ny)
        | Domain.Lattice(k, j) ->
            if k < 3 then
                raise (ModelException($"A lattice needs at least 3 sites, got {k}."))

            Lattice(k, max j 0)

    /// Full tensor shape [B; spatial…] of a slow field with `batch` trajectories.
    let fieldShape (g: Grid) (batch: int) : int64[] = Array.append [| int64 batch |] g.Shape

    /// Tensor shape of a field, fast (on the J·K ring of a lattice) or not.
    let fieldShapeOf (g: Grid) (fast: bool) (batch: int) : int64[] =
        match g, fast with
        | Lattice(k, j), true when j > 0 -> [| int64 batch; int64 (k * j) |]
        | _ -> fieldShape g batch

    /// Broadcast shape that puts `n` values along spatial axis `axis` (0 = x): [1; n] or [1; n; 1] / [1; 1; n].
    let internal broadcastShape (g: Grid) (axis: int) (n: int) : int64[] =
        Array.init (g.Dims + 1) (fun d -> if d = axis + 1 then int64 n else 1L)

    /// Cell-centre coordinates along spatial axis `axis`, shaped to broadcast against fields
    /// ([1; nx] in 1-D, [1; nx; 1] or [1; 1; ny] in 2-D).
    let coordinate (g: Grid) (axis: int) (dtype: torch.ScalarType) : torch.Tensor =
        Engine.init ()
        let a = g.Axes[axis]

        torch.tensor(a.Centres, dtype = dtype, device = Engine.torchDevice ()).reshape (broadcastShape g axis a.Cells)

    /// Face coordinates Lo + i·Spacing, i = 0 … Cells, along spatial axis `axis`, shaped to broadcast
    /// against face values (see `Operators.toFaces`).
    let faceCoordinate (g: Grid) (axis: int) (dtype: torch.ScalarType) : torch.Tensor =
        Engine.init ()
        let a = g.Axes[axis]
        let faces = Array.init (a.Cells + 1) (fun i -> a.Lo + float i * a.Spacing)

        torch.tensor(faces, dtype = dtype, device = Engine.torchDevice ()).reshape (broadcastShape g axis (a.Cells + 1))

    /// A field of shape [batch; spatial…] from a function of the cell-centre coordinates (x, y); y = 0 in
    /// 1-D, both 0 on `Point`; on lattices x is the site index.
    let init (g: Grid) (batch: int) (dtype: torch.ScalarType) (f: float -> float -> float) : torch.Tensor =
        Engine.init ()

        let values =
            match g with
            | Point -> [| f 0.0 0.0 |]
            | Line a -> a.Centres |> Array.map (fun x -> f x 0.0)
            | Lattice(k, _) -> Array.init k (fun i -> f (float i) 0.0)
            | Plane(a, b) -> [|
                for x in a.Centres do
                    for y in b.Centres -> f x y
              |]

        let one =
            torch.tensor(values, dtype = dtype, device = Engine.torchDevice ()).reshape (fieldShape g 1)

        one.expand(fieldShape g batch).clone ()

    /// Total amount ∫u dV per trajectory, shape [B] (sum of cell values times cell volume).
    let integrate (g: Grid) (u: torch.Tensor) : torch.Tensor =
        if g.Dims = 0 then
            u
        else
            let dims = Array.init g.Dims (fun d -> int64 (d + 1))
            u.sum (dims) .* g.CellVolume
