namespace Hybrid

open System.Collections.Generic

/// The `initial` and `boundary` lines of a model text, collected in order. A second initial condition for a
/// field, a second boundary condition for a field and side, or an every-side line after a one-side line of the
/// same field is refused, naming the line of the first; a one-side line after an every-side line replaces it on
/// that side.
type internal ConditionLines(p: ExprParser.Cursor) =
    let initials = ResizeArray<Initial>()
    let boundaries = ResizeArray<string * Side option * BoundaryCondition>()
    // The first line of each kind, for the messages about repetitions.
    let initialAt = Dictionary<string, Token>()
    let sideAt = Dictionary<struct (string * Side), Token>()
    let firstSideAt = Dictionary<string, Side * Token>()
    let everySideAt = Dictionary<string, Token>()

    static let sideName (s: Side) =
        match s with
        | Side.Left -> "left"
        | Side.Right -> "right"
        | Side.Bottom -> "bottom"
        | Side.Top -> "top"

    static let condition (p: ExprParser.Cursor) : BoundaryCondition =
        let t = p.Advance()

        match t.Tok with
        | Tok.Ident "periodic" -> BoundaryCondition.Periodic
        | Tok.Ident "noflux" -> BoundaryCondition.NoFlux
        | Tok.Ident "dirichlet" -> BoundaryCondition.Dirichlet(ExprParser.expression p)
        | Tok.Ident "neumann" -> BoundaryCondition.Neumann(ExprParser.expression p)
        | _ ->
            ExprParser.failAt
                p
                t
                (sprintf
                    "expected a boundary condition (periodic, noflux, dirichlet <expr> or neumann <expr>) but found %s"
                    (ExprParser.describe t))

    let oneSide (keyword: Token) (n: string) (sd: Side) =
        match sideAt.TryGetValue(struct (n, sd)) with
        | true, first ->
            ExprParser.failAt
                p
                keyword
                (sprintf
                    "a second boundary condition for '%s' on the %s side; the first is at line %d. Keep one."
                    n
                    (sideName sd)
                    first.Line)
        | _ ->
            sideAt[struct (n, sd)] <- keyword

            if not (firstSideAt.ContainsKey n) then
                firstSideAt[n] <- (sd, keyword)

    let everySide (keyword: Token) (n: string) =
        match everySideAt.TryGetValue n with
        | true, first ->
            ExprParser.failAt
                p
                keyword
                (sprintf
                    "a second boundary condition for every side of '%s'; the first is at line %d. Keep one, or name a side to change it there, e.g. boundary %s left noflux."
                    n
                    first.Line
                    n)
        | _ -> ()

        match firstSideAt.TryGetValue n with
        | true, (sd, first) ->
            ExprParser.failAt
                p
                keyword
                (sprintf
                    "this line sets every side of '%s', but line %d already set its %s side. Put the every-side line first: a later line for one side then replaces it on that side."
                    n
                    first.Line
                    (sideName sd))
        | _ -> everySideAt[n] <- keyword

    /// Reads `boundary u [side] condition`, the cursor on the keyword.
    member _.Boundary(keyword: Token) =
        p.Advance() |> ignore
        let n = StatementReaders.name p "field"
        let s = p.Peek

        let side =
            match s.Tok with
            | Tok.Ident "left" -> Some Side.Left
            | Tok.Ident "right" -> Some Side.Right
            | Tok.Ident "bottom" -> Some Side.Bottom
            | Tok.Ident "top" -> Some Side.Top
            | _ -> None

        if side.IsSome then
            p.Advance() |> ignore

        let c = condition p

        match side with
        | Some sd -> oneSide keyword n sd
        | None -> everySide keyword n

        boundaries.Add((n, side, c))

    /// Reads `initial u = expression` or `initial u = data "key"`, the cursor on the keyword.
    member _.Initial(keyword: Token) =
        p.Advance() |> ignore
        let n = StatementReaders.name p "field"

        match initialAt.TryGetValue n with
        | true, first ->
            ExprParser.failAt
                p
                keyword
                (sprintf "a second initial condition for '%s'; the first is at line %d. Keep one." n first.Line)
        | _ -> initialAt[n] <- keyword

        ExprParser.expectOp p "=" (sprintf "after 'initial %s'" n)

        match p.Peek.Tok, (p.PeekAt 1).Tok with
        | Tok.Ident "data", Tok.Str key ->
            p.Advance() |> ignore
            p.Advance() |> ignore

            initials.Add {
                Field = n
                Value = InitialCondition.FromData key
            }
        | _ ->
            initials.Add {
                Field = n
                Value = InitialCondition.Expr(ExprParser.expression p)
            }

    /// The initial conditions, in the order of their lines.
    member _.Initials: Initial list = List.ofSeq initials

    /// The boundary conditions of `domain`, one per field and side (`Model.expandBoundaries`). Refuses boundary
    /// lines on a domain without sides (a point or a lattice).
    member _.Boundaries(domain: Domain) : Boundary list =
        let sides = Model.sides domain

        if sides.IsEmpty then
            match boundaries |> Seq.tryFind (fun (_, side, _) -> side.IsNone) with
            | Some(f, _, _) ->
                let at = everySideAt[f]

                raise (
                    SourceText.error
                        p.Source
                        at.Line
                        at.Col
                        (sprintf
                            "boundary conditions for '%s' need an interval or rectangle domain (0-D models and lattices have no sides); declare e.g. 'domain interval [0, 1] cells 100' or remove the line"
                            f)
                )
            | None -> ()

        Model.expandBoundaries sides boundaries
