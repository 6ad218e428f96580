namespace Hybrid

/// Checks of the domain and of the model having something to simulate.
[<RequireQualifiedAccess>]
module internal DomainRules =

    /// The domain is not empty: an interval or rectangle with x0 < x1 (y0 < y1) and at least one cell, a
    /// lattice with at least one site.
    let domain (s: CheckScope) : string list =
        match s.Model.Domain with
        | Domain.Point -> []
        | Domain.Interval(a, b, c) -> [
            if not (a < b) then
                sprintf "The interval [%g, %g] is empty. Give x0 < x1, e.g. %s." a b (CheckFixes.interval s.Syntax)
            if c < 1 then
                sprintf "The interval has %d cells. Give at least 1, e.g. %s." c (CheckFixes.interval s.Syntax)
          ]
        | Domain.Rectangle(a, b, c, d, nx, ny) -> [
            if not (a < b) || not (c < d) then
                sprintf
                    "The rectangle [%g, %g] × [%g, %g] is empty. Give x0 < x1 and y0 < y1, e.g. %s."
                    a
                    b
                    c
                    d
                    (CheckFixes.rectangle s.Syntax)
            if nx < 1 || ny < 1 then
                sprintf
                    "The rectangle has %d × %d cells. Give at least 1 along each axis, e.g. %s."
                    nx
                    ny
                    (CheckFixes.rectangle s.Syntax)
          ]
        | Domain.Lattice(k, j) -> [
            if k < 1 then
                sprintf "The lattice has %d sites. Give at least 1, e.g. %s." k (CheckFixes.lattice s.Syntax "40")
            if j < 0 then
                sprintf "The lattice has %d fast sites per slow site. Give 0 (none) or more." j
          ]

    /// The model declares at least one field.
    let hasFields (s: CheckScope) : string list =
        if s.Model.Fields.IsEmpty then
            [
                sprintf
                    "The model has no fields. Declare at least one, e.g. %s, with its equation."
                    (CheckFixes.field s.Syntax "u")
            ]
        else
            []
