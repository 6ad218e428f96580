// Case study (twin experiment): the two-scale Lorenz-96 system (K = 8, J = 32, h = 1, b = c = 10, F = 20). The
// truth is the coupled X–Y system, a DSL model on the compiler's two-scale lattice integrated by the compiled
// simulator; the models are the X equation alone (DSL models on the one-scale lattice) with a sub-grid closure:
// none (truncated), a least-squares cubic per site (Wilks 2005 style), a small MLP per site (hybrid, local
// closure) or a 1-D CNN over the ring of sites (hybrid, sees neighbours), the networks trained a-priori
// (regression onto the true sub-grid term) and then through the solver on rollouts of X (`Trainer.train`); and
// the pure data-driven LSTM and transformer forecasters. Scores: forecast RMSE from held-out start states at
// F = 20 and, out of domain, at F = 18 and 24 (the networks' as the root of the mean MSE over network seeds);
// long-run mean, standard deviation and lag-0.5 autocorrelation of X; the a-priori against a-posteriori
// ablation. Quick settings (a few minutes); `hybrid report` runs the full ones.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/lorenz96.fsx
#load "Hybrid.fsx"

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common

let outcome = Lorenz96.run Lorenz96.quick
let s = outcome.Settings

printfn
    "truth: %d training pairs from %g MTU at F = %g; truth integrations %.1f s"
    outcome.TrainPairs
    s.TrainSpan
    s.Forcing
    outcome.TruthSeconds

printfn "%-18s %12s %8s %7s  parameters" "model" "closure MSE" "time s" "epochs"

for m in outcome.Models do
    let parameters =
        m.Parameters |> Array.map (fun (n, v) -> $"{n}={v:G4}") |> String.concat " "

    printfn "%-18s %12.3f %8.2f %7d  %s" m.Name m.TrainMse m.TrainSeconds m.Epochs parameters

printfn ""

printfn "a-priori against a-posteriori closures, forecast RMSE of X at %g MTU per forcing:" (Array.last s.Leads)

for a in outcome.Ablation do
    let cells =
        a.Rmse
        |> Array.map (fun r -> sprintf "%6.3f" (Array.last r))
        |> String.concat " "

    printfn "  %-4s %-34s %s" a.Closure a.Training cells

printfn ""

printfn "forecast MSE of X at %g MTU, F = %g, per network seed %A:" (Array.last s.Leads) s.Forcing s.NetworkSeeds

for m in outcome.Models |> Array.filter (fun m -> m.SeedRmse.Length > 0) do
    let mses =
        m.SeedRmse
        |> Array.map (fun r -> sprintf "%.3f" (Array.last r[0] * Array.last r[0]))
        |> String.concat " "

    printfn "  %-18s %s" m.Name mses

printfn ""

printfn
    "forecast RMSE of X at leads %A MTU (%d start states), and long-run mean / std / autocorrelation:"
    s.Leads
    s.Starts

for i, t in Array.indexed outcome.Truth do
    printfn "F = %g: truth                       mean %6.3f std %6.3f ac %6.3f" t.Forcing t.Mean t.Std t.Autocorrelation

    for m in outcome.Models do
        let k = m.Skills[i]
        let rmse = k.Rmse |> Array.map (sprintf "%6.3f") |> String.concat " "
        printfn "  %-18s rmse %s  mean %6.3f std %6.3f ac %6.3f" m.Name rmse k.Mean k.Std k.Autocorrelation

let rmse name =
    (outcome.Models |> Array.find (fun m -> m.Name = name)).Skills[0].Rmse

// What the CI test asserts (tests/Hybrid.Tests/Cases/Lorenz96Tests.fs).
for hybrid in [ "hybrid (X + MLP)"; "hybrid (X + CNN)" ] do
    if Array.exists2 (>=) (rmse hybrid) (rmse "truncated") then
        failwith $"{hybrid} does not beat the truncated model on the in-domain test forecasts"
