// The public surface and its documentation: Trainer.fsi.
namespace Hybrid.Training

open System
open System.Diagnostics
open TorchSharp
open Hybrid

[<RequireQualifiedAccess>]
module Trainer =

    let defaults: TrainOptions = {
        Epochs = 100
        StepsPerEpoch = 1
        Seed = 0
        Groups = [||]
        ClipNorm = 0.0
        Horizon = { Start = 1; Max = 1; GrowEvery = 0 }
        Lambda = LambdaSchedule.Constant 0.0
        ValidateEvery = 1
        Patience = 0
        MinDelta = 0.0
        RestoreBest = false
        CheckpointDir = None
        CheckpointEvery = 10
        Resume = true
        Progress = Progress.silent
        Theta = [||]
        Modules = [||]
        Cancel = Threading.CancellationToken.None
        Recoveries = 3
    }

    let group (name: string) (rate: float) (parameters: Modules.Parameter seq) : Hybrid.Training.ParamGroup = {
        Name = name
        Parameters = Array.ofSeq parameters
        LearningRate = rate
        Schedule = LrSchedule.Constant
    }

    let horizonAt (h: HorizonSchedule) (epoch: int) : int =
        let grown =
            if h.GrowEvery > 0 then
                h.Start + epoch / h.GrowEvery
            else
                h.Start

        max 1 (min (max h.Start h.Max) grown)

    let rateFactor (s: LrSchedule) (epoch: int) (epochs: int) : float =
        match s with
        | LrSchedule.Constant -> 1.0
        | LrSchedule.Step(every, f) -> Math.Pow(f, float (epoch / max 1 every))
        | LrSchedule.Exponential g -> Math.Pow(g, float epoch)
        | LrSchedule.Cosine m ->
            let p = float epoch / float (max 1 (epochs - 1))
            m + (1.0 - m) * 0.5 * (1.0 + cos (Math.PI * p))

    let internal epochSeed (seed: int) (epoch: int) = seed * 1_000_003 + epoch * 7_919 + 17

    let private validate (o: TrainOptions) =
        if
            o.Groups.Length = 0
            || o.Groups |> Array.forall (fun g -> g.Parameters.Length = 0)
        then
            raise (
                HybridException(
                    "Trainer: no parameters to train. Give at least one ParamGroup with parameters (e.g. Trainer.group \"phi\" 1e-3 (Neural.parameters net))."
                )
            )

        for g in o.Groups do
            if not (g.LearningRate > 0.0) then
                raise (
                    HybridException(
                        $"Trainer: group '{g.Name}' has learning rate {g.LearningRate}; it must be positive."
                    )
                )

        if o.Recoveries < 0 then
            raise (
                HybridException(
                    $"Trainer: Recoveries = {o.Recoveries}; give 0 (fail at the first divergence) or more (e.g. 3)."
                )
            )

        if o.Epochs < 0 || o.StepsPerEpoch < 1 then
            raise (
                HybridException(
                    $"Trainer: Epochs = {o.Epochs} and StepsPerEpoch = {o.StepsPerEpoch}; need Epochs ≥ 0 and StepsPerEpoch ≥ 1."
                )
            )

    /// Restores the latest checkpoint of `dir` into the parameters, best copies, optimizer and histories; the
    /// epoch to start from (0 without one).
    let private resume (o: TrainOptions) (all: torch.Tensor[]) (best: BestParameters) optimizer history =
        match o.CheckpointDir with
        | Some dir when o.Resume ->
            match Checkpoint.resume dir all best.Copies optimizer o.Seed o.Epochs with
            | Some meta ->
                best.Validation <- meta.BestValidation
                best.Epoch <- meta.BestEpoch
                (fst history: ResizeArray<float>).AddRange meta.TrainLosses
                (snd history: ResizeArray<float>).AddRange meta.ValidationLosses
                meta.Epoch
            | None -> 0
        | _ -> 0

    let private run (o: TrainOptions) (objective: Objective) : TrainResult =
        Engine.init ()
        validate o
        let watch = Stopwatch.StartNew()
        let used = o.Groups |> Array.filter (fun g -> g.Parameters.Length > 0)

        let newAdam () =
            new Adam(
                used
                |> Array.map (fun g -> Array.map (fun p -> p :> torch.Tensor) g.Parameters, g.LearningRate)
            )

        let optimizer = ref (newAdam ())

        use _ =
            { new IDisposable with
                member _.Dispose() =
                    (optimizer.Value :> IDisposable).Dispose()
            }

        let all = used |> Array.collect (fun g -> g.Parameters)
        let allTensors = all |> Array.map (fun p -> p :> torch.Tensor)
        let best = BestParameters all
        let trainLosses = ResizeArray<float>()
        let validationLosses = ResizeArray<float>()
        let start = resume o allTensors best optimizer.Value (trainLosses, validationLosses)

        let saveCheckpoint (epoch: int) =
            match o.CheckpointDir with
            | Some dir ->
                Checkpoint.save dir allTensors best.Copies optimizer.Value {
                    Epoch = epoch
                    Seed = o.Seed
                    BestValidation = best.Validation
                    BestEpoch = best.Epoch
                    TrainLosses = trainLosses.ToArray()
                    ValidationLosses = validationLosses.ToArray()
                }
                |> ignore
            | None -> ()

        let theta () =
            o.Theta |> Array.map (fun (n, f) -> n, f ())

        let mutable stoppedEarly = false
        let mutable cancelled = false
        let mutable epoch = start
        // Divergence recovery (copies only when recoveries are allowed): the parameters at the start of this
        // attempt at an epoch, and those at the start of the last epoch whose steps all had finite losses (a
        // blow-up usually shows one epoch after the step that caused it, so that is where a recovery goes back to).
        let recoveries = ref 0
        let rateScale = ref 1.0
        let hasLastGood = ref false

        let snapshot () =
            if o.Recoveries > 0 then
                use _ = torch.no_grad ()
                all |> Array.map (fun p -> p.detach().clone ())
            else
                [||]

        let thisStart, lastGood = snapshot (), snapshot ()

        let copy (source: torch.Tensor[]) (target: torch.Tensor[]) =
            use _ = torch.no_grad ()
            Array.iter2 (fun (t: torch.Tensor) (s: torch.Tensor) -> t.copy_ s |> ignore) target source

        /// One epoch's steps; a divergence within the allowed recoveries puts back the last good parameters,
        /// halves the rates, resets the optimizer and runs the epoch again.
        let rec stepsOf (ctx: TrainContext) =
            if o.Recoveries > 0 then
                copy allTensors thisStart

            try
                let result = Epoch.steps o optimizer.Value all objective ctx

                if o.Recoveries > 0 then
                    copy thisStart lastGood
                    hasLastGood.Value <- true

                result
            with :? DivergenceException as e when recoveries.Value < o.Recoveries ->
                recoveries.Value <- recoveries.Value + 1
                rateScale.Value <- rateScale.Value * 0.5
                copy (if hasLastGood.Value then lastGood else thisStart) allTensors
                (optimizer.Value :> IDisposable).Dispose()
                optimizer.Value <- newAdam ()

                used
                |> Array.iteri (fun i g ->
                    optimizer.Value.LearningRate(i) <-
                        g.LearningRate * rateFactor g.Schedule ctx.Epoch o.Epochs * rateScale.Value)

                eprintfn
                    "Trainer: epoch %d diverged (%s); back to the last parameters with a finite loss, learning rates × %g, optimizer reset (recovery %d of %d)."
                    (ctx.Epoch + 1)
                    e.Message
                    rateScale.Value
                    recoveries.Value
                    o.Recoveries

                stepsOf ctx

        while epoch < o.Epochs && not stoppedEarly && not cancelled do
            if o.Cancel.IsCancellationRequested then
                cancelled <- true
            else
                used
                |> Array.iteri (fun i g ->
                    optimizer.Value.LearningRate(i) <-
                        g.LearningRate * rateFactor g.Schedule epoch o.Epochs * rateScale.Value)

                torch.manual_seed (int64 (epochSeed o.Seed epoch)) |> ignore

                let ctx = {
                    Epoch = epoch
                    Step = 0
                    Horizon = horizonAt o.Horizon epoch
                    Lambda = Loss.lambdaAt o.Lambda epoch
                    Random = Random(epochSeed o.Seed epoch)
                }

                let trainLoss, parts = stepsOf ctx
                trainLosses.Add trainLoss

                let validation =
                    match objective.Validation with
                    | Some v when (epoch + 1) % max 1 o.ValidateEvery = 0 || epoch + 1 = o.Epochs ->
                        Epoch.validation o v ctx
                    | _ -> nan

                validationLosses.Add validation
                stoppedEarly <- best.Record(validation, epoch + 1, o.MinDelta, o.Patience)
                epoch <- epoch + 1

                if o.CheckpointEvery > 0 && epoch % o.CheckpointEvery = 0 then
                    saveCheckpoint epoch

                let elapsed = watch.Elapsed

                Progress.report o.Progress {
                    Epoch = epoch
                    Epochs = o.Epochs
                    TrainLoss = trainLoss
                    ValidationLoss = validation
                    Parts = parts
                    Theta = theta ()
                    Horizon = ctx.Horizon
                    Elapsed = elapsed
                    Eta =
                        TimeSpan.FromTicks(
                            int64 (float elapsed.Ticks / float (epoch - start) * float (o.Epochs - epoch))
                        )
                }

        if epoch > start && (o.CheckpointEvery <= 0 || epoch % o.CheckpointEvery <> 0) then
            saveCheckpoint epoch

        if o.RestoreBest then
            best.Restore()

        for m in o.Modules do
            m.eval ()

        {
            TrainLosses = trainLosses.ToArray()
            ValidationLosses = validationLosses.ToArray()
            Epochs = epoch
            BestEpoch = best.Epoch
            StoppedEarly = stoppedEarly
            Cancelled = cancelled
            WallTime = watch.Elapsed
            Theta = theta ()
            Recoveries = recoveries.Value
        }

    let train (o: TrainOptions) (objective: Objective) : TrainResult =
        use _ = TorchGuard.enter "Trainer.train"
        let modes = o.Modules |> Array.map (fun m -> m.training)

        try
            run o objective
        with _ ->
            // A failed run leaves the modules in the modes they had before it (a finished one in eval mode).
            Array.iter2 (fun (m: torch.nn.Module) (training: bool) -> m.train training) o.Modules modes
            reraise ()

    let lbfgs
        (parameters: Modules.Parameter[])
        (rate: float)
        (iterations: int)
        (maxIter: int)
        (loss: unit -> torch.Tensor)
        =
        use _ = TorchGuard.enter "Trainer.lbfgs"

        let optimizer =
            LbfgsOptimizer(
                {
                    Lbfgs.defaults with
                        InitialStep = rate
                },
                parameters,
                loss
            )

        [| for _ in 1..iterations -> (optimizer.Run maxIter).Loss |]
