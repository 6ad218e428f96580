namespace Hybrid.Compiler

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Kernels

/// A rollout's options mapped onto the generated kernels: the eager back end's steps (`Rollout.schedule`: the step
/// before a save time shortened so that it is hit exactly) with a checkpoint every `Spec.Segment` steps; save time i
/// is the rollout's saved state `Indices[i]` (−1: the initial state, a save time at T0).
type internal KernelSchedule = { Spec: RolloutSpec; Indices: int[] }

/// How the generated kernels run a rollout: fixed steps on a schedule, Dopri5 or KenCarp4 with adaptive steps,
/// or an adaptive scheme on a point system's own kernels.
type internal KernelRun =
    /// An explicit Runge–Kutta scheme (Euler, Heun, SspRk3, Rk4) on its kernel simulator and schedule.
    | Fixed of KernelSimulator * KernelSchedule
    /// Dopri5, KenCarp4, Rodas4 or Auto on its kernel simulator (`AdaptiveRollout`: grids, forcings, gradients;
    /// closures for Dopri5 and KenCarp4).
    | AdaptiveStepper of KernelSimulator
    /// Dopri5, Rodas4 or Auto on a point system's kernels (forward only).
    | Adaptive of PointKernels

/// Running a `Simulator`'s rollouts on the generated kernels: which rollouts they can run, and running them
/// with the same inputs and result as `Rollout.run`.
module internal KernelRollout =

    /// The deepest expression the kernel generator takes (it walks expressions recursively); deeper models run
    /// on the eager back end, which evaluates sums and products of any length in loops.
    [<Literal>]
    let maxDepth = 2000

    /// The kernel schedule of `o`, or why the kernels cannot run it: options `Rollout.validate` refuses (the eager
    /// back end raises its message), or no step to take (every save time is T0).
    let schedule (o: RolloutOptions) (stateBytes: int64) : Result<KernelSchedule, string> =
        match
            (try
                Ok(Rollout.schedule o)
             with :? HybridException as e ->
                 Error e.Message)
        with
        | Error why -> Error why
        | Ok steps when steps.Length = 0 -> Error "every save time is T0 (no step to take)"
        | Ok steps ->
            let segment =
                match o.Checkpointing with
                | Checkpointing.Off -> steps.Length
                | Checkpointing.Segments n -> max 1 (min steps.Length n)
                | Checkpointing.Sqrt -> max 1 (int (ceil (sqrt (float steps.Length))))
                | Checkpointing.Budget bytes ->
                    max
                        1
                        (min steps.Length (int (min (float Int32.MaxValue) (float bytes / float (max 1L stateBytes)))))

            let spec = {
                Schedule = steps
                Segment = segment
                KeepLast = false
            }

            let outputs = RolloutSpec.outputs spec

            Ok {
                Spec = spec
                Indices = steps.Counts |> Array.mapi (fun j n -> if n > 0 then outputs[j] else -1)
            }

    /// Rolls `kernels` forward from `u0` with parameter values `theta` on `schedule`; the result has the shape and
    /// save times of `Rollout.run`'s. A float32 `u0` (a Float32 simulator's) runs the float32 kernels where
    /// `KernelSimulator.RolloutPrecision` allows (explicit schemes), else float64
    /// kernels converted at the tensor boundary. Runs inside `TorchGuard`, on the calling thread: the generated kernels start
    /// no worker threads, and the neural closures they need are evaluated by torch on this thread between kernel
    /// calls (and, in the backward pass, wherever libtorch runs this function's backward: the caller's thread on
    /// CPU), so no other thread ever calls TorchSharp for them.
    let run
        (kernels: KernelSimulator)
        (u0: torch.Tensor[])
        (theta: torch.Tensor[])
        (o: RolloutOptions)
        (schedule: KernelSchedule)
        : Trajectory =
        use _ = TorchGuard.enter "Simulator.Simulate"

        let saved = Kernels.rolloutSpec kernels u0 theta schedule.Spec

        let values =
            saved
            |> Array.mapi (fun f states ->
                let picked =
                    schedule.Indices
                    |> Array.map (fun i -> if i < 0 then u0[f] else states[int64 i])

                torch.stack (picked, 0L))

        {
            Fields = kernels.Fields
            Times = Array.copy o.SaveTimes
            Values = values
            Backend = Backend.Kernels
        }

    /// Runs a Dopri5, KenCarp4, Rodas4 or Auto rollout on `kernels` (compiled for that scheme) with `AdaptiveRollout`: the same checks, steps,
    /// step counts and result as `Rollout.run` on the eager back end, to round-off, with gradients to u0, θ and
    /// the closures' weights through the discrete adjoint of the accepted steps.
    let runAdaptiveStepper (kernels: KernelSimulator) (u0: torch.Tensor[]) (theta: torch.Tensor[]) (o: RolloutOptions) =
        use _ = TorchGuard.enter "Simulator.Simulate"
        Rollout.validateFor true o

        let spec: AdaptiveSpec = {
            Tolerances = Rollout.tolerances kernels.Fields o
            T0 = o.T0
            FirstStep = o.Dt
            SaveTimes = o.SaveTimes
            MaxSteps = Rollout.maxSteps
            FiniteCheckEvery = o.FiniteCheckEvery
            Record = false
            Checkpointing = o.Checkpointing
        }

        {
            Fields = kernels.Fields
            Times = Array.copy o.SaveTimes
            Values = AdaptiveRollout.run kernels u0 theta spec
            Backend = Backend.Kernels
        }

    /// Runs an adaptive rollout (`Dopri5`, `Rodas4`, `Auto`) of a point system on the generated kernels
    /// (`AdaptiveKernels`): the same checks, steps and result as `Rollout.run` on the eager back end, to round-off,
    /// without gradients (the caller sends rollouts that need them to the eager back end).
    let runAdaptive
        (kernels: PointKernels)
        (fields: string[])
        (u0: torch.Tensor[])
        (theta: torch.Tensor[])
        (o: RolloutOptions)
        : Trajectory =
        use _ = TorchGuard.enter "Simulator.Simulate"

        if u0.Length <> fields.Length then
            let names = String.Join(", ", fields)

            raise (
                HybridException(
                    $"The initial state has {u0.Length} tensors but the system has {fields.Length} fields ({names})."
                )
            )

        // Forward only: nothing to checkpoint, so `Checkpointing` is accepted as the stepper kernels accept it.
        Rollout.validateFor true o
        let tolerances = Rollout.tolerances fields o
        let batch = int u0[0].shape[0]

        let toArray (x: torch.Tensor) =
            x.detach().to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray()

        let start = u0 |> Array.map toArray

        if start |> Array.exists (fun v -> v.Length <> batch) then
            raise (
                HybridException(
                    $"""The initial state of a point system has one value per trajectory in each field ([{batch}]); got shapes {String.Join(", ", u0 |> Array.map (fun x -> ShapeText.ofShape x.shape))}."""
                )
            )

        let thetaValues = theta |> Array.collect toArray

        // The NaN/Inf and blow-up check of `Rollout.checkFinite`, raising its message; tensors only when it fires.
        let check (step: int) (t: float) (u: float[][]) =
            match AdaptiveKernels.firstBad Rollout.maxMagnitude u with
            | Some _ -> Rollout.checkFinite fields step t (u |> Array.map (fun v -> torch.tensor v))
            | None -> ()

        let result =
            AdaptiveKernels.integrate
                kernels
                thetaValues
                o.Scheme
                tolerances
                o.T0
                o.Dt
                o.SaveTimes
                Rollout.maxSteps
                (fun step t u ->
                    if o.FiniteCheckEvery > 0 && step % o.FiniteCheckEvery = 0 then
                        check step t u)
                Rollout.reportAuto
                start

        Rollout.reportSteps result.Accepted result.Rejected

        result.Saves
        |> Array.iteri (fun i s ->
            if not (obj.ReferenceEquals(s, start)) then
                check i o.SaveTimes[i] s)

        {
            Fields = fields
            Times = Array.copy o.SaveTimes
            Values =
                Array.init fields.Length (fun f ->
                    let values = result.Saves |> Array.collect (fun s -> s[f])
                    let shape = Array.append [| int64 o.SaveTimes.Length |] u0[f].shape

                    torch.tensor(values, dtype = torch.ScalarType.Float64).reshape(shape).to_type(u0[f].dtype).``to``
                        u0[f].device)
            Backend = Backend.Kernels
        }
