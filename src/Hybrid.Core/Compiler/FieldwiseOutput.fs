namespace Hybrid.Compiler

open System
open TorchSharp
open Hybrid

/// The output of a closure over whole fields (`Model.isFieldwise`), as both back ends take it.
[<RequireQualifiedAccess>]
module internal FieldwiseOutput =

    /// Raises unless closure `name`'s output `y` is [B; outputs; spatial…] on a grid of shape `spatial`.
    let check (name: string) (outputs: int) (spatial: int64[]) (y: torch.Tensor) =
        if
            y.dim () <> int64 (spatial.Length + 2)
            || y.shape[1] <> int64 outputs
            || y.shape[2..] <> spatial
        then
            raise (
                ModelException(
                    $"Closure '{name}' returned shape [{String.Join(',', y.shape)}] but runs on whole fields with {outputs} output(s): it must return [batch; {outputs}; {String.Join(',', spatial)}]. Check the module's output channels and padding."
                )
            )
