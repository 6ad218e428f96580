namespace Hybrid

open System

/// The expression grammar of the text form (see docs/dsl.fsx): a recursive-descent parser over the lexer's
/// tokens. Sums and products are read in loops, so a flat sum or product of any length uses constant stack;
/// only brackets and prefix operators recurse, and their nesting is limited to `Limits.MaxNesting`.
module internal ExprParser =

    /// Names of the built-in one-argument functions (from the `Pointwise` table).
    let functions: (string * Fn) list =
        Pointwise.all |> List.map (fun fn -> Pointwise.name fn, fn)

    /// Words with a built-in meaning inside expressions; they cannot name symbols (`ReservedWords.all`).
    let reserved: string list = ReservedWords.all

    /// A position in the token array, the bracket/prefix nesting depth and the number of terms read in the
    /// current expression.
    type Cursor(source: string, tokens: Token[]) =
        let mutable pos = 0
        let mutable depth = 0
        let mutable terms = 0

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

            if depth > Limits.MaxNesting then
                raise (
                    SourceText.error
                        source
                        t.Line
                        t.Col
                        (sprintf
                            "the expression is nested more than %d levels deep (Limits.MaxNesting); split it up"
                            Limits.MaxNesting)
                )

        member _.Leave() = depth <- depth - 1

        /// Counts one term (number, symbol, call) and refuses an expression with more than `Limits.MaxTerms`.
        member _.Term(t: Token) =
            terms <- terms + 1

            if terms > Limits.MaxTerms then
                raise (
                    SourceText.error
                        source
                        t.Line
                        t.Col
                        (sprintf
                            "the expression has more than %d terms (Limits.MaxTerms); split it into several equations or use a closure"
                            Limits.MaxTerms)
                )

        /// Starts counting the terms of a new expression.
        member _.ResetTerms() = terms <- 0

    let describe (t: Token) =
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

    let failAt (p: Cursor) (t: Token) (msg: string) : 'a =
        raise (SourceText.error p.Source t.Line t.Col msg)

    let expectOp (p: Cursor) (op: string) (what: string) =
        let t = p.Peek

        match t.Tok with
        | Tok.Op o when o = op -> p.Advance() |> ignore
        | _ -> failAt p t (sprintf "expected '%s' %s but found %s" op what (describe t))

    let isOp (t: Token) (op: string) =
        match t.Tok with
        | Tok.Op o -> o = op
        | _ -> false

    let startsOperand (t: Token) =
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

    let rec sum (p: Cursor) : Expr =
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

    and product (p: Cursor) : Expr =
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

    and unary (p: Cursor) : Expr =
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

    and power (p: Cursor) : Expr =
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

    and args (p: Cursor) (name: string) : Expr list =
        // after the opening '('
        if isOp p.Peek ")" then
            p.Advance() |> ignore
            []
        else
            let xs = ResizeArray<Expr>()
            xs.Add(sum p)

            while isOp p.Peek "," do
                p.Advance() |> ignore
                xs.Add(sum p)

            let t = p.Peek

            if not (isOp t ")") then
                failAt p t (sprintf "expected ',' or ')' in the arguments of %s but found %s" name (describe t))

            p.Advance() |> ignore
            List.ofSeq xs

    and primary (p: Cursor) : Expr =
        let t = p.Advance()
        p.Term t

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
            // `J(a, b)` (no space before the parenthesis) is the Jacobian; `J` alone stays a symbol.
            let name = if name = "J" && callParen then "jacobian" else name

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
                    | "jacobian" ->
                        if xs.Length <> 2 then
                            failAt
                                p
                                t
                                (sprintf
                                    "the Jacobian takes two arguments, J(a, b) = ∂a/∂x ∂b/∂y − ∂a/∂y ∂b/∂x (e.g. J(psi, q) or jacobian(psi, q)), but was given %d"
                                    xs.Length)

                        Jacobian(xs[0], xs[1])
                    | "advectFlux" ->
                        if xs.Length < 2 || xs.Length > 3 then
                            failAt
                                p
                                t
                                (sprintf
                                    "'advectFlux' takes the velocity components then the advected tracer, e.g. advectFlux(v, q) or advectFlux(vx, vy, q), but was given %d arguments"
                                    xs.Length)

                        FluxAdvect(List.take (xs.Length - 1) xs, List.last xs)
                    | _ when isOp p.Peek "[" && not p.Peek.SpaceBefore ->
                        // name(args)[n]: output n (1-based) of a closure with several outputs.
                        p.Advance() |> ignore
                        let ix = p.Advance()

                        let index =
                            match ix.Tok with
                            | Tok.Number(v, true) when v >= 1.0 && v <= 1e6 -> int v
                            | _ ->
                                failAt
                                    p
                                    ix
                                    (sprintf
                                        "expected the output number in %s(...)[n], a whole number from 1 (e.g. %s(u, v)[1] for the first output), but found %s"
                                        name
                                        name
                                        (describe ix))

                        let close = p.Peek

                        if not (isOp close "]") then
                            failAt
                                p
                                close
                                (sprintf "expected ']' to close %s(...)[%d] but found %s" name index (describe close))

                        p.Advance() |> ignore
                        CallOutput(name, index, xs)
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

    /// True at the end of a statement: a newline, ';' or the end of the text.
    let endOfStatement (t: Token) =
        match t.Tok with
        | Tok.Newline
        | Tok.Eof -> true
        | Tok.Op ";" -> true
        | _ -> false

    /// Reads one whole expression (a sum), counting its terms afresh.
    let expression (p: Cursor) : Expr =
        p.ResetTerms()
        sum p

    /// Reads `∂u/∂t =` or `du/dt =` at the current position; returns the field name.
    let tryLhs (p: Cursor) : string option =
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


    /// Parses text holding one expression.
    let parseExpr (text: string) : Expr =
        let p = Cursor(text, Lexer.tokenize text)

        while p.Peek.Tok = Tok.Newline do
            p.Advance() |> ignore

        if p.Peek.Tok = Tok.Eof then
            failAt p p.Peek "the expression is empty"

        let e = expression p

        while p.Peek.Tok = Tok.Newline do
            p.Advance() |> ignore

        if p.Peek.Tok <> Tok.Eof then
            failAt p p.Peek (sprintf "unexpected %s after the expression" (describe p.Peek))

        e

    /// Parses text holding one equation `∂u/∂t = rhs` or `du/dt = rhs`.
    let parseEquation (text: string) : Equation =
        let p = Cursor(text, Lexer.tokenize text)

        match tryLhs p with
        | None -> failAt p p.Peek "expected an equation starting with ∂u/∂t = or du/dt ="
        | Some field ->
            expectOp p "=" "after the left-hand side"
            let rhs = expression p

            if p.Peek.Tok <> Tok.Eof && p.Peek.Tok <> Tok.Newline then
                failAt p p.Peek (sprintf "unexpected %s after the equation" (describe p.Peek))

            { Field = field; Rhs = rhs }
