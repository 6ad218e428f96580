namespace Hybrid.Numerics

open System
open System.Numerics
open TorchSharp
open Hybrid.TensorArithmetic

/// The worst mode of a system's local coupling, as `CouplingProbe.worst` measured it at the start of a rollout.
type internal CoupledMode = {
    /// The fields coupled (one shape, in state order).
    Fields: string[]
    /// The eigenvalue λ of the local Jacobian ∂F/∂u whose steps are amplified most beyond the true solution's.
    Lambda: Complex
    /// The largest entries ∂(∂uᵢ/∂t)/∂uⱼ of that Jacobian at the same cell, largest first: (i's field, j's field,
    /// value); off-diagonal entries (the coupling) before diagonal ones.
    Entries: (string * string * float)[]
}

/// A one-step probe of the explicit tendency F(θ, t, u) (closures and coupling between fields included, which the
/// term-by-term reaction check cannot see): at every cell, the local Jacobian J[i, j] = ∂Fᵢ/∂uⱼ among fields of
/// one shape, from one spatially uniform finite-difference perturbation per field, and its eigenvalues, each
/// judged by how much a step of the scheme multiplies it (|R(λΔt)|) against how much the true solution grows
/// (e^(Re λΔt)), with the random state (dropout) the same for every evaluation and restored after. A spatially uniform perturbation leaves diffusion and advection of the interior unchanged, so J
/// is the pointwise (reaction and closure) part, plus the uniform mode of lattice couplings. The stiff linear
/// part that IMEX schemes solve implicitly is left out.
[<RequireQualifiedAccess>]
module internal CouplingProbe =

    /// A mode is unstable when a step multiplies it by more than this factor times the true solution's growth.
    let tolerance = 1.05

    /// At most this many fields are coupled in one probe (one evaluation of F per field).
    let maxFields = 16

    /// Step amplification of mode z = λΔt relative to the true solution's growth (> 1 where the scheme adds growth).
    let excess (scheme: Scheme) (z: Complex) : float =
        Integrators.amplification scheme z / max 1.0 (exp z.Real)

    /// The largest step at which mode λ stays within `tolerance` (bisection below `dt`, where it does not).
    let stableDt (scheme: Scheme) (lambda: Complex) (dt: float) : float =
        let mutable good = 0.0
        let mutable bad = dt

        for _ in 1..60 do
            let mid = 0.5 * (good + bad)

            if excess scheme (lambda * Complex(mid, 0.0)) <= tolerance then
                good <- mid
            else
                bad <- mid

        good

    /// |R(z)| / max(1, e^(Re z)) for complex tensors z, element-wise.
    let private excessOf (coefficients: float[]) (z: torch.Tensor) : torch.Tensor =
        let mutable r = torch.zeros_like z

        for c in Array.rev coefficients do
            r <- r .* z .+ c

        use growth = z.real.exp ()
        r.abs () ./ withScalar 1.0 growth.clamp_min

    /// Fields of one shape, in state order, in groups of at most `maxFields`.
    let private groups (u: torch.Tensor[]) : int[][] =
        [| 0 .. u.Length - 1 |]
        |> Array.filter (fun i -> u[i].NumberOfElements > 0L)
        |> Array.groupBy (fun i -> String.Join(",", u[i].shape))
        |> Array.collect (fun (_, members) -> Array.chunkBySize maxFields members)

    /// The worst mode over all groups when some mode of some cell is amplified beyond `tolerance` at step `dt`
    /// (None when none is, or when F cannot be evaluated at the perturbed states: the check is advisory).
    let worst
        (scheme: Scheme)
        (dt: float)
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (t0: float)
        (u: torch.Tensor[])
        : CoupledMode option =
        // Every evaluation starts from the same random state, so that dropout in a closure draws the same mask
        // each time (else the differences would measure the masks, not the Jacobian), and the state is restored
        // afterwards, so that the probe leaves the rollout's random numbers as they were.
        use random = torch.get_rng_state ()

        let explicit (state: torch.Tensor[]) =
            torch.set_rng_state random
            dyn.Explicit theta t0 state

        try
            try
                use _ = torch.no_grad ()
                use _ = torch.NewDisposeScope()
                let coefficients = Integrators.stabilityPolynomial scheme
                let f0 = explicit u

                groups u
                |> Array.choose (fun members ->
                    let n = members.Length

                    // columns[j][i] = (Fᵢ(u + εⱼ eⱼ) − Fᵢ(u)) / εⱼ, flattened over batch and cells.
                    let columns =
                        members
                        |> Array.map (fun j ->
                            let x = u[j]
                            let scale = max 1.0 (x.abs().max().ToDouble())

                            let eps =
                                scale
                                * sqrt (
                                    if x.dtype = torch.ScalarType.Float64 then
                                        2.2e-16
                                    else
                                        1.2e-7
                                )

                            let shifted = Array.init u.Length (fun k -> if k = j then u[k] .+ eps else u[k])
                            let f1 = explicit shifted

                            members |> Array.map (fun i -> ((f1[i] .- f0[i]) ./ eps).reshape [| -1L |]))

                    // J[cell, i, j]
                    let jacobian =
                        torch.stack (
                            Array.init n (fun i -> torch.stack (Array.init n (fun j -> columns[j][i]), dim = -1L)),
                            dim = 1L
                        )

                    let finite = torch.isfinite(jacobian).all(dim = -1L).all (dim = -1L)

                    if not (finite.any().ToBoolean()) then
                        None
                    else
                        let cells = jacobian.index_select (0L, finite.nonzero().squeeze 1L)
                        let lambdas = torch.linalg.eigvals cells
                        let ratio = excessOf coefficients (lambdas .* dt)
                        let flat = ratio.reshape [| -1L |]
                        let index = flat.argmax().ToInt64()
                        let worstRatio = flat[index].ToDouble()

                        if worstRatio <= tolerance then
                            None
                        else
                            let cell = index / int64 n
                            let lambda = lambdas.reshape([| -1L |])[index]
                            let l = Complex(lambda.real.ToDouble(), lambda.imag.ToDouble())
                            let at = cells[cell].to_type(torch.ScalarType.Float64).data<float>().ToArray()
                            let names = members |> Array.map (fun k -> dyn.Fields[k])

                            let entries =
                                [|
                                    for i in 0 .. n - 1 do
                                        for j in 0 .. n - 1 do
                                            if at[i * n + j] <> 0.0 then
                                                yield names[i], names[j], at[i * n + j]
                                |]
                                |> Array.sortBy (fun (a, b, v) -> (if a = b then 1 else 0), -abs v)
                                |> Array.truncate 3

                            Some(
                                worstRatio,
                                {
                                    Fields = names
                                    Lambda = l
                                    Entries = entries
                                }
                            ))
                |> Array.sortBy (fun (r, _) -> -r)
                |> Array.tryHead
                |> Option.map snd
            with _ ->
                None
        finally
            torch.set_rng_state random
