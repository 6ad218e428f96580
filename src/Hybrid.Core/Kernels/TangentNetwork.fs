namespace Hybrid.Kernels

open TorchSharp

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
type internal TangentNetwork(network: torch.nn.Module<torch.Tensor, torch.Tensor>, arity: int) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>("tangent")
    do this.register_module ("network", network)

    let mutable holding = false
    // The gradient kept while holding (out of every dispose scope; null until the first call).
    let mutable held: torch.Tensor = null

    /// Keeps the gradient of the next call for the later calls, until `Release`: every call until then must pass the
    /// same points x (and the weights must not change).
    member _.Hold() = holding <- true

    /// Ends `Hold`, disposing the kept gradient.
    member _.Release() =
        holding <- false

        if not (isNull held) then
            held.Dispose()
            held <- null

    override _.forward(input: torch.Tensor) =
        let keepGraph = torch.is_grad_enabled ()
        let direction = input.narrow (1L, int64 arity, int64 arity)

        let gradient =
            if holding && not keepGraph && not (isNull held) then
                held
            else
                use _ = torch.enable_grad ()
                let point = input.narrow (1L, 0L, int64 arity)

                let x =
                    if point.requires_grad then
                        point
                    else
                        point.detach().requires_grad_ true

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
                    if holding then
                        held <- g[0].detach().DetachFromDisposeScope()

                    g[0].detach ()

        (gradient * direction).sum (1L, keepdim = true)
