namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Solves of `BlockStencil` systems A x = r (one matrix per trajectory, A's blocks a [B; Cells; K; n; n], r
/// [B; Cells; n]) as `StencilSolver`s, so `StencilSolve.solve` differentiates them by the adjoint solve:
/// - 1-D grids: the block (cyclic) tridiagonal solve (`BlockTridiagonal`), on the CPU in float64, O(N n³);
/// - 2-D grids: BiCGSTAB (van der Vorst 1992; Barrett et al., Templates, §2.3.8) with the block Jacobi
///   preconditioner (each cell's n×n diagonal block inverted), matrix-free and batched over the trajectories.
[<RequireQualifiedAccess>]
module internal BlockStencilSolve =

    let private toArray (t: torch.Tensor) : float[] =
        t.detach().cpu().to_type(torch.ScalarType.Float64).contiguous().data<float>().ToArray()

    /// ∂ℓ/∂a = −λxᵀ at the blocks of layout m, per trajectory.
    let private blockGradient (m: BlockStencil) (lambda: torch.Tensor) (x: torch.Tensor) =
        let k = m.Columns.shape[1]
        let n = int64 m.Fields

        let gathered =
            x.index_select(1L, m.Columns.reshape (-1L)).reshape ([| x.shape[0]; int64 m.Cells; k; 1L; n |])

        -(lambda.reshape ([| x.shape[0]; int64 m.Cells; 1L; n; 1L |]) * gathered)

    /// The largest relative residual ‖A x − r‖∞ / ‖r‖∞ over the trajectories.
    let residual (m: BlockStencil) (a: torch.Tensor) (x: torch.Tensor) (r: torch.Tensor) : float =
        use _ = torch.no_grad ()
        let res = BlockStencil.apply { m with Values = a } x - r
        let norm (v: torch.Tensor) = v.abs().amax ([| 1L; 2L |])
        (norm res / withScalar 1e-300 (fun s -> (norm r).clamp_min s)).max().ToDouble()

    /// The solver of a 1-D layout (blocks ordered itself, +x, −x): one block cyclic tridiagonal solve per
    /// trajectory. `checked`: raises when the residual exceeds 1e-8 (float64; 1e-3 in float32) of the right-hand
    /// side, which elimination without pivoting across blocks could give on a matrix far from block diagonal
    /// dominance (a preconditioner, whose inaccuracy costs iterations only, goes without).
    let bandedWith (``checked``: bool) (layout: BlockStencil) : StencilSolver =
        let run (a: torch.Tensor) (r: torch.Tensor) =
            let n = layout.Fields
            let cells = layout.Cells
            let batch = int r.shape[0]
            let entries = toArray a
            let rhs = toArray r
            let size = n * n

            let solveOne (b: int) =
                let block (i: int) (k: int) =
                    let start = ((b * cells + i) * 3 + k) * size
                    entries[start .. start + size - 1]

                BlockTridiagonal.solve
                    n
                    (Array.init cells (fun i -> block i 2))
                    (Array.init cells (fun i -> block i 0))
                    (Array.init cells (fun i -> block i 1))
                    (Array.init cells (fun i -> rhs[(b * cells + i) * n .. (b * cells + i + 1) * n - 1]))
                |> Array.concat

            let x =
                torch
                    .tensor(Array.init batch solveOne |> Array.concat, dtype = torch.ScalarType.Float64)
                    .reshape(r.shape)
                    .to_type(r.dtype)
                    .``to``
                    r.device

            if ``checked`` then
                let limit = if r.dtype = torch.ScalarType.Float64 then 1e-8 else 1e-3
                let achieved = residual layout a x r

                if not (achieved <= limit) then
                    raise (
                        HybridException(
                            $"The block tridiagonal solve of Rodas4's linear system left a relative residual of {achieved:G3} (above {limit:G1}): the matrix 1/(γh) I − J is far from block diagonally dominant here (a strongly unstable reaction?). Use Scheme.Dopri5 or a smaller Tolerance."
                        )
                    )

            x

        {
            Forward = run
            Transposed = fun a g -> run (BlockStencil.transposedValues { layout with Values = a }) g
            Gradient = blockGradient layout
        }

    /// `bandedWith` its residual checked: Rodas4's solves.
    let banded = bandedWith true

    /// BiCGSTAB with the block Jacobi preconditioner, batched over the trajectories (each with its own matrix):
    /// stops when every residual is at most `tolerance` times its right-hand side (2-norm); a trajectory that has
    /// converged is left as it is. Raises after 2·Cells·n + 100 iterations or on a breakdown (r̂ᵀv = 0).
    let biCgStab (layout: BlockStencil) (tolerance: float) : StencilSolver =
        let run (a: torch.Tensor) (b: torch.Tensor) =
            use _ = torch.no_grad ()
            let m = { layout with Values = a }
            let preconditioner = torch.linalg.inv (a.select (2L, 0L))

            let precondition (v: torch.Tensor) =
                preconditioner.matmul(v.unsqueeze -1L).squeeze -1L

            let dot (x: torch.Tensor) (y: torch.Tensor) = (x * y).sum ([| 1L; 2L |])
            let norms (v: torch.Tensor) = (dot v v).sqrt ()
            let target = withScalar 1e-300 (fun s -> (tolerance .* norms b).clamp_min s)
            // Per-trajectory scalars as [B; 1; 1] to scale [B; Cells; n].
            let column (s: torch.Tensor) = s.reshape ([| -1L; 1L; 1L |])

            let zeroAsOne (s: torch.Tensor) =
                torch.where (s.eq (torch.zeros_like s), torch.ones_like s, s)

            let mutable x = precondition b
            let mutable r = b - BlockStencil.apply m x
            let shadow = r.clone ()
            let mutable rhoOld = torch.ones_like (norms b)
            let mutable alpha = torch.ones_like rhoOld
            let mutable omega = torch.ones_like rhoOld
            let mutable v = torch.zeros_like b
            let mutable p = torch.zeros_like b
            let mutable iterations = 0
            let limit = 2 * layout.Cells * layout.Fields + 100
            let active () = norms(r).gt target

            while active().any().ToBoolean() do
                if iterations >= limit then
                    raise (
                        HybridException(
                            $"BiCGSTAB did not reach the relative residual {tolerance:G3} in {limit} iterations on {layout.Cells * layout.Fields} unknowns (Rodas4's linear system on a 2-D grid). Loosen the Tolerance, or use Scheme.Dopri5."
                        )
                    )

                let live = column (active ())
                let rho = dot shadow r
                let beta = (rho / zeroAsOne rhoOld) * (alpha / zeroAsOne omega)
                p <- r .+ column beta * (p - column omega * v)
                let pHat = precondition p
                v <- BlockStencil.apply m pHat
                let curvature = dot shadow v

                if (curvature.eq(torch.zeros_like curvature).logical_and (live.reshape (-1L))).any().ToBoolean() then
                    raise (
                        HybridException(
                            "BiCGSTAB broke down (r̂ᵀv = 0) on Rodas4's linear system on a 2-D grid. Use Scheme.Dopri5, or a smaller first step."
                        )
                    )

                alpha <- rho / zeroAsOne curvature
                let s = r - column alpha * v
                let sHat = precondition s
                let t = BlockStencil.apply m sHat
                omega <- dot t s / zeroAsOne (dot t t)
                let update = column alpha * pHat .+ column omega * sHat
                x <- torch.where (live, x .+ update, x)
                r <- torch.where (live, s - column omega * t, r)
                rhoOld <- rho
                iterations <- iterations + 1

            x

        {
            Forward = run
            Transposed = fun a g -> run (BlockStencil.transposedValues { layout with Values = a }) g
            Gradient = blockGradient layout
        }
