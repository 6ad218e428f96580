namespace Hybrid.Numerics

open System
open System.Collections.Generic
open TorchSharp
open Hybrid

/// How a rollout trades memory for recomputation in the backward pass.
[<RequireQualifiedAccess>]
type Checkpointing =
    /// Keep the whole autograd graph (memory grows like the number of steps T).
    | Off
    /// Segments of this many steps: only segment-start states are kept; each segment is recomputed
    /// during the backward pass.
    | Segments of steps: int
    /// Segments of ⌈√T⌉ steps, so memory grows like √T.
    | Sqrt
    /// Segment length chosen so that the estimated graph memory stays within this many bytes.
    | Budget of bytes: int64

/// What to do when the explicit step exceeds the stability limit.
[<RequireQualifiedAccess>]
type OnUnstable =
    /// Raise a `HybridException` naming the largest stable Δt.
    | Fail
    /// Print a warning with the largest stable Δt to standard error and continue.
    | Warn
    /// Do not check.
    | Ignore

/// Settings of a rollout.
type RolloutOptions = {
    /// Time integration scheme.
    Scheme: Scheme
    /// Time step; the step before a save time is shortened so that every save time is hit exactly.
    Dt: float
    /// Start time.
    T0: float
    /// Times at which the state is returned (sorted, ≥ T0; T0 itself returns the initial state).
    SaveTimes: float[]
    /// Gradient checkpointing.
    Checkpointing: Checkpointing
    /// Check for NaN/Inf every this many steps (and at every save); 0 = never.
    FiniteCheckEvery: int
    /// Stability check of explicit schemes at the start of the rollout.
    OnUnstable: OnUnstable
}

/// States at the save times.
type Trajectory = {
    /// Field names.
    Fields: string[]
    /// Save times.
    Times: float[]
    /// One tensor per field, shape [S; B; spatial…] with S = number of save times.
    Values: torch.Tensor[]
    /// The back end that computed it (`Backend.Eager` or `Backend.Kernels`).
    Backend: Backend
}

