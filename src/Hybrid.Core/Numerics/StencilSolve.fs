namespace Hybrid.Numerics

open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// How the systems A x = r of one stencil layout are solved, without a graph: `Forward a r` with A's entries a (a
/// `StencilMatrix`'s [N; K], or a `BlockStencil`'s [B; N; K; n; n]) and right-hand sides r ([B; N], or [B; N; n]);
/// `Transposed a g` solves Aᵀ λ = g (the adjoint solve of the backward pass); `Gradient λ x` is ∂ℓ/∂a, the entries
/// of −λxᵀ that the layout stores.
type internal StencilSolver = {
    /// Solves A x = r.
    Forward: torch.Tensor -> torch.Tensor -> torch.Tensor
    /// Solves Aᵀ λ = g.
    Transposed: torch.Tensor -> torch.Tensor -> torch.Tensor
    /// ∂ℓ/∂a from the adjoint solution λ and the solution x.
    Gradient: torch.Tensor -> torch.Tensor -> torch.Tensor
}

/// Who runs conjugate gradients: the ends of its failure messages (the system being solved and the fix), and its
/// iteration cap.
type internal CgCaller = {
    /// Follows "Conjugate gradients did not reach the relative residual r in n iterations on N unknowns".
    NotConverged: string
    /// Follows "Conjugate gradients met pᵀAp ≤ 0".
    NotPositive: string
    /// The iterations before it gives up (None: 2N + 100 for N unknowns).
    MaxIterations: int option
}

