// Everything a script or REPL session needs, in one file. After a build (./build.sh, or
// dotnet build -c Release):
//
//   dotnet fsi --use:scripts/Hybrid.fsx     an interactive session with everything referenced and opened
//   #load "Hybrid.fsx"                      from a script in scripts/ (then open the namespaces you use;
//                                           F# does not carry a loaded file's `open`s into the loader)
//
// It references the built assemblies (src/Hybrid.Cli/bin/Release/net10.0 holds them all, with TorchSharp and
// the native libtorch files), opens the Hybrid namespaces, loads the engine and registers printers: a
// model prints as its equations in Unicode, a parameter as its value and constraint, a tensor as its shape,
// dtype and first values.
#I "../src/Hybrid.Cli/bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Hybrid.Dsl.dll"
#r "Hybrid.Core.dll"
#r "Hybrid.Models.dll"

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training

Engine.init ()

/// How many values a tensor shows.
let tensorPreview = 6

/// `tensor [2; 3] Float64 [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]` (the first `tensorPreview` values, row-major).
let formatTensor (t: torch.Tensor) : string =
    let shape = "[" + String.Join("; ", t.shape) + "]"

    let values =
        if t.IsInvalid then
            "<disposed>"
        else
            use _ = torch.no_grad ()
            use flat = t.detach().reshape([| -1L |]).to_type(torch.ScalarType.Float64).cpu ()
            let n = int (min flat.shape[0] (int64 tensorPreview))

            let shown =
                flat.data<float>().ToArray() |> Array.truncate n |> Array.map (sprintf "%.6g")

            let more = if flat.shape[0] > int64 n then ", …" else ""
            "[" + String.Join(", ", shown) + more + "]"

    $"tensor {shape} {t.dtype} {values}"

/// `Param D = 0.05 (positive, learnable)`; spatial parameters show their shape and mean.
let formatParam (p: Param) : string =
    let c =
        match p.Constraint with
        | Constraint.Free -> "free"
        | Constraint.Positive -> "positive"
        | Constraint.Bounded(lo, hi) -> $"in [{Print.number lo}, {Print.number hi}]"

    let shape =
        if p.Raw.shape.Length = 0 then
            ""
        else
            " mean over [" + String.Join("; ", p.Raw.shape) + "]"

    let learn = if p.Learnable then "learnable" else "fixed"
    $"Param {p.Name} = {p.Get():G6}{shape} ({c}, {learn})"

fsi.AddPrinter<Model>(Print.model Notation.Unicode)
fsi.AddPrinter<Param>(formatParam)
fsi.AddPrinter<torch.Tensor>(formatTensor)
