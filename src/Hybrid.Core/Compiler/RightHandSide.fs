namespace Hybrid.Compiler

open System.Collections.Generic
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// The semi-discrete system of the eager back end: each equation's explicit and stiff parts summed from their
/// compiled terms, and the limits the stability check reads (largest diffusivity and advection speed).
[<RequireQualifiedAccess>]
module internal RightHandSide =

    let private maxAbs (t: torch.Tensor) = t.abs().max().ToDouble()

    /// The structure of ∂F/∂u for the stiff schemes: for a pointwise model (every equation reads only its own
    /// cell, no fast fields) the blocks ∂F_i/∂u_j in closed form, each entry the symbolic derivative of equation
    /// i with respect to field j (`Symbolic.derivative`) compiled like any expression; pointwise by autograd on a
    /// point (closures allowed); dense by autograd otherwise.
    let private jacobianForm
        (r: Resolved)
        (ec: ExprCompiler)
        (ctxOf: torch.Tensor[] -> float -> torch.Tensor[] -> Ctx)
        =
        let pointwise =
            r.IsFast |> Array.forall not
            // A diagnostic field reads every cell of the fields its elliptic right-hand side uses.
            && r.System.Diagnostics.Length = 0
            && r.Equations |> Array.forall (StabilityTerms.nonLocal >> not)

        if pointwise then
            let n = r.Fields.Length

            // Derived and compiled on first use (by a stiff scheme), so that other rollouts never pay for them.
            let entries =
                lazy
                    (Array.init n (fun i ->
                        Array.init n (fun j ->
                            match Symbolic.derivative r.Fields[j] r.Equations[i] with
                            | Num 0.0 -> None
                            | d -> Some(ec.Compile d))))

            JacobianForm.Blocks(fun theta t u ->
                let entries = entries.Force()
                let c = ctxOf theta t u
                let batch = u[0].shape[0]
                let cells = u[0].NumberOfElements / batch

                let entry i j =
                    match entries[i][j] with
                    | Some g -> (g c).expand_as(u[i]).reshape ([| batch; cells |])
                    | None -> torch.zeros ([| batch; cells |], dtype = u[i].dtype, device = u[i].device)

                torch.stack (Array.init n (fun i -> torch.stack (Array.init n (entry i), -1L)), -2L))
        elif r.Grid = Grid.Point then
            JacobianForm.Pointwise
        else
            JacobianForm.Dense

    /// The `Dynamics` of a resolved model from its IMEX split (`ImexSplit.split`).
    let build (r: Resolved) (ec: ExprCompiler) (split: ((float * Expr) list * (float * Expr) list)[]) : Dynamics =
        let compileTerms (ts: (float * Expr) list) (probeStiff: bool) : (Ctx -> torch.Tensor) option =
            match ts with
            | [] -> None
            | _ ->
                let before = ec.DiffusivityProbes.Count

                let compiled =
                    ts
                    |> List.map (fun (sign, t) ->
                        let fs = Expr.factors t
                        let f = ec.Compile t

                        // A Laplacian factor: its coefficient (the other factors) bounds the diffusivity.
                        match
                            fs
                            |> List.partition (fun x ->
                                match x with
                                | Laplacian _ -> true
                                | _ -> false)
                        with
                        | [ _ ], k ->
                            let fk = ec.Compile(Expr.product k)
                            ec.DiffusivityProbes.Add(false, (fun c -> maxAbs (fk c)))
                        | _ -> ()

                        sign, f)

                if probeStiff then
                    for i in before .. ec.DiffusivityProbes.Count - 1 do
                        ec.DiffusivityProbes[i] <- (true, snd ec.DiffusivityProbes[i])

                // Negative terms are subtracted, not negated and added: −a + b becomes b − a (exactly the same
                // value), so a negation kernel is needed only when a sum starts with two negative terms.
                let ordered =
                    match compiled with
                    | (s0, f0) :: (s1, f1) :: rest when s0 < 0.0 && s1 > 0.0 -> (s1, f1) :: (s0, f0) :: rest
                    | _ -> compiled

                let (firstSign, first), rest = ordered.Head, ordered.Tail

                Some(fun c ->
                    let start = if firstSign > 0.0 then first c else -(first c)

                    rest
                    |> List.fold (fun acc (sign, f) -> if sign > 0.0 then acc .+ f c else acc .- f c) start)

        let explicitParts =
            split
            |> Array.mapi (fun i (_, rest) -> ec.OnFastRing(r.IsFast[i], (fun () -> compileTerms rest false)))

        let stiffParts =
            split |> Array.mapi (fun i (stiff, _) -> i, compileTerms stiff true)

        let ctxOf theta t u = {
            Fields = u
            Theta = theta
            T = t
            Coords = ec.Centres
            Faces = None
        }

        let explicitRhs (theta: torch.Tensor[]) (t: float) (u: torch.Tensor[]) =
            let c = ctxOf theta t u

            explicitParts
            |> Array.mapi (fun i part ->
                match part with
                | Some f -> (f c).expand_as u[i]
                | None -> torch.zeros_like u[i])

        let stiff =
            stiffParts
            |> Array.map (fun (i, part) ->
                part
                |> Option.map (fun f ->
                    fun (theta: torch.Tensor[]) (ui: torch.Tensor) ->
                        // The stiff part only sees its own field; others are not referenced (checked above).
                        let u = Array.init r.Fields.Length (fun j -> if j = i then ui else ui)
                        f (ctxOf theta 0.0 u)))

        let limits (theta: torch.Tensor[]) (u: torch.Tensor[]) =
            let c = ctxOf theta 0.0 u

            let explicitD =
                ec.DiffusivityProbes
                |> Seq.filter (fun (s, _) -> not s)
                |> Seq.fold (fun m (_, p) -> max m (p c)) 0.0

            let stiffD =
                ec.DiffusivityProbes
                |> Seq.filter fst
                |> Seq.fold (fun m (_, p) -> max m (p c)) 0.0

            {
                Diffusivity = explicitD
                StiffDiffusivity = stiffD
                Speed = ec.SpeedProbes |> Seq.fold (fun m p -> max m (p c)) 0.0
            }

        // Step limits of single terms (advection speeds, reaction rates), named by term: see StabilityTerms.
        let stability =
            r.Equations
            |> Array.mapi (fun i rhs ->
                StabilityTerms.measure
                    (fun e -> ec.OnFastRing(r.IsFast[i], (fun () -> ec.Compile e)))
                    r.Fields
                    r.Fields[i]
                    rhs)

        {
            Fields = r.Fields
            Grid = r.Grid
            Jacobian = jacobianForm r ec ctxOf
            Explicit = explicitRhs
            Stiff = stiff
            Limits = limits
            Terms = fun theta u -> StabilityTerms.limits stability (ctxOf theta 0.0 u)
            Leaves =
                r.Modules
                |> Array.collect (fun (_, m) -> m.parameters () |> Seq.map (fun p -> p :> torch.Tensor) |> Array.ofSeq)
        }
