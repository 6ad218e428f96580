namespace Hybrid

open System
open System.Collections.Generic

/// The statement grammar of the model text (see docs/dsl.fsx): declarations, equations, boundary and initial
/// conditions, one per line or separated by ';'. Declarations are collected in order and the `Model` record is
/// built once at the end, so reading n statements takes time linear in n.
module internal ModelParser =

    open ExprParser

    let private expectEnd (p: Cursor) (what: string) =
        let t = p.Peek

        if not (endOfStatement t) then
            let hint =
                match t.Tok with
                | Tok.Op "=" -> "; an equation's left side must be ∂u/∂t or du/dt"
                | _ -> ""

            failAt p t (sprintf "unexpected %s after %s%s" (describe t) what hint)

    let private signedNumber (p: Cursor) (what: string) : float =
        let neg =
            if isOp p.Peek "-" then
                p.Advance() |> ignore
                true
            else
                false

        let t = p.Advance()

        match t.Tok with
        | Tok.Number(v, _) -> if neg then -v else v
        | _ -> failAt p t (sprintf "expected a number for %s but found %s" what (describe t))

    let private integer (p: Cursor) (what: string) : int =
        let t = p.Advance()

        match t.Tok with
        | Tok.Number(v, true) when v >= 0.0 && v <= 1e8 -> int v
        | _ -> failAt p t (sprintf "expected a whole number for %s but found %s" what (describe t))

    /// True for the size separator 'x' or '×' (the lexer reads '×' as the operator '*').
    let private isTimes (p: Cursor) (t: Token) =
        match t.Tok with
        | Tok.Ident "x" -> true
        | Tok.Op "*" -> p.Source[t.Offset] = '×'
        | _ -> false

    /// `32x32` lexes as the number 32 and the name `x32`: the count after the 'x', when `t` is such a name.
    let private fusedCount (t: Token) : int option =
        match t.Tok with
        | Tok.Ident s when
            s.Length > 1
            && s.Length <= 9
            && s[0] = 'x'
            && s.Substring 1 |> Seq.forall (fun c -> c >= '0' && c <= '9')
            ->
            Some(int (s.Substring 1))
        | _ -> None

    /// Reads "x n", "× n" or "xn" after a first count, in `context` (e.g. "cells <nx> x <ny>").
    let private byCount (p: Cursor) (context: string) (what: string) : int =
        let t = p.Advance()

        match fusedCount t with
        | Some k -> k
        | None when isTimes p t -> integer p what
        | None -> failAt p t (sprintf "expected 'x' (or '×') in '%s' but found %s" context (describe t))

    let private name (p: Cursor) (what: string) : string =
        let t = p.Advance()

        match t.Tok with
        | Tok.Ident s when List.contains s reserved ->
            failAt p t (sprintf "'%s' is a built-in function name and cannot name a %s; choose another name" s what)
        | Tok.Ident s -> s
        | _ -> failAt p t (sprintf "expected the name of the %s but found %s" what (describe t))

    let private units (p: Cursor) : Units option =
        let t = p.Peek

        if isOp t "[" then
            p.Advance() |> ignore
            let start = t.Offset + 1
            let mutable close = p.Peek

            while not (isOp close "]") && close.Tok <> Tok.Eof && close.Tok <> Tok.Newline do
                p.Advance() |> ignore
                close <- p.Peek

            if not (isOp close "]") then
                failAt p t "this '[' of the units is not closed; add ']' after the units"

            p.Advance() |> ignore
            let text = p.Source.Substring(start, close.Offset - start)

            match Units.tryParse text with
            | Ok u -> Some u
            | Error(msg, at) ->
                let line, col = SourceText.position p.Source (start + at)
                raise (SourceText.error p.Source line col msg)
        else
            None

    let private bracketPair (p: Cursor) (what: string) : float * float =
        expectOp p "[" (sprintf "to open %s" what)
        let a = signedNumber p what
        expectOp p "," (sprintf "between the two bounds of %s" what)
        let b = signedNumber p what
        expectOp p "]" (sprintf "to close %s" what)
        a, b

    let private condition (p: Cursor) : BoundaryCondition =
        let t = p.Advance()

        match t.Tok with
        | Tok.Ident "periodic" -> BoundaryCondition.Periodic
        | Tok.Ident "noflux" -> BoundaryCondition.NoFlux
        | Tok.Ident "dirichlet" -> BoundaryCondition.Dirichlet(expression p)
        | Tok.Ident "neumann" -> BoundaryCondition.Neumann(expression p)
        | _ ->
            failAt
                p
                t
                (sprintf
                    "expected a boundary condition (periodic, noflux, dirichlet <expr> or neumann <expr>) but found %s"
                    (describe t))

    let private sideName (s: Side) =
        match s with
        | Side.Left -> "left"
        | Side.Right -> "right"
        | Side.Bottom -> "bottom"
        | Side.Top -> "top"

    let private activations = [
        "tanh", Activation.Tanh
        "relu", Activation.Relu
        "gelu", Activation.Gelu
        "silu", Activation.Silu
        "sigmoid", Activation.Sigmoid
        "softplus", Activation.Softplus
    ]

    /// Reads a whole model text into a `Model` without checking it. A second initial condition for a field, or a
    /// second boundary condition for a field and side, is refused here (ParseException naming both lines); a
    /// line for one side after an every-side line of the same field replaces it on that side.
    let parse (text: string) : Model =
        let p = Cursor(text, Lexer.tokenize text)
        let mutable modelName = "model"
        let mutable domain = Domain.Point
        let fields = ResizeArray<FieldDecl>()
        let pars = ResizeArray<ParamDecl>()
        let forcings = ResizeArray<ForcingDecl>()
        let closures = ResizeArray<ClosureDecl>()
        let constants = ResizeArray<ConstantDecl>()
        let equations = ResizeArray<Equation>()
        let initials = ResizeArray<Initial>()
        let boundaries = ResizeArray<string * Side option * BoundaryCondition>()
        // The first statement of each kind, for the messages about repetitions.
        let initialAt = Dictionary<string, Token>()
        let sideAt = Dictionary<struct (string * Side), Token>()
        let firstSideAt = Dictionary<string, Side * Token>()
        let everySideAt = Dictionary<string, Token>()
        let mutable declarations = 0

        let declared (t: Token) =
            declarations <- declarations + 1

            if declarations > Limits.MaxDeclarations then
                failAt
                    p
                    t
                    (sprintf
                        "the text declares more than %d symbols (Limits.MaxDeclarations); use spatial parameters or closures instead of one symbol per value"
                        Limits.MaxDeclarations)

        let boundary (keyword: Token) =
            p.Advance() |> ignore
            let n = name p "field"
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
            | Some sd ->
                match sideAt.TryGetValue(struct (n, sd)) with
                | true, first ->
                    failAt
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
            | None ->
                match everySideAt.TryGetValue n with
                | true, first ->
                    failAt
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
                    failAt
                        p
                        keyword
                        (sprintf
                            "this line sets every side of '%s', but line %d already set its %s side. Put the every-side line first: a later line for one side then replaces it on that side."
                            n
                            first.Line
                            (sideName sd))
                | _ -> everySideAt[n] <- keyword

            boundaries.Add((n, side, c))

        let initial (keyword: Token) =
            p.Advance() |> ignore
            let n = name p "field"

            match initialAt.TryGetValue n with
            | true, first ->
                failAt
                    p
                    keyword
                    (sprintf "a second initial condition for '%s'; the first is at line %d. Keep one." n first.Line)
            | _ -> initialAt[n] <- keyword

            expectOp p "=" (sprintf "after 'initial %s'" n)

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
                    Value = InitialCondition.Expr(expression p)
                }

        let domainStatement () =
            p.Advance() |> ignore
            let k = p.Advance()

            match k.Tok with
            | Tok.Ident "point" -> domain <- Domain.Point
            | Tok.Ident "interval" ->
                let a, b = bracketPair p "the interval"
                let c = p.Advance()

                if c.Tok <> Tok.Ident "cells" then
                    failAt p c (sprintf "expected 'cells <n>' after the interval but found %s" (describe c))

                domain <- Domain.Interval(a, b, integer p "the number of cells")
            | Tok.Ident "rectangle" ->
                let a, b = bracketPair p "the x range"
                let x = p.Advance()

                if not (isTimes p x) then
                    failAt p x (sprintf "expected 'x' (or '×') between the two ranges but found %s" (describe x))

                let c, d = bracketPair p "the y range"
                let cl = p.Advance()

                if cl.Tok <> Tok.Ident "cells" then
                    failAt p cl (sprintf "expected 'cells <nx> x <ny>' but found %s" (describe cl))

                let nx = integer p "the number of cells along x"
                let ny = byCount p "cells <nx> x <ny>" "the number of cells along y"
                domain <- Domain.Rectangle(a, b, c, d, nx, ny)
            | Tok.Ident "lattice" ->
                let k = integer p "the number of lattice sites"

                let j =
                    match fusedCount p.Peek with
                    | Some j ->
                        p.Advance() |> ignore
                        j
                    | None when isTimes p p.Peek ->
                        p.Advance() |> ignore
                        integer p "the number of fast sites per slow site"
                    | None -> 0

                domain <- Domain.Lattice(k, j)
            | _ ->
                failAt
                    p
                    k
                    (sprintf
                        "expected a domain: point, interval [a, b] cells n, rectangle [a, b] x [c, d] cells nx x ny, or lattice K [x J]; found %s"
                        (describe k))

        let paramStatement (keyword: Token) =
            p.Advance() |> ignore
            declared keyword
            let n = name p "parameter"
            let mutable c = Constraint.Free

            if isOp p.Peek ">" then
                p.Advance() |> ignore
                let z = signedNumber p "the lower bound"

                if z <> 0.0 then
                    failAt p p.Peek "only '> 0' is supported; use 'in [a, b]' for other bounds"

                c <- Constraint.Positive

            expectOp p "=" (sprintf "and the initial value of parameter '%s' (e.g. param %s = 0.1)" n n)
            let v = signedNumber p (sprintf "the value of '%s'" n)
            let mutable learnable = true
            let mutable shape = ParamShape.Scalar
            let mutable u = None
            let mutable go = true

            while go do
                let o = p.Peek

                match o.Tok with
                | Tok.Ident "positive" ->
                    p.Advance() |> ignore
                    c <- Constraint.Positive
                | Tok.Ident "in" ->
                    p.Advance() |> ignore
                    c <- Constraint.Bounded(bracketPair p "the bounds")
                | Tok.Ident "fixed" ->
                    p.Advance() |> ignore
                    learnable <- false
                | Tok.Ident "learnable" ->
                    p.Advance() |> ignore
                    learnable <- true
                | Tok.Ident "spatial" ->
                    p.Advance() |> ignore
                    shape <- ParamShape.Spatial
                | Tok.Op "[" -> u <- units p
                | _ when endOfStatement o -> go <- false
                | _ ->
                    failAt
                        p
                        o
                        (sprintf
                            "unexpected %s in the declaration of parameter '%s'; options are positive, in [a, b], fixed, learnable, spatial and [units]"
                            (describe o)
                            n)

            pars.Add {
                Name = n
                Value = v
                Learnable = learnable
                Constraint = c
                Shape = shape
                Units = u
            }

        let closureStatement (keyword: Token) =
            p.Advance() |> ignore
            declared keyword
            let n = name p "closure"
            expectOp p "/" (sprintf "and the arity after the closure name, e.g. closure %s/2" n)
            let arity = integer p "the closure's arity"
            expectOp p "=" "and the architecture, e.g. = mlp [2, 32, 1] tanh"
            let a = p.Advance()

            let arch =
                match a.Tok with
                | Tok.Ident "mlp" ->
                    expectOp p "[" "to open the layer widths"
                    let layers = ResizeArray<int>()
                    layers.Add(integer p "a layer width")

                    while isOp p.Peek "," do
                        p.Advance() |> ignore
                        layers.Add(integer p "a layer width")

                    expectOp p "]" "to close the layer widths"

                    let act =
                        match p.Peek.Tok with
                        | Tok.Ident s ->
                            match List.tryFind (fun (k, _) -> k = s) activations with
                            | Some(_, act) ->
                                p.Advance() |> ignore
                                act
                            | None ->
                                failAt
                                    p
                                    p.Peek
                                    (sprintf
                                        "unknown activation '%s'; use tanh, relu, gelu, silu, sigmoid or softplus"
                                        s)
                        | _ -> Activation.Tanh

                    Architecture.Mlp(List.ofSeq layers, act)
                | Tok.Ident "named" ->
                    let s = p.Advance()

                    match s.Tok with
                    | Tok.Str key -> Architecture.Named key
                    | _ -> failAt p s (sprintf "expected a quoted module name after 'named' but found %s" (describe s))
                | _ ->
                    failAt p a (sprintf "expected an architecture (mlp [..] or named \"..\") but found %s" (describe a))

            closures.Add {
                Name = n
                Arity = arity
                Architecture = arch
                Units = units p
            }

        let statement () =
            let t = p.Peek

            match tryLhs p with
            | Some field ->
                expectOp p "=" "after the left-hand side"

                if endOfStatement p.Peek then
                    failAt p p.Peek (sprintf "the equation of '%s' has no right-hand side" field)

                equations.Add { Field = field; Rhs = expression p }
            | None ->
                match t.Tok with
                | Tok.Ident "model" ->
                    p.Advance() |> ignore
                    let n = p.Advance()

                    match n.Tok with
                    | Tok.Ident s
                    | Tok.Str s -> modelName <- s
                    | _ -> failAt p n (sprintf "expected the model's name after 'model' but found %s" (describe n))
                | Tok.Ident "domain" -> domainStatement ()
                | Tok.Ident "field" ->
                    p.Advance() |> ignore
                    declared t
                    let n = name p "field"

                    let fast =
                        if p.Peek.Tok = Tok.Ident "fast" then
                            p.Advance() |> ignore
                            true
                        else
                            false

                    fields.Add {
                        Name = n
                        Units = units p
                        Fast = fast
                    }
                | Tok.Ident "param" -> paramStatement t
                | Tok.Ident "forcing" ->
                    p.Advance() |> ignore
                    declared t
                    let n = name p "forcing"
                    forcings.Add { Name = n; Units = units p }
                | Tok.Ident "const" ->
                    p.Advance() |> ignore
                    declared t
                    let n = name p "constant"
                    expectOp p "=" (sprintf "and the value of constant '%s'" n)
                    let v = signedNumber p (sprintf "the value of '%s'" n)
                    constants.Add { Name = n; Value = v; Units = units p }
                | Tok.Ident "closure" -> closureStatement t
                | Tok.Ident "boundary" -> boundary t
                | Tok.Ident "initial" -> initial t
                | _ ->
                    failAt
                        p
                        t
                        (sprintf
                            "expected an equation (∂u/∂t = … or du/dt = …) or a declaration (model, domain, field, param, forcing, closure, const, boundary, initial) but found %s"
                            (describe t))

        while p.Peek.Tok <> Tok.Eof do
            match p.Peek.Tok with
            | Tok.Newline
            | Tok.Op ";" -> p.Advance() |> ignore
            | _ ->
                statement ()
                expectEnd p "the statement"

        let sides = Model.sides domain

        if sides.IsEmpty then
            match boundaries |> Seq.tryFind (fun (_, side, _) -> side.IsNone) with
            | Some(f, _, _) ->
                let at = everySideAt[f]

                raise (
                    SourceText.error
                        text
                        at.Line
                        at.Col
                        (sprintf
                            "boundary conditions for '%s' need an interval or rectangle domain (0-D models and lattices have no sides); declare e.g. 'domain interval [0, 1] cells 100' or remove the line"
                            f)
                )
            | None -> ()

        {
            Name = modelName
            Domain = domain
            Fields = List.ofSeq fields
            Params = List.ofSeq pars
            Forcings = List.ofSeq forcings
            Closures = List.ofSeq closures
            Constants = List.ofSeq constants
            Equations = List.ofSeq equations
            Boundaries = Model.expandBoundaries sides boundaries
            Initials = List.ofSeq initials
        }
