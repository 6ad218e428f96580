namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// Compiles a `Model` (Hybrid.Dsl IR) into a `Simulator`: one front end (`Resolve`: symbols, parameters,
/// modules, boundary conditions, every "cannot compile" message) and two back ends, the eager one built here
/// (`ExprCompiler`, `ImexSplit`, `RightHandSide`, `Initial`: expressions translated once into closures over
/// tensors) and the generated kernels the simulator builds on first use.
[<RequireQualifiedAccess>]
module Compiler =

    /// Float64, explicit diffusion, no modules, forcings or data, seed 0, `Backend.Auto`.
    let defaults: CompileOptions = {
        Dtype = torch.ScalarType.Float64
        ImplicitDiffusion = false
        Modules = Map.empty
        Forcings = Map.empty
        Data = Map.empty
        Seed = 0
        Backend = Backend.Auto
    }

    /// Compiles `model` into a simulator. Raises `ModelException` for unknown symbols, missing modules,
    /// forcings or data. Two-scale lattices: fast fields are [B; K·J] (site n = k·J + j), a slow field in a fast
    /// equation is read at its parent site, Σⱼ sums a fast expression over each slow site's J fast sites.
    /// Runs inside `TorchGuard` (refused while another thread runs Hybrid); `options.Seed` seeds torch's global
    /// generator inside it, just before the closures' weights are drawn.
    let compile (options: CompileOptions) (model: Model) : Simulator =
        use _ = TorchGuard.enter $"Compiler.compile (model '{model.Name}')"
        let r = Resolve.resolve options model
        let ec = ExprCompiler r

        let dynamics =
            RightHandSide.build r ec (ImexSplit.split r ec options.ImplicitDiffusion)

        let initial = Initial.build r ec options

        Simulator(model, r.Grid, r.Dtype, r.Parameters, r.Modules, dynamics, initial, options.Backend, options.Forcings)
