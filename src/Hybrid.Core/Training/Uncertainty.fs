// The public surface and its documentation: Uncertainty.fsi.
namespace Hybrid.Training

open System
open System.IO
open System.Globalization
open TorchSharp
open Hybrid
open Hybrid.TensorArithmetic

type Predictive = {
    Mean: torch.Tensor
    Std: torch.Tensor
}

type Calibration = {
    Levels: float[]
    Coverage: float[]
    Ece: float
}

[<RequireQualifiedAccess>]
module Uncertainty =

    let normalQuantile (p: float) : float =
        if not (p > 0.0 && p < 1.0) then
            raise (HybridException($"normalQuantile: p = {p} must lie strictly between 0 and 1."))

        let a = [|
            -39.69683028665376
            220.9460984245205
            -275.9285104469687
            138.3577518672690
            -30.66479806614716
            2.506628277459239
        |]

        let b = [|
            -54.47609879822406
            161.5858368580409
            -155.6989798598866
            66.80131188771972
            -13.28068155288572
        |]

        let c = [|
            -0.007784894002430293
            -0.3223964580411365
            -2.400758277161838
            -2.549732539343734
            4.374664141464968
            2.938163982698783
        |]

        let d = [|
            0.007784695709041462
            0.3224671290700398
            2.445134137142996
            3.754408661907416
        |]

        let lo = 0.02425

        if p < lo then
            let q = sqrt (-2.0 * log p)

            (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
        elif p > 1.0 - lo then
            let q = sqrt (-2.0 * log (1.0 - p))

            -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
        else
            let q = p - 0.5
            let r = q * q

            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)

    let withTrainingMode (modules: torch.nn.Module[]) (f: unit -> 'T) : 'T =
        // Every module with its depth and mode; restored parents first, because `train` recurses into children.
        let previous =
            modules
            |> Array.collect (fun m ->
                Array.append [| -1, m, m.training |] [|
                    for name, sub in m.named_modules () ->
                        (if name = "" then 0 else name.Split('.').Length), sub, sub.training
                |])
            |> Array.sortBy (fun (depth, _, _) -> depth)

        try
            for m in modules do
                m.train ()

            f ()
        finally
            for _, m, training in previous do
                m.train training

    let mcDropout (modules: torch.nn.Module[]) (passes: int) (predict: unit -> torch.Tensor) : Predictive =
        Engine.init ()
        use _ = TorchGuard.enter "Uncertainty.mcDropout"

        if passes < 2 then
            raise (HybridException($"MC dropout needs at least 2 passes to estimate a spread, got {passes}."))

        use _ = torch.no_grad ()

        let samples =
            withTrainingMode modules (fun () -> torch.stack (Array.init passes (fun _ -> predict ()), 0L))

        {
            Mean = samples.mean ([| 0L |])
            Std = samples.std (0L, unbiased = false)
        }

    let mcDropoutSeeded
        (modules: torch.nn.Module[])
        (passes: int)
        (seed: int)
        (predict: unit -> torch.Tensor)
        : Predictive =
        Engine.init ()
        use _ = TorchGuard.enter "Uncertainty.mcDropoutSeeded"
        use state = torch.get_rng_state ()

        try
            Engine.seed seed
            mcDropout modules passes predict
        finally
            torch.set_rng_state state

    let ensemble (members: int) (seed: int) (create: int -> 'M) (train: 'M -> unit) : 'M[] =
        Engine.init ()
        use _ = TorchGuard.enter "Uncertainty.ensemble"

        if members < 1 then
            raise (HybridException($"An ensemble needs at least one member, got {members}."))

        let created =
            Array.init members (fun k ->
                Engine.seed (seed + k)
                create k)

        created |> Array.iter train

        created

    let combine (predictions: Predictive[]) : Predictive =
        if predictions.Length = 0 then
            raise (HybridException("Uncertainty.combine: no member predictions were given."))

        let mus = torch.stack (predictions |> Array.map (fun p -> p.Mean), 0L)
        let vars = torch.stack (predictions |> Array.map (fun p -> square p.Std), 0L)
        let mean = mus.mean ([| 0L |])
        let var = vars.mean ([| 0L |]) .+ (square (mus - mean)).mean ([| 0L |])
        { Mean = mean; Std = var.sqrt () }

    let calibration (levels: float[]) (p: Predictive) (target: torch.Tensor) : Calibration =
        use _ = torch.no_grad ()
        let ok = torch.isfinite target
        let n = ok.sum().ToDouble()

        if n = 0.0 then
            raise (HybridException("Calibration: there are no observed (finite) targets."))

        let z = (target - p.Mean).abs () / withScalar 1e-300 p.Std.clamp_min

        let coverage =
            levels
            |> Array.map (fun level ->
                let q = normalQuantile (0.5 + level / 2.0)
                (withScalar q z.le).logical_and(ok).sum().ToDouble() / n)

        {
            Levels = Array.copy levels
            Coverage = coverage
            Ece = Array.map2 (fun c l -> abs (c - l)) coverage levels |> Array.average
        }

    let defaultLevels: float[] = Array.init 9 (fun i -> float (i + 1) / 10.0)

    let varianceScale (p: Predictive) (target: torch.Tensor) : float =
        use _ = torch.no_grad ()
        use scope = torch.NewDisposeScope()
        let ok = torch.isfinite target
        let n = ok.sum().ToDouble()

        if n = 0.0 then
            raise (
                HybridException(
                    "Uncertainty.varianceScale: the validation targets have no observed (finite) value; give a split with data."
                )
            )

        let std = p.Std.expand_as(target).masked_select (ok)
        let least = std.min().ToDouble()

        if not (least > 0.0) then
            raise (
                HybridException(
                    $"Uncertainty.varianceScale: a predictive standard deviation is {least} where a target is observed; every one must be > 0 (add the observation noise, e.g. Uncertainty.combine with the noise's std)."
                )
            )

        let z =
            (target.masked_select (ok) - p.Mean.expand_as(target).masked_select (ok)) / std

        sqrt ((z * z).mean().ToDouble())

    let rescale (scale: float) (p: Predictive) : Predictive =
        if not (scale > 0.0 && not (Double.IsInfinity scale)) then
            raise (
                HybridException(
                    $"Uncertainty.rescale: scale = {scale}; a variance-scaling factor is finite and > 0 (from Uncertainty.varianceScale)."
                )
            )

        { p with Std = scale .* p.Std }

    let nll (p: Predictive) (target: torch.Tensor) : float =
        use _ = torch.no_grad ()
        (Loss.gaussianNll p.Mean (withScalar 1e-12 p.Std.clamp_min) target).ToDouble()

    let crps (p: Predictive) (target: torch.Tensor) : float =
        use _ = torch.no_grad ()
        let s = withScalar 1e-12 p.Std.clamp_min
        let z = (target - p.Mean) / s
        let cdf = 0.5 .* (1.0 .+ torch.special.erf (z ./ sqrt 2.0))
        let pdf = torch.exp (-0.5 .* square z) ./ sqrt (2.0 * Math.PI)
        let c = s * (z * (2.0 .* cdf .- 1.0) .+ 2.0 .* pdf .- 1.0 / sqrt Math.PI)
        let ok = torch.isfinite c
        c.masked_select(ok).mean().ToDouble()

    let reliabilitySvg (path: string) (title: string) (c: Calibration) : string =
        let inv = CultureInfo.InvariantCulture
        let size = 320.0
        let m = 40.0

        let px (v: float) =
            (m + v * (size - 2.0 * m)).ToString("F1", inv)

        let py (v: float) =
            (size - m - v * (size - 2.0 * m)).ToString("F1", inv)

        let points =
            Array.map2 (fun l cv -> $"{px l},{py cv}") c.Levels c.Coverage
            |> fun a -> String.Join(" ", a)

        let dots =
            Array.map2
                (fun l cv -> $"<circle cx=\"{px l}\" cy=\"{py cv}\" r=\"3\" fill=\"#1f77b4\"/>")
                c.Levels
                c.Coverage
            |> String.concat ""

        let ece = c.Ece.ToString("F3", inv)
        let safe = Security.SecurityElement.Escape title

        let svg =
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\">"
            + $"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>"
            + $"<text x=\"{m}\" y=\"20\" font-size=\"13\">{safe} (ECE {ece})</text>"
            + $"<line x1=\"{px 0.0}\" y1=\"{py 0.0}\" x2=\"{px 1.0}\" y2=\"{py 1.0}\" stroke=\"#999\" stroke-dasharray=\"4\"/>"
            + $"<line x1=\"{px 0.0}\" y1=\"{py 0.0}\" x2=\"{px 1.0}\" y2=\"{py 0.0}\" stroke=\"black\"/>"
            + $"<line x1=\"{px 0.0}\" y1=\"{py 0.0}\" x2=\"{px 0.0}\" y2=\"{py 1.0}\" stroke=\"black\"/>"
            + $"<text x=\"{px 0.5}\" y=\"{size - 8.0}\" font-size=\"11\" text-anchor=\"middle\">nominal level</text>"
            + $"<text x=\"12\" y=\"{py 0.5}\" font-size=\"11\" transform=\"rotate(-90 12 {py 0.5})\" text-anchor=\"middle\">observed coverage</text>"
            + $"<polyline points=\"{points}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>{dots}</svg>"

        let dir = Path.GetDirectoryName(Path.GetFullPath path)
        Directory.CreateDirectory dir |> ignore
        File.WriteAllText(path, svg)
        svg
