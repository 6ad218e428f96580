namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// How a compiled simulator describes itself (`Simulator.ToString`, and what the REPL prints for `sim;;`): the
/// model's name, fields, grid, parameters with their current values, closures, forcings, back end and precision.
[<RequireQualifiedAccess>]
module internal SimulatorText =

    let private grid (d: Domain) =
        match d with
        | Domain.Point -> "0-D (no space)"
        | Domain.Interval(a, b, n) -> sprintf "interval [%g, %g], %d cells" a b n
        | Domain.Rectangle(a, b, c, d, nx, ny) -> sprintf "rectangle [%g, %g] × [%g, %g], %d × %d cells" a b c d nx ny
        | Domain.Lattice(k, 0) -> sprintf "periodic lattice, %d sites" k
        | Domain.Lattice(k, j) -> sprintf "periodic lattice, %d sites × %d fast sites" k j

    let private constraintText (c: Constraint) =
        match c with
        | Constraint.Free -> "free"
        | Constraint.Positive -> "positive"
        | Constraint.Bounded(lo, hi) -> sprintf "in [%g, %g]" lo hi

    let private parameter (p: Param) =
        let cells = p.Raw.numel ()
        let value = p.Get()

        let spatial =
            if cells > 1L then
                sprintf ", spatial: mean of %d cells" cells
            else
                ""

        sprintf
            "%s = %g (%s, %s%s)"
            p.Name
            value
            (constraintText p.Constraint)
            (if p.Learnable then "learnable" else "fixed")
            spatial

    let private architecture (m: Model) (name: string) =
        match m.Closures |> List.tryFind (fun c -> c.Name = name) with
        | Some {
                   Architecture = Architecture.Mlp(layers, act)
               } ->
            sprintf
                "MLP [%s] %s"
                (layers |> List.map string |> String.concat "; ")
                ((sprintf "%A" act).ToLowerInvariant())
        | Some { Architecture = Architecture.Named n } -> sprintf "module '%s'" n
        | Some {
                   Architecture = Architecture.Cnn(channels, kernel, act)
               } ->
            sprintf
                "CNN [%s] kernel %d %s"
                (channels |> List.map string |> String.concat "; ")
                kernel
                ((sprintf "%A" act).ToLowerInvariant())
        | Some {
                   Architecture = Architecture.NamedField(n, outputs)
               } -> sprintf "module '%s' over whole fields, %d output(s)" n outputs
        | None -> "module"

    let private closure (m: Model) (name: string, net: torch.nn.Module<torch.Tensor, torch.Tensor>) =
        let weights = net.parameters () |> Seq.sumBy (fun t -> t.numel ())
        sprintf "%s: %s, %d weights" name (architecture m name) weights

    let private backendText (b: Backend) =
        match b with
        | Backend.Auto -> "Auto (generated kernels where they apply, else eager)"
        | Backend.Eager -> "Eager"
        | Backend.Kernels -> "Kernels"

    let private list (items: string seq) =
        match String.concat ", " items with
        | "" -> "none"
        | s -> s

    /// The description: one line per aspect, parameters at their current values.
    let describe
        (m: Model)
        (fields: string[])
        (parameters: Param[])
        (modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>)[])
        (backend: Backend)
        (dtype: torch.ScalarType)
        : string =
        use _ = torch.NewDisposeScope()

        [
            sprintf "Simulator of model '%s'" m.Name
            sprintf "  fields:     %s" (list fields)

            // Only for models that have them, so other models print as before.
            if not m.EllipticEquations.IsEmpty then
                sprintf
                    "  diagnostic: %s"
                    (list (m.EllipticEquations |> Seq.map (Print.ellipticEquation Notation.Unicode)))

            sprintf "  grid:       %s" (grid m.Domain)
            sprintf "  parameters: %s" (list (parameters |> Seq.map parameter))
            sprintf "  closures:   %s" (list (modules |> Seq.map (closure m)))
            sprintf "  forcings:   %s" (list (m.Forcings |> Seq.map (fun f -> f.Name)))
            sprintf "  back end:   %s, %O" (backendText backend) dtype
        ]
        |> String.concat "\n"
