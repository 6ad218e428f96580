namespace Hybrid

/// The statement grammar of the model text (see docs/dsl.fsx): declarations, equations, boundary and initial
/// conditions, one per line or separated by ';'. Declarations are collected in order and the `Model` record is
/// built once at the end, so reading n statements takes time linear in n.
module internal ModelParser =

    open ExprParser

    /// The statements read so far.
    type private Draft(p: Cursor) =
        let mutable declarations = 0

        member val Name = "model" with get, set
        member val Domain = Domain.Point with get, set
        member val Fields = ResizeArray<FieldDecl>()
        member val Params = ResizeArray<ParamDecl>()
        member val Forcings = ResizeArray<ForcingDecl>()
        member val Closures = ResizeArray<ClosureDecl>()
        member val Constants = ResizeArray<ConstantDecl>()
        member val Equations = ResizeArray<Equation>()
        member val Diagnostics = ResizeArray<DiagnosticDecl>()
        member val EllipticEquations = ResizeArray<EllipticEquation>()
        member val Conditions = ConditionLines(p)

        /// Counts the declaration at `t`, refusing more than `Limits.MaxDeclarations`.
        member _.Declared(t: Token) =
            declarations <- declarations + 1

            if declarations > Limits.MaxDeclarations then
                failAt
                    p
                    t
                    (sprintf
                        "the text declares more than %d symbols (Limits.MaxDeclarations); use spatial parameters or closures instead of one symbol per value"
                        Limits.MaxDeclarations)

    /// `model name` or `model "name"`, the cursor on the keyword.
    let private modelName (p: Cursor) : string =
        p.Advance() |> ignore
        let n = p.Advance()

        match n.Tok with
        | Tok.Ident s
        | Tok.Str s -> s
        | _ -> failAt p n (sprintf "expected the model's name after 'model' but found %s" (describe n))

    /// A statement that starts with a keyword.
    let private keywordStatement (p: Cursor) (d: Draft) (t: Token) =
        // A declaration: counted, then read.
        let declare (read: Cursor -> 'a) : 'a =
            d.Declared t
            read p

        match t.Tok with
        | Tok.Ident "model" -> d.Name <- modelName p
        | Tok.Ident "domain" -> d.Domain <- DomainStatement.read p
        | Tok.Ident "field" ->
            match declare Declarations.fieldOrDiagnostic with
            | Choice1Of2 f -> d.Fields.Add f
            | Choice2Of2 g -> d.Diagnostics.Add g
        | Tok.Ident "param" -> d.Params.Add(declare Declarations.param)
        | Tok.Ident "forcing" -> d.Forcings.Add(declare Declarations.forcing)
        | Tok.Ident "const" -> d.Constants.Add(declare Declarations.constant)
        | Tok.Ident "closure" -> d.Closures.Add(declare Declarations.closure)
        | Tok.Ident "boundary" -> d.Conditions.Boundary t
        | Tok.Ident "initial" -> d.Conditions.Initial t
        | Tok.Laplace
        | Tok.Ident "lap" -> d.EllipticEquations.Add(EllipticStatement.read p)
        | _ ->
            failAt
                p
                t
                (sprintf
                    "expected an equation (∂u/∂t = … or du/dt = …, Δψ = … for a diagnostic field) or a declaration (model, domain, field, param, forcing, closure, const, boundary, initial) but found %s"
                    (describe t))

    /// An equation `∂u/∂t = rhs` or `du/dt = rhs`, or else a statement that starts with a keyword.
    let private statement (p: Cursor) (d: Draft) =
        let t = p.Peek

        match tryLhs p with
        | Some field ->
            expectOp p "=" "after the left-hand side"

            if endOfStatement p.Peek then
                failAt p p.Peek (sprintf "the equation of '%s' has no right-hand side" field)

            d.Equations.Add { Field = field; Rhs = expression p }
        | None -> keywordStatement p d t

    /// Reads a whole model text into a `Model` without checking it. A second initial condition for a field, or a
    /// second boundary condition for a field and side, is refused here (ParseException naming both lines); a
    /// line for one side after an every-side line of the same field replaces it on that side.
    let parse (text: string) : Model =
        let p = Cursor(text, Lexer.tokenize text)
        let d = Draft(p)

        while p.Peek.Tok <> Tok.Eof do
            match p.Peek.Tok with
            | Tok.Newline
            | Tok.Op ";" -> p.Advance() |> ignore
            | _ ->
                statement p d
                StatementReaders.expectEnd p "the statement"

        {
            Name = d.Name
            Domain = d.Domain
            Fields = List.ofSeq d.Fields
            Params = List.ofSeq d.Params
            Forcings = List.ofSeq d.Forcings
            Closures = List.ofSeq d.Closures
            Constants = List.ofSeq d.Constants
            Equations = List.ofSeq d.Equations
            Boundaries = d.Conditions.Boundaries d.Domain
            Initials = d.Conditions.Initials
            Diagnostics = List.ofSeq d.Diagnostics
            EllipticEquations = List.ofSeq d.EllipticEquations
        }
