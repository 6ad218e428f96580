namespace Hybrid

open System

/// Parsing the text form (Unicode or ASCII) into expressions, equations and models. Every failure is a
/// `ParseException` (with 1-based line and column and a caret under the spot) or, for a well-formed text
/// that describes an ill-formed model, a `ModelException`; no other exception escapes.
[<RequireQualifiedAccess>]
module Parse =

    /// Names of the built-in one-argument functions.
    let functions: (string * Fn) list = [
        "exp", Fn.Exp
        "log", Fn.Log
        "sqrt", Fn.Sqrt
        "abs", Fn.Abs
        "sin", Fn.Sin
        "cos", Fn.Cos
        "tanh", Fn.Tanh
        "sigmoid", Fn.Sigmoid
        "softplus", Fn.Softplus
    ]

    /// Words with a built-in meaning inside expressions; they cannot name symbols.
    let reserved: string list =
        (functions |> List.map fst)
        @ [ "min"; "max"; "grad"; "div"; "lap"; "dx"; "dy"; "advect"; "sum_j" ]

    let private maxDepth = 150

    type private Pending =
        | One of Boundary
        | AllSides of string * BoundaryCondition * line: int * col: int

    type private Parser(source: string, tokens: Token[]) =
        let mutable pos = 0
        let mutable depth = 0

        member _.Source = source
        member _.Peek = tokens[pos]

        member _.PeekAt k =
            tokens[min (pos + k) (tokens.Length - 1)]

        member _.Advance() =
            let t = tokens[pos]

            if pos < tokens.Length - 1 then
                pos <- pos + 1

            t

        member _.Enter(t: Token) =
            depth <- depth + 1

            if depth > maxDepth then
                raise (
                    SourceText.error
                        source
                        t.Line
                        t.Col
                        (sprintf "the expression is nested more than %d levels deep; split it up" maxDepth)
                )

        member _.Leave() = depth <- depth - 1

    let private describe (t: Token) =
        match t.Tok with
        | Tok.Number(v, _) -> sprintf "the number %s" (Print.number v)
        | Tok.Ident s -> sprintf "'%s'" s
        | Tok.Str s -> sprintf "the string \"%s\"" s
        | Tok.Op o -> sprintf "'%s'" o
        | Tok.Nabla -> "'∇'"
        | Tok.NablaDot -> "'∇·'"
        | Tok.Laplace -> "'Δ'"
        | Tok.Partial -> "'∂'"
        | Tok.Root -> "'√'"
        | Tok.FastSum -> "'Σ_j'"
        | Tok.Superscript _ -> "a superscript exponent"
        | Tok.Newline -> "the end of the line"
        | Tok.Eof -> "the end of the text"

    let private failAt (p: Parser) (t: Token) (msg: string) : 'a =
        raise (SourceText.error p.Source t.Line t.Col msg)

    let private expectOp (p: Parser) (op: string) (what: string) =
        let t = p.Peek

        match t.Tok with
        | Tok.Op o when o = op -> p.Advance() |> ignore
        | _ -> failAt p t (sprintf "expected '%s' %s but found %s" op what (describe t))

    let private isOp (t: Token) (op: string) =
        match t.Tok with
        | Tok.Op o -> o = op
        | _ -> false

    let private startsOperand (t: Token) =
        match t.Tok with
        | Tok.Number _
        | Tok.Ident _
        | Tok.Nabla
        | Tok.NablaDot
        | Tok.Laplace
        | Tok.Partial
        | Tok.Root
        | Tok.FastSum -> true
        | Tok.Op "(" -> true
        | _ -> false

    let rec private sum (p: Parser) : Expr =
        let mutable acc = product p
        let mutable go = true

        while go do
            let t = p.Peek

            if isOp t "+" then
                p.Advance() |> ignore
                acc <- Add(acc, product p)
            elif isOp t "-" then
                p.Advance() |> ignore
                acc <- Sub(acc, product p)
            else
                go <- false

        acc

    and private product (p: Parser) : Expr =
        let mutable acc = unary p
        let mutable go = true

        while go do
            let t = p.Peek

            if isOp t "·" && (p.PeekAt 1).Tok = Tok.Nabla && isOp (p.PeekAt 2) ")" then
                // "(v·∇)u": the velocity ends here; the enclosing parenthesis makes the advection.
                go <- false
            elif isOp t "*" || isOp t "·" then
                p.Advance() |> ignore
                acc <- Mul(acc, unary p)
            elif isOp t "/" then
                p.Advance() |> ignore
                acc <- Div(acc, unary p)
            elif startsOperand t then
                acc <- Mul(acc, power p)
            else
                go <- false

        acc

    and private unary (p: Parser) : Expr =
        let t = p.Peek

        if isOp t "-" then
            p.Enter t

            try
                p.Advance() |> ignore

                match p.Peek.Tok, (p.PeekAt 1) with
                | Tok.Number(v, _), next when
                    not (isOp next "^")
                    && (match next.Tok with
                        | Tok.Superscript _ -> false
                        | _ -> true)
                    ->
                    p.Advance() |> ignore
                    Num(-v)
                | _ -> Neg(unary p)
            finally
                p.Leave()
        elif isOp t "+" then
            p.Enter t

            try
                p.Advance() |> ignore
                unary p
            finally
                p.Leave()
        else
            power p

    and private power (p: Parser) : Expr =
        let t = p.Peek
        p.Enter t

        try
            match t.Tok with
            | Tok.Nabla ->
                p.Advance() |> ignore
                Grad(power p)
            | Tok.NablaDot ->
                p.Advance() |> ignore
                Divergence(power p)
            | Tok.Laplace ->
                p.Advance() |> ignore
                Laplacian(power p)
            | Tok.Root ->
                p.Advance() |> ignore
                Apply(Fn.Sqrt, power p)
            | Tok.FastSum ->
                p.Advance() |> ignore
                FastSum(power p)
            | Tok.Partial ->
                p.Advance() |> ignore
                let a = p.Advance()

                let axis =
                    match a.Tok with
                    | Tok.Ident "x" -> Axis.X
                    | Tok.Ident "y" -> Axis.Y
                    | _ ->
                        failAt
                            p
                            a
                            (sprintf "expected the axis x or y after '∂' (as in ∂x(u)) but found %s" (describe a))

                Partial(axis, power p)
            | _ ->
                let b = primary p
                let next = p.Peek

                match next.Tok with
                | Tok.Superscript k ->
                    p.Advance() |> ignore
                    PowInt(b, k)
                | Tok.Op "^" ->
                    p.Advance() |> ignore
                    let e = p.Peek

                    let intExponent (v: float) (neg: bool) (at: Token) =
                        if v > 1e6 then
                            failAt p at "this integer exponent is too large (at most 1000000)"

                        let r = PowInt(b, (if neg then -(int v) else int v))

                        if isOp p.Peek "^" then
                            failAt p p.Peek "'a^2^3' is ambiguous; write (a^2)^3 or a^(2^3)"

                        r

                    match e.Tok, (p.PeekAt 1).Tok with
                    | Tok.Number(v, true), _ ->
                        p.Advance() |> ignore
                        intExponent v false e
                    | Tok.Op "-", Tok.Number(v, true) ->
                        p.Advance() |> ignore
                        p.Advance() |> ignore
                        intExponent v true e
                    | Tok.Op "-", _ ->
                        p.Advance() |> ignore
                        PowReal(b, Neg(power p))
                    | _ when startsOperand e -> PowReal(b, power p)
                    | _ -> failAt p e (sprintf "expected an exponent after '^' but found %s" (describe e))
                | _ -> b
        finally
            p.Leave()

    and private args (p: Parser) (name: string) : Expr list =
        // after the opening '('
        if isOp p.Peek ")" then
            p.Advance() |> ignore
            []
        else
            let first = sum p
            let mutable xs = [ first ]

            while isOp p.Peek "," do
                p.Advance() |> ignore
                xs <- xs @ [ sum p ]

            let t = p.Peek

            if not (isOp t ")") then
                failAt p t (sprintf "expected ',' or ')' in the arguments of %s but found %s" name (describe t))

            p.Advance() |> ignore
            xs

    and private primary (p: Parser) : Expr =
        let t = p.Advance()

        match t.Tok with
        | Tok.Number(v, _) -> Num v
        | Tok.Op "(" ->
            let e = sum p
            let c = p.Peek

            if isOp c "·" && (p.PeekAt 1).Tok = Tok.Nabla && isOp (p.PeekAt 2) ")" then
                // (v·∇)u: advection of the following operand by the velocity v.
                p.Advance() |> ignore
                p.Advance() |> ignore
                p.Advance() |> ignore

                if not (startsOperand p.Peek) then
                    failAt
                        p
                        p.Peek
                        (sprintf
                            "expected the advected field after '(v·∇)', e.g. (v·∇)u, but found %s"
                            (describe p.Peek))

                Advect([ e ], power p)
            elif isOp c "," then
                failAt
                    p
                    c
                    "',' outside a call; to call a closure write its name right before '(' with no space, e.g. kill(u, c)"
            elif not (isOp c ")") then
                failAt
                    p
                    c
                    (sprintf
                        "expected ')' to close the '(' at line %d, column %d, but found %s"
                        t.Line
                        t.Col
                        (describe c))

            else
                p.Advance() |> ignore
                e
        | Tok.Ident name ->
            let next = p.Peek
            let isBuiltin = List.contains name reserved
            let callParen = isOp next "(" && (not next.SpaceBefore || isBuiltin)

            if callParen then
                p.Advance() |> ignore
                let xs = args p name

                let arity k =
                    if xs.Length <> k then
                        failAt
                            p
                            t
                            (sprintf
                                "'%s' takes %d argument%s but was given %d"
                                name
                                k
                                (if k = 1 then "" else "s")
                                xs.Length)

                match List.tryFind (fun (n, _) -> n = name) functions with
                | Some(_, fn) ->
                    arity 1
                    Apply(fn, xs.Head)
                | None ->
                    match name with
                    | "min" ->
                        arity 2
                        Min(xs[0], xs[1])
                    | "max" ->
                        arity 2
                        Max(xs[0], xs[1])
                    | "grad" ->
                        arity 1
                        Grad xs.Head
                    | "div" ->
                        arity 1
                        Divergence xs.Head
                    | "lap" ->
                        arity 1
                        Laplacian xs.Head
                    | "dx" ->
                        arity 1
                        Partial(Axis.X, xs.Head)
                    | "dy" ->
                        arity 1
                        Partial(Axis.Y, xs.Head)
                    | "advect" ->
                        if xs.Length < 2 || xs.Length > 3 then
                            failAt
                                p
                                t
                                (sprintf
                                    "'advect' takes the velocity components then the advected field, e.g. advect(v, u) or advect(vx, vy, u), but was given %d arguments"
                                    xs.Length)

                        Advect(List.take (xs.Length - 1) xs, List.last xs)
                    | _ -> Call(name, xs)
            elif isBuiltin then
                failAt p t (sprintf "'%s' is a built-in function; call it with parentheses, e.g. %s(u)" name name)
            elif isOp next "[" && not next.SpaceBefore then
                p.Advance() |> ignore
                let ix = p.Advance()

                let index =
                    match ix.Tok with
                    | Tok.Ident "k" -> LatticeIndex.K
                    | Tok.Ident "j" -> LatticeIndex.J
                    | _ ->
                        failAt
                            p
                            ix
                            (sprintf
                                "expected the lattice index k or j in %s[...], e.g. %s[k+1], but found %s"
                                name
                                name
                                (describe ix))

                let sign = p.Peek

                let offset =
                    if isOp sign "+" || isOp sign "-" then
                        p.Advance() |> ignore
                        let m = p.Advance()

                        match m.Tok with
                        | Tok.Number(v, true) when v <= 1e6 -> (if isOp sign "-" then -(int v) else int v)
                        | _ ->
                            failAt
                                p
                                m
                                (sprintf "expected an integer offset, e.g. %s[k+1], but found %s" name (describe m))
                    else
                        0

                let close = p.Peek

                if not (isOp close "]") then
                    failAt p close (sprintf "expected ']' to close %s[...] but found %s" name (describe close))

                p.Advance() |> ignore
                Shift(name, index, offset)
            else
                Sym name
        | _ -> failAt p t (sprintf "expected a number, a symbol, a function call or '(' but found %s" (describe t))

    let private guard (f: unit -> 'a) : 'a =
        try
            f ()
        with
        | :? HybridException -> reraise ()
        | e ->
            raise (
                ParseException(
                    sprintf
                        "Internal parser error (%s: %s); please report this text as a bug."
                        (e.GetType().Name)
                        e.Message,
                    1,
                    1
                )
            )

    let private endOfStatement (t: Token) =
        match t.Tok with
        | Tok.Newline
        | Tok.Eof -> true
        | Tok.Op ";" -> true
        | _ -> false

    let private expectEnd (p: Parser) (what: string) =
        let t = p.Peek

        if not (endOfStatement t) then
            let hint =
                match t.Tok with
                | Tok.Op "(" when t.SpaceBefore -> ""
                | Tok.Op "=" -> "; an equation's left side must be ∂u/∂t or du/dt"
                | _ -> ""

            failAt p t (sprintf "unexpected %s after %s%s" (describe t) what hint)

    /// Parses one expression (Unicode or ASCII). See docs/dsl.fsx for the grammar.
    let expr (text: string) : Expr =
        guard (fun () ->
            let p = Parser(text, Array.ofList (Lexer.tokenize text))

            while p.Peek.Tok = Tok.Newline do
                p.Advance() |> ignore

            if p.Peek.Tok = Tok.Eof then
                failAt p p.Peek "the expression is empty"

            let e = sum p

            while p.Peek.Tok = Tok.Newline do
                p.Advance() |> ignore

            if p.Peek.Tok <> Tok.Eof then
                failAt p p.Peek (sprintf "unexpected %s after the expression" (describe p.Peek))

            e)

    /// Reads `∂u/∂t =` or `du/dt =` at the current position; returns the field name.
    let private tryLhs (p: Parser) : string option =
        let t0 = p.Peek

        match t0.Tok with
        | Tok.Partial ->
            p.Advance() |> ignore
            let f = p.Advance()

            let field =
                match f.Tok with
                | Tok.Ident s -> s
                | _ -> failAt p f (sprintf "expected a field name after '∂' (as in ∂u/∂t) but found %s" (describe f))

            expectOp p "/" "in ∂u/∂t"
            let d = p.Advance()

            if d.Tok <> Tok.Partial then
                failAt p d (sprintf "expected '∂t' in ∂%s/∂t but found %s" field (describe d))

            let tt = p.Advance()

            if tt.Tok <> Tok.Ident "t" then
                failAt
                    p
                    tt
                    (sprintf
                        "only time derivatives ∂%s/∂t may stand on the left; found ∂%s/∂ and %s"
                        field
                        field
                        (describe tt))

            Some field
        | Tok.Ident s when s.Length > 1 && s[0] = 'd' && isOp (p.PeekAt 1) "/" ->
            p.Advance() |> ignore
            p.Advance() |> ignore
            let tt = p.Advance()

            if tt.Tok <> Tok.Ident "dt" then
                failAt p tt (sprintf "expected 'dt' in %s/dt but found %s" s (describe tt))

            Some(s.Substring 1)
        | _ -> None

    /// Parses one equation `∂u/∂t = rhs` or `du/dt = rhs`.
    let equation (text: string) : Equation =
        guard (fun () ->
            let p = Parser(text, Array.ofList (Lexer.tokenize text))

            match tryLhs p with
            | None -> failAt p p.Peek "expected an equation starting with ∂u/∂t = or du/dt ="
            | Some field ->
                expectOp p "=" "after the left-hand side"
                let rhs = sum p

                if p.Peek.Tok <> Tok.Eof && p.Peek.Tok <> Tok.Newline then
                    failAt p p.Peek (sprintf "unexpected %s after the equation" (describe p.Peek))

                { Field = field; Rhs = rhs })

    let private signedNumber (p: Parser) (what: string) : float =
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

    let private integer (p: Parser) (what: string) : int =
        let t = p.Advance()

        match t.Tok with
        | Tok.Number(v, true) when v >= 0.0 && v <= 1e8 -> int v
        | _ -> failAt p t (sprintf "expected a whole number for %s but found %s" what (describe t))

    let private name (p: Parser) (what: string) : string =
        let t = p.Advance()

        match t.Tok with
        | Tok.Ident s when List.contains s reserved ->
            failAt p t (sprintf "'%s' is a built-in function name and cannot name a %s; choose another name" s what)
        | Tok.Ident s -> s
        | _ -> failAt p t (sprintf "expected the name of the %s but found %s" what (describe t))

    let private units (p: Parser) : Units option =
        let t = p.Peek

        if isOp t "[" then
            p.Advance() |> ignore
            let start = t.Offset + 1
            let mutable close = p.Peek

            while not (isOp close "]") && close.Tok <> Tok.Eof && close.Tok <> Tok.Newline do
                p.Advance() |> ignore
                close <- p.Peek

            if not (isOp close "]") then
                failAt p close "expected ']' to close the units"

            p.Advance() |> ignore
            let text = p.Source.Substring(start, close.Offset - start)

            match Units.tryParse text with
            | Ok u -> Some u
            | Error(msg, at) ->
                let line, col = SourceText.position p.Source (start + at)
                raise (SourceText.error p.Source line col msg)
        else
            None

    let private bracketPair (p: Parser) (what: string) : float * float =
        expectOp p "[" (sprintf "to open %s" what)
        let a = signedNumber p what
        expectOp p "," (sprintf "between the two bounds of %s" what)
        let b = signedNumber p what
        expectOp p "]" (sprintf "to close %s" what)
        a, b

    let private condition (p: Parser) : BoundaryCondition =
        let t = p.Advance()

        match t.Tok with
        | Tok.Ident "periodic" -> BoundaryCondition.Periodic
        | Tok.Ident "noflux" -> BoundaryCondition.NoFlux
        | Tok.Ident "dirichlet" -> BoundaryCondition.Dirichlet(sum p)
        | Tok.Ident "neumann" -> BoundaryCondition.Neumann(sum p)
        | _ ->
            failAt
                p
                t
                (sprintf
                    "expected a boundary condition (periodic, noflux, dirichlet <expr> or neumann <expr>) but found %s"
                    (describe t))

    /// Parses a model from its text form without checking it (see `model`).
    let modelUnchecked (text: string) : Model =
        guard (fun () ->
            let p = Parser(text, Array.ofList (Lexer.tokenize text))
            let mutable m = Model.empty "model"
            let pending = ResizeArray<Pending>()

            let rec statements () =
                while p.Peek.Tok <> Tok.Eof do
                    match p.Peek.Tok with
                    | Tok.Newline
                    | Tok.Op ";" -> p.Advance() |> ignore
                    | _ ->
                        statement ()
                        expectEnd p "the statement"

            and statement () =
                let t = p.Peek

                match tryLhs p with
                | Some field ->
                    expectOp p "=" "after the left-hand side"

                    if endOfStatement p.Peek then
                        failAt p p.Peek (sprintf "the equation of '%s' has no right-hand side" field)

                    m <- Model.addEquation field (sum p) m
                | None ->
                    match t.Tok with
                    | Tok.Ident "model" ->
                        p.Advance() |> ignore
                        let n = p.Advance()

                        match n.Tok with
                        | Tok.Ident s
                        | Tok.Str s -> m <- { m with Name = s }
                        | _ -> failAt p n (sprintf "expected the model's name after 'model' but found %s" (describe n))
                    | Tok.Ident "domain" ->
                        p.Advance() |> ignore
                        let k = p.Advance()

                        match k.Tok with
                        | Tok.Ident "point" -> m <- Model.withDomain Domain.Point m
                        | Tok.Ident "interval" ->
                            let a, b = bracketPair p "the interval"
                            let c = p.Advance()

                            if c.Tok <> Tok.Ident "cells" then
                                failAt
                                    p
                                    c
                                    (sprintf "expected 'cells <n>' after the interval but found %s" (describe c))

                            m <- Model.withDomain (Domain.Interval(a, b, integer p "the number of cells")) m
                        | Tok.Ident "rectangle" ->
                            let a, b = bracketPair p "the x range"
                            let x = p.Advance()

                            if x.Tok <> Tok.Ident "x" then
                                failAt p x (sprintf "expected 'x' between the two ranges but found %s" (describe x))

                            let c, d = bracketPair p "the y range"
                            let cl = p.Advance()

                            if cl.Tok <> Tok.Ident "cells" then
                                failAt p cl (sprintf "expected 'cells <nx> x <ny>' but found %s" (describe cl))

                            let nx = integer p "the number of cells along x"
                            let x2 = p.Advance()

                            if x2.Tok <> Tok.Ident "x" then
                                failAt p x2 (sprintf "expected 'x' in 'cells <nx> x <ny>' but found %s" (describe x2))

                            let ny = integer p "the number of cells along y"
                            m <- Model.withDomain (Domain.Rectangle(a, b, c, d, nx, ny)) m
                        | Tok.Ident "lattice" ->
                            let k = integer p "the number of lattice sites"

                            let j =
                                match p.Peek.Tok with
                                | Tok.Ident "x" ->
                                    p.Advance() |> ignore
                                    integer p "the number of fast sites per slow site"
                                | _ -> 0

                            m <- Model.withDomain (Domain.Lattice(k, j)) m
                        | _ ->
                            failAt
                                p
                                k
                                (sprintf
                                    "expected a domain: point, interval [a, b] cells n, rectangle [a, b] x [c, d] cells nx x ny, or lattice K [x J]; found %s"
                                    (describe k))
                    | Tok.Ident "field" ->
                        p.Advance() |> ignore
                        let n = name p "field"

                        let fast =
                            if p.Peek.Tok = Tok.Ident "fast" then
                                p.Advance() |> ignore
                                true
                            else
                                false

                        let u = units p
                        m <- Model.addField { Name = n; Units = u; Fast = fast } m
                    | Tok.Ident "param" ->
                        p.Advance() |> ignore
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

                        m <-
                            Model.addParam
                                {
                                    Name = n
                                    Value = v
                                    Learnable = learnable
                                    Constraint = c
                                    Shape = shape
                                    Units = u
                                }
                                m
                    | Tok.Ident "forcing" ->
                        p.Advance() |> ignore
                        let n = name p "forcing"
                        m <- Model.addForcing { Name = n; Units = units p } m
                    | Tok.Ident "const" ->
                        p.Advance() |> ignore
                        let n = name p "constant"
                        expectOp p "=" (sprintf "and the value of constant '%s'" n)
                        let v = signedNumber p (sprintf "the value of '%s'" n)
                        m <- Model.addConstant { Name = n; Value = v; Units = units p } m
                    | Tok.Ident "closure" ->
                        p.Advance() |> ignore
                        let n = name p "closure"
                        expectOp p "/" (sprintf "and the arity after the closure name, e.g. closure %s/2" n)
                        let arity = integer p "the closure's arity"
                        expectOp p "=" "and the architecture, e.g. = mlp [2, 32, 1] tanh"
                        let a = p.Advance()

                        let arch =
                            match a.Tok with
                            | Tok.Ident "mlp" ->
                                expectOp p "[" "to open the layer widths"
                                let mutable layers = [ integer p "a layer width" ]

                                while isOp p.Peek "," do
                                    p.Advance() |> ignore
                                    layers <- layers @ [ integer p "a layer width" ]

                                expectOp p "]" "to close the layer widths"

                                let act =
                                    match p.Peek.Tok with
                                    | Tok.Ident s ->
                                        let acts = [
                                            "tanh", Activation.Tanh
                                            "relu", Activation.Relu
                                            "gelu", Activation.Gelu
                                            "silu", Activation.Silu
                                            "sigmoid", Activation.Sigmoid
                                            "softplus", Activation.Softplus
                                        ]

                                        match List.tryFind (fun (k, _) -> k = s) acts with
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

                                Architecture.Mlp(layers, act)
                            | Tok.Ident "named" ->
                                let s = p.Advance()

                                match s.Tok with
                                | Tok.Str key -> Architecture.Named key
                                | _ ->
                                    failAt
                                        p
                                        s
                                        (sprintf
                                            "expected a quoted module name after 'named' but found %s"
                                            (describe s))
                            | _ ->
                                failAt
                                    p
                                    a
                                    (sprintf
                                        "expected an architecture (mlp [..] or named \"..\") but found %s"
                                        (describe a))

                        m <-
                            Model.addClosure
                                {
                                    Name = n
                                    Arity = arity
                                    Architecture = arch
                                    Units = units p
                                }
                                m
                    | Tok.Ident "boundary" ->
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
                        | Some sd -> pending.Add(One { Field = n; Side = sd; Condition = c })
                        | None -> pending.Add(AllSides(n, c, s.Line, s.Col))
                    | Tok.Ident "initial" ->
                        p.Advance() |> ignore
                        let n = name p "field"
                        expectOp p "=" (sprintf "after 'initial %s'" n)

                        match p.Peek.Tok, (p.PeekAt 1).Tok with
                        | Tok.Ident "data", Tok.Str key ->
                            p.Advance() |> ignore
                            p.Advance() |> ignore
                            m <- Model.setInitial n (InitialCondition.FromData key) m
                        | _ -> m <- Model.setInitial n (InitialCondition.Expr(sum p)) m
                    | _ ->
                        failAt
                            p
                            t
                            (sprintf
                                "expected an equation (∂u/∂t = … or du/dt = …) or a declaration (model, domain, field, param, forcing, closure, const, boundary, initial) but found %s"
                                (describe t))

            statements ()

            let sides = Model.sides m.Domain

            let bcs =
                pending
                |> Seq.collect (fun b ->
                    match b with
                    | One b -> [ b ]
                    | AllSides(f, c, line, col) ->
                        if sides.IsEmpty then
                            raise (
                                SourceText.error
                                    text
                                    line
                                    col
                                    (sprintf
                                        "boundary conditions for '%s' need an interval or rectangle domain (0-D models and lattices have no sides); declare e.g. 'domain interval [0, 1] cells 100' or remove the line"
                                        f)
                            )

                        sides |> List.map (fun s -> { Field = f; Side = s; Condition = c }))
                |> List.ofSeq

            bcs
            |> List.fold (fun m b -> Model.setBoundary b.Field b.Side b.Condition m) { m with Boundaries = [] })

    /// Parses a model from its text form and checks it (`Checks.validate`): raises `ParseException` for text
    /// that does not follow the grammar and `ModelException` for a model that fails its checks.
    let model (text: string) : Model =
        let m = modelUnchecked text
        Checks.validate m
        m
