namespace Hybrid.Training

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// The estimated covariance of fitted parameters, on their constrained (physical) scale.
type ParameterCovariance = {
    /// Parameter names; a parameter with several values (a spatial one) gives `name[i]` per value.
    Names: string[]
    /// The constrained values at which it was evaluated (the fit).
    Estimates: float[]
    /// Standard errors: square roots of the covariance's diagonal.
    StandardErrors: float[]
    /// Covariance matrix σ² (JᵀJ)⁻¹, [p; p] in the order of `Names`.
    Covariance: float[,]
    /// Residual variance σ² = RSS / (n − p).
    ResidualVariance: float
    /// Residual sum of squares.
    ResidualSumOfSquares: float
    /// Residuals used n (finite entries of the residual vector).
    Residuals: int
}

/// One point of a profile likelihood: the profiled parameter fixed at `Value`, the others refitted.
type ProfilePoint = {
    /// The value the profiled parameter was fixed at (constrained scale).
    Value: float
    /// Residual sum of squares after refitting the other parameters.
    ResidualSumOfSquares: float
    /// Likelihood-ratio statistic n·log(RSS / RSS at the optimum) (Gaussian residuals, σ unknown); compare with
    /// χ²(1): 3.84 for 95%.
    Deviance: float
    /// The other parameters' refitted values, by name.
    Others: (string * float)[]
}

/// The profile likelihood of one parameter.
type Profile = {
    /// The profiled parameter.
    Name: string
    /// Its value at the optimum.
    Estimate: float
    /// Residual sum of squares at the optimum.
    ResidualSumOfSquares: float
    /// The profile, in increasing `Value`.
    Points: ProfilePoint[]
    /// The 95% profile-likelihood interval (where the deviance stays ≤ 3.84, by linear interpolation between
    /// points); a side the points do not reach past 3.84 is None.
    Lower: float option
    /// Upper end of the 95% interval (see `Lower`).
    Upper: float option
}

/// How `Covariance` differentiates the residuals with respect to the parameters.
[<RequireQualifiedAccess>]
type JacobianMethod =
    /// Reverse-mode autograd: one forward pass with its graph, then one backward pass per residual. Exact (to the
    /// gradients' accuracy); its cost grows with the number of residuals n.
    | Reverse
    /// Central differences in each raw value at steps δ and 2δ (δ = 1e-4 · max(1, |raw|)), four forward passes
    /// per parameter value (no backward pass), Richardson-extrapolated (error O(δ⁴)) and checked: a column is kept
    /// only when the two differences agree to 1e-5 of its largest entry and every perturbed residual vector has the
    /// same finite entries. Otherwise — a jump between the evaluations (an adaptive step size that flips, an
    /// iteration count), residuals that are not float64 or fail at a moved value, a zero column, or
    /// n ≤ 4p (reverse mode is then no dearer) — the whole Jacobian comes from `Reverse`. Its cost grows with the
    /// number of parameter values p, not with n.
    | Differences

