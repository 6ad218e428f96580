namespace Hybrid.Numerics

open TorchSharp
open Hybrid.TensorArithmetic

/// Bounds on the explicit time step read from the current parameters and state.
type StepLimits = {
    /// Largest diffusivity of the diffusion integrated explicitly (0 when none).
    Diffusivity: float
    /// Largest diffusivity of the stiff (linear) part; explicit schemes integrate it too.
    StiffDiffusivity: float
    /// Largest advection speed (0 when none).
    Speed: float
}

/// An advection term of one equation (c·∂(u), a product of two derivatives, J(ψ, q) or advectFlux), one entry per
/// axis it moves along, measured for the current θ and u.
type AdvectionSpeed = {
    /// The field whose equation holds the term.
    Field: string
    /// The term as written, with its sign (e.g. "−v ∂x(u)").
    Term: string
    /// The axis it moves along (0 = x, 1 = y).
    Axis: int
    /// Its largest |speed| over the grid and batch.
    Speed: float
    /// True for a limited flux-form term (advectFlux), which keeps its tracer ≥ 0 only while Δt·Σₐ max|vₐ|/Δₐ ≤ ½
    /// (with Scheme.Euler, Heun or SspRk3), below the stability limit.
    Positivity: bool
}

/// The pointwise (reaction) part of one field's equation, measured for the current θ and u: its rate
/// λ = ∂(pointwise terms)/∂field (λ < 0 decays, λ > 0 grows).
type ReactionRate = {
    /// The field whose equation it is.
    Field: string
    /// Smallest λ over the grid and batch.
    Lowest: float
    /// Largest λ over the grid and batch.
    Highest: float
    /// Each pointwise term that depends on the field, as written with its sign, with its own smallest and
    /// largest rate (measured when called, for the same θ and u).
    Terms: unit -> (string * float * float)[]
}

/// A diffusion term c·Δ(a) or ∇·(k∇a) of one equation, measured for the current θ and u.
type DiffusionTerm = {
    /// The field whose equation holds the term.
    Field: string
    /// The term as written, with its sign (e.g. "D Δu").
    Term: string
    /// Its largest |diffusivity| over the grid and batch.
    Diffusivity: float
    /// True when the diffusivity depends on the fields (nonlinear diffusion, explicit even in IMEX schemes).
    Nonlinear: bool
}

/// Step limits of single terms, so that messages can name the term (empty for dynamics from a function).
type TermLimits = {
    /// Diffusion terms with their diffusivities.
    Diffusion: DiffusionTerm[]
    /// Advection terms with their speeds.
    Advection: AdvectionSpeed[]
    /// One entry per field whose equation has a pointwise part depending on the field.
    Reaction: ReactionRate[]
}

/// What the stiff (Rosenbrock) schemes know about the Jacobian ∂F/∂u of a system's full tendency (stiff part
/// included), and so how they assemble and solve their linear systems.
[<RequireQualifiedAccess>]
type JacobianForm =
    /// No known structure: one dense Jacobian per trajectory over all unknowns of all fields, from autograd
    /// (exact, one backward pass per unknown), up to `Jacobian.maxDense` unknowns per trajectory.
    | Dense
    /// Each cell's tendency depends only on that cell's values (no stencil, no coupling across cells), and
    /// every field has the same cells: the Jacobian is block-diagonal, one n×n block per cell for n fields,
    /// from autograd (one backward pass per field), solved per cell in one batched solve.
    | Pointwise
    /// Pointwise, with the blocks given in closed form: (θ, t, u) ↦ a tensor [B; cells; n; n] whose
    /// [b, c, i, j] entry is ∂F_i/∂u_j in cell c of trajectory b (the compiler's symbolic derivatives).
    | Blocks of (torch.Tensor[] -> float -> torch.Tensor[] -> torch.Tensor)

/// A semi-discrete system du/dt = F(θ, t, u) + L(θ) u (method of lines), the thing integrators and rollouts
/// run. θ is an array of parameter tensors passed at every call (so checkpointing can recompute with
/// fresh copies); u is one tensor per field, each [B; spatial…].
type Dynamics = {
    /// Field names, in state order.
    Fields: string[]
    /// The grid the fields live on.
    Grid: Grid
    /// F(θ, t, u): the non-stiff tendency of every field.
    Explicit: torch.Tensor[] -> float -> torch.Tensor[] -> torch.Tensor[]
    /// Per field: an affine, autonomous stiff part u ↦ L(θ)u + b(θ) (linear diffusion), or None. IMEX
    /// schemes solve it implicitly; explicit schemes add it to F.
    Stiff: (torch.Tensor[] -> torch.Tensor -> torch.Tensor) option[]
    /// Step limits for the current θ and u.
    Limits: torch.Tensor[] -> torch.Tensor[] -> StepLimits
    /// Step limits of single terms (advection speeds, reaction rates) for the current θ and u.
    Terms: torch.Tensor[] -> torch.Tensor[] -> TermLimits
    /// Leaf tensors used inside F or L but not passed in θ (e.g. neural-closure weights φ); checkpointing
    /// returns their gradients too.
    Leaves: torch.Tensor[]
    /// The structure of ∂F/∂u (and its blocks where known), for the stiff schemes (`Scheme.Rodas4`).
    Jacobian: JacobianForm
}

/// Helpers for `Dynamics`.
[<RequireQualifiedAccess>]
module Dynamics =

    /// No term limits.
    let noTerms: TermLimits = {
        Diffusion = [||]
        Advection = [||]
        Reaction = [||]
    }

    /// Dynamics from a plain tendency function (no stiff part, no step limits, no leaves). Its Jacobian is
    /// taken by autograd: per cell on `Grid.Point` (one cell), dense otherwise (f may couple cells); set
    /// `Jacobian = JacobianForm.Pointwise` or `Blocks` when f is known to be pointwise.
    let ofFunction (fields: string[]) (grid: Grid) (f: torch.Tensor[] -> float -> torch.Tensor[] -> torch.Tensor[]) = {
        Fields = fields
        Grid = grid
        Explicit = f
        Stiff = Array.create fields.Length None
        Limits =
            fun _ _ -> {
                Diffusivity = 0.0
                StiffDiffusivity = 0.0
                Speed = 0.0
            }
        Terms = fun _ _ -> noTerms
        Leaves = [||]
        Jacobian =
            match grid with
            | Point -> JacobianForm.Pointwise
            | _ -> JacobianForm.Dense
    }

    /// The full tendency F(θ, t, u) + L(θ)u (the stiff part evaluated explicitly).
    let total (dyn: Dynamics) (theta: torch.Tensor[]) (t: float) (u: torch.Tensor[]) : torch.Tensor[] =
        let f = dyn.Explicit theta t u

        Array.init u.Length (fun i ->
            match dyn.Stiff[i] with
            | Some l -> f[i] .+ l theta u[i]
            | None -> f[i])
