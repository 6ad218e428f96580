namespace Hybrid

open System
open System.Globalization

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

    /// The name of a pointwise function as written in text (`exp`, `log`, …, `softplus`).
    let fnName (fn: Fn) : string =
        match fn with
        | Fn.Exp -> "exp"
        | Fn.Log -> "log"
        | Fn.Sqrt -> "sqrt"
        | Fn.Abs -> "abs"
        | Fn.Sin -> "sin"
        | Fn.Cos -> "cos"
        | Fn.Tanh -> "tanh"
        | Fn.Sigmoid -> "sigmoid"
        | Fn.Softplus -> "softplus"

    /// Formats a number so that it reads back exactly (round-trip format, invariant culture).
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

    // Precedence: 0 sum, 1 product, 2 unary minus, 3 power / prefix operators, 4 atom.
    let private startsWithMinus (s: string) = s.StartsWith "-" || s.StartsWith "−"

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

    let rec private go (n: Notation) (e: Expr) : string * int =
        let latex = (n = Notation.Latex)
        let unicode = (n = Notation.Unicode)
        let minus = if unicode then "−" else "-"

        let at (level: int) (e: Expr) =
            let s, p = go n e

            if p < level then
                (if latex then "\\left(" + s + "\\right)" else "(" + s + ")")
            else
                s

        // A right operand: also parenthesise a leading minus.
        let rightAt (level: int) (e: Expr) =
            let s = at level e

            if startsWithMinus s then
                (if latex then "\\left(" + s + "\\right)" else "(" + s + ")")
            else
                s

        let args (xs: Expr list) =
            xs |> List.map (fun a -> fst (go n a)) |> String.concat ", "

        let paren (e: Expr) =
            let s = fst (go n e)
            if latex then "\\left(" + s + "\\right)" else "(" + s + ")"

        // Operand of a prefix operator: an atom as is, anything else in parentheses.
        let operand (e: Expr) =
            let s, p = go n e
            if p >= 4 && not (startsWithMinus s) then s else paren e

        match e with
        | Num v when v < 0.0 || (v = 0.0 && Double.IsNegative v) -> minus + number (-v), 2
        | Num v -> number v, 4
        | Sym s when latex -> latexName s, 4
        | Sym s -> s, 4
        | Shift(name, ix, m) ->
            if latex then
                let s = shiftText name ix m
                let i = s.IndexOf '['
                sprintf "%s_{%s}" (latexName (s.Substring(0, i))) (s.Substring(i + 1, s.Length - i - 2)), 4
            elif n = Notation.Unicode then
                (shiftText name ix m).Replace("-", "−"), 4
            else
                shiftText name ix m, 4
        | Neg a ->
            let s =
                match a with
                | Num _ -> paren a
                | _ -> at 3 a

            minus + s, 2
        | Add(a, b) -> sprintf "%s + %s" (at 0 a) (rightAt 1 b), 0
        | Sub(a, b) -> sprintf "%s %s %s" (at 0 a) minus (rightAt 1 b), 0
        | Mul(a, b) ->
            let l = at 1 a
            let r = rightAt 2 b

            match n with
            | Notation.Ascii -> l + "*" + r, 1
            | Notation.Latex -> l + " \\, " + r, 1
            | Notation.Unicode -> (if Char.IsDigit r[0] then l + "·" + r else l + " " + r), 1
        | Div(a, b) ->
            if latex then
                sprintf "\\frac{%s}{%s}" (fst (go n a)) (fst (go n b)), 4
            else
                sprintf "%s/%s" (at 1 a) (rightAt 2 b), 1
        | PowInt(a, k) ->
            let b = at 4 a

            match n with
            | Notation.Unicode -> b + superscript k, 3
            | Notation.Latex -> sprintf "%s^{%d}" b k, 3
            | Notation.Ascii -> sprintf "%s^%d" b k, 3
        | PowReal(a, x) ->
            let b = at 4 a

            let ex =
                match x with
                | Num v when v >= 0.0 && not (Double.IsNegative v) -> realNumber v
                | Num _ -> paren x
                | _ ->
                    let s = rightAt 3 x
                    // "x^2³" would read as x² followed by ³: keep a leading digit out of the exponent.
                    if Char.IsDigit s[0] then paren x else s

            if latex then
                sprintf "%s^{%s}" b (fst (go n x)), 3
            else
                sprintf "%s^%s" b ex, 3
        | Apply(fn, a) ->
            if latex then
                match fn with
                | Fn.Sqrt -> sprintf "\\sqrt{%s}" (fst (go n a)), 4
                | Fn.Exp
                | Fn.Log
                | Fn.Sin
                | Fn.Cos
                | Fn.Tanh -> sprintf "\\%s%s" (fnName fn) (paren a), 4
                | _ -> sprintf "\\operatorname{%s}%s" (fnName fn) (paren a), 4
            else
                sprintf "%s(%s)" (fnName fn) (fst (go n a)), 4
        | Min(a, b) -> sprintf "%s(%s)" (if latex then "\\min" else "min") (args [ a; b ]), 4
        | Max(a, b) -> sprintf "%s(%s)" (if latex then "\\max" else "max") (args [ a; b ]), 4
        | Call(name, xs) ->
            if latex then
                sprintf "\\mathrm{%s}\\left(%s\\right)" name (args xs), 4
            else
                sprintf "%s(%s)" name (args xs), 4
        | Partial(ax, a) ->
            let axis =
                match ax with
                | Axis.X -> "x"
                | Axis.Y -> "y"

            match n with
            | Notation.Ascii -> sprintf "d%s(%s)" axis (fst (go n a)), 4
            | Notation.Unicode -> sprintf "∂%s%s" axis (paren a), 3
            | Notation.Latex -> sprintf "\\partial_%s %s" axis (operand a), 3
        | Grad a ->
            match n with
            | Notation.Ascii -> sprintf "grad(%s)" (fst (go n a)), 4
            | Notation.Unicode -> "∇" + operand a, 3
            | Notation.Latex -> "\\nabla " + operand a, 3
        | Divergence a ->
            match n with
            | Notation.Ascii -> sprintf "div(%s)" (fst (go n a)), 4
            | Notation.Unicode -> "∇·" + operand a, 3
            | Notation.Latex -> "\\nabla\\cdot " + operand a, 3
        | Laplacian a ->
            match n with
            | Notation.Ascii -> sprintf "lap(%s)" (fst (go n a)), 4
            | Notation.Unicode -> "Δ" + operand a, 3
            | Notation.Latex -> "\\Delta " + operand a, 3
        | Advect(vs, u) ->
            if latex then
                let v =
                    match vs with
                    | [ v ] -> operand v
                    | _ -> "\\left(" + args vs + "\\right)"

                sprintf "\\left(%s\\cdot\\nabla\\right) %s" v (operand u), 3
            else
                match n, vs with
                | Notation.Unicode, [ v ] -> sprintf "(%s·∇)%s" (operand v) (operand u), 3
                | _ -> sprintf "advect(%s)" (args (vs @ [ u ])), 4
        | FastSum a ->
            match n with
            | Notation.Ascii -> sprintf "sum_j(%s)" (fst (go n a)), 3
            | Notation.Unicode -> sprintf "Σ_j%s" (paren a), 3
            | Notation.Latex -> sprintf "\\sum_{j} %s" (paren a), 3

    /// Prints an expression in the given notation.
    let expr (notation: Notation) (e: Expr) : string = fst (go notation e)

    /// Prints an equation ∂field/∂t = rhs in the given notation.
    let equation (notation: Notation) (eq: Equation) : string =
        let lhs =
            match notation with
            | Notation.Unicode -> sprintf "∂%s/∂t" eq.Field
            | Notation.Ascii -> sprintf "d%s/dt" eq.Field
            | Notation.Latex -> sprintf "\\frac{\\partial %s}{\\partial t}" (latexName eq.Field)

        lhs + " = " + expr notation eq.Rhs

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

    /// Prints a whole model in the text form (header declarations, equations, boundary and initial
    /// conditions, one statement per line; see docs/dsl.fsx for the grammar). Unicode and ASCII parse back
    /// with `Parse.model`; LaTeX prints the equations only, as an `aligned` block.
    let model (notation: Notation) (m: Model) : string =
        match notation with
        | Notation.Latex ->
            let lines =
                m.Equations
                |> List.map (fun eq ->
                    let s = equation Notation.Latex eq
                    let i = s.IndexOf " = "
                    s.Substring(0, i) + " &= " + s.Substring(i + 3))

            "\\begin{aligned}\n" + String.concat " \\\\\n" lines + "\n\\end{aligned}"
        | Notation.Unicode
        | Notation.Ascii ->
            let n = notation
            let lines = ResizeArray<string>()
            lines.Add("model " + name m.Name)

            lines.Add(
                match m.Domain with
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
            )

            for f in m.Fields do
                lines.Add(sprintf "field %s%s%s" (name f.Name) (if f.Fast then " fast" else "") (units f.Units))

            for p in m.Params do
                let c =
                    match p.Constraint with
                    | Constraint.Free -> ""
                    | Constraint.Positive -> " positive"
                    | Constraint.Bounded(lo, hi) -> sprintf " in [%s, %s]" (number lo) (number hi)

                lines.Add(
                    sprintf
                        "param %s = %s%s%s%s%s"
                        (name p.Name)
                        (number p.Value)
                        c
                        (if p.Learnable then "" else " fixed")
                        (if p.Shape = ParamShape.Spatial then " spatial" else "")
                        (units p.Units)
                )

            for f in m.Forcings do
                lines.Add(sprintf "forcing %s%s" (name f.Name) (units f.Units))

            for c in m.Closures do
                let arch =
                    match c.Architecture with
                    | Architecture.Mlp(layers, act) ->
                        sprintf "mlp [%s] %s" (layers |> List.map string |> String.concat ", ") (activation act)
                    | Architecture.Named s -> sprintf "named \"%s\"" (s.Replace("\"", "'"))

                lines.Add(sprintf "closure %s/%d = %s%s" (name c.Name) c.Arity arch (units c.Units))

            for c in m.Constants do
                lines.Add(sprintf "const %s = %s%s" (name c.Name) (number c.Value) (units c.Units))

            for eq in m.Equations do
                lines.Add(equation n eq)

            // Boundaries: one line per field when all its sides agree and appear in domain order.
            let sides = Model.sides m.Domain

            let fieldsWithBcs = m.Boundaries |> List.map (fun b -> b.Field) |> List.distinct

            let compressible (f: string) =
                let bs = m.Boundaries |> List.filter (fun b -> b.Field = f)

                not sides.IsEmpty
                && (bs |> List.map (fun b -> b.Side)) = sides
                && (bs |> List.map (fun b -> b.Condition) |> List.distinct |> List.length) = 1
                // and the field's boundaries are contiguous in the list
                && (let idx =
                        m.Boundaries
                        |> List.mapi (fun i b -> i, b.Field)
                        |> List.filter (fun (_, g) -> g = f)

                    let first = fst idx.Head
                    idx |> List.mapi (fun k (i, _) -> i = first + k) |> List.forall id)

            let printed = System.Collections.Generic.HashSet<string>()

            for b in m.Boundaries do
                if compressible b.Field && List.contains b.Field fieldsWithBcs then
                    if printed.Add b.Field then
                        lines.Add(sprintf "boundary %s %s" (name b.Field) (condition n b.Condition))
                else
                    lines.Add(sprintf "boundary %s %s %s" (name b.Field) (side b.Side) (condition n b.Condition))

            for i in m.Initials do
                match i.Value with
                | InitialCondition.Expr e -> lines.Add(sprintf "initial %s = %s" (name i.Field) (expr n e))
                | InitialCondition.FromData key -> lines.Add(sprintf "initial %s = data \"%s\"" (name i.Field) key)

            String.concat "\n" lines + "\n"
