namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// The solve of a diagnostic field's elliptic equation (Δₕ − κ²)ψ = f on a 1-D or 2-D grid, where Δₕ is exactly the
/// discrete Laplacian of the equations (`Operators.laplacian`: the three- or five-point stencil with ghost cells).
type internal EllipticSolver = {
    /// How it solves, in words (for messages and tests): "spectral", "banded" or "conjugate gradients".
    Method: string
    /// ψ [B; spatial…] with (Δₕ − κ²)ψ = f for f [B; spatial…], under the boundary conditions given (their kinds
    /// those the solver was made for; Dirichlet and Neumann values may change from call to call). Differentiable in
    /// f and in the boundary values. Where Δₕ − κ² is singular (κ² = 0 and no Dirichlet side) the mean of f is
    /// removed first and ψ has zero mean.
    Solve: FieldBoundary -> torch.Tensor -> torch.Tensor
}

/// Building `EllipticSolver`s:
/// - periodic on every axis: a spectral solve (torch.fft.rfftn / irfftn, differentiable by autograd) that divides
///   by the eigenvalues of Δₕ itself, Σₐ (2 cos(2πk/nₐ) − 2)/hₐ² − κ² (the modified wavenumbers), so Δₕ ψ − κ²ψ
///   equals f (minus its mean when κ² = 0) to round-off;
/// - walls (Dirichlet, Neumann, no-flux, possibly periodic on one axis): A ψ = b − f with A = κ² − L, L the linear
///   part of Δₕ (probed into a `StencilMatrix`: symmetric, positive (semi-)definite) and b = Δₕ 0 the walls'
///   contribution; a banded solve on non-singular 1-D grids, Jacobi-preconditioned conjugate gradients otherwise,
///   both differentiated by the adjoint solve with Aᵀ (`StencilSolve.solve`).
[<RequireQualifiedAccess>]
module internal EllipticSolve =

    /// The relative residual at which conjugate gradients stop, per precision: 1e-12 in float64, 1e-6 in float32.
    let tolerance (dtype: torch.ScalarType) =
        if dtype = torch.ScalarType.Float64 then 1e-12 else 1e-6

    /// The failure messages of conjugate gradients for the elliptic equation of `context` (e.g. "the diagnostic field
    /// 'psi' (Δpsi = omega)"), with the default iteration cap.
    let caller (context: string) : CgCaller = {
        NotConverged =
            $" while solving the elliptic equation of {context}. Its operator Δ − κ² is symmetric and definite on these boundary conditions, so the right-hand side is probably not finite (NaN or ∞: check the fields and parameters it reads), or round-off stalls the iteration: compile in float64 (CompileOptions.Dtype) or use a coarser grid."
        NotPositive =
            $" while solving the elliptic equation of {context}: its operator κ² − Δ is not positive definite in floating point on these boundary conditions. Check that the right-hand side is finite, compile in float64 (CompileOptions.Dtype), or give the field a Dirichlet side or κ² > 0."
        MaxIterations = None
    }

    let private periodicEverywhere (bcs: FieldBoundary) =
        bcs
        |> Array.forall (fun s ->
            match s.Low, s.High with
            | Bc.Periodic, Bc.Periodic -> true
            | _ -> false)

    let private hasDirichlet (bcs: FieldBoundary) =
        bcs
        |> Array.exists (fun s ->
            [ s.Low; s.High ]
            |> List.exists (fun b ->
                match b with
                | Bc.Dirichlet _ -> true
                | _ -> false))

    /// The eigenvalue of Δₕ − κ² for each rfftn frequency, [n₀; …; n_last/2 + 1] (flattened row-major).
    let eigenvalues (grid: Grid) (screening: float) : float[] =
        let axes = grid.Axes
        let d = axes.Length

        let counts =
            Array.init d (fun a -> if a = d - 1 then axes[a].Cells / 2 + 1 else axes[a].Cells)

        let along (a: int) (k: int) =
            let n, h = axes[a].Cells, axes[a].Spacing
            (2.0 * cos (2.0 * System.Math.PI * float k / float n) - 2.0) / (h * h)

        let total = Array.fold (*) 1 counts

        Array.init total (fun i ->
            let mutable rest = i
            let mutable sum = -screening

            for a in d - 1 .. -1 .. 0 do
                sum <- sum + along a (rest % counts[a])
                rest <- rest / counts[a]

            sum)

    let private spectral (grid: Grid) (screening: float) (dtype: torch.ScalarType) (device: torch.Device) =
        let d = grid.Dims
        let shape = grid.Shape
        let dims = Array.init d (fun a -> int64 (a + 1))

        let counts =
            Array.init d (fun a -> if a = d - 1 then shape[a] / 2L + 1L else shape[a])

        // 1/λ, with the zero eigenvalue's mode (the mean, when κ² = 0) set to 0: its part of f is dropped.
        let inverse =
            eigenvalues grid screening
            |> Array.map (fun l -> if abs l < 1e-300 then 0.0 else 1.0 / l)

        let inverse =
            torch
                .tensor(inverse, dtype = dtype, device = device)
                .reshape(Array.append [| 1L |] counts)
                .DetachFromDisposeScope()

        {
            Method = "spectral"
            Solve =
                fun _ f ->
                    let fhat = torch.fft.rfftn (f, shape, dims)
                    torch.fft.irfftn (fhat.mul inverse, shape, dims)
        }

    let private onStencil
        (grid: Grid)
        (homogeneous: FieldBoundary)
        (screening: float)
        (dtype: torch.ScalarType)
        (device: torch.Device)
        (cgTolerance: float)
        (cg: CgCaller)
        =
        let spatial = grid.Shape
        let n = spatial |> Array.fold (*) 1L

        let zero =
            torch.zeros(Array.append [| 1L |] spatial, dtype = dtype, device = device).DetachFromDisposeScope()

        // A = κ² − L, the negated linear part of Δₕ − κ².
        let operator (u: torch.Tensor) =
            screening .* u .- Operators.laplacian grid homogeneous u

        let m =
            use _ = torch.no_grad ()

            match StencilMatrix.probe operator zero with
            | Some m -> {
                m with
                    Values = m.Values.detach().DetachFromDisposeScope()
                    Columns = m.Columns.DetachFromDisposeScope()
              }
            | None ->
                raise (
                    ModelException(
                        $"An elliptic solve needs at least 3 cells per axis, but the grid has {grid.Shape |> Array.map string |> String.concat (string '×')}. Use a finer grid."
                    )
                )

        let singular = screening = 0.0 && not (hasDirichlet homogeneous)

        let method, solver =
            if grid.Dims = 1 && not singular then
                "banded", StencilSolve.banded m
            else
                "conjugate gradients", StencilSolve.conjugateGradient cg m cgTolerance

        let centred (v: torch.Tensor) =
            if singular then
                v .- v.mean ([| 1L |], keepdim = true)
            else
                v

        {
            Method = method
            Solve =
                fun bcs f ->
                    let b = Operators.laplacian grid bcs zero
                    let r = (b .- f).reshape ([| f.shape[0]; n |])
                    let x = StencilSolve.solve solver m.Values (centred r)
                    (centred x).reshape f.shape
        }

    /// The solver of (Δₕ − κ²)ψ = f on `grid` (1-D or 2-D) for boundary conditions of the kinds in `kinds` (values
    /// ignored), κ² = `screening` ≥ 0, in this precision and device; `cgTolerance` is the relative residual of
    /// conjugate gradients (see `tolerance`), `cg` names the equation in their failure messages (see `caller`).
    let create
        (grid: Grid)
        (kinds: FieldBoundary)
        (screening: float)
        (dtype: torch.ScalarType)
        (device: torch.Device)
        (cgTolerance: float)
        (cg: CgCaller)
        : EllipticSolver =
        if grid.Dims < 1 || grid.Dims > 2 || grid.IsLattice then
            raise (ModelException "An elliptic solve needs a 1-D interval or a 2-D rectangle grid.")

        if periodicEverywhere kinds then
            spectral grid screening dtype device
        else
            let zeroValue =
                torch.zeros([||], dtype = dtype, device = device).DetachFromDisposeScope()

            let homogeneous =
                kinds
                |> Array.map (fun s ->
                    let h (b: Bc) =
                        match b with
                        | Bc.Dirichlet _ -> Bc.Dirichlet zeroValue
                        | Bc.Neumann _ -> Bc.NoFlux
                        | other -> other

                    { Low = h s.Low; High = h s.High })

            onStencil grid homogeneous screening dtype device cgTolerance cg
