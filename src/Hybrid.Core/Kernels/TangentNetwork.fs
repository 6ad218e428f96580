namespace Hybrid.Kernels

open TorchSharp

/// The Jacobian–vector product of a per-cell closure network N (rows × arity → rows × 1) as a network of its own, for
/// the closure sites of a tangent plan (`TangentPlan`): input [rows; 2·arity], each row a point x and a direction ẋ,
/// output [rows; 1] the directional derivative (∂N/∂x)(x) ẋ per row (the rows are independent, so one batched product
/// gives every row's). TorchSharp has no forward mode, so the product is taken by double backward: with a seed v
/// (zeros; the result does not depend on its value), g(v) = (∂N/∂x)ᵀ v is linear in v, and J ẋ = ∂/∂v ⟨g(v), ẋ⟩.
/// Under grad mode both backward passes keep their graphs, so autograd differentiates the product again: with
/// respect to x (Hessian–vector products), ẋ (the network's vector–Jacobian product) and N's weights (the closure
/// weights' second-order terms); outside grad mode the result carries no graph. Its parameters are N's, in N's order
/// (N is its only submodule), so weight gradients taken through it are N's.
type internal TangentNetwork(network: torch.nn.Module<torch.Tensor, torch.Tensor>, arity: int) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>("tangent")
    do this.register_module ("network", network)

    override _.forward(input: torch.Tensor) =
        let keepGraph = torch.is_grad_enabled ()
        use _ = torch.enable_grad ()
        let point = input.narrow (1L, 0L, int64 arity)
        let direction = input.narrow (1L, int64 arity, int64 arity)

        let x =
            if point.requires_grad then
                point
            else
                point.detach().requires_grad_ true

        let y = network.forward x
        let seed = torch.zeros_like(y).requires_grad_ true

        let g =
            torch.autograd.grad ([| y |], [| x |], [| seed |], retain_graph = true, create_graph = true)

        let jvp =
            torch.autograd.grad ([| g[0] |], [| seed |], [| direction |], retain_graph = true, create_graph = keepGraph)

        if keepGraph then jvp[0] else jvp[0].detach ()
