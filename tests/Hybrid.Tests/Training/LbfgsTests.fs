/// L-BFGS with the strong-Wolfe line search: the vector core on Rosenbrock's function, failed trials (a
/// raised `HybridException`, a NaN loss) retreated from, the losses `Trainer.lbfgs` returns, and twin
/// experiments: Fisher–KPP and Lotka–Volterra fitted with default settings from 0.2× and 5× the truth, on the
/// eager and the kernel path, to within 3 standard errors (from `Covariance.gaussNewton`) of the truth.
module Hybrid.Tests.Training.LbfgsTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Kernels
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Tests.Training.Twins

let private f64 = torch.ScalarType.Float64

/// Rosenbrock's function (minimum 0 at (1, 1)) and its gradient.
let private rosenbrock (x: float[]) =
    let a, b = x[0], x[1]
    let f = (1.0 - a) ** 2.0 + 100.0 * (b - a * a) ** 2.0
    let ga = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a)
    let gb = 200.0 * (b - a * a)
    Evaluation.Value(f, [| ga; gb |])

/// Fits from the truth (the reference optimum and its standard errors), then from 0.2× and 5× every
/// parameter: each must end within 3 standard errors of the truth, at the same optimum (to 1% of a standard
/// error).
/// `refusedAt5`: the start from 5× meets trial steps the simulation refuses with this message (the stability
/// check on the eager path, the blow-up bound on the kernel path); they must be retreated from.
let private fromPoorStarts (name: string) (make: TwinPath -> Twin) (refusedAt5: string option) (path: TwinPath) =
    test $"{name}, {path} path: default L-BFGS from 0.2× and 5× the truth ends within 3 standard errors of it" {
        let t = make path
        use gen = new torch.Generator(20260601UL)
        let data = t.Noisy gen
        let _, optimum = fitFrom t data 1.0

        let cov = Covariance.gaussNewton (t.Residuals data) (parameters t)
        Expect.sequenceEqual cov.Names (Array.ofList t.Names) "covariance names"

        for scale in [ 0.2; 5.0 ] do
            let result, estimate = fitFrom t data scale

            printfn
                "%s (%A), start %g×: %s in %d iterations, %d evaluations (%d failed trials), %.2f s"
                name
                path
                scale
                (String.Join(
                    ", ",
                    t.Names
                    |> List.mapi (fun k n ->
                        $"{n} = {estimate[k]:G5} ({(estimate[k] - t.Truth[n]) / cov.StandardErrors[k]:F2} SE)")
                ))
                result.Iterations
                result.Evaluations
                result.FailedTrials
                result.WallTime.TotalSeconds

            match refusedAt5 with
            | Some message when scale = 5.0 ->
                Expect.isGreaterThan result.FailedTrials 0 "refused trial steps were met and retreated from"
                Expect.stringContains (defaultArg result.LastFailure "") message "why the simulation refused"
            | _ -> ()

            t.Names
            |> List.iteri (fun k n ->
                let se = cov.StandardErrors[k]

                Expect.isLessThanOrEqual
                    (abs (estimate[k] - t.Truth[n]))
                    (3.0 * se)
                    $"{n} from {scale}× the truth: within 3 standard errors ({se:G3}) of {t.Truth[n]}"

                Expect.isLessThanOrEqual
                    (abs (estimate[k] - optimum[k]))
                    (0.01 * se)
                    $"{n} from {scale}× the truth: the optimum found from the truth ({optimum[k]:G8})")
    }

