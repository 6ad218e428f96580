namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// Initial conditions on the eager back end: the start state of a batch from each field's initial expression
/// (differentiable in θ, so parameters used there are trained) or data.
[<RequireQualifiedAccess>]
module internal Initial =

    /// The start state of `batch` trajectories under parameter values θ. A field without an initial
    /// condition, or whose data `options.Data` lacks, raises `ModelException` when the state is asked for.
    let build (r: Resolved) (ec: ExprCompiler) (options: CompileOptions) : int -> torch.Tensor[] -> torch.Tensor[] =
        let initials =
            r.Fields
            |> Array.mapi (fun i f ->
                match r.Initials[i] with
                | Some(InitialCondition.Expr e) ->
                    let fe = ec.OnFastRing(r.IsFast[i], (fun () -> ec.Compile e))

                    let shape batch =
                        Grid.fieldShapeOf r.Grid r.IsFast[i] batch

                    fun (batch: int) (theta: torch.Tensor[]) ->
                        let c = {
                            Fields = [||]
                            Theta = theta
                            T = 0.0
                            Coords = ec.Centres
                            Faces = None
                        }

                        let v = fe c
                        v.expand(shape batch).clone ()
                | Some(InitialCondition.FromData key) ->
                    fun (batch: int) (_: torch.Tensor[]) ->
                        match options.Data.TryFind key with
                        | Some d -> d.expand(Grid.fieldShape r.Grid batch).clone ()
                        | None ->
                            raise (
                                ModelException(
                                    $"The initial condition of '{f}' reads data '{key}', which was not supplied. Pass it in CompileOptions.Data."
                                )
                            )
                | None ->
                    fun _ _ ->
                        raise (
                            ModelException(
                                InitialRules.missing ModelSyntax.Builder f
                                + " Or pass the initial state to Simulate."
                            )
                        ))

        fun (batch: int) (theta: torch.Tensor[]) -> initials |> Array.map (fun f -> f batch theta)
