namespace Hybrid.Compiler

open Hybrid

/// Compiles a `Model` (Dsl IR) into a `Simulator`: one front end (`Resolve`: symbols, parameters,
/// modules, boundary conditions, every "cannot compile" message) and two back ends, the eager one built here
/// (`ExprCompiler`, `ImexSplit`, `RightHandSide`, `Initial`: expressions translated once into closures over
/// tensors) and the generated kernels the simulator builds on first use.
[<RequireQualifiedAccess>]
module Compiler =

    /// Float64, explicit diffusion, no modules, forcings or data, seed 0, `Backend.Auto`.
    val defaults: CompileOptions

    /// Compiles `model` into a simulator. Raises `ModelException` for unknown symbols, missing modules,
    /// forcings or data. Two-scale lattices: fast fields are [B; K·J] (site n = k·J + j), a slow field in a fast
    /// equation is read at its parent site, Σⱼ sums a fast expression over each slow site's J fast sites.
    /// Runs inside `TorchGuard` (refused while another thread runs Hybrid); `options.Seed` seeds torch's global
    /// generator inside it, just before the closures' weights are drawn.
    val compile: options: CompileOptions -> model: Model -> Simulator