let tests =
    testSequenced
    <| testList "Lbfgs" [
        test "Rosenbrock's function from (−1.2, 1): the minimum (1, 1) to 1e-6 in under 100 iterations" {
            let core = LbfgsCore(Lbfgs.defaults, rosenbrock, [| -1.2; 1.0 |])
            let losses, initial, _, failed, stop = core.Run 100
            Expect.floatClose Accuracy.veryHigh initial 24.2 "f(−1.2, 1) = 24.2"
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } core.X[0] 1.0 "x"
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } core.X[1] 1.0 "y"
            Expect.isLessThan losses.Length 100 "iterations"
            Expect.equal failed 0 "no failed trials"
            Expect.notEqual stop LbfgsStop.IterationLimit "converged before the iteration limit"
            // Every iteration satisfies sufficient decrease, so the losses fall strictly.
            Expect.isTrue (Array.pairwise losses |> Array.forall (fun (a, b) -> b < a)) "losses fall"
        }

        test "the strong-Wolfe line search finds a step meeting both conditions on a quartic" {
            // φ(α) = (α − 2)⁴ − 16 from α₁ = 0.1: slope −32 at 0; with c₂ = 0.1 the Wolfe steps lie where
            // |φ'(α)| ≤ 3.2, i.e. |α − 2| ≤ 0.93, so the search must extrapolate.
            let phi a = (a - 2.0) ** 4.0 - 16.0
            let slope a = 4.0 * (a - 2.0) ** 3.0

            let evaluate a = {
                Alpha = a
                Loss = phi a
                Slope = slope a
                Gradient = [| slope a |]
                Failure = None
            }

            let settings = {
                C1 = 1e-4
                C2 = 0.1
                MaxEvaluations = 25
            }

            match LineSearch.strongWolfe settings evaluate (phi 0.0) (slope 0.0) 0.1 with
            | SearchOutcome.Wolfe t, trials ->
                Expect.isLessThanOrEqual t.Loss (phi 0.0 + 1e-4 * t.Alpha * slope 0.0) "sufficient decrease"
                Expect.isLessThanOrEqual (abs t.Slope) (0.1 * 32.0) "curvature"
                Expect.isGreaterThan t.Alpha 1.07 "extrapolated beyond the first trial, into the Wolfe interval"
                Expect.isLessThan trials.Length 10 "a few evaluations"
            | other, _ -> failtestf "expected a Wolfe step, got %A" other
        }

        test "a trial step whose loss raises HybridException is retreated from and the fit goes on" {
            // L(p) = (p − 1)²; beyond p = 2 the "simulation" refuses to run. The first trial (length 10) fails.
            let p = torch.nn.Parameter(torch.tensor (0.0, dtype = f64))
            let mutable refused = 0

            let loss () =
                if p.ToDouble() > 2.0 then
                    refused <- refused + 1
                    raise (HybridException("Δt = 0.01 is above the stability limit"))

                square (p .- 1.0)

            let result =
                Lbfgs.minimize
                    {
                        Lbfgs.defaults with
                            InitialStep = 10.0
                    }
                    [| p |]
                    loss

            Expect.floatClose { absolute = 1e-8; relative = 0.0 } (p.ToDouble()) 1.0 "minimum found"
            Expect.isGreaterThanOrEqual result.FailedTrials 1 "at least one failed trial"
            Expect.equal result.FailedTrials refused "every refusal counted as a failed trial"
            Expect.floatClose { absolute = 1e-15; relative = 0.0 } result.Loss 0.0 "final loss"
            Expect.equal result.InitialLoss 1.0 "initial loss"
            Expect.equal result.LastFailure (Some "Δt = 0.01 is above the stability limit") "the refusal's message"
        }

        test "a trial step with a NaN loss is retreated from" {
            // L(p) = (p − 1)² + 0·sqrt(3 − p): NaN beyond p = 3, first trial at p = 10.
            let p = torch.nn.Parameter(torch.tensor (0.0, dtype = f64))

            let loss () =
                square (p .- 1.0) .+ 0.0 .* torch.sqrt (3.0 .- p)

            let result =
                Lbfgs.minimize
                    {
                        Lbfgs.defaults with
                            InitialStep = 10.0
                    }
                    [| p |]
                    loss

            Expect.floatClose { absolute = 1e-6; relative = 0.0 } (p.ToDouble()) 1.0 "minimum found"
            Expect.isGreaterThanOrEqual result.FailedTrials 1 "the NaN trial counted"
        }

        test "a loss that cannot be evaluated at the start raises HybridException naming the reason" {
            let p = torch.nn.Parameter(torch.tensor (5.0, dtype = f64))

            let e =
                Expect.throwsC
                    (fun () ->
                        Lbfgs.minimize Lbfgs.defaults [| p |] (fun () -> raise (HybridException("unstable at start")))
                        |> ignore)
                    id

            Expect.isTrue (e :? HybridException) "a HybridException"

            Expect.equal
                e.Message
                "L-BFGS: the loss cannot be evaluated at the starting parameters (unstable at start). Start from parameter values at which the model runs and the loss is finite."
                "message"
        }

        test "Trainer.lbfgs returns the loss after each outer step, not before" {
            let p = torch.nn.Parameter(torch.tensor (0.0, dtype = f64))
            let seen = ResizeArray<float>()

            let loss () =
                let l = square (p .- 3.0) .* (1.0 .+ square (p .- 3.0))
                seen.Add(l.ToDouble())
                l

            let losses = Trainer.lbfgs [| p |] 1.0 3 1 loss
            Expect.equal losses.Length 3 "one loss per outer step"
            Expect.equal seen[0] 90.0 "L(0) = 9·10"
            Expect.isLessThan losses[0] 90.0 "the first entry is after the first step"
            Expect.isTrue (seen.Contains losses[0]) "an evaluated loss"
            Expect.isLessThan losses[2] losses[0] "losses fall"
            let final = (p.ToDouble() - 3.0) ** 2.0 * (1.0 + (p.ToDouble() - 3.0) ** 2.0)

            Expect.floatClose
                { absolute = 1e-15; relative = 1e-12 }
                losses[2]
                final
                "the last entry is the loss at the final parameters"
        }

        fromPoorStarts "Fisher–KPP" fisher (Some "is above the stability limit") Eager
        fromPoorStarts "Lotka–Volterra" lotkaVolterra None Eager
        fromPoorStarts "Fisher–KPP" fisher (Some "is blowing up") Kernel
        fromPoorStarts "Lotka–Volterra" lotkaVolterra None Kernel
    ]
