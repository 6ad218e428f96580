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
    Model: Model
    Grid: Grid
    Dtype: torch.ScalarType
    Device: torch.Device
    /// Field names in state order.
    Fields: string[]
    FieldIndex: IDictionary<string, int>
    /// Which fields live on the fast ring of a two-scale lattice.
    IsFast: bool[]
    /// Fast sites per slow site (J) of a two-scale lattice, 0 otherwise.
    FastSites: int
    Parameters: Param[]
    ParamIndex: IDictionary<string, int>
    Constants: IDictionary<string, float>
    Forcings: IDictionary<string, float -> torch.Tensor>
    Modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>)[]
    ModuleIndex: IDictionary<string, int>
    Arity: IDictionary<string, int>
    /// The right-hand side of each field's equation, in state order.
    Equations: Expr[]
    /// Each field's boundary conditions per axis (low side, high side); empty on points and lattices.
    Conditions: (BoundaryCondition * BoundaryCondition)[][]
    /// Each field's initial condition, if it has one.
    Initials: InitialCondition option[]
}

/// The resolve stage: `Model` + `CompileOptions` ↦ `Resolved`.
[<RequireQualifiedAccess>]
module internal Resolve =

    let private keep (t: torch.Tensor) = t.DetachFromDisposeScope()

    /// A 0-dim tensor of `v` in the resolved precision and device, kept out of dispose scopes.
    let constant (r: Resolved) (v: float) =
        keep (torch.tensor (v, dtype = r.Dtype, device = r.Device))

    /// The exception for a construct `Checks.compilable` refuses with the user's message: reaching it in a back
    /// end is a bug of ours.
    let passedChecks (model: Model) (what: string) =
        InvalidOperationException(
            $"Internal error: {what} in model '{model.Name}' passed Checks.compilable. Please report the model."
        )

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

    /// The closures' modules: supplied ones, or MLPs initialised from `options.Seed`.
    let private modules (options: CompileOptions) (model: Model) =
        torch.manual_seed (int64 options.Seed) |> ignore

        model.Closures
        |> List.map (fun c ->
            match options.Modules.TryFind c.Name, c.Architecture with
            | Some m, _ -> c.Name, m
            | None, Architecture.Mlp(layers, act) -> c.Name, mlp c.Name layers act options.Dtype
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

    /// Each field's conditions per axis, from `Checks.boundaryOf` (which raises the user's message).
    let private conditions (model: Model) (grid: Grid) (fields: string[]) =
        fields
        |> Array.map (fun f ->
            if grid.Dims = 0 || grid.IsLattice then
                [||]
            else
                let side = Checks.boundaryOf model f

                Array.init grid.Dims (fun a ->
                    if a = 0 then
                        side Side.Left, side Side.Right
                    else
                        side Side.Bottom, side Side.Top))

    /// Resolves `model` under `options`. Raises `ModelException` with the checks' problems, and for forcings or
    /// modules the options do not supply.
    let resolve (options: CompileOptions) (model: Model) : Resolved =
        Checks.compilable model
        Engine.init ()
        let grid = Grid.ofDomain model.Domain
        let fields = model.Fields |> List.map (fun f -> f.Name) |> Array.ofList
        let parameters = parameters model grid options.Dtype
        let forcings = forcings options model
        let modules = modules options model

        {
            Model = model
            Grid = grid
            Dtype = options.Dtype
            Device = Engine.torchDevice ()
            Fields = fields
            FieldIndex = fields |> Array.mapi (fun i f -> f, i) |> dict
            IsFast = model.Fields |> List.map (fun f -> f.Fast) |> Array.ofList
            FastSites =
                match grid with
                | Grid.Lattice(_, j) -> j
                | _ -> 0
            Parameters = parameters
            ParamIndex = parameters |> Array.mapi (fun i p -> p.Name, i) |> dict
            Constants = model.Constants |> List.map (fun c -> c.Name, c.Value) |> dict
            Forcings = forcings
            Modules = modules
            ModuleIndex = modules |> Array.mapi (fun i (n, _) -> n, i) |> dict
            Arity = model.Closures |> List.map (fun c -> c.Name, c.Arity) |> dict
            Equations = fields |> Array.map (fun f -> (Checks.equationOf model f).Rhs)
            Conditions = conditions model grid fields
            Initials =
                fields
                |> Array.map (fun f ->
                    model.Initials
                    |> List.tryFind (fun i -> i.Field = f)
                    |> Option.map (fun i -> i.Value))
        }
