namespace Hybrid.Numerics

open TorchSharp
open Hybrid.TensorArithmetic

/// The matrix of a linear operator on one field of a 1-D or 2-D grid whose rows couple each cell only to itself and
/// its nearest neighbours (three points in 1-D, five in 2-D: the diffusion stencils), stored by rows: entry k of row
/// i is L[i, Columns[i, k]], k = 0 the cell itself, then its +x, −x (and +y, −y) neighbours, taken across the walls
/// (cyclically), so periodic boundaries fit and other boundaries leave those entries 0.
type internal StencilMatrix = {
    /// Unknowns (cells) of the field.
    Size: int
    /// [Size; K] (int64): the column of each entry.
    Columns: torch.Tensor
    /// The columns as arrays, row by row.
    ColumnArray: int[][]
    /// For each direction k, the direction that points back (+x ↔ −x): entry k of row i is the transpose of entry
    /// Opposite[k] of row Columns[i, k].
    Opposite: int[]
    /// [Size; K]: the entries, differentiable with respect to whatever the operator depends on.
    Values: torch.Tensor
}

/// Assembling a `StencilMatrix` by probing an operator with a few sums of unit vectors (one per colour of a
/// distance-2 colouring: no two columns of one row share a colour, so each probe's response in row i is one entry),
/// and applying it.
[<RequireQualifiedAccess>]
module internal StencilMatrix =

    /// The offsets of the nearest-neighbour stencil on a grid with `dims` axes (1 or 2), as (dx, dy): the cell itself,
    /// then ±1 along each axis (+x, −x, +y, −y).
    let nearest (dims: int) : (int * int)[] =
        if dims = 1 then
            [| 0, 0; 1, 0; -1, 0 |]
        else
            [| 0, 0; 1, 0; -1, 0; 0, 1; 0, -1 |]

    /// Each cell's stencil columns on a grid of this shape (row-major, like the tensors): the cells at `offsets`
    /// ((dx, dy), dy 0 in 1-D; the first (0, 0)), taken cyclically.
    let neighboursAt (shape: int[]) (offsets: (int * int)[]) : int[][] =
        let wrap (i: int) (n: int) = ((i % n) + n) % n

        match shape with
        | [| nx |] -> Array.init nx (fun i -> offsets |> Array.map (fun (dx, _) -> wrap (i + dx) nx))
        | [| nx; ny |] ->
            Array.init (nx * ny) (fun i ->
                let x, y = i / ny, i % ny
                offsets |> Array.map (fun (dx, dy) -> wrap (x + dx) nx * ny + wrap (y + dy) ny))
        | _ -> invalidArg "shape" "A stencil matrix needs a 1-D or 2-D grid."

    /// Each cell's stencil columns on a grid of this shape (row-major, like the tensors): itself, then ±1 along each
    /// axis, cyclically (`nearest`).
    let neighbours (shape: int[]) : int[][] =
        if shape.Length < 1 || shape.Length > 2 then
            invalidArg "shape" "A stencil matrix needs a 1-D or 2-D grid."

        neighboursAt shape (nearest shape.Length)

    /// A greedy distance-2 colouring: any two columns of one row get different colours.
    let colours (columns: int[][]) : int[] =
        let n = columns.Length
        let colour = Array.create n -1
        let used = System.Collections.Generic.HashSet<int>()

        for j in 0 .. n - 1 do
            used.Clear()

            // Column j appears in the rows of its neighbours (the stencil is symmetric); their columns are taken.
            for row in columns[j] do
                for other in columns[row] do
                    if colour[other] >= 0 then
                        used.Add colour[other] |> ignore

            let mutable c = 0

            while used.Contains c do
                c <- c + 1

            colour[j] <- c

        colour

    /// y = M x for x [B; Size].
    let apply (m: StencilMatrix) (x: torch.Tensor) : torch.Tensor =
        let k = m.Columns.shape[1]

        (x.index_select(1L, m.Columns.reshape (-1L)).reshape ([| x.shape[0]; int64 m.Size; k |])
         .* m.Values)
            .sum (2L)

    /// The entries of the transpose, in the same layout: entry k of row i is M[Columns[i, k], i].
    let transposedValues (m: StencilMatrix) : torch.Tensor =
        torch.stack (
            Array.init m.Opposite.Length (fun k ->
                m.Values.index_select(0L, m.Columns.select (1L, int64 k)).select (1L, int64 m.Opposite[k])),
            1L
        )

    /// True when M equals its transpose to round-off (relative 1e-12 of the largest entry).
    let isSymmetric (m: StencilMatrix) : bool =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()
        let scale = m.Values.abs().max().ToDouble()

        (transposedValues m - m.Values).abs().max().ToDouble()
        <= 1e-12 * max scale 1e-300

    /// The matrix of the linear part of the affine operator `l` (l(u) = L u + l(0)) on fields shaped like `like`
    /// ([B; spatial…], 1-D or 2-D, at least 3 cells per axis), when L has the nearest-neighbour stencil: checked by
    /// applying both to a random field (agreement to 1e-10 relative in float64, 1e-4 in float32); None otherwise.
    let probe (l: torch.Tensor -> torch.Tensor) (like: torch.Tensor) : StencilMatrix option =
        let spatial = like.shape[1..] |> Array.map int

        if
            spatial.Length < 1
            || spatial.Length > 2
            || spatial |> Array.exists (fun c -> c < 3)
        then
            None
        else
            let n = spatial |> Array.fold (*) 1
            let columns = neighbours spatial
            let colour = colours columns
            let count = (Array.max colour) + 1
            let shape = Array.append [| int64 count |] (spatial |> Array.map int64)
            let probes = Array.zeroCreate<float> (count * n)

            for j in 0 .. n - 1 do
                probes[colour[j] * n + j] <- 1.0

            let probeTensor =
                torch.tensor(probes, dtype = like.dtype, device = like.device).reshape shape

            let zero =
                torch.zeros (
                    Array.append [| 1L |] (spatial |> Array.map int64),
                    dtype = like.dtype,
                    device = like.device
                )

            let affine = (l zero).reshape ([| 1L; int64 n |])
            // Row i of response c is Σ_{j of colour c} L[i, j]: the one entry of row i in that colour.
            let response = ((l probeTensor).reshape ([| int64 count; int64 n |]) - affine).t ()

            let k = columns[0].Length

            let index =
                torch.tensor (
                    Array.init (n * k) (fun e -> int64 colour[columns[e / k][e % k]]),
                    dtype = torch.ScalarType.Int64,
                    device = like.device
                )

            let m = {
                Size = n
                Columns =
                    torch
                        .tensor(
                            columns |> Array.collect (Array.map int64),
                            dtype = torch.ScalarType.Int64,
                            device = like.device
                        )
                        .reshape ([| int64 n; int64 k |])
                ColumnArray = columns
                Opposite = (if k = 3 then [| 0; 2; 1 |] else [| 0; 2; 1; 4; 3 |])
                Values = response.gather(1L, index.reshape ([| int64 n; int64 k |])).contiguous ()
            }

            let agrees =
                use _ = torch.no_grad ()
                use _ = torch.NewDisposeScope()
                use gen = new torch.Generator(20240521UL)

                let x =
                    torch.randn([| 1L; int64 n |], dtype = like.dtype, generator = gen).``to`` like.device

                let expected =
                    (l (x.reshape (Array.append [| 1L |] (spatial |> Array.map int64)))).reshape ([| 1L; int64 n |])
                    - affine

                let scale = max (expected.abs().max().ToDouble()) 1e-300

                let relative =
                    if like.dtype = torch.ScalarType.Float64 then
                        1e-10
                    else
                        1e-4

                (apply m x - expected).abs().max().ToDouble() <= relative * scale

            if agrees then Some m else None
