namespace Hybrid.Kernels

open TorchSharp

/// The point half of a JVP network's input [rows or B; 2·arity; …] (the first arity columns or channels; the
/// direction is the other half).
module internal TangentInput =

    /// The point x, requiring grad: the input's own view when it does (under the adjoint's autograd, so that the
    /// product's graph reaches the caller's input), else a detached leaf.
    let point (input: torch.Tensor) (arity: int) =
        let point = input.narrow (1L, 0L, int64 arity)

        if point.requires_grad then
            point
        else
            point.detach().requires_grad_ true

/// What the Rodas4 stepper's probes of J share: between `Hold` and `Release` (outside grad mode, at one state and fixed
/// weights) a network wrapping N keeps what does not depend on the direction (`Kept`, filled by its first call), and
/// later calls reuse it. Its parameters are N's, in N's order (N is its only submodule), so weight gradients taken
/// through it are N's.
type internal IHeldProduct =
    /// Keeps what the next call computes at its point for the later calls, until `Release`.
    abstract Hold: unit -> unit
    /// Ends `Hold`, disposing what was kept.
    abstract Release: unit -> unit

/// The base of the networks that wrap a closure network N for the tangent plan's sites (`IHeldProduct`).
[<AbstractClass>]
type internal HeldModule(name: string, network: torch.nn.Module<torch.Tensor, torch.Tensor>) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>(name)
    do this.register_module ("network", network)

    let mutable holding = false
    // What is kept while holding (out of every dispose scope; empty until the first call).
    let kept = ResizeArray<torch.Tensor>()

    /// Whether this call may use or fill what is kept: holding, outside grad mode.
    member _.Keeps = holding && not (torch.is_grad_enabled ())

    /// What the first call while holding kept (empty until then).
    member _.Kept = kept

    /// Keeps `tensors` (detached from the caller's dispose scope) until `Release`.
    member _.Keep(tensors: torch.Tensor list) =
        for t in tensors do
            kept.Add(t.DetachFromDisposeScope())

    interface IHeldProduct with
        member _.Hold() = holding <- true

        member _.Release() =
            holding <- false

            for t in kept do
                t.Dispose()

            kept.Clear()

/// The Jacobian–vector product of a per-cell closure network N (rows × arity → rows × 1) as a network of its own, for
/// the closure sites of a tangent plan (`TangentPlan`): input [rows; 2·arity], each row a point x and a direction ẋ,
/// output [rows; 1] the directional derivative (∂N/∂x)(x) ẋ per row. A per-cell network maps each row on its own (the
/// kernels' block solves rest on it too), so one backward pass with a seed of ones gives every row's gradient
/// g = ∂N/∂x [rows; arity], and the product is Σₐ gₐ ẋₐ. Under grad mode the backward pass keeps its graph, so
/// autograd differentiates the product again: with respect to x (Hessian–vector products), ẋ (the network's
/// vector–Jacobian product) and N's weights (the closure weights' second-order terms); outside grad mode the result
/// carries no graph. Its parameters are N's, in N's order (N is its only submodule), so weight gradients taken through
/// it are N's.
///
/// Between `Hold` and `Release` (outside grad mode) the gradient of the first call is kept and reused: for the Rodas4
/// stepper's probes of J, which take products at one state (and the same weights) in several directions.
type internal TangentNetwork(network: torch.nn.Module<torch.Tensor, torch.Tensor>, arity: int) =
    inherit HeldModule("tangent", network)

    override m.forward(input: torch.Tensor) =
        let keepGraph = torch.is_grad_enabled ()
        let keeps = m.Keeps
        let direction = input.narrow (1L, int64 arity, int64 arity)

        let gradient =
            if keeps && m.Kept.Count > 0 then
                m.Kept[0]
            else
                use _ = torch.enable_grad ()
                let x = TangentInput.point input arity
                let y = network.forward x

                let g =
                    torch.autograd.grad (
                        [| y |],
                        [| x |],
                        [| torch.ones_like y |],
                        retain_graph = keepGraph,
                        create_graph = keepGraph
                    )

                if keepGraph then
                    g[0]
                else
                    if keeps then
                        m.Keep [ g[0].detach () ]

                    g[0].detach ()

        (gradient * direction).sum (1L, keepdim = true)

