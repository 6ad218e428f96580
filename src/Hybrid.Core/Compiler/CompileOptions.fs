namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// Options of `Compiler.compile`.
type CompileOptions = {
    /// Precision of every tensor the simulator creates (default Float64).
    Dtype: torch.ScalarType
    /// Put linear diffusion terms (Δu, ∇·(κ∇u) with κ free of fields and t) in the stiff part, solved
    /// implicitly by the IMEX schemes (explicit schemes still integrate them explicitly).
    ImplicitDiffusion: bool
    /// Modules for closures declared with `Architecture.Named` (and overrides for MLP closures), by name.
    /// A module maps [..., arity] to [..., 1].
    Modules: Map<string, torch.nn.Module<torch.Tensor, torch.Tensor>>
    /// Forcings by name: time ↦ tensor broadcastable to the fields ([B; spatial…], [1; spatial…] or 0-dim).
    Forcings: Map<string, float -> torch.Tensor>
    /// Initial-condition data by key (`InitialCondition.FromData`), shape [B; spatial…].
    Data: Map<string, torch.Tensor>
    /// Seed for the initial weights of MLP closures.
    Seed: int
    /// Which back end runs `Simulate`: `Auto` (the default) takes the generated kernels wherever they apply.
    Backend: Backend
}
