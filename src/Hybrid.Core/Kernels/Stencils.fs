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

    /// `e` (a per-cell expression) at the cell (dx, dy) away: its reads shifted (`ExprLowering` allows only
    /// operands whose other leaves do not depend on the cell).
    let private at (e: KExpr) (dx: int) (dy: int) = KExpr.shiftReads dx dy e

    /// J(a, b) in Arakawa's form on the 9-point stencil, as `Operators.jacobian`: the mean of J⁺⁺, J⁺ˣ and Jˣ⁺, the
    /// operands read at the neighbours and the corners (`Ghosts` wraps the corner ghosts of doubly periodic fields).
    let jacobian (grid: Grid) (a: KExpr) (b: KExpr) =
        let minus, plus, times = KExpr.sub, KExpr.add, KExpr.mul
        let aE, aW, aN, aS = at a 1 0, at a -1 0, at a 0 1, at a 0 -1
        let bE, bW, bN, bS = at b 1 0, at b -1 0, at b 0 1, at b 0 -1
        let aNE, aNW, aSE, aSW = at a 1 1, at a -1 1, at a 1 -1, at a -1 -1
        let bNE, bNW, bSE, bSW = at b 1 1, at b -1 1, at b 1 -1, at b -1 -1

        let jpp =
            minus (times (minus aE aW) (minus bN bS)) (times (minus aN aS) (minus bE bW))

        let jpx =
            plus
                (minus (minus (times aE (minus bNE bSE)) (times aW (minus bNW bSW))) (times aN (minus bNE bNW)))
                (times aS (minus bSE bSW))

        let jxp =
            plus
                (minus (minus (times bN (minus aNE aNW)) (times bS (minus aSE aSW))) (times bE (minus aNE aSE)))
                (times bW (minus aNW aSW))

        KExpr.div (plus (plus jpp jpx) jxp) (KConst(12.0 * grid.Axes[0].Spacing * grid.Axes[1].Spacing))

    /// where(c > 0, x, y) as TorchSharp computes it, for c given by its strict step p = `KUnary.Positive`(c):
    /// p·x + (1 − p)·y, exactly x or y (both finite), the derivative going to the chosen branch only.
    let private select (p: KExpr) (x: KExpr) (y: KExpr) =
        KExpr.add (KExpr.mul p x) (KExpr.mul (KExpr.sub (KConst 1.0) p) y)

    let private positive (c: KExpr) = KExpr.un KUnary.Positive c

    /// The left and right face values of the cell between `before` and `after` by the van Leer limited linear
    /// reconstruction, branch for branch as `Operators`' `vanLeerFaces`.
    let private vanLeerFaces (before: KExpr) (cell: KExpr) (after: KExpr) =
        let a = KExpr.sub cell before
        let b = KExpr.sub after cell
        let same = positive (KExpr.mul a b)
        let den = select same (KExpr.add a b) (KConst 1.0)
        let t = KExpr.mul same (KExpr.div a den)
        let s = KExpr.mul same (KExpr.div b den)
        // t ≤ ½ is not (t − ½ > 0): x − y is 0 only where x = y in floating point.
        let atMostHalf (w: KExpr) =
            KExpr.sub (KConst 1.0) (positive (KExpr.sub w (KConst 0.5)))

        let right =
            select (atMostHalf t) (KExpr.add cell (KExpr.mul t b)) (KExpr.sub after (KExpr.mul s b))

        let left =
            select (atMostHalf s) (KExpr.sub cell (KExpr.mul s a)) (KExpr.add before (KExpr.mul t a))

        left, right

    /// The flux of v q through the face above the cell along `axis` by the van Leer MUSCL finite-volume scheme, as
    /// `Operators.fluxAdvection`: v⁺ times the cell's right face value plus v⁻ times the next cell's left face value
    /// (v the mean of the two cells' velocity, v⁺ = relu v). `v` (the velocity along `axis`) and `q` are per-cell
    /// expressions read at neighbours by shifting their reads.
    let faceFlux (axis: int) (v: KExpr) (q: KExpr) =
        let ex, ey = unit axis
        let along (e: KExpr) (o: int) = at e (ex * o) (ey * o)
        let faceV = KExpr.mul (KConst 0.5) (KExpr.add v (along v 1))
        let forward = KExpr.mul (positive faceV) faceV
        let _, left = vanLeerFaces (along q -1) q (along q 1)
        let right, _ = vanLeerFaces q (along q 1) (along q 2)
        KExpr.add (KExpr.mul forward left) (KExpr.mul (KExpr.sub faceV forward) right)

    /// The fluxes through the faces above and below the cell along `axis` given the flux above it (`faceFlux`), the
    /// lower one by shifting the flux's reads one cell down: each face's flux is computed in both cells beside it.
    let shiftedFaces (axis: int) (flux: KExpr) =
        let ex, ey = unit axis
        flux, at flux -ex -ey

    /// ∇·(v q) by the van Leer MUSCL finite-volume scheme, as `Operators.fluxAdvection`: per axis the flux through
    /// the face above the cell (`faceFlux`) minus the flux through the face below, over h; `faces axis flux` gives
    /// both from the flux above (`shiftedFaces`, or reads of a copy of the fluxes computed once per face).
    /// `velocity` (one component per axis) and `q` are per-cell expressions read at neighbours by shifting their
    /// reads. Where q is flat to round-off the limiter's branch (the sign of a·b) is the round-off's, so derivatives
    /// there agree with the eager back end's only as far as both round alike (values agree regardless).
    let fluxAdvection (grid: Grid) (velocity: KExpr list) (q: KExpr) (faces: int -> KExpr -> KExpr * KExpr) =
        velocity
        |> List.mapi (fun ax v ->
            let above, below = faces ax (faceFlux ax v q)
            KExpr.div (KExpr.sub above below) (KConst grid.Axes[ax].Spacing))
        |> List.reduce KExpr.add
