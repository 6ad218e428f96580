// Case study (twin experiment): tumour growth under a drug with an unknown, saturating effect. 1-D
// reaction–diffusion ∂u/∂t = ∇·(D∇u) + r u (1 − u) − kill(u, c) u with the drug concentration c(t, x) from
// dosing schedules; the truth's kill is k_max c/(EC50 + c), hidden from the models. The scientific model with the
// log-kill hypothesis (kill = k c) with fixed prior values and fitted, and a hybrid (Examples.tumour: D, r and an
// MLP kill(u, c)), trained on a control arm and two low-dose schedules, tested on unseen timings (in-domain) and
// unseen higher-dose schedules (out-of-domain); pure-ML baselines (LSTM, transformer forecasters with the drug as
// exogenous input) and a PINN on the same splits, and the hybrid's uncertainty (deep ensemble, MC dropout).
// Quick settings (one seed); `hybrid report` runs the full ones (three seeds). Pass `full` for those here.
//
// Build once (./build.sh, or dotnet build -c Release), then from the repository root:
//   dotnet fsi scripts/tumour.fsx [full]
#load "Hybrid.fsx"

open Hybrid
open Hybrid.Models.Cases
open Hybrid.Models.Common

let full = fsi.CommandLineArgs |> Array.contains "full"
let outcome = Tumour.run (if full then Tumour.defaults else Tumour.quick)

printfn
    "%-38s %10s %10s %10s %9s %8s %6s %8s"
    "model"
    "ID MSE"
    "OOD MSE"
    "train MSE"
    "residual"
    "train s"
    "epochs"
    "infer s"

// The residual is NaN for the sequence models (they predict the observation times only).
for m in outcome.Models do
    printfn
        "%-38s %10.6f %10.6f %10.6f %9.4f %8.2f %6d %8.3f"
        m.Name
        m.InDomainMse
        m.OutOfDomainMse
        m.TrainMse
        m.ResidualNorm
        m.TrainSeconds
        m.Epochs
        m.InferenceSeconds

printfn "truth residual under its own equation: %.2e (round-off)" outcome.TruthResidualNorm

// The ablation (issue #15, 2 b–d): the hybrid trained other ways and α-fusion, over the hybrid's seeds.
for m in outcome.Ablation do
    printfn "%-38s %10.6f %10.6f" m.Name m.InDomainMse m.OutOfDomainMse

printfn "parameters (true D = %g, r = %g), one value per seed:" Tumour.Truth.D Tumour.Truth.r

for m in outcome.Models do
    let shown =
        m.Parameters
        |> Array.map (fun (n, vs) -> n + " " + (vs |> Array.map (sprintf "%.4f") |> String.concat ", "))
        |> String.concat "; "

    printfn "  %-38s %s" m.Name shown

let last = outcome.KillConcentrations.Length - 1

printfn
    "kill at c = %.2f (training reaches %.2f): truth %.3f, %s"
    outcome.KillConcentrations[last]
    outcome.TrainingMaxConcentration
    outcome.TrueKill[last]
    (outcome.Models
     |> Array.filter (fun m -> m.Kill.Length > 0)
     |> Array.map (fun m -> $"{m.Name} {m.Kill[last]:F3}")
     |> String.concat ", ")

printfn "uncertainty of the hybrid (targets: noisy test observations):"

for r in outcome.Uncertainty do
    printfn
        "  %-28s %-34s ECE %.3f  50%% cov %.2f  90%% cov %.2f  CRPS %.4f  %5.1f s"
        r.Method
        r.Split
        r.Calibration.Ece
        r.Coverage50
        r.Coverage90
        r.Crps
        r.Seconds

let mse name =
    (outcome.Models |> Array.find (fun m -> m.Name = name)).OutOfDomainMse

// What the CI test asserts (tests/Hybrid.Tests/Cases/TumourTests.fs).
if mse "hybrid (D r + MLP kill)" >= mse "prior (log-kill, fixed prior values)" then
    failwith "the hybrid does not beat the fixed-parameter (prior) model on the out-of-domain schedules"
