// Tutorial: from an equation to a fitted model and a plot, in one script (≈ 10 s).
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/tutorial.fsx
// It writes artifacts/tutorial/fit.svg and fails loudly if the fit does not recover the parameters.
#load "Hybrid.fsx"

open System
open System.IO
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Training

// 1. The equation. Fisher–KPP: diffusion plus logistic growth, on [0, 1] with no-flux walls.
let model =
    Parse.model
        """
model fisher
domain interval [0, 1] cells 32
field u
param D > 0 = 0.01
param r > 0 = 2
∂u/∂t = D Δu + r u (1 − u)
boundary u noflux
initial u = 0.1 + 0.8 exp(−100 (x − 0.3)²)
"""

printfn "%s\n" (Print.model Notation.Unicode model)
printfn "LaTeX: %s\n" (Print.model Notation.Latex model)

// 2. Compile and simulate: the "truth" the fit should find again.
let truth = Compiler.compile Compiler.defaults model
let times = Array.init 9 (fun i -> 0.125 * float i) // t = 0 … 1

let rollout = {
    Rollout.defaults with
        Dt = 0.03125
        SaveTimes = times
}

let data =
    use _ = torch.no_grad ()
    (truth.Simulate(truth.Initial 1, rollout)).Values[0].detach () // [S; 1; 32]

// 3. A second simulator starts from wrong values of D and r; Adam fits both through the simulation.
let fit = Compiler.compile Compiler.defaults model
fit.Param("D").Set 0.004
fit.Param("r").Set 1.0

let guess =
    use _ = torch.no_grad ()
    (fit.Simulate(fit.Initial 1, rollout)).Values[0].detach ()

let objective = {
    Loss =
        fun _ ->
            let prediction = (fit.Simulate(fit.Initial 1, rollout)).Values[0]
            let loss = Loss.mse prediction data

            {
                Total = loss
                Parts = [| "data", loss |]
            }
    Validation = None
}

printfn "%6s %12s %9s %9s" "epoch" "loss" "D" "r"

let result =
    Trainer.train
        {
            Trainer.defaults with
                Epochs = 150
                Groups = [| Trainer.group "theta" 0.05 (fit.Trainable()) |]
                Theta = [| "D", fit.Param("D").Get; "r", fit.Param("r").Get |]
                Progress = {
                    Progress.silent with
                        Hook =
                            Some(
                                Progress.hook (fun p ->
                                    if p.Epoch % 25 = 0 then
                                        printfn
                                            "%6d %12.3e %9.5f %9.5f"
                                            p.Epoch
                                            p.TrainLoss
                                            (snd p.Theta[0])
                                            (snd p.Theta[1]))
                            )
                }
        }
        objective

// 4. A small table: true, fitted, error.
printfn "\n%-4s %9s %9s %8s" "" "true" "fitted" "error"

let errors = [|
    for name in [ "D"; "r" ] ->
        let t, f = truth.Param(name).Get(), fit.Param(name).Get()
        printfn "%-4s %9.5f %9.5f %7.3f%%" name t f (100.0 * abs (f - t) / t)
        abs (f - t) / t
|]

printfn "%d epochs in %.1f s" result.Epochs result.WallTime.TotalSeconds

// 5. A plot: u(x) at the last time, data against the first guess and the fit, as a small SVG.
let fitted =
    use _ = torch.no_grad ()
    (fit.Simulate(fit.Initial 1, rollout)).Values[0].detach ()

let last (t: torch.Tensor) =
    t[-1L, 0L].to_type(torch.ScalarType.Float64).data<float>().ToArray()

let svg (series: (string * string * float[]) list) =
    let w, h, pad = 480.0, 300.0, 30.0
    let n = (let _, _, v = series.Head in v.Length)

    let px i =
        pad + (w - 2.0 * pad) * (float i + 0.5) / float n

    let py v = h - pad - (h - 2.0 * pad) * v // u ∈ [0, 1]

    [
        $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">"
        $"<rect x=\"{pad}\" y=\"{pad}\" width=\"{w - 2.0 * pad}\" height=\"{h - 2.0 * pad}\" fill=\"none\" stroke=\"#999\"/>"
        $"<text x=\"{pad}\" y=\"20\">u(x, t = {times[times.Length - 1]}): data, first guess, fit</text>"
        for k, (name, colour, values) in List.indexed series do
            let points =
                values
                |> Array.mapi (fun i v -> FormattableString.Invariant $"{px i:F1},{py v:F1}")
                |> String.concat " "

            $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{points}\"/>"
            $"<text x=\"{w - 120.0}\" y=\"{pad + 16.0 * float (k + 1)}\" fill=\"{colour}\">{name}</text>"
        "</svg>"
    ]
    |> String.concat "\n"

let plot =
    Path.Combine(__SOURCE_DIRECTORY__, "..", "artifacts", "tutorial", "fit.svg")
    |> Path.GetFullPath

Directory.CreateDirectory(Path.GetDirectoryName plot) |> ignore

File.WriteAllText(
    plot,
    svg [
        "data", "black", last data
        "first guess", "#d62728", last guess
        "fit", "#1f77b4", last fitted
    ]
)

printfn "plot: %s" plot

if errors |> Array.exists (fun e -> e > 0.01) then
    failwith "tutorial: a fitted parameter is more than 1% off"
