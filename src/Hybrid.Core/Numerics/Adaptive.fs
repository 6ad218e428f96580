namespace Hybrid.Numerics

open System
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Adaptive integration with Dormand and Prince's 5(4) pair: each step's error is estimated by the difference
/// of the 5th- and embedded 4th-order solutions, and the step size follows a PI controller (Hairer, Nørsett and
/// Wanner, Solving ODEs I, §II.4; Gustafsson 1991). Steps are shortened to land exactly on each save time.
/// Gradients: the accepted steps are ordinary tensor operations, so autograd differentiates the computed
/// solution; the step sizes are numbers read from the error estimates and count as fixed in the backward
/// pass (the derivative of the step-size choice is not taken, as in DifferentialEquations.jl and diffrax's
/// discrete adjoints).
[<RequireQualifiedAccess>]
module internal Adaptive =

    let private safety = 0.9
    let private smallest = 0.2
    let private largest = 10.0
    // PI controller exponents for an error estimate of order 4 (Hairer's DOPRI5: β = 0.04, α = 1/5 − 0.75β).
    let private beta = 0.04
    let private alpha = 0.2 - 0.75 * beta

    /// One Dormand–Prince step of size h from (t, u) whose first stage k1 = f(t, u) is given: the 5th-order
    /// state, the error estimate (5th- minus 4th-order state) per field, and f(t + h, new state) (the next
    /// step's first stage).
    let step
        (f: float -> torch.Tensor[] -> torch.Tensor[])
        (t: float)
        (h: float)
        (u: torch.Tensor[])
        (k1: torch.Tensor[])
        : torch.Tensor[] * torch.Tensor[] * torch.Tensor[] =
        let tableau = Tableau.dormandPrince
        let e = Array.map2 (-) tableau.B Tableau.dormandPrinceEmbedded
        let stages = tableau.B.Length
        let k = Array.zeroCreate<torch.Tensor[]> stages
        k[0] <- k1

        let combine (weights: float[]) (count: int) (start: torch.Tensor[] option) =
            Array.init u.Length (fun field ->
                let mutable sum: torch.Tensor = null

                for j in 0 .. count - 1 do
                    if weights[j] <> 0.0 then
                        let term = (h * weights[j]) .* k[j][field]
                        sum <- if isNull sum then term else sum .+ term

                match start with
                | Some s -> if isNull sum then s[field] else s[field] .+ sum
                | None -> sum)

        for i in 1 .. stages - 2 do
            k[i] <- f (t + tableau.C[i] * h) (combine tableau.A[i] i (Some u))

        let next = combine tableau.B (stages - 1) (Some u)
        k[stages - 1] <- f (t + h) next
        next, combine e stages None, k[stages - 1]

    /// The RMS over all values of error / (absolute + relative·max(|u|, |next|)): ≤ 1 accepts the step.
    let errorNorm (tolerance: Tolerance) (u: torch.Tensor[]) (next: torch.Tensor[]) (error: torch.Tensor[]) : float =
        use _ = torch.no_grad ()
        use _ = torch.NewDisposeScope()
        let mutable sum = 0.0
        let mutable count = 0L

        for i in 0 .. u.Length - 1 do
            if u[i].NumberOfElements > 0L then
                let scale =
                    tolerance.Absolute
                    .+ tolerance.Relative .* torch.maximum (u[i].abs (), next[i].abs ())

                sum <- sum + (square (error[i] ./ scale)).sum().ToDouble()
                count <- count + u[i].NumberOfElements

        if count = 0L then 0.0 else sqrt (sum / float count)

    /// What an adaptive run did: the states at the save times, and the numbers of accepted and rejected steps.
    type Result = {
        Saves: torch.Tensor[][]
        Accepted: int
        Rejected: int
    }

    /// Integrates du/dt = f(t, u) from (t0, u0) through `saveTimes` (increasing, ≥ t0), starting with step
    /// `firstStep`. `check step t u` runs after every accepted step (the rollout's NaN/Inf and blow-up check).
    /// Raises `HybridException` when more than `maxSteps` steps (accepted and rejected) would be needed, or when
    /// the step size falls below round-off.
    let integrate
        (f: float -> torch.Tensor[] -> torch.Tensor[])
        (tolerance: Tolerance)
        (t0: float)
        (firstStep: float)
        (saveTimes: float[])
        (maxSteps: int)
        (check: int -> float -> torch.Tensor[] -> unit)
        (u0: torch.Tensor[])
        : Result =
        let saves = Array.zeroCreate<torch.Tensor[]> saveTimes.Length
        let close (a: float) (b: float) = abs (a - b) <= 1e-12 * max 1.0 (abs b)
        let mutable next = 0

        while next < saveTimes.Length && close saveTimes[next] t0 do
            saves[next] <- u0
            next <- next + 1

        let mutable t = t0
        let mutable u = u0
        let mutable k1 = f t0 u0
        let mutable h = firstStep
        let mutable previousError = 1e-4
        let mutable rejectedLast = false
        let mutable accepted = 0
        let mutable rejected = 0

        while next < saveTimes.Length do
            let target = saveTimes[next]
            let landing = t + h >= target || close (t + h) target
            let size = if landing then target - t else h

            if accepted + rejected >= maxSteps then
                raise (
                    HybridException(
                        $"Dopri5 needed more than {maxSteps} steps ({accepted} accepted, {rejected} rejected) and reached only t = {t:G6} of {saveTimes[saveTimes.Length - 1]:G6}, with steps of {size:G3}. The problem may be stiff (use a smaller Tolerance only if it is not), or raise the limit with Rollout.maxSteps."
                    )
                )

            if size <= 1e-14 * max 1.0 (abs t) then
                raise (
                    HybridException(
                        $"Dopri5's step size fell to {size:G3} at t = {t:G6}, below round-off: the solution changes too fast for any step there (a singularity or a blow-up). Check the model's terms near t = {t:G6}, or loosen the Tolerance."
                    )
                )

            let candidate, error, last =
                use _ = torch.NewDisposeScope()
                let candidate, error, last = step f t size u k1
                candidate |> Array.iter (fun x -> x.MoveToOuterDisposeScope() |> ignore)
                error |> Array.iter (fun x -> x.MoveToOuterDisposeScope() |> ignore)
                last |> Array.iter (fun x -> x.MoveToOuterDisposeScope() |> ignore)
                candidate, error, last

            let norm = errorNorm tolerance u candidate error
            error |> Array.iter (fun x -> x.Dispose())

            if norm <= 1.0 then
                accepted <- accepted + 1
                t <- if landing then target else t + size
                check accepted t candidate

                let saved = next > 0 && obj.ReferenceEquals(saves[next - 1], u)

                if not (obj.ReferenceEquals(u, u0)) && not saved then
                    u |> Array.iter (fun x -> x.Dispose())

                k1 |> Array.iter (fun x -> x.Dispose())
                u <- candidate
                k1 <- last

                let factor =
                    safety * Math.Pow(max norm 1e-10, -alpha) * Math.Pow(previousError, beta)
                    |> max smallest
                    |> min (if rejectedLast then 1.0 else largest)

                let grown = size * factor
                h <- if landing then max grown h else grown
                previousError <- max norm 1e-4
                rejectedLast <- false

                if landing then
                    saves[next] <- u
                    next <- next + 1
            else
                rejected <- rejected + 1
                candidate |> Array.iter (fun x -> x.Dispose())
                last |> Array.iter (fun x -> x.Dispose())

                let factor =
                    if Double.IsFinite norm then
                        max smallest (safety * Math.Pow(norm, -alpha))
                    else
                        smallest

                h <- size * factor
                rejectedLast <- true

        k1 |> Array.iter (fun x -> x.Dispose())

        {
            Saves = saves
            Accepted = accepted
            Rejected = rejected
        }
