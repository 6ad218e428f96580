/// Twin experiments shared by the L-BFGS and covariance tests: a model's own simulation plus seeded Gaussian
/// noise is the data, and the fit starts from scaled true parameter values.
module Hybrid.Tests.Training.Twins

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels
open Hybrid.Training
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64

/// Which simulator makes the predictions: the eager one (`Compiler.compile` + `Rollout`) or the generated kernels.
type TwinPath =
    | Eager
    | Kernel

/// Fisher–KPP of the tutorial (16 cells instead of 32): ∂u/∂t = D Δu + r u (1 − u), no-flux walls.
let fisherModel =
    Parse.model
        """
model fisher
domain interval [0, 1] cells 16
field u
param D > 0 = 0.01
param r > 0 = 2
∂u/∂t = D Δu + r u (1 − u)
boundary u noflux
initial u = 0.1 + 0.8 exp(−100 (x − 0.3)²)
"""

/// A twin experiment on one path: `residuals data` of the simulator `fit` (prediction − data, log space for
/// Lotka–Volterra), data = truth + seeded Gaussian noise.
type Twin = {
    Fit: Simulator
    Names: string list
    Truth: Map<string, float>
    Residuals: torch.Tensor[] -> unit -> torch.Tensor
    Noisy: torch.Generator -> torch.Tensor[]
}

/// A twin experiment of `model` fitting `names`, saving every `saveEvery` of `steps` RK4 steps of `dt`, with
/// noise of standard deviation `sigma` (on the log of the fields when `logSpace`).
let twin
    (model: Model)
    (names: string list)
    (dt: float)
    (steps: int)
    (saveEvery: int)
    (logSpace: bool)
    (sigma: float)
    (path: TwinPath)
    =
    let fit = Compiler.compile Compiler.defaults model
    let truth = names |> List.map (fun n -> n, fit.Param(n).Get()) |> Map.ofList
    let kernel = lazy (Kernels.compile Scheme.Rk4 model)

    let saveTimes =
        Array.init (steps / saveEvery) (fun k -> dt * float ((k + 1) * saveEvery))

    let rollout = {
        Rollout.defaults with
            Dt = dt
            SaveTimes = saveTimes
    }

    // The start state comes from the initial conditions at every evaluation, so parameters used there are fitted.
    let predict () : torch.Tensor[] =
        let u0 = fit.Initial 1

        match path with
        | Eager -> (fit.Simulate(u0, rollout)).Values
        | Kernel ->
            let sim = kernel.Force()
            let theta = sim.Parameters |> Array.map (fun n -> fit.Param(n).Value)
            Kernels.rollout sim u0 theta 0.0 dt steps saveEvery steps

    let observe (v: torch.Tensor) =
        if logSpace then torch.log v else v .* 1.0

    let clean =
        use _ = torch.no_grad ()
        predict () |> Array.map (fun v -> (observe v).detach ())

    {
        Fit = fit
        Names = names
        Truth = truth
        Residuals =
            fun data () ->
                let v = predict ()
                torch.cat (Array.init v.Length (fun f -> (observe v[f] .- data[f]).reshape [| -1L |]), 0L)
        Noisy =
            fun gen ->
                use _ = torch.no_grad ()

                clean
                |> Array.map (fun c -> (c .+ sigma .* torch.randn (c.shape, dtype = f64, generator = gen)).detach ())
    }

/// Lotka–Volterra (the hares and lynx of `Examples.lotkaVolterra`), log-space data with 5% noise over t ∈ [0, 2]
/// (10 saves): a window short enough that a start whose clock runs 5× too fast is still in the right valley.
let lotkaVolterra path =
    twin Examples.lotkaVolterra [ "alpha"; "beta"; "gamma"; "delta" ] 0.1 20 2 true 0.05 path

/// Fisher–KPP with 1% noise at t = 0.25, 0.5, 0.75, 1 (Δt = 1/32 as in the tutorial).
let fisher path =
    twin fisherModel [ "D"; "r" ] 0.03125 32 8 false 0.01 path

/// Sets every fitted parameter to `scale`× its true value.
let setAll (t: Twin) (scale: float) =
    for n in t.Names do
        t.Fit.Param(n).Set(t.Truth[n] * scale)

/// Fits every parameter of `t` to `data` by default L-BFGS (mean squared residual) from `scale`× the truth;
/// returns the result and the estimates in the order of `t.Names`.
let fitFrom (t: Twin) (data: torch.Tensor[]) (scale: float) =
    setAll t scale

    let result =
        Lbfgs.minimize Lbfgs.defaults (t.Fit.Trainable()) (fun () -> (square (t.Residuals data ())).mean ())

    result, t.Names |> List.map (fun n -> t.Fit.Param(n).Get()) |> Array.ofList

/// The fitted parameters of `t`, in the order of `t.Names`.
let parameters (t: Twin) : Param[] =
    t.Names |> List.map t.Fit.Param |> Array.ofList
