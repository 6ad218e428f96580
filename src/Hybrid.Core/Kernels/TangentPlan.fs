namespace Hybrid.Kernels

open TorchSharp
open Hybrid
open Hybrid.Numerics

/// The tangent (Jacobian–vector product) of a lowered model, as a plan the kernel generator compiles like any other:
/// fields u₀ … uₙ₋₁ followed by directions d₀ … dₙ₋₁ (one per field, on the same cells, with the linear part of the
/// field's ghost rules: Dirichlet and Neumann values 0, periodic and no-flux walls as they are), and right-hand sides
/// 0 for the fields and, for direction i,
///     (J d)ᵢ = Σⱼ Σ_offsets ∂Fᵢ/∂(uⱼ at offset) · (dⱼ at offset) + Σₛ ∂Fᵢ/∂yₛ · ẏₛ,
/// from the symbolic derivatives of the kernel expressions (`KExpr.derivative`), J = ∂F/∂u at (t, u, θ). A neural
/// closure site s (output yₛ = N(aₛ(u)) per cell, `KInput s`) keeps its place, and its tangent ẏₛ = (∂N/∂a)(aₛ) ȧₛ is
/// site S + s of the tangent plan (S sites before): the same closure (same name, so the stepper's weight gradients
/// through it land on the closure's own), its arguments aₛ followed by their tangents ȧₛ = Σ ∂aₛ/∂u · d, its
/// network the JVP of the closure's (`TangentNetwork` per cell; over whole fields a `FieldCnn`'s in forward mode,
/// `ForwardTangentNetwork`, any other network's `FieldTangentNetwork`); a diagnostic
/// field gets a tangent diagnostic, solved like it (`create`). Its generated forward kernel gives J d (the Rodas4 stepper
/// probes J into stencil blocks with coloured directions); its generated adjoint, with cotangent r̄ on the directions'
/// outputs, gives ∂/∂u [r̄ᵀ J(u) d] (into the fields' adjoints), ∂/∂θ [r̄ᵀ J(u) d] and Jᵀ r̄ (into the directions'
/// adjoints), and through the sites' networks ∂/∂w [r̄ᵀ J(u) d] for the closure weights w: the second-order terms of
/// the discrete adjoint of a Rosenbrock step, whose matrix depends on u, θ and w.
[<RequireQualifiedAccess>]
module internal TangentPlan =

    /// The ghost rule of a direction: the linear part of the field's rule (a ghost is ±(interior value) + a value
    /// that does not depend on the state).
    let private linearRule (rule: GhostRule) =
        match rule with
        | GhostRule.Dirichlet _ -> GhostRule.Dirichlet(KConst 0.0)
        | GhostRule.Neumann _ -> GhostRule.Neumann(KConst 0.0)
        | GhostRule.Periodic
        | GhostRule.NoFlux -> rule

    /// (J d)ᵢ for right-hand side `rhs` of a plan with `fields` fields: the direction of field j is field fields + j,
    /// and that of the diagnostic field in copy c the copy `tangentCopy[c]` (copies not in the map, spatial
    /// parameters, do not depend on the state).
    let private jvpWith (fields: int) (tangentCopy: Map<int, int>) (rhs: KExpr) : KExpr =
        let fieldTerms =
            KExpr.reads rhs
            |> List.fold
                (fun sum (f, dx, dy) ->
                    KExpr.add sum (KExpr.mul (KExpr.derivative (KRead(f, dx, dy)) rhs) (KRead(fields + f, dx, dy))))
                (KConst 0.0)

        KExpr.copyReads rhs
        |> List.fold
            (fun sum (c, dx, dy) ->
                match tangentCopy.TryFind c with
                | Some d ->
                    KExpr.add sum (KExpr.mul (KExpr.derivative (KParamAt(c, dx, dy)) rhs) (KParamAt(d, dx, dy)))
                | None -> sum)
            fieldTerms

    /// Σₛ ∂(rhs)/∂yₛ · ẏₛ for right-hand side `rhs` of a plan with `sites` closure sites: the tangent of site s is
    /// site sites + s.
    let private siteTerms (sites: int) (rhs: KExpr) : KExpr =
        KExpr.inputs rhs
        |> List.fold
            (fun sum s -> KExpr.add sum (KExpr.mul (KExpr.derivative (KInput s) rhs) (KInput(sites + s))))
            (KConst 0.0)

    /// Whether J = ∂F/∂u couples every cell to every other (so that its blocks cannot be probed by colours): through a
    /// closure over whole fields (a CNN's receptive field, or a module's whole input) or a diagnostic field's elliptic
    /// solve. The Rodas4 stepper then probes J one unknown at a time and solves densely, as the eager back end does.
    let isGlobal (plan: KernelPlan) =
        plan.Diagnostics.Length > 0 || plan.Sites |> Array.exists _.Fieldwise

    /// The offsets (dx, dy) of the cells that J = ∂F/∂u couples a cell to, for the block solves of `plan`'s grid: the
    /// nearest-neighbour stencil (`StencilMatrix.nearest`) and every offset its equations and closure arguments read,
    /// closed under −o and under moving towards the cell along each axis (a ghost cell k deep copies the interior cell
    /// k − 1 from the wall, so a read at offset d near a wall reaches a cell at most |d| away on that axis); the
    /// nearest ones first, in their order, then the others in order. Empty for a point system. On a two-scale lattice
    /// the offsets are slow sites, each a block of its own values and its fast sites'.
    let couplings (plan: KernelPlan) : (int * int)[] =
        if plan.Grid.Dims = 0 then
            [||]
        else
            let expressions = Array.append plan.Rhs (plan.Sites |> Array.collect _.Args)

            let reads =
                if plan.FastSites > 0 then
                    // A two-scale lattice's ring of slow sites, each with its fast sites: a read of a slow field at
                    // offset dx (from either loop) reaches |dx| slow sites, one of a fast field ⌈|dx|/J⌉ (from fast
                    // site kJ + j, j < J, or from the slow loop's first child site kJ).
                    let reach =
                        expressions
                        |> Array.collect (fun e ->
                            KExpr.reads e
                            |> List.map (fun (f, dx, _) ->
                                if plan.Fast[f] then
                                    (abs dx + plan.FastSites - 1) / plan.FastSites
                                else
                                    abs dx)
                            |> Array.ofList)

                    [| (Array.fold max 1 reach), 0 |]
                else
                    expressions
                    |> Array.collect (KExpr.reads >> List.map (fun (_, dx, dy) -> dx, dy) >> Array.ofList)
                    |> Array.distinct

            let nearest = StencilMatrix.nearest plan.Grid.Dims

            let reached = [|
                for dx, dy in reads do
                    for a in -(abs dx) .. abs dx do
                        for b in -(abs dy) .. abs dy do
                            yield a, b
            |]

            Array.append nearest (reached |> Array.distinct |> Array.sort |> Array.except nearest)

    /// Why the block solves do not fit `plan`'s grid (or a two-scale lattice's ring of slow sites), None where they
    /// do: it has fewer than 2r + 1 cells along an axis where J couples cells r apart (`couplings`; 3 for the nearest
    /// neighbours), so a block row would hold a cell twice. The Rodas4 stepper then solves densely.
    let shortAxis (plan: KernelPlan) : string option =
        if plan.Grid.Dims = 0 then
            None
        else
            let offsets = couplings plan

            let short (axis: string) (cells: int) (reach: int) =
                if cells < 2 * reach + 1 then
                    Some
                        $"its grid has {cells} cells along {axis}, and the kernels' block solves need {2 * reach + 1} there (2r + 1 for a stencil that reaches r = {reach} cells along it)"
                else
                    None

            let reach (pick: int * int -> int) =
                offsets |> Array.map (pick >> abs) |> Array.max

            match short "x" plan.Nx (reach fst) with
            | Some why -> Some why
            | None when plan.Grid.Dims = 2 -> short "y" plan.Ny (reach snd)
            | None -> None

    /// The tangent plan of `plan`, lowered with the face fluxes in its equations (`Lowering.lowerWith false`: the
    /// directions reach the fields the fluxes read, not face copies). A diagnostic field ψ of (Δ − κ²)ψ = f(u) gets a
    /// tangent diagnostic ψ̇ of (Δ − κ²)ψ̇ = (∂f/∂u) d with the same periodic solve (linear, the zero-mean gauge
    /// included), in a copy of its own after the plan's copies, which the tangents of the equations and of the
    /// closures' arguments read where they read ψ.
    let create (plan: KernelPlan) : KernelPlan =
        if (KernelPlan.faces plan).Length > 0 then
            invalidOp "The tangent plan needs the face fluxes in the equations (Lowering.lowerWith false)."

        let n = plan.Fields.Length
        let sites = plan.Sites.Length
        let copies = plan.ParamCopies.Length
        let diagnostics = plan.Diagnostics.Length

        let tangentCopy =
            plan.Diagnostics |> Array.mapi (fun i d -> d.Copy, copies + i) |> Map.ofArray

        let jvp = jvpWith n tangentCopy

        {
            plan with
                Fields = Array.append plan.Fields (plan.Fields |> Array.map (fun f -> $"d{f}"))
                Rhs =
                    Array.append
                        (Array.create n (KConst 0.0))
                        (plan.Rhs |> Array.map (fun rhs -> KExpr.add (jvp rhs) (siteTerms sites rhs)))
                // A fast field's direction lives on the fast ring, as the field does.
                RhsFast = Array.append plan.RhsFast plan.RhsFast
                Rules =
                    Array.append
                        plan.Rules
                        (plan.Rules
                         |> Array.map (Array.map (fun (lo, hi) -> linearRule lo, linearRule hi)))
                Sites =
                    Array.append
                        plan.Sites
                        (plan.Sites
                         |> Array.map (fun site -> {
                             site with
                                 Args = Array.append site.Args (site.Args |> Array.map jvp)
                         }))
                ParamCopies =
                    Array.append
                        plan.ParamCopies
                        (plan.Diagnostics
                         |> Array.mapi (fun i d -> {
                             plan.ParamCopies[d.Copy] with
                                 Source = CopySource.Diagnostic(diagnostics + i)
                         }))
                Diagnostics =
                    Array.append
                        plan.Diagnostics
                        (plan.Diagnostics
                         |> Array.mapi (fun i d -> {
                             d with
                                 Field = $"d{d.Field}"
                                 Rhs = jvp d.Rhs
                                 Copy = copies + i
                         }))
                Fast = Array.append plan.Fast plan.Fast
        }

    /// The tangent plan of `plan`'s local part (`create` without what couples every cell): the tangent diagnostic
    /// fields' right-hand sides are 0 (ψ̇ = 0), and `localNetworks` gives the closures over whole fields a JVP of 0.
    /// What is left couples each cell only to the cells its equations read (`couplings`): the matrix-free Rodas4's
    /// preconditioner (`RosenbrockStepper`).
    let createLocal (plan: KernelPlan) : KernelPlan =
        let tangent = create plan
        let own = plan.Diagnostics.Length

        {
            tangent with
                Diagnostics =
                    tangent.Diagnostics
                    |> Array.mapi (fun i d -> if i < own then d else { d with Rhs = KConst 0.0 })
        }

    /// The networks of a tangent plan's sites given `modules`, the networks of `plan`'s sites: those (each a
    /// `HeldNetwork`, which the stepper's probes of J at one state evaluate once), then the JVP of each (`TangentNetwork`
    /// per cell, `fieldwise` over whole fields).
    let private networksWith
        (fieldwise: torch.nn.Module<torch.Tensor, torch.Tensor> -> int -> torch.nn.Module<torch.Tensor, torch.Tensor>)
        (plan: KernelPlan)
        (modules: torch.nn.Module<torch.Tensor, torch.Tensor>[])
        : torch.nn.Module<torch.Tensor, torch.Tensor>[] =
        Array.append
            (modules |> Array.map (fun m -> new HeldNetwork(m) :> torch.nn.Module<_, _>))
            (Array.map2
                (fun (site: ClosureSite) m ->
                    if site.Fieldwise then
                        fieldwise m site.Args.Length
                    else
                        new TangentNetwork(m, site.Args.Length) :> torch.nn.Module<_, _>)
                plan.Sites
                modules)

    /// Whether `networks` gives a `FieldCnn` its forward-mode JVP (`ForwardTangentNetwork`): true. `hybrid bench-rodas` turns it off while a stepper is made, to time
    /// differentiating twice beside it.
    let mutable forwardMode = true

    /// The networks of the tangent plan's sites (`create`) over whole fields: a `FieldCnn`'s forward-mode JVP
    /// (`ForwardTangentNetwork`), any other network's by differentiating twice (`FieldTangentNetwork`).
    let networks plan modules =
        networksWith
            (fun m arity ->
                match m with
                | :? Hybrid.Training.FieldCnn as cnn when forwardMode -> new ForwardTangentNetwork(cnn, arity)
                | _ -> new FieldTangentNetwork(m, arity))
            plan
            modules

    /// The networks of `createLocal`'s sites: a JVP of 0 over whole fields (`ZeroTangent`).
    let localNetworks plan modules =
        networksWith (fun m arity -> new ZeroTangent(m, arity)) plan modules
