namespace Hybrid.Kernels

open Hybrid.Numerics

/// The stencils of `Numerics.Operators` as kernel expressions over reads of neighbouring cells, so that the
/// kernels and the eager back end discretise alike.
[<RequireQualifiedAccess>]
module internal Stencils =

    let private unit axis = if axis = 0 then (1, 0) else (0, 1)

    /// Field `f` at `offset` cells along `axis`.
    let read f axis offset =
        let ex, ey = unit axis
        KRead(f, ex * offset, ey * offset)

    /// κ evaluated at the face between the cell and its neighbour in direction `dir` (±1) along `axis`, as the
    /// eager back end evaluates it on face values: fields become the mean of the two cells (as
    /// `Operators.toFaces`), a spatial parameter p the mean of its padded copy `copyOf p` at the two cells (None:
    /// a scalar parameter, unchanged), the coordinate moves by ±h/2, and the output of closure call site s
    /// becomes `siteAt s`, the site whose arguments are taken at this face.
    let atFace (grid: Grid) (copyOf: int -> int option) (siteAt: int -> KExpr) axis dir (k: KExpr) =
        let ex, ey = unit axis

        k
        |> KExpr.mapLeaves (fun leaf ->
            match leaf with
            | KRead(f, dx, dy) -> KExpr.mul (KConst 0.5) (KExpr.add leaf (KRead(f, dx + dir * ex, dy + dir * ey)))
            | KParam p ->
                match copyOf p with
                | Some c -> KExpr.mul (KConst 0.5) (KExpr.add (KParamAt(c, 0, 0)) (KParamAt(c, dir * ex, dir * ey)))
                | None -> leaf
            | KCoord(a, s) when a = axis -> KCoord(a, s + float dir * 0.5 * grid.Axes[axis].Spacing)
            | KInput s -> siteAt s
            | other -> other)

    /// Σⱼ of a fast-ring expression, seen from slow site k: J copies with fast reads moved to site k·J + j (slow
    /// reads stay at the parent site k) and the fast coordinate n = k·J + j.
    let sumOverFastSites (fastSites: int) (isFast: bool[]) (e: KExpr) =
        [ 0 .. fastSites - 1 ]
        |> List.map (fun j ->
            e
            |> KExpr.mapLeaves (fun leaf ->
                match leaf with
                | KRead(f, dx, dy) when isFast[f] -> KRead(f, dx + j, dy)
                | KCoord(0, s) ->
                    KExpr.add (KExpr.mul (KConst(float fastSites)) (KCoord(0, 0.0))) (KConst(float j + s))
                | other -> other))
        |> List.reduce KExpr.add

    /// Δf: the sum over axes of the second central difference.
    let laplacian (grid: Grid) f =
        [ 0 .. grid.Dims - 1 ]
        |> List.map (fun a ->
            let h = grid.Axes[a].Spacing

            let second =
                KExpr.add (KExpr.sub (read f a 1) (KExpr.mul (KConst 2.0) (read f a 0))) (read f a -1)

            KExpr.div second (KConst(h * h)))
        |> List.reduce KExpr.add

    /// ∂f along `axis`: the central difference.
    let partial (grid: Grid) f axis =
        KExpr.div (KExpr.sub (read f axis 1) (read f axis -1)) (KConst(2.0 * grid.Axes[axis].Spacing))

    /// ∇·(κ∇f) in flux form, κ at the faces: `kappaAt axis dir` is κ at the face in direction `dir` (±1) along
    /// `axis` (`atFace`), called once per face.
    let diffusion (grid: Grid) f (kappaAt: int -> int -> KExpr) =
        [ 0 .. grid.Dims - 1 ]
        |> List.map (fun ax ->
            let h = grid.Axes[ax].Spacing
            let up = KExpr.mul (kappaAt ax 1) (KExpr.sub (read f ax 1) (read f ax 0))

            let down = KExpr.mul (kappaAt ax -1) (KExpr.sub (read f ax 0) (read f ax -1))

            KExpr.div (KExpr.sub up down) (KConst(h * h)))
        |> List.reduce KExpr.add

    /// v·∇f by first-order upwinding, one velocity component per axis.
    let advection (grid: Grid) f (velocity: KExpr list) =
        velocity
        |> List.mapi (fun ax vl ->
            let h = grid.Axes[ax].Spacing
            let forward = KExpr.div (KExpr.sub (read f ax 1) (read f ax 0)) (KConst h)
            let backward = KExpr.div (KExpr.sub (read f ax 0) (read f ax -1)) (KConst h)

            KExpr.add
                (KExpr.mul (KExpr.bin KBinary.Max vl (KConst 0.0)) backward)
                (KExpr.mul (KExpr.bin KBinary.Min vl (KConst 0.0)) forward))
        |> List.reduce KExpr.add
