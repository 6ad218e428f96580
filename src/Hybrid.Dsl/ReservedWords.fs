namespace Hybrid

/// Words with a built-in meaning inside expressions: the pointwise functions (`Pointwise.all`) and the operators'
/// names. They cannot name symbols: the parser reads them as the built-ins, and the checks refuse declarations
/// that use them.
[<RequireQualifiedAccess>]
module internal ReservedWords =

    /// Every reserved word, the pointwise functions first.
    let all: string list =
        (Pointwise.all |> List.map Pointwise.name)
        @ [
            "min"
            "max"
            "grad"
            "div"
            "lap"
            "dx"
            "dy"
            "advect"
            "sum_j"
            "jacobian"
            "advectFlux"
        ]