/// Rollouts: integrate `Dynamics` over time, with save times, NaN/Inf detection and checkpointing.
[<RequireQualifiedAccess>]
module Rollout =

    /// RK4, Δt = 0.01, from 0, saving at t = 1, no checkpointing, NaN/Inf check every 10 steps, fail when unstable.
    let defaults: RolloutOptions = {
        Scheme = Scheme.Rk4
        Dt = 0.01
        T0 = 0.0
        SaveTimes = [| 1.0 |]
        Checkpointing = Checkpointing.Off
        FiniteCheckEvery = 10
        OnUnstable = OnUnstable.Fail
    }

    /// One step of the schedule: start time, size, and the save index reached at its end (−1 for none).
    type internal Step = { T: float; H: float; Save: int }

    /// The steps from T0 through the last save time.
    let internal schedule (o: RolloutOptions) : Step[] =
        if not (o.Dt > 0.0) then
            raise (HybridException($"The time step must be positive, got Dt = {o.Dt}."))

        let steps = ResizeArray()
        let mutable t = o.T0

        o.SaveTimes
        |> Array.iteri (fun i s ->
            if s < t - 1e-12 * max 1.0 (abs s) then
                raise (
                    HybridException(
                        $"Save times must be sorted and not before T0 = {o.T0}; save time {i} is {s} after {t}. Sort them."
                    )
                )

            let span = s - t
            let n = int (ceil (span / o.Dt - 1e-9))

            for k in 0 .. n - 1 do
                let h = if k = n - 1 then span - float (n - 1) * o.Dt else o.Dt

                steps.Add {
                    T = t + float k * o.Dt
                    H = h
                    Save = if k = n - 1 then i else -1
                }

            t <- s)

        steps.ToArray()

    /// Raises (or warns) when the explicit step is above the stability limit; message names the largest stable Δt.
    let checkStability (dyn: Dynamics) (theta: torch.Tensor[]) (u: torch.Tensor[]) (o: RolloutOptions) : unit =
        match o.OnUnstable with
        | OnUnstable.Ignore -> ()
        | policy ->
            let limits =
                use _ = torch.no_grad ()
                dyn.Limits theta u

            let dtMax = Integrators.maxStableDt o.Scheme dyn.Grid limits

            if o.Dt > dtMax then
                let message =
                    $"Δt = {o.Dt:G4} is above the stability limit of {o.Scheme} for the current parameters (diffusivity {limits.Diffusivity + limits.StiffDiffusivity:G4}, speed {limits.Speed:G4}): the largest stable Δt is {dtMax:G4}. Use Dt ≤ {dtMax:G4}, or Scheme.ImexEuler / ImexCrankNicolson for stiff diffusion."

                match policy with
                | OnUnstable.Fail -> raise (HybridException message)
                | _ -> eprintfn "warning: %s" message

    let internal checkFinite (fields: string[]) (step: int) (t: float) (u: torch.Tensor[]) =
        u
        |> Array.iteri (fun i x ->
            use _ = torch.no_grad ()
            use ok = torch.isfinite(x).all ()

            if not (ok.ToBoolean()) then
                use nan = x.isnan().sum ()
                use total = torch.isfinite(x).logical_not().sum ()

                raise (
                    HybridException(
                        $"Field '{fields[i]}' became non-finite at step {step} (t = {t:G6}): {total.ToInt64()} values NaN/Inf ({nan.ToInt64()} NaN). Lower Dt, check the stability limit, or check parameter values."
                    )
                ))

    /// Runs steps [first, last) from `u`, returning the end state followed by the states saved inside.
    let internal runSteps
        (dyn: Dynamics)
        (o: RolloutOptions)
        (steps: Step[])
        (first: int)
        (last: int)
        (theta: torch.Tensor[])
        (u0: torch.Tensor[])
        : torch.Tensor[] * torch.Tensor[] list =
        let hs = steps[first .. last - 1] |> Array.map (fun s -> s.H) |> Array.distinct
        let step = Integrators.stepper o.Scheme dyn theta hs u0
        let mutable u = u0
        let saves = ResizeArray<torch.Tensor[]>()

        for i in first .. last - 1 do
            let s = steps[i]

            let next =
                use scope = torch.NewDisposeScope()
                let v = step s.T s.H u
                v |> Array.iter (fun x -> x.MoveToOuterDisposeScope() |> ignore)
                v

            if o.FiniteCheckEvery > 0 && ((i + 1) % o.FiniteCheckEvery = 0 || s.Save >= 0) then
                checkFinite dyn.Fields (i + 1) (s.T + s.H) next

            // Free the previous state unless the caller owns it or it was saved (the autograd graph keeps
            // what it needs natively).
            if
                not (obj.ReferenceEquals(u, u0))
                && not (saves.Count > 0 && obj.ReferenceEquals(saves[saves.Count - 1], u))
            then
                u |> Array.iter (fun x -> x.Dispose())

            if s.Save >= 0 then
                saves.Add next

            u <- next

        u, List.ofSeq saves

    /// Runs one segment under a custom autograd function: forward without a graph; backward recomputes the
    /// segment with a graph and returns gradients for the start state, θ and the leaves.
    type internal Segment() =
        inherit torch.autograd.MultiTensorFunction<Segment>()

        override _.Name = "HybridCheckpointSegment"

        override _.forward(ctx: torch.autograd.AutogradContext, vars: obj[]) =
            let run = vars[0] :?> (torch.Tensor[] -> torch.Tensor[] -> torch.Tensor[])
            let nState = vars[1] :?> int
            let nTheta = vars[2] :?> int
            let tensors = vars[3..] |> Array.map (fun v -> v :?> torch.Tensor)
            let state = tensors[0 .. nState - 1]
            let theta = tensors[nState .. nState + nTheta - 1]
            ctx.save_for_backward (List<torch.Tensor>(Array.append state theta))
            ctx.save_data ("run", box run)
            ctx.save_data ("nState", box nState)
            ctx.save_data ("nTheta", box nTheta)
            ctx.save_data ("leaves", box tensors[nState + nTheta ..])
            ctx.save_data ("needs", box (tensors |> Array.map (fun t -> t.requires_grad)))
            List<torch.Tensor>(run state theta)

        override _.backward(ctx: torch.autograd.AutogradContext, grads: List<torch.Tensor>) =
            let run =
                ctx.get_data "run" :?> (torch.Tensor[] -> torch.Tensor[] -> torch.Tensor[])

            let nState = ctx.get_data "nState" :?> int
            let leaves = ctx.get_data "leaves" :?> torch.Tensor[]
            let needs = ctx.get_data "needs" :?> bool[]
            let saved = ctx.get_saved_variables () |> Array.ofSeq

            use _ = torch.enable_grad ()
            // The recomputed segment graph lives only inside this scope; the gradients are moved out.
            use _ = torch.NewDisposeScope()

            let copies = saved |> Array.map (fun t -> t.detach().requires_grad_ true)
            let state = copies[0 .. nState - 1]
            let theta = copies[nState..]
            let outputs = run state theta
            let liveLeaves = leaves |> Array.filter (fun l -> l.requires_grad)
            let inputs = Array.append copies liveLeaves

            let g =
                torch.autograd.grad (outputs, inputs, grads, allow_unused = true) |> Array.ofSeq

            let result = List<torch.Tensor>()
            result.Add null
            result.Add null
            result.Add null
            let mutable leafIndex = copies.Length

            for i in 0 .. needs.Length - 1 do
                if not needs[i] then
                    result.Add null
                elif i < copies.Length then
                    let gi = g[i]

                    result.Add(
                        if isNull gi || gi.IsInvalid then
                            torch.zeros_like copies[i]
                        else
                            gi
                    )
                else
                    let gi = g[leafIndex]
                    leafIndex <- leafIndex + 1

                    result.Add(
                        if isNull gi || gi.IsInvalid then
                            torch.zeros_like leaves[i - copies.Length]
                        else
                            gi
                    )

            for t in result do
                if not (isNull t) then
                    t.MoveToOuterDisposeScope() |> ignore

            result

    /// The segment length a checkpointing policy gives for T steps of a state of `stateBytes` bytes and
    /// `stages` tendency evaluations per step (graph memory per step is estimated as 8 states per stage).
    let segmentLength (c: Checkpointing) (steps: int) (stateBytes: int64) (stages: int) : int =
        match c with
        | Checkpointing.Off -> steps
        | Checkpointing.Segments n -> max 1 n
        | Checkpointing.Sqrt -> max 1 (int (ceil (sqrt (float steps))))
        | Checkpointing.Budget bytes ->
            let perStep = float stateBytes * 8.0 * float stages

            let cost l =
                float stateBytes * ceil (float steps / float l) + float l * perStep

            [ 1..steps ]
            |> List.filter (fun l -> cost l <= float bytes)
            |> List.tryLast
            |> Option.defaultWith (fun () -> max 1 (int (ceil (sqrt (float steps)))))

    let private stages (s: Scheme) =
        match s with
        | Scheme.Euler
        | Scheme.ImexEuler -> 1
        | Scheme.Heun
        | Scheme.ImexCrankNicolson -> 2
        | Scheme.SspRk3 -> 3
        | Scheme.Rk4 -> 4

    /// Integrates `dyn` with parameters θ from `u0` (one tensor per field, [B; spatial…]) and returns the
    /// states at `o.SaveTimes`. Differentiable with respect to u0, θ and `dyn.Leaves`; with checkpointing
    /// the same gradients come from recomputing each segment in the backward pass.
    let run (dyn: Dynamics) (theta: torch.Tensor[]) (u0: torch.Tensor[]) (o: RolloutOptions) : Trajectory =
        Engine.init ()

        if u0.Length <> dyn.Fields.Length then
            let names = String.Join(", ", dyn.Fields)

            raise (
                HybridException(
                    $"The initial state has {u0.Length} tensors but the system has {dyn.Fields.Length} fields ({names})."
                )
            )

        checkStability dyn theta u0 o
        let steps = schedule o

        let saves =
            Array.init o.SaveTimes.Length (fun _ -> Array.zeroCreate<torch.Tensor> u0.Length)

        // Saves at T0 itself.
        o.SaveTimes
        |> Array.iteri (fun i s ->
            if abs (s - o.T0) <= 1e-12 * max 1.0 (abs s) then
                saves[i] <- u0)

        let savedIndices (first: int) (last: int) = [
            for i in first .. last - 1 do
                if steps[i].Save >= 0 then
                    yield steps[i].Save
        ]

        let anyGrad =
            torch.is_grad_enabled ()
            && (Array.append (Array.append u0 theta) dyn.Leaves
                |> Array.exists (fun t -> t.requires_grad))

        let length =
            if anyGrad then
                let stateBytes =
                    u0 |> Array.sumBy (fun t -> t.NumberOfElements * int64 (t.ElementSize))

                segmentLength o.Checkpointing steps.Length stateBytes (stages o.Scheme)
            else
                steps.Length

        let mutable u = u0
        let mutable first = 0

        while first < steps.Length do
            let last = min steps.Length (first + max 1 length)
            let indices = savedIndices first last

            let next, inside =
                if length >= steps.Length || not anyGrad then
                    runSteps dyn o steps first last theta u
                else
                    // The backward pass calls this after the loop has moved on: capture the bounds by value.
                    let segmentFirst = first

                    let run (state: torch.Tensor[]) (th: torch.Tensor[]) =
                        let e, s = runSteps dyn o steps segmentFirst last th state
                        // Saved states are cloned so that no output of the segment appears twice.
                        Array.append e (s |> Array.concat |> Array.map (fun t -> t.clone ()))

                    let vars: obj[] =
                        Array.concat [
                            [| box run; box u.Length; box theta.Length |]
                            u |> Array.map box
                            theta |> Array.map box
                            dyn.Leaves |> Array.map box
                        ]

                    let out = Segment.apply vars |> Array.ofSeq
                    let e = out[0 .. u.Length - 1]

                    let s = [
                        for k in 0 .. indices.Length - 1 -> out[u.Length * (k + 1) .. u.Length * (k + 2) - 1]
                    ]

                    e, s

            List.iter2 (fun idx (state: torch.Tensor[]) -> saves[idx] <- state) indices inside
            u <- next
            first <- last

        {
            Fields = dyn.Fields
            Times = Array.copy o.SaveTimes
            Values = Array.init u0.Length (fun f -> torch.stack (saves |> Array.map (fun s -> s[f]), 0L))
            Backend = Backend.Eager
        }
