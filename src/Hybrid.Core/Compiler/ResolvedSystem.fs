namespace Hybrid.Compiler

open System
open System.Collections.Generic
open Hybrid
open Hybrid.Numerics

/// The torch-free part of the resolve stage, what both back ends read: the checked model, its grid, the fields
/// in state order (fast ring or not), the parameters' names and shapes, constants, closure arities, each field's
/// equation, boundary conditions per field and axis, and initial conditions. The eager back end's `Resolved`
/// adds tensors and modules to it; the kernel back end lowers it.
type internal ResolvedSystem = {
    /// The model, checked by `Checks.compilable`.
    Model: Model
    Grid: Grid
    /// Field names in state order.
    Fields: string[]
    FieldIndex: IDictionary<string, int>
    /// Which fields live on the fast ring of a two-scale lattice.
    IsFast: bool[]
    /// Fast sites per slow site (J) of a two-scale lattice, 0 otherwise.
    FastSites: int
    /// Parameter names in declaration order (the order of θ).
    ParamNames: string[]
    /// Which parameters hold one value per cell.
    ParamSpatial: bool[]
    Constants: IDictionary<string, float>
    Arity: IDictionary<string, int>
    /// The right-hand side of each field's equation, in state order.
    Equations: Expr[]
    /// Each field's boundary conditions per axis (low side, high side); empty on points and lattices.
    Conditions: (BoundaryCondition * BoundaryCondition)[][]
    /// Each field's initial condition, if it has one.
    Initials: InitialCondition option[]
    /// The diagnostic fields' elliptic equations, in declaration order of the diagnostic fields.
    Diagnostics: EllipticEquation[]
    /// Each diagnostic field's boundary conditions per axis (low side, high side), like `Conditions`.
    DiagnosticConditions: (BoundaryCondition * BoundaryCondition)[][]
}

/// Builds the `ResolvedSystem` of a model: the one place both back ends get fields, equations and boundary
/// conditions from. Every "cannot compile" message of the model itself comes from `Checks.compilable` here.
[<RequireQualifiedAccess>]
module internal ResolvedSystem =

    /// The exception for a construct `Checks.compilable` refuses with the user's message: reaching it in a back
    /// end is a bug of ours.
    let passedChecks (model: Model) (what: string) =
        InvalidOperationException(
            $"Internal error: {what} in model '{model.Name}' passed Checks.compilable. Please report the model."
        )

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

    /// Checks `model` (`Checks.compilable`, raising `ModelException` with its problems) and resolves it.
    let ofModel (model: Model) : ResolvedSystem =
        Checks.compilable model
        let grid = Grid.ofDomain model.Domain
        let fields = model.Fields |> List.map (fun f -> f.Name) |> Array.ofList

        {
            Model = model
            Grid = grid
            Fields = fields
            FieldIndex = fields |> Array.mapi (fun i f -> f, i) |> dict
            IsFast = model.Fields |> List.map (fun f -> f.Fast) |> Array.ofList
            FastSites =
                match grid with
                | Grid.Lattice(_, j) -> j
                | _ -> 0
            ParamNames = model.Params |> List.map (fun p -> p.Name) |> Array.ofList
            ParamSpatial = model.Params |> List.map (fun p -> p.Shape = ParamShape.Spatial) |> Array.ofList
            Constants = model.Constants |> List.map (fun c -> c.Name, c.Value) |> dict
            Arity = model.Closures |> List.map (fun c -> c.Name, c.Arity) |> dict
            Equations = fields |> Array.map (fun f -> (Checks.equationOf model f).Rhs)
            Conditions = conditions model grid fields
            Initials =
                fields
                |> Array.map (fun f ->
                    model.Initials
                    |> List.tryFind (fun i -> i.Field = f)
                    |> Option.map (fun i -> i.Value))
            Diagnostics =
                model.Diagnostics
                |> List.map (fun d -> model.EllipticEquations |> List.find (fun e -> e.Field = d.Name))
                |> Array.ofList
            DiagnosticConditions =
                conditions model grid (model.Diagnostics |> List.map (fun d -> d.Name) |> Array.ofList)
        }
