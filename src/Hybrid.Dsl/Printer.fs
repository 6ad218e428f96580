// The public surface and its documentation: Printer.fsi.
namespace Hybrid

open System
open System.Collections.Generic
open System.Globalization
open System.Text

[<RequireQualifiedAccess>]
type Notation =
    | Unicode
    | Ascii
    | Latex

[<RequireQualifiedAccess>]
module Print =

    let fnName (fn: Fn) : string = Pointwise.name fn

    let number (v: float) : string =
        v.ToString("R", CultureInfo.InvariantCulture)

    let private realNumber (v: float) =
        let s = number v

        if
            s.Contains "."
            || s.Contains "E"
            || s.Contains "e"
            || s.Contains "N"
            || s.Contains "∞"
        then
            s
        else
            s + ".0"

    let private superDigits = "⁰¹²³⁴⁵⁶⁷⁸⁹"

    let private superscript (n: int) =
        let digits =
            string (abs n)
            |> Seq.map (fun c -> string superDigits[int c - int '0'])
            |> String.concat ""

        (if n < 0 then "⁻" else "") + digits

    let private shiftText (name: string) (ix: LatticeIndex) (m: int) =
        let letter =
            match ix with
            | LatticeIndex.K -> "k"
            | LatticeIndex.J -> "j"

        if m = 0 then sprintf "%s[%s]" name letter
        elif m > 0 then sprintf "%s[%s+%d]" name letter m
        else sprintf "%s[%s-%d]" name letter (-m)

    let private greek =
        set [
            "alpha"
            "beta"
            "gamma"
            "delta"
            "epsilon"
            "zeta"
            "eta"
            "theta"
            "iota"
            "kappa"
            "lambda"
            "mu"
            "nu"
            "xi"
            "pi"
            "rho"
            "sigma"
            "tau"
            "phi"
            "chi"
            "psi"
            "omega"
            "Gamma"
            "Delta"
            "Theta"
            "Lambda"
            "Xi"
            "Pi"
            "Sigma"
            "Phi"
            "Psi"
            "Omega"
        ]

    /// Greek names become \alpha, other multi-letter names \mathrm{Du}.
    let private latexName (s: string) =
        if greek.Contains s then
            "\\" + s
        elif s.Length > 1 then
            "\\mathrm{" + s.Replace("_", "\\_") + "}"
        else
            s

    // ------------------------------------------------------------------ expressions
    // An expression prints bottom-up with `Expr.fold` (an explicit stack, so a 10⁵-term sum prints like a
    // short one). Each subexpression's text is a rope of pieces, flattened once at the end: building text
    // costs time linear in its length. Alongside the text, each subexpression carries its precedence
    // (0 sum, 1 product, 2 unary minus, 3 power / prefix operator, 4 atom) and its first character (a
    // parent parenthesises a right operand that starts with a minus, and keeps a digit from following a
    // digit).

    /// Text as a tree of pieces, in order.
    type private Rope =
        | Piece of string
        | Pieces of Rope[]

    /// Printed text: the rope and its first character ('\000' when empty).
    [<Struct>]
    type private Text = { Rope: Rope; First: char }

    let private str (s: string) : Text = {
        Rope = Piece s
        First = if s.Length = 0 then '\000' else s[0]
    }

    let private cat (parts: Text list) : Text =
        let ropes = Array.zeroCreate (List.length parts)
        let mutable first = '\000'
        let mutable i = 0

        for t in parts do
            ropes[i] <- t.Rope
            i <- i + 1

            if first = '\000' then
                first <- t.First

        { Rope = Pieces ropes; First = first }

    /// The rope's text (explicit stack: a rope is as deep as its expression).
    let private flatten (t: Text) : string =
        let sb = StringBuilder()
        let work = Stack<Rope>()
        work.Push t.Rope

        while work.Count > 0 do
            match work.Pop() with
            | Piece s -> sb.Append s |> ignore
            | Pieces parts ->
                for i in parts.Length - 1 .. -1 .. 0 do
                    work.Push parts[i]

        sb.ToString()

    let private isMinus (c: char) = c = '-' || c = '−'

    /// A printed subexpression: its text and precedence.
    type private Printed = Text * int

    /// Parenthesising and joining printed children, in one notation.
    type private Layout(n: Notation) =
        let latex = (n = Notation.Latex)

        /// The notation's minus sign.
        member _.Minus = if n = Notation.Unicode then "−" else "-"

        /// The text in parentheses (`\left( … \right)` in LaTeX).
        member _.Wrap(t: Text) =
            if latex then
                cat [ str "\\left("; t; str "\\right)" ]
            else
                cat [ str "("; t; str ")" ]

        /// The text, in parentheses when it binds more loosely than `level`.
        member this.At (level: int) ((t, p): Printed) = if p < level then this.Wrap t else t

        /// A right operand: as `At`, and also parenthesised when it starts with a minus.
        member this.RightAt (level: int) (c: Printed) =
            let t = this.At level c
            if isMinus t.First then this.Wrap t else t

        /// Operand of a prefix operator: an atom as is, anything else in parentheses.
        member this.Operand((t, p): Printed) =
            if p >= 4 && not (isMinus t.First) then t else this.Wrap t

        /// The texts separated by ", ".
        member _.Args(cs: Printed list) =
            match cs with
            | [] -> str ""
            | (t, _) :: rest -> cat (t :: (rest |> List.collect (fun (u, _) -> [ str ", "; u ])))

    let private leaf (n: Notation) (e: Expr) : Printed =
        let minus = if n = Notation.Unicode then "−" else "-"

        match e with
        | Num v when v < 0.0 || (v = 0.0 && Double.IsNegative v) -> str (minus + number (-v)), 2
        | Num v -> str (number v), 4
        | Sym s when n = Notation.Latex -> str (latexName s), 4
        | Sym s -> str s, 4
        | Shift(name, ix, m) ->
            match n with
            | Notation.Latex ->
                let s = shiftText name ix m
                let i = s.IndexOf '['
                str (sprintf "%s_{%s}" (latexName (s.Substring(0, i))) (s.Substring(i + 1, s.Length - i - 2))), 4
            | Notation.Unicode -> str ((shiftText name ix m).Replace("-", "−")), 4
            | Notation.Ascii -> str (shiftText name ix m), 4
        | _ -> invalidArg "e" "Print: not a leaf."

    /// −a, a + b, a − b, a b, a/b, aⁿ, aᵇ from their printed operands.
    let private arithmetic (n: Notation) (lay: Layout) (e: Expr) (kids: Printed list) : Printed =
        match e, kids with
        | Neg a, [ ka ] ->
            let s =
                match a with
                | Num _ -> lay.Wrap(fst ka)
                | _ -> lay.At 3 ka

            cat [ str lay.Minus; s ], 2
        | Add _, [ ka; kb ] -> cat [ lay.At 0 ka; str " + "; lay.RightAt 1 kb ], 0
        | Sub _, [ ka; kb ] -> cat [ lay.At 0 ka; str (" " + lay.Minus + " "); lay.RightAt 1 kb ], 0
        | Mul _, [ ka; kb ] ->
            let l = lay.At 1 ka
            let r = lay.RightAt 2 kb

            match n with
            | Notation.Ascii -> cat [ l; str "*"; r ], 1
            | Notation.Latex -> cat [ l; str " \\, "; r ], 1
            | Notation.Unicode -> cat [ l; str (if Char.IsDigit r.First then "·" else " "); r ], 1
        | Div _, [ ka; kb ] ->
            if n = Notation.Latex then
                cat [ str "\\frac{"; fst ka; str "}{"; fst kb; str "}" ], 4
            else
                cat [ lay.At 1 ka; str "/"; lay.RightAt 2 kb ], 1
        | PowInt(_, k), [ ka ] ->
            let b = lay.At 4 ka

            match n with
            | Notation.Unicode -> cat [ b; str (superscript k) ], 3
            | Notation.Latex -> cat [ b; str (sprintf "^{%d}" k) ], 3
            | Notation.Ascii -> cat [ b; str (sprintf "^%d" k) ], 3
        | PowReal(_, x), [ ka; kx ] ->
            let b = lay.At 4 ka

            let ex =
                match x with
                | Num v when v >= 0.0 && not (Double.IsNegative v) -> str (realNumber v)
                | Num _ -> lay.Wrap(fst kx)
                | _ ->
                    let s = lay.RightAt 3 kx
                    // "x^2³" would read as x² followed by ³: keep a leading digit out of the exponent.
                    if Char.IsDigit s.First then lay.Wrap(fst kx) else s

            if n = Notation.Latex then
                cat [ b; str "^{"; fst kx; str "}" ], 3
            else
                cat [ b; str "^"; ex ], 3
        | _ -> invalidArg "e" "Print: not an arithmetic node with its operands."

    /// Functions, min, max and closure calls from their printed arguments.
    let private calls (n: Notation) (lay: Layout) (e: Expr) (kids: Printed list) : Printed =
        let latex = (n = Notation.Latex)

        match e, kids with
        | Apply(fn, _), [ ka ] ->
            if latex then
                match fn with
                | Fn.Sqrt -> cat [ str "\\sqrt{"; fst ka; str "}" ], 4
                | Fn.Exp
                | Fn.Log
                | Fn.Sin
                | Fn.Cos
                | Fn.Tanh -> cat [ str ("\\" + fnName fn); lay.Wrap(fst ka) ], 4
                | _ -> cat [ str ("\\operatorname{" + fnName fn + "}"); lay.Wrap(fst ka) ], 4
            else
                cat [ str (fnName fn + "("); fst ka; str ")" ], 4
        | Min _, ks -> cat [ str (if latex then "\\min(" else "min("); lay.Args ks; str ")" ], 4
        | Max _, ks -> cat [ str (if latex then "\\max(" else "max("); lay.Args ks; str ")" ], 4
        | Call(name, _), ks ->
            if latex then
                cat [ str ("\\mathrm{" + name + "}\\left("); lay.Args ks; str "\\right)" ], 4
            else
                cat [ str (name + "("); lay.Args ks; str ")" ], 4
        | CallOutput(name, i, _), ks ->
            if latex then
                cat [ str (sprintf "\\mathrm{%s}_{%d}\\left(" name i); lay.Args ks; str "\\right)" ], 4
            else
                cat [ str (name + "("); lay.Args ks; str (sprintf ")[%d]" i) ], 4
        | _ -> invalidArg "e" "Print: not a call with its arguments."

    /// ∂, ∇, ∇·, Δ, advection and the fast sum from their printed operands.
    let private spatial (n: Notation) (lay: Layout) (e: Expr) (kids: Printed list) : Printed =
        let prefix (ascii: string) (unicode: string) (latex: string) (ka: Printed) =
            match n with
            | Notation.Ascii -> cat [ str (ascii + "("); fst ka; str ")" ], 4
            | Notation.Unicode -> cat [ str unicode; lay.Operand ka ], 3
            | Notation.Latex -> cat [ str latex; lay.Operand ka ], 3

        match e, kids with
        | Partial(ax, _), [ ka ] ->
            let axis =
                match ax with
                | Axis.X -> "x"
                | Axis.Y -> "y"

            match n with
            | Notation.Ascii -> cat [ str ("d" + axis + "("); fst ka; str ")" ], 4
            | Notation.Unicode -> cat [ str ("∂" + axis); lay.Wrap(fst ka) ], 3
            | Notation.Latex -> cat [ str ("\\partial_" + axis + " "); lay.Operand ka ], 3
        | Grad _, [ ka ] -> prefix "grad" "∇" "\\nabla " ka
        | Divergence _, [ ka ] -> prefix "div" "∇·" "\\nabla\\cdot " ka
        | Laplacian _, [ ka ] -> prefix "lap" "Δ" "\\Delta " ka
        | Advect(vs, _), ks ->
            let kvs = List.take vs.Length ks
            let ku = List.last ks

            match n, kvs with
            | Notation.Latex, _ ->
                let v =
                    match kvs with
                    | [ kv ] -> lay.Operand kv
                    | _ -> cat [ str "\\left("; lay.Args kvs; str "\\right)" ]

                cat [ str "\\left("; v; str "\\cdot\\nabla\\right) "; lay.Operand ku ], 3
            | Notation.Unicode, [ kv ] -> cat [ str "("; lay.Operand kv; str "·∇)"; lay.Operand ku ], 3
            | _ -> cat [ str "advect("; lay.Args ks; str ")" ], 4
        | FastSum _, [ ka ] ->
            match n with
            | Notation.Ascii -> cat [ str "sum_j("; fst ka; str ")" ], 3
            | Notation.Unicode -> cat [ str "Σ_j"; lay.Wrap(fst ka) ], 3
            | Notation.Latex -> cat [ str "\\sum_{j} "; lay.Wrap(fst ka) ], 3
        | Jacobian _, ks ->
            match n with
            | Notation.Ascii -> cat [ str "jacobian("; lay.Args ks; str ")" ], 4
            | Notation.Unicode
            | Notation.Latex -> cat [ str "J("; lay.Args ks; str ")" ], 4
        | FluxAdvect(vs, _), ks ->
            match n with
            | Notation.Latex ->
                let kvs = List.take vs.Length ks

                let v =
                    match kvs with
                    | [ kv ] -> lay.Operand kv
                    | _ -> cat [ str "\\left("; lay.Args kvs; str "\\right)" ]

                cat [
                    str "\\nabla\\cdot\\left("
                    v
                    str "\\, "
                    lay.Operand(List.last ks)
                    str "\\right)_{\\mathrm{lim}}"
                ],
                3
            | _ -> cat [ str "advectFlux("; lay.Args ks; str ")" ], 4
        | _ -> invalidArg "e" "Print: not a spatial operator with its operand."

    /// One node printed from its printed children.
    let private node (n: Notation) (lay: Layout) (e: Expr) (kids: Printed list) : Printed =
        match e with
        | Num _
        | Sym _
        | Shift _ -> leaf n e
        | Neg _
        | Add _
        | Sub _
        | Mul _
        | Div _
        | PowInt _
        | PowReal _ -> arithmetic n lay e kids
        | Apply _
        | Min _
        | Max _
        | Call _ -> calls n lay e kids
        | Partial _
        | Grad _
        | Divergence _
        | Laplacian _
        | Advect _
        | FastSum _
        | Jacobian _
        | FluxAdvect _ -> spatial n lay e kids
        | CallOutput _ -> calls n lay e kids

    let expr (notation: Notation) (e: Expr) : string =
        let lay = Layout notation
        Expr.fold (node notation lay) e |> fst |> flatten

    let private lhs (notation: Notation) (field: string) =
        match notation with
        | Notation.Unicode -> sprintf "∂%s/∂t" field
        | Notation.Ascii -> sprintf "d%s/dt" field
        | Notation.Latex -> sprintf "\\frac{\\partial %s}{\\partial t}" (latexName field)

    let equation (notation: Notation) (eq: Equation) : string =
        lhs notation eq.Field + " = " + expr notation eq.Rhs

    /// The left-hand side (Δ − κ²)ψ as the expression Δψ or Δψ − κ² ψ (which parses back to the same κ²).
    let private ellipticLhs (eq: EllipticEquation) : Expr =
        if eq.Screening = 0.0 then
            Laplacian(Sym eq.Field)
        else
            Sub(Laplacian(Sym eq.Field), Mul(Num eq.Screening, Sym eq.Field))

    let ellipticEquation (notation: Notation) (eq: EllipticEquation) : string =
        expr notation (ellipticLhs eq) + " = " + expr notation eq.Rhs

    let private isIdent (s: string) =
        s.Length > 0
        && (Char.IsLetter s[0] || s[0] = '_')
        && s |> Seq.forall (fun c -> Char.IsLetterOrDigit c || c = '_')

    let private name (s: string) =
        if isIdent s then s else "\"" + s.Replace("\"", "'") + "\""

    let private units (u: Units option) =
        match u with
        | Some u -> " [" + Units.format u + "]"
        | None -> ""

    let private activation (a: Activation) =
        match a with
        | Activation.Tanh -> "tanh"
        | Activation.Relu -> "relu"
        | Activation.Gelu -> "gelu"
        | Activation.Silu -> "silu"
        | Activation.Sigmoid -> "sigmoid"
        | Activation.Softplus -> "softplus"

    let private side (s: Side) =
        match s with
        | Side.Left -> "left"
        | Side.Right -> "right"
        | Side.Bottom -> "bottom"
        | Side.Top -> "top"

    let private condition (n: Notation) (c: BoundaryCondition) =
        match c with
        | BoundaryCondition.Periodic -> "periodic"
        | BoundaryCondition.NoFlux -> "noflux"
        | BoundaryCondition.Dirichlet e -> "dirichlet " + expr n e
        | BoundaryCondition.Neumann e -> "neumann " + expr n e

    let private domainLine (d: Domain) =
        match d with
        | Domain.Point -> "domain point"
        | Domain.Interval(a, b, c) -> sprintf "domain interval [%s, %s] cells %d" (number a) (number b) c
        | Domain.Rectangle(a, b, c, d, nx, ny) ->
            sprintf
                "domain rectangle [%s, %s] x [%s, %s] cells %d x %d"
                (number a)
                (number b)
                (number c)
                (number d)
                nx
                ny
        | Domain.Lattice(k, 0) -> sprintf "domain lattice %d" k
        | Domain.Lattice(k, j) -> sprintf "domain lattice %d x %d" k j

    let private paramLine (p: ParamDecl) =
        let c =
            match p.Constraint with
            | Constraint.Free -> ""
            | Constraint.Positive -> " positive"
            | Constraint.Bounded(lo, hi) -> sprintf " in [%s, %s]" (number lo) (number hi)

        sprintf
            "param %s = %s%s%s%s%s"
            (name p.Name)
            (number p.Value)
            c
            (if p.Learnable then "" else " fixed")
            (if p.Shape = ParamShape.Spatial then " spatial" else "")
            (units p.Units)

    let private closureLine (c: ClosureDecl) =
        let arch =
            match c.Architecture with
            | Architecture.Mlp(layers, act) ->
                sprintf "mlp [%s] %s" (layers |> List.map string |> String.concat ", ") (activation act)
            | Architecture.Named s -> sprintf "named \"%s\"" (s.Replace("\"", "'"))
            | Architecture.Cnn(channels, kernel, act) ->
                sprintf
                    "cnn [%s] kernel %d %s"
                    (channels |> List.map string |> String.concat ", ")
                    kernel
                    (activation act)
            | Architecture.NamedField(s, outputs) ->
                sprintf "named \"%s\" fieldwise outputs %d" (s.Replace("\"", "'")) outputs

        sprintf "closure %s/%d = %s%s" (name c.Name) c.Arity arch (units c.Units)

    /// The declaration lines: model name, domain, fields, parameters, forcings, closures, constants.
    let private declarationLines (m: Model) : string seq =
        seq {
            "model " + name m.Name
            domainLine m.Domain

            for f in m.Fields do
                sprintf "field %s%s%s" (name f.Name) (if f.Fast then " fast" else "") (units f.Units)

            for d in m.Diagnostics do
                sprintf "field %s diagnostic%s" (name d.Name) (units d.Units)

            for p in m.Params do
                paramLine p

            for f in m.Forcings do
                sprintf "forcing %s%s" (name f.Name) (units f.Units)

            for c in m.Closures do
                closureLine c

            for c in m.Constants do
                sprintf "const %s = %s%s" (name c.Name) (number c.Value) (units c.Units)
        }

    /// The boundary lines: one line per field (`boundary u noflux`) when its conditions are contiguous, agree
    /// and cover the domain's sides in order, else one line per side. Linear in the number of conditions.
    let private boundaryLines (n: Notation) (m: Model) : string seq =
        let sides = Model.sides m.Domain

        let byField =
            m.Boundaries
            |> List.indexed
            |> List.groupBy (fun (_, b) -> b.Field)
            |> List.map (fun (f, ibs) -> f, List.map fst ibs, List.map snd ibs)

        let compressible = HashSet<string>()

        for f, idx, bs in byField do
            if
                not sides.IsEmpty
                && (bs |> List.map (fun b -> b.Side)) = sides
                && (bs |> List.map (fun b -> b.Condition) |> List.distinct |> List.length) = 1
                && idx |> List.mapi (fun k i -> i = idx.Head + k) |> List.forall id
            then
                compressible.Add f |> ignore

        let printed = HashSet<string>()

        seq {
            for b in m.Boundaries do
                if compressible.Contains b.Field then
                    if printed.Add b.Field then
                        sprintf "boundary %s %s" (name b.Field) (condition n b.Condition)
                else
                    sprintf "boundary %s %s %s" (name b.Field) (side b.Side) (condition n b.Condition)
        }

    let model (notation: Notation) (m: Model) : string =
        match notation with
        | Notation.Latex ->
            let lines =
                m.Equations
                |> List.map (fun eq -> lhs Notation.Latex eq.Field + " &= " + expr Notation.Latex eq.Rhs)
                |> fun time ->
                    time
                    @ (m.EllipticEquations
                       |> List.map (fun eq ->
                           expr Notation.Latex (ellipticLhs eq) + " &= " + expr Notation.Latex eq.Rhs))

            "\\begin{aligned}\n" + String.concat " \\\\\n" lines + "\n\\end{aligned}"
        | Notation.Unicode
        | Notation.Ascii ->
            let lines = ResizeArray<string>(declarationLines m)

            for eq in m.Equations do
                lines.Add(equation notation eq)

            for eq in m.EllipticEquations do
                lines.Add(ellipticEquation notation eq)

            lines.AddRange(boundaryLines notation m)

            for i in m.Initials do
                match i.Value with
                | InitialCondition.Expr e -> lines.Add(sprintf "initial %s = %s" (name i.Field) (expr notation e))
                | InitialCondition.FromData key -> lines.Add(sprintf "initial %s = data \"%s\"" (name i.Field) key)

            String.concat "\n" lines + "\n"
