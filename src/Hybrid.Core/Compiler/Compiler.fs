// The public surface and its documentation: Compiler.fsi.
namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

[<RequireQualifiedAccess>]
module Compiler =

    let defaults: CompileOptions = {
        Dtype = torch.ScalarType.Float64
        ImplicitDiffusion = false
        Modules = Map.empty
        Forcings = Map.empty
        Data = Map.empty
        Seed = 0
        Backend = Backend.Auto
    }

    let compile (options: CompileOptions) (model: Model) : Simulator =
        use _ = TorchGuard.enter $"Compiler.compile (model '{model.Name}')"
        let r = Resolve.resolve options model
        let ec = ExprCompiler r

        let split = ImexSplit.split r.System options.ImplicitDiffusion
        let dynamics = RightHandSide.build r ec split

        let initial = Initial.build r ec options

        let diagnose (theta: torch.Tensor[]) (t: float) (u: torch.Tensor[]) =
            let c: Ctx = {
                Fields = u
                Theta = theta
                T = t
                Coords = ec.Centres
                Faces = None
            }

            ec.Diagnostics |> Array.map (fun f -> f c)

        Simulator(
            r.System,
            r.Dtype,
            r.Parameters,
            r.Modules,
            dynamics,
            initial,
            options.Backend,
            options.Forcings,
            diagnose,
            split
        )
