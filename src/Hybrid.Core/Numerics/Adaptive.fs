namespace Hybrid.Numerics

open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

/// Adaptive integration with Dormand and Prince's 5(4) pair: each step's error is estimated by the difference
/// of the 5th- and embedded 4th-order solutions, the step size follows `StepControl`'s PI controller, and save
/// times are read from the pair's 4th-order continuous extension (Hairer, Nørsett and Wanner, Solving ODEs I,
/// §II.6, the dense output of DOPRI5), so they do not shorten steps.
/// Gradients: autograd differentiates the computed solution; the step sizes count as fixed (see `StepControl`).
[<RequireQualifiedAccess>]
module internal Adaptive =

    /// Σⱼ (h·wⱼ) k[j][field] over the non-zero weights (plus `start[field]` when given).
    let private combine
        (k: torch.Tensor[][])
        (h: float)
        (weights: float[])
        (count: int)
        (start: torch.Tensor[] option)
        (fields: int)
        =
        Array.init fields (fun field ->
            let mutable sum: torch.Tensor = null

            for j in 0 .. count - 1 do
                if weights[j] <> 0.0 then
                    let term = (h * weights[j]) .* k[j][field]
                    sum <- if isNull sum then term else sum .+ term

            match start with
            | Some s -> if isNull sum then s[field] else s[field] .+ sum
            | None -> sum)

    /// The stages of one Dormand–Prince step of size h from (t, u) whose first stage k1 = f(t, u) is given.
    let private stages
        (f: float -> torch.Tensor[] -> torch.Tensor[])
        (t: float)
        (h: float)
        (u: torch.Tensor[])
        (k1: torch.Tensor[])
        : torch.Tensor[][] * torch.Tensor[] =
        let tableau = Tableau.dormandPrince
        let count = tableau.B.Length
        let k = Array.zeroCreate<torch.Tensor[]> count
        k[0] <- k1

        for i in 1 .. count - 2 do
            k[i] <- f (t + tableau.C[i] * h) (combine k h tableau.A[i] i (Some u) u.Length)

        let next = combine k h tableau.B (count - 1) (Some u) u.Length
        k[count - 1] <- f (t + h) next
        k, next

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
        let k, next = stages f t h u k1
        let e = Array.map2 (-) Tableau.dormandPrince.B Tableau.dormandPrinceEmbedded
        next, combine k h e k.Length None u.Length, k[k.Length - 1]

    /// The continuous extension of a step from u to `next` with stages k: s ∈ [0, 1] ↦ the 4th-order state at
    /// t + s·h, y₀ + s(Δ + (1 − s)(hk₁ − Δ + s(Δ − hk₇ − (hk₁ − Δ) + (1 − s)·h Σ dⱼkⱼ))) with Δ = next − u.
    let dense (h: float) (u: torch.Tensor[]) (next: torch.Tensor[]) (k: torch.Tensor[][]) : float -> torch.Tensor[] =
        let last = k.Length - 1
        let fifth = combine k h Tableau.dormandPrinceDense k.Length None u.Length

        fun (s: float) ->
            Array.init u.Length (fun i ->
                let delta = next[i] .- u[i]
                let r3 = h .* k[0][i] .- delta
                let r4 = delta .- h .* k[last][i] .- r3
                let inner = r3 .+ s .* (r4 .+ (1.0 - s) .* fifth[i])
                u[i] .+ s .* (delta .+ (1.0 - s) .* inner))

    /// Hairer's stiffness estimate of a Dormand–Prince step (DOPRI5): h·|λ| ≈ h‖k₇ − k₆‖ / ‖u₁ − y₆‖, y₆ the sixth
    /// stage's state and u₁ the new one (both evaluated at t + h); near or above 3.3 the step sits at the pair's
    /// stability limit.
    let private stiffness (h: float) (u: torch.Tensor[]) (next: torch.Tensor[]) (k: torch.Tensor[][]) : float =
        use _ = torch.no_grad ()
        let sixth = combine k h Tableau.dormandPrince.A[5] 5 (Some u) u.Length
        let last = k.Length - 1
        let mutable numerator = 0.0
        let mutable denominator = 0.0

        for i in 0 .. u.Length - 1 do
            numerator <- numerator + (square (k[last][i] .- k[last - 1][i])).sum().ToDouble()
            denominator <- denominator + (square (next[i] .- sixth[i])).sum().ToDouble()

        if denominator > 0.0 then
            h * sqrt (numerator / denominator)
        else
            0.0

    /// One attempted step and its stiffness estimate h·|λ| (see `stiffness`), computed when `withStiffness`.
    let attempt
        (f: float -> torch.Tensor[] -> torch.Tensor[])
        (withStiffness: bool)
        (t: float)
        (h: float)
        (u: torch.Tensor[])
        (k1: torch.Tensor[])
        : StepAttempt * float =
        let k, next = stages f t h u k1
        let e = Array.map2 (-) Tableau.dormandPrince.B Tableau.dormandPrinceEmbedded

        {
            Next = next
            Error = combine k h e k.Length None u.Length
            Dense = dense h u next k
            Carry = k[k.Length - 1]
            Accept = ignore
        },
        (if withStiffness then stiffness h u next k else 0.0)

    /// The hint of Dopri5's step-limit error.
    let limitHint =
        "The problem may be stiff: use Scheme.Rodas4 (use a smaller Tolerance only if it is not stiff), or raise the limit with Rollout.maxSteps."

    /// Dormand–Prince 5(4) on du/dt = f(t, u) as `StepControl` runs it (first same as last: the carry is f at
    /// the new state).
    let method (f: float -> torch.Tensor[] -> torch.Tensor[]) : AdaptiveMethod = {
        Name = "Dopri5"
        EstimateOrder = 4
        Start = f
        Attempt = fun t h u k1 -> fst (attempt f false t h u k1)
        LimitHint = limitHint
        LandsOnSaves = false
    }
