namespace Hybrid.Kernels

open Hybrid

/// Who runs BiCGSTAB on arrays (`BiCgStab.solve`): the system it solves and the fixes, for its failure messages.
type internal BiCgStabCaller = {
    /// The system, after "on" (e.g. "Rodas4's linear system on a 2-D grid").
    System: string
    /// The fix when it does not reach the tolerance in its iteration limit.
    NotConverged: string
    /// The fix when it breaks down (r̂ᵀv = 0).
    BrokeDown: string
}

/// Scratch vectors of the kernels' iterative solves on arrays (`BiCgStab.solve`, `ImplicitStencil`'s conjugate
/// gradients), kept by the stepper that runs them so that a solve allocates nothing: made at the first solve, and
/// again only when a solve needs more of them or another length. For one solve at a time.
[<Sealed>]
type internal SolveVectors() =
    let mutable vectors: float[][] = [||]

    /// At least `count` vectors of `length` entries each, holding whatever the last solve left in them.
    member _.Get(count: int, length: int) =
        if vectors.Length < count || (vectors.Length > 0 && vectors[0].Length <> length) then
            vectors <- Array.init count (fun _ -> Array.zeroCreate<float> length)

        vectors

/// How a BiCGSTAB run ended (`BiCgStab.within`).
type internal BiCgStabEnd =
    /// Every system reached the tolerance.
    | Converged
    /// The iteration limit came first.
    | OutOfIterations
    /// r̂ᵀv = 0 in a system.
    | BrokeDown

/// BiCGSTAB (van der Vorst's, right-preconditioned as `BlockStencilSolve.biCgStab` on the eager back end) on float64
/// arrays, for several independent systems at once whose operator is applied to all of them together: the kernels'
/// block stencils (`BlockStencilArrays`, one system at a time) and Rodas4's matrix-free solves (`RosenbrockStepper`:
/// one system per trajectory, each product of the Jacobian one pass of the tangent plan over the whole batch).
[<RequireQualifiedAccess>]
module internal BiCgStab =

    /// BiCGSTAB on the `systems` systems A x = r of `size` unknowns each (see `solve`) for at most `limit` iterations
    /// (two products each, after one): `Converged` once every system reaches the tolerance, x written over r;
    /// `OutOfIterations` when the limit comes first and `BrokeDown` at a breakdown, r left as it was (`solve` raises
    /// there; Rodas4's solves that can fall back to forming A stop at a budget of products).
    let within
        (scratch: SolveVectors)
        (systems: int)
        (size: int)
        (apply: float[] -> float[] -> unit)
        (precondition: float[] -> float[] -> unit)
        (tolerance: float)
        (limit: int)
        (rhs: float[])
        (offset: int)
        : BiCgStabEnd =
        let dot (x: float[]) (y: float[]) (q: int) =
            let mutable sum = 0.0

            for e in q * size .. (q + 1) * size - 1 do
                sum <- sum + x[e] * y[e]

            sum

        let orOne (s: float) = if s = 0.0 then 1.0 else s
        let w = scratch.Get(10, systems * size)
        let right, x, r, shadow = w[0], w[1], w[2], w[3]
        let v, p, pHat, s, sHat, t = w[4], w[5], w[6], w[7], w[8], w[9]
        Array.blit rhs offset right 0 (systems * size)

        let target =
            Array.init systems (fun q -> max (tolerance * sqrt (dot right right q)) 1e-300)

        precondition right x
        apply x r

        for e in 0 .. systems * size - 1 do
            r[e] <- right[e] - r[e]

        Array.blit r 0 shadow 0 (systems * size)
        // The first iteration reads p and v as zeros.
        System.Array.Clear p
        System.Array.Clear v

        let rhoOld, rho = Array.create systems 1.0, Array.zeroCreate<float> systems
        let alpha, omega = Array.create systems 1.0, Array.create systems 1.0
        let active = Array.init systems (fun q -> sqrt (dot r r q) > target[q])
        let mutable iterations = 0

        let each (update: int -> unit) =
            for q in 0 .. systems - 1 do
                if active[q] then
                    update q

        let mutable brokeDown = false

        while Array.contains true active && iterations < limit && not brokeDown do
            each (fun q ->
                rho[q] <- dot shadow r q
                let beta = (rho[q] / orOne rhoOld[q]) * (alpha[q] / orOne omega[q])

                for e in q * size .. (q + 1) * size - 1 do
                    p[e] <- r[e] + beta * (p[e] - omega[q] * v[e]))

            precondition p pHat
            apply pHat v

            each (fun q ->
                let curvature = dot shadow v q

                if curvature = 0.0 then
                    brokeDown <- true
                else
                    alpha[q] <- rho[q] / curvature

                    for e in q * size .. (q + 1) * size - 1 do
                        s[e] <- r[e] - alpha[q] * v[e])

            if not brokeDown then
                precondition s sHat
                apply sHat t

                each (fun q ->
                    omega[q] <- dot t s q / orOne (dot t t q)

                    for e in q * size .. (q + 1) * size - 1 do
                        x[e] <- x[e] + (alpha[q] * pHat[e] + omega[q] * sHat[e])
                        r[e] <- s[e] - omega[q] * t[e]

                    rhoOld[q] <- rho[q]
                    active[q] <- sqrt (dot r r q) > target[q])

                iterations <- iterations + 1

        if brokeDown then
            BrokeDown
        elif Array.contains true active then
            OutOfIterations
        else
            Array.blit x 0 rhs offset (systems * size)
            Converged

    /// Solves the `systems` systems A x = r of `size` unknowns each, r the `systems`·`size` entries of `rhs` from
    /// `offset` (system q's from offset + q·size), x written over them: each system to ‖A x − r‖ ≤ tolerance·‖r‖
    /// (2-norm) with its own iteration scalars; once there, it keeps its x while the others go on. `apply x y` writes
    /// y = A x and `precondition x y` y = M⁻¹x, both for all the systems (vectors of systems·size entries, system q's
    /// from q·size). Its failures (2·size + 100 iterations, or a breakdown) name `caller`'s system and fixes; its ten
    /// vectors are `scratch`'s. For one system it takes the same steps, in the same order, as a loop written for one.
    /// A residual that is not finite (an overflow in the system) passes no stopping test and ends that system's
    /// iteration with x as it stands, as the eager back end's loop does: the Rosenbrock step that used it gets a
    /// non-finite error norm, and is rejected.
    let solve
        (caller: BiCgStabCaller)
        (scratch: SolveVectors)
        (systems: int)
        (size: int)
        (apply: float[] -> float[] -> unit)
        (precondition: float[] -> float[] -> unit)
        (tolerance: float)
        (rhs: float[])
        (offset: int)
        =
        let limit = 2 * size + 100

        match within scratch systems size apply precondition tolerance limit rhs offset with
        | Converged -> ()
        | OutOfIterations ->
            raise (
                HybridException(
                    $"BiCGSTAB did not reach the relative residual {tolerance:G3} in {limit} iterations on {size} unknowns ({caller.System}). {caller.NotConverged}"
                )
            )
        | BrokeDown -> raise (HybridException($"BiCGSTAB broke down (r̂ᵀv = 0) on {caller.System}. {caller.BrokeDown}"))
