namespace Hybrid.Compiler

open Hybrid
open Hybrid.Numerics

/// The IMEX split: each equation's signed terms divided into the stiff part (linear diffusion of the field
/// itself, solved implicitly by the IMEX schemes) and the explicit rest.
[<RequireQualifiedAccess>]
module internal ImexSplit =

    /// Whether the term `e` of field `self`'s equation is linear diffusion of that field with a coefficient free
    /// of fields, time and spatial operators, under boundary values that are constant in time.
    let private isStiff (r: Resolved) (ec: ExprCompiler) (self: int) (e: Expr) =
        let coefficientOk (k: Expr list) =
            k
            |> List.forall (fun x ->
                (ec.FieldsOf x).IsEmpty
                && not (ec.UsesDiagnostic x)
                && not (ec.UsesTime x)
                && not (Expr.hasSpatialOperator x))

        let isSelf (n: string) =
            r.FieldIndex.TryGetValue n = (true, self)

        let constantWalls =
            r.Model.Boundaries
            |> List.filter (fun b -> b.Field = r.Fields[self])
            |> List.forall (fun b ->
                match b.Condition with
                | BoundaryCondition.Dirichlet v
                | BoundaryCondition.Neumann v -> not (ec.UsesTime v) && (ec.FieldsOf v).IsEmpty
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
    let split
        (r: Resolved)
        (ec: ExprCompiler)
        (implicitDiffusion: bool)
        : ((float * Expr) list * (float * Expr) list)[] =
        r.Equations
        |> Array.mapi (fun i rhs ->
            let ts = Expr.signedTerms rhs
            ts |> List.partition (fun (_, t) -> implicitDiffusion && isStiff r ec i t))
