namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// A model compiled to a differentiable simulator.
[<StructuredFormatDisplay("{Display}")>]
type Simulator =

    internal new:
        system: ResolvedSystem *
        dtype: torch.ScalarType *
        parameters: Param array *
        modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>) array *
        dynamics: Dynamics *
        initial: (int -> torch.Tensor array -> torch.Tensor array) *
        backend: Backend *
        forcings: Map<string, (float -> torch.Tensor)> *
        diagnose: (torch.Tensor array -> float -> torch.Tensor array -> torch.Tensor array) *
        split: ((float * Expr) list * (float * Expr) list) array ->
            Simulator

    /// Which back end `Simulate` runs a rollout with these options on (`Backend.Eager` or `Backend.Kernels`), and
    /// why the eager one where the kernels do not apply (empty when they do). For Rodas4 and Auto this overload
    /// judges whether gradients are wanted from the parameters and networks alone: an initial state that requires
    /// grad also sends the rollout to the eager back end (see the overload with `u0`).
    member BackendFor: options: RolloutOptions -> Backend * string

    /// `BackendFor` for a rollout from `u0`: Rodas4 and Auto run on the kernels only when no gradient is wanted
    /// (grad mode off, or none of `u0`, the parameters and the networks' weights requires grad); Dopri5 and KenCarp4
    /// run there with gradients too.
    member BackendFor: options: RolloutOptions * u0: torch.Tensor array -> Backend * string

    /// The initial state of `batch` trajectories from the model's initial conditions. Differentiable: parameters
    /// that appear in `initial` expressions (an amplitude, a start state) get gradients through it and are
    /// trained like any other when a loss simulates from it.
    member Initial: batch: int -> torch.Tensor array

    /// The parameter named `name`; raises `ModelException` naming the declared ones otherwise.
    member Param: name: string -> Param

    /// The physics residual of a trajectory under the current parameters.
    member Residual: form: ResidualForm * times: float array * values: torch.Tensor array -> ResidualResult

    /// The diagnostic fields (solved from their elliptic equations, not integrated) of a trajectory of this
    /// simulator: a `Trajectory` with the same times whose `Fields` are the diagnostic fields' names (`Diagnostics`)
    /// and whose `Values` hold each at every save time, [S; B; spatial…], solved as the right-hand side solves them
    /// (differentiable). Empty `Fields` for a model without diagnostic fields.
    member Diagnose: trajectory: Trajectory -> Trajectory

    /// The diagnostic fields' names, in declaration order (empty for most models).
    member Diagnostics: string array

    /// Integrates from `u0` with the current parameters, on the generated kernels or the eager back end (see
    /// `Backend`; the result's `Backend` says which ran). Gradients flow to `u0`, θ and the networks either way.
    member Simulate: u0: torch.Tensor array * options: RolloutOptions -> Trajectory

    /// Current constrained parameter values θ (differentiable with respect to the raw parameters).
    member Theta: unit -> torch.Tensor array

    /// The same text as `Display`.
    override ToString: unit -> string

    /// Everything trainable: raw values of learnable parameters (θ) and closure weights (φ).
    member Trainable: unit -> Modules.Parameter array

    /// The back end it was compiled for (`CompileOptions.Backend`).
    member Backend: Backend

    /// What the REPL prints for `sim;;`: the model's name, fields, grid, parameters at their current values,
    /// closures, forcings, back end and precision, one line each.
    member Display: string

    /// The precision of its tensors.
    member Dtype: torch.ScalarType

    /// The semi-discrete system (θ = `Theta ()`), for `Rollout.run` and `Residual.compute`.
    member Dynamics: Dynamics

    /// Field names in state order.
    member Fields: string array

    /// The grid.
    member Grid: Grid

    /// The model it was compiled from.
    member Model: Model

    /// The kernels of a scheme (generated on first use), or why there are none: the simulator the kernel back end
    /// runs that scheme on (tests read its steppers).
    member internal KernelsOf: scheme: Scheme -> Result<Hybrid.Kernels.KernelSimulator, string>

    /// Neural closures by name.
    member Modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>) array

    /// Scientific parameters θ in declaration order (constrained; `Raw` is what optimisers update).
    member Parameters: Param array