/// The Jacobian–vector product of a closure network N over whole fields (a CNN or a module: [B; arity; spatial…] →
/// [B; outputs; spatial…]) as a network of its own, for the closure sites of a tangent plan (`TangentPlan`): input
/// [B; 2·arity; spatial…], the fields x as the first arity channels and a direction ẋ as the others, output
/// (∂N/∂x)(x) ẋ, shaped like N's output. Every output may depend on every input cell, so there is no per-row
/// gradient to reuse: each call takes the product by differentiating twice (w ↦ (∂N/∂x)ᵀ w with its graph, then the
/// derivative of ⟨(∂N/∂x)ᵀ w, ẋ⟩ with respect to w), which is exact and linear in ẋ. Under grad mode both passes keep
/// their graphs, so autograd differentiates the product again with respect to x, ẋ and N's weights (the closure
/// weights' second-order terms of a Rosenbrock step's adjoint); outside grad mode the result carries no graph. Its
/// parameters are N's, in N's order (N is its only submodule).
type internal FieldTangentNetwork(network: torch.nn.Module<torch.Tensor, torch.Tensor>, arity: int) =
    inherit HeldModule("field_tangent", network)

    override m.forward(input: torch.Tensor) =
        let keepGraph = torch.is_grad_enabled ()
        // While holding: (∂N/∂x)ᵀ w with its graph, and the seed w.
        let keeps = m.Keeps
        use _ = torch.enable_grad ()
        let direction = input.narrow (1L, int64 arity, int64 arity)

        let product, seed =
            if keeps && m.Kept.Count > 0 then
                m.Kept[0], m.Kept[1]
            else
                let x = TangentInput.point input arity
                let y = network.forward x
                let w = torch.zeros_like(y).requires_grad_ true

                let vjp =
                    torch.autograd.grad ([| y |], [| x |], [| w |], retain_graph = true, create_graph = true)

                if keeps then
                    m.Keep [ vjp[0]; w ]

                vjp[0], w

        let jvp =
            torch.autograd.grad (
                [| product |],
                [| seed |],
                [| direction |],
                retain_graph = (keepGraph || keeps),
                create_graph = keepGraph
            )

        if keepGraph then jvp[0] else jvp[0].detach ()

/// The Jacobian–vector product of a `FieldCnn` N in forward mode, for the closure sites of a tangent plan: input and
/// output as `FieldTangentNetwork`'s, but the product is N's linearisation applied to ẋ (`FieldCnn.Slopes` at x, then
/// `FieldCnn.Tangent`: each convolution's linear part, times the activation's slopes between them), about the cost of
/// one forward pass instead of `FieldTangentNetwork`'s two backward passes. Under grad mode it is an ordinary graph, so
/// autograd differentiates the product with respect to x, ẋ and N's weights. Between `Hold` and `Release` (outside grad
/// mode) the slopes of the first call are kept and reused: each later product costs the linear passes alone. Its
/// parameters are N's, in N's order.
type internal ForwardTangentNetwork(network: Hybrid.Training.FieldCnn, arity: int) =
    inherit HeldModule("forward_tangent", network)

    override m.forward(input: torch.Tensor) =
        let direction = input.narrow (1L, int64 arity, int64 arity)

        let slopes =
            if m.Keeps && m.Kept.Count > 0 then
                List.ofSeq m.Kept
            else
                let slopes = network.Slopes(input.narrow (1L, 0L, int64 arity))

                if m.Keeps then
                    m.Keep slopes

                slopes

        network.Tangent(slopes, direction)

/// The JVP of a closure network N over whole fields taken as 0 (input as `FieldTangentNetwork`'s, output zeros shaped
/// like N's at the point, which is computed once between `Hold` and `Release`): the local part of J that the
/// matrix-free Rodas4 is preconditioned with (`TangentPlan.createLocal`). Its parameters are N's, in N's order.
type internal ZeroTangent(network: torch.nn.Module<torch.Tensor, torch.Tensor>, arity: int) =
    inherit HeldModule("zero_tangent", network)

    override m.forward(input: torch.Tensor) =
        if m.Keeps && m.Kept.Count > 0 then
            m.Kept[0].alias ()
        else
            use _ = torch.no_grad ()
            let zeros = torch.zeros_like (network.forward (input.narrow (1L, 0L, int64 arity)))

            if m.Keeps then
                m.Keep [ zeros ]
                m.Kept[0].alias ()
            else
                zeros

/// A closure network N whose output, between `Hold` and `Release` (outside grad mode), is computed once and reused:
/// the tangent plan's own closure sites, evaluated at the same state for every direction the Rodas4 stepper probes J
/// with. Under grad mode, or when not holding, it is N. Its parameters are N's, in N's order.
type internal HeldNetwork(network: torch.nn.Module<torch.Tensor, torch.Tensor>) =
    inherit HeldModule("held", network)

    override m.forward(input: torch.Tensor) =
        if m.Keeps then
            if m.Kept.Count = 0 then
                m.Keep [ (network.forward input).detach () ]

            m.Kept[0].alias ()
        else
            network.forward input
