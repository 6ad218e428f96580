namespace Hybrid.Interactive

open Hybrid
open Hybrid.Numerics

/// A simulator's parameters θ as a table: name, constraint, current value, learnable or fixed, cells.
[<RequireQualifiedAccess>]
module ParameterTable =

    /// `free`, `positive` or `in [lo, hi]`, as the DSL writes the constraint.
    let constraintText (c: Constraint) : string =
        match c with
        | Constraint.Free -> "free"
        | Constraint.Positive -> "positive"
        | Constraint.Bounded(lo, hi) -> $"in [{Html.number lo}, {Html.number hi}]"

    /// One row: name, constraint, value (the mean over the cells of a spatial parameter), `learnable` or
    /// `fixed`, number of cells (1 for a scalar).
    let row (p: Param) : string list = [
        p.Name
        constraintText p.Constraint
        Html.number (p.Get())
        (if p.Learnable then "learnable" else "fixed")
        string (p.Raw.numel ())
    ]

    /// The column headers.
    let header: string list = [ "parameter"; "constraint"; "value"; "training"; "cells" ]

    /// The parameters as an HTML table, one row each, in the order given.
    let html (parameters: Param seq) : string =
        Html.table "hybrid-parameters" header (parameters |> Seq.map row |> List.ofSeq)

    /// The parameters as text, one line each: `k = 0.5 (positive, learnable)`.
    let text (parameters: Param seq) : string =
        parameters
        |> Seq.map (fun p ->
            match row p with
            | [ name; c; value; training; cells ] when cells <> "1" ->
                $"{name} = {value} ({c}, {training}, mean of {cells} cells)"
            | [ name; c; value; training; _ ] -> $"{name} = {value} ({c}, {training})"
            | other -> String.concat " " other)
        |> String.concat "\n"
