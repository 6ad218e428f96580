namespace Hybrid.Numerics

open System
open TorchSharp
open Hybrid

/// How the stiff schemes lay out a state for their linear solves: per trajectory, `Cells` independent groups of
/// `Size` unknowns each (pointwise systems: one group per cell of the n fields; otherwise one group of all
/// unknowns).
type internal StateLayout = {
    /// Independent groups per trajectory (cells of a pointwise system, 1 otherwise).
    Cells: int64
    /// Unknowns per group (fields of a pointwise system, all unknowns otherwise).
    Size: int64
    /// True when each group is one cell's values of every field.
    Pointwise: bool
}

/// The exact Jacobian ∂F/∂u of a system's full tendency F (stiff part included), as the stiff schemes use it:
/// in closed form where `Dynamics.Jacobian` gives blocks, otherwise by autograd (exact up to round-off, not
/// finite differences). Trajectories of a batch are independent: each has its own Jacobian.
[<RequireQualifiedAccess>]
module internal Jacobian =

    /// The most unknowns per trajectory for which a dense Jacobian is assembled (a system that couples cells).
    let maxDense = 1000

    /// The layout of state `u` for system `dyn`: per cell when the system is pointwise and every field has the
    /// same cells; dense otherwise, refused (with the counts and the fixes) above `maxDense` unknowns (Rodas4 asks
    /// only when its grid solves do not apply, see `Rosenbrock.solveName`).
    let layout (scheme: string) (dyn: Dynamics) (u: torch.Tensor[]) : StateLayout =
        let batch =
            if u.Length = 0 || u[0].dim () = 0L then
                1L
            else
                u[0].shape[0]

        let perField = u |> Array.map (fun x -> x.NumberOfElements / max 1L batch)

        let sameCells =
            perField.Length > 0 && perField |> Array.forall (fun n -> n = perField[0])

        match dyn.Jacobian with
        | JacobianForm.Pointwise
        | JacobianForm.Blocks _ when sameCells -> {
            Cells = perField[0]
            Size = int64 u.Length
            Pointwise = true
          }
        | _ ->
            let total = Array.sum perField

            if total > int64 maxDense then
                let fields = String.Join(", ", dyn.Fields)

                raise (
                    HybridException(
                        $"{scheme} needs the Jacobian of the system, and this one couples cells beyond the nearest-neighbour stencils of its grid solves (a wider stencil, a closure over the grid, fields on different cells, or a grid that is not 1-D or 2-D with at least 3 cells per axis), so it is dense: {total} unknowns per trajectory (fields {fields}), above the limit of {maxDense}. {scheme} supports pointwise systems of any size (reactions, ODEs: one small block per cell), nearest-neighbour stencils on 1-D and 2-D grids of any size (block tridiagonal and BiCGSTAB solves), and other coupled systems up to {maxDense} unknowns. For a model compiled from the DSL, the generated kernels (Backend.Auto, the default, on the CPU in float64) run {scheme} on 1-D and 2-D grids with stencils of any width and on lattices, at any size, and solve the systems that couple every cell (closures over whole fields, diagnostic fields, short grids) matrix-free above this limit (Simulator.BackendFor says which back end a rollout takes and why). Otherwise use a coarser grid, Scheme.Dopri5, or Scheme.KenCarp4 for stiff linear diffusion."
                    )
                )

            {
                Cells = 1L
                Size = total
                Pointwise = false
            }

    /// The fields of a state as one tensor [B; Cells; Size].
    let pack (l: StateLayout) (xs: torch.Tensor[]) : torch.Tensor =
        let batch = xs[0].shape[0]

        if l.Pointwise then
            torch.stack (xs |> Array.map (fun x -> x.reshape ([| batch; l.Cells |])), -1L)
        else
            torch.cat(xs |> Array.map (fun x -> x.reshape ([| batch; -1L |])), 1L).unsqueeze 1L

    /// A packed tensor [B; Cells; Size] as fields shaped like `like`.
    let unpack (l: StateLayout) (like: torch.Tensor[]) (v: torch.Tensor) : torch.Tensor[] =
        if l.Pointwise then
            like |> Array.mapi (fun i x -> v.select(-1L, int64 i).reshape x.shape)
        else
            let flat = v.squeeze 1L
            let mutable offset = 0L

            like
            |> Array.map (fun x ->
                let n = x.NumberOfElements / x.shape[0]
                let part = flat.narrow(1L, offset, n).reshape x.shape
                offset <- offset + n
                part)

    /// ∂F/∂u at (t, u) by autograd, as [B; Cells; Size; Size] with [b, c, i, j] = ∂F_i/∂u_j in group c of
    /// trajectory b: one backward pass per field (pointwise: the sum over cells of ∂F_i separates into the
    /// cells' rows) or per unknown (dense: rows of every trajectory at once). With `createGraph` the result is
    /// differentiable (a rollout's gradients then include the Jacobian's dependence on θ and u).
    let autograd (f: torch.Tensor[] -> torch.Tensor[]) (l: StateLayout) (createGraph: bool) (u: torch.Tensor[]) =
        use _ = torch.enable_grad ()

        let xs =
            u
            |> Array.map (fun x ->
                if createGraph && x.requires_grad then
                    x
                else
                    x.detach().requires_grad_ true)

        let outputs = f xs
        let packed = pack l outputs
        let batch = packed.shape[0]

        let rowOf (grads: torch.Tensor[]) =
            grads
            |> Array.mapi (fun j g ->
                if isNull g || g.IsInvalid then
                    torch.zeros_like xs[j]
                else
                    g)
            |> pack l

        let gradient (output: torch.Tensor) (seed: torch.Tensor) =
            if not output.requires_grad then
                torch.zeros_like packed
            else
                torch.autograd.grad (
                    [| output |],
                    xs,
                    [| seed |],
                    retain_graph = true,
                    create_graph = createGraph,
                    allow_unused = true
                )
                |> Array.ofSeq
                |> rowOf

        let rows =
            if l.Pointwise then
                // Row i of every cell's block: the gradient of Σ F_i.
                Array.init (int l.Size) (fun i -> gradient outputs[i] (torch.ones_like outputs[i]))
            else
                let eye = torch.eye (l.Size, dtype = packed.dtype, device = packed.device)
                Array.init (int l.Size) (fun k -> gradient packed (eye.select(0L, int64 k).expand_as packed))

        // rows[i] is [B; Cells; Size] holding ∂F_i/∂u_j along the last dimension.
        let j = torch.stack (rows, 2L)

        let result = if createGraph then j else j.detach ()
        result.reshape ([| batch; l.Cells; l.Size; l.Size |])
