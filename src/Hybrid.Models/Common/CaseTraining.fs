/// What the case studies share when they train networks and parameters: a seeded, deterministic network
/// initialisation and the pure-ML baselines' entry to `Trainer.train`.
module internal Hybrid.Models.Common.CaseTraining

open System
open System.Diagnostics
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic
open Hybrid.Compiler
open Hybrid.Training

/// Deterministic initialisation of a network from `seed` (independent of TorchSharp's global RNG): weight
/// matrices uniform in ±1/√fan-in, biases (every one-dimensional parameter) zero except layer-norm gains,
/// which are one, and with `zeroOutput` the output layer (parameters named "out.…") zero too (so a
/// correction starts at exactly zero). Works for any module (MLPs, LSTMs, transformer encoders).
let initialise (net: torch.nn.Module) (seed: int) (zeroOutput: bool) =
    use _ = torch.no_grad ()
    use generator = new torch.Generator(uint64 seed)

    for struct (name, p) in net.named_parameters () do
        if p.dim () = 1L && name.Contains "norm" && name.EndsWith "weight" then
            withScalar 1.0 p.fill_ |> ignore
        elif p.dim () = 1L || (zeroOutput && name.Contains "out.") then
            p.zero_ () |> ignore
        else
            let k = 1.0 / sqrt (float p.shape[1])

            use values =
                (torch.rand (p.shape, dtype = p.dtype, generator = generator) .* 2.0 .- 1.0)
                .* k

            p.copy_ values |> ignore

/// Trains the parameters of `net` alone (one group "phi" at `rate`) with `Trainer.train` for `epochs` full-batch
/// epochs from `seed` (the trainer's epoch seeds; the weights themselves are set by `initialise`), `net` in
/// training mode, with early stopping on `check` where given (`EarlyStopping.apply`: validated every `Every` epochs,
/// the best epoch restored). `loss` sees the trainer's context (its epoch, for objectives that change during
/// training). The pure-ML baselines' one entry to the trainer.
let networkWith
    (check: EarlyStopping.Check option)
    (net: torch.nn.Module)
    (rate: float)
    (epochs: int)
    (seed: int)
    (loss: TrainContext -> torch.Tensor)
    =
    let options, validation =
        EarlyStopping.apply check epochs {
            Trainer.defaults with
                Epochs = epochs
                Seed = seed
                Groups = [| Trainer.group "phi" rate (Neural.parameters net) |]
                Modules = [| net |]
        }

    Trainer.train options {
        Loss =
            fun context ->
                let l = loss context
                { Total = l; Parts = [| "data", l |] }
        Validation = validation
    }

/// `networkWith` without validation: every epoch runs, the last parameters are kept.
let network (net: torch.nn.Module) (rate: float) (epochs: int) (seed: int) (loss: TrainContext -> torch.Tensor) =
    networkWith None net rate epochs seed loss

/// Runs `f` with libtorch limited to one intra-op thread and restores the previous count afterwards. For tiny
/// networks (tens of units, batches of tens) extra threads cost more than they save, and when the machine's
/// cores are busy their spin-waiting makes training many times slower (measured here: a 1-D PINN fit took
/// ≈ 1 s on one thread and ≈ 60 s on two under a load of 8). Do not call from several threads at once.
let singleThreaded (f: unit -> 'T) : 'T =
    let previous = torch.get_num_threads ()
    torch.set_num_threads 1

    try
        f ()
    finally
        torch.set_num_threads previous

/// `f ()` and its wall time in seconds (the inference times of the case studies' tables).
let timed (f: unit -> 'T) : 'T * float =
    let watch = Stopwatch.StartNew()
    let result = f ()
    result, watch.Elapsed.TotalSeconds

/// Suffix of a standard error's entry in a model's parameter list: "alpha" has its standard error as "alpha SE".
[<Literal>]
let StandardErrorSuffix = " SE"

/// Gauss–Newton standard errors (`Covariance.gaussNewton`) of the parameters `names` of `sim` at their current
/// values from the residual vector `residuals ()` (the training data's, the loss it was fitted by being their mean
/// square), as parameter-list entries (name + `StandardErrorSuffix`, value). For a hybrid, the network stays at
/// its trained weights: the errors are conditional on it (smaller than if φ's uncertainty were propagated).
let standardErrors (residuals: unit -> torch.Tensor) (sim: Simulator) (names: string list) : (string * float)[] =
    let cov = Covariance.gaussNewton residuals [| for n in names -> sim.Param n |]

    names
    |> List.mapi (fun i n -> n + StandardErrorSuffix, cov.StandardErrors[i])
    |> Array.ofList
