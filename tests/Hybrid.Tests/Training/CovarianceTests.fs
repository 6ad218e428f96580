/// Standard errors of θ by Gauss–Newton at the optimum: against the textbook formulas of linear least
/// squares, through every constraint, clear errors for what cannot be estimated, and against the spread of
/// refits on resampled noise in a Lotka–Volterra twin experiment.
module Hybrid.Tests.Training.CovarianceTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Training
open Hybrid.TensorArithmetic
open Hybrid.Tests.Training.Twins

let private f64 = torch.ScalarType.Float64

let private xs = [| 0.0; 0.5; 1.0; 1.5; 2.0; 2.5 |]
let private ys = [| 0.1; 0.9; 2.3; 2.8; 4.2; 4.9 |]

/// Sample standard deviation.
let private sd (v: float[]) =
    let m = Array.average v
    sqrt ((v |> Array.sumBy (fun x -> (x - m) ** 2.0)) / float (v.Length - 1))

/// The q-quantile of χ² with k degrees of freedom (Wilson–Hilferty), z the standard normal quantile.
let private chiSquare (k: float) (z: float) =
    k * (1.0 - 2.0 / (9.0 * k) + z * sqrt (2.0 / (9.0 * k))) ** 3.0

/// True when two tensors hold the same values, bit for bit.
let private sameValues (a: torch.Tensor) (b: torch.Tensor) =
    let bits (t: torch.Tensor) =
        t.detach().to_type(f64).contiguous().data<float>().ToArray()
        |> Array.map BitConverter.DoubleToInt64Bits

    bits a = bits b

