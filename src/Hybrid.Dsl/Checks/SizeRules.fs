namespace Hybrid

/// The limit on the size of one expression, so that every later stage (checking, printing, compiling)
/// works on expressions of a bounded size.
[<RequireQualifiedAccess>]
module internal SizeRules =

    /// The most nodes (numbers, symbols and operators) one expression may have.
    [<Literal>]
    let MaxNodes = 100_000

    /// The problem of an expression over the limit.
    let tooLarge (where: string) (nodes: int) : string =
        sprintf
            "%s has %d nodes (numbers, symbols and operators), more than the limit of %d (Checks.maxExpressionNodes). Split the sum into several fields or use a closure."
            (CheckWording.sentence where)
            nodes
            MaxNodes

    /// Every expression of the model with where it sits: equations, initial conditions, boundary values.
    let private expressions (m: Model) : (string * Expr) list = [
        for eq in m.Equations do
            CheckWording.inEquation eq.Field, eq.Rhs

        for i in m.Initials do
            match i.Value with
            | InitialCondition.Expr e -> CheckWording.inInitial i.Field, e
            | InitialCondition.FromData _ -> ()

        for b in m.Boundaries do
            match b.Condition with
            | BoundaryCondition.Dirichlet e
            | BoundaryCondition.Neumann e -> CheckWording.inBoundary b.Side b.Field, e
            | BoundaryCondition.Periodic
            | BoundaryCondition.NoFlux -> ()
    ]

    /// Every expression has at most `MaxNodes` nodes (counted with an explicit stack).
    let expressionSizes (s: CheckScope) : string list = [
        for where, e in expressions s.Model do
            let n = Expr.size e

            if n > MaxNodes then
                tooLarge where n
    ]
