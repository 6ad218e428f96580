/// The roofline of `hybrid bench-peers`: 1-D Fisher–KPP (no flux) forward + backward written by hand with
/// hardware intrinsics, Vector512 where it is accelerated, else Vector256. The same algorithm as the kernels
/// (RK4 stages, stage inputs recomputed in the backward pass, the gather-form adjoint), on padded arrays whose
/// ghost cells copy the edge cells, so every stencil read is a contiguous load.
module internal Hybrid.Cli.SimdFisher

open System
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics

/// Eight values from index i.
let inline private load8 (a: float[]) (i: int) =
    Vector512.Create<float>(ReadOnlySpan<float>(a, i, 8))

/// Four values from index i.
let inline private load4 (a: float[]) (i: int) =
    Vector256.Create<float>(ReadOnlySpan<float>(a, i, 4))

/// The loops, one method per width (the JIT specialises each).
[<AbstractClass; Sealed>]
type private Loops =

    /// k[1..n] ← c·(p[i−1] − 2p[i] + p[i+1]) + r·p[i]·(1 − p[i]) with c = D/h², on padded arrays.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Rhs512(n: int, c: float, r: float, p: float[], k: float[]) =
        let vc, vr, one, two =
            Vector512.Create c, Vector512.Create r, Vector512.Create 1.0, Vector512.Create 2.0

        let mutable i = 1

        while i + 8 <= n + 1 do
            let left = load8 p (i - 1)
            let mid = load8 p (i)
            let right = load8 p (i + 1)
            let v = vc * (left - two * mid + right) + vr * mid * (one - mid)
            v.CopyTo(Span(k, i, 8))
            i <- i + 8

        while i <= n do
            k[i] <- c * (p[i - 1] - 2.0 * p[i] + p[i + 1]) + r * p[i] * (1.0 - p[i])
            i <- i + 1

    /// `Rhs512` with 4 lanes.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Rhs256(n: int, c: float, r: float, p: float[], k: float[]) =
        let vc, vr, one, two =
            Vector256.Create c, Vector256.Create r, Vector256.Create 1.0, Vector256.Create 2.0

        let mutable i = 1

        while i + 4 <= n + 1 do
            let left = load4 p (i - 1)
            let mid = load4 p (i)
            let right = load4 p (i + 1)
            let v = vc * (left - two * mid + right) + vr * mid * (one - mid)
            v.CopyTo(Span(k, i, 4))
            i <- i + 4

        while i <= n do
            k[i] <- c * (p[i - 1] - 2.0 * p[i] + p[i + 1]) + r * p[i] * (1.0 - p[i])
            i <- i + 1

    /// λᵀ∂f/∂u into out[1..n] (the no-flux Laplacian is symmetric: λ padded like u); returns
    /// (Σ λ·Δu/h², Σ λ·u(1 − u)), the products with ∂f/∂D and ∂f/∂r.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Vjp512(n: int, h2inv: float, d: float, r: float, p: float[], lam: float[], out: float[]) =
        let vc, vh, vr, one, two =
            Vector512.Create(d * h2inv),
            Vector512.Create h2inv,
            Vector512.Create r,
            Vector512.Create 1.0,
            Vector512.Create 2.0

        let mutable gd = Vector512<float>.Zero
        let mutable gr = Vector512<float>.Zero
        let mutable i = 1

        while i + 8 <= n + 1 do
            let l = load8 lam (i)
            let ll = load8 lam (i - 1)
            let lr = load8 lam (i + 1)
            let u = load8 p (i)
            let ul = load8 p (i - 1)
            let ur = load8 p (i + 1)
            let v = vc * (ll - two * l + lr) + vr * (one - two * u) * l
            v.CopyTo(Span(out, i, 8))
            gd <- gd + l * (ul - two * u + ur) * vh
            gr <- gr + l * u * (one - u)
            i <- i + 8

        let mutable sd = Vector512.Sum gd
        let mutable sr = Vector512.Sum gr

        while i <= n do
            out[i] <-
                d * h2inv * (lam[i - 1] - 2.0 * lam[i] + lam[i + 1])
                + r * (1.0 - 2.0 * p[i]) * lam[i]

            sd <- sd + lam[i] * (p[i - 1] - 2.0 * p[i] + p[i + 1]) * h2inv
            sr <- sr + lam[i] * p[i] * (1.0 - p[i])
            i <- i + 1

        struct (sd, sr)

    /// `Vjp512` with 4 lanes.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Vjp256(n: int, h2inv: float, d: float, r: float, p: float[], lam: float[], out: float[]) =
        let vc, vh, vr, one, two =
            Vector256.Create(d * h2inv),
            Vector256.Create h2inv,
            Vector256.Create r,
            Vector256.Create 1.0,
            Vector256.Create 2.0

        let mutable gd = Vector256<float>.Zero
        let mutable gr = Vector256<float>.Zero
        let mutable i = 1

        while i + 4 <= n + 1 do
            let l = load4 lam (i)
            let ll = load4 lam (i - 1)
            let lr = load4 lam (i + 1)
            let u = load4 p (i)
            let ul = load4 p (i - 1)
            let ur = load4 p (i + 1)
            let v = vc * (ll - two * l + lr) + vr * (one - two * u) * l
            v.CopyTo(Span(out, i, 4))
            gd <- gd + l * (ul - two * u + ur) * vh
            gr <- gr + l * u * (one - u)
            i <- i + 4

        let mutable sd = Vector256.Sum gd
        let mutable sr = Vector256.Sum gr

        while i <= n do
            out[i] <-
                d * h2inv * (lam[i - 1] - 2.0 * lam[i] + lam[i + 1])
                + r * (1.0 - 2.0 * p[i]) * lam[i]

            sd <- sd + lam[i] * (p[i - 1] - 2.0 * p[i] + p[i + 1]) * h2inv
            sr <- sr + lam[i] * p[i] * (1.0 - p[i])
            i <- i + 1

        struct (sd, sr)

    /// y[1..n] ← x[1..n] + a·z[1..n] (4 lanes: memory-bound, the width matters little).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Axpy(n: int, x: float[], a: float, z: float[], y: float[]) =
        let va = Vector256.Create a
        let mutable i = 1

        while i + 4 <= n + 1 do
            (load4 x (i) + va * load4 z (i)).CopyTo(Span(y, i, 4))

            i <- i + 4

        while i <= n do
            y[i] <- x[i] + a * z[i]
            i <- i + 1

    /// y[1..n] ← a·x[1..n].
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member Scale(n: int, a: float, x: float[], y: float[]) =
        let va = Vector256.Create a
        let mutable i = 1

        while i + 4 <= n + 1 do
            (va * load4 x (i)).CopyTo(Span(y, i, 4))
            i <- i + 4

        while i <= n do
            y[i] <- a * x[i]
            i <- i + 1

