namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Rodas4, the stiffly accurate Rosenbrock method of order 4(3) of Hairer and Wanner (Solving ODEs II, §IV.7,
/// their code RODAS), with its 3rd-order continuous extension. Each step solves six linear systems with the one
/// matrix (1/(γh) I − J), J the exact Jacobian at the step's start, with solves that fit the system:
/// - pointwise systems (ODEs, reactions): one n×n block per cell (`Jacobian`), inverted once per step in one batched
///   inverse;
/// - systems on a 1-D or 2-D grid whose full tendency (diffusion, reaction, coupling between the n fields) couples
///   each cell only to its nearest neighbours: J probed by coloured vector–Jacobian products into n×n blocks per
///   stencil entry (`BlockStencil`; 3n backward passes per step in 1-D, about 5n in 2-D, instead of one per
///   unknown), then a block (cyclic) tridiagonal solve in 1-D, O(N n³), and BiCGSTAB with a block Jacobi
///   preconditioner in 2-D, stopped at `StepControl.solveTolerance` (`BlockStencilSolve`), at any grid size;
/// - anything else (a wider stencil, a closure over the grid): one dense Jacobian per trajectory by autograd, up
///   to `Jacobian.maxDense` unknowns.
/// Gradients: the stages, the Jacobian (built with a graph when gradients are wanted) and the solves are
/// differentiable (the grid solves by their adjoint solves, `StencilSolve.solve`), so autograd differentiates the
/// computed solution; the step sizes count as fixed (see `StepControl`).
[<RequireQualifiedAccess>]
module internal Rosenbrock =

    /// Σⱼ wⱼ·xs[j] over the non-zero weights, plus `start` when given (null when nothing is added).
    let private weighted (weights: float[]) (xs: torch.Tensor[]) (start: torch.Tensor) : torch.Tensor =
        let mutable sum = start

        for j in 0 .. weights.Length - 1 do
            if weights[j] <> 0.0 then
                let term = weights[j] .* xs[j]
                sum <- if isNull sum then term else sum .+ term

        sum

    /// ∂f/∂t at (t, u) by a forward difference (as RODAS does for non-autonomous systems): exactly 0 for systems
    /// that do not depend on t.
    let private timeDerivative
        (f: float -> torch.Tensor -> torch.Tensor)
        (t: float)
        (f0: torch.Tensor)
        (u: torch.Tensor)
        =
        let delta = sqrt (2.2e-16 * max 1e-5 (abs t))
        (f (t + delta) u .- f0) ./ delta

    /// The solve of (1/(γh) I − J) x = rhs with the small dense blocks J [B; Cells; Size; Size] (pointwise systems,
    /// or one dense block per trajectory): one inverse per step and a matrix product per stage, which on small
    /// blocks is several times cheaper than LU solves in the backward pass.
    let denseSolve (j: torch.Tensor) (h: float) : torch.Tensor -> torch.Tensor =
        let size = j.shape[j.shape.Length - 1]
        let eye = torch.eye (size, dtype = j.dtype, device = j.device)
        let matrix = (1.0 / (Rodas4Tableau.gamma * h)) .* eye .- j
        let inverse = torch.linalg.inv matrix
        fun rhs -> inverse.matmul(rhs.unsqueeze -1L).squeeze -1L

    /// One Rodas4 step of size h from (t, u) on the packed state (`Jacobian.pack`): f acts on packed tensors
    /// [B; Cells; Size]; `linear t h u` gives the solve of (1/(γh) I − J(t, u)) x = rhs on packed tensors.
    let step
        (f: float -> torch.Tensor -> torch.Tensor)
        (linear: float -> float -> torch.Tensor -> (torch.Tensor -> torch.Tensor))
        (t: float)
        (h: float)
        (u: torch.Tensor)
        : torch.Tensor * torch.Tensor * (float -> torch.Tensor) =
        let solve = linear t h u

        let f0 = f t u
        let ft = timeDerivative f t f0 u
        let stages = Array.zeroCreate<torch.Tensor> 6
        stages[0] <- solve (f0 .+ (h * Rodas4Tableau.d[0]) .* ft)
        let mutable input = u

        for i in 1..5 do
            input <- weighted Rodas4Tableau.a[i] stages u
            let fi = f (t + Rodas4Tableau.alpha[i] * h) input
            let coupling = weighted (Rodas4Tableau.c[i] |> Array.map (fun x -> x / h)) stages fi

            let rhs =
                if Rodas4Tableau.d[i] <> 0.0 then
                    coupling .+ (h * Rodas4Tableau.d[i]) .* ft
                else
                    coupling

            stages[i] <- solve rhs

        let next = input .+ stages[5]

        let interpolant (s: float) =
            let d2 = weighted Rodas4Tableau.dense2 stages null
            let d3 = weighted Rodas4Tableau.dense3 stages null
            (1.0 - s) .* u .+ s .* (next .+ (1.0 - s) .* (d2 .+ s .* d3))

        next, stages[5], interpolant

    /// The hint of Rodas4's step-limit error.
    let limitHint =
        "Rodas4 is stiff-stable, so the solution itself varies fast here (or the Tolerance is very tight): loosen the Tolerance, or raise the limit with Rollout.maxSteps."

    /// The unknowns per trajectory up to which a system that fits a grid solve keeps the dense Jacobian and solve
    /// instead. 0: the grid solve always. Measured on a 1-D Brusselator (2 fields, 27 steps, a loaded 2-core
    /// machine): from 6 to 40 unknowns neither path was consistently faster (53–231 ms either way, varying between
    /// runs), at 200 unknowns the grid path took 0.10–0.20 s and the dense one 0.97–1.23 s (its Jacobian needs one
    /// backward pass per unknown, the grid's one per colour and field).
    let denseUpTo = 0

    /// The spatial shape [nx] or [nx; ny] of state `u` when Rodas4 may solve on the grid: a system without a known
    /// pointwise structure (`JacobianForm.Dense`) whose fields all have the same cells, on a 1-D or 2-D grid with at
    /// least 3 cells per axis; None otherwise.
    let private gridShape (dyn: Dynamics) (u: torch.Tensor[]) : int64[] option =
        match dyn.Jacobian with
        | JacobianForm.Dense when u.Length > 0 && u[0].dim () >= 2L ->
            let spatial = u[0].shape[1..]

            if
                BlockStencil.fits spatial
                && u |> Array.forall (fun x -> x.shape[1..] = spatial)
                && Array.fold (*) 1L spatial * int64 u.Length > int64 denseUpTo
            then
                Some spatial
            else
                None
        | _ -> None

    /// The packing of a grid state: cell by cell, the fields of a cell together ([B; Cells; n]).
    let private gridLayout (spatial: int64[]) (fields: int) : StateLayout = {
        Cells = Array.fold (*) 1L spatial
        Size = int64 fields
        Pointwise = true
    }

    /// How Rodas4 solves its linear systems for system `dyn` with parameters θ and states shaped like `like`:
    /// "per cell" (pointwise systems: one n×n block per cell), "block tridiagonal" (1-D grids) or "BiCGSTAB" (2-D
    /// grids) when the Jacobian of the full tendency is stencil-local (probed at t = 0 and `like`,
    /// `BlockStencil.jacobian`), "dense" otherwise (refused above `Jacobian.maxDense` unknowns per trajectory).
    let solveName (dyn: Dynamics) (theta: torch.Tensor[]) (like: torch.Tensor[]) : string =
        let onGrid =
            gridShape dyn like
            |> Option.filter (fun spatial ->
                use _ = torch.NewDisposeScope()
                let layout = gridLayout spatial like.Length
                let unpack = Jacobian.unpack layout like
                let f = Jacobian.pack layout << Dynamics.total dyn theta 0.0 << unpack
                let pattern = BlockStencil.pattern spatial like.Length like[0].device

                (BlockStencil.jacobian pattern f false (Jacobian.pack layout like)).IsSome)

        match onGrid with
        | Some spatial when spatial.Length = 1 -> "block tridiagonal"
        | Some _ -> "BiCGSTAB"
        | None ->
            if (Jacobian.layout "Rodas4" dyn like).Pointwise then
                "per cell"
            else
                "dense"

    /// The adaptive method from the packed tendency f, the linear solves and the layout.
    let private adaptive
        (layout: StateLayout)
        (like: torch.Tensor[])
        (f: float -> torch.Tensor -> torch.Tensor)
        (linear: float -> float -> torch.Tensor -> (torch.Tensor -> torch.Tensor))
        : AdaptiveMethod =
        let unpack = Jacobian.unpack layout like

        {
            Name = "Rodas4"
            EstimateOrder = 3
            Start = fun _ _ -> [||]
            Attempt =
                fun t h u _ ->
                    let next, error, interpolant = step f linear t h (Jacobian.pack layout u)

                    {
                        Next = unpack next
                        Error = unpack error
                        Dense = fun s -> unpack (interpolant s)
                        Carry = [||]
                        Accept = ignore
                    }
            LimitHint = limitHint
            LandsOnSaves = false
        }

    /// Rodas4 with the per-cell or dense Jacobian and solve (`Jacobian.layout`), whatever the grid: the path of
    /// systems that fit no grid solve (and the baseline the grid solves are measured against).
    let denseMethod (dyn: Dynamics) (theta: torch.Tensor[]) (createGraph: bool) (like: torch.Tensor[]) =
        let total = Dynamics.total dyn theta
        let layout = Jacobian.layout "Rodas4" dyn like
        let unpack = Jacobian.unpack layout like

        let f (t: float) (packed: torch.Tensor) =
            Jacobian.pack layout (total t (unpack packed))

        let jacobian (t: float) (packed: torch.Tensor) =
            match dyn.Jacobian with
            | JacobianForm.Blocks blocks when layout.Pointwise -> blocks theta t (unpack packed)
            | _ -> Jacobian.autograd (total t) layout createGraph (unpack packed)

        adaptive layout like f (fun t h u -> denseSolve (jacobian t u) h)

    /// Rodas4 on system `dyn` with parameters θ as `StepControl` runs it, with the linear solves `solveName` names,
    /// and that name. `createGraph`: build the Jacobian with an autograd graph (when gradients through the rollout are
    /// wanted); `tolerances`: the step's tolerances, to which BiCGSTAB's stopping tolerance is tied
    /// (`StepControl.solveTolerance`).
    let create
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (createGraph: bool)
        (tolerances: Tolerance[])
        (like: torch.Tensor[])
        : string * AdaptiveMethod =
        let total = Dynamics.total dyn theta
        let name = solveName dyn theta like

        match name with
        | "block tridiagonal"
        | "BiCGSTAB" ->
            let spatial = like[0].shape[1..]
            let layout = gridLayout spatial like.Length
            let unpack = Jacobian.unpack layout like

            let f (t: float) (packed: torch.Tensor) =
                Jacobian.pack layout (total t (unpack packed))

            let tolerance = StepControl.solveTolerance tolerances like[0].dtype
            let pattern = BlockStencil.pattern spatial like.Length like[0].device

            let linear (t: float) (h: float) (u: torch.Tensor) =
                match BlockStencil.jacobian pattern (f t) createGraph u with
                | Some j ->
                    let a = (1.0 / (Rodas4Tableau.gamma * h)) .* BlockStencil.identity j u .- j.Values

                    let solver =
                        if name = "BiCGSTAB" then
                            BlockStencilSolve.biCgStab j tolerance
                        else
                            BlockStencilSolve.banded j

                    StencilSolve.solve solver a
                | None ->
                    raise (
                        HybridException(
                            $"Rodas4 chose the {name} solve because the Jacobian of the system coupled each cell only to its nearest neighbours at the start, but at t = {t:G6} it couples cells further apart. Use Scheme.Dopri5, or Scheme.KenCarp4 when the stiffness is linear diffusion."
                        )
                    )

            name, adaptive layout like f linear
        | _ -> name, denseMethod dyn theta createGraph like

    /// `create`'s method alone.
    let method
        (dyn: Dynamics)
        (theta: torch.Tensor[])
        (createGraph: bool)
        (tolerances: Tolerance[])
        (like: torch.Tensor[])
        : AdaptiveMethod =
        snd (create dyn theta createGraph tolerances like)
