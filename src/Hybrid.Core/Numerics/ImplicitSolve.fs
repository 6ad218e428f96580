namespace Hybrid.Numerics

open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// The stiff (linear diffusion) part u ↦ L u + b of one field's equation, with the solves of (I − c L) x = r that the
/// IMEX schemes need (c = γh), in the form that fits the grid.
type internal ImplicitOperator = {
    /// How the systems are solved, in words (for messages and tests): "banded", "conjugate gradients" or "dense".
    Method: string
    /// L u + b for a field u [B; spatial…] (differentiable).
    Apply: torch.Tensor -> torch.Tensor
    /// The affine part b = L 0, shaped [1; spatial…].
    Affine: torch.Tensor
    /// x with (I − c L) x = r for r [B; spatial…] (differentiable in r and in whatever L depends on).
    Solve: float -> torch.Tensor -> torch.Tensor
}

/// Choosing and building the solves of the implicit diffusion (I − cL) x = r for a grid:
/// - 1-D grids: L has the three-point stencil (cyclic with periodic boundaries), so I − cL is (cyclic) tridiagonal:
///   an O(N) banded solve (`Tridiagonal`), differentiated by the adjoint solve (`StencilSolve`);
/// - 2-D grids: the five-point stencil, matrix-free preconditioned conjugate gradients when L is symmetric (constant
///   or face-averaged diffusivities under periodic, Dirichlet and Neumann walls; then −L is positive semi-definite
///   for a positive diffusivity and I − cL positive definite), differentiated by the adjoint solve; a non-symmetric L
///   (a coefficient that varies in space multiplying Δu, c(x)Δu) falls back to the dense solve;
/// - the dense solve: the matrix assembled by applying L to the identity, one inverse per distinct c, up to
///   `maxDense` unknowns (beyond that an operator that fits neither stencil is refused).
/// The stencils are found by probing L (`StencilMatrix.probe`) and checked on a random field, so an operator with
/// another structure never takes a wrong solve.
[<RequireQualifiedAccess>]
module internal ImplicitSolve =

    /// The largest number of unknowns per field for which the dense matrix is assembled.
    let maxDense = 4096

    /// The relative residual (2-norm) at which conjugate gradients stop in the fixed-step IMEX schemes' solves in
    /// float64, on both back ends: tight, so that their results agree with the exact solve, and with each other, to
    /// round-off (1e-5 in float32).
    let fixedStepTolerance = 1e-13

    /// Assembles the matrix of an affine operator L(u) = A u + b on fields of shape [·; spatial…] by applying it to
    /// the identity (rows of the result are A eᵢ, i.e. the result is Aᵀ) and to zero. Returns (Aᵀ [N; N], b [1; N]).
    let assemble
        (l: torch.Tensor -> torch.Tensor)
        (spatialShape: int64[])
        (dtype: torch.ScalarType)
        (device: torch.Device)
        =
        let n = spatialShape |> Array.fold (*) 1L

        let eye =
            torch.eye(n, dtype = dtype, device = device).reshape (Array.append [| n |] spatialShape)

        let zero =
            torch.zeros (Array.append [| 1L |] spatialShape, dtype = dtype, device = device)

        let b = (l zero).reshape ([| 1L; n |])
        let at = (l eye).reshape ([| n; n |]) - b
        at, b

    /// The dense solve: (I − cAᵀ)⁻¹ per distinct c (kept for the fixed-step schemes' few step sizes, the latest
    /// one only otherwise).
    let private dense (l: torch.Tensor -> torch.Tensor) (like: torch.Tensor) (keepAll: bool) : ImplicitOperator =
        let spatial = like.shape[1..]
        let n = spatial |> Array.fold (*) 1L

        if n > int64 maxDense then
            raise (
                ModelException(
                    $"The implicit diffusion solve would assemble a dense {n}×{n} matrix, above the limit of {maxDense} unknowns per field, because its operator fits neither the banded (1-D) nor the conjugate-gradient (2-D, symmetric) solve. Use an explicit scheme (Rk4, Dopri5), a coarser grid, or a diffusion term whose operator is symmetric (e.g. ∇·(k∇u) instead of k·Δu with k varying in space)."
                )
            )

        let at, b = assemble l spatial like.dtype like.device
        let eye = torch.eye (n, dtype = like.dtype, device = like.device)
        let inverses = Dictionary<float, torch.Tensor>()

        {
            Method = "dense"
            Apply = l
            Affine = b.reshape (Array.append [| 1L |] spatial)
            Solve =
                fun c r ->
                    let inverse =
                        match inverses.TryGetValue c with
                        | true, inv -> inv
                        | _ ->
                            if not keepAll then
                                for old in inverses.Values do
                                    old.Dispose()

                                inverses.Clear()

                            // Owned by the cache, not by the scope of the step that first needs it.
                            let inv = torch.linalg.inv(eye - c .* at).DetachFromDisposeScope()
                            inverses[c] <- inv
                            inv

                    r.reshape([| r.shape[0]; -1L |]).matmul(inverse).reshape r.shape
        }

    /// The solve on a stencil layout m with solver `solver`: A = I − cL entry-wise.
    let private onStencil
        (name: string)
        (l: torch.Tensor -> torch.Tensor)
        (like: torch.Tensor)
        (m: StencilMatrix)
        (solver: StencilSolver)
        : ImplicitOperator =
        let spatial = like.shape[1..]
        let k = m.Columns.shape[1]

        let identity =
            withScalar 1.0 (fun one ->
                torch
                    .zeros([| int64 m.Size; k |], dtype = like.dtype, device = like.device)
                    .index_fill_ (1L, torch.tensor ([| 0L |], device = like.device), one))

        let zero =
            torch.zeros (Array.append [| 1L |] spatial, dtype = like.dtype, device = like.device)

        {
            Method = name
            Apply = l
            Affine = l zero
            Solve =
                fun c r ->
                    let a = identity - c .* m.Values

                    (StencilSolve.solve solver a (r.reshape ([| r.shape[0]; int64 m.Size |]))).reshape r.shape
        }

    /// The implicit operator of the affine stiff part `l` on fields shaped like `like` ([B; spatial…]). `cgTolerance`:
    /// the relative residual at which conjugate gradients stop. `preferDense`: take the dense solve up to `maxDense`
    /// unknowns even where a stencil solve applies (the fixed-step IMEX schemes, whose few step sizes make one
    /// inverse each the cheapest; keeps their results as before).
    let create
        (l: torch.Tensor -> torch.Tensor)
        (like: torch.Tensor)
        (cgTolerance: float)
        (preferDense: bool)
        : ImplicitOperator =
        let n = like.shape[1..] |> Array.fold (*) 1L
        let denseFits = n <= int64 maxDense

        if preferDense && denseFits then
            dense l like preferDense
        else
            match StencilMatrix.probe l like with
            | Some m when m.Opposite.Length = 3 ->
                let solver = StencilSolve.banded m

                let dominant =
                    use _ = torch.no_grad ()
                    // I − cL stays dominant for every c > 0 when L's off-diagonal entries are ≥ 0 and its rows sum to ≤ 0.
                    let v = m.Values.detach ()
                    let off = v.narrow (1L, 1L, 2L)

                    off.min().ToDouble() >= 0.0
                    && v.sum(1L).max().ToDouble() <= 1e-12 * v.abs().max().ToDouble()

                if dominant then
                    onStencil "banded" l like m solver
                elif denseFits then
                    dense l like preferDense
                else
                    raise (
                        ModelException(
                            $"The implicit diffusion on this 1-D grid ({n} cells) has a negative diffusivity somewhere (I − γhL is not diagonally dominant), so neither the banded solve nor (above {maxDense} cells) the dense one applies. Give the diffusion a positive coefficient, or integrate it explicitly."
                        )
                    )
            | Some m when StencilMatrix.isSymmetric m ->
                onStencil
                    "conjugate gradients"
                    l
                    like
                    m
                    (StencilSolve.conjugateGradient StencilSolve.implicitDiffusion m cgTolerance)
            | _ -> dense l like preferDense
