namespace Hybrid.Compiler

open System
open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.Numerics

/// A model resolved for the back ends: every symbol's table, the parameters (those of initial conditions
/// included), forcings with their data, seeded modules, each field's equation, boundary conditions per field
/// and side, and initial conditions. Every "cannot compile" message is raised while resolving (by
/// `Checks.compilable`, or here for what only compile options supply); the back ends assume a resolved model.
type internal Resolved = {
    /// The torch-free part, shared with the kernel back end.
    System: ResolvedSystem
    Dtype: torch.ScalarType
    Device: torch.Device
    Parameters: Param[]
    ParamIndex: IDictionary<string, int>
    Forcings: IDictionary<string, float -> torch.Tensor>
    Modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>)[]
    ModuleIndex: IDictionary<string, int>
} with

    member r.Model = r.System.Model
    member r.Grid = r.System.Grid
    /// Field names in state order.
    member r.Fields = r.System.Fields
    member r.FieldIndex = r.System.FieldIndex
    /// Which fields live on the fast ring of a two-scale lattice.
    member r.IsFast = r.System.IsFast
    /// Fast sites per slow site (J) of a two-scale lattice, 0 otherwise.
    member r.FastSites = r.System.FastSites
    member r.Constants = r.System.Constants
    member r.Arity = r.System.Arity
    /// The right-hand side of each field's equation, in state order.
    member r.Equations = r.System.Equations
    /// Each field's boundary conditions per axis (low side, high side); empty on points and lattices.
    member r.Conditions = r.System.Conditions
    /// Each field's initial condition, if it has one.
    member r.Initials = r.System.Initials

/// The resolve stage: `Model` + `CompileOptions` ↦ `Resolved`.
[<RequireQualifiedAccess>]
module internal Resolve =

    let private keep (t: torch.Tensor) = t.DetachFromDisposeScope()

    /// A 0-dim tensor of `v` in the resolved precision and device, kept out of dispose scopes.
    let constant (r: Resolved) (v: float) =
        keep (torch.tensor (v, dtype = r.Dtype, device = r.Device))

    /// The exception for a construct `Checks.compilable` refuses (`ResolvedSystem.passedChecks`).
    let passedChecks (model: Model) (what: string) = ResolvedSystem.passedChecks model what

    let private mlp (name: string) (layers: int list) (act: Activation) (dtype: torch.ScalarType) =
        let widths = Array.ofList layers

        if widths.Length < 2 then
            raise (
                ModelException($"Closure '{name}' needs at least two layer widths (inputs and output), got {layers}.")
            )

        let mods = List<torch.nn.Module<torch.Tensor, torch.Tensor>>()

        for i in 0 .. widths.Length - 2 do
            mods.Add(torch.nn.Linear(int64 widths[i], int64 widths[i + 1]))

            if i < widths.Length - 2 then
                mods.Add(Hybrid.Training.Neural.activationModule act)

        let seq = torch.nn.Sequential(mods)
        seq.``to`` (dtype) |> ignore
        seq :> torch.nn.Module<torch.Tensor, torch.Tensor>

    let private parameters (model: Model) (grid: Grid) (dtype: torch.ScalarType) =
        model.Params
        |> List.map (fun p ->
            let shape =
                match p.Shape with
                | ParamShape.Scalar -> [||]
                | ParamShape.Spatial -> Array.append [| 1L |] grid.Shape

            Param(p.Name, p.Constraint, p.Value, shape, dtype, p.Learnable))
        |> Array.ofList

    let private forcings (options: CompileOptions) (model: Model) =
        model.Forcings
        |> List.map (fun f ->
            match options.Forcings.TryFind f.Name with
            | Some g -> f.Name, g
            | None ->
                raise (
                    ModelException(
                        $"Forcing '{f.Name}' of model '{model.Name}' has no data. Pass it in CompileOptions.Forcings as a function of time."
                    )
                ))
        |> dict

    /// The padding of a CNN closure's axes: circular along an axis where every field its calls read (every field
    /// when they read none) is periodic on both sides, and on lattices; replicate (the edge cell repeated)
    /// elsewhere.
    let cnnPadding (system: ResolvedSystem) (closure: string) : Hybrid.Training.Padding[] =
        let grid = system.Grid

        if grid.IsLattice then
            [| Hybrid.Training.Padding.Periodic |]
        else
            let read =
                system.Equations
                |> Seq.collect Expr.subterms
                |> Seq.collect (fun node ->
                    match node with
                    | Call(n, args)
                    | CallOutput(n, _, args) when n = closure -> args |> Seq.collect Expr.subterms
                    | _ -> Seq.empty)
                |> Seq.choose (fun node ->
                    match node with
                    | Sym n when system.FieldIndex.ContainsKey n -> Some system.FieldIndex[n]
                    | _ -> None)
                |> Seq.distinct
                |> Array.ofSeq

            let fields =
                if read.Length = 0 then
                    Array.init system.Fields.Length id
                else
                    read

            Array.init grid.Dims (fun a ->
                if
                    fields
                    |> Array.forall (fun f ->
                        let low, high = system.Conditions[f][a]
                        low = BoundaryCondition.Periodic && high = BoundaryCondition.Periodic)
                then
                    Hybrid.Training.Padding.Periodic
                else
                    Hybrid.Training.Padding.Replicate)

    /// The closures' modules: supplied ones, or MLPs and CNNs initialised from `options.Seed`.
    let private modules (options: CompileOptions) (system: ResolvedSystem) =
        let model = system.Model
        torch.manual_seed (int64 options.Seed) |> ignore

        model.Closures
        |> List.map (fun c ->
            match options.Modules.TryFind c.Name, c.Architecture with
            | Some m, _ -> c.Name, m
            | None, Architecture.Mlp(layers, act) -> c.Name, mlp c.Name layers act options.Dtype
            | None, Architecture.Cnn(channels, kernel, act) ->
                let dims = max 1 system.Grid.Dims

                c.Name,
                new Hybrid.Training.FieldCnn(
                    c.Name,
                    dims,
                    channels,
                    kernel,
                    act,
                    cnnPadding system c.Name,
                    options.Dtype
                )
                :> torch.nn.Module<torch.Tensor, torch.Tensor>
            | None, Architecture.NamedField(key, _)
            | None, Architecture.Named key ->
                match options.Modules.TryFind key with
                | Some m -> c.Name, m
                | None ->
                    raise (
                        ModelException(
                            $"Closure '{c.Name}' names the module '{key}', which was not supplied. Pass it in CompileOptions.Modules under '{key}'."
                        )
                    ))
        |> Array.ofList

    /// Resolves `model` under `options`. Raises `ModelException` with the checks' problems, and for forcings or
    /// modules the options do not supply.
    let resolve (options: CompileOptions) (model: Model) : Resolved =
        let system = ResolvedSystem.ofModel model
        Engine.init ()
        let parameters = parameters model system.Grid options.Dtype
        let forcings = forcings options model
        let modules = modules options system

        {
            System = system
            Dtype = options.Dtype
            Device = Engine.torchDevice ()
            Parameters = parameters
            ParamIndex = parameters |> Array.mapi (fun i p -> p.Name, i) |> dict
            Forcings = forcings
            Modules = modules
            ModuleIndex = modules |> Array.mapi (fun i (n, _) -> n, i) |> dict
        }
