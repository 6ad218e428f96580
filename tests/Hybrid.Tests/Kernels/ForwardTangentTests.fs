/// A `FieldCnn`'s Jacobian–vector product in forward mode (`ForwardTangentNetwork`, what the Rodas4 kernels' tangent
/// plan uses for CNN closures) against the same product by differentiating twice (`FieldTangentNetwork`, exact autograd),
/// float64, for every activation, 1-D and 2-D, each kind of padding, at ordinary inputs and at inputs fifty times larger
/// (saturated tanh and sigmoid, ReLU's dead half, Softplus above its threshold): the product to 1e-12; under grad mode
/// the gradients of ⟨λ, J ẋ⟩ with respect to x, ẋ and every weight (the Rodas4 adjoint's second-order terms) to 1e-10;
/// between `Hold` and `Release` a later direction's product equals a fresh one's.
module Hybrid.Tests.Kernels.ForwardTangentTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Kernels
open Hybrid.Training

let private f64 = torch.ScalarType.Float64

/// The largest |a − b| over the largest |b| (or 1e-300).
let private relative (a: torch.Tensor) (b: torch.Tensor) =
    (a - b).abs().max().ToDouble() / max 1e-300 (b.abs().max().ToDouble())

/// A seeded float64 `FieldCnn` of `dims` axes, widths [2; 5; 4; 3], kernel `kernel`, with `padding`.
let private cnn (dims: int) (kernel: int) (activation: Activation) (padding: Padding[]) =
    torch.manual_seed 11L |> ignore
    new FieldCnn("probe", dims, [ 2; 5; 4; 3 ], kernel, activation, padding, f64)

/// The two JVP networks of `net` agree at a random x (times `scale`) and direction, batch 2, on `spatial` cells.
let private agrees (what: string) (net: FieldCnn) (spatial: int64[]) (scale: float) =
    use _ = torch.NewDisposeScope()
    let gen = new torch.Generator(5UL)
    let shape = Array.append [| 2L; 2L |] spatial

    let random () =
        torch.randn (shape, dtype = f64, generator = gen)

    let x = random () * scale
    let direction = random ()
    let forward = new ForwardTangentNetwork(net, 2)
    let twice = new FieldTangentNetwork(net, 2)
    let input (x: torch.Tensor) (d: torch.Tensor) = torch.cat ([| x; d |], 1L)

    // The product outside grad mode.
    let a, b =
        use _ = torch.no_grad ()
        forward.forward (input x direction), twice.forward (input x direction)

    Expect.sequenceEqual a.shape b.shape $"{what}: the output's shape"
    Expect.isGreaterThan (b.abs().max().ToDouble()) 1e-6 $"{what}: a product that is not 0"
    let d = relative a b
    Expect.isLessThan d 1e-12 $"{what}: J ẋ ({d:G3})"

    // Under grad mode: the gradients of ⟨λ, J ẋ⟩ with respect to x, ẋ and the weights.
    let lambda = torch.randn (b.shape, dtype = f64, generator = gen)

    let gradients (m: torch.nn.Module<torch.Tensor, torch.Tensor>) =
        let xs = x.detach().requires_grad_ true
        let ds = direction.detach().requires_grad_ true

        let weights =
            net.parameters () |> Seq.map (fun p -> p :> torch.Tensor) |> Array.ofSeq

        let inner = (m.forward (input xs ds) * lambda).sum ()

        torch.autograd.grad ([| inner |], Array.append [| xs; ds |] weights, allow_unused = true)
        |> Array.ofSeq

    let ga, gb = gradients forward, gradients twice

    for i in 0 .. ga.Length - 1 do
        let name =
            match i with
            | 0 -> "∂/∂x"
            | 1 -> "∂/∂ẋ"
            | w -> $"∂/∂w, weight {w - 2}"

        // An input the product does not reach has no gradient (an undefined tensor): 0.
        let missing (g: torch.Tensor) = isNull g || g.IsInvalid

        match ga[i], gb[i] with
        | p, q when missing p && missing q -> ()
        | p, g
        | g, p when missing p -> Expect.equal (g.abs().max().ToDouble()) 0.0 $"{what}: {name} is 0 on both sides"
        | p, q ->
            let d = relative p q
            Expect.isLessThan d 1e-10 $"{what}: {name} of ⟨λ, J ẋ⟩ ({d:G3})"

    // Holding: the first call keeps the slopes at x; a second direction's product equals a fresh one.
    use _ = torch.no_grad ()
    let held = forward :> IHeldProduct
    let other = random ()
    held.Hold()

    try
        forward.forward (input x direction) |> ignore
        let kept = forward.forward (input x other)
        let fresh = twice.forward (input x other)
        let d = relative kept fresh
        Expect.isLessThan d 1e-12 $"{what}: a second direction while holding ({d:G3})"
    finally
        held.Release()

let tests =
    testList "A CNN's JVP in forward mode" [
        for activation in
            [
                Activation.Tanh
                Activation.Relu
                Activation.Silu
                Activation.Softplus
                Activation.Gelu
                Activation.Sigmoid
            ] do
            test $"{activation}: equals differentiating twice (product, second-order gradients, held slopes)" {
                for scale in [ 1.0; 50.0 ] do
                    for padding in [ Padding.Periodic; Padding.Zeros; Padding.Replicate ] do
                        agrees $"1-D, {padding}, x × {scale}" (cnn 1 3 activation [| padding |]) [| 9L |] scale

                    agrees
                        $"2-D, periodic x, replicated y, kernel 5, x × {scale}"
                        (cnn 2 5 activation [| Padding.Periodic; Padding.Replicate |])
                        [| 6L; 7L |]
                        scale
            }
    ]