/// Whether the reference runs 8 lanes (Vector512 accelerated) rather than 4.
let wide = Vector512.IsHardwareAccelerated

/// The vector width in use, for the bench's notes.
let describe () =
    if wide then
        "Vector512 (8 float64 lanes)"
    else
        "Vector256 (4 float64 lanes)"

/// Runs `steps` RK4 steps of 1-D Fisher–KPP on n cells of the unit interval from u0 (parameters d, r), then the
/// adjoint of L = Σ u_T²; returns (L, ∂L/∂D, ∂L/∂r). Keeps every state (n = 256, 1,000 steps: 2 MB).
let lossAndGradient (n: int) (d: float) (r: float) (dt: float) (steps: int) (u0: float[]) =
    let h2inv = float n * float n
    let c = d * h2inv
    let padded () = Array.zeroCreate<float> (n + 2)

    let ghosts (p: float[]) =
        p[0] <- p[1]
        p[n + 1] <- p[n]

    let rhs (p: float[]) (k: float[]) =
        ghosts p

        if wide then
            Loops.Rhs512(n, c, r, p, k)
        else
            Loops.Rhs256(n, c, r, p, k)

    let vjp (p: float[]) (lam: float[]) (out: float[]) =
        ghosts p
        ghosts lam

        if wide then
            Loops.Vjp512(n, h2inv, d, r, p, lam, out)
        else
            Loops.Vjp256(n, h2inv, d, r, p, lam, out)

    let states = Array.init (steps + 1) (fun _ -> padded ())
    Array.blit u0 0 states[0] 1 n
    let k = Array.init 4 (fun _ -> padded ())
    let s = Array.init 4 (fun _ -> padded ())
    let a = [| 0.0; 0.5; 0.5; 1.0 |]
    let b = [| 1.0 / 6.0; 1.0 / 3.0; 1.0 / 3.0; 1.0 / 6.0 |]

    /// Stage inputs s[0..3] and slopes k[0..2] (and k[3] when `last`).
    let stages (u: float[]) (last: bool) =
        Array.blit u 1 s[0] 1 n
        rhs s[0] k[0]

        for i in 1..3 do
            Loops.Axpy(n, u, dt * a[i], k[i - 1], s[i])

            if i < 3 || last then
                rhs s[i] k[i]

    for step in 0 .. steps - 1 do
        let u = states[step]
        stages u true
        let next = states[step + 1]
        Loops.Axpy(n, u, dt * b[0], k[0], next)

        for i in 1..3 do
            Loops.Axpy(n, next, dt * b[i], k[i], next)

    let final = states[steps]
    let mutable loss = 0.0

    for i in 1..n do
        loss <- loss + final[i] * final[i]

    let lam = padded ()

    for i in 1..n do
        lam[i] <- 2.0 * final[i]

    let sbar = Array.init 4 (fun _ -> padded ())
    let kbar = padded ()
    let mutable gd = 0.0
    let mutable gr = 0.0

    for step in steps - 1 .. -1 .. 0 do
        stages states[step] false

        for i in 3..-1..0 do
            // k̄ = Δt·bᵢ·λ + Δt·a₍ᵢ₊₁₎·s̄ᵢ₊₁ (the slope kᵢ feeds the step and the next stage's input).
            Loops.Scale(n, dt * b[i], lam, kbar)

            if i < 3 then
                Loops.Axpy(n, kbar, dt * a[i + 1], sbar[i + 1], kbar)

            let struct (pd, pr) = vjp s[i] kbar sbar[i]
            gd <- gd + pd
            gr <- gr + pr

        for i in 0..3 do
            Loops.Axpy(n, lam, 1.0, sbar[i], lam)

    loss, gd, gr
