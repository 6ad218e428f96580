namespace Hybrid

/// The declaration statements: `field`, `param`, `forcing`, `const` and `closure`, each read into its record.
/// Each reader starts with the cursor on the keyword.
module internal Declarations =

    open ExprParser
    open StatementReaders

    let private activations = [
        "tanh", Activation.Tanh
        "relu", Activation.Relu
        "gelu", Activation.Gelu
        "silu", Activation.Silu
        "sigmoid", Activation.Sigmoid
        "softplus", Activation.Softplus
    ]

    /// `field u [fast] [units]`.
    let field (p: Cursor) : FieldDecl =
        p.Advance() |> ignore
        let n = name p "field"

        let fast =
            if p.Peek.Tok = Tok.Ident "fast" then
                p.Advance() |> ignore
                true
            else
                false

        {
            Name = n
            Units = units p
            Fast = fast
        }

    /// `field u [fast | diagnostic] [units]`: a state field, or a diagnostic field (defined by an elliptic equation).
    let fieldOrDiagnostic (p: Cursor) : Choice<FieldDecl, DiagnosticDecl> =
        if p.PeekAt(2).Tok = Tok.Ident "diagnostic" then
            p.Advance() |> ignore
            let n = name p "field"
            p.Advance() |> ignore
            Choice2Of2({ Name = n; Units = units p }: DiagnosticDecl)
        else
            Choice1Of2(field p)

    /// `forcing f [units]`.
    let forcing (p: Cursor) : ForcingDecl =
        p.Advance() |> ignore
        let n = name p "forcing"
        { Name = n; Units = units p }

    /// `const c = value [units]`.
    let constant (p: Cursor) : ConstantDecl =
        p.Advance() |> ignore
        let n = name p "constant"
        expectOp p "=" (sprintf "and the value of constant '%s'" n)
        let v = signedNumber p (sprintf "the value of '%s'" n)
        { Name = n; Value = v; Units = units p }

    /// `param k [> 0] = value` followed by options: positive, in [a, b], fixed, learnable, spatial, [units].
    let param (p: Cursor) : ParamDecl =
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

        {
            Name = n
            Value = v
            Learnable = learnable
            Constraint = c
            Shape = shape
            Units = u
        }

    /// The optional activation after an MLP's layer widths (tanh when none is given).
    let private activation (p: Cursor) : Activation =
        match p.Peek.Tok with
        | Tok.Ident s ->
            match List.tryFind (fun (k, _) -> k = s) activations with
            | Some(_, act) ->
                p.Advance() |> ignore
                act
            | None ->
                failAt p p.Peek (sprintf "unknown activation '%s'; use tanh, relu, gelu, silu, sigmoid or softplus" s)
        | _ -> Activation.Tanh

    /// `[w1, w2, …]`: the layer (or channel) widths of a network.
    let private widths (p: Cursor) : int list =
        expectOp p "[" "to open the layer widths"
        let layers = ResizeArray<int>()
        layers.Add(integer p "a layer width")

        while isOp p.Peek "," do
            p.Advance() |> ignore
            layers.Add(integer p "a layer width")

        expectOp p "]" "to close the layer widths"
        List.ofSeq layers

    /// `mlp [w1, w2, …] [activation]`, `cnn [c1, …] [kernel k] [activation]`, `named "key"` or
    /// `named "key" fieldwise [outputs n]`.
    let private architecture (p: Cursor) : Architecture =
        let a = p.Advance()

        match a.Tok with
        | Tok.Ident "mlp" ->
            let layers = widths p
            let act = activation p
            Architecture.Mlp(layers, act)
        | Tok.Ident "cnn" ->
            let channels = widths p

            let kernel =
                if p.Peek.Tok = Tok.Ident "kernel" then
                    p.Advance() |> ignore
                    integer p "the kernel size (odd, e.g. kernel 3)"
                else
                    3

            Architecture.Cnn(channels, kernel, activation p)
        | Tok.Ident "named" ->
            let s = p.Advance()

            match s.Tok with
            | Tok.Str key when p.Peek.Tok = Tok.Ident "fieldwise" ->
                p.Advance() |> ignore

                let outputs =
                    if p.Peek.Tok = Tok.Ident "outputs" then
                        p.Advance() |> ignore
                        integer p "the number of outputs (e.g. outputs 2)"
                    else
                        1

                Architecture.NamedField(key, outputs)
            | Tok.Str key -> Architecture.Named key
            | _ -> failAt p s (sprintf "expected a quoted module name after 'named' but found %s" (describe s))
        | _ ->
            failAt
                p
                a
                (sprintf "expected an architecture (mlp [..], cnn [..] or named \"..\") but found %s" (describe a))

    /// `closure g/arity = architecture [units]`.
    let closure (p: Cursor) : ClosureDecl =
        p.Advance() |> ignore
        let n = name p "closure"
        expectOp p "/" (sprintf "and the arity after the closure name, e.g. closure %s/2" n)
        let arity = integer p "the closure's arity"
        expectOp p "=" "and the architecture, e.g. = mlp [2, 32, 1] tanh"
        let arch = architecture p

        {
            Name = n
            Arity = arity
            Architecture = arch
            Units = units p
        }
