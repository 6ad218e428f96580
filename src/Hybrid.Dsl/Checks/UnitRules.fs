namespace Hybrid

/// Checks of physical units: with units declared, every term of an equation has the units of ∂u/∂t, the
/// two sides of + − min max agree, and functions get dimensionless arguments.
[<RequireQualifiedAccess>]
module internal UnitRules =

    let private dimOf (u: Units option) : Dimension option = u |> Option.map Units.dimension

    /// a·b (sign 1) or a/b (sign −1), without zero exponents.
    let private combine (a: Dimension) (b: Dimension) (sign: int) : Dimension =
        let a =
            if a |> Map.exists (fun _ v -> v = 0) then
                a |> Map.filter (fun _ v -> v <> 0)
            else
                a

        (a, b)
        ||> Map.fold (fun acc k v ->
            let total = defaultArg (acc.TryFind k) 0 + sign * v
            if total = 0 then acc.Remove k else acc.Add(k, total))

    let private scale (a: Dimension) (k: int) : Dimension =
        a |> Map.map (fun _ v -> v * k) |> Map.filter (fun _ v -> v <> 0)

    let private length: Dimension = Map.ofList [ "L", 1 ]
    let private time: Dimension = Map.ofList [ "T", 1 ]

    /// The dimension of a declared name (None without units): the first field, parameter, forcing or
    /// constant of that name with units. Indexed once; a unit is read only when looked up.
    type private Lookup(m: Model) =
        let fields = ByName(m.Fields, (fun f -> f.Name))
        let parameters = ByName(m.Params, (fun p -> p.Name))
        let forcings = ByName(m.Forcings, (fun f -> f.Name))
        let constants = ByName(m.Constants, (fun c -> c.Name))
        let closures = ByName(m.Closures, (fun c -> c.Name))
        let diagnostics = ByName(m.Diagnostics, (fun d -> d.Name))

        let first (by: ByName<'T>) (units: 'T -> Units option) (n: string) =
            by.TryFirst n |> Option.bind (units >> dimOf)

        let symbols = System.Collections.Generic.Dictionary<string, Dimension option>()

        let symbol (n: string) =
            [
                first fields (fun f -> f.Units) n
                first parameters (fun p -> p.Units) n
                first forcings (fun f -> f.Units) n
                first constants (fun c -> c.Units) n
                first diagnostics (fun d -> d.Units) n
            ]
            |> List.tryPick id

        /// The dimension of a field, parameter, forcing or constant (remembered after the first look-up).
        member _.Symbol(n: string) : Dimension option =
            if isNull n then
                symbol n
            else
                match symbols.TryGetValue n with
                | true, d -> d
                | _ ->
                    let d = symbol n
                    symbols[n] <- d
                    d

        /// The dimension of a closure's output.
        member _.Closure(n: string) : Dimension option = first closures (fun c -> c.Units) n

    /// Infers the dimension of an expression (None when a symbol without units makes it unknown), adding a
    /// message to `problems` for every inconsistency found inside it. Bottom-up with `Expr.fold` (explicit
    /// stack): a node's messages follow its children's, as in a left-to-right post-order walk.
    let private infer (dims: Lookup) (where: string) (problems: ResizeArray<string>) (e: Expr) : Dimension option =
        let term = CheckWording.term

        let dimensionless (what: string) (e: Expr) (d: Dimension option) =
            match d with
            | Some d when not d.IsEmpty ->
                problems.Add(
                    sprintf
                        "Units: in %s, %s needs a dimensionless argument but '%s' has units %s. Divide it by a reference value with the same units."
                        where
                        what
                        (term e)
                        (Units.formatDimension d)
                )
            | _ -> ()

        let node (e: Expr) (ds: Dimension option list) : Dimension option =
            match e, ds with
            | Num _, _ -> Some Map.empty
            | Sym n, _ -> dims.Symbol n
            | Shift(n, _, _), _ -> dims.Symbol n
            | Neg _, [ da ] -> da
            | (Add(a, b) | Sub(a, b) | Min(a, b) | Max(a, b)), [ da; db ] ->
                match da, db with
                | Some da, Some db when da <> db ->
                    problems.Add(
                        sprintf
                            "Units: in %s, '%s' has units %s but '%s' has units %s; both sides of + − min max must agree. Fix the units of a symbol or add a conversion factor."
                            where
                            (term a)
                            (Units.formatDimension da)
                            (term b)
                            (Units.formatDimension db)
                    )

                    Some da
                | Some da, _ -> Some da
                | None, db -> db
            | Mul _, [ Some da; Some db ] -> Some(combine da db 1)
            | Div _, [ Some da; Some db ] -> Some(combine da db -1)
            | (Mul _ | Div _), _ -> None
            | PowInt(_, k), [ da ] -> da |> Option.map (fun d -> scale d k)
            | PowReal(a, b), [ da; db ] ->
                dimensionless "a real exponent" b db
                dimensionless "the base of a real power" a da
                da |> Option.map (fun _ -> Map.empty)
            | Apply(Fn.Abs, _), [ da ] -> da
            | Apply(Fn.Sqrt, a), [ da ] ->
                match da with
                | Some d when d |> Map.forall (fun _ v -> v % 2 = 0) -> Some(d |> Map.map (fun _ v -> v / 2))
                | Some d ->
                    problems.Add(
                        sprintf
                            "Units: in %s, sqrt of '%s' with units %s has no integer units. Check the units of its symbols."
                            where
                            (term a)
                            (Units.formatDimension d)
                    )

                    None
                | None -> None
            | Apply(fn, a), [ da ] ->
                dimensionless (Print.fnName fn) a da
                Some Map.empty
            | Call(n, _), _ -> dims.Closure n
            | (Partial _ | Grad _ | Divergence _), [ da ] -> da |> Option.map (fun d -> combine d length -1)
            | Laplacian _, [ da ] -> da |> Option.map (fun d -> combine d (scale length 2) -1)
            | Advect(vs, _), ds ->
                match List.truncate vs.Length ds, List.last ds with
                | Some d :: _, Some d' -> Some(combine (combine d d' 1) length -1)
                | _ -> None
            | FastSum _, [ da ] -> da
            | FluxAdvect(vs, _), ds ->
                match List.truncate vs.Length ds, List.last ds with
                | Some d :: _, Some d' -> Some(combine (combine d d' 1) length -1)
                | _ -> None
            | Jacobian _, [ Some da; Some db ] -> Some(combine (combine da db 1) (scale length 2) -1)
            | Jacobian _, [ _; _ ] -> None
            | CallOutput(n, _, _), _ -> dims.Closure n
            | _ -> invalidArg "e" "UnitRules.infer: a node with the wrong number of children."

        Expr.fold node e

    let private equationUnits (s: CheckScope) (dims: Lookup) (problems: ResizeArray<string>) (eq: Equation) =
        let where = CheckWording.inEquation eq.Field

        match s.Field eq.Field with
        | Some { Units = Some u } ->
            let expected = combine (Units.dimension u) time -1

            for _, t in Expr.signedTerms eq.Rhs do
                match infer dims where problems t with
                | Some d when d <> expected ->
                    problems.Add(
                        sprintf
                            "Units: in the equation of '%s', the term '%s' has units %s but ∂%s/∂t has units %s (%s per time). Fix the units of the symbols in that term."
                            eq.Field
                            (CheckWording.term t)
                            (Units.formatDimension d)
                            eq.Field
                            (Units.formatDimension expected)
                            (Units.format u)
                    )
                | _ -> ()
        | _ -> infer dims where problems eq.Rhs |> ignore

    /// The unit problems of every equation, term by term; a unit that cannot be read ends the check with
    /// its message.
    let consistency (s: CheckScope) : string list =
        let problems = ResizeArray<string>()
        let dims = Lookup s.Model

        try
            for eq in s.Model.Equations do
                equationUnits s dims problems eq
        with :? ModelException as e ->
            problems.Add e.Message

        List.ofSeq problems
