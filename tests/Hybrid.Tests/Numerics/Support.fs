/// Helpers for the numerics tests: float64 tensors, gradient checks against central finite differences,
/// observed orders of convergence, peak memory.
module Hybrid.Tests.Numerics.Support

open System.IO
open TorchSharp
open Hybrid
open Hybrid.Numerics

let f64 = torch.ScalarType.Float64

/// A 0-dim float64 tensor.
let scalar (v: float) =
    Engine.init ()
    torch.tensor (v, dtype = f64)

/// A 0-dim float64 leaf that requires grad.
let leaf (v: float) = (scalar v).requires_grad_ true

/// Directional gradient check: |∇f·d − (f(x + εd) − f(x − εd))/2ε| / max(|FD|, 1e-3), maximised over two
/// random directions d (all inputs perturbed together).
let gradCheck (f: torch.Tensor[] -> torch.Tensor) (inputs: torch.Tensor[]) : float =
    Engine.init ()
    use _ = torch.NewDisposeScope()
    let xs = inputs |> Array.map (fun x -> x.detach().clone().requires_grad_ true)
    let y = f xs
    let grads = torch.autograd.grad ([| y |], xs, allow_unused = true) |> Array.ofSeq
    use gen = new torch.Generator(1234UL)
    let eps = 1e-5

    [ 1..2 ]
    |> List.map (fun _ ->
        let dirs =
            xs
            |> Array.map (fun x -> torch.randn (x.shape, dtype = x.dtype, generator = gen))

        let analytic =
            Array.map2
                (fun (g: torch.Tensor) (d: torch.Tensor) ->
                    if isNull g || g.IsInvalid then
                        0.0
                    else
                        (g * d).sum().ToDouble())
                grads
                dirs
            |> Array.sum

        let at (s: float) =
            use _ = torch.no_grad ()

            let moved =
                Array.map2 (fun (x: torch.Tensor) (d: torch.Tensor) -> x + (s * eps) * d) xs dirs

            (f moved).ToDouble()

        let fd = (at 1.0 - at -1.0) / (2.0 * eps)
        abs (analytic - fd) / max (abs fd) 1e-3)
    |> List.max

/// Observed orders log₂(eₖ / eₖ₊₁) between successive halvings.
let orders (errors: float list) : float list =
    errors |> List.pairwise |> List.map (fun (a, b) -> log (a / b) / log 2.0)

/// Max-norm of a tensor.
let maxAbs (t: torch.Tensor) = t.abs().max().ToDouble()

/// Peak resident memory (bytes) while `f` runs, measured by resetting the kernel's high-water mark
/// (/proc/self/clear_refs = 5) and reading VmHWM; `None` where /proc is not available.
let peakRss (f: unit -> unit) : int64 option =
    let read () =
        File.ReadAllLines "/proc/self/status"
        |> Array.tryFind (fun l -> l.StartsWith "VmHWM:")
        |> Option.map (fun l ->
            int64 (l.Split([| ' '; '\t' |], System.StringSplitOptions.RemoveEmptyEntries)[1])
            * 1024L)

    try
        let before =
            File.ReadAllLines "/proc/self/status"
            |> Array.find (fun l -> l.StartsWith "VmRSS:")
            |> fun l ->
                int64 (l.Split([| ' '; '\t' |], System.StringSplitOptions.RemoveEmptyEntries)[1])
                * 1024L

        File.WriteAllText("/proc/self/clear_refs", "5")
        f ()
        read () |> Option.map (fun peak -> peak - before)
    with _ ->
        f ()
        None

/// Options with a given scheme, step and save times (checks off, no checkpointing).
let options scheme dt saves = {
    Rollout.defaults with
        Scheme = scheme
        Dt = dt
        SaveTimes = saves
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// A tolerance with these relative and absolute parts.
let tolerance (relative: float) (absolute: float) = {
    Relative = relative
    Absolute = absolute
}

/// `options` for an adaptive scheme with tolerance `tol` and first step dt.
let adaptive scheme (tol: Tolerance) (dt: float) (saves: float[]) = {
    options scheme dt saves with
        Tolerance = tol
}

/// The eigenvalue of the discrete 1-D Laplacian (3 points, spacing d) on sin(2πkx): (4/d²) sin²(πkd).
let discreteEigen (d: float) (k: float) =
    4.0 / (d * d) * (sin (System.Math.PI * k * d) ** 2.0)

/// Central differences of a scalar function of θ against autograd, relative error per parameter.
let gradientErrors (loss: torch.Tensor[] -> torch.Tensor) (theta: float[]) =
    let leaves = theta |> Array.map leaf

    let g =
        torch.autograd.grad ([| loss leaves |], leaves)
        |> Array.ofSeq
        |> Array.map (fun x -> x.ToDouble())

    theta
    |> Array.mapi (fun i v ->
        let step = 1e-5 * max 1.0 (abs v)

        let at (s: float) =
            use _ = torch.no_grad ()
            (loss (theta |> Array.mapi (fun j w -> scalar (if j = i then w + s * step else w)))).ToDouble()

        let fd = (at 1.0 - at -1.0) / (2.0 * step)
        printfn "∂/∂θ%d: autograd %.12g, central differences %.12g" i g[i] fd
        abs (g[i] - fd) / abs fd)
