namespace Hybrid.Numerics

open TorchSharp
open Hybrid.TensorArithmetic

/// A block-banded matrix over the n fields of a 1-D or 2-D grid, one per trajectory, whose block rows couple each
/// cell only to itself and its nearest neighbours (the stencils of `StencilMatrix`; the kernels' Rodas4 also uses
/// wider sets of offsets, `BlockStencil.patternAt`), with the unknowns interleaved (cell by cell, the n fields of a
/// cell together): block k of block row i is the n×n block A[(i, ·), (Columns[i, k], ·)], k = 0 the cell itself,
/// then its +x, −x (and +y, −y) neighbours, taken across the walls (cyclically; other boundaries leave those blocks 0).
type internal BlockStencil = {
    /// Cells of the grid.
    Cells: int
    /// Fields per cell (the block size n).
    Fields: int
    /// [Cells; K] (int64): the cell of each block.
    Columns: torch.Tensor
    /// The columns as arrays, row by row.
    ColumnArray: int[][]
    /// For each direction k, the direction that points back (+x ↔ −x).
    Opposite: int[]
    /// The distance-2 colour of each cell (the probes of `BlockStencil.jacobian`).
    Colour: int[]
    /// [B; Cells; K; n; n]: the blocks, differentiable with respect to whatever the matrix depends on (null in a
    /// `BlockStencil.pattern`).
    Values: torch.Tensor
}

