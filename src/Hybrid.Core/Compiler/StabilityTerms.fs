namespace Hybrid.Compiler

open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.TensorArithmetic

/// The terms of an equation that bound the explicit step, read from its expression, and their measures:
/// - diffusion: every term c·Δ(a) or c·∇·(k∇a) has the diffusivity c·k·∂a/∂f for each field f in a;
/// - advection: every term c·∂(a) (∂x or ∂y of an expression a of the fields, times any coefficient c) moves
///   at speed c·∂a/∂f for each field f in a (−v ∂x(u): v; −u ∂x(u): u; ∂x(v u): v); a product of two derivatives
///   c·∂(a)·∂(b) moves a field of b along b's axis at c·∂(a)·∂b/∂f, and a field of a alike (∂y(ψ) ∂x(ω): ω at
///   ∂y(ψ) along x, whether ψ is a field or a diagnostic streamfunction); c·J(a, b) moves b at the velocity
///   c·(−∂y(a), ∂x(a)); c·advectFlux(v, q) moves q at c·v, which keeps q ≥ 0 only at half the Courant limit;
/// - reaction: every pointwise term (no spatial or lattice operator, no closure) that depends on the
///   equation's own field f has the rate ∂term/∂f; their sum is the rate λ of the equation's pointwise part.
/// The compiler compiles the speed and rate expressions like any other, once, and `Dynamics.Terms` evaluates
/// them for the current θ and u.
[<RequireQualifiedAccess>]
module internal StabilityTerms =

    /// An advection term: the printed term, its axis (0 = x, 1 = y), the expression of its speed, and whether it is
    /// a limited flux form (advectFlux) whose positivity needs half the Courant limit.
    type Speed = {
        Term: string
        Axis: int
        Speed: Expr
        Positivity: bool
    }

    /// A diffusion term: the printed term, the expression of its diffusivity, and whether that depends on fields.
    type Diffusion = {
        Term: string
        Diffusivity: Expr
        Nonlinear: bool
    }

    /// A pointwise term: the printed term and its signed rate ∂term/∂field.
    type Rate = { Term: string; Rate: Expr }

    /// A signed term as written: "−v ∂x(u)" for (−1, v ∂x(u)).
    let private printed (sign: float, t: Expr) =
        (if sign < 0.0 then "−" else "") + Print.expr Notation.Unicode t

    let private dependsOnAny (fields: string[]) (e: Expr) =
        fields |> Array.exists (fun f -> Symbolic.dependsOn f e)

    let private hasClosure (e: Expr) =
        e
        |> Expr.exists (fun s ->
            match s with
            | Call _
            | CallOutput _ -> true
            | _ -> false)

    /// Not pointwise: a spatial operator, a lattice shift, a sum over the fast sites, or a closure call.
    let nonLocal (e: Expr) =
        e
        |> Expr.exists (fun s ->
            match s with
            | Partial _
            | Grad _
            | Divergence _
            | Laplacian _
            | Advect _
            | Shift _
            | FastSum _
            | Call _
            | Jacobian _
            | FluxAdvect _ -> true
            | CallOutput _ -> true
            | _ -> false)

    /// The advection terms among an equation's signed terms, each with a pointwise coefficient c: a term whose
    /// factors are one ∂x(a) or ∂y(a), with a pointwise in the fields, moves along its axis at c·∂a/∂f, one entry per
    /// field f that a depends on; a product of two derivatives ∂(a)·∂(b) of pointwise expressions moves the fields of
    /// each along its axis at c times the other derivative (times ∂a/∂f); J(a, b) moves b at c·(−∂y(a), ∂x(a)) (the
    /// speed from the gradient of its first argument); advectFlux(v, q) moves q at c·vₐ along each axis a.
    let speeds (fields: string[]) (terms: (float * Expr) list) : Speed list = [
        let axisOf (axis: Axis) =
            match axis with
            | Axis.X -> 0
            | Axis.Y -> 1

        for sign, t in terms do
            let fs = Expr.factors t

            let entry (axis: int) (speed: Expr) (positivity: bool) = {
                Term = printed (sign, t)
                Axis = axis
                Speed = Symbolic.simplify speed
                Positivity = positivity
            }

            let partials, coefficient =
                fs
                |> List.partition (fun f ->
                    match f with
                    | Partial _ -> true
                    | _ -> false)

            let operators, outer =
                fs
                |> List.partition (fun f ->
                    match f with
                    | Jacobian _
                    | FluxAdvect _ -> true
                    | _ -> false)

            match partials, operators with
            | [ Partial(axis, a) ], [] when
                dependsOnAny fields a
                && not (nonLocal a)
                && not (coefficient |> List.exists nonLocal)
                ->
                let c = Expr.product coefficient

                for f in fields do
                    if Symbolic.dependsOn f a then
                        yield entry (axisOf axis) (Mul(c, Symbolic.derivative f a)) false
            | [ Partial(axisA, a) as da; Partial(axisB, b) as db ], [] when
                not (nonLocal a)
                && not (nonLocal b)
                && not (coefficient |> List.exists nonLocal)
                ->
                let c = Expr.product coefficient

                for axis, operand, other in [ axisA, a, db; axisB, b, da ] do
                    for f in fields do
                        if Symbolic.dependsOn f operand then
                            yield entry (axisOf axis) (Mul(Mul(c, other), Symbolic.derivative f operand)) false
            | [], [ Jacobian(a, b) ] when dependsOnAny fields b && not (outer |> List.exists nonLocal) ->
                let c = Expr.product outer
                yield entry 0 (Mul(c, Partial(Axis.Y, a))) false
                yield entry 1 (Mul(c, Partial(Axis.X, a))) false
            | [], [ FluxAdvect(vs, q) ] when dependsOnAny fields q && not (outer |> List.exists nonLocal) ->
                let c = Expr.product outer

                for axis, v in List.indexed vs do
                    yield entry axis (Mul(c, v)) true
            | _ -> ()
    ]

    /// The diffusion terms among an equation's signed terms: c·Δ(a), or c·∇·(k∇a), with c, k and a pointwise;
    /// the diffusivity is c·∂a/∂f (times k), one entry per field f that a depends on.
    let diffusions (fields: string[]) (terms: (float * Expr) list) : Diffusion list = [
        for sign, t in terms do
            let operators, outer =
                Expr.factors t
                |> List.partition (fun f ->
                    match f with
                    | Laplacian _
                    | Divergence _ -> true
                    | _ -> false)

            let inner =
                match operators with
                | [ Laplacian a ] -> Some([], a)
                | [ Divergence flux ] ->
                    match
                        Expr.factors flux
                        |> List.partition (fun f ->
                            match f with
                            | Grad _ -> true
                            | _ -> false)
                    with
                    | [ Grad a ], k -> Some(k, a)
                    | _ -> None
                | _ -> None

            match inner with
            | Some(k, a) when
                dependsOnAny fields a
                && not (nonLocal a)
                && not (List.append outer k |> List.exists nonLocal)
                ->
                let c = Expr.product (List.append outer k)

                for f in fields do
                    if Symbolic.dependsOn f a then
                        let d = Symbolic.simplify (Mul(c, Symbolic.derivative f a))

                        yield {
                            Term = printed (sign, t)
                            Diffusivity = d
                            Nonlinear = dependsOnAny fields d
                        }
            | _ -> ()
    ]

    /// The pointwise terms among an equation's signed terms that depend on its own field, with their signed
    /// rates ∂term/∂field.
    let rates (field: string) (terms: (float * Expr) list) : Rate list = [
        for sign, t in terms do
            if not (nonLocal t) && Symbolic.dependsOn field t then
                let d = Symbolic.simplify (Symbolic.derivative field t)

                yield {
                    Term = printed (sign, t)
                    Rate = if sign < 0.0 then Symbolic.simplify (Neg d) else d
                }
    ]

    /// Smallest and largest finite value of a tensor (None when it has none).
    let private range (v: torch.Tensor) : (float * float) option =
        use _ = torch.NewDisposeScope()
        let finite = v.masked_select (torch.isfinite v)

        if finite.NumberOfElements = 0L then
            None
        else
            Some(finite.min().ToDouble(), finite.max().ToDouble())

    /// The measures of one equation ∂field/∂t = rhs, with every speed and rate expression compiled once by
    /// `compile` (the compiler's own expression compiler, which reads the context `'c`). The result evaluates
    /// them in a context: advection speeds (largest |speed| per term and field) and the reaction rate of the
    /// pointwise part (None when no pointwise term depends on the field).
    let measure
        (compile: Expr -> ('c -> torch.Tensor))
        (fields: string[])
        (field: string)
        (rhs: Expr)
        : 'c -> DiffusionTerm[] * AdvectionSpeed[] * ReactionRate option =
        let terms = Expr.signedTerms rhs

        // A probe that cannot be derived or compiled is left out: the checks are advisory, the model still runs.
        let attempt (build: unit -> 'p list) (compileOne: 'p -> 'p * ('c -> torch.Tensor)) =
            try
                build ()
                |> List.choose (fun p ->
                    try
                        Some(compileOne p)
                    with _ ->
                        None)
                |> Array.ofList
            with _ -> [||]

        let diffusions =
            attempt (fun () -> diffusions fields terms) (fun d -> d, compile d.Diffusivity)

        let speeds = attempt (fun () -> speeds fields terms) (fun s -> s, compile s.Speed)

        let rates = attempt (fun () -> rates field terms) (fun r -> r, compile r.Rate)

        // The caller (`limits`) holds the dispose scope: values cached per context (a diagnostic field's solve, a
        // closure over whole fields) are shared by the measures of every equation.
        fun c ->
            use _ = torch.no_grad ()

            let diffusion = [|
                for d, f in diffusions do
                    match range ((f c).abs ()) with
                    | Some(_, high) ->
                        yield {
                            Field = field
                            Term = d.Term
                            Diffusivity = high
                            Nonlinear = d.Nonlinear
                        }
                    | None -> ()
            |]

            let advection = [|
                for s, f in speeds do
                    match range ((f c).abs ()) with
                    | Some(_, high) ->
                        yield {
                            Field = field
                            Term = s.Term
                            Axis = s.Axis
                            Speed = high
                            Positivity = s.Positivity
                        }
                    | None -> ()
            |]

            let reaction =
                if rates.Length = 0 then
                    None
                else
                    let total =
                        rates |> Array.map (fun (_, f) -> f c) |> Array.reduce (fun a b -> a .+ b)

                    // Each term's own range only when a message needs it (a sum may have 10⁵ terms).
                    let terms () = [|
                        use _ = torch.no_grad ()
                        use _ = torch.NewDisposeScope()

                        for r, f in rates do
                            match range (f c) with
                            | Some(low, high) -> yield r.Term, low, high
                            | None -> ()
                    |]

                    range total
                    |> Option.map (fun (low, high) -> {
                        Field = field
                        Lowest = low
                        Highest = high
                        Terms = terms
                    })

            diffusion, advection, reaction

    /// All equations' measures in one context, as `Dynamics.Terms` returns them.
    let limits (measures: ('c -> DiffusionTerm[] * AdvectionSpeed[] * ReactionRate option)[]) (c: 'c) : TermLimits =
        let each =
            use _ = torch.NewDisposeScope()
            measures |> Array.map (fun m -> m c)

        {
            Diffusion = each |> Array.collect (fun (d, _, _) -> d)
            Advection = each |> Array.collect (fun (_, a, _) -> a)
            Reaction = each |> Array.choose (fun (_, _, r) -> r)
        }
