namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// Boundary conditions on the eager back end: each field's conditions as a function of the evaluation context
/// (boundary values may depend on t, x, y and parameters), and those of an operator's operand.
[<RequireQualifiedAccess>]
module internal Boundaries =

    /// The `FieldBoundary` per context of each entry of `conditions` (per axis: low side, high side). `compile`
    /// compiles a boundary value that is not a number (on first use, so it may be the expression compiler that is
    /// being built).
    let ofConditions
        (r: Resolved)
        (conditions: (BoundaryCondition * BoundaryCondition)[][])
        (compile: Expr -> Ctx -> torch.Tensor)
        : (Ctx -> FieldBoundary)[] =
        conditions
        |> Array.map (fun axes ->
            if axes.Length = 0 then
                fun _ -> [||]
            else
                let make (a: int) (low: bool) (condition: BoundaryCondition) : Ctx -> Bc =
                    let ax = r.Grid.Axes[a]
                    let at = Resolve.constant r (if low then ax.Lo else ax.Hi)

                    let value (e: Expr) =
                        match e with
                        | Num v ->
                            let c = Resolve.constant r v
                            fun (_: Ctx) -> c
                        | _ ->
                            let ev = lazy (compile e)

                            fun (c: Ctx) ->
                                let coords = Array.init r.Grid.Dims (fun d -> if d = a then at else c.Coords[d])
                                ev.Value { c with Coords = coords }

                    match condition with
                    | BoundaryCondition.Periodic -> fun _ -> Bc.Periodic
                    | BoundaryCondition.NoFlux -> fun _ -> Bc.NoFlux
                    | BoundaryCondition.Dirichlet e ->
                        let v = value e
                        fun c -> Bc.Dirichlet(v c)
                    | BoundaryCondition.Neumann e ->
                        let v = value e
                        fun c -> Bc.Neumann(v c)

                let sides = axes |> Array.mapi (fun a (lo, hi) -> make a true lo, make a false hi)

                fun c -> sides |> Array.map (fun (lo, hi) -> { Low = lo c; High = hi c }))

    /// Each field's `FieldBoundary` per context (`ofConditions` of the resolved fields' conditions).
    let ofFields (r: Resolved) (compile: Expr -> Ctx -> torch.Tensor) : (Ctx -> FieldBoundary)[] =
        ofConditions r r.Conditions compile

    /// The conditions of an operator's operand: those of the fields it reads (`Checks.compilable` has made sure
    /// they agree on every side), or no-flux walls for an operand without fields (a coordinate or parameter
    /// expression).
    let ofOperand (r: Resolved) (fields: (Ctx -> FieldBoundary)[]) (fieldsIn: Set<int>) : Ctx -> FieldBoundary =
        match Set.toList fieldsIn with
        | i :: _ -> fields[i]
        | [] -> fun _ -> Boundary.uniform r.Grid Bc.NoFlux