/// Assembling the Jacobian ∂F/∂u of a grid tendency F as a `BlockStencil` by coloured probes, and applying it. The
/// probes are vector–Jacobian products (reverse mode, one backward pass per colour and field), not Jacobian–vector
/// products: TorchSharp has no forward mode, a JVP by double backward costs two passes, and the stencil's pattern is
/// symmetric (cell j is in cell i's stencil exactly when i is in j's), so a distance-2 colouring of the cells
/// (`StencilMatrix.colours`) separates the entries of each column as it separates those of each row. The result is
/// exact up to round-off (autograd, not finite differences) and checked against one more product with a random
/// vector, so a tendency that couples cells further apart (a wider stencil, a closure over the grid) is refused.
[<RequireQualifiedAccess>]
module internal BlockStencil =

    /// y = A x for x [B; Cells; n].
    let apply (m: BlockStencil) (x: torch.Tensor) : torch.Tensor =
        let k = m.Columns.shape[1]
        let n = int64 m.Fields

        let gathered =
            x.index_select(1L, m.Columns.reshape (-1L)).reshape ([| x.shape[0]; int64 m.Cells; k; n; 1L |])

        m.Values.matmul(gathered).squeeze(-1L).sum (2L)

    /// The blocks of the transpose, in the same layout: block k of block row i is A[Columns[i, k], i]ᵀ.
    let transposedValues (m: BlockStencil) : torch.Tensor =
        torch.stack (
            Array.init m.Opposite.Length (fun k ->
                m.Values
                    .index_select(1L, m.Columns.select (1L, int64 k))
                    .select(2L, int64 m.Opposite[k])
                    .transpose (-1L, -2L)),
            2L
        )

    /// [Cells; K; n; n]: the identity in the layout m (the identity block on each diagonal block).
    let identity (m: BlockStencil) (like: torch.Tensor) : torch.Tensor =
        let n = int64 m.Fields
        let k = m.Columns.shape[1]
        let eye = torch.eye (n, dtype = like.dtype, device = like.device)

        torch.cat (
            [|
                eye.expand ([| int64 m.Cells; 1L; n; n |])
                torch.zeros ([| int64 m.Cells; k - 1L; n; n |], dtype = like.dtype, device = like.device)
            |],
            1L
        )

    /// True when fields with this spatial shape ([nx] or [nx; ny], at least 3 cells per axis) fit a block stencil.
    let fits (spatial: int64[]) : bool =
        spatial.Length >= 1
        && spatial.Length <= 2
        && spatial |> Array.forall (fun c -> c >= 3L)

    /// The pattern of a grid of this spatial shape with n fields whose block rows couple each cell to the cells at
    /// `offsets` ((dx, dy), dy 0 in 1-D; the first (0, 0), the set symmetric: −o with every o), cyclically (no
    /// values yet), its tensors on `device`. With more than the nearest neighbours it is the kernels' Rodas4 pattern
    /// for wider stencils (`TangentPlan.couplings`); the grid needs 2r + 1 cells along an axis the offsets reach r
    /// cells along, so that no cell appears twice in a row.
    let patternAt (spatial: int64[]) (fields: int) (device: torch.Device) (offsets: (int * int)[]) : BlockStencil =
        let shape = spatial |> Array.map int
        let cells = shape |> Array.fold (*) 1
        let columns = StencilMatrix.neighboursAt shape offsets
        let k = columns[0].Length

        {
            Cells = cells
            Fields = fields
            Columns =
                torch
                    .tensor(columns |> Array.collect (Array.map int64), dtype = torch.ScalarType.Int64, device = device)
                    .reshape ([| int64 cells; int64 k |])
            ColumnArray = columns
            Opposite =
                offsets
                |> Array.map (fun (dx, dy) -> Array.findIndex (fun o -> o = (-dx, -dy)) offsets)
            Colour = StencilMatrix.colours columns
            Values = null
        }

    /// The nearest-neighbour pattern of a grid of this spatial shape with n fields (`patternAt`); made once per
    /// rollout, outside the steps' dispose scopes, since the backward passes of the solves read it.
    let pattern (spatial: int64[]) (fields: int) (device: torch.Device) : BlockStencil =
        patternAt spatial fields device (StencilMatrix.nearest spatial.Length)

    /// The Jacobian ∂F/∂u at the packed state u [B; Cells; n] of the tendency `f` (packed to packed) in the layout
    /// of `pattern`, when it is stencil-local: checked against a product with a random vector (agreement to 1e-10
    /// relative in float64, 1e-4 in float32); None otherwise. With `createGraph` the blocks are differentiable
    /// (through the tendency's dependence on θ and u).
    let jacobian
        (pattern: BlockStencil)
        (f: torch.Tensor -> torch.Tensor)
        (createGraph: bool)
        (u: torch.Tensor)
        : BlockStencil option =
        use _ = torch.enable_grad ()
        let cells = pattern.Cells
        let batch = u.shape[0]
        let n = pattern.Fields
        let columns = pattern.ColumnArray
        let colour = pattern.Colour
        let count = (Array.max colour) + 1
        let k = columns[0].Length

        let x =
            if createGraph && u.requires_grad then
                u
            else
                u.detach().requires_grad_ true

        let out = f x

        let product (seed: torch.Tensor) (graph: bool) =
            if not out.requires_grad then
                torch.zeros_like x
            else
                let g =
                    torch.autograd.grad (
                        [| out |],
                        [| x |],
                        [| seed |],
                        retain_graph = true,
                        create_graph = graph,
                        allow_unused = true
                    )
                    |> Seq.head

                if isNull g || g.IsInvalid then torch.zeros_like x else g

        let cellsOf =
            Array.init count (fun c -> Array.init cells (fun i -> if colour[i] = c then 1.0 else 0.0))

        // Response (c, a): Σ over the cells i of colour c of row (i, a) of J, i.e. [B; Cells; n] with entry (j, b) =
        // J[(i*, a), (j, b)] for the one cell i* of colour c in j's stencil.
        let responses = [|
            for c in 0 .. count - 1 do
                let mask =
                    torch.tensor(cellsOf[c], dtype = u.dtype, device = u.device).reshape ([| 1L; int64 cells |])

                for a in 0 .. n - 1 do
                    let seed =
                        torch.zeros ([| batch; int64 cells; int64 n |], dtype = u.dtype, device = u.device)

                    seed.select(2L, int64 a).copy_ (mask.expand ([| batch; int64 cells |]))
                    |> ignore

                    product seed createGraph
        |]

        // [B; C·Cells; n(a); n(b)], then block (i, k) from colour(i) at cell Columns[i, k].
        let stacked =
            torch
                .stack(responses, 1L)
                .reshape([| batch; int64 count; int64 n; int64 cells; int64 n |])
                .permute([| 0L; 1L; 3L; 2L; 4L |])
                .reshape ([| batch; int64 (count * cells); int64 n; int64 n |])

        let index =
            torch.tensor (
                Array.init (cells * k) (fun e -> int64 (colour[e / k] * cells + columns[e / k][e % k])),
                dtype = torch.ScalarType.Int64,
                device = u.device
            )

        let values =
            stacked.index_select(1L, index).reshape ([| batch; int64 cells; int64 k; int64 n; int64 n |])

        let m = {
            pattern with
                Values = (if createGraph then values else values.detach ())
        }

        let agrees =
            use gen = new torch.Generator(20240607UL)

            let w =
                torch.randn([| batch; int64 cells; int64 n |], dtype = u.dtype, generator = gen).``to`` u.device

            let expected = (product w false).detach ()
            use _ = torch.no_grad ()

            let got =
                apply
                    {
                        m with
                            Values = transposedValues { m with Values = m.Values.detach () }
                    }
                    w

            let scale = max (expected.abs().max().ToDouble()) 1e-300

            let relative = if u.dtype = torch.ScalarType.Float64 then 1e-10 else 1e-4

            (got - expected).abs().max().ToDouble() <= relative * scale

        if agrees then Some m else None
