namespace Hybrid

/// The limit on the size of one expression, so that every later stage (checking, printing, compiling)
/// works on expressions of a bounded size.
[<RequireQualifiedAccess>]
module internal SizeRules =

    /// The most nodes (numbers, symbols and operators) one expression may have.
    [<Literal>]
    let MaxNodes = 100_000

    /// The deepest nesting one expression may have, not counting the terms of a sum or the factors of a
    /// product (those are walked in loops everywhere): the compilers recurse over the rest.
    [<Literal>]
    let MaxNesting = 1_000

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

    /// The nesting of `e` (a leaf has 1), where a sum's left operand of a sum, or a product's left operand of a
    /// product, does not add a level: a flat sum of any length has nesting 2. One bottom-up pass, no recursion.
    let nesting (e: Expr) : int =
        // Whether a node's left operand continues its chain (a sum of a sum, a product of a product).
        let continuesChain (node: Expr) =
            match node with
            | Add(l, _)
            | Sub(l, _) ->
                match l with
                | Add _
                | Sub _ -> true
                | _ -> false
            | Mul(l, _)
            | Div(l, _) ->
                match l with
                | Mul _
                | Div _ -> true
                | _ -> false
            | _ -> false

        e
        |> Expr.fold (fun node kids ->
            match node, kids with
            | (Add _ | Sub _ | Mul _ | Div _), [ a; b ] -> max (if continuesChain node then a else a + 1) (b + 1)
            | _, [] -> 1
            | _, ks -> 1 + List.max ks)

    /// The problem of an expression nested deeper than the limit.
    let tooDeep (where: string) (levels: int) : string =
        sprintf
            "%s nests %d levels deep (operators inside operators, not counting the terms of a sum or the factors of a product), more than the limit of %d (Checks.maxNesting). Give parts of it names: intermediate fields, or a closure."
            (CheckWording.sentence where)
            levels
            MaxNesting

    /// Every expression has at most `MaxNodes` nodes and nests at most `MaxNesting` levels (counted with an
    /// explicit stack).
    let expressionSizes (s: CheckScope) : string list = [
        for where, e in expressions s.Model do
            let n = Expr.size e

            if n > MaxNodes then
                tooLarge where n
            else
                let d = nesting e

                if d > MaxNesting then
                    tooDeep where d
    ]
