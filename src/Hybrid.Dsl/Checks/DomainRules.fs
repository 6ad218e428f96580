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
                sprintf "The interval [%g, %g] is empty. Give x0 < x1, e.g. interval 0.0 1.0." a b
            if c < 1 then
                sprintf "The interval has %d cells. Give at least 1, e.g. cells 100." c
          ]
        | Domain.Rectangle(a, b, c, d, nx, ny) -> [
            if not (a < b) || not (c < d) then
                sprintf "The rectangle [%g, %g] × [%g, %g] is empty. Give x0 < x1 and y0 < y1." a b c d
            if nx < 1 || ny < 1 then
                sprintf "The rectangle has %d × %d cells. Give at least 1 along each axis." nx ny
          ]
        | Domain.Lattice(k, j) -> [
            if k < 1 then
                sprintf "The lattice has %d sites. Give at least 1, e.g. lattice 40." k
            if j < 0 then
                sprintf "The lattice has %d fast sites per slow site. Give 0 (none) or more." j
          ]

    /// The model declares at least one field.
    let hasFields (s: CheckScope) : string list =
        if s.Model.Fields.IsEmpty then
            [
                "The model has no fields. Declare at least one, e.g. field \"u\", with its equation."
            ]
        else
            []