/// Standard errors and covariance of fitted parameters by the Gauss–Newton (Laplace) approximation at the
/// optimum, for least-squares fits with independent residuals of one variance.
[<RequireQualifiedAccess>]
module Covariance =

    let private values (p: Param) : float[] =
        use _ = torch.no_grad ()
        use v = p.Value
        v.detach().to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray()

    let private names (parameters: Param[]) : string[] =
        parameters
        |> Array.collect (fun p ->
            let n = int (p.Raw.numel ())

            if n = 1 && p.Raw.dim () = 0L then
                [| p.Name |]
            else
                Array.init n (fun i -> $"{p.Name}[{i}]"))

    /// ∂θ/∂raw of every value of `parameters` (elementwise for every constraint), in their order.
    let private slopes (parameters: Param[]) : float[] =
        parameters
        |> Array.collect (fun q ->
            use _ = torch.NewDisposeScope()
            use v = q.Value
            use s = v.sum ()
            let g = torch.autograd.grad ([| s |], [| q.Raw :> torch.Tensor |])
            g[0].to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray())

    /// r and J [n; p] by reverse-mode autograd (`JacobianMethod.Reverse`).
    let private reverse (residuals: unit -> torch.Tensor) (parameters: Param[]) : float[] * float[,] =
        let raws = parameters |> Array.map (fun p -> p.Raw :> torch.Tensor)
        let sizes = parameters |> Array.map (fun p -> int (p.Raw.numel ()))
        let p = Array.sum sizes
        let learnable = parameters |> Array.map (fun q -> q.Learnable)

        try
            for q in parameters do
                q.Learnable <- true

            use _ = torch.NewDisposeScope()

            let slope = slopes parameters

            let r = (residuals ()).reshape [| -1L |]
            let all = r.detach().to_type(torch.ScalarType.Float64).cpu().data<float>().ToArray()
            let rows = all |> Array.indexed |> Array.filter (fun (_, v) -> Double.IsFinite v)

            if rows.Length = 0 then
                raise (
                    HybridException(
                        "Covariance: the residual vector has no finite entry. Return prediction − data with data where observed."
                    )
                )

            if not r.requires_grad then
                raise (
                    HybridException(
                        "Covariance: the residuals do not depend on the parameters (no gradient). Compute them from the simulator whose parameters were given."
                    )
                )

            let j = Array2D.zeroCreate rows.Length p

            rows
            |> Array.iteri (fun row (index, _) ->
                use _ = torch.NewDisposeScope()
                let ri = r[int64 index]

                let grads =
                    torch.autograd.grad ([| ri |], raws, retain_graph = true, allow_unused = true)

                let mutable column = 0

                for k in 0 .. parameters.Length - 1 do
                    let g = grads[k]

                    let gv =
                        if isNull (box g) || g.IsInvalid then
                            Array.zeroCreate sizes[k]
                        else
                            g.to_type(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray()

                    for i in 0 .. sizes[k] - 1 do
                        j[row, column] <- gv[i] / slope[column]
                        column <- column + 1)

            rows |> Array.map snd, j
        finally
            Array.iter2 (fun (q: Param) l -> q.Learnable <- l) parameters learnable

    /// The relative step of `JacobianMethod.Differences` in the raw values.
    let private differenceStep = 1e-4

    /// The agreement `JacobianMethod.Differences` asks of its two differences, relative to the column's largest entry.
    let private differenceAgreement = 1e-5

    /// The residual vector flattened to float64 on the CPU, and its own dtype.
    let private evaluate (residuals: unit -> torch.Tensor) : float[] * torch.ScalarType =
        use _ = torch.NewDisposeScope()
        let r = residuals ()
        r.reshape([| -1L |]).to_type(torch.ScalarType.Float64).cpu().data<float>().ToArray(), r.dtype

    /// r and J [n; p] by checked central differences (`JacobianMethod.Differences`), or None where that method
    /// hands over to reverse mode. The raw values are put back whatever happens.
    let private differences (residuals: unit -> torch.Tensor) (parameters: Param[]) : (float[] * float[,]) option =
        let float64 (t: torch.Tensor) = t.dtype = torch.ScalarType.Float64

        if not (parameters |> Array.forall (fun q -> float64 q.Raw)) then
            None
        else
            let saved =
                use _ = torch.no_grad ()
                parameters |> Array.map (fun q -> q.Raw.detach().clone ())

            let learnable = parameters |> Array.map (fun q -> q.Learnable)

            try
                try
                    for q in parameters do
                        q.Learnable <- true

                    let slope = slopes parameters
                    // Evaluated as reverse mode evaluates them (gradients on, the parameters learnable): residuals
                    // may take derivatives themselves, and autograd aborts the process on a gradient it cannot form.
                    let all, kind = evaluate residuals

                    let rows =
                        Array.indexed all
                        |> Array.filter (fun (_, v) -> Double.IsFinite v)
                        |> Array.map fst

                    let p = slope.Length

                    if kind <> torch.ScalarType.Float64 || rows.Length <= 4 * p then
                        None
                    else
                        let j = Array2D.zeroCreate rows.Length p
                        let mutable column = 0
                        let mutable kept = true

                        for k in 0 .. parameters.Length - 1 do
                            let raw = parameters[k].Raw
                            let start = saved[k].reshape([| -1L |]).data<float>().ToArray()

                            for i in 0 .. start.Length - 1 do
                                if kept then
                                    let x = start[i]

                                    // The residuals at raw value i moved by `s`, and the move as represented.
                                    let at (s: float) =
                                        let moved = x + s

                                        let fill (v: float) =
                                            use _ = torch.no_grad ()
                                            use flat = raw.view [| -1L |]
                                            use cell = flat[int64 i]
                                            withScalar v cell.fill_ |> ignore

                                        fill moved
                                        let r = fst (evaluate residuals)
                                        fill x
                                        r, moved - x

                                    let delta = differenceStep * max 1.0 (abs x)
                                    let up1, h1 = at delta
                                    let down1, g1 = at -delta
                                    let up2, h2 = at (2.0 * delta)
                                    let down2, g2 = at (-2.0 * delta)

                                    let sameRows (r: float[]) =
                                        r.Length = all.Length
                                        && Array.forall2 (fun a b -> Double.IsFinite a = Double.IsFinite b) r all

                                    if List.forall sameRows [ up1; down1; up2; down2 ] then
                                        let near = rows |> Array.map (fun row -> (up1[row] - down1[row]) / (h1 - g1))
                                        let far = rows |> Array.map (fun row -> (up2[row] - down2[row]) / (h2 - g2))
                                        let size = near |> Array.fold (fun m v -> max m (abs v)) 0.0
                                        let gap = Array.fold2 (fun m a b -> max m (abs (a - b))) 0.0 near far

                                        if size > 0.0 && gap <= differenceAgreement * size then
                                            for row in 0 .. rows.Length - 1 do
                                                j[row, column] <- (4.0 * near[row] - far[row]) / 3.0 / slope[column]
                                        else
                                            kept <- false
                                    else
                                        kept <- false

                                    column <- column + 1

                        if kept then
                            Some(rows |> Array.map (fun row -> all[row]), j)
                        else
                            None
                with
                | :? OperationCanceledException -> reraise ()
                | _ -> None
            finally
                use _ = torch.no_grad ()
                Array.iter2 (fun (q: Param) (v: torch.Tensor) -> q.Raw.copy_ v |> ignore) parameters saved
                Array.iter (fun (v: torch.Tensor) -> v.Dispose()) saved
                Array.iter2 (fun (q: Param) l -> q.Learnable <- l) parameters learnable

    /// The residual vector's finite entries r (n) and their Jacobian J [n; p] with respect to the constrained
    /// parameter values (p = total number of values of `parameters`) by `method`, through each constraint
    /// (∂r/∂θ = ∂r/∂raw ÷ ∂θ/∂raw), and the method that gave it (`Differences` hands over to `Reverse` where its
    /// check fails). Entries of `residuals ()` that are NaN/Inf (missing data) are left out.
    let jacobianBy
        (method: JacobianMethod)
        (residuals: unit -> torch.Tensor)
        (parameters: Param[])
        : float[] * float[,] * JacobianMethod =
        Engine.init ()

        if parameters.Length = 0 then
            raise (
                HybridException(
                    "Covariance: no parameters were given. Pass the fitted parameters, e.g. sim.Parameters."
                )
            )

        let byDifferences =
            match method with
            | JacobianMethod.Differences -> differences residuals parameters
            | JacobianMethod.Reverse -> None

        match byDifferences with
        | Some(r, j) -> r, j, JacobianMethod.Differences
        | None ->
            let r, j = reverse residuals parameters
            r, j, JacobianMethod.Reverse

    /// The residual vector's finite entries r (n) and their Jacobian J [n; p] with respect to the constrained
    /// parameter values (p = total number of values of `parameters`), by reverse-mode autograd: one backward
    /// pass per residual through a single forward evaluation, then the chain rule through each constraint
    /// (∂r/∂θ = ∂r/∂raw ÷ ∂θ/∂raw). Entries of `residuals ()` that are NaN/Inf (missing data) are left out.
    let jacobian (residuals: unit -> torch.Tensor) (parameters: Param[]) : float[] * float[,] =
        let r, j, _ = jacobianBy JacobianMethod.Reverse residuals parameters
        r, j

    /// Covariance from residuals r and their Jacobian J [n; p]: σ² (JᵀJ)⁻¹ with σ² = rᵀr / (n − p). Raises
    /// `HybridException` when n ≤ p or JᵀJ is singular (a parameter the residuals do not determine).
    let ofJacobian (names: string[]) (estimates: float[]) (r: float[]) (j: float[,]) : ParameterCovariance =
        let n, p = Array2D.length1 j, Array2D.length2 j

        if names.Length <> p || estimates.Length <> p || r.Length <> n then
            raise (
                HybridException(
                    $"Covariance: {names.Length} names and {estimates.Length} estimates for a Jacobian of {p} columns, {r.Length} residuals for {n} rows; they must match."
                )
            )

        if n <= p then
            raise (
                HybridException(
                    $"Covariance: {n} residuals cannot give the variance of {p} parameters: need more residuals than parameters (n > p). Observe more values."
                )
            )

        let rss = r |> Array.sumBy (fun v -> v * v)
        let sigma2 = rss / float (n - p)

        // JᵀJ scaled to unit diagonal for a well-conditioned Cholesky factorisation.
        let a =
            Array2D.init p p (fun k l ->
                let mutable s = 0.0

                for i in 0 .. n - 1 do
                    s <- s + j[i, k] * j[i, l]

                s)

        for k in 0 .. p - 1 do
            if not (a[k, k] > 0.0) then
                raise (
                    HybridException(
                        $"Covariance: the residuals do not change with parameter '{names[k]}' (its Jacobian column is zero), so its standard error is infinite. Leave it out or fix it."
                    )
                )

        let scale = Array.init p (fun k -> sqrt a[k, k])
        let c = Array2D.init p p (fun k l -> a[k, l] / (scale[k] * scale[l]))
        let lower = Array2D.zeroCreate p p

        for k in 0 .. p - 1 do
            let mutable d = c[k, k]

            for m in 0 .. k - 1 do
                d <- d - lower[k, m] * lower[k, m]

            if not (d > 1e-13) then
                let others = String.Join(", ", names[0 .. k - 1] |> Array.map (fun s -> $"'{s}'"))

                raise (
                    HybridException(
                        $"Covariance: parameter '{names[k]}' is not identifiable from these residuals together with {others}: JᵀJ is singular (a change of it can be undone by the others). Fix one of them or observe more."
                    )
                )

            lower[k, k] <- sqrt d

            for i in k + 1 .. p - 1 do
                let mutable s = c[i, k]

                for m in 0 .. k - 1 do
                    s <- s - lower[i, m] * lower[k, m]

                lower[i, k] <- s / lower[k, k]

        // (LLᵀ)⁻¹ column by column, then undo the scaling.
        let inverse = Array2D.zeroCreate p p

        for col in 0 .. p - 1 do
            let z = Array.zeroCreate p

            for i in 0 .. p - 1 do
                let mutable s = if i = col then 1.0 else 0.0

                for m in 0 .. i - 1 do
                    s <- s - lower[i, m] * z[m]

                z[i] <- s / lower[i, i]

            let x = Array.zeroCreate p

            for i in p - 1 .. -1 .. 0 do
                let mutable s = z[i]

                for m in i + 1 .. p - 1 do
                    s <- s - lower[m, i] * x[m]

                x[i] <- s / lower[i, i]

            for i in 0 .. p - 1 do
                inverse[i, col] <- x[i]

        let covariance =
            Array2D.init p p (fun k l -> sigma2 * inverse[k, l] / (scale[k] * scale[l]))

        {
            Names = names
            Estimates = estimates
            StandardErrors = Array.init p (fun k -> sqrt covariance[k, k])
            Covariance = covariance
            ResidualVariance = sigma2
            ResidualSumOfSquares = rss
            Residuals = n
        }

    /// The Gauss–Newton (Laplace) covariance of the constrained parameter values at the current (fitted)
    /// values: `residuals ()` returns prediction − data (any shape; NaN entries, e.g. missing data, are left
    /// out) computed from `parameters`; J is its Jacobian with respect to the constrained values θ (not the raw
    /// values the optimiser moves), σ² = RSS / (n − p) and cov = σ² (JᵀJ)⁻¹. Valid at a least-squares optimum
    /// with independent residuals of one variance (for a log-space fit, pass log-space residuals). Costs one
    /// forward and n backward passes (`gaussNewtonBy` differentiates by another `JacobianMethod`). Raises
    /// `HybridException` when n ≤ p or a parameter is not identifiable.
    let gaussNewton (residuals: unit -> torch.Tensor) (parameters: Param[]) : ParameterCovariance =
        let r, j = jacobian residuals parameters
        ofJacobian (names parameters) (parameters |> Array.collect values) r j

    /// `gaussNewton` with J by `method`: `JacobianMethod.Differences` costs 4p forward passes instead of n
    /// backward passes, and hands over to reverse mode where its check fails.
    let gaussNewtonBy
        (method: JacobianMethod)
        (residuals: unit -> torch.Tensor)
        (parameters: Param[])
        : ParameterCovariance =
        let r, j, _ = jacobianBy method residuals parameters
        ofJacobian (names parameters) (parameters |> Array.collect values) r j

    /// χ²(1) quantile at 95%: the deviance threshold of a 95% profile-likelihood interval.
    let private chiSquare95 = 3.841458820694124

    /// Sum of squares of the finite entries of the residual vector, as a tensor (for fitting) and the count.
    let private sumOfSquares (residuals: unit -> torch.Tensor) =
        let r = residuals ()
        use finite = torch.isfinite r
        use zero = torch.zeros_like r
        let kept = torch.where (finite, r, zero)
        use count = finite.sum ()
        (square kept).sum (), int (count.ToInt64())

    /// The profile likelihood of parameter `name` (one of `parameters`, scalar): for each of `values` the
    /// parameter is fixed there and the other `parameters` are refitted by L-BFGS (`options`) to the residuals'
    /// sum of squares, starting from the neighbouring point's fit (the points are visited from the optimum
    /// outwards). Call it at the optimum: the current values are the estimates, and they are put back at the
    /// end. Raises `HybridException` for an unknown or non-scalar parameter, or residuals with no finite entry.
    let profile
        (options: LbfgsOptions)
        (residuals: unit -> torch.Tensor)
        (parameters: Param[])
        (name: string)
        (values: float[])
        : Profile =
        Engine.init ()

        let target =
            match parameters |> Array.tryFind (fun p -> p.Name = name) with
            | Some p when p.Raw.dim () = 0L -> p
            | Some p ->
                raise (
                    HybridException(
                        $"Covariance.profile: parameter '{name}' has {p.Raw.numel ()} values; only a scalar parameter can be profiled."
                    )
                )
            | None ->
                let known = String.Join(", ", parameters |> Array.map (fun p -> p.Name))

                raise (
                    HybridException(
                        $"Covariance.profile: no parameter '{name}' among the given ones ({known}). Use one of them."
                    )
                )

        let others = parameters |> Array.filter (fun p -> p.Name <> name)
        let learnable = parameters |> Array.map (fun p -> p.Learnable)

        let saved =
            use _ = torch.no_grad ()
            parameters |> Array.map (fun p -> p.Raw.detach().clone ())

        let restore () =
            use _ = torch.no_grad ()

            for i in 0 .. parameters.Length - 1 do
                parameters[i].Raw.copy_ saved[i] |> ignore

        let rss () =
            use _ = torch.no_grad ()
            use _ = torch.NewDisposeScope()
            let total, n = sumOfSquares residuals

            if n = 0 then
                raise (
                    HybridException(
                        "Covariance.profile: the residual vector has no finite entry. Return prediction − data with data where observed."
                    )
                )

            total.ToDouble(), n

        try
            let estimate = target.Get()
            let best, n = rss ()

            let point (v: float) =
                target.Set v
                target.Learnable <- false

                if others.Length > 0 then
                    Lbfgs.minimize options (others |> Array.map (fun p -> p.Raw)) (fun () ->
                        let total, count = sumOfSquares residuals
                        total ./ float (max 1 count))
                    |> ignore

                let r, _ = rss ()

                {
                    Value = v
                    ResidualSumOfSquares = r
                    Deviance = float n * log (r / best)
                    Others = others |> Array.map (fun p -> p.Name, p.Get())
                }

            for p in others do
                p.Learnable <- true

            // From the optimum outwards on each side, each fit starting where the previous one ended.
            let above =
                values |> Array.filter (fun v -> v >= estimate) |> Array.sort |> Array.map point

            restore ()

            let below =
                values
                |> Array.filter (fun v -> v < estimate)
                |> Array.sortDescending
                |> Array.map point
                |> Array.rev

            let points = Array.append below above

            // Linear interpolation of the crossing of the threshold between the optimum and the first point
            // beyond it on each side.
            let crossing (side: ProfilePoint[]) =
                side
                |> Array.tryFindIndex (fun q -> q.Deviance > chiSquare95)
                |> Option.map (fun i ->
                    let inner =
                        if i = 0 then
                            estimate, 0.0
                        else
                            side[i - 1].Value, side[i - 1].Deviance

                    let (v0, d0), (v1, d1) = inner, (side[i].Value, side[i].Deviance)
                    v0 + (chiSquare95 - d0) / (d1 - d0) * (v1 - v0))

            {
                Name = name
                Estimate = estimate
                ResidualSumOfSquares = best
                Points = points
                Lower = crossing (Array.rev below)
                Upper = crossing above
            }
        finally
            restore ()
            Array.iter2 (fun (p: Param) l -> p.Learnable <- l) parameters learnable

    /// Correlation matrix of a covariance.
    let correlation (c: ParameterCovariance) : float[,] =
        let p = c.Names.Length

        Array2D.init p p (fun k l -> c.Covariance[k, l] / (c.StandardErrors[k] * c.StandardErrors[l]))

    /// A table: name, estimate, standard error, relative standard error.
    let format (c: ParameterCovariance) : string =
        let width = c.Names |> Array.fold (fun w n -> max w n.Length) 9

        [
            $"""{"parameter".PadRight width}  {"estimate", 12}  {"std. error", 12}  {"rel.", 8}"""
            for k in 0 .. c.Names.Length - 1 do
                let e, s = c.Estimates[k], c.StandardErrors[k]
                let rel = if e <> 0.0 then $"{100.0 * s / abs e:F2}%%" else "-"
                $"{c.Names[k].PadRight width}  {e, 12:G6}  {s, 12:G4}  {rel, 8}"
        ]
        |> String.concat Environment.NewLine
