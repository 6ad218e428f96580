namespace Hybrid.Kernels

open System
open TorchSharp
open Hybrid
open Hybrid.Numerics

/// The generated kernels of a point system (an ODE model without a spatial grid) for the adaptive schemes: its
/// right-hand side (`Codegen.forward`) and its exact Jacobian (`Codegen.jacobian`, from the symbolic derivatives),
/// on states held as one float64 array per field with one entry per trajectory.
type internal PointKernels = {
    /// The lowered model.
    Plan: KernelPlan
    /// F(t, u) for every field.
    Forward: ForwardKernel<float>
    /// ∂F/∂u, one n×n block per trajectory.
    Jacobian: JacobianKernel<float>
    /// Whether F reads the time (then Rodas4 needs ∂F/∂t).
    ReadsTime: bool
}

/// One attempted step on arrays, as `StepControl`'s `StepAttempt` on tensors.
type internal ArrayAttempt = {
    Next: float[][]
    Error: float[][]
    Dense: float -> float[][]
    Carry: float[][]
    /// h·|λ| of a Dopri5 step when the stiffness test watches (0 otherwise).
    Stiffness: float
}

/// Dopri5, Rodas4 and Auto on generated kernels: the same methods as the eager steppers (`Adaptive`, `Rosenbrock`,
/// `AutoScheme`), with the same coefficients (`Tableau.dormandPrince`, `Rodas4Tableau`), the same step control
/// (`PiController`, `StepControl`'s error norm, landing and messages) and the same order of floating-point
/// operations in the stage algebra, in plain loops over float64 arrays; Rodas4 solves its linear systems by an LU
/// factorisation with partial pivoting per trajectory (the eager stepper inverts the matrix), so the two back ends
/// take the same steps and agree to round-off. As on the eager back end the step size is one for the whole batch.
/// Forward only: rollouts that need gradients, and grids, run Rodas4 and Auto on `RosenbrockStepper` (`AdaptiveRollout`).
[<RequireQualifiedAccess>]
module internal AdaptiveKernels =

    /// Why the point-system kernels cannot run `plan` (None when they can): point systems only, without neural
    /// closures or forcing data. (Dopri5 runs on any model's kernel stepper: `AdaptiveRollout`.)
    let refusal (plan: KernelPlan) : string option =
        if plan.Grid.Dims > 0 || plan.FastSites > 0 then
            Some
                "the point-system kernels run ODE models without a spatial grid, and this model has a grid (the stepper kernels run it)"
        elif plan.Sites.Length > 0 then
            Some
                "the generated kernels run Rodas4 and Auto without neural closures, and this model has some (Dopri5 runs on the kernels with them)"
        elif plan.Forcings.Length > 0 then
            Some
                "the generated kernels run Rodas4 and Auto without forcing data, and this model reads some (Dopri5 runs on the kernels with it)"
        else
            None

    /// Generates the kernels of a point system (see `refusal`).
    let compile (plan: KernelPlan) : PointKernels =
        let mutable readsTime = false

        for e in plan.Rhs do
            KExpr.mapLeaves
                (fun leaf ->
                    if leaf = KTime then
                        readsTime <- true

                    leaf)
                e
            |> ignore

        {
            Plan = plan
            Forward = Codegen.forward<float> plan
            Jacobian = Codegen.jacobian<float> plan
            ReadsTime = readsTime
        }

    let private fresh (n: int) (batch: int) =
        Array.init n (fun _ -> Array.zeroCreate<float> batch)

    /// F(t, u) into a new state.
    let private rhs (k: PointKernels) (theta: float[]) (t: float) (u: float[][]) =
        let out = fresh u.Length u[0].Length
        k.Forward.Invoke(u, theta, t, out, u[0].Length, [||], [||])
        out

    /// Σⱼ (h·wⱼ)·k[j] over the non-zero weights of the first `count`, then added to `start` when given: the order
    /// of `Adaptive`'s sums.
    let private combine (k: float[][][]) (h: float) (weights: float[]) (count: int) (start: float[][] option) =
        let n, batch = k[0].Length, k[0].[0].Length

        Array.init n (fun f ->
            Array.init batch (fun b ->
                let mutable sum = 0.0
                let mutable any = false

                for j in 0 .. count - 1 do
                    if weights[j] <> 0.0 then
                        let term = (h * weights[j]) * k[j].[f].[b]
                        sum <- if any then sum + term else term
                        any <- true

                match start with
                | Some s -> if any then s[f].[b] + sum else s[f].[b]
                | None -> sum))

    /// start + Σⱼ wⱼ·xs[j] over the non-zero weights (0 + … when start is None): the order of `Rosenbrock`'s sums.
    let private weighted (weights: float[]) (xs: float[][][]) (start: float[][] option) (n: int) (batch: int) =
        Array.init n (fun f ->
            Array.init batch (fun b ->
                let mutable sum = 0.0
                let mutable any = start.IsSome

                if any then
                    sum <- start.Value[f].[b]

                for j in 0 .. weights.Length - 1 do
                    if weights[j] <> 0.0 then
                        let term = weights[j] * xs[j].[f].[b]
                        sum <- if any then sum + term else term
                        any <- true

                sum))

    /// One Dopri5 attempt (see `Adaptive.attempt`): stages, 5th-order state, error, continuous extension, and the
    /// stiffness estimate h·|λ| when `withStiffness`.
    let private dopri
        (k: PointKernels)
        (theta: float[])
        (withStiffness: bool)
        (t: float)
        (h: float)
        (u: float[][])
        (k1: float[][])
        =
        let tableau = Tableau.dormandPrince
        let count = tableau.B.Length
        let stages = Array.zeroCreate<float[][]> count
        stages[0] <- k1

        for i in 1 .. count - 2 do
            stages[i] <- rhs k theta (t + tableau.C[i] * h) (combine stages h tableau.A[i] i (Some u))

        let next = combine stages h tableau.B (count - 1) (Some u)
        stages[count - 1] <- rhs k theta (t + h) next
        let e = Array.map2 (-) tableau.B Tableau.dormandPrinceEmbedded
        let last = count - 1

        let dense (s: float) =
            let fifth = combine stages h Tableau.dormandPrinceDense count None

            Array.init u.Length (fun f ->
                Array.init u[f].Length (fun b ->
                    let delta = next[f].[b] - u[f].[b]
                    let r3 = h * stages[0].[f].[b] - delta
                    let r4 = delta - h * stages[last].[f].[b] - r3
                    let inner = r3 + s * (r4 + (1.0 - s) * fifth[f].[b])
                    u[f].[b] + s * (delta + (1.0 - s) * inner)))

        let stiffness =
            if withStiffness then
                let sixth = combine stages h tableau.A[5] 5 (Some u)
                let mutable numerator = 0.0
                let mutable denominator = 0.0

                for f in 0 .. u.Length - 1 do
                    for b in 0 .. u[f].Length - 1 do
                        let dk = stages[last].[f].[b] - stages[last - 1].[f].[b]
                        let dy = next[f].[b] - sixth[f].[b]
                        numerator <- numerator + dk * dk
                        denominator <- denominator + dy * dy

                if denominator > 0.0 then
                    h * sqrt (numerator / denominator)
                else
                    0.0
            else
                0.0

        {
            Next = next
            Error = combine stages h e count None
            Dense = dense
            Carry = stages[last]
            Stiffness = stiffness
        }

    /// One Rodas4 attempt (see `Rosenbrock.step`), with the exact Jacobian of the kernels.
    let private rodas (k: PointKernels) (theta: float[]) (t: float) (h: float) (u: float[][]) =
        let n, batch = u.Length, u[0].Length
        let matrix = Array.zeroCreate<float> (batch * n * n)
        k.Jacobian.Invoke(u, theta, t, matrix, batch, [||], [||])
        let diagonal = 1.0 / (Rodas4Tableau.gamma * h)
        let pivots = Array.init batch (fun _ -> Array.zeroCreate<int> n)

        for b in 0 .. batch - 1 do
            let offset = b * n * n

            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do
                    let eye = if i = j then diagonal else 0.0
                    matrix[offset + i * n + j] <- eye - matrix[offset + i * n + j]

            DenseLu.factor matrix offset n pivots[b]

        let solve (rhs: float[][]) =
            let x = Array.zeroCreate<float> n

            for b in 0 .. batch - 1 do
                for i in 0 .. n - 1 do
                    x[i] <- rhs[i].[b]

                DenseLu.substitute matrix (b * n * n) n pivots[b] x

                for i in 0 .. n - 1 do
                    rhs[i].[b] <- x[i]

            rhs

        let f0 = rhs k theta t u

        let ft =
            if k.ReadsTime then
                let delta = sqrt (2.2e-16 * max 1e-5 (abs t))
                let f1 = rhs k theta (t + delta) u
                Some(Array.map2 (Array.map2 (fun a b -> (a - b) / delta)) f1 f0)
            else
                None

        let withTime (i: int) (x: float[][]) =
            match ft with
            | Some ft when Rodas4Tableau.d[i] <> 0.0 ->
                let w = h * Rodas4Tableau.d[i]
                Array.map2 (Array.map2 (fun a b -> a + w * b)) x ft
            | _ -> x

        let stages = Array.zeroCreate<float[][]> 6
        stages[0] <- solve (withTime 0 (Array.map Array.copy f0))
        let mutable input = u

        for i in 1..5 do
            input <- weighted Rodas4Tableau.a[i] stages (Some u) n batch
            let fi = rhs k theta (t + Rodas4Tableau.alpha[i] * h) input

            let coupling =
                weighted (Rodas4Tableau.c[i] |> Array.map (fun x -> x / h)) stages (Some fi) n batch

            stages[i] <- solve (withTime i coupling)

        let next = Array.map2 (Array.map2 (+)) input stages[5]

        let dense (s: float) =
            let d2 = weighted Rodas4Tableau.dense2 stages None n batch
            let d3 = weighted Rodas4Tableau.dense3 stages None n batch

            Array.init n (fun f ->
                Array.init batch (fun b ->
                    (1.0 - s) * u[f].[b]
                    + s * (next[f].[b] + (1.0 - s) * (d2[f].[b] + s * d3[f].[b]))))

        {
            Next = next
            Error = stages[5]
            Dense = dense
            Carry = [||]
            Stiffness = 0.0
        }

    /// `StepControl.errorNorm` on arrays: the RMS over all values of error / scale, each field with its tolerance.
    let private errorNorm (tolerances: Tolerance[]) (u: float[][]) (next: float[][]) (error: float[][]) =
        let mutable sum = 0.0
        let mutable count = 0

        for f in 0 .. u.Length - 1 do
            let mutable field = 0.0

            for b in 0 .. u[f].Length - 1 do
                let x = error[f].[b] / StepControl.scale tolerances[f] (u[f].[b]) (next[f].[b])
                field <- field + x * x

            sum <- sum + field
            count <- count + u[f].Length

        if count = 0 then 0.0 else sqrt (sum / float count)

    /// What a run did: the states at the save times and the step counts.
    type Result = {
        Saves: float[][][]
        Accepted: int
        Rejected: int
    }

    /// Integrates the point system of `k` with parameter values θ from (t0, u0) (one array per field, one entry per
    /// trajectory) through `saveTimes` with `scheme` (Dopri5, Rodas4 or Auto) as `StepControl.integrate` does on
    /// tensors: same first step, PI control, landing on the last save time, save times from the continuous
    /// extension, step limit and messages. `check step t u` runs after every accepted step; `report` gets Auto's
    /// sentences.
    let integrate
        (k: PointKernels)
        (theta: float[])
        (scheme: Scheme)
        (tolerances: Tolerance[])
        (t0: float)
        (firstStep: float)
        (saveTimes: float[])
        (maxSteps: int)
        (check: int -> float -> float[][] -> unit)
        (report: string -> unit)
        (u0: float[][])
        : Result =
        let saves = Array.zeroCreate<float[][]> saveTimes.Length
        let mutable next = 0

        while next < saveTimes.Length && StepControl.sameTime saveTimes[next] t0 do
            saves[next] <- u0
            next <- next + 1

        // Auto starts with Dopri5 and watches; Rodas4 alone never does.
        let mutable stiff = (scheme = Scheme.Rodas4)
        let watch = AutoScheme.Watch()
        let mutable watching = (scheme = Scheme.Auto)

        if watching then
            report AutoScheme.throughout

        let name, hint, order =
            match scheme with
            | Scheme.Rodas4 -> "Rodas4", Rosenbrock.limitHint, 3
            | Scheme.Auto -> "Auto", AutoScheme.limitHint, 4
            | _ -> "Dopri5", Adaptive.limitHint, 4

        let controller = PiController order
        let final = saveTimes[saveTimes.Length - 1]
        let mutable t = t0
        let mutable u = u0

        let start () =
            if stiff then [||] else rhs k theta t0 u0

        let mutable carry = if next < saveTimes.Length then start () else [||]
        let mutable h = firstStep
        let mutable accepted = 0
        let mutable rejected = 0

        while next < saveTimes.Length do
            let landing = t + h >= final || StepControl.sameTime (t + h) final
            let size = if landing then final - t else h

            if accepted + rejected >= maxSteps then
                raise (StepControl.limitError name hint maxSteps accepted rejected t final size)

            if StepControl.belowRoundOff size t then
                raise (StepControl.roundOffError name size t)

            let ended = if landing then final else t + size

            let a =
                if stiff then
                    rodas k theta t size u
                else
                    dopri k theta watching t size u carry

            let norm = errorNorm tolerances u a.Next a.Error

            if norm <= 1.0 then
                accepted <- accepted + 1

                while next < saveTimes.Length
                      && (saveTimes[next] < ended || StepControl.sameTime saveTimes[next] ended) do
                    saves[next] <-
                        if StepControl.sameTime saveTimes[next] ended then
                            a.Next
                        else
                            a.Dense((saveTimes[next] - t) / size)

                    next <- next + 1

                if watching && watch.Accepted a.Stiffness then
                    watching <- false
                    stiff <- true
                    report (AutoScheme.switched (t + size) a.Stiffness)

                check accepted ended a.Next
                t <- ended
                u <- a.Next
                carry <- a.Carry
                h <- size * controller.Accepted norm
            else
                rejected <- rejected + 1
                h <- size * controller.Rejected norm

        {
            Saves = saves
            Accepted = accepted
            Rejected = rejected
        }

    /// The first non-finite value or one above `bound` in magnitude, as (field, value), or None.
    let firstBad (bound: float) (u: float[][]) : (int * float) option =
        Seq.tryPick
            (fun f ->
                u[f]
                |> Array.tryFind (fun x -> not (Double.IsFinite x) || abs x > bound)
                |> Option.map (fun x -> f, x))
            (seq { 0 .. u.Length - 1 })
