namespace Hybrid.Compiler

open Hybrid

/// The IMEX split: each equation's signed terms divided into the stiff part (linear diffusion of the field
/// itself, solved implicitly by the IMEX schemes) and the explicit rest. Torch-free, so both back ends split alike.
[<RequireQualifiedAccess>]
module internal ImexSplit =

    /// Whether the term `e` of field `self`'s equation is linear diffusion of that field with a coefficient free
    /// of fields, time (t, and forcings, which are data in time) and spatial operators, under boundary values that
    /// are constant in time: the implicit solves factor I − γhL once per step size, so L must not change in time.
    let private isStiff (r: ResolvedSystem) (self: int) (e: Expr) =
        let diagnostics = r.Diagnostics |> Array.map _.Field |> Set.ofArray
        let forcings = r.Model.Forcings |> List.map _.Name |> Set.ofList

        let freeOfFields (x: Expr) =
            not (
                x
                |> Expr.exists (fun s ->
                    match s with
                    | Sym n
                    | Shift(n, _, _) -> r.FieldIndex.ContainsKey n
                    | _ -> false)
            )

        let usesTime (x: Expr) =
            x
            |> Expr.exists (fun s ->
                match s with
                | Sym "t" -> true
                | Sym n -> forcings.Contains n
                | _ -> false)

        let usesDiagnostic (x: Expr) =
            x
            |> Expr.exists (fun s ->
                match s with
                | Sym n -> diagnostics.Contains n
                | _ -> false)

        let coefficientOk (k: Expr list) =
            k
            |> List.forall (fun x ->
                freeOfFields x
                && not (usesDiagnostic x)
                && not (usesTime x)
                && not (Expr.hasSpatialOperator x))

        let isSelf (n: string) =
            r.FieldIndex.TryGetValue n = (true, self)

        let constantWalls =
            r.Model.Boundaries
            |> List.filter (fun b -> b.Field = r.Fields[self])
            |> List.forall (fun b ->
                match b.Condition with
                | BoundaryCondition.Dirichlet v
                | BoundaryCondition.Neumann v -> not (usesTime v) && freeOfFields v
                | _ -> true)

        let diffusionOf (fs: Expr list) =
            match
                fs
                |> List.partition (fun x ->
                    match x with
                    | Laplacian(Sym _)
                    | Divergence _ -> true
                    | _ -> false)
            with
            | [ Laplacian(Sym n) ], k -> isSelf n && coefficientOk k
            | [ Divergence inner ], k ->
                (match
                    Expr.factors inner
                    |> List.partition (fun x ->
                        match x with
                        | Grad _ -> true
                        | _ -> false)
                 with
                 | [ Grad(Sym n) ], kappa -> isSelf n && coefficientOk kappa
                 | _ -> false)
                && coefficientOk k
            | _ -> false

        r.Grid.Dims > 0
        && not r.Grid.IsLattice
        && constantWalls
        && diffusionOf (Expr.factors e)

    /// Each equation's (stiff, explicit) signed terms; everything explicit unless `implicitDiffusion`.
    let split (r: ResolvedSystem) (implicitDiffusion: bool) : ((float * Expr) list * (float * Expr) list)[] =
        r.Equations
        |> Array.mapi (fun i rhs ->
            let ts = Expr.signedTerms rhs
            ts |> List.partition (fun (_, t) -> implicitDiffusion && isStiff r i t))

    /// The sum of signed terms as one expression (0 for none), the terms in their order: −a + b is −a + b.
    let sum (terms: (float * Expr) list) : Expr =
        match terms with
        | [] -> Num 0.0
        | (sign, first) :: rest ->
            rest
            |> List.fold
                (fun acc (s, t) -> if s > 0.0 then Add(acc, t) else Sub(acc, t))
                (if sign > 0.0 then first else Neg first)
