namespace Hybrid

/// The three notations a model or expression prints in.
[<RequireQualifiedAccess>]
type Notation =

    /// `∂u/∂t = ∇·(D ∇u) + r u (1 − u)` (parses back).
    | Unicode

    /// `du/dt = div(D*grad(u)) + r*u*(1 - u)` (parses back).
    | Ascii

    /// `\frac{\partial u}{\partial t} = \nabla\cdot(D \nabla u) + …` (for papers; print only).
    | Latex

/// Printing expressions and models. Unicode and ASCII output parse back to the same value
/// (`Parse.model (Print.model n m) = m`).
[<RequireQualifiedAccess>]
module Print =

    /// The name of a pointwise function as written in text (`Pointwise.name`: `exp`, `log`, …, `softplus`).
    val fnName: fn: Fn -> string

    /// Formats a number so that it reads back exactly (round-trip format, invariant culture).
    val number: v: float -> string

    /// Prints an expression in the given notation. Iterative (an explicit stack) and linear in the length
    /// of the text, so a flat sum of 10⁵ terms prints in milliseconds on any thread.
    val expr: notation: Notation -> e: Expr -> string

    /// Prints an equation ∂field/∂t = rhs in the given notation.
    val equation: notation: Notation -> eq: Equation -> string

    /// Prints the elliptic equation of a diagnostic field: `Δψ = rhs`, or `Δψ − κ² ψ = rhs` (ASCII `lap(psi) = rhs`).
    val ellipticEquation: notation: Notation -> eq: EllipticEquation -> string

    /// Prints a whole model in the text form (header declarations, equations, boundary and initial
    /// conditions, one statement per line; see docs/dsl.fsx for the grammar). Unicode and ASCII parse back
    /// with `Parse.model`; LaTeX prints the equations only, as an `aligned` block.
    val model: notation: Notation -> m: Model -> string
