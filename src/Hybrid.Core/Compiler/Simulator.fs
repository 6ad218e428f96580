// The public surface and its documentation: Simulator.fsi.
namespace Hybrid.Compiler

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics

[<StructuredFormatDisplay("{Display}")>]
type Simulator
    internal
    (
        system: ResolvedSystem,
        dtype: torch.ScalarType,
        parameters: Param[],
        modules: (string * torch.nn.Module<torch.Tensor, torch.Tensor>)[],
        dynamics: Dynamics,
        initial: int -> torch.Tensor[] -> torch.Tensor[],
        backend: Backend,
        forcings: Map<string, float -> torch.Tensor>,
        diagnose: torch.Tensor[] -> float -> torch.Tensor[] -> torch.Tensor[],
        split: ((float * Expr) list * (float * Expr) list)[]
    ) =

    let model, grid = system.Model, system.Grid

    // Kernels per fixed-step scheme (explicit or IMEX with the compiler's split), generated on first use (or why
    // they cannot be).
    let kernels =
        System.Collections.Concurrent.ConcurrentDictionary<Scheme, Lazy<Result<Hybrid.Kernels.KernelSimulator, string>>>()

    let kernelsFor (scheme: Scheme) =
        kernels
            .GetOrAdd(
                scheme,
                fun s ->
                    lazy
                        (try
                            Ok(
                                Hybrid.Kernels.Kernels.compileSystem
                                    {
                                        Modules = Map.ofArray modules
                                        Forcings = forcings
                                    }
                                    s
                                    split
                                    system
                            )
                         with :? ModelException as e ->
                             Error e.Message)
            )
            .Value

    // The kernel generator walks expressions recursively: deeper ones run on the eager back end.
    let deepest =
        lazy (model.Equations |> List.fold (fun m eq -> max m (Expr.depth eq.Rhs)) 0)

    // The point-system kernels of the adaptive schemes, generated on first use (or why they cannot be).
    let pointKernels =
        lazy
            (try
                let plan = Hybrid.Kernels.Lowering.lower system

                match Hybrid.Kernels.AdaptiveKernels.refusal plan with
                | Some why -> Error why
                | None -> Ok(Hybrid.Kernels.AdaptiveKernels.compile plan)
             with :? ModelException as e ->
                 Error e.Message)

    // Whether a rollout from u0 needs gradients: grad mode on and u0, a parameter or a network weight requires grad.
    let wantsGradients (u0: torch.Tensor[]) =
        torch.is_grad_enabled ()
        && (Array.concat [ u0; parameters |> Array.map (fun p -> p.Value); dynamics.Leaves ]
            |> Array.exists (fun t -> t.requires_grad))

    let choose (options: RolloutOptions) (u0: torch.Tensor[]) : Result<KernelRun, string> =
        if backend = Backend.Eager then
            Error "the simulator was compiled with Backend.Eager"
        elif Engine.torchDevice().``type`` <> DeviceType.CPU then
            Error "the generated kernels run on the CPU only, and the device is not the CPU"
        elif deepest.Value > KernelRollout.maxDepth then
            Error
                $"an equation nests {deepest.Value} levels deep (e.g. a sum of that many terms); the kernel generator takes up to {KernelRollout.maxDepth}"
        elif not (isNull options.Events) && options.Events.Length > 0 then
            Error
                "the rollout has time events, which stop and restart the integration; the generated kernels run one uninterrupted schedule"
        elif not (isNull options.StateEvents) && options.StateEvents.Length > 0 then
            Error
                "the rollout has state events, which stop and restart the integration; the generated kernels run one uninterrupted schedule"
        elif
            Scheme.isAdaptive options.Scheme
            && dtype <> torch.ScalarType.Float64
            && not (options.Scheme = Scheme.Dopri5 && dtype = torch.ScalarType.Float32)
        then
            Error
                $"the generated kernels run {options.Scheme} in float64 only (Dopri5 also in float32), and the simulator computes in {dtype} (its steps would differ from the eager back end's); compile with Dtype = Float64 to run it on the kernels"
        elif options.Scheme = Scheme.Dopri5 && dtype = torch.ScalarType.Float32 then
            // The float32 stepper, which takes the eager float32 back end's steps (the point kernels are float64).
            kernelsFor Scheme.Dopri5 |> Result.map KernelRun.AdaptiveStepper
        elif options.Scheme = Scheme.Dopri5 then
            // A point system's own kernels for forward solves (no closures or forcings); the stepper's otherwise.
            match pointKernels.Value with
            | Ok kernels when not (wantsGradients u0) -> Ok(KernelRun.Adaptive kernels)
            | _ -> kernelsFor Scheme.Dopri5 |> Result.map KernelRun.AdaptiveStepper
        elif options.Scheme = Scheme.KenCarp4 then
            match kernelsFor Scheme.KenCarp4 with
            | Error why -> Error why
            | Ok kernels ->
                match kernels.ImplicitRefusal(parameters |> Array.map (fun p -> p.Value)) with
                | Some why -> Error why
                | None -> Ok(KernelRun.AdaptiveStepper kernels)
        elif Scheme.isAdaptive options.Scheme then
            // A point system's own kernels for forward solves; Rodas4 and Auto on the stepper otherwise (grids,
            // gradients).
            match pointKernels.Value with
            | Ok kernels when not (wantsGradients u0) -> Ok(KernelRun.Adaptive kernels)
            | _ -> kernelsFor options.Scheme |> Result.map KernelRun.AdaptiveStepper
        else
            match kernelsFor options.Scheme with
            | Error why -> Error why
            | Ok kernels ->
                // The implicit solves of an IMEX scheme fit the stiff operator at the current parameter values.
                let refusal =
                    if Integrators.isImex options.Scheme then
                        kernels.ImplicitRefusal(parameters |> Array.map (fun p -> p.Value))
                    else
                        None

                match refusal with
                | Some why -> Error why
                | None ->
                    // Bytes per value of the kernels' arrays: float32 where they run in float32 (`RolloutPrecision`).
                    let valueBytes =
                        match kernels.RolloutPrecision dtype with
                        | Float32 -> 4L
                        | Float64 -> 8L

                    let stateBytes =
                        valueBytes
                        * int64 grid.CellCount
                        * int64 dynamics.Fields.Length
                        * int64 (Integrators.order options.Scheme + 1)

                    KernelRollout.schedule options stateBytes
                    |> Result.map (fun k -> KernelRun.Fixed(kernels, k))

    member internal _.KernelsOf(scheme: Scheme) = kernelsFor scheme

    member _.Model = model

    member _.Grid = grid

    member _.Dtype = dtype

    member _.Fields = dynamics.Fields

    member _.Parameters = parameters

    member _.Param(name: string) : Param =
        match parameters |> Array.tryFind (fun p -> p.Name = name) with
        | Some p -> p
        | None ->
            let names = String.Join(", ", parameters |> Array.map (fun p -> p.Name))
            raise (ModelException($"Model '{model.Name}' has no parameter '{name}'. Declared: {names}."))

    member _.Modules = modules

    member _.Dynamics = dynamics

    member _.Theta() : torch.Tensor[] =
        parameters |> Array.map (fun p -> p.Value)

    member _.Trainable() : Modules.Parameter[] =
        Array.append
            (parameters |> Array.filter (fun p -> p.Learnable) |> Array.map (fun p -> p.Raw))
            (modules |> Array.collect (fun (_, m) -> m.parameters () |> Array.ofSeq))

    member s.Initial(batch: int) : torch.Tensor[] = initial batch (s.Theta())

    member _.Backend = backend

    member s.BackendFor(options: RolloutOptions) : Backend * string = s.BackendFor(options, [||])

    member _.BackendFor(options: RolloutOptions, u0: torch.Tensor[]) : Backend * string =
        match choose options u0 with
        | Ok _ -> Backend.Kernels, ""
        | Error why -> Backend.Eager, why

    member s.Simulate(u0: torch.Tensor[], options: RolloutOptions) : Trajectory =
        match choose options u0 with
        | Ok(KernelRun.Fixed(kernels, schedule)) ->
            let theta = s.Theta()
            Rollout.checkStability dynamics theta u0 options
            KernelRollout.run kernels u0 theta options schedule
        | Ok(KernelRun.AdaptiveStepper kernels) -> KernelRollout.runAdaptiveStepper kernels u0 (s.Theta()) options
        | Ok(KernelRun.Adaptive kernels) ->
            Engine.init ()
            KernelRollout.runAdaptive kernels dynamics.Fields u0 (s.Theta()) options
        | Error why when backend = Backend.Kernels ->
            raise (
                ModelException(
                    $"Model '{model.Name}' cannot run on the generated kernels: {why.TrimEnd('.')}. Compile with Backend.Auto (kernels where they apply) or Backend.Eager."
                )
            )
        | Error _ -> Rollout.run dynamics (s.Theta()) u0 options

    member _.Diagnostics: string[] = system.Diagnostics |> Array.map (fun d -> d.Field)

    member s.Diagnose(trajectory: Trajectory) : Trajectory =
        let theta = s.Theta()
        let names = s.Diagnostics

        let atTimes =
            trajectory.Times
            |> Array.mapi (fun k t ->
                diagnose theta t (trajectory.Values |> Array.map (fun v -> v.select (0L, int64 k))))

        {
            trajectory with
                Fields = names
                Values =
                    Array.init names.Length (fun d ->
                        if atTimes.Length = 0 then
                            torch.zeros ([| 0L |], dtype = dtype)
                        else
                            torch.stack (atTimes |> Array.map (fun x -> x[d]), 0L))
        }

    member s.Residual(form: ResidualForm, times: float[], values: torch.Tensor[]) : ResidualResult =
        Residual.compute dynamics (s.Theta()) form times values

    member _.Display: string =
        SimulatorText.describe model dynamics.Fields parameters modules backend dtype

    override s.ToString() = s.Display