let tests =
    testSequenced
    <| testList "Covariance" [
        test "a straight line a + b x: σ² (XᵀX)⁻¹ of the textbook, from the Jacobian" {
            let n = float xs.Length
            let sx, sxx = Array.sum xs, xs |> Array.sumBy (fun x -> x * x)
            let sy, sxy = Array.sum ys, Array.map2 (*) xs ys |> Array.sum
            let det = n * sxx - sx * sx
            let b = (n * sxy - sx * sy) / det
            let a = (sy - b * sx) / n
            let r = Array.map2 (fun x y -> a + b * x - y) xs ys
            let s2 = (r |> Array.sumBy (fun v -> v * v)) / (n - 2.0)
            let j = Array2D.init xs.Length 2 (fun i k -> if k = 0 then 1.0 else xs[i])
            let c = Covariance.ofJacobian [| "a"; "b" |] [| a; b |] r j
            let close = Expect.floatClose { absolute = 0.0; relative = 1e-12 }
            close c.ResidualVariance s2 "σ² = RSS / (n − 2)"
            close c.Covariance[0, 0] (s2 * sxx / det) "var a"
            close c.Covariance[1, 1] (s2 * n / det) "var b"
            close c.Covariance[0, 1] (-s2 * sx / det) "cov a b"
            close c.Covariance[1, 0] c.Covariance[0, 1] "symmetric"
            close c.StandardErrors[1] (sqrt (s2 * n / det)) "SE b"
            let correlation = Covariance.correlation c
            close correlation[0, 1] (-sx / sqrt (n * sxx)) "correlation"
            Expect.equal c.Residuals 6 "n"
        }

        test "gaussNewton differentiates through each constraint: SE of θ in y = θ x is sqrt(σ² / Σx²)" {
            let x = torch.tensor (xs, dtype = f64)
            let y = torch.tensor (ys, dtype = f64)
            let sxx = xs |> Array.sumBy (fun v -> v * v)
            let theta = (Array.map2 (*) xs ys |> Array.sum) / sxx

            let rss =
                Array.map2 (fun a b -> theta * a - b) xs ys |> Array.sumBy (fun v -> v * v)

            let expected = sqrt (rss / 5.0 / sxx)

            for c in [ Constraint.Free; Constraint.Positive; Constraint.Bounded(1.0, 3.0) ] do
                let p = Param("theta", c, theta, dtype = f64)
                let cov = Covariance.gaussNewton (fun () -> p.Value .* x .- y) [| p |]
                Expect.floatClose { absolute = 0.0; relative = 1e-10 } cov.StandardErrors[0] expected $"{c}"
                Expect.floatClose { absolute = 0.0; relative = 1e-12 } cov.Estimates[0] theta $"{c}: estimate"
                Expect.equal cov.Names [| "theta" |] "name"
                Expect.isTrue p.Learnable "learnable again afterwards"
        }

        test "missing data (NaN residuals) are left out of n" {
            let x = torch.tensor (xs, dtype = f64)
            let y = torch.tensor (Array.append ys[0..4] [| nan |], dtype = f64)
            let sxx = xs[0..4] |> Array.sumBy (fun v -> v * v)
            let theta = (Array.map2 (*) xs[0..4] ys[0..4] |> Array.sum) / sxx

            let rss =
                Array.map2 (fun a b -> theta * a - b) xs[0..4] ys[0..4]
                |> Array.sumBy (fun v -> v * v)

            let p = Param("theta", Constraint.Free, theta, dtype = f64)
            let cov = Covariance.gaussNewton (fun () -> p.Value .* x .- y) [| p |]
            Expect.equal cov.Residuals 5 "five finite residuals"
            Expect.floatClose { absolute = 0.0; relative = 1e-10 } cov.StandardErrors[0] (sqrt (rss / 4.0 / sxx)) "SE"
        }

        test "what cannot be estimated fails with the reason and the fix" {
            let x = torch.tensor (xs, dtype = f64)
            let y = torch.tensor (ys, dtype = f64)
            let a = Param("a", Constraint.Free, 1.0, dtype = f64)
            let b = Param("b", Constraint.Free, 1.0, dtype = f64)
            let unused = Param("k", Constraint.Positive, 1.0, dtype = f64)

            let message f =
                (Expect.throwsC (fun () -> f () |> ignore) id).Message

            Expect.equal
                (message (fun () -> Covariance.gaussNewton (fun () -> (a.Value .+ b.Value) .* x .- y) [| a; b |]))
                "Covariance: parameter 'b' is not identifiable from these residuals together with 'a': JᵀJ is singular (a change of it can be undone by the others). Fix one of them or observe more."
                "a and b enter only as a + b"

            Expect.equal
                (message (fun () -> Covariance.gaussNewton (fun () -> a.Value .* x .- y) [| a; unused |]))
                "Covariance: the residuals do not change with parameter 'k' (its Jacobian column is zero), so its standard error is infinite. Leave it out or fix it."
                "k is not used"

            Expect.equal
                (message (fun () ->
                    Covariance.gaussNewton (fun () -> (a.Value .* x .- y)[torch.TensorIndex.Slice(0L, 2L)]) [| a; b |]))
                "Covariance: 2 residuals cannot give the variance of 2 parameters: need more residuals than parameters (n > p). Observe more values."
                "n ≤ p"
        }

        test "the profile of b in y = a + b x is n·log(1 + (b − b̂)² Sxx / RSS), a refitted at every point" {
            let n = float xs.Length
            let mean = Array.average xs
            let sxxc = xs |> Array.sumBy (fun x -> (x - mean) ** 2.0)
            let b = (Array.map2 (fun x y -> (x - mean) * y) xs ys |> Array.sum) / sxxc
            let a = Array.average ys - b * mean

            let rss =
                Array.map2 (fun x y -> a + b * x - y) xs ys |> Array.sumBy (fun v -> v * v)

            let x = torch.tensor (xs, dtype = f64)
            let y = torch.tensor (ys, dtype = f64)
            let pa = Param("a", Constraint.Free, a, dtype = f64)
            let pb = Param("b", Constraint.Free, b, dtype = f64)
            let residuals () = pa.Value .+ pb.Value .* x .- y
            // The exact 95% interval: b̂ ± sqrt((e^{3.84/n} − 1) RSS / Sxx); the grid spans ±1.5 of its half-width.
            let half = sqrt ((exp (3.841458820694124 / n) - 1.0) * rss / sxxc)
            let values = Array.init 31 (fun k -> b + half * (float k - 15.0) / 10.0)
            let profile = Covariance.profile Lbfgs.defaults residuals [| pa; pb |] "b" values

            Expect.equal profile.Points.Length 31 "one point per value"
            Expect.floatClose { absolute = 1e-12; relative = 0.0 } profile.Estimate b "estimate"

            for q in profile.Points do
                let expected = n * log (1.0 + (q.Value - b) ** 2.0 * sxxc / rss)
                Expect.floatClose { absolute = 1e-8; relative = 1e-6 } q.Deviance expected $"deviance at b = {q.Value}"
                // a refitted: a = ȳ − b x̄.
                Expect.floatClose
                    { absolute = 1e-6; relative = 0.0 }
                    (snd q.Others[0])
                    (Array.average ys - q.Value * mean)
                    $"a at b = {q.Value}"

            // Linear interpolation between grid points a tenth of the half-width apart: within 1% of it.
            Expect.floatClose
                {
                    absolute = 0.01 * half
                    relative = 0.0
                }
                profile.Lower.Value
                (b - half)
                "lower end"

            Expect.floatClose
                {
                    absolute = 0.01 * half
                    relative = 0.0
                }
                profile.Upper.Value
                (b + half)
                "upper end"

            Expect.floatClose { absolute = 1e-12; relative = 0.0 } (pb.Get()) b "b put back"
            Expect.isTrue pb.Learnable "b learnable again"

            let e =
                Expect.throwsC
                    (fun () -> Covariance.profile Lbfgs.defaults residuals [| pa; pb |] "c" values |> ignore)
                    id

            Expect.equal
                e.Message
                "Covariance.profile: no parameter 'c' among the given ones (a, b). Use one of them."
                "unknown parameter"
        }

        test "Differences: the twins' Jacobians from 4p forward passes agree with reverse mode, raw values untouched" {
            for name, t in
                [
                    "Lotka–Volterra, eager", lotkaVolterra Eager
                    "Fisher–KPP, kernels", fisher Kernel
                ] do
                use gen = new torch.Generator(2718UL)
                let data = t.Noisy gen
                let ps = parameters t
                ps[0].Learnable <- false
                let before = ps |> Array.map (fun q -> q.Raw.detach().clone ())

                let r, j, used =
                    Covariance.jacobianBy JacobianMethod.Differences (t.Residuals data) ps

                Expect.equal used JacobianMethod.Differences $"{name}: the differences were kept"
                let rr, jr = Covariance.jacobian (t.Residuals data) ps
                Expect.equal r rr $"{name}: the same residuals"

                for k in 0 .. ps.Length - 1 do
                    let size = Seq.init (Array2D.length1 jr) (fun i -> abs jr[i, k]) |> Seq.max

                    for i in 0 .. Array2D.length1 jr - 1 do
                        Expect.isLessThanOrEqual
                            (abs (j[i, k] - jr[i, k]))
                            (1e-8 * size)
                            $"{name}: J[{i}, {ps[k].Name}] = {j[i, k]} against {jr[i, k]}"

                Array.iter2
                    (fun (q: Param) (b: torch.Tensor) ->
                        Expect.isTrue (sameValues q.Raw b) $"{name}: {q.Name}'s raw value put back")
                    ps
                    before

                Expect.isFalse ps[0].Learnable $"{name}: {ps[0].Name} still not learnable"
                ps[0].Learnable <- true
        }

        test "Differences hand over to reverse mode where the residuals jump, are float32 or few" {
            let x = torch.tensor (xs, dtype = f64)
            let y = torch.tensor (ys, dtype = f64)
            let many = torch.linspace (0.0, 3.0, 40L, dtype = f64)
            let theta = Param("theta", Constraint.Positive, 1.7, dtype = f64)
            let raw = theta.Raw.ToDouble()
            let step = 1e-4 * max 1.0 (abs raw)

            let check name (residuals: unit -> torch.Tensor) (q: Param) expected =
                let before = q.Raw.detach().clone ()
                let r, j, used = Covariance.jacobianBy JacobianMethod.Differences residuals [| q |]
                Expect.equal used expected name
                let rr, jr = Covariance.jacobian residuals [| q |]
                Expect.equal r rr $"{name}: residuals"

                if expected = JacobianMethod.Reverse then
                    Expect.equal j jr $"{name}: reverse mode's Jacobian"
                else
                    for i in 0 .. r.Length - 1 do
                        Expect.floatClose { absolute = 0.0; relative = 1e-8 } j[i, 0] jr[i, 0] $"{name}: J[{i}]"

                Expect.isTrue (sameValues q.Raw before) $"{name}: raw value put back"

            check "smooth, 40 residuals" (fun () -> theta.Value .* many .- 1.0) theta JacobianMethod.Differences

            // A step of 1e-3 in the residuals between the raw value moved by δ and by 2δ: the two differences disagree.
            let jump () =
                let moved = withScalar (raw + 1.5 * step) theta.Raw.gt
                theta.Value .* many .+ 1e-3 .* moved.to_type f64 .- 1.0

            check "a jump between δ and 2δ" jump theta JacobianMethod.Reverse

            // Residuals that take a derivative themselves (∂(θ x³)/∂x = 3θx²) are evaluated with gradients on.
            let needsGradients () =
                let xg = many.detach().requires_grad_ true
                let s = (theta.Value .* xg .* xg .* xg).sum ()

                let g =
                    torch.autograd.grad ([| s |], [| xg |], retain_graph = true, create_graph = true)

                g[0] .- 1.0

            check "residuals that take a derivative" needsGradients theta JacobianMethod.Differences

            let single = Param("theta", Constraint.Free, 1.7, dtype = torch.ScalarType.Float32)
            let many32 = many.to_type torch.ScalarType.Float32
            check "float32" (fun () -> single.Value .* many32 .- 1.0) single JacobianMethod.Reverse

            check
                "4 residuals, 1 value: n ≤ 4p"
                (fun () -> (theta.Value .* x .- y)[torch.TensorIndex.Slice(0L, 4L)])
                theta
                JacobianMethod.Reverse

            let unused = Param("k", Constraint.Positive, 1.0, dtype = f64)

            let message method =
                (Expect.throwsC
                    (fun () ->
                        Covariance.gaussNewtonBy method (fun () -> theta.Value .* many .- 1.0) [| theta; unused |]
                        |> ignore)
                    id)
                    .Message

            Expect.equal
                (message JacobianMethod.Differences)
                (message JacobianMethod.Reverse)
                "a parameter the residuals do not use: reverse mode's error"
        }

        test "Lotka–Volterra twin: standard errors agree with the spread of 20 refits on resampled noise" {
            // One period (t ∈ [0, 10], 20 saves) of log-space data with 5% noise; the kernel path keeps 20 fits
            // fast. Each refit draws new noise, fits from the truth and computes its standard errors.
            let t =
                twin Examples.lotkaVolterra [ "alpha"; "beta"; "gamma"; "delta" ] 0.1 100 5 true 0.05 Kernel

            use gen = new torch.Generator(314159UL)
            let refits = 20

            let runs =
                Array.init refits (fun _ ->
                    let data = t.Noisy gen
                    let result, estimate = fitFrom t data 1.0
                    Expect.notEqual result.Stop LbfgsStop.IterationLimit "each refit converges"
                    estimate, (Covariance.gaussNewton (t.Residuals data) (parameters t)).StandardErrors)

            // With exact standard errors, SD/SE of n refits is distributed as sqrt(χ²(n−1)/(n−1)); its 99% range
            // for n = 20 is [0.60, 1.43], so SE/SD must lie in [0.70, 1.67].
            let k = float (refits - 1)
            let low = sqrt (k / chiSquare k 2.576)
            let high = sqrt (k / chiSquare k -2.576)

            t.Names
            |> List.iteri (fun j n ->
                let spread = sd (runs |> Array.map (fun (e, _) -> e[j]))
                let se = runs |> Array.averageBy (fun (_, s) -> s[j])
                printfn "%s: mean SE %.3g, SD of %d refits %.3g, ratio %.2f" n se refits spread (se / spread)
                Expect.isGreaterThanOrEqual (se / spread) low $"{n}: SE / SD ≥ {low:F2}"
                Expect.isLessThanOrEqual (se / spread) high $"{n}: SE / SD ≤ {high:F2}")
        }
    ]