/// Solves of stencil systems: the cyclic tridiagonal (banded) solve of 1-D grids, preconditioned conjugate
/// gradients on 2-D grids, and the autograd function that differentiates either by the adjoint solve:
/// x = A⁻¹r gives ∂ℓ/∂r = λ and ∂ℓ/∂A[i, j] = −λᵢxⱼ with Aᵀλ = ∂ℓ/∂x (so gradients reach whatever A's entries depend
/// on, e.g. a diffusivity, through autograd of the probing that assembled them).
[<RequireQualifiedAccess>]
module internal StencilSolve =

    let private toArray (t: torch.Tensor) : float[] =
        t.detach().cpu().to_type(torch.ScalarType.Float64).contiguous().data<float>().ToArray()

    let private ofArray (like: torch.Tensor) (shape: int64[]) (values: float[]) =
        torch.tensor(values, dtype = torch.ScalarType.Float64).reshape(shape).to_type(like.dtype).``to`` like.device

    /// ∂ℓ/∂a = −λxᵀ at the entries of layout m (a [N; K] shared by the right-hand sides, so summed over them).
    let private entryGradient (m: StencilMatrix) (lambda: torch.Tensor) (x: torch.Tensor) =
        let k = m.Columns.shape[1]

        let gathered =
            x.index_select(1L, m.Columns.reshape (-1L)).reshape ([| x.shape[0]; int64 m.Size; k |])

        -((lambda.unsqueeze 2L * gathered).sum (0L))

    /// The banded solver of a 1-D layout (entries ordered itself, +x, −x): one cyclic tridiagonal solve per
    /// right-hand side (`Tridiagonal.solve`), on the CPU in float64.
    let banded (layout: StencilMatrix) : StencilSolver =
        let run (a: torch.Tensor) (r: torch.Tensor) =
            let n = layout.Size
            let entries = toArray a
            let diagonal = Array.init n (fun i -> entries[3 * i])
            let upper = Array.init n (fun i -> entries[3 * i + 1])
            let lower = Array.init n (fun i -> entries[3 * i + 2])
            let rhs = toArray r
            let batch = int r.shape[0]

            let x =
                Array.init batch (fun b -> Tridiagonal.solve lower diagonal upper rhs[b * n .. (b + 1) * n - 1])
                |> Array.concat

            ofArray r r.shape x

        let transposedOf (a: torch.Tensor) =
            StencilMatrix.transposedValues { layout with Values = a }

        {
            Forward = run
            Transposed = fun a g -> run (transposedOf a) g
            Gradient = entryGradient layout
        }

    /// The failure messages of the implicit diffusion's solves (I − γhL) x = r.
    let implicitDiffusion: CgCaller = {
        NotConverged =
            ". The implicit diffusion operator may not be symmetric negative semi-definite; use Backend.Eager with a smaller grid (dense solve) or an explicit scheme."
        NotPositive =
            ": the matrix I − γhL of the implicit diffusion is not positive definite, so the diffusivity is negative somewhere. Give the diffusion a positive coefficient, or integrate it explicitly (compile without ImplicitDiffusion)."
        MaxIterations = None
    }

    /// Conjugate gradients with the Jacobi preconditioner for a symmetric positive definite A, batched over the
    /// right-hand sides: stops when every residual is at most `tolerance` times its right-hand side (2-norm).
    /// Raises, with `caller`'s words, when A turns out not positive definite (pᵀAp ≤ 0) or after
    /// `caller.MaxIterations` (default 2N + 100) iterations.
    let conjugateGradient (caller: CgCaller) (layout: StencilMatrix) (tolerance: float) : StencilSolver =
        let run (a: torch.Tensor) (b: torch.Tensor) =
            use _ = torch.no_grad ()
            let m = { layout with Values = a }
            let inverseDiagonal = a.select(1L, 0L).reciprocal().unsqueeze 0L
            let norms (v: torch.Tensor) = (square v).sum(1L).sqrt ()
            let target = withScalar 1e-300 (fun s -> (tolerance .* norms b).clamp_min s)
            let mutable x = b.clone ()
            let mutable r = b - StencilMatrix.apply m x
            let mutable z = r * inverseDiagonal
            let mutable p = z.clone ()
            let mutable rz = (r * z).sum (1L)
            let mutable iterations = 0
            let limit = defaultArg caller.MaxIterations (2 * layout.Size + 100)

            let converged () =
                (norms r - target).max().ToDouble() <= 0.0

            while not (converged ()) do
                if iterations >= limit then
                    raise (
                        HybridException(
                            $"Conjugate gradients did not reach the relative residual {tolerance:G3} in {limit} iterations on {layout.Size} unknowns{caller.NotConverged}"
                        )
                    )

                let ap = StencilMatrix.apply m p
                let curvature = (p * ap).sum (1L)

                if curvature.min().ToDouble() <= 0.0 then
                    raise (HybridException("Conjugate gradients met pᵀAp ≤ 0" + caller.NotPositive))

                let alpha = (rz / curvature).unsqueeze 1L
                x <- x .+ alpha * p
                r <- r - alpha * ap
                z <- r * inverseDiagonal
                let next = (r * z).sum (1L)
                p <- z .+ (next / rz).unsqueeze 1L * p
                rz <- next
                iterations <- iterations + 1

            x

        {
            Forward = run
            Transposed = fun a g -> run (StencilMatrix.transposedValues { layout with Values = a }) g
            Gradient = entryGradient layout
        }

    /// The autograd function x = A⁻¹ r: inputs (solver, entries a [N; K], right-hand sides r [B; N]).
    type private Solve() =
        inherit torch.autograd.MultiTensorFunction<Solve>()

        override _.Name = "HybridStencilSolve"

        override _.forward(ctx: torch.autograd.AutogradContext, vars: obj[]) =
            let solver = vars[0] :?> StencilSolver
            let a = vars[1] :?> torch.Tensor
            let r = vars[2] :?> torch.Tensor
            let x = solver.Forward (a.detach ()) (r.detach ())
            ctx.save_for_backward (List<torch.Tensor>([| a.detach (); x |]))
            ctx.save_data ("solver", box solver)
            List<torch.Tensor>([| x |])

        override _.backward(ctx: torch.autograd.AutogradContext, grads: List<torch.Tensor>) =
            let solver = ctx.get_data "solver" :?> StencilSolver
            let saved = ctx.get_saved_variables () |> Array.ofSeq
            let a, x = saved[0], saved[1]
            use _ = torch.no_grad ()
            let lambda = solver.Transposed a grads[0]
            List<torch.Tensor>([| null; solver.Gradient lambda x; lambda |])

    /// x with A x = r (A's entries a in `solver`'s layout), differentiable in a and r.
    let solve (solver: StencilSolver) (a: torch.Tensor) (r: torch.Tensor) : torch.Tensor =
        (Solve.apply [| box solver; box a; box r |]).[0]
